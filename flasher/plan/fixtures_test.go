package plan

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/state"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// Real release binaries in ../shared/firmware/releases (EXPECTED.tsv lists them). The
// Argon and Boron sets share the 4.1.0 SoftDevice file: every release since 1.4.0 ships
// S140 7.0.1 (module version 202), so it is the same module.
var releaseFiles = map[string][]string{
	"photon/1.5.2":   {"photon-bootloader@1.5.2+lto.bin", "photon-system-part1@1.5.2.bin", "photon-system-part2@1.5.2.bin"},
	"photon/2.3.1":   {"photon-bootloader@2.3.1+lto.bin", "photon-system-part1@2.3.1.bin", "photon-system-part2@2.3.1.bin"},
	"electron/1.5.2": {"electron-system-part1@1.5.2.bin", "electron-system-part2@1.5.2.bin", "electron-system-part3@1.5.2.bin"},
	"electron/2.3.1": {"electron-bootloader@2.3.1+lto.bin", "electron-system-part1@2.3.1.bin", "electron-system-part2@2.3.1.bin", "electron-system-part3@2.3.1.bin"},
	"argon/2.3.0":    {"argon-bootloader@2.3.0.bin", "argon-system-part1@2.3.0.bin", "argon-softdevice@4.1.0.bin", "argon-ncp-firmware@0.0.5.bin"},
	"argon/4.1.0":    {"argon-bootloader@4.1.0.bin", "argon-system-part1@4.1.0.bin", "argon-softdevice@4.1.0.bin", "argon-ncp-firmware@0.0.5.bin"},
	"boron/1.5.2":    {"boron-bootloader@1.5.2.bin", "boron-system-part1@1.5.2.bin", "boron-softdevice@4.1.0.bin"},
	"boron/4.1.0":    {"boron-bootloader@4.1.0.bin", "boron-system-part1@4.1.0.bin", "boron-softdevice@4.1.0.bin"},
}

// spec is a module to build with module.BuildForSlot: slot by function and index, module
// version and dependencies, as the Device Restore header dumps give them
// (../shared/data/device-restore/<version>/<platform>.json).
type spec struct {
	fn   platform.Function
	idx  uint8
	ver  uint16
	deps []module.Dependency
}

func dep(fn platform.Function, idx uint8, ver uint16) module.Dependency {
	return module.Dependency{Function: fn, Index: idx, Version: ver}
}

const (
	fBoot = platform.FuncBootloader
	fSys  = platform.FuncSystem
	fUser = platform.FuncUser
	fNCP  = platform.FuncNCP
	fRad  = platform.FuncRadio
)

