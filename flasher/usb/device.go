package usb

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// Device is an open Particle device. Its Control has gousb's signature, so it is the
// Controller of both flasher/dfu (in DFU mode) and flasher/ctrl (in normal, listening and
// safe mode). It is safe for concurrent use; transfers are serialised, as on the
// device's single control pipe.
type Device struct {
	info Info

	mu sync.Mutex
	c  conn // nil once closed
}

// Open opens the one attached device that target names: a device ID, a serial-number
// string or a port path ("1-2.3"). No match is ErrNotFound; several matches (two units with
// the same serial, the Photon DFU serial defect) is an error asking for the port path; a
// refused open is a *PermissionError with the udev remedy.
func (h *Host) Open(target string) (*Device, error) {
	infos, err := h.Find(target)
	if err != nil {
		return nil, err
	}
	switch len(infos) {
	case 0:
		return nil, remedy.With(fmt.Errorf("%w: nothing matches %q", ErrNotFound, target),
			"check the USB cable (some are charge-only) and that the device is powered; the device list shows what is attached")
	case 1:
	default:
		var paths []string
		for _, i := range infos {
			paths = append(paths, i.Path)
		}
		return nil, remedy.With(fmt.Errorf("usb: %d devices match %q (ports %s)", len(infos), target, strings.Join(paths, ", ")),
			"name the device by its USB port path instead ("+paths[0]+"), or unplug the others")
	}
	return h.OpenInfo(infos[0])
}

// OpenInfo opens the device a listing returned, if it is still the same enumeration
// instance (same bus and address).
func (h *Host) OpenInfo(info Info) (*Device, error) {
	if info.Err != nil {
		return nil, info.Err
	}
	if h == nil || h.be == nil {
		return nil, errors.New("usb: host is closed")
	}
	h.mu.Lock()
	c, err := h.be.open(info, h.timeout())
	h.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &Device{info: info, c: c}, nil
}

// Info is what the listing said about the device.
func (d *Device) Info() Info { return d.info }

// ControlError is a failed control transfer. It unwraps to the backend's error (libusb's,
// or the Windows error code) and, for a STALL or a vanished device, also to dfu.ErrStall or
// dfu.ErrNoDevice, which the DFU client and callers branch on.
type ControlError struct {
	Err      error
	sentinel error
}

func (e *ControlError) Error() string { return e.Err.Error() }

// Unwrap returns the backend's error and the classified sentinel.
func (e *ControlError) Unwrap() []error {
	if e.sentinel != nil {
		return []error{e.Err, e.sentinel}
	}
	return []error{e.Err}
}

// Control performs one control transfer with gousb's contract: data is the payload (OUT)
// or the buffer to fill (IN), n the bytes transferred. Each transfer is bounded by the
// host's ControlTimeout.
func (d *Device) Control(rType, request uint8, val, idx uint16, data []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.c == nil {
		return 0, &ControlError{Err: errors.New("usb: control transfer on a closed device"), sentinel: dfu.ErrNoDevice}
	}
	return d.c.control(rType, request, val, idx, data)
}

// Ctrl returns a control-request client for the device (normal, listening and safe mode),
// with the platform's quirk for OUT transfers without data applied.
func (d *Device) Ctrl(o ctrl.Options) *ctrl.Client {
	if d.info.Platform != nil && d.info.Platform.ControlOutNeedsData {
		o.OutNeedsData = true
	}
	return ctrl.New(d, o)
}

// DFU is the DFU interface with one alt setting selected.
type DFU struct {
	*dfu.Client
	Alt uint8
	// LayoutString is the alt setting's iInterface string, the DfuSe memory map; Layout
	// is its parse (nil when it does not parse, which the caller should report).
	LayoutString string
	Layout       *memlayout.Layout
	// Functional is the DFU functional descriptor; FunctionalFound is false when the
	// device had none and the platform's wTransferSize was assumed.
	Functional      dfu.FunctionalDescriptor
	FunctionalFound bool
}

const (
	stdIn          = 0x80 // bmRequestType: standard, device to host, device
	stdInInterface = 0x81
	reqGetDesc     = 0x06
	descConfig     = 0x02
)

// DFU claims interface 0, selects alt, and returns a client for it with the alt's memory
// layout and the functional descriptor's wTransferSize. The functional descriptor is taken
// from the configuration descriptor (where dfu-util finds it among the interface's extra
// bytes; every device answers GET_DESCRIPTOR(CONFIGURATION)), else asked for directly with
// GET_DESCRIPTOR(0x21); without either, the platform's known transfer size is used.
func (d *Device) DFU(alt uint8) (*DFU, error) { return d.DFUWith(alt, dfu.Options{}) }

// DFUWith is DFU with client options (logging, retries, ...); TransferSize and Interface
// are filled in from the device.
func (d *Device) DFUWith(alt uint8, opts dfu.Options) (*DFU, error) {
	if !d.info.DFU {
		return nil, remedy.With(fmt.Errorf("usb: the %s is not in DFU mode", d.info),
			"put it in DFU mode first (blinking yellow)")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.c == nil {
		return nil, fmt.Errorf("usb: the %s is closed", d.info)
	}
	d.c.release()
	if err := d.c.selectAlt(alt); err != nil {
		return nil, err
	}
	out := &DFU{Alt: alt}
	var err error
	out.LayoutString, err = d.c.altName(alt)
	if err != nil {
		d.c.release()
		return nil, fmt.Errorf("usb: read the memory layout of alt %d of the %s: %w", alt, d.info, err)
	}
	if l, perr := memlayout.Parse(out.LayoutString); perr == nil {
		out.Layout = l
	}
	out.Functional, out.FunctionalFound = d.functionalDescriptor()
	if !out.FunctionalFound {
		out.Functional = dfu.FunctionalDescriptor{Attributes: dfu.AttrCanDnload | dfu.AttrCanUpload | dfu.AttrWillDetach, DFUVersion: 0x011A}
		if d.info.Platform != nil {
			out.Functional.TransferSize = d.info.Platform.TransferSize
		}
	}
	opts.TransferSize = out.Functional.TransferSize
	opts.Interface = 0
	out.Client = dfu.New(d, opts)
	return out, nil
}

// functionalDescriptor finds the DFU functional descriptor.
func (d *Device) functionalDescriptor() (dfu.FunctionalDescriptor, bool) {
	var head [9]byte
	if n, err := d.c.control(stdIn, reqGetDesc, uint16(descConfig)<<8, 0, head[:]); err == nil && n >= 4 {
		total := int(head[2]) | int(head[3])<<8
		if total >= 9 && total <= 4096 {
			buf := make([]byte, total)
			if n, err := d.c.control(stdIn, reqGetDesc, uint16(descConfig)<<8, 0, buf); err == nil {
				if fd, err := dfu.ParseFunctionalDescriptor(buf[:n]); err == nil {
					return fd, true
				}
			}
		}
	}
	for _, rt := range []uint8{stdIn, stdInInterface} {
		buf := make([]byte, 9)
		if n, err := d.c.control(rt, reqGetDesc, uint16(dfu.FunctionalDescriptorType)<<8, 0, buf); err == nil {
			if fd, err := dfu.ParseFunctionalDescriptor(buf[:n]); err == nil {
				return fd, true
			}
		}
	}
	return dfu.FunctionalDescriptor{}, false
}

// Close releases the interface (if DFU claimed it) and the device.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.c == nil {
		return nil
	}
	d.c.release()
	err := d.c.close()
	d.c = nil
	return err
}
