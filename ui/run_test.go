//go:build ci

package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	cache "github.com/particle-flasher/particle-flasher/firmware-cache"
	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/modfile"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/sim/releases"
	"github.com/particle-flasher/particle-flasher/internal/testbundle"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// newRunRig is the demo window with its virtual devices at a time scale, and a runner
// with short timeouts and journals in a temp dir.
func newRunRig(t *testing.T, scale float64) *rig {
	t.Helper()
	test.NewTempApp(t)
	w := test.NewWindow(nil)
	var m *mainUI
	state := t.TempDir()
	onUIWait(func() {
		m = newMainUI(w, Options{Demo: true, DemoScale: scale}, demo.New(false), nil)
		m.runs.Timeouts = run.Timeouts{Find: 5 * time.Second, EnterMode: 5 * time.Second, Buttons: 2 * time.Second,
			Reenumerate: 5 * time.Second, Apply: 10 * time.Second, Step: 20 * time.Second, Settle: 3 * time.Second, EstimateFactor: -1}
		m.runs.StateDir = state
		m.runs.FastSims = true
		w.SetContent(m.content())
		w.Resize(fyne.NewSize(1100, 900))
	})
	t.Cleanup(func() {
		m.stop()
		_ = m.sims.Close()
		w.Close()
	})
	r := &rig{t: t, w: w, m: m}
	r.waitDemo()
	return r
}

// section selects the device of a platform and returns its target section.
func (r *rig) section(name string) *targetSection {
	r.t.Helper()
	d := r.selectPlatform(name)
	var t *targetSection
	onUIWait(func() { t = r.m.runs.targets[runKey(d)] })
	require.NotNil(r.t, t, name)
	return t
}

func (r *rig) simOf(name string) *sim.Device {
	for _, d := range r.m.sims.Devices() {
		if d.Platform().Name == name {
			return d
		}
	}
	r.t.Fatalf("no sim %s", name)
	return nil
}

// pick chooses a version in the section's picker as a person would (its option text
// starts with the version) and waits for the prepared plan and an enabled Start.
func (r *rig) pick(s *targetSection, version string) {
	r.t.Helper()
	var opt string
	onUIWait(func() {
		for _, o := range s.picker.Options {
			if o == version || strings.HasPrefix(o, version+" (") {
				opt = o
			}
		}
	})
	require.NotEmpty(r.t, opt, "version %s in the picker", version)
	onUIWait(func() { s.picker.SetSelected(opt) })
	r.eventually("Start enabled for "+version, func() bool { return !s.start.Disabled() && s.start.Visible() })
}

func (r *rig) tap(b *widget.Button) { onUIWait(func() { test.Tap(b) }) }

// planDetails opens the plan's Details disclosure, as a person who wants the reasons does,
// and returns what it shows.
func planDetails(r *rig, s *targetSection) string {
	onUIWait(func() { s.details.Open(0) })
	return r.text(s.details)
}

