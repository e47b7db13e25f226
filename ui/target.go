package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/widget"

	cache "github.com/particle-flasher/particle-flasher/firmware-cache"
	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/modfile"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/state"
	"github.com/particle-flasher/particle-flasher/flasher/target"
)

// prepareTimeout bounds resolving a target (a download included) and reading the device.
const prepareTimeout = 10 * time.Minute

// targetSection is points 3 and 4 of the app for one device: pick a Device OS version from
// the catalog or local files, optionally an application and which parts to leave alone,
// see the plan the runner prepared, Start it, follow it (runView) and read the result.
// It lives as long as the window and is found again by device ID, so a run survives the
// device's re-enumeration and the person looking at another device.
type targetSection struct {
	m        *mainUI
	d        device.Device
	id       string
	releases []*cache.Release
	labels   []string

	picker     *widget.Select
	localBtn   *widget.Button
	localLabel *widget.Label
	localClear *widget.Button
	appBtn     *widget.Button
	appLabel   *widget.Label
	appClear   *widget.Button
	checks     []*partCheck

	status      *widget.Label
	download    *widget.ProgressBar
	downloadInf *widget.ProgressBarInfinite
	preview     *widget.Label
	resumeNote  *widget.Label
	// acceptSafe appears when the plan would end in safe mode: it names the reason, and
	// only ticking it lets Start run that plan (allowSafe).
	acceptSafe *widget.Check
	allowSafe  bool
	start      *widget.Button
	view       *runView
	obj        fyne.CanvasObject

	version string          // the catalog version chosen ("" when local files are)
	local   *modfile.Bundle // the local files' modules for this device's platform
	appName string
	appMod  *module.Module

	gen int // the latest preparation; older ones' results are dropped
	// prepMu makes preparations of this device take turns, and prepCancel ends the one
	// a newer choice replaces: two readings of one device at once would trip over each
	// other, and Start must not race the tail of an abandoned one.
	prepMu     sync.Mutex
	prepCancel context.CancelFunc
	prepared   *run.Prepared
	running    bool
	lastTgt    *plan.Target // the target of the last run, which Resume runs again
}

// partCheck is one "write this part" checkbox, shown only where the platform has the slot.
type partCheck struct {
	fn    platform.Function
	check *widget.Check
}

// releaseLabel names a release in the picker with its markings in words.
func releaseLabel(r *cache.Release) string {
	var tags []string
	if r.Latest {
		tags = append(tags, "latest")
	}
	if r.LatestLTS {
		tags = append(tags, "latest LTS")
	} else if r.LTS {
		tags = append(tags, "LTS")
	}
	if r.Prerelease {
		tags = append(tags, "prerelease")
	}
	if r.Deprecated {
		tags = append(tags, "deprecated")
	}
	if len(tags) == 0 {
		return r.Version
	}
	return r.Version + " (" + strings.Join(tags, ", ") + ")"
}

