// Package dfu is the host side of USB DFU 1.1 with ST's DfuSe 1.1a extensions, as Particle
// bootloaders implement them (Gen2 STM32F2 and Gen3/Gen4 nRF52840 and RTL872x): erase,
// write and read flash through a Controller, leave DFU mode, and ask a Gen3 device to boot
// into safe mode.
//
// It talks to anything with gousb's Device.Control signature, so the same code drives a real
// device through libusb and the simulator in flasher/sim/dfudev in-process.
//
// Compared with dfu-util 0.11 (which issues SET_ADDRESS before every chunk) the client sets
// the address pointer once per contiguous run and lets the device advance it with the DfuSe
// block number, address = (wBlockNum − 2) × wTransferSize + pointer, which roughly halves
// the control transfers of a write. That is only correct when the block size equals the
// device's wTransferSize, so when Options.TransferSize is not given (not read from the
// functional descriptor) the client falls back to dfu-util's one-SET_ADDRESS-per-chunk.
package dfu

import (
	"errors"
	"fmt"
	"strings"
)

// bmRequestType values of DFU class requests addressed to an interface.
const (
	RequestTypeOut uint8 = 0x21 // host to device, class, interface
	RequestTypeIn  uint8 = 0xA1 // device to host, class, interface
)

// DFU class requests (DFU 1.1 §3).
const (
	ReqDetach    uint8 = 0
	ReqDnload    uint8 = 1
	ReqUpload    uint8 = 2
	ReqGetStatus uint8 = 3
	ReqClrStatus uint8 = 4
	ReqGetState  uint8 = 5
	ReqAbort     uint8 = 6
)

// DFU device states (DFU 1.1 §6.1.2).
const (
	StateAppIdle           byte = 0
	StateAppDetach         byte = 1
	StateIdle              byte = 2
	StateDnloadSync        byte = 3
	StateDnbusy            byte = 4
	StateDnloadIdle        byte = 5
	StateManifestSync      byte = 6
	StateManifest          byte = 7
	StateManifestWaitReset byte = 8
	StateUploadIdle        byte = 9
	StateError             byte = 10
	maxState                    = StateError
)

const (
	// StatusLength is the size of a GETSTATUS reply.
	StatusLength = 6
	// FunctionalDescriptorType is the bDescriptorType of the DFU functional descriptor.
	FunctionalDescriptorType byte = 0x21
)

// DFU status codes (bStatus, DFU 1.1 §6.1.2).
const (
	StatusOK             byte = 0x00
	StatusErrTarget      byte = 0x01
	StatusErrFile        byte = 0x02
	StatusErrWrite       byte = 0x03
	StatusErrErase       byte = 0x04
	StatusErrCheckErased byte = 0x05
	StatusErrProg        byte = 0x06
	StatusErrVerify      byte = 0x07
	StatusErrAddress     byte = 0x08
	StatusErrNotDone     byte = 0x09
	StatusErrFirmware    byte = 0x0A
	StatusErrVendor      byte = 0x0B
	StatusErrUSBR        byte = 0x0C
	StatusErrPOR         byte = 0x0D
	StatusErrUnknown     byte = 0x0E
	StatusErrStalledPkt  byte = 0x0F
)

// DfuSe commands: the first byte of a DNLOAD with wValue 0. 0xFA and 0xFB are Particle's.
const (
	CmdGetCommands               byte = 0x00
	CmdSetAddress                byte = 0x21
	CmdErase                     byte = 0x41
	CmdReadUnprotect             byte = 0x92
	CmdEnterSafeMode             byte = 0xFA
	CmdClearSecurityModeOverride byte = 0xFB
)

var stateNames = [...]string{
	"appIDLE", "appDETACH", "dfuIDLE", "dfuDNLOAD_SYNC", "dfuDNBUSY", "dfuDNLOAD_IDLE",
	"dfuMANIFEST_SYNC", "dfuMANIFEST", "dfuMANIFEST_WAIT_RESET", "dfuUPLOAD_IDLE", "dfuERROR",
}

// StateName is the DFU 1.1 name of a state ("dfuDNBUSY"), for logs and errors.
func StateName(s byte) string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("unknown state %d", s)
}

