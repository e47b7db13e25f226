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
	// Protection is Device Protection's state (Device OS 6.x).
	Protection Protection
	// SetupDone is the setup-done flag Gen3 Device OS before 4.0 waits for in listening
	// mode (platform.SetupDone); FlagUnknown where it was not read.
	SetupDone Flag
	// Assets are the asset files the device holds (control request 91), when
	// AssetsKnown; a write of an asset module adds one.
	Assets      []module.Asset
	AssetsKnown bool
	// Identity is who the unit is: serial number, ICCID, IMEI, NCP version (as read).
	Identity Identity
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

// Main returns the main-store module of this function and index that Device OS finds.
// Where a reading lists several (a Gen3 system-part1 left at 0x28000 by 6.x beside a
// 1.5.2 one at 0x30000, or a duplicate line), an intact one is found before a damaged one
// (a 6.1.2+ bootloader checks 0x28000, then falls back to 0x30000 when the first fails its
// CRC: bootloader/src/nRF52840/dfu_usb.c is_application_valid @v6.2.0), then the one in
// the slot variant the platform table lists first (the current layout), then the last one
// listed.
func (d Device) Main(fn platform.Function, idx uint8) (Module, bool) {
	best, bestRank := -1, 0
	for i := range d.Modules {
		m := &d.Modules[i]
		if !m.Present || !m.IsMain() || m.Function != fn || m.Index != idx {
			continue
		}
		r := d.variant(*m)
		if !m.Intact() {
			r += 1 << 16
		}
		if best < 0 || r <= bestRank {
			best, bestRank = i, r
		}
	}
	if best < 0 {
		return Module{}, false
	}
	return d.Modules[best], true
}

// variant is the position in the platform table of the slot variant a module sits in
// (0 when it cannot be told).
func (d Device) variant(m Module) int {
	if d.Platform == nil || m.Start == 0 {
		return 0
	}
	n := 0
	for _, s := range d.Platform.Slots {
		if s.Function != m.Function || s.Index != m.Index {
			continue
		}
		if s.Start == m.Start || s.EndFixed && m.Start >= s.Start && m.Start < s.End() {
			return n
		}
		n++
	}
	return 0
}

