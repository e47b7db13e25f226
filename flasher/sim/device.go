package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/led"
	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim/ctrldev"
	"github.com/particle-flasher/particle-flasher/flasher/sim/dfudev"
	"github.com/particle-flasher/particle-flasher/flasher/sim/flash"
	"github.com/particle-flasher/particle-flasher/flasher/sim/serialdev"
	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
)

// bootReq is what the backup registers and system flags tell the next boot: the
// requests a reset carries (System.dfu(), enterSafeMode, the buttons, `L`).
type bootReq struct {
	dfu, safe, listen bool
	reason            string // why the device resets, for Status.LastReset
}

// Device is one virtual Particle device. All its methods are safe for concurrent use.
type Device struct {
	p       *platform.Platform
	opts    Options
	id      string
	meter   *flash.Meter
	fam     bootFamily
	created time.Time

	mems                    map[uint8]*flash.Region // by DFU alt number
	internal, dct, external *flash.Region

	door *usbDoor

	// resetMu serialises the transitions that take the device off and onto the bus
	// (resets, power), so doors are never attached twice or left behind.
	resetMu sync.Mutex

	mu        sync.Mutex
	powered   bool
	mode      Mode
	safe      bool
	ready     bool // boot finished and doors attached
	applying  bool // the bootloader is copying an update into place
	onBus     bool
	gen       uint64 // bumped by every reset; stale callbacks compare against it
	boots     int
	resets    int
	lastReset string
	reason    string
	sys       uint16 // system module version running (0 in DFU / off)
	// assets are the asset files in the asset file system, by name.
	assets map[string]storedAsset
	// secureBoot: the bootloader this boot started from is a protected build.
	secureBoot bool
	// override is Device Protection's Service Mode (security_mode_override_value in the
	// system flags): protection lifted until a reset request ends it.
	override   bool
	pending    *pendingUpdate
	ncp        *ncpState
	desc       *usbsim.Descriptors
	dfu        *dfudev.Device
	ch         *ctrldev.Channel
	fw         *ctrldev.FirmwareUpdate
	fwTarget   *pendingUpdate // where the control-request update is being written
	serialUpd  *pendingUpdate // where the YMODEM upload is being written
	port       *serialdev.Port
	srv        *usbsim.Server
	lineCoding [7]byte
	xfers      int
	faults     faults
	changed    chan struct{}
	closed     bool
	wdStop     chan struct{}
	saver      *imageSaver // nil unless Options.ImagePath
}

// New builds a device, installs its modules and powers it on: it boots (instantly; the
// power-on enumeration is not charged) into the mode its flash and Options.Mode give.
func New(o Options) (*Device, error) {
	p := o.Platform
	if p == nil {
		return nil, errors.New("sim: Options.Platform is required")
	}
	id, err := deviceID(o.DeviceID)
	if err != nil {
		return nil, err
	}
	d := &Device{
		p: p, opts: o, id: id, meter: flash.NewMeter(o.Scale), fam: familyOf(p), created: time.Now(),
		mems: map[uint8]*flash.Region{}, changed: make(chan struct{}), faults: faults{injectStatus: -1},
	}
	d.lineCoding = [7]byte{0x80, 0x25, 0, 0, 0, 0, 8} // 9600 8N1
	timing := flash.TimingFor(p.MCU)
	for _, a := range p.Alts {
		l, err := memlayout.Parse(a.Layout)
		if err != nil {
			return nil, fmt.Errorf("sim: %s alt %d layout: %w", p.Name, a.Alt, err)
		}
		t := timing
		if a.Memory == platform.MemExternal {
			t = flash.TimingExternalSPI
		}
		r := flash.NewRegion(a.Name, l, t, d.meter)
		d.mems[a.Alt] = r
		switch a.Memory {
		case platform.MemInternal:
			d.internal = r
		case platform.MemDCT:
			d.dct = r
		case platform.MemExternal:
			d.external = r
		}
	}
	if d.internal == nil {
		return nil, fmt.Errorf("sim: platform %s has no internal flash alt setting", p.Name)
	}
	if o.Image != nil {
		if len(o.Modules) > 0 || o.Blank {
			return nil, errors.New("sim: give an image or modules, not both")
		}
		if err := d.loadImage(o.Image); err != nil {
			return nil, err
		}
	}
	haveBoot := o.Image != nil
	for i, b := range o.Modules {
		m, err := module.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("sim: module %d: %w", i, err)
		}
		if o.Blank && m.Function != platform.FuncBootloader {
			continue
		}
		if err := d.install(m, b); err != nil {
			return nil, fmt.Errorf("sim: module %d (%s): %w", i, m.SlotName(), err)
		}
		if m.Function == platform.FuncBootloader && m.Index == 0 {
			haveBoot = true
		}
	}
	if o.Blank && !haveBoot {
		b, err := SyntheticBootloader(p)
		if err != nil {
			return nil, err
		}
		m, _ := module.Parse(b)
		if err := d.install(m, b); err != nil {
			return nil, fmt.Errorf("sim: synthetic bootloader: %w", err)
		}
	} else if !haveBoot {
		slog.Warn("sim: no bootloader among the modules: the device will not run at all", "platform", p.Name)
	}
	if !o.Blank && !o.SetupNotDone && d.dct != nil && o.Image == nil {
		// An owner set it up: DCT setup_done = 0x01 (config.cpp setDeviceSetupDone). Only
		// Gen3 Device OS before 4.0 reads it; elsewhere the byte is just there.
		if _, err := d.writeDCT(dctSetupDoneOffset, []byte{0x01}); err != nil {
			return nil, err
		}
	}
	d.override = o.ServiceMode
	if p.HasNCP && d.ncp == nil {
		v := o.NCPVersion
		if v == 0 {
			v = DefaultNCPVersion
		}
		d.ncp = &ncpState{version: v}
	}
	if o.ImagePath != "" {
		if err := d.WriteImage(o.ImagePath); err != nil {
			return nil, err
		}
		d.saver = startImageSaver(d, o.ImagePath)
	}
	d.door = &usbDoor{d: d}
	d.mode, d.ready, d.reason = ModeOff, true, "not powered"
	if o.Mode != ModeOff {
		d.resetMu.Lock()
		d.mu.Lock()
		d.powered = true
		d.mu.Unlock()
		d.bootAndAttach(bootReq{dfu: o.Mode == ModeDFU, safe: o.Mode == ModeSafe, listen: o.Mode == ModeListening, reason: "power on"}, false)
		d.resetMu.Unlock()
	}
	return d, nil
}

