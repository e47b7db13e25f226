package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	frun "github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/target"
	"github.com/particle-flasher/particle-flasher/flasher/usb"
)

// flashBus opens what the writing commands reach devices through: libusb and the
// serial ports. Its error is ready to return (exit code and remedy). Tests replace it (the
// simulator's serial ports are ptys the OS does not list).
var flashBus = func(g *globals) (device.Bus, func(), error) {
	h, err := usb.NewHost()
	if err != nil {
		return nil, nil, &exitError{code: exitCode(err), err: withRemedy(fmt.Errorf("opening USB: %w", err),
			"run `pflash doctor` to see what keeps pflash from USB")}
	}
	return &device.USB{Host: h}, func() {
		if err := h.Close(); err != nil {
			slog.Debug("closing libusb", "err", err)
		}
	}, nil
}

// flashTimeouts are the runner's timeouts; tests shorten them.
var flashTimeouts = frun.Timeouts{}

// flashStdin is where the confirmation is read from; tests replace it.
var flashStdin io.Reader = os.Stdin

type flashFlags struct {
	to, app, device, verify, stateDir string
	yes, force, allowSafe, leaveSetup bool
	dl                                cacheFlags
	noBootloader, noSoftDevice, noNCP bool
	watchdog                          time.Duration
}

func newFlashCmd(g *globals) *cobra.Command {
	var f flashFlags
	cmd := &cobra.Command{
		Use:   "flash --to VERSION|FILE|DIR|ZIP [--app FILE] [--device ID] [--yes]",
		Short: "Upgrade, downgrade or rescue a device: plan, write, verify, with the LED to expect at every step",
		Long: "flash reads what the device has, plans the way to the target (the same plan `pflash plan`\n" +
			"shows), asks before writing (unless --yes), then runs it: switching modes, writing over DFU\n" +
			"or control requests, waiting for the device to come back, and verifying that it starts\n" +
			"normally at exactly the target versions. Every step says what the RGB LED should do and\n" +
			"what to do if it does something else.\n\n" +
			"--to takes a Device OS version (resolved through the firmware cache: `pflash cache import`\n" +
			"seeds it without internet), a module file, a directory of module files or a .zip bundle.\n" +
			"--watchdog PERIOD cuts the DFU work into pieces that fit between two resets of a board's\n" +
			"external watchdog. --verify=readback also reads every written range back.\n\n" +
			"An interrupted run (crash, Ctrl-C, unplugged cable, power loss) is finished by running the\n" +
			"same command again: the device is read again and only what is missing is written. A\n" +
			"journal per device in --state-dir says where the last run stopped.\n\n" +
			"With --json, one event per line (plan, step, progress, led, waiting, step-done, retry,\n" +
			"verified, failed), ending with {\"event\": \"done\", \"result\": \"ok\"|\"failed\", \"error\": ...,\n" +
			"\"remedy\": ..., \"modules\": [...as inspect --json...]}.",
		Args: cobra.NoArgs,
		RunE: writeCommand(g, func(ctx context.Context) error { return runFlash(ctx, g, f) }),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.to, "to", "", "target: Device OS version, module file, directory of module files, or .zip bundle")
	fl.StringVar(&f.app, "app", "", "application (user part .bin) to install as well")
	fl.StringVar(&f.device, "device", "", "device ID (default: the only attached device)")
	fl.BoolVarP(&f.yes, "yes", "y", false, "do not ask before writing")
	fl.StringVar(&f.verify, "verify", "modules", "verification: modules, readback (read every written range back) or none")
	fl.DurationVar(&f.watchdog, "watchdog", 0, "period of the board's external watchdog (e.g. 15s): cut the DFU work to fit")
	writeFlags(fl, &f.stateDir, &f.dl)
	fl.BoolVar(&f.noBootloader, "no-bootloader", false, "leave the bootloader (and prebootloaders) as they are")
	fl.BoolVar(&f.noSoftDevice, "no-softdevice", false, "leave the SoftDevice as it is")
	fl.BoolVar(&f.noNCP, "no-ncp", false, "leave the NCP firmware as it is")
	fl.BoolVar(&f.force, "force", false, "rewrite modules that are already installed")
	fl.BoolVar(&f.allowSafe, "allow-safe-mode", false, "accept a plan whose predicted end is safe mode (e.g. the device ends without an application)")
	fl.BoolVar(&f.leaveSetup, "leave-setup-done", false, "leave the setup-done flag as it is (Gen3 before Device OS 4.0 then waits in listening mode until it is set)")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

// runFlash is `pflash flash`. In JSON mode every outcome, failures before the run
// included, ends with a done event.
func runFlash(ctx context.Context, g *globals, f flashFlags) (err error) {
	out := newFlashOutput(g)
	// Registered first so it runs last: the bars stop after the final done event.
	defer out.close()
	defer out.failDone(&err, f.device)
	verify, err := verifyMode(f.verify)
	if err != nil {
		return err
	}
	stateDir, err := journalDir(f.stateDir)
	if err != nil {
		return err
	}
	doors, closeDoors, err := flashBus(g)
	if err != nil {
		return err
	}
	defer closeDoors()

	// The device first: a Device OS version resolves per platform.
	dev, err := pickFlashDevice(ctx, doors, f.device)
	if err != nil {
		return err
	}
	tgt, err := flashTarget(ctx, g, f, dev.Platform)
	if err != nil {
		return err
	}
	tgt.Options = plan.Options{NoBootloader: f.noBootloader, NoSoftDevice: f.noSoftDevice, NoNCP: f.noNCP, AllowSafeMode: f.allowSafe, LeaveSetupDone: f.leaveSetup,
		Watchdog: f.watchdog, Verify: verify, Force: f.force}

	r := frun.New(frun.Options{Bus: doors, Events: out.event, Journal: &frun.Store{Dir: stateDir}, Timeouts: flashTimeouts})
	pr, err := r.Prepare(ctx, dev.ID, tgt)
	if err != nil {
		return &exitError{code: exitCode(err), err: err}
	}
	_, err = executeConfirmed(ctx, g, out, r, pr, f.yes, "Nothing to do: the device already has %s.")
	return err
}

// executeConfirmed shows the plan, asks before writing (unless yes) and runs it. The
// runner reports the outcome itself (failed and done events), so a failure comes back as
// errReported with its exit code. nothing is the line for an empty plan (%s: the target).
func executeConfirmed(ctx context.Context, g *globals, out *flashOutput, r *frun.Runner, pr *frun.Prepared, yes bool, nothing string) (*frun.Result, error) {
	out.showPlan(pr)
	if len(pr.Plan.Steps) == 0 {
		out.line(nothing, pr.Plan.To)
	}
	if !yes && len(pr.Plan.Steps) > 0 {
		if g.json {
			// What would have been done, for the script that forgot --yes.
			e := frun.PlanEvent(pr.Plan, pr.Reading.Mode, time.Now())
			e.DeviceID = pr.ID
			out.event(e)
		}
		if err := confirm(g, pr); err != nil {
			return nil, err
		}
	}
	out.needDone = false // the runner ends with its own done event
	res, err := r.Execute(ctx, pr)
	if err != nil {
		return nil, &exitError{code: exitCode(err), err: errReported}
	}
	return res, nil
}

func errText(err error) string {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.err.Error()
	}
	return err.Error()
}

