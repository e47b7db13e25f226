package device_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/state"
	"github.com/particle-flasher/particle-flasher/internal/stubdev"
)

// fakeDoor is a door whose sightings, probe answers and module tables the test sets.
type fakeDoor struct {
	name string

	mu       sync.Mutex
	sights   []device.Sighting
	listErr  error
	probes   map[string]device.Probe // by sighting key
	probeErr map[string]error
	mods     map[string][]state.Module // by sighting key
	modsErr  error
	block    chan struct{} // when set, Open waits for it (or ctx)
	reads    int
	opened   []state.Mode // the mode of every Open, in order
	probeAll bool         // NeedsProbe for every sighting
}

// openedIn reports whether the door was opened for a reading in mode m.
func (f *fakeDoor) openedIn(m state.Mode) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.opened {
		if o == m {
			return true
		}
	}
	return false
}

func newDoor(name string) *fakeDoor {
	return &fakeDoor{name: name, probes: map[string]device.Probe{}, probeErr: map[string]error{}, mods: map[string][]state.Module{}}
}

func (f *fakeDoor) Name() string { return f.name }

func (f *fakeDoor) set(s ...device.Sighting) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sights = append([]device.Sighting(nil), s...)
}

func (f *fakeDoor) Sightings(ctx context.Context) ([]device.Sighting, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	return append([]device.Sighting(nil), f.sights...), nil
}

func (f *fakeDoor) NeedsProbe(s device.Sighting) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.probes[s.Key]
	_, bad := f.probeErr[s.Key]
	return ok || bad || f.probeAll
}

func (f *fakeDoor) Probe(ctx context.Context, s device.Sighting) (device.Probe, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.probeErr[s.Key]; err != nil {
		return device.Probe{}, err
	}
	if p, ok := f.probes[s.Key]; ok {
		return p, nil
	}
	return device.Probe{DeviceID: s.DeviceID, Platform: s.Platform, Mode: device.ModeNormal}, nil
}

func (f *fakeDoor) Open(ctx context.Context, s device.Sighting, m state.Mode) (device.Link, error) {
	f.mu.Lock()
	f.reads++
	f.opened = append(f.opened, m)
	block := f.block
	mods, ok := f.mods[s.Key]
	err := f.modsErr
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, device.ErrNotSupported
	}
	return stubdev.New(s.DeviceID, s.Platform, m, s.Key, mods), nil
}

var (
	boron, _  = platform.ByName("boron")
	photon, _ = platform.ByName("photon")
)

const id1 = "e00fce68d1234567890abcde"

func usbNormal(key, id string) device.Sighting {
	return device.Sighting{Door: device.DoorUSB, Key: key, Path: "1-2", DeviceID: id, Serial: id, Platform: boron}
}

func usbDFU(key, id string) device.Sighting {
	s := usbNormal(key, id)
	s.DFU = true
	return s
}

// goodMods is a Boron whose Device OS and application are fine, listed the way Device OS
// 4.1.0 lists its modules (the SoftDevice included: an nRF52840 cannot run without one).
func goodMods(src string) []state.Module {
	return []state.Module{{Function: platform.FuncSystem, Index: 1, Version: 4100, Location: "main", Present: true,
		Checks: state.AllChecks, Source: src},
		{Function: platform.FuncRadio, Index: 0, Version: 202, Location: "main", Present: true, Checks: state.AllChecks, Source: src},
		{Function: platform.FuncUser, Index: 1, Version: 6, Location: "main", Present: true, Checks: state.AllChecks, Source: src,
			Deps: []state.Dependency{{Function: platform.FuncSystem, Index: 1, Version: 4100}}}}
}

type rig struct {
	t      *testing.T
	w      *device.Watcher
	events <-chan device.Event
	cancel context.CancelFunc
}

func start(t *testing.T, o device.Options) *rig {
	t.Helper()
	if o.Interval == 0 {
		o.Interval = 10 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := device.NewWatcher(o)
	r := &rig{t: t, w: w, events: w.Run(ctx), cancel: cancel}
	t.Cleanup(func() {
		cancel()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case _, ok := <-r.events:
				if !ok {
					return
				}
			case <-deadline:
				t.Error("the watcher's channel did not close after cancel")
				return
			}
		}
	})
	return r
}