func deviceID(s string) (string, error) {
	if s == "" {
		b := make([]byte, 12)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("sim: device ID: %w", err)
		}
		return hex.EncodeToString(b), nil
	}
	s = strings.ToLower(strings.TrimSpace(s))
	if b, err := hex.DecodeString(s); err != nil || len(b) != 12 {
		return "", fmt.Errorf("sim: device ID %q is not 24 hex digits", s)
	}
	return s, nil
}

// install writes a module where an installer puts it: its start address in internal
// flash (the SoftDevice without its DROP_MODULE_INFO prefix), or into the NCP.
func (d *Device) install(m *module.Module, b []byte) error {
	data := b[:len(m.Data)]
	if m.Compressed() {
		out, err := m.Decompress()
		if err != nil {
			return fmt.Errorf("decompress: %w", err)
		}
		data = out
		if mm, err := module.Parse(out); err == nil {
			m = mm
		}
	}
	sl, ok := d.p.SlotFor(m.Function, m.Index, m.Version)
	if !ok {
		return fmt.Errorf("platform %s has no slot for %s #%d", d.p.Name, m.Function, m.Index)
	}
	if m.PlatformID != d.p.ID {
		slog.Warn("sim: installing a module built for another platform", "platform", m.PlatformID, "device", d.p.Name)
	}
	switch sl.Storage {
	case platform.StorageNCP:
		d.ncp = &ncpState{version: m.Version, image: append([]byte(nil), data...)}
		return nil
	case platform.StorageExternal:
		if d.external == nil {
			return errors.New("no external flash")
		}
		return d.external.Load(m.Start, data)
	}
	if m.Flags.Has(module.FlagDropModuleInfo) {
		data = data[m.HeaderOffset+module.PrefixSize:]
	}
	if err := d.internal.Load(m.Start, data); err != nil {
		return fmt.Errorf("placing at 0x%08x: %w", m.Start, err)
	}
	return nil
}

// ID is the 24-hex-digit device ID (lower case): the USB serial number in every mode.
func (d *Device) ID() string { return d.id }

// Platform is the device's platform.
func (d *Device) Platform() *platform.Platform { return d.p }

// Meter is the device's time account: Charged() is the device-bound time spent so far.
func (d *Device) Meter() *flash.Meter { return d.meter }

// Memory returns the flash behind DFU alt setting alt (nil if there is none), for tests
// that inspect or damage flash directly (flash.Region.Load is the backdoor).
func (d *Device) Memory(alt uint8) *flash.Region { return d.mems[alt] }

// InternalFlash is a copy of the whole internal flash from the alt-0 base address, as a
// dump would read it with a debugger.
func (d *Device) InternalFlash() []byte {
	l := d.internal.Layout()
	return d.internal.Snapshot(l.Start(), l.End()-l.Start())
}

