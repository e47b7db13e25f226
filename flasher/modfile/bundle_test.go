package modfile_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/modfile"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/internal/testbundle"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

func real(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testshared.Dir(t, "firmware", "releases"), name))
	require.NoError(t, err)
	return b
}

func plat(t *testing.T, name string) *platform.Platform {
	p, ok := platform.ByName(name)
	require.True(t, ok, name)
	return p
}

// describeAll lists a bundle's modules as "platform slot version".
func describeAll(b *modfile.Bundle) []string {
	var out []string
	for _, m := range b.Modules() {
		out = append(out, fmt.Sprintf("%s %s %d", m.PlatformName(), m.SlotName(), m.Version))
	}
	return out
}

// Every real release file in ../shared is named as Particle names it: none of them draws
// a name warning.
func TestRealNamesAgreeWithTheirHeaders(t *testing.T) {
	dir := testshared.Dir(t, "firmware", "releases")
	b, err := modfile.Load(dir)
	require.NoError(t, err)
	assert.Empty(t, b.Warnings())
	assert.Greater(t, len(b.Files), 25)
}

// A file whose name says one thing and whose header another is used as its header says,
// with a warning naming both.
func TestNameAndHeaderDisagree(t *testing.T) {
	data := real(t, "boron-system-part1@4.1.0.bin")
	for _, tc := range []struct{ name, says string }{
		{"argon-system-part1@4.1.0.bin", "the boron, not the argon"},
		{"boron-system-part1@4.0.0.bin", "Device OS 4.1.0, not Device OS 4.0.0"},
		{"boron-bootloader@4.1.0.bin", "a system-part1, not a bootloader"},
		{"system-part1-4.0.0-boron.bin", "Device OS 4.1.0, not Device OS 4.0.0"},
		{"bootloader.bin", "a system-part1, not a bootloader"},
	} {
		b, err := modfile.Parse(tc.name, data)
		require.NoError(t, err)
		require.Len(t, b.Files, 1)
		m := b.Files[0].Module
		assert.Equal(t, platform.FuncSystem, m.Function, "identity comes from the header")
		assert.Contains(t, b.Files[0].Warning, tc.says, tc.name)
		assert.Contains(t, b.Files[0].Warning, "used as its header says")
	}
	for _, ok := range []string{"boron-system-part1@4.1.0.bin", "system-part1.bin", "my-upgrade.bin"} {
		b, err := modfile.Parse(ok, data)
		require.NoError(t, err)
		assert.Empty(t, b.Files[0].Warning, ok)
	}
}

