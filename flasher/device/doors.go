package device

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
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/serialport"
	"github.com/particle-flasher/particle-flasher/flasher/state"
	"github.com/particle-flasher/particle-flasher/flasher/usb"
)

// Sighting is what one door sees of one device at one moment, before anything is asked of
// the device.
type Sighting struct {
	Door string // DoorUSB or DoorSerial
	// Key identifies the enumeration instance within the door: a device that re-enumerates
	// gets a new key.
	Key string
	// Path is the USB port path or the tty.
	Path string
	// DeviceID is the device ID when the listing tells it (the USB serial string); Serial
	// is that string as reported.
	DeviceID, Serial string
	Platform         *platform.Platform
	// DFU is true for the USB DFU bootloader.
	DFU bool
	// Err is the door's problem with the device (a permission error).
	Err error
	// Ref is the door's own handle on the instance (a usb.Info for the USB door).
	Ref any
}

// Probe is what asking the device adds to a sighting.
type Probe struct {
	DeviceID string
	Platform *platform.Platform
	// Mode is ModeUnknown when the door cannot tell.
	Mode state.Mode
}

// ErrNotSupported is returned by a door asked for something it cannot do for a sighting
// (modules of a normal-mode device over a serial port, say).
var ErrNotSupported = errors.New("device: not possible through this door")

// Door is one way the watcher sees devices come and go: USB (the same USB type the runner
// finds devices through), serial ports, virtual devices (flasher/demo). Implementations
// must bound every call's time.
type Door interface {
	// Name is DoorUSB or DoorSerial.
	Name() string
	// Sightings returns what the door sees now. It must be cheap: it runs every poll.
	Sightings(ctx context.Context) ([]Sighting, error)
	// NeedsProbe tells whether Probe has something to learn for this sighting (a device ID
	// the listing lacks, or a mode the USB IDs cannot tell).
	NeedsProbe(s Sighting) bool
	// Probe asks the device what the listing could not tell.
	Probe(ctx context.Context, s Sighting) (Probe, error)
	// Open opens the device a sighting shows, in mode m (as the listing and the probe
	// told it), for reading its modules (Read); ErrNotSupported when this door cannot.
	Open(ctx context.Context, s Sighting, m state.Mode) (Link, error)
}

// The watcher's view of USB: the same USB type the runner finds devices through.

// Name is DoorUSB.
func (u *USB) Name() string { return DoorUSB }

// Sightings lists the Particle devices on the bus.
func (u *USB) Sightings(ctx context.Context) ([]Sighting, error) {
	infos, err := u.Host.List()
	if err != nil {
		return nil, err
	}
	out := make([]Sighting, 0, len(infos))
	for _, i := range infos {
		err := i.Err
		if f, ok := platform.ForeignByUSB(i.VID, i.PID); ok {
			err = ForeignError(f)
		}
		out = append(out, Sighting{Door: DoorUSB, Key: i.Key(), Path: i.Path, DeviceID: i.DeviceID, Serial: i.Serial,
			Platform: i.Platform, DFU: i.DFU, Err: err, Ref: i})
	}
	return out, nil
}

// ForeignError is how a Particle product that is not a Device OS device is listed: what it
// is and what to use for it instead.
func ForeignError(f platform.Foreign) error {
	return remedy.With(fmt.Errorf("this %s is not a Device OS device", f.DisplayName), f.Instead)
}

// NeedsProbe: a normal-PID device may be in listening mode, which only a control request
// tells; a device whose serial holds no ID (old Gen2 Device OS) is asked for it. DFU mode
// and unopenable devices have nothing more to give.
func (u *USB) NeedsProbe(s Sighting) bool { return !s.DFU && s.Err == nil }

func (u *USB) probeTimeout() time.Duration {
	if u.ProbeTimeout > 0 {
		return u.ProbeTimeout
	}
	return 3 * time.Second
}

func infoOf(s Sighting) (usb.Info, error) {
	info, ok := s.Ref.(usb.Info)
	if !ok {
		return usb.Info{}, fmt.Errorf("device: USB sighting %s carries no usb.Info", s.Key)
	}
	return info, nil
}