// OTAFlag is the DCT byte that makes Device OS apply the OTA region at boot.
func (d *Device) OTAFlag() byte {
	if d.dct == nil {
		return 0
	}
	b := d.dct.Snapshot(d.p.OTAFlagOffset, 1)
	if b == nil {
		return 0
	}
	return b[0]
}

// Status is a snapshot of what a person (or a test) can observe of the device.
type Status struct {
	Mode Mode
	// Safe is set in safe mode, including safe listening mode.
	Safe bool
	LED  led.State
	// Ready is false while the device resets; OnBus is whether it is on USB now (false
	// when re-enumeration failed or it was unplugged).
	Ready, OnBus bool
	// Boots counts boots (a reset that applies an update boots twice); Resets counts
	// resets after power-on.
	Boots, Resets int
	// LastReset is why the device last reset ("dfu request", "watchdog", ...).
	LastReset string
	// Reason says why the device is in this mode ("system-part1 fails its CRC", ...).
	Reason string
	// SystemVersion is the Device OS version it reports ("" in DFU mode or when off).
	SystemVersion string
	// Serial is the pty slave path of its serial port ("" when it has none).
	Serial string
	// Updating is set while a firmware update over control requests is in progress.
	Updating bool
	// Applying is set while the bootloader or Device OS copies an update into place
	// during a reset (solid magenta).
	Applying bool
}

// Status returns the device's state now.
func (d *Device) Status() Status {
	d.mu.Lock()
	st := Status{Mode: d.mode, Safe: d.safe, Ready: d.ready, OnBus: d.onBus, Boots: d.boots, Resets: d.resets,
		LastReset: d.lastReset, Reason: d.reason, Applying: d.applying}
	if d.mode.cdc() {
		st.SystemVersion = d.systemVersionLocked()
	}
	if d.port != nil {
		st.Serial = d.port.SlavePath()
	}
	fw := d.fw
	d.mu.Unlock()
	if fw != nil {
		_, _, st.Updating = fw.Progress()
	}
	st.LED = ledFor(st)
	return st
}

func ledFor(st Status) led.State {
	switch {
	case st.Applying:
		return led.ApplyingUpdate
	case st.Mode == ModeOff:
		return led.Off
	case st.Mode == ModeDFU:
		return led.DFU
	case st.Updating:
		return led.Updating
	case st.Mode == ModeListening:
		return led.Listening
	case st.Safe:
		return led.SafeMode
	}
	return led.Connected
}

// Mode is the current mode.
func (d *Device) Mode() Mode { return d.Status().Mode }

// LED is what the RGB LED is doing now.
func (d *Device) LED() led.State { return d.Status().LED }

// SerialPath is the pty slave to open as the device's serial port ("" when it has none:
// DFU mode, off, or Options.NoSerial).
func (d *Device) SerialPath() string { return d.Status().Serial }

// SystemVersion is the Device OS version the device reports: Options.DeviceOS, else the
// release of the installed system part's module version.
func (d *Device) SystemVersion() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.systemVersionLocked()
}

func (d *Device) systemVersionLocked() string {
	if d.opts.DeviceOS != "" {
		return d.opts.DeviceOS
	}
	if d.sys == 0 {
		return ""
	}
	if v, ok := module.DeviceOSVersion(platform.FuncSystem, d.sys); ok {
		return v
	}
	return fmt.Sprintf("0.0.0-module.%d", d.sys)
}

// sysVersionLocked is the system module version behaviour depends on (YMODEM, the module
// info reply form): the override's, if Options.DeviceOS names a known release.
func (d *Device) sysVersionLocked() uint16 {
	if d.opts.DeviceOS != "" {
		if v, ok := module.SystemModuleVersion(d.opts.DeviceOS); ok {
			return v
		}
	}
	return d.sys
}

// Modules lists the module table as Device OS would report it for what the flash holds
// now (whatever mode the device is in).
func (d *Device) Modules() []Module {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.scanLocked().table()
}

// ModuleJSON is the listening-mode `s` reply (without the trailing CR LF).
func (d *Device) ModuleJSON() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return moduleJSON(d.p.ID, d.scanLocked().table())
}

// changedLocked wakes everyone waiting for a state change.
func (d *Device) changedLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// WaitFor blocks until pred accepts the device's status, the context ends (its error is
// returned, with the last status), or the device is closed.
func (d *Device) WaitFor(ctx context.Context, pred func(Status) bool) (Status, error) {
	for {
		d.mu.Lock()
		ch := d.changed
		closed := d.closed
		d.mu.Unlock()
		st := d.Status()
		if pred(st) {
			return st, nil
		}
		if closed {
			return st, errors.New("sim: device closed")
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return st, fmt.Errorf("sim: waiting for the device (now %s, %q): %w", st.Mode, st.Reason, context.Cause(ctx))
		}
	}
}

