package ui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/led"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// runState is what mainUI keeps for flashing: one runner for every device (it runs
// several at once), the doors it reaches them through, and each device's target section
// by device ID, so a run keeps its view when the device re-enumerates or another device
// is selected. Touched only on the UI thread.
type runState struct {
	runner  *run.Runner
	usb     *device.USB // the real devices, through the watcher's libusb host
	tempDir string      // journals of a demo-only window, removed at stop
	targets map[string]*targetSection

	// Timeouts, StateDir and FastSims tune the runner before its first use; tests set
	// them (short timeouts, a temp journal dir, the sims' host delays shortened).
	Timeouts run.Timeouts
	StateDir string
	FastSims bool
	// Clock, when set, is the runner's clock (run.Options.Clock): a test gives it a
	// virtual device's time.
	Clock func() time.Time
	// SimsFromCache makes virtual devices take Device OS from the firmware cache, as
	// hardware does, instead of the simulator's synthetic releases: tests of the download
	// path use it with a local mirror.
	SimsFromCache bool
}

// targetFor is the device panel's actions section: the device's target section, built
// once per device ID.
func (m *mainUI) targetFor(d device.Device) SectionParts {
	key := runKey(d)
	if m.runs.targets == nil {
		m.runs.targets = map[string]*targetSection{}
	}
	t, ok := m.runs.targets[key]
	// A section built while the platform was unknown only said so: build it again once
	// the device is known.
	if !ok || (t.picker == nil && !t.running && d.Platform != nil && d.ID != "") {
		t = newTargetSection(m, d)
		m.runs.targets[key] = t
	}
	t.d = d
	return SectionParts{body: t.obj, bar: t.bar}
}

// fix chooses the target a heal names for the device: the panel's fix buttons.
func (m *mainUI) fix(d device.Device, h plan.Heal) {
	t, ok := m.runs.targets[runKey(d)]
	if !ok || t.picker == nil || t.running {
		return
	}
	t.pickVersion(h.DeviceOS)
}

// running reports whether a run of the window is working on the device.
func (m *mainUI) running(d device.Device) bool {
	t, ok := m.runs.targets[runKey(d)]
	return ok && t.running
}

// runKey is the device ID as the runner spells it (lower case); the watcher's key when
// the ID is not known.
func runKey(d device.Device) string {
	if d.ID != "" {
		return strings.ToLower(d.ID)
	}
	return d.Key
}

// runnerFor returns the window's runner, creating it on first use, with every virtual
// device plugged in so far reachable.
// hold keeps the device watcher's module readings off the device with this ID while a run
// or the factory bench reads or writes it: a reading over DFU in the middle of a write
// leaves the DfuSe state machine where the writer does not expect it (ERASE "left the
// device in dfuUPLOAD_IDLE"). The release makes the watcher read the device afresh.
func (m *mainUI) hold(ctx context.Context, id string) (release func(), err error) {
	if m.watcher == nil || id == "" {
		return func() {}, nil
	}
	hctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return m.watcher.Hold(hctx, id)
}

// held reports whether a run or the bench is working on the device with this ID.
func (m *mainUI) held(id string) bool {
	return m.watcher != nil && id != "" && m.watcher.Held(id)
}

func (m *mainUI) runnerFor() *run.Runner {
	rs := &m.runs
	if rs.runner != nil {
		return rs.runner
	}
	dir := rs.StateDir
	if dir == "" && !m.opts.Demo {
		var err error
		if dir, err = run.DefaultStateDir(); err != nil {
			slog.Warn("no state directory for run journals; using a temporary one", "err", err)
			dir = ""
		}
	}
	if dir == "" {
		// A demo window keeps its journals apart from real devices' and drops them at exit.
		tmp, err := os.MkdirTemp("", "particle-flasher-journals-")
		if err != nil {
			slog.Warn("no temporary directory for run journals", "err", err)
		}
		rs.tempDir, dir = tmp, tmp
	}
	m.sims.SetFast(rs.FastSims)
	doors := m.bus()
	var store *run.Store
	if dir != "" {
		store = &run.Store{Dir: dir}
	}
	rs.runner = run.New(run.Options{Bus: doors, Journal: store, Timeouts: rs.Timeouts, Clock: rs.Clock,
		// The runner calls this synchronously and in order, from its own goroutines: each
		// event goes to the window through onUI, so the window sees them in that order.
		Events: func(e run.Event) { onUI(func() { m.runEvent(e) }) }})
	return rs.runner
}

