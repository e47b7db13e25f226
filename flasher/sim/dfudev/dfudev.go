// Package dfudev is the DFU interface of a simulated Particle bootloader: USB DFU 1.1 with ST's
// DfuSe 1.1a extensions, behaving as the real Gen2 (STM32F2, ST's usbd_dfu_core.c as patched by
// Particle) and Gen3/Gen4 (nRF52840 and RTL872x, Particle's usbd_dfu.cpp) bootloaders do,
// including their quirks. It answers control transfers in-process (Device.Control has gousb's
// signature) so host code can be tested without hardware, and the USB door of the simulator
// forwards real libusb callers (dfu-util) to the same method.
//
// The state machine, as the bootloaders implement it:
//
//	dfuIDLE/dfuDNLOAD_IDLE --DNLOAD(n>0)--> dfuDNLOAD_SYNC --GETSTATUS--> dfuDNBUSY
//	  (reported with bwPollTimeout; the erase/write runs now, in device time)
//	  --(operation done)--> dfuDNLOAD_IDLE, or dfuERROR with bStatus
//	dfuIDLE/dfuDNLOAD_IDLE --DNLOAD(0)--> dfuMANIFEST_SYNC --GETSTATUS--> dfuMANIFEST (Gen3) /
//	  "dfuDNLOAD_IDLE" (Gen2 lies, "to get a nice output from dfu-util") --> reset after 500 ms
//
// The first GETSTATUS after any DNLOAD, DfuSe commands included, reports dfuDNBUSY, which
// dfu-util 0.11 insists on. A GETSTATUS that comes before the operation's time is up blocks
// until it is (the real device NAKs while its flash controller is busy).
//
// Error reporting follows the bootloader sources rather than the DFU specification:
//   - Gen3 (usbd_dfu.cpp inDone): any refused erase/write/read (outside the memory, or here
//     also a read-only sector or write-before-erase) becomes dfuERROR with errUNKNOWN; a
//     one-byte (mass) ERASE gives errTARGET; unknown commands errSTALLEDPKT; requests in the
//     wrong state give dfuERROR/errUNKNOWN and a STALL; protected mode gives errVENDOR with an
//     iString. The real device also STALLs the status stage of the DNBUSY GETSTATUS when the
//     operation fails; the sim reports the dfuERROR on the next GETSTATUS without that stall.
//   - Gen2 (usbd_dfu_core.c EP0_TxSent): a refused erase/write never reaches dfuERROR; the
//     bootloader STALLs EP0 (USBD_CtlError) and carries on. The sim STALLs the next request
//     after the failed operation; the GETSTATUS after that reports dfuDNLOAD_IDLE/OK. Requests
//     in the wrong state STALL without changing the state.
//
// Neither real bootloader consults the permission letters of its own layout string (they
// check address ranges and, on Gen2, a protected area); the sim's memories enforce the
// letters, which is what a careful host must assume anyway.
package dfudev

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
	"github.com/particle-flasher/particle-flasher/flasher/sim/flash"
)

// Memory is what one alt setting reads, erases and programs; *flash.Region satisfies it.
type Memory interface {
	Layout() *memlayout.Layout
	Read(addr uint32, p []byte) error
	EraseSector(addr uint32) error
	Program(addr uint32, p []byte) error
}

// Estimator is optionally implemented by a Memory that knows in advance how long an operation
// takes (*flash.Region does), so the device can report an honest bwPollTimeout. Without it the
// device reports 0 and makes the host's next GETSTATUS wait.
type Estimator interface {
	EraseDuration(addr uint32) time.Duration
	ProgramDuration(n int) time.Duration
}

// Alt is one alternate setting of the DFU interface.
type Alt struct {
	// Name is the iInterface string: the DfuSe layout, e.g.
	// "@Internal Flash   /0x08000000/03*016Ka,01*016Kg,01*064Kg,07*128Kg".
	Name string
	Mem  Memory
}