// The three shapes of Particle bundles give the device's modules, and say what they
// left out.
func TestParticleBundles(t *testing.T) {
	boron := map[string][]byte{
		"bootloader":   real(t, "boron-bootloader@4.1.0.bin"),
		"system-part1": real(t, "boron-system-part1@4.1.0.bin"),
		"softdevice":   real(t, "boron-softdevice@4.1.0.bin"),
	}
	argon := map[string][]byte{
		"bootloader":   real(t, "argon-bootloader@4.1.0.bin"),
		"system-part1": real(t, "argon-system-part1@4.1.0.bin"),
		"softdevice":   real(t, "argon-softdevice@4.1.0.bin"),
	}
	want := []string{"boron bootloader 1200", "boron softdevice 202", "boron system-part1 4100"}

	t.Run("Device Restore zip", func(t *testing.T) {
		files := map[string][]byte{}
		for part, b := range boron {
			files[part+".bin"] = b
		}
		b, err := modfile.Parse("boron.zip", testbundle.Zip(t, files))
		require.NoError(t, err)
		picked, err := b.For(plat(t, "boron"))
		require.NoError(t, err)
		assert.ElementsMatch(t, want, describeAll(picked))
		assert.Empty(t, picked.Notes)
		assert.Empty(t, picked.Warnings())
	})
	t.Run("GitHub binaries zip", func(t *testing.T) {
		files := map[string][]byte{}
		for part, b := range boron {
			base := "release/boron-" + part + "@4.1.0"
			files[base+".bin"] = b
			files[base+".elf"] = []byte("\x7fELF")
			files[base+".map"] = []byte("map")
			files[base+".lst"] = []byte("lst")
		}
		b, err := modfile.Parse("particle_device-os@4.1.0+boron.binaries.zip", testbundle.Zip(t, files))
		require.NoError(t, err)
		assert.ElementsMatch(t, want, describeAll(b))
		require.Len(t, b.Notes, 1)
		assert.Contains(t, b.Notes[0], "left out 9 files: 3 .elf, 3 .lst, 3 .map (not modules)")
	})
	t.Run("whole-version zip with two platforms", func(t *testing.T) {
		files := map[string][]byte{}
		for name, set := range map[string]map[string][]byte{"boron": boron, "argon": argon} {
			for part, b := range set {
				files["4.1.0/"+name+"/release/"+name+"-"+part+"@4.1.0.bin"] = b
				files["4.1.0/"+name+"/debug/"+name+"-"+part+"@4.1.0+debug.bin"] = b
				files["4.1.0/"+name+"/release/"+name+"-"+part+"@4.1.0.elf"] = []byte("elf")
			}
		}
		b, err := modfile.Parse("particle_device-os@4.1.0.zip", testbundle.Zip(t, files))
		require.NoError(t, err)
		assert.Len(t, b.Files, 6, "release builds of both platforms")
		picked, err := b.For(plat(t, "boron"))
		require.NoError(t, err)
		assert.ElementsMatch(t, want, describeAll(picked))
		notes := strings.Join(picked.Notes, "\n")
		assert.Contains(t, notes, "left out 3 modules for other platforms (Argon); the Boron's are used")
		assert.Contains(t, notes, "left out the builds in 4.1.0/argon/debug/, 4.1.0/boron/debug/")
		assert.Contains(t, notes, "6 files: 6 .elf (not modules)")

		_, err = b.For(plat(t, "photon"))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "particle_device-os@4.1.0.zip holds no module for the Photon: its modules are built for the Argon, Boron")
	})
	t.Run("an unpacked folder", func(t *testing.T) {
		dir := t.TempDir()
		for part, b := range boron {
			p := filepath.Join(dir, "4.1.0", "boron", "release", "boron-"+part+"@4.1.0.bin")
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
			require.NoError(t, os.WriteFile(p, b, 0o644))
		}
		b, err := modfile.Load(dir)
		require.NoError(t, err)
		assert.ElementsMatch(t, want, describeAll(b))
	})
}

// Particle's Gen3 releases before 4.0 carry the Argon's SoftDevice for every Gen3
// platform: a Boron takes it when the bundle has none of its own, never when it has.
func TestSharedSoftDevicePicked(t *testing.T) {
	files := map[string][]byte{
		"boron-system-part1@4.1.0.bin": real(t, "boron-system-part1@4.1.0.bin"),
		"argon-softdevice@4.1.0.bin":   real(t, "argon-softdevice@4.1.0.bin"),
	}
	b, err := modfile.Parse("boron.zip", testbundle.Zip(t, files))
	require.NoError(t, err)
	picked, err := b.For(plat(t, "boron"))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"argon softdevice 202", "boron system-part1 4100"}, describeAll(picked))
	assert.Empty(t, picked.Notes)

	files["boron-softdevice@4.1.0.bin"] = real(t, "boron-softdevice@4.1.0.bin")
	b, err = modfile.Parse("boron.zip", testbundle.Zip(t, files))
	require.NoError(t, err)
	picked, err = b.For(plat(t, "boron"))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"boron softdevice 202", "boron system-part1 4100"}, describeAll(picked))
	assert.Contains(t, strings.Join(picked.Notes, "\n"), "left out 1 module for other platforms (Argon)")

	// An STM32 or RTL872x platform has no radio stack to share.
	_, err = b.For(plat(t, "photon"))
	require.Error(t, err)

	// A stray module of another platform stays, for the planner to refuse in its words.
	sd, err := module.SetPlatform(real(t, "argon-softdevice@4.1.0.bin"), plat(t, "p2").ID)
	require.NoError(t, err)
	b, err = modfile.Parse("boron.zip", testbundle.Zip(t, map[string][]byte{
		"boron-system-part1@4.1.0.bin": real(t, "boron-system-part1@4.1.0.bin"),
		"softdevice.bin":               sd,
	}))
	require.NoError(t, err)
	picked, err = b.For(plat(t, "boron"))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"p2 radio 202", "boron system-part1 4100"}, describeAll(picked))
}

