//go:build ci

package ui

import (
	"encoding/csv"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim"

	cache "github.com/particle-flasher/particle-flasher/firmware-cache"
)

// factoryTab opens the Factory tab as a person does, by its title, and returns its
// content.
func (r *rig) factoryTab() fyne.CanvasObject {
	r.t.Helper()
	var content fyne.CanvasObject
	onUIWait(func() {
		for _, it := range r.m.tabs.Items {
			if it.Text == "Factory" {
				r.m.tabs.Select(it)
				content = it.Content
			}
		}
	})
	require.NotNil(r.t, content, "a Factory tab")
	return content
}

// seen is the text visible under o, including checks, drop-downs and cards.
func (r *rig) seen(o fyne.CanvasObject) string {
	var s string
	onUIWait(func() { s = visibleText(o) })
	return s
}

// findIn returns the first visible widget of type T under o that ok accepts.
func findIn[T fyne.CanvasObject](o fyne.CanvasObject, ok func(T) bool) T {
	var found T
	var hit bool
	walkObjects(o, func(c fyne.CanvasObject) bool {
		if x, is := c.(T); is && ok(x) {
			found, hit = x, true
		}
		return !hit
	})
	return found
}

// TestFactoryBenchFlashesEveryDevice: the three demo devices plus a Boron that already
// runs the target are plugged in; with 2.3.1 chosen and the switch on, every card ends
// with its result, a unit plugged in later is flashed too, the totals add up, the report
// has a row per unit, and the virtual devices really run 2.3.1.
func TestFactoryBenchFlashesEveryDevice(t *testing.T) {
	var logBuf syncBuffer
	log.SetOutput(&logBuf)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	r := newRunRig(t, 0)

	boron, _ := platform.ByName("boron")
	set, err := sim.SyntheticSet(boron, "2.3.1")
	require.NoError(t, err)
	current, err := sim.New(sim.Options{Platform: boron, Modules: set, NoSerial: true})
	require.NoError(t, err)
	r.m.sims.Add(current)
	r.eventually("four devices listed", func() bool { return len(r.m.order) == 4 })

	tab := r.factoryTab()
	txt := r.seen(tab)
	assert.Contains(t, txt, "The bench is OFF")
	assert.Contains(t, txt, "0 ok · 0 already · 0 failed · 0 running")

	var picker *widget.Select
	var sw *benchSwitch
	var report *widget.Entry
	onUIWait(func() {
		picker = findIn(tab, func(*widget.Select) bool { return true })
		sw = findIn(tab, func(*benchSwitch) bool { return true })
		report = findIn(tab, func(*widget.Entry) bool { return true })
	})
	require.NotNil(t, picker)
	require.NotNil(t, sw)
	require.NotNil(t, report)
	onUIWait(func() {
		assert.False(t, sw.Checked, "off by default")
		assert.True(t, strings.HasSuffix(report.Text, ".csv"), report.Text)
	})

	// Switching on without a version says so and stays off.
	onUIWait(func() { test.Tap(sw) })
	onUIWait(func() { assert.False(t, sw.Checked) })
	assert.Contains(t, r.seen(tab), "Choose the Device OS version first.")

	csvPath := filepath.Join(t.TempDir(), "bench.csv")
	onUIWait(func() {
		report.SetText(csvPath)
		choice := ""
		for _, o := range picker.Options {
			if o == "2.3.1" || strings.HasPrefix(o, "2.3.1 (") {
				choice = o
			}
		}
		require.NotEmpty(t, choice, "2.3.1 offered")
		picker.SetSelected(choice)
		test.Tap(sw)
	})
	r.eventually("every unit finished", func() bool {
		return strings.Contains(visibleText(tab), "3 ok · 1 already · 0 failed · 0 running")
	})
	r.shot("factory")

	// A unit put on the bench while it runs is flashed too.
	argon, _ := platform.ByName("argon")
	late, err := sim.New(sim.Options{Platform: argon, Blank: true, NoSerial: true})
	require.NoError(t, err)
	r.m.sims.Add(late)
	r.eventually("the late Argon finished", func() bool {
		return strings.Contains(visibleText(tab), "4 ok · 1 already · 0 failed · 0 running")
	})

	txt = r.seen(tab)
	assert.Equal(t, 2, strings.Count(txt, "OK: Device OS 2.3.1 (was 1.5.2)"), txt)
	assert.Equal(t, 2, strings.Count(txt, "OK: Device OS 2.3.1 (was none)"), "the blank Argons")
	assert.Contains(t, txt, "Already on Device OS 2.3.1")
	assert.NotContains(t, txt, "Failed:")
	assert.Equal(t, 5, strings.Count(txt, "Done in ")+strings.Count(txt, "Nothing to do"))
	for _, d := range r.m.sims.Devices() {
		assert.Contains(t, txt, factoryCardTitle(d.ID(), d.Platform().Name))
		assert.Equal(t, sim.ModeNormal, d.Mode(), d.Platform().Name)
		assert.Equal(t, "2.3.1", d.SystemVersion(), d.Platform().Name)
	}

	// The report has one row per unit, written as each finished.
	f, err := os.Open(csvPath)
	require.NoError(t, err)
	rows, err := csv.NewReader(f).ReadAll()
	_ = f.Close()
	require.NoError(t, err)
	require.Len(t, rows, 6, "header and five units")
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	require.Contains(t, col, "device_id")
	require.Contains(t, col, "result")
	results := map[string]string{}
	for _, row := range rows[1:] {
		results[row[col["device_id"]]] = row[col["result"]]
	}
	for _, d := range r.m.sims.Devices() {
		want := "ok"
		if d == current {
			want = "already"
		}
		assert.Equal(t, want, results[d.ID()], d.Platform().Name)
	}
	_, err = os.Stat(strings.TrimSuffix(csvPath, ".csv") + ".jsonl")
	assert.NoError(t, err, "the JSON-lines twin")

	// Off stops the bench; the target can be changed again.
	onUIWait(func() { test.Tap(sw) })
	r.eventually("the bench off", func() bool { return strings.Contains(visibleText(tab), "The bench is off") })
	onUIWait(func() { assert.False(t, picker.Disabled()) })
	assert.NotContains(t, logBuf.String(), "Error in Fyne call thread")
}