// Config describes the bootloader.
type Config struct {
	Alts         []Alt
	TransferSize uint16 // wTransferSize; 0 means 4096, Particle's value on every platform
	// Gen2 selects the STM32 bootloader: GET_COMMANDS returns 00 21 41, leaving reports
	// dfuDNLOAD_IDLE instead of dfuMANIFEST, failures STALL instead of dfuERROR. Otherwise the
	// Gen3/RTL bootloader: GET_COMMANDS returns 00 21 41 FA FB, 0xFA requests safe mode, a
	// one-byte (mass) ERASE is refused with errTARGET.
	Gen2 bool
	// Protected makes every read, erase and write (and SET_ADDRESS) fail with errVENDOR, as
	// Device OS 6.x device protection does; give the alts layout strings with every letter 'b'
	// (see ProtectedName) to match what such a device advertises.
	Protected bool
	// Meter is charged the USB time of every control transfer (about 1 ms, plus the data
	// stage) and the 500 ms reset countdown; pass the memories' Meter so that Charged() is
	// the device's whole time.
	Meter *flash.Meter
	// OnManifest is called (from another goroutine) when the device leaves DFU mode after
	// manifestation and its reset countdown: the device model resets here. safeMode tells
	// whether the host asked for safe mode (DfuSe 0xFA).
	OnManifest func(safeMode bool)
}

// Errors Control returns. They wrap the dfu package's sentinels so a host recognises them
// exactly as it recognises libusb's.
var (
	// ErrStall is returned for requests the device would STALL: wrong state, bad length,
	// unknown request, injected stalls.
	ErrStall = fmt.Errorf("dfudev: request stalled: %w", dfu.ErrStall)
	// ErrNoDevice is returned once the device has reset (after leaving DFU), lost power
	// (flash.ErrPowerLoss) or been unplugged.
	ErrNoDevice = fmt.Errorf("dfudev: device is gone: %w", dfu.ErrNoDevice)
)

// Timing of the USB side. The data stage of a full-speed control transfer moves 64-byte
// packets; about 1 MB/s is what a host controller achieves in practice.
const (
	USBRoundTrip    = time.Millisecond
	USBBytesPerSec  = 1_000_000
	ResetCountdown  = 500 * time.Millisecond // USBD_DFU_POLL_TIMEOUT (Gen3), DFU_Reset_Count (Gen2)
	errorStringIdx  = 10                     // STRING_IDX_INTERFACE(5) + 1 + USBD_DFU_MAX_CONFIGURATIONS(3) + 1
	protectedString = "Device is in protected mode"
	maxPollTimeout  = 0xFFFFFF * time.Millisecond
)

// Standard requests the DFU interface answers itself (the rest belong to the USB device).
const (
	reqGetDescriptor = 0x06
	reqGetInterface  = 0x0A
	reqSetInterface  = 0x0B
	rtStdInIface     = 0x81
	rtStdOutIface    = 0x01
)

// Transfer is one control transfer as the device saw it.
type Transfer struct {
	Time        time.Time     // arrival, real time
	DeviceTime  time.Duration // Meter.Charged() on arrival
	RequestType uint8
	Request     uint8
	Value       uint16
	Index       uint16
	Length      int           // wLength
	Before      byte          // state before
	After       byte          // state after
	Reported    byte          // bState in the GETSTATUS reply (differs from After for the Gen2 leave quirk)
	Status      byte          // bStatus after
	PollTimeout time.Duration // bwPollTimeout reported (GETSTATUS)
	Command     int           // DfuSe command byte of a wValue-0 DNLOAD, else -1
	Address     uint32        // command address, or the address a data block was read/written at
	Err         error
}

// request is a received DNLOAD waiting for its GETSTATUS.
type request struct {
	value uint16
	data  []byte
}

// op is an operation started by GETSTATUS; the device is dfuDNBUSY until done closes.
type op struct {
	done   chan struct{}
	err    error // memory failure
	status byte  // non-zero: end in dfuERROR with this status (injected or decoded)
	stall  bool  // Gen2: end by stalling EP0
	next   byte  // state on success
}

// Device is the DFU interface of one simulated bootloader. Safe for concurrent use; requests
// are serialised as on EP0.
type Device struct {
	cfg  Config
	xfer int

	mu           sync.Mutex
	alt          uint8
	state        byte
	status       byte
	iString      byte
	poll         time.Duration
	pointer      uint32
	req          *request
	op           *op
	stallCmds    int
	inject       int // -1 none
	stallPending bool
	safeMode     bool
	resetting    bool
	gone         bool
	errString    string
	log          []Transfer
}

// New builds a device in dfuIDLE on alt setting 0.
func New(cfg Config) *Device {
	d := &Device{cfg: cfg, xfer: int(cfg.TransferSize), state: dfu.StateIdle, inject: -1}
	if d.xfer == 0 {
		d.xfer = 4096
	}
	return d
}

