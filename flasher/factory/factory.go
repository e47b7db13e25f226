// Package factory is the engine of a factory bench: it watches the USB bus, and every
// Particle device plugged in gets exactly one run (flasher/run) to the target, several at
// once, with a row in a crash-safe report per unit. `pflash factory` and the desktop
// app's factory tab are thin views on it.
//
// The hard part of a bench is not flashing but telling units apart over time: a unit
// being flashed leaves and rejoins the bus every time it resets (DFU <-> normal), which
// must never look like a new unit; a finished unit left in its socket must not be flashed
// again; and one pulled and plugged back in is a new plug-in, flashed again but flagged,
// since on a bench that usually means a mix-up. Two units with the same device ID (a
// cloned ID, a test fixture) cannot be told apart by anything the host sees, so neither
// is touched.
package factory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/records"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/run"
	dstate "github.com/particle-flasher/particle-flasher/flasher/state"
)

// Record is one unit's row in the report and the record store (flasher/records): one
// type, so the CSV, the JSON lines and the database say the same.
type Record = records.Row

// Results of a Record.
const (
	ResultOK      = records.ResultOK
	ResultAlready = records.ResultAlready
	ResultFailed  = records.ResultFailed
)

// Totals count units (plug-ins) in the session.
type Totals struct {
	// Seen counts plug-ins: every time an ID appears on the bus after being absent (each
	// of two units with the same ID counts).
	Seen int `json:"seen"`
	// Running counts units with a run in progress or waiting for a free slot.
	Running int `json:"running"`
	// OK, Already and Failed count finished units by result.
	OK      int `json:"ok"`
	Already int `json:"already"`
	Failed  int `json:"failed"`
	// Duplicates counts duplicate warnings: an ID attached twice at once, flashed again
	// after a re-plug, or found flashed on another station in the record store.
	Duplicates int `json:"duplicates"`
	// Recorded counts units seen on the bus that this station had finished before it
	// started (Options.Finished): left alone, as a finished unit left in its socket is.
	Recorded int `json:"recorded,omitempty"`
}

// Finished is the number of units that ended (ok, already or failed).
func (t Totals) Finished() int { return t.OK + t.Already + t.Failed }

// Event kinds.
const (
	// EvAttached: a unit was plugged in (DeviceID, Platform).
	EvAttached = "attached"
	// EvStarted: its run starts (a slot was free).
	EvStarted = "started"
	// EvRun: one of the runner's events for this unit (Run).
	EvRun = "run"
	// EvFinished: the unit ended (Record).
	EvFinished = "finished"
	// EvDuplicate: a warning about a device ID seen twice (Message).
	EvDuplicate = "duplicate"
	// EvDetached: a unit that is not being flashed left the bus for longer than Grace.
	EvDetached = "detached"
	// EvTotals: the totals changed (after every finished unit, and at the end).
	EvTotals = "totals"
	// EvRecords: the record store went away (rows are spooled) or came back (the spool
	// was sent); Records says how it stands. Sent by the front end that owns the Recorder.
	EvRecords = "records"
	// EvRecorded: a unit this station finished before the bench (re)started is on the bus;
	// it is not flashed again until unplugged.
	EvRecorded = "recorded"
	// EvUnreadable: a device is on the bus but cannot be read (no permission, busy), so it
	// is not flashed (Message says why and what to do); sent once per distinct problem.
	EvUnreadable = "unreadable"
)

// Event is one thing that happened on the bench; every event carries the totals as they
// are then.
type Event struct {
	Kind     string    `json:"kind"`
	Time     time.Time `json:"time"`
	DeviceID string    `json:"device_id,omitempty"`
	Platform string    `json:"platform,omitempty"`
	// Run is the runner's event for this unit (EvRun).
	Run *run.Event `json:"run,omitempty"`
	// Record is the unit's report row (EvFinished).
	Record *Record `json:"record,omitempty"`
	Totals Totals  `json:"totals"`
	// Records is the record store's state (EvRecords).
	Records *records.Status `json:"records,omitempty"`
	// Message is the warning in words (EvDuplicate) or a note for a person.
	Message string `json:"message,omitempty"`
}

