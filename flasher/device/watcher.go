package device

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/state"
	"github.com/particle-flasher/particle-flasher/flasher/usb"
)

// EventKind says what happened to a device.
type EventKind int

// Event kinds.
const (
	// Appeared: a device the watcher did not know (or had dropped) is attached.
	Appeared EventKind = iota
	// ChangedMode: the device is now in another mode (PrevMode says which it was in); also
	// sent when a missing device comes back in another mode.
	ChangedMode
	// ModulesRead: a module reading finished (Device.Modules, or Device.ModulesErr).
	ModulesRead
	// Missing: the device left every door. It is kept for the grace period, because a
	// device resetting into or out of DFU mode is off the bus for a second or two.
	Missing
	// Returned: a missing device is back, in the same mode.
	Returned
	// Disappeared: the device has been missing for longer than the grace period.
	Disappeared
	// DuplicateID: a second unit claims the identity of one already attached (the Photon
	// DFU serial defect, device-os#1425). Both are kept as distinct devices, both marked
	// Duplicate; Other is the key of the one it collides with.
	DuplicateID
	// DoorFailed: a door's listing failed (Door, Err). Reported once per distinct error.
	DoorFailed
	// Ready: every device present at the first poll has been identified and read. Sent
	// once, so that a one-shot listing knows when it has the whole picture.
	Ready
)

var eventNames = [...]string{"appeared", "changed-mode", "modules-read", "missing", "returned", "disappeared", "duplicate-id", "door-failed", "ready"}

// String is the event's name in JSON output ("appeared", "changed-mode", ...).
func (k EventKind) String() string {
	if k >= 0 && int(k) < len(eventNames) {
		return eventNames[k]
	}
	return fmt.Sprintf("event(%d)", int(k))
}

// Event is one thing that happened.
type Event struct {
	Kind   EventKind
	Device Device
	// PrevMode is the mode before a ChangedMode.
	PrevMode state.Mode
	// Other is, for DuplicateID, the key of the device sharing the identity.
	Other string
	// Door and Err describe a DoorFailed; Err is also a failed reading's error.
	Door string
	Err  error
	Time time.Time
}

// Options configure a Watcher.
type Options struct {
	// Doors to poll; required.
	Doors []Door
	// Interval between polls (default DefaultInterval).
	Interval time.Duration
	// BusyInterval is the interval between polls while a writer holds a device (Hold) or a
	// device is expected back (Expect): a run waiting for a device to re-enumerate sees it
	// within tens of milliseconds (default 20 ms).
	BusyInterval time.Duration
	// Grace is how long a device that left every door is kept as Missing before it is
	// reported Disappeared (default 4 s: a reset into DFU takes 1–2 s on the bus, a Gen2
	// boot a little longer). A negative value means no grace at all. Expect extends it for
	// one device.
	Grace time.Duration
	// ModeRecheck is how often a normal-mode device is asked for its mode again, since
	// entering or leaving listening mode does not re-enumerate (default 1 s).
	ModeRecheck time.Duration
	// ProbeTimeout bounds asking a device its identity and mode (default 5 s).
	ProbeTimeout time.Duration
	// ModulesTimeout bounds one module reading (default 2 min: a DFU reading verifies every
	// CRC, about a megabyte over a full-speed control pipe).
	ModulesTimeout time.Duration
	// ReadModules decides whether a device's modules are read when it appears or changes
	// mode (nil: always). A runner about to write a device can veto the reading, which would
	// otherwise compete with it for the DFU interface.
	ReadModules func(Device) bool
	// Buffer is the event channel's capacity (default 64).
	Buffer int
	// Logger gets door and probe failures at debug level (default slog.Default()).
	Logger *slog.Logger
}

// Watcher merges what the doors see into one Device per device ID and reports changes.
type Watcher struct {
	o Options

	mu      sync.Mutex
	devs    map[string]*devState
	sights  map[string]*sightState
	expect  map[string]time.Time
	doorErr map[string]string
	// holds counts the writers holding each device ID (Hold); reading counts the module
	// readings in flight per ID, so that Hold can wait for them.
	holds   map[string]int
	reading map[string]int
	pending []Event
	tasks   int
	polled  bool
	ready   bool

	results chan func()
	out     chan Event
	// wake tells the loop that a Hold or Expect may have shortened the poll interval.
	wake    chan struct{}
	started bool
}