// WaitMode waits until the device has finished booting into mode m.
func (d *Device) WaitMode(ctx context.Context, m Mode) (Status, error) {
	return d.WaitFor(ctx, func(st Status) bool { return st.Ready && st.Mode == m })
}

// WaitReady waits until a reset in progress has finished (or the device is off).
func (d *Device) WaitReady(ctx context.Context) (Status, error) {
	return d.WaitFor(ctx, func(st Status) bool { return st.Ready })
}

// Attach plugs the device's USB door into srv (a Fleet does this); while the device is
// on the bus it is enumerated there, and resets replug it.
func (d *Device) Attach(srv *usbsim.Server) {
	d.resetMu.Lock()
	defer d.resetMu.Unlock()
	d.mu.Lock()
	old := d.srv
	d.srv = srv
	on := d.onBus
	d.mu.Unlock()
	if old != nil && old != srv {
		old.Remove(d.door)
	}
	if on && srv != nil {
		srv.Add(d.door)
	}
}

// Close powers the device off for good: doors closed, watchdog stopped.
func (d *Device) Close() error {
	d.powerOff("closed")
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		if d.wdStop != nil {
			close(d.wdStop)
			d.wdStop = nil
		}
		d.changedLocked()
	}
	srv := d.srv
	d.srv = nil
	d.mu.Unlock()
	if srv != nil {
		srv.Remove(d.door)
	}
	if d.saver != nil {
		return d.saver.close()
	}
	return nil
}

// Reset taps the RESET button.
func (d *Device) Reset() { d.reset(0, bootReq{reason: "reset button"}) }

// ButtonReset holds MODE while tapping RESET and releases it after hold: at least 3 s
// gives DFU mode, 1 to 3 s safe mode (bootloader/src/main.c), less a plain reset. Boards
// whose MODE is only a carrier-board signal cannot do this.
func (d *Device) ButtonReset(hold time.Duration) error {
	if !d.p.HasModeButton() {
		return fmt.Errorf("sim: %s has no MODE button; use control requests", d.p.DisplayName)
	}
	req := bootReq{reason: "buttons"}
	switch {
	case hold >= 3*time.Second:
		req.dfu = true
	case hold >= time.Second:
		req.safe = true
	}
	d.meter.Charge(min(hold, ButtonResetTime))
	d.reset(0, req)
	return nil
}

// HoldMode holds MODE for hold while Device OS runs: 3 s or more enters listening mode
// (system/src/main.cpp HAL_Core_Mode_Button_Pressed(3000)).
func (d *Device) HoldMode(hold time.Duration) error {
	if !d.p.HasModeButton() {
		return fmt.Errorf("sim: %s has no MODE button; use control requests", d.p.DisplayName)
	}
	d.meter.Charge(hold)
	if hold >= 3*time.Second {
		d.setListening(0, true)
	}
	return nil
}

// PowerOff cuts the power: the device leaves USB and its LED goes dark.
func (d *Device) PowerOff() { d.powerOff("power off") }

// Unplug pulls the USB cable (which powers a bench device off).
func (d *Device) Unplug() { d.powerOff("unplugged") }

// PowerOn powers the device (back) on: it boots from whatever its flash holds.
func (d *Device) PowerOn() {
	d.resetMu.Lock()
	defer d.resetMu.Unlock()
	d.mu.Lock()
	if d.powered || d.closed {
		d.mu.Unlock()
		return
	}
	d.powered = true
	d.gen++
	d.mu.Unlock()
	d.bootAndAttach(bootReq{reason: "power on"}, true)
}

// Plug puts the USB cable back: PowerOn.
func (d *Device) Plug() { d.PowerOn() }

func (d *Device) powerOff(why string) {
	d.resetMu.Lock()
	defer d.resetMu.Unlock()
	d.mu.Lock()
	if !d.powered {
		d.mu.Unlock()
		return
	}
	d.powered = false
	d.gen++
	srv, port := d.detachLocked()
	d.mode, d.safe, d.sys, d.ready = ModeOff, false, 0, true
	d.lastReset, d.reason = why, why
	d.changedLocked()
	d.mu.Unlock()
	d.release(srv, port)
	slog.Debug("sim: device off", "device", d.id, "why", why)
}