// waitCard waits for the result card.
func (r *rig) waitCard(s *targetSection) string {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		shown := false
		onUIWait(func() { shown = s.view.card.Visible() })
		if shown {
			return r.text(s.view.card)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("no result card; section shows:\n%s", r.text(s.obj))
	return ""
}

// rowsNow is the checklist as a person reads it: one "name | detail" line per row, with
// the row's state.
func rowsNow(c *checklist) (lines []string, states []rowState) {
	for _, r := range c.rows {
		lines = append(lines, r.name.Text+" | "+r.detail.Text)
		states = append(states, r.state)
	}
	return lines, states
}

// TestHealSafeModePhotonFromTheFix is acceptance 1a of the app a technician can follow:
// the safe-mode Photon is healed from the diagnosis' fix button; the plan is a checklist
// with what the device will be afterwards; during the run the rows go from "will write"
// to done in order, the overall bar and "Step i of N" agree, the LED is one line with the
// step's other cases one click away; the card says verified.
func TestHealSafeModePhotonFromTheFix(t *testing.T) {
	r := newRunRig(t, 0.05)
	s := r.section("photon")
	assert.Contains(t, r.text(r.m.panel.obj), "Safe mode: the application needs Device OS 2.3.1; system-part2 is 1.5.2.")
	var fix *widget.Button
	onUIWait(func() { fix = findButton(r.m.panel.fixes, "Upgrade to 2.3.1 to leave safe mode") })
	require.NotNil(t, fix, "the diagnosis offers the fix")
	r.tap(fix)
	r.eventually("Start enabled for 2.3.1", func() bool { return !s.start.Disabled() && s.start.Visible() })
	onUIWait(func() {
		assert.True(t, strings.HasPrefix(s.picker.Selected, "2.3.1"), "the picker shows the fix's version: %q", s.picker.Selected)
	})
	plan := r.text(s.obj)
	var rows []string
	onUIWait(func() { rows, _ = rowsNow(s.checklist) })
	assert.Contains(t, rows, "Enter DFU mode | ")
	assert.Contains(t, rows, "system-part2 | 1.5.2 to 2.3.1 · will write")
	assert.Contains(t, plan, "Afterwards: normal mode, Device OS 2.3.1")
	assert.Contains(t, plan, "Keep the USB cable in")
	for _, internal := range []string{"Plan.Expect", "DCT offset", "DROP_MODULE_INFO", "Why:"} {
		assert.NotContains(t, plan, internal, "the plan's internals stay behind Details")
	}
	var bar string
	onUIWait(func() { bar = walkedText(s.bar) })
	assert.Contains(t, bar, "Ready: Device OS 1.5.2 to 2.3.1")
	before, states := rowsNow(s.checklist)
	t.Logf("checklist:\n%s", strings.Join(before, "\n"))
	for _, st := range states {
		assert.Contains(t, []rowState{rowPending, rowCorrect}, st)
	}
	r.shot("plan-photon")
	r.tap(s.start)

	// Watch the run as a person would: each row's way, the overall bar, the LED line.
	type seenRow struct{ states []rowState }
	ways := make([]seenRow, len(before))
	var overall []float64
	var leds, summaries, waits []string
	var ifNot string
	seen := map[string]bool{}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		done := false
		onUIWait(func() {
			v := s.view
			for i, row := range s.checklist.rows {
				w := &ways[i]
				if n := len(w.states); n == 0 || w.states[n-1] != row.state {
					w.states = append(w.states, row.state)
				}
			}
			if n := len(overall); n == 0 || overall[n-1] != s.checklist.overall.Value {
				overall = append(overall, s.checklist.overall.Value)
			}
			if l := v.led.words.Text; l != "" && !seen["l"+l] {
				seen["l"+l] = true
				leds = append(leds, l)
			}
			if sm := s.checklist.summary.Text; !seen["s"+sm] {
				seen["s"+sm] = true
				summaries = append(summaries, fmt.Sprintf("%s @ %.2f", sm, s.checklist.overall.Value))
			}
			if w := v.waiting.Text; w != "" && v.waiting.Visible() && !seen["w"+w] {
				seen["w"+w] = true
				waits = append(waits, w)
			}
			if ifNot == "" && v.ifNotBtn.Visible() {
				assert.False(t, v.ifNot.Visible(), "the other cases stay closed until asked for")
				test.Tap(v.ifNotBtn)
				ifNot = v.ifNot.Text
				assert.True(t, v.ifNot.Visible())
			}
			done = v.card.Visible()
		})
		if done {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("summaries: %q", summaries)
	t.Logf("LED lines: %q", leds)
	assert.GreaterOrEqual(t, len(overall), 3, "the overall bar moved: %v", overall)
	assert.Contains(t, leds, "The LED should be: blinking yellow")
	assert.Contains(t, leds, "The LED should be: breathing cyan")
	assert.NotEmpty(t, ifNot, "Something else? opened the step's cases")
	assert.NotContains(t, ifNot, "\n\n", "only this step's cases")
	assert.Contains(t, strings.Join(waits, "\n"), "Waiting for ")
	// The rows were done in order: each went pending -> running -> done; correct parts
	// stayed ticked and were never written.
	lastDone := -1
	for i, w := range ways {
		switch w.states[0] {
		case rowCorrect:
			assert.Equal(t, []rowState{rowCorrect}, w.states, "row %q stays correct", before[i])
		case rowPending:
			assert.Equal(t, rowDone, w.states[len(w.states)-1], "row %q done: %v", before[i], w.states)
			assert.Greater(t, i, lastDone)
			lastDone = i
		}
	}
	// "Step i of N" agrees with the overall bar: step i starts at or after (i-1)/N... and
	// never behind a lower step.
	prevI := 0
	for _, sm := range summaries {
		var i, n int
		var f float64
		if _, err := fmt.Sscanf(sm, "Step %d of %d", &i, &n); err != nil {
			continue
		}
		_, _ = fmt.Sscanf(sm[strings.LastIndex(sm, "@ ")+2:], "%f", &f)
		assert.GreaterOrEqual(t, i, prevI, "steps go forward: %q", summaries)
		prevI = i
	}
	assert.Greater(t, prevI, 1)

	card := r.waitCard(s)
	assert.Contains(t, card, "verified")
	assert.Contains(t, card, "Device OS 1.5.2 to 2.3.1")
	assert.NotContains(t, card, "Failed")
	onUIWait(func() {
		assert.False(t, s.view.resumeBtn.Visible(), "no Resume after success")
		assert.True(t, s.view.saveBtn.Visible(), "Save report after a run")
	})
	d := r.simOf("photon")
	assert.Equal(t, sim.ModeNormal, d.Mode())
	assert.Equal(t, "2.3.1", d.SystemVersion())

	// The device panel follows: once the run lets go of the device the watcher reads it
	// again, and the safe-mode diagnosis gives way to the new Device OS.
	r.eventually("the panel to show Device OS 2.3.1 in normal mode", func() bool {
		p := r.m.panel
		return p.os.Text == "2.3.1" && !strings.Contains(p.mode.Text, "Safe") &&
			!strings.Contains(p.diagnosis.Text, "Safe mode")
	})
	// The result stays: it was made for the device as it is now.
	onUIWait(func() { assert.True(t, s.view.card.Visible(), "the result of the run stays") })

	// The report holds the run, every event included, and the log.
	var rec runRecord
	onUIWait(func() { rec = s.view.rec })
	b, err := buildReport(rec)
	require.NoError(t, err)
	var rep map[string]any
	require.NoError(t, json.Unmarshal(b, &rep))
	assert.Equal(t, "1.5.2", rep["device_os_before"])
	assert.Equal(t, "2.3.1", rep["device_os_after"])
	assert.Equal(t, true, rep["verified"])
	assert.Equal(t, "ok", rep["result"])
	evs, _ := rep["events"].([]any)
	require.NotEmpty(t, evs)
	assert.Equal(t, "done", evs[len(evs)-1].(map[string]any)["event"])
	logLines, _ := rep["log"].([]any)
	assert.NotEmpty(t, logLines, "the report includes the log")
	assert.Contains(t, reportFileName(rec), "pflash-Photon-")
	r.shot("run-photon-done")
}

// TestCancelThenResume is acceptance 1b: Cancel after the first step stops the run at a
// safe point, the card shows the device's state and Resume; Resume finishes the job.
func TestCancelThenResume(t *testing.T) {
	r := newRunRig(t, 0.1)
	s := r.section("boron")
	r.pick(s, "4.1.0")
	r.tap(s.start)
	r.eventually("the first step done", func() bool {
		for _, e := range s.view.rec.Events {
			if e.Event == run.EvStepDone {
				return true
			}
		}
		return false
	})
	r.tap(s.view.cancelBtn)
	card := r.waitCard(s)
	assert.Contains(t, card, "Cancelled: the run stopped at a safe point")
	assert.Contains(t, card, "Not verified")
	assert.Contains(t, card, "Now: The device")
	// Settled: the cancel let the Boron install the bootloader it had been sent.
	assert.Contains(t, card, "runs Device OS (normal mode)")
	assert.NotContains(t, card, "not on USB now")
	assert.Contains(t, card, "What to do:")
	assert.Contains(t, card, "What to do: Press Resume")
	var resume *widget.Button
	onUIWait(func() { resume = findButton(s.bar, "Resume") })
	require.NotNil(t, resume)
	onUIWait(func() { assert.True(t, resume.Visible()) })
	// The panel says what the device is now and what Resume will do, once.
	r.eventually("the Resume note", func() bool { return strings.Contains(s.resumeNote.Text, "left to reach 4.1.0") })
	r.shot("cancelled-boron")
	section := r.text(s.obj)
	assert.Contains(t, section, "Resume: ")
	assert.Equal(t, 1, strings.Count(section, "What to do"), "one piece of advice:\n%s", section)
	assert.NotContains(t, section, "4.1.0 to 4.1.0")
	d := r.simOf("boron")
	assert.NotEqual(t, "4.1.0", d.SystemVersion(), "cancelled before the end")

	r.tap(resume)
	r.eventually("the resumed run's result", func() bool {
		return s.view.card.Visible() && strings.Contains(s.view.resTitle.Text, "verified")
	})
	// The resumed run said it finished an earlier one.
	resumed := false
	onUIWait(func() {
		for _, e := range s.view.rec.Events {
			resumed = resumed || e.Event == run.EvResume
		}
	})
	assert.True(t, resumed, "the runner found the journal")
	assert.Equal(t, sim.ModeNormal, d.Mode())
	assert.Equal(t, "4.1.0", d.SystemVersion())
}

// TestEarlierRunNotedInPreview: after a cancelled run, choosing the same target again
// says where the earlier run stopped, and Start finishes it.
func TestEarlierRunNotedInPreview(t *testing.T) {
	r := newRunRig(t, 0.1)
	s := r.section("boron")
	r.pick(s, "4.1.0")
	r.tap(s.start)
	r.eventually("the first step done", func() bool {
		for _, e := range s.view.rec.Events {
			if e.Event == run.EvStepDone {
				return true
			}
		}
		return false
	})
	r.tap(s.view.cancelBtn)
	r.waitCard(s)
	// Another version, then the same one again: a new preview of the same target.
	r.pick(s, "2.3.1")
	onUIWait(func() {
		assert.Contains(t, s.resumeNote.Text, "An earlier run to 4.1.0 did not finish", "another target is warned about")
		assert.Contains(t, s.resumeNote.Text, "Start goes to 2.3.1 instead.")
	})
	r.pick(s, "4.1.0")
	var note string
	onUIWait(func() { note = s.resumeNote.Text })
	assert.Contains(t, note, "An earlier run to 4.1.0 stopped ")
	assert.Contains(t, note, "Start finishes it.")
	r.tap(s.start)
	r.eventually("the finished run", func() bool {
		return s.view.card.Visible() && strings.Contains(s.view.resTitle.Text, "verified")
	})
	assert.Equal(t, "4.1.0", r.simOf("boron").SystemVersion())
}

// TestRescueBlankArgon is acceptance 1c: the Argon in DFU mode with no system part is
// brought to a version and starts normally.
func TestRescueBlankArgon(t *testing.T) {
	r := newRunRig(t, 0)
	s := r.section("argon")
	r.pick(s, "4.1.0")
	assert.Contains(t, planDetails(r, s), "(rescue)")
	var rows []string
	onUIWait(func() { rows, _ = rowsNow(s.checklist) })
	assert.Contains(t, rows, "system-part1 | none to 4.1.0 · will write")
	r.tap(s.start)
	card := r.waitCard(s)
	assert.Contains(t, card, "verified", card)
	assert.Contains(t, card, "to 4.1.0")
	d := r.simOf("argon")
	assert.Equal(t, sim.ModeNormal, d.Mode())
	assert.Equal(t, "4.1.0", d.SystemVersion())
}

// TestFourRunsInOrderOnUIThread is acceptance 3: four devices flashed at once from the
// window; each device's events are rendered in the runner's order, and Fyne never reports
// a widget touched off its thread.
func TestFourRunsInOrderOnUIThread(t *testing.T) {
	var logBuf syncBuffer
	log.SetOutput(&logBuf)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	r := newRunRig(t, 0.02)
	// A fourth device: another Boron at 1.5.2.
	boron, _ := platform.ByName("boron")
	set, err := sim.SyntheticSet(boron, "1.5.2")
	require.NoError(t, err)
	extra, err := sim.New(sim.Options{Platform: boron, Modules: set, NoSerial: true, Scale: 0.02})
	require.NoError(t, err)
	r.m.sims.Add(extra)
	r.eventually("four devices", func() bool {
		if len(r.m.order) != 4 {
			return false
		}
		for _, k := range r.m.order {
			if r.m.devices[k].Modules == nil {
				return false
			}
		}
		return true
	})
	targets := map[string]string{}
	var sections []*targetSection
	var keys []string
	onUIWait(func() { keys = append(keys, r.m.order...) })
	for _, k := range keys {
		var name string
		onUIWait(func() {
			name = r.m.devices[k].Platform.Name
			r.m.selectKey(k)
		})
		var s *targetSection
		onUIWait(func() { s = r.m.runs.targets[runKey(r.m.devices[k])] })
		require.NotNil(t, s)
		v := map[string]string{"photon": "2.3.1", "boron": "4.1.0", "argon": "4.1.0"}[name]
		r.pick(s, v)
		r.tap(s.start)
		targets[s.id] = v
		sections = append(sections, s)
	}
	for _, s := range sections {
		card := r.waitCard(s)
		assert.Contains(t, card, "verified", "%s: %s", s.id, card)
	}
	for _, s := range sections {
		var evs []run.Event
		onUIWait(func() { evs = append(evs, s.view.rec.Events...) })
		var kinds []string
		lastStep := 0
		open := 0
		for i, e := range evs {
			kinds = append(kinds, e.Event)
			assert.Equal(t, s.id, e.DeviceID)
			if i > 0 {
				assert.False(t, e.Time.Before(evs[i-1].Time), "%s: event %d (%s) rendered before an earlier one", s.id, i, e.Event)
			}
			switch e.Event {
			case run.EvStep:
				assert.GreaterOrEqual(t, e.StepIndex, lastStep, "%s: step indexes go forward", s.id)
				lastStep, open = e.StepIndex, e.StepIndex
			case run.EvStepDone:
				assert.Equal(t, open, e.StepIndex, "%s: step-done for the step in progress", s.id)
			case run.EvProgress, run.EvLED, run.EvWaiting:
				if e.StepIndex != 0 {
					assert.Equal(t, lastStep, e.StepIndex, "%s: %s belongs to the step in progress", s.id, e.Event)
				}
			}
		}
		require.NotEmpty(t, kinds)
		assert.Equal(t, run.EvPlan, kinds[0], "%s: plan first: %v", s.id, kinds)
		assert.Equal(t, run.EvDone, kinds[len(kinds)-1], "%s: done last", s.id)
		assert.Contains(t, kinds, run.EvStep)
		assert.Contains(t, kinds, run.EvStepDone)
		assert.Contains(t, kinds, run.EvVerified)
	}
	for _, d := range r.m.sims.Devices() {
		assert.Equal(t, sim.ModeNormal, d.Mode(), d.Platform().Name)
		assert.Equal(t, targets[strings.ToLower(d.ID())], d.SystemVersion(), d.Platform().Name)
	}
	time.Sleep(100 * time.Millisecond) // a few animation frames
	assert.NotContains(t, logBuf.String(), "Error in Fyne call thread")
}

// TestPartCheckboxesFollowPlatform: the Photon offers Bootloader, the Boron Bootloader and
// SoftDevice, the Argon also NCP; unticking one plans without it (here refused, with what
// to do, since the new system part needs the new bootloader).
func TestPartCheckboxesFollowPlatform(t *testing.T) {
	r := newRunRig(t, 0)
	names := func(s *targetSection) []string {
		var out []string
		onUIWait(func() {
			for _, c := range s.checks {
				out = append(out, c.check.Text)
			}
		})
		return out
	}
	p := r.section("photon")
	assert.Equal(t, []string{"Bootloader"}, names(p))
	b := r.section("boron")
	assert.Equal(t, []string{"Bootloader", "SoftDevice"}, names(b))
	a := r.section("argon")
	assert.Equal(t, []string{"Bootloader", "SoftDevice", "NCP"}, names(a))

	b = r.section("boron")
	r.pick(b, "4.1.0")
	assert.Contains(t, planDetails(r, b), "Send bootloader 1200")
	onUIWait(func() { test.Tap(b.checks[0].check) })
	var status, preview string
	r.eventually("a new plan or a refusal", func() bool {
		status, preview = b.status.Text, b.preview.Text
		return strings.Contains(preview, "Steps:") || strings.Contains(status, "What to do:")
	})
	// Without the new bootloader the new system part cannot run: the planner refuses and
	// says what to do, and there is nothing to start.
	assert.Contains(t, status, "needs bootloader")
	assert.Contains(t, status, "What to do:")
	onUIWait(func() { assert.True(t, b.start.Disabled()) })
	onUIWait(func() { test.Tap(b.checks[0].check) })
	r.eventually("the full plan again", func() bool { return !b.start.Disabled() && strings.Contains(b.preview.Text, "Send bootloader") })
}

// TestVerifySettingReachesThePlan: the verification chosen in Settings is the one the
// plan (and so the run) uses.
func TestVerifySettingReachesThePlan(t *testing.T) {
	r := newRunRig(t, 0.05)
	s := r.section("photon")
	r.pick(s, "2.3.1")
	assert.NotContains(t, planDetails(r, s), "read back and compared", "the default checks the modules only")

	onUIWait(func() { fyne.CurrentApp().Preferences().SetString(prefVerify, verifyChoices[1].label) })
	r.pick(s, "2.3.0")
	r.pick(s, "2.3.1")
	assert.Contains(t, planDetails(r, s), "Every range written over DFU is also read back and compared.")
}

// TestDownloadShowsProgressAndFlashes: a device that is not covered by the simulator's
// releases (here a virtual one told to use the firmware cache, as hardware does) gets
// the real Device OS 2.3.1 files from a mirror, with the download bar moving and the
// status naming the file; they are verified into the cache and flashed.
func TestDownloadShowsProgressAndFlashes(t *testing.T) {
	rel := testshared.Dir(t, "firmware", "releases")
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		data, err := os.ReadFile(filepath.Join(rel, path.Base(req.URL.Path)))
		if err != nil {
			http.NotFound(w, req)
			return
		}
		requests.Add(1)
		// In pieces, so that the bar has something to show between 0 and 100%.
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		for i := 0; i < len(data); i += 32 << 10 {
			_, _ = w.Write(data[i:min(i+32<<10, len(data))])
			w.(http.Flusher).Flush()
			time.Sleep(5 * time.Millisecond)
		}
	}))
	t.Cleanup(srv.Close)
	cacheDir := t.TempDir()
	t.Setenv("PFLASH_CACHE_DIR", cacheDir)

	r := newRunRig(t, 0.05)
	onUIWait(func() {
		r.m.runs.SimsFromCache = true
		fyne.CurrentApp().Preferences().SetString(prefMirrors, srv.URL)
	})
	s := r.section("photon")
	var opt string
	onUIWait(func() {
		for _, o := range s.picker.Options {
			if strings.HasPrefix(o, "2.3.1") {
				opt = o
			}
		}
		s.picker.SetSelected(opt)
	})
	var bar []float64
	var statuses []string
	deadline := time.Now().Add(60 * time.Second)
	ready := false
	for !ready && time.Now().Before(deadline) {
		onUIWait(func() {
			if s.download.Visible() && (len(bar) == 0 || bar[len(bar)-1] != s.download.Value) {
				bar = append(bar, s.download.Value)
			}
			if st := s.status.Text; st != "" && (len(statuses) == 0 || statuses[len(statuses)-1] != st) {
				statuses = append(statuses, st)
			}
			ready = s.start.Visible() && !s.start.Disabled()
		})
		time.Sleep(2 * time.Millisecond)
	}
	require.True(t, ready, "no plan; statuses: %q", statuses)
	t.Logf("download bar: %v", bar)
	between := false
	for _, v := range bar {
		between = between || (v > 0 && v < 1)
	}
	assert.True(t, between, "the bar moved between 0 and 100%%: %v", bar)
	assert.Contains(t, strings.Join(statuses, "\n"), "Downloading photon-system-part1@2.3.1.bin")
	assert.GreaterOrEqual(t, int(requests.Load()), 3, "bootloader, system-part1, system-part2")

	r.tap(s.start)
	card := r.waitCard(s)
	assert.Contains(t, card, "verified")
	d := r.simOf("photon")
	assert.Equal(t, "2.3.1", d.SystemVersion())
	assert.Equal(t, sim.ModeNormal, d.Mode())
	// The real 2.3.1 system part, byte for byte from the mirror, is what the device runs.
	want, err := os.ReadFile(filepath.Join(rel, "photon-system-part1@2.3.1.bin"))
	require.NoError(t, err)
	wm, err := module.Parse(want)
	require.NoError(t, err)
	var found bool
	for _, m := range d.Modules() {
		found = found || (m.Present && m.Valid() && m.Size == uint32(len(want)) && bytes.Equal(m.SHA256, wm.SHA256))
	}
	assert.True(t, found, "photon-system-part1@2.3.1.bin is in the device's flash")
}

