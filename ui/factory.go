package ui

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	cache "github.com/particle-flasher/particle-flasher/firmware-cache"
	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/factory"
	"github.com/particle-flasher/particle-flasher/flasher/led"
	"github.com/particle-flasher/particle-flasher/flasher/modfile"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/target"
)

// factoryCardSize is one device card in the grid: room for a wrapped error and remedy.
var factoryCardSize = fyne.NewSize(330, 300)

// factoryView is the Factory tab: one target for every device, and a bench
// (flasher/factory) that flashes each device plugged in while the switch is on, several
// at once, with a card per device and a report row per unit. It only renders the bench's
// events; the bench decides what a new unit is.
type factoryView struct {
	m *mainUI

	versions []string
	labels   []string
	picker   *widget.Select
	app      *module.Module
	appLabel *widget.Label
	appBtn   *widget.Button
	appClear *widget.Button
	report   *widget.Entry
	reportBt *widget.Button
	on       *benchSwitch
	openRep  *widget.Button
	status   *widget.Label
	totals   *widget.Label
	grid     *fyne.Container
	obj      fyne.CanvasObject
	// records is the station, lot, operator and record store section (factory_records.go).
	records *factoryRecords

	cards map[string]*factoryCard // by device ID, lower case
	// cancel stops the bench; nil when it is off. gen tells a stopped bench's late
	// events from the next one's.
	cancel context.CancelFunc
	gen    int
}