// next returns the next event that is not Ready (within 10 s).
func (r *rig) next(what string) device.Event {
	r.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e, ok := <-r.events:
			require.True(r.t, ok, "channel closed waiting for %s", what)
			if e.Kind == device.Ready {
				continue
			}
			return e
		case <-deadline:
			r.t.Fatalf("no event (%s) within 10 s", what)
		}
	}
}

func (r *rig) expect(kind device.EventKind) device.Event {
	r.t.Helper()
	e := r.next(kind.String())
	require.Equal(r.t, kind, e.Kind, "got %s (%v) for %s", e.Kind, e.Device, e.Err)
	return e
}

// quiet asserts no event other than Ready arrives for d.
func (r *rig) quiet(d time.Duration) {
	r.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case e := <-r.events:
			if e.Kind != device.Ready {
				r.t.Fatalf("unexpected %s event: %v", e.Kind, e.Device)
			}
		case <-deadline:
			return
		}
	}
}

func TestAppearReadDisappear(t *testing.T) {
	usb := newDoor(device.DoorUSB)
	usb.mods["a"] = goodMods("control")
	usb.set(usbNormal("a", id1))
	r := start(t, device.Options{Doors: []device.Door{usb}, Grace: -1})

	e := r.expect(device.Appeared)
	assert.Equal(t, id1, e.Device.ID)
	assert.Equal(t, id1, e.Device.Key)
	assert.Equal(t, device.ModeNormal, e.Device.Mode)
	assert.Equal(t, []string{"usb"}, e.Device.DoorNames())
	assert.Same(t, boron, e.Device.Platform)

	e = r.expect(device.ModulesRead)
	require.NoError(t, e.Err)
	require.Len(t, e.Device.Modules, len(goodMods("control")))
	for i, m := range goodMods("control") {
		got := e.Device.Modules[i]
		assert.Equal(t, [3]int{int(m.Function), int(m.Index), int(m.Version)}, [3]int{int(got.Function), int(got.Index), int(got.Version)})
		assert.True(t, got.Valid(), got.Label())
		assert.Equal(t, state.SourceControl, got.Source, "read through control request 90")
	}
	assert.Equal(t, device.ModeNormal, e.Device.Mode)

	require.Len(t, r.w.Devices(), 1)
	usb.set()
	r.expect(device.Missing)
	e = r.expect(device.Disappeared)
	assert.Equal(t, id1, e.Device.ID)
	assert.Empty(t, r.w.Devices())
}

func TestResetIntoDFUAndBackIsOneDevice(t *testing.T) {
	usb := newDoor(device.DoorUSB)
	usb.mods["n1"] = goodMods("control")
	usb.mods["d1"] = goodMods("dfu")
	usb.mods["n2"] = goodMods("control")
	usb.set(usbNormal("n1", id1))
	r := start(t, device.Options{Doors: []device.Door{usb}, Grace: 2 * time.Second})
	r.expect(device.Appeared)
	r.expect(device.ModulesRead)

	// Re-enumeration within one poll: no missing at all.
	usb.set(usbDFU("d1", id1))
	e := r.expect(device.ChangedMode)
	assert.Equal(t, device.ModeNormal, e.PrevMode)
	assert.Equal(t, device.ModeDFU, e.Device.Mode)
	assert.Equal(t, id1, e.Device.Key)
	e = r.expect(device.ModulesRead)
	assert.Equal(t, device.ModeDFU, e.Device.ModulesMode, "read again in DFU mode (the stub has no DFU interface to read)")

	// A real reset leaves the bus empty for a while: missing, then back in normal mode.
	usb.set()
	r.expect(device.Missing)
	time.Sleep(300 * time.Millisecond)
	usb.set(usbNormal("n2", id1))
	e = r.expect(device.ChangedMode)
	assert.Equal(t, device.ModeDFU, e.PrevMode)
	assert.Equal(t, device.ModeNormal, e.Device.Mode)
	assert.False(t, e.Device.Missing)
	r.expect(device.ModulesRead)
	require.Len(t, r.w.Devices(), 1)

	// Back in the same mode after a reset: Returned, and the modules are read again.
	usb.set()
	r.expect(device.Missing)
	usb.set(usbNormal("n3", id1))
	usb.mu.Lock()
	usb.mods["n3"] = goodMods("control")
	usb.mu.Unlock()
	r.expect(device.Returned)
	r.expect(device.ModulesRead)
	r.quiet(100 * time.Millisecond)
}