// TestSafeEndNeedsConsent: a plan that would leave the device in safe mode (4.1.0's Device
// OS files without an application, for a B SoM at 2.3.1 that has none) is shown with the reason, Start stays
// off until the box naming that reason is ticked, and nothing is written before.
func TestSafeEndNeedsConsent(t *testing.T) {
	r := newRunRig(t, 0)
	p, _ := platform.ByName("bsom")
	deviceOS := func(version string) ([][]byte, []*module.Module) {
		set, err := sim.SyntheticSet(p, version)
		require.NoError(t, err)
		var bins [][]byte
		var mods []*module.Module
		for _, b := range set {
			m, err := module.Parse(b)
			require.NoError(t, err)
			if m.Function != platform.FuncUser {
				bins = append(bins, b)
				mods = append(mods, m)
			}
		}
		return bins, mods
	}
	have, _ := deviceOS("2.3.1")
	_, mods := deviceOS("4.1.0")
	d, err := sim.New(sim.Options{Platform: p, Modules: have, NoSerial: true})
	require.NoError(t, err)
	r.m.sims.Add(d)
	r.eventually("the B SoM listed", func() bool { _, ok := r.device("bsom"); return ok })
	sec := r.section("bsom")
	onUIWait(func() { sec.setLocal(modfile.Of("bsom 4.1.0", mods...)) })
	r.eventually("the consent box", func() bool { return sec.acceptSafe.Visible() })
	onUIWait(func() {
		assert.Contains(t, sec.acceptSafe.Text, "safe mode: there is no application")
		assert.True(t, sec.start.Disabled(), "no Start before the person accepts")
		assert.Nil(t, sec.prepared)
	})
	onUIWait(func() { sec.acceptSafe.SetChecked(true) })
	r.eventually("Start enabled once accepted", func() bool { return !sec.start.Disabled() && sec.prepared != nil })
	onUIWait(func() {
		assert.True(t, sec.prepared.Target.Options.AllowSafeMode)
		assert.NotEmpty(t, sec.prepared.Plan.Steps)
		assert.Equal(t, "2.3.1", d.SystemVersion(), "nothing written yet")
	})
}

