package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/led"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	frun "github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// restoreFlags are `pflash restore`'s flags.
type restoreFlags struct {
	flashFlags
	platform string
	wait     time.Duration
}

// restorePoll is how often the doors are asked whether a device has appeared.
var restorePoll = frun.DefaultPoll

// evRestoreDiagnosis is the first JSON object of `pflash restore --json` once the device
// has been read: what was wrong with it.
const evRestoreDiagnosis = "restore-diagnosis"

func newRestoreCmd(g *globals) *cobra.Command {
	var f restoreFlags
	cmd := &cobra.Command{
		Use:   "restore --to VERSION|FILES [--device ID] [--platform NAME] [--app FILE] [--yes]",
		Short: "Bring a bricked or safe-mode device back to a Device OS version, guiding it into DFU mode if needed",
		Long: "restore is flash for a device in trouble: one stuck in DFU mode (blinking yellow), in safe\n" +
			"mode (breathing magenta) or that does not answer at all.\n\n" +
			"If no device is visible (or the one named with --device does not answer), restore does not\n" +
			"fail: it says how to put the device in DFU mode with its buttons (give --platform for the\n" +
			"exact sequence of your board) and the LED to expect, and waits up to --wait for it to\n" +
			"appear. It then reads the device, says what is wrong (missing or corrupt system parts, a\n" +
			"corrupt application, why it is in safe mode), writes every part of Device OS the device\n" +
			"lacks or has damaged (bootloader, SoftDevice or NCP where the target has them, system parts),\n" +
			"replaces a corrupt or incompatible application with the release's Tinker (from the\n" +
			"firmware cache) or --app, verifies, and says what the device was and what it is now.\n\n" +
			"With --json: a {\"event\": \"restore-diagnosis\", ...} object once the device is read, then\n" +
			"the same events as flash, ending with {\"event\": \"done\", ...}; while waiting for the\n" +
			"device, a \"waiting\" event with buttons: true, the button sequence and the LED.",
		Args: cobra.NoArgs,
		RunE: writeCommand(g, func(ctx context.Context) error { return runRestore(ctx, g, f) }),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.to, "to", "", "target: Device OS version, module file, directory of module files, or .zip bundle")
	fl.StringVar(&f.app, "app", "", "application (user part .bin) to install instead of the release's Tinker")
	fl.StringVar(&f.device, "device", "", "device ID (default: the only attached device)")
	fl.StringVar(&f.platform, "platform", "", "the board (argon, boron, p2, ...): exact button instructions when no device answers")
	fl.DurationVar(&f.wait, "wait", 2*time.Minute, "how long to wait for the device to appear in DFU mode")
	fl.BoolVarP(&f.yes, "yes", "y", false, "do not ask before writing")
	fl.StringVar(&f.verify, "verify", "modules", "verification: modules, readback (read every written range back) or none")
	writeFlags(fl, &f.stateDir, &f.dl)
	fl.BoolVar(&f.force, "force", false, "rewrite even the modules that are intact and at the target version")
	fl.BoolVar(&f.allowSafe, "allow-safe-mode", false, "accept a plan whose predicted end is safe mode (e.g. the device ends without an application)")
	fl.BoolVar(&f.leaveSetup, "leave-setup-done", false, "leave the setup-done flag as it is (Gen3 before Device OS 4.0 then waits in listening mode until it is set)")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

// runRestore is `pflash restore`. In JSON mode every outcome ends with a done event.
func runRestore(ctx context.Context, g *globals, f restoreFlags) (err error) {
	out := newFlashOutput(g)
	defer out.close()
	defer out.failDone(&err, f.device)
	verify, err := verifyMode(f.verify)
	if err != nil {
		return err
	}
	var plat *platform.Platform
	if f.platform != "" {
		if plat, err = parsePlatform(f.platform); err != nil {
			return err
		}
	}
	if f.wait <= 0 {
		return &exitError{code: exitUsage, err: remedy.With(fmt.Errorf("--wait %s: must be positive", f.wait),
			"Give how long to wait for the device, e.g. --wait 2m.")}
	}
	stateDir, err := journalDir(f.stateDir)
	if err != nil {
		return err
	}
	store := &frun.Store{Dir: stateDir}
	doors, closeDoors, err := flashBus(g)
	if err != nil {
		return err
	}
	defer closeDoors()

	dev, err := waitRestoreDevice(ctx, g, out, doors, store, f, plat, false, "No device answers.")
	if err != nil {
		return err
	}
	if plat != nil && plat.ID != dev.Platform.ID {
		return &exitError{code: exitUsage, err: remedy.With(fmt.Errorf("the device %s is %s %s, not %s %s", dev.ID, platform.Article(dev.Platform.DisplayName), dev.Platform.DisplayName, platform.Article(plat.DisplayName), plat.DisplayName),
			"Give the right --platform (or leave it out: the device says what it is).")}
	}
	// --no-bootloader and friends do not exist here: a restore rewrites every part of
	// Device OS the device lacks or has damaged.
	tgt, err := flashTarget(ctx, g, f.flashFlags, dev.Platform)
	if err != nil {
		return err
	}
	// No Force by default, on purpose: the planner already rewrites every module the
	// device lacks, every one that fails its CRC or another check (Installed.Valid false
	// never counts as "already installed", see plan's sameModule) and every one whose CRC
	// or hash differs from the target's at the same version (another build). What it
	// skips is byte for byte the target's module, intact: rewriting it repairs nothing
	// and costs minutes (a SoftDevice, an NCP). Force would also turn refusals (unmet
	// dependencies) into warnings, which a rescue must not do silently. --force is there
	// for the person who distrusts the device's own checks.
	tgt.Options = plan.Options{Verify: verify, Force: f.force, AllowSafeMode: f.allowSafe, LeaveSetupDone: f.leaveSetup}

	r := frun.New(frun.Options{Bus: doors, Events: out.event, Journal: store, Timeouts: flashTimeouts})
	pr, err := r.Prepare(ctx, dev.ID, tgt)
	if err != nil && !dev.DFU && answersNot(err) {
		// Listed but not answering (a firmware that hangs USB, a crash loop): the bootloader's
		// DFU mode does not depend on Device OS, so a person's hands get it there.
		f.device = dev.ID
		dev, err = waitRestoreDevice(ctx, g, out, doors, store, f, dev.Platform, true,
			fmt.Sprintf("The device %s is attached but does not answer (%v).", dev.ID, err))
		if err != nil {
			return err
		}
		pr, err = r.Prepare(ctx, dev.ID, tgt)
	}
	if err != nil {
		return &exitError{code: exitCode(err), err: err}
	}
	before := diagnose(pr.Reading, tgt)
	if g.json {
		if err := g.emit(restoreDiagnosisJSON(pr, before)); err != nil {
			return err
		}
	} else {
		out.line("%s", before.text(pr.Plan.Platform))
	}
	res, err := executeConfirmed(ctx, g, out, r, pr, f.yes, "Nothing to write: the device already has %s, intact.")
	if err != nil {
		return err
	}
	if !g.json {
		out.line("Before: %s", before.summary())
		out.line("Now: %s", nowSummary(res))
	}
	return nil
}

// answersNot reports whether a failure to read a device may be cured by putting it in DFU
// mode by hand: not a refusal of the plan, a permission problem or a cancel.
func answersNot(err error) bool {
	var pe *plan.Error
	var se *plan.SteppingStoneError
	switch {
	case errors.As(err, &pe), errors.As(err, &se), errors.Is(err, context.Canceled), errors.Is(err, frun.ErrCancelled),
		exitCode(err) == exitAccess:
		return false
	}
	return true
}

// waitRestoreDevice finds the device to restore. When none answers it tells the person how
// to put the device in DFU mode (exactly, when the platform is known from --platform or
// the device's journal) and waits up to f.wait for one to appear (dfuOnly: for the device
// to appear in DFU mode; lead says why the person is asked).
func waitRestoreDevice(ctx context.Context, g *globals, out *flashOutput, doors device.Bus, store *frun.Store,
	f restoreFlags, plat *platform.Platform, dfuOnly bool, lead string) (device.Attached, error) {
	id := strings.ToLower(strings.TrimSpace(f.device))
	find := func() (device.Attached, bool, error) {
		devs, err := doors.List(ctx)
		if err != nil {
			return device.Attached{}, false, &exitError{code: exitCode(err), err: withRemedy(err, "run `pflash doctor` to see what keeps pflash from USB")}
		}
		devs, problem := device.Readable(devs)
		var match []device.Attached
		for _, d := range devs {
			if (id == "" || strings.EqualFold(d.ID, id)) && (d.DFU || !dfuOnly) {
				match = append(match, d)
			}
		}
		if len(match) == 0 && problem != nil {
			// Pressing buttons does not help a device pflash may not open.
			return device.Attached{}, false, &exitError{code: exitCode(problem), err: withRemedy(problem, "run `pflash doctor` to see what keeps pflash from the device")}
		}
		switch {
		case len(match) == 1 && match[0].Platform == nil:
			return device.Attached{}, false, &exitError{code: exitFailed, err: remedy.With(fmt.Errorf("the device %s is a platform this version does not know", match[0].ID), "update pflash")}
		case len(match) == 1:
			return match[0], true, nil
		case len(match) > 1:
			var ids []string
			for _, d := range match {
				ids = append(ids, d.ID)
			}
			return device.Attached{}, false, &exitError{code: exitUsage, err: remedy.With(fmt.Errorf("%d devices are attached (%s)", len(match), strings.Join(ids, ", ")),
				"say which one with --device ID")}
		}
		return device.Attached{}, false, nil
	}
	if d, ok, err := find(); ok || err != nil {
		return d, err
	}

	// Nobody answers: a person has to help.
	if plat == nil && id != "" {
		// The journal of an earlier run remembers what board this ID is.
		if j, err := store.Load(id); err == nil && j != nil {
			plat, _ = platform.ByName(j.Platform)
		}
	}
	who := "the device"
	if id != "" {
		who = "the device " + id
	}
	e := frun.Event{Event: frun.EvWaiting, Time: time.Now(), DeviceID: id, Buttons: true,
		Waiting: who + " in DFU mode", TimeoutSeconds: f.wait.Seconds(), Mode: state.ModeDFU.String()}
	guide := led.Expect(plat, led.GoalDFU)
	e.LED = &frun.LEDGuidance{Expect: guide.Expect.String(), Text: guide.Text}
	for _, r := range guide.IfNot {
		seen := "anything else"
		if !r.Seen.IsZero() {
			seen = r.Seen.String()
		}
		e.LED.IfNot = append(e.LED.IfNot, frun.LEDRemedy{Seen: seen, Do: r.Do})
	}
	e.Message = "Put it in DFU mode: " + led.Buttons(plat, led.GoalDFU)
	if plat == nil {
		e.Message += " " + boardsThatDiffer()
	}
	if !g.json {
		out.line("%s %s", lead, strings.ToUpper(who[:1])+who[1:]+" has to be put in DFU mode by hand.")
	}
	out.event(e)

	deadline := time.NewTimer(f.wait)
	defer deadline.Stop()
	tick := time.NewTicker(restorePoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return device.Attached{}, &exitError{code: exitFailed, err: remedy.With(fmt.Errorf("stopped while waiting for %s: %w", who, ctx.Err()),
				"run the same command again when the device is in DFU mode")}
		case <-deadline.C:
			what := "no Particle device appeared"
			if id != "" {
				what = "the device " + id + " did not appear"
			}
			return device.Attached{}, &exitError{code: exitNoDevice, err: remedy.With(fmt.Errorf("%s within %s", what, f.wait),
				"Check the USB cable (some only charge) and that the LED blinks yellow (DFU mode) after the button sequence; "+
					"then run the same command again, with a longer --wait if you need more time. `pflash list` shows what is attached.")}
		case <-tick.C:
			if d, ok, err := find(); ok || err != nil {
				if ok && !g.json {
					out.line("Found %s (%s, %s).", d.ID, d.Platform.DisplayName, map[bool]string{true: "DFU mode", false: "running Device OS"}[d.DFU])
				}
				return d, err
			}
		}
	}
}

