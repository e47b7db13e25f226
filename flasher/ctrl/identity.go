package ctrl

import (
	"context"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// Who a unit is, as a factory records it: its serial number (request 21) and, on cellular
// platforms, its SIM's ICCID and its modem's IMEI (request 554). The NCP's version
// (request 31) is NCPFirmwareVersion in requests.go.
//
// Device OS: system/src/control/config.cpp getSerialNumber (every platform; the 15
// characters in OTP or eFuse, SYSTEM_ERROR_UNKNOWN when they are not printable),
// system/src/control/cellular.cpp getIccid (only where HAL_PLATFORM_NCP &&
// HAL_PLATFORM_CELLULAR, so Gen3 and later cellular platforms; the IMEI joined the reply
// in 5.8.0). Messages: device-os-protobuf control/config.proto GetSerialNumberReply{string
// serial = 1}, control/cellular.proto GetIccidReply{string iccid = 1; string imei = 2}.
// particle-usb: device.js getSerialNumber, cellular-device.js getCellularInfo.

// SerialNumberLen is the length of a Particle serial number (HAL_DEVICE_SERIAL_NUMBER_SIZE).
const SerialNumberLen = 15

// EncodeSerialNumberReply builds GetSerialNumberReply{string serial = 1} (type 21).
func EncodeSerialNumberReply(serial string) []byte {
	return appendBytes(nil, 1, []byte(serial), false)
}

// DecodeSerialNumberReply reads GetSerialNumberReply. nanopb's fixed-size string may
// carry trailing NULs; they are dropped.
func DecodeSerialNumberReply(b []byte) (string, error) {
	s, err := singleString("GetSerialNumberReply", b)
	return strings.TrimRight(s, "\x00"), err
}

// CellularInfo is GetIccidReply (type 554): the active SIM's ICCID and the modem's IMEI
// (empty before Device OS 5.8.0, which added it).
type CellularInfo struct {
	ICCID, IMEI string
}

// EncodeCellularInfoReply builds GetIccidReply{string iccid = 1; string imei = 2}.
func EncodeCellularInfoReply(ci CellularInfo) []byte {
	return appendBytes(appendBytes(nil, 1, []byte(ci.ICCID), false), 2, []byte(ci.IMEI), false)
}

// DecodeCellularInfoReply reads GetIccidReply.
func DecodeCellularInfoReply(b []byte) (CellularInfo, error) {
	const msg = "GetIccidReply"
	var ci CellularInfo
	err := parseFields(msg, b, func(f field) error {
		switch f.num {
		case 1, 2:
			if err := f.want(msg, protowire.BytesType); err != nil {
				return err
			}
			if f.num == 1 {
				ci.ICCID = string(f.b)
			} else {
				ci.IMEI = string(f.b)
			}
		}
		return nil
	})
	return ci, err
}

// SerialNumber asks for the device's serial number (type 21): Gen3 and later from Device
// OS 0.9.0, Gen2 from 1.5.0; "not supported" before, and an error (-100, unknown) on a
// unit whose serial was never provisioned.
func (c *Client) SerialNumber(ctx context.Context) (string, error) {
	reply, err := c.call(ctx, ReqSerialNumber, nil, "the serial number request")
	if err != nil {
		return "", err
	}
	return DecodeSerialNumberReply(reply)
}

// CellularInfo asks for the ICCID and IMEI (type 554). Wi-Fi platforms and the Gen2
// Electron answer "not supported" (NotSupported).
func (c *Client) CellularInfo(ctx context.Context) (CellularInfo, error) {
	reply, err := c.call(ctx, ReqCellularGetICCID, nil, "the ICCID request")
	if err != nil {
		return CellularInfo{}, err
	}
	return DecodeCellularInfoReply(reply)
}
