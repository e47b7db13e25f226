package ui

import (
	"fmt"
	"strings"

	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/led"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
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

func shortID(d device.Device) string {
	id := d.ID
	if id == "" {
		id = d.Serial
	}
	if id == "" {
		return "ID unknown"
	}
	if len(id) > 8 {
		return id[:8] + "..."
	}
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

// deviceOS is the Device OS a device runs, from its first system part.
func deviceOS(d device.Device) string {
	for _, m := range d.Modules {
		if m.Present && m.Function == platform.FuncSystem && m.Location == "main" && m.DeviceOS != "" {
			return m.DeviceOS
		}
	}
	for _, m := range d.Modules {
		if m.Present && m.Function == platform.FuncMono && m.DeviceOS != "" {
			return m.DeviceOS
		}
	}
	return ""
}

// diagnose explains in plain language what state the device is in and why, from what
// the watcher read: what a technician would otherwise work out from the module table.
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
	prefix := ""
	switch d.Mode {
	case device.ModeSafe:
		prefix = "Safe mode: "
	case device.ModeDFU:
		prefix = "DFU mode: "
	}
	var out []string
	for _, m := range d.Modules {
		if m.Location != "main" {
			continue
		}
		if !m.Present {
			if m.Function == platform.FuncSystem || m.Function == platform.FuncRadio || m.Function == platform.FuncBootloader {
				out = append(out, fmt.Sprintf("%s%s is missing: this %s has no complete Device OS. Flash Device OS to bring it back.", prefix, m.Name, name))
			}
			continue
		}
		who := m.Name
		if m.Function == platform.FuncUser {
			who = "your app"
		}
		for _, dep := range m.Dependencies {
			if dep.Met || dep.Unknown {
				continue
			}
			need := versionWords(dep.Function, dep.Version)
			what := "Device OS " + need
			if dep.Function == platform.FuncRadio {
				what = fmt.Sprintf("%s version %d", slotName(d.Platform, dep.Function, dep.Index), dep.Version)
			}
			out = append(out, fmt.Sprintf("%s%s needs %s but %s is %s.", prefix, who, what,
				slotName(d.Platform, dep.Function, dep.Index), versionWords(dep.Function, dep.Have)))
		}
		if fails := m.Failed(); len(fails) > 0 && !(len(fails) == 1 && fails[0] == "dependencies") {
			p := m.Problem
			if p == "" {
				p = "fails its " + strings.Join(fails, ", ") + " check"
			}
			out = append(out, fmt.Sprintf("%s%s %s.", prefix, m.Name, p))
		}
	}
	if len(out) == 0 {
		if d.Mode == device.ModeSafe {
			out = append(out, "Safe mode: Device OS runs but your app does not (it is missing or was stopped).")
		} else if v := deviceOS(d); v != "" {
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
func check(m device.ModuleStatus, name string, ok bool) string {
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

func depsWords(p *platform.Platform, m device.ModuleStatus) string {
	if !m.Present {
		return "missing"
	}
	if len(m.Dependencies) == 0 {
		return "none"
	}
	var parts []string
	for _, d := range m.Dependencies {
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
func depsVerdict(m device.ModuleStatus) string {
	if !m.Present {
		return "missing"
	}
	if len(m.Dependencies) == 0 {
		return "none"
	}
	v := "PASS"
	for _, d := range m.Dependencies {
		if d.Unknown && v == "PASS" {
			v = "unknown"
		}
		if !d.Met && !d.Unknown {
			return "FAIL"
		}
	}
	return v
}