// boardsThatDiffer names the boards whose DFU button sequence is not the generic one.
func boardsThatDiffer() string {
	var setup, noButton []string
	for _, p := range platform.All() {
		switch {
		case led.TimelineFor(p, led.GoalDFU) == nil:
			noButton = append(noButton, p.DisplayName)
		case led.ModeButton(p) != led.ButtonMode:
			setup = append(setup, fmt.Sprintf("the %s calls MODE %q", p.DisplayName, led.ModeButton(p)))
		}
	}
	s := "Boards differ: " + strings.Join(setup, "; ")
	if len(noButton) > 0 {
		if len(setup) > 0 {
			s += "; "
		}
		s += "on " + strings.Join(noButton, ", ") + " MODE and RESET are carrier-board signals"
	}
	return s + ". Give --platform NAME for your board's exact sequence."
}

// diagnosis is what was wrong with a device when restore first read it.
type diagnosis struct {
	Mode     string   `json:"mode"`
	DeviceOS string   `json:"device_os,omitempty"`
	Problems []string `json:"problems"`
}

// diagnose reads the first reading for the problems a person should be told about: the
// parts of Device OS the target has that the device lacks, modules that fail their
// checks, dependencies that are not met, and why that leaves it in DFU or safe mode.
func diagnose(rd *frun.Reading, tgt plan.Target) diagnosis {
	d := diagnosis{Mode: rd.Mode.String(), DeviceOS: rd.State.DeviceOSName()}
	for _, m := range rd.State.Installed() {
		if m.Intact() {
			continue
		}
		what := strings.Join(m.Failed(), ", ")
		if m.Problem != "" {
			what = m.Problem
		}
		d.Problems = append(d.Problems, fmt.Sprintf("%s is corrupt or invalid (%s)", moduleName(m), what))
	}
	seen := map[string]bool{}
	for _, m := range tgt.Modules {
		k := fmt.Sprintf("%d/%d", m.Function, m.Index)
		if seen[k] || m.Function == platform.FuncUser || m.Function == platform.FuncNCP {
			// An absent application is told by the boot reason; NCP firmware is invisible over DFU.
			continue
		}
		seen[k] = true
		if _, ok := rd.State.Main(m.Function, m.Index); !ok {
			d.Problems = append(d.Problems, m.SlotName()+" is missing")
		}
	}
	if rd.Boot.Why != "" && rd.Boot.Cause != state.CauseSystemBroken {
		d.Problems = append(d.Problems, rd.Boot.Why)
	}
	sort.Strings(d.Problems)
	return d
}

