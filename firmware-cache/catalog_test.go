package cache

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/assets"
	"github.com/particle-flasher/particle-flasher/firmware-cache/internal/catalogfile"
	"github.com/particle-flasher/particle-flasher/firmware-cache/internal/gen"
	"github.com/particle-flasher/particle-flasher/flasher/assetname"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// Acceptance 6: for Photon, Electron, Argon and Boron, the embedded catalog lists every
// Device OS version whose binaries are in ../shared/firmware/releases, with their true
// sizes and CRCs. Every real file of those platforms is accounted for: as a module of the
// release its name says, or (SoftDevice 6.0.0, NCP 0.0.5: not Device OS releases) as a
// component.
func TestEmbeddedCatalogHasRealReleases(t *testing.T) {
	dir := testshared.Dir(t, "firmware", "releases")
	cat, err := Embedded()
	require.NoError(t, err)
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	versions := map[string][]string{}
	checked := 0
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".bin") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		m, err := module.Parse(data)
		require.NoError(t, err, e.Name())
		p, ok := platform.ByID(m.PlatformID)
		require.True(t, ok)
		if p.Name != "photon" && p.Name != "electron" && p.Name != "argon" && p.Name != "boron" {
			continue
		}
		crc := fmt.Sprintf("%08x", m.StoredCRC)
		info, named := assetname.Parse(e.Name())
		var r *Release
		if named {
			r, _ = cat.Release(info.Version, info.Platform)
		}
		var cm *Module
		if r != nil {
			cm, _ = r.Module(info.Module)
		}
		if cm != nil {
			assert.Equal(t, int64(len(data)), cm.Size, "%s: size", e.Name())
			assert.Equal(t, crc, cm.CRC32, "%s: CRC", e.Name())
			assert.Equal(t, e.Name(), cm.Asset, "%s: asset name", e.Name())
			_, err := VerifyModule(data, cm)
			require.NoError(t, err, e.Name())
			if !contains(versions[info.Platform], info.Version) {
				versions[info.Platform] = append(versions[info.Platform], info.Version)
			}
			checked++
			continue
		}
		co, ok := cat.IdentifyComponent(data)
		require.True(t, ok, "%s is neither a release module nor a known component", e.Name())
		assert.Equal(t, int64(len(data)), co.Module.Size)
		assert.Equal(t, crc, co.Module.CRC32)
		assert.NotEmpty(t, co.Module.Origin)
		checked++
	}
	for _, v := range versions {
		sort.Strings(v)
	}
	assert.Equal(t, map[string][]string{
		"photon":   {"1.5.2", "2.3.1"},
		"electron": {"1.5.2", "2.3.1"},
		"argon":    {"2.3.0", "4.1.0"},
		"boron":    {"1.5.2", "4.1.0"},
	}, versions)
	assert.GreaterOrEqual(t, checked, 27)

	// Each of those releases is complete: every Device OS module with a size and CRC.
	for p, vs := range versions {
		for _, v := range vs {
			r, err := cat.Release(v, p)
			require.NoError(t, err)
			assert.False(t, r.Partial)
			for _, m := range r.Modules {
				assert.NotZero(t, m.Size, "%s %s", r, m.Name)
				assert.Len(t, m.CRC32, 8, "%s %s", r, m.Name)
				assert.Len(t, m.SHA256, 64, "%s %s", r, m.Name)
			}
		}
	}
}

var discardLog = slog.New(slog.DiscardHandler)

// The committed snapshot is exactly what the generator makes from ../shared today, so
// nobody edits it by hand and nobody forgets to regenerate it.
func TestSnapshotUpToDate(t *testing.T) {
	shared := testshared.Dir(t)
	f, rep, err := gen.Build(shared, discardLog)
	require.NoError(t, err)
	want, err := catalogfile.Encode(f)
	require.NoError(t, err)
	if !bytes.Equal(want, assets.Catalog) {
		t.Fatalf("assets/catalog.json is stale: run `go generate ./firmware-cache`")
	}
	assert.GreaterOrEqual(t, len(rep.Checked), 23, "real binaries cross-checked")
	assert.Empty(t, rep.Unmatched)
}