// Probe asks a normal-mode device for its mode (control request 72) and, if the serial
// string did not hold it, its device ID (request 20). Firmware without control requests
// (Device OS < 0.8 on Gen2) answers neither: the mode stays unknown (normal).
func (u *USB) Probe(ctx context.Context, s Sighting) (Probe, error) {
	pr := Probe{DeviceID: s.DeviceID, Platform: s.Platform, Mode: ModeNormal}
	if s.DFU {
		pr.Mode = ModeDFU
		return pr, nil
	}
	info, err := infoOf(s)
	if err != nil {
		return pr, err
	}
	d, err := u.Host.OpenInfo(info)
	if err != nil {
		return pr, err
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(ctx, u.probeTimeout())
	defer cancel()
	c := d.Ctrl(ctrl.Options{RequestTimeout: u.probeTimeout()})
	if pr.DeviceID == "" {
		if id, err := c.DeviceID(ctx); err == nil {
			pr.DeviceID = id
		} else if id, err2 := c.LegacyDeviceID(ctx); err2 == nil {
			pr.DeviceID = id
		}
	}
	mode, err := c.DeviceMode(ctx)
	if err != nil {
		return pr, fmt.Errorf("ask the %s for its mode: %w", d.Info(), err)
	}
	if mode == ctrl.ModeListening {
		pr.Mode = ModeListening
	}
	return pr, nil
}

// Open opens the sighting's device for reading.
func (u *USB) Open(ctx context.Context, s Sighting, m state.Mode) (Link, error) {
	if s.Err != nil {
		return nil, s.Err
	}
	info, err := infoOf(s)
	if err != nil {
		return nil, err
	}
	if info.Platform == nil {
		return nil, remedy.With(fmt.Errorf("the %s is a Particle platform this version does not know", info), "Update Particle Flasher.")
	}
	d, err := u.Host.OpenInfo(info)
	if err != nil {
		return nil, err
	}
	if s.DFU {
		m = ModeDFU
	}
	return &usbLink{u: u, d: d, info: info, mode: m}, nil
}

// SerialDoor reaches devices through their USB CDC serial ports: identity from the port's
// USB serial number (or `i` when the OS gives none), modules with `s` in listening mode.
// It never writes to a port whose device ID it already knows unless modules are asked for,
// so an application reading Serial in normal mode is not disturbed.
type SerialDoor struct {
	// ListPorts lists the Particle ports (default serialport.List). Tests and the simulator
	// (whose ports are ptys the OS does not list as USB) replace it.
	ListPorts func() ([]serialport.PortInfo, error)
	// OpenPort opens a port for the console (default serialport.Open at ConsoleBaud).
	OpenPort func(path string) (serialport.Port, error)
	// Console tunes the console (timeouts); the default bounds `i` and `s` at 5 s.
	Console listen.Options
}

// Name is DoorSerial.
func (sd *SerialDoor) Name() string { return DoorSerial }

// Sightings lists the Particle serial ports.
func (sd *SerialDoor) Sightings(ctx context.Context) ([]Sighting, error) {
	list := sd.ListPorts
	if list == nil {
		list = serialport.List
	}
	ports, err := list()
	if err != nil {
		return nil, err
	}
	out := make([]Sighting, 0, len(ports))
	for _, pi := range ports {
		p, _, _ := usb.Identify(pi.VID, pi.PID)
		out = append(out, Sighting{Door: DoorSerial, Key: pi.Path, Path: pi.Path, DeviceID: usb.DeviceIDFromSerial(pi.Serial),
			Serial: pi.Serial, Platform: p})
	}
	return out, nil
}

// NeedsProbe: only a port without a usable serial number is asked (`i`).
func (sd *SerialDoor) NeedsProbe(s Sighting) bool { return s.DeviceID == "" }

func (sd *SerialDoor) console(path string) (*listen.Console, func(), error) {
	open := sd.OpenPort
	if open == nil {
		open = func(path string) (serialport.Port, error) { return serialport.Open(path, serialport.ConsoleBaud) }
	}
	port, err := open(path)
	if err != nil {
		return nil, nil, err
	}
	o := sd.Console
	if o.SlowTimeout == 0 {
		o.SlowTimeout = 5 * time.Second
	}
	return listen.New(port, o), func() { _ = port.Close() }, nil
}

// Probe asks `i`: only a device in listening mode answers, which is therefore its mode.
func (sd *SerialDoor) Probe(ctx context.Context, s Sighting) (Probe, error) {
	pr := Probe{DeviceID: s.DeviceID, Platform: s.Platform}
	c, done, err := sd.console(s.Path)
	if err != nil {
		return pr, err
	}
	defer done()
	id, err := c.Identify(ctx)
	if err != nil {
		return pr, err
	}
	pr.DeviceID, pr.Mode = id.DeviceID, ModeListening
	return pr, nil
}

// Open opens the port of a device in listening mode, where its console answers.
func (sd *SerialDoor) Open(ctx context.Context, s Sighting, m state.Mode) (Link, error) {
	if m != ModeListening {
		return nil, ErrNotSupported
	}
	return &serialLink{sd: sd, s: s}, nil
}

// serialLink is a device reached through its serial port alone (listening mode): the
// console, and the 14400-baud trigger into DFU mode.
type serialLink struct {
	sd *SerialDoor
	s  Sighting
}

func (l *serialLink) ID() string                   { return l.s.DeviceID }
func (l *serialLink) Platform() *platform.Platform { return l.s.Platform }
func (l *serialLink) Mode() state.Mode             { return ModeListening }
func (l *serialLink) Instance() string             { return l.s.Key }
func (l *serialLink) Close() error                 { return nil }
func (l *serialLink) Ctrl() *ctrl.Client           { return nil }
func (l *serialLink) TriggerDFU(ctx context.Context) error {
	return serialport.TriggerDFU(l.s.Path)
}
func (l *serialLink) DFU(context.Context, uint8) (*dfu.Client, *memlayout.Layout, error) {
	return nil, nil, ErrNotSupported
}
func (l *serialLink) Console(ctx context.Context) (*listen.Console, func(), error) {
	return l.sd.console(l.s.Path)
}