func moduleName(m state.Module) string {
	if m.Name != "" {
		return fmt.Sprintf("%s (version %d)", m.Name, m.Version)
	}
	return fmt.Sprintf("%s %d (version %d)", m.Function, m.Index, m.Version)
}

// summary says it in one line.
func (d diagnosis) summary() string {
	s := modeWords(d.Mode)
	if d.DeviceOS != "" {
		s += ", Device OS " + d.DeviceOS
	}
	if len(d.Problems) == 0 {
		return s + ", no damaged or missing module found"
	}
	return s + "; " + strings.Join(d.Problems, "; ")
}

// text explains the diagnosis before the plan.
func (d diagnosis) text(p *platform.Platform) string {
	name := "device"
	if p != nil {
		name = p.DisplayName
	}
	var b strings.Builder
	fmt.Fprintf(&b, "The %s is in %s", name, modeWords(d.Mode))
	switch {
	case len(d.Problems) == 0:
		b.WriteString(" and nothing is missing or damaged.")
	case d.Mode == state.ModeDFU.String():
		// Not "because": a person may have put it there; but a device that cannot start
		// Device OS stays there by itself, and the list below says why it could not.
		b.WriteString("; what keeps it from starting normally:")
	case d.Mode == state.ModeSafe.String():
		b.WriteString(", because:")
	default:
		b.WriteString(", but:")
	}
	for _, pr := range d.Problems {
		b.WriteString("\n  - " + pr)
	}
	return b.String()
}

