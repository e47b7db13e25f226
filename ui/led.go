package ui

import (
	"context"
	"image/color"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"

	"github.com/particle-flasher/particle-flasher/flasher/led"
)

// animFPS is how often LEDs are redrawn: enough for a 4 Hz fast blink and a smooth
// breath, cheap enough for a list of many devices.
const animFPS = 15

// animator redraws every LED on screen from one ticker, so a list of fifty devices costs
// one goroutine and one fyne.Do per frame, not fifty.
type animator struct {
	mu    sync.Mutex
	start time.Time
	leds  map[*ledLight]struct{}
}

func newAnimator() *animator {
	return &animator{start: time.Now(), leds: map[*ledLight]struct{}{}}
}

// run ticks until ctx is done.
func (a *animator) run(ctx context.Context) {
	t := time.NewTicker(time.Second / animFPS)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.mu.Lock()
			lights := make([]*ledLight, 0, len(a.leds))
			for l := range a.leds {
				lights = append(lights, l)
			}
			a.mu.Unlock()
			if len(lights) == 0 {
				continue
			}
			at := time.Since(a.start)
			onUI(func() {
				for _, l := range lights {
					l.draw(at)
				}
			})
		}
	}
}

func (a *animator) add(l *ledLight) {
	if a == nil {
		return
	}
	a.mu.Lock()
	a.leds[l] = struct{}{}
	a.mu.Unlock()
}

func (a *animator) remove(l *ledLight) {
	if a == nil {
		return
	}
	a.mu.Lock()
	delete(a.leds, l)
	a.mu.Unlock()
}

// ledLight is a round light that shows a led.State with its rhythm. It is only ever
// touched on the UI thread.
type ledLight struct {
	circle *canvas.Circle
	ring   *canvas.Circle
	state  led.State
	box    *fyne.Container
}

func newLEDLight(size float32) *ledLight {
	l := &ledLight{circle: canvas.NewCircle(color.Black), ring: canvas.NewCircle(color.Transparent)}
	l.ring.StrokeColor = color.NRGBA{0x80, 0x80, 0x80, 0xff}
	l.ring.StrokeWidth = 1
	l.box = container.NewGridWrap(fyne.NewSquareSize(size), container.NewStack(l.circle, l.ring))
	l.draw(0)
	return l
}

// set changes the state shown; the next frame draws it.
func (l *ledLight) set(s led.State) {
	l.state = s
	l.draw(0)
}

func (l *ledLight) draw(at time.Duration) {
	var c color.NRGBA
	if l.state.IsZero() || l.state.IsOff() {
		c = color.NRGBA{0x20, 0x20, 0x20, 0xff}
	} else {
		r, g, b := l.state.Pixel(at)
		c = color.NRGBA{r, g, b, 0xff}
	}
	if l.circle.FillColor == color.Color(c) {
		return
	}
	l.circle.FillColor = c
	l.circle.Refresh()
}

// ledView is the device panel's big LED: the light, what it is doing in words ("breathing
// magenta") and what that means, because a colour alone tells a colour-blind person
// nothing.
type ledView struct {
	light   *ledLight
	words   *widget.Label
	meaning *widget.Label
	obj     fyne.CanvasObject
}

func newLEDView(a *animator) *ledView {
	v := &ledView{light: newLEDLight(48), words: widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		meaning: widget.NewLabel("")}
	v.meaning.Wrapping = fyne.TextWrapWord
	a.add(v.light)
	v.obj = container.NewBorder(nil, nil, container.NewVBox(layout.NewSpacer(), v.light.box, layout.NewSpacer()), nil,
		container.NewVBox(v.words, v.meaning))
	return v
}

// newLEDLine is the LED in one line, for the pinned header and the run: a small light,
// the words, and the meaning cut with an ellipsis where the window is narrow (the
// diagnosis below says what matters in full).
func newLEDLine(a *animator) *ledView {
	v := &ledView{light: newLEDLight(22), words: widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		meaning: widget.NewLabel("")}
	v.meaning.Truncation = fyne.TextTruncateEllipsis
	a.add(v.light)
	v.obj = container.NewBorder(nil, nil, container.NewHBox(container.NewCenter(v.light.box), v.words), nil, v.meaning)
	return v
}

func (v *ledView) set(s led.State) {
	v.light.set(s)
	if s.IsZero() {
		v.words.SetText("LED: unknown")
		v.meaning.SetText("")
		return
	}
	v.words.SetText("LED: " + s.String())
	v.meaning.SetText(s.Meaning())
}