// detachLocked takes the device off the bus; the caller releases what it returns
// without d.mu held.
func (d *Device) detachLocked() (*usbsim.Server, *serialdev.Port) {
	d.onBus, d.ready = false, false
	port := d.port
	d.port = nil
	if d.dfu != nil {
		d.dfu.Unplug()
		d.dfu = nil
	}
	if d.ch != nil {
		d.ch.Reset()
		d.ch = nil
	}
	d.fw, d.fwTarget, d.serialUpd = nil, nil, nil
	return d.srv, port
}

func (d *Device) release(srv *usbsim.Server, port *serialdev.Port) {
	if srv != nil {
		srv.Remove(d.door)
	}
	if port != nil {
		_ = port.Close()
	}
}

// reset restarts the device: it leaves the bus, re-enumerates after ReenumerationTime
// (plus any slow-enumeration fault) and boots with req. gen, when non-zero, is the boot
// the request came from: a request that outlived its boot (a reset already happened) is
// dropped, as the real device would have forgotten it.
func (d *Device) reset(gen uint64, req bootReq) {
	d.resetMu.Lock()
	defer d.resetMu.Unlock()
	d.mu.Lock()
	if !d.powered || (gen != 0 && gen != d.gen) {
		d.mu.Unlock()
		return
	}
	d.gen++
	d.resets++
	d.lastReset = req.reason
	srv, port := d.detachLocked()
	d.mode, d.safe, d.sys = ModeOff, false, 0
	d.reason = "resetting"
	slow := d.faults.slowEnum
	d.changedLocked()
	d.mu.Unlock()
	d.release(srv, port)
	slog.Debug("sim: reset", "device", d.id, "why", req.reason)
	d.meter.Charge(ReenumerationTime + slow)
	d.bootAndAttach(req, true)
}

// hostGrace is the real time a device that resets on a host's request stays on the bus
// at least, so that the reply to the transfer that triggered the reset (the GETSTATUS
// that entered dfuMANIFEST, the CHECK that completed a request) reaches the host before
// the device disappears. A real device waits 500 ms to 1 s of device time; at scale 0
// that would be nothing.
const hostGrace = 20 * time.Millisecond

// resetLater is Device OS replying to a request and resetting delay later.
func (d *Device) resetLater(gen uint64, req bootReq) { d.resetAsync(gen, req, RequestResetDelay) }

// resetAsync resets after delay of device time (and at least hostGrace of real time),
// from a callback that must not block.
func (d *Device) resetAsync(gen uint64, req bootReq, delay time.Duration) {
	go func() {
		start := time.Now()
		d.meter.Charge(delay)
		if rest := hostGrace - time.Since(start); rest > 0 {
			time.Sleep(rest)
		}
		d.reset(gen, req)
	}()
}

// bootAndAttach runs the boot routine and puts the doors of the resulting mode on the
// bus. resetMu must be held.
func (d *Device) bootAndAttach(req bootReq, charge bool) {
	d.mu.Lock()
	t := d.bootLocked(req)
	gen, mode, fail := d.gen, d.mode, d.faults.failEnum
	wantPort := mode.cdc() && !d.opts.NoSerial && !fail
	d.mu.Unlock()
	if charge && t > 0 {
		d.mu.Lock()
		d.applying = true
		d.changedLocked()
		d.mu.Unlock()
		d.meter.Charge(t) // solid magenta while the bootloader copies
		d.mu.Lock()
		d.applying = false
		d.mu.Unlock()
	}
	var port *serialdev.Port
	if wantPort {
		var err error
		port, err = serialdev.Open(&serialModel{d: d, gen: gen}, serialdev.Options{TimeScale: d.serialScale()})
		if err != nil {
			slog.Warn("sim: serial door unavailable", "device", d.id, "err", err)
		}
	}
	d.mu.Lock()
	if gen != d.gen {
		d.mu.Unlock()
		if port != nil {
			_ = port.Close()
		}
		return
	}
	d.port = port
	if port != nil {
		d.faults.applySerial(port)
	}
	d.onBus = mode.usb() && !fail
	srv := d.srv
	on := d.onBus
	d.mu.Unlock()
	if fail && mode.usb() {
		slog.Info("sim: re-enumeration failed (fault): device stays off the bus", "device", d.id)
	}
	// Enumerated first, then ready: whoever waits for the boot finds it on the bus.
	if on && srv != nil {
		srv.Add(d.door)
	}
	d.mu.Lock()
	if gen == d.gen {
		d.ready = true
		d.changedLocked()
	}
	d.mu.Unlock()
}

func (d *Device) serialScale() float64 {
	s := d.opts.SerialTimeScale
	if s <= 0 {
		s = max(d.opts.Scale, 0.1)
	}
	return s
}

