// Package demo is the one adapter between the engine and virtual devices (flasher/sim):
// the app's demo devices, the doors the watcher sees them through and the runner drives
// them through (the same protocol clients it uses on hardware: the DFU and control-request
// clients talk to each device's Control, the serial door is the device's real pty), and
// the releases they are flashed with (built from Particle's published module headers).
// Tests of the runner, its property test, its fault campaign and the release matrix run
// this way, at sim time scale 0, in milliseconds per plan.
//
// It lives apart from the engine so that nothing in it depends on the simulator, and the
// app reaches virtual devices only through it.
package demo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/listen"
	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/serialport"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// Timeouts suit virtual devices at time scale 0, which restart in milliseconds: there a
// wait of seconds is a fault, not a slow device, and a test should fail on it quickly.
// EstimateFactor -1: a step's estimated device time costs no real time at scale 0.
var Timeouts = run.Timeouts{Find: 3 * time.Second, EnterMode: 3 * time.Second, Buttons: 3 * time.Second,
	Reenumerate: 3 * time.Second, Apply: 5 * time.Second, Step: 30 * time.Second, Settle: 2 * time.Second, EstimateFactor: -1}

// Bus is a set of virtual devices the watcher sees (device.Door) and the runner reaches
// (device.Bus). The protocol clients' pauses
// (DFU poll timeouts, control-request polling) run on each device's clock; Fast also
// shortens the host's own delays (DFU retry pauses, the console's quiet time) for tests.
type Bus struct {
	fast atomic.Bool

	mu   sync.Mutex
	devs []*sim.Device
}

// New returns doors onto the devices.
func New(fast bool, devs ...*sim.Device) *Bus {
	d := &Bus{devs: devs}
	d.fast.Store(fast)
	return d
}

// SetFast shortens (or not) the host's own delays with virtual devices, for tests.
func (d *Bus) SetFast(fast bool) { d.fast.Store(fast) }

var (
	_ device.Bus  = (*Bus)(nil)
	_ device.Door = (*Bus)(nil)
)

// Add plugs another virtual device in.
func (d *Bus) Add(dev *sim.Device) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.devs = append(d.devs, dev)
}

// Remove unplugs a virtual device from the doors (the device itself keeps running).
func (d *Bus) Remove(dev *sim.Device) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, x := range d.devs {
		if x == dev {
			d.devs = append(d.devs[:i], d.devs[i+1:]...)
			return
		}
	}
}

// Devices lists the virtual devices plugged in.
func (d *Bus) Devices() []*sim.Device { return d.all() }

// Len says how many virtual devices are plugged in.
func (d *Bus) Len() int { return len(d.all()) }

// Close powers every virtual device off.
func (d *Bus) Close() error {
	var errs []error
	for _, dev := range d.all() {
		errs = append(errs, dev.Close())
	}
	return errors.Join(errs...)
}

// Name is DoorUSB: a virtual device stands for a USB one.
func (d *Bus) Name() string { return device.DoorUSB }

// Sightings reports every virtual device on the bus now, the way the USB door reports
// hardware: the key changes with every reset, as a real re-enumeration changes the bus
// address, and the path says "virtual" (the app tags such devices).
func (d *Bus) Sightings(ctx context.Context) ([]device.Sighting, error) {
	var out []device.Sighting
	for _, dev := range d.all() {
		st := dev.Status()
		if !st.OnBus || !st.Ready || st.Mode == sim.ModeOff {
			continue
		}
		dfuMode := st.Mode == sim.ModeDFU
		out = append(out, device.Sighting{Door: device.DoorUSB, Key: fmt.Sprintf("sim:%s:%d:%t", dev.ID(), st.Resets, dfuMode),
			Path: Path, DeviceID: dev.ID(), Serial: dev.ID(), Platform: dev.Platform(), DFU: dfuMode, Ref: dev})
	}
	return out, nil
}

// Path is where a virtual device is, for the watcher's door references.
const Path = "virtual"

// NeedsProbe: like a real normal-PID device, only a non-DFU one may be in listening mode.
func (d *Bus) NeedsProbe(s device.Sighting) bool { return !s.DFU }

// Probe asks the device's mode with control request 72, as the USB door does.
func (d *Bus) Probe(ctx context.Context, s device.Sighting) (device.Probe, error) {
	l, err := d.Find(ctx, s.DeviceID)
	if err != nil {
		return device.Probe{}, err
	}
	defer l.Close()
	return device.Probe{DeviceID: l.ID(), Platform: l.Platform(), Mode: l.Mode()}, nil
}

// Open opens the sighting's device as it is now.
func (d *Bus) Open(ctx context.Context, s device.Sighting, _ state.Mode) (device.Link, error) {
	return d.Find(ctx, s.DeviceID)
}