// builtSets are B SoM, Tracker and P2 releases with the real versions and dependencies
// (no binaries of them are in ../shared).
var builtSets = map[string][]spec{
	// DR 2.3.1/bsom.json
	"bsom/2.3.1": {
		{fBoot, 0, 1006, nil},
		{fSys, 1, 2302, []module.Dependency{dep(fBoot, 0, 1005), dep(fRad, 0, 202)}},
		{fRad, 0, 202, []module.Dependency{dep(fBoot, 0, 501), dep(fSys, 1, 1321)}},
	},
	// DR 4.1.0/bsom.json
	"bsom/4.1.0": {
		{fBoot, 0, 1200, nil},
		{fSys, 1, 4100, []module.Dependency{dep(fBoot, 0, 1200), dep(fRad, 0, 202)}},
		{fRad, 0, 202, []module.Dependency{dep(fBoot, 0, 501), dep(fSys, 1, 1321)}},
	},
	// DR 1.5.2/bsom.json, but system-part1 version 1511 (a 1.5.1 stand-in: below the
	// stepping stone).
	"bsom/1.5.1": {
		{fBoot, 0, 501, []module.Dependency{dep(fSys, 1, 1102)}},
		{fSys, 1, 1511, []module.Dependency{dep(fBoot, 0, 501), dep(fRad, 0, 202)}},
		{fRad, 0, 202, []module.Dependency{dep(fBoot, 0, 501), dep(fSys, 1, 1321)}},
	},
	// DR 2.3.1/tracker.json (the bundle has no NCP).
	"tracker/2.3.1": {
		{fBoot, 0, 1006, nil},
		{fSys, 1, 2302, []module.Dependency{dep(fBoot, 0, 1006), dep(fRad, 0, 202)}},
		{fRad, 0, 202, []module.Dependency{dep(fBoot, 0, 501), dep(fSys, 1, 1321)}},
	},
	// DR 4.1.0/tracker.json: system-part1 depends on NCP 7, which depends on 3.0.0.
	"tracker/4.1.0": {
		{fBoot, 0, 1200, nil},
		{fSys, 1, 4100, []module.Dependency{dep(fBoot, 0, 1200), dep(fNCP, 0, 7)}},
		{fRad, 0, 202, []module.Dependency{dep(fBoot, 0, 501), dep(fSys, 1, 1321)}},
		{fNCP, 0, 7, []module.Dependency{dep(fSys, 1, 3000)}},
	},
	// DR 5.0.0/p2.json
	"p2/5.0.0": {
		{fBoot, 2, 3, nil},
		{fBoot, 0, 2000, []module.Dependency{dep(fBoot, 2, 3)}},
		{fSys, 1, 5002, []module.Dependency{dep(fBoot, 0, 2000)}},
	},
	// DR 6.2.0/p2.json
	"p2/6.2.0": {
		{fBoot, 2, 9, nil},
		{fBoot, 0, 3100, []module.Dependency{dep(fBoot, 2, 9)}},
		{fSys, 1, 6200, []module.Dependency{dep(fBoot, 0, 3100)}},
	},
	// DR 6.2.0/bsom.json: system-part1 at 0x28000 (6.1.2+).
	"bsom/6.2.0": {
		{fBoot, 0, 3100, nil},
		{fSys, 1, 6200, []module.Dependency{dep(fBoot, 0, 3100), dep(fRad, 0, 202)}},
		{fRad, 0, 202, []module.Dependency{dep(fBoot, 0, 501), dep(fSys, 1, 1321)}},
	},
	// DR 6.1.1 (system 6101, bootloader 3001) for the B SoM.
	"bsom/6.1.0": {
		{fBoot, 0, 3000, nil},
		{fSys, 1, 6100, []module.Dependency{dep(fBoot, 0, 3000), dep(fRad, 0, 202)}},
		{fRad, 0, 202, []module.Dependency{dep(fBoot, 0, 501), dep(fSys, 1, 1321)}},
	},
}

// tinkerSpecs are the Device Restore Tinkers (and Tracker Edge) per release.
var tinkerSpecs = map[string]spec{
	"bsom/2.3.1":    {fUser, 1, 6, []module.Dependency{dep(fSys, 1, 2302)}},
	"bsom/4.1.0":    {fUser, 2, 6, []module.Dependency{dep(fSys, 1, 4100)}},
	"bsom/6.1.0":    {fUser, 2, 6, []module.Dependency{dep(fSys, 1, 6100)}},
	"bsom/6.2.0":    {fUser, 2, 6, []module.Dependency{dep(fSys, 1, 6200)}},
	"tracker/2.3.1": {fUser, 1, 6, []module.Dependency{dep(fSys, 1, 2007)}},
	"tracker/4.1.0": {fUser, 2, 6, []module.Dependency{dep(fSys, 1, 3201)}},
	"p2/5.0.0":      {fUser, 1, 6, []module.Dependency{dep(fSys, 1, 5002)}},
	"p2/6.2.0":      {fUser, 1, 6, []module.Dependency{dep(fSys, 1, 6200)}},
	"boron/1.5.2":   {fUser, 1, 6, []module.Dependency{dep(fSys, 1, 1512)}},
	"boron/4.1.0":   {fUser, 2, 6, []module.Dependency{dep(fSys, 1, 4100)}},
	"argon/2.3.0":   {fUser, 1, 6, []module.Dependency{dep(fSys, 1, 2301)}},
	"argon/4.1.0":   {fUser, 2, 6, []module.Dependency{dep(fSys, 1, 4100)}},
	"photon/1.5.2":  {fUser, 1, 6, []module.Dependency{dep(fSys, 2, 1512)}},
	"photon/2.3.1":  {fUser, 1, 6, []module.Dependency{dep(fSys, 2, 2302)}},
	// Electron apps depend on index 2 (the file system-part3).
	"electron/1.5.2": {fUser, 1, 6, []module.Dependency{dep(fSys, 2, 1512)}},
	"electron/2.3.1": {fUser, 1, 6, []module.Dependency{dep(fSys, 2, 2302)}},
}