type sightState struct {
	s         Sighting
	door      Door
	probing   bool
	probed    bool
	waiting   bool // probed (nothing to ask) but not attached yet
	probe     Probe
	lastProbe time.Time
	dev       string // key of the device it is attached to
}

type devState struct {
	d        Device
	identity string // ID, or serial-based identity
	sights   map[string]*sightState
	paths    map[string]bool // every path it was seen at, to tell duplicates apart
	safe     bool            // inferred from a normal-mode module reading
	base     state.Mode      // the mode the doors tell (before the safe-mode inference)
	fresh    bool            // created, not announced yet
	dupOf    *devState       // for a fresh duplicate: the device it collides with
	needRead bool            // its modules are to be read (again)
	readGen  uint64
	gone     bool
}

// DefaultInterval is how often a watcher looks at its doors unless told otherwise: a device
// plugged in is announced within one interval and a scan.
const DefaultInterval = 250 * time.Millisecond

// NewWatcher prepares a watcher; Run starts it.
func NewWatcher(o Options) *Watcher {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.BusyInterval <= 0 {
		o.BusyInterval = 20 * time.Millisecond
	}
	o.BusyInterval = min(o.BusyInterval, o.Interval)
	switch {
	case o.Grace == 0:
		o.Grace = 4 * time.Second
	case o.Grace < 0:
		o.Grace = 0
	}
	if o.ModeRecheck <= 0 {
		o.ModeRecheck = time.Second
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = 5 * time.Second
	}
	if o.ModulesTimeout <= 0 {
		o.ModulesTimeout = 2 * time.Minute
	}
	if o.Buffer <= 0 {
		o.Buffer = 64
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Watcher{o: o, devs: map[string]*devState{}, sights: map[string]*sightState{}, expect: map[string]time.Time{},
		doorErr: map[string]string{}, holds: map[string]int{}, reading: map[string]int{}, results: make(chan func()), out: make(chan Event, o.Buffer), wake: make(chan struct{}, 1)}
}

// Run polls until ctx is done and returns the event channel. The channel is closed once
// the watcher and every probe and reading it started have stopped, so cancelling ctx and
// draining the channel leaves no goroutine behind. Run may be called once.
func (w *Watcher) Run(ctx context.Context) <-chan Event {
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		panic("device: Watcher.Run called twice")
	}
	w.started = true
	w.mu.Unlock()
	go w.loop(ctx)
	return w.out
}

