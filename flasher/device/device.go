// Package device is the flasher's single view of the Particle devices attached to this
// machine, whatever door they are reached through. A device is known by its device ID
// (24 hex digits): the USB serial string in normal and DFU mode, the serial port's USB serial
// number, or the `i` command in listening mode. So a Boron that resets from normal mode into
// DFU, re-enumerating with another product ID and bus address, is still the same Device, and
// a person sees one row follow it through the modes.
//
// A Watcher polls the doors (USB through flasher/usb, serial ports through
// flasher/serialport) every quarter second and turns what they see into device events:
// appeared, changed mode, modules read, missing, disappeared, and a warning when two units
// claim the same identity (a known Photon DFU serial defect). On appearance and on every mode
// change it reads the device's modules through the door that can: control request 90 in
// normal mode, `s` over serial in listening mode, DfuSe UPLOAD in DFU mode, and reports them
// uniformly as ModuleStatus values.
//
// Doors are small interfaces (Door) so that tests, the simulator and future transports can
// feed the watcher without USB.
package device

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// The modes a device is in are state.Mode values. Safe mode is inferred: Device OS
// reports safe mode as "normal" over USB, so a normal-mode device whose module table makes
// Device OS boot into safe mode (flasher/state's one rule) is reported as safe.
const (
	ModeUnknown   = state.ModeUnknown
	ModeNormal    = state.ModeNormal
	ModeDFU       = state.ModeDFU
	ModeListening = state.ModeListening
	ModeSafe      = state.ModeSafe
)

// Door names.
const (
	DoorUSB    = "usb"
	DoorSerial = "serial"
)

// DoorRef is one way the device is reachable right now.
type DoorRef struct {
	Door string `json:"door"` // DoorUSB or DoorSerial
	// Path is the USB port path ("1-2.3") or the serial port ("/dev/ttyACM0").
	Path string `json:"path"`
	// Key identifies the door's enumeration instance (USB bus:address:vid:pid, the tty path).
	Key string `json:"-"`
	// DFU is true for the USB DFU bootloader.
	DFU bool `json:"dfu,omitempty"`
}

// Device is a snapshot of one device. Values handed out are copies: the watcher never
// changes them afterwards.
type Device struct {
	// Key is unique among the watcher's devices: the device ID, or for a device whose ID is
	// unknown or shared with another unit, something built from the door's path.
	Key string
	// ID is the 24-hex-digit device ID in lower case, "" when no door could tell it.
	ID string
	// Serial is the USB serial string when it is not a device ID (the Photon DFU defect).
	Serial   string
	Platform *platform.Platform
	Mode     state.Mode
	Doors    []DoorRef
	// Modules are the modules as last read (nil before the first reading); ModulesErr is
	// why the last reading failed, ModulesAt when it was made, ModulesMode the mode it was
	// made in. Reading is that reading as a whole (the modules, what the door could not
	// see), and Boot what it means: the mode Device OS comes up in and why.
	Modules     []state.Module
	ModulesErr  error
	ModulesAt   time.Time
	ModulesMode state.Mode
	Reading     state.Device
	Boot        state.Boot
	// Duplicate is true for a unit that shares its ID (or serial) with another attached one.
	Duplicate bool
	// Err is a door's problem with the device, e.g. a *usb.PermissionError: the device is
	// there but cannot be opened.
	Err error
	// Missing is true while the device has left every door but is kept for the grace period
	// in case it is only resetting; MissingSince says since when.
	Missing      bool
	MissingSince time.Time
	FirstSeen    time.Time
}

// DoorNames lists the doors the device is reachable through, in a fixed order, for
// `pflash list` ("usb", "serial").
func (d Device) DoorNames() []string {
	var out []string
	for _, want := range []string{DoorUSB, DoorSerial} {
		for _, r := range d.Doors {
			if r.Door == want {
				out = append(out, want)
				break
			}
		}
	}
	if out == nil {
		out = []string{}
	}
	return out
}

// Has reports whether the device is reachable through door.
func (d Device) Has(door string) bool { return slices.Contains(d.DoorNames(), door) }

// Name is a short label for people: "Boron e00fce68…" style, with the full ID.
func (d Device) Name() string {
	plat := "Particle device"
	if d.Platform != nil {
		plat = d.Platform.DisplayName
	}
	id := d.ID
	if id == "" {
		id = d.Serial
	}
	if id == "" && len(d.Doors) > 0 {
		id = "at " + d.Doors[0].Path
	}
	return strings.TrimSpace(plat + " " + id)
}

// String is one line for logs.
func (d Device) String() string {
	return fmt.Sprintf("%s [%s via %s]", d.Name(), d.Mode, strings.Join(d.DoorNames(), "+"))
}