// ProtectedName turns a layout string into what a protected device advertises: every
// permission letter becomes 'b' (erase-only), as usbd_dfu_mal.h's *_IF_STRING_PROT do.
func ProtectedName(name string) string {
	if _, err := memlayout.Parse(name); err != nil {
		return name
	}
	out := permLetter.ReplaceAllString(name, "${1}b")
	if _, err := memlayout.Parse(out); err != nil {
		return name
	}
	return out
}

// permLetter matches "*SIZE[multiplier]" and the permission letter after it.
var permLetter = regexp.MustCompile(`(\*\s*[0-9]+\s*[BKM]?\s*)[a-g]`)

// FunctionalDescriptor is the 9-byte DFU functional descriptor: bitCanDnload, bitCanUpload
// and bitWillDetach (not manifestation tolerant), wDetachTimeout 255 ms, wTransferSize,
// bcdDFUVersion 1.1a (DfuSe).
func (d *Device) FunctionalDescriptor() []byte {
	return []byte{9, dfu.FunctionalDescriptorType,
		dfu.AttrCanDnload | dfu.AttrCanUpload | dfu.AttrWillDetach,
		0xFF, 0x00, byte(d.xfer), byte(d.xfer >> 8), 0x1A, 0x01}
}

// SetAlt selects the alternate setting (USB SET_INTERFACE).
func (d *Device) SetAlt(alt uint8) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.settle()
	if d.gone {
		return ErrNoDevice
	}
	if int(alt) >= len(d.cfg.Alts) {
		return fmt.Errorf("dfudev: no alt setting %d (have %d): %w", alt, len(d.cfg.Alts), ErrStall)
	}
	d.alt = alt
	return nil
}

// Alt is the current alternate setting.
func (d *Device) Alt() uint8 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.alt
}

// State is the current DFU state (after any operation in flight has finished).
func (d *Device) State() byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.settle()
	return d.state
}

// ErrorString is the text of the iString a GETSTATUS reply points to ("Device is in protected
// mode"), empty when there is none.
func (d *Device) ErrorString() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.errString
}

// InjectStatus makes the next DfuSe command or download end in dfuERROR with bStatus status
// (reported by the GETSTATUS after the dfuDNBUSY one; nothing is written or erased).
func (d *Device) InjectStatus(status byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.inject = int(status)
}

// StallNext makes the next n DfuSe commands (DNLOAD wValue 0) STALL without being accepted,
// as a Boron did in the field during ERASE.
func (d *Device) StallNext(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stallCmds = max(n, 0)
}

// Unplug takes the device off the bus: every later request fails with ErrNoDevice.
func (d *Device) Unplug() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gone = true
}

// Gone reports whether the device has left the bus (reset, power loss, unplug).
func (d *Device) Gone() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gone
}

// Log returns a copy of every control transfer so far.
func (d *Device) Log() []Transfer {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Transfer(nil), d.log...)
}

// Control answers one control transfer with gousb's Device.Control contract: data is the
// payload (OUT) or the buffer to fill (IN); the result is the number of bytes transferred.
func (d *Device) Control(rType, request uint8, val, idx uint16, data []byte) (int, error) {
	arrival := time.Now()
	devTime := d.cfg.Meter.Charged()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.settle()
	t := Transfer{Time: arrival, DeviceTime: devTime, RequestType: rType, Request: request, Value: val,
		Index: idx, Length: len(data), Before: d.state, Command: -1}
	var n int
	var err error
	switch {
	case d.gone:
		err = ErrNoDevice
	case d.stallPending:
		d.stallPending = false
		d.usb(len(data))
		err = ErrStall
	default:
		d.usb(len(data))
		n, err = d.handle(&t, rType, request, val, idx, data)
	}
	t.After, t.Status, t.Err = d.state, d.status, err
	d.log = append(d.log, t)
	return n, err
}

// usb charges the bus time of one control transfer.
func (d *Device) usb(n int) {
	d.cfg.Meter.Charge(USBRoundTrip + time.Duration(float64(n)/USBBytesPerSec*float64(time.Second)))
}