// The dumps were transcribed by hand: where a real binary exists, its values win. A
// deliberately wrong CRC and size in a copy of the dumps are corrected from the file.
func TestGeneratorCorrectsFromRealFiles(t *testing.T) {
	shared := testshared.Dir(t)
	tmp := t.TempDir()
	// A copy of the data folder with one dump altered, and beside it the one real binary
	// the check needs. Copied, not linked: Windows lets only administrators and Developer
	// Mode create symlinks, and Wine's CreateSymbolicLink reports success but makes none.
	require.NoError(t, os.CopyFS(filepath.Join(tmp, "data"), os.DirFS(filepath.Join(shared, "data"))))
	rels := filepath.Join(tmp, "firmware", "releases")
	require.NoError(t, os.MkdirAll(rels, 0o755))
	bin, err := os.ReadFile(filepath.Join(shared, "firmware", "releases", "argon-system-part1@4.1.0.bin"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(rels, "argon-system-part1@4.1.0.bin"), bin, 0o644))
	p := filepath.Join(tmp, "data", "device-restore", "4.1.0", "argon.json")
	require.NoError(t, os.Chmod(p, 0o644))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.True(t, bytes.Contains(b, []byte(`"crcBlock": "e114a33b"`)), "the dump to alter")
	b = bytes.Replace(b, []byte(`"crcBlock": "e114a33b"`), []byte(`"crcBlock": "e114a38b"`), 1)
	b = bytes.Replace(b, []byte(`"moduleEndAddy": "a2986"`), []byte(`"moduleEndAddy": "a2996"`), 1)
	require.NoError(t, os.WriteFile(p, b, 0o644))

	f, rep, err := gen.Build(tmp, discardLog)
	require.NoError(t, err)
	fields := map[string]gen.Correction{}
	for _, c := range rep.Corrections {
		fields[c.Field] = c
	}
	require.Contains(t, fields, "crc32")
	assert.Equal(t, "e114a38b", fields["crc32"].Dump)
	assert.Equal(t, "e114a33b", fields["crc32"].Real)
	require.Contains(t, fields, "size")
	assert.Equal(t, "469386", fields["size"].Real)
	for _, r := range f.Releases {
		if r.Version == "4.1.0" && r.Platform == "argon" {
			for _, m := range r.Modules {
				if m.Name == "system-part1" {
					assert.Equal(t, "e114a33b", m.CRC32)
					assert.Equal(t, int64(469386), m.Size)
					assert.Equal(t, "firmware/releases/argon-system-part1@4.1.0.bin", m.Checked)
				}
			}
		}
	}
}

func TestCatalogFlags(t *testing.T) {
	cat, err := Embedded()
	require.NoError(t, err)
	r, err := cat.Release("4.1.0", "argon")
	require.NoError(t, err)
	assert.True(t, r.LTS)
	assert.False(t, r.Prerelease)
	assert.False(t, r.Latest)

	latest, ok := cat.Latest("argon")
	require.True(t, ok)
	assert.Equal(t, "6.5.0", latest.Version)
	lts, ok := cat.LatestLTS("boron")
	require.True(t, ok)
	assert.Equal(t, "4.2.0", lts.Version)
	lts, ok = cat.LatestLTS("photon")
	require.True(t, ok)
	assert.Equal(t, "2.3.1", lts.Version, "Gen2 LTS line is 2.x")
	latest, _ = cat.Latest("photon")
	assert.Equal(t, "3.3.1", latest.Version)

	pre, err := cat.Release("4.0.0-alpha.1", "argon")
	require.NoError(t, err)
	assert.True(t, pre.Prerelease)
	assert.False(t, pre.LTS, "prereleases are never LTS")

	old, err := cat.Release("1.2.1", "photon")
	require.NoError(t, err)
	assert.True(t, old.Deprecated, "no restore bundle any more")
	assert.True(t, old.Partial)
	sp, ok := old.Module("system-part1")
	require.True(t, ok)
	assert.Equal(t, uint16(1213), sp.ModuleVersion)
	assert.Equal(t, "photon-system-part1@1.2.1.bin", sp.Asset)
	bl, _ := old.Module("bootloader")
	assert.Equal(t, "photon-bootloader@1.2.1+lto.bin", bl.Asset)
	assert.Equal(t, []string{"photon-bootloader@1.2.1.bin"}, bl.AltAssets)

	ancient, err := cat.Release("0.7.0", "electron")
	require.NoError(t, err)
	sp, _ = ancient.Module("system-part1")
	assert.Equal(t, "system-part1-0.7.0-electron.bin", sp.Asset, "the pre-1.1 naming")
	assert.Equal(t, uint8(3), sp.Index, "the Electron's system-part1 file is index 3")

	// Before 4.0 every Gen3 restore set used the Argon SoftDevice.
	b230, err := cat.Release("2.3.0", "boron")
	require.NoError(t, err)
	sd, _ := b230.Module("softdevice")
	assert.Equal(t, uint16(12), sd.PlatformID)
	assert.Equal(t, "argon-softdevice@2.3.0.bin", sd.Asset)
	b410, _ := cat.Release("4.1.0", "boron")
	sd, _ = b410.Module("softdevice")
	assert.Equal(t, "boron-softdevice@4.1.0.bin", sd.Asset)

	// Tracker Edge and the Tracker NCP are not Device OS assets: they come from the
	// Device Restore bundle.
	tr, err := cat.Release("4.1.0", "tracker")
	require.NoError(t, err)
	ncp, ok := tr.Module("ncp")
	require.True(t, ok)
	assert.Equal(t, "https://docs.particle.io/assets/files/device-restore/4.1.0/tracker.zip#ncp.bin", ncp.Origin)

	for _, p := range []string{"photon", "p1", "electron", "argon", "boron", "bsom", "b5som", "tracker", "esomx", "p2", "trackerm", "msom", "xenon", "asom"} {
		assert.NotEmpty(t, cat.Releases(p), p)
	}
	_, err = cat.Release("4.1.0", "photon2")
	require.ErrorIs(t, err, ErrNotInCatalog, "P2 has no 4.1.0")
	p2, err := cat.Release("6.2.0", "photon2")
	require.NoError(t, err, "aliases resolve")
	assert.Equal(t, "p2", p2.Platform)
}