// newFactoryView builds the tab; the versions offered are every Device OS release of the
// catalog, newest first (each unit gets that version's files for its own platform).
func newFactoryView(m *mainUI) *factoryView {
	f := &factoryView{m: m, cards: map[string]*factoryCard{},
		appLabel: widget.NewLabel("No application: each device keeps its own."),
		status:   widget.NewLabel("Choose the Device OS version, then switch the bench on."),
		totals:   widget.NewLabel(totalsWords(factory.Totals{})),
		report:   widget.NewEntry(),
		grid:     container.NewGridWrap(factoryCardSize),
	}
	f.status.Wrapping = fyne.TextWrapWord
	f.appLabel.Wrapping = fyne.TextWrapWord
	f.totals.TextStyle = fyne.TextStyle{Bold: true}
	if cat, err := cache.Embedded(); err != nil {
		f.status.SetText("The firmware catalog cannot be read: " + errText(err))
	} else {
		f.versions, f.labels = catalogVersions(cat)
	}
	f.picker = widget.NewSelect(f.labels, nil)
	f.picker.PlaceHolder = "Choose a Device OS version..."
	f.appBtn = widget.NewButton("Application...", f.openApp)
	f.appClear = widget.NewButton("Clear", func() { f.setApp("", nil) })
	f.appClear.Hide()
	f.report.SetText(defaultReportPath(m.opts.Demo))
	f.reportBt = widget.NewButton("Folder...", f.chooseReportDir)
	// Off when the tab opens: flashing every device on the bus must be a decision.
	f.on = newBenchSwitch(f.toggle)
	f.openRep = widget.NewButton("Open report", f.openReport)
	f.records = newFactoryRecords(m.win, func() string { return factoryStateDir(m.opts.Demo, m.runs.StateDir) })

	form := widget.NewForm(
		widget.NewFormItem("Device OS", f.picker),
		widget.NewFormItem("Application", container.NewBorder(nil, nil, nil, container.NewHBox(f.appBtn, f.appClear), f.appLabel)),
		widget.NewFormItem("Report (CSV)", container.NewBorder(nil, nil, nil, container.NewHBox(f.reportBt, f.openRep), f.report)),
	)
	intro := widget.NewLabel("Every device plugged in while the switch is on is brought to the chosen Device OS, " +
		"several at once, and gets a row in the report. A device that already has it is left alone.")
	intro.Wrapping = fyne.TextWrapWord
	// The switch, what the bench is doing and its totals stay in view; the settings and
	// the units' cards scroll under them, so the tab fits a small window.
	top := container.NewVBox(widget.NewLabelWithStyle("Factory bench", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		f.on, f.status, f.totals, widget.NewSeparator())
	f.obj = container.NewBorder(top, nil, nil, nil,
		container.NewVScroll(container.NewVBox(intro, form, f.records.obj, widget.NewSeparator(), f.grid)))
	return f
}

// catalogVersions lists every release in the catalog once, newest first, labelled with
// its markings as the device panel's picker does.
func catalogVersions(cat *cache.Catalog) (versions, labels []string) {
	seen := map[string]*cache.Release{}
	for _, p := range cat.Platforms() {
		for _, r := range cat.Releases(p) {
			if _, ok := seen[r.Version]; !ok {
				seen[r.Version] = r
			}
		}
	}
	for v := range seen {
		versions = append(versions, v)
	}
	sort.Slice(versions, func(i, j int) bool { return cache.CompareVersions(versions[j], versions[i]) < 0 })
	for _, v := range versions {
		labels = append(labels, releaseLabel(seen[v]))
	}
	return versions, labels
}

// defaultReportPath is where `pflash factory` also writes: the state directory's
// reports, one file a day (appended to, so a restarted bench keeps one report). The demo
// writes to the temporary directory instead: virtual units do not belong in the report of
// real ones.
func defaultReportPath(demo bool) string {
	if demo {
		return filepath.Join(os.TempDir(), "particle-flasher-demo", "factory-"+time.Now().Format("2006-01-02")+".csv")
	}
	dir, err := run.DefaultStateDir()
	if err != nil {
		if dir, err = os.UserHomeDir(); err != nil {
			dir = os.TempDir()
		}
	}
	return filepath.Join(dir, "reports", "factory-"+time.Now().Format("2006-01-02")+".csv")
}

func (f *factoryView) chooseReportDir() {
	d := dialog.NewFolderOpen(func(u fyne.ListableURI, err error) {
		if err != nil {
			showError(remedy.With(err, "Choose another folder."), f.m.win)
			return
		}
		if u == nil {
			return // cancelled
		}
		f.report.SetText(filepath.Join(u.Path(), filepath.Base(f.report.Text)))
	}, f.m.win)
	d.Show()
}

func (f *factoryView) openApp() {
	d := dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err != nil {
			showError(remedy.With(err, "Choose another file."), f.m.win)
			return
		}
		if r == nil {
			return // cancelled
		}
		name := r.URI().Name()
		data, rerr := readAll(r)
		if rerr != nil {
			showError(remedy.With(rerr, "Choose another file."), f.m.win)
			return
		}
		b, perr := modfile.Parse(name, data)
		var mods []*module.Module
		if perr == nil {
			mods = b.Modules()
		}
		if perr == nil && (len(mods) != 1 || mods[0].Function != platform.FuncUser) {
			perr = remedy.With(fmt.Errorf("%s is not one application", name), "Choose the application's .bin file (a user part).")
		}
		if perr != nil {
			showError(perr, f.m.win)
			return
		}
		f.setApp(name, mods[0])
	}, f.m.win)
	d.Show()
}

// readAll reads and closes a file the person chose.
func readAll(r fyne.URIReadCloser) ([]byte, error) {
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, modfile.MaxFile+1))
}

func (f *factoryView) setApp(name string, m *module.Module) {
	f.app = m
	if m == nil {
		f.appLabel.SetText("No application: each device keeps its own.")
		f.appClear.Hide()
		return
	}
	f.appLabel.SetText(name + " is installed on every device.")
	f.appClear.Show()
}

// setInputs locks the target while the bench runs: every unit of a session gets the same.
func (f *factoryView) setInputs(on bool) {
	f.records.setInputs(on)
	for _, w := range []fyne.Disableable{f.picker, f.appBtn, f.appClear, f.report, f.reportBt} {
		if on {
			w.Enable()
		} else {
			w.Disable()
		}
	}
}

// toggle is the switch: on starts a bench with the chosen target, off stops it (units
// being flashed stop at their next safe point, never between an erase and its write).
func (f *factoryView) toggle(on bool) {
	if !on {
		if f.cancel != nil {
			f.cancel()
			f.cancel = nil
			f.status.SetText("Stopping: devices being flashed finish their current step...")
		}
		return
	}
	if f.cancel != nil {
		return
	}
	i := f.picker.SelectedIndex()
	if i < 0 {
		f.status.SetText("Choose the Device OS version first.")
		f.on.SetChecked(false)
		return
	}
	if err := f.start(f.versions[i]); err != nil {
		f.status.SetText("The bench cannot start: " + errorWords(err))
		f.on.SetChecked(false)
	}
}

