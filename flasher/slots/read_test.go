package slots_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim/dfudev"
	"github.com/particle-flasher/particle-flasher/flasher/sim/flash"
	"github.com/particle-flasher/particle-flasher/flasher/slots"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// modRig is a platform's bootloader in DFU mode with alt 0's flash, into which tests
// install module files the way a factory programmer or a finished DFU write leaves them.
type modRig struct {
	p      *platform.Platform
	mem    *flash.Region
	dev    *dfudev.Device
	layout *memlayout.Layout
	client *dfu.Client
}

func newModRig(t *testing.T, name string) *modRig {
	t.Helper()
	p, ok := platform.ByName(name)
	require.True(t, ok, name)
	alt, ok := p.Alt(0)
	require.True(t, ok)
	l, err := memlayout.Parse(alt.Layout)
	require.NoError(t, err)
	r := &modRig{p: p, layout: l, mem: flash.NewRegion("internal", l, flash.Timing{}, nil)}
	r.dev = dfudev.New(dfudev.Config{Alts: []dfudev.Alt{{Name: alt.Layout, Mem: r.mem}}, Gen2: p.Gen == 2})
	fd, err := dfu.ParseFunctionalDescriptor(r.dev.FunctionalDescriptor())
	require.NoError(t, err)
	r.client = dfu.New(r.dev, dfu.Options{TransferSize: fd.TransferSize, RetryDelay: 1})
	return r
}

func release(t *testing.T, file string) []byte {
	t.Helper()
	dir := testshared.Dir(t, "firmware", "releases")
	b, err := os.ReadFile(filepath.Join(dir, file))
	require.NoError(t, err)
	return b
}

func app(t *testing.T, file string) []byte {
	t.Helper()
	dir := testshared.Dir(t, "firmware", "apps")
	b, err := os.ReadFile(filepath.Join(dir, file))
	require.NoError(t, err)
	return b
}

// install puts a module where it lives: at its header's start address, without its
// 24-byte prefix when it carries DROP_MODULE_INFO (the SoftDevice).
func (r *modRig) install(t *testing.T, bin []byte) {
	t.Helper()
	m, err := module.Parse(bin)
	require.NoError(t, err)
	data := bin
	if m.Flags.Has(module.FlagDropModuleInfo) {
		data = bin[module.PrefixSize:]
	}
	require.NoError(t, r.mem.Load(m.Start, data))
}

func (r *modRig) read(t *testing.T, o slots.ReadOptions) []slots.SlotModule {
	t.Helper()
	mods, err := slots.ReadModulesWith(context.Background(), r.client, r.p, r.layout, o)
	require.NoError(t, err)
	return mods
}

func byName(mods []slots.SlotModule) map[string]slots.SlotModule {
	out := map[string]slots.SlotModule{}
	for _, m := range mods {
		k := m.Slot.Name
		if m.Location != slots.LocationMain {
			k += "@" + m.Location
		}
		if _, dup := out[k]; dup {
			k += "#2"
		}
		out[k] = m
	}
	return out
}

func uploadBytes(log []dfudev.Transfer) int {
	n := 0
	for _, tr := range log {
		if tr.Request == dfu.ReqUpload && tr.Err == nil {
			n += int(tr.Length)
		}
	}
	return n
}

func TestReadModulesBoron410(t *testing.T) {
	r := newModRig(t, "boron")
	r.install(t, release(t, "boron-bootloader@4.1.0.bin"))
	r.install(t, release(t, "boron-system-part1@4.1.0.bin"))
	r.install(t, release(t, "boron-softdevice@4.1.0.bin"))

	mods := byName(r.read(t, slots.ReadOptions{}))
	boot := mods["bootloader"]
	assert.Equal(t, slots.SlotPresent, boot.State)
	assert.Equal(t, uint16(1200), boot.Version)
	assert.True(t, boot.Valid(), "%+v", boot.Checks)
	assert.True(t, boot.IntegrityChecked)

	part1 := mods["system-part1"]
	require.Equal(t, slots.SlotPresent, part1.State, part1.Problem)
	assert.Equal(t, uint32(0x30000), part1.Address)
	assert.Equal(t, uint32(0x30000), part1.Slot.Start, "the ≤6.1.1 variant of the slot")
	assert.Equal(t, uint16(4100), part1.Version)
	assert.Equal(t, uint32(507426), part1.Size)
	assert.Equal(t, []module.Dependency{{Function: platform.FuncBootloader, Version: 1200}, {Function: platform.FuncRadio, Version: 202}}, part1.Dependencies)
	assert.True(t, part1.Valid(), "%+v", part1.Checks)
	assert.Equal(t, "4.1.0", part1.Module.DeviceOS())

	sd := mods["softdevice"]
	assert.Equal(t, slots.SlotPresent, sd.State)
	assert.Equal(t, uint16(202), sd.Version, "FWID read from the info struct at 0x300C")
	assert.Nil(t, sd.Module)
	assert.True(t, sd.Valid())
	assert.Contains(t, sd.Problem, "not verifiable")

	// Both user slots are empty; only one system-part1 variant is reported.
	users := 0
	for _, m := range r.read(t, slots.ReadOptions{}) {
		if m.Function == platform.FuncUser {
			users++
			assert.Equal(t, slots.SlotErased, m.State)
		}
		if m.Function == platform.FuncSystem {
			assert.Equal(t, uint32(0x30000), m.Slot.Start)
		}
	}
	assert.Equal(t, 2, users)
	assert.Len(t, mods, 5)
}