var statusNames = [...]struct{ name, meaning string }{
	{"OK", "no error"},
	{"errTARGET", "file is not targeted for use by this device"},
	{"errFILE", "file fails a vendor-specific verification test"},
	{"errWRITE", "device is unable to write memory"},
	{"errERASE", "memory erase function failed"},
	{"errCHECK_ERASED", "memory erase check failed"},
	{"errPROG", "program memory function failed"},
	{"errVERIFY", "programmed memory failed verification"},
	{"errADDRESS", "address out of range"},
	{"errNOTDONE", "zero-length download but the device expects more data"},
	{"errFIRMWARE", "device firmware is corrupt"},
	{"errVENDOR", "vendor-specific error"},
	{"errUSBR", "unexpected USB reset"},
	{"errPOR", "unexpected power-on reset"},
	{"errUNKNOWN", "something went wrong, the device does not know what"},
	{"errSTALLEDPKT", "device stalled an unexpected request"},
}

// StatusName is the DFU 1.1 name of a bStatus ("errWRITE").
func StatusName(s byte) string {
	if int(s) < len(statusNames) {
		return statusNames[s].name
	}
	return fmt.Sprintf("status 0x%02x", s)
}

func statusMeaning(s byte) string {
	if int(s) < len(statusNames) {
		return statusNames[s].meaning
	}
	return "not a DFU 1.1 status"
}

// CommandName names a DfuSe command byte ("SET_ADDRESS").
func CommandName(c byte) string {
	switch c {
	case CmdGetCommands:
		return "GET_COMMANDS"
	case CmdSetAddress:
		return "SET_ADDRESS"
	case CmdErase:
		return "ERASE"
	case CmdReadUnprotect:
		return "READ_UNPROTECT"
	case CmdEnterSafeMode:
		return "ENTER_SAFE_MODE"
	case CmdClearSecurityModeOverride:
		return "CLEAR_SECURITY_MODE_OVERRIDE"
	}
	return fmt.Sprintf("command 0x%02x", c)
}

// RequestName names a DFU class request ("GETSTATUS").
func RequestName(r uint8) string {
	switch r {
	case ReqDetach:
		return "DETACH"
	case ReqDnload:
		return "DNLOAD"
	case ReqUpload:
		return "UPLOAD"
	case ReqGetStatus:
		return "GETSTATUS"
	case ReqClrStatus:
		return "CLRSTATUS"
	case ReqGetState:
		return "GETSTATE"
	case ReqAbort:
		return "ABORT"
	}
	return fmt.Sprintf("request %d", r)
}

// Sentinel errors. Controllers (the USB door, the simulator) wrap their transport errors
// around ErrStall and ErrNoDevice so the client can tell "the device said no" from "the
// device is gone"; raw gousb errors are recognised by their text as a fallback.
var (
	// ErrStall: the device STALLed the request (wrong state, bad length, busy bootloader).
	ErrStall = errors.New("dfu: request stalled (USB pipe error)")
	// ErrNoDevice: the device disappeared from the bus (reset, unplugged, lost power).
	ErrNoDevice = errors.New("dfu: no device (it left the bus)")
	// ErrProtected: Particle device protection (Device OS 6.x) refuses DFU reads and writes.
	ErrProtected = errors.New("dfu: the device is protected (Device OS device protection): DFU can only write it in service mode")
	// ErrReadOnly: the memory map marks a sector of the range as not erasable/writable.
	ErrReadOnly = errors.New("dfu: read-only sector")
	// ErrOutOfRange: the range is not inside the memory map of the selected alt setting.
	ErrOutOfRange = errors.New("dfu: outside the memory")
	// ErrProtocol: the device answered something DFU does not allow (short reply, unknown
	// state, a state that makes no sense at that point).
	ErrProtocol = errors.New("dfu: protocol error")
	// ErrNotResponding: the device stayed busy past the client's limit.
	ErrNotResponding = errors.New("dfu: the device stopped answering")
	// ErrUnsupported: the bootloader does not implement the DfuSe command.
	ErrUnsupported = errors.New("dfu: command not supported by this bootloader")
)

