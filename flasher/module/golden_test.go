package module

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// goldenFolders are the shared folders of real binaries, each with an EXPECTED.tsv of
// what binary-version-reader reads from every file.
var goldenFolders = []string{"releases", "parser-fixtures", "apps"}

// expectedInvalid lists the EXPECTED.tsv files that parse but must not validate, with the
// sentinel that says why. Every other listed file must be valid.
var expectedInvalid = map[string]error{
	"103_system-part1.bin":         ErrUnknownPlatform, // bluz (103) is not a platform this tool flashes
	"RC2_bootloader.bin":           ErrSize,            // prerelease bootloader, 360 bytes longer than its header says
	"RC4_bootloader_pad_BM-09.bin": ErrSize,            // padded with 0xFF to 16 KB, no suffix
	"RC4_bootloader_pad_BM-14.bin": ErrSize,
	"km4_image2_all.bin":           ErrSize,            // a Realtek image, not a module: best-guess header
	"unknown.bin":                  ErrUnknownPlatform, // synthetic: platform 129
}

type goldenRow map[string]string

func readExpected(t *testing.T, dir string) []goldenRow {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "EXPECTED.tsv"))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	var cols []string
	var rows []goldenRow
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			continue
		}
		fields := strings.Split(line, "\t")
		if cols == nil {
			cols = fields
			continue
		}
		require.Len(t, fields, len(cols), "row %q", line)
		row := goldenRow{}
		for i, c := range cols {
			row[c] = fields[i]
		}
		rows = append(rows, row)
	}
	require.NoError(t, sc.Err())
	return rows
}

func hexNum(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
	require.NoError(t, err, s)
	return v
}

func decNum(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 10, 64)
	require.NoError(t, err, s)
	return v
}

// depColumn formats a dependency as the TSV does: function name (or number)/index/version.
func depColumn(d Dependency) string {
	if d.Empty() {
		return "none/0/0"
	}
	return d.String()
}

func checkGoldenRow(t *testing.T, dir string, row goldenRow) {
	path := filepath.Join(dir, row["file"])
	r := InspectFile(path)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	m, err := Parse(data)
	require.NoError(t, err, "Parse")

	assert.Equal(t, decNum(t, row["size"]), uint64(r.Size), "size")
	assert.Equal(t, row["platform"], strconv.Itoa(int(r.PlatformID)), "platform")
	assert.Equal(t, row["function"], r.Function, "function")
	assert.Equal(t, row["index"], strconv.Itoa(int(r.Index)), "index")
	assert.Equal(t, row["module_version"], strconv.Itoa(int(r.Version)), "module_version")
	assert.Equal(t, hexNum(t, row["start"]), uint64(r.Start), "start")
	assert.Equal(t, hexNum(t, row["end"]), uint64(r.End), "end")
	assert.Equal(t, hexNum(t, row["prefix_offset"]), uint64(r.HeaderOffset), "prefix_offset")
	assert.Equal(t, hexNum(t, row["flags"]), uint64(r.Flags), "flags")
	// The report lists non-empty dependencies in slot order; the module keeps the slots.
	assert.Equal(t, row["dep"], depColumn(m.Deps[0]), "dep")
	assert.Equal(t, row["dep2"], depColumn(m.Deps[1]), "dep2")
	var wantDeps []string
	for _, c := range []string{row["dep"], row["dep2"]} {
		if c != "none/0/0" {
			wantDeps = append(wantDeps, c)
		}
	}
	var gotDeps []string
	for _, d := range r.Dependencies {
		gotDeps = append(gotDeps, fmt.Sprintf("%s/%d/%d", d.Function, d.Index, d.Version))
	}
	assert.Equal(t, wantDeps, gotDeps, "dependencies")
	assert.Equal(t, row["suffix_size"], strconv.Itoa(int(r.SuffixSize)), "suffix_size")
	if row["product_id"] == "None" {
		assert.Nil(t, r.ProductID, "product_id")
		assert.Nil(t, r.ProductVersion, "product_version")
	} else if assert.NotNil(t, r.ProductID, "product_id") && assert.NotNil(t, r.ProductVersion, "product_version") {
		assert.Equal(t, row["product_id"], strconv.Itoa(int(*r.ProductID)), "product_id")
		assert.Equal(t, row["product_version"], strconv.Itoa(int(*r.ProductVersion)), "product_version")
	}
	assert.Equal(t, row["crc_ok"] == "True", r.CRCOK, "crc_ok")
	assert.Equal(t, row["sha_ok"] == "True", r.SHAOK, "sha_ok")

	if want, bad := expectedInvalid[row["file"]]; bad {
		assert.False(t, r.Valid, "valid")
		assert.ErrorIs(t, m.Validate(), want)
		assert.NotEmpty(t, r.Error)
	} else {
		assert.True(t, r.Valid, "valid; error %q", r.Error)
		assert.Empty(t, r.Error)
	}
	if _, ok := platform.ByID(r.PlatformID); ok {
		assert.NotEmpty(t, r.Platform)
	} else {
		assert.Empty(t, r.Platform)
	}
	// The description and the JSON must always be producible.
	assert.NotEmpty(t, m.String())
	_, err = json.Marshal(r)
	assert.NoError(t, err)
}

