package cache

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/particle-flasher/particle-flasher/firmware-cache/internal/catalogfile"
)

// smallCatalog is a few releases of the embedded catalog in its own format: seeds small
// enough for the fuzzer to mutate.
func smallCatalog(f *testing.F) []byte {
	emb, err := Embedded()
	if err != nil {
		f.Fatal(err)
	}
	small := &catalogfile.File{Schema: emb.file.Schema, AssetBase: emb.file.AssetBase, Platforms: emb.file.Platforms}
	for _, r := range emb.file.Releases {
		if (r.Platform == "boron" || r.Platform == "photon") && (r.Version == "4.1.0" || r.Version == "2.3.1" || r.Version == "1.5.2") {
			small.Releases = append(small.Releases, r)
		}
	}
	b, err := catalogfile.Encode(small)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzCatalog feeds arbitrary bytes to the catalog reader (the snapshot format a refresh
// or an import may bring) and asks the result what a person would: nothing may panic, and
// every refusal is one line.
func FuzzCatalog(f *testing.F) {
	f.Add(smallCatalog(f))
	f.Add([]byte(`{"schema":1,"platforms":[],"releases":[{"version":"4.1.0","platform":"boron","modules":[{"name":"system-part1"}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCatalog(b)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("refusal is not one line: %q", err.Error())
			}
			return
		}
		for _, p := range []string{"boron", "photon", "argon", "p2"} {
			for _, r := range c.Releases(p) {
				_, _ = c.Release(r.Version, p)
				for _, m := range r.Modules {
					_, _ = r.Module(m.Name)
				}
			}
		}
		if _, err := c.Bytes(); err != nil {
			t.Fatalf("a catalog read cannot be written back: %v", err)
		}
	})
}

// FuzzGitHubReleases feeds arbitrary bytes to the reader of the saved GitHub releases
// list (github-releases.json, what a refresh brings) and merges it into a small catalog:
// nothing may panic, and every refusal is one line.
func FuzzGitHubReleases(f *testing.F) {
	base, err := ParseCatalog(smallCatalog(f))
	if err != nil {
		f.Fatal(err)
	}
	seed, _ := json.Marshal([]githubRelease{{Version: "4.2.0", Assets: []githubAsset{{Name: "boron-system-part1@4.2.0.bin", Size: 600000}, {Name: "boron-bootloader@4.2.0.bin", Size: 49000}}},
		{Version: "1.5.2", Deprecated: true, Assets: []githubAsset{{Name: "system-part1-1.5.2-photon.bin", Size: 1}}}})
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		var rels []githubRelease
		if json.Unmarshal(b, &rels) != nil {
			return
		}
		c, err := mergeGitHub(base, rels)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("refusal is not one line: %q", err.Error())
			}
			return
		}
		for _, r := range c.Releases("boron") {
			_, _ = c.Release(r.Version, "boron")
		}
	})
}