// bootLocked is the boot routine (see the package documentation). It sets the mode and
// builds the doors' device sides, and returns the device time the updates it applied
// took. d.mu must be held.
func (d *Device) bootLocked(req bootReq) time.Duration {
	var charge time.Duration
	for attempt := 0; ; attempt++ {
		d.boots++
		s := d.scanLocked()
		bl := s.main(platform.FuncBootloader, 0)
		if bl == nil || !bl.found {
			d.setOffLocked("no bootloader: nothing runs (LED dark); only SWD/JTAG can fix this")
			return charge
		}
		if req.dfu {
			d.enterDFULocked("DFU requested (" + req.reason + ")")
			return charge
		}
		if t, ok := d.applyPendingLocked(s); ok || t > 0 {
			charge += t
			s = d.scanLocked()
		}
		if why := d.cannotRunLocked(s); why != "" {
			d.enterDFULocked("no valid system firmware: " + why)
			return charge
		}
		// Device OS runs from here.
		t, applied := d.applyOTAFlagLocked(s)
		charge += t
		if applied && attempt < 4 {
			charge += ReenumerationTime
			req = bootReq{reason: "update applied"}
			continue
		}
		safe, reason := req.safe, "safe mode requested"
		if !safe {
			if why := d.validateModulesLocked(s); why != "" {
				safe, reason = true, why
			}
		}
		if !safe {
			if why := userProblem(s); why != "" {
				safe, reason = true, why
			}
		}
		mode := ModeNormal
		switch {
		case !req.listen && d.waitsForSetupLocked(s.sys):
			mode = ModeListening
			reason = "setup not done: Device OS waits in listening mode until it is marked done"
			if safe {
				reason = "safe listening mode, " + reason
			}
		case req.listen:
			mode = ModeListening
			if safe {
				reason = "safe listening mode: " + reason
			} else {
				reason = "listening mode requested"
			}
		case safe:
			mode = ModeSafe
		default:
			reason = "all modules valid"
		}
		d.enterDeviceOSLocked(mode, safe, reason, s)
		return charge
	}
}

func (d *Device) setOffLocked(reason string) {
	d.mode, d.safe, d.sys, d.reason = ModeOff, false, 0, reason
	d.desc, d.dfu, d.ch, d.fw = nil, nil, nil, nil
}

// cannotRunLocked says why the bootloader would not (or could not usefully) run the
// system firmware: a system part missing, corrupt, out of range or for another platform,
// or no SoftDevice under a Gen3 Device OS.
func (d *Device) cannotRunLocked(s *scan) string {
	parts := 0
	for _, sm := range s.slots {
		if sm.store != ctrl.StoreMain || sm.slot.Function != platform.FuncSystem {
			continue
		}
		parts++
		switch {
		case !sm.found:
			return sm.slot.Name + " is missing"
		case !sm.crcOK:
			return sm.slot.Name + " fails its CRC check"
		case !sm.rangeOK:
			return sm.slot.Name + " does not fit its slot"
		case !sm.platformOK:
			return fmt.Sprintf("%s is built for platform %d", sm.slot.Name, sm.platformID)
		}
	}
	if parts == 0 {
		return "no system part"
	}
	if d.p.HasRadioStack && (s.radio == nil || !s.radio.magic) {
		return "no SoftDevice (radio stack) at 0x1000"
	}
	return ""
}

// validateModulesLocked is HAL_Core_Validate_Modules(1): the bootloader (integrity,
// range, platform, dependencies), then the one system part the platform family checks.
func (d *Device) validateModulesLocked(s *scan) string {
	if s.fam.skipValidate {
		return ""
	}
	for _, sm := range []*slotModule{s.main(platform.FuncBootloader, 0), s.main(platform.FuncSystem, s.fam.validateSystemIndex)} {
		if sm == nil {
			continue
		}
		if why := s.problem(sm); why != "" {
			return why
		}
	}
	return ""
}

// problem says what is wrong with an installed module, "" if it passes every check.
func (s *scan) problem(sm *slotModule) string {
	switch {
	case !sm.found:
		return sm.slot.Name + " is missing"
	case !sm.rangeOK:
		return sm.slot.Name + " does not fit its slot"
	case !sm.platformOK:
		return fmt.Sprintf("%s is built for platform %d", sm.slot.Name, sm.platformID)
	case !sm.crcOK:
		return sm.slot.Name + " fails its CRC check"
	}
	if why := s.depProblem(sm.slot.Name, sm.slot.Function, sm.deps, false); why != "" {
		return why
	}
	return ""
}