// openReport shows the report file in the desktop's own program for CSV files.
func (f *factoryView) openReport() {
	path := strings.TrimSpace(f.report.Text)
	if _, err := os.Stat(path); err != nil {
		showError(remedy.With(fmt.Errorf("there is no report at %s yet", path),
			"Switch the bench on: the report is written as the first unit finishes."), f.m.win)
		return
	}
	u, err := url.Parse("file://" + filepath.ToSlash(path))
	if err == nil {
		err = fyne.CurrentApp().OpenURL(u)
	}
	if err != nil {
		showError(remedy.With(err, "Open the file from its folder: "+filepath.Dir(path)), f.m.win)
	}
}

// start opens the report and runs the bench on a worker; its events come back through
// onUI. Virtual devices are flashed when the window shows the demo (the synthetic
// releases stand for the downloads), real ones otherwise: a bench is one or the other.
func (f *factoryView) start(version string) error {
	if (f.m.demoOn || f.m.opts.Demo) && strings.TrimSpace(f.report.Text) == defaultReportPath(false) {
		// Virtual units never go into the real report: the demo has its own folder.
		f.report.SetText(defaultReportPath(true))
	}
	path := strings.TrimSpace(f.report.Text)
	if path == "" {
		return remedy.With(fmt.Errorf("no report file"), "Give the CSV report's path.")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return remedy.With(err, "Choose a report folder you can write to.")
	}
	rep, err := factory.OpenReport(path)
	if err != nil {
		return remedy.With(err, "Choose a report folder you can write to.")
	}
	virtual := f.m.demoOn || f.m.opts.Demo
	var doors device.Bus
	var journal *run.Store
	if virtual {
		doors = f.m.sims
	} else {
		if f.m.runs.usb == nil {
			_ = rep.Close()
			return remedy.With(fmt.Errorf("USB is not available"), "Check that libusb is installed and the udev rule is in place (Settings > Permissions), then restart the app.")
		}
		doors = f.m.runs.usb
		dir := f.m.runs.StateDir
		if dir == "" {
			if dir, err = run.DefaultStateDir(); err != nil {
				_ = rep.Close()
				return err
			}
		}
		journal = &run.Store{Dir: dir}
	}
	rec, ro, err := f.records.open(f.m.ctx)
	if err != nil {
		_ = rep.Close()
		return err
	}
	app := f.app
	ctx, cancel := context.WithCancel(f.m.ctx)
	f.cancel = cancel
	f.gen++
	gen := f.gen
	f.setInputs(false)
	csvPath, _ := rep.Paths()
	f.status.SetText("Waiting for devices. Every device plugged in goes to Device OS " + version + ". Report: " + csvPath)
	o := factory.Options{
		Bus: doors,
		Target: func(ctx context.Context, p *platform.Platform) (plan.Target, error) {
			return factoryTarget(ctx, p, version, app, virtual)
		},
		Timeouts: f.m.runs.Timeouts,
		Journal:  journal,
		Report:   rep,
		Recorder: ro.Recorder, Station: ro.Station, Lot: ro.Lot, Operator: ro.Operator, Finished: ro.Finished, TargetName: version,
		// The device list must not read a unit the bench writes.
		Hold: f.m.hold,
		// The bench calls this from one goroutine at a time: through onUI the window sees
		// its events in the bench's order.
		Events: func(e factory.Event) {
			if f.m.ctx.Err() != nil {
				return // the window is closing
			}
			onUI(func() {
				if gen == f.gen {
					f.apply(e)
				}
			})
		},
	}
	go func() {
		tot, err := factory.Run(ctx, o)
		if cerr := rep.Close(); err == nil {
			err = cerr
		}
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if _, cerr := rec.Close(cctx); err == nil {
			err = cerr
		}
		ccancel()
		cancel()
		if f.m.ctx.Err() != nil {
			return // the window is closing: there is nothing left to show it on
		}
		onUI(func() {
			if gen != f.gen {
				return
			}
			f.cancel = nil
			f.on.SetChecked(false)
			f.setInputs(true)
			f.totals.SetText(totalsWords(tot))
			if err != nil {
				f.status.SetText("The bench stopped: " + errorWords(err))
				return
			}
			f.status.SetText("The bench is off. Report: " + csvPath)
		})
	}()
	return nil
}

