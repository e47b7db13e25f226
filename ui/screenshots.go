package ui

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
)

// Screenshot mode (`particle-flasher --demo --screenshots DIR`, used by `make
// screenshots`) walks the real app through its main screens the way a person would (select
// a row, pick a version, tap Start), waits for each screen's real content, and saves the
// window as DIR/NN-name.png. It drives only what a person can reach, so a screenshot that
// cannot be taken is a screen that does not work.

// shotWait bounds the wait for one screen's content; shotTotal the whole walk.
const (
	shotWait  = 45 * time.Second
	shotTotal = 10 * time.Minute
	// shotSettle lets the window paint the frame after the content appeared: the capture
	// reads what is on screen, and Fyne paints on its next frame.
	shotSettle = 400 * time.Millisecond
)

// minShotColours is the fewest distinct colours a screenshot must have: a window that
// shows text and widgets has hundreds (anti-aliasing), a blank or black capture has one
// or two.
const minShotColours = 64

// shooter walks the screens and saves them.
type shooter struct {
	m   *mainUI
	w   fyne.Window
	dir string
	// settle is how long the window gets to paint a screen before its capture;
	// nextSettle replaces it for one capture (an animation must be caught in its frame).
	settle, nextSettle time.Duration
}

// shotStep is one screen: reach it, then it is captured as NN-name.png.
type shotStep struct {
	name  string
	reach func(s *shooter, ctx context.Context) error
	// wait bounds reaching the screen (0: shotWait); the factory flashes every device.
	wait time.Duration
}

// shotSteps are the screens, in the order README.md shows them.
var shotSteps = []shotStep{
	{"devices", (*shooter).devices, 0},
	{"diagnosis", (*shooter).diagnosis, 0},
	{"plan", (*shooter).plan, 0},
	{"run", (*shooter).run, 0},
	{"result", (*shooter).result, 2 * time.Minute},
	// The factory comes before the recovery wizard: a wizard left waiting for a DFU Boron
	// takes over the first one the bench puts in DFU mode.
	{"factory", (*shooter).factory, 3 * time.Minute},
	{"recovery", (*shooter).recovery, 0},
	{"settings", (*shooter).settings, 0},
	{"log", (*shooter).log, 0},
	{"small", (*shooter).small, 0},
}

// startScreenshots starts the walk on a worker goroutine once the window is up. quit ends
// the app when the walk is over; the returned function waits at most d for the walk and
// says which screens could not be taken.
func startScreenshots(m *mainUI, w fyne.Window, dir string, quit func()) func(d time.Duration) error {
	s := &shooter{m: m, w: w, dir: dir, settle: shotSettle}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(m.ctx, shotTotal)
		defer cancel()
		err := s.walk(ctx)
		done <- err
		onUI(quit)
	}()
	return func(d time.Duration) error {
		select {
		case err := <-done:
			return err
		case <-time.After(d):
			return errors.New("the screenshot walk did not finish")
		}
	}
}

// walk takes every screen; a screen that cannot be reached is reported and the walk goes
// on, so one broken screen does not hide the state of the others.
func (s *shooter) walk(ctx context.Context) error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	var errs []error
	for i, st := range shotSteps {
		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("%s: %w", st.name, ctx.Err()))
			continue
		}
		wait := st.wait
		if wait == 0 {
			wait = shotWait
		}
		sctx, cancel := context.WithTimeout(ctx, wait)
		err := st.reach(s, sctx)
		cancel()
		if err == nil {
			err = s.save(fmt.Sprintf("%02d-%s.png", i+1, st.name))
		}
		if err != nil {
			slog.Error("screenshot: screen not reached", "screen", st.name, "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", st.name, err))
			continue
		}
		slog.Info("screenshot saved", "screen", st.name)
	}
	return errors.Join(errs...)
}

// ui runs fn on the UI thread and waits for it.
func (s *shooter) ui(fn func()) { onUIWait(fn) }