// newTargetSection builds the section for a device.
func newTargetSection(m *mainUI, d device.Device) *targetSection {
	t := &targetSection{m: m, d: d, id: runKey(d),
		status: widget.NewLabel(""), preview: widget.NewLabel(""), resumeNote: widget.NewLabel(""),
		download: widget.NewProgressBar(), downloadInf: widget.NewProgressBarInfinite(),
		localLabel: widget.NewLabel("No local files chosen."), appLabel: widget.NewLabel("No application: the device keeps its own (or gets the release's if its own cannot run).")}
	for _, l := range []*widget.Label{t.status, t.preview, t.resumeNote, t.localLabel, t.appLabel} {
		l.Wrapping = fyne.TextWrapWord
	}
	t.preview.TextStyle = fyne.TextStyle{Monospace: true}
	t.resumeNote.Importance = widget.WarningImportance
	t.download.Hide()
	t.downloadInf.Hide()
	t.downloadInf.Stop()
	t.view = newRunView(m)
	t.view.onResume = t.resume
	title := widget.NewLabelWithStyle("Upgrade, downgrade or rescue", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	if d.Platform == nil {
		t.obj = container.NewVBox(title, widget.NewLabel("The platform is unknown: the device cannot be planned for."))
		return t
	}
	if d.ID == "" {
		t.obj = container.NewVBox(title, widget.NewLabel("The device ID is unknown, so the device cannot be flashed: check its USB permissions (Settings > Permissions)."))
		return t
	}
	if cat, err := cache.Embedded(); err != nil {
		t.status.SetText("The firmware catalog cannot be read: " + errText(err) + "\nWhat to do: " + orWord(remedy.Of(err), "choose local files instead."))
	} else {
		t.releases = cat.Releases(d.Platform.Name) // newest first
	}
	for _, r := range t.releases {
		t.labels = append(t.labels, releaseLabel(r))
	}
	t.picker = widget.NewSelect(t.labels, func(s string) {
		for i, l := range t.labels {
			if l == s {
				t.chooseVersion(t.releases[i].Version)
				return
			}
		}
	})
	t.picker.PlaceHolder = "Choose a Device OS version..."
	t.localBtn = widget.NewButton("Local files...", t.openLocal)
	t.localClear = widget.NewButton("Clear", func() { t.setLocal(nil) })
	t.localClear.Hide()
	t.appBtn = widget.NewButton("Application...", t.openApp)
	t.appClear = widget.NewButton("Clear", func() { t.setApp("", nil) })
	t.appClear.Hide()
	t.start = widget.NewButton("Start", t.startRun)
	t.start.Importance = widget.HighImportance
	t.start.Disable()
	t.acceptSafe = widget.NewCheck("", func(on bool) {
		if on != t.allowSafe {
			t.allowSafe = on
			t.replan()
		}
	})
	t.acceptSafe.Hide()

	parts := container.NewHBox()
	for _, pc := range []struct {
		fn   platform.Function
		name string
	}{{platform.FuncBootloader, "Bootloader"}, {platform.FuncRadio, "SoftDevice"}, {platform.FuncNCP, "NCP"}} {
		if !hasSlot(d.Platform, pc.fn) {
			continue
		}
		c := widget.NewCheck(pc.name, func(bool) { t.replan() })
		c.SetChecked(true)
		t.checks = append(t.checks, &partCheck{fn: pc.fn, check: c})
		parts.Add(c)
	}
	var partsRow fyne.CanvasObject = container.NewVBox()
	if len(t.checks) > 0 {
		partsRow = container.NewVBox(widget.NewLabel("Write these parts when the target brings them:"), parts)
	}
	t.obj = container.NewVBox(title,
		widget.NewLabel("Target Device OS:"), t.picker,
		container.NewBorder(nil, nil, t.localBtn, t.localClear, t.localLabel),
		container.NewBorder(nil, nil, t.appBtn, t.appClear, t.appLabel),
		partsRow,
		t.status, t.download, t.downloadInf,
		t.preview, t.resumeNote, t.acceptSafe, t.start,
		t.view.obj)
	return t
}

// hasSlot: the platform has a slot of this function (so the checkbox means something).
func hasSlot(p *platform.Platform, fn platform.Function) bool {
	for _, s := range p.Slots {
		if s.Function == fn {
			return true
		}
	}
	return false
}

// virtual: the device is one of the window's simulated devices.
func (t *targetSection) virtual() bool {
	for _, dr := range t.d.Doors {
		if dr.Path == "virtual" {
			return true
		}
	}
	return false
}

// chooseVersion picks a catalog version; local files no longer apply.
func (t *targetSection) chooseVersion(v string) {
	t.forgetSafe()
	t.version = v
	t.local = nil
	t.localLabel.SetText("No local files chosen.")
	t.localClear.Hide()
	t.replan()
}

// setLocal uses local module files as the target instead of a catalog version.
func (t *targetSection) setLocal(local *modfile.Bundle) {
	t.forgetSafe()
	t.local = local
	if local == nil || len(local.Files) == 0 {
		t.localLabel.SetText("No local files chosen.")
		t.localClear.Hide()
	} else {
		t.localLabel.SetText(fmt.Sprintf("Local files: %s (%s)", local.Name, count(len(local.Files), "module")))
		t.localClear.Show()
		t.version = ""
		if t.picker != nil {
			t.picker.ClearSelected()
		}
	}
	t.replan()
}

func (t *targetSection) setApp(name string, m *module.Module) {
	t.forgetSafe()
	t.appName, t.appMod = name, m
	if m == nil {
		t.appLabel.SetText("No application: the device keeps its own (or gets the release's if its own cannot run).")
		t.appClear.Hide()
	} else {
		t.appLabel.SetText("Application: " + name)
		t.appClear.Show()
	}
	t.replan()
}

// openLocal adds a .bin module or a .zip bundle to the local target: one file per choice,
// since a release is often several .bin files.
func (t *targetSection) openLocal() {
	t.openModules(t.addLocal)
}

// addLocal adds what a chosen file holds for this device's platform to the local target.
func (t *targetSection) addLocal(b *modfile.Bundle) {
	if p := t.d.Platform; p != nil {
		var err error
		if b, err = b.For(p); err != nil {
			t.showError(err)
			return
		}
	}
	t.setLocal(modfile.Join(t.local, b))
}

func (t *targetSection) openApp() {
	t.openModules(func(b *modfile.Bundle) {
		name, mods := b.Name, b.Modules()
		if len(mods) != 1 || mods[0].Function != platform.FuncUser {
			t.showError(remedy.With(fmt.Errorf("%s is not one application", name), "Choose the application's .bin file (a user part)."))
			return
		}
		t.setApp(name, mods[0])
	})
}

// openModules shows the file dialog and loads what was chosen.
func (t *targetSection) openModules(use func(b *modfile.Bundle)) {
	d := dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err != nil {
			t.showError(remedy.With(err, "Choose the file again."))
			return
		}
		if r == nil {
			return // cancelled
		}
		defer r.Close()
		name := r.URI().Name()
		data, err := io.ReadAll(io.LimitReader(r, modfile.MaxFile+1))
		if err != nil {
			t.showError(remedy.With(fmt.Errorf("%s: %w", name, err), "Check the file's permissions."))
			return
		}
		b, err := modfile.Parse(name, data)
		if err != nil {
			t.showError(err)
			return
		}
		use(b)
	}, t.m.win)
	d.SetFilter(storage.NewExtensionFileFilter([]string{".bin", ".zip", ".hex"}))
	d.Show()
}

