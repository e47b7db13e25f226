package ui

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/slots"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// SimDoor lets the device watcher see virtual devices in-process, the way the real USB
// door sees hardware: the watcher, and so the whole window, cannot tell them apart. It
// talks to each sim through the same public clients (flasher/ctrl, flasher/dfu) the
// engine uses on real devices, since a sim's Control has gousb's signature.
//
// It lives here rather than in flasher/device only because the app is its one user so
// far; it holds no protocol code of its own.
type SimDoor struct {
	mu   sync.Mutex
	devs []*sim.Device
}

// Add plugs a virtual device in; the watcher sees it at its next poll.
func (s *SimDoor) Add(d *sim.Device) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.devs = append(s.devs, d)
}

// Remove unplugs a virtual device from the door (the device itself keeps running).
func (s *SimDoor) Remove(d *sim.Device) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.devs {
		if x == d {
			s.devs = append(s.devs[:i], s.devs[i+1:]...)
			return
		}
	}
}

// Devices lists the virtual devices plugged into the door.
func (s *SimDoor) Devices() []*sim.Device {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*sim.Device(nil), s.devs...)
}

// Close powers every virtual device off.
func (s *SimDoor) Close() error {
	var errs []error
	for _, d := range s.Devices() {
		errs = append(errs, d.Close())
	}
	return errors.Join(errs...)
}

// Name is DoorUSB: a virtual device stands for a USB one.
func (s *SimDoor) Name() string { return device.DoorUSB }

// List reports every virtual device that is on the bus now. The key changes with every
// reset, as a real re-enumeration changes the bus address.
func (s *SimDoor) List(ctx context.Context) ([]device.Sighting, error) {
	var out []device.Sighting
	for _, d := range s.Devices() {
		st := d.Status()
		if !st.OnBus || !st.Ready || st.Mode == sim.ModeOff {
			continue
		}
		dfuMode := st.Mode == sim.ModeDFU
		out = append(out, device.Sighting{
			Door:     device.DoorUSB,
			Key:      fmt.Sprintf("sim:%s:%d:%t", d.ID(), st.Resets, dfuMode),
			Path:     "virtual",
			DeviceID: d.ID(),
			Serial:   d.ID(),
			Platform: d.Platform(),
			DFU:      dfuMode,
			Ref:      d,
		})
	}
	return out, nil
}

// NeedsProbe: like a real normal-PID device, only a non-DFU one may be in listening mode.
func (s *SimDoor) NeedsProbe(sg device.Sighting) bool { return !sg.DFU }

// Probe asks the device's mode with control request 72, as the USB door does.
func (s *SimDoor) Probe(ctx context.Context, sg device.Sighting) (device.Probe, error) {
	d, ok := sg.Ref.(*sim.Device)
	if !ok {
		return device.Probe{}, device.ErrNotSupported
	}
	m, err := simCtrl(d).DeviceMode(ctx)
	if err != nil {
		return device.Probe{}, err
	}
	p := device.Probe{DeviceID: d.ID(), Platform: d.Platform(), Mode: device.ModeNormal}
	if m == ctrl.ModeListening {
		p.Mode = device.ModeListening
	}
	return p, nil
}

// Modules reads the module table: control request 90 when Device OS runs, the flash over
// DfuSe UPLOAD in DFU mode.
func (s *SimDoor) Modules(ctx context.Context, sg device.Sighting, p *platform.Platform, m state.Mode) (state.Device, error) {
	d, ok := sg.Ref.(*sim.Device)
	if !ok {
		return state.Device{}, device.ErrNotSupported
	}
	if m == device.ModeDFU {
		return device.ReadDFU(ctx, dfu.New(d, dfu.Options{TransferSize: p.TransferSize}), p, nil, slots.ReadOptions{})
	}
	return device.ReadControl(ctx, simCtrl(d), p, m)
}

// simCtrl is a control client that does not wait real time between polls: the virtual
// device answers at once.
func simCtrl(d *sim.Device) *ctrl.Client {
	return ctrl.New(d, ctrl.Options{RequestTimeout: 5 * time.Second, OutNeedsData: d.Platform().ControlOutNeedsData,
		Sleep: func(ctx context.Context, _ time.Duration) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Millisecond):
				return nil
			}
		}})
}

// DemoDevices builds the three virtual devices the demo shows, one per story a person
// meets in the field: a Photon in safe mode because its app needs a newer Device OS, a
// Boron running an old Device OS (1.5.2) that wants an upgrade, and an Argon fresh from
// the factory programmer with no system part, stuck in DFU mode.
func DemoDevices() ([]*sim.Device, error) { return DemoDevicesAt(0) }

// DemoDevicesAt builds the demo devices at a time scale (sim.Options.Scale): 0 is
// instant, 1 a real device's pace.
func DemoDevicesAt(scale float64) ([]*sim.Device, error) {
	var out []*sim.Device
	fail := func(err error) ([]*sim.Device, error) {
		for _, d := range out {
			_ = d.Close()
		}
		return nil, err
	}
	photon, _ := platform.ByName("photon")
	boron, _ := platform.ByName("boron")
	argon, _ := platform.ByName("argon")

	// Photon: Device OS 1.5.2 with an application built for 2.3.1.
	set, err := sim.SyntheticSet(photon, "1.5.2")
	if err != nil {
		return fail(err)
	}
	need, _ := module.SystemModuleVersion("2.3.1")
	app, err := sim.SyntheticUserPart(photon, need, module.Dependency{Function: platform.FuncSystem, Index: 2, Version: need})
	if err != nil {
		return fail(err)
	}
	d, err := sim.New(sim.Options{Platform: photon, Modules: append(set, app), NoSerial: true, Scale: scale})
	if err != nil {
		return fail(err)
	}
	out = append(out, d)

	// Boron: a healthy 1.5.2 with its application.
	set, err = sim.SyntheticSet(boron, "1.5.2")
	if err != nil {
		return fail(err)
	}
	have, _ := module.SystemModuleVersion("1.5.2")
	app, err = sim.SyntheticUserPart(boron, have, module.Dependency{Function: platform.FuncSystem, Index: 1, Version: have})
	if err != nil {
		return fail(err)
	}
	d, err = sim.New(sim.Options{Platform: boron, Modules: append(set, app), NoSerial: true, Scale: scale})
	if err != nil {
		return fail(err)
	}
	out = append(out, d)

	// Argon: bootloader only.
	d, err = sim.New(sim.Options{Platform: argon, Blank: true, NoSerial: true, Scale: scale})
	if err != nil {
		return fail(err)
	}
	out = append(out, d)
	return out, nil
}

// syntheticRelease is Device OS version for a platform as the simulator builds it: what a
// virtual device is flashed with, since the demo must work without the firmware cache.
func syntheticRelease(p *platform.Platform, version string) ([]*module.Module, error) {
	bins, err := sim.SyntheticSet(p, version)
	if err != nil {
		return nil, err
	}
	out := make([]*module.Module, 0, len(bins))
	for _, b := range bins {
		m, err := module.Parse(b)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}
