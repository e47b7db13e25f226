package cache

import (
	"archive/zip"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// Acceptance 5b: a directory of real binaries under meaningless names is indexed by the
// files' own headers.
func TestImportDirectoryByHeaders(t *testing.T) {
	src := testshared.Dir(t, "firmware", "releases")
	ents, err := os.ReadDir(src)
	require.NoError(t, err)
	in := t.TempDir()
	names := map[string]string{} // new name -> real name
	i := 0
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".bin") {
			continue
		}
		i++
		n := fmt.Sprintf("blob-%02d.dat", i)
		sub := ""
		if i%3 == 0 {
			sub = "nested"
		}
		copyFile(t, filepath.Join(src, e.Name()), filepath.Join(in, sub, n))
		names[n] = e.Name()
	}
	require.NoError(t, os.WriteFile(filepath.Join(in, "README.txt"), []byte("not a module"), 0o644))

	c := openTest(t, t.TempDir(), Options{Offline: true})
	res, err := c.Import(ctxT(t), in)
	require.NoError(t, err)
	require.Len(t, res.Skipped, 1, "only the README is skipped: %+v", res.Skipped)
	assert.Contains(t, res.Skipped[0].Path, "README.txt")

	has := func(version, plat, name string) bool {
		es, _ := c.Entries()
		for _, e := range es {
			if e.DeviceOS == version && e.Platform == plat && e.Name == name {
				return true
			}
		}
		return false
	}
	assert.True(t, has("4.1.0", "argon", "system-part1"))
	assert.True(t, has("4.1.0", "argon", "bootloader"))
	assert.True(t, has("2.3.1", "electron", "system-part1"), "Electron part1 (index 3) named as in releases")
	assert.True(t, has("2.3.1", "electron", "system-part3"))
	assert.True(t, has("1.5.2", "photon", "bootloader"))
	// The Argon 4.1.0 SoftDevice is the same file in many Argon releases (and the Gen3
	// restore sets before 4.0 reuse it): listed once per platform, found for any of them.
	assert.True(t, has("6.5.0", "argon", "softdevice"))
	for _, rel := range [][2]string{{"4.1.0", "argon"}, {"2.3.0", "argon"}, {"2.3.0", "boron"}, {"1.4.4", "bsom"}} {
		_, err := c.Fetch(ctxT(t), rel[0], rel[1], FetchOptions{Modules: []string{"softdevice"}})
		assert.NoError(t, err, rel)
	}
	assert.True(t, has("2.3.0", "boron", "softdevice"), "a resolved release is indexed")
	// Components are recognised too.
	es, _ := c.Entries()
	var comps []string
	for _, e := range es {
		if e.Component != "" {
			comps = append(comps, e.Platform+" "+e.Component)
		}
	}
	sort.Strings(comps)
	assert.Contains(t, comps, "argon SoftDevice S140 6.0.0")
	assert.Contains(t, comps, "argon ESP32 NCP firmware 0.0.5")

	// With the files imported, whole releases resolve offline.
	for _, rel := range [][2]string{{"4.1.0", "argon"}, {"4.1.0", "boron"}, {"2.3.1", "photon"}, {"2.3.1", "electron"}, {"1.5.2", "boron"}} {
		_, err := c.Fetch(ctxT(t), rel[0], rel[1], FetchOptions{})
		assert.NoError(t, err, rel)
	}
	requireAllGood(t, c)
	// Duplicates were stored once (argon-ncp-firmware@0.0.5 and its -ota twin).
	assert.Len(t, objects(t, c.Dir()), len(names)-1)
}

func TestImportRefusesInvalid(t *testing.T) {
	src := testshared.Dir(t, "firmware", "releases", "argon-bootloader@4.1.0.bin")
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	b[1000] ^= 1
	p := filepath.Join(t.TempDir(), "argon-bootloader@4.1.0.bin")
	require.NoError(t, os.WriteFile(p, b, 0o644))
	c := openTest(t, t.TempDir(), Options{Offline: true})
	_, err = c.Import(ctxT(t), p)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "CRC mismatch")
	assert.Empty(t, objects(t, c.Dir()))
}

func writeZip(t *testing.T, path string, files map[string][]byte) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	zw := zip.NewWriter(f)
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w, err := zw.Create(n)
		require.NoError(t, err)
		_, err = w.Write(files[n])
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	require.NoError(t, f.Close())
}