func TestReadModulesSkipIntegrityReadsLittle(t *testing.T) {
	r := newModRig(t, "boron")
	r.install(t, release(t, "boron-bootloader@4.1.0.bin"))
	r.install(t, release(t, "boron-system-part1@4.1.0.bin"))
	r.install(t, release(t, "boron-softdevice@4.1.0.bin"))

	full := r.read(t, slots.ReadOptions{})
	fullBytes := uploadBytes(r.dev.Log())
	before := len(r.dev.Log())
	fast := r.read(t, slots.ReadOptions{SkipIntegrity: true})
	fastBytes := uploadBytes(r.dev.Log()[before:])

	require.Len(t, fast, len(full))
	for i := range full {
		assert.Equal(t, full[i].Slot.Name, fast[i].Slot.Name)
		assert.Equal(t, full[i].State, fast[i].State)
		assert.Equal(t, full[i].Version, fast[i].Version)
		assert.Equal(t, full[i].Dependencies, fast[i].Dependencies)
		if full[i].Module != nil {
			assert.False(t, fast[i].IntegrityChecked)
			assert.False(t, fast[i].Checks.Integrity, "integrity cannot pass unchecked")
			assert.True(t, fast[i].Checks.Range && fast[i].Checks.Platform && fast[i].Checks.Dependencies)
			assert.Equal(t, full[i].Module.SHA256, fast[i].Module.SHA256, "suffix read from the tail")
		}
	}
	assert.Greater(t, fullBytes, 507426+45844, "the full read covers every module")
	assert.Less(t, fastBytes, 2048, "headers and suffixes only")
	t.Logf("UPLOAD bytes: verified %d, headers only %d", fullBytes, fastBytes)
}

func TestReadModulesPhoton231(t *testing.T) {
	r := newModRig(t, "photon")
	r.install(t, release(t, "photon-bootloader@2.3.1+lto.bin"))
	r.install(t, release(t, "photon-system-part1@2.3.1.bin"))
	r.install(t, release(t, "photon-system-part2@2.3.1.bin"))
	r.install(t, app(t, "photon_tinker_tinker-0.4.5-photon.bin"))
	// The same Tinker as the factory image (0x080E0000).
	tinker := app(t, "photon_tinker_tinker-0.4.5-photon.bin")
	require.NoError(t, r.mem.Load(0x080E0000, tinker))

	mods := byName(r.read(t, slots.ReadOptions{}))
	for name, want := range map[string]uint16{"bootloader": 1006, "system-part1": 2302, "system-part2": 2302, "user-part": 3, "user-part@factory": 3} {
		m := mods[name]
		assert.Equal(t, slots.SlotPresent, m.State, "%s: %s", name, m.Problem)
		assert.Equal(t, want, m.Version, name)
		assert.True(t, m.Valid(), "%s: %+v", name, m.Checks)
	}
	assert.Equal(t, uint32(0x080E0000), mods["user-part@factory"].Address)
	assert.Equal(t, []module.Dependency{{Function: platform.FuncSystem, Index: 1, Version: 2302}, {Function: platform.FuncBootloader, Version: 1003}},
		mods["system-part2"].Dependencies)
	assert.Len(t, mods, 5, "no mono slot reported")
}