// exitCode maps a failure to pflash's exit codes.
func exitCode(err error) int {
	var ee *exitError
	var pe *usb.PermissionError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &pe):
		return exitAccess
	case errors.Is(err, frun.ErrGone), errors.Is(err, device.ErrNotAttached):
		return exitNoDevice
	}
	return exitFailed
}

// withRemedy adds a remedy to err unless it carries its own (a permission error names the
// udev rule, which says more than a generic hint).
func withRemedy(err error, fix string) error {
	if remedy.Of(err) != "" {
		return err
	}
	return remedy.With(err, fix)
}

// pickFlashDevice finds the device to flash: the one named, or the only one attached.
func pickFlashDevice(ctx context.Context, doors device.Bus, id string) (device.Attached, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		devs, err := doors.List(ctx)
		if err != nil {
			var pe *usb.PermissionError
			if errors.As(err, &pe) {
				return device.Attached{}, &exitError{code: exitAccess, err: err}
			}
			return device.Attached{}, &exitError{code: exitFailed, err: err}
		}
		devs, problem := device.Readable(devs)
		var match []device.Attached
		for _, d := range devs {
			if id == "" || strings.EqualFold(d.ID, strings.TrimSpace(id)) {
				match = append(match, d)
			}
		}
		switch {
		case len(match) == 1 && match[0].Platform != nil:
			return match[0], nil
		case len(match) == 1:
			return device.Attached{}, &exitError{code: exitFailed, err: remedy.With(fmt.Errorf("the device %s is a platform this version does not know", match[0].ID), "update pflash")}
		case len(match) > 1:
			var ids []string
			for _, d := range match {
				ids = append(ids, d.ID)
			}
			return device.Attached{}, &exitError{code: exitUsage, err: remedy.With(fmt.Errorf("%d devices are attached (%s)", len(match), strings.Join(ids, ", ")),
				"say which one with --device ID")}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if problem != nil {
				// The device asked for may be the one that cannot be read.
				return device.Attached{}, &exitError{code: exitCode(problem), err: withRemedy(problem, "run `pflash doctor` to see what keeps pflash from the device")}
			}
			what := "no Particle device is attached"
			if id != "" {
				what = "no attached device has the ID " + id
			}
			return device.Attached{}, &exitError{code: exitNoDevice, err: remedy.With(errors.New(what),
				"check the USB cable (some only charge) and that the device is powered; `pflash list` shows the attached devices")}
		}
		select {
		case <-ctx.Done():
		case <-time.After(frun.DefaultPoll):
		}
	}
}

