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
	"github.com/particle-flasher/particle-flasher/flasher/words"
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
	// checklist is the plan as rows a person follows; preview the plan's own words behind
	// the Details disclosure; endLine what the device will be afterwards.
	checklist  *checklist
	preview    *widget.Label
	details    *widget.Accordion
	endLine    *widget.Label
	resumeNote *widget.Label
	localRow   *fyne.Container
	appRow     *fyne.Container
	// acceptSafe appears when the plan would end in safe mode: it names the reason, and
	// only ticking it lets Start run that plan (allowSafe).
	acceptSafe *widget.Check
	allowSafe  bool
	start      *widget.Button
	view       *runView
	obj        fyne.CanvasObject
	// bar is the section's action bar (pinned under the panel): Start, Cancel, Resume and
	// Save report, with a one-line state.
	bar       fyne.CanvasObject
	barStatus *widget.Label

	version string          // the catalog version chosen ("" when local files are)
	local   *modfile.Bundle // the local files' modules for this device's platform
	appName string
	appMod  *module.Module

	gen int // the latest preparation; older ones' results are dropped
	// preselected: the diagnosis' fix was offered once; the person's choices win after.
	preselected bool
	// gone: the device left USB since the basis was read; its next reading is news.
	gone bool
	// basis is the fingerprint of the device a shown plan or result was made for.
	basis string
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
		status: widget.NewLabel(""), preview: widget.NewLabel(""), resumeNote: widget.NewLabel(""), endLine: widget.NewLabel(""),
		download: widget.NewProgressBar(), downloadInf: widget.NewProgressBarInfinite(), checklist: newChecklist(),
		localLabel: widget.NewLabel(""), appLabel: widget.NewLabel(""), barStatus: widget.NewLabel("")}
	for _, l := range []*widget.Label{t.status, t.preview, t.resumeNote, t.localLabel, t.appLabel, t.endLine} {
		l.Wrapping = fyne.TextWrapWord
	}
	t.barStatus.Truncation = fyne.TextTruncateEllipsis
	t.status.Hide()
	t.resumeNote.Hide()
	t.preview.TextStyle = fyne.TextStyle{Monospace: true}
	t.resumeNote.Importance = widget.WarningImportance
	t.download.Hide()
	t.downloadInf.Hide()
	t.downloadInf.Stop()
	t.view = newRunView(m)
	t.view.onResume = t.resume
	t.details = widget.NewAccordion(widget.NewAccordionItem("Details: every step, why, and how it is written", t.preview))
	t.details.Hide()
	t.start = widget.NewButton("Start", t.startRun)
	t.start.Importance = widget.HighImportance
	t.start.Disable()
	t.bar = container.NewBorder(widget.NewSeparator(), nil, nil,
		container.NewHBox(t.view.saveBtn, t.view.resumeBtn, t.view.cancelBtn, t.start), t.barStatus)
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
		setShown(t.status, "The firmware catalog cannot be read: "+errText(err)+"\nWhat to do: "+orWord(remedy.Of(err), "choose local files instead."))
	} else {
		for _, r := range cat.Releases(d.Platform.Name) { // newest first
			// Nothing older than the platform's first Device OS is offered.
			if target.BeforeFirst(d.Platform, r.Version) == nil {
				t.releases = append(t.releases, r)
			}
		}
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
	t.appBtn = widget.NewButton("Application...", t.openApp)
	t.appClear = widget.NewButton("Clear", func() { t.setApp("", nil) })
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
	options := widget.NewAccordion()
	if len(t.checks) > 0 {
		options.Append(widget.NewAccordionItem("Options: parts to write when the target brings them",
			container.NewVBox(widget.NewLabel("Untick a part to leave it as it is on the device."), parts)))
	}
	t.localRow = container.NewBorder(nil, nil, nil, t.localClear, t.localLabel)
	t.appRow = container.NewBorder(nil, nil, nil, t.appClear, t.appLabel)
	t.localRow.Hide()
	t.appRow.Hide()
	pick := container.NewBorder(nil, nil, widget.NewLabel("Target:"), container.NewHBox(t.localBtn, t.appBtn), t.picker)
	// The run's LED line and its result come before the checklist, so they are in view
	// without scrolling while the rows tick below.
	t.obj = container.NewVBox(title, pick, t.localRow, t.appRow, options,
		t.status, t.download, t.downloadInf, t.view.obj,
		t.checklist.obj, t.endLine, t.acceptSafe, t.resumeNote, t.details)
	t.showBar()
	t.preselect()
	return t
}