func (t *targetSection) showError(err error) {
	t.status.SetText(errorWords(err))
	t.status.Importance = widget.DangerImportance
	t.status.Refresh()
}

// errorWords is an error for people: what went wrong and what to do.
// errorWords is an error for people: what went wrong, without the wrapping chain, and
// what to do (never a command line: the app's remedies are the words alone).
func errorWords(err error) string {
	s := remedy.Human(err)
	if r := remedy.Of(err); r != "" {
		s += "\nWhat to do: " + upperFirst(r)
	}
	return s
}

func localName(b *modfile.Bundle) string {
	if b == nil {
		return ""
	}
	return b.Name
}

// targetSpec is what the person chose, copied for a worker.
type targetSpec struct {
	version   string
	local     *modfile.Bundle
	localName string
	app       *module.Module
	opts      plan.Options
	virtual   bool
	platform  *platform.Platform
}

func (t *targetSection) spec() (targetSpec, bool) {
	s := targetSpec{version: t.version, local: t.local, localName: localName(t.local), app: t.appMod,
		virtual: t.virtual() && !t.m.runs.SimsFromCache, platform: t.d.Platform}
	for _, pc := range t.checks {
		off := !pc.check.Checked
		switch pc.fn {
		case platform.FuncBootloader:
			s.opts.NoBootloader = off
		case platform.FuncRadio:
			s.opts.NoSoftDevice = off
		case platform.FuncNCP:
			s.opts.NoNCP = off
		}
	}
	s.opts.AllowSafeMode = t.allowSafe
	return s, s.version != "" || s.local != nil && len(s.local.Files) > 0 || s.app != nil
}

// replan prepares the plan for what is chosen now, unless a run is going on.
func (t *targetSection) replan() {
	if t.running {
		return
	}
	s, ok := t.spec()
	t.gen++
	t.prepared = nil
	t.start.Disable()
	t.resumeNote.SetText("")
	if !ok {
		t.preview.SetText("")
		t.status.SetText("")
		return
	}
	gen := t.gen
	t.setStatus("Reading the device and planning...")
	t.preview.SetText("")
	runner := t.m.runnerFor()
	ctx, cancel := t.newPrep()
	go func() {
		defer cancel()
		t.prepMu.Lock()
		defer t.prepMu.Unlock()
		tgt, err := t.resolve(ctx, s, gen)
		var pr *run.Prepared
		if err == nil {
			pr, err = t.prepare(ctx, runner, tgt)
		}
		onUI(func() {
			if gen != t.gen || t.running {
				return // the person chose something else meanwhile
			}
			t.showPrepared(pr, err)
		})
	}()
}

// prepare reads the device and plans, holding the device so that the watcher does not
// read it at the same time.
func (t *targetSection) prepare(ctx context.Context, runner *run.Runner, tgt plan.Target) (*run.Prepared, error) {
	release, err := t.m.hold(ctx, t.id)
	if err != nil {
		return nil, fmt.Errorf("waiting for the device to be free: %w", err)
	}
	defer release()
	return runner.Prepare(ctx, t.id, tgt)
}