func (d *Device) handle(t *Transfer, rt, req uint8, val, idx uint16, data []byte) (int, error) {
	switch rt {
	case rtStdInIface, rtStdOutIface:
		return d.standard(rt, req, val, data)
	case dfu.RequestTypeOut, dfu.RequestTypeIn:
	default:
		return 0, ErrStall
	}
	if idx != 0 {
		return 0, ErrStall
	}
	in := rt == dfu.RequestTypeIn
	switch {
	case req == dfu.ReqDnload && !in:
		return d.dnload(t, val, data)
	case req == dfu.ReqUpload && in:
		return d.upload(t, val, data)
	case req == dfu.ReqGetStatus && in:
		return d.getStatus(t, data)
	case req == dfu.ReqClrStatus && !in:
		return d.clrStatus()
	case req == dfu.ReqGetState && in:
		return d.getState(data)
	case req == dfu.ReqAbort && !in:
		return d.abort()
	case req == dfu.ReqDetach && !in:
		return d.detach()
	}
	return 0, ErrStall
}

func (d *Device) standard(rt, req uint8, val uint16, data []byte) (int, error) {
	switch {
	case rt == rtStdInIface && req == reqGetDescriptor && byte(val>>8) == dfu.FunctionalDescriptorType:
		return copy(data, d.FunctionalDescriptor()), nil
	case rt == rtStdInIface && req == reqGetInterface && len(data) >= 1:
		data[0] = d.alt
		return 1, nil
	case rt == rtStdOutIface && req == reqSetInterface:
		if int(val) >= len(d.cfg.Alts) {
			return 0, ErrStall
		}
		d.alt = uint8(val)
		return 0, nil
	}
	return 0, ErrStall
}

// refuse handles a request that has no transition in the current state.
func (d *Device) refuse() (int, error) {
	if !d.cfg.Gen2 {
		d.setError(dfu.StatusErrUnknown, "")
	}
	return 0, ErrStall
}

func (d *Device) setError(status byte, text string) {
	d.state, d.status, d.poll = dfu.StateError, status, 0
	d.iString, d.errString = 0, ""
	if text != "" {
		d.iString, d.errString = errorStringIdx, text
	}
	d.req = nil
}

func (d *Device) mem() Memory {
	if int(d.alt) < len(d.cfg.Alts) {
		return d.cfg.Alts[d.alt].Mem
	}
	return nil
}

func (d *Device) dnload(t *Transfer, val uint16, data []byte) (int, error) {
	if d.state != dfu.StateIdle && d.state != dfu.StateDnloadIdle {
		return d.refuse()
	}
	if len(data) == 0 { // leave request
		d.state, d.safeMode, d.poll = dfu.StateManifestSync, false, 0
		return 0, nil
	}
	if len(data) > d.xfer {
		return 0, ErrStall
	}
	if val == 0 {
		t.Command = int(data[0])
		if len(data) == 5 {
			t.Address = binary.LittleEndian.Uint32(data[1:])
		}
		if d.stallCmds > 0 {
			d.stallCmds--
			return 0, ErrStall
		}
	} else if val >= 2 {
		t.Address = d.blockAddr(val)
	}
	d.req = &request{value: val, data: append([]byte(nil), data...)}
	d.state = dfu.StateDnloadSync
	return len(data), nil
}

// blockAddr is DfuSe's (wBlockNum − 2) × wTransferSize + address pointer, in 32-bit
// arithmetic as the bootloaders compute it.
func (d *Device) blockAddr(val uint16) uint32 {
	return uint32(val-2)*uint32(d.xfer) + d.pointer
}

func (d *Device) upload(t *Transfer, val uint16, data []byte) (int, error) {
	if d.state != dfu.StateIdle && d.state != dfu.StateUploadIdle {
		return d.refuse()
	}
	if len(data) == 0 {
		d.state = dfu.StateIdle
		return 0, nil
	}
	switch {
	case val == 0: // GET_COMMANDS
		cmds := []byte{dfu.CmdGetCommands, dfu.CmdSetAddress, dfu.CmdErase, dfu.CmdEnterSafeMode, dfu.CmdClearSecurityModeOverride}
		d.state = dfu.StateIdle
		if d.cfg.Gen2 {
			cmds = cmds[:3]
			if len(data) <= 3 {
				d.state = dfu.StateUploadIdle
			}
		}
		return copy(data, cmds), nil
	case val == 1 || len(data) > d.xfer:
		return d.refuse()
	}
	t.Address = d.blockAddr(val)
	if d.cfg.Protected {
		d.setError(dfu.StatusErrVendor, protectedString)
		return 0, nil
	}
	m := d.mem()
	if m == nil {
		return d.refuse()
	}
	if err := m.Read(t.Address, data); err != nil {
		slog.Debug("dfudev: upload refused", "addr", fmt.Sprintf("0x%08x", t.Address), "err", err)
		return d.refuse()
	}
	d.state = dfu.StateUploadIdle
	return len(data), nil
}