// depProblem explains an unmet dependency in depsOK's terms.
func (s *scan) depProblem(name string, fn platform.Function, deps [2]module.Dependency, userOptional bool) string {
	if s.depsOK(fn, deps, userOptional) {
		return ""
	}
	for _, dep := range deps {
		if dep.Function == platform.FuncNone {
			continue
		}
		v, ok := s.installed(dep.Function, dep.Index)
		if !ok {
			return fmt.Sprintf("%s needs %s #%d ≥ %d, which is missing", name, dep.Function, dep.Index, dep.Version)
		}
		if v < dep.Version {
			return fmt.Sprintf("%s needs %s #%d ≥ %d, has %d", name, dep.Function, dep.Index, dep.Version, v)
		}
	}
	return name + " has an unmet dependency"
}

// userProblem is HAL_Core_Validate_User_Module: no valid user application (missing,
// corrupt, another platform's, or needing a newer system) keeps the application from
// running: safe mode.
func userProblem(s *scan) string {
	u, ok := s.userSlot()
	if !ok {
		if s.userSlots() > 0 {
			return "no user application"
		}
		return ""
	}
	switch {
	case !u.found:
		return "no user application"
	case !u.platformOK:
		return fmt.Sprintf("the user application is built for platform %d", u.platformID)
	case !u.crcOK:
		return "the user application fails its CRC check"
	}
	return s.depProblem("the user application", platform.FuncUser, u.deps, false)
}

func (d *Device) enterDFULocked(reason string) {
	d.mode, d.safe, d.sys, d.reason = ModeDFU, false, 0, reason
	gen := d.gen
	// A protected bootloader locks every alt (usbd_dfu_mal.cpp getString picks the
	// *_IF_STRING_PROT names; usbd_dfu.cpp refuses UPLOAD, DNLOAD and ERASE).
	d.secureBoot = d.bootloaderSecureLocked(d.scanLocked())
	protected := d.protectedLocked()
	alts := make([]dfudev.Alt, 0, len(d.p.Alts))
	for _, a := range d.p.Alts {
		name := a.Layout
		if protected {
			name = dfudev.ProtectedName(name)
		}
		alts = append(alts, dfudev.Alt{Name: name, Mem: dfuMemory{Region: d.mems[a.Alt], d: d}})
	}
	dev := dfudev.New(dfudev.Config{
		Alts:         alts,
		Protected:    protected,
		TransferSize: d.p.TransferSize,
		Gen2:         d.p.Gen == 2,
		Meter:        d.meter,
		OnManifest: func(safe bool) {
			// dfudev already counted down and left the bus; the device resets now.
			d.resetAsync(gen, bootReq{safe: safe, reason: "DFU leave"}, 0)
		},
	})
	d.faults.applyDFU(dev)
	d.dfu = dev
	d.ch, d.fw = nil, nil
	d.desc = d.dfuDescriptors(dev)
}

func (d *Device) enterDeviceOSLocked(mode Mode, safe bool, reason string, s *scan) {
	d.mode, d.safe, d.reason = mode, safe, reason
	d.sys = s.sys
	d.secureBoot = d.bootloaderSecureLocked(s)
	gen := d.gen
	fw := &ctrldev.FirmwareUpdate{ChunkSize: ctrldev.DefaultChunkSize}
	fw.Prepare = func(size uint32) int32 { return d.fwPrepare(gen, size) }
	fw.Write = func(off uint32, chunk []byte) int32 { return d.fwWrite(gen, off, chunk) }
	fw.Validate = func(img []byte) int32 { return d.fwValidate(gen, img) }
	fw.Apply = func(img []byte) { d.fwApply(gen, img) }
	sys := d.sysVersionLocked()
	cfg := ctrldev.Config{
		Handler:             &ctrlHandler{d: d, gen: gen, fw: fw},
		OutNeedsData:        d.p.ControlOutNeedsData,
		LegacyDeviceID:      func() string { return d.id },
		LegacySystemVersion: d.SystemVersion,
		Meter:               d.meter,
		OnComplete: func(reqType uint16, delivery int32) {
			fw.Completed(reqType, delivery)
			d.requestCompleted(gen, reqType)
		},
	}
	if sys < 6000 {
		cfg.LegacyReset = func() { d.resetAsync(gen, bootReq{reason: "legacy reset request"}, 0) }
	}
	d.ch = ctrldev.New(cfg)
	d.fw = fw
	d.dfu = nil
	d.desc = d.cdcDescriptors()
}

// ncpKnownLocked is the NCP's firmware version as the running Device OS knows it: known
// only where it lists and updates the NCP (the NCP slot's KnownSince). d.mu must be held.
func (d *Device) ncpKnownLocked() (uint16, bool) {
	sl, ok := d.p.Slot(platform.FuncNCP, 0)
	if !ok || d.ncp == nil || !d.mode.cdc() {
		return 0, false
	}
	if sys := d.sysVersionLocked(); sl.KnownSince != 0 && sys != 0 && sys < sl.KnownSince {
		return 0, false
	}
	return d.ncp.version, true
}

