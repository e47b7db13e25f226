// Package usb is the flasher's door onto Particle devices over USB: it finds them on the
// bus, tells their platform and mode from their USB IDs, reads their identity from the
// serial-number string, opens one for control transfers (the DFU bootloader and the
// control-request protocol both run over the default control pipe) and watches the bus for
// devices coming and going.
//
// The operating system is reached through a backend (backend.go): libusb through gousb on
// Linux and macOS (gousb.go), WinUSB through SetupAPI and winusb.dll on Windows (winusb.go,
// pure Go over golang.org/x/sys/windows, since there is no libusb built for MinGW to link).
// Host and Device are the same on every system; the DFU and control clients see only
// Device.Control.
//
// Neither backend has a hotplug API here, so the bus is polled (Poller). Opening a device to
// read its strings costs a few control transfers, so the Host remembers what it learnt about
// each enumeration instance and only opens devices it has not seen.
//
// On Linux an unprivileged user may not open USB devices unless a udev rule allows it;
// libusb then answers LIBUSB_ERROR_ACCESS, which this package turns into a
// *PermissionError that names the device and carries the fix (the Particle udev rule). On
// Windows the equivalent trouble is a missing WinUSB driver or a stale entry in Device
// Manager; those errors carry Windows remedies (winremedy.go).
package usb

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/particle-flasher/particle-flasher/assets"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// USB vendor IDs of Particle devices: Particle's own, and the Spark VID the Core still uses
// (reference §1a).
const (
	ParticleVID uint16 = 0x2B04
	SparkVID    uint16 = 0x1D50
)

// DefaultControlTimeout bounds one control transfer. libusb's default is to wait forever,
// which would let a wedged device hang the flasher; the slowest legitimate transfer is a
// GETSTATUS while an STM32F2 erases a 128 KB sector, answered within about 4 s.
const DefaultControlTimeout = 5 * time.Second

// Info is what the bus tells about one Particle device without talking to its firmware.
type Info struct {
	// Bus and Address identify this enumeration instance under libusb: a device that
	// resets (into DFU, back to normal mode) comes back with a new address.
	Bus, Address int
	// Instance identifies the enumeration instance on Windows: the device instance ID
	// ("USB\VID_2B04&PID_D00D\E00FCE68..."), which changes with the mode (PID). Empty
	// under libusb.
	Instance string
	// Path is the physical port: "bus-port.port..." as Linux names it in sysfs (e.g.
	// "1-2.3"), Windows' location path ("PCIROOT(0)#PCI(1400)#USBROOT(0)#USB(2)"). It stays
	// the same across re-enumerations as long as the cable stays in the same port, which is
	// how dfu-util -p and device-os-flash-util address devices.
	Path     string
	VID, PID uint16
	// Platform is nil for a Particle PID this version does not know.
	Platform *platform.Platform
	// DFU is true for the bootloader's DFU mode (PID 0xD0xx, the Core's 607f).
	DFU bool
	// Serial is the iSerialNumber string as reported; DeviceID is the 24-hex-digit device
	// ID in lower case taken from it, "" when it holds none (old Gen2 firmware, the Photon
	// DFU serial defect device-os#1425).
	Serial, DeviceID      string
	Product, Manufacturer string
	// Err is why the strings could not be read: a *PermissionError when the OS refused to
	// open the device. The IDs and path are still valid.
	Err error
}

// Key identifies the enumeration instance: bus and address (libusb) or the device instance
// ID (Windows), and the IDs.
func (i Info) Key() string {
	if i.Instance != "" {
		return fmt.Sprintf("%s:%04x:%04x", i.Instance, i.VID, i.PID)
	}
	return fmt.Sprintf("%d:%d:%04x:%04x", i.Bus, i.Address, i.VID, i.PID)
}

// Mode is "dfu" or "normal" (listening and safe mode share the normal PID).
func (i Info) Mode() string {
	if i.DFU {
		return "dfu"
	}
	return "normal"
}

// String names the device for messages: "Boron in DFU mode (2b04:d00d) at USB port 1-2.3".
func (i Info) String() string {
	name := "unknown Particle device"
	if i.Platform != nil {
		name = i.Platform.DisplayName
	}
	mode := "normal mode"
	if i.DFU {
		mode = "DFU mode"
	}
	s := fmt.Sprintf("%s in %s (%04x:%04x) at USB port %s", name, mode, i.VID, i.PID, i.Path)
	if i.DeviceID != "" {
		s += ", device ID " + i.DeviceID
	}
	return s
}

// Identify maps USB IDs to a platform and mode: every Particle device uses VID 0x2B04 with
// PID 0xC0xx in normal (and listening and safe) mode and 0xD0xx in DFU mode, xx the
// platform ID; the Core uses the Spark IDs 1d50:607d/607f. ok is false for other devices.
// A Particle PID the platform table does not know still counts (p nil), so a newer board
// shows up as "unknown Particle device" rather than not at all.
func Identify(vid, pid uint16) (p *platform.Platform, dfu bool, ok bool) {
	if p, dfu, ok := platform.ByUSB(vid, pid); ok {
		return p, dfu, true
	}
	if _, ok := platform.ForeignByUSB(vid, pid); ok {
		return nil, false, true // listed, and told apart by ForeignError
	}
	if vid == ParticleVID {
		switch pid & 0xFF00 {
		case 0xC000:
			return nil, false, true
		case 0xD000:
			return nil, true, true
		}
	}
	return nil, false, false
}