func TestGracePeriodAndExpect(t *testing.T) {
	usb := newDoor(device.DoorUSB)
	usb.set(usbNormal("n1", id1))
	r := start(t, device.Options{Doors: []device.Door{usb}, Grace: 150 * time.Millisecond, ReadModules: func(device.Device) bool { return false }})
	r.expect(device.Appeared)

	// Gone longer than the grace period: dropped, and a later return is a new appearance.
	usb.set()
	m := r.expect(device.Missing)
	d := r.expect(device.Disappeared)
	assert.GreaterOrEqual(t, d.Time.Sub(m.Time), 140*time.Millisecond)
	usb.set(usbDFU("d1", id1))
	r.expect(device.Appeared)

	// A reset the caller announced may take longer than the grace period.
	r.w.Expect(id1, time.Second)
	usb.set()
	r.expect(device.Missing)
	r.quiet(400 * time.Millisecond)
	usb.set(usbNormal("n2", id1))
	e := r.expect(device.ChangedMode)
	assert.Equal(t, device.ModeNormal, e.Device.Mode)
}

func TestDuplicateSerialsAreNotMerged(t *testing.T) {
	usb := newDoor(device.DoorUSB)
	a := device.Sighting{Door: device.DoorUSB, Key: "k1", Path: "1-1", Serial: "00000000010C", Platform: photon, DFU: true}
	b := a
	b.Key, b.Path = "k2", "1-4"
	usb.set(a, b)
	r := start(t, device.Options{Doors: []device.Door{usb}, ReadModules: func(device.Device) bool { return false }})

	first := r.expect(device.Appeared)
	second := r.expect(device.Appeared)
	dup := r.expect(device.DuplicateID)
	assert.NotEqual(t, first.Device.Key, second.Device.Key)
	assert.Equal(t, second.Device.Key, dup.Device.Key)
	assert.Equal(t, first.Device.Key, dup.Other)
	assert.True(t, dup.Device.Duplicate)
	assert.Equal(t, "", dup.Device.ID, "a defect serial is not a device ID")
	assert.Equal(t, "00000000010C", dup.Device.Serial)
	require.Error(t, dup.Err)
	assert.Contains(t, dup.Err.Error(), "00000000010c")
	devs := r.w.Devices()
	require.Len(t, devs, 2)
	for _, d := range devs {
		assert.True(t, d.Duplicate)
		assert.Equal(t, device.ModeDFU, d.Mode)
	}

	// Each keeps its own port: the one at 1-4 resetting is still itself.
	usb.set(a)
	r.expect(device.Missing)
	b2 := b
	b2.Key = "k3"
	usb.set(a, b2)
	e := r.expect(device.Returned)
	assert.Equal(t, second.Device.Key, e.Device.Key)
	r.quiet(100 * time.Millisecond)
}

func TestUSBAndSerialDoorsMergeAndListeningUsesSerial(t *testing.T) {
	usb := newDoor(device.DoorUSB)
	ser := newDoor(device.DoorSerial)
	usb.probes["u"] = device.Probe{DeviceID: id1, Platform: boron, Mode: device.ModeListening}
	usb.mods["u"] = goodMods("control")
	ser.mods["/dev/ttyACM0"] = goodMods("serial")
	usb.set(usbNormal("u", id1))
	ser.set(device.Sighting{Door: device.DoorSerial, Key: "/dev/ttyACM0", Path: "/dev/ttyACM0", DeviceID: id1, Serial: id1, Platform: boron})
	r := start(t, device.Options{Doors: []device.Door{usb, ser}})

	e := r.expect(device.Appeared)
	assert.Equal(t, device.ModeListening, e.Device.Mode)
	for e.Kind != device.ModulesRead {
		e = r.next("modules")
	}
	assert.NotEmpty(t, e.Device.Modules)
	assert.True(t, ser.openedIn(device.ModeListening), "listening mode is read through the serial port first")
	devs := r.w.Devices()
	require.Len(t, devs, 1)
	assert.Equal(t, []string{"usb", "serial"}, devs[0].DoorNames())
}

