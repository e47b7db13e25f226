package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/led"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// job is one run of one plan on one device.
type job struct {
	r      *Runner
	id     string
	target *plan.Target // nil when the plan came from elsewhere: no re-planning
	plan   *plan.Plan
	// reading is the last reading of the device.
	reading *Reading
	journal *Journal
	start   time.Time

	// link is the device as last found (nil when unknown or known to be stale); mode and
	// inst are its mode and enumeration instance.
	link device.Link
	mode state.Mode
	inst string
	// resetFrom is the instance the device had when the runner made it restart; a wait
	// for it to come back accepts only another instance. "" when no restart is pending.
	resetFrom string

	// Progress: the sum of the steps' estimates and the current step's index.
	total        time.Duration
	idx          int
	lastProgress time.Time
	lastFrac     float64

	// Watchdog windows: the window being worked in and the instance it started with.
	window     int
	windowInst string
	// losses are the times the device left the bus by itself during a step.
	losses  []time.Time
	replans int
	// done lists the IDs of the steps finished in this run.
	done []string
}

func (j *job) emit(e Event) {
	e.DeviceID = j.id
	if e.Fraction == 0 && e.Event != EvPlan {
		e.Fraction = j.fraction(0)
	}
	j.r.emit(e)
}

func (j *job) saveJournal() {
	if j.journal == nil {
		return
	}
	if err := j.r.o.Journal.Save(j.journal); err != nil {
		j.r.log.Warn("run: journal not saved", "device", j.id, "err", err)
	}
}

func (j *job) closeLink() {
	if j.link != nil {
		_ = j.link.Close()
		j.link = nil
	}
}

func (j *job) setLink(l device.Link) {
	if j.link != nil && j.link != l {
		_ = j.link.Close()
	}
	j.link, j.mode, j.inst = l, l.Mode(), l.Instance()
}

// dropLink forgets the link after the device reset (or is about to).
func (j *job) dropLink() {
	j.closeLink()
}

// ---- progress ------------------------------------------------------------------------

// fraction is how far along the bar is: each step's share is half its share of the
// estimated time and half an equal share, so that "Step i of N" and the bar tell the same
// story when a plan has one long write among quick mode changes (a bar at 12 % at step 5
// of 6 reads as stuck): step i starts at (i-1)/2N or later.
func (j *job) fraction(stepFrac float64) float64 {
	return j.along(stepFrac, j.weight)
}

// timeFraction is how much of the plan's estimated time is behind: time left is reckoned
// from it, not from the bar's floored shares.
func (j *job) timeFraction(stepFrac float64) float64 {
	return j.along(stepFrac, func(s plan.Step) time.Duration { return s.Estimate })
}

func (j *job) along(stepFrac float64, w func(plan.Step) time.Duration) float64 {
	if j.plan == nil || len(j.plan.Steps) == 0 {
		return 0
	}
	var done, all time.Duration
	for i, s := range j.plan.Steps {
		all += w(s)
		switch {
		case i < j.idx:
			done += w(s)
		case i == j.idx:
			done += time.Duration(float64(w(s)) * stepFrac)
		}
	}
	if all <= 0 {
		return 0
	}
	return min(max(float64(done)/float64(all), 0), 1)
}

// weight is a step's share of the bar: half by its estimate, half by count.
func (j *job) weight(s plan.Step) time.Duration {
	if j.total <= 0 {
		return time.Second // no estimates: by count alone
	}
	return s.Estimate/2 + j.total/time.Duration(2*len(j.plan.Steps))
}

// eta is the time left, honestly: the plan's estimate of what is left, blended with what
// the rate measured so far projects, trusting the measurement more as the run goes on.
// A run that goes faster than planned is never told more than the plan's estimate of
// what is left; one that goes slower is told so.
func (j *job) eta(stepFrac float64) time.Duration {
	return timeLeft(j.total, j.timeFraction(stepFrac), j.r.o.Clock().Sub(j.start))
}

// timeLeft blends the plan's estimate of what is left (total, of which the fraction tf is
// behind) with what the time spent so far projects.
func timeLeft(total time.Duration, tf float64, spent time.Duration) time.Duration {
	planned := time.Duration(float64(total) * (1 - tf))
	if tf <= 0.02 || spent <= 0 {
		return planned
	}
	measured := time.Duration(float64(spent) * (1 - tf) / tf)
	return time.Duration((1-tf)*float64(planned) + tf*float64(measured))
}

