package sim

import (
	"fmt"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/sim/dfudev"
	"github.com/particle-flasher/particle-flasher/flasher/sim/serialdev"
)

// faults are the failures a test arms on a device. Those aimed at a door that comes and
// goes with the mode (the DFU bootloader, the serial port) are kept here and applied when
// the door next exists.
type faults struct {
	unplugAt     int // the control transfer (in the device's running count) that unplugs it
	stallNext    int
	injectStatus int // -1: none
	slowEnum     time.Duration
	failEnum     bool
	garbage      []byte
	dropEvery    int
	watchdog     time.Duration
	wdLast       time.Duration
	wdFired      int // how many times the watchdog has fired
	refuseOpen   bool
}

func (f *faults) applyDFU(dev *dfudev.Device) {
	if f.stallNext > 0 {
		dev.StallNext(f.stallNext)
		f.stallNext = 0
	}
	if f.injectStatus >= 0 {
		dev.InjectStatus(byte(f.injectStatus))
		f.injectStatus = -1
	}
}

func (f *faults) applySerial(p *serialdev.Port) {
	if len(f.garbage) > 0 {
		p.InjectGarbage(f.garbage)
		f.garbage = nil
	}
	if f.dropEvery > 0 {
		p.DropEvery(f.dropEvery)
	}
}

// UnplugAtTransfer unplugs the device (power and all) when it receives its n-th control
// transfer from now; that transfer fails with ErrNoDevice. Plug brings it back.
func (d *Device) UnplugAtTransfer(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n <= 0 {
		d.faults.unplugAt = 0
		return
	}
	d.faults.unplugAt = d.xfers + n
}

// StallNext makes the DFU bootloader STALL the next n DfuSe commands (now, or in the next
// DFU session), as a Boron did in the field during ERASE.
func (d *Device) StallNext(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dfu != nil {
		d.dfu.StallNext(n)
		return
	}
	d.faults.stallNext = n
}

// InjectDFUStatus makes the next DfuSe command or download end in dfuERROR with this
// bStatus (e.g. dfu.StatusErrWrite), now or in the next DFU session.
func (d *Device) InjectDFUStatus(status byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dfu != nil {
		d.dfu.InjectStatus(status)
		return
	}
	d.faults.injectStatus = int(status)
}

// PowerLossAfter cuts the power after n more bytes of erase or program progress in the
// flash behind DFU alt setting alt: the sector is left half erased or the data half
// written, the device drops off the bus, and PowerOn boots it from what the flash holds.
func (d *Device) PowerLossAfter(alt uint8, n int) error {
	r := d.mems[alt]
	if r == nil {
		return fmt.Errorf("sim: %s has no alt setting %d", d.p.Name, alt)
	}
	r.PowerLossAfter(n)
	return nil
}

// SlowReenumeration adds extra device time to every reset before the device is back on
// USB (0 removes it).
func (d *Device) SlowReenumeration(extra time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.faults.slowEnum = max(extra, 0)
}

// RefuseOpen makes every libusb open of the device fail with LIBUSB_ERROR_ACCESS, as
// Linux does for a user without the udev rule.
func (d *Device) RefuseOpen(refuse bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.faults.refuseOpen = refuse
}

// FailReenumeration makes the device boot but never come back on USB after its resets
// (the host sees it vanish), until turned off again and the device next resets.
func (d *Device) FailReenumeration(fail bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.faults.failEnum = fail
}

// SerialGarbage makes the serial port send b before its next output (line noise, a stray
// debug print), now or on the next port.
func (d *Device) SerialGarbage(b []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.port != nil {
		d.port.InjectGarbage(b)
		return
	}
	d.faults.garbage = append(d.faults.garbage, b...)
}

// SerialDropEvery drops every n-th byte the device sends on serial (0 stops), on this and
// later ports.
func (d *Device) SerialDropEvery(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.faults.dropEvery = n
	if d.port != nil {
		d.port.DropEvery(n)
	}
}

// SetWatchdog arms an external hardware watchdog that resets the device every period of
// device time, whatever it is doing: the field units whose 15 s watchdog no OTA update
// could outrun. 0 disarms it.
func (d *Device) SetWatchdog(period time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.faults.watchdog = max(period, 0)
	d.faults.wdLast = d.clock()
	if period > 0 && d.wdStop == nil && !d.closed {
		d.wdStop = make(chan struct{})
		go d.watchdogLoop(d.wdStop)
	}
}

// clock is the device's time since it was created: the charged device time at scale 0
// (only work advances it), else the real time elapsed divided by the scale.
func (d *Device) clock() time.Duration {
	c := d.meter.Charged()
	if s := d.meter.Scale(); s > 0 {
		c = max(c, time.Duration(float64(time.Since(d.created))/s))
	}
	return c
}

// checkWatchdogLocked fires the watchdog when its period has passed.
func (d *Device) checkWatchdogLocked() {
	w := d.faults.watchdog
	if w <= 0 || !d.powered {
		return
	}
	if now := d.clock(); now-d.faults.wdLast >= w {
		d.faults.wdLast = now
		d.faults.wdFired++
		gen := d.gen
		// The MCU stops at once; the reset itself takes a moment.
		d.onBus, d.ready = false, false
		d.changedLocked()
		go d.reset(gen, bootReq{reason: "watchdog"})
	}
}

func (d *Device) watchdogLoop(stop chan struct{}) {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		d.mu.Lock()
		if d.ready {
			d.checkWatchdogLocked()
		}
		d.mu.Unlock()
	}
}
