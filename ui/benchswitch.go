package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
)

// benchSwitch is the factory bench's On/Off switch: a large button that says what pressing
// it does, beside a bold line that says where the bench stands, so nobody mistakes a
// running bench for an idle one. It keeps a check box's contract (Checked, SetChecked,
// OnChanged) so the bench code reads the same.
type benchSwitch struct {
	widget.BaseWidget
	Checked   bool
	OnChanged func(on bool)

	btn   *widget.Button
	state *widget.Label
}

func newBenchSwitch(changed func(bool)) *benchSwitch {
	s := &benchSwitch{OnChanged: changed, state: widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})}
	s.btn = widget.NewButton("", func() { s.SetChecked(!s.Checked) })
	s.state.Wrapping = fyne.TextWrapWord
	s.ExtendBaseWidget(s)
	s.show()
	return s
}

// SetChecked switches the bench on or off; OnChanged hears of a change.
func (s *benchSwitch) SetChecked(on bool) {
	if on == s.Checked {
		return
	}
	s.Checked = on
	s.show()
	if s.OnChanged != nil {
		s.OnChanged(on)
	}
}

// Tapped lets the whole switch be tapped (and tests tap it as a person would).
func (s *benchSwitch) Tapped(*fyne.PointEvent) { s.SetChecked(!s.Checked) }

func (s *benchSwitch) show() {
	if s.Checked {
		s.btn.SetText("Switch the bench OFF")
		s.btn.Importance = widget.DangerImportance
		s.state.SetText("The bench is ON: every device plugged in is flashed.")
		s.state.Importance = widget.SuccessImportance
	} else {
		s.btn.SetText("Switch the bench ON")
		s.btn.Importance = widget.HighImportance
		s.state.SetText("The bench is OFF: nothing is flashed.")
		s.state.Importance = widget.MediumImportance
	}
	s.btn.Refresh()
	s.state.Refresh()
}

func (s *benchSwitch) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(container.NewBorder(nil, nil, s.btn, nil, s.state))
}

// shotChildren lists what the switch shows, for the screenshot walk and tests.
func (s *benchSwitch) shotChildren() []fyne.CanvasObject { return []fyne.CanvasObject{s.btn, s.state} }