// progress reports bytes of the current step; erase and write count half each, so the bar
// moves through a write's erase too.
func (j *job) progress(phase string, done, total int) {
	if total <= 0 {
		return
	}
	sf := float64(done) / float64(total)
	switch phase {
	case "erase":
		sf /= 2
	case "write":
		if j.erasing() {
			sf = 0.5 + sf/2
		}
	}
	f := j.fraction(sf)
	now := time.Now()
	if sf < 1 && now.Sub(j.lastProgress) < 100*time.Millisecond && f-j.lastFrac < 0.02 {
		return
	}
	j.lastProgress, j.lastFrac = now, f
	s := j.plan.Steps[j.idx]
	j.emit(Event{Event: EvProgress, StepID: s.ID, StepIndex: j.idx + 1, Steps: len(j.plan.Steps), Phase: phase,
		Bytes: done, Total: total, StepFraction: sf, Fraction: f, ETASeconds: j.eta(sf).Seconds()})
}

// erasing reports whether the current step's writes erase first (DFU writes do).
func (j *job) erasing() bool {
	s := j.plan.Steps[j.idx]
	return s.Method.UsesDFU() && (s.Kind == plan.KindWrite || s.Kind == plan.KindInvalidate)
}

func (j *job) dfuProgress(p dfu.Progress) { j.progress(p.Phase, p.Done, p.Total) }

// ---- the step loop --------------------------------------------------------------------

func (j *job) emitPlan() {
	j.emit(PlanEvent(j.plan, j.reading.Mode, j.r.o.Clock()))
}

// PlanEvent is the EvPlan event for a plan made for a device in mode: a summary, the
// warnings as the message, and the whole plan as `pflash plan --json` prints it. at is its time.
func PlanEvent(p *plan.Plan, mode state.Mode, at time.Time) Event {
	var warn string
	if len(p.Warnings) > 0 {
		warn = strings.Join(p.Warnings, " ")
	}
	raw, err := json.Marshal(p)
	if err != nil {
		raw = nil
	}
	return Event{Event: EvPlan, Time: at, From: p.From, To: p.To, Direction: p.Direction.String(), Steps: len(p.Steps),
		EstimateSeconds: p.EstimatedDuration.Seconds(), Windows: p.Windows, Mode: modeName(mode), Message: warn, Plan: raw}
}

func (j *job) runSteps(ctx context.Context) error {
	for {
		j.total = 0
		for _, s := range j.plan.Steps {
			j.total += s.Estimate
		}
		err := j.runPlan(ctx)
		var rp *replanError
		if !errors.As(err, &rp) {
			return err
		}
		p, rerr := j.replan(ctx, rp)
		if rerr != nil {
			return rerr
		}
		j.plan = p
		j.window, j.windowInst = 0, ""
		j.journal.setSteps(p)
		j.emitPlan()
		j.saveJournal()
	}
}

// replanError asks for a new plan from the device's current state: the device did
// something the plan did not foresee (came back in another mode).
type replanError struct{ cause error }

func (e *replanError) Error() string { return e.cause.Error() }
func (e *replanError) Unwrap() error { return e.cause }

// maxReplans bounds how often one run plans afresh after a surprise.
const maxReplans = 3

func (j *job) replan(ctx context.Context, rp *replanError) (*plan.Plan, error) {
	if j.target == nil || j.replans >= maxReplans {
		return nil, rp.cause
	}
	j.replans++
	j.emit(Event{Event: EvRetry, Error: rp.cause.Error(),
		Message: "The device is not where the plan expected it; it is read again and the rest of the way planned afresh."})
	if _, err := j.waitAttached(ctx); err != nil {
		return nil, errors.Join(rp.cause, err)
	}
	rd, err := j.read(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w (and reading the device again failed: %w)", rp.cause, err)
	}
	j.reading = rd
	p, err := plan.Make(rd.State, *j.target)
	if err != nil {
		return nil, fmt.Errorf("plan again: %w", err)
	}
	return p, nil
}

func (j *job) runPlan(ctx context.Context) error {
	steps := j.plan.Steps
	for j.idx = 0; j.idx < len(steps); j.idx++ {
		s := &steps[j.idx]
		if ctx.Err() != nil && s.Kind != plan.KindWaitFor {
			return j.cancelled()
		}
		j.startStep(s)
		if s.Kind == plan.KindEnterMode && s.Window == 0 && j.link != nil && s.Done(state.Device{Mode: j.mode}) {
			j.finishStep(s, true) // already there
			continue
		}
		sctx := ctx
		if finishesOnCancel(s) {
			sctx = context.WithoutCancel(ctx)
		}
		for attempt := 0; ; attempt++ {
			err := j.exec(sctx, s)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return j.cancelled()
			}
			if err := j.recover(ctx, s, err, attempt); err != nil {
				return err
			}
		}
		j.finishStep(s, false)
	}
	return nil
}