// flashTarget resolves --to and --app for a device of platform p with the engine's one
// resolver (flasher/target): a version through the firmware cache, files as they are.
func flashTarget(ctx context.Context, g *globals, f flashFlags, p *platform.Platform) (plan.Target, error) {
	var src target.Source
	if _, err := os.Stat(f.to); err != nil && target.LooksLikeVersion(f.to) {
		c, err := f.dl.open(g, nil)
		if err != nil {
			return plan.Target{}, err
		}
		src = target.FromCache{Cache: c}
	}
	tgt, err := target.Resolve(ctx, src, p, target.Spec{To: f.to, App: f.app})
	return tgt, resolveExit(err)
}

// resolveExit gives a resolver's error its exit status: 2 for something that is not a
// target at all, 1 otherwise.
func resolveExit(err error) error {
	var ee *exitError
	if err == nil || errors.As(err, &ee) {
		return err
	}
	if errors.Is(err, target.ErrBadSpec) {
		return &exitError{code: exitUsage, err: err}
	}
	return &exitError{code: exitFailed, err: err}
}

// confirm asks before writing; without a terminal to ask on, --yes is required.
func confirm(g *globals, pr *frun.Prepared) error {
	if g.json || !isTerminal(flashStdin) {
		return &exitError{code: exitUsage, err: remedy.With(errors.New("flashing needs confirmation"),
			"Look at the plan (`pflash plan` or the lines above) and run again with --yes.")}
	}
	fmt.Fprintf(g.stdout, "Write %d step(s) to the device %s? [y/N] ", len(pr.Plan.Steps), pr.ID)
	line, _ := bufio.NewReader(flashStdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return &exitError{code: exitFailed, err: errors.New("not confirmed: nothing was written")}
}

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// ---- output ---------------------------------------------------------------------------

// flashOutput renders the runner's events: JSON lines, or a progressView for a person
// (plain lines when stdout is not a terminal, bars that redraw in place when it is).
type flashOutput struct {
	g        *globals
	view     *progressView // nil in JSON mode
	needDone bool
}

func newFlashOutput(g *globals) *flashOutput {
	o := &flashOutput{g: g, needDone: true}
	if !g.json {
		o.view = newProgressView(g)
	}
	return o
}

// failDone ends a command that failed before the runner could report it: a done event
// with the error and the remedy, so that a JSON stream always ends with one (the runner
// sends its own once it has started).
func (o *flashOutput) failDone(errp *error, device string) {
	err := *errp
	if err == nil || !o.needDone {
		return
	}
	o.event(frun.Event{Event: frun.EvDone, Time: time.Now(), DeviceID: device, Result: frun.ResultFailed,
		Error: errText(err), Remedy: withCommand(remedy.Of(err), err)})
	if o.g.json {
		*errp = &exitError{code: exitCode(err), err: errReported}
	}
}

// verifyMode parses --verify.
func verifyMode(s string) (plan.VerifyMode, error) {
	v, ok := plan.ParseVerifyMode(s)
	if !ok {
		return v, &exitError{code: exitUsage, err: remedy.With(fmt.Errorf("unknown --verify %q", s), "Use modules, readback or none.")}
	}
	return v, nil
}

// journalDir is --state-dir, or the per-user default.
func journalDir(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	dir, err := frun.DefaultStateDir()
	if err != nil {
		return "", remedy.With(err, "Give --state-dir DIR.")
	}
	return dir, nil
}

// close stops the bars; anything printed after it goes below them.
func (o *flashOutput) close() {
	if o.view != nil {
		o.view.Close()
	}
}

func (o *flashOutput) line(format string, a ...any) {
	if o.view != nil {
		o.view.Line(format, a...)
	}
}

func (o *flashOutput) showPlan(pr *frun.Prepared) {
	if o.view == nil {
		return
	}
	o.view.Line("%s", strings.TrimSuffix(pr.Plan.String(), "\n"))
	if pr.Journal != nil {
		o.line("An earlier run to %s stopped %s; this run finishes it.", pr.Journal.Target, pr.Journal.Where())
	}
}

func (o *flashOutput) event(e frun.Event) {
	if o.view == nil {
		if err := o.g.emit(e); err != nil {
			slog.Debug("flash: output", "err", err)
		}
		return
	}
	o.view.Event(e)
}
