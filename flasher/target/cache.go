package target

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	cache "github.com/particle-flasher/particle-flasher/firmware-cache"
	"github.com/particle-flasher/particle-flasher/flasher/modfile"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// FromCache is the firmware cache as a Source: releases as its catalog lists them,
// resolved into verified files (downloaded when missing, unless the cache is offline).
type FromCache struct {
	Cache *cache.Cache
	// AppWait bounds fetching the release's application, which only matters when the
	// device's own cannot run on the target (default 30 s; a cached copy is taken at once).
	AppWait time.Duration
}

// Versions lists the catalog's releases for the platform, oldest first.
func (s FromCache) Versions(p *platform.Platform) []string {
	rels := s.Cache.Catalog().Releases(p.Name) // newest first
	out := make([]string, 0, len(rels))
	for i := len(rels) - 1; i >= 0; i-- {
		out = append(out, rels[i].Version)
	}
	return out
}

// Release fetches the release's Device OS parts and, when it can be had, its application.
func (s FromCache) Release(ctx context.Context, version string, p *platform.Platform) (*Release, error) {
	res, err := s.Cache.Fetch(ctx, version, p.Name, cache.FetchOptions{})
	if err != nil {
		return nil, err
	}
	rel := &Release{Version: res.Release.Version}
	for _, cf := range res.Files {
		b, err := modfile.Load(cf.Entry.Path)
		if err != nil {
			return nil, remedy.WithCommand(fmt.Errorf("%s: %w", cf.Entry.Path, err), "The firmware cache is damaged: verify it, or fetch the release again.", "pflash cache verify")
		}
		rel.OS = append(rel.OS, b.Modules()...)
		rel.Files = append(rel.Files, cf.Module.Asset)
	}
	wait := s.AppWait
	if wait <= 0 {
		wait = 30 * time.Second
	}
	for _, m := range res.Release.Modules {
		if !m.IsUser() {
			continue
		}
		actx, cancel := context.WithTimeout(ctx, wait)
		app, err := s.Cache.Fetch(actx, res.Release.Version, p.Name, cache.FetchOptions{Modules: []string{m.Name}})
		cancel()
		if err != nil || len(app.Files) == 0 {
			slog.Info("release application not available; planning without it", "version", version, "err", err)
			continue
		}
		b, err := modfile.Load(app.Files[0].Entry.Path)
		if err == nil && len(b.Files) == 1 && b.Files[0].Module.Function == platform.FuncUser {
			rel.App = b.Files[0].Module
			rel.Files = append(rel.Files, app.Files[0].Module.Asset)
		}
	}
	return rel, nil
}