// finishesOnCancel says whether a step, once begun, runs to its end after a cancel (bounded
// by its own timeouts, as the app promises: "a write or restart in progress finishes first"): the
// waits for a device that is installing what it was handed and restarting, or leaving DFU
// mode. It changes either way, and the state a cancelled run reports, and a resume starts
// from, must be the one it settles in. A wait for an install is not even left before it
// begins: its write is done.
func finishesOnCancel(s *plan.Step) bool {
	return s.Kind == plan.KindWaitFor || s.Kind == plan.KindReset
}

func (j *job) startStep(s *plan.Step) {
	j.journal.Current = s.ID
	j.saveJournal()
	j.lastProgress, j.lastFrac = time.Time{}, j.fraction(0)
	j.emit(Event{Event: EvStep, StepID: s.ID, StepIndex: j.idx + 1, Steps: len(j.plan.Steps), Kind: s.Kind.String(),
		Title: Title(*s), Message: s.Why, Mode: modeName(j.mode)})
	if g := guidance(s.LED); g != nil {
		j.emit(Event{Event: EvLED, StepID: s.ID, StepIndex: j.idx + 1, Steps: len(j.plan.Steps), LED: g})
	}
}

func (j *job) finishStep(s *plan.Step, skipped bool) {
	j.done = append(j.done, s.ID)
	j.journal.Done = append(j.journal.Done, s.ID)
	j.journal.Current = ""
	j.saveJournal()
	j.emit(Event{Event: EvStepDone, StepID: s.ID, StepIndex: j.idx + 1, Steps: len(j.plan.Steps), Kind: s.Kind.String(),
		Skipped: skipped, Mode: modeName(j.mode), Fraction: j.fraction(1), ETASeconds: j.eta(1).Seconds()})
}

func (j *job) cancelled() error {
	where := "before the first step"
	if n := len(j.done); n > 0 {
		where = fmt.Sprintf("after the step \u201c%s\u201d", j.journal.title(j.done[n-1])) // as Journal.Where says it
	}
	return remedy.With(fmt.Errorf("run: %w %s, at a point where nothing was being written", ErrCancelled, where),
		"Try the same target again to finish: the device is read again and only what is missing is written.")
}

// exec runs one step.
func (j *job) exec(ctx context.Context, s *plan.Step) error {
	switch s.Kind {
	case plan.KindEnterMode:
		return j.enterStep(ctx, s)
	case plan.KindWrite:
		switch {
		case s.Method.UsesDFU():
			return j.writeDFU(ctx, s)
		case s.Method == platform.MethodControl:
			return j.writeControl(ctx, s)
		default:
			return j.writeYModem(ctx, s)
		}
	case plan.KindInvalidate:
		return j.writeDFU(ctx, s)
	case plan.KindSetOTAFlag:
		return j.setFlag(ctx, s)
	case plan.KindWaitFor:
		_, err := j.waitMode(ctx, s.Mode, j.r.t.Apply+j.r.t.allow(s.Estimate), "the device to install "+s.Slot+" and come back", s.LED)
		return err
	case plan.KindReset:
		return j.leaveDFU(ctx, s)
	case plan.KindVerify:
		return j.verify(ctx, s)
	case plan.KindSetupDone:
		return j.setupDone(ctx, s)
	case plan.KindEndServiceMode:
		return j.endServiceMode(ctx, s)
	}
	return fmt.Errorf("run: %w: step kind %s", ErrUnsupported, s.Kind)
}

// recover decides what to do about a failed step: nil to try it again (after waiting for a
// device that left the bus to come back), or the error that ends the run.
func (j *job) recover(ctx context.Context, s *plan.Step, err error, attempt int) error {
	var rp *replanError
	if errors.As(err, &rp) {
		return err
	}
	if errors.Is(err, ErrVerify) || errors.Is(err, ErrUnsupported) || errors.Is(err, ErrCancelled) || errors.Is(err, ErrRestarts) {
		return err
	}
	if isGone(err) || errors.Is(err, ErrGone) {
		return j.recoverLoss(ctx, s, err, attempt)
	}
	if attempt >= j.r.o.Retries {
		return j.stepError(s, err)
	}
	j.emit(Event{Event: EvRetry, StepID: s.ID, StepIndex: j.idx + 1, Steps: len(j.plan.Steps), Error: err.Error(),
		Message: "The step failed while the device stayed connected; trying it again."})
	j.dropLink()
	return nil
}