func TestAssetNaming(t *testing.T) {
	cases := []struct{ plat, mod, ver, want string }{
		{"electron", "system-part1", "1.0.1", "system-part1-1.0.1-electron.bin"},
		{"photon", "bootloader", "0.7.0", "bootloader-0.7.0-photon.bin"},
		{"argon", "system-part1", "0.8.0-rc.27", "system-part1-0.8.0-rc.27-argon.bin"},
		{"argon", "system-part1", "4.1.0", "argon-system-part1@4.1.0.bin"},
		{"photon", "bootloader", "2.3.1", "photon-bootloader@2.3.1+lto.bin"},
		{"boron", "bootloader", "2.0.0", "boron-bootloader@2.0.0.bin"},
		{"p2", "prebootloader-part1", "5.4.0", "p2-prebootloader-part1@5.4.0.bin"},
		{"p2", "system-part1", "3.2.1-p2.2", "p2-system-part1@3.2.1-p2.2.bin"},
	}
	for _, c := range cases {
		got := assetname.Name(c.plat, c.mod, c.ver)
		assert.Equal(t, c.want, got)
		info, ok := assetname.Parse(got)
		require.True(t, ok, got)
		assert.Equal(t, c.plat, info.Platform, got)
		assert.Equal(t, c.mod, info.Module, got)
		assert.Equal(t, c.ver, info.Version, got)
	}
	_, ok := assetname.Parse("argon-ncp-firmware-0.0.5-ota.bin")
	assert.False(t, ok)
	_, ok = assetname.Parse("EXPECTED.tsv")
	assert.False(t, ok)
}

// `pflash cache catalog --json` rows carry the keys the issue lists.
func TestCatalogRows(t *testing.T) {
	cat, err := Embedded()
	require.NoError(t, err)
	rows := cat.Rows("argon", "")
	require.NotEmpty(t, rows)
	var found bool
	for _, r := range rows {
		b, err := json.Marshal(r)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		for _, k := range []string{"device_os", "platform", "name", "function", "index", "module_version", "start", "size", "crc32", "sha256", "url", "lts", "prerelease"} {
			require.Contains(t, m, k)
		}
		if r.DeviceOS == "4.1.0" && r.Name == "system-part1" {
			found = true
			assert.Equal(t, "https://github.com/particle-iot/device-os/releases/download/v4.1.0/argon-system-part1@4.1.0.bin", r.URL)
			assert.Equal(t, "0x00030000", r.Start)
			assert.Equal(t, "e114a33b", r.CRC32)
			assert.Equal(t, int64(469386), r.Size)
			assert.True(t, r.LTS)
		}
	}
	assert.True(t, found)
	mirror := cat.Rows("argon", "https://mirror.example/dos/")
	assert.True(t, strings.HasPrefix(mirror[0].URL, "https://mirror.example/dos/v"))
}
