// Package releases builds the module files of a Device OS release as Particle's published
// header dumps describe it (the embedded release catalog, made from the Device Restore
// dumps in shared/data/device-restore), for virtual devices: every header field is the
// real one (function, index, version, platform, start address, file size, header offset,
// flags, both dependencies), the code inside is pseudo-random. This is how a release of
// any platform and version is tested where no real binary exists: the demo's devices,
// `pflash sim --version`, and the release matrix.
package releases

import (
	"context"
	"fmt"
	"sync"

	cache "github.com/particle-flasher/particle-flasher/firmware-cache"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/target"
)

// File is one module of a built release.
type File struct {
	// Name is the module's name in the release ("system-part1", "tinker", "ncp").
	Name   string
	Data   []byte
	Module *module.Module
}

// Set is a built release: its Device OS parts and its application (nil when the release
// ships none).
type Set struct {
	Release *cache.Release
	OS      []File
	App     *File
}

// Bytes lists the Device OS parts' files, and the application's when withApp.
func (s *Set) Bytes(withApp bool) [][]byte {
	var out [][]byte
	for _, f := range s.OS {
		out = append(out, f.Data)
	}
	if withApp && s.App != nil {
		out = append(out, s.App.Data)
	}
	return out
}

// Modules lists the Device OS parts, parsed.
func (s *Set) Modules() []*module.Module {
	out := make([]*module.Module, len(s.OS))
	for i, f := range s.OS {
		out[i] = f.Module
	}
	return out
}

// Buildable reports whether the catalog knows enough of the release's headers to build it:
// releases listed from naming rules alone (Partial) have no sizes or dependencies.
func Buildable(r *cache.Release) bool {
	if r.Partial {
		return false
	}
	for _, m := range r.Modules {
		if m.Size == 0 || !m.HasStart || m.ModuleVersion == 0 && m.Function != platform.FuncNCP {
			return false
		}
	}
	return true
}

var built sync.Map // "version/platform" -> *Set

// Build builds (once per process) the release's modules from its header facts.
func Build(r *cache.Release) (*Set, error) {
	key := r.Version + "/" + r.Platform
	if v, ok := built.Load(key); ok {
		return v.(*Set), nil
	}
	if !Buildable(r) {
		return nil, fmt.Errorf("releases: %s is known only by its name: no header dump to build it from", r)
	}
	p, ok := platform.ByName(r.Platform)
	if !ok {
		return nil, fmt.Errorf("releases: unknown platform %q", r.Platform)
	}
	s := &Set{Release: r}
	for i := range r.Modules {
		cm := &r.Modules[i]
		b, err := buildModule(p, cm)
		if err != nil {
			return nil, fmt.Errorf("releases: %s %s: %w", r, cm.Name, err)
		}
		m, err := module.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("releases: %s %s: %w", r, cm.Name, err)
		}
		f := File{Name: cm.Name, Data: b, Module: m}
		if cm.IsUser() {
			s.App = &f
			continue
		}
		s.OS = append(s.OS, f)
	}
	v, _ := built.LoadOrStore(key, s)
	return v.(*Set), nil
}

// buildModule is one module: the slot's layout (suffix, product data) with the catalog's
// header values.
func buildModule(p *platform.Platform, cm *cache.Module) ([]byte, error) {
	sl, ok := p.SlotFor(cm.Function, cm.Index, cm.ModuleVersion)
	if !ok {
		sl, ok = p.Slot(cm.Function, cm.Index)
	}
	if !ok {
		return nil, fmt.Errorf("the %s has no slot for %s %d", p.DisplayName, cm.Function, cm.Index)
	}
	spec, err := module.SpecForSlot(p, sl, cm.ModuleVersion, cm.Deps...)
	if err != nil {
		return nil, err
	}
	spec.PlatformID = cm.PlatformID
	spec.Start = cm.Start
	spec.Size = int(cm.Size)
	spec.HeaderOffset = uint32(cm.PrefixOffset)
	spec.Flags = module.Flags(cm.Flags)
	spec.Seed = int64(cm.PlatformID)<<32 | int64(cm.Function)<<24 | int64(cm.Index)<<16 | int64(cm.ModuleVersion)
	if cm.Function == platform.FuncRadio {
		sim.SoftDeviceBody(&spec)
	}
	return module.Build(spec)
}

// Source is the catalog's buildable releases as a firmware source (target.Source) for
// virtual devices: what the demo and `pflash sim` flash, with no download.
type Source struct {
	Catalog *cache.Catalog
}

// Versions lists the releases that can be built for the platform, oldest first.
func (s Source) Versions(p *platform.Platform) []string {
	rels := s.Catalog.Releases(p.Name) // newest first
	var out []string
	for i := len(rels) - 1; i >= 0; i-- {
		if Buildable(rels[i]) {
			out = append(out, rels[i].Version)
		}
	}
	return out
}

// Release builds one of them.
func (s Source) Release(ctx context.Context, version string, p *platform.Platform) (*target.Release, error) {
	r, err := s.Catalog.Release(version, p.Name)
	if err != nil {
		return nil, err
	}
	set, err := Build(r)
	if err != nil {
		return nil, err
	}
	rel := &target.Release{Version: r.Version, OS: set.Modules()}
	if set.App != nil {
		rel.App = set.App.Module
	}
	return rel, nil
}
