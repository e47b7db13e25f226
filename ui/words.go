package ui

import (
	"errors"
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"

	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/led"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/state"
	"github.com/particle-flasher/particle-flasher/flasher/words"
)

// modeWords names a mode for people. Every badge and LED carries these words, so nothing
// depends on telling colours apart.
func modeWords(d device.Device) string {
	var s string
	switch d.Mode {
	case device.ModeNormal:
		s = "Normal"
	case device.ModeSafe:
		s = "Safe mode"
	case device.ModeDFU:
		s = "DFU mode"
	case device.ModeListening:
		s = "Listening mode"
	default:
		s = "Mode unknown"
	}
	if d.Err != nil {
		s = "No access"
	}
	if d.Missing {
		s += " (reconnecting...)"
	}
	return s
}

// ledFor is the LED a device in this mode shows: the watcher knows the mode, not the LED,
// and the mode decides the colour and rhythm a person should see.
func ledFor(d device.Device) led.State {
	if d.Missing {
		return led.Off
	}
	switch d.Mode {
	case device.ModeNormal:
		return led.Connected
	case device.ModeSafe:
		return led.SafeMode
	case device.ModeDFU:
		return led.DFU
	case device.ModeListening:
		return led.Listening
	}
	return led.State{}
}

func platformName(p *platform.Platform) string {
	if p == nil {
		return "Unknown device"
	}
	return p.DisplayName
}

// idWords is the device ID for people (its serial when the ID is unknown), whole.
func idWords(d device.Device) string {
	id := d.ID
	if id == "" {
		id = d.Serial
	}
	if id == "" {
		return "ID unknown"
	}
	// The whole ID: the row's label cuts it with an ellipsis only where there is no room.
	return id
}

// slotName names the slot a dependency points at ("system-part2"), falling back to the
// function and index when the platform table has no such slot.
func slotName(p *platform.Platform, fn platform.Function, idx uint8) string {
	if p != nil {
		if s, ok := p.Slot(fn, idx); ok {
			return s.Name
		}
	}
	return fmt.Sprintf("%s %d", fn, idx)
}

// versionWords turns a module version into the Device OS release people know ("2.3.1"),
// keeping the raw number when the module is not a Device OS part.
func versionWords(fn platform.Function, v uint16) string {
	if v == 0 {
		return "missing"
	}
	if s, ok := module.DeviceOSVersion(fn, v); ok {
		return s
	}
	return fmt.Sprintf("version %d", v)
}

// deviceOS is the Device OS a device runs, as its reading says.
func deviceOS(d device.Device) string {
	if v := d.Reading.DeviceOSName(); v != "" {
		return v
	}
	return state.Device{Platform: d.Platform, Modules: d.Modules}.DeviceOSName()
}

// diagnose explains in plain language what state the device is in and why, from what
// the watcher read. The reason is flasher/state's (Device.Boot), the same sentence
// `pflash inspect`, `pflash list` and the runner give.
func diagnose(d device.Device) []string {
	name := platformName(d.Platform)
	if d.Err != nil {
		return []string{fmt.Sprintf("This %s is plugged in but cannot be opened: %v. See Settings > Permissions.", name, d.Err)}
	}
	if d.Missing {
		return []string{fmt.Sprintf("The %s left USB; waiting a moment in case it is only resetting.", name)}
	}
	if d.Modules == nil {
		if d.ModulesErr != nil {
			return []string{fmt.Sprintf("Could not read the modules: %v.", d.ModulesErr)}
		}
		return []string{"Reading the modules..."}
	}
	var out []string
	b := d.Boot
	switch {
	case d.Mode == device.ModeDFU && b.Mode == state.ModeDFU:
		// The LED line above already says "DFU mode": the diagnosis says why it matters.
		out = append(out, fmt.Sprintf("%s. Flash Device OS to bring this %s back.", words.UpperFirst(b.Why), name))
	case d.Mode == device.ModeDFU && b.Mode == state.ModeSafe:
		out = append(out, fmt.Sprintf("DFU mode. Leaving it would start Device OS in %s.", b))
	case d.Mode == device.ModeSafe || b.Mode == state.ModeSafe && d.Mode.RunsDeviceOS():
		out = append(out, b.Sentence())
	}
	for _, m := range d.Modules {
		if !m.IsMain() || !m.Present || m.Intact() || b.Module != nil && b.Module.Function == m.Function && b.Module.Index == m.Index {
			continue
		}
		p := m.Problem
		if p == "" {
			p = "fails its " + strings.Join(m.Failed(), " and ") + " check"
		}
		out = append(out, fmt.Sprintf("%s %s.", words.UpperFirst(m.Name), p))
	}
	if len(out) == 0 {
		if v := deviceOS(d); v != "" {
			out = append(out, fmt.Sprintf("All modules are valid. Device OS %s.", v))
		} else {
			out = append(out, "All modules read are valid.")
		}
	}
	if d.Duplicate {
		out = append(out, "Another plugged-in unit reports the same ID: unplug one of them before flashing.")
	}
	return out
}

// check is one PASS/FAIL cell in words.
func check(m state.Module, name string, ok bool) string {
	if !m.Present {
		return "missing"
	}
	for _, u := range m.Unchecked {
		if u == name {
			return "not checked"
		}
	}
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func depsWords(p *platform.Platform, m state.Module) string {
	if !m.Present {
		return "missing"
	}
	if len(m.Deps) == 0 {
		return "none"
	}
	var parts []string
	for _, d := range m.Deps {
		verdict := "PASS"
		switch {
		case d.Unknown:
			verdict = "unknown"
		case !d.Met:
			verdict = "FAIL (has " + versionWords(d.Function, d.Have) + ")"
		}
		parts = append(parts, fmt.Sprintf("%s >= %s: %s", slotName(p, d.Function, d.Index), versionWords(d.Function, d.Version), verdict))
	}
	return strings.Join(parts, "; ")
}

// depsVerdict is the Dependencies cell: one word for all of a module's dependencies.
func depsVerdict(m state.Module) string {
	if !m.Present {
		return "missing"
	}
	if len(m.Deps) == 0 {
		return "none"
	}
	v := "PASS"
	for _, d := range m.Deps {
		if d.Unknown && v == "PASS" {
			v = "unknown"
		}
		if !d.Met && !d.Unknown {
			return "FAIL"
		}
	}
	return v
}

// showError shows an error dialog for people: the message without the wrapping chain and
// what to do (errorWords), never a command line.
func showError(err error, w fyne.Window) {
	if err == nil {
		return
	}
	dialog.ShowError(errors.New(errorWords(err)), w)
}

// isVirtual reports one of the demo's virtual devices (reached through demo.Bus).
func isVirtual(d device.Device) bool {
	for _, dr := range d.Doors {
		if dr.Path == demo.Path {
			return true
		}
	}
	return false
}

// virtualTag marks a virtual device's name, so nobody mistakes the demo for hardware.
func virtualTag(d device.Device) string {
	if isVirtual(d) {
		return " (virtual)"
	}
	return ""
}