// recoverLoss handles a device that left the bus in the middle of a step it did not
// restart for: unplugged, power lost, or reset by something else (an external watchdog).
// If it comes back the step is done again (every step can be: a DFU write erases its own
// sectors first); if it keeps coming back by itself in the middle of DFU work, that is
// explained rather than retried forever.
func (j *job) recoverLoss(ctx context.Context, s *plan.Step, err error, attempt int) error {
	// Back means a new enumeration: the bus may list the lost one for a moment longer.
	if j.link != nil && j.resetFrom == "" {
		j.resetFrom = j.inst
	}
	j.dropLink()
	j.emit(Event{Event: EvRetry, StepID: s.ID, StepIndex: j.idx + 1, Steps: len(j.plan.Steps), Error: err.Error(),
		Message: "The device left USB in the middle of the step. If it was unplugged, plug it back in."})
	back := j.lossGuidance()
	l, werr := j.waitMode(ctx, state.ModeUnknown, j.r.t.Reenumerate, "the device to come back on USB", back)
	if werr != nil {
		if errors.Is(werr, ErrCancelled) {
			return werr
		}
		return remedy.With(fmt.Errorf("run: %w: it left USB during step %s (%v) and did not come back within %s", ErrGone, s.ID, err, j.r.t.Reenumerate),
			"Check the USB cable and plug the device back in (a device without power cannot be written). "+
				"Then try the same target again: the device is read again and what is missing or half-written is rewritten. "+
				"If the LED stays dark, hold MODE, tap RESET and release MODE when it blinks yellow (DFU mode).")
	}
	j.losses = append(j.losses, time.Now())
	// With a watchdog the restart was (most likely) the watchdog's: a new window starts now.
	j.windowInst = j.inst
	dfuStep := s.Method.UsesDFU() && (s.Kind == plan.KindWrite || s.Kind == plan.KindInvalidate || s.Kind == plan.KindSetOTAFlag)
	limit := 1
	if j.plan.Windows > 0 {
		limit = 3
	}
	if attempt >= limit {
		switch {
		case dfuStep && j.plan.Windows > 0:
			return remedy.With(fmt.Errorf("run: %w: step %s was interrupted %d times although it was sized for the watchdog window", ErrRestarts, s.ID, attempt+1),
				"The watchdog period is probably shorter than given: run again with a smaller --watchdog value.")
		case j.plan.Windows > 0:
			return remedy.With(fmt.Errorf("run: %w: step %s was interrupted %d times; Device OS installs this part in one go, which cannot be cut to fit the watchdog window", ErrRestarts, s.ID, attempt+1),
				"Disable the external watchdog while flashing (hold its enable pin, or power the board without it), or install this part where its window is long enough.")
		case len(j.losses) >= 2:
			return j.restartsError(s)
		}
		return j.stepError(s, err)
	}
	_ = l
	return nil
}

// restartsError explains a device that restarts by itself during DFU writes: the
// signature of an external watchdog that nothing services while the bootloader runs.
func (j *job) restartsError(s *plan.Step) error {
	every := ""
	if n := len(j.losses); n >= 2 {
		d := j.losses[n-1].Sub(j.losses[n-2])
		every = fmt.Sprintf(", the last two %s apart", d.Round(100*time.Millisecond))
	}
	where := "DFU writes"
	if !s.Method.UsesDFU() {
		where = "the update"
	}
	return remedy.With(fmt.Errorf("run: %w: it restarted %d times in the middle of %s%s, each time before %s (about %s of uninterrupted work) was done; "+
		"a board whose external watchdog resets the MCU every few seconds does exactly this, because nothing services the watchdog while the bootloader runs or an update is installed",
		ErrRestarts, len(j.losses), where, every, s.Slot, s.Estimate.Round(100*time.Millisecond)),
		"If the board has an external watchdog, run again with --watchdog PERIOD (e.g. --watchdog 15s): the work is then cut into pieces that each fit between two resets. "+
			"Otherwise check the power supply and the cable.")
}

func (j *job) stepError(s *plan.Step, err error) error {
	if remedy.Of(err) != "" {
		return fmt.Errorf("run: step %s: %w", s.ID, err)
	}
	rem := "Try the same target again: the device is read again and only what is missing is written."
	if s.Method.UsesDFU() {
		rem += " If it fails again, unplug and replug the device; " + dfu.Remedy + "."
	}
	return remedy.With(fmt.Errorf("run: step %s: %w", s.ID, err), rem)
}

func (j *job) lossGuidance() led.Guidance {
	p := j.plan.Platform
	g := led.Expect(p, led.GoalDFU)
	g.Text = "If the device was unplugged, plug it back in. It comes back blinking yellow (DFU mode) when its Device OS is incomplete, or starts normally (breathing cyan) when it is not."
	return g
}

