package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/particle-flasher/particle-flasher/flasher/factory"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	frun "github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/target"
)

// factoryPoll and factoryGrace are the bench's polling period and unplug grace (zero:
// the engine's defaults); tests shorten them.
var factoryPoll, factoryGrace time.Duration

type factoryFlags struct {
	to, app, report, stateDir  string
	db, station, lot, operator string
	protectWith                string
	jobs, count                int
	allowSafe, leaveSetup      bool
	dl                         cacheFlags
}

func newFactoryCmd(g *globals) *cobra.Command {
	var f factoryFlags
	cmd := &cobra.Command{
		Use:   "factory --to VERSION|FILES [--app FILE] [--jobs N] [--station NAME] [--lot NAME] [--operator NAME] [--db URL|FILE] [--report FILE.csv]",
		Short: "Factory bench: flash every device plugged in, several at once, with a report row per unit",
		Long: "factory watches USB and brings every Particle device plugged in to the target, up to\n" +
			"--jobs at once, without asking and without buttons (a unit that would need them fails\n" +
			"with a remedy). A unit is flashed once per plug-in: the resets of its run do not count,\n" +
			"and a finished unit left in its socket is left alone; pulled for a few seconds and\n" +
			"plugged back in, it is flashed again with a warning. Two units with the same device ID\n" +
			"attached at once cannot be told apart, so neither is flashed.\n\n" +
			"Each finished unit is a row in --report (CSV) and its JSON-lines twin (.jsonl), written\n" +
			"and synced as it finishes: time, device ID, serial number, ICCID and IMEI, platform,\n" +
			"Device OS and every module before and after, the application, duration, result (ok,\n" +
			"already, failed), error and remedy, plug-in number, Device Protection and setup-done\n" +
			"state, station, operator and lot. The same rows go to the record store every bench\n" +
			"shares: --db postgres://... (or db = \"...\" in the config file), else a SQLite file\n" +
			"in the state directory; a unit's row is written when its run starts and again when it\n" +
			"ends, so a bench that dies leaves its attempt marked interrupted. While the database\n" +
			"cannot be reached, rows wait in a local spool and are sent in order when it is back;\n" +
			"the bench keeps flashing and says so. A unit already flashed on another station is\n" +
			"warned about; one this station finished before a restart is left alone. `pflash\n" +
			"report` reads the store. With --protect-with FILE (a protected bootloader build)\n" +
			"each unit of that platform is protected at the end of its run, without the cloud.\n\n" +
			"It runs until Ctrl-C (which lets the running units stop at a safe point) or, with\n" +
			"--count N, until N units finished. With --json, one event per line (attached, started,\n" +
			"run, finished, duplicate, detached, totals). Exit code 1 when any unit failed.",
		Args: cobra.NoArgs,
		RunE: writeCommand(g, func(ctx context.Context) error { return runFactory(ctx, g, f) }),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.to, "to", "", "target: Device OS version, module file, directory of module files, or .zip bundle")
	fl.StringVar(&f.app, "app", "", "application (user part .bin) to install as well")
	fl.IntVar(&f.jobs, "jobs", 8, "units flashed at once")
	fl.BoolVar(&f.allowSafe, "allow-safe-mode", false, "accept units whose plan ends in safe mode (e.g. without an application)")
	fl.BoolVar(&f.leaveSetup, "leave-setup-done", false, "leave the setup-done flag as it is (Gen3 before Device OS 4.0 then waits in listening mode until it is set)")
	fl.StringVar(&f.report, "report", "", "CSV report (appended to; a .jsonl twin beside it) (default: factory-DATE.csv in the state directory)")
	fl.IntVar(&f.count, "count", 0, "stop after this many units finished (0: run until Ctrl-C)")
	fl.StringVar(&f.station, "station", "", "this bench's name in the records (default: the computer's host name); one name per bench")
	fl.StringVar(&f.lot, "lot", "", "the lot (batch) the units belong to, e.g. 20261206_0001")
	fl.StringVar(&f.operator, "operator", "", "who runs the bench")
	fl.StringVar(&f.db, "db", "", "record store: a postgres:// URL shared by every bench, or a SQLite file (env PFLASH_DB; default records.db in the state directory)")
	fl.StringVar(&f.protectWith, "protect-with", "", "a protected bootloader file: write it to each unit of its platform at the end of its run, turning Device Protection on (Device OS 6.1.1 or newer)")
	writeFlags(fl, &f.stateDir, &f.dl)
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

// runFactory is `pflash factory`.
func runFactory(ctx context.Context, g *globals, f factoryFlags) error {
	if f.jobs < 1 {
		return &exitError{code: exitUsage, err: remedy.With(fmt.Errorf("--jobs %d", f.jobs), "Give at least 1.")}
	}
	if f.count < 0 {
		return &exitError{code: exitUsage, err: remedy.With(fmt.Errorf("--count %d", f.count), "Give a number of units, or 0 to run until Ctrl-C.")}
	}
	// A target that cannot work is said at once, not once per unit plugged in: files are
	// loaded now (they are the same for every platform), a version is resolved per
	// platform when the first unit of that platform arrives.
	tf := flashFlags{to: f.to, app: f.app, dl: f.dl}
	_, statErr := os.Stat(f.to)
	if statErr == nil {
		if _, err := flashTarget(ctx, g, tf, nil); err != nil {
			return err
		}
	} else if !target.LooksLikeVersion(f.to) {
		_, err := flashTarget(ctx, g, tf, nil)
		return err
	} else if f.app != "" {
		if _, err := loadModules(f.app); err != nil {
			return err
		}
	}
	var protectWith *module.Module
	if f.protectWith != "" {
		var err error
		if protectWith, err = protectedBootloader(f.protectWith); err != nil {
			return err
		}
	}
	toName := strings.TrimPrefix(f.to, "v")
	if statErr == nil {
		toName = "the target"
	}

	stateDir, err := journalDir(f.stateDir)
	if err != nil {
		return err
	}
	reportPath := f.report
	if reportPath == "" {
		reportPath = filepath.Join(stateDir, "reports", "factory-"+time.Now().Format("2006-01-02")+".csv")
		if err := os.MkdirAll(filepath.Dir(reportPath), 0o755); err != nil {
			return &exitError{code: exitFailed, err: err}
		}
	}
	rep, err := factory.OpenReport(reportPath)
	if err != nil {
		return &exitError{code: exitFailed, err: remedy.With(err, "Check that the report's directory exists and is writable, or give another --report.")}
	}
	defer func() {
		if err := rep.Close(); err != nil {
			fmt.Fprintf(g.stderr, "pflash: closing the report: %v\n", err)
		}
	}()
	out := newFactoryOutput(g, toName)
	station := f.station
	if station == "" {
		station, _ = os.Hostname()
	}
	rec, finished, err := openRecords(ctx, f.db, stateDir, station, f.lot, out)
	if err != nil {
		return err
	}
	recClosed := false
	closeRecords := func() {
		if recClosed {
			return
		}
		recClosed = true
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		if _, err := rec.Close(cctx); err != nil {
			fmt.Fprintf(g.stderr, "Warning: %v\n", err)
		}
	}
	defer closeRecords()

	doors, closeDoors, err := flashBus(g)
	if err != nil {
		return err
	}
	defer closeDoors()

	csvPath, jsonlPath := rep.Paths()
	out.line("Factory bench: every device plugged in goes to %s, up to %d at once.", f.to, f.jobs)
	out.line("Report: %s (and %s)", csvPath, jsonlPath)
	out.line("Records: %s (station %q, lot %q, operator %q)", rec.Status().Where, station, f.lot, f.operator)
	if f.count > 0 {
		out.line("Waiting for devices; stopping after %d unit(s).", f.count)
	} else {
		out.line("Waiting for devices; Ctrl-C stops (running units finish their current step).")
	}

	o := factory.Options{
		Bus: doors,
		Target: func(ctx context.Context, p *platform.Platform) (plan.Target, error) {
			tgt, err := flashTarget(ctx, g, tf, p)
			tgt.Options.AllowSafeMode = f.allowSafe
			tgt.Options.LeaveSetupDone = f.leaveSetup
			return tgt, err
		},
		Jobs:        f.jobs,
		Timeouts:    flashTimeouts,
		Journal:     &frun.Store{Dir: stateDir},
		Report:      rep,
		Recorder:    rec,
		Station:     station,
		Operator:    f.operator,
		Lot:         f.lot,
		TargetName:  targetName(f.to),
		Finished:    finished,
		Events:      out.event,
		Poll:        factoryPoll,
		Grace:       factoryGrace,
		ProtectWith: protectWith,
	}
	if f.count > 0 {
		// Units this station had finished before a restart count toward --count.
		o.Until = func(t factory.Totals) bool { return t.Finished()+t.Recorded >= f.count }
	}
	tot, err := factory.Run(ctx, o)
	closeRecords()
	out.close()
	if !g.json {
		fmt.Fprintf(g.stdout, "Stopped: %s. Report: %s\n", out.totalsText(tot), csvPath)
	}
	if err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	if tot.Failed > 0 {
		// Every failure has been printed with its remedy.
		return &exitError{code: exitFailed, err: errReported}
	}
	return nil
}

// factoryOutput renders the bench's events: JSON lines, or for a person the runs of the
// units through progressView (a bar per unit on a terminal, plain lines elsewhere) with a
// line per unit start and finish and the running totals. Duplicate warnings also go to
// stderr, where an operator watching a --json pipeline still sees them.
type factoryOutput struct {
	g      *globals
	toName string
	// view is nil in --json mode.
	view *progressView
	mu   sync.Mutex
}

func newFactoryOutput(g *globals, toName string) *factoryOutput {
	o := &factoryOutput{g: g, toName: toName}
	if !g.json {
		o.view = newProgressView(g)
	}
	return o
}

func (o *factoryOutput) line(format string, a ...any) {
	if o.view != nil {
		o.view.Line(format, a...)
	}
}

// close stops drawing; lines printed afterwards go straight to stdout.
func (o *factoryOutput) close() {
	if o.view != nil {
		o.view.Close()
	}
}

func (o *factoryOutput) event(e factory.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if e.Kind == factory.EvDuplicate || e.Kind == factory.EvUnreadable || (e.Kind == factory.EvRecords && e.Records != nil && e.Records.Spooling) {
		fmt.Fprintf(o.g.stderr, "Warning: %s\n", e.Message)
	}
	if o.view == nil {
		if err := o.g.emit(e); err != nil {
			fmt.Fprintf(o.g.stderr, "pflash: output: %v\n", err)
		}
		return
	}
	who := fmt.Sprintf("%s (%s)", e.DeviceID, platformTitle(e.Platform))
	switch e.Kind {
	case factory.EvRun:
		// The unit's finished line says the error and the remedy once; the runner's
		// failed event would say them a second time.
		if e.Run != nil && e.Run.Event != frun.EvFailed {
			o.view.Event(*e.Run)
		}
	case factory.EvStarted:
		o.line("%s: started", who)
	case factory.EvDuplicate, factory.EvUnreadable:
		o.line("Warning: %s", e.Message)
	case factory.EvRecorded, factory.EvRecords:
		o.line("%s", e.Message)
	case factory.EvFinished:
		r := e.Record
		d := time.Duration(r.DurationSeconds * float64(time.Second)).Round(100 * time.Millisecond)
		switch r.Result {
		case factory.ResultOK:
			o.line("%s: %s -> %s, ok in %s", who, r.Before, r.After, d)
		case factory.ResultAlready:
			o.line("%s: already at %s, nothing written (%s)", who, r.After, d)
		default:
			o.line("%s: %s -> FAILED after %s: %s", who, r.Before, d, r.Error)
			if r.Remedy != "" {
				o.line("  What to do: %s", r.Remedy)
			}
		}
	case factory.EvTotals:
		// The view prints it as a line (only when it changed) or shows it on the
		// overall bar.
		o.view.Totals(o.totalsText(e.Totals))
	}
}

// totalsText is the running count: "3 ok, 1 already at 4.1.0, 0 failed, 2 running".
func (o *factoryOutput) totalsText(t factory.Totals) string {
	s := fmt.Sprintf("%d ok, %d already at %s, %d failed, %d running", t.OK, t.Already, o.toName, t.Failed, t.Running)
	if t.Duplicates > 0 {
		s += fmt.Sprintf(", %d duplicate warning(s)", t.Duplicates)
	}
	return s
}

func platformTitle(name string) string {
	if p, ok := platform.ByName(name); ok {
		return p.DisplayName
	}
	if name == "" {
		return "unknown platform"
	}
	return name
}

// protectedBootloader reads --protect-with: one bootloader module that is a protected build
// (SECURITY_MODE extension = protected) of Device OS 6.1.1 or newer (bootloader 3001,
// particle-cli's PROTECTED_MINIMUM_BOOTLOADER_VERSION).
func protectedBootloader(path string) (*module.Module, error) {
	mods, err := loadModules(path)
	if err != nil {
		return nil, err
	}
	usage := func(format string, args ...any) error {
		return &exitError{code: exitUsage, err: remedy.With(fmt.Errorf(format, args...),
			"Give the protected bootloader file for the units' platform (a *-bootloader-protected.bin of Device OS 6.1.1 or newer).")}
	}
	if len(mods) != 1 {
		return nil, usage("%s holds %d modules, not one protected bootloader", path, len(mods))
	}
	m := mods[0]
	mode, _, ok := m.SecurityMode()
	switch {
	case m.Function != platform.FuncBootloader || m.Index != 0:
		return nil, usage("%s is not a bootloader but %s", path, m.SlotName())
	case !ok || mode != module.SecurityProtected:
		return nil, usage("%s is an open bootloader build: it would not turn Device Protection on", path)
	case m.Version < protectedMinBootloader:
		return nil, usage("%s is bootloader %d; Device Protection needs Device OS 6.1.1 (bootloader %d) or newer", path, m.Version, protectedMinBootloader)
	}
	return m, nil
}

// protectedMinBootloader is Device OS 6.1.1's bootloader (particle-cli flash-helper.js).
const protectedMinBootloader = 3001
