package run

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// Options configure a Runner.
type Options struct {
	// Bus is where the devices are found; required.
	Bus device.Bus
	// Events receives every event, synchronously and in order; nil drops them. It must
	// not block for long: a DFU write is waiting.
	Events func(Event)
	// Journal keeps a journal per device so an interrupted run can be resumed; nil keeps
	// none.
	Journal *Store
	// Timeouts bound the waits (zero fields: DefaultTimeouts).
	Timeouts Timeouts
	// Poll is how often the doors are asked whether the device is back while a run waits
	// for it (default DefaultPoll). A wait ends on the first poll that shows the evidence,
	// so this bounds how late a run notices; it is never a wait the device needs.
	Poll time.Duration
	// ListenSettle bounds the wait, after asking for listening mode before a
	// control-request update, for the device to say it is in listening mode (request 72,
	// polled): the device is then off the cloud and not busy. A device that cannot say
	// is given the whole time, particle-cli's fixed pause (default 1 s; negative: no wait).
	ListenSettle time.Duration
	// Retries is how often a step that failed while the device stayed reachable (a STALL
	// past the DFU client's own retries, a dfuERROR, a transfer error) is tried again:
	// 0 means the default 1, negative never.
	Retries int
	// NoButtons makes the runner fail instead of asking a person to press buttons when
	// software cannot switch the device's mode (unattended factory benches).
	NoButtons bool
	// Logger receives what happens at debug level (default slog.Default()).
	Logger *slog.Logger
	// Clock tells the time of events, of a result's Elapsed and of the time-left estimate
	// (default time.Now). A test of a virtual device passes the device's own clock (its
	// charged device time), so that what it asserts on is the device's time, not how busy
	// this machine was. Waits and their deadlines always use the real clock.
	Clock func() time.Time
}

// DefaultPoll is how often a waiting run looks for its device: a device back on the bus is
// noticed within ten milliseconds. Listing the bus costs a few microseconds of host time
// and nothing of the device's (a device already seen is not opened again).
const DefaultPoll = 10 * time.Millisecond

// Runner executes plans on devices. One Runner may run several devices at once (one Run
// or Flash call per device).
type Runner struct {
	o   Options
	t   Timeouts
	log *slog.Logger
	mu  sync.Mutex // serialises Events
}

