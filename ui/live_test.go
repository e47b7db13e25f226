//go:build ci

package ui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/run"
)

// TestStalePlanAndResultGoWhenTheDeviceChanges: a plan belongs to the device as it was
// read for it. The Boron's plan is made; the Boron is then put in DFU mode by its buttons
// under the panel: the plan is made again for what it is now. After a run, its result
// stays until the device changes again.
func TestStalePlanAndResultGoWhenTheDeviceChanges(t *testing.T) {
	r := newRunRig(t, 0)
	s := r.section("boron")
	r.pick(s, "4.1.0")
	var rows []string
	onUIWait(func() { rows, _ = rowsNow(s.checklist) })
	require.Contains(t, rows, "Enter DFU mode | ", "planned from normal mode")

	d := r.simOf("boron")
	require.NoError(t, d.ButtonReset(3*time.Second))
	r.eventually("the plan made again from DFU mode", func() bool {
		rows, _ := rowsNow(s.checklist)
		return len(rows) > 0 && !slices.Contains(rows, "Enter DFU mode | ") && !s.start.Disabled()
	})
	assert.Contains(t, logText(r), "The device changed: planning again for what it is now.")

	r.tap(s.start)
	card := r.waitCard(s)
	require.Contains(t, card, "verified", card)
	// The watcher reads the device after the run: the result is about that device, so it stays.
	time.Sleep(300 * time.Millisecond)
	onUIWait(func() { assert.True(t, s.view.card.Visible(), "the result of the run stays") })

	// Changed under the panel again (a restart into DFU mode): the result is cleared.
	require.NoError(t, d.ButtonReset(3*time.Second))
	r.eventually("the old result cleared", func() bool { return !s.view.card.Visible() })
	assert.Contains(t, logText(r), "The device changed since the last run: its result is cleared.")
}

// TestLogListsTheRunAndSaves: the Log tab has every device appearance and every step of a
// run with a time, filters per device, and saves as plain text; the run's report carries
// its device's lines.
func TestLogListsTheRunAndSaves(t *testing.T) {
	r := newRunRig(t, 0)
	s := r.section("boron")
	r.pick(s, "4.1.0")
	r.tap(s.start)
	r.waitCard(s)
	var all string
	onUIWait(func() { all = r.m.logv.plain() })
	for _, want := range []string{"Photon (virtual) appeared", "Argon (virtual) appeared", "Run started: Device OS 1.5.2 to 4.1.0",
		"Step 1 of ", "Done: Device OS 1.5.2 to 4.1.0, verified."} {
		assert.Contains(t, all, want)
	}
	// What the tab shows once opened (it renders only while in view).
	onUIWait(func() { r.m.tabs.SelectIndex(len(r.m.tabs.Items) - 1) })
	assert.Contains(t, r.text(r.m.logv.obj), "Run started: Device OS 1.5.2 to 4.1.0")
	for _, line := range strings.Split(strings.TrimSpace(all), "\n") {
		assert.Regexp(t, `^\d\d:\d\d:\d\d `, line, "every line has its time")
	}
	// Only the Boron's lines when filtered to it.
	onUIWait(func() { r.m.logv.filter.SetSelected(s.id) })
	// Saved as a file, as Save log... does (in the same moment as it is read here: the
	// watcher keeps adding lines).
	path := filepath.Join(t.TempDir(), "run.log")
	f, err := os.Create(path)
	require.NoError(t, err)
	var mine string
	onUIWait(func() {
		mine = r.m.logv.plain()
		require.NoError(t, r.m.logv.writeLog(f))
	})
	assert.Contains(t, mine, "Run started")
	assert.NotContains(t, mine, "Photon")
	require.NoError(t, f.Close())
	saved, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, mine, string(saved))
	// The report has the run's lines.
	var rec runRecord
	onUIWait(func() { rec = s.view.rec })
	assert.NotEmpty(t, rec.Log)
	assert.Contains(t, strings.Join(rec.Log, "\n"), "Step 1 of ")
	// Clear empties it.
	onUIWait(func() { test.Tap(findButton(r.m.logv.obj, "Clear")) })
	onUIWait(func() { assert.Empty(t, r.m.logv.entries) })
}

// TestErrorDialogIsHuman: an engine error (a device that is not there) shown in the app's
// error dialog has its message and what to do, without the chain of prefixes the engine
// wraps it in or a pflash command line.
func TestErrorDialogIsHuman(t *testing.T) {
	r := newRunRig(t, 0)
	runner := r.m.runnerFor()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := runner.Prepare(ctx, "0123456789abcdef01234567", plan.Target{Name: "4.1.0"})
	require.Error(t, err)
	t.Logf("engine error: %v", err)
	onUIWait(func() { showError(err, r.w) })
	var shown string
	onUIWait(func() {
		for _, o := range r.w.Canvas().Overlays().List() {
			shown += walkedText(o)
		}
	})
	require.NotEmpty(t, shown)
	t.Logf("dialog: %q", shown)
	assert.Contains(t, shown, "What to do")
	assert.NotContains(t, shown, "pflash")
	assert.LessOrEqual(t, strings.Count(shown, "only charge"), 1, "the same advice once")
	assert.NotContains(t, shown, "run: ")
	assert.NotRegexp(t, `(?m)^[a-z]+: [a-z]+: `, shown, "no chain of package prefixes")
}

func logText(r *rig) string {
	var s string
	onUIWait(func() { s = r.m.logv.plain() })
	return s
}

// TestAlreadyCorrectPartsAreNotWritten: the Boron's SoftDevice is already the one 4.1.0
// brings: its row is ticked "already correct" before Start, stays so through the run, and
// no step of the run touches it; the device ends with the same SoftDevice.
func TestAlreadyCorrectPartsAreNotWritten(t *testing.T) {
	r := newRunRig(t, 0)
	s := r.section("boron")
	r.pick(s, "4.1.0")
	var rows []string
	var states []rowState
	onUIWait(func() { rows, states = rowsNow(s.checklist) })
	correct := -1
	for i, row := range rows {
		if strings.HasPrefix(row, "softdevice | ") {
			correct = i
		}
	}
	require.GreaterOrEqual(t, correct, 0, "a SoftDevice row: %q", rows)
	assert.Equal(t, rowCorrect, states[correct])
	assert.Contains(t, rows[correct], "already correct")
	d := r.simOf("boron")
	radio := func() string {
		for _, m := range d.Modules() {
			if m.Function == platform.FuncRadio && m.Present {
				return fmt.Sprintf("%d/%x", m.Version, m.SHA256)
			}
		}
		return ""
	}
	before := radio()
	require.NotEmpty(t, before)
	r.tap(s.start)
	require.Contains(t, r.waitCard(s), "verified")
	onUIWait(func() {
		_, states = rowsNow(s.checklist)
		assert.Equal(t, rowCorrect, states[correct], "still ticked, never run")
		for _, e := range s.view.rec.Events {
			if e.Event == run.EvStep {
				assert.NotContains(t, strings.ToLower(e.StepID), "softdevice", "no step for the SoftDevice")
			}
		}
	})
	assert.Equal(t, before, radio(), "the same SoftDevice on the device")
}
