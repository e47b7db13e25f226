// Package target resolves what a person asks for into the module files a plan needs: a
// Device OS version, module files, a folder of them or a .zip bundle, for one platform,
// and an application. It is the one resolver: `pflash flash`, `plan`, `restore`,
// `factory` and `sim`, and the app's Devices and Factory tabs all go through Resolve, so a
// version means the same files wherever it is chosen, and a factory bench resolves it for
// each unit's own platform.
package target

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	cache "github.com/particle-flasher/particle-flasher/firmware-cache"
	"github.com/particle-flasher/particle-flasher/flasher/modfile"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// Errors Resolve can end with (besides the source's and the files' own).
var (
	// ErrNoSuchRelease: the version was never released for the platform.
	ErrNoSuchRelease = errors.New("no such release for this platform")
	// ErrBadSpec: what was asked for is not a target at all (a path that does not exist
	// and is not a version, a folder without modules, an application file holding several).
	ErrBadSpec = errors.New("not a usable target")
)

// kindError is a refusal in its own words that matches one of the errors above.
type kindError struct {
	msg  string
	kind error
}

func (e kindError) Error() string        { return e.msg }
func (e kindError) Is(target error) bool { return target == e.kind }

// specError keeps the cause's words and matches ErrBadSpec.
type specError struct{ error }

func (e specError) Unwrap() error        { return e.error }
func (e specError) Is(target error) bool { return target == ErrBadSpec }

// badSpec marks a file's problem as the spec's, unless the file is there but damaged (not
// a module: modfile.ErrNotModule), which is the file's.
func badSpec(err error) error {
	if err == nil || errors.Is(err, modfile.ErrNotModule) {
		return err
	}
	return specError{err}
}

// Release is one Device OS release as a Source has it: its Device OS parts, and the
// application it ships (Tinker, Tracker Edge; nil when it ships none or it cannot be had).
type Release struct {
	Version string
	OS      []*module.Module
	App     *module.Module
	// Files names where the modules came from (asset names), for people.
	Files []string
}

// Source gives Device OS releases: the firmware cache (downloading what it lacks unless
// offline), or releases built from their header dumps for virtual devices.
type Source interface {
	// Versions lists the versions published for a platform, oldest first.
	Versions(p *platform.Platform) []string
	// Release gets one of them.
	Release(ctx context.Context, version string, p *platform.Platform) (*Release, error)
}

// Spec is what a person asked for.
type Spec struct {
	// Version is a Device OS version ("4.1.0", "v4.1.0"); or To names a file, a folder of
	// module files or a .zip bundle (a version too, when it is one and no such file exists).
	Version string
	To      string
	// Files are module files already loaded (the app's Local files...).
	Files *modfile.Bundle
	// App is the application to install: a path, or AppModule when already loaded.
	App       string
	AppModule *module.Module
	Options   plan.Options
}

var versionRE = regexp.MustCompile(`^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$`)

// LooksLikeVersion reports a string shaped like a Device OS version.
func LooksLikeVersion(s string) bool { return versionRE.MatchString(strings.TrimSpace(s)) }