func modeWords(mode string) string {
	switch mode {
	case state.ModeDFU.String():
		return "DFU mode (blinking yellow)"
	case state.ModeSafe.String():
		return "safe mode (breathing magenta)"
	case state.ModeListening.String():
		return "listening mode (blinking dark blue)"
	case state.ModeNormal.String():
		return "normal mode"
	}
	return mode + " mode"
}

// restoreDiagnosisJSON is the first object of `pflash restore --json`.
func restoreDiagnosisJSON(pr *frun.Prepared, d diagnosis) any {
	return struct {
		Event    string         `json:"event"`
		Time     time.Time      `json:"time"`
		DeviceID string         `json:"device_id"`
		Platform string         `json:"platform"`
		To       string         `json:"to"`
		Summary  string         `json:"summary"`
		Modules  []state.Module `json:"modules"`
		diagnosis
	}{evRestoreDiagnosis, time.Now(), pr.ID, pr.Plan.Platform.Name, pr.Plan.To, d.summary(), pr.Reading.Modules(), d}
}

// nowSummary says what the device is after a successful run.
func nowSummary(res *frun.Result) string {
	if res == nil || res.Reading == nil {
		return "at the target, verified"
	}
	s := modeWords(res.Reading.Mode.String())
	if res.Plan != nil && res.Plan.To != "" {
		s += ", Device OS " + res.Plan.To
	}
	bad := 0
	n := 0
	for _, m := range res.Reading.Modules() {
		if !m.Present {
			continue
		}
		n++
		if !m.Valid() {
			bad++
		}
	}
	if bad == 0 {
		s += fmt.Sprintf(", all %d modules intact, verified", n)
	} else {
		s += fmt.Sprintf(", %d of %d modules still fail their checks", bad, n)
	}
	if res.Reading.Mode == state.ModeSafe {
		s += ". It has no application that can run: flash one (pflash flash --to FILE) to leave safe mode"
	}
	return s + "."
}
