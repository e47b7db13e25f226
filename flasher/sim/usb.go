package sim

import (
	"sync/atomic"

	"encoding/binary"
	"errors"
	"fmt"

	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/sim/ctrldev"
	"github.com/particle-flasher/particle-flasher/flasher/sim/dfudev"
	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
)

// USB descriptor details Particle devices use.
const (
	manufacturer = "Particle"
	// bcdDevice: the Gen3 bootloader reports 0x0251 (usbd_device.cpp); the same value is
	// used for Device OS and the Gen2 bootloader, which nothing tells apart by it.
	bcdDevice = 0x0251

	classCDC        = 0x02
	subclassACM     = 0x02
	protocolAT      = 0x01
	classCDCData    = 0x0A
	classVendor     = 0xFF
	classAppSpecDFU = 0xFE

	cdcSetLineCoding       = 0x20
	cdcGetLineCoding       = 0x21
	cdcSetControlLineState = 0x22

	stdSetInterface = 0x0B
)

// Magic line codings (build/module-defaults.mk), also honoured when a host sets them with
// a USB SET_LINE_CODING rather than through the pty.
const (
	dfuBaud    = 14400
	listenBaud = 28800
)

// usbDoor is the device as usbsim sees it. It is a separate value from Device because
// usbsim.Device's Control takes a Setup, while the in-process door has gousb's signature.
type usbDoor struct {
	d *Device
	// Transfers counted from libusb programs, so tests can compare hosts' efficiency.
	all, class atomic.Int64
}

// ControlTransfers counts the control transfers libusb programs have sent through the
// USB door since the device was created: all of them, and the class requests alone (in
// DFU mode, the DFU work itself, without enumeration's standard requests).
func (d *Device) ControlTransfers() (all, class int64) {
	return d.door.all.Load(), d.door.class.Load()
}

// USB returns the device's USB door, for adding to a usbsim.Server by hand (a Fleet and
// Attach do it for you). The same value stands for the device across re-enumerations.
func (d *Device) USB() usbsim.Device { return d.door }

// Info describes the device in its current mode: the DFU bootloader's descriptors in DFU
// mode (PID 0xD0xx), Device OS's CDC + vendor interfaces otherwise (PID 0xC0xx).
func (u *usbDoor) Info() usbsim.DeviceInfo {
	u.d.mu.Lock()
	defer u.d.mu.Unlock()
	if u.d.desc == nil {
		u.d.desc = u.d.cdcDescriptors()
	}
	return u.d.desc.Info()
}

// Control forwards a transfer from a libusb program.
func (u *usbDoor) Control(s usbsim.Setup, data []byte) (int, error) {
	u.all.Add(1)
	if s.RequestType&0x60 == 0x20 {
		u.class.Add(1)
	}
	return u.d.Control(s.RequestType, s.Request, s.Value, s.Index, data)
}

// Open lets every host open the device, unless RefuseOpen simulates missing permissions.
func (u *usbDoor) Open() error {
	u.d.mu.Lock()
	defer u.d.mu.Unlock()
	if u.d.faults.refuseOpen {
		return usbsim.ErrAccess
	}
	return nil
}

// Reset is a USB bus reset (libusb_reset_device): the MCU keeps running, the
// configuration and alt settings return to their defaults.
func (u *usbDoor) Reset() error {
	u.d.mu.Lock()
	defer u.d.mu.Unlock()
	if !u.d.onBus {
		return usbsim.ErrNoDevice
	}
	if u.d.desc != nil {
		u.d.desc.ResetState()
	}
	if u.d.dfu != nil {
		_ = u.d.dfu.SetAlt(0)
	}
	return nil
}

