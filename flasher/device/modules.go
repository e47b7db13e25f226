package device

import (
	"sort"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/listen"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// Where ModuleStatus values come from.
const (
	SourceControl = "control"
	SourceSerial  = "serial"
	SourceDFU     = "dfu"
)

// Validity bits shared by control request 90 and the `s` JSON (module_validation_flags_t).
var checkBits = []struct {
	name string
	bit  uint32
}{{"integrity", ctrl.ValidIntegrity}, {"range", ctrl.ValidRange}, {"platform", ctrl.ValidPlatform}, {"dependencies", ctrl.ValidDependencies}}

// fromBits fills checks and the unchecked list from checked/passed bit masks.
func fromBits(m *ModuleStatus, checked, passed uint32) {
	for _, c := range checkBits {
		ok := passed&c.bit != 0
		switch c.name {
		case "integrity":
			m.Checks.Integrity = ok
		case "range":
			m.Checks.Range = ok
		case "platform":
			m.Checks.Platform = ok
		case "dependencies":
			m.Checks.Dependencies = ok
		}
		if checked&c.bit == 0 {
			m.Unchecked = append(m.Unchecked, c.name)
		}
	}
}

func locationName(store string) string {
	switch store {
	case "", ctrl.StoreMain, "m":
		return "main"
	case ctrl.StoreFactory, "f":
		return "factory"
	case ctrl.StoreBackup, "b":
		return "backup"
	case ctrl.StoreScratchpad, "t":
		return "scratchpad"
	}
	return store
}

// describe fills the names: slot name, Device OS release, SoftDevice name.
func describe(p *platform.Platform, m *ModuleStatus) {
	if p != nil {
		if s, ok := p.SlotFor(m.Function, m.Index, m.Version); ok {
			m.Name = s.Name
		} else if s, ok := p.Slot(m.Function, m.Index); ok {
			m.Name = s.Name
		}
	}
	if !m.Present {
		return
	}
	switch m.Function {
	case platform.FuncSystem, platform.FuncMono:
		m.DeviceOS, _ = module.DeviceOSVersion(m.Function, m.Version)
	case platform.FuncBootloader:
		if m.Index == 0 {
			m.DeviceOS, _ = module.DeviceOSVersion(m.Function, m.Version)
		}
	case platform.FuncRadio:
		m.Description, _ = module.RadioStackName(m.Version)
	}
}

// resolveDependencies marks each dependency met or not against the main-store modules of
// the same reading, with Device OS's rule (same function and index, version at least the
// one required). Dependencies on memories the door cannot see stay Unknown.
func resolveDependencies(p *platform.Platform, mods []ModuleStatus, source string) {
	have := func(fn platform.Function, idx uint8) (uint16, bool) {
		for _, m := range mods {
			if m.Present && m.Location == "main" && m.Function == fn && m.Index == idx {
				return m.Version, true
			}
		}
		return 0, false
	}
	for i := range mods {
		for j := range mods[i].Dependencies {
			d := &mods[i].Dependencies[j]
			v, ok := have(d.Function, d.Index)
			d.Have = v
			d.Met = ok && v >= d.Version
			if !ok && source == SourceDFU && p != nil {
				if s, found := p.Slot(d.Function, d.Index); found && s.Storage != platform.StorageInternal {
					d.Unknown = true
				}
			}
		}
	}
}

// FromControl converts the reply to control request 90.
func FromControl(p *platform.Platform, infos []ctrl.ModuleInfo) []ModuleStatus {
	out := make([]ModuleStatus, 0, len(infos))
	for _, mi := range infos {
		m := ModuleStatus{Function: platform.Function(mi.Function), Index: mi.Index, Version: uint16(mi.Version),
			Location: locationName(mi.Store), Present: true, Size: mi.Size, MaxSize: mi.MaxSize, Source: SourceControl,
			Dependencies: []Dependency{}}
		fromBits(&m, mi.Checked, mi.Passed)
		for _, d := range mi.Dependencies {
			m.Dependencies = append(m.Dependencies, Dependency{Function: platform.Function(d.Function), Index: d.Index, Version: uint16(d.Version)})
		}
		describe(p, &m)
		out = append(out, m)
	}
	resolveDependencies(p, out, SourceControl)
	for i := range out {
		out[i].settle()
	}
	return out
}

// FromSerial converts the `s` reply. Empty slots are kept (Present false): a person wants
// to see that the user part is missing.
func FromSerial(p *platform.Platform, si *listen.SystemInfo) []ModuleStatus {
	out := []ModuleStatus{}
	if si == nil {
		return out
	}
	for _, mi := range si.Modules {
		m := ModuleStatus{Function: mi.Function, Index: uint8(mi.Index), Version: uint16(mi.Version),
			Location: locationName(mi.Location), Present: !mi.Empty, MaxSize: uint32(mi.MaxSize), Source: SourceSerial,
			Dependencies: []Dependency{}}
		fromBits(&m, uint32(mi.Checked), uint32(mi.Passed))
		for _, d := range mi.Dependencies {
			m.Dependencies = append(m.Dependencies, Dependency{Function: d.Function, Index: uint8(d.Index), Version: uint16(d.Version)})
		}
		describe(p, &m)
		out = append(out, m)
	}
	resolveDependencies(p, out, SourceSerial)
	for i := range out {
		out[i].settle()
	}
	return out
}

// FromDFU converts a DFU-mode reading (dfu.ReadModules).
func FromDFU(p *platform.Platform, slots []dfu.SlotModule) []ModuleStatus {
	out := make([]ModuleStatus, 0, len(slots))
	for _, s := range slots {
		present := s.State == dfu.SlotPresent || s.State == dfu.SlotCorrupt
		m := ModuleStatus{Function: s.Function, Index: s.Index, Version: s.Version, Location: locationName(s.Location),
			Present: present, Address: s.Address, Size: s.Size, MaxSize: s.Slot.MaxSize, Problem: s.Problem, Source: SourceDFU,
			Dependencies: []Dependency{}, Checks: Checks(s.Checks)}
		switch s.State {
		case dfu.SlotErased:
			m.Problem = "empty (erased)"
		case dfu.SlotUnreadable:
			m.Present = false
		}
		if present && !s.IntegrityChecked && s.Module != nil {
			m.Unchecked = append(m.Unchecked, "integrity")
		}
		if s.State == dfu.SlotCorrupt && s.Module == nil && s.Version == 0 {
			// Nothing decodable: no header, so nothing was checked but integrity failed.
			m.Unchecked = []string{"range", "platform", "dependencies"}
		}
		for _, d := range s.Dependencies {
			m.Dependencies = append(m.Dependencies, Dependency{Function: d.Function, Index: d.Index, Version: d.Version})
		}
		m.Name = s.Slot.Name
		describe(p, &m)
		if s.Slot.Name != "" {
			m.Name = s.Slot.Name
		}
		out = append(out, m)
	}
	resolveDependencies(p, out, SourceDFU)
	for i := range out {
		for _, d := range out[i].Dependencies {
			if d.Unknown && !out[i].Checks.Dependencies {
				out[i].Unchecked = append(out[i].Unchecked, "dependencies")
				break
			}
		}
		out[i].settle()
	}
	// Device OS's order (bootloader, system parts, user parts, then the radio stack), not
	// flash order, so every door lists a device the same way.
	rank := map[platform.Function]int{platform.FuncBootloader: 0, platform.FuncMono: 1, platform.FuncSystem: 2, platform.FuncUser: 3, platform.FuncRadio: 4, platform.FuncNCP: 5}
	r := func(f platform.Function) int {
		if v, ok := rank[f]; ok {
			return v
		}
		return 6
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if (a.Location == "main") != (b.Location == "main") {
			return a.Location == "main"
		}
		if r(a.Function) != r(b.Function) {
			return r(a.Function) < r(b.Function)
		}
		return a.Index < b.Index
	})
	return out
}

// inferSafe reports whether a normal-mode module table shows what Device OS boots into
// safe mode for: a main-store module that failed a check it ran (prior-art §1a: Device OS
// reports safe mode as normal over USB, the CLI infers it from a failed dependency).
func inferSafe(mods []ModuleStatus) bool {
	for _, m := range mods {
		if m.Present && m.Location == "main" && len(m.Failed()) > 0 {
			return true
		}
	}
	return false
}