// runEvent hands a runner event to the section of the device it is about.
func (m *mainUI) runEvent(e run.Event) {
	t, ok := m.runs.targets[strings.ToLower(e.DeviceID)]
	if ok {
		t.event(e)
	} else {
		slog.Debug("run event for a device without a view", "device", e.DeviceID, "event", e.Event)
	}
	m.logRunEvent(e, t)
}

// stopRuns removes a demo window's journals; the runs themselves end with m.ctx.
func (m *mainUI) stopRuns() {
	if m.runs.tempDir != "" {
		_ = os.RemoveAll(m.runs.tempDir)
	}
}

// bus is everything a runner reaches: the virtual devices and the real ones.
func (m *mainUI) bus() device.Bus {
	if m.runs.usb == nil {
		return device.Join(m.sims)
	}
	return device.Join(m.sims, m.runs.usb)
}

// runView shows one run beside the checklist: the LED the device should show now, in one
// line with its light, and what to do if it shows something else behind "Something
// else?"; what the runner waits for; and at the end the result card. The buttons that act
// on the run (Cancel, Resume, Save report) sit in the section's action bar. It only
// renders the runner's events.
type runView struct {
	m *mainUI

	led       *ledView
	ifNotBtn  *widget.Button
	ifNot     *widget.Label
	waiting   *widget.Label
	notice    *widget.Label
	cancelBtn *widget.Button
	live      *fyne.Container

	resTitle    *widget.Label
	resOS       *widget.Label
	resVerified *widget.Label
	resElapsed  *widget.Label
	resError    *widget.Label
	saveBtn     *widget.Button
	resumeBtn   *widget.Button
	card        *fyne.Container

	obj *fyne.Container

	rec    runRecord
	cancel context.CancelFunc
	// onResume prepares and runs the same target again (set by the target section).
	onResume func()
	// onChange tells the section the run view changed what the bar should offer.
	onChange func()
}

func newRunView(m *mainUI) *runView {
	v := &runView{m: m,
		led:         newLEDLine(m.anim),
		ifNot:       widget.NewLabel(""),
		waiting:     widget.NewLabel(""),
		notice:      widget.NewLabel(""),
		resTitle:    widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		resOS:       widget.NewLabel(""),
		resVerified: widget.NewLabel(""),
		resElapsed:  widget.NewLabel(""),
		resError:    widget.NewLabel(""),
	}
	for _, l := range []*widget.Label{v.ifNot, v.waiting, v.notice, v.resVerified, v.resError, v.resTitle} {
		l.Wrapping = fyne.TextWrapWord
	}
	v.resError.Importance = widget.DangerImportance
	v.cancelBtn = widget.NewButton("Cancel", v.cancelRun)
	v.saveBtn = widget.NewButton("Save report", v.saveReport)
	v.resumeBtn = widget.NewButton("Resume", func() {
		if v.onResume != nil {
			v.onResume()
		}
	})
	v.resumeBtn.Importance = widget.HighImportance
	v.ifNotBtn = widget.NewButton("Something else?", func() {
		if v.ifNot.Visible() {
			v.ifNot.Hide()
		} else {
			v.ifNot.Show()
		}
	})
	v.ifNotBtn.Importance = widget.LowImportance
	v.ifNot.Hide()
	v.live = container.NewVBox(container.NewBorder(nil, nil, nil, v.ifNotBtn, v.led.obj), v.ifNot, v.waiting, v.notice)
	v.card = container.NewVBox(widget.NewSeparator(), v.resTitle, v.resOS, v.resVerified, v.resElapsed, v.resError)
	v.live.Hide()
	v.card.Hide()
	v.cancelBtn.Hide()
	v.saveBtn.Hide()
	v.resumeBtn.Hide()
	v.obj = container.NewVBox(v.live, v.card)
	return v
}

// clearCard forgets a finished run's result: it belonged to the device as it was then.
func (v *runView) clearCard() {
	v.card.Hide()
	v.live.Hide()
	v.rec = runRecord{}
	v.obj.Refresh()
}

