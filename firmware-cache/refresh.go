package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/particle-flasher/particle-flasher/firmware-cache/internal/catalogfile"
	"github.com/particle-flasher/particle-flasher/flasher/assetname"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// GitHubAPI is the GitHub REST API root Refresh asks by default.
const GitHubAPI = "https://api.github.com"

// maxReleasePages bounds the release listing (100 per page; Device OS has ~300 releases).
const maxReleasePages = 10

// githubRelease is what the catalog keeps of one GitHub release.
type githubRelease struct {
	Version    string        `json:"version"`
	Prerelease bool          `json:"prerelease"`
	Deprecated bool          `json:"deprecated,omitempty"`
	Assets     []githubAsset `json:"assets"`
}

type githubAsset struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// loadCatalog is the embedded snapshot plus what the last Refresh saved in the cache
// directory. A damaged saved refresh is ignored with a warning: the snapshot still works.
func (c *Cache) loadCatalog() (*Catalog, error) {
	emb, err := Embedded()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(c.dir, githubFile))
	if errors.Is(err, fs.ErrNotExist) {
		return emb, nil
	}
	var rels []githubRelease
	if err == nil {
		err = json.Unmarshal(b, &rels)
	}
	if err == nil {
		var merged *Catalog
		if merged, err = mergeGitHub(emb, rels); err == nil {
			return merged, nil
		}
	}
	c.log.Warn("ignoring the saved catalog refresh; using the embedded catalog", "file", filepath.Join(c.dir, githubFile), "err", err)
	return emb, nil
}

// Refresh asks the GitHub releases API (apiURL "" = GitHubAPI) what Device OS releases
// exist, merges that into the catalog (new versions, prerelease and deprecation marks,
// asset sizes), saves it in the cache directory for later offline runs, and returns the
// new catalog. Facts from the snapshot (header dumps checked against real files) are
// never overwritten, only completed.
func (c *Cache) Refresh(ctx context.Context, apiURL string) (*Catalog, error) {
	if c.offline {
		return nil, remedy.With(fmt.Errorf("refresh the release catalog: %w", ErrOffline), "run without --offline on a machine with internet access")
	}
	if apiURL == "" {
		apiURL = GitHubAPI
	}
	if _, err := parseMirror(apiURL, false); err != nil {
		return nil, err
	}
	var rels []githubRelease
	for page := 1; page <= maxReleasePages; page++ {
		u := fmt.Sprintf("%s/repos/particle-iot/device-os/releases?per_page=100&page=%d", strings.TrimRight(apiURL, "/"), page)
		got, err := c.releasePage(ctx, u)
		if err != nil {
			return nil, err
		}
		rels = append(rels, got...)
		if len(got) < 100 {
			break
		}
	}
	emb, err := Embedded()
	if err != nil {
		return nil, err
	}
	if c.cat != nil && c.cat != emb {
		// A catalog given in Options stays the base.
		if _, err := os.Stat(filepath.Join(c.dir, githubFile)); err != nil {
			emb = c.cat
		}
	}
	merged, err := mergeGitHub(emb, rels)
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(rels, "", " ")
	if err != nil {
		return nil, err
	}
	l, err := acquire(ctx, filepath.Join(c.dir, lockFile))
	if err != nil {
		return nil, err
	}
	err = writeFileAtomic(filepath.Join(c.dir, githubFile), b)
	l.release()
	if err != nil {
		return nil, fmt.Errorf("save the catalog refresh: %w", err)
	}
	c.cat = merged
	return merged, nil
}

