//go:build ci

package ui

import (
	"context"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/records"
	"github.com/particle-flasher/particle-flasher/internal/testpg"
)

// TestFactoryRecordsSection: the Factory tab has the station, lot and operator fields and
// the record store; "Test connection" says whether the store answers (a real PostgreSQL,
// then a URL where nothing listens); a bench run with a lot records its units, "Lot
// totals" reads them back from the store, and the export writes the lot's device IDs.
func TestFactoryRecordsSection(t *testing.T) {
	pg := testpg.Start(t)
	dsn := pg.CreateDB(t, "app")
	r := newRunRig(t, 0)
	r.eventually("three devices listed", func() bool { return len(r.m.order) == 3 })
	tab := r.factoryTab()
	txt := r.seen(tab)
	for _, label := range []string{"Station", "Lot", "Operator", "Records", recordsTestText, recordsRefreshText, recordsExportText} {
		assert.Contains(t, txt, label)
	}

	var f *factoryRecords
	var picker *widget.Select
	var sw *widget.Check
	onUIWait(func() {
		picker = findIn(tab, func(*widget.Select) bool { return true })
		sw = findIn(tab, func(c *widget.Check) bool { return c.Text == factorySwitchText })
	})
	onUIWait(func() {
		box := findIn(tab, func(*recordsBox) bool { return true })
		require.NotNil(t, box)
		f = box.r
	})
	onUIWait(func() {
		assert.Equal(t, records.DefaultFile(r.m.runs.StateDir), f.dsn(), "SQLite in the state directory by default")
	})

	// A database that is not there.
	onUIWait(func() {
		f.db.SetText("postgres://pflash@/none?host=" + t.TempDir() + "&sslmode=disable")
		test.Tap(f.testBtn)
	})
	r.eventually("the failed test said so", func() bool { return strings.Contains(visibleText(tab), "The records cannot be reached") })

	// The real one.
	onUIWait(func() {
		f.db.SetText(dsn)
		test.Tap(f.testBtn)
	})
	r.eventually("connected", func() bool { return strings.Contains(visibleText(tab), "Connected: PostgreSQL database") })

	// A bench with a lot.
	onUIWait(func() {
		f.station.SetText("line-7")
		f.lot.SetText("20261206_0042")
		f.operator.SetText("ana")
		for _, o := range picker.Options {
			if o == "2.3.1" || strings.HasPrefix(o, "2.3.1 (") {
				picker.SetSelected(o)
			}
		}
		test.Tap(sw)
	})
	r.eventually("every unit finished", func() bool { return strings.Contains(visibleText(tab), "3 ok · 0 already · 0 failed · 0 running") })
	onUIWait(func() { test.Tap(sw) })
	r.eventually("the bench off", func() bool { return strings.Contains(visibleText(tab), "The bench is off") })

	onUIWait(func() { test.Tap(f.totalsBtn) })
	r.eventually("the lot's totals", func() bool {
		return strings.Contains(visibleText(tab), "Lot 20261206_0042: 3 unit(s) — ok 3. Stations: line-7 3. Not at the target: 0.")
	})

	// The export's content, as the save dialog's file would get it.
	var b strings.Builder
	onUIWait(func() { f.format.SetSelected(records.FormatDeviceIDs) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := f.exportTo(ctx, &b, f.format.Selected)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	ids := strings.Fields(b.String())
	assert.Len(t, ids, 3)
	for _, d := range r.m.sims.Devices() {
		assert.Contains(t, ids, d.ID())
	}
}