// begin shows the live part for a run that is about to start.
func (v *runView) begin(rec runRecord, cancel context.CancelFunc) {
	v.rec = rec
	v.cancel = cancel
	v.led.set(led.State{})
	v.led.words.SetText("The LED should be: as it is now, until the first step says otherwise")
	v.led.meaning.SetText("")
	setShown(v.ifNot, "")
	v.ifNotBtn.Hide()
	setShown(v.waiting, "")
	setShown(v.notice, "")
	v.cancelBtn.SetText("Cancel")
	v.cancelBtn.Enable()
	v.card.Hide()
	v.live.Show()
	v.obj.Refresh()
}

// cancelRun ends the run's context: the runner stops at its next safe point (never
// between an erase and its write) and reports the state it left the device in.
func (v *runView) cancelRun() {
	if v.cancel == nil {
		return
	}
	v.cancel()
	v.cancelBtn.Disable()
	v.cancelBtn.SetText("Stopping...")
	setShown(v.waiting, "Stopping at the next safe point: a write or restart in progress finishes first.")
}

// apply renders one runner event. Events arrive on the UI thread in the runner's order.
func (v *runView) apply(e run.Event) {
	v.rec.Events = append(v.rec.Events, e)
	switch e.Event {
	case run.EvPlan:
		v.rec.Steps = e.Steps
		if v.rec.Before == "" {
			v.rec.Before = e.From
		}
	case run.EvResume:
		setShown(v.notice, e.Message)
	case run.EvStep:
		setShown(v.waiting, "")
	case run.EvLED:
		v.showLED(e.LED)
	case run.EvWaiting:
		s := fmt.Sprintf("Waiting for %s (up to %s).", e.Waiting, secondsWords(e.TimeoutSeconds))
		if e.Buttons && e.Message != "" {
			s += "\n" + e.Message
		}
		setShown(v.waiting, s)
		if e.LED != nil {
			v.showLED(e.LED)
		}
	case run.EvStepDone:
		setShown(v.waiting, "")
	case run.EvRetry:
		setShown(v.notice, "Trying again: "+e.Message)
	case run.EvVerified:
		v.rec.Verified = true
		v.rec.VerifiedMsg = e.Message
	case run.EvFailed:
		v.rec.State = e.State
	case run.EvDone:
		v.rec.Result, v.rec.Error, v.rec.Remedy = e.Result, e.Error, e.Remedy
		if e.State != "" {
			v.rec.State = e.State
		}
		v.rec.Modules = e.Modules
		v.cancelBtn.Disable()
	}
}

// showLED shows the LED the device should show now as one line, in colour and in words;
// what to do if it shows something else is one click away, for this step only.
func (v *runView) showLED(g *run.LEDGuidance) {
	if g == nil {
		return
	}
	st, ok := led.Parse(g.Expect)
	if !ok {
		st = led.State{}
	}
	v.led.light.set(st)
	v.led.words.SetText("The LED should be: " + orWord(g.Expect, "unknown"))
	v.led.meaning.SetText(g.Text)
	var lines []string
	for _, r := range g.IfNot {
		lines = append(lines, "If it shows "+r.Seen+": "+r.Do)
	}
	v.ifNot.SetText(strings.Join(lines, "\n"))
	v.ifNot.Hide()
	if len(lines) > 0 {
		v.ifNotBtn.Show()
	} else {
		v.ifNotBtn.Hide()
	}
}

