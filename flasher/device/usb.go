package device

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/listen"
	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/serialport"
	"github.com/particle-flasher/particle-flasher/flasher/state"
	"github.com/particle-flasher/particle-flasher/flasher/usb"
)

// USB reaches real devices: libusb (flasher/usb) for DFU and control requests, the
// OS's serial ports (flasher/serialport) for the 14400-baud trigger and the listening-mode
// console. A device is found by its device ID, which is its USB serial number in normal
// and DFU mode alike.
type USB struct {
	Host *usb.Host
	// ListPorts lists the Particle serial ports (default serialport.List). The simulator's
	// ports are ptys the OS does not list as USB devices, so tests replace it.
	ListPorts func() ([]serialport.PortInfo, error)
	// RequestTimeout bounds one control request (default 10 s; a module table can take a
	// moment on a busy device).
	RequestTimeout time.Duration
	// DFU tunes the DFU client (retries, logging); TransferSize comes from the device.
	DFU dfu.Options
	// Console tunes the listening-mode console.
	Console listen.Options
	// ProbeTimeout bounds the watcher's questions to a device it has just seen (its ID and
	// mode; default 3 s).
	ProbeTimeout time.Duration
}

var _ Bus = (*USB)(nil)

func (u *USB) reqTimeout() time.Duration {
	if u.RequestTimeout > 0 {
		return u.RequestTimeout
	}
	return 10 * time.Second
}

// List returns the Particle devices on USB.
func (u *USB) List(ctx context.Context) ([]Attached, error) {
	infos, err := u.Host.List()
	if err != nil {
		return nil, err
	}
	var out []Attached
	for _, i := range infos {
		a := Attached{ID: i.DeviceID, Platform: i.Platform, DFU: i.DFU, Where: "USB " + i.Path}
		if i.Err != nil && i.DeviceID == "" {
			a.Problem = i.Err // a device we may not open: say so rather than ignore it
		}
		out = append(out, a)
	}
	return out, nil
}

// Find opens the device with this ID. A normal-mode device is asked whether it is in
// listening mode (control request 72), which USB IDs do not tell.
func (u *USB) Find(ctx context.Context, id string) (Link, error) {
	infos, err := u.Host.Find(id)
	if err != nil {
		return nil, err
	}
	switch len(infos) {
	case 0:
		return nil, fmt.Errorf("%w: no device %s on USB", ErrNotAttached, id)
	case 1:
	default:
		var paths []string
		for _, i := range infos {
			paths = append(paths, i.Path)
		}
		return nil, remedy.With(fmt.Errorf("%d attached devices identify as %s (ports %s)", len(infos), id, strings.Join(paths, ", ")),
			"unplug the others: two units with one ID (a known Photon DFU serial defect) cannot be told apart by ID")
	}
	info := infos[0]
	if info.Platform == nil {
		return nil, remedy.With(fmt.Errorf("the %s is a platform this version does not know", info), "update the flasher")
	}
	d, err := u.Host.OpenInfo(info)
	if err != nil {
		if errors.Is(err, usb.ErrNotFound) {
			return nil, fmt.Errorf("%w: %w", ErrNotAttached, err)
		}
		return nil, err
	}
	l := &usbLink{u: u, d: d, info: info, mode: state.ModeDFU}
	if !info.DFU {
		l.mode = state.ModeNormal
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		m, err := l.Ctrl().DeviceMode(pctx)
		cancel()
		if err == nil && m == ctrl.ModeListening {
			l.mode = state.ModeListening
		}
	}
	return l, nil
}

type usbLink struct {
	u    *USB
	d    *usb.Device
	info usb.Info
	mode state.Mode
}

func (l *usbLink) ID() string                   { return l.info.DeviceID }
func (l *usbLink) Platform() *platform.Platform { return l.info.Platform }
func (l *usbLink) Mode() state.Mode             { return l.mode }
func (l *usbLink) Instance() string             { return l.info.Key() }
func (l *usbLink) Close() error                 { return l.d.Close() }

func (l *usbLink) DFU(ctx context.Context, alt uint8) (*dfu.Client, *memlayout.Layout, error) {
	x, err := l.d.DFUWith(alt, l.u.DFU)
	if err != nil {
		return nil, nil, err
	}
	layout := x.Layout
	if layout == nil {
		// A layout string that does not parse is reported, never guessed around.
		return nil, nil, fmt.Errorf("alt %d of the %s reports a memory layout that does not parse: %q", alt, l.info, x.LayoutString)
	}
	return x.Client, layout, nil
}

func (l *usbLink) Ctrl() *ctrl.Client {
	return l.d.Ctrl(ctrl.Options{RequestTimeout: l.u.reqTimeout()})
}

// port finds the device's serial port by its USB serial number.
func (l *usbLink) port() (string, error) {
	list := l.u.ListPorts
	if list == nil {
		list = serialport.List
	}
	ports, err := list()
	if err != nil {
		return "", err
	}
	for _, p := range ports {
		if strings.EqualFold(usb.DeviceIDFromSerial(p.Serial), l.info.DeviceID) {
			return p.Path, nil
		}
	}
	return "", ErrNoSerial
}

func (l *usbLink) TriggerDFU(ctx context.Context) error {
	path, err := l.port()
	if err != nil {
		return err
	}
	return serialport.TriggerDFU(path)
}

func (l *usbLink) Console(ctx context.Context) (*listen.Console, func(), error) {
	path, err := l.port()
	if err != nil {
		return nil, nil, err
	}
	p, err := serialport.Open(path, serialport.ConsoleBaud)
	if err != nil {
		return nil, nil, err
	}
	return listen.New(p, l.u.Console), func() { _ = p.Close() }, nil
}