func TestReadModulesElectron231(t *testing.T) {
	r := newModRig(t, "electron")
	r.install(t, release(t, "electron-bootloader@2.3.1+lto.bin"))
	r.install(t, release(t, "electron-system-part1@2.3.1.bin"))
	r.install(t, release(t, "electron-system-part2@2.3.1.bin"))
	r.install(t, release(t, "electron-system-part3@2.3.1.bin"))

	mods := byName(r.read(t, slots.ReadOptions{}))
	for name, want := range map[string]struct {
		idx  uint8
		addr uint32
	}{"system-part1": {3, 0x08060000}, "system-part2": {1, 0x08020000}, "system-part3": {2, 0x08040000}} {
		m := mods[name]
		assert.Equal(t, slots.SlotPresent, m.State, name)
		assert.Equal(t, want.idx, m.Index, name)
		assert.Equal(t, want.addr, m.Address, name)
		assert.Equal(t, uint16(2302), m.Version, name)
		assert.True(t, m.Valid(), "%s: %+v", name, m.Checks)
	}
	assert.Equal(t, slots.SlotErased, mods["user-part"].State)
	_, factory := mods["user-part@factory"]
	assert.False(t, factory, "an empty factory slot is not listed, as Device OS does")
}

func TestReadModulesDamage(t *testing.T) {
	part1 := release(t, "boron-system-part1@4.1.0.bin")
	cases := []struct {
		name    string
		install func(r *modRig)
		state   slots.SlotState
		problem string
	}{
		{"erased", func(r *modRig) {}, slots.SlotErased, ""},
		{"half-written", func(r *modRig) { require.NoError(t, r.mem.Load(0x30000, part1[:len(part1)/2])) }, slots.SlotCorrupt, "half-written"},
		{"bit flip", func(r *modRig) {
			b := append([]byte(nil), part1...)
			b[len(b)/2] ^= 0x10
			require.NoError(t, r.mem.Load(0x30000, b))
		}, slots.SlotCorrupt, "CRC mismatch"},
		{"debris", func(r *modRig) { require.NoError(t, r.mem.Load(0x28000, make([]byte, 0x1000))) }, slots.SlotCorrupt, "no valid module header"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newModRig(t, "boron")
			r.install(t, release(t, "boron-bootloader@4.1.0.bin"))
			r.install(t, release(t, "boron-softdevice@4.1.0.bin"))
			c.install(r)
			var sys []slots.SlotModule
			for _, m := range r.read(t, slots.ReadOptions{}) {
				if m.Function == platform.FuncSystem {
					sys = append(sys, m)
				}
			}
			require.Len(t, sys, 1, "%+v", sys)
			assert.Equal(t, c.state, sys[0].State)
			assert.Contains(t, sys[0].Problem, c.problem)
			assert.False(t, sys[0].Valid())
		})
	}
}

func TestReadModulesFailedDependency(t *testing.T) {
	// A Boron 4.1.0 system part with a 1.5.2 bootloader: what the device boots into safe
	// mode for (reference §6a).
	r := newModRig(t, "boron")
	r.install(t, release(t, "boron-bootloader@1.5.2.bin"))
	r.install(t, release(t, "boron-system-part1@4.1.0.bin"))
	r.install(t, release(t, "boron-softdevice@4.1.0.bin"))
	mods := byName(r.read(t, slots.ReadOptions{}))
	part1 := mods["system-part1"]
	assert.Equal(t, slots.SlotPresent, part1.State)
	assert.True(t, part1.Checks.Integrity && part1.Checks.Range && part1.Checks.Platform)
	assert.False(t, part1.Checks.Dependencies, "needs bootloader 1200, 502 installed")
	assert.False(t, part1.Valid())
	// The 1.5.2 bootloader needs system part 1 ≥ 1102: met.
	assert.True(t, mods["bootloader"].Checks.Dependencies)
}

func TestReadModulesMovedSystemPart(t *testing.T) {
	// Device OS 6.1.2+ puts system-part1 at 0x28000; the 0x30000 header position is then
	// inside it and must not be reported as a second module.
	r := newModRig(t, "argon")
	r.install(t, release(t, "argon-softdevice@4.1.0.bin"))
	boot, err := module.BuildForSlot(r.p, mustSlot(t, r.p, "bootloader"), 3100)
	require.NoError(t, err)
	r.install(t, boot)
	sp, ok := r.p.SlotFor(platform.FuncSystem, 1, 6200)
	require.True(t, ok)
	require.Equal(t, uint32(0x28000), sp.Start)
	spec, err := module.SpecForSlot(r.p, sp, 6200, module.Dependency{Function: platform.FuncBootloader, Version: 3100},
		module.Dependency{Function: platform.FuncRadio, Version: 202})
	require.NoError(t, err)
	spec.Size = 0x10000 // reaches past 0x30200
	bin, err := module.Build(spec)
	require.NoError(t, err)
	r.install(t, bin)

	var sys []slots.SlotModule
	for _, m := range r.read(t, slots.ReadOptions{}) {
		if m.Function == platform.FuncSystem || m.Function == platform.FuncMono {
			sys = append(sys, m)
		}
	}
	require.Len(t, sys, 1, "%+v", sys)
	assert.Equal(t, uint32(0x28000), sys[0].Address)
	assert.Equal(t, uint16(6200), sys[0].Version)
	assert.True(t, sys[0].Valid(), "%+v %s", sys[0].Checks, sys[0].Problem)
}

