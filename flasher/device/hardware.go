package device

import (
	"context"
	"errors"
	"log/slog"

	"github.com/particle-flasher/particle-flasher/flasher/usb"
)

// Hardware is this machine's real ways to devices: USB through libusb (for the watcher
// and the runner alike, one host) and the serial ports.
type Hardware struct {
	// USB is nil when libusb cannot be used; USBErr says why.
	USB    *USB
	USBErr error
	Serial *SerialDoor
}

// OpenHardware opens libusb and the serial ports. Without libusb the serial door still
// works; USBErr says what is wrong (with a remedy).
func OpenHardware() *Hardware {
	hw := &Hardware{Serial: &SerialDoor{}}
	h, err := usb.NewHost()
	if err != nil {
		hw.USBErr = err
		return hw
	}
	hw.USB = &USB{Host: h}
	return hw
}

// Doors are the watcher's doors: USB (when it works) and the serial ports.
func (hw *Hardware) Doors() []Door {
	var out []Door
	if hw.USB != nil {
		out = append(out, hw.USB)
	}
	if hw.Serial != nil {
		out = append(out, hw.Serial)
	}
	return out
}

// Close releases libusb.
func (hw *Hardware) Close() {
	if hw.USB != nil {
		if err := hw.USB.Host.Close(); err != nil {
			slog.Debug("closing libusb", "err", err)
		}
	}
}

// PermissionRemedy is the fix for a USB permission error (the udev rule on Linux), for
// screens that explain it before any error happens.
func PermissionRemedy() string { return usb.PermissionRemedy() }

// Join lets one runner reach devices behind several doors (virtual and real): a device is
// looked for behind each in turn. Nil doors are left out.
func Join(buses ...Bus) Bus {
	var out joined
	for _, d := range buses {
		if d != nil {
			out = append(out, d)
		}
	}
	return out
}

type joined []Bus

// List returns the devices behind every door; it fails only when no door answers.
func (j joined) List(ctx context.Context) ([]Attached, error) {
	var out []Attached
	var errs []error
	for _, d := range j {
		l, err := d.List(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, l...)
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Find opens the device behind the first door that has it. A door's own failure (no
// permission) wins over another door's "not attached", since it says why.
func (j joined) Find(ctx context.Context, id string) (Link, error) {
	var firstErr error
	for _, d := range j {
		l, err := d.Find(ctx, id)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, ErrNotAttached) && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, ErrNotAttached
}