func TestVersionLess(t *testing.T) {
	for _, c := range []struct {
		a, b string
		less bool
	}{
		{"2.3.1", "4.1.0", true},
		{"4.1.0", "2.3.1", false},
		{"4.0.0-alpha.1", "4.0.0", true},
		{"4.0.0", "4.0.0-alpha.1", false},
		{"1.5.2", "1.5.10", true},
		{"5.0.0", "5.0.0", false},
	} {
		assert.Equal(t, c.less, cache.CompareVersions(c.a, c.b) < 0, "%s < %s", c.a, c.b)
	}
}

// TestFactoryBenchShowsFailureInWords: a Boron that never comes back from its reset into
// DFU mode fails its card with the error and what to do, in the danger colour, while the
// others reach the target.
func TestFactoryBenchShowsFailureInWords(t *testing.T) {
	r := newRunRig(t, 0)
	for _, d := range r.m.sims.Devices() {
		if d.Platform().Name == "boron" {
			d.FailReenumeration(true)
		}
	}
	// A lost device is waited for (and retried) before it counts as failed: shorten it.
	onUIWait(func() { r.m.runs.Timeouts.Reenumerate, r.m.runs.Timeouts.Apply = 2*time.Second, 2*time.Second })
	tab := r.factoryTab()
	var picker *widget.Select
	var sw *benchSwitch
	var report *widget.Entry
	onUIWait(func() {
		picker = findIn(tab, func(*widget.Select) bool { return true })
		sw = findIn(tab, func(*benchSwitch) bool { return true })
		report = findIn(tab, func(*widget.Entry) bool { return true })
	})
	csvPath := filepath.Join(t.TempDir(), "bench.csv")
	onUIWait(func() {
		report.SetText(csvPath)
		for _, o := range picker.Options {
			if o == "2.3.1" || strings.HasPrefix(o, "2.3.1 (") {
				picker.SetSelected(o)
			}
		}
		require.NotEmpty(t, picker.Selected, "2.3.1 offered")
		test.Tap(sw)
	})
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(r.seen(tab), "2 ok · 0 already · 1 failed · 0 running") {
		require.True(t, time.Now().Before(deadline), "every unit finished; visible text:\n%s", r.seen(tab))
		time.Sleep(50 * time.Millisecond)
	}
	txt := r.seen(tab)
	assert.Equal(t, 1, strings.Count(txt, "Failed: "), txt)
	assert.Contains(t, txt, "What to do: ")
	var failed *widget.Label
	onUIWait(func() {
		failed = findIn(tab, func(l *widget.Label) bool { return strings.HasPrefix(l.Text, "Failed: ") })
		require.NotNil(t, failed)
		assert.Equal(t, widget.DangerImportance, failed.Importance)
	})
	for _, d := range r.m.sims.Devices() {
		if d.Platform().Name == "boron" {
			assert.NotEqual(t, "2.3.1", d.SystemVersion(), "the Boron never got there")
			continue
		}
		assert.Equal(t, "2.3.1", d.SystemVersion(), d.Platform().Name)
	}
	r.shot("factory-failed")
}