// newPrep starts a preparation's context, ending the one it replaces.
func (t *targetSection) newPrep() (context.Context, context.CancelFunc) {
	if t.prepCancel != nil {
		t.prepCancel()
	}
	ctx, cancel := context.WithTimeout(t.m.ctx, prepareTimeout)
	t.prepCancel = cancel
	return ctx, cancel
}

// resolve turns the choice into module files with the engine's one resolver: a virtual
// device gets the release built from Particle's published headers (the demo has no
// internet to rely on), a real one the release from the firmware cache, downloaded with a
// bar if missing.
func (t *targetSection) resolve(ctx context.Context, s targetSpec, gen int) (plan.Target, error) {
	var src target.Source
	switch {
	case s.version == "":
	case s.virtual:
		src = demo.Source()
	default:
		c, err := cache.Open(t.downloadOptions(s, gen))
		if err != nil {
			return plan.Target{}, err
		}
		src = target.FromCache{Cache: c}
		onUI(func() {
			if gen == t.gen {
				t.setStatus("Getting Device OS " + s.version + " for the " + s.platform.DisplayName + " from the firmware cache...")
				t.download.SetValue(0)
				t.download.Show()
			}
		})
		defer onUI(func() { t.download.Hide() })
		defer onUI(func() { t.downloadInf.Stop(); t.downloadInf.Hide() })
	}
	tgt, err := target.Resolve(ctx, src, s.platform, target.Spec{Version: s.version, Files: s.local, AppModule: s.app, Options: s.opts})
	tgt.Options.Verify = verifyPref()
	return tgt, err
}

// downloadOptions are the cache's options with a progress callback that moves the
// download bar (or, with sizes unknown, says which file moves).
func (t *targetSection) downloadOptions(s targetSpec, gen int) cache.Options {
	co := cacheOptions()
	co.Progress = func(pg cache.Progress) {
		file := pg.File
		if pg.AllTotal <= 0 {
			// Sizes unknown (a partial catalog entry): say which file moves, without a bar
			// that would lie.
			onUI(func() {
				if gen == t.gen {
					t.download.Hide()
					t.downloadInf.Show()
					t.downloadInf.Start()
					t.setStatus("Downloading " + file + "...")
				}
			})
			return
		}
		f := float64(pg.AllDone) / float64(pg.AllTotal)
		onUI(func() {
			if gen == t.gen {
				t.download.SetValue(clamp01(f))
				t.setStatus("Downloading " + file + "...")
			}
		})
	}
	return co
}

func (t *targetSection) setStatus(s string) {
	t.status.Importance = widget.MediumImportance
	t.status.SetText(s)
}

// showPrepared shows the plan the runner prepared; Start executes exactly this one.
// forgetSafe drops an acceptance of a safe end: it was given for another choice.
func (t *targetSection) forgetSafe() {
	t.allowSafe = false
	t.acceptSafe.SetChecked(false)
	t.acceptSafe.Hide()
}

func (t *targetSection) showPrepared(pr *run.Prepared, err error) {
	var ends *plan.EndStateError
	if errors.As(err, &ends) && pr != nil && pr.Plan != nil {
		// The plan is made but ends where nobody said yes to: show it, with the reason,
		// and let the person accept exactly that.
		t.prepared = nil
		t.preview.SetText(pr.Plan.String())
		t.acceptSafe.SetText(fmt.Sprintf("Start anyway: the device will end in %s", ends.End))
		t.acceptSafe.Show()
		t.start.Show()
		t.start.Disable()
		t.setStatus(upperFirst(ends.End.String()) + " after this plan. Give an application, choose another version, or tick the box to accept it.")
		return
	}
	if err != nil {
		t.preview.SetText("")
		t.acceptSafe.Hide()
		if remedy.Of(err) == "" {
			// Every error shown says what to do; these are the usual causes here.
			err = remedy.With(err, "Check that the device is still plugged in and shown in the list; for a Device OS version, check the internet connection, or choose Local files.")
		}
		t.showError(err)
		return
	}
	t.prepared = pr
	t.setStatus("")
	if pr.Plan.End.Mode != state.ModeNormal && pr.Plan.End.Mode != state.ModeUnknown {
		t.acceptSafe.SetText(fmt.Sprintf("Start anyway: the device will end in %s", pr.Plan.End))
		t.acceptSafe.Show()
	}
	var b strings.Builder
	b.WriteString(pr.Plan.String())
	warn := []string{"Keep the USB cable in and the device powered until the result shows."}
	if hasNCPStep(pr.Plan) {
		warn = append(warn, "Updating the network coprocessor takes several minutes: the LED may stay magenta meanwhile.")
	}
	for _, w := range warn {
		b.WriteString("  ! " + w + "\n")
	}
	t.preview.SetText(b.String())
	switch {
	case pr.Journal != nil:
		t.resumeNote.SetText(fmt.Sprintf("An earlier run to %s stopped %s; Start finishes it.", pr.Journal.Target, pr.Journal.Where()))
	case pr.Other != nil:
		t.resumeNote.SetText(fmt.Sprintf("An earlier run to %s did not finish (it stopped %s); Start goes to %s instead.", pr.Other.Target, pr.Other.Where(), pr.Plan.To))
	}
	t.start.Show()
	if len(pr.Plan.Steps) == 0 {
		t.setStatus("Nothing to do: the device already has " + pr.Plan.To + ".")
		return
	}
	t.start.Enable()
}