func TestGolden(t *testing.T) {
	total, valid := 0, 0
	for _, folder := range goldenFolders {
		dir := testshared.Dir(t, "firmware", folder)
		rows := readExpected(t, dir)
		listed := map[string]bool{}
		for _, row := range rows {
			listed[row["file"]] = true
			t.Run(folder+"/"+row["file"], func(t *testing.T) {
				checkGoldenRow(t, dir, row)
			})
			total++
			if _, bad := expectedInvalid[row["file"]]; !bad {
				valid++
			}
		}
		// Files beside the listed ones (emptybin.bin, cat.jpg, btgap.a, ...) are not modules.
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		var others []string
		for _, e := range entries {
			if !e.IsDir() && !listed[e.Name()] && e.Name() != "EXPECTED.tsv" {
				others = append(others, e.Name())
			}
		}
		sort.Strings(others)
		for _, name := range others {
			t.Run(folder+"/unlisted/"+name, func(t *testing.T) {
				r := InspectFile(filepath.Join(dir, name))
				assert.False(t, r.Valid)
				assert.NotEmpty(t, r.Error)
				assert.NotNil(t, r.Dependencies)
				t.Logf("%s: %s", name, r.Error)
			})
		}
	}
	t.Logf("golden: %d EXPECTED.tsv rows checked (%d expected valid)", total, valid)
}

// TestGoldenDescriptions pins the human line for a few well-known files.
func TestGoldenDescriptions(t *testing.T) {
	dir := testshared.Dir(t, "firmware", "releases")
	cases := map[string]string{
		"boron-system-part1@4.1.0.bin":  "boron system-part1 v4100 (Device OS 4.1.0) @0x00030000-0x000abe1e, needs bootloader ≥1200 (4.1.0) and radio ≥202 (S140 7.0.1), CRC ok, SHA ok",
		"argon-softdevice@4.1.0.bin":    "argon softdevice v202 (SoftDevice S140 7.0.1) @0x00001000-0x000265d4, needs bootloader ≥501 (1.4.2) and system-part1 ≥1321 (1.3.1), CRC ok, SHA placeholder (normal for radio modules)",
		"photon-system-part2@2.3.1.bin": "photon system-part2 v2302 (Device OS 2.3.1) @0x08060000-0x0809fb74, needs system-part1 ≥2302 (2.3.1) and bootloader ≥1003 (2.0.0), CRC ok, SHA ok",
		"argon-bootloader@4.1.0.bin":    "argon bootloader v1200 (Device OS 4.1.0–4.2.0) @0x000f4000-0x000ff310, CRC ok, SHA ok",
	}
	for file, want := range cases {
		r := InspectFile(filepath.Join(dir, file))
		require.True(t, r.Valid, r.Error)
		data, err := os.ReadFile(filepath.Join(dir, file))
		require.NoError(t, err)
		m, err := Parse(data)
		require.NoError(t, err)
		assert.Equal(t, want, m.String(), file)
	}
}
