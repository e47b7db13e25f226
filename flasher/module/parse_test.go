package module

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

func buildBoronPart1(t testing.TB) []byte {
	t.Helper()
	p, _ := platform.ByID(13)
	s, ok := p.SlotFor(platform.FuncSystem, 1, 4100)
	require.True(t, ok)
	data, err := BuildForSlot(p, s, 4100, Dependency{platform.FuncBootloader, 0, 1200}, Dependency{platform.FuncRadio, 0, 202})
	require.NoError(t, err)
	return data
}

func TestParseErrorsReadLikeSentences(t *testing.T) {
	good := buildBoronPart1(t)

	_, err := Parse(nil)
	assert.EqualError(t, err, "empty file")
	assert.ErrorIs(t, err, ErrEmpty)

	_, err = Parse([]byte{1, 2, 3})
	assert.ErrorIs(t, err, ErrTooShort)
	assert.Contains(t, err.Error(), "only 3 bytes")

	_, err = Parse(bytes.Repeat([]byte{0x5A}, 4096))
	assert.EqualError(t, err, "not a Particle module: no module header found")
	assert.ErrorIs(t, err, ErrNoHeader)

	_, err = Parse(make([]byte, 4096))
	assert.ErrorIs(t, err, ErrNoHeader)
	assert.Contains(t, err.Error(), "all 4096 bytes are zero")

	_, err = Parse(bytes.Repeat([]byte{0xFF}, 4096))
	assert.ErrorIs(t, err, ErrErased)

	// Truncated: the header is found, the size is wrong.
	m, err := Parse(good[:5000])
	require.NoError(t, err)
	err = m.Validate()
	assert.EqualError(t, err, "file is 5000 bytes but the header says 8192 (truncated?)")
	assert.ErrorIs(t, err, ErrSize)

	// Padded: found with a lower score, size wrong.
	m, err = Parse(append(bytes.Clone(good), make([]byte, 100)...))
	require.NoError(t, err)
	assert.EqualError(t, m.Validate(), "file is 8292 bytes but the header says 8192")

	// CRC only.
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 0xFF
	m, err = Parse(bad)
	require.NoError(t, err)
	assert.Regexp(t, `^CRC mismatch: stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}$`, m.Validate().Error())

	// A flipped code bit breaks both checksums; both are listed, CRC first.
	bad = bytes.Clone(good)
	bad[4000] ^= 1
	_, err = Verify(bad)
	assert.ErrorIs(t, err, ErrCRC)
	assert.ErrorIs(t, err, ErrSHA)
	var probs Problems
	require.ErrorAs(t, err, &probs)
	assert.Len(t, probs, 2)

	// Unknown platform, with checksums fixed.
	other, err := SetPlatform(good, 129)
	require.NoError(t, err)
	_, err = Verify(other)
	assert.EqualError(t, err, "unknown platform 129")
}

func TestParseNeverPanicsOnDamage(t *testing.T) {
	good := buildBoronPart1(t)
	r := rand.New(rand.NewPCG(1, 2))
	inputs := [][]byte{}
	for n := 0; n <= 700; n += 7 {
		inputs = append(inputs, good[:n], good[len(good)-n:])
	}
	for i := 0; i < 200; i++ {
		b := bytes.Clone(good)
		for j := 0; j < 1+r.IntN(8); j++ {
			b[r.IntN(len(b))] ^= byte(1 << r.IntN(8))
		}
		inputs = append(inputs, b)
		// Damage the header too, where the interesting fields are.
		h := bytes.Clone(good)
		h[0x200+r.IntN(24)] ^= byte(1 << r.IntN(8))
		inputs = append(inputs, h)
	}
	for i := 0; i < 50; i++ {
		b := make([]byte, r.IntN(3000))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		inputs = append(inputs, b)
	}
	for _, in := range inputs {
		exercise(t, in)
	}
}

// exercise runs every entry point on arbitrary input; none may panic.
func exercise(t testing.TB, in []byte) {
	m, err := Parse(in)
	if err == nil {
		require.NotNil(t, m)
		_ = m.Validate()
		_ = m.String()
		_, _ = m.Decompress()
		_, _ = json.Marshal(m.Report("x"))
	} else {
		require.Nil(t, m)
		require.NotEmpty(t, err.Error())
		// A nil module still answers.
		assert.Error(t, m.Validate())
		_ = m.String()
		_ = m.Report("x")
	}
	r := InspectBytes("x", in)
	assert.NotNil(t, r.Dependencies)
	if !r.Valid {
		assert.NotEmpty(t, r.Error)
	}
	_, _ = SplitCombined(in)
	_, _ = Compress(in)
}