func hasNCPStep(p *plan.Plan) bool {
	for _, s := range p.Steps {
		if s.Module != nil && s.Module.Function == platform.FuncNCP {
			return true
		}
	}
	return false
}

// startRun executes the prepared plan. The run's context ends with Cancel, the window,
// or a generous multiple of the plan's estimate.
func (t *targetSection) startRun() {
	pr := t.prepared
	if pr == nil || t.running {
		return
	}
	if t.m.held(pr.ID) {
		// The factory bench (or another window's run) is writing it: two writers would
		// interleave their DFU requests.
		t.showError(remedy.With(errors.New("this device is being flashed by the factory bench"),
			"Wait until its card in the Factory tab shows a result, or switch the bench off."))
		return
	}
	t.prepared = nil
	t.running = true
	tgt := pr.Target
	t.lastTgt = &tgt
	t.setInputs(false)
	t.start.Disable()
	t.start.Hide()
	ctx, cancel := context.WithTimeout(t.m.ctx, 10*pr.Plan.EstimatedDuration+30*time.Minute)
	name := orWord(pr.Plan.To, pr.Target.Name)
	t.view.begin(runRecord{DeviceID: pr.ID, Platform: platformName(t.d.Platform), Target: name, Before: pr.Plan.From,
		Started: time.Now()}, cancel)
	t.reveal()
	runner := t.m.runnerFor()
	go func() {
		defer cancel()
		var res *run.Result
		release, err := t.m.hold(ctx, pr.ID)
		if err == nil {
			res, err = runner.Execute(ctx, pr)
			release()
		}
		onUI(func() { t.finished(res, err) })
	}()
}

func (t *targetSection) finished(res *run.Result, err error) {
	t.running = false
	t.view.finish(res, err)
	t.setInputs(true)
	t.start.Hide() // a new choice prepares a new plan, and shows Start again
	t.resumeNote.SetText("")
	t.reveal()
}

// reveal scrolls the device panel down to the run view, which sits below the device's
// facts and modules, when this device is the one shown: a person who pressed Start wants
// to see the progress, not the module table.
func (t *targetSection) reveal() {
	p := t.m.panel
	if p == nil || p.shownKey == "" {
		return
	}
	if d, ok := t.m.devices[p.shownKey]; ok && runKey(d) == t.id {
		p.body.ScrollToBottom()
	}
}

// resume prepares the last run's target again (the runner reads the device afresh and
// finds its journal) and runs it at once: the person already agreed to this target.
func (t *targetSection) resume() {
	if t.lastTgt == nil || t.running {
		return
	}
	tgt := *t.lastTgt
	t.gen++
	gen := t.gen
	t.view.resumeBtn.Disable()
	t.setStatus("Reading the device again to finish the run...")
	runner := t.m.runnerFor()
	ctx, cancel := t.newPrep()
	go func() {
		defer cancel()
		t.prepMu.Lock()
		defer t.prepMu.Unlock()
		pr, err := t.prepare(ctx, runner, tgt)
		onUI(func() {
			t.view.resumeBtn.Enable()
			if gen != t.gen || t.running {
				return
			}
			t.showPrepared(pr, err)
			if err == nil && len(pr.Plan.Steps) > 0 {
				t.startRun()
			}
		})
	}()
}

// setInputs enables or disables the choices, which must not change under a run.
func (t *targetSection) setInputs(on bool) {
	var ws []fyne.Disableable
	if t.picker != nil {
		ws = append(ws, t.picker, t.localBtn, t.localClear, t.appBtn, t.appClear)
	}
	for _, pc := range t.checks {
		ws = append(ws, pc.check)
	}
	for _, w := range ws {
		if on {
			w.Enable()
		} else {
			w.Disable()
		}
	}
}
