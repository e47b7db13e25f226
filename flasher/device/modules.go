package device

import (
	"encoding/hex"
	"sort"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/listen"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/slots"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// The conversions below turn what each door reads into the one shape of a module reading,
// state.Module, and the reading as a whole into a state.Device, so that every surface
// judges a device by the same rules (flasher/state).

// Validity bits shared by control request 90 and the `s` JSON (module_validation_flags_t).
var checkBits = []struct {
	name string
	bit  uint32
	set  func(*state.Checks, bool)
}{
	{"integrity", ctrl.ValidIntegrity, func(c *state.Checks, ok bool) { c.Integrity = ok }},
	{"range", ctrl.ValidRange, func(c *state.Checks, ok bool) { c.Range = ok }},
	{"platform", ctrl.ValidPlatform, func(c *state.Checks, ok bool) { c.Platform = ok }},
	{"dependencies", ctrl.ValidDependencies, func(c *state.Checks, ok bool) { c.Dependencies = ok }},
}

// fromBits fills checks and the unchecked list from checked/passed bit masks.
func fromBits(m *state.Module, checked, passed uint32) {
	for _, c := range checkBits {
		c.set(&m.Checks, passed&c.bit != 0)
		if checked&c.bit == 0 {
			m.Unchecked = append(m.Unchecked, c.name)
		}
	}
}

func locationName(store string) string {
	switch store {
	case "", ctrl.StoreMain, "m":
		return state.LocationMain
	case ctrl.StoreFactory, "f":
		return state.LocationFactory
	case ctrl.StoreBackup, "b":
		return state.LocationBackup
	case ctrl.StoreScratchpad, "t":
		return state.LocationScratchpad
	}
	return store
}

// locate fills the start address of a module Device OS reported without one: the start of
// its slot, so the model sees which modules a write would overlap.
func locate(p *platform.Platform, m *state.Module) {
	if m.Start != 0 || !m.Present || p == nil {
		return
	}
	if s, ok := p.SlotFor(m.Function, m.Index, m.Version); ok && s.Storage != platform.StorageNCP {
		if m.Location == state.LocationMain {
			m.Start = s.StartFor(m.Size)
		}
	}
}

// reading makes the state of a device from its modules as one door read them: the
// dependencies resolved against the same reading, the NCP marked unread where the door
// cannot see it.
func reading(p *platform.Platform, mode state.Mode, mods []state.Module, ncpVisible bool) state.Device {
	d := state.Device{Platform: p, Mode: mode, Modules: mods}
	if p != nil && p.HasNCP && !ncpVisible {
		seen := false
		for _, m := range mods {
			seen = seen || m.Function == platform.FuncNCP && m.Present
		}
		if !seen {
			d.Unread = []platform.Function{platform.FuncNCP}
		}
	}
	d.Resolve()
	return d
}

// FromControl converts the reply to control request 90 (Device OS in normal, safe or
// listening mode). Device OS lists the NCP's firmware where the platform has one it can
// update; where it lists none, ncp (request 31's answer, 0 = none) supplies it.
func FromControl(p *platform.Platform, mode state.Mode, infos []ctrl.ModuleInfo, ncp uint16) state.Device {
	out := make([]state.Module, 0, len(infos)+1)
	listed := false
	for _, mi := range infos {
		m := state.Module{Function: platform.Function(mi.Function), Index: mi.Index, Version: uint16(mi.Version),
			Location: locationName(mi.Store), Present: true, Size: mi.Size, MaxSize: mi.MaxSize, Source: state.SourceControl}
		if len(mi.Hash) > 0 {
			m.SHA256 = hex.EncodeToString(mi.Hash)
		}
		fromBits(&m, mi.Checked, mi.Passed)
		for _, d := range mi.Dependencies {
			m.Deps = append(m.Deps, state.Dependency{Function: platform.Function(d.Function), Index: d.Index, Version: uint16(d.Version)})
		}
		for _, a := range mi.Assets {
			m.Assets = append(m.Assets, module.Asset{Name: a.Name, Hash: a.Hash})
		}
		state.Describe(p, &m)
		locate(p, &m)
		listed = listed || m.Function == platform.FuncNCP
		out = append(out, m)
	}
	if !listed && ncp != 0 {
		m := state.Module{Function: platform.FuncNCP, Version: ncp, Location: state.LocationMain, Present: true,
			Checks: state.AllChecks, Source: state.SourceControl}
		state.Describe(p, &m)
		out = append(out, m)
		listed = true
	}
	return reading(p, mode, out, listed)
}

// FromSerial converts the `s` reply (listening mode). Empty slots are kept (Present false):
// a person wants to see that the user part is missing.
func FromSerial(p *platform.Platform, si *listen.SystemInfo) state.Device {
	var out []state.Module
	ncp := false
	if si != nil {
		if p == nil {
			p, _ = platform.ByID(uint16(si.PlatformID))
		}
		for _, mi := range si.Modules {
			m := state.Module{Function: mi.Function, Index: uint8(mi.Index), Version: uint16(mi.Version),
				Location: locationName(mi.Location), Present: !mi.Empty, MaxSize: uint32(mi.MaxSize), SHA256: mi.Hash,
				Source: state.SourceSerial}
			fromBits(&m, uint32(mi.Checked), uint32(mi.Passed))
			for _, d := range mi.Dependencies {
				m.Deps = append(m.Deps, state.Dependency{Function: d.Function, Index: uint8(d.Index), Version: uint16(d.Version)})
			}
			state.Describe(p, &m)
			locate(p, &m)
			ncp = ncp || m.Function == platform.FuncNCP && m.Present
			out = append(out, m)
		}
	}
	return reading(p, state.ModeListening, out, ncp)
}

// FromDFU converts a DFU-mode reading (slots.Read): the modules as the flash holds them,
// every copy of a slot that moved between releases included. DFU cannot reach the NCP.
func FromDFU(p *platform.Platform, read []slots.SlotModule) state.Device {
	out := make([]state.Module, 0, len(read))
	for _, s := range read {
		present := s.State == slots.SlotPresent || s.State == slots.SlotCorrupt
		m := state.Module{Function: s.Function, Index: s.Index, Version: s.Version, Location: locationName(s.Location),
			Present: present, Start: s.Address, Size: s.Size, MaxSize: s.Slot.MaxSize, Problem: s.Problem, Source: state.SourceDFU,
			Checks: state.Checks(s.Checks), Name: s.Slot.Name}
		switch s.State {
		case slots.SlotErased:
			m.Problem = "empty (erased)"
		case slots.SlotUnreadable:
			m.Present = false
		}
		if present && !s.IntegrityChecked && s.Module != nil {
			m.Unchecked = append(m.Unchecked, "integrity")
		}
		if s.State == slots.SlotCorrupt && s.Module == nil && s.Version == 0 {
			// Nothing decodable: no header, so nothing was checked but integrity failed.
			m.Unchecked = []string{"range", "platform", "dependencies"}
		}
		if s.Module != nil && s.IntegrityChecked {
			m.CRC = s.Module.StoredCRC
		}
		if s.Module != nil && len(s.Module.SHA256) > 0 && s.Function == platform.FuncUser {
			m.SHA256 = hex.EncodeToString(s.Module.SHA256)
		}
		m.Deps = state.DependenciesOf(s.Dependencies)
		state.Describe(p, &m)
		out = append(out, m)
	}
	d := reading(p, state.ModeDFU, out, false)
	for i := range d.Modules {
		m := &d.Modules[i]
		for _, dep := range m.Deps {
			if dep.Unknown && !m.Checks.Dependencies {
				m.Unchecked = append(m.Unchecked, "dependencies")
				break
			}
		}
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
	sort.SliceStable(d.Modules, func(i, j int) bool {
		a, b := d.Modules[i], d.Modules[j]
		if a.IsMain() != b.IsMain() {
			return a.IsMain()
		}
		if r(a.Function) != r(b.Function) {
			return r(a.Function) < r(b.Function)
		}
		return a.Index < b.Index
	})
	return d
}
