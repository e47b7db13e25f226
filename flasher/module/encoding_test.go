package module

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// compressible builds a module whose code deflates well, like real firmware does.
func compressible(t testing.TB, spec Spec) []byte {
	t.Helper()
	spec.Fill = func(b []byte) {
		for i := range b {
			b[i] = byte(i / 64)
		}
	}
	data, err := Build(spec)
	require.NoError(t, err)
	return data
}

func TestCompressRoundTrip(t *testing.T) {
	cases := map[string]Spec{
		"user part":           {PlatformID: 13, Function: platform.FuncUser, Index: 2, Start: 0xB4000, Size: 20000, Product: &Product{13, 3}},
		"vector table":        {PlatformID: 13, Function: platform.FuncSystem, Index: 1, Start: 0x30000, HeaderOffset: 0x200, Size: 30000},
		"drop module info":    {PlatformID: 12, Function: platform.FuncRadio, Start: 0x1000, Flags: FlagDropModuleInfo, Suffix: SuffixNoProduct, Size: 9000},
		"RTL with extensions": {PlatformID: 32, Function: platform.FuncUser, Index: 1, Start: 0x085FE000, Size: 8192, Suffix: SuffixRTL},
	}
	for name, spec := range cases {
		t.Run(name, func(t *testing.T) {
			orig := compressible(t, spec)
			comp, err := Compress(orig)
			require.NoError(t, err)
			assert.Less(t, len(comp), len(orig))
			m, err := Verify(comp)
			require.NoError(t, err, "a compressed module is a valid module")
			assert.True(t, m.Compressed())
			assert.Equal(t, 0, m.HeaderOffset, "the prefix moves to the front")
			require.NotNil(t, m.Compression)
			assert.EqualValues(t, CompressedHeaderSize, m.Compression.Size)
			r := m.Report("c")
			assert.True(t, r.Compressed)

			back, err := m.Decompress()
			require.NoError(t, err)
			assert.True(t, bytes.Equal(orig, back), "decompress gives the original back")

			_, err = Compress(comp)
			assert.ErrorIs(t, err, ErrCompression, "already compressed")
		})
	}
}

func TestDecompressErrors(t *testing.T) {
	orig := compressible(t, Spec{PlatformID: 13, Function: platform.FuncUser, Index: 2, Start: 0xB4000, Size: 20000})
	m, err := Parse(orig)
	require.NoError(t, err)
	_, err = m.Decompress()
	assert.ErrorIs(t, err, ErrNotCompressed)

	comp, err := Compress(orig)
	require.NoError(t, err)
	// Damage the deflate stream (checksums fixed, so only the stream is wrong).
	bad := bytes.Clone(comp)
	for i := PrefixSize + CompressedHeaderSize + 2; i < PrefixSize+CompressedHeaderSize+40; i++ {
		bad[i] ^= 0x55
	}
	patchChecksums(bad)
	m, err = Parse(bad)
	require.NoError(t, err)
	_, err = m.Decompress()
	assert.ErrorIs(t, err, ErrCompression)

	// A header promising another size.
	bad = bytes.Clone(comp)
	bad[PrefixSize+4]++
	m, err = Parse(bad)
	require.NoError(t, err)
	_, err = m.Decompress()
	assert.ErrorIs(t, err, ErrCompression)

	// Unknown method.
	bad = bytes.Clone(comp)
	bad[PrefixSize+2] = 7
	m, err = Parse(bad)
	require.NoError(t, err)
	_, err = m.Decompress()
	assert.ErrorContains(t, err, "unknown compression method 7")
}

func TestCombineAndSplit(t *testing.T) {
	p, _ := platform.ByID(13)
	var parts [][]byte
	for _, name := range []string{"system-part1", "bootloader", "user-part"} {
		s, ok := p.SlotByName(name)
		require.True(t, ok)
		data, err := BuildForSlot(p, s, slotVersion(s), slotDeps(s)...)
		require.NoError(t, err)
		parts = append(parts, data)
	}
	all, err := Combine(parts...)
	require.NoError(t, err)

	m, err := Verify(all)
	require.NoError(t, err)
	assert.True(t, m.Combined())
	assert.Equal(t, len(all), m.FileSize)
	assert.Len(t, m.Data, len(parts[0]))
	assert.True(t, m.CRCOK)
	r := m.Report("all")
	assert.True(t, r.Combined)
	assert.True(t, r.Valid, r.Error)

	mods, err := SplitCombined(all)
	require.NoError(t, err)
	require.Len(t, mods, 3)
	for i, mod := range mods {
		assert.True(t, bytes.Equal(parts[i], mod.Data), "part %d comes back as it was", i)
		assert.NoError(t, mod.Validate())
		assert.False(t, mod.Combined())
	}

	// A plain module splits into itself.
	one, err := SplitCombined(parts[0])
	require.NoError(t, err)
	require.Len(t, one, 1)

	// Damage in the second module shows, with its position.
	bad := bytes.Clone(all)
	bad[len(parts[0])+3000] ^= 0x10
	_, err = Verify(bad)
	assert.ErrorIs(t, err, ErrCombined)
	assert.ErrorIs(t, err, ErrCRC)
	assert.ErrorContains(t, err, "module 2 of 3")

	// The last module cut off.
	_, err = Verify(all[:len(all)-100])
	assert.ErrorIs(t, err, ErrCombined)
	_, err = SplitCombined(all[:len(all)-100])
	assert.ErrorIs(t, err, ErrCombined)

	// Trailing junk after the last module.
	_, err = SplitCombined(append(bytes.Clone(all), 1, 2, 3))
	assert.ErrorIs(t, err, ErrCombined)

	// A lone module with the combined flag.
	lone := bytes.Clone(parts[2])
	lone[9] |= byte(FlagCombined)
	patchChecksums(lone)
	_, err = Verify(lone)
	assert.ErrorIs(t, err, ErrCombined)

	_, err = Combine()
	assert.ErrorIs(t, err, ErrCombined)
	_, err = Combine(all)
	assert.ErrorIs(t, err, ErrCombined)
}