func (d *Bus) all() []*sim.Device {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*sim.Device(nil), d.devs...)
}

// List returns the devices on the bus.
func (d *Bus) List(ctx context.Context) ([]device.Attached, error) {
	var out []device.Attached
	for _, dev := range d.all() {
		st := dev.Status()
		if !st.OnBus || !st.Ready || st.Mode == sim.ModeOff {
			continue
		}
		out = append(out, device.Attached{ID: dev.ID(), Platform: dev.Platform(), DFU: st.Mode == sim.ModeDFU, Where: "sim"})
	}
	return out, nil
}

// Find opens the device's current enumeration.
func (d *Bus) Find(ctx context.Context, id string) (device.Link, error) {
	id = strings.ToLower(id)
	for _, dev := range d.all() {
		if dev.ID() != id {
			continue
		}
		st := dev.Status()
		if !st.OnBus || !st.Ready || st.Mode == sim.ModeOff {
			return nil, fmt.Errorf("%w: %s is %s", device.ErrNotAttached, id, st.Reason)
		}
		h, err := dev.Open()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", device.ErrNotAttached, err)
		}
		mode := state.ModeNormal
		switch st.Mode {
		case sim.ModeDFU:
			mode = state.ModeDFU
		case sim.ModeListening:
			mode = state.ModeListening
		}
		return &link{d: d, dev: dev, h: h, mode: mode, inst: fmt.Sprintf("%d/%d", st.Boots, st.Resets), serial: st.Serial}, nil
	}
	return nil, fmt.Errorf("%w: no virtual device %s", device.ErrNotAttached, id)
}

type link struct {
	d      *Bus
	dev    *sim.Device
	h      *sim.Handle
	mode   state.Mode
	inst   string
	serial string
}

func (l *link) ID() string                   { return l.dev.ID() }
func (l *link) Platform() *platform.Platform { return l.dev.Platform() }
func (l *link) Mode() state.Mode             { return l.mode }
func (l *link) Instance() string             { return l.inst }
func (l *link) Close() error                 { return nil }

// sleep is the protocol clients' pause, run on the device's clock: a poll timeout the
// device asks for is device time, which passes scale times faster in real time (not at
// all at scale 0). Waiting it out in real time would make the host look twenty times
// slower to a device at scale 0.05, and its watchdog would fire in the middle of work a
// real host finishes in time.
func (l *link) sleep() func(ctx context.Context, d time.Duration) error {
	scale := l.dev.Meter().Scale()
	return func(ctx context.Context, d time.Duration) error {
		if d <= 0 {
			return ctx.Err()
		}
		// At least a moment, so that a client polling a device that answers from another
		// goroutine (control requests) does not spin.
		d = max(time.Duration(float64(d)*scale), 50*time.Microsecond)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
}

// DFU returns a client on alt with the platform's layout (what the sim's bootloader
// reports).
func (l *link) DFU(ctx context.Context, alt uint8) (*dfu.Client, *memlayout.Layout, error) {
	p := l.dev.Platform()
	layout, err := p.AltLayout(alt)
	if err != nil {
		return nil, nil, err
	}
	// USB SET_INTERFACE, which libusb sends when a host claims the alt setting.
	if _, err := l.h.Control(0x01, 0x0B, uint16(alt), 0, nil); err != nil {
		return nil, nil, fmt.Errorf("select DFU alt %d: %w", alt, err)
	}
	o := dfu.Options{TransferSize: p.TransferSize, Sleep: l.sleep()}
	if l.d.fast.Load() {
		o.RetryDelay = time.Millisecond
	} else if scale := l.dev.Meter().Scale(); scale > 0 && scale < 1 {
		o.RetryDelay = max(time.Duration(float64(time.Second)*scale), time.Millisecond)
	}
	return dfu.New(l.h, o), layout, nil
}

func (l *link) Ctrl() *ctrl.Client {
	return ctrl.New(l.h, ctrl.Options{RequestTimeout: 20 * time.Second, OutNeedsData: l.dev.Platform().ControlOutNeedsData, Sleep: l.sleep()})
}

func (l *link) TriggerDFU(ctx context.Context) error {
	if l.serial == "" {
		return device.ErrNoSerial
	}
	return serialport.TriggerDFU(l.serial)
}

func (l *link) Console(ctx context.Context) (*listen.Console, func(), error) {
	if l.serial == "" {
		return nil, nil, device.ErrNoSerial
	}
	p, err := serialport.Open(l.serial, serialport.ConsoleBaud)
	if err != nil {
		return nil, nil, err
	}
	o := listen.Options{}
	if l.d.fast.Load() {
		o.Quiet = 50 * time.Millisecond
	}
	return listen.New(p, o), func() { _ = p.Close() }, nil
}
