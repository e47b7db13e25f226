package plan

import (
	"sort"

	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// slotKey identifies a module the way dependencies name it: function and index (the Gen3
// system-part1 moved address in 6.1.2 but is still system 1).
type slotKey struct {
	fn  platform.Function
	idx uint8
}

func keyOf(fn platform.Function, idx uint8) slotKey { return slotKey{fn, idx} }

// model is the planner's picture of the device's flash as the plan progresses: which
// module each slot holds. It answers the two questions ordering depends on after every
// write: can Device OS start (so control requests and the OTA-region trick work), and in
// which mode will the device come up.
type model struct {
	p    *platform.Platform
	mods map[slotKey]Installed
	// ncpKnown: the state listed NCP firmware. DFU cannot read the NCP, so its absence
	// from a DFU-read state means "unknown", not "missing".
	ncpKnown bool
}

func newModel(st DeviceState) *model {
	m := &model{p: st.Platform, mods: map[slotKey]Installed{}}
	for _, in := range st.Modules {
		k := keyOf(in.Function, in.Index)
		// Several reports for one slot (a factory copy, a duplicate line): a valid one wins.
		if old, dup := m.mods[k]; dup && old.Valid && !in.Valid {
			continue
		}
		m.mods[k] = in
		if in.Function == platform.FuncNCP {
			m.ncpKnown = true
		}
	}
	return m
}

func (m *model) clone() *model {
	c := &model{p: m.p, mods: make(map[slotKey]Installed, len(m.mods)), ncpKnown: m.ncpKnown}
	for k, v := range m.mods {
		c.mods[k] = v
	}
	return c
}

// meets reports whether the model satisfies d; known is false when the slot cannot be
// read (NCP firmware never listed), in which case ok is false too.
func (m *model) meets(d module.Dependency) (ok, known bool) {
	in, present := m.mods[keyOf(d.Function, d.Index)]
	if !present {
		if d.Function == platform.FuncNCP && !m.ncpKnown {
			return false, false
		}
		return false, true
	}
	return in.Valid && in.Version >= d.Version, true
}

func isSystem(fn platform.Function) bool { return fn == platform.FuncSystem || fn == platform.FuncMono }

// bootChecked reports whether Device OS keeps checking a module's dependencies after it
// is installed. System parts, the application and the bootloader are validated at every
// start (safe mode when they fail, reference §6a); a SoftDevice's or NCP firmware's
// dependencies only say which Device OS can install it, so a later downgrade of the
// system part does not undo them (Device Restore never downgrades the Tracker's NCP).
func bootChecked(fn platform.Function) bool {
	return fn != platform.FuncRadio && fn != platform.FuncNCP
}

// runnable reports whether Device OS can start: at least one system module, every system
// module intact, and their dependencies on other system parts and on the radio stack met.
// Unmet bootloader, NCP or application dependencies still let Device OS run (in safe
// mode); a broken system part sends the bootloader to DFU mode (reference §2a, §6a).
func (m *model) runnable() bool {
	found := false
	for _, in := range m.mods {
		if !isSystem(in.Function) {
			continue
		}
		if !in.Valid {
			return false
		}
		found = true
		for _, d := range in.Deps {
			if isSystem(d.Function) || d.Function == platform.FuncRadio {
				if ok, _ := m.meets(d); !ok {
					return false
				}
			}
		}
	}
	return found
}

// bootMode is the mode the device comes up in after a reset: DFU when Device OS cannot
// start, safe mode when any module's dependency is unmet or there is no valid
// application, normal otherwise. A dependency on firmware nobody could read (the NCP of a
// device read over DFU) counts as met; see bootModeWary.
func (m *model) bootMode() Mode { return m.boot(false) }

// bootModeWary is bootMode counting unreadable dependencies as unmet: the LED to announce
// in the middle of a plan, where "safe mode is expected" is the right thing to say if the
// NCP turns out to be old (and breathing cyan is then welcome news).
func (m *model) bootModeWary() Mode { return m.boot(true) }

func (m *model) boot(wary bool) Mode {
	if !m.runnable() {
		return ModeDFU
	}
	_, app := m.activeApp()
	for _, in := range m.mods {
		if !in.Valid {
			if in.Function == platform.FuncUser && !app {
				return ModeSafe
			}
			continue
		}
		if !bootChecked(in.Function) || m.ignored(in) {
			continue
		}
		for _, d := range in.Deps {
			if ok, known := m.meets(d); !ok && (known || wary) {
				return ModeSafe
			}
		}
	}
	if !app {
		return ModeSafe
	}
	return ModeNormal
}

// activeApp is the application Device OS runs: the intact user part with the lowest
// index, since a valid 128 KB Gen3 app at 0xD4000 wins over a 256 KB one (reference
// §6c.5). Other user parts are leftovers nobody runs or checks.
func (m *model) activeApp() (Installed, bool) {
	var best Installed
	found := false
	for _, in := range m.mods {
		if in.Function == platform.FuncUser && in.Valid && (!found || in.Index < best.Index) {
			best, found = in, true
		}
	}
	return best, found
}

// ignored reports a module whose dependencies nobody checks any more: an application
// that is not the active one.
func (m *model) ignored(in Installed) bool {
	if in.Function != platform.FuncUser {
		return false
	}
	a, ok := m.activeApp()
	return ok && a.Index != in.Index
}

// unmetOf lists the dependencies of in that the model does not meet (unknown ones
// included when withUnknown).
func (m *model) unmetOf(in Installed, withUnknown bool) []module.Dependency {
	var out []module.Dependency
	for _, d := range in.Deps {
		if ok, known := m.meets(d); !ok && (known || withUnknown) {
			out = append(out, d)
		}
	}
	return out
}

// systemVersion is the highest intact system module version (0 = none).
func (m *model) systemVersion() uint16 {
	var v uint16
	for _, in := range m.mods {
		if isSystem(in.Function) && in.Valid && in.Version > v {
			v = in.Version
		}
	}
	return v
}

// write records a module as installed. Modules whose known extent the write overlaps are
// gone (a 1.5.2 system-part1 runs over a 256 KB app at 0xB4000); a new application
// supersedes every other one (a 256 KB app comes with the old 128 KB one invalidated, and
// a valid 128 KB app wins over a 256 KB one at boot, reference §6c.5).
func (m *model) write(in Installed) {
	k := keyOf(in.Function, in.Index)
	delete(m.mods, k)
	if in.Size > 0 && in.Function != platform.FuncNCP {
		start, end := uint64(in.Start), uint64(in.Start)+uint64(in.Size)
		for k, o := range m.mods {
			if o.Size == 0 || o.Function == platform.FuncNCP {
				continue
			}
			ostart, oend := uint64(o.Start), uint64(o.Start)+uint64(o.Size)
			if ostart < end && start < oend {
				delete(m.mods, k)
			}
		}
	}
	if in.Function == platform.FuncUser {
		for k := range m.mods {
			if k.fn == platform.FuncUser {
				delete(m.mods, k)
			}
		}
	}
	if in.Function == platform.FuncNCP {
		m.ncpKnown = true
	}
	m.mods[k] = in
}

// invalidate records that the module starting at addr no longer counts.
func (m *model) invalidate(addr uint32) {
	for k, in := range m.mods {
		if in.Start == addr {
			delete(m.mods, k)
		}
	}
}

// list returns the modules sorted by function and index.
func (m *model) list() []Installed {
	out := make([]Installed, 0, len(m.mods))
	for _, in := range m.mods {
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Function != out[j].Function {
			return out[i].Function < out[j].Function
		}
		return out[i].Index < out[j].Index
	})
	return out
}