// until polls cond on the UI thread until it holds; what names the content for the error.
func (s *shooter) until(ctx context.Context, what string, cond func() bool) error {
	for {
		ok := false
		s.ui(func() { ok = cond() })
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// untilText waits until every one of want is visible under the object root returns.
func (s *shooter) untilText(ctx context.Context, root func() fyne.CanvasObject, want ...string) error {
	var last string
	err := s.until(ctx, strings.Join(want, ", "), func() bool {
		last = visibleText(root())
		for _, w := range want {
			if !strings.Contains(last, w) {
				return false
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("%w; visible text: %q", err, clip(last, 600))
	}
	return nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// save captures the window and writes it as PNG, refusing a capture that is almost one
// colour (nothing painted yet, or a broken GL capture).
func (s *shooter) save(name string) error {
	settle := s.settle
	if s.nextSettle > 0 {
		settle, s.nextSettle = s.nextSettle, 0
	}
	time.Sleep(settle)
	var img image.Image
	s.ui(func() { img = s.w.Canvas().Capture() })
	if img == nil {
		return errors.New("the window gave no image")
	}
	out := opaque(img)
	if n := countColours(out, minShotColours); n < minShotColours {
		// Mesa's llvmpipe under Xvfb reads the front buffer back as zeros; softpipe does not.
		return fmt.Errorf("the capture has only %d colours: the window shows nothing "+
			"(under Xvfb, set GALLIUM_DRIVER=softpipe as `make screenshots` does)", n)
	}
	f, err := os.Create(filepath.Join(s.dir, name))
	if err != nil {
		return err
	}
	if err := png.Encode(f, out); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// opaque copies a capture with full alpha: GL captures may carry the framebuffer's alpha,
// which would make the PNG see-through.
func opaque(img image.Image) *image.RGBA {
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			out.SetRGBA(x-b.Min.X, y-b.Min.Y, color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), 0xff})
		}
	}
	return out
}

// countColours counts the distinct colours of img, stopping once it reaches limit.
func countColours(img image.Image, limit int) int {
	seen := map[color.RGBA]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), uint8(a >> 8)}] = true
			if len(seen) >= limit {
				return len(seen)
			}
		}
	}
	return len(seen)
}

// factoryTotalsRe reads the factory tab's totals line.
var factoryTotalsRe = regexp.MustCompile(`(\d+) ok · (\d+) already · (\d+) failed · (\d+) running`)

// The screens.

func (s *shooter) devices(ctx context.Context) error {
	s.ui(func() { s.selectTab("Devices") })
	if err := s.until(ctx, "the three demo devices with their modules", func() bool {
		n := 0
		for _, k := range s.m.order {
			d := s.m.devices[k]
			if d.Platform != nil && d.Modules != nil && !d.Missing {
				n++
			}
		}
		return n >= 3
	}); err != nil {
		return err
	}
	return s.selectRow(ctx, "boron", "Device OS")
}

func (s *shooter) diagnosis(ctx context.Context) error {
	return s.selectRow(ctx, "photon", "Safe mode: the application needs", "LED: breathing magenta")
}

// plan picks 2.3.1 for the safe-mode Photon, as the diagnosis suggests, and scrolls the
// panel to the plan.
func (s *shooter) plan(ctx context.Context) error {
	picker, err := s.pickVersion(ctx, "the Device OS version picker", func() fyne.CanvasObject { return s.m.panel.obj }, "2.3.1")
	if err != nil {
		return err
	}
	if err := s.untilText(ctx, s.panelObj, "to 2.3.1", "Afterwards:"); err != nil {
		return err
	}
	s.ui(func() { s.scrollPanelTo(picker) })
	return nil
}

