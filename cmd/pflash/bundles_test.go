package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	cache "github.com/particle-flasher/particle-flasher/firmware-cache"
	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/sim/releases"
	"github.com/particle-flasher/particle-flasher/internal/testbundle"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

func releaseFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testshared.Dir(t, "firmware", "releases"), name))
	require.NoError(t, err)
	return b
}

// writeBundle writes a bundle into a temporary folder and returns its path.
func writeBundle(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, data, 0o644))
	return p
}

// TestParticleBundlesFlash is "every firmware file a person already has from Particle is
// accepted as it is", acceptance 1: a Device Restore zip (flat <part>.bin names), a
// GitHub .binaries.zip (release/ with .elf, .map and .lst beside the .bin files) and a
// whole-version zip with two platforms each bring a Boron at 1.5.2 to 4.1.0.
func TestParticleBundlesFlash(t *testing.T) {
	for _, shape := range testbundle.Shapes(t, "boron", "argon", "4.1.0") {
		t.Run(shape.Name, func(t *testing.T) {
			d := flashSim(t, "boron", []string{"boron-bootloader@1.5.2.bin", "boron-system-part1@1.5.2.bin", "boron-softdevice@4.1.0.bin"}, "boron_tinker_tinker-0.8.0-rc.27-boron.bin")
			flashInProcess(t, d)
			path := writeBundle(t, shape.Name, shape.Data)
			code, out, errb := flashRun(t, "flash", "--to", path, "--yes", "--state-dir", t.TempDir())
			require.Equal(t, 0, code, "%s\n%s", out, errb)
			assert.Contains(t, out, "Plan for the Boron: Device OS 1.5.2 -> 4.1.0")
			for _, n := range shape.Notes {
				assert.Contains(t, out, n)
			}
			assert.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
			assert.Equal(t, "4.1.0", d.SystemVersion())
		})
	}
}

// TestArgonSoftDeviceOnABoron is acceptance 2: a Boron flashed with a bundle whose
// SoftDevice is the Argon's (platform 12, as Particle's Gen3 bundles before 4.0 carry it)
// ends normal at the target with the note printed: when its SoftDevice is current (it is
// left alone) and when it has none (it is written over DFU without its header). A
// SoftDevice built for an STM32 or RTL872x platform is refused before anything is written.
func TestArgonSoftDeviceOnABoron(t *testing.T) {
	bundle := writeBundle(t, "boron.zip", testbundle.Zip(t, map[string][]byte{
		"softdevice.bin":   releaseFile(t, "argon-softdevice@4.1.0.bin"),
		"system-part1.bin": releaseFile(t, "boron-system-part1@4.1.0.bin"),
		"bootloader.bin":   releaseFile(t, "boron-bootloader@4.1.0.bin"),
		"tinker.bin":       testbundle.Release(t, "boron", "4.1.0")["tinker"],
	}))
	const note = "is the Argon's build; the same SoftDevice serves every nrf52840 platform and its header is dropped on the way to flash"

	t.Run("normal at 1.5.2", func(t *testing.T) {
		d := flashSim(t, "boron", []string{"boron-bootloader@1.5.2.bin", "boron-system-part1@1.5.2.bin", "boron-softdevice@4.1.0.bin"}, "boron_tinker_tinker-0.8.0-rc.27-boron.bin")
		flashInProcess(t, d)
		code, out, errb := flashRun(t, "flash", "--to", bundle, "--yes", "--state-dir", t.TempDir())
		require.Equal(t, 0, code, "%s\n%s", out, errb)
		assert.Contains(t, out, note)
		assert.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
		assert.Equal(t, "4.1.0", d.SystemVersion())
	})
	t.Run("DFU without a SoftDevice", func(t *testing.T) {
		p, _ := platform.ByName("boron")
		d, err := sim.New(sim.Options{Platform: p, Modules: [][]byte{releaseFile(t, "boron-bootloader@1.5.2.bin"), releaseFile(t, "boron-system-part1@1.5.2.bin")}, NoSerial: true})
		require.NoError(t, err)
		t.Cleanup(func() { _ = d.Close() })
		require.Equal(t, sim.ModeDFU, d.Mode(), "no SoftDevice: the bootloader stays in DFU")
		flashInProcess(t, d)
		code, out, errb := flashRun(t, "flash", "--to", bundle, "--yes", "--state-dir", t.TempDir())
		require.Equal(t, 0, code, "%s\n%s", out, errb)
		assert.Contains(t, out, note)
		assert.Contains(t, out, "softdevice")
		assert.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
		assert.Equal(t, "4.1.0", d.SystemVersion())
	})
	for _, other := range []string{"photon", "p2"} {
		t.Run("a SoftDevice built for the "+other, func(t *testing.T) {
			op, _ := platform.ByName(other)
			sd, err := module.SetPlatform(releaseFile(t, "argon-softdevice@4.1.0.bin"), op.ID)
			require.NoError(t, err)
			bad := writeBundle(t, "boron.zip", testbundle.Zip(t, map[string][]byte{
				"softdevice.bin":   sd,
				"system-part1.bin": releaseFile(t, "boron-system-part1@4.1.0.bin"),
				"bootloader.bin":   releaseFile(t, "boron-bootloader@4.1.0.bin"),
			}))
			d := flashSim(t, "boron", []string{"boron-bootloader@1.5.2.bin", "boron-system-part1@1.5.2.bin", "boron-softdevice@4.1.0.bin"}, "boron_tinker_tinker-0.8.0-rc.27-boron.bin")
			flashInProcess(t, d)
			before := d.Status().Resets
			code, out, errb := flashRun(t, "flash", "--to", bad, "--yes", "--state-dir", t.TempDir())
			assert.NotEqual(t, 0, code, out)
			assert.Contains(t, errb, "built for the "+op.DisplayName)
			assert.Contains(t, errb, "but this device is a Boron")
			assert.Equal(t, "1.5.2", d.SystemVersion(), "nothing written")
			assert.Equal(t, before, d.Status().Resets, "not even restarted")
		})
	}
}

