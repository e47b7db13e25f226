package main

import (
	"bufio"
	"bytes"
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

	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// runPflash runs the command in-process and returns its exit code and output.
func runPflash(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// decodeLines parses JSON-lines output, failing the test on anything that is not JSON.
func decodeLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var res []T
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var v T
		require.NoError(t, json.Unmarshal(sc.Bytes(), &v), "not a JSON line: %q", sc.Text())
		res = append(res, v)
	}
	return res
}

// expectedRow is one line of a shared EXPECTED.tsv: the header as binary-version-reader reads it.
type expectedRow map[string]string

func readExpected(t *testing.T, dir string) map[string]expectedRow {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "EXPECTED.tsv"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	head := strings.Split(lines[0], "\t")
	rows := map[string]expectedRow{}
	for _, l := range lines[1:] {
		f := strings.Split(l, "\t")
		require.Len(t, f, len(head), l)
		r := expectedRow{}
		for i, h := range head {
			r[h] = f[i]
		}
		rows[r["file"]] = r
	}
	return rows
}

func num(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 0, 64)
	require.NoError(t, err, s)
	return v
}

// depStrings renders a report's dependencies the way EXPECTED.tsv writes them.
func depStrings(r module.Report) []string {
	var s []string
	for _, d := range r.Dependencies {
		s = append(s, fmt.Sprintf("%s/%d/%d", d.Function, d.Index, d.Version))
	}
	return s
}

// TestInspectJSONAgreesWithExpected runs `pflash inspect --json` on every file of the
// shared firmware folders and checks every column of EXPECTED.tsv.
func TestInspectJSONAgreesWithExpected(t *testing.T) {
	for _, folder := range []string{"releases", "parser-fixtures", "apps"} {
		t.Run(folder, func(t *testing.T) {
			dir := testshared.Dir(t, "firmware", folder)
			want := readExpected(t, dir)
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			var files []string
			for _, e := range entries {
				if e.Name() != "EXPECTED.tsv" && !e.IsDir() {
					files = append(files, filepath.Join(dir, e.Name()))
				}
			}
			sort.Strings(files)
			code, out, _ := runPflash(t, append([]string{"inspect", "--json"}, files...)...)
			reports := decodeLines[module.Report](t, out)
			require.Len(t, reports, len(files), "one JSON object per file")

			anyInvalid := false
			seen := 0
			for _, r := range reports {
				name := filepath.Base(r.File)
				row, listed := want[name]
				if !r.Valid {
					anyInvalid = true
					assert.NotEmpty(t, r.Error, "%s: invalid without a reason", name)
				}
				if !listed {
					// Files binary-version-reader does not parse (empty, images, archives) must be refused.
					assert.False(t, r.Valid, "%s is not in EXPECTED.tsv but was reported valid", name)
					continue
				}
				seen++
				assert.Equal(t, num(t, row["size"]), uint64(r.Size), "%s size", name)
				assert.Equal(t, num(t, row["platform"]), uint64(r.PlatformID), "%s platform", name)
				assert.Equal(t, row["function"], r.Function, "%s function", name)
				assert.Equal(t, num(t, row["index"]), uint64(r.Index), "%s index", name)
				assert.Equal(t, num(t, row["module_version"]), uint64(r.Version), "%s version", name)
				assert.Equal(t, num(t, row["start"]), uint64(r.Start), "%s start", name)
				assert.Equal(t, num(t, row["end"]), uint64(r.End), "%s end", name)
				assert.Equal(t, num(t, row["prefix_offset"]), uint64(r.HeaderOffset), "%s header offset", name)
				assert.Equal(t, num(t, row["flags"]), uint64(r.Flags), "%s flags", name)
				// The JSON lists the non-empty dependency slots in header order.
				var wantDeps []string
				for _, d := range []string{row["dep"], row["dep2"]} {
					if d != "none/0/0" {
						wantDeps = append(wantDeps, d)
					}
				}
				assert.Equal(t, wantDeps, depStrings(r), "%s dependencies", name)
				assert.Equal(t, num(t, row["suffix_size"]), uint64(r.SuffixSize), "%s suffix size", name)
				if row["product_id"] == "None" {
					assert.Nil(t, r.ProductID, "%s product id", name)
					assert.Nil(t, r.ProductVersion, "%s product version", name)
				} else if assert.NotNil(t, r.ProductID, "%s product id", name) {
					assert.Equal(t, num(t, row["product_id"]), uint64(*r.ProductID), "%s product id", name)
					assert.Equal(t, num(t, row["product_version"]), uint64(*r.ProductVersion), "%s product version", name)
				}
				assert.Equal(t, row["crc_ok"] == "True", r.CRCOK, "%s crc_ok", name)
				assert.Equal(t, row["sha_ok"] == "True", r.SHAOK, "%s sha_ok", name)
				if r.Valid {
					assert.True(t, r.CRCOK, "%s valid with a bad CRC", name)
					assert.NotEmpty(t, r.Platform, "%s valid on an unknown platform", name)
				}
			}
			assert.Equal(t, len(want), seen, "every EXPECTED.tsv row has a file")
			if anyInvalid {
				assert.Equal(t, exitFailed, code)
			} else {
				assert.Equal(t, exitOK, code)
			}
		})
	}
}

// TestInspectExitStatus: 0 when every file is valid; 1 with a one-line reason per bad file.
func TestInspectExitStatus(t *testing.T) {
	dir := testshared.Dir(t, "firmware", "releases")
	good := filepath.Join(dir, "boron-system-part1@4.1.0.bin")
	code, out, _ := runPflash(t, "inspect", good)
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "boron (13)")
	assert.Contains(t, out, "Device OS 4.1.0")
	assert.Contains(t, out, "bootloader 0 >= 1200")

	tmp := t.TempDir()
	data, err := os.ReadFile(good)
	require.NoError(t, err)
	cases := map[string]struct {
		data []byte
		why  string
	}{
		"empty.bin":     {nil, "empty"},
		"truncated.bin": {data[:len(data)/2], "bytes"},
		"badcrc.bin":    {module.Corrupt(data, module.FlipBit, 1), "CRC"},
		"platform.bin":  {module.Corrupt(data, module.WrongPlatform, 1), "platform"},
		"notes.bin":     {[]byte(strings.Repeat("hello, this is not firmware\n", 100)), "not a Particle module"},
	}
	for name, c := range cases {
		p := filepath.Join(tmp, name)
		require.NoError(t, os.WriteFile(p, c.data, 0o644))
		code, out, _ := runPflash(t, "inspect", good, p)
		assert.Equal(t, exitFailed, code, name)
		var line string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, p+":") {
				line = l
			}
		}
		assert.Contains(t, line, "INVALID", name)
		assert.Contains(t, line, c.why, name)

		code, out, _ = runPflash(t, "inspect", "--json", p)
		assert.Equal(t, exitFailed, code, name)
		reps := decodeLines[module.Report](t, out)
		require.Len(t, reps, 1)
		assert.False(t, reps[0].Valid, name)
		assert.Contains(t, reps[0].Error, c.why, name)
	}

	code, _, errOut := runPflash(t, "inspect")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "requires at least 1 arg")
}