func TestListeningFallsBackToControlRequests(t *testing.T) {
	usb := newDoor(device.DoorUSB)
	ser := newDoor(device.DoorSerial)
	usb.probes["u"] = device.Probe{DeviceID: id1, Platform: boron, Mode: device.ModeListening}
	usb.mods["u"] = goodMods("control")
	ser.modsErr = errors.New("no reply from the device")
	usb.set(usbNormal("u", id1))
	ser.set(device.Sighting{Door: device.DoorSerial, Key: "p", Path: "/dev/ttyACM0", DeviceID: id1, Serial: id1})
	r := start(t, device.Options{Doors: []device.Door{usb, ser}})
	e := r.expect(device.Appeared)
	for e.Kind != device.ModulesRead {
		e = r.next("modules")
	}
	require.NoError(t, e.Err)
	assert.Equal(t, "control", e.Device.Modules[0].Source)
}

func TestSerialPortWithoutSerialNumberIsIdentifiedByI(t *testing.T) {
	ser := newDoor(device.DoorSerial)
	ser.probes["p"] = device.Probe{DeviceID: id1, Mode: device.ModeListening}
	ser.mods["p"] = goodMods("serial")
	ser.set(device.Sighting{Door: device.DoorSerial, Key: "p", Path: "COM3", Platform: boron})
	// A second port that does not answer `i` (not in listening mode) is no device.
	ser.probeErr["q"] = errors.New("no reply")
	ser.set(device.Sighting{Door: device.DoorSerial, Key: "p", Path: "COM3", Platform: boron},
		device.Sighting{Door: device.DoorSerial, Key: "q", Path: "COM4"})
	r := start(t, device.Options{Doors: []device.Door{ser}})
	e := r.expect(device.Appeared)
	assert.Equal(t, id1, e.Device.ID)
	assert.Equal(t, device.ModeListening, e.Device.Mode)
	r.expect(device.ModulesRead)
	r.quiet(100 * time.Millisecond)
	assert.Len(t, r.w.Devices(), 1)
}

func TestModeChangeWithoutReenumeration(t *testing.T) {
	usb := newDoor(device.DoorUSB)
	usb.probes["u"] = device.Probe{DeviceID: id1, Platform: boron, Mode: device.ModeNormal}
	usb.set(usbNormal("u", id1))
	r := start(t, device.Options{Doors: []device.Door{usb}, ModeRecheck: 20 * time.Millisecond, ReadModules: func(device.Device) bool { return false }})
	r.expect(device.Appeared)
	usb.mu.Lock()
	usb.probes["u"] = device.Probe{DeviceID: id1, Platform: boron, Mode: device.ModeListening}
	usb.mu.Unlock()
	e := r.expect(device.ChangedMode)
	assert.Equal(t, device.ModeListening, e.Device.Mode)
	assert.Equal(t, device.ModeNormal, e.PrevMode)
}

func TestSafeModeIsInferred(t *testing.T) {
	usb := newDoor(device.DoorUSB)
	bad := goodMods("control")
	bad[0].Checks.Dependencies = false
	usb.mods["u"] = bad
	usb.set(usbNormal("u", id1))
	r := start(t, device.Options{Doors: []device.Door{usb}})
	r.expect(device.Appeared)
	// The reading already carries the mode it implies: no one sees the modules of a
	// safe-mode device next to "normal" (the app's LED line said breathing cyan so).
	e := r.expect(device.ModulesRead)
	assert.Equal(t, device.ModeSafe, e.Device.Mode)
	e = r.expect(device.ChangedMode)
	assert.Equal(t, device.ModeSafe, e.Device.Mode)
	assert.Equal(t, device.ModeNormal, e.PrevMode)
	// Into DFU and the inference is dropped.
	usb.set(usbDFU("d", id1))
	e = r.expect(device.ChangedMode)
	assert.Equal(t, device.ModeSafe, e.PrevMode)
	assert.Equal(t, device.ModeDFU, e.Device.Mode)
}

