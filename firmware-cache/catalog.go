package cache

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/particle-flasher/particle-flasher/assets"
	"github.com/particle-flasher/particle-flasher/firmware-cache/internal/catalogfile"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// DefaultAssetBase is the Device OS GitHub releases download root; a module's URL is
// DefaultAssetBase/v<version>/<asset>.
const DefaultAssetBase = catalogfile.DefaultAssetBase

// ErrNotInCatalog is returned for a version or platform the catalog does not list.
var ErrNotInCatalog = errors.New("not in the release catalog")

// Module is one file of a release as the catalog knows it. Zero values mean unknown:
// Size 0, CRC32 "", SHA256 "", ModuleVersion 0, HasStart false. A download is checked
// against every known value.
type Module struct {
	// Name is the module's name in releases: "system-part1", "bootloader",
	// "softdevice", "prebootloader-part1", "tinker", "tracker-edge", "ncp".
	Name string
	// Asset is the file name it is published as; AltAssets are other names tried when
	// the first is missing from a mirror.
	Asset     string
	AltAssets []string
	// Origin is an absolute URL for files that are not Device OS release assets, used
	// when downloading from the default GitHub source; "<zip URL>#<member>" names a
	// member of a bundle.
	Origin string
	// PlatformID is the platform in the module's own header. It differs from the
	// release's platform for the SoftDevice of Gen3 releases before 4.0, where Particle
	// used the Argon image for every Gen3 platform.
	PlatformID    uint16
	Function      platform.Function
	Index         uint8
	ModuleVersion uint16
	Start         uint32
	HasStart      bool
	Size          int64
	// CRC32 is the stored CRC-32 as 8 lower-case hex digits.
	CRC32 string
	// SHA256 is the SHA-256 stored in the module suffix (hex); FileSHA256 is the hash of
	// the whole file, known for files the generator saw for real.
	SHA256, FileSHA256 string
	Flags              uint8
	PrefixOffset       int
	Deps               []module.Dependency
	// Checked names the real binary the values were confirmed against, if any.
	Checked string
}

// IsUser reports a user application (Tinker, Tracker Edge): part of a restore bundle but
// not of Device OS, so fetching a release leaves it out unless asked.
func (m *Module) IsUser() bool { return m.Function == platform.FuncUser }

// Release is one Device OS version for one platform.
type Release struct {
	Version    string
	Platform   string
	PlatformID uint16
	// Prerelease: alpha, beta, rc and the P2 preview builds (3.2.1-p2.x).
	Prerelease bool
	// Deprecated: Particle no longer offers it (listed by the restore tool without
	// restore bundles, or marked deprecated on its GitHub release).
	Deprecated bool
	// LTS: a final release of the platform's long-term-support line.
	LTS bool
	// Latest and LatestLTS mark the newest final (non-deprecated) release and the newest
	// LTS release of the platform.
	Latest, LatestLTS bool
	// Partial: no header dump exists, the module list comes from naming rules, and sizes
	// and checksums are unknown (downloads are checked against the header fields alone).
	Partial bool
	// Source is where the release's facts come from: "device-restore",
	// "module-versions" or "github".
	Source  string
	Modules []Module
}

// Module returns the module with the given name ("system-part1", "softdevice", ...).
func (r *Release) Module(name string) (*Module, bool) {
	for i := range r.Modules {
		if r.Modules[i].Name == name {
			return &r.Modules[i], true
		}
	}
	return nil, false
}

// DeviceOSModules are the modules an upgrade or downgrade writes: everything but the user
// application.
func (r *Release) DeviceOSModules() []Module {
	var out []Module
	for _, m := range r.Modules {
		if !m.IsUser() {
			out = append(out, m)
		}
	}
	return out
}

// String names the release for messages: "Device OS 4.1.0 for argon".
func (r *Release) String() string { return "Device OS " + r.Version + " for " + r.Platform }

// Component is a module Particle ships outside Device OS releases (a SoftDevice or
// ESP32 NCP image bundled with its tools).
type Component struct {
	Platform string
	Title    string // e.g. "SoftDevice S140 6.0.0"
	Version  string // the component's own version, e.g. "6.0.0"
	Module   Module
}

