package ui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/led"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// wizardHold is how long the last frame of the button animation stays before it loops,
// so a person can read the final caption.
const wizardHold = 3 * time.Second

// wizard is the recovery wizard for a device that does not show up or does not answer:
// the person picks the board, follows the animated button sequence into DFU mode, and
// the wizard carries on by itself when a DFU device appears.
type wizard struct {
	m        *mainUI
	board    *widget.Select
	boards   []*platform.Platform
	chosen   *platform.Platform
	holding  *widget.Label
	say      *widget.Label
	recipe   *widget.Label
	light    *ledLight
	ledWords *widget.Label
	status   *widget.Label
	start    *widget.Button
	goTo     *widget.Button // "Show it in Devices", for a board already connected
	steps    []led.Step
	waiting  bool
	found    string // key of the DFU device that appeared
	stopAnim context.CancelFunc
	obj      fyne.CanvasObject
}

func newWizard(m *mainUI) *wizard {
	z := &wizard{m: m, holding: widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		say: widget.NewLabel(""), recipe: widget.NewLabel(""), light: newLEDLight(64), ledWords: widget.NewLabel(""),
		status: widget.NewLabel("Pick your board, then follow the steps.")}
	z.say.Wrapping = fyne.TextWrapWord
	z.recipe.Wrapping = fyne.TextWrapWord
	z.status.Wrapping = fyne.TextWrapWord
	var names []string
	for _, p := range platform.All() {
		z.boards = append(z.boards, p)
		names = append(names, p.DisplayName)
	}
	z.board = widget.NewSelect(names, func(s string) {
		for _, p := range z.boards {
			if p.DisplayName == s {
				z.pick(p)
				return
			}
		}
	})
	z.board.PlaceHolder = "Which board is it?"
	z.start = widget.NewButton("I have done it: wait for my device", func() { z.wait() })
	z.start.Disable()
	z.goTo = widget.NewButton("Show it in Devices", nil)
	z.goTo.Importance = widget.HighImportance
	z.goTo.Hide()
	intro := widget.NewLabel("Use this when a device does not appear in the list or does not answer. " +
		"Putting it in DFU mode (blinking yellow) with its buttons works even when its firmware is broken.")
	intro.Wrapping = fyne.TextWrapWord
	z.obj = container.NewVScroll(container.NewVBox(
		widget.NewLabelWithStyle("Recovery wizard", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		intro, z.board, z.recipe,
		container.NewBorder(nil, nil, container.NewCenter(z.light.box), nil, container.NewVBox(z.holding, z.say, z.ledWords)),
		z.start, z.status, z.goTo))
	return z
}

// pick shows the chosen board's button sequence and starts its animation.
func (z *wizard) pick(p *platform.Platform) {
	z.chosen = p
	z.recipe.SetText(led.Buttons(p, led.GoalDFU))
	z.steps = led.TimelineFor(p, led.GoalDFU)
	z.start.Enable()
	z.waiting = true
	z.found = ""
	z.status.SetText("Waiting for a " + p.DisplayName + " in DFU mode...")
	if z.stopAnim != nil {
		z.stopAnim()
	}
	z.goTo.Hide()
	if len(z.steps) == 0 {
		z.holding.SetText("This board has no MODE button you can reach.")
		z.say.SetText("")
		z.light.set(led.DFU)
		z.ledWords.SetText("Expected LED: " + led.DFU.String())
		z.already(p)
		return
	}
	z.frame(0)
	if z.already(p) {
		return
	}
	ctx, cancel := context.WithCancel(z.m.ctx)
	z.stopAnim = cancel
	steps := z.steps
	go func() {
		began := time.Now()
		loop := led.Duration(steps) + wizardHold
		t := time.NewTicker(time.Second / animFPS)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				at := time.Since(began) % loop
				onUI(func() {
					if ctx.Err() == nil {
						z.frame(at)
					}
				})
			}
		}
	}()
}

// already notices a board of this kind that is connected now: one in DFU mode is the one
// being rescued (the wizard is done at once); one in another mode answers over USB, so
// no buttons are needed: the app puts it in DFU mode itself when it flashes.
func (z *wizard) already(p *platform.Platform) bool {
	var other *device.Device
	for _, k := range z.m.order {
		d := z.m.devices[k]
		if d.Platform == nil || d.Platform.ID != p.ID || d.Missing || z.m.held(d.ID) {
			continue
		}
		if d.Mode == device.ModeDFU {
			z.seen(d)
			return true
		}
		if other == nil {
			other = &d
		}
	}
	if other != nil {
		d := *other
		z.status.SetText(fmt.Sprintf("Your %s %s is already connected, in %s. It answers over USB, so no buttons are needed: "+
			"choose a Device OS version in its panel and Particle Flasher puts it in DFU mode itself.", platformName(d.Platform), idWords(d), modeWords(d)))
		z.goTo.OnTapped = func() { z.m.selectKey(d.Key) }
		z.goTo.Show()
	}
	return false
}

// frame draws the animation at time at: which buttons are held, the caption and the LED.
func (z *wizard) frame(at time.Duration) {
	s := led.StepAt(z.steps, at)
	held := "Release all buttons"
	if len(s.Hold) > 0 {
		held = "Hold: " + strings.Join(s.Hold, " + ")
	}
	z.holding.SetText(held)
	z.say.SetText(s.Say)
	st := s.LED
	z.light.state = st
	z.light.draw(at - s.At)
	if st.IsZero() {
		z.ledWords.SetText("")
	} else {
		z.ledWords.SetText("LED: " + st.String())
	}
}

// wait is the person saying they did it; the wizard is already watching, this only says so.
func (z *wizard) wait() {
	z.waiting = true
	if z.found == "" {
		z.status.SetText("Waiting for a " + platformName(z.chosen) + " in DFU mode (blinking yellow)... If it does not come, try the sequence again, or another cable.")
	}
}

// seen is called for every device that appears or changes mode. A DFU device of the
// chosen board (any board when none is chosen yet) ends the wizard: it is handed to the
// device panel.
func (z *wizard) seen(d device.Device) {
	if !z.waiting || d.Mode != device.ModeDFU || z.m.held(d.ID) {
		return // a device a run or the bench put in DFU mode is not the one being rescued
	}
	if z.chosen != nil && d.Platform != nil && d.Platform.ID != z.chosen.ID {
		return
	}
	z.waiting = false
	z.found = d.Key
	if z.stopAnim != nil {
		z.stopAnim()
		z.stopAnim = nil
	}
	z.light.set(led.DFU)
	z.ledWords.SetText("LED: " + led.DFU.String())
	z.holding.SetText("Done")
	z.status.SetText("Found your " + platformName(d.Platform) + " " + idWords(d) + " in DFU mode. It is selected in Devices.")
	z.m.selectKey(d.Key)
}