func TestPermissionErrorDevice(t *testing.T) {
	usb := newDoor(device.DoorUSB)
	perm := errors.New("no permission to open the Boron in DFU mode")
	usb.set(device.Sighting{Door: device.DoorUSB, Key: "k", Path: "3-1", Platform: boron, DFU: true, Err: perm})
	r := start(t, device.Options{Doors: []device.Door{usb}})
	e := r.expect(device.Appeared)
	assert.Equal(t, "usb:3-1", e.Device.Key)
	assert.Same(t, perm, e.Device.Err)
	assert.Equal(t, device.ModeDFU, e.Device.Mode)
	r.quiet(50 * time.Millisecond) // nothing to read through a door that cannot open it
}

func TestDoorFailureReportedOnceAndDevicesKept(t *testing.T) {
	usb := newDoor(device.DoorUSB)
	usb.set(usbNormal("u", id1))
	r := start(t, device.Options{Doors: []device.Door{usb}, Grace: -1, ReadModules: func(device.Device) bool { return false }})
	r.expect(device.Appeared)
	usb.mu.Lock()
	usb.listErr = errors.New("libusb: i/o error")
	usb.mu.Unlock()
	e := r.expect(device.DoorFailed)
	assert.Equal(t, device.DoorUSB, e.Door)
	r.quiet(100 * time.Millisecond)
	assert.Len(t, r.w.Devices(), 1, "a failed listing does not drop devices")
}

func TestStaleReadingIsDropped(t *testing.T) {
	usb := newDoor(device.DoorUSB)
	usb.block = make(chan struct{})
	usb.mods["d"] = goodMods("dfu")
	usb.mods["n"] = goodMods("control")
	usb.set(usbDFU("d", id1))
	r := start(t, device.Options{Doors: []device.Door{usb}})
	r.expect(device.Appeared)
	// The DFU reading hangs; the device leaves DFU meanwhile.
	usb.set(usbNormal("n", id1))
	r.expect(device.ChangedMode)
	close(usb.block)
	e := r.expect(device.ModulesRead)
	assert.Equal(t, "control", e.Device.Modules[0].Source, "the DFU reading's late result is not shown")
	r.quiet(100 * time.Millisecond)
}

func TestCancelStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	usb := newDoor(device.DoorUSB)
	usb.block = make(chan struct{}) // a reading that never finishes by itself
	usb.mods["d"] = goodMods("dfu")
	usb.set(usbDFU("d", id1))
	ctx, cancel := context.WithCancel(context.Background())
	events := device.NewWatcher(device.Options{Doors: []device.Door{usb}, Interval: 5 * time.Millisecond}).Run(ctx)
	require.Equal(t, device.Appeared, (<-events).Kind)
	cancel()
	closed := make(chan struct{})
	go func() {
		for range events {
		}
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the event channel did not close after cancel")
	}
	// Everything the watcher started has ended.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), before, "goroutines left behind")
}