var idPattern = regexp.MustCompile(`[0-9a-f]{24}`)

// DeviceIDFromSerial extracts the device ID from a USB serial-number string: the whole
// string on current firmware, a 24-hex-digit run inside it on old Gen2 Device OS
// (particle-cli deviceIdFromSerialNumber), lower-cased as particle-usb does; "" if none.
func DeviceIDFromSerial(serial string) string {
	s := strings.ToLower(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, serial))
	return idPattern.FindString(s)
}

// ErrNotFound is returned by Open when no attached device matches.
var ErrNotFound = errors.New("usb: no such Particle device attached")

// PermissionError reports that the OS refused to open a device (LIBUSB_ERROR_ACCESS). On
// Linux that means no udev rule grants the user access; errors returned by this package wrap
// it in a remedy.Error carrying Remedy(), so the CLI and the app show the fix.
type PermissionError struct {
	Device string // what was being opened, for the message
	Err    error
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("no permission to open the %s (%v)", e.Device, e.Err)
}

// Unwrap returns libusb's error.
func (e *PermissionError) Unwrap() error { return e.Err }

// Remedy is what a person does about it: install the Particle udev rule and replug.
func (e *PermissionError) Remedy() string { return PermissionRemedy() }

// PermissionRemedy is the fix for a USB permission error: the rule lines of
// assets/50-particle.rules, how to install them, and to replug the device, since udev
// applies a rule only when the device is added.
func PermissionRemedy() string {
	var rules []string
	for _, l := range strings.Split(assets.UdevRules, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			rules = append(rules, "  "+l)
		}
	}
	return "allow your user to open Particle devices: save these lines as 50-particle.rules\n" +
		strings.Join(rules, "\n") +
		"\nthen run `" + assets.UdevInstallCommand + "` and unplug and replug the device " +
		"(the permissions check tells whether it worked)"
}

func permissionError(what string, err error) error {
	pe := &PermissionError{Device: what, Err: err}
	return remedy.With(pe, pe.Remedy())
}

// Host is this process's door onto the USB bus. One is enough for any number of devices
// (gousb runs an event goroutine per libusb context), so create one with NewHost and share
// it.
type Host struct {
	be backend

	// ControlTimeout is given to every opened device (default DefaultControlTimeout).
	ControlTimeout time.Duration

	mu    sync.Mutex
	cache map[string]Info // by Info.Key: strings already read for this enumeration
}

func newHost(be backend) *Host {
	return &Host{be: be, ControlTimeout: DefaultControlTimeout, cache: map[string]Info{}}
}

// Close releases the backend (libusb's context). Every Device opened through the host must
// be closed first.
func (h *Host) Close() error {
	if h == nil || h.be == nil {
		return nil
	}
	err := h.be.close()
	if err == nil {
		h.be = nil
	}
	return err
}

func (h *Host) timeout() time.Duration {
	if h.ControlTimeout > 0 {
		return h.ControlTimeout
	}
	return DefaultControlTimeout
}

// List enumerates the Particle devices on the bus, in the backend's order (bus/address under
// libusb). Devices seen before (same Key) are not opened again; new ones are opened just
// long enough to read their strings. A device the OS will not let us open is listed with
// Info.Err set (a *PermissionError inside under libusb, a driver remedy on Windows) rather
// than failing the whole listing.
func (h *Host) List() ([]Info, error) {
	if h == nil || h.be == nil {
		return nil, errors.New("usb: host is closed")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	seen, err := h.be.scan()
	if err != nil {
		return nil, err
	}
	present := map[string]bool{}
	out := make([]Info, 0, len(seen))
	for _, s := range seen {
		k := s.Key()
		present[k] = true
		if c, ok := h.cache[k]; ok && s.Err == nil {
			out = append(out, c)
			continue
		}
		if s.Err == nil {
			s = h.readStrings(s)
		}
		if s.Err == nil {
			h.cache[k] = s // failures are retried at the next listing
		}
		out = append(out, s)
	}
	for k := range h.cache {
		if !present[k] {
			delete(h.cache, k)
		}
	}
	return out, nil
}

// readStrings opens the device just long enough to read its strings into info; a failure
// is recorded in info.Err.
func (h *Host) readStrings(info Info) Info {
	c, err := h.be.open(info, h.timeout())
	if err != nil {
		info.Err = err
		return info
	}
	defer func() { _ = c.close() }()
	serial, err := c.serialNumber()
	if err != nil {
		info.Err = fmt.Errorf("usb: read the serial number of the %s: %w", info, err)
		return info
	}
	info.Serial = serial
	info.DeviceID = DeviceIDFromSerial(serial)
	// Product and manufacturer are for people; a device that fails them is still usable.
	info.Product, info.Manufacturer = c.names()
	return info
}

// Find returns the attached devices matching target: a device ID (any case), a raw serial
// number, or a port path ("1-2.3").
func (h *Host) Find(target string) ([]Info, error) {
	all, err := h.List()
	if err != nil {
		return nil, err
	}
	var out []Info
	t := strings.TrimSpace(target)
	for _, i := range all {
		if (i.DeviceID != "" && strings.EqualFold(i.DeviceID, t)) || (i.Serial != "" && i.Serial == t) || i.Path == t {
			out = append(out, i)
		}
	}
	return out, nil
}