// TestLocalFilesTakeParticleBundles is the app's half of "every firmware file a person
// already has from Particle is accepted as it is": the Local files... button takes a
// Device Restore zip, a GitHub .binaries.zip and a whole-version zip with two platforms
// as they are; the preview says what each left out, and Start brings the Boron to 4.1.0.
func TestLocalFilesTakeParticleBundles(t *testing.T) {
	for _, shape := range testbundle.Shapes(t, "boron", "argon", "4.1.0") {
		t.Run(shape.Name, func(t *testing.T) {
			r := newRunRig(t, 0)
			s := r.section("boron")
			b, err := modfile.Parse(shape.Name, shape.Data)
			require.NoError(t, err)
			onUIWait(func() { s.addLocal(b) })
			r.eventually("Start enabled for the local files", func() bool { return !s.start.Disabled() && s.start.Visible() })
			preview := r.text(s.obj) + planDetails(r, s)
			assert.Contains(t, preview, "Device OS 1.5.2 -> 4.1.0")
			assert.Contains(t, preview, "Local files: "+shape.Name)
			for _, n := range shape.Notes {
				assert.Contains(t, preview, n)
			}
			r.tap(s.start)
			card := r.waitCard(s)
			assert.Contains(t, card, "verified", card)
			d := r.simOf("boron")
			assert.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
			assert.Equal(t, "4.1.0", d.SystemVersion())
		})
	}
	t.Run("another platform's files", func(t *testing.T) {
		r := newRunRig(t, 0)
		s := r.section("photon")
		b, err := modfile.Parse("boron.zip", testbundle.Shapes(t, "boron", "argon", "4.1.0")[0].Data)
		require.NoError(t, err)
		onUIWait(func() { s.addLocal(b) })
		onUIWait(func() {
			assert.Contains(t, s.status.Text, "boron.zip holds no module for the Photon: its modules are built for the Boron")
			assert.NotContains(t, s.status.Text, "no plan")
			assert.Nil(t, s.local, "nothing taken")
		})
	})
}