// Options configure a bench.
type Options struct {
	// Bus is where the units are found; required.
	Bus device.Bus
	// Target resolves the target for a platform; called at most once per platform
	// (cached, errors included), concurrently safe.
	Target func(ctx context.Context, p *platform.Platform) (plan.Target, error)
	// Jobs is how many units are flashed at once (0: 8).
	Jobs int
	// Timeouts bound the runner's waits (zero fields: run.DefaultTimeouts).
	Timeouts run.Timeouts
	// Journal keeps the runner's per-device journals; may be nil.
	Journal *run.Store
	// Report receives a row per finished unit; may be nil.
	Report *Report
	// Recorder receives a row when each unit's run starts (result "running") and again
	// when it ends, under one run ID; may be nil. It returns the unit's finished runs on
	// other stations, which are warned about (EvDuplicate).
	Recorder Recorder
	// Station, Operator and Lot go in every row; TargetName names the target ("4.1.0").
	Station, Operator, Lot, TargetName string
	// Finished holds device IDs this station finished before this session (read from
	// the record store at start): sighted on the bus they count as finished units left
	// in their sockets, until unplugged.
	Finished map[string]bool
	// Events is called from one goroutine at a time, in order per device; it must not
	// block long (DFU writes of other units are waiting).
	Events func(Event)
	// Poll is how often Bus.List is asked for new units (0: 250ms); a unit's runner, waiting
	// for its device to come back, looks at most run.DefaultPoll apart.
	Poll time.Duration
	// Grace is how long a finished unit must be gone from the bus to count as unplugged
	// (0: 3s). It must outlast a reset: a unit that restarts once more after its run
	// would otherwise be flashed again.
	Grace time.Duration
	// Until stops the bench (after running units finish) when it returns true; it is
	// asked after every finished unit. nil: run until ctx ends.
	Until func(Totals) bool
	// Logger receives debug details (default slog.Default()).
	Logger *slog.Logger
	// ProtectWith, when set, is a protected bootloader build (its SECURITY_MODE extension
	// says protected) written to every unit of its platform at the end of a good run:
	// Device Protection on, offline, as particle-cli's `device-protection enable --file`.
	ProtectWith *module.Module
	// Hold, when set, is called before a unit's run and its release after it: the desktop
	// app keeps its device watcher from reading a unit while it is written (the watcher's
	// Hold). An error fails the unit's run.
	Hold func(ctx context.Context, id string) (release func(), err error)
}

// Recorder keeps rows (records.Recorder).
type Recorder interface {
	Record(ctx context.Context, row records.Row) (others []records.Row, err error)
}

// unit states.
type state int

const (
	// absent: not on the bus (or never seen): the next sighting is a new plug-in.
	absent state = iota
	// active: queued for a slot or being flashed. Whatever the bus shows meanwhile
	// (resets, DFU <-> normal) is the run's business.
	active
	// done: finished in this plug-in; not flashed again until unplugged for Grace.
	done
	// held: attached twice at once; never flashed until every copy is gone for Grace.
	held
)

// unit is everything known about one device ID in the session.
type unit struct {
	id       string
	plat     *platform.Platform
	st       state
	lastSeen time.Time
	// plugs counts the plug-ins that were processed; finishes the runs that ended, and
	// lastFinish when the last one did (for the re-plug warning).
	plugs      int
	finishes   int
	lastFinish time.Time
	// dupWarned: a duplicate warning was given in this episode.
	dupWarned bool
	// recorded: found finished in the record store at start.
	recorded bool
}

// bench is one Run.
type bench struct {
	o   Options
	log *slog.Logger
	sem *semaphore.Weighted

	mu     sync.Mutex
	units  map[string]*unit
	totals Totals
	// stopping: no new unit is started (Until said so or ctx ended).
	stopping bool
	repErr   error

	emitMu sync.Mutex

	tmu     sync.Mutex
	targets map[string]*targetEntry

	wg sync.WaitGroup
}

type targetEntry struct {
	once sync.Once
	t    plan.Target
	err  error
}

