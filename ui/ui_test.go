//go:build ci

package ui

import (
	"bytes"
	"context"
	"image/png"
	"log"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/assets"
	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// rig is the app on a test window with the demo devices and no hardware doors.
type rig struct {
	t   *testing.T
	w   fyne.Window
	m   *mainUI
	ctx context.Context
}

func newRig(t *testing.T, demoOnly bool) *rig {
	t.Helper()
	a := test.NewTempApp(t)
	_ = a
	w := test.NewWindow(nil)
	var m *mainUI
	onUIWait(func() {
		m = newMainUI(w, Options{Demo: demoOnly}, demo.New(false), nil)
		w.SetContent(m.content())
		w.Resize(fyne.NewSize(1100, 700))
	})
	t.Cleanup(func() {
		m.stop()
		_ = m.sims.Close()
		w.Close()
	})
	return &rig{t: t, w: w, m: m}
}

// eventually polls cond on the UI thread until it holds.
func (r *rig) eventually(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		ok := false
		onUIWait(func() { ok = cond() })
		if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("timed out waiting for %s; visible text:\n%s", what, r.text(r.w.Content()))
}

// text is every visible label, button and entry text under o, one per line.
func (r *rig) text(o fyne.CanvasObject) string {
	var b strings.Builder
	onUIWait(func() { walkText(o, &b) })
	return b.String()
}

// walkedText is text for use on the UI thread (inside eventually).
func walkedText(o fyne.CanvasObject) string {
	var b strings.Builder
	walkText(o, &b)
	return b.String()
}

func walkText(o fyne.CanvasObject, b *strings.Builder) {
	if o == nil || !o.Visible() {
		return
	}
	switch x := o.(type) {
	case *widget.Label:
		b.WriteString(x.Text + "\n")
	case *widget.Button:
		b.WriteString(x.Text + "\n")
	}
	switch x := o.(type) {
	case *fyne.Container:
		for _, c := range x.Objects {
			walkText(c, b)
		}
	case fyne.Widget:
		for _, c := range test.WidgetRenderer(x).Objects() {
			walkText(c, b)
		}
	}
}

// device returns the demo device of a platform as the window knows it.
func (r *rig) device(name string) (device.Device, bool) {
	for _, k := range r.m.order {
		d := r.m.devices[k]
		if d.Platform != nil && d.Platform.Name == name {
			return d, true
		}
	}
	return device.Device{}, false
}

func (r *rig) waitDemo() {
	r.eventually("three demo devices with their modules", func() bool {
		if len(r.m.order) != 3 {
			return false
		}
		for _, k := range r.m.order {
			if r.m.devices[k].Modules == nil {
				return false
			}
		}
		return true
	})
}

func (r *rig) selectPlatform(name string) device.Device {
	r.t.Helper()
	var d device.Device
	onUIWait(func() {
		var ok bool
		d, ok = r.device(name)
		require.True(r.t, ok, name)
		r.m.selectKey(d.Key)
	})
	return d
}

func TestEmptyStateOffersDemo(t *testing.T) {
	r := newRig(t, false)
	txt := r.text(r.w.Content())
	assert.Contains(t, txt, "No device found")
	assert.Contains(t, txt, "My device is not showing up")
	assert.Contains(t, txt, "Try with a virtual device")
	var demo *widget.Button
	onUIWait(func() { demo = findButton(r.w.Content(), "Try with a virtual device") })
	require.NotNil(t, demo)
	onUIWait(func() { test.Tap(demo) })
	r.waitDemo()
	assert.NotContains(t, r.text(r.w.Content()), "No device found")
}

func findButton(o fyne.CanvasObject, text string) *widget.Button {
	switch x := o.(type) {
	case *widget.Button:
		if x.Text == text {
			return x
		}
	case *fyne.Container:
		for _, c := range x.Objects {
			if b := findButton(c, text); b != nil {
				return b
			}
		}
		return nil
	}
	if w, ok := o.(fyne.Widget); ok {
		for _, c := range test.WidgetRenderer(w).Objects() {
			if b := findButton(c, text); b != nil {
				return b
			}
		}
	}
	return nil
}

func TestDemoListShowsModesInWords(t *testing.T) {
	r := newRig(t, true)
	r.waitDemo()
	// The Photon shows as running until its reading says safe mode: wait for the words.
	r.eventually("every mode in words", func() bool {
		list := walkedText(r.m.left)
		for _, want := range []string{"Photon", "Safe mode", "Boron", "Normal", "Argon", "DFU mode", "virtual · "} {
			if !strings.Contains(list, want) {
				return false
			}
		}
		return true
	})
}

func TestSafeModePhotonDiagnosis(t *testing.T) {
	r := newRig(t, true)
	r.waitDemo()
	r.selectPlatform("photon")
	onUIWait(func() { r.m.panel.more.Open(0) })
	panel := r.text(r.m.panel.obj)
	assert.Contains(t, panel, "Safe mode: the application needs Device OS 2.3.1; system-part2 is 1.5.2.")
	assert.Contains(t, panel, "LED: breathing magenta")
	assert.Contains(t, panel, "Device OS")
	assert.Contains(t, panel, "1.5.2")
	onUIWait(func() { assert.Equal(t, "Safe mode", r.m.panel.mode.Text) })
	// The user part's row says why it fails.
	assert.Contains(t, panel, "system-part2 >= 2.3.1: FAIL (has 1.5.2)")
	r.shot("photon")
}

// shot saves the window as a PNG into $PFLASH_UI_SHOTS, for looking at by hand.
func (r *rig) shot(name string) {
	dir := os.Getenv("PFLASH_UI_SHOTS")
	if dir == "" {
		return
	}
	var b bytes.Buffer
	onUIWait(func() { require.NoError(r.t, png.Encode(&b, r.w.Canvas().Capture())) })
	require.NoError(r.t, os.WriteFile(dir+"/"+name+".png", b.Bytes(), 0o644))
}

func TestBlankArgonShowsMissingSystemPart(t *testing.T) {
	r := newRig(t, true)
	r.waitDemo()
	r.selectPlatform("argon")
	onUIWait(func() { r.m.panel.more.Open(0) })
	panel := r.text(r.m.panel.obj)
	assert.Contains(t, panel, "System-part1 is missing")
	assert.Equal(t, 1, strings.Count(panel, "DFU mode:"), "one diagnosis line, not the same twice:\n%s", panel)
	assert.Contains(t, panel, "missing")
	assert.Contains(t, panel, "LED: blinking yellow")
	onUIWait(func() { assert.Equal(t, "none found", r.m.panel.os.Text) })
}

func TestLEDWordsMatchMode(t *testing.T) {
	r := newRig(t, true)
	r.waitDemo()
	for name, want := range map[string]string{"photon": "breathing magenta", "boron": "breathing cyan", "argon": "blinking yellow"} {
		r.selectPlatform(name)
		onUIWait(func() {
			assert.Equal(t, "LED: "+want, r.m.panel.led.words.Text, name)
			assert.NotEmpty(t, r.m.panel.led.meaning.Text, name)
		})
	}
}

func TestModeChangeKeepsRow(t *testing.T) {
	r := newRig(t, true)
	r.waitDemo()
	var key string
	var idx int
	onUIWait(func() {
		d, _ := r.device("boron")
		key = d.Key
		for i, k := range r.m.order {
			if k == key {
				idx = i
			}
		}
	})
	r.selectPlatform("boron")
	var boron *sim.Device
	for _, d := range r.m.sims.Devices() {
		if d.Platform().Name == "boron" {
			boron = d
		}
	}
	require.NotNil(t, boron)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := r.m.sims.Find(ctx, boron.ID())
	require.NoError(t, err)
	require.NoError(t, l.Ctrl().EnterDFU(ctx))
	r.eventually("the Boron in DFU mode", func() bool {
		d, ok := r.m.devices[key]
		return ok && d.Mode == device.ModeDFU
	})
	onUIWait(func() {
		assert.Len(t, r.m.order, 3)
		assert.Equal(t, key, r.m.order[idx], "same row")
		assert.Equal(t, key, r.m.selKey, "still selected")
		assert.Equal(t, "DFU mode", r.m.panel.mode.Text)
	})
	assert.Contains(t, r.text(r.m.left), "DFU mode")
}

func TestRecoveryWizardAdvancesOnDFUDevice(t *testing.T) {
	r := newRig(t, false)
	onUIWait(func() {
		r.m.tabs.SelectIndex(1)
		r.m.wizard.board.SetSelected("Boron")
	})
	onUIWait(func() {
		assert.Contains(t, r.m.wizard.recipe.Text, "MODE")
		assert.Contains(t, r.m.wizard.status.Text, "Waiting for a Boron in DFU mode")
		assert.True(t, r.m.wizard.start.Disabled() == false)
	})
	// The animation moves through the button sequence.
	r.eventually("a button held in the animation", func() bool { return strings.HasPrefix(r.m.wizard.holding.Text, "Hold: ") })
	r.shot("wizard")

	p, _ := platform.ByName("boron")
	set, err := sim.SyntheticSet(p, "4.1.0")
	require.NoError(t, err)
	d, err := sim.New(sim.Options{Platform: p, Modules: set, Mode: sim.ModeDFU, NoSerial: true})
	require.NoError(t, err)
	r.m.sims.Add(d)
	r.eventually("the wizard to find the DFU Boron", func() bool { return r.m.wizard.found != "" })
	onUIWait(func() {
		assert.Contains(t, r.m.wizard.status.Text, "Found your Boron")
		assert.Equal(t, "LED: blinking yellow", r.m.wizard.ledWords.Text)
		assert.Equal(t, 0, r.m.tabs.SelectedIndex(), "handed over to the device panel")
		assert.Equal(t, r.m.wizard.found, r.m.selKey)
	})
}

func TestSettingsShowsUdevRule(t *testing.T) {
	r := newRig(t, false)
	onUIWait(func() { r.m.tabs.SelectIndex(2) })
	txt := r.text(r.m.settings.obj)
	r.shot("settings")
	assert.Contains(t, txt, "Permissions")
	assert.Contains(t, txt, strings.TrimSpace(assets.UdevRules))
	assert.Contains(t, txt, assets.UdevInstallCommand)
	assert.Contains(t, txt, "Copy rule")
	var b *widget.Button
	onUIWait(func() { b = findButton(r.m.settings.obj, "Copy rule") })
	require.NotNil(t, b)
	onUIWait(func() { test.Tap(b) })
	assert.Equal(t, assets.UdevRules, fyne.CurrentApp().Clipboard().Content())
}

// TestNoUpdateBypassesFyneDo floods the window with device events from many goroutines
// (plus the LED animator) and checks Fyne never reports a call off its thread.
func TestNoUpdateBypassesFyneDo(t *testing.T) {
	var logBuf syncBuffer
	log.SetOutput(&logBuf)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	r := newRig(t, true)
	r.waitDemo()
	r.selectPlatform("photon")
	var base []device.Device
	onUIWait(func() {
		for _, k := range r.m.order {
			base = append(base, r.m.devices[k])
		}
	})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				d := base[(g+i)%len(base)]
				d.Mode = []state.Mode{device.ModeNormal, device.ModeDFU, device.ModeSafe, device.ModeListening}[i%4]
				onUI(func() { r.m.apply(device.Event{Kind: device.ChangedMode, Device: d}) })
			}
		}()
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond) // a few animation frames
	onUIWait(func() { assert.Len(t, r.m.order, 3) })
	assert.NotContains(t, logBuf.String(), "Error in Fyne call thread")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPlanPreviewForSafeModePhoton(t *testing.T) {
	r := newRig(t, true)
	r.waitDemo()
	r.selectPlatform("photon")
	var picker *widget.Select
	var opts []string
	onUIWait(func() {
		picker = findSelect(r.m.panel.obj)
		require.NotNil(t, picker)
		opts = picker.Options
	})
	require.NotEmpty(t, opts)
	want := ""
	for _, o := range opts {
		if o == "2.3.1" || strings.HasPrefix(o, "2.3.1 (") {
			want = o
		}
	}
	require.NotEmpty(t, want, "2.3.1 in %v", opts)
	onUIWait(func() { picker.SetSelected(want) })
	// The runner reads the device and plans off the UI thread; the preview then shows.
	r.eventually("the checklist", func() bool { return strings.Contains(walkedText(r.m.panel.obj), "Afterwards:") })
	txt := r.text(r.m.panel.obj)
	assert.Contains(t, txt, "Enter DFU mode")
	assert.NotContains(t, txt, "No plan:")
	var s *targetSection
	onUIWait(func() {
		for _, x := range r.m.runs.targets {
			if x.d.Platform != nil && x.d.Platform.Name == "photon" {
				s = x
			}
		}
	})
	require.NotNil(t, s)
	var rows []string
	onUIWait(func() { rows, _ = rowsNow(s.checklist) })
	assert.Contains(t, rows, "system-part1 | 1.5.2 to 2.3.1 · will write")
	details := planDetails(r, s)
	assert.Contains(t, details, "Device OS 1.5.2 -> 2.3.1 (upgrade)")
	assert.Contains(t, details, "LED: blinking yellow")
}