// isGone reports an error that means the device is no longer on the bus.
func isGone(err error) bool {
	return errors.Is(err, dfu.ErrNoDevice) || errors.Is(err, device.ErrNotAttached) || errors.Is(err, ctrl.ErrNotFound)
}

// ---- finding and waiting ----------------------------------------------------------------

// find asks the doors for the device now.
func (j *job) find(ctx context.Context) (device.Link, error) {
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return j.r.o.Bus.Find(fctx, j.id)
}

// current returns a link to the device, finding it again if the last one is gone.
func (j *job) current(ctx context.Context) (device.Link, error) {
	if j.link != nil {
		return j.link, nil
	}
	l, err := j.find(ctx)
	if err != nil {
		return nil, err
	}
	j.setLink(l)
	return l, nil
}

// waitAttached waits for the device to be on the bus in any mode.
func (j *job) waitAttached(ctx context.Context) (device.Link, error) {
	if l, err := j.find(ctx); err == nil {
		j.setLink(l)
		return l, nil
	}
	// No guidance text: goneRemedy already says to check the cable and the power.
	return j.waitMode(ctx, state.ModeUnknown, j.r.t.Find, "the device "+j.id+" to be attached", led.Guidance{})
}

// modeMatches reports whether the device's mode is what a step needs: DFU, listening, or
// (for normal and safe) Device OS running.
func modeMatches(have, want state.Mode) bool {
	switch want {
	case state.ModeUnknown:
		return have != state.ModeUnknown
	case state.ModeDFU:
		return have == state.ModeDFU
	case state.ModeListening:
		return have == state.ModeListening
	}
	return have.RunsDeviceOS()
}

// wrongModeGrace is how long a device that came back in the wrong mode family is watched
// (over at least wrongModeSightings polls) before the runner acts on it: it may still be
// on its way. It does not depend on the poll interval, so polling faster does not make
// the runner act sooner on a device in passing.
const (
	wrongModeGrace     = 500 * time.Millisecond
	wrongModeSightings = 3
)

// waitMode waits until the device is attached in the wanted mode and, when the runner
// made it restart (resetFrom), is a new enumeration. It emits a waiting event with the
// LED guidance. A device that comes back in the wrong mode is reported as such.
func (j *job) waitMode(ctx context.Context, want state.Mode, timeout time.Duration, what string, g led.Guidance) (device.Link, error) {
	since := j.resetFrom
	if j.link != nil && (since == "" || j.inst != since) && modeMatches(j.mode, want) {
		j.resetFrom = ""
		return j.link, nil
	}
	j.dropLink()
	j.emit(Event{Event: EvWaiting, Waiting: what, TimeoutSeconds: timeout.Seconds(), LED: guidance(g)})
	deadline := time.Now().Add(timeout)
	wrong := 0
	var wrongSince time.Time
	for {
		l, err := j.find(ctx)
		if err == nil {
			fresh := since == "" || l.Instance() != since
			switch {
			case fresh && modeMatches(l.Mode(), want):
				j.setLink(l)
				j.resetFrom = ""
				return l, nil
			case fresh && want != state.ModeUnknown && l.Mode() != state.ModeUnknown:
				if wrong++; wrong == 1 {
					wrongSince = time.Now()
				}
				if wrong >= wrongModeSightings && time.Since(wrongSince) >= wrongModeGrace {
					j.setLink(l)
					j.resetFrom = ""
					return l, &replanError{cause: remedy.With(fmt.Errorf("run: %w: waiting for %s, the device came back in %s mode instead of %s mode",
						ErrWrongMode, what, l.Mode(), want), "Try the same target again: the device is read again and the plan made from what it has.")}
				}
				_ = l.Close()
			default:
				_ = l.Close()
			}
		}
		if ctx.Err() != nil {
			return nil, j.cancelled()
		}
		if time.Now().After(deadline) {
			return nil, remedy.With(fmt.Errorf("run: %w: waited %s for %s", ErrGone, timeout, what), goneRemedy(g))
		}
		select {
		case <-ctx.Done():
			return nil, j.cancelled()
		case <-time.After(j.r.o.Poll):
		}
	}
}

// goneRemedy is what to do about a device that did not show up: the LED to look for
// first, then the cable, then running the same command again.
func goneRemedy(g led.Guidance) string {
	s := "Check the USB cable (some only charge) and that the device is powered; plug it back in if it was unplugged. " +
		"Then try the same target again: the device is read again and only what is missing is written."
	if g.Text != "" {
		s = g.Text + " " + s
	}
	return s
}