func TestScanWaitsForReadings(t *testing.T) {
	usb := newDoor(device.DoorUSB)
	for i := range 3 {
		k := fmt.Sprint(i)
		usb.mods[k] = goodMods("control")
	}
	usb.set(usbNormal("0", id1), usbDFU("1", "e00fce68aaaaaaaaaaaaaaaa"), usbNormal("2", "e00fce68bbbbbbbbbbbbbbbb"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := device.Scan(ctx, device.Options{Doors: []device.Door{usb}, Interval: 5 * time.Millisecond})
	require.NoError(t, err)
	require.Len(t, res.Devices, 3)
	for _, d := range res.Devices {
		// The stub has no DFU interface: the DFU unit's reading ends in an error, which
		// the scan waited for as well.
		assert.True(t, d.Modules != nil || d.ModulesErr != nil, d.Key)
	}
	assert.Equal(t, 3, usb.reads)
}

// TestVetoedReadingRefreshedAfterwards: while a writer vetoes readings, a mode change
// reads nothing (the DFU interface is the writer's); Refresh afterwards reads what the
// device now has.
func TestVetoedReadingRefreshedAfterwards(t *testing.T) {
	usb := newDoor(device.DoorUSB)
	usb.mods["d1"] = goodMods("dfu")
	usb.set(usbNormal("n1", id1))
	var busy atomic.Bool
	busy.Store(true)
	r := start(t, device.Options{Doors: []device.Door{usb}, ReadModules: func(device.Device) bool { return !busy.Load() }})
	r.expect(device.Appeared)
	usb.set(usbDFU("d1", id1))
	r.expect(device.ChangedMode)
	r.quiet(200 * time.Millisecond) // no ModulesRead while busy

	busy.Store(false)
	r.w.Refresh(strings.ToUpper(id1))
	e := r.expect(device.ModulesRead)
	assert.Equal(t, device.ModeDFU, e.Device.ModulesMode)
	assert.True(t, usb.openedIn(device.ModeDFU), "read in DFU mode once the writer let go")
}

// TestHoldWaitsForReadingAndBlocksNew: Hold returns only once the reading in flight has
// ended (a writer must not share the DFU interface with it), no reading starts while the
// device is held, and release reads the device afresh.
func TestHoldWaitsForReadingAndBlocksNew(t *testing.T) {
	usb := newDoor(device.DoorUSB)
	usb.mods["d1"] = goodMods("dfu")
	usb.mods["d2"] = goodMods("dfu")
	block := make(chan struct{})
	usb.block = block
	usb.set(usbDFU("d1", id1))
	r := start(t, device.Options{Doors: []device.Door{usb}})
	r.expect(device.Appeared)
	require.Eventually(t, func() bool { usb.mu.Lock(); defer usb.mu.Unlock(); return usb.reads == 1 }, 10*time.Second, time.Millisecond)

	held := make(chan func(), 1)
	go func() {
		release, err := r.w.Hold(context.Background(), id1)
		assert.NoError(t, err)
		held <- release
	}()
	select {
	case <-held:
		t.Fatal("Hold returned while a reading was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	assert.True(t, r.w.Held(id1))
	usb.mu.Lock()
	usb.block = nil
	usb.mu.Unlock()
	close(block)
	var release func()
	select {
	case release = <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("Hold did not return after the reading ended")
	}
	r.expect(device.ModulesRead)

	// Held: a reset (as the writer's) reads nothing.
	usb.set()
	r.expect(device.Missing)
	usb.set(usbDFU("d2", id1))
	r.expect(device.Returned)
	r.quiet(200 * time.Millisecond)
	usb.mu.Lock()
	reads := usb.reads
	usb.mu.Unlock()
	assert.Equal(t, 1, reads, "no reading while held")

	release()
	release() // twice is harmless
	assert.False(t, r.w.Held(id1))
	r.expect(device.ModulesRead)

	// A hold whose context ends first holds nothing.
	usb.mu.Lock()
	usb.block = make(chan struct{})
	usb.mu.Unlock()
	r.w.Refresh(id1)
	require.Eventually(t, func() bool { usb.mu.Lock(); defer usb.mu.Unlock(); return usb.reads == 3 }, 10*time.Second, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := r.w.Hold(ctx, id1)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.False(t, r.w.Held(id1))
}

// While a writer holds a device (a run waits for it to come back), the watcher polls at
// its busy interval: with a normal interval of an hour, the device returning is still
// seen. Without the hold it would not be until the hour is over.
func TestHeldDeviceIsPolledFast(t *testing.T) {
	usb := newDoor(device.DoorUSB)
	usb.set(usbNormal("a", id1))
	r := start(t, device.Options{Doors: []device.Door{usb}, Interval: time.Hour, Grace: time.Hour,
		ReadModules: func(device.Device) bool { return false }})
	r.expect(device.Appeared)
	release, err := r.w.Hold(context.Background(), id1)
	require.NoError(t, err)
	usb.set()
	r.expect(device.Missing)
	usb.set(usbDFU("b", id1))
	e := r.expect(device.ChangedMode)
	assert.Equal(t, device.ModeDFU, e.Device.Mode)
	release()
}