// Catalog is the list of releases. It is read-only once built; Refresh returns a new one.
type Catalog struct {
	file       *catalogfile.File
	platforms  map[string]catalogfile.Platform
	releases   []*Release
	byKey      map[string]*Release
	components []Component
}

var (
	embeddedOnce sync.Once
	embedded     *Catalog
	embeddedErr  error
)

// Embedded returns the snapshot compiled into the program. It needs no network and no
// shared folder; treat the result as read-only.
func Embedded() (*Catalog, error) {
	embeddedOnce.Do(func() {
		embedded, embeddedErr = ParseCatalog(assets.Catalog)
		if embeddedErr != nil {
			embeddedErr = fmt.Errorf("embedded release catalog: %w", embeddedErr)
		}
	})
	return embedded, embeddedErr
}

// ParseCatalog reads a catalog in the snapshot format.
func ParseCatalog(b []byte) (*Catalog, error) {
	f, err := catalogfile.Decode(b)
	if err != nil {
		return nil, err
	}
	return fromFile(f)
}

// Bytes encodes the catalog in the snapshot format.
func (c *Catalog) Bytes() ([]byte, error) { return catalogfile.Encode(c.file) }

func fromFile(f *catalogfile.File) (*Catalog, error) {
	c := &Catalog{file: f, platforms: map[string]catalogfile.Platform{}, byKey: map[string]*Release{}}
	for _, p := range f.Platforms {
		c.platforms[p.Name] = p
	}
	for _, fr := range f.Releases {
		p, ok := platform.ByName(fr.Platform)
		if !ok {
			return nil, fmt.Errorf("release %s: unknown platform %q", fr.Version, fr.Platform)
		}
		r := &Release{
			Version: fr.Version, Platform: p.Name, PlatformID: p.ID, Prerelease: fr.Prerelease,
			Deprecated: fr.Deprecated, Partial: fr.Partial, Source: fr.Source,
		}
		for _, fm := range fr.Modules {
			m, err := moduleFromFile(fm)
			if err != nil {
				return nil, fmt.Errorf("release %s %s: %w", fr.Version, fr.Platform, err)
			}
			r.Modules = append(r.Modules, m)
		}
		k := key(r.Version, r.Platform)
		if _, dup := c.byKey[k]; dup {
			return nil, fmt.Errorf("release %s %s listed twice", r.Version, r.Platform)
		}
		c.byKey[k] = r
		c.releases = append(c.releases, r)
	}
	for _, fc := range f.Components {
		m, err := moduleFromFile(fc.Module)
		if err != nil {
			return nil, fmt.Errorf("component %s: %w", fc.Title, err)
		}
		c.components = append(c.components, Component{Platform: fc.Platform, Title: fc.Title, Version: fc.Version, Module: m})
	}
	c.finish()
	return c, nil
}

// finish sorts the releases and derives the per-platform flags.
func (c *Catalog) finish() {
	sort.SliceStable(c.releases, func(i, j int) bool {
		a, b := c.releases[i], c.releases[j]
		if a.PlatformID != b.PlatformID {
			return a.PlatformID < b.PlatformID
		}
		return catalogfile.CompareVersions(a.Version, b.Version) > 0
	})
	latest := map[string]bool{}
	latestLTS := map[string]bool{}
	for _, r := range c.releases { // newest first within a platform
		r.LTS = catalogfile.InLTSLine(r.Version, c.platforms[r.Platform].LTS)
		r.Latest, r.LatestLTS = false, false
		if r.Prerelease || r.Deprecated {
			continue
		}
		if !latest[r.Platform] {
			latest[r.Platform] = true
			r.Latest = true
		}
		if r.LTS && !latestLTS[r.Platform] {
			latestLTS[r.Platform] = true
			r.LatestLTS = true
		}
	}
}

func key(version, plat string) string { return version + "/" + plat }