// finish shows the result card once Execute returned (after its done event).
func (v *runView) finish(res *run.Result, err error) {
	v.cancel = nil
	v.rec.Finished = time.Now()
	if res != nil && res.Reading != nil {
		v.rec.After = res.Reading.State.DeviceOSName()
	}
	if v.rec.After == "" {
		v.rec.After = osOfModules(v.rec.Modules)
	}
	if err != nil {
		if v.rec.Result == "" {
			v.rec.Result = run.ResultFailed
		}
		if v.rec.Error == "" {
			v.rec.Error, v.rec.Remedy = remedy.Human(err), remedy.Of(err)
		}
	}
	v.live.Hide()
	before, after := orWord(v.rec.Before, "unknown"), orWord(v.rec.After, "none")
	switch {
	case v.rec.Result == run.ResultOK:
		v.resOS.SetText("Device OS " + before + " to " + after)
	case before == after:
		v.resOS.SetText("The device still has Device OS " + before + ".")
	default:
		v.resOS.SetText("The device has Device OS " + after + " now (it had " + before + ").")
	}
	v.resElapsed.SetText("Took " + v.rec.Finished.Sub(v.rec.Started).Round(100*time.Millisecond).String())
	if v.rec.Result == run.ResultOK {
		v.resTitle.SetText("Done: the device runs Device OS " + after + ", verified.")
		v.resTitle.Importance = widget.SuccessImportance
		msg := "Verified: the device reports exactly the planned modules."
		if v.rec.VerifiedMsg != "" {
			msg = "Verified: " + v.rec.VerifiedMsg
		}
		if mods := modulesWords(v.rec.Modules); mods != "" {
			msg += "\nModules: " + mods
		}
		setShown(v.resVerified, msg)
		setShown(v.resError, "")
	} else {
		if errors.Is(err, run.ErrCancelled) {
			// One way on, named by its button.
			v.rec.Remedy = "Press Resume: the device is read again and only what is missing is written."
			v.resTitle.SetText("Cancelled: the run stopped at a safe point before reaching " + orWord(v.rec.Target, "the target") + ".")
		} else {
			v.resTitle.SetText("Failed: the device did not reach " + orWord(v.rec.Target, "the target") + ".")
		}
		v.resTitle.Importance = widget.DangerImportance
		setShown(v.resVerified, "Not verified.")
		s := "What went wrong: " + remedy.HumanText(v.rec.Error)
		if v.rec.State != "" {
			s += "\nNow: " + v.rec.State
		}
		if v.rec.Remedy != "" {
			s += "\nWhat to do: " + v.rec.Remedy
		}
		setShown(v.resError, s)
	}
	v.resTitle.Refresh()
	v.card.Show()
	v.obj.Refresh()
}

// saveReport asks where to write the run's JSON report.
func (v *runView) saveReport() {
	data, err := buildReport(v.rec)
	if err != nil {
		showError(remedy.With(err, "Try again; if it keeps failing, copy the result card instead."), v.m.win)
		return
	}
	d := dialog.NewFileSave(func(w fyne.URIWriteCloser, err error) {
		if err != nil {
			showError(remedy.With(err, "Choose another folder."), v.m.win)
			return
		}
		if w == nil {
			return // cancelled
		}
		_, werr := w.Write(data)
		if cerr := w.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			showError(remedy.With(werr, "Choose another folder, or check the disk has room."), v.m.win)
		}
	}, v.m.win)
	d.SetFileName(reportFileName(v.rec))
	d.Show()
}

// setShown sets a label's text and hides it while empty, so blank lines do not push the
// progress down.
func setShown(l *widget.Label, s string) {
	l.SetText(s)
	if s == "" {
		l.Hide()
	} else {
		l.Show()
	}
}

func clamp01(f float64) float64 {
	switch {
	case f < 0:
		return 0
	case f > 1:
		return 1
	}
	return f
}

func etaWords(sec float64) string {
	if sec <= 0 {
		return ""
	}
	return "About " + secondsWords(sec) + " left."
}

func secondsWords(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	if d < time.Second {
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func orWord(s, w string) string {
	if s == "" {
		return w
	}
	return s
}

// osOfModules is the Device OS a module list says the device runs (its system part's).
func osOfModules(mods []state.Module) string {
	for _, m := range mods {
		if m.Function == platform.FuncSystem && m.IsMain() && m.Present && m.DeviceOS != "" {
			return m.DeviceOS
		}
	}
	return ""
}

// modulesWords lists the main modules in one line ("system-part1 2302, user-part 6").
func modulesWords(mods []state.Module) string {
	var out []string
	for _, m := range mods {
		if m.Location != "main" || !m.Present {
			continue
		}
		name := m.Name
		if name == "" {
			name = fmt.Sprintf("%s %d", m.Function, m.Index)
		}
		out = append(out, fmt.Sprintf("%s %d", name, m.Version))
	}
	return strings.Join(out, ", ")
}
