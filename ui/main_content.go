package ui

import (
	"context"
	"fmt"
	"image/color"
	"log/slog"
	"runtime"
	"sort"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// ActionsFunc builds the part of the device panel that acts on a device: the target
// picker, the plan as a checklist and the run (body), and the buttons that act (bar).
type ActionsFunc func(d device.Device) SectionParts

// SectionParts are the two places a device's actions go in its panel.
type SectionParts struct {
	body, bar fyne.CanvasObject
}

// mainUI is the window's state. Every field is touched only on the UI thread; workers
// send their changes through onUI.
type mainUI struct {
	win     fyne.Window
	opts    Options
	anim    *animator
	sims    *demo.Bus
	actions ActionsFunc

	devices map[string]device.Device
	order   []string // keys, in the order devices first appeared
	selKey  string
	demoOn  bool

	tabs     *container.AppTabs
	list     *widget.List
	left     *fyne.Container
	listBox  fyne.CanvasObject
	empty    fyne.CanvasObject
	status   *widget.Label
	banner   fyne.CanvasObject // the demo banner, shown while virtual devices are in use
	panel    *devicePanel
	wizard   *wizard
	settings *settingsView
	logv     *logView

	// watcher follows the devices; runs and the factory bench hold the devices they write
	// (watcher.Hold) so that it does not read them meanwhile.
	watcher *device.Watcher

	ctx    context.Context // ends with the window: every worker started for it stops then
	cancel context.CancelFunc
	done   chan struct{}

	runs runState // the runner and each device's target section (run.go)
}

// newMainUI builds the window content and starts the device watcher over the given doors
// plus sims, the in-process door the demo devices are plugged into.
func newMainUI(w fyne.Window, opts Options, sims *demo.Bus, doors []device.Door) *mainUI {
	m := &mainUI{win: w, opts: opts, anim: newAnimator(), sims: sims, devices: map[string]device.Device{}}
	m.actions = opts.Actions
	if m.actions == nil {
		m.actions = m.targetFor
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.status = widget.NewLabel("")
	m.panel = newDevicePanel(m)
	m.wizard = newWizard(m)
	m.settings = newSettingsView(w)
	m.logv = newLogView(m)
	m.list = widget.NewList(
		func() int { return len(m.order) },
		func() fyne.CanvasObject { return newDeviceRow(m.anim) },
		func(i widget.ListItemID, o fyne.CanvasObject) {
			if i < len(m.order) {
				rowOf(o).set(m.devices[m.order[i]])
			}
		})
	m.list.OnSelected = func(i widget.ListItemID) {
		if i < len(m.order) {
			m.select_(m.order[i])
		}
	}
	m.empty = m.emptyState()
	m.banner = m.demoBanner()
	m.listBox = m.list
	m.left = container.NewStack(m.empty)
	split := container.NewHSplit(container.NewBorder(widget.NewLabelWithStyle("Devices", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), nil, nil, nil, m.left), m.panel.obj)
	split.Offset = 0.32
	m.tabs = container.NewAppTabs(
		container.NewTabItem("Devices", container.NewBorder(m.banner, m.status, nil, nil, split)),
		container.NewTabItem("Recovery", m.wizard.obj),
		container.NewTabItem("Settings", m.settings.obj),
		container.NewTabItem("Factory", newFactoryView(m).obj),
		container.NewTabItem("Log", m.logv.obj),
	)
	m.tabs.OnSelected = func(it *container.TabItem) { m.logv.show(it.Content == m.logv.obj) }
	m.shortcuts()

	ctx := m.ctx
	m.done = make(chan struct{})
	go m.anim.run(ctx)
	all := append([]device.Door{sims}, doors...)
	m.watcher = device.NewWatcher(device.Options{Doors: all})
	events := m.watcher.Run(ctx)
	go func() {
		defer close(m.done)
		for e := range events {
			onUI(func() { m.apply(e) })
		}
	}()
	if opts.Demo {
		m.startDemo()
	}
	return m
}

// content is what goes in the window.
func (m *mainUI) content() fyne.CanvasObject { return m.tabs }

// stop ends the watcher and animation and waits for the event pump, so nothing updates a
// closed window. The wait is bounded: once the app's loop has ended, a fyne.Do the pump
// was in the middle of may never return, and quitting must not hang on it.
func (m *mainUI) stop() {
	m.cancel()
	select {
	case <-m.done:
	case <-time.After(2 * time.Second):
		slog.Warn("device event pump did not stop in time")
	}
	m.stopRuns()
}

// shortcuts: Ctrl+1..4 switch tabs, so the app works without a mouse; the device list
// itself takes the arrow keys once focused (Tab moves focus).
func (m *mainUI) shortcuts() {
	for i := range len(m.tabs.Items) {
		key := fyne.KeyName(rune('1' + i))
		m.win.Canvas().AddShortcut(&desktopShortcut{key: key}, func(fyne.Shortcut) {
			m.tabs.SelectIndex(i)
			if i == 0 {
				m.win.Canvas().Focus(m.list)
			}
		})
	}
}

// emptyState tells a person with nothing plugged in what to do, and lets them try the
// app on virtual devices.
func (m *mainUI) emptyState() fyne.CanvasObject {
	title := widget.NewLabelWithStyle("No device found", fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	body := widget.NewLabel("Plug a Particle device (Photon, Electron, Argon, Boron, B SoM, Tracker, P2, M SoM, ...) into a USB port with a data cable.")
	body.Wrapping = fyne.TextWrapWord
	help := widget.NewButton("My device is not showing up", func() {
		l := widget.NewLabel(notShowingHelp())
		l.Wrapping = fyne.TextWrapWord
		d := dialog.NewCustom("My device is not showing up", "Close", container.NewVScroll(l), m.win)
		d.Resize(fyne.NewSize(520, 420))
		d.Show()
	})
	demo := widget.NewButton("Try with a virtual device", func() { m.startDemo() })
	demo.Importance = widget.HighImportance
	return container.NewVBox(title, body, help, demo)
}

func notShowingHelp() string {
	s := "1. Use a data cable: many USB cables only charge. Try another cable and another port (not a hub).\n" +
		"2. Look at the LED. Dark: no power or no bootloader. Breathing cyan, blinking green or blue: the device runs and should appear.\n"
	switch runtime.GOOS {
	case "windows":
		s += "3. Windows needs the WinUSB driver on the device's DFU and control interfaces: Settings > Permissions says how. " +
			"Device Manager may also keep stale hidden entries for the device: show hidden devices, uninstall them, and plug it in again.\n"
	case "linux":
		s += "3. A normal user needs the udev rule: see Settings > Permissions.\n"
	default:
		s += "3. No driver or rule is needed on this system.\n"
	}
	s += "4. If the device still does not appear, put it in DFU mode by hand: the Recovery tab shows the button sequence and continues by itself when the device shows up."
	if runtime.GOOS == "linux" {
		s += "\n\nTo " + device.PermissionRemedy()
	}
	return s
}

// demoBanner says, above the device list, that the demo's devices are virtual and how fast
// they go, so nobody mistakes them for hardware or their pace for a real device's.
func (m *mainUI) demoBanner() fyne.CanvasObject {
	l := widget.NewLabel(fmt.Sprintf("Demo: the devices marked virtual are simulated on this computer; nothing is written to real hardware. "+
		"Pace: %s (Settings > Demo pace).", demoPaceWords(m.opts.DemoScale)))
	l.Wrapping = fyne.TextWrapWord
	l.Importance = widget.WarningImportance
	b := container.NewVBox(container.NewBorder(nil, nil, widget.NewIcon(theme.InfoIcon()), nil, l), widget.NewSeparator())
	b.Hide()
	return b
}

// startDemo plugs the three demo devices into the in-process door. Building them costs a
// moment, so it runs off the UI thread.
func (m *mainUI) startDemo() {
	if m.demoOn {
		return
	}
	m.demoOn = true
	m.banner.Show()
	go func() {
		if err := m.sims.AddDemo(m.opts.DemoScale); err != nil {
			slog.Error("demo devices", "err", err)
			onUI(func() { m.status.SetText("Could not start the virtual devices: " + errText(err)) })
			return
		}
		slog.Info("demo: virtual devices plugged in", "count", m.sims.Len())
	}()
}

// apply folds one watcher event into the window. A device keeps its row (its key) across
// mode changes and re-enumeration; only Disappeared removes it.
func (m *mainUI) apply(e device.Event) {
	switch e.Kind {
	case device.Ready:
		return
	case device.DoorFailed:
		m.status.SetText("Cannot list " + e.Door + " devices: " + errText(e.Err))
		return
	case device.Disappeared:
		m.remove(e.Device.Key)
	case device.DuplicateID:
		m.status.SetText("Two units report the same ID: " + e.Device.Name())
		m.put(e.Device)
	default:
		m.put(e.Device)
	}
	m.logDevice(e)
	if e.Kind == device.Appeared || e.Kind == device.ChangedMode || e.Kind == device.Returned {
		m.wizard.seen(e.Device)
	}
	switch e.Kind {
	case device.Appeared, device.Returned, device.ChangedMode, device.ModulesRead, device.Disappeared:
		if t, ok := m.runs.targets[runKey(e.Device)]; ok {
			t.deviceChanged(e.Device, e.Kind)
		}
	}
	m.refresh()
}

func errText(err error) string {
	if err == nil {
		return "unknown error"
	}
	return remedy.Human(err)
}

func (m *mainUI) put(d device.Device) {
	if _, ok := m.devices[d.Key]; !ok {
		m.order = append(m.order, d.Key)
	}
	m.devices[d.Key] = d
}

func (m *mainUI) remove(key string) {
	delete(m.devices, key)
	for i, k := range m.order {
		if k == key {
			m.order = append(m.order[:i], m.order[i+1:]...)
			break
		}
	}
	if m.selKey == key {
		m.selKey = ""
		m.list.UnselectAll()
	}
}

func (m *mainUI) refresh() {
	if len(m.order) == 0 {
		m.left.Objects = []fyne.CanvasObject{m.empty}
	} else {
		m.left.Objects = []fyne.CanvasObject{m.listBox}
	}
	m.left.Refresh()
	m.list.Refresh()
	if d, ok := m.devices[m.selKey]; ok {
		m.panel.show(d)
	} else {
		m.panel.none()
	}
}

// select_ shows a device in the panel (select is a keyword).
func (m *mainUI) select_(key string) {
	m.selKey = key
	if d, ok := m.devices[key]; ok {
		m.panel.show(d)
	}
}

// selectKey selects a device's row from code (the wizard hands over its device).
func (m *mainUI) selectKey(key string) {
	for i, k := range m.order {
		if k == key {
			m.tabs.SelectIndex(0)
			m.list.Select(i)
			m.select_(key)
			return
		}
	}
}

// sortedKeys is for tests and logs.
func (m *mainUI) sortedKeys() []string {
	k := append([]string(nil), m.order...)
	sort.Strings(k)
	return k
}

// deviceRow is one line of the device list: LED dot, platform, short ID, mode badge.
type deviceRow struct {
	widget.BaseWidget
	light *ledLight
	name  *widget.Label
	id    *widget.Label
	badge *canvas.Rectangle
	mode  *widget.Label
	texts *fyne.Container
	outer *fyne.Container
}

func newDeviceRow(a *animator) *deviceRow {
	r := &deviceRow{light: newLEDLight(14), name: widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		id: widget.NewLabel(""), badge: canvas.NewRectangle(color.Transparent), mode: widget.NewLabel("")}
	r.badge.CornerRadius = 6
	a.add(r.light)
	r.ExtendBaseWidget(r)
	return r
}

func rowOf(o fyne.CanvasObject) *deviceRow { return o.(*deviceRow) }

func (r *deviceRow) CreateRenderer() fyne.WidgetRenderer {
	badge := container.NewStack(r.badge, r.mode)
	// The name over the ID, each cut with an ellipsis only where there is no room: a wide
	// list shows all 24 characters of the ID, a narrow one never lets them run under the
	// mode badge.
	r.name.Truncation = fyne.TextTruncateEllipsis
	r.id.Truncation = fyne.TextTruncateEllipsis
	r.texts = container.New(layout.NewCustomPaddedVBoxLayout(-12), r.name, r.id)
	r.outer = container.NewBorder(nil, nil, container.NewCenter(r.light.box), container.NewCenter(badge), r.texts)
	return widget.NewSimpleRenderer(r.outer)
}

func (r *deviceRow) set(d device.Device) {
	r.light.set(ledFor(d))
	r.name.SetText(platformName(d.Platform))
	id := idWords(d)
	if isVirtual(d) {
		id = "virtual · " + id
	}
	r.id.SetText(id)
	// The list can be narrow: a long badge ("Listening mode (reconnecting...)") takes two
	// lines rather than run over the name.
	r.mode.SetText(strings.Replace(modeWords(d), " (", "\n(", 1))
	r.badge.FillColor = badgeColor(d)
	r.badge.Refresh()
	// Texts of another length need the row laid out again.
	if r.outer != nil {
		r.outer.Refresh()
		r.texts.Refresh()
	}
}

// badgeColor tints the mode badge; the badge's words carry the same information.
func badgeColor(d device.Device) color.Color {
	switch {
	case d.Err != nil:
		return color.NRGBA{0xd0, 0x40, 0x40, 0x60}
	case d.Mode == device.ModeSafe:
		return color.NRGBA{0xc0, 0x40, 0xc0, 0x60}
	case d.Mode == device.ModeDFU:
		return color.NRGBA{0xd0, 0xb0, 0x20, 0x60}
	case d.Mode == device.ModeListening:
		return color.NRGBA{0x30, 0x60, 0xd0, 0x60}
	case d.Mode == device.ModeNormal:
		return color.NRGBA{0x20, 0xb0, 0xb0, 0x60}
	}
	return color.NRGBA{0x80, 0x80, 0x80, 0x40}
}

// desktopShortcut is Ctrl (Cmd on macOS via Fyne's mapping) + a key.
type desktopShortcut struct{ key fyne.KeyName }

func (s *desktopShortcut) ShortcutName() string  { return "Ctrl+" + string(s.key) }
func (s *desktopShortcut) Key() fyne.KeyName     { return s.key }
func (s *desktopShortcut) Mod() fyne.KeyModifier { return fyne.KeyModifierShortcutDefault }
