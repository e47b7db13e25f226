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
)

// Mode is what a device is running, as the flasher tells it.
type Mode string

// Modes. ModeSafe is inferred: Device OS reports safe mode as "normal" over USB, so a
// normal-mode device whose own module table shows a failed check (the condition Device OS
// boots into safe mode for) is reported as safe.
const (
	ModeUnknown   Mode = ""
	ModeNormal    Mode = "normal"
	ModeDFU       Mode = "dfu"
	ModeListening Mode = "listening"
	ModeSafe      Mode = "safe"
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
	Mode     Mode
	Doors    []DoorRef
	// Modules are the modules as last read (nil before the first reading); ModulesErr is
	// why the last reading failed, ModulesAt when it was made, ModulesMode the mode it was
	// made in.
	Modules     []ModuleStatus
	ModulesErr  error
	ModulesAt   time.Time
	ModulesMode Mode
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

// Checks are the validity checks of one module. A check that was not run (see
// ModuleStatus.Unchecked) is false here but does not make the module invalid.
type Checks struct {
	Integrity    bool `json:"integrity"`
	Range        bool `json:"range"`
	Platform     bool `json:"platform"`
	Dependencies bool `json:"dependencies"`
}

// Dependency is one module a module needs, with whether the device has it.
type Dependency struct {
	Function platform.Function
	Index    uint8
	Version  uint16
	// Met is true when the device has a module of that function and index at least that
	// new (Device OS's rule); false also when it cannot be told (see Unknown).
	Met bool
	// Unknown is true when the door cannot see the module depended on (the NCP over DFU).
	Unknown bool
	// Have is the installed version, 0 when none.
	Have uint16
}

// ModuleStatus is one module slot of a device, the same shape whichever door read it.
type ModuleStatus struct {
	Function platform.Function
	Index    uint8
	// Name is the release-asset name of the slot ("system-part1", "bootloader",
	// "softdevice", "user-part"), "" if the platform table has no such slot.
	Name    string
	Version uint16
	// DeviceOS names the Device OS release of a system part, bootloader or monolithic
	// firmware ("4.1.0"); Description names other things (a SoftDevice version).
	DeviceOS    string
	Description string
	// Location is "main", "factory", "backup" or "scratchpad".
	Location string
	// Present is false for an empty slot.
	Present bool
	// Valid: present and no check that ran failed.
	Valid  bool
	Checks Checks
	// Unchecked lists checks that were not run ("integrity" when DFU reading skipped the
	// CRC; whatever the device did not check).
	Unchecked    []string
	Dependencies []Dependency
	Address      uint32 // start address, when the door knows it
	Size         uint32 // with CRC, when known
	MaxSize      uint32 // the slot's size, when known
	// Problem says what is wrong, for a person ("half-written: ...").
	Problem string
	// Source is the door that read it: "control" (request 90), "serial" (`s`), "dfu".
	Source string
}

// Failed lists the checks that ran and failed, by their JSON names.
func (m ModuleStatus) Failed() []string {
	var out []string
	for _, c := range []struct {
		name string
		ok   bool
	}{{"integrity", m.Checks.Integrity}, {"range", m.Checks.Range}, {"platform", m.Checks.Platform}, {"dependencies", m.Checks.Dependencies}} {
		if !c.ok && !slices.Contains(m.Unchecked, c.name) {
			out = append(out, c.name)
		}
	}
	return out
}

func (m *ModuleStatus) settle() {
	m.Valid = m.Present && len(m.Failed()) == 0
}