func moduleFromFile(fm catalogfile.Module) (Module, error) {
	fn, ok := platform.ParseFunction(fm.Function)
	if !ok {
		return Module{}, fmt.Errorf("%s: unknown function %q", fm.Name, fm.Function)
	}
	m := Module{
		Name: fm.Name, Asset: fm.Asset, AltAssets: fm.AltAssets, Origin: fm.Origin, PlatformID: fm.PlatformID,
		Function: fn, Index: fm.Index, ModuleVersion: fm.ModuleVersion, Size: fm.Size,
		CRC32: strings.ToLower(fm.CRC32), SHA256: strings.ToLower(fm.SHA256), FileSHA256: strings.ToLower(fm.FileSHA256),
		Flags: fm.Flags, PrefixOffset: fm.PrefixOffset, Checked: fm.Checked,
	}
	if fm.Start != "" {
		v, err := strconv.ParseUint(fm.Start, 0, 32)
		if err != nil {
			return Module{}, fmt.Errorf("%s: start %q: %w", fm.Name, fm.Start, err)
		}
		m.Start, m.HasStart = uint32(v), true
	}
	for _, d := range fm.Deps {
		dfn, ok := platform.ParseFunction(d.Function)
		if !ok {
			return Module{}, fmt.Errorf("%s: dependency on unknown function %q", fm.Name, d.Function)
		}
		m.Deps = append(m.Deps, module.Dependency{Function: dfn, Index: d.Index, Version: d.Version})
	}
	return m, nil
}

func moduleToFile(m Module) catalogfile.Module {
	fm := catalogfile.Module{
		Name: m.Name, Asset: m.Asset, AltAssets: m.AltAssets, Origin: m.Origin, PlatformID: m.PlatformID,
		Function: m.Function.String(), Index: m.Index, ModuleVersion: m.ModuleVersion, Size: m.Size,
		CRC32: m.CRC32, SHA256: m.SHA256, FileSHA256: m.FileSHA256, Flags: m.Flags, PrefixOffset: m.PrefixOffset, Checked: m.Checked,
	}
	if m.HasStart {
		fm.Start = fmt.Sprintf("0x%08x", m.Start)
	}
	for _, d := range m.Deps {
		fm.Deps = append(fm.Deps, catalogfile.Dep{Function: d.Function.String(), Index: d.Index, Version: d.Version})
	}
	return fm
}

// NormalizeVersion accepts "v4.1.0" and " 4.1.0 " for "4.1.0".
func NormalizeVersion(v string) string { return strings.TrimPrefix(strings.TrimSpace(v), "v") }

// PlatformName resolves a platform name or alias ("photon2" → "p2") to the catalog's
// spelling.
func PlatformName(s string) (string, error) {
	p, ok := platform.ByName(s)
	if !ok {
		var names []string
		for _, p := range platform.All() {
			names = append(names, p.Name)
		}
		return "", remedy.With(fmt.Errorf("unknown platform %q: %w", s, ErrNotInCatalog),
			"use one of: "+strings.Join(names, ", "))
	}
	return p.Name, nil
}

// Release returns one release. A version or platform the catalog lacks gives an error
// wrapping ErrNotInCatalog whose remedy lists what the platform has.
func (c *Catalog) Release(version, plat string) (*Release, error) {
	name, err := PlatformName(plat)
	if err != nil {
		return nil, err
	}
	v := NormalizeVersion(version)
	if r, ok := c.byKey[key(v, name)]; ok {
		return r, nil
	}
	rs := c.Releases(name)
	if len(rs) == 0 {
		return nil, remedy.With(fmt.Errorf("no Device OS releases known for %s: %w", name, ErrNotInCatalog),
			"refresh the release catalog while online, or import the release's files")
	}
	var some []string
	for i, r := range rs {
		if i == 12 {
			some = append(some, "...")
			break
		}
		some = append(some, r.Version)
	}
	return nil, remedy.WithCommand(fmt.Errorf("Device OS %s for %s: %w", v, name, ErrNotInCatalog),
		fmt.Sprintf("pick a listed version (%s: %s), or refresh the release catalog while online for newer releases", name, strings.Join(some, ", ")),
		fmt.Sprintf("pflash cache catalog --platform %s; pflash cache catalog --refresh", name))
}

// Releases lists a platform's releases, newest first; "" lists every platform's.
func (c *Catalog) Releases(plat string) []*Release {
	if plat == "" {
		return append([]*Release(nil), c.releases...)
	}
	name := plat
	if p, ok := platform.ByName(plat); ok {
		name = p.Name
	}
	var out []*Release
	for _, r := range c.releases {
		if r.Platform == name {
			out = append(out, r)
		}
	}
	return out
}

