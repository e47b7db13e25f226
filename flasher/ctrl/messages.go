package ctrl

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// The request and reply payloads are proto3 messages from device-os-protobuf
// (package particle.ctrl). They are encoded here by hand: the messages are
// tiny and fixed, and hand encoding keeps the exact bytes visible in tests.
// Like nanopb on the device, encoders leave out proto3 fields that hold their
// zero value; decoders skip unknown fields, so newer firmware that adds
// fields still parses.

// Mode is what GetDeviceModeReply reports (particle.ctrl.DeviceMode).
type Mode int32

// Device modes.
const (
	ModeNormal    Mode = 0
	ModeListening Mode = 1
)

// String names the mode for logs and UIs.
func (m Mode) String() string {
	switch m {
	case ModeNormal:
		return "normal"
	case ModeListening:
		return "listening"
	}
	return fmt.Sprintf("mode(%d)", int32(m))
}

// File formats of StartFirmwareUpdateRequest (particle.ctrl.FileFormat).
// Device OS accepts only FormatBIN over USB since 3.x; MINIZ was Gen2 only.
const (
	FormatBIN   uint32 = 0
	FormatMiniz uint32 = 1
)

// field is one decoded protobuf field; u holds varint/fixed values, b holds
// length-delimited contents (a sub-slice of the input, not a copy).
type field struct {
	num protowire.Number
	typ protowire.Type
	u   uint64
	b   []byte
}

// parseFields walks a message, calling fn for every field; malformed input is
// an ErrProtocol error naming the message so logs show which reply was bad.
func parseFields(msg string, b []byte, fn func(f field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %s: bad tag: %w", ErrProtocol, msg, protowire.ParseError(n))
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.u, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.u = uint64(v)
		case protowire.Fixed64Type:
			f.u, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		case protowire.StartGroupType:
			_, n = protowire.ConsumeGroup(num, b)
		default:
			return fmt.Errorf("%w: %s: field %d has unsupported wire type %d", ErrProtocol, msg, num, typ)
		}
		if n < 0 {
			return fmt.Errorf("%w: %s: field %d: %w", ErrProtocol, msg, num, protowire.ParseError(n))
		}
		b = b[n:]
		if typ == protowire.StartGroupType {
			continue
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

func (f field) want(msg string, typ protowire.Type) error {
	if f.typ != typ {
		return fmt.Errorf("%w: %s: field %d has wire type %d, want %d", ErrProtocol, msg, f.num, f.typ, typ)
	}
	return nil
}

func (f field) uint32(msg string) (uint32, error) {
	if err := f.want(msg, protowire.VarintType); err != nil {
		return 0, err
	}
	return uint32(f.u), nil
}

func (f field) fixed32(msg string) (uint32, error) {
	if err := f.want(msg, protowire.Fixed32Type); err != nil {
		return 0, err
	}
	return uint32(f.u), nil
}

func (f field) bytes(msg string) ([]byte, error) {
	if err := f.want(msg, protowire.BytesType); err != nil {
		return nil, err
	}
	return f.b, nil
}

func appendUint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendFixed32(b []byte, num protowire.Number, v uint32) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, v)
}