// TestProtectedDeviceInTheApp is the app's half of acceptance 2 of "Device OS 5.x and 6.x
// devices as they are in the field": a B SoM at 6.3.4 with Device Protection on is shown as
// protected, and choosing a version gives the refusal in words (protection, Service Mode and
// the way there, the 6.1.1 floor) with Start off; nothing is written.
func TestProtectedDeviceInTheApp(t *testing.T) {
	r := newRunRig(t, 0)
	p, _ := platform.ByName("bsom")
	cat, err := cache.Embedded()
	require.NoError(t, err)
	rel, err := cat.Release("6.3.4", "bsom")
	require.NoError(t, err)
	set, err := releases.Build(rel)
	require.NoError(t, err)
	mods, err := sim.Protect(p, set.Bytes(true))
	require.NoError(t, err)
	d, err := sim.New(sim.Options{Platform: p, Modules: mods, NoSerial: true})
	require.NoError(t, err)
	require.True(t, d.Protected())
	r.m.sims.Add(d)
	r.eventually("the B SoM listed", func() bool { _, ok := r.device("bsom"); return ok })
	sec := r.section("bsom")
	onUIWait(func() { r.m.panel.more.Open(0) })
	r.eventually("protection shown", func() bool {
		return strings.Contains(walkedText(r.m.panel.obj), "Protected (Device Protection is on)")
	})
	var opt string
	onUIWait(func() {
		for _, o := range sec.picker.Options {
			if strings.HasPrefix(o, "6.3.4") {
				opt = o
			}
		}
		sec.picker.SetSelected(opt)
	})
	r.eventually("the refusal", func() bool { return strings.Contains(sec.status.Text, "Device Protection") })
	onUIWait(func() {
		assert.Contains(t, sec.status.Text, "Service Mode")
		assert.Contains(t, sec.status.Text, "6.1.1")
		assert.Contains(t, sec.status.Text, "Particle Console")
		assert.NotContains(t, sec.status.Text, "particle device-protection", "no command line in the app")
		assert.True(t, sec.start.Disabled() || !sec.start.Visible(), "no Start for a protected device")
	})
	assert.True(t, d.Protected())
	assert.Equal(t, 0, d.Status().Resets)
}