// run taps Start and catches the run between 5% and 95% of its progress, with the LED
// guidance showing.
func (s *shooter) run(ctx context.Context) error {
	var start *widget.Button
	if err := s.until(ctx, `a "Start" button under the plan`, func() bool {
		start = shotButton(s.m.panel.obj, "Start")
		return start != nil && !start.Disabled()
	}); err != nil {
		return err
	}
	s.ui(func() { start.Tapped(&fyne.PointEvent{}) })
	// Any visible bar between 5% and 95% will do: the step's bar or the overall one.
	var bar *widget.ProgressBar
	var seen []string
	if err := s.until(ctx, "the run's progress between 5% and 95%", func() bool {
		bar, seen = nil, nil
		walkObjects(s.m.panel.obj, func(o fyne.CanvasObject) bool {
			p, ok := o.(*widget.ProgressBar)
			if !ok || p.Max <= p.Min {
				return true
			}
			f := (p.Value - p.Min) / (p.Max - p.Min)
			seen = append(seen, fmt.Sprintf("%.0f%%", f*100))
			if f >= 0.05 && f <= 0.95 {
				bar = p
			}
			return bar == nil
		})
		return bar != nil
	}); err != nil {
		return fmt.Errorf("%w (bars last seen at %v)", err, seen)
	}
	if err := s.untilText(ctx, s.panelObj, "LED"); err != nil {
		return err
	}
	// Scroll to the run view's LED line, with the checklist under it.
	s.ui(func() {
		var top fyne.CanvasObject = bar
		if t, ok := s.m.runs.targets[runKey(s.m.devices[s.m.selKey])]; ok {
			top = t.view.obj
		}
		s.scrollPanelTo(top)
	})
	// The guidance LED blinks or breathes: caught while lit, as in the recovery shot, so
	// the picture shows its colour rather than the dark half of a blink.
	err := s.until(ctx, "the guidance LED lit", func() bool {
		t, ok := s.m.runs.targets[runKey(s.m.devices[s.m.selKey])]
		if !ok || t.view.led.light.circle.FillColor == nil {
			return false
		}
		r, g, b, _ := t.view.led.light.circle.FillColor.RGBA()
		return r+g+b > 3*0x6000
	})
	s.nextSettle = 80 * time.Millisecond
	return err
}

// result waits for the run to end: its Cancel button goes and the result says the
// version reached.
func (s *shooter) result(ctx context.Context) error {
	if err := s.until(ctx, "the run to end (no Cancel button)", func() bool {
		return shotButton(s.m.panel.obj, "Cancel") == nil
	}); err != nil {
		return err
	}
	if err := s.untilText(ctx, s.panelObj, "2.3.1"); err != nil {
		return err
	}
	// The result card sits above the ticked checklist.
	s.ui(func() {
		if t, ok := s.m.runs.targets[runKey(s.m.devices[s.m.selKey])]; ok {
			s.scrollPanelTo(t.view.obj)
		}
	})
	// A failed run is a result screen too, but not the one README.md shows.
	var txt string
	s.ui(func() { txt = visibleText(s.panelObj()) })
	if strings.Contains(txt, "Failed:") {
		return fmt.Errorf("the run failed: %s", clip(txt[strings.Index(txt, "Failed:"):], 400))
	}
	return nil
}

// recovery opens the wizard for a Boron and waits for the button animation.
func (s *shooter) recovery(ctx context.Context) error {
	if err := s.tab(ctx, "Recovery"); err != nil {
		return err
	}
	s.ui(func() { s.m.wizard.board.SetSelected("Boron") })
	// The moment the LED blinks magenta under the held buttons tells the most; it is
	// caught while lit, and captured within the same blink.
	err := s.until(ctx, "the button animation at blinking magenta, lit", func() bool {
		r, g, b, _ := s.m.wizard.light.circle.FillColor.RGBA()
		return strings.HasPrefix(s.m.wizard.holding.Text, "Hold: ") && strings.Contains(s.m.wizard.ledWords.Text, "magenta") &&
			r+g+b > 3*0x6000
	})
	s.nextSettle = 80 * time.Millisecond
	return err
}