// TestKeyboardSwitchesTabs: Ctrl+1/2/3 reach every screen without a mouse.
func TestKeyboardSwitchesTabs(t *testing.T) {
	r := newRig(t, false)
	h, ok := r.w.Canvas().(interface{ TypedShortcut(fyne.Shortcut) })
	require.True(t, ok)
	for i, k := range []fyne.KeyName{"2", "3", "4", "1"} {
		onUIWait(func() { h.TypedShortcut(&desktopShortcut{key: k}) })
		onUIWait(func() { assert.Equal(t, []int{1, 2, 3, 0}[i], r.m.tabs.SelectedIndex(), "Ctrl+%s", k) })
	}
}

func findSelect(o fyne.CanvasObject) *widget.Select {
	switch x := o.(type) {
	case *widget.Select:
		return x
	case *fyne.Container:
		for _, c := range x.Objects {
			if s := findSelect(c); s != nil {
				return s
			}
		}
		return nil
	}
	if w, ok := o.(fyne.Widget); ok {
		for _, c := range test.WidgetRenderer(w).Objects() {
			if s := findSelect(c); s != nil {
				return s
			}
		}
	}
	return nil
}

// TestUnplugReplugKeepsRow: a device that leaves USB for a moment is shown as
// reconnecting and keeps its row when it comes back.
func TestUnplugReplugKeepsRow(t *testing.T) {
	r := newRig(t, true)
	r.waitDemo()
	var argon *sim.Device
	for _, d := range r.m.sims.Devices() {
		if d.Platform().Name == "argon" {
			argon = d
		}
	}
	require.NotNil(t, argon)
	var key string
	onUIWait(func() { d, _ := r.device("argon"); key = d.Key })
	r.m.sims.Remove(argon)
	r.eventually("the Argon marked reconnecting", func() bool { return r.m.devices[key].Missing })
	assert.Contains(t, r.text(r.m.left), "DFU mode\n(reconnecting...)", "the badge, on two lines in the narrow list")
	r.m.sims.Add(argon)
	r.eventually("the Argon back", func() bool { d, ok := r.m.devices[key]; return ok && !d.Missing })
	onUIWait(func() { assert.Len(t, r.m.order, 3) })
}

