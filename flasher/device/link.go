package device

import (
	"context"
	"errors"
	"fmt"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/listen"
	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/slots"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// Doors and Link are how the engine reaches a device to read or write it: the watcher, the
// runner and the factory bench alike, the same code for a real device through libusb and
// a serial port (USB) and a virtual one in-process (flasher/demo), so that a test can put
// a fault between the two.

// ErrNotAttached is returned by Bus.Find while the device is not on the bus (resetting,
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
type Bus interface {
	// List returns the Particle devices attached now (to pick the only one when no ID is
	// given).
	List(ctx context.Context) ([]Attached, error)
	// Find opens the device with this ID as it is attached now; ErrNotAttached when it is
	// not on the bus. The link is only good until the device resets.
	Find(ctx context.Context, id string) (Link, error)
}

// Link is one enumeration of one device, opened. Once the device resets, every call fails
// and the runner asks Bus.Find again.
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

// Read reads the modules of the device behind a link with the reader of the mode it is
// in: DfuSe UPLOAD of every slot in DFU mode (CRCs verified, so a half-written slot shows
// as corrupt), control requests when Device OS runs, and listening mode's `s` where the
// control requests are not answered (old Device OS) or the link has only a serial port.
func Read(ctx context.Context, l Link) (state.Device, error) {
	p := l.Platform()
	mode := l.Mode()
	if mode == state.ModeDFU {
		c, layout, err := l.DFU(ctx, 0)
		if err != nil {
			return state.Device{}, fmt.Errorf("open the DFU interface to read the modules: %w", err)
		}
		st, err := ReadDFU(ctx, c, p, layout, slots.ReadOptions{})
		if err != nil || st.Protection == state.ProtectionProtected || p.SetupDoneFlag() == nil {
			return st, err
		}
		if dct, _, err := l.DFU(ctx, 1); err == nil {
			st.SetupDone = ReadSetupDone(ctx, dct, p)
		}
		return st, nil
	}
	var err error
	if c := l.Ctrl(); c != nil {
		var st state.Device
		if st, err = ReadControl(ctx, c, p, mode); err == nil {
			return st, nil
		}
	}
	con, done, cerr := l.Console(ctx)
	if cerr != nil {
		if err == nil {
			err = cerr
		}
		return state.Device{}, err
	}
	defer done()
	st, serr := ReadConsole(ctx, con, p)
	if serr != nil {
		return state.Device{}, errors.Join(err, serr)
	}
	return st, nil
}
