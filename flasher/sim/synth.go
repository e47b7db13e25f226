package sim

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// SoftDeviceFWID is the radio stack version Device OS has required since 1.4.0 (S140
// 7.0.1, SOFTDEVICE_DEPENDENCY = 202).
const SoftDeviceFWID = 202

// TinkerVersion is the module version of the Tinker application Particle ships.
const TinkerVersion = 6

// latestDeviceOS is the newest release a platform got, for picking a bootloader.
func latestDeviceOS(p *platform.Platform) string {
	if p.LastDeviceOS != "" {
		return p.LastDeviceOS
	}
	return "6.2.0"
}

// SyntheticBootloader builds a bootloader module (module.BuildForSlot) at the version
// the newest Device OS for the platform ships, with no dependencies: what a factory puts
// on a board before any Device OS.
func SyntheticBootloader(p *platform.Platform) ([]byte, error) {
	v, ok := module.BootloaderModuleVersion(latestDeviceOS(p))
	if !ok {
		return nil, fmt.Errorf("sim: no bootloader version known for Device OS %s", latestDeviceOS(p))
	}
	sl, ok := p.Slot(platform.FuncBootloader, 0)
	if !ok {
		return nil, fmt.Errorf("sim: platform %s has no bootloader slot", p.Name)
	}
	b, err := module.BuildForSlot(p, sl, v)
	if err != nil {
		return nil, fmt.Errorf("sim: synthetic bootloader: %w", err)
	}
	return b, nil
}

