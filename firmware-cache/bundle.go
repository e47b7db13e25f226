package cache

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/assetname"
	"github.com/particle-flasher/particle-flasher/flasher/modfile"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// ErrZipSlip: a bundle names a path outside itself ("../x", "/etc/x", "C:\x"). The whole
// bundle is refused, since a tool that trusted it could write anywhere (the bundle
// reader's modfile.ErrUnsafeEntry).
var ErrZipSlip = modfile.ErrUnsafeEntry

// ImportResult says what Import did with each file.
type ImportResult struct {
	// Imported are the index entries created or confirmed.
	Imported []Entry `json:"imported"`
	// Skipped are files that are not usable modules, with the reason.
	Skipped []Skipped `json:"skipped"`
}

// Skipped is a file Import left out.
type Skipped struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Import adds module files to the cache so a machine without internet can work: a .bin
// file, a directory (searched recursively, every file considered whatever its name), or a
// .zip bundle (a Particle restore bundle, a release binaries zip, or one made by Export).
// Each file is identified by its own header and checksums, never by its name: a file that
// matches the catalog is indexed under every release it belongs to; a valid module the
// catalog does not know is indexed by its header (Device OS version from its module
// version where that is unambiguous). Invalid files are skipped, never stored.
func (c *Cache) Import(ctx context.Context, p string) (*ImportResult, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	res := &ImportResult{}
	if err := c.importPath(ctx, p, res); err != nil {
		return res, err
	}
	if !st.IsDir() && !isZip(p) && len(res.Imported) == 0 && len(res.Skipped) == 1 {
		return res, remedy.With(fmt.Errorf("import %s: %s", p, res.Skipped[0].Reason), "only valid Particle module files (.bin) can be imported")
	}
	return res, nil
}

func isZip(p string) bool { return strings.EqualFold(filepath.Ext(p), ".zip") }