// New returns a runner.
func New(o Options) *Runner {
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.ListenSettle < 0 {
		o.ListenSettle = 0
	} else if o.ListenSettle == 0 {
		o.ListenSettle = time.Second
	}
	switch {
	case o.Retries == 0:
		o.Retries = 1
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	r := &Runner{o: o, t: o.Timeouts.withDefaults(), log: o.Logger}
	if r.log == nil {
		r.log = slog.Default()
	}
	return r
}

// Errors a run can end with (wrapped, with a remedy: remedy.Of).
var (
	// ErrCancelled: the context ended; the run stopped at a safe point.
	ErrCancelled = errors.New("cancelled")
	// ErrGone: the device left USB and did not come back in time.
	ErrGone = errors.New("the device is gone")
	// ErrWrongMode: the device came back in another mode than the plan expects.
	ErrWrongMode = errors.New("the device is in an unexpected mode")
	// ErrVerify: the device does not show the expected result.
	ErrVerify = errors.New("verification failed")
	// ErrRestarts: the device keeps restarting by itself in the middle of the work.
	ErrRestarts = errors.New("the device keeps restarting by itself")
	// ErrUnsupported: the plan has a step this runner cannot execute.
	ErrUnsupported = errors.New("not supported")
)

// Result is how a run ended.
type Result struct {
	Plan *plan.Plan
	// Reading is the last reading of the device (after verification when it passed).
	Reading *Reading
	// Resumed: an earlier run toward the same target had not finished.
	Resumed bool
	// Elapsed is the wall time of the run.
	Elapsed time.Duration
}

// Prepared is a device read and a plan made, ready to Execute (after a person agreed).
type Prepared struct {
	ID      string
	Target  plan.Target
	Plan    *plan.Plan
	Reading *Reading
	// Journal is the earlier run toward this target that did not finish (nil if none).
	Journal *Journal
	// Other is an unfinished earlier run toward another target (nil if none).
	Other *Journal
	start time.Time
}

// Flash brings the device with this ID to the target: Prepare, then Execute. It always
// ends with an EvDone event.
func (r *Runner) Flash(ctx context.Context, id string, t plan.Target) (*Result, error) {
	pr, err := r.Prepare(ctx, id, t)
	if err != nil {
		if pr != nil {
			id = pr.ID
		}
		r.emitDone(id, nil, err, "", 0)
		return nil, err
	}
	return r.Execute(ctx, pr)
}

// Prepare waits for the device, reads what it has and plans the way to the target. A
// resumed run is prepared the same way, from the device's real state: the journal only
// says what was going on. On failure it emits nothing but returns an error with a remedy;
// Flash turns it into the final events.
func (r *Runner) Prepare(ctx context.Context, id string, t plan.Target) (*Prepared, error) {
	pr := &Prepared{ID: strings.ToLower(id), Target: t, start: r.o.Clock()}
	j := &job{r: r, id: pr.ID, target: &t, start: pr.start}
	defer j.closeLink()
	if pr.ID == "" {
		got, err := r.pickDevice(ctx)
		if err != nil {
			return nil, err
		}
		pr.ID, j.id = got, got
	}
	if _, err := j.waitAttached(ctx); err != nil {
		return nil, err
	}
	rd, err := j.read(ctx)
	if err != nil {
		return nil, err
	}
	pr.Reading = rd
	if jr, err := r.o.Journal.Load(pr.ID); err != nil {
		r.log.Warn("run: journal unreadable", "device", pr.ID, "err", err)
	} else if jr != nil && !jr.Finished() {
		if jr.TargetKey == TargetKey(t) {
			pr.Journal = jr
		} else {
			pr.Other = jr
		}
	}
	p, err := plan.Make(rd.State, t)
	if errors.Is(err, plan.ErrEndsSafe) {
		// The plan is made and shows where it ends; it runs once the person accepts that
		// (Options.AllowSafeMode), so the caller gets both to show.
		pr.Plan = p
		return pr, err
	}
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	pr.Plan = p
	return pr, nil
}

// pickDevice returns the only attached device's ID.
func (r *Runner) pickDevice(ctx context.Context) (string, error) {
	lctx, cancel := context.WithTimeout(ctx, r.t.Find)
	defer cancel()
	for {
		devs, err := r.o.Bus.List(lctx)
		if err == nil {
			// An unreadable device counts as one: picking "the only one" past it could
			// flash the wrong unit.
			var problem error
			if _, problem = device.Readable(devs); problem != nil && len(devs) == 1 {
				err = problem
				devs = nil
			}
		}
		if err == nil && len(devs) == 1 && devs[0].ID != "" {
			return devs[0].ID, nil
		}
		if err == nil && len(devs) > 1 {
			var ids []string
			for _, d := range devs {
				ids = append(ids, d.ID)
			}
			return "", remedy.With(fmt.Errorf("run: %d devices are attached (%s)", len(devs), strings.Join(ids, ", ")),
				"say which one with --device ID")
		}
		select {
		case <-lctx.Done():
			if err != nil {
				return "", remedy.With(fmt.Errorf("run: no device found: %w", err), "check the USB cable and that the device is powered")
			}
			return "", remedy.With(fmt.Errorf("run: %w: no Particle device found", ErrGone),
				"check the USB cable (some only charge) and that the device is powered; the device list shows what is attached")
		case <-time.After(r.o.Poll):
		}
	}
}

// Execute runs a prepared plan, verifies the result and emits the events, ending with
// EvDone. On failure the returned error carries a remedy, and the journal stays so that
// running the same target again finishes the job.
func (r *Runner) Execute(ctx context.Context, pr *Prepared) (*Result, error) {
	if end := pr.Plan.End; end.Mode != state.ModeNormal && end.Mode != state.ModeUnknown && !pr.Target.Options.AllowSafeMode {
		// Predict, then write: nothing is written toward an end nobody accepted.
		err := remedy.With(&plan.EndStateError{End: end, To: pr.Plan.To},
			"Accept that the device ends in "+end.Mode.Title()+" mode, or change the target so it does not.")
		r.emitDone(pr.ID, pr.Reading, err, "", 0)
		return nil, err
	}
	j := &job{r: r, id: pr.ID, target: &pr.Target, start: pr.start, plan: pr.Plan, reading: pr.Reading}
	defer j.closeLink()
	res := &Result{Plan: pr.Plan, Reading: pr.Reading, Resumed: pr.Journal != nil}
	j.journal = &Journal{DeviceID: pr.ID, Target: pr.Plan.To, TargetKey: TargetKey(pr.Target), From: pr.Plan.From,
		Started: time.Now().UTC(), Done: []string{}, Runs: 1, Status: JournalRunning}
	j.journal.setSteps(pr.Plan)
	if pr.Plan.Platform != nil {
		j.journal.Platform = pr.Plan.Platform.Name
	}
	if pr.Journal != nil {
		j.journal.Started, j.journal.Runs = pr.Journal.Started, pr.Journal.Runs+1
		j.emit(Event{Event: EvResume, Mode: modeName(pr.Reading.Mode),
			Message: fmt.Sprintf("An earlier run to %s stopped %s (%s). The device has been read again; the plan below finishes the job from what it has now.",
				pr.Journal.Target, pr.Journal.Where(), pr.Journal.How())})
	} else if pr.Other != nil {
		j.emit(Event{Event: EvResume, Mode: modeName(pr.Reading.Mode),
			Message: fmt.Sprintf("An earlier run to %s did not finish (it stopped %s); this run goes to %s instead, from what the device has now.",
				pr.Other.Target, pr.Other.Where(), pr.Plan.To)})
	}
	j.emitPlan()
	j.saveJournal()
	err := j.runSteps(ctx)
	if err == nil && len(j.plan.Steps) == 0 && j.reading != nil && j.reading.Mode == state.ModeListening {
		err = j.stopListening(ctx)
	}
	res.Plan, res.Reading = j.plan, j.reading
	res.Elapsed = r.o.Clock().Sub(pr.start)
	if err != nil {
		left := j.describeState(err)
		j.journal.Status, j.journal.Error = JournalFailed, err.Error()
		if errors.Is(err, ErrCancelled) {
			j.journal.Status = JournalCancelled
		}
		j.saveJournal()
		j.emit(Event{Event: EvFailed, Error: err.Error(), Remedy: remedy.Of(err), State: left, Mode: modeName(j.mode)})
		r.emitDone(pr.ID, j.reading, err, left, j.fraction(0))
		return res, err
	}
	j.journal.Status, j.journal.Current = JournalDone, ""
	j.saveJournal()
	r.emitDone(pr.ID, j.reading, nil, "", 1)
	return res, nil
}

// Run executes a plan made elsewhere on the device with this ID (no re-planning is
// possible, since the target is not known: a surprise fails the run).
func (r *Runner) Run(ctx context.Context, id string, p *plan.Plan) (*Result, error) {
	pr := &Prepared{ID: strings.ToLower(id), Plan: p, start: r.o.Clock(), Reading: &Reading{}}
	return r.Execute(ctx, pr)
}

func (r *Runner) emit(e Event) {
	if r.o.Events == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = r.o.Clock()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.o.Events(e)
}

func (r *Runner) emitDone(id string, rd *Reading, err error, left string, fraction float64) {
	e := Event{Event: EvDone, DeviceID: id, Result: ResultOK, Fraction: fraction}
	if rd != nil {
		e.Modules = rd.Modules()
		e.Mode = modeName(rd.Mode)
	}
	if err != nil {
		e.Result, e.Error, e.Remedy, e.State = ResultFailed, err.Error(), remedy.Of(err), left
	}
	r.emit(e)
}

// Transient reports a failure that running the same target again can get past: the
// device left the bus (unplugged, reset, out of power) or did not answer in time, a
// transfer stalled or the DFU bootloader reported an error, or the run was cancelled or
// interrupted by restarts. A device that differs from the plan's prediction, a refused
// plan, or an update Device OS rejected is not: the same run would end the same way, so
// no remedy offers a retry for them.
func Transient(err error) bool {
	switch {
	case err == nil, errors.Is(err, ErrVerify), errors.Is(err, ErrUnsupported):
		return false
	case errors.Is(err, plan.ErrEndsSafe), errors.Is(err, plan.ErrDependency), errors.Is(err, plan.ErrSteppingStone):
		return false
	case errors.Is(err, ErrCancelled), errors.Is(err, ErrGone), errors.Is(err, ErrRestarts), isGone(err),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, dfu.ErrStall):
		return true
	}
	var se *dfu.StatusError
	if errors.As(err, &se) {
		return true
	}
	var re *ctrl.ResultError
	if errors.As(err, &re) {
		return false // Device OS answered and refused: it would refuse again
	}
	var pe *plan.Error
	return !errors.As(err, &pe)
}