// TestDemoPaceIsWatchable is acceptance 3 of the app a technician can follow: the demo's
// Photon heal at the default demo pace gives each mode change seconds on screen (the
// virtual device takes a real device's time to restart, and the LED line stays until the
// next step), and the time left, once the run is past half, never promises an end more
// than a second after the plan's estimate.
//
// The runner's clock is the virtual Photon's own (the device time it has charged), so
// what is measured is the device's time, which the demo's pace (scale 1) turns into as
// much time on screen; a busy machine only adds to it.
func TestDemoPaceIsWatchable(t *testing.T) {
	r := newRunRig(t, DefaultDemoScale)
	photon := r.simOf("photon")
	require.NotNil(t, photon)
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	onUIWait(func() {
		r.m.runs.FastSims = false // the host waits as it would for hardware
		r.m.runs.Timeouts = run.Timeouts{}
		r.m.runs.Clock = func() time.Time { return epoch.Add(photon.Meter().Charged()) }
	})
	s := r.section("photon")
	r.pick(s, "2.3.1")
	r.tap(s.start)
	card := r.waitCard(s)
	require.Contains(t, card, "verified", card)
	var evs []run.Event
	onUIWait(func() { evs = append(evs, s.view.rec.Events...) })
	var start, end time.Time
	var estimate float64
	type shown struct {
		led  string
		from time.Time
	}
	var leds []shown
	for _, e := range evs {
		switch e.Event {
		case run.EvPlan:
			start, estimate = e.Time, e.EstimateSeconds
		case run.EvLED, run.EvWaiting:
			if e.LED != nil && (len(leds) == 0 || leds[len(leds)-1].led != e.LED.Expect) {
				leds = append(leds, shown{e.LED.Expect, e.Time})
			}
		}
		end = e.Time
	}
	took := end.Sub(start)
	t.Logf("heal took %s of device time; plan estimate %.1f s", took.Round(10*time.Millisecond), estimate)
	for i, l := range leds {
		until := end
		if i+1 < len(leds) {
			until = leds[i+1].from
		}
		t.Logf("LED %-22q shown for %s", l.led, until.Sub(l.from).Round(10*time.Millisecond))
		if i+1 < len(leds) {
			// Every LED line before the last is a mode the device is put in: it takes the
			// device seconds to get there and the line stays meanwhile.
			assert.GreaterOrEqual(t, until.Sub(l.from), 2*time.Second, "LED %q readable", l.led)
		}
	}
	assert.GreaterOrEqual(t, len(leds), 2)
	for _, e := range evs {
		if e.Event != run.EvProgress && e.Event != run.EvStepDone || e.Fraction < 0.5 || e.ETASeconds == 0 {
			continue
		}
		elapsed := e.Time.Sub(start).Seconds()
		assert.LessOrEqual(t, elapsed+e.ETASeconds, estimate+1,
			"at %.0f%%, %.1f s in, %.1f s left would end after the plan's %.1f s", 100*e.Fraction, elapsed, e.ETASeconds, estimate)
	}
}