// preselect chooses, once, the version the diagnosis names as the way out of safe mode,
// so the plan for the fix is ready when the person looks: they still press Start.
func (t *targetSection) preselect() {
	if t.preselected || t.picker == nil || t.running || t.version != "" || t.local != nil || t.d.Modules == nil {
		return
	}
	t.preselected = true
	if t.d.Boot.Mode != state.ModeSafe {
		return
	}
	for _, h := range plan.Heals(t.d.Reading) {
		if h.Kind == plan.HealUpgrade && h.DeviceOS != "" {
			t.pickVersion(h.DeviceOS)
			return
		}
	}
}

// deviceChanged is the watcher's news of this device. A plan or a result belongs to the
// device as it was read for it: when a fresh reading says the device is no longer that
// (another mode, other modules, flashed by the factory bench) or it was unplugged and
// plugged in again, the stale plan and result go and the plan is made again for what it is
// now. Only readings count: an event that carries the last known modules (a device coming
// back before it is read) says nothing new. A run's own restarts are its business.
func (t *targetSection) deviceChanged(d device.Device, kind device.EventKind) {
	if kind == device.Disappeared {
		t.gone = !t.running
		return
	}
	t.d = d
	if t.running || t.m.held(t.id) || d.Modules == nil {
		return
	}
	if !t.preselected {
		t.basis = fingerprint(d.Reading, d.Mode)
		t.preselect()
		return
	}
	if kind != device.ModulesRead {
		return
	}
	now := fingerprint(d.Reading, d.Mode)
	if t.basis == "" {
		// The first reading since a run let go of the device: what its result is about.
		t.basis, t.gone = now, false
		return
	}
	if !t.gone && now == t.basis {
		return
	}
	t.basis, t.gone = now, false
	if t.view.card.Visible() {
		t.view.clearCard()
		t.m.log(t.id, "The device changed since the last run: its result is cleared.")
	}
	if t.prepared != nil || t.checklist.obj.Visible() {
		t.m.log(t.id, "The device changed: planning again for what it is now.")
		t.replan()
	}
	t.showBar()
}

// fingerprint says what a plan or a result was made for: the mode and which modules the
// device has, by function, index and version.
func fingerprint(st state.Device, mode state.Mode) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|", mode)
	for _, m := range st.Modules {
		if m.IsMain() {
			fmt.Fprintf(&b, "%s/%d/%d/%t;", m.Function, m.Index, m.Version, m.Present)
		}
	}
	return b.String()
}

// pickVersion chooses a catalog version in the picker as a person would (the panel's fix
// buttons): the plan is prepared for it.
func (t *targetSection) pickVersion(v string) {
	for i, r := range t.releases {
		if r.Version == v {
			t.picker.SetSelected(t.labels[i])
			return
		}
	}
	t.chooseVersion(v)
}

// showBar shows the buttons that apply now and a line saying where things stand: Start
// with a ready plan; Cancel during a run; Resume and Save report after one.
func (t *targetSection) showBar() {
	v := t.view
	switch {
	case t.running:
		t.start.Hide()
		v.cancelBtn.Show()
		v.resumeBtn.Hide()
		v.saveBtn.Hide()
	default:
		v.cancelBtn.Hide()
		if t.start.Disabled() {
			t.start.Hide()
		} else {
			t.start.Show()
		}
		v.saveBtn.Hidden = !v.card.Visible()
		v.resumeBtn.Hidden = !(v.card.Visible() && v.rec.Result != run.ResultOK && t.lastTgt != nil)
		v.saveBtn.Refresh()
		v.resumeBtn.Refresh()
	}
	if t.bar != nil {
		t.bar.Refresh()
	}
}

// setBarStatus is the bar's one line.
func (t *targetSection) setBarStatus(s string) { t.barStatus.SetText(s) }

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
func (t *targetSection) virtual() bool { return isVirtual(t.d) }

// chooseVersion picks a catalog version; local files no longer apply.
func (t *targetSection) chooseVersion(v string) {
	t.forgetSafe()
	t.version = v
	t.local = nil
	t.localRow.Hide()
	t.replan()
}

