package state

import (
	"slices"
	"sort"

	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// Device is what is known about one device's firmware: as read through a door, as given
// by module files, or as a plan predicts it after some writes. The methods that change it
// (Write, Invalidate) change the receiver; Clone first to keep the original.
type Device struct {
	Platform *platform.Platform
	// Mode is the mode the device was in when read (ModeUnknown for a prediction or a set
	// of files). Safe mode read over USB shows as normal; Boot tells it.
	Mode Mode
	// Modules is what the device has; empty means nothing is known.
	Modules []Module
	// Unread lists module functions the reading could not see (the NCP's firmware is not
	// in flash that DFU reaches): a dependency on them is unknown rather than unmet.
	Unread []platform.Function
	// Protected: Device Protection is on (Device OS 6.x); such a device may not go below
	// Device OS 6.1.1 and needs service mode for DFU writes.
	Protected bool
	// DeviceOS is the running Device OS version when the device said so ("" = derive it
	// from the system part's module version).
	DeviceOS string
	// YModem: listening-mode YMODEM flashing is known to work. When false the planner
	// assumes it works exactly on Device OS up to 5.9.x (6.0.0 removed it).
	YModem bool
}

// FromFiles describes a device holding exactly these module files, e.g. to plan from
// files instead of a device. A nil platform is taken from the first module. On a platform
// with NCP firmware, the NCP counts as unread unless one of the files is the NCP's.
func FromFiles(p *platform.Platform, mode Mode, mods []*module.Module) Device {
	st := Device{Platform: p, Mode: mode}
	ncp := false
	for _, m := range mods {
		if m == nil {
			continue
		}
		if st.Platform == nil {
			st.Platform, _ = platform.ByID(m.PlatformID)
		}
		st.Modules = append(st.Modules, FromFile(st.Platform, m))
		ncp = ncp || m.Function == platform.FuncNCP
	}
	if st.Platform != nil && st.Platform.HasNCP && !ncp {
		st.Unread = append(st.Unread, platform.FuncNCP)
	}
	st.Resolve()
	return st
}

// Clone returns a copy that can be changed without touching d.
func (d Device) Clone() Device {
	c := d
	c.Modules = make([]Module, len(d.Modules))
	for i, m := range d.Modules {
		m.Deps = slices.Clone(m.Deps)
		m.Unchecked = slices.Clone(m.Unchecked)
		c.Modules[i] = m
	}
	c.Unread = slices.Clone(d.Unread)
	return c
}

// Known reports whether anything is known about the device's modules.
func (d Device) Known() bool { return len(d.Modules) > 0 }

// Main returns the main-store module of this function and index. Where a reading lists
// one slot twice (a duplicate line), an intact report wins.
func (d Device) Main(fn platform.Function, idx uint8) (Module, bool) {
	var found *Module
	for i := range d.Modules {
		m := &d.Modules[i]
		if !m.Present || !m.IsMain() || m.Function != fn || m.Index != idx {
			continue
		}
		if found == nil || !found.Intact() && m.Intact() {
			found = m
		}
	}
	if found == nil {
		return Module{}, false
	}
	return *found, true
}

// Installed lists the present main-store modules, by function and index.
func (d Device) Installed() []Module {
	var out []Module
	seen := map[[2]int]bool{}
	for _, m := range d.Modules {
		if !m.Present || !m.IsMain() {
			continue
		}
		k := [2]int{int(m.Function), int(m.Index)}
		if seen[k] {
			continue
		}
		seen[k] = true
		best, _ := d.Main(m.Function, m.Index)
		out = append(out, best)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Function != out[j].Function {
			return out[i].Function < out[j].Function
		}
		return out[i].Index < out[j].Index
	})
	return out
}

func (d Device) unread(fn platform.Function) bool { return slices.Contains(d.Unread, fn) }

