package modfile_test

import (
	"archive/zip"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/modfile"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
)

func boronSet(t testing.TB) [][]byte {
	p, ok := platform.ByName("boron")
	require.True(t, ok)
	set, err := sim.SyntheticSet(p, "4.1.0")
	require.NoError(t, err)
	return set
}

func zipOf(t *testing.T, files map[string][]byte) []byte {
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for name, b := range files {
		f, err := zw.Create(name)
		require.NoError(t, err)
		_, err = f.Write(b)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return zb.Bytes()
}

// TestLoadShapes: one file, a directory and a .zip bundle give the same modules in name
// order; what is not a module is refused with ErrNotModule and a remedy; macOS resource
// forks and non-.bin members of a bundle are ignored.
func TestLoadShapes(t *testing.T) {
	set := boronSet(t)
	dir := t.TempDir()
	members := map[string][]byte{"README.txt": []byte("notes"), "__MACOSX/._a.bin": []byte("fork")}
	for i, b := range set {
		name := fmt.Sprintf("%c.bin", 'a'+i)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
		members["bundle/"+name] = b
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644))

	one, err := modfile.Load(filepath.Join(dir, "a.bin"))
	require.NoError(t, err)
	require.Len(t, one.Files, 1)

	dirBundle, err := modfile.Load(dir)
	require.NoError(t, err)
	fromDir := dirBundle.Modules()
	require.Len(t, fromDir, len(set))
	assert.Equal(t, []string{dir + ": left out notes.txt (not a module)"}, dirBundle.Notes)
	zipPath := filepath.Join(t.TempDir(), "release.zip")
	require.NoError(t, os.WriteFile(zipPath, zipOf(t, members), 0o644))
	zipBundle, err := modfile.Load(zipPath)
	require.NoError(t, err)
	fromZip := zipBundle.Modules()
	require.Len(t, fromZip, len(set))
	assert.Equal(t, []string{zipPath + ": left out README.txt (not a module)"}, zipBundle.Notes, "the resource fork is not worth a note")
	for i := range set {
		assert.Equal(t, fromDir[i].Function, fromZip[i].Function)
		assert.Equal(t, fromDir[i].Version, fromZip[i].Version)
	}

	_, err = modfile.Parse("notes.bin", []byte("hello"))
	require.ErrorIs(t, err, modfile.ErrNotModule)
	assert.NotEmpty(t, remedy.Of(err))

	_, err = modfile.Parse("empty.zip", zipOf(t, map[string][]byte{"README.txt": []byte("x")}))
	require.Error(t, err)
	assert.NotErrorIs(t, err, modfile.ErrNotModule, "a bundle without modules is a wrong argument, not a bad module")
	assert.Contains(t, err.Error(), "holds no module files")

	_, err = modfile.Load(filepath.Join(dir, "missing.bin"))
	require.Error(t, err)
	assert.NotEmpty(t, remedy.Of(err))

	_, err = modfile.Parse("huge.bin", make([]byte, modfile.MaxFile+1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "far larger than any module")
}

// TestZipEntriesOutsideTheBundleAreRefused: a bundle with an entry that would land outside
// it when unpacked (.., an absolute path, a link) is refused as a whole, naming the entry,
// even though its module files are fine.
func TestZipEntriesOutsideTheBundleAreRefused(t *testing.T) {
	set := boronSet(t)
	for _, tc := range []struct {
		entry, why string
	}{
		{"../../evil", "points outside the bundle"},
		{"release/../../evil.bin", "points outside the bundle"},
		{`..\evil.bin`, "points outside the bundle"},
		{"/etc/evil.bin", "is an absolute path"},
		{`C:\evil.bin`, "is an absolute path"},
	} {
		t.Run(tc.entry, func(t *testing.T) {
			b := zipOf(t, map[string][]byte{"system-part1.bin": set[1], tc.entry: set[0]})
			got, err := modfile.Parse("bundle.zip", b)
			require.Error(t, err)
			assert.Nil(t, got)
			assert.Contains(t, err.Error(), fmt.Sprintf("%q", tc.entry))
			assert.Contains(t, err.Error(), tc.why)
			assert.Contains(t, remedy.Of(err), "Do not use this bundle")
			assert.ErrorIs(t, err, modfile.ErrUnsafeEntry)
		})
	}
	t.Run("symbolic link", func(t *testing.T) {
		var zb bytes.Buffer
		zw := zip.NewWriter(&zb)
		h := &zip.FileHeader{Name: "link.bin"}
		h.SetMode(os.ModeSymlink | 0o777)
		w, err := zw.CreateHeader(h)
		require.NoError(t, err)
		_, err = w.Write([]byte("/etc/passwd"))
		require.NoError(t, err)
		f, err := zw.Create("system-part1.bin")
		require.NoError(t, err)
		_, err = f.Write(set[1])
		require.NoError(t, err)
		require.NoError(t, zw.Close())
		_, err = modfile.Parse("bundle.zip", zb.Bytes())
		require.Error(t, err)
		assert.Contains(t, err.Error(), `"link.bin" is a symbolic link`)
	})
	t.Run("folders inside the bundle are fine", func(t *testing.T) {
		b := zipOf(t, map[string][]byte{"release/boron-system-part1.bin": set[1], "release/./boron-bootloader.bin": set[0], "x..y.bin": set[2]})
		got, err := modfile.Parse("bundle.zip", b)
		require.NoError(t, err)
		assert.Len(t, got.Files, 3)
	})
}