// A Device Restore .hex (an image for SWD programmers) gives the modules that carry
// their headers; what else it holds (the MBR, a SoftDevice without its header) is named
// and left out.
func TestIntelHexImage(t *testing.T) {
	boot, sp1, sp2 := real(t, "photon-bootloader@2.3.1+lto.bin"), real(t, "photon-system-part1@2.3.1.bin"), real(t, "photon-system-part2@2.3.1.bin")
	img := testbundle.Hex(
		testbundle.Part{Addr: 0x08000000, Data: boot},
		testbundle.Part{Addr: 0x08020000, Data: sp1},
		testbundle.Part{Addr: 0x08060000, Data: sp2},
	)
	b, err := modfile.Parse("photon.hex", img)
	require.NoError(t, err)
	assert.Equal(t, []string{"photon bootloader 1006", "photon system-part1 2302", "photon system-part2 2302"}, describeAll(b))
	for i, want := range [][]byte{boot, sp1, sp2} {
		assert.Equal(t, want, b.Files[i].Module.Data, "module %d is byte for byte the file", i)
		require.NoError(t, b.Files[i].Module.Validate())
	}
	assert.Empty(t, b.Notes)

	// A Gen3 image: the SoftDevice without its header and suffix at 0x1000, as the
	// restore generator writes it, and an MBR before it.
	sd := real(t, "boron-softdevice@4.1.0.bin")
	sdm, err := module.Parse(sd)
	require.NoError(t, err)
	body := sd[module.PrefixSize : len(sd)-int(sdm.SuffixSize)]
	mbr := append([]byte{0x00, 0x10, 0x00, 0x20}, make([]byte, 0xFFC)...)
	img = testbundle.Hex(
		testbundle.Part{Addr: 0, Data: mbr},
		testbundle.Part{Addr: 0x1000, Data: body},
		testbundle.Part{Addr: 0x30000, Data: real(t, "boron-system-part1@4.1.0.bin")},
		testbundle.Part{Addr: 0xF4000, Data: real(t, "boron-bootloader@4.1.0.bin")},
	)
	b, err = modfile.Parse("boron.hex", img)
	require.NoError(t, err)
	assert.Equal(t, []string{"boron system-part1 4100", "boron bootloader 1200"}, describeAll(b))
	require.Len(t, b.Notes, 1)
	assert.Contains(t, b.Notes[0], "boron.hex also holds bytes at 0x00000000-")
	assert.Contains(t, b.Notes[0], "carry no module header; they are left out")

	// Damaged images are refused in one line.
	for name, bad := range map[string][]byte{
		"checksum":    []byte(":0400000001020304F0\n:00000001FF\n"),
		"no end":      []byte(":0400000001020304F2\n"),
		"not hex":     []byte("hello\n"),
		"record type": []byte(":0400000901020304E9\n:00000001FF\n"),
		"no modules":  []byte(":0400000001020304F2\n:00000001FF\n"),
	} {
		_, err := modfile.Parse("x.hex", bad)
		require.Error(t, err, name)
		assert.ErrorIs(t, err, modfile.ErrNotModule, name)
		assert.NotContains(t, err.Error(), "\n", name)
	}
}
