package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/particle-flasher/particle-flasher/flasher/modfile"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	frun "github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/state"
	"github.com/particle-flasher/particle-flasher/flasher/target"
)

type planFlags struct {
	to, app, device, platform, mode, verify string
	from                                    []string
	force, allowSafe, leaveSetup            bool
	protection                              string
	dl                                      cacheFlags
	noBootloader, noSoftDevice, noNCP       bool
	watchdog                                time.Duration
}

func newPlanCmd(g *globals) *cobra.Command {
	var f planFlags
	cmd := &cobra.Command{
		Use:   "plan --to TARGET [--from FILES|DIR] [--app FILE]",
		Short: "Show the ordered steps that would take a device to a Device OS version or a set of module files",
		Long: "plan works out how to bring a device to the target - which modules to write, in which order,\n" +
			"by which method (DFU, OTA region, control request), at which address - and prints it with the\n" +
			"LED to expect at every step and what to do if it shows something else. Nothing is written.\n\n" +
			"--to takes a module file, a directory of module files, a .zip bundle (Device Restore or\n" +
			"release), or a Device OS version (resolved through the firmware cache; needs the platform).\n" +
			"The device is the attached one (--device ID, or the only one when --to is a version and\n" +
			"nothing else describes it), read as `pflash flash` reads it; or it is described by\n" +
			"--from FILES|DIR (the modules it has; --mode says what it runs); or not at all, in which\n" +
			"case every part of the target is planned.\n\n" +
			"A user part inside the target (the release's Tinker) is used only when the device's own\n" +
			"application cannot run on the target; --app FILE installs an application.",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			pl, err := runPlan(ctx, g, f)
			if pl != nil {
				if g.json {
					if e := g.emit(pl); e != nil {
						return e
					}
				} else {
					fmt.Fprint(g.stdout, pl.String())
				}
			}
			if err == nil {
				return nil
			}
			var ee *exitError
			if !errors.As(err, &ee) {
				ee = &exitError{code: exitFailed, err: err}
			}
			if g.json {
				out := map[string]string{"error": ee.err.Error()}
				if r := remedy.Of(ee.err); r != "" {
					out["remedy"] = withCommand(r, ee.err)
				}
				if e := g.emit(out); e != nil {
					return e
				}
				return &exitError{code: ee.code, err: errReported}
			}
			return ee
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.to, "to", "", "target: module file, directory of module files, .zip bundle, or Device OS version")
	fl.StringSliceVar(&f.from, "from", nil, "describe the device by the module files (or directories, .zip) it holds")
	fl.StringVar(&f.app, "app", "", "application (user part .bin) to install")
	fl.StringVar(&f.device, "device", "", "plan for the attached device with this ID (default with --to VERSION and no --from/--platform: the only attached device)")
	f.dl.register(fl)
	fl.StringVar(&f.platform, "platform", "", "platform (name or ID) when no file says it, e.g. for --to VERSION")
	fl.StringVar(&f.mode, "mode", "", "what the device runs: normal, dfu, safe, listening (default normal with --from, else unknown)")
	fl.StringVar(&f.protection, "protection", "", "the device's Device Protection (Device OS 6.x): open, protected or service (Service Mode)")
	fl.DurationVar(&f.watchdog, "watchdog", 0, "external watchdog period (e.g. 15s): cut the DFU work to fit")
	fl.BoolVar(&f.noBootloader, "no-bootloader", false, "leave the bootloader (and prebootloaders) as they are")
	fl.BoolVar(&f.noSoftDevice, "no-softdevice", false, "leave the SoftDevice as it is")
	fl.BoolVar(&f.noNCP, "no-ncp", false, "leave the NCP firmware as it is")
	fl.StringVar(&f.verify, "verify", "modules", "verification: modules, readback or none")
	fl.BoolVar(&f.force, "force", false, "rewrite modules that are already installed; warn instead of refusing unmet dependencies")
	fl.BoolVar(&f.allowSafe, "allow-safe-mode", false, "accept a plan whose predicted end is safe mode (e.g. the device ends without an application)")
	fl.BoolVar(&f.leaveSetup, "leave-setup-done", false, "leave the setup-done flag as it is (Gen3 before Device OS 4.0 then waits in listening mode until it is set)")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func planUsage(err error, rem string) error {
	return &exitError{code: exitUsage, err: remedy.With(err, rem)}
}

// runPlan resolves the flags into a device state and a target and plans.
func runPlan(ctx context.Context, g *globals, f planFlags) (*plan.Plan, error) {
	verify, err := verifyMode(f.verify)
	if err != nil {
		return nil, err
	}
	// A version with nothing said about the device plans for the attached one, as
	// `pflash flash` would: the plan shown is the plan flash runs.
	if f.device != "" || (target.LooksLikeVersion(f.to) && len(f.from) == 0 && f.platform == "") {
		return planAttached(ctx, g, f, verify)
	}

	var from []*module.Module
	for _, p := range f.from {
		mods, err := loadModules(p)
		if err != nil {
			return nil, err
		}
		from = append(from, mods...)
	}
	mode := state.ModeUnknown
	if len(f.from) > 0 {
		mode = state.ModeNormal
	}
	if f.mode != "" {
		m, ok := state.ParseMode(f.mode)
		if !ok {
			return nil, planUsage(fmt.Errorf("unknown --mode %q", f.mode), "Use normal, dfu, safe, listening or unknown.")
		}
		mode = m
	}

	var p *platform.Platform
	if f.platform != "" {
		if p, err = parsePlatform(f.platform); err != nil {
			return nil, err
		}
	}
	p = platformOf(p, from)

	var src target.Source
	if _, err := os.Stat(f.to); err != nil && target.LooksLikeVersion(f.to) && p != nil {
		c, err := f.dl.open(g, nil)
		if err != nil {
			return nil, err
		}
		src = target.FromCache{Cache: c}
	}
	tgt, err := target.Resolve(ctx, src, p, target.Spec{To: f.to, App: f.app})
	if err != nil {
		return nil, resolveExit(err)
	}
	p = platformOf(p, tgt.Modules)
	if tgt.App != nil {
		p = platformOf(p, []*module.Module{tgt.App})
	}
	if p == nil {
		return nil, planUsage(errors.New("the platform is not known"), "Add --platform NAME.")
	}
	tgt.Options = plan.Options{
		NoBootloader: f.noBootloader, NoSoftDevice: f.noSoftDevice, NoNCP: f.noNCP,
		Watchdog: f.watchdog, Verify: verify, Force: f.force, AllowSafeMode: f.allowSafe, LeaveSetupDone: f.leaveSetup,
	}
	st := state.FromFiles(p, mode, from)
	if f.protection != "" {
		pr, ok := state.ParseProtection(f.protection)
		if !ok {
			return nil, planUsage(fmt.Errorf("unknown --protection %q", f.protection), "Use open, protected or service.")
		}
		st.Protection = pr
	}
	return plan.Make(st, tgt)
}

// planAttached reads the attached device (the one named by --device, or the only one) and
// plans, exactly as `pflash flash` does before it asks; nothing is written.
func planAttached(ctx context.Context, g *globals, f planFlags, verify plan.VerifyMode) (*plan.Plan, error) {
	if len(f.from) > 0 || f.mode != "" || f.protection != "" {
		return nil, planUsage(errors.New("--device reads the device: --from, --mode and --protection describe one that is not attached"),
			"Give either --device ID or --from FILES.")
	}
	doors, closeDoors, err := flashBus(g)
	if err != nil {
		return nil, err
	}
	defer closeDoors()
	dev, err := pickFlashDevice(ctx, doors, f.device)
	if err != nil {
		return nil, err
	}
	tgt, err := flashTarget(ctx, g, flashFlags{to: f.to, app: f.app, dl: f.dl}, dev.Platform)
	if err != nil {
		return nil, err
	}
	tgt.Options = plan.Options{NoBootloader: f.noBootloader, NoSoftDevice: f.noSoftDevice, NoNCP: f.noNCP,
		Watchdog: f.watchdog, Verify: verify, Force: f.force, AllowSafeMode: f.allowSafe, LeaveSetupDone: f.leaveSetup}
	pr, err := frun.New(frun.Options{Bus: doors, Timeouts: flashTimeouts}).Prepare(ctx, dev.ID, tgt)
	if err != nil {
		var pl *plan.Plan
		if pr != nil {
			pl = pr.Plan // made, but ending where nobody accepted: shown with the reason
		}
		return pl, &exitError{code: exitCode(err), err: err}
	}
	return pr.Plan, nil
}

// platformOf keeps a known platform, or takes the first module's.
func platformOf(p *platform.Platform, mods []*module.Module) *platform.Platform {
	if p != nil {
		return p
	}
	for _, m := range mods {
		if pp, ok := platform.ByID(m.PlatformID); ok {
			return pp
		}
	}
	return nil
}

// loadModules reads a module file, every .bin in a directory, or every .bin in a .zip.
// A file that is not a module fails the command (exit 1); a path or bundle that holds no
// modules is a wrong argument (exit 2).
func loadModules(path string) ([]*module.Module, error) {
	b, err := modfile.Load(path)
	if err == nil {
		return b.Modules(), nil
	}
	code := exitUsage
	if errors.Is(err, modfile.ErrNotModule) {
		code = exitFailed
	}
	return nil, &exitError{code: code, err: err}
}