// pickVersion waits for the first version picker under root and picks version in it, as
// a person would from the list (its label may carry markings: "2.3.1 (latest LTS)").
func (s *shooter) pickVersion(ctx context.Context, what string, root func() fyne.CanvasObject, version string) (*widget.Select, error) {
	var picker *widget.Select
	if err := s.until(ctx, what, func() bool {
		picker = shotSelect(root(), "")
		return picker != nil
	}); err != nil {
		return nil, err
	}
	var choice string
	s.ui(func() {
		for _, o := range picker.Options {
			if o == version || strings.HasPrefix(o, version+" (") {
				choice = o
			}
		}
		if choice != "" {
			picker.SetSelected(choice)
		}
	})
	if choice == "" {
		return nil, fmt.Errorf("%s is not offered in %s", version, what)
	}
	return picker, nil
}

// factory opens the Factory tab, picks a version, switches the bench on and waits until
// every demo device has a result.
func (s *shooter) factory(ctx context.Context) error {
	if err := s.tab(ctx, "Factory"); err != nil {
		return err
	}
	root := s.tabContent("Factory")
	// 2.3.1 runs on all three demo platforms (the Photon stops at 2.x).
	if _, err := s.pickVersion(ctx, "the factory's version picker", root, "2.3.1"); err != nil {
		return err
	}
	var sw *benchSwitch
	if err := s.until(ctx, `the bench's On/Off switch`, func() bool {
		walkObjects(root(), func(o fyne.CanvasObject) bool {
			if c, ok := o.(*benchSwitch); ok {
				sw = c
			}
			return sw == nil
		})
		return sw != nil
	}); err != nil {
		return err
	}
	s.ui(func() { sw.SetChecked(true) })
	// Every demo device finished: the totals line counts three and none running.
	var last string
	err := s.until(ctx, "every demo device to finish", func() bool {
		last = visibleText(root())
		m := factoryTotalsRe.FindStringSubmatch(last)
		if m == nil {
			return false
		}
		n := 0
		for _, x := range m[1:4] {
			v, _ := strconv.Atoi(x)
			n += v
		}
		return n >= 3 && m[4] == "0"
	})
	if err != nil {
		return fmt.Errorf("%w; visible text: %q", err, clip(last, 600))
	}
	return nil
}

func (s *shooter) settings(ctx context.Context) error {
	if err := s.tab(ctx, "Settings"); err != nil {
		return err
	}
	return s.untilText(ctx, func() fyne.CanvasObject { return s.m.settings.obj }, "Cache location", "Permissions")
}

// log shows the Log tab with what the walk did: devices coming, runs' steps, results.
func (s *shooter) log(ctx context.Context) error {
	if err := s.tab(ctx, "Log"); err != nil {
		return err
	}
	return s.untilText(ctx, func() fyne.CanvasObject { return s.m.logv.obj }, "appeared", "Step 1 of", "Save log...")
}

// small is the app in an 800x600 window, the Photon's panel showing: nothing a person
// needs may be cut off there.
func (s *shooter) small(ctx context.Context) error {
	s.ui(func() { s.w.Resize(fyne.NewSize(800, 600)) })
	if err := s.tab(ctx, "Devices"); err != nil {
		return err
	}
	return s.selectRow(ctx, "photon", "Photon")
}

// Navigation, as a person does it.

func (s *shooter) panelObj() fyne.CanvasObject { return s.m.panel.obj }

// selectTab selects the tab with this title; false when there is none.
func (s *shooter) selectTab(title string) bool {
	for _, it := range s.m.tabs.Items {
		if it.Text == title {
			s.m.tabs.Select(it)
			return true
		}
	}
	return false
}

// tab opens the tab with this title; the tabs are made with the window, so one that is
// not there now never comes.
// tabContent returns the content of the tab with this title, whichever tab is showing.
func (s *shooter) tabContent(title string) func() fyne.CanvasObject {
	return func() fyne.CanvasObject {
		for _, it := range s.m.tabs.Items {
			if it.Text == title {
				return it.Content
			}
		}
		return nil
	}
}

func (s *shooter) tab(_ context.Context, title string) error {
	ok := false
	s.ui(func() { ok = s.selectTab(title) })
	if !ok {
		return errors.New("there is no tab called " + title)
	}
	return nil
}

