package ui

import (
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"

	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/state"
	"github.com/particle-flasher/particle-flasher/flasher/words"
)

// moduleColumns are the module table's columns: few enough to fit a small window.
var moduleColumns = []string{"Slot", "Version", "Device OS", "Checks"}

// devicePanel is the right side of the Devices tab for one device. Its header (what the
// device is, its LED, the diagnosis and the fix for it) and its action bar (Start,
// Cancel, Resume, Save report) stay put; between them the target, the plan as a checklist,
// the run and its result scroll, with the device's facts and module table behind a
// disclosure, so nothing a person acts on scrolls away.
type devicePanel struct {
	m         *mainUI
	title     *widget.Label
	platform  *widget.Label
	id        *widget.Label
	mode      *widget.Label
	os        *widget.Label
	led       *ledView
	diagnosis *widget.Label
	fixes     *fyne.Container
	// protection, setup and assets are shown where they say something (setup only where
	// Device OS minds the flag, assets where the device holds some).
	protection, setup, assets          *widget.Label
	protectionKey, setupKey, assetsKey *widget.Label
	modules                            *fyne.Container
	identity                           *fyne.Container // serial number, ICCID, IMEI, NCP: what was read
	deps                               *widget.Label
	more                               *widget.Accordion
	section                            *fyne.Container // the target section's body
	bar                                *fyne.Container // the target section's action bar
	content                            *fyne.Container
	header                             *fyne.Container
	body                               *container.Scroll
	hint                               fyne.CanvasObject
	page                               fyne.CanvasObject
	obj                                *fyne.Container
	shownKey                           string
}

func newDevicePanel(m *mainUI) *devicePanel {
	p := &devicePanel{m: m,
		title:         widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		platform:      widget.NewLabel(""),
		id:            widget.NewLabel(""),
		mode:          widget.NewLabel(""),
		os:            widget.NewLabel(""),
		protection:    widget.NewLabel(""),
		setup:         widget.NewLabel(""),
		assets:        widget.NewLabel(""),
		protectionKey: widget.NewLabel("Protection"), setupKey: widget.NewLabel("Setup"), assetsKey: widget.NewLabel("Assets"),
		led:       newLEDLine(m.anim),
		diagnosis: widget.NewLabel(""),
		fixes:     container.NewHBox(),
		modules:   container.NewGridWithColumns(len(moduleColumns)),
		deps:      widget.NewLabel(""),
		section:   container.NewStack(),
		identity:  container.New(layout.NewFormLayout()),
		bar:       container.NewStack(),
	}
	p.title.Truncation = fyne.TextTruncateEllipsis
	p.diagnosis.Wrapping = fyne.TextWrapWord
	p.deps.Wrapping = fyne.TextWrapWord
	p.assets.Wrapping = fyne.TextWrapWord
	p.id.Wrapping = fyne.TextWrapBreak
	facts := container.New(layout.NewFormLayout(),
		widget.NewLabel("Platform"), p.platform,
		widget.NewLabel("Device ID"), p.id,
		widget.NewLabel("Mode"), p.mode,
		widget.NewLabel("Device OS"), p.os,
		p.protectionKey, p.protection,
		p.setupKey, p.setup,
		p.assetsKey, p.assets)
	p.more = widget.NewAccordion(widget.NewAccordionItem("Device details and modules",
		container.NewVBox(facts, p.identity, widget.NewSeparator(), p.modules, p.deps)))
	p.header = container.NewVBox(p.title, p.led.obj, p.diagnosis, p.fixes, widget.NewSeparator())
	header := p.header
	p.content = container.NewVBox(p.section, p.more)
	p.body = container.NewVScroll(p.content)
	p.hint = container.NewCenter(widget.NewLabel("Select a device on the left to see its modules and state."))
	p.obj = container.NewStack(p.hint)
	p.page = container.NewBorder(header, p.bar, nil, nil, p.body)
	return p
}

func (p *devicePanel) none() {
	p.shownKey = ""
	p.obj.Objects = []fyne.CanvasObject{p.hint}
	p.obj.Refresh()
}

func (p *devicePanel) show(d device.Device) {
	if p.shownKey != d.Key {
		p.obj.Objects = []fyne.CanvasObject{p.page}
		p.obj.Refresh()
		parts := p.m.actions(d)
		p.section.Objects = []fyne.CanvasObject{parts.body}
		p.bar.Objects = []fyne.CanvasObject{parts.bar}
		p.section.Refresh()
		p.bar.Refresh()
		p.body.ScrollToTop()
	}
	p.shownKey = d.Key
	name := platformName(d.Platform)
	p.title.SetText(name + " " + orWord(d.ID, "(device ID unknown)") + virtualTag(d))
	p.platform.SetText(name)
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
	lines := diagnose(d)
	p.diagnosis.SetText(strings.Join(lines, "\n"))
	p.diagnosis.Importance = diagnosisImportance(d)
	p.diagnosis.Refresh()
	p.showFixes(d)
	p.setModules(d)
	p.more.Items[0].Title = fmt.Sprintf("Device details and modules (%s)", words.Count(mainModules(d), "module"))
	p.more.Refresh()
	// The table and texts change height: lay the panel out again, the pinned header too
	// (a diagnosis that now wraps to two lines).
	p.header.Refresh()
	p.page.Refresh()
	p.content.Refresh()
	p.body.Refresh()
}