// TestEmptyStateMarkup pins the empty state's layout as markup (a golden in
// testdata/empty_state.xml): what a person sees before any device is plugged in.
func TestEmptyStateMarkup(t *testing.T) {
	r := newRig(t, false)
	onUIWait(func() {
		c := test.NewWindow(r.m.emptyState())
		defer c.Close()
		c.Resize(fyne.NewSize(360, 240))
		test.AssertRendersToMarkup(t, "empty_state.xml", c.Canvas())
	})
}

// TestNoApplicationShowsSafeMode: a B SoM with Device OS but no application is shown in
// safe mode, with the same reason every other surface gives.
func TestNoApplicationShowsSafeMode(t *testing.T) {
	r := newRig(t, false)
	p, _ := platform.ByName("bsom")
	set, err := sim.SyntheticSet(p, "4.1.0")
	require.NoError(t, err)
	var os [][]byte
	for _, b := range set {
		if m, err := module.Parse(b); err == nil && m.Function != platform.FuncUser {
			os = append(os, b)
		}
	}
	d, err := sim.New(sim.Options{Platform: p, Modules: os, NoSerial: true})
	require.NoError(t, err)
	require.Equal(t, sim.ModeSafe, d.Mode())
	r.m.sims.Add(d)
	r.eventually("the B SoM listed in safe mode", func() bool {
		dev, ok := r.device("bsom")
		return ok && dev.Mode == device.ModeSafe
	})
	r.selectPlatform("bsom")
	r.eventually("the reason in the panel", func() bool {
		var b strings.Builder
		walkText(r.m.panel.obj, &b) // already on the UI thread
		return strings.Contains(b.String(), "Safe mode: there is no application.")
	})
	assert.Contains(t, r.text(r.m.left), "Safe mode")
}

