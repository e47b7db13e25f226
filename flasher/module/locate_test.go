package module

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// Locate finds real modules where their headers say they start, between erased flash and
// garbage, and byte for byte.
func TestLocateFindsModulesByTheirOwnAddress(t *testing.T) {
	dir := testshared.Dir(t, "firmware", "releases")
	sp1, err := os.ReadFile(filepath.Join(dir, "photon-system-part1@2.3.1.bin"))
	require.NoError(t, err)
	boot, err := os.ReadFile(filepath.Join(dir, "photon-bootloader@2.3.1+lto.bin"))
	require.NoError(t, err)
	const base = 0x08000000
	image := make([]byte, 0x20000+len(sp1)+0x1000)
	for i := range image {
		image[i] = 0xFF
	}
	copy(image, boot)
	copy(image[0x20000:], sp1)
	found := Locate(base, image)
	require.Len(t, found, 2)
	assert.Equal(t, uint32(0x08000000), found[0].Addr)
	assert.Equal(t, boot, found[0].Module.Data)
	assert.Equal(t, uint32(0x08020000), found[1].Addr)
	assert.Equal(t, sp1, found[1].Module.Data)

	// The same bytes one page off: their headers name other addresses, so nothing is found.
	assert.Empty(t, Locate(base+0x1000, image))
}

// A header whose module would end before its own header is not a module, and the search
// always moves forward (an early version looped on this).
func TestLocateNeverGoesBack(t *testing.T) {
	image := make([]byte, 0x400)
	binary.LittleEndian.PutUint32(image[0x200:], 0x1000) // start: the image's base
	binary.LittleEndian.PutUint32(image[0x204:], 0x1004) // end: 8 bytes in all
	image[0x20E] = 4                                     // a system module
	binary.LittleEndian.PutUint16(image[0x20C:], 13)     // on a Boron
	assert.Empty(t, Locate(0x1000, image))
}