func (d *Device) dfuDescriptors(dev *dfudev.Device) *usbsim.Descriptors {
	alts := make([]usbsim.AltSetting, 0, len(d.p.Alts))
	for _, a := range d.p.Alts {
		alts = append(alts, usbsim.AltSetting{Alt: a.Alt, Name: a.Layout})
	}
	return &usbsim.Descriptors{
		VID: d.p.DFUVID, PID: d.p.DFUPID, BCDDevice: bcdDevice,
		Manufacturer: manufacturer, Product: d.p.DisplayName + " DFU Mode", Serial: d.id,
		Interfaces: []usbsim.Interface{{
			Number: 0, Class: classAppSpecDFU, SubClass: 1, Protocol: 2,
			Alts: alts, Extra: dev.FunctionalDescriptor(),
		}},
	}
}

// cdcDescriptors: Device OS's composite device, a CDC ACM serial port (interfaces 0 and
// 1) and the vendor interface the control requests address.
func (d *Device) cdcDescriptors() *usbsim.Descriptors {
	cdcFunctional := []byte{
		5, 0x24, 0x00, 0x10, 0x01, // header, CDC 1.10
		5, 0x24, 0x01, 0x00, 0x01, // call management
		4, 0x24, 0x02, 0x02, // ACM: line coding
		5, 0x24, 0x06, 0x00, 0x01, // union: master 0, slave 1
	}
	return &usbsim.Descriptors{
		VID: d.p.VID, PID: d.p.PID, BCDDevice: bcdDevice,
		Manufacturer: manufacturer, Product: d.p.DisplayName, Serial: d.id,
		Interfaces: []usbsim.Interface{
			{Number: 0, Class: classCDC, SubClass: subclassACM, Protocol: protocolAT,
				Alts:      []usbsim.AltSetting{{Name: d.p.DisplayName + " Serial"}},
				Extra:     cdcFunctional,
				Endpoints: []usbsim.Endpoint{{Address: 0x82, Attributes: 0x03, MaxPacketSize: 8, Interval: 0xFF}}},
			{Number: 1, Class: classCDCData,
				Endpoints: []usbsim.Endpoint{{Address: 0x81, Attributes: 0x02, MaxPacketSize: 64}, {Address: 0x01, Attributes: 0x02, MaxPacketSize: 64}}},
			{Number: 2, Class: classVendor, SubClass: classVendor, Protocol: classVendor,
				Alts: []usbsim.AltSetting{{Name: "Particle Control"}}},
		},
	}
}

// Control answers one control transfer with gousb's (*Device).Control contract, so
// flasher/dfu and flasher/ctrl clients talk to the device in-process exactly as they talk
// to hardware: data is the payload (OUT) or the buffer to fill (IN). Errors wrap ErrStall
// or ErrNoDevice.
func (d *Device) Control(rType, request uint8, val, idx uint16, data []byte) (int, error) {
	return d.control(0, rType, request, val, idx, data)
}

// Handle is an open connection to one enumeration of the device, as a libusb device
// handle is: once the device resets or leaves the bus every call fails with ErrNoDevice,
// and the host has to find and open it again. (Device.Control instead always reaches the
// device as it is now, which is handier for tests that do not care.)
type Handle struct {
	d   *Device
	gen uint64
}

// Open opens the device as it is enumerated now; it fails with ErrNoDevice when the
// device is not on the bus.
func (d *Device) Open() (*Handle, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.onBus {
		return nil, goneErr(errOffBus)
	}
	return &Handle{d: d, gen: d.gen}, nil
}

// Control is Device.Control for this enumeration only.
func (h *Handle) Control(rType, request uint8, val, idx uint16, data []byte) (int, error) {
	return h.d.control(h.gen, rType, request, val, idx, data)
}