// Devices returns a snapshot of every known device (missing ones included), by key.
func (w *Watcher) Devices() []Device {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Device, 0, len(w.devs))
	for _, d := range w.devs {
		out = append(out, d.snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Expect tells the watcher that the device with this ID (or key) is about to leave the bus
// and come back, e.g. because the caller asked it to reset into DFU mode, so it stays the
// same device for up to d even if that is longer than the grace period.
func (w *Watcher) Expect(id string, d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.expect[strings.ToLower(id)] = time.Now().Add(d)
	w.poke()
}

// poke wakes the loop to look at the poll interval again.
func (w *Watcher) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Refresh asks for the modules of the device with this ID to be read again at the next
// poll: a writer that vetoed the readings while it worked (Options.ReadModules) calls it
// when it is done, since the device's last reading predates what it wrote.
func (w *Watcher) Refresh(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.refreshLocked(id)
}

// Hold keeps the watcher's hands off the device with this ID: no module reading starts
// for it until release is called, and Hold returns once a reading already in flight has
// ended (or ctx ends: then it returns ctx's error and holds nothing). A writer (the app's
// runner, a factory bench) holds the devices it works on, because a reading competes with
// the write for the device's DFU interface and can leave the DfuSe state machine in a
// state the writer does not expect. release asks for a fresh reading; it may be called
// more than once.
func (w *Watcher) Hold(ctx context.Context, id string) (release func(), err error) {
	id = strings.ToLower(id)
	w.mu.Lock()
	w.holds[id]++
	w.mu.Unlock()
	w.poke()
	var once sync.Once
	release = func() {
		once.Do(func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.holds[id]--; w.holds[id] <= 0 {
				delete(w.holds, id)
				w.refreshLocked(id)
			}
		})
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		w.mu.Lock()
		n := w.reading[id]
		w.mu.Unlock()
		if n == 0 {
			return release, nil
		}
		select {
		case <-ctx.Done():
			release()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// Held reports whether a writer holds the device with this ID (Hold).
func (w *Watcher) Held(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.holds[strings.ToLower(id)] > 0
}

func (w *Watcher) refreshLocked(id string) {
	for _, dev := range w.devs {
		if strings.EqualFold(dev.d.ID, id) && !dev.gone && !dev.fresh {
			dev.needRead = true
		}
	}
}

func (w *Watcher) loop(ctx context.Context) {
	tctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		// Let finishing tasks deliver (or drop) their results, then stop.
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		for {
			select {
			case <-w.results:
			case <-done:
				close(w.out)
				return
			}
		}
	}()
	spawn := func(f func(ctx context.Context) func()) {
		w.tasks++
		wg.Add(1)
		go func() {
			defer wg.Done()
			apply := f(tctx)
			select {
			case w.results <- apply:
			case <-tctx.Done():
			}
		}()
	}
	t := time.NewTimer(w.o.Interval)
	defer t.Stop()
	w.poll(ctx, spawn)
	next := time.Now().Add(w.interval())
	t.Reset(time.Until(next))
	for {
		if !w.flush(ctx) {
			return
		}
		// A Hold or Expect since the timer was set brings the next poll forward.
		if busy := time.Now().Add(w.interval()); busy.Before(next) {
			next = busy
			t.Reset(time.Until(next))
		}
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-t.C:
			w.poll(ctx, spawn)
			next = time.Now().Add(w.interval())
			t.Reset(time.Until(next))
		case apply := <-w.results:
			w.mu.Lock()
			w.tasks--
			w.mu.Unlock()
			apply()
			w.mu.Lock()
			w.checkReady()
			w.mu.Unlock()
		}
	}
}

// interval is the time to the next poll: short while a writer holds a device or a device
// is expected back, so that its return is seen at once.
func (w *Watcher) interval() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.holds) > 0 {
		return w.o.BusyInterval
	}
	now := time.Now()
	for _, until := range w.expect {
		if until.After(now) {
			return w.o.BusyInterval
		}
	}
	return w.o.Interval
}