// setLocal uses local module files as the target instead of a catalog version.
func (t *targetSection) setLocal(local *modfile.Bundle) {
	t.forgetSafe()
	t.local = local
	if local == nil || len(local.Files) == 0 {
		t.localRow.Hide()
	} else {
		t.localLabel.SetText(fmt.Sprintf("Local files: %s (%s)", local.Name, words.Count(len(local.Files), "module")))
		t.localRow.Show()
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
		t.appRow.Hide()
	} else {
		t.appLabel.SetText("Application: " + name + " (installed after Device OS)")
		t.appRow.Show()
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
	setShown(t.status, errorWords(err))
	t.status.Importance = widget.DangerImportance
	t.status.Refresh()
	t.setBarStatus("Nothing to start: see the message above.")
}

// clearPlan forgets the prepared plan and what showed it.
func (t *targetSection) clearPlan() {
	t.prepared = nil
	t.start.Disable()
	t.checklist.clear()
	t.preview.SetText("")
	t.details.Hide()
	t.endLine.SetText("")
	t.endLine.Hide()
	setShown(t.resumeNote, "")
	t.showBar()
}

// errorWords is an error for people: what went wrong and what to do.
// errorWords is an error for people: what went wrong, without the wrapping chain, and
// what to do (never a command line: the app's remedies are the words alone).
func errorWords(err error) string {
	s := remedy.Human(err)
	if r := remedy.Of(err); r != "" {
		s += "\nWhat to do: " + words.UpperFirst(r)
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
	t.clearPlan()
	t.view.clearCard()
	if !ok {
		setShown(t.status, "")
		t.setBarStatus("Choose a Device OS version or local files to see the plan.")
		return
	}
	gen := t.gen
	t.basis = fingerprint(t.d.Reading, t.d.Mode)
	t.setStatus("Reading the device and planning...")
	t.setBarStatus("Planning...")
	t.inBackground(gen, func(ctx context.Context, runner *run.Runner) (*run.Prepared, error) {
		tgt, err := t.resolve(ctx, s, gen)
		if err != nil {
			return nil, err
		}
		return t.prepare(ctx, runner, tgt)
	}, nil, t.showPrepared)
}

// inBackground reads the device and plans off the UI thread, one preparation at a time
// (prepMu), then hands the outcome to fresh on the UI thread, unless the person chose
// something else meanwhile (gen moved on) or a run started. always, when not nil, runs on
// the UI thread either way, first.
func (t *targetSection) inBackground(gen int, work func(context.Context, *run.Runner) (*run.Prepared, error),
	always func(), fresh func(*run.Prepared, error)) {
	runner := t.m.runnerFor()
	ctx, cancel := t.newPrep()
	go func() {
		defer cancel()
		t.prepMu.Lock()
		defer t.prepMu.Unlock()
		pr, err := work(ctx, runner)
		onUI(func() {
			if always != nil {
				always()
			}
			if gen != t.gen || t.running {
				return
			}
			fresh(pr, err)
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
	setShown(t.status, s)
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
		t.showPlan(pr)
		t.prepared = nil
		t.acceptSafe.SetText(fmt.Sprintf("Start anyway: the device will end in %s", ends.End))
		t.acceptSafe.Show()
		t.start.Disable()
		t.setStatus(words.UpperFirst(ends.End.String()) + " after this plan. Give an application, choose another version, or tick the box to accept it.")
		t.setBarStatus("Not ready: the device would end in " + ends.End.Mode.String() + " mode.")
		t.showBar()
		return
	}
	if err != nil {
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
	t.showPlan(pr)
	if pr.Plan.End.Mode != state.ModeNormal && pr.Plan.End.Mode != state.ModeUnknown {
		t.acceptSafe.SetText(fmt.Sprintf("Start anyway: the device will end in %s", pr.Plan.End))
		t.acceptSafe.Show()
	}
	switch {
	case pr.Journal != nil:
		setShown(t.resumeNote, fmt.Sprintf("An earlier run to %s stopped %s; Start finishes it.", pr.Journal.Target, pr.Journal.Where()))
	case pr.Other != nil:
		setShown(t.resumeNote, fmt.Sprintf("An earlier run to %s did not finish (it stopped %s); Start goes to %s instead.", pr.Other.Target, pr.Other.Where(), pr.Plan.To))
	}
	if len(pr.Plan.Steps) == 0 {
		t.setStatus("Nothing to do: the device already has " + pr.Plan.To + ".")
		t.setBarStatus("Nothing to do.")
		t.showBar()
		return
	}
	t.start.Enable()
	t.setBarStatus(fmt.Sprintf("Ready: Device OS %s to %s, %s, about %s.", pr.Plan.From, pr.Plan.To, words.Count(t.checklist.todo, "step"),
		secondsWords(pr.Plan.EstimatedDuration.Seconds())))
	t.showBar()
}

// showPlan shows a prepared plan: the checklist, what the device will be afterwards, the
// warnings in words, and the plan's own words behind Details.
func (t *targetSection) showPlan(pr *run.Prepared) {
	var st state.Device
	if pr.Reading != nil {
		st = pr.Reading.State
	}
	t.checklist.show(pr.Plan, st)
	end := fmt.Sprintf("Afterwards: %s mode, Device OS %s", pr.Plan.End.Mode, orWord(pr.Plan.Predicted.DeviceOSName(), pr.Plan.To))
	if mods := modulesWords(pr.Plan.Predicted.Effective()); mods != "" {
		end += " (" + mods + ")"
	}
	end += "."
	var notes []string
	for _, w := range pr.Plan.Warnings {
		notes = append(notes, "• "+w)
	}
	if hasNCPStep(pr.Plan) {
		notes = append(notes, "• Updating the network coprocessor takes several minutes: the LED may stay magenta meanwhile.")
	}
	notes = append(notes, "• Keep the USB cable in and the device powered until the result shows.")
	t.endLine.SetText(end + "\n" + strings.Join(notes, "\n"))
	t.endLine.Show()
	t.preview.SetText(pr.Plan.String())
	t.details.Show()
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
	t.acceptSafe.Hide()
	setShown(t.resumeNote, "")
	ctx, cancel := context.WithTimeout(t.m.ctx, 10*pr.Plan.EstimatedDuration+30*time.Minute)
	name := orWord(pr.Plan.To, pr.Target.Name)
	t.view.begin(runRecord{DeviceID: pr.ID, Platform: platformName(t.d.Platform), Target: name, Before: pr.Plan.From,
		Started: time.Now()}, cancel)
	t.setBarStatus("Starting...")
	t.showBar()
	t.m.refresh() // the panel's fix buttons go while the device is being changed
	t.m.log(pr.ID, fmt.Sprintf("Run started: Device OS %s to %s, %s.", pr.Plan.From, name, words.Count(t.checklist.todo, "step")))
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

// event follows the run in the checklist and the bar.
func (t *targetSection) event(e run.Event) {
	t.view.apply(e)
	t.checklist.apply(e)
	switch e.Event {
	case run.EvStep:
		t.setBarStatus(fmt.Sprintf("%s · %s", strings.TrimSuffix(t.checklist.summary.Text, "."), etaShort(t.checklist, e)))
	case run.EvProgress:
		if eta := etaWords(e.ETASeconds); eta != "" {
			t.setBarStatus(strings.TrimSuffix(t.checklist.summary.Text, ".") + " · " + eta)
		}
	}
}

func etaShort(c *checklist, e run.Event) string {
	if e.ETASeconds > 0 {
		return etaWords(e.ETASeconds)
	}
	return fmt.Sprintf("%d%% done", int(100*c.overall.Value))
}

func (t *targetSection) finished(res *run.Result, err error) {
	t.running = false
	t.basis = ""
	t.view.finish(res, err)
	t.setInputs(true)
	setShown(t.resumeNote, "")
	switch {
	case t.view.rec.Result == run.ResultOK:
		t.setBarStatus("Done: Device OS " + orWord(t.view.rec.After, "?") + ", verified.")
		// What was shown is done: a new choice prepares a new plan.
		t.start.Disable()
		t.endLine.Hide()
		t.details.Hide()
	default:
		t.setBarStatus("Stopped before the target: Resume finishes it.")
		t.start.Disable()
		t.prepareResumeNote()
	}
	t.m.log(t.id, t.view.rec.logLine())
	if t.m.logv != nil {
		t.view.rec.Log = t.m.logv.since(t.id, t.view.rec.Started)
	}
	t.showBar()
}

// prepareResumeNote reads the device as it is now and says what Resume will do.
func (t *targetSection) prepareResumeNote() {
	if t.lastTgt == nil {
		return
	}
	tgt := *t.lastTgt
	t.inBackground(t.gen, func(ctx context.Context, runner *run.Runner) (*run.Prepared, error) {
		return t.prepare(ctx, runner, tgt)
	}, nil, func(pr *run.Prepared, err error) {
		if err != nil || pr == nil || pr.Plan == nil {
			return
		}
		now := "the device is now in " + pr.Reading.Mode.String() + " mode"
		if v := pr.Reading.State.DeviceOSName(); v != "" {
			now += " with Device OS " + v
		}
		t.checklist.show(pr.Plan, pr.Reading.State)
		setShown(t.resumeNote, words.UpperFirst(now)+". Resume: "+words.Count(t.checklist.todo, "step")+" left to reach "+pr.Plan.To+".")
	})
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
	t.inBackground(gen, func(ctx context.Context, runner *run.Runner) (*run.Prepared, error) {
		return t.prepare(ctx, runner, tgt)
	}, t.view.resumeBtn.Enable, func(pr *run.Prepared, err error) {
		t.showPrepared(pr, err)
		if err == nil && len(pr.Plan.Steps) > 0 {
			t.startRun()
		}
	})
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