// SyntheticSet builds a complete, consistent set of modules for a Device OS release with
// the module builder: bootloader, system parts, SoftDevice (with the info struct Device OS
// reads its version from) and a Tinker-like user part, at the module versions that release
// has (module.SystemModuleVersion / BootloaderModuleVersion) and with dependencies chained
// as the real releases chain them (reference §6a). The code inside is pseudo-random: good
// for flashing and validation, not for running.
func SyntheticSet(p *platform.Platform, deviceOS string) ([][]byte, error) {
	sys, ok := module.SystemModuleVersion(deviceOS)
	if !ok {
		return nil, fmt.Errorf("sim: unknown Device OS version %q", deviceOS)
	}
	bl, ok := module.BootloaderModuleVersion(deviceOS)
	if !ok {
		return nil, fmt.Errorf("sim: no bootloader version known for Device OS %s", deviceOS)
	}
	dep := func(fn platform.Function, idx uint8, v uint16) module.Dependency {
		return module.Dependency{Function: fn, Index: idx, Version: v}
	}
	type part struct {
		fn   platform.Function
		idx  uint8
		ver  uint16
		deps []module.Dependency
	}
	var parts []part
	parts = append(parts, part{platform.FuncBootloader, 0, bl, nil})
	var userDep module.Dependency
	switch {
	case p.Name == "electron":
		// File names follow link order: index 3 needs 2, 1 needs 3, 2 needs 1 and the bootloader.
		parts = append(parts,
			part{platform.FuncSystem, 3, sys, []module.Dependency{dep(platform.FuncSystem, 2, sys)}},
			part{platform.FuncSystem, 1, sys, []module.Dependency{dep(platform.FuncSystem, 3, sys)}},
			part{platform.FuncSystem, 2, sys, []module.Dependency{dep(platform.FuncSystem, 1, sys), dep(platform.FuncBootloader, 0, bl)}})
		userDep = dep(platform.FuncSystem, 2, sys)
	case p.Gen == 2:
		parts = append(parts,
			part{platform.FuncSystem, 1, sys, []module.Dependency{dep(platform.FuncSystem, 2, sys)}},
			part{platform.FuncSystem, 2, sys, []module.Dependency{dep(platform.FuncSystem, 1, sys), dep(platform.FuncBootloader, 0, bl)}})
		userDep = dep(platform.FuncSystem, 2, sys)
	default:
		deps := []module.Dependency{dep(platform.FuncBootloader, 0, bl)}
		if p.HasRadioStack {
			deps = append(deps, dep(platform.FuncRadio, 0, SoftDeviceFWID))
		}
		parts = append(parts, part{platform.FuncSystem, 1, sys, deps})
		userDep = dep(platform.FuncSystem, 1, sys)
	}
	var out [][]byte
	for _, pt := range parts {
		sl, ok := p.SlotFor(pt.fn, pt.idx, pt.ver)
		if !ok {
			return nil, fmt.Errorf("sim: platform %s has no slot for %s #%d v%d", p.Name, pt.fn, pt.idx, pt.ver)
		}
		b, err := module.BuildForSlot(p, sl, pt.ver, pt.deps...)
		if err != nil {
			return nil, fmt.Errorf("sim: building %s: %w", sl.Name, err)
		}
		out = append(out, b)
	}
	if p.HasRadioStack {
		b, err := SyntheticSoftDevice(p, SoftDeviceFWID)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	user, err := SyntheticUserPart(p, sys, userDep)
	if err != nil {
		return nil, err
	}
	return append(out, user), nil
}

// SyntheticUserPart builds a Tinker-like application for a system module version: the
// 256 KB slot (index 2) on Gen3 from Device OS 3.1.0-rc.1, the classic one otherwise.
func SyntheticUserPart(p *platform.Platform, sys uint16, deps ...module.Dependency) ([]byte, error) {
	idx := uint8(1)
	if sl, ok := p.Slot(platform.FuncUser, 2); ok && sys >= sl.KnownSince {
		idx = 2
	}
	sl, ok := p.Slot(platform.FuncUser, idx)
	if !ok {
		return nil, fmt.Errorf("sim: platform %s has no user slot %d", p.Name, idx)
	}
	b, err := module.BuildForSlot(p, sl, TinkerVersion, deps...)
	if err != nil {
		return nil, fmt.Errorf("sim: building the user part: %w", err)
	}
	return b, nil
}

// SyntheticSoftDevice builds a SoftDevice OTA image (DROP_MODULE_INFO) whose body carries
// the nRF52 info struct (magic, size, FWID) where Device OS reads the radio stack version
// from, so that once written at 0x1000 without its prefix the device reports version fwid.
func SyntheticSoftDevice(p *platform.Platform, fwid uint16) ([]byte, error) {
	sl, ok := p.Slot(platform.FuncRadio, 0)
	if !ok {
		return nil, fmt.Errorf("sim: platform %s has no radio stack", p.Name)
	}
	spec, err := module.SpecForSlot(p, sl, fwid)
	if err != nil {
		return nil, fmt.Errorf("sim: SoftDevice: %w", err)
	}
	spec.Size = 16 * 1024
	SoftDeviceBody(&spec)
	b, err := module.Build(spec)
	if err != nil {
		return nil, fmt.Errorf("sim: SoftDevice: %w", err)
	}
	return b, nil
}

// SoftDeviceBody makes a SoftDevice spec's body carry the nRF52 info struct Device OS reads
// the radio stack's version from (magic, size, the FWID = spec.Version), at the flash
// addresses the body lands on once written at spec.Start without its 24-byte prefix.
func SoftDeviceBody(spec *module.Spec) {
	start, fwid := spec.Start, spec.Version
	flashEnd := start + uint32(spec.Size) - module.PrefixSize
	seed := uint64(spec.PlatformID)<<16 | uint64(fwid)
	spec.Fill = func(body []byte) {
		r := rand.New(rand.NewPCG(seed, 0x50f7de71ce))
		for i := range body {
			body[i] = byte(r.Uint32())
		}
		// body offset = flash address - start + the 24-byte prefix dropped on the way.
		at := func(addr uint32) []byte { return body[addr-start+module.PrefixSize:] }
		binary.LittleEndian.PutUint32(at(sdMagicAddr), sdMagic)
		binary.LittleEndian.PutUint32(at(sdSizeAddr), flashEnd)
		binary.LittleEndian.PutUint32(at(sdFWIDAddr), 0xFFFF0000|uint32(fwid))
	}
}

// ProtectedBootloader rebuilds a bootloader module as Particle's protected build of it: the
// same slot, version and dependencies, with the SECURITY_MODE suffix extension saying
// "protected" (dynalib/inc/module_info.h MODULE_INFO_EXTENSION_SECURITY_MODE), which is
// what turns Device Protection on (services/src/security_mode.cpp security_mode_init).
func ProtectedBootloader(p *platform.Platform, bootloader []byte) ([]byte, error) {
	m, err := module.Parse(bootloader)
	if err != nil {
		return nil, fmt.Errorf("sim: protected bootloader: %w", err)
	}
	if m.Function != platform.FuncBootloader || m.Index != 0 {
		return nil, fmt.Errorf("sim: protected bootloader: %s is not a bootloader", m.SlotName())
	}
	sl, ok := p.SlotFor(m.Function, m.Index, m.Version)
	if !ok {
		return nil, fmt.Errorf("sim: platform %s has no bootloader slot", p.Name)
	}
	var deps []module.Dependency
	for _, dp := range m.Dependencies() {
		deps = append(deps, dp)
	}
	spec, err := module.SpecForSlot(p, sl, m.Version, deps...)
	if err != nil {
		return nil, err
	}
	spec.SuffixExtensions = append(spec.SuffixExtensions, module.SecurityModeExtension(module.SecurityProtected, nil))
	return module.Build(spec)
}

// Protect swaps the bootloader among mods for its protected build (ProtectedBootloader).
func Protect(p *platform.Platform, mods [][]byte) ([][]byte, error) {
	out := append([][]byte(nil), mods...)
	for i, b := range out {
		m, err := module.Parse(b)
		if err != nil || m.Function != platform.FuncBootloader || m.Index != 0 {
			continue
		}
		pb, err := ProtectedBootloader(p, b)
		if err != nil {
			return nil, err
		}
		out[i] = pb
		return out, nil
	}
	return nil, fmt.Errorf("sim: no bootloader to protect among the %d modules", len(mods))
}