// Acceptance 5a: a zip with entries escaping the bundle is refused as a whole.
func TestImportZipSlip(t *testing.T) {
	good, err := os.ReadFile(testshared.Dir(t, "firmware", "releases", "argon-bootloader@4.1.0.bin"))
	require.NoError(t, err)
	for _, evil := range []string{"../evil.bin", "a/../../evil.bin", "/etc/evil.bin", `..\evil.bin`, `C:\evil.bin`} {
		t.Run(evil, func(t *testing.T) {
			zp := filepath.Join(t.TempDir(), "bundle.zip")
			writeZip(t, zp, map[string][]byte{"bootloader.bin": good, evil: good})
			c := openTest(t, t.TempDir(), Options{Offline: true})
			_, err := c.Import(ctxT(t), zp)
			require.ErrorIs(t, err, ErrZipSlip)
			assert.Contains(t, err.Error(), fmt.Sprintf("%q", evil))
			es, _ := c.Entries()
			assert.Empty(t, es, "nothing at all is taken from a refused bundle")
			assert.Empty(t, objects(t, c.Dir()))
		})
	}
}

// A Particle restore-style bundle (files named by module, not by release) imports by
// headers; Export writes a bundle that imports back on a machine with no network.
func TestExportImportRoundTrip(t *testing.T) {
	rel := testshared.Dir(t, "firmware", "releases")
	read := func(n string) []byte {
		b, err := os.ReadFile(filepath.Join(rel, n))
		require.NoError(t, err)
		return b
	}
	zp := filepath.Join(t.TempDir(), "boron.zip")
	writeZip(t, zp, map[string][]byte{
		"system-part1.bin": read("boron-system-part1@4.1.0.bin"),
		"bootloader.bin":   read("boron-bootloader@4.1.0.bin"),
		"softdevice.bin":   read("boron-softdevice@4.1.0.bin"),
		"notes/readme.md":  []byte("hello"),
	})
	factory := openTest(t, t.TempDir(), Options{Offline: true})
	res, err := factory.Import(ctxT(t), zp)
	require.NoError(t, err)
	assert.Len(t, res.Skipped, 1)
	_, err = factory.Fetch(ctxT(t), "4.1.0", "boron", FetchOptions{})
	require.NoError(t, err)

	out := filepath.Join(t.TempDir(), "out", "boron-4.1.0.zip")
	man, err := factory.Export(ctxT(t), "4.1.0", "boron", out)
	require.NoError(t, err)
	assert.Len(t, man.Modules, 3)
	zr, err := zip.OpenReader(out)
	require.NoError(t, err)
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	zr.Close()
	assert.ElementsMatch(t, []string{"boron-softdevice@4.1.0.bin", "boron-system-part1@4.1.0.bin", "boron-bootloader@4.1.0.bin", "manifest.json"}, names)

	bench := openTest(t, t.TempDir(), Options{Offline: true})
	_, err = bench.Import(ctxT(t), out)
	require.NoError(t, err)
	_, err = bench.Fetch(ctxT(t), "4.1.0", "boron", FetchOptions{})
	require.NoError(t, err)

	// Export needs every Device OS module.
	_, err = bench.Export(ctxT(t), "4.1.0", "argon", filepath.Join(t.TempDir(), "x.zip"))
	var me *MissingError
	require.ErrorAs(t, err, &me)
	assert.Len(t, me.Files, 3)
}

func TestVerifyQuarantines(t *testing.T) {
	srv := newReleaseServer(t)
	dir := t.TempDir()
	c := openTest(t, dir, Options{Mirrors: []string{srv.base()}})
	res, err := c.Fetch(ctxT(t), "4.1.0", "argon", FetchOptions{})
	require.NoError(t, err)
	var victim CachedFile
	for _, f := range res.Files {
		if f.Module.Name == "system-part1" {
			victim = f
		}
	}
	damage(t, victim.Entry.Path)

	results, err := c.Verify(context.Background())
	require.NoError(t, err)
	bad := 0
	for _, r := range results {
		if !r.OK {
			bad++
			assert.Equal(t, victim.Entry.SHA256, r.SHA256)
			assert.Contains(t, r.Problem, "content changed on disk")
			assert.Equal(t, []string{"4.1.0/argon/system-part1"}, r.Entries)
		}
	}
	assert.Equal(t, 1, bad)
	assert.NoFileExists(t, victim.Entry.Path)
	q, _ := os.ReadDir(filepath.Join(dir, quarantineDir))
	assert.Len(t, q, 2, "the file and a note saying why")
	es, _ := c.Entries()
	assert.Len(t, es, 2)
	requireAllGood(t, c)
}