// Meets reports whether the device satisfies a dependency by Device OS's rule (an intact
// module of the same function and index, at least that version); known is false when
// the module cannot be seen (then ok is false too).
func (d Device) Meets(dep module.Dependency) (ok, known bool) {
	m, present := d.Main(dep.Function, dep.Index)
	if !present {
		return false, !d.unread(dep.Function)
	}
	return m.Intact() && m.Version >= dep.Version, true
}

// Unmet lists the dependencies of m the device does not meet (unknown ones included
// when withUnknown).
func (d Device) Unmet(m Module, withUnknown bool) []module.Dependency {
	var out []module.Dependency
	for _, dep := range m.Deps {
		if ok, known := d.Meets(dep.Need()); !ok && (known || withUnknown) {
			out = append(out, dep.Need())
		}
	}
	return out
}

// Resolve fills every module's dependencies with what the device has (Met, Have,
// Unknown), as a person reads them in `pflash inspect`.
func (d *Device) Resolve() {
	for i := range d.Modules {
		for j := range d.Modules[i].Deps {
			dep := &d.Modules[i].Deps[j]
			m, present := d.Main(dep.Function, dep.Index)
			dep.Have, dep.Met, dep.Unknown = 0, false, false
			if present {
				dep.Have = m.Version
				dep.Met = m.Intact() && m.Version >= dep.Version
			} else if d.unread(dep.Function) {
				dep.Unknown = true
			}
		}
	}
}

// SystemVersion is the highest intact system module version (0 = none).
func (d Device) SystemVersion() uint16 {
	var v uint16
	for _, m := range d.Modules {
		if m.Present && m.IsMain() && isSystem(m.Function) && m.Intact() && m.Version > v {
			v = m.Version
		}
	}
	return v
}

// DeviceOSName names the Device OS release the device runs: what it said, else the
// release of its system part ("" when neither is known).
func (d Device) DeviceOSName() string {
	if d.DeviceOS != "" {
		return d.DeviceOS
	}
	best, ver := "", uint16(0)
	for _, m := range d.Modules {
		if m.Present && m.IsMain() && isSystem(m.Function) && m.Version >= ver {
			n := m.DeviceOS
			if n == "" {
				n, _ = module.DeviceOSVersion(m.Function, m.Version)
			}
			if n != "" {
				best, ver = n, m.Version
			}
		}
	}
	return best
}

// Write records a module as installed in its slot: whatever was in that slot is replaced,
// and any module whose known extent the write overlaps is gone (a 1.5.2 system-part1 runs
// over the first bytes of a 256 KB app at 0xB4000). Nothing else changes: an application
// in the other Gen3 user slot stays there (see RunningApp).
func (d *Device) Write(m Module) {
	m.Location = LocationMain
	m.Present = true
	m.Source = SourcePlan
	external := func(x Module) bool { return x.Function == platform.FuncNCP }
	d.Modules = slices.DeleteFunc(d.Modules, func(o Module) bool {
		if !o.IsMain() {
			return false
		}
		if o.Function == m.Function && o.Index == m.Index {
			return true
		}
		if m.Size == 0 || o.Size == 0 || external(m) || external(o) {
			return false
		}
		return uint64(o.Start) < m.End() && uint64(m.Start) < o.End()
	})
	if m.Function == platform.FuncNCP {
		d.Unread = slices.DeleteFunc(d.Unread, func(f platform.Function) bool { return f == platform.FuncNCP })
	}
	d.Modules = append(d.Modules, m)
	d.Resolve()
}

// Invalidate records that the main-store module starting at addr no longer counts (its
// first bytes were erased).
func (d *Device) Invalidate(addr uint32) {
	d.Modules = slices.DeleteFunc(d.Modules, func(o Module) bool {
		return o.IsMain() && o.Present && o.Function != platform.FuncNCP && o.Start == addr
	})
	d.Resolve()
}

func isSystem(fn platform.Function) bool { return fn == platform.FuncSystem || fn == platform.FuncMono }

// IsSystem reports a system part or monolithic firmware: what makes Device OS.
func IsSystem(fn platform.Function) bool { return isSystem(fn) }