func (d *Device) control(gen uint64, rType, request uint8, val, idx uint16, data []byte) (int, error) {
	d.mu.Lock()
	if !d.onBus || (gen != 0 && gen != d.gen) {
		d.mu.Unlock()
		return 0, goneErr(errOffBus)
	}
	d.xfers++
	if n := d.faults.unplugAt; n > 0 && d.xfers >= n {
		d.faults.unplugAt = 0
		d.onBus = false
		d.mu.Unlock()
		go d.powerOff(fmt.Sprintf("unplugged at control transfer %d (fault)", n))
		return 0, goneErr(errors.New("unplugged (fault)"))
	}
	d.checkWatchdogLocked()
	if !d.onBus {
		d.mu.Unlock()
		return 0, goneErr(errWatchdog)
	}
	desc, dfuDev, ch, mode := d.desc, d.dfu, d.ch, d.mode
	fired := d.faults.wdFired
	d.mu.Unlock()
	n, err := d.transfer(desc, dfuDev, ch, mode, rType, request, val, idx, data)
	// A watchdog that fires while the transfer is answered stops the MCU before the answer
	// leaves it (and the reset may already have reinitialised what gave the answer).
	d.mu.Lock()
	fired = d.faults.wdFired - fired
	d.mu.Unlock()
	if fired > 0 {
		return 0, goneErr(errWatchdog)
	}
	return n, err
}

// errWatchdog is a transfer cut short by the external watchdog's reset.
var errWatchdog = errors.New("reset by the watchdog")

// transfer answers one control transfer in the device's current mode.
func (d *Device) transfer(desc *usbsim.Descriptors, dfuDev *dfudev.Device, ch *ctrldev.Channel, mode Mode, rType, request uint8, val, idx uint16, data []byte) (int, error) {

	setup := usbsim.Setup{RequestType: rType, Request: request, Value: val, Index: idx, Length: uint16(len(data))}
	if rType&0x60 == 0 || (mode.cdc() && rType&0x60 == 0x20) {
		d.meter.Charge(dfudev.USBRoundTrip) // dfudev and ctrldev charge their own transfers
	}
	if rType&0x60 == 0 { // standard request
		if mode == ModeDFU && rType&0x1F == 0x01 && request == stdSetInterface && dfuDev != nil {
			if err := dfuDev.SetAlt(uint8(val)); err != nil {
				return 0, door(err)
			}
		}
		n, _, err := desc.HandleStandard(setup, data)
		return n, door(err)
	}
	switch {
	case mode == ModeDFU && dfuDev != nil:
		n, err := dfuDev.Control(rType, request, val, idx, data)
		return n, door(err)
	case mode.cdc() && rType&0x60 == 0x20:
		return d.cdcClass(rType, request, data)
	case mode.cdc() && ch != nil:
		n, err := ch.Control(rType, request, val, idx, data)
		return n, door(err)
	}
	return 0, stallErr(fmt.Errorf("request %s not handled in %s mode", setup, mode))
}

// door translates the device sides' errors into the door's.
func door(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrStall), errors.Is(err, ErrNoDevice):
		return err
	case errors.Is(err, dfudev.ErrNoDevice):
		return goneErr(err)
	case errors.Is(err, dfu.ErrStall), errors.Is(err, ctrldev.ErrStall), errors.Is(err, usbsim.ErrStall):
		return stallErr(err)
	}
	return err
}

// cdcClass answers the CDC ACM class requests. A line coding of 14400 or 28800 baud is
// the magic DFU / listening trigger, as on the real USB stack.
func (d *Device) cdcClass(rType, request uint8, data []byte) (int, error) {
	d.mu.Lock()
	gen := d.gen
	switch request {
	case cdcGetLineCoding:
		n := copy(data, d.lineCoding[:])
		d.mu.Unlock()
		return n, nil
	case cdcSetControlLineState:
		d.mu.Unlock()
		return 0, nil
	case cdcSetLineCoding:
		if rType&0x80 != 0 || len(data) < 7 {
			d.mu.Unlock()
			return 0, stallErr(errors.New("SET_LINE_CODING needs 7 bytes"))
		}
		copy(d.lineCoding[:], data)
		baud := binary.LittleEndian.Uint32(data)
		sys := d.sysVersionLocked()
		listening := d.mode == ModeListening
		d.mu.Unlock()
		switch {
		case baud == dfuBaud:
			d.resetAsync(gen, bootReq{dfu: true, reason: "14400 baud"}, 0)
		case baud == listenBaud && sys < 6000 && !listening:
			d.setListening(gen, true)
		}
		return len(data), nil
	}
	d.mu.Unlock()
	return 0, stallErr(fmt.Errorf("CDC class request %#02x not supported", request))
}
