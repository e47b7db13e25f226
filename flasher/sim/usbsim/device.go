package usbsim

import (
	"errors"
	"fmt"
)

// Device is one simulated USB device as the host sees it. A Server never
// calls Control, Open or Reset of one device concurrently, across replugs
// too; Info is called by whoever calls Server.Add or Server.Replug, so it may
// run alongside them. Device values are used as map keys by the Server, so
// they must be comparable (typically pointers).
type Device interface {
	// Info returns the descriptors and identity. It is read when the device is
	// added and again on every Replug, so it may change between enumerations
	// (for example the PID after a reset into DFU mode).
	Info() DeviceInfo
	// Control handles every control transfer, standard requests included
	// (Descriptors.HandleStandard answers those). For an IN transfer
	// (setup.RequestType&0x80 != 0) data has setup.Length bytes and the device
	// fills data[:n]; for an OUT transfer data holds the payload and n is
	// ignored on success. Return ErrStall to STALL the request.
	Control(setup Setup, data []byte) (n int, err error)
	// Open is called when a host opens the device; return ErrAccess to
	// simulate a permission problem.
	Open() error
}

// Resetter is implemented by devices that react to a USB bus reset
// (libusb_reset_device). A device that re-enumerates as a result should call
// Server.Replug itself; the host's reset call then fails with
// LIBUSB_ERROR_NOT_FOUND, as with real libusb.
type Resetter interface {
	Reset() error
}

// Setup is the setup packet of a control transfer.
type Setup struct {
	RequestType, Request uint8
	Value, Index, Length uint16
}

// In reports whether the transfer moves data from the device to the host.
func (s Setup) In() bool { return s.RequestType&0x80 != 0 }

// String formats the setup packet for logs and test failures.
func (s Setup) String() string {
	return fmt.Sprintf("{bmRequestType=%#02x bRequest=%#02x wValue=%#04x wIndex=%#04x wLength=%d}",
		s.RequestType, s.Request, s.Value, s.Index, s.Length)
}

// USB speeds as libusb numbers them (enum libusb_speed).
const (
	SpeedUnknown = 0
	SpeedLow     = 1
	SpeedFull    = 2
	SpeedHigh    = 3
	SpeedSuper   = 4
)

// DeviceInfo is what the host learns about a device when it enumerates it.
type DeviceInfo struct {
	// Bus is the bus number; 0 means bus 1.
	Bus uint8
	// Address is the device address; 0 lets the Server assign a fresh one on
	// every enumeration, as a real host does.
	Address uint8
	// Ports is the port path from the root hub; empty lets the Server assign
	// one that stays the same for this device across replugs.
	Ports []uint8
	// Speed is a libusb speed (SpeedFull, ...); 0 means SpeedFull.
	Speed int
	// Descriptor is the 18-byte device descriptor.
	Descriptor []byte
	// Config is the full configuration descriptor (wTotalLength bytes), or
	// several of them back to back.
	Config []byte
}

// Error is a libusb error code returned to the host by a Device or the
// Server. Devices may return any Error (wrapped or not); other errors become
// LIBUSB_ERROR_IO.
type Error int

// Error returns the libusb name of the code.
func (e Error) Error() string {
	if name, ok := errorNames[e]; ok {
		return "usbsim: " + name
	}
	return fmt.Sprintf("usbsim: libusb error %d", int(e))
}

var errorNames = map[Error]string{
	-1: "LIBUSB_ERROR_IO", -2: "LIBUSB_ERROR_INVALID_PARAM", -3: "LIBUSB_ERROR_ACCESS",
	-4: "LIBUSB_ERROR_NO_DEVICE", -5: "LIBUSB_ERROR_NOT_FOUND", -6: "LIBUSB_ERROR_BUSY",
	-7: "LIBUSB_ERROR_TIMEOUT", -8: "LIBUSB_ERROR_OVERFLOW", -9: "LIBUSB_ERROR_PIPE",
	-10: "LIBUSB_ERROR_INTERRUPTED", -11: "LIBUSB_ERROR_NO_MEM", -12: "LIBUSB_ERROR_NOT_SUPPORTED",
	-99: "LIBUSB_ERROR_OTHER",
}

// Errors a Device returns to make the host see the matching libusb error.
var (
	// ErrIO is LIBUSB_ERROR_IO (-1), a failed transfer.
	ErrIO error = Error(-1)
	// ErrAccess is LIBUSB_ERROR_ACCESS (-3), e.g. from Open without permission.
	ErrAccess error = Error(-3)
	// ErrNoDevice is LIBUSB_ERROR_NO_DEVICE (-4), the device is gone.
	ErrNoDevice error = Error(-4)
	// ErrNotFound is LIBUSB_ERROR_NOT_FOUND (-5).
	ErrNotFound error = Error(-5)
	// ErrBusy is LIBUSB_ERROR_BUSY (-6), e.g. an interface claimed by another process.
	ErrBusy error = Error(-6)
	// ErrTimeout is LIBUSB_ERROR_TIMEOUT (-7).
	ErrTimeout error = Error(-7)
	// ErrStall is LIBUSB_ERROR_PIPE (-9): the device STALLed the request.
	ErrStall error = Error(-9)
)

// errCode maps an error to the libusb code sent to the shim.
func errCode(err error) int32 {
	var e Error
	if errors.As(err, &e) && e < 0 {
		return int32(e)
	}
	return int32(-1)
}
