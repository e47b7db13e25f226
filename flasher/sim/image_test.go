package sim_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
)

// A device keeping its image (Options.ImagePath) writes it when created, after flash
// changes and at Close; a device started from that image with the same ID is the same
// device: the same bytes in every memory, the same modules, the same boot.
func TestImageKeepsTheDevice(t *testing.T) {
	p := plat(t, "boron")
	path := filepath.Join(t.TempDir(), "boron.img")
	id := "e00fce68aabbccddeeff0011"
	mods := append(releases(t, "boron-bootloader@4.1.0.bin", "boron-system-part1@4.1.0.bin", "boron-softdevice@4.1.0.bin"), userPart(t, p, 4100, 1))
	d, err := sim.New(sim.Options{Platform: p, Modules: mods, DeviceID: id, ImagePath: path})
	require.NoError(t, err)
	require.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
	_, err = os.Stat(path)
	require.NoError(t, err, "written when created")

	// Damage the system part as a DFU write cut short would: erase its first sector.
	sys, ok := p.SlotFor(platform.FuncSystem, 1, 4100)
	require.True(t, ok)
	require.NoError(t, d.Memory(0).EraseSector(sys.Start))
	require.NoError(t, d.Close())

	img, err := sim.ReadImage(path)
	require.NoError(t, err)
	assert.Equal(t, "boron", img.Platform)
	assert.Equal(t, id, img.DeviceID)
	again, err := sim.New(sim.Options{Platform: p, Image: img, DeviceID: id})
	require.NoError(t, err)
	t.Cleanup(func() { _ = again.Close() })
	assert.Equal(t, sim.ModeDFU, again.Mode(), "the damaged system part keeps it in DFU mode")
	assert.Equal(t, d.InternalFlash(), again.InternalFlash())
	for _, a := range p.Alts {
		assert.Equal(t, d.Memory(a.Alt).Export(), again.Memory(a.Alt).Export(), "alt %d", a.Alt)
	}
	assert.Equal(t, id, again.ID())

	// A raw internal-flash dump starts a device too.
	raw := filepath.Join(t.TempDir(), "raw.bin")
	require.NoError(t, os.WriteFile(raw, d.InternalFlash(), 0o644))
	img, err = sim.ReadImage(raw)
	require.NoError(t, err)
	fromRaw, err := sim.New(sim.Options{Platform: p, Image: img, DeviceID: id})
	require.NoError(t, err)
	t.Cleanup(func() { _ = fromRaw.Close() })
	assert.Equal(t, d.InternalFlash(), fromRaw.InternalFlash())
}