// appendBytes writes a length-delimited field; implicit-presence fields
// (always=false) are left out when empty.
func appendBytes(b []byte, num protowire.Number, v []byte, always bool) []byte {
	if len(v) == 0 && !always {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// singleString decodes the one-string-field replies (GetDeviceIdReply,
// GetSystemVersionReply: `string x = 1`).
func singleString(msg string, b []byte) (string, error) {
	var s string
	err := parseFields(msg, b, func(f field) error {
		if f.num != 1 {
			return nil
		}
		v, err := f.bytes(msg)
		s = string(v)
		return err
	})
	return s, err
}

// singleUint decodes `uint32/enum/bool x = 1` messages.
func singleUint(msg string, b []byte) (uint32, error) {
	var u uint32
	err := parseFields(msg, b, func(f field) error {
		if f.num != 1 {
			return nil
		}
		v, err := f.uint32(msg)
		u = v
		return err
	})
	return u, err
}

// EncodeDeviceIDReply builds GetDeviceIdReply{string id = 1} (type 20).
func EncodeDeviceIDReply(id string) []byte { return appendBytes(nil, 1, []byte(id), false) }

// DecodeDeviceIDReply reads GetDeviceIdReply.
func DecodeDeviceIDReply(b []byte) (string, error) { return singleString("GetDeviceIdReply", b) }

// EncodeSystemVersionReply builds GetSystemVersionReply{string version = 1} (type 30).
func EncodeSystemVersionReply(v string) []byte { return appendBytes(nil, 1, []byte(v), false) }

// DecodeSystemVersionReply reads GetSystemVersionReply.
func DecodeSystemVersionReply(b []byte) (string, error) {
	return singleString("GetSystemVersionReply", b)
}

// NCPVersion is GetNcpFirmwareVersionReply (type 31): the NCP firmware's version string
// (from the ESP32's AT+CGMR) and its module version (AT+MVER), as Device OS reports it
// (proto/control/config.proto; system/src/control/config.cpp getNcpFirmwareVersion).
type NCPVersion struct {
	Version       string
	ModuleVersion uint32
}

// EncodeNCPVersionReply builds GetNcpFirmwareVersionReply{string version = 1; uint32
// module_version = 2}.
func EncodeNCPVersionReply(v NCPVersion) []byte {
	return appendUint(appendBytes(nil, 1, []byte(v.Version), false), 2, uint64(v.ModuleVersion))
}

// DecodeNCPVersionReply reads GetNcpFirmwareVersionReply.
func DecodeNCPVersionReply(b []byte) (NCPVersion, error) {
	const msg = "GetNcpFirmwareVersionReply"
	var v NCPVersion
	err := parseFields(msg, b, func(f field) error {
		switch f.num {
		case 1:
			if err := f.want(msg, protowire.BytesType); err != nil {
				return err
			}
			v.Version = string(f.b)
		case 2:
			u, err := f.uint32(msg)
			if err != nil {
				return err
			}
			v.ModuleVersion = u
		}
		return nil
	})
	return v, err
}

// EncodeDeviceModeReply builds GetDeviceModeReply{DeviceMode mode = 1} (type 72).
func EncodeDeviceModeReply(m Mode) []byte { return appendUint(nil, 1, uint64(uint32(m))) }

// DecodeDeviceModeReply reads GetDeviceModeReply.
func DecodeDeviceModeReply(b []byte) (Mode, error) {
	u, err := singleUint("GetDeviceModeReply", b)
	return Mode(int32(u)), err
}

// EncodeStartFirmwareUpdate builds StartFirmwareUpdateRequest{uint32 size = 1;
// FileFormat format = 2} (type 250).
func EncodeStartFirmwareUpdate(size, format uint32) []byte {
	b := appendUint(nil, 1, uint64(size))
	return appendUint(b, 2, uint64(format))
}

// DecodeStartFirmwareUpdate reads StartFirmwareUpdateRequest.
func DecodeStartFirmwareUpdate(b []byte) (size, format uint32, err error) {
	const msg = "StartFirmwareUpdateRequest"
	err = parseFields(msg, b, func(f field) error {
		var err error
		switch f.num {
		case 1:
			size, err = f.uint32(msg)
		case 2:
			format, err = f.uint32(msg)
		}
		return err
	})
	return size, format, err
}

// EncodeStartFirmwareUpdateReply builds StartFirmwareUpdateReply{uint32 chunk_size = 1}.
func EncodeStartFirmwareUpdateReply(chunk uint32) []byte { return appendUint(nil, 1, uint64(chunk)) }

// DecodeStartFirmwareUpdateReply reads StartFirmwareUpdateReply.
func DecodeStartFirmwareUpdateReply(b []byte) (chunk uint32, err error) {
	return singleUint("StartFirmwareUpdateReply", b)
}

// EncodeFirmwareUpdateData builds FirmwareUpdateDataRequest{bytes data = 1} (type 253).
func EncodeFirmwareUpdateData(data []byte) []byte { return appendBytes(nil, 1, data, false) }

// DecodeFirmwareUpdateData reads FirmwareUpdateDataRequest; the returned slice
// aliases b.
func DecodeFirmwareUpdateData(b []byte) ([]byte, error) {
	const msg = "FirmwareUpdateDataRequest"
	var data []byte
	err := parseFields(msg, b, func(f field) error {
		if f.num != 1 {
			return nil
		}
		v, err := f.bytes(msg)
		data = v
		return err
	})
	return data, err
}

// EncodeFinishFirmwareUpdate builds FinishFirmwareUpdateRequest{bool
// validate_only = 1} (type 251). validate_only=false is the empty message.
func EncodeFinishFirmwareUpdate(validateOnly bool) []byte {
	if !validateOnly {
		return nil
	}
	return appendUint(nil, 1, 1)
}

// DecodeFinishFirmwareUpdate reads FinishFirmwareUpdateRequest.
func DecodeFinishFirmwareUpdate(b []byte) (validateOnly bool, err error) {
	u, err := singleUint("FinishFirmwareUpdateRequest", b)
	return u != 0, err
}