// Resolve turns the spec into a plan target for a device of platform p (which only a
// version needs; files say their platform and the planner checks it). A version comes
// from the source with the release's application as the replacement for one the target
// cannot run; a version the platform never got is refused with its releases named; files
// must be for p (the planner checks every module's platform); a lone application among
// them is the application to install.
func Resolve(ctx context.Context, src Source, p *platform.Platform, s Spec) (plan.Target, error) {
	tgt := plan.Target{Options: s.Options}
	version := strings.TrimPrefix(strings.TrimSpace(s.Version), "v")
	bundle := s.Files
	if s.To != "" && bundle == nil {
		if _, err := os.Stat(s.To); err == nil {
			b, err := modfile.Load(s.To)
			if err != nil {
				return tgt, badSpec(err)
			}
			bundle = b
		} else if LooksLikeVersion(s.To) {
			version = strings.TrimPrefix(strings.TrimSpace(s.To), "v")
		} else {
			return tgt, badSpec(remedy.With(fmt.Errorf("%s: no such file or directory, and not a Device OS version", s.To),
				"Give a version such as 4.1.0, a module file, a directory of modules or a .zip bundle."))
		}
	}
	var files []*module.Module
	if bundle != nil {
		if p != nil {
			b, err := bundle.For(p)
			if err != nil {
				return tgt, err
			}
			bundle = b
		}
		files = bundle.Modules()
		tgt.Notes, tgt.Warnings = bundle.Notes, bundle.Warnings()
	}
	switch {
	case files != nil:
		rest, assets := splitAssets(files)
		tgt.Assets = assets
		if len(rest) == 1 && rest[0].Function == platform.FuncUser && s.App == "" && s.AppModule == nil {
			tgt.App = rest[0] // an application (and its assets): install it
		} else {
			tgt.Modules = rest
		}
		// Unnamed: the plan names the target by the Device OS its files make up.
	case version != "":
		if p == nil {
			return tgt, badSpec(remedy.With(fmt.Errorf("Device OS %s: the device's platform is not known", version),
				"Connect the device so its platform can be read, or say which platform it is (--platform NAME)."))
		}
		if src == nil {
			return tgt, remedy.With(fmt.Errorf("Device OS %s: no firmware source to get it from", version), "Give the release's files instead.")
		}
		if err := Published(src, p, version); err != nil {
			return tgt, err
		}
		rel, err := src.Release(ctx, version, p)
		if err != nil {
			return tgt, err
		}
		tgt.Name, tgt.Modules, tgt.ReplacementApp = version, rel.OS, rel.App
	}
	switch {
	case s.AppModule != nil:
		tgt.App = s.AppModule
	case s.App != "":
		b, err := modfile.Load(s.App)
		if err != nil {
			return tgt, badSpec(err)
		}
		rest, assets := splitAssets(b.Modules())
		if len(rest) != 1 || rest[0].Function != platform.FuncUser {
			return tgt, badSpec(remedy.With(fmt.Errorf("%s holds %d modules besides assets, not one application", s.App, len(rest)),
				"Give one application .bin file, or particle-cli's .zip bundle of it with its assets."))
		}
		tgt.App = rest[0]
		tgt.Assets = append(tgt.Assets, assets...)
		tgt.Warnings = append(tgt.Warnings, b.Warnings()...)
	}
	return tgt, nil
}

// splitAssets separates asset modules (an application's asset files) from the rest.
func splitAssets(mods []*module.Module) (rest, assets []*module.Module) {
	for _, m := range mods {
		if m.Function == platform.FuncAsset {
			assets = append(assets, m)
		} else {
			rest = append(rest, m)
		}
	}
	return rest, assets
}

// Published checks that the platform got the version, and says which it got when not.
// A version older than the platform's first Device OS is refused naming that first one.
func Published(src Source, p *platform.Platform, version string) error {
	if err := BeforeFirst(p, version); err != nil {
		return err
	}
	vs := src.Versions(p)
	for _, v := range vs {
		if v == version {
			return nil
		}
	}
	if len(vs) == 0 {
		return remedy.With(fmt.Errorf("Device OS %s for the %s: %w (no releases are known for it)", version, p.DisplayName, ErrNoSuchRelease),
			"Give the release's files instead.")
	}
	return remedy.With(fmt.Errorf("Device OS %s was never released for the %s: %w; its releases are %s", version, p.DisplayName, ErrNoSuchRelease, span(vs)),
		fmt.Sprintf("Choose one of the %s's releases, e.g. %s.", p.DisplayName, vs[len(vs)-1]))
}

// BeforeFirst refuses a Device OS version older than the platform's first
// (platform.FirstDeviceOS): nil when it is not.
func BeforeFirst(p *platform.Platform, version string) error {
	if p.FirstDeviceOS == "" || cache.CompareVersions(version, p.FirstDeviceOS) >= 0 {
		return nil
	}
	return remedy.With(kindError{fmt.Sprintf("Device OS %s is older than the %s, whose first Device OS is %s", version, p.DisplayName, p.FirstDeviceOS), ErrNoSuchRelease},
		fmt.Sprintf("Choose Device OS %s or newer.", p.FirstDeviceOS))
}

// span names a list of versions briefly: "1.4.4, 1.5.2, ... 3.3.1 (28 releases)".
func span(vs []string) string {
	if len(vs) <= 6 {
		return strings.Join(vs, ", ")
	}
	return fmt.Sprintf("%s, %s, %s ... %s, %s (%d releases)", vs[0], vs[1], vs[2], vs[len(vs)-2], vs[len(vs)-1], len(vs))
}