func TestHeaderSearch(t *testing.T) {
	good := buildBoronPart1(t)
	m, err := Parse(good)
	require.NoError(t, err)
	assert.Equal(t, 0x200, m.HeaderOffset)
	assert.Equal(t, maxScore, m.HeaderScore)

	// A header at an unusual offset is found by the scan.
	spec := Spec{PlatformID: 13, Function: platform.FuncUser, Index: 2, Start: 0xB4000, HeaderOffset: 0x404, Size: 4096}
	data, err := Build(spec)
	require.NoError(t, err)
	m, err = Verify(data)
	require.NoError(t, err)
	assert.Equal(t, 0x404, m.HeaderOffset)

	// Beyond 8 KB nobody looks.
	spec.HeaderOffset, spec.Size = 0x2400, 0x4000
	data, err = Build(spec)
	require.NoError(t, err)
	_, err = Parse(data)
	assert.ErrorIs(t, err, ErrNoHeader)
}

func TestReportJSON(t *testing.T) {
	p, _ := platform.ByID(12)
	s, _ := p.SlotByName("softdevice")
	data, err := BuildForSlot(p, s, 202)
	require.NoError(t, err)
	r := InspectBytes("sd.bin", data)
	raw, err := json.Marshal(r)
	require.NoError(t, err)
	var obj map[string]any
	require.NoError(t, json.Unmarshal(raw, &obj))
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	assert.Equal(t, []string{"combined", "compressed", "crc_ok", "dependencies", "encrypted", "end", "file", "flags",
		"function", "header_offset", "index", "platform", "platform_id", "product_id", "product_version", "sha256",
		"sha_ok", "size", "start", "suffix_size", "valid", "version"}, keys, "valid module: no error, no device_os for a radio stack")
	assert.Equal(t, []any{}, obj["dependencies"], "never null")
	assert.Nil(t, obj["product_id"], "suffix 36: no product data")
	assert.Equal(t, "radio", obj["function"])
	assert.Equal(t, "argon", obj["platform"])
	assert.EqualValues(t, 0x1000, obj["start"])

	part1 := buildBoronPart1(t)
	r = InspectBytes("p1.bin", part1)
	assert.True(t, r.Valid)
	assert.Equal(t, "4.1.0", r.DeviceOS)
	assert.Equal(t, []ReportDependency{{"bootloader", 0, 1200}, {"radio", 0, 202}}, r.Dependencies)
	require.NotNil(t, r.ProductID)
	assert.EqualValues(t, 0xFFFF, *r.ProductID)
	assert.Len(t, r.SHA256, 64)

	r = InspectBytes("nothing.bin", nil)
	raw, err = json.Marshal(r)
	require.NoError(t, err)
	assert.JSONEq(t, `{"file":"nothing.bin","valid":false,"error":"empty file","platform_id":0,"platform":"","function":"",
		"index":0,"version":0,"start":0,"end":0,"header_offset":0,"flags":0,"dependencies":[],"suffix_size":0,
		"product_id":null,"product_version":null,"crc_ok":false,"sha_ok":false,"size":0,"compressed":false,
		"combined":false,"encrypted":false,"sha256":""}`, string(raw))
}

func TestInspectFile(t *testing.T) {
	dir := t.TempDir()
	r := InspectFile(filepath.Join(dir, "missing.bin"))
	assert.False(t, r.Valid)
	assert.Contains(t, r.Error, "cannot read file")
	r = InspectFile(dir)
	assert.False(t, r.Valid)
	assert.Contains(t, r.Error, "is a directory")

	path := filepath.Join(dir, "p1.bin")
	require.NoError(t, os.WriteFile(path, buildBoronPart1(t), 0o644))
	r = InspectFile(path)
	assert.True(t, r.Valid, r.Error)
	assert.Equal(t, path, r.File)
}

func TestStringDescribes(t *testing.T) {
	m, err := Parse(buildBoronPart1(t))
	require.NoError(t, err)
	assert.Equal(t, "boron system-part1 v4100 (Device OS 4.1.0) @0x00030000-0x00031ffc, needs bootloader ≥1200 (4.1.0) and radio ≥202 (S140 7.0.1), CRC ok, SHA ok", m.String())

	bad := Corrupt(buildBoronPart1(t), BadCRC, 3)
	m, err = Parse(bad)
	require.NoError(t, err)
	assert.Contains(t, m.String(), "CRC BAD, SHA ok; INVALID: CRC mismatch")

	var nilModule *Module
	assert.Equal(t, "not a Particle module", nilModule.String())
}

func TestSuffixProductRules(t *testing.T) {
	good := buildBoronPart1(t)
	// A suffix size larger than the module is not believed: no product.
	b := bytes.Clone(good)
	binary.LittleEndian.PutUint16(b[len(b)-6:], 0xFFFF)
	patchCRC(b)
	m, err := Parse(b)
	require.NoError(t, err)
	assert.Nil(t, m.Product)
	assert.EqualValues(t, 0xFFFF, m.SuffixSize)
}
