// Package catalogfile is the on-disk form of the release catalog (the snapshot embedded
// in assets/catalog.json and the refreshed copy kept in the cache directory), the
// Device OS asset naming rules and version ordering. It is shared by the cache package
// and the generator that writes the snapshot, so the generator can run before a snapshot
// exists.
package catalogfile

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Schema is the version of the file format; readers refuse newer schemas rather than
// silently dropping fields they do not know.
const Schema = 1

// DefaultAssetBase is where Device OS release assets live on GitHub; an asset URL is
// DefaultAssetBase + "/v<version>/<asset>" (reference §8).
const DefaultAssetBase = "https://github.com/particle-iot/device-os/releases/download"

// File is a whole catalog.
type File struct {
	Schema     int         `json:"schema"`
	Note       string      `json:"note,omitempty"`
	AssetBase  string      `json:"asset_base"`
	Platforms  []Platform  `json:"platforms"`
	Releases   []Release   `json:"releases"`
	Components []Component `json:"components,omitempty"`
}

// Platform carries the per-platform release facts of Particle's restore index.
type Platform struct {
	Name string `json:"name"`
	ID   uint16 `json:"id"`
	// LTS is the restore index's "lts" value: the long-term-support line ("4", "2",
	// "1.5") or the first LTS release of a line ("6.5.1").
	LTS          string `json:"lts,omitempty"`
	Discontinued bool   `json:"discontinued,omitempty"`
}

// Release is one Device OS version for one platform.
type Release struct {
	Version    string `json:"version"`
	Platform   string `json:"platform"`
	Prerelease bool   `json:"prerelease"`
	Deprecated bool   `json:"deprecated,omitempty"`
	// Partial marks a release whose module list comes from the naming rules and the
	// module-version table only: no published header dump, so sizes and checksums are
	// unknown and downloads are checked against the header fields alone.
	Partial bool   `json:"partial,omitempty"`
	Source  string `json:"source"`
	// Modules in flashing-independent order (as the header dump lists them).
	Modules []Module `json:"modules"`
}

// Module is one file of a release. Zero values mean "unknown" (Size 0, CRC32 "").
type Module struct {
	Name      string   `json:"name"`
	Asset     string   `json:"asset"`
	AltAssets []string `json:"alt_assets,omitempty"`
	// Origin is an absolute URL for files that are not Device OS release assets
	// (Tracker Edge, the Tracker NCP, component files); "<zip URL>#<member>" names a
	// member of a bundle.
	Origin        string `json:"origin,omitempty"`
	PlatformID    uint16 `json:"platform_id"`
	Function      string `json:"function"`
	Index         uint8  `json:"index"`
	ModuleVersion uint16 `json:"module_version"`
	Start         string `json:"start,omitempty"`
	Size          int64  `json:"size,omitempty"`
	CRC32         string `json:"crc32,omitempty"`
	// SHA256 is the hash stored in the module's suffix (fwUniqueId): the hash of the
	// file minus its last 38 bytes, except on SoftDevice/NCP images (a unique dummy).
	SHA256 string `json:"sha256,omitempty"`
	// FileSHA256 is the hash of the whole file, known only for files seen for real.
	FileSHA256   string `json:"file_sha256,omitempty"`
	Flags        uint8  `json:"flags,omitempty"`
	PrefixOffset int    `json:"prefix_offset,omitempty"`
	Deps         []Dep  `json:"deps,omitempty"`
	// Checked names the real binary the values were confirmed (or corrected) against.
	Checked string `json:"checked,omitempty"`
}

// Dep is a module dependency: function, index and minimum version.
type Dep struct {
	Function string `json:"function"`
	Index    uint8  `json:"index"`
	Version  uint16 `json:"version"`
}

// Component is a file Particle ships outside Device OS releases (a SoftDevice or NCP
// image bundled with its tools), listed so imports of it are recognised and it can be
// fetched by URL.
type Component struct {
	Platform string `json:"platform"`
	Title    string `json:"title"`
	Version  string `json:"version"`
	Module   Module `json:"module"`
}

// Decode parses a catalog file.
func Decode(b []byte) (*File, error) {
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	if f.Schema > Schema {
		return nil, fmt.Errorf("catalog schema %d is newer than this program understands (%d)", f.Schema, Schema)
	}
	if f.AssetBase == "" {
		f.AssetBase = DefaultAssetBase
	}
	return &f, nil
}

// Encode writes the catalog with one release header and one module per line, so a
// regenerated snapshot diffs line by line in review.
func Encode(f *File) ([]byte, error) {
	var b bytes.Buffer
	line := func(v any) ([]byte, error) { return json.Marshal(v) }
	head := struct {
		Schema    int        `json:"schema"`
		Note      string     `json:"note,omitempty"`
		AssetBase string     `json:"asset_base"`
		Platforms []Platform `json:"platforms"`
	}{f.Schema, f.Note, f.AssetBase, f.Platforms}
	h, err := line(head)
	if err != nil {
		return nil, err
	}
	// Open the object, drop the closing brace of the header to append the arrays.
	b.Write(h[:len(h)-1])
	b.WriteString(",\n\"releases\": [")
	for i, r := range f.Releases {
		if i > 0 {
			b.WriteString(",")
		}
		mods := r.Modules
		r.Modules = nil
		rh, err := line(r)
		if err != nil {
			return nil, err
		}
		rh = bytes.Replace(rh, []byte(`"modules":null`), []byte(`"modules":[`), 1)
		b.WriteString("\n")
		b.Write(rh[:len(rh)-1])
		for j, m := range mods {
			mb, err := line(m)
			if err != nil {
				return nil, err
			}
			if j > 0 {
				b.WriteString(",")
			}
			b.WriteString("\n  ")
			b.Write(mb)
		}
		b.WriteString("]}")
	}
	b.WriteString("\n],\n\"components\": [")
	for i, c := range f.Components {
		if i > 0 {
			b.WriteString(",")
		}
		cb, err := line(c)
		if err != nil {
			return nil, err
		}
		b.WriteString("\n")
		b.Write(cb)
	}
	b.WriteString("\n]}\n")
	// Prove the hand-assembled text is the same catalog.
	var check File
	if err := json.Unmarshal(b.Bytes(), &check); err != nil {
		return nil, fmt.Errorf("catalog encoding: %w", err)
	}
	return b.Bytes(), nil
}