// selectRow clicks the device list's row of the platform and waits for the panel to show
// want.
func (s *shooter) selectRow(ctx context.Context, platformName string, want ...string) error {
	found := false
	s.ui(func() {
		s.selectTab("Devices")
		for i, k := range s.m.order {
			if d := s.m.devices[k]; d.Platform != nil && d.Platform.Name == platformName {
				s.m.list.Select(i)
				found = true
				return
			}
		}
	})
	if !found {
		return errors.New("no " + platformName + " in the device list")
	}
	return s.untilText(ctx, s.panelObj, want...)
}

// scrollPanelTo scrolls the device panel so that o is near its top.
func (s *shooter) scrollPanelTo(o fyne.CanvasObject) {
	body := s.m.panel.body
	y := float32(0)
	if o != nil {
		d := fyne.CurrentApp().Driver()
		y = d.AbsolutePositionForObject(o).Y - d.AbsolutePositionForObject(s.m.panel.content).Y - 60
	}
	bottom := max(s.m.panel.content.MinSize().Height-body.Size().Height, 0)
	y = min(max(y, 0), bottom)
	body.Offset = fyne.NewPos(0, y)
	body.Refresh()
}

// Finding widgets by what they show. Only containers whose children are public are
// entered; the screens are built from those.

// walkObjects calls visit for every visible object under o, depth first, until visit
// returns false.
func walkObjects(o fyne.CanvasObject, visit func(fyne.CanvasObject) bool) bool {
	if o == nil || !o.Visible() {
		return true
	}
	if !visit(o) {
		return false
	}
	var kids []fyne.CanvasObject
	switch x := o.(type) {
	case *fyne.Container:
		kids = x.Objects
	case *container.Scroll:
		kids = []fyne.CanvasObject{x.Content}
	case *container.Split:
		kids = []fyne.CanvasObject{x.Leading, x.Trailing}
	case *container.AppTabs:
		if it := x.Selected(); it != nil {
			kids = []fyne.CanvasObject{it.Content}
		}
	case *widget.Card:
		kids = []fyne.CanvasObject{x.Content}
	case *widget.Form:
		for _, it := range x.Items {
			kids = append(kids, it.Widget)
		}
	case interface{ shotChildren() []fyne.CanvasObject }:
		// A widget of ours with its own renderer lists what it shows.
		kids = x.shotChildren()
	}
	for _, k := range kids {
		if !walkObjects(k, visit) {
			return false
		}
	}
	return true
}

// visibleText is the text of every visible label, button, check and rich text under o,
// one per line.
func visibleText(o fyne.CanvasObject) string {
	var b strings.Builder
	walkObjects(o, func(o fyne.CanvasObject) bool {
		switch x := o.(type) {
		case *widget.Label:
			b.WriteString(x.Text + "\n")
		case *widget.Button:
			b.WriteString(x.Text + "\n")
		case *widget.Check:
			b.WriteString(x.Text + "\n")
		case *widget.Select:
			b.WriteString(x.Selected + "\n")
		case *widget.RichText:
			b.WriteString(x.String() + "\n")
		case *canvas.Text:
			b.WriteString(x.Text + "\n")
		case *widget.Hyperlink:
			b.WriteString(x.Text + "\n")
		case *widget.Form:
			for _, it := range x.Items {
				b.WriteString(it.Text + "\n")
			}
		}
		return true
	})
	return b.String()
}

// shotButton returns the visible button labelled text under o.
func shotButton(o fyne.CanvasObject, text string) *widget.Button {
	var found *widget.Button
	walkObjects(o, func(o fyne.CanvasObject) bool {
		if b, ok := o.(*widget.Button); ok && b.Text == text {
			found = b
		}
		return found == nil
	})
	return found
}

// shotSelect returns the first visible drop-down under o whose placeholder starts with
// hint ("" for any).
func shotSelect(o fyne.CanvasObject, hint string) *widget.Select {
	var found *widget.Select
	walkObjects(o, func(o fyne.CanvasObject) bool {
		if s, ok := o.(*widget.Select); ok && strings.HasPrefix(s.PlaceHolder, hint) {
			found = s
		}
		return found == nil
	})
	return found
}