// importPath imports every file the bundle reader finds at p (modfile.Members), a .zip
// found in a folder included; a bundle with an entry outside itself is refused whole.
func (c *Cache) importPath(ctx context.Context, p string, res *ImportResult) error {
	members, err := modfile.Members(p)
	if err != nil {
		if errors.Is(err, ErrZipSlip) {
			return remedy.With(fmt.Errorf("import: %w", err),
				"this bundle is malformed or malicious; get the files from Particle's releases again (nothing was imported from it)")
		}
		return fmt.Errorf("import %s: %w", p, err)
	}
	for _, m := range members {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if m.Path != "" && m.Path != p && isZip(m.Path) {
			if err := c.importPath(ctx, m.Path, res); err != nil {
				return err
			}
			continue
		}
		if m.Size > maxModuleBytes {
			res.Skipped = append(res.Skipped, Skipped{Path: m.Full, Reason: fmt.Sprintf("%d bytes, larger than any module", m.Size)})
			continue
		}
		data, err := m.Open()
		if err != nil {
			res.Skipped = append(res.Skipped, Skipped{Path: m.Full, Reason: err.Error()})
			continue
		}
		if err := c.importBytes(ctx, m.Full, path.Base(m.Name), data, res); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cache) importBytes(ctx context.Context, source, base string, data []byte, res *ImportResult) error {
	f := inspect(data)
	if err := f.valid(); err != nil {
		res.Skipped = append(res.Skipped, Skipped{Path: source, Reason: err.Error()})
		return nil
	}
	var entries []Entry
	for _, pl := range bestPlacements(c.cat.identify(f), base) {
		entries = append(entries, entryFor(pl.Release, pl.Module, source))
	}
	if len(entries) == 0 {
		if co, ok := c.cat.identifyComponent(f); ok {
			e := entryFor(&Release{Platform: co.Platform}, &co.Module, source)
			e.Component = co.Title
			entries = append(entries, e)
		}
	}
	if len(entries) == 0 {
		entries = append(entries, headerEntry(f.m, source))
	}
	stored, err := c.storeBytes(ctx, data, f, entries)
	if err != nil {
		return fmt.Errorf("import %s: %w", source, err)
	}
	res.Imported = append(res.Imported, stored...)
	return nil
}

// bestPlacements picks the releases to index an imported file under. One file can be
// part of dozens of releases (a SoftDevice); listing it under each would bury `cache
// list`, and fetches find it under any release by its checksums anyway. So: the release
// its file name names, if that is one of them; otherwise the newest release per platform.
func bestPlacements(pls []Placement, base string) []Placement {
	if info, ok := assetname.Parse(base); ok {
		var named []Placement
		for _, pl := range pls {
			if pl.Release.Version == info.Version && pl.Release.Platform == info.Platform {
				named = append(named, pl)
			}
		}
		if len(named) > 0 {
			return named
		}
	}
	best := map[string]Placement{}
	var order []string
	for _, pl := range pls {
		b, ok := best[pl.Release.Platform]
		if !ok {
			order = append(order, pl.Release.Platform)
		}
		if !ok || CompareVersions(pl.Release.Version, b.Release.Version) > 0 {
			best[pl.Release.Platform] = pl
		}
	}
	out := make([]Placement, 0, len(order))
	for _, p := range order {
		out = append(out, best[p])
	}
	return out
}

// headerEntry indexes a valid module the catalog does not know, by what its header says.
func headerEntry(m *module.Module, source string) Entry {
	p, _ := platform.ByID(m.PlatformID)
	e := Entry{
		PlatformID: m.PlatformID, Function: m.Function.String(), Index: m.Index, ModuleVersion: m.Version,
		Start: fmt.Sprintf("0x%08x", m.Start), Source: source, Name: slotName(p, m.Function, m.Index, m.Version),
	}
	if p != nil {
		e.Platform = p.Name
	}
	if m.Function == platform.FuncSystem || m.Function == platform.FuncMono {
		// A system module version belongs to exactly one release.
		if v, ok := module.DeviceOSVersion(m.Function, m.Version); ok {
			e.DeviceOS = v
		}
	}
	return e
}

// BundleManifest is manifest.json in a bundle written by Export.
type BundleManifest struct {
	DeviceOS string                 `json:"device_os"`
	Platform string                 `json:"platform"`
	Created  time.Time              `json:"created"`
	Modules  []BundleManifestModule `json:"modules"`
}

// BundleManifestModule is one file of an exported bundle.
type BundleManifestModule struct {
	File          string `json:"file"`
	Name          string `json:"name"`
	Function      string `json:"function"`
	Index         uint8  `json:"index"`
	ModuleVersion uint16 `json:"module_version"`
	Size          int64  `json:"size"`
	CRC32         string `json:"crc32"`
	SHA256        string `json:"sha256"`
}

// Export writes a .zip bundle of a release from the cache alone (no network): every
// Device OS module under its release asset name, the user application too if cached, and
// a manifest.json. Import on another machine takes it back by the files' headers. Every
// file is verified as it is written; the bundle appears at out only when complete.
func (c *Cache) Export(ctx context.Context, version, plat, out string) (*BundleManifest, error) {
	r, err := c.cat.Release(version, plat)
	if err != nil {
		return nil, err
	}
	ix, err := c.readIndex()
	if err != nil {
		return nil, err
	}
	man := &BundleManifest{DeviceOS: r.Version, Platform: r.Platform, Created: time.Now().UTC().Truncate(time.Second)}
	type item struct {
		m    *Module
		path string
	}
	var items []item
	var missing []string
	for i := range r.Modules {
		m := &r.Modules[i]
		cf, ok := c.lookup(ctx, ix, r, m)
		if !ok {
			if !m.IsUser() {
				missing = append(missing, m.Asset)
			}
			continue
		}
		items = append(items, item{m, cf.Entry.Path})
	}
	if len(missing) > 0 {
		return nil, remedy.With(&MissingError{Release: r.String(), Files: missing},
			"fetch it first")
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil && filepath.Dir(out) != "." {
		return nil, fmt.Errorf("export: %w", err)
	}
	tf, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	tmp := tf.Name()
	defer os.Remove(tmp)
	zw := zip.NewWriter(tf)
	for _, it := range items {
		if ctx.Err() != nil {
			tf.Close()
			return nil, ctx.Err()
		}
		data, err := readObject(it.path)
		if err != nil {
			tf.Close()
			return nil, fmt.Errorf("export %s: %w", it.m.Asset, err)
		}
		f := inspect(data)
		if err := f.check(it.m); err != nil {
			tf.Close()
			return nil, remedy.With(fmt.Errorf("export %s: cached file %s: %w", it.m.Asset, it.path, err), "verify the firmware cache, then fetch the release again")
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: it.m.Asset, Method: zip.Deflate, Modified: man.Created})
		if err == nil {
			_, err = w.Write(data)
		}
		if err != nil {
			tf.Close()
			return nil, fmt.Errorf("export: %w", err)
		}
		man.Modules = append(man.Modules, BundleManifestModule{File: it.m.Asset, Name: it.m.Name, Function: it.m.Function.String(),
			Index: it.m.Index, ModuleVersion: f.m.Version, Size: f.size, CRC32: f.crc, SHA256: f.fileSHA})
	}
	mb, _ := json.MarshalIndent(man, "", "  ")
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "manifest.json", Method: zip.Deflate, Modified: man.Created})
	if err == nil {
		_, err = w.Write(mb)
	}
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = tf.Sync()
	}
	if cerr := tf.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, out)
	}
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", out, err)
	}
	return man, nil
}