func mustSlot(t *testing.T, p *platform.Platform, name string) platform.Slot {
	t.Helper()
	s, ok := p.SlotByName(name)
	require.True(t, ok, name)
	return s
}

func TestReadModulesEndFixedUserPart(t *testing.T) {
	r := newModRig(t, "p2")
	tinker := app(t, "p2_tinker_tinker-5.0.0-p2.bin")
	r.install(t, tinker)
	for _, skip := range []bool{false, true} {
		mods := byName(r.read(t, slots.ReadOptions{SkipIntegrity: skip}))
		u := mods["user-part"]
		require.Equal(t, slots.SlotPresent, u.State, u.Problem)
		assert.Equal(t, uint32(0x085F4000), u.Address, "found from the fixed end through DYNAMIC_LOCATION")
		assert.Equal(t, uint16(6), u.Version)
		assert.Equal(t, !skip, u.IntegrityChecked)
		assert.Equal(t, slots.SlotErased, mods["system-part1"].State)
		assert.False(t, u.Checks.Dependencies, "system part 1 ≥ 5002 is missing")
	}
}

func TestReadModulesLongSuffixWithoutIntegrity(t *testing.T) {
	// An application with asset dependencies has a 183-byte suffix: more than the tail
	// window, so the header-only read must fetch the rest.
	r := newModRig(t, "argon")
	bin := app(t, "third_party_ota_app-with-assets.bin")
	r.install(t, bin)
	want, err := module.Parse(bin)
	require.NoError(t, err)
	mods := byName(r.read(t, slots.ReadOptions{SkipIntegrity: true}))
	u := mods["user-part"]
	require.Equal(t, slots.SlotPresent, u.State, u.Problem)
	require.NotNil(t, u.Module)
	assert.Equal(t, want.SHA256, u.Module.SHA256)
	assert.Equal(t, len(want.AssetDependencies()), len(u.Module.AssetDependencies()))
	assert.NotEmpty(t, u.Module.AssetDependencies())
}

func TestReadModulesSoftDeviceHalfWritten(t *testing.T) {
	r := newModRig(t, "boron")
	sd := release(t, "boron-softdevice@4.1.0.bin")[module.PrefixSize:]
	require.NoError(t, r.mem.Load(0x1000, sd[:len(sd)/2]))
	mods := byName(r.read(t, slots.ReadOptions{}))
	assert.Equal(t, slots.SlotCorrupt, mods["softdevice"].State)
	assert.Contains(t, mods["softdevice"].Problem, "half-written")

	// Without its info structure it is not recognisable at all.
	r = newModRig(t, "boron")
	require.NoError(t, r.mem.Load(0x1000, sd[:0x1000]))
	mods = byName(r.read(t, slots.ReadOptions{}))
	assert.Equal(t, slots.SlotCorrupt, mods["softdevice"].State)
	assert.Contains(t, mods["softdevice"].Problem, "information structure")
}

func TestReadModulesProtected(t *testing.T) {
	r := newModRig(t, "boron")
	l, err := memlayout.Parse(dfudev.ProtectedName(r.p.Alts[0].Layout))
	require.NoError(t, err)
	_, err = slots.ReadModules(context.Background(), r.client, r.p, l)
	require.Error(t, err)
	assert.True(t, errors.Is(err, dfu.ErrProtected), "%v", err)
}

func TestReadModulesDeviceGone(t *testing.T) {
	r := newModRig(t, "boron")
	r.install(t, release(t, "boron-bootloader@4.1.0.bin"))
	gone := &goneAfter{dev: r.dev, n: 30}
	c := dfu.New(gone, dfu.Options{TransferSize: 4096, Retries: -1})
	_, err := slots.ReadModules(context.Background(), c, r.p, nil)
	require.Error(t, err)
	assert.True(t, errors.Is(err, dfu.ErrNoDevice), "%v", err)
	assert.True(t, strings.Contains(err.Error(), "Boron"), "%v", err)
}

// goneAfter lets n transfers through, then behaves like an unplugged device.
type goneAfter struct {
	dev *dfudev.Device
	n   int
}

func (g *goneAfter) Control(rt, req uint8, val, idx uint16, data []byte) (int, error) {
	if g.n <= 0 {
		return 0, dfudev.ErrNoDevice
	}
	g.n--
	return g.dev.Control(rt, req, val, idx, data)
}
