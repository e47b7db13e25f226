package ui

import (
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"

	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// moduleColumns are the modules table's headings.
var moduleColumns = []string{"Slot", "Version", "Device OS", "Integrity", "Range", "Platform", "Dependencies", "Verdict"}

// devicePanel is the right-hand side: everything about the selected device.
type devicePanel struct {
	m        *mainUI
	title    *widget.Label
	platform *widget.Label
	id       *widget.Label
	mode     *widget.Label
	os       *widget.Label
	// protection, setup and assets are shown where they say something (setup only where
	// Device OS minds the flag, assets where the device holds some).
	protection, setup, assets          *widget.Label
	protectionKey, setupKey, assetsKey *widget.Label
	led                                *ledView
	diagnosis                          *widget.Label
	modules                            *fyne.Container
	deps                               *widget.Label
	content                            *fyne.Container
	actions                            *fyne.Container
	body                               *container.Scroll
	hint                               fyne.CanvasObject
	obj                                *fyne.Container
	shownKey                           string
}

func newDevicePanel(m *mainUI) *devicePanel {
	p := &devicePanel{m: m,
		title:      widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		platform:   widget.NewLabel(""),
		id:         widget.NewLabel(""),
		mode:       widget.NewLabel(""),
		os:         widget.NewLabel(""),
		protection: widget.NewLabel(""), setup: widget.NewLabel(""), assets: widget.NewLabel(""),
		protectionKey: widget.NewLabel("Protection"), setupKey: widget.NewLabel("Setup"), assetsKey: widget.NewLabel("Assets"),
		led:       newLEDView(m.anim),
		diagnosis: widget.NewLabel(""),
		modules:   container.NewGridWithColumns(len(moduleColumns)),
		deps:      widget.NewLabel(""),
		actions:   container.NewStack(),
	}
	p.diagnosis.Wrapping = fyne.TextWrapWord
	p.diagnosis.Importance = widget.WarningImportance
	facts := container.New(layout.NewFormLayout(),
		widget.NewLabel("Platform"), p.platform,
		widget.NewLabel("Device ID"), p.id,
		widget.NewLabel("Mode"), p.mode,
		widget.NewLabel("Device OS"), p.os,
		p.protectionKey, p.protection,
		p.setupKey, p.setup,
		p.assetsKey, p.assets)
	p.assets.Wrapping = fyne.TextWrapWord
	p.deps.Wrapping = fyne.TextWrapWord
	p.content = container.NewVBox(p.title, facts, widget.NewSeparator(), p.led.obj,
		widget.NewSeparator(), widget.NewLabelWithStyle("Diagnosis", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), p.diagnosis,
		widget.NewSeparator(), widget.NewLabelWithStyle("Modules", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), container.NewHScroll(p.modules), p.deps,
		widget.NewSeparator(), p.actions)
	p.body = container.NewVScroll(p.content)
	p.hint = container.NewCenter(widget.NewLabel("Select a device on the left to see its modules and state."))
	p.obj = container.NewStack(p.hint)
	return p
}

func (p *devicePanel) none() {
	p.shownKey = ""
	p.obj.Objects = []fyne.CanvasObject{p.hint}
	p.obj.Refresh()
}

func (p *devicePanel) show(d device.Device) {
	if p.shownKey != d.Key {
		p.obj.Objects = []fyne.CanvasObject{p.body}
		p.obj.Refresh()
		p.actions.Objects = []fyne.CanvasObject{p.m.actions(d)}
		p.actions.Refresh()
	}
	p.shownKey = d.Key
	p.title.SetText(platformName(d.Platform) + " " + shortID(d))
	p.platform.SetText(platformName(d.Platform))
	id := d.ID
	if id == "" {
		id = "unknown (serial " + d.Serial + ")"
	}
	p.id.SetText(id)
	p.mode.SetText(modeWords(d))
	if v := deviceOS(d); v != "" {
		p.os.SetText(v)
	} else {
		p.os.SetText("none found")
	}
	p.showFacts(d)
	p.led.set(ledFor(d))
	p.diagnosis.SetText(strings.Join(diagnose(d), "\n"))
	p.setModules(d)
	// The table and texts change height: lay the panel out again.
	p.content.Refresh()
	p.body.Refresh()
}

// showFacts shows Device Protection, the setup-done flag and the assets, each where the
// reading says something about it.
func (p *devicePanel) showFacts(d device.Device) {
	st := d.Reading
	shown := func(key, val *widget.Label, text string) {
		val.SetText(text)
		if text == "" {
			key.Hide()
			val.Hide()
		} else {
			key.Show()
			val.Show()
		}
	}
	prot := ""
	// Device Protection exists from Device OS 6.0: before that "open" says nothing.
	if st.Protection != state.ProtectionUnknown && (st.Protection != state.ProtectionOpen || st.SystemVersion() >= 6000) {
		prot = upperFirst(st.Protection.Words())
	}
	shown(p.protectionKey, p.protection, prot)
	setup := ""
	if sd := st.Platform.SetupDoneFlag(); sd != nil && st.SystemVersion() != 0 && st.SystemVersion() < sd.Until {
		switch st.SetupDone {
		case state.FlagYes:
			setup = "Done"
		case state.FlagNo:
			setup = "Not done: Device OS before 4.0 waits in listening mode (blinking dark blue) until it is"
		}
	}
	shown(p.setupKey, p.setup, setup)
	var names []string
	for _, a := range st.Assets {
		names = append(names, a.Name)
	}
	shown(p.assetsKey, p.assets, strings.Join(names, ", "))
}

func (p *devicePanel) setModules(d device.Device) {
	var cells []fyne.CanvasObject
	var deps []string
	for _, h := range moduleColumns {
		cells = append(cells, widget.NewLabelWithStyle(h, fyne.TextAlignLeading, fyne.TextStyle{Bold: true}))
	}
	for _, m := range d.Modules {
		if m.Location != "main" {
			continue
		}
		ver, dos := "missing", "missing"
		if m.Present {
			ver = fmt.Sprint(m.Version)
			dos = m.DeviceOS
			if dos == "" {
				dos = m.Description
			}
			if dos == "" {
				dos = "-"
			}
		}
		verdict := "PASS"
		switch {
		case !m.Present:
			verdict = "FAIL: missing"
		case !m.Valid():
			verdict = "FAIL"
		}
		for _, s := range []string{m.Name, ver, dos,
			check(m, "integrity", m.Checks.Integrity), check(m, "range", m.Checks.Range),
			check(m, "platform", m.Checks.Platform), depsVerdict(m), verdict} {
			l := widget.NewLabel(s)
			if strings.HasPrefix(s, "FAIL") || s == "missing" {
				l.Importance = widget.DangerImportance
			}
			cells = append(cells, l)
		}
	}
	for _, m := range d.Modules {
		if m.Location == "main" && m.Present && len(m.Deps) > 0 {
			deps = append(deps, m.Name+" needs "+depsWords(d.Platform, m))
		}
	}
	if len(deps) > 0 {
		p.deps.SetText("Dependencies:\n" + strings.Join(deps, "\n"))
	} else {
		p.deps.SetText("")
	}
	p.modules.Objects = cells
	p.modules.Refresh()
}