func TestPruneKeepsNewest(t *testing.T) {
	src := testshared.Dir(t, "firmware", "releases")
	c := openTest(t, t.TempDir(), Options{Offline: true})
	_, err := c.Import(ctxT(t), src)
	require.NoError(t, err)
	_, err = c.Fetch(ctxT(t), "1.5.2", "photon", FetchOptions{Modules: []string{"system-part1", "system-part2", "bootloader"}})
	require.NoError(t, err)

	res, err := c.Prune(ctxT(t), 1)
	require.NoError(t, err)
	assert.Contains(t, res.Removed, "1.5.2/photon")
	assert.Contains(t, res.Kept, "2.3.1/photon")
	assert.Contains(t, res.Kept, "4.1.0/argon")
	assert.Contains(t, res.Removed, "2.3.0/argon")
	assert.Positive(t, res.Files)
	assert.Positive(t, res.Bytes)

	_, err = c.Fetch(ctxT(t), "1.5.2", "photon", FetchOptions{Modules: []string{"system-part1"}})
	require.ErrorIs(t, err, ErrOffline, "pruned")
	_, err = c.Fetch(ctxT(t), "2.3.1", "photon", FetchOptions{Modules: []string{"system-part1", "system-part2", "bootloader"}})
	require.NoError(t, err)
	_, err = c.Fetch(ctxT(t), "4.1.0", "argon", FetchOptions{})
	require.NoError(t, err, "the Argon SoftDevice shared with pruned releases stays")
	requireAllGood(t, c)

	_, err = c.Prune(ctxT(t), 0)
	require.NoError(t, err)
	es, _ := c.Entries()
	for _, e := range es {
		assert.Empty(t, e.DeviceOS, "only files without a Device OS version stay: %+v", e)
	}
}

// Refresh merges the GitHub releases API into the catalog and keeps it for offline runs.
func TestRefreshFromGitHub(t *testing.T) {
	// The same page `pflash cache catalog --refresh` is tested with.
	page, err := os.ReadFile(filepath.Join("..", "testdata", "github-releases.json"))
	require.NoError(t, err)
	var calls []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls = append(calls, r.URL.RequestURI())
		if r.URL.Path != "/repos/particle-iot/device-os/releases" {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Get("page") != "1" {
			_, _ = w.Write([]byte("[]"))
			return
		}
		_, _ = w.Write(page)
	}))
	defer api.Close()
	dir := t.TempDir()
	c := openTest(t, dir, Options{})
	cat, err := c.Refresh(ctxT(t), api.URL)
	require.NoError(t, err)
	require.Equal(t, []string{"/repos/particle-iot/device-os/releases?per_page=100&page=1"}, calls)

	r, err := cat.Release("6.6.0", "argon")
	require.NoError(t, err)
	assert.Equal(t, "github", r.Source)
	assert.True(t, r.Partial)
	assert.True(t, r.Latest)
	require.Len(t, r.Modules, 2)
	sp, _ := r.Module("system-part1")
	assert.Equal(t, int64(600000), sp.Size)
	assert.Equal(t, uint8(1), sp.Index)
	bl, _ := r.Module("bootloader")
	assert.Equal(t, uint32(0xF4000), bl.Start)
	_, err = cat.Release("9.0.0", "argon")
	require.ErrorIs(t, err, ErrNotInCatalog, "drafts are ignored")
	rc, err := cat.Release("6.7.0-rc.1", "boron")
	require.NoError(t, err)
	assert.True(t, rc.Prerelease)
	old, _ := cat.Release("4.1.0", "argon")
	assert.True(t, old.Deprecated)
	sp, _ = old.Module("system-part1")
	assert.Equal(t, "e114a33b", sp.CRC32, "snapshot facts are kept")

	// A later offline run sees the refresh without asking again.
	again := openTest(t, dir, Options{Offline: true})
	_, err = again.Catalog().Release("6.6.0", "argon")
	require.NoError(t, err)
	_, err = again.Refresh(ctxT(t), api.URL)
	require.ErrorIs(t, err, ErrOffline)
	assert.Len(t, calls, 1)
}
