// Package simdoor lets the runner (flasher/run) drive virtual devices (flasher/sim)
// in-process, through the same protocol clients it uses on hardware: the DFU and
// control-request clients talk to each device's Control, the serial door is the device's
// real pty. Tests of the runner, its property test and its fault campaign run this way,
// at sim time scale 0, in milliseconds per plan.
//
// It lives apart from flasher/run so that the runner does not depend on the simulator.
package simdoor

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
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

// Doors is a set of virtual devices the runner can reach. The protocol clients' pauses
// (DFU poll timeouts, control-request polling) run on each device's clock; Fast also
// shortens the host's own delays (DFU retry pauses, the console's quiet time) for tests.
type Doors struct {
	Fast bool

	mu   sync.Mutex
	devs []*sim.Device
}

// New returns doors onto the devices.
func New(fast bool, devs ...*sim.Device) *Doors {
	return &Doors{Fast: fast, devs: devs}
}

// Add makes another device reachable.
func (d *Doors) Add(dev *sim.Device) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.devs = append(d.devs, dev)
}

func (d *Doors) all() []*sim.Device {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*sim.Device(nil), d.devs...)
}

// List returns the devices on the bus.
func (d *Doors) List(ctx context.Context) ([]run.Attached, error) {
	var out []run.Attached
	for _, dev := range d.all() {
		st := dev.Status()
		if !st.OnBus || !st.Ready || st.Mode == sim.ModeOff {
			continue
		}
		out = append(out, run.Attached{ID: dev.ID(), Platform: dev.Platform(), DFU: st.Mode == sim.ModeDFU, Where: "sim"})
	}
	return out, nil
}

// Find opens the device's current enumeration.
func (d *Doors) Find(ctx context.Context, id string) (run.Link, error) {
	id = strings.ToLower(id)
	for _, dev := range d.all() {
		if dev.ID() != id {
			continue
		}
		st := dev.Status()
		if !st.OnBus || !st.Ready || st.Mode == sim.ModeOff {
			return nil, fmt.Errorf("%w: %s is %s", run.ErrNotAttached, id, st.Reason)
		}
		h, err := dev.Open()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", run.ErrNotAttached, err)
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
	return nil, fmt.Errorf("%w: no virtual device %s", run.ErrNotAttached, id)
}

type link struct {
	d      *Doors
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
	if l.d.Fast {
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
		return run.ErrNoSerial
	}
	return serialport.TriggerDFU(l.serial)
}

func (l *link) Console(ctx context.Context) (*listen.Console, func(), error) {
	if l.serial == "" {
		return nil, nil, run.ErrNoSerial
	}
	p, err := serialport.Open(l.serial, serialport.ConsoleBaud)
	if err != nil {
		return nil, nil, err
	}
	o := listen.Options{}
	if l.d.Fast {
		o.Quiet = 50 * time.Millisecond
	}
	return listen.New(p, o), func() { _ = p.Close() }, nil
}
