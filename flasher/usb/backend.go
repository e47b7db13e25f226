package usb

import "time"

// backend is what an operating system offers the Host: the Particle devices present, and a
// way to open one. gousb.go (libusb) and winusb.go (WinUSB) implement it.
type backend interface {
	// scan lists the Particle devices present without opening any: IDs, platform, mode,
	// path and the instance key. A device the backend already knows it cannot open (no
	// WinUSB driver) comes with Err set, remedy included.
	scan() ([]Info, error)
	// open opens a device a scan returned. Its errors are already in words for people: a
	// *PermissionError, a busy device, ErrNotFound when it left the bus.
	open(info Info, timeout time.Duration) (conn, error)
	close() error
}

// conn is one open device. Its errors are classified (control errors are *ControlError
// with dfu.ErrStall or dfu.ErrNoDevice inside) and name the device.
type conn interface {
	// control is one transfer on the default control pipe with gousb's contract: data is
	// the payload (OUT) or the buffer to fill (IN), n the bytes transferred.
	control(rType, request uint8, val, idx uint16, data []byte) (int, error)
	// serialNumber is the iSerialNumber string.
	serialNumber() (string, error)
	// names are the iProduct and iManufacturer strings, "" where unreadable.
	names() (product, manufacturer string)
	// selectAlt claims interface 0 with this alternate setting (DFU's memory regions).
	selectAlt(alt uint8) error
	// altName is the iInterface string of interface 0's alternate setting (DfuSe's memory
	// layout).
	altName(alt uint8) (string, error)
	// release gives interface 0 back (no-op when nothing is claimed).
	release()
	close() error
}