// header is where a module's header sits in flash (its start plus the slot's header
// offset): a write that covers it leaves nothing Device OS can find.
func (d Device) header(m Module) uint64 {
	if d.Platform != nil {
		if s, ok := d.Platform.SlotFor(m.Function, m.Index, m.Version); ok && s.Start == m.Start {
			return uint64(m.Start) + uint64(s.HeaderOffset)
		}
		for _, s := range d.Platform.Slots {
			if s.Function == m.Function && s.Index == m.Index && s.Start == m.Start {
				return uint64(m.Start) + uint64(s.HeaderOffset)
			}
		}
	}
	return uint64(m.Start)
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

// Sees reports whether a reading of the device shows modules of this function: DFU cannot
// see the NCP, nor does a Device OS that does not manage it (the slot's KnownSince: the
// Tracker lists its NCP from 3.0.0).
func (d Device) Sees(fn platform.Function) bool {
	if d.unread(fn) {
		return false
	}
	if d.Platform == nil {
		return true
	}
	sys := d.SystemVersion()
	for _, s := range d.Platform.Slots {
		if s.Function == fn && s.KnownSince != 0 && sys != 0 && sys < s.KnownSince {
			return false
		}
	}
	return true
}

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

// Write records a module as installed at its start address. What was there is
// replaced; a module the write overlaps is gone when the write covers its header, and
// damaged (it fails its CRC) when only its body is hit, as flash behaves: a 1.5.2
// system-part1 written at 0x30000 over a 6.x one at 0x28000 leaves the old header at
// 0x28200 behind a broken image. Nothing else changes: an application in the other Gen3
// user slot stays there (see RunningApp).
func (d *Device) Write(m Module) {
	if m.Function == platform.FuncAsset {
		// Device OS keeps assets in their own file system, not in a module slot.
		for _, a := range m.Assets {
			d.StoreAsset(a)
		}
		return
	}
	m.Location = LocationMain
	m.Present = true
	m.Source = SourcePlan
	if isSystem(m.Function) {
		// What the device said it runs was about the system part this write replaces.
		d.DeviceOS = ""
	}
	d.overwrite(m.Start, m.End(), m.Label(), func(o Module) bool {
		return o.Function == m.Function && o.Index == m.Index && (o.Start == m.Start || o.Start == 0 || m.Function == platform.FuncNCP)
	}, m.Function == platform.FuncNCP)
	if m.Function == platform.FuncNCP {
		d.Unread = slices.DeleteFunc(d.Unread, func(f platform.Function) bool { return f == platform.FuncNCP })
	}
	d.Modules = append(d.Modules, m)
	d.Resolve()
	if m.Protects && m.Function == platform.FuncBootloader && m.Index == 0 && d.SystemVersion() >= protectionSince {
		// Device OS reads its protection from the bootloader at start-up
		// (security_mode.cpp security_mode_init): from then on it is protected.
		d.Protection = ProtectionProtected
	}
}

// protectionSince is the first system module version with Device Protection (6.0.0).
const protectionSince = 6000

// ProtectionSays reports whether the protection state tells a person something: it was
// read, and it is protected (or in Service Mode), or the Device OS is one that has Device
// Protection at all (before 6.0 "open" is the only state there is).
func (d Device) ProtectionSays() bool {
	return d.Protection != ProtectionUnknown && (d.Protection != ProtectionOpen || d.SystemVersion() >= protectionSince)
}

// StoreAsset records an asset file the device now holds (one of that name is replaced).
func (d *Device) StoreAsset(a module.Asset) {
	d.Assets = slices.DeleteFunc(slices.Clone(d.Assets), func(o module.Asset) bool { return o.Name == a.Name })
	d.Assets = append(d.Assets, a)
}

// HasAsset reports whether the device holds the asset (same name and hash), as far as
// the reading shows (false when its assets are not known).
func (d Device) HasAsset(a module.Asset) bool {
	for _, o := range d.Assets {
		if o.Name == a.Name && o.Hash == a.Hash {
			return true
		}
	}
	return false
}

// Invalidate records that size bytes from addr were overwritten with 0xFF (the first
// sector of an old user part, say): a module whose header was there no longer counts.
func (d *Device) Invalidate(addr, size uint32) {
	d.overwrite(addr, uint64(addr)+uint64(size), "0xFF", func(Module) bool { return false }, false)
	d.Resolve()
}

// overwrite applies a write of [start, end) to the modules in flash: replaced ones and
// those whose header it covers go, those it only hits are damaged.
func (d *Device) overwrite(start uint32, end uint64, what string, replaced func(Module) bool, external bool) {
	var keep []Module
	for _, o := range d.Modules {
		if !o.IsMain() || !o.Present {
			keep = append(keep, o)
			continue
		}
		if replaced(o) {
			continue
		}
		if external || o.Function == platform.FuncNCP || o.Size == 0 || end <= uint64(start) ||
			!(uint64(o.Start) < end && uint64(start) < o.End()) {
			keep = append(keep, o)
			continue
		}
		if h := d.header(o); uint64(start) <= h && h < end {
			continue
		}
		o.Checks.Integrity = false
		o.Problem = "partly overwritten by " + what
		keep = append(keep, o)
	}
	d.Modules = keep
	// What the device said about dependencies described the flash before this write.
	for i := range d.Modules {
		if m := &d.Modules[i]; m.Source == SourceControl || m.Source == SourceSerial {
			m.Checks.Dependencies = true
		}
	}
}

func isSystem(fn platform.Function) bool { return fn == platform.FuncSystem || fn == platform.FuncMono }

// IsSystem reports a system part or monolithic firmware: what makes Device OS.
func IsSystem(fn platform.Function) bool { return isSystem(fn) }