// Run runs the bench until ctx ends or Until says so, then waits for the units being
// flashed (a cancelled ctx stops them at their next safe point) and returns the totals.
// The error is nil unless the options are unusable or a report row could not be written.
func Run(ctx context.Context, o Options) (Totals, error) {
	if o.Bus == nil || o.Target == nil {
		return Totals{}, errors.New("factory: Bus and Target are required")
	}
	if o.Jobs <= 0 {
		o.Jobs = 8
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	if o.Grace <= 0 {
		o.Grace = 3 * time.Second
	}
	b := &bench{o: o, log: o.Logger, sem: semaphore.NewWeighted(int64(o.Jobs)),
		units: map[string]*unit{}, targets: map[string]*targetEntry{}}
	if b.log == nil {
		b.log = slog.Default()
	}
	// startCtx ends when no new unit may start; running units keep ctx, so Until lets
	// them finish while a cancel stops them at a safe point.
	startCtx, stopStarting := context.WithCancel(ctx)
	defer stopStarting()
	b.loop(ctx, startCtx, stopStarting)
	b.wg.Wait()
	b.emit(Event{Kind: EvTotals})
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.totals, b.repErr
}

// loop polls the bus until the bench stops.
func (b *bench) loop(ctx, startCtx context.Context, stopStarting func()) {
	t := b.o.Timeouts
	listTimeout := t.Find
	if listTimeout <= 0 {
		listTimeout = run.DefaultTimeouts.Find
	}
	var lastErr string
	tick := time.NewTicker(b.o.Poll)
	defer tick.Stop()
	for {
		b.mu.Lock()
		stop := b.stopping
		b.mu.Unlock()
		if stop || startCtx.Err() != nil {
			stopStarting()
			return
		}
		lctx, cancel := context.WithTimeout(startCtx, listTimeout)
		devs, err := b.o.Bus.List(lctx)
		cancel()
		if err != nil {
			// Logged once per distinct error: a bench without udev rules would otherwise
			// fill the log four times a second.
			if msg := err.Error(); msg != lastErr && startCtx.Err() == nil {
				b.log.Warn("factory: listing devices", "err", err)
				lastErr = msg
			}
		} else {
			readable, problem := device.Readable(devs)
			switch {
			case problem == nil:
				lastErr = ""
			case problem.Error() != lastErr:
				// Said once: the unit stays unreadable until someone fixes the cause, and
				// the others are flashed meanwhile.
				lastErr = problem.Error()
				msg := problem.Error()
				if r := remedy.Of(problem); r != "" {
					msg += ". What to do: " + r
				}
				b.log.Warn("factory: a device cannot be read", "err", problem)
				b.emit(Event{Kind: EvUnreadable, Message: msg})
			}
			b.observe(ctx, startCtx, readable)
		}
		select {
		case <-startCtx.Done():
		case <-tick.C:
		}
	}
}

// observe handles one listing of the bus.
func (b *bench) observe(ctx, startCtx context.Context, devs []device.Attached) {
	now := time.Now()
	byID := map[string][]device.Attached{}
	var order []string
	for _, d := range devs {
		id := strings.ToLower(d.ID)
		if id == "" {
			continue
		}
		if _, ok := byID[id]; !ok {
			order = append(order, id)
		}
		byID[id] = append(byID[id], d)
	}
	sort.Strings(order)
	var events []Event
	// What a run needs is copied under b.mu: the unit's fields change with later listings.
	type starting struct {
		u    *unit
		plug int
		plat *platform.Platform
	}
	var start []starting
	b.mu.Lock()
	for _, id := range order {
		at := byID[id]
		u := b.units[id]
		if u == nil {
			u = &unit{id: id}
			b.units[id] = u
		}
		u.lastSeen = now
		if at[0].Platform != nil {
			u.plat = at[0].Platform
		}
		if len(at) > 1 {
			events = append(events, b.duplicateAtOnce(u, at)...)
			continue
		}
		if u.st != absent {
			// Being flashed (its resets are the run's), finished in this plug-in, or
			// held back as a duplicate: nothing new.
			continue
		}
		if u.plugs == 0 && u.finishes == 0 && b.o.Finished[id] && !u.recorded {
			// Finished by this station before the bench (re)started, and still in its
			// socket: a finished unit, not a new plug-in.
			u.recorded, u.st, u.finishes, u.lastFinish = true, done, 1, now
			b.totals.Recorded++
			events = append(events, Event{Kind: EvRecorded, DeviceID: id, Platform: platName(u.plat),
				Message: fmt.Sprintf("device %s was finished on this station before the bench started; unplug it, or pull it for a few seconds and plug it back in to flash it again", id)})
			continue
		}
		// A new plug-in.
		b.totals.Seen++
		u.dupWarned = false
		events = append(events, Event{Kind: EvAttached, DeviceID: id, Platform: platName(u.plat), Message: at[0].Where})
		if b.stopping {
			// Seen but not started: the bench is closing. Marked done so it is not
			// picked up by a later listing of this same run.
			u.st = done
			continue
		}
		u.plugs++
		if u.finishes > 0 {
			b.totals.Duplicates++
			events = append(events, Event{Kind: EvDuplicate, DeviceID: id, Platform: platName(u.plat),
				Message: fmt.Sprintf("device %s was flashed before at %s in this session (plug-in %d); flashing it again",
					id, u.lastFinish.Format("15:04:05"), u.plugs)})
		}
		u.st = active
		b.totals.Running++
		start = append(start, starting{u, u.plugs, u.plat})
	}
	// Units that left the bus: a finished or held one gone for longer than Grace was
	// unplugged. An active one is resetting (or gone for good, which its run reports).
	for id, u := range b.units {
		if _, ok := byID[id]; ok || (u.st != done && u.st != held) {
			continue
		}
		if now.Sub(u.lastSeen) > b.o.Grace {
			u.st = absent
			events = append(events, Event{Kind: EvDetached, DeviceID: id, Platform: platName(u.plat)})
		}
	}
	b.mu.Unlock()
	for _, e := range events {
		b.emit(e)
	}
	for _, s := range start {
		b.wg.Add(1)
		go b.flash(ctx, startCtx, s.u, s.plug, s.plat)
	}
}

// duplicateAtOnce handles an ID listed more than once in one listing (called with b.mu
// held). Doors list one entry per enumeration, so two entries are two units (at two
// Wheres on real USB): nothing the host can address tells them apart, and flashing "the
// device with this ID" could write half a plan to one and half to the other.
func (b *bench) duplicateAtOnce(u *unit, at []device.Attached) []Event {
	var where []string
	for _, a := range at {
		where = append(where, a.Where)
	}
	switch u.st {
	case active:
		// Already being flashed when the twin arrived: the run cannot be stopped safely
		// mid-step, but the person must know its result is not to be trusted.
		if u.dupWarned {
			return nil
		}
		u.dupWarned = true
		b.totals.Duplicates++
		b.totals.Seen += len(at) - 1
		return []Event{{Kind: EvDuplicate, DeviceID: u.id, Platform: platName(u.plat),
			Message: fmt.Sprintf("device ID %s is attached %d times (%s) while one of them is being flashed: the units cannot be told apart, so check both afterwards and unplug one", u.id, len(at), strings.Join(where, ", "))}}
	case held:
		return nil
	}
	if u.st == absent {
		b.totals.Seen += len(at)
	} else {
		b.totals.Seen += len(at) - 1
	}
	u.st = held
	u.dupWarned = true
	b.totals.Duplicates++
	return []Event{{Kind: EvDuplicate, DeviceID: u.id, Platform: platName(u.plat),
		Message: fmt.Sprintf("device ID %s is attached %d times (%s): the units cannot be told apart, so neither is flashed; unplug all of them and flash them one at a time", u.id, len(at), strings.Join(where, ", "))}}
}

// flash runs one unit: wait for a slot, prepare, execute, report.
//
// The run uses ctx, the bench's own context, not startCtx: Until lets running units
// finish, while a cancel of ctx stops them at their next safe point.
func (b *bench) flash(ctx, startCtx context.Context, u *unit, plug int, p *platform.Platform) {
	defer b.wg.Done()
	id := u.id
	notStarted := func() {
		// The bench closed while the unit waited for a slot: it was never touched, so
		// it has no row, and this plug-in does not count.
		b.mu.Lock()
		u.st, u.plugs = done, u.plugs-1
		b.totals.Running--
		b.mu.Unlock()
	}
	if err := b.sem.Acquire(startCtx, 1); err != nil {
		notStarted()
		return
	}
	defer b.sem.Release(1)
	b.mu.Lock()
	stopping := b.stopping
	b.mu.Unlock()
	if stopping {
		// Until was satisfied by the unit that freed this slot; startCtx ends only at
		// the loop's next poll.
		notStarted()
		return
	}
	start := time.Now()
	b.emit(Event{Kind: EvStarted, DeviceID: id, Platform: platName(p)})
	rec := Record{DeviceID: id, RunID: newRunID(), Platform: platName(p), Before: "unknown", After: "unknown", Plug: plug,
		Started: start.UTC(), Result: records.ResultRunning, Station: b.o.Station, Operator: b.o.Operator, Lot: b.o.Lot,
		Target: b.o.TargetName}
	// The running row first: if the bench dies now, the store still shows the attempt
	// (interrupted, once the station starts again).
	b.record(ctx, rec)
	err := b.holdAndRun(ctx, id, p, &rec)
	rec.Time = time.Now().UTC()
	rec.DurationSeconds = time.Since(start).Seconds()
	if err != nil {
		rec.Result, rec.Error, rec.Remedy = ResultFailed, err.Error(), remedy.Of(err)
	}
	others := b.record(ctx, rec)
	if b.o.Report != nil {
		if werr := b.o.Report.Write(rec); werr != nil {
			b.log.Error("factory: report row not written", "device", id, "err", werr)
			b.mu.Lock()
			if b.repErr == nil {
				b.repErr = werr
			}
			b.mu.Unlock()
		}
	}
	b.mu.Lock()
	u.st, u.lastSeen = done, time.Now()
	u.finishes++
	u.lastFinish = rec.Time.Local()
	b.totals.Running--
	switch rec.Result {
	case ResultOK:
		b.totals.OK++
	case ResultAlready:
		b.totals.Already++
	default:
		b.totals.Failed++
	}
	if b.o.Until != nil && b.o.Until(b.totals) {
		b.stopping = true
	}
	b.mu.Unlock()
	b.emit(Event{Kind: EvFinished, DeviceID: id, Platform: platName(p), Record: &rec})
	if len(others) > 0 {
		var where []string
		for _, o := range others {
			where = append(where, fmt.Sprintf("%s at %s (lot %q, %s)", o.Station, o.Time.Local().Format("2006-01-02 15:04"), o.Lot, o.Result))
		}
		b.mu.Lock()
		b.totals.Duplicates++
		b.mu.Unlock()
		b.emit(Event{Kind: EvDuplicate, DeviceID: id, Platform: platName(p),
			Message: fmt.Sprintf("device %s was also flashed on another station: %s; check for a mix-up of units or of stickers", id, strings.Join(where, "; "))})
	}
	b.emit(Event{Kind: EvTotals})
}

// record hands a row to the Recorder. A row that cannot be kept at all (not even in the
// spool) fails the bench at the end, as a report row that cannot be written does.
func (b *bench) record(ctx context.Context, rec Record) []Record {
	if b.o.Recorder == nil {
		return nil
	}
	others, err := b.o.Recorder.Record(context.WithoutCancel(ctx), rec)
	if err != nil {
		b.log.Error("factory: record not kept", "device", rec.DeviceID, "err", err)
		b.mu.Lock()
		if b.repErr == nil {
			b.repErr = err
		}
		b.mu.Unlock()
	}
	return others
}

// newRunID names one run of one unit: random, so two benches never make the same.
func newRunID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// runUnit prepares and executes the run, filling the record's before, after and result.
func (b *bench) runUnit(ctx context.Context, id string, p *platform.Platform, rec *Record) error {
	if p == nil {
		return remedy.With(fmt.Errorf("device %s is a platform this version does not know", id), "update pflash")
	}
	tgt, err := b.target(ctx, p)
	if err != nil {
		b.emitRunFailed(id, err)
		return err
	}
	r := run.New(run.Options{Bus: b.o.Bus, Journal: b.o.Journal, Timeouts: b.o.Timeouts, Poll: min(b.o.Poll, run.DefaultPoll),
		// Nobody stands at a factory bench to press buttons: a unit that needs them fails
		// with a remedy instead of holding its slot for minutes.
		NoButtons: true, Logger: b.log,
		Events: func(e run.Event) {
			e.DeviceID = id
			b.emit(Event{Kind: EvRun, DeviceID: id, Platform: p.Name, Run: &e})
		}})
	pr, err := r.Prepare(ctx, id, tgt)
	if err != nil {
		// Prepare emits nothing; the done event a runner's watcher expects is made here,
		// as Runner.Flash does.
		b.emitRunFailed(id, err)
		return err
	}
	rec.Before = deviceOS(pr.Reading)
	if pr.Reading != nil {
		identify(rec, pr.Reading.State)
		rec.ModulesBefore = records.ModulesOf(pr.Reading.State)
	}
	res, err := r.Execute(ctx, pr)
	if err != nil {
		return err
	}
	last := pr.Reading
	if res != nil {
		rec.After = deviceOS(res.Reading)
		last = res.Reading
	}
	rec.Result = ResultOK
	if len(pr.Plan.Steps) == 0 {
		rec.Result = ResultAlready
	}
	if pb := b.o.ProtectWith; pb != nil && pb.PlatformID == p.ID {
		ppr, err := r.Prepare(ctx, id, plan.Target{Name: "Device Protection", Modules: []*module.Module{pb}})
		if err != nil {
			return fmt.Errorf("protect the unit: %w", err)
		}
		pres, err := r.Execute(ctx, ppr)
		if err != nil {
			return fmt.Errorf("protect the unit: %w", err)
		}
		if pres != nil {
			last = pres.Reading
		}
		if len(ppr.Plan.Steps) > 0 {
			rec.Result = ResultOK
		}
	}
	if last != nil {
		rec.Protection, rec.SetupDone = last.State.Protection, last.State.SetupDone
		identify(rec, last.State)
		rec.ModulesAfter = records.ModulesOf(last.State)
		rec.App = records.AppOf(last.State)
	}
	return nil
}

// identify fills the row's identity from a reading, keeping what an earlier reading gave
// where this one has nothing (a DFU reading has no serial number).
func identify(rec *Record, st dstate.Device) {
	id := st.Identity
	for _, f := range []struct {
		dst *string
		v   string
	}{{&rec.SerialNumber, id.SerialNumber}, {&rec.ICCID, id.ICCID}, {&rec.IMEI, id.IMEI}} {
		if f.v != "" {
			*f.dst = f.v
		}
	}
}

func (b *bench) emitRunFailed(id string, err error) {
	b.emit(Event{Kind: EvRun, DeviceID: id, Run: &run.Event{Event: run.EvDone, Time: time.Now(), DeviceID: id,
		Result: run.ResultFailed, Error: err.Error(), Remedy: remedy.Of(err)}})
}

// holdAndRun runs the unit while holding it (Options.Hold).
func (b *bench) holdAndRun(ctx context.Context, id string, p *platform.Platform, rec *Record) error {
	if b.o.Hold != nil {
		hctx, cancel := context.WithTimeout(ctx, b.o.Timeouts.Find+time.Minute)
		release, err := b.o.Hold(hctx, id)
		cancel()
		if err != nil {
			return remedy.With(fmt.Errorf("waiting for the device to be free: %w", err), "unplug the unit, plug it back in and let the bench try again")
		}
		defer release()
	}
	return b.runUnit(ctx, id, p, rec)
}

// target resolves (once per platform) the target.
func (b *bench) target(ctx context.Context, p *platform.Platform) (plan.Target, error) {
	b.tmu.Lock()
	e := b.targets[p.Name]
	if e == nil {
		e = &targetEntry{}
		b.targets[p.Name] = e
	}
	b.tmu.Unlock()
	e.once.Do(func() { e.t, e.err = b.o.Target(ctx, p) })
	return e.t, e.err
}

// emit stamps an event with the time and the totals and hands it to Options.Events, one
// at a time.
func (b *bench) emit(e Event) {
	if b.o.Events == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	b.emitMu.Lock()
	defer b.emitMu.Unlock()
	// The totals are read under emitMu so that the totals seen by Events never go back.
	b.mu.Lock()
	e.Totals = b.totals
	b.mu.Unlock()
	b.o.Events(e)
}

// deviceOS names the Device OS a reading shows: what the device reports, else the
// release of its system part (the lowest index), else "none".
func deviceOS(rd *run.Reading) string {
	if rd == nil {
		return "unknown"
	}
	if v := rd.State.DeviceOSName(); v != "" {
		return v
	}
	return "none"
}

func platName(p *platform.Platform) string {
	if p == nil {
		return ""
	}
	return p.Name
}