func (d *Device) getStatus(t *Transfer, data []byte) (int, error) {
	if len(data) == 0 {
		return 0, ErrStall
	}
	reported := d.state
	switch d.state {
	case dfu.StateDnloadSync:
		if d.req == nil { // Gen2: the block completed, report it
			d.state, d.poll = dfu.StateDnloadIdle, 0
		} else {
			d.start()
		}
		reported = d.state
	case dfu.StateManifestSync:
		d.poll = 0
		if d.cfg.Gen2 {
			reported = dfu.StateDnloadIdle // "to get a nice output from dfu-util"
		} else {
			reported = dfu.StateManifest
		}
		d.state = dfu.StateManifestWaitReset
		d.startReset()
	case dfu.StateManifestWaitReset:
		if !d.cfg.Gen2 {
			return 0, ErrStall // no transition defined; the reset is already counting down
		}
	}
	poll := min(d.poll, maxPollTimeout)
	ms := uint32(poll / time.Millisecond)
	reply := [dfu.StatusLength]byte{d.status, byte(ms), byte(ms >> 8), byte(ms >> 16), reported, d.iString}
	t.Reported, t.PollTimeout = reported, poll
	return copy(data, reply[:]), nil
}

func (d *Device) clrStatus() (int, error) {
	if d.state != dfu.StateError {
		if d.cfg.Gen2 {
			d.state, d.status = dfu.StateError, dfu.StatusErrUnknown
			return 0, nil
		}
		return d.refuse()
	}
	d.state, d.status, d.iString, d.errString, d.poll = dfu.StateIdle, dfu.StatusOK, 0, "", 0
	return 0, nil
}

func (d *Device) getState(data []byte) (int, error) {
	if len(data) == 0 {
		return 0, ErrStall
	}
	if !d.cfg.Gen2 {
		switch d.state {
		case dfu.StateManifestWaitReset, dfu.StateManifest:
			return 0, ErrStall
		case dfu.StateDnbusy:
			return d.refuse()
		}
	}
	data[0] = d.state
	return 1, nil
}

func (d *Device) abort() (int, error) {
	switch d.state {
	case dfu.StateIdle, dfu.StateDnloadSync, dfu.StateDnloadIdle, dfu.StateManifestSync, dfu.StateUploadIdle:
		d.state, d.status, d.iString, d.errString, d.poll, d.req = dfu.StateIdle, dfu.StatusOK, 0, "", 0, nil
		return 0, nil
	case dfu.StateManifestWaitReset:
		return 0, ErrStall
	}
	if d.cfg.Gen2 {
		return 0, nil // ignored
	}
	return d.refuse()
}

func (d *Device) detach() (int, error) {
	switch d.state {
	case dfu.StateIdle, dfu.StateDnloadSync, dfu.StateDnloadIdle, dfu.StateManifestSync, dfu.StateUploadIdle:
		d.state, d.req = dfu.StateIdle, nil
		return 0, nil
	}
	if d.cfg.Gen2 {
		return 0, nil
	}
	return d.refuse()
}