// setListening enters or leaves listening mode without a reset, as Device OS does.
func (d *Device) setListening(gen uint64, on bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if (gen != 0 && gen != d.gen) || !d.mode.cdc() {
		return false
	}
	switch {
	case on && d.mode != ModeListening:
		d.mode, d.reason = ModeListening, "listening mode requested"
	case !on && d.mode == ModeListening && d.waitsForSetupLocked(d.sys):
		return true // network_connect() finds no setup-done flag and listens again
	case !on && d.mode == ModeListening:
		if d.safe {
			d.mode, d.reason = ModeSafe, "left listening mode (safe mode)"
		} else {
			d.mode, d.reason = ModeNormal, "left listening mode"
		}
	default:
		return true
	}
	d.changedLocked()
	return true
}

// dfuMemory is an alt setting's flash as the DFU bootloader writes it; a power loss
// injected into the flash takes the whole device down.
type dfuMemory struct {
	*flash.Region
	d *Device
}

// EraseSector erases through the region and notices a power loss.
func (m dfuMemory) EraseSector(addr uint32) error {
	err := m.Region.EraseSector(addr)
	m.d.noticePowerLoss(err)
	return err
}

// Program programs through the region and notices a power loss.
func (m dfuMemory) Program(addr uint32, p []byte) error {
	err := m.Region.Program(addr, p)
	m.d.noticePowerLoss(err)
	return err
}

// noticePowerLoss takes the device down after an injected power loss. It runs on flash
// paths that may be inside the DFU bootloader's lock, so it only starts the power-off.
func (d *Device) noticePowerLoss(err error) {
	if errors.Is(err, flash.ErrPowerLoss) {
		go d.powerOff("power loss")
	}
}

// Device Protection and the setup-done flag, as Device OS has them.
const (
	// dctSetupDoneOffset is application_dct_t.setup_done (platform/MCU/nRF52840/inc/dct.h
	// STATIC_ASSERT_DCT_OFFSET(setup_done, 8134)); 0x01 means done.
	dctSetupDoneOffset = 8134
	// setupDoneUntil: 4.0.0-alpha.1 (system 4000) stopped minding the flag ("[gen3]
	// disable setup_done flag", CHANGELOG 4.0.0 #2447).
	setupDoneUntil = 4000
	// protectionSince: Device OS 6.0.0 (system 6000) brought Device Protection
	// (services/src/security_mode.cpp); 6.1.1 (6101) added the Service Mode override.
	protectionSince = 6000
	overrideSince   = 6101
)

// mindsSetupDoneLocked: Gen3 Device OS before 4.0 (HAL_PLATFORM_DCT_SETUP_DONE is set in
// hal_platform_nrf52840_config.h) enters listening mode from network_connect() while the
// DCT byte is not 0x01 (system_network_manager_api.cpp testAndClearListeningModeFlag).
func (d *Device) mindsSetupDoneLocked(sys uint16) bool {
	return d.p.MCU == "nrf52840" && d.dct != nil && sys != 0 && sys < setupDoneUntil
}

// setupDoneLocked reads the DCT byte.
func (d *Device) setupDoneLocked() bool {
	if d.dct == nil {
		return false
	}
	b := d.dct.Snapshot(dctSetupDoneOffset, 1)
	return len(b) == 1 && b[0] == 0x01
}

// waitsForSetupLocked: the running Device OS minds the flag and it is not set.
func (d *Device) waitsForSetupLocked(sys uint16) bool {
	return d.mindsSetupDoneLocked(sys) && !d.setupDoneLocked()
}

// bootloaderSecureLocked: the installed bootloader is a protected build (its
// SECURITY_MODE extension says 1), which is where Device Protection comes from.
func (d *Device) bootloaderSecureLocked(s *scan) bool {
	bl := s.main(platform.FuncBootloader, 0)
	return bl != nil && bl.found && bl.security == 1
}

// protectedLocked is security_mode_get() == PROTECTED: read once per boot from the
// bootloader (security_mode_init at start-up; the bootloader's own check in DFU mode), for
// a Device OS that knows protection, unless Service Mode lifts it.
func (d *Device) protectedLocked() bool {
	if d.override || !d.secureBoot {
		return false
	}
	return d.mode == ModeDFU || d.sysVersionLocked() >= protectionSince
}

// Protected reports whether Device Protection locks the device now.
func (d *Device) Protected() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.protectedLocked()
}

// SetupDone reports the DCT's setup-done byte.
func (d *Device) SetupDone() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.setupDoneLocked()
}
