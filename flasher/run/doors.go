package run

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/listen"
	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// The runner reaches devices only through these two small interfaces, so that the same
// code drives a real device through libusb and a serial port (USBDoors) and a virtual one
// in-process (flasher/run/simdoor), and so that a test can put a fault between the two.

// ErrNotAttached is returned by Doors.Find while the device is not on the bus (resetting,
// unplugged, powered off).
var ErrNotAttached = errors.New("the device is not attached")

// ErrNoSerial is returned by Link.TriggerDFU and Link.Console when the device has no
// serial port the doors know of.
var ErrNoSerial = errors.New("no serial port for the device")

// Attached is one device as a door sees it, before anything is opened.
type Attached struct {
	ID       string
	Platform *platform.Platform
	// DFU is true when it enumerates as the DFU bootloader.
	DFU bool
	// Where says how it is reached ("USB 1-2.3"), for messages.
	Where string
	// Problem is set when the door sees a Particle device but cannot read its ID (no
	// permission, busy): ID is empty then. Such a device is listed rather than dropped so
	// that one unreadable unit neither hides the others nor goes unexplained.
	Problem error
}

// Readable splits a listing into the devices that can be told apart by ID and the
// problem of the first one that cannot (nil when every device was read).
func Readable(devs []Attached) ([]Attached, error) {
	var ok []Attached
	var problem error
	for _, d := range devs {
		if d.Problem != nil || d.ID == "" {
			if problem == nil {
				problem = d.Problem
				if problem == nil {
					problem = fmt.Errorf("the device at %s did not give its ID", d.Where)
				}
			}
			continue
		}
		ok = append(ok, d)
	}
	return ok, problem
}

// Doors finds devices. Implementations must bound the time of every call.
type Doors interface {
	// List returns the Particle devices attached now (to pick the only one when no ID is
	// given).
	List(ctx context.Context) ([]Attached, error)
	// Find opens the device with this ID as it is attached now; ErrNotAttached when it is
	// not on the bus. The link is only good until the device resets.
	Find(ctx context.Context, id string) (Link, error)
}

// Link is one enumeration of one device, opened. Once the device resets, every call fails
// and the runner asks Doors.Find again.
type Link interface {
	// ID is the device ID (24 hex digits, lower case).
	ID() string
	Platform() *platform.Platform
	// Mode is state.ModeDFU for the bootloader, state.ModeListening or state.ModeNormal when
	// Device OS runs (safe mode looks like normal mode from outside; the runner tells it
	// from the module table).
	Mode() state.Mode
	// Instance identifies this enumeration: it changes whenever the device resets, which
	// is how a wait tells "came back" from "has not left yet".
	Instance() string
	// DFU selects a DFU alt setting and returns a client for it with the alt's memory
	// layout as the device reports it. DFU mode only.
	DFU(ctx context.Context, alt uint8) (*dfu.Client, *memlayout.Layout, error)
	// Ctrl returns a control-request client. Device OS modes only.
	Ctrl() *ctrl.Client
	// TriggerDFU asks Device OS to restart into DFU by opening the device's serial port
	// at 14400 baud (ErrNoSerial when the doors know no port for it).
	TriggerDFU(ctx context.Context) error
	// Console opens the listening-mode console on the device's serial port; close it
	// with the returned function (ErrNoSerial when there is no port).
	Console(ctx context.Context) (*listen.Console, func(), error)
	// Close releases the link.
	Close() error
}

// Timeouts bound every wait. Zero fields take the defaults (DefaultTimeouts), which are
// sized for real hardware from prior-art.md §4: DFU entry "up to 30 s", reopen 60 s, NCP
// 4 minutes.
type Timeouts struct {
	// Find bounds the wait for the device to be attached at the start.
	Find time.Duration
	// EnterMode bounds a switch into DFU, safe or listening mode by software.
	EnterMode time.Duration
	// Buttons bounds the wait for a person to press the buttons.
	Buttons time.Duration
	// Reenumerate bounds a restart the runner caused (leave DFU, reset).
	Reenumerate time.Duration
	// Apply bounds Device OS installing a control-request update (added to the step's
	// estimate).
	Apply time.Duration
	// Step bounds one DFU write, read or control-request transfer.
	Step time.Duration
	// Settle is how long verification keeps re-reading a device whose modules do not
	// match yet (it may still be installing).
	Settle time.Duration
	// EstimateFactor is how many times a step's estimated device time a wait for that
	// step allows on top of its fixed timeout (default 2). Negative: none, for simulated
	// devices at time scale 0, which take no real time at all.
	EstimateFactor float64
}

// allow is the extra wait a step's estimate earns.
func (t Timeouts) allow(estimate time.Duration) time.Duration {
	if t.EstimateFactor < 0 {
		return 0
	}
	return time.Duration(t.EstimateFactor * float64(estimate))
}

// DefaultTimeouts are the timeouts for real devices.
var DefaultTimeouts = Timeouts{
	Find:        10 * time.Second,
	EnterMode:   30 * time.Second,
	Buttons:     2 * time.Minute,
	Reenumerate: 60 * time.Second,
	Apply:       4 * time.Minute,
	Step:        5 * time.Minute,
	Settle:      10 * time.Second,
}

func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&t.Find, d.Find)
	set(&t.EnterMode, d.EnterMode)
	set(&t.Buttons, d.Buttons)
	set(&t.Reenumerate, d.Reenumerate)
	set(&t.Apply, d.Apply)
	set(&t.Step, d.Step)
	set(&t.Settle, d.Settle)
	if t.EstimateFactor == 0 {
		t.EstimateFactor = 2
	}
	return t
}