func (c *Cache) releasePage(ctx context.Context, u string) ([]githubRelease, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("User-Agent", "particle-flasher (pflash cache)")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, remedy.With(fmt.Errorf("GitHub releases API %s: %w", u, err), "check the network connection; the embedded catalog keeps working offline")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		rem := "try again later; the embedded catalog keeps working"
		if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests {
			rem = "GitHub's API rate limit was probably reached (60 requests an hour without a login); try again later"
		}
		return nil, remedy.With(fmt.Errorf("GitHub releases API %s: %w", u, &StatusError{Code: resp.StatusCode, Status: resp.Status}), rem)
	}
	var raw []struct {
		TagName    string `json:"tag_name"`
		Name       string `json:"name"`
		Draft      bool   `json:"draft"`
		Prerelease bool   `json:"prerelease"`
		Assets     []struct {
			Name string `json:"name"`
			Size int64  `json:"size"`
		} `json:"assets"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&raw); err != nil {
		return nil, fmt.Errorf("GitHub releases API %s: unexpected answer: %w", u, err)
	}
	var out []githubRelease
	for _, r := range raw {
		if r.Draft || r.TagName == "" {
			continue
		}
		gr := githubRelease{
			Version:    NormalizeVersion(r.TagName),
			Prerelease: r.Prerelease,
			Deprecated: strings.Contains(strings.ToLower(r.Name), "deprecated"),
		}
		for _, a := range r.Assets {
			if strings.HasSuffix(a.Name, ".bin") {
				gr.Assets = append(gr.Assets, githubAsset{Name: a.Name, Size: a.Size})
			}
		}
		out = append(out, gr)
	}
	return out, nil
}

// mergeGitHub returns base completed with GitHub's release list.
func mergeGitHub(base *Catalog, rels []githubRelease) (*Catalog, error) {
	b, err := catalogfile.Encode(base.file)
	if err != nil {
		return nil, err
	}
	f, err := catalogfile.Decode(b) // a deep copy to modify
	if err != nil {
		return nil, err
	}
	find := func(version, plat string) *catalogfile.Release {
		for i := range f.Releases {
			if f.Releases[i].Version == version && f.Releases[i].Platform == plat {
				return &f.Releases[i]
			}
		}
		return nil
	}
	for _, gr := range rels {
		for _, a := range gr.Assets {
			info, ok := assetname.Parse(a.Name)
			if !ok || info.Version != gr.Version || strings.Contains(info.Meta, "debug") || strings.Contains(info.Meta, "jtag") {
				continue
			}
			p, _ := platform.ByName(info.Platform)
			r := find(gr.Version, p.Name)
			if r == nil {
				f.Releases = append(f.Releases, catalogfile.Release{
					Version: gr.Version, Platform: p.Name, Partial: true, Source: "github",
					Prerelease: gr.Prerelease || catalogfile.IsPrerelease(gr.Version),
				})
				r = &f.Releases[len(f.Releases)-1]
			}
			r.Prerelease = r.Prerelease || gr.Prerelease
			r.Deprecated = r.Deprecated || gr.Deprecated
			if m := findAsset(r, a.Name); m != nil {
				if m.Size == 0 {
					m.Size = a.Size
				}
				continue
			}
			if m, ok := moduleFromAsset(p, info, a); ok && findName(r, m.Name) == nil {
				r.Modules = append(r.Modules, m)
			}
		}
	}
	return fromFile(f)
}

func findAsset(r *catalogfile.Release, name string) *catalogfile.Module {
	for i := range r.Modules {
		m := &r.Modules[i]
		if m.Asset == name || contains(m.AltAssets, name) {
			return m
		}
	}
	return nil
}

func findName(r *catalogfile.Release, name string) *catalogfile.Module {
	for i := range r.Modules {
		if r.Modules[i].Name == name {
			return &r.Modules[i]
		}
	}
	return nil
}

// moduleFromAsset describes a module known only by its asset name: where the platform
// table puts a module of that name, the system module version from the version table.
func moduleFromAsset(p *platform.Platform, info assetname.Info, a githubAsset) (catalogfile.Module, bool) {
	s, ok := p.SlotByName(info.Module)
	if !ok {
		return catalogfile.Module{}, false
	}
	m := catalogfile.Module{
		Name: info.Module, Asset: a.Name, PlatformID: p.ID, Function: s.Function.String(), Index: s.Index,
		Size: a.Size, PrefixOffset: int(s.HeaderOffset),
	}
	if s.Function == platform.FuncSystem {
		if v, ok := module.SystemModuleVersion(info.Version); ok {
			m.ModuleVersion = v
			if vs, ok := p.SlotFor(s.Function, s.Index, v); ok {
				s = vs
			}
		}
	}
	if !s.EndFixed && m.ModuleVersion != 0 || s.Function != platform.FuncSystem && !s.EndFixed {
		m.Start = fmt.Sprintf("0x%08x", s.Start)
	}
	return m, true
}