// TestRecoveryWizardNoticesConnectedBoard: picking a board that is already plugged in
// says so: the DFU Argon of the demo is found at once, the running Boron needs no buttons.
func TestRecoveryWizardNoticesConnectedBoard(t *testing.T) {
	r := newRig(t, true)
	r.waitDemo()
	onUIWait(func() {
		r.m.tabs.SelectIndex(1)
		r.m.wizard.board.SetSelected("Boron")
	})
	onUIWait(func() {
		assert.Contains(t, r.m.wizard.status.Text, "is already connected, in")
		assert.Contains(t, r.m.wizard.status.Text, "no buttons are needed")
		assert.True(t, r.m.wizard.goTo.Visible())
		test.Tap(r.m.wizard.goTo)
		assert.Equal(t, 0, r.m.tabs.SelectedIndex(), "the Boron's panel is shown")
	})
	onUIWait(func() {
		r.m.tabs.SelectIndex(1)
		r.m.wizard.board.SetSelected("Argon")
	})
	onUIWait(func() {
		assert.NotEmpty(t, r.m.wizard.found, "the DFU Argon is the one being rescued")
		assert.Contains(t, r.m.wizard.status.Text, "Found your Argon")
	})
}

// TestFitsSmallWindow: at 800x600 (less the desktop's margin, as fitScreen leaves it) every
// tab fits: nothing a person needs is pushed out of the window, the plan of a selected
// device included.
func TestFitsSmallWindow(t *testing.T) {
	r := newRunRig(t, 0)
	s := r.section("photon")
	r.pick(s, "2.3.1")
	limit := fyne.NewSize(800*screenMargin, 600*screenMargin)
	onUIWait(func() {
		for i, tab := range r.m.tabs.Items {
			r.m.tabs.SelectIndex(i)
			ms := r.m.content().MinSize()
			assert.LessOrEqual(t, ms.Width, limit.Width, "%s tab is %v wide", tab.Text, ms)
			assert.LessOrEqual(t, ms.Height, limit.Height, "%s tab is %v high", tab.Text, ms)
		}
	})
}

// TestPanelShowsWhoTheUnitIs: the Boron's details show its serial number, and as a
// cellular unit its ICCID and IMEI, as the device answered them.
func TestPanelShowsWhoTheUnitIs(t *testing.T) {
	r := newRig(t, true)
	r.waitDemo()
	d := r.selectPlatform("boron")
	onUIWait(func() { r.m.panel.more.Open(0) })
	r.eventually("the identity read", func() bool {
		return strings.Contains(walkedText(r.m.panel.obj), "Serial number")
	})
	txt := r.text(r.m.panel.obj)
	onUIWait(func() { d = r.m.devices[d.Key] })
	id := d.Reading.Identity
	require.NotEmpty(t, id.SerialNumber)
	assert.Contains(t, txt, id.SerialNumber)
	if id.ICCID != "" {
		assert.Contains(t, txt, "ICCID\n"+id.ICCID)
	}
	if id.IMEI != "" {
		assert.Contains(t, txt, "IMEI\n"+id.IMEI)
	}
}