// diagnosisImportance colours the diagnosis: green when all is well, amber for safe mode
// and damaged parts, red when the device cannot run Device OS or cannot be opened.
func diagnosisImportance(d device.Device) widget.Importance {
	switch {
	case d.Err != nil || d.Modules != nil && d.Boot.Mode == state.ModeDFU:
		return widget.DangerImportance
	case d.Modules == nil || d.Missing:
		return widget.MediumImportance
	case d.Boot.Mode == state.ModeNormal && allIntact(d):
		return widget.SuccessImportance
	}
	return widget.WarningImportance
}

func allIntact(d device.Device) bool {
	for _, m := range d.Modules {
		if m.IsMain() && m.Present && !m.Intact() {
			return false
		}
	}
	return true
}

// showFixes offers the ways out of an application-caused safe mode as buttons: each
// chooses that target in the section (the plan is then prepared and Start is ready).
func (p *devicePanel) showFixes(d device.Device) {
	p.fixes.Objects = nil
	// No fix while a run works on the device: it is being changed already.
	if d.Modules != nil && d.Boot.Mode == state.ModeSafe && !p.m.running(d) {
		heals := plan.Heals(d.Reading)
		// The first way out is one button; the others wait behind "Other ways out...", so
		// the header stays one row even in a small window.
		if len(heals) > 0 {
			h := heals[0]
			b := widget.NewButton(fixTitle(h), func() { p.m.fix(d, h) })
			b.Importance = widget.HighImportance
			p.fixes.Add(b)
		}
		if len(heals) > 1 {
			var items []*fyne.MenuItem
			for _, h := range heals[1:] {
				h := h
				items = append(items, fyne.NewMenuItem(fixTitle(h), func() { p.m.fix(d, h) }))
			}
			var more *widget.Button
			more = widget.NewButton("Other ways out...", func() {
				c := fyne.CurrentApp().Driver().CanvasForObject(more)
				if c == nil {
					return
				}
				pos := fyne.CurrentApp().Driver().AbsolutePositionForObject(more)
				widget.ShowPopUpMenuAtPosition(fyne.NewMenu("", items...), c, pos.Add(fyne.NewPos(0, more.Size().Height)))
			})
			p.fixes.Add(more)
		}
	}
	if len(p.fixes.Objects) == 0 {
		p.fixes.Hide()
	} else {
		p.fixes.Show()
	}
	p.fixes.Refresh()
}

// fixTitle words a heal as a button: "Upgrade to 2.3.1 to leave safe mode".
func fixTitle(h plan.Heal) string {
	if h.Kind == plan.HealUpgrade {
		return "Upgrade to " + h.DeviceOS + " to leave safe mode"
	}
	return h.Title
}

func mainModules(d device.Device) int {
	n := 0
	for _, m := range d.Modules {
		if m.IsMain() {
			n++
		}
	}
	return n
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
	if st.ProtectionSays() {
		prot = words.UpperFirst(st.Protection.Words())
	}
	shown(p.protectionKey, p.protection, prot)
	setup := ""
	if st.MindsSetup() {
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
	// Who the unit is, as far as it was read (the same facts pflash inspect prints).
	p.identity.Objects = nil
	for _, f := range st.Identity.Facts() {
		v := widget.NewLabel(f.Value)
		v.Wrapping = fyne.TextWrapBreak
		p.identity.Add(widget.NewLabel(f.Label))
		p.identity.Add(v)
	}
	p.identity.Refresh()
}

// setModules fills the module table: one row per main module, its checks in one column
// so that the table fits a small window, and the dependencies below it.
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
			dos = orWord(orWord(m.DeviceOS, m.Description), "-")
		}
		for _, s := range []string{m.Name, ver, dos, checksWords(m)} {
			l := widget.NewLabel(s)
			l.Truncation = fyne.TextTruncateEllipsis
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

// checksWords is the module's checks in one cell: "PASS", "FAIL: integrity", "missing".
func checksWords(m state.Module) string {
	if !m.Present {
		return "missing"
	}
	if f := m.Failed(); len(f) > 0 {
		return "FAIL: " + strings.Join(f, ", ")
	}
	if len(m.Unchecked) > 0 {
		return "PASS (" + strings.Join(m.Unchecked, ", ") + " not checked)"
	}
	return "PASS"
}