// Remedy is the advice for a device that no longer answers DFU requests sensibly.
const Remedy = "unplug and replug the device; if the LED is not blinking yellow, hold MODE, tap RESET, release MODE when it blinks yellow"

// StatusError is a device-reported DFU error: the bStatus and bState of the GETSTATUS reply
// that ended an operation (the client has already sent CLRSTATUS when it returns this).
type StatusError struct {
	Status byte // bStatus, e.g. StatusErrWrite
	State  byte // bState, normally StateError
	String byte // iString: index of a string descriptor with the device's explanation
}

// Error spells out the status and state, and for errVENDOR what it means on a Particle device.
func (e *StatusError) Error() string {
	msg := fmt.Sprintf("device reported %s (0x%02x: %s) in state %s",
		StatusName(e.Status), e.Status, statusMeaning(e.Status), StateName(e.State))
	if e.Status == StatusErrVendor {
		msg += "; Particle bootloaders use errVENDOR for device protection (the device is protected)"
	}
	return msg
}

// Is makes errors.Is(err, ErrProtected) true for errVENDOR, the status Particle bootloaders
// use for "Device is in protected mode" and for nothing else.
func (e *StatusError) Is(target error) bool {
	return target == ErrProtected && e.Status == StatusErrVendor
}

// FunctionalDescriptor is the DFU functional descriptor (DFU 1.1 §4.1.3): what the device
// can do and how big its download blocks are.
type FunctionalDescriptor struct {
	Attributes    uint8
	DetachTimeout uint16 // ms
	TransferSize  uint16 // wTransferSize: the block size DfuSe block numbers count in
	DFUVersion    uint16 // bcdDFUVersion; 0x011A = DfuSe
}

// Attribute bits of FunctionalDescriptor.Attributes.
const (
	AttrCanDnload             uint8 = 1 << 0
	AttrCanUpload             uint8 = 1 << 1
	AttrManifestationTolerant uint8 = 1 << 2
	AttrWillDetach            uint8 = 1 << 3
)

// IsDfuSe reports whether the device speaks ST's DfuSe extensions (bcdDFUVersion 1.1a).
func (f FunctionalDescriptor) IsDfuSe() bool { return f.DFUVersion == 0x011A }

// ParseFunctionalDescriptor reads a DFU functional descriptor, either on its own or inside a
// blob of concatenated descriptors (a configuration descriptor, or the "extra" bytes libusb
// and gousb attach to an interface), which is where hosts actually find it. A 7-byte DFU 1.0
// descriptor (no bcdDFUVersion) is accepted and reported as version 0x0100.
func ParseFunctionalDescriptor(b []byte) (FunctionalDescriptor, error) {
	for i := 0; i+2 <= len(b); {
		l := int(b[i])
		if l < 2 {
			return FunctionalDescriptor{}, fmt.Errorf("%w: descriptor at offset %d has bLength %d", ErrProtocol, i, l)
		}
		if b[i+1] == FunctionalDescriptorType && l >= 7 && i+7 <= len(b) {
			d := b[i:min(i+l, len(b))]
			f := FunctionalDescriptor{
				Attributes:    d[2],
				DetachTimeout: uint16(d[3]) | uint16(d[4])<<8,
				TransferSize:  uint16(d[5]) | uint16(d[6])<<8,
				DFUVersion:    0x0100,
			}
			if len(d) >= 9 {
				f.DFUVersion = uint16(d[7]) | uint16(d[8])<<8
			}
			return f, nil
		}
		i += l
	}
	return FunctionalDescriptor{}, fmt.Errorf("%w: no DFU functional descriptor (type 0x21) in %d bytes", ErrProtocol, len(b))
}

// isStall recognises a STALL from any Controller: our sentinel, or gousb/libusb's
// "pipe error" text (LIBUSB_ERROR_PIPE), which is how libusb reports a STALL.
func isStall(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrStall) {
		return true
	}
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "pipe error") || strings.Contains(s, "stall")
}

// isNoDevice recognises a vanished device: our sentinel or libusb's LIBUSB_ERROR_NO_DEVICE.
func isNoDevice(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrNoDevice) {
		return true
	}
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "no device") || strings.Contains(s, "no such device")
}