// TestGen3At310rc1RunsItsTinkerAt0xB4000 is acceptance 3: Particle's 3.1.0-rc.1 (system
// module 3102) already puts Tinker in the 256 KB slot at 0xB4000. A Gen3 device holding that
// release boots normal in the virtual device, and inspect shows the application: the slot
// is the one the application's own header names.
func TestGen3At310rc1RunsItsTinkerAt0xB4000(t *testing.T) {
	cat, err := cache.Embedded()
	require.NoError(t, err)
	for _, plat := range []string{"argon", "boron", "bsom", "b5som", "tracker"} {
		t.Run(plat, func(t *testing.T) {
			rel, err := cat.Release("3.1.0-rc.1", plat)
			require.NoError(t, err)
			set, err := releases.Build(rel)
			require.NoError(t, err)
			require.NotNil(t, set.App)
			start := set.App.Module.Start
			if plat != "tracker" { // Tracker Edge was still built for the 128 KB slot
				require.Equal(t, uint32(0xB4000), start, "the release's Tinker starts at 0xB4000")
			}
			p, _ := platform.ByName(plat)
			d, err := sim.New(sim.Options{Platform: p, Modules: set.Bytes(true), NoSerial: true, DeviceID: "e00fce68" + strings.Repeat("0", 15) + "7"})
			require.NoError(t, err)
			t.Cleanup(func() { _ = d.Close() })
			require.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)

			listWithDoors(t, demo.New(true, d))
			_, out, _ := listRun(t, "inspect-device", d.ID(), "--json")
			var ins inspectJSON
			require.NoError(t, json.Unmarshal([]byte(out), &ins), out)
			assert.Equal(t, "normal", ins.Mode)
			found := false
			for _, m := range ins.Modules {
				if m.Function == platform.FuncUser && m.Present {
					found = true
					assert.Equal(t, start, m.Start, "the application is where its header says")
				}
			}
			assert.True(t, found, "inspect shows the application: %s", out)
		})
	}
}