// factoryTarget resolves the version for a unit's platform with the engine's one
// resolver: the releases built for virtual devices, the firmware cache (downloading what
// it lacks) for real ones. A platform that never got the version is refused for its units
// (naming its releases) while the others are flashed; the release's application comes
// along, for units whose own cannot run on the version.
func factoryTarget(ctx context.Context, p *platform.Platform, version string, app *module.Module, virtual bool) (plan.Target, error) {
	var src target.Source
	if virtual {
		src = demo.Source()
	} else {
		c, err := cache.Open(cacheOptions())
		if err != nil {
			return plan.Target{}, err
		}
		src = target.FromCache{Cache: c}
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	return target.Resolve(fctx, src, p, target.Spec{Version: version, AppModule: app, Options: plan.Options{Verify: verifyPref()}})
}

// apply renders one bench event.
func (f *factoryView) apply(e factory.Event) {
	f.totals.SetText(totalsWords(e.Totals))
	id := strings.ToLower(e.DeviceID)
	switch e.Kind {
	case factory.EvDuplicate:
		f.status.Importance = widget.WarningImportance
		f.status.SetText("Warning: " + e.Message)
		f.status.Refresh()
		return
	case factory.EvTotals:
		return
	}
	if id == "" {
		return
	}
	c, ok := f.cards[id]
	if !ok {
		c = newFactoryCard(f.m.anim, id, e.Platform)
		f.cards[id] = c
		f.grid.Add(c.obj)
	}
	c.apply(e)
	f.log(e)
}

// log notes the bench's units in the Log tab: plugged in, started, finished or failed.
func (f *factoryView) log(e factory.Event) {
	switch e.Kind {
	case factory.EvAttached:
		f.m.log(e.DeviceID, "Factory: plugged in.")
	case factory.EvStarted:
		f.m.log(e.DeviceID, "Factory: flashing started.")
	case factory.EvDetached:
		f.m.log(e.DeviceID, "Factory: unplugged.")
	case factory.EvFinished:
		if r := e.Record; r != nil {
			switch r.Result {
			case factory.ResultOK:
				f.m.log(e.DeviceID, "Factory: done, Device OS "+r.Before+" to "+r.After+".")
			case factory.ResultAlready:
				f.m.log(e.DeviceID, "Factory: already on Device OS "+r.After+".")
			default:
				f.m.log(e.DeviceID, "Factory: failed: "+remedy.HumanText(r.Error))
			}
		}
	case factory.EvRun:
		if e.Run != nil && e.Run.Event == run.EvFailed {
			f.m.log(e.DeviceID, "Factory: "+remedy.HumanText(e.Run.Error))
		}
	}
}

// totalsWords is the totals line.
func totalsWords(t factory.Totals) string {
	return fmt.Sprintf("%d ok · %d already · %d failed · %d running", t.OK, t.Already, t.Failed, t.Running)
}

// factoryCard is one device on the bench.
type factoryCard struct {
	title  *widget.Label
	step   *widget.Label
	bar    *widget.ProgressBar
	light  *ledLight
	led    *widget.Label
	ledRow *fyne.Container
	// result says how the unit ended and, when it failed, what to do: one label, so a
	// long error wraps as one text.
	result *widget.Label
	obj    fyne.CanvasObject
}

func newFactoryCard(a *animator, id, plat string) *factoryCard {
	c := &factoryCard{
		title:  widget.NewLabelWithStyle(factoryCardTitle(id, plat), fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		step:   widget.NewLabel("Plugged in"),
		bar:    widget.NewProgressBar(),
		light:  newLEDLight(14),
		led:    widget.NewLabel(""),
		result: widget.NewLabel(""),
	}
	for _, l := range []*widget.Label{c.step, c.led, c.result} {
		l.Wrapping = fyne.TextWrapWord
	}
	a.add(c.light)
	// The LED row shows only while the runner says what the LED should do.
	c.ledRow = container.NewBorder(nil, nil, container.NewCenter(c.light.box), nil, c.led)
	c.ledRow.Hide()
	// The result scrolls inside the card: a long error must neither overflow the grid
	// cell nor make the cards of one bench different sizes.
	c.obj = widget.NewCard("", "", container.NewBorder(container.NewVBox(c.title, c.step, c.bar, c.ledRow), nil, nil, nil,
		container.NewVScroll(c.result)))
	return c
}

// factoryCardTitle is "Boron e00fce68…": the platform and the start of the ID, which is
// what a person reads off the unit's sticker.
func factoryCardTitle(id, plat string) string {
	name := plat
	if p, ok := platform.ByName(plat); ok {
		name = p.DisplayName
	}
	if name == "" {
		name = "Device"
	}
	short := id
	if len(short) > 8 {
		short = short[:8] + "…"
	}
	return name + " " + short
}

func (c *factoryCard) apply(e factory.Event) {
	if e.Platform != "" {
		c.title.SetText(factoryCardTitle(strings.ToLower(e.DeviceID), e.Platform))
	}
	switch e.Kind {
	case factory.EvAttached:
		c.step.SetText("Plugged in: waiting for a free slot")
		c.bar.SetValue(0)
		c.result.SetText("")
	case factory.EvStarted:
		c.step.SetText("Starting...")
	case factory.EvRecorded:
		c.step.SetText("Finished on this station before the bench started")
	case factory.EvDetached:
		c.step.SetText("Unplugged")
		c.light.set(led.State{})
		c.led.SetText("")
		c.ledRow.Hide()
	case factory.EvRun:
		if e.Run != nil {
			c.run(*e.Run)
		}
	case factory.EvFinished:
		if e.Record != nil {
			c.finish(*e.Record)
		}
	}
}

// run renders one of the runner's events for this unit.
func (c *factoryCard) run(e run.Event) {
	switch e.Event {
	case run.EvPlan:
		if e.From != "" || e.To != "" {
			c.step.SetText("Device OS " + orWord(e.From, "none") + " to " + orWord(e.To, "?"))
		}
		c.bar.SetValue(clamp01(e.Fraction))
	case run.EvStep:
		c.step.SetText(fmt.Sprintf("Step %d of %d: %s", e.StepIndex, e.Steps, e.Title))
	case run.EvProgress:
		c.bar.SetValue(clamp01(e.Fraction))
	case run.EvWaiting:
		if e.Buttons {
			c.step.SetText("Needs a person: " + e.Waiting)
		}
	case run.EvRetry:
		c.step.SetText("Retrying: " + e.Error)
	}
	if e.LED != nil {
		st, ok := led.Parse(e.LED.Expect)
		if !ok {
			st = led.State{}
		}
		c.light.set(st)
		c.led.SetText("LED: " + orWord(e.LED.Expect, e.LED.Text))
		c.ledRow.Show()
	}
}

// finish shows the unit's result in words and colour.
func (c *factoryCard) finish(r factory.Record) {
	took := secondsWords(r.DurationSeconds)
	c.light.set(led.State{})
	c.led.SetText("")
	c.ledRow.Hide()
	switch r.Result {
	case factory.ResultOK:
		c.bar.SetValue(1)
		c.step.SetText("Done in " + took)
		c.result.SetText("OK: Device OS " + r.After + " (was " + r.Before + ")")
		c.result.Importance = widget.SuccessImportance
	case factory.ResultAlready:
		c.bar.SetValue(1)
		c.step.SetText("Nothing to do")
		c.result.SetText("Already on Device OS " + r.After)
		c.result.Importance = widget.HighImportance
	default:
		c.step.SetText("Stopped after " + took)
		c.result.SetText("Failed: " + r.Error + "\nWhat to do: " +
			orWord(r.Remedy, "unplug the device and plug it in again: it is flashed again."))
		c.result.Importance = widget.DangerImportance
	}
	if r.Plug > 1 {
		c.step.SetText(c.step.Text + fmt.Sprintf(" (plugged in %d times this session)", r.Plug))
	}
	c.result.Refresh()
	slog.Debug("factory unit finished", "device", r.DeviceID, "result", r.Result)
}