var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// start begins the operation of the pending DNLOAD: the device reports dfuDNBUSY and works on
// it until the op completes; settle then applies the outcome.
func (d *Device) start() {
	r := d.req
	d.req = nil
	d.state, d.poll = dfu.StateDnbusy, 0
	isCmd := r.value == 0
	var cmd byte
	if isCmd {
		cmd = r.data[0]
	}
	if d.cfg.Protected && !(isCmd && !d.cfg.Gen2 && len(r.data) == 1 &&
		(cmd == dfu.CmdEnterSafeMode || cmd == dfu.CmdClearSecurityModeOverride)) {
		d.setError(dfu.StatusErrVendor, protectedString) // reported at once, not after DNBUSY
		return
	}
	if d.inject >= 0 {
		d.op = &op{done: closed, status: byte(d.inject)}
		d.inject = -1
		return
	}
	if !isCmd {
		if r.value == 1 {
			if d.cfg.Gen2 {
				d.op = &op{done: closed, next: dfu.StateDnloadIdle} // ignored by EP0_TxSent
			} else {
				d.op = &op{done: closed, status: dfu.StatusErrTarget}
			}
			return
		}
		addr := d.blockAddr(r.value)
		var est time.Duration
		m := d.mem()
		if e, ok := m.(Estimator); ok {
			est = e.ProgramDuration(len(r.data))
		}
		d.run(est, func() error { return program(m, addr, r.data) })
		return
	}
	fail := func(gen3 byte) { // a command the bootloader rejects
		if d.cfg.Gen2 {
			d.op = &op{done: closed, stall: true}
		} else {
			d.op = &op{done: closed, status: gen3}
		}
	}
	switch {
	case cmd == dfu.CmdGetCommands && len(r.data) == 1:
		d.op = &op{done: closed, next: dfu.StateDnloadIdle}
	case cmd == dfu.CmdSetAddress && len(r.data) == 5:
		d.pointer = binary.LittleEndian.Uint32(r.data[1:])
		d.op = &op{done: closed, next: dfu.StateDnloadIdle}
	case cmd == dfu.CmdErase && len(r.data) == 5:
		addr := binary.LittleEndian.Uint32(r.data[1:])
		m := d.mem()
		var est time.Duration
		if e, ok := m.(Estimator); ok {
			est = e.EraseDuration(addr)
		}
		d.run(est, func() error { return erase(m, addr) })
	case cmd == dfu.CmdErase && len(r.data) == 1:
		fail(dfu.StatusErrTarget) // mass erase unsupported
	case cmd == dfu.CmdSetAddress, cmd == dfu.CmdErase:
		fail(dfu.StatusErrUnknown) // wrong length
	case d.cfg.Gen2:
		fail(0)
	case cmd == dfu.CmdEnterSafeMode && len(r.data) == 1:
		d.safeMode = true
		d.op = &op{done: closed, next: dfu.StateManifestSync}
	case cmd == dfu.CmdClearSecurityModeOverride && len(r.data) == 1:
		d.op = &op{done: closed, next: dfu.StateDnloadIdle}
	case cmd == dfu.CmdReadUnprotect:
		fail(dfu.StatusErrUnknown)
	default:
		fail(dfu.StatusErrStalledPkt)
	}
}

var errNoMemory = errors.New("no memory behind this alt setting")

func program(m Memory, addr uint32, p []byte) error {
	if m == nil {
		return errNoMemory
	}
	return m.Program(addr, p)
}

func erase(m Memory, addr uint32) error {
	if m == nil {
		return errNoMemory
	}
	return m.EraseSector(addr)
}

// run starts a memory operation in the background. The reported bwPollTimeout is its device
// time scaled to real time, rounded up to whole milliseconds as the field requires.
func (d *Device) run(est time.Duration, f func() error) {
	o := &op{done: make(chan struct{}), next: dfu.StateDnloadIdle}
	scaled := d.cfg.Meter.Scaled(est)
	d.poll = (scaled + time.Millisecond - 1) / time.Millisecond * time.Millisecond
	go func() {
		defer close(o.done)
		o.err = f()
	}()
	d.op = o
}

// settle waits for the operation in flight (the device NAKs meanwhile) and applies its
// outcome to the state machine, as the bootloader does right after the DNBUSY GETSTATUS.
func (d *Device) settle() {
	o := d.op
	if o == nil {
		return
	}
	<-o.done
	d.op = nil
	d.poll = 0
	switch {
	case o.err != nil && errors.Is(o.err, flash.ErrPowerLoss):
		slog.Info("dfudev: power lost during a flash operation; device is off the bus", "err", o.err)
		d.gone = true
	case o.status != 0:
		d.setError(o.status, "")
	case o.err != nil || o.stall:
		if o.err != nil {
			slog.Debug("dfudev: operation refused", "err", o.err)
		}
		if d.cfg.Gen2 {
			d.stallPending = true
			d.state = dfu.StateDnloadSync // with no block pending: next GETSTATUS says DNLOAD_IDLE
		} else {
			d.setError(dfu.StatusErrUnknown, "")
		}
	case d.cfg.Gen2 && o.next == dfu.StateDnloadIdle:
		d.state, d.status = dfu.StateDnloadSync, dfu.StatusOK
	default:
		d.state, d.status = o.next, dfu.StatusOK
	}
}

// startReset counts down to the reset that ends DFU mode, then calls OnManifest.
func (d *Device) startReset() {
	if d.resetting {
		return
	}
	d.resetting = true
	safe := d.safeMode
	go func() {
		d.cfg.Meter.Charge(ResetCountdown)
		d.mu.Lock()
		d.gone = true
		d.mu.Unlock()
		if d.cfg.OnManifest != nil {
			d.cfg.OnManifest(safe)
		}
	}()
}
