// Package ctrl speaks the Particle USB control-request protocol: the vendor
// control transfers (INIT, CHECK, SEND, RECV, RESET) that Device OS serves in
// normal, listening and safe mode, and the handful of requests the flasher
// needs (device ID, version, mode, reset into DFU/safe/listening mode, module
// info, firmware update).
//
// Facts come from particle-usb (src/usb-protocol.js, src/device-base.js,
// src/device.js, src/result.js) for the host side, from Device OS
// (system/src/usb_control_request_channel.cpp, system/inc/system_control.h,
// system/src/control/storage.cpp) for the device side, and from
// device-os-protobuf (control/config.proto, control/storage.proto,
// cloud/describe.proto) for the message layouts. The protobuf messages are
// encoded by hand with protowire so the product carries no generated code;
// the encoders are exported because the virtual device (sim/ctrldev and its
// users) must produce byte-identical replies.
package ctrl

import (
	"encoding/binary"
	"fmt"
)

// USB setup-packet values used by the protocol. Every request goes to the
// device recipient on the default control pipe as a vendor request.
const (
	// RequestTypeIn is bmRequestType for device-to-host vendor requests
	// (INIT, CHECK, RECV, RESET and the legacy IN requests).
	RequestTypeIn uint8 = 0xC0
	// RequestTypeOut is bmRequestType for host-to-device vendor requests
	// (SEND and the legacy OUT requests).
	RequestTypeOut uint8 = 0x40
)

// Service requests (bRequest). Device OS reserves bRequest 0x01–0x0f for the
// protocol and treats 0x50 as a "raw" vendor request answered from the ISR.
const (
	ServiceInit  uint8 = 1
	ServiceCheck uint8 = 2
	ServiceSend  uint8 = 3
	ServiceRecv  uint8 = 4
	ServiceReset uint8 = 5
	// LegacyRequest ('P') carries the request type in wIndex and is answered
	// synchronously; it works even where the protocol is busy or missing
	// (particle-usb reads the system version this way on open).
	LegacyRequest uint8 = 0x50
)

// Transfer sizes.
const (
	// MinWLength is the data stage INIT/CHECK/RESET must offer; Device OS
	// stalls those requests when wLength is smaller (high-speed minimum).
	MinWLength = 64
	// MaxTransfer is the largest data stage particle-usb puts in one control
	// transfer (Linux usbfs refuses bigger ones), so SEND/RECV go in chunks.
	MaxTransfer = 4096
	// MaxPayload is the largest request payload: INIT carries it in wValue.
	MaxPayload = 0xFFFF
	// maxReplySize bounds what the client will allocate for a reply, so a
	// garbled size field cannot make it allocate gigabytes.
	maxReplySize = 1 << 20
)

// Status is the protocol-level status of a service reply; it says how the
// transport is doing, not how the request went (that is the result code).
type Status uint16

// Service reply status codes.
const (
	StatusOK       Status = 0
	StatusError    Status = 1
	StatusPending  Status = 2
	StatusBusy     Status = 3
	StatusNoMemory Status = 4
	StatusNotFound Status = 5
)

var statusNames = [...]string{"OK", "ERROR", "PENDING", "BUSY", "NO_MEMORY", "NOT_FOUND"}

// String names the status as the protocol sources do, so logs match them.
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint16(s))
}

// Field flags of a service reply: which optional fields follow the status.
const (
	FlagStatus uint32 = 0x01
	FlagID     uint32 = 0x02
	FlagSize   uint32 = 0x04
	FlagResult uint32 = 0x08
)

// ServiceReply is the small little-endian record the device returns to INIT,
// CHECK and RESET. The Has* fields record which optional fields were present,
// because absence carries meaning (a CHECK without SIZE has no reply payload).
type ServiceReply struct {
	Status    Status
	ID        uint16
	HasID     bool
	Size      uint32
	HasSize   bool
	Result    int32
	HasResult bool
}

// Encode lays the reply out as Device OS does: u32 flags, u16 status, then
// u16 id, u32 size and i32 result when present, in that order.
func (r ServiceReply) Encode() []byte {
	flags := FlagStatus
	b := make([]byte, 6, 16)
	binary.LittleEndian.PutUint16(b[4:], uint16(r.Status))
	if r.HasID {
		flags |= FlagID
		b = binary.LittleEndian.AppendUint16(b, r.ID)
	}
	if r.HasSize {
		flags |= FlagSize
		b = binary.LittleEndian.AppendUint32(b, r.Size)
	}
	if r.HasResult {
		flags |= FlagResult
		b = binary.LittleEndian.AppendUint32(b, uint32(r.Result))
	}
	binary.LittleEndian.PutUint32(b, flags)
	return b
}

// ParseServiceReply decodes a service reply; a short or flag-less record is
// an ErrProtocol error rather than a guess, since acting on a garbled status
// could send firmware data into the wrong request.
func ParseServiceReply(b []byte) (ServiceReply, error) {
	var r ServiceReply
	if len(b) < 6 {
		return r, fmt.Errorf("%w: service reply is %d bytes, need at least 6", ErrProtocol, len(b))
	}
	flags := binary.LittleEndian.Uint32(b)
	if flags&FlagStatus == 0 {
		return r, fmt.Errorf("%w: service reply has no status field (flags %#x)", ErrProtocol, flags)
	}
	r.Status = Status(binary.LittleEndian.Uint16(b[4:]))
	b = b[6:]
	if flags&FlagID != 0 {
		if len(b) < 2 {
			return r, fmt.Errorf("%w: service reply truncated in the id field", ErrProtocol)
		}
		r.ID, r.HasID = binary.LittleEndian.Uint16(b), true
		b = b[2:]
	}
	if flags&FlagSize != 0 {
		if len(b) < 4 {
			return r, fmt.Errorf("%w: service reply truncated in the size field", ErrProtocol)
		}
		r.Size, r.HasSize = binary.LittleEndian.Uint32(b), true
		b = b[4:]
	}
	if flags&FlagResult != 0 {
		if len(b) < 4 {
			return r, fmt.Errorf("%w: service reply truncated in the result field", ErrProtocol)
		}
		r.Result, r.HasResult = int32(binary.LittleEndian.Uint32(b)), true
	}
	return r, nil
}

// RequestType is a control request type (Device OS ctrl_request_type).
type RequestType = uint16

// Request types used by the flasher and the virtual device
// (system/inc/system_control.h; particle-usb src/request.js).
const (
	ReqEcho                 RequestType = 1
	ReqAppCustom            RequestType = 10
	ReqDeviceID             RequestType = 20
	ReqSerialNumber         RequestType = 21
	ReqSystemVersion        RequestType = 30
	ReqNCPFirmwareVersion   RequestType = 31
	ReqGetSystemCaps        RequestType = 32
	ReqReset                RequestType = 40
	ReqFactoryReset         RequestType = 41
	ReqDFUMode              RequestType = 50
	ReqSafeMode             RequestType = 60
	ReqStartListening       RequestType = 70
	ReqStopListening        RequestType = 71
	ReqGetDeviceMode        RequestType = 72
	ReqGetModuleInfo        RequestType = 90
	ReqStartFirmwareUpdate  RequestType = 250
	ReqFinishFirmwareUpdate RequestType = 251
	ReqCancelFirmwareUpdate RequestType = 252
	ReqFirmwareUpdateData   RequestType = 253
	ReqCloudDisconnect      RequestType = 302
)