// flush sends the events queued while the lock was held.
func (w *Watcher) flush(ctx context.Context) bool {
	w.mu.Lock()
	evs := w.pending
	w.pending = nil
	w.mu.Unlock()
	for _, e := range evs {
		select {
		case w.out <- e:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

func (w *Watcher) emit(e Event) {
	e.Time = time.Now()
	w.pending = append(w.pending, e)
}

func (w *Watcher) checkReady() {
	if w.polled && !w.ready && w.tasks == 0 {
		w.ready = true
		w.emit(Event{Kind: Ready})
	}
}

func sightID(door, key string) string { return door + "|" + key }

// poll lists every door and reconciles.
func (w *Watcher) poll(ctx context.Context, spawn func(func(context.Context) func())) {
	type listing struct {
		door Door
		s    []Sighting
		err  error
	}
	var ls []listing
	for _, d := range w.o.Doors {
		s, err := d.Sightings(ctx)
		ls = append(ls, listing{d, s, err})
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	// Vanished first, so a device that re-enumerated within one poll is not a duplicate of
	// itself.
	touched := map[*devState]bool{}
	for _, l := range ls {
		if l.err != nil {
			if msg := l.err.Error(); w.doorErr[l.door.Name()] != msg {
				w.doorErr[l.door.Name()] = msg
				w.emit(Event{Kind: DoorFailed, Door: l.door.Name(), Err: l.err})
			}
			continue // keep what the door saw last rather than dropping every device
		}
		delete(w.doorErr, l.door.Name())
		present := map[string]bool{}
		for _, s := range l.s {
			present[sightID(l.door.Name(), s.Key)] = true
		}
		for id, ss := range w.sights {
			if ss.door == l.door && !present[id] {
				delete(w.sights, id)
				if dev := w.devs[ss.dev]; dev != nil {
					delete(dev.sights, id)
					touched[dev] = true
				}
			}
		}
	}
	for _, l := range ls {
		if l.err != nil {
			continue
		}
		for _, s := range l.s {
			id := sightID(l.door.Name(), s.Key)
			ss := w.sights[id]
			if ss == nil {
				ss = &sightState{s: s, door: l.door}
				w.sights[id] = ss
				if l.door.NeedsProbe(s) {
					w.startProbe(id, ss, spawn)
				} else {
					ss.probed = true
					ss.probe = Probe{DeviceID: s.DeviceID, Platform: s.Platform, Mode: sightingMode(s)}
					ss.waiting = true // attached below, unless another door is still asking
				}
				continue
			}
			ss.s.Err = s.Err
			// Normal-mode devices are re-asked their mode now and then; unidentified serial
			// ports are re-asked who they are less often.
			every := w.o.ModeRecheck
			if ss.dev == "" {
				every *= 5
			}
			if ss.probed && !ss.probing && l.door.NeedsProbe(ss.s) && now.Sub(ss.lastProbe) >= every {
				w.startProbe(id, ss, spawn)
			}
		}
	}
	w.attachWaiting(spawn)
	for dev := range touched { // lost a door but kept another: its doors (and mode) changed
		if w.devs[dev.d.Key] == dev && len(dev.sights) > 0 {
			w.update(dev, spawn)
		}
	}
	w.announce(spawn)
	w.settle(now, spawn)
	w.polled = true
	w.checkReady()
}

func sightingMode(s Sighting) state.Mode {
	if s.Door == DoorUSB {
		if s.DFU {
			return ModeDFU
		}
		return ModeNormal
	}
	return ModeUnknown
}

func (w *Watcher) startProbe(id string, ss *sightState, spawn func(func(context.Context) func())) {
	ss.probing = true
	s, door := ss.s, ss.door
	spawn(func(ctx context.Context) func() {
		pctx, cancel := context.WithTimeout(ctx, w.o.ProbeTimeout)
		pr, err := door.Probe(pctx, s)
		cancel()
		return func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			cur := w.sights[id]
			if cur != ss {
				return // gone meanwhile
			}
			ss.probing, ss.lastProbe = false, time.Now()
			if err != nil {
				w.o.Logger.Debug("device: probe failed", "door", door.Name(), "path", s.Path, "err", err)
				if ss.probed {
					return // keep what an earlier probe learnt
				}
				// Keep what the listing told (USB: normal mode).
				pr = Probe{DeviceID: s.DeviceID, Platform: s.Platform, Mode: sightingMode(s)}
			}
			if pr.Platform == nil {
				pr.Platform = s.Platform
			}
			first := !ss.probed
			ss.probed, ss.probe = true, pr
			if first || ss.dev == "" {
				w.attach(id, ss, spawn)
			} else if dev := w.devs[ss.dev]; dev != nil {
				w.update(dev, spawn)
			}
			w.attachWaiting(spawn)
			w.announce(spawn)
			w.checkReady()
		}
	})
}

// listedIdentity is the identity a sighting's listing suggests, before any probe.
func listedIdentity(s Sighting) string {
	if s.DeviceID != "" {
		return strings.ToLower(s.DeviceID)
	}
	if s.Serial != "" {
		return "serial:" + strings.ToLower(s.Serial)
	}
	return ""
}

// attachWaiting attaches the sightings that needed no probe, once no other door is still
// asking the same device who it is and what mode it is in, so that a device is announced
// once with its real mode (a listening-mode Boron's serial port does not make it appear in
// "unknown" mode while its USB door is being asked).
func (w *Watcher) attachWaiting(spawn func(func(context.Context) func())) {
	asking := map[string]bool{}
	for _, ss := range w.sights {
		if ss.probing && !ss.probed {
			if id := listedIdentity(ss.s); id != "" {
				asking[id] = true
			}
		}
	}
	ids := make([]string, 0, len(w.sights))
	for id, ss := range w.sights {
		if ss.waiting {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		ss := w.sights[id]
		if asking[identityOf(ss)] {
			continue
		}
		ss.waiting = false
		w.attach(id, ss, spawn)
	}
}

// identityOf is what joins sightings into one device: the device ID, else the serial
// string (defect serials still group a device's normal and DFU doors), else nothing.
func identityOf(ss *sightState) string {
	if ss.probe.DeviceID != "" {
		return strings.ToLower(ss.probe.DeviceID)
	}
	if ss.s.Serial != "" {
		return "serial:" + strings.ToLower(ss.s.Serial)
	}
	return ""
}

// attach joins a probed sighting to its device, creating the device if new.
func (w *Watcher) attach(id string, ss *sightState, spawn func(func(context.Context) func())) {
	ident := identityOf(ss)
	if ident == "" {
		if ss.s.Door == DoorSerial {
			return // an unidentified serial port is no device of its own; re-probed later
		}
		ident = "usb:" + ss.s.Path // e.g. a device we may not open: one row per port
	}
	var cands []*devState
	for _, d := range w.devs {
		if d.identity == ident && !d.gone {
			cands = append(cands, d)
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].d.Key < cands[j].d.Key })
	free := func(d *devState) bool { // no present sighting through the same door
		for _, o := range d.sights {
			if o.s.Door == ss.s.Door {
				return false
			}
		}
		return true
	}
	var dev *devState
	for _, d := range cands { // same port first: a duplicate returning is itself
		if free(d) && d.paths[ss.s.Door+":"+ss.s.Path] {
			dev = d
			break
		}
	}
	if dev == nil {
		for _, d := range cands {
			if free(d) {
				dev = d
				break
			}
		}
	}
	now := time.Now()
	if dev == nil {
		key := ident
		if len(cands) > 0 {
			key = ident + "@" + ss.s.Door + ":" + ss.s.Path
		}
		dev = &devState{identity: ident, sights: map[string]*sightState{}, paths: map[string]bool{}}
		dev.d.Key, dev.d.FirstSeen = key, now
		if ss.probe.DeviceID != "" {
			dev.d.ID = strings.ToLower(ss.probe.DeviceID)
		}
		if usb.DeviceIDFromSerial(ss.s.Serial) == "" {
			dev.d.Serial = ss.s.Serial // not an ID: show it as it is
		}
		w.devs[key] = dev
		dev.sights[id] = ss
		ss.dev = key
		dev.paths[ss.s.Door+":"+ss.s.Path] = true
		dev.fresh = true // announced by announce, once every door that is ready has joined
		if len(cands) > 0 {
			dev.dupOf = cands[0]
		}
		w.recompute(dev)
		return
	}
	dev.sights[id] = ss
	ss.dev = dev.d.Key
	dev.paths[ss.s.Door+":"+ss.s.Path] = true
	w.update(dev, spawn)
}

func pathsOf(d *devState) string {
	var ps []string
	for p := range d.paths {
		ps = append(ps, p[strings.Index(p, ":")+1:])
	}
	sort.Strings(ps)
	return strings.Join(ps, ", ")
}

// update re-derives an existing device's state after its sightings changed, reporting a
// return or a mode change and reading the modules again when the mode changed.
func (w *Watcher) update(dev *devState, spawn func(func(context.Context) func())) {
	if len(dev.sights) == 0 {
		return // settle handles missing devices
	}
	if dev.fresh {
		w.recompute(dev)
		return
	}
	wasMissing := dev.d.Missing
	prev, prevBase := dev.d.Mode, dev.base
	if wasMissing {
		dev.safe = false // it rebooted: safe mode is judged afresh
	}
	w.recompute(dev)
	switch {
	case dev.base != prevBase:
		w.emit(Event{Kind: ChangedMode, Device: dev.snapshot(), PrevMode: prev})
		dev.needRead = true
	case wasMissing:
		w.emit(Event{Kind: Returned, Device: dev.snapshot()})
		dev.needRead = true // it reset: what is installed may have changed
	}
}

// announce reports the devices created since the last call and starts the module readings
// that attaching and mode changes asked for. It runs after a batch of sightings has been
// attached, so a device reachable through two doors is announced once, with both.
func (w *Watcher) announce(spawn func(func(context.Context) func())) {
	keys := make([]string, 0, len(w.devs))
	for k := range w.devs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		dev := w.devs[k]
		if !dev.fresh {
			continue
		}
		dev.fresh, dev.needRead = false, true
		if o := dev.dupOf; o != nil {
			dev.d.Duplicate, o.d.Duplicate = true, true
		}
		w.emit(Event{Kind: Appeared, Device: dev.snapshot()})
		if o := dev.dupOf; o != nil {
			dev.dupOf = nil
			w.emit(Event{Kind: DuplicateID, Device: dev.snapshot(), Other: o.d.Key,
				Err: fmt.Errorf("two attached devices both identify as %q (at %s and %s); some Photon bootloaders report the same DFU serial number on every unit (device-os#1425): they are different devices, address each by its port",
					strings.TrimPrefix(dev.identity, "serial:"), pathsOf(dev), pathsOf(o))})
		}
	}
	for _, k := range keys {
		if dev := w.devs[k]; dev != nil && dev.needRead {
			dev.needRead = false
			w.readModules(dev, spawn)
		}
	}
}

// baseMode is the mode the doors tell, before the safe-mode inference.
func (dev *devState) baseMode() state.Mode {
	mode := ModeUnknown
	for _, ss := range dev.sights {
		m := ss.probe.Mode
		switch {
		case m == ModeDFU:
			return ModeDFU
		case m == ModeListening:
			mode = ModeListening
		case m == ModeNormal && mode == ModeUnknown:
			mode = ModeNormal
		}
	}
	if len(dev.sights) == 0 {
		return dev.d.Mode
	}
	return mode
}

// recompute refreshes the derived fields from the present sightings.
func (w *Watcher) recompute(dev *devState) {
	if len(dev.sights) > 0 {
		dev.d.Missing, dev.d.MissingSince = false, time.Time{}
	}
	mode := dev.baseMode()
	dev.base = mode
	if mode != ModeNormal {
		dev.safe = false
	}
	if mode == ModeNormal && dev.safe {
		mode = ModeSafe
	}
	dev.d.Mode = mode
	var errs []error
	for _, ss := range dev.sights {
		if dev.d.Platform == nil || ss.probe.Platform != nil && ss.s.Door == DoorUSB {
			if ss.probe.Platform != nil {
				dev.d.Platform = ss.probe.Platform
			}
		}
		if dev.d.ID == "" && ss.probe.DeviceID != "" {
			dev.d.ID = strings.ToLower(ss.probe.DeviceID)
		}
		if ss.s.Err != nil {
			errs = append(errs, ss.s.Err)
		}
	}
	dev.d.Err = nil
	if len(errs) > 0 {
		dev.d.Err = errs[0]
	}
	dev.d.Doors = dev.d.Doors[:0:0]
	for _, ss := range dev.sights {
		dev.d.Doors = append(dev.d.Doors, DoorRef{Door: ss.s.Door, Path: ss.s.Path, Key: ss.s.Key, DFU: ss.s.DFU})
	}
	sort.Slice(dev.d.Doors, func(i, j int) bool {
		if dev.d.Doors[i].Door != dev.d.Doors[j].Door {
			return dev.d.Doors[i].Door == DoorUSB
		}
		return dev.d.Doors[i].Path < dev.d.Doors[j].Path
	})
}

func (dev *devState) snapshot() Device {
	d := dev.d
	d.Doors = append([]DoorRef(nil), dev.d.Doors...)
	return d
}

// settle handles devices that lost their last door: Missing at once, Disappeared after the
// grace period (or the time Expect asked for).
func (w *Watcher) settle(now time.Time, spawn func(func(context.Context) func())) {
	for id, until := range w.expect {
		if now.After(until) {
			delete(w.expect, id)
		}
	}
	keys := make([]string, 0, len(w.devs))
	for k := range w.devs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		dev := w.devs[k]
		if len(dev.sights) > 0 {
			continue
		}
		if !dev.d.Missing {
			dev.d.Missing, dev.d.MissingSince = true, now
			dev.d.Doors = nil
			dev.readGen++ // a reading in flight is for a door that is gone
			w.emit(Event{Kind: Missing, Device: dev.snapshot()})
		}
		until := dev.d.MissingSince.Add(w.o.Grace)
		for _, id := range []string{dev.d.ID, dev.d.Key} {
			if e, ok := w.expect[id]; ok && id != "" && e.After(until) {
				until = e
			}
		}
		if !now.Before(until) {
			dev.gone = true
			delete(w.devs, k)
			w.emit(Event{Kind: Disappeared, Device: dev.snapshot()})
		}
	}
}

// readModules starts a module reading through the best door for the device's mode.
func (w *Watcher) readModules(dev *devState, spawn func(func(context.Context) func())) {
	snap := dev.snapshot()
	if w.o.ReadModules != nil && !w.o.ReadModules(snap) {
		return
	}
	readID := strings.ToLower(snap.ID)
	if readID != "" && w.holds[readID] > 0 {
		return
	}
	mode := dev.baseMode()
	type try struct {
		door Door
		s    Sighting
	}
	var tries []try
	add := func(door string, dfu bool) {
		ids := make([]string, 0, len(dev.sights))
		for id := range dev.sights {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			ss := dev.sights[id]
			if ss.s.Door == door && ss.s.DFU == dfu && ss.s.Err == nil {
				tries = append(tries, try{ss.door, ss.s})
			}
		}
	}
	switch mode {
	case ModeDFU:
		add(DoorUSB, true)
	case ModeListening:
		add(DoorSerial, false)
		add(DoorUSB, false)
	case ModeNormal:
		add(DoorUSB, false)
	}
	if len(tries) == 0 {
		return
	}
	dev.readGen++
	gen := dev.readGen
	key := dev.d.Key
	p := dev.d.Platform
	w.reading[readID]++
	spawn(func(ctx context.Context) func() {
		rctx, cancel := context.WithTimeout(ctx, w.o.ModulesTimeout)
		defer cancel()
		var rd state.Device
		var err error
		for _, t := range tries {
			var l Link
			if l, err = t.door.Open(rctx, t.s, mode); err != nil {
				continue
			}
			rd, err = Read(rctx, l)
			_ = l.Close()
			if err == nil {
				break
			}
		}
		if err == nil && rd.Platform == nil {
			rd.Platform = p
		}
		w.mu.Lock()
		if w.reading[readID]--; w.reading[readID] <= 0 {
			delete(w.reading, readID)
		}
		w.mu.Unlock()
		at := time.Now()
		return func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			dev := w.devs[key]
			if dev == nil || dev.readGen != gen {
				return // the device moved on; a newer reading is coming or it is gone
			}
			dev.d.Modules, dev.d.ModulesErr, dev.d.ModulesAt, dev.d.ModulesMode = rd.Modules, err, at, mode
			dev.d.Reading, dev.d.Boot = rd, state.Boot{}
			if err != nil {
				dev.d.Modules, dev.d.Reading = nil, state.Device{}
			} else {
				dev.d.Boot = rd.Boot()
			}
			// The mode the modules imply (safe mode) is set before the reading is told, so
			// that no one sees the modules with the mode from before them.
			prev := dev.d.Mode
			if err == nil && mode == ModeNormal {
				dev.safe = dev.d.Boot.Mode == ModeSafe
				w.recompute(dev)
			}
			w.emit(Event{Kind: ModulesRead, Device: dev.snapshot(), Err: err})
			if dev.d.Mode != prev {
				w.emit(Event{Kind: ChangedMode, Device: dev.snapshot(), PrevMode: prev})
			}
		}
	})
}

// ScanResult is a one-shot look at the attached devices.
type ScanResult struct {
	Devices []Device
	// Warnings are the DuplicateID and DoorFailed events seen on the way.
	Warnings []Event
}

// Scan polls the doors until every attached device has been identified and (unless
// o.ReadModules says otherwise) read, and returns them: `pflash list` and `pflash inspect`
// without --watch. ctx bounds the whole scan.
func Scan(ctx context.Context, o Options) (ScanResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := NewWatcher(o)
	var res ScanResult
	events := w.Run(ctx)
	for e := range events {
		switch e.Kind {
		case DuplicateID, DoorFailed:
			res.Warnings = append(res.Warnings, e)
		case Ready:
			res.Devices = w.Devices()
			cancel()
			for range events { // let the watcher stop
			}
			return res, nil
		}
	}
	return res, fmt.Errorf("device: scan did not finish: %w", context.Cause(ctx))
}