func plat(t testing.TB, name string) *platform.Platform {
	t.Helper()
	p, ok := platform.ByName(name)
	require.True(t, ok, name)
	return p
}

func splitKey(key string) (string, string) {
	for i := range key {
		if key[i] == '/' {
			return key[:i], key[i+1:]
		}
	}
	return key, ""
}

// set returns the modules of a release: real files where ../shared has them, built ones
// otherwise.
func set(t testing.TB, key string) []*module.Module {
	t.Helper()
	if files, ok := releaseFiles[key]; ok {
		dir := testshared.Dir(t, "firmware", "releases")
		var out []*module.Module
		for _, f := range files {
			out = append(out, loadFile(t, filepath.Join(dir, f)))
		}
		return out
	}
	specs, ok := builtSets[key]
	require.True(t, ok, "no release set %s", key)
	name, _ := splitKey(key)
	p := plat(t, name)
	var out []*module.Module
	for _, s := range specs {
		out = append(out, build(t, p, s))
	}
	return out
}

// tinker builds the release's Tinker.
func tinker(t testing.TB, key string) *module.Module {
	t.Helper()
	s, ok := tinkerSpecs[key]
	require.True(t, ok, "no tinker for %s", key)
	name, _ := splitKey(key)
	return build(t, plat(t, name), s)
}

func build(t testing.TB, p *platform.Platform, s spec) *module.Module {
	t.Helper()
	slot, ok := p.SlotFor(s.fn, s.idx, s.ver)
	require.True(t, ok, "%s has no slot %s %d", p.Name, s.fn, s.idx)
	b, err := module.BuildForSlot(p, slot, s.ver, s.deps...)
	require.NoError(t, err)
	m, err := module.Parse(b)
	require.NoError(t, err)
	require.NoError(t, m.Validate())
	return m
}

func loadFile(t testing.TB, path string) *module.Module {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	m, err := module.Parse(b)
	require.NoError(t, err, path)
	return m
}

func appFile(t testing.TB, name string) *module.Module {
	t.Helper()
	return loadFile(t, filepath.Join(testshared.Dir(t, "firmware", "apps"), name))
}

// device describes a device holding a release set (and an app).
func device(t testing.TB, key string, mode state.Mode, app *module.Module) state.Device {
	t.Helper()
	name, _ := splitKey(key)
	mods := set(t, key)
	if app != nil {
		mods = append(mods, app)
	}
	return state.FromFiles(plat(t, name), mode, mods)
}

// without drops the modules of one function and index from a state (a blank slot).
func without(st state.Device, fn platform.Function, idx uint8) state.Device {
	var mods []state.Module
	for _, in := range st.Modules {
		if in.Function == fn && in.Index == idx {
			continue
		}
		mods = append(mods, in)
	}
	st.Modules = mods
	return st
}

// corrupt marks the module of one function and index as failing its CRC.
func corrupt(st state.Device, fn platform.Function, idx uint8) state.Device {
	mods := append([]state.Module(nil), st.Modules...)
	for i := range mods {
		if mods[i].Function == fn && mods[i].Index == idx {
			mods[i].Checks.Integrity = false
		}
	}
	st.Modules = mods
	return st
}

func target(t testing.TB, key string) Target {
	_, ver := splitKey(key)
	return Target{Name: ver, Modules: set(t, key)}
}

// with adds modules to a state (e.g. a Tracker's NCP firmware, of which no file exists).
func with(st state.Device, in ...state.Module) state.Device {
	st.Modules = append(append([]state.Module(nil), st.Modules...), in...)
	return st
}

// replace swaps the module of in's function and index for in.
func replace(st state.Device, in state.Module) state.Device {
	return with(without(st, in.Function, in.Index), in)
}

// installed is a module as a device would report it: intact (or failing its CRC when
// !intact), in the main store.
func installed(fn platform.Function, idx uint8, ver uint16, intact bool, deps ...module.Dependency) state.Module {
	m := state.Module{Function: fn, Index: idx, Version: ver, Location: state.LocationMain, Present: true,
		Deps: state.DependenciesOf(deps), Checks: state.AllChecks}
	if !intact {
		m.Checks.Integrity = false
	}
	return m
}