// Platforms lists the platforms with at least one release, in platform ID order.
func (c *Catalog) Platforms() []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range c.releases {
		if !seen[r.Platform] {
			seen[r.Platform] = true
			out = append(out, r.Platform)
		}
	}
	return out
}

// Latest is the newest final, non-deprecated release of a platform.
func (c *Catalog) Latest(plat string) (*Release, bool) {
	for _, r := range c.Releases(plat) {
		if r.Latest {
			return r, true
		}
	}
	return nil, false
}

// LatestLTS is the newest release of the platform's long-term-support line.
func (c *Catalog) LatestLTS(plat string) (*Release, bool) {
	for _, r := range c.Releases(plat) {
		if r.LatestLTS {
			return r, true
		}
	}
	return nil, false
}

// LTSLine is the platform's long-term-support line as the restore index names it ("4",
// "2", "6.5.1"), "" when it has none.
func (c *Catalog) LTSLine(plat string) string { return c.platforms[plat].LTS }

// Components lists the non-Device-OS modules the catalog knows (SoftDevice and NCP
// images shipped with Particle's tools).
func (c *Catalog) Components() []Component { return append([]Component(nil), c.components...) }

// Placement is a release module a file is.
type Placement struct {
	Release *Release
	Module  *Module
}

// URL is where a module is downloaded from a mirror base: base/v<version>/<asset>.
func URL(base, version, asset string) string {
	return strings.TrimRight(base, "/") + "/v" + version + "/" + asset
}

// Row is one (version, platform, module) line of `pflash cache catalog --json`.
type Row struct {
	DeviceOS      string `json:"device_os"`
	Platform      string `json:"platform"`
	PlatformID    uint16 `json:"platform_id"`
	Name          string `json:"name"`
	Asset         string `json:"asset"`
	Function      string `json:"function"`
	Index         uint8  `json:"index"`
	ModuleVersion uint16 `json:"module_version"`
	Start         string `json:"start"`
	Size          int64  `json:"size"`
	CRC32         string `json:"crc32"`
	SHA256        string `json:"sha256"`
	FileSHA256    string `json:"file_sha256,omitempty"`
	URL           string `json:"url"`
	LTS           bool   `json:"lts"`
	Prerelease    bool   `json:"prerelease"`
	Deprecated    bool   `json:"deprecated"`
	Latest        bool   `json:"latest"`
	Partial       bool   `json:"partial,omitempty"`
	// Component is set (and DeviceOS empty) for a module shipped outside Device OS.
	Component string `json:"component,omitempty"`
}

// Rows flattens the catalog for a platform ("" = all) into one row per module, URLs on
// base ("" = the GitHub releases). Components follow the releases.
func (c *Catalog) Rows(plat, base string) []Row {
	if base == "" {
		base = DefaultAssetBase
	}
	var out []Row
	for _, r := range c.Releases(plat) {
		for i := range r.Modules {
			m := &r.Modules[i]
			row := moduleRow(m)
			row.DeviceOS, row.Platform = r.Version, r.Platform
			row.URL = URL(base, r.Version, m.Asset)
			if m.Origin != "" && base == DefaultAssetBase {
				row.URL = m.Origin
			}
			row.LTS, row.Prerelease, row.Deprecated, row.Latest, row.Partial = r.LTS, r.Prerelease, r.Deprecated, r.Latest, r.Partial
			out = append(out, row)
		}
	}
	name := plat
	if p, ok := platform.ByName(plat); ok {
		name = p.Name
	}
	for i := range c.components {
		co := &c.components[i]
		if plat != "" && co.Platform != name {
			continue
		}
		row := moduleRow(&co.Module)
		row.Platform, row.Component, row.URL = co.Platform, co.Title, co.Module.Origin
		out = append(out, row)
	}
	return out
}

func moduleRow(m *Module) Row {
	row := Row{
		PlatformID: m.PlatformID, Name: m.Name, Asset: m.Asset, Function: m.Function.String(), Index: m.Index,
		ModuleVersion: m.ModuleVersion, Size: m.Size, CRC32: m.CRC32, SHA256: m.SHA256, FileSHA256: m.FileSHA256,
	}
	if m.HasStart {
		row.Start = fmt.Sprintf("0x%08x", m.Start)
	}
	return row
}
