package sim

import (
	"crypto/sha256"
	"fmt"
	"strings"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
)

// Identity is who a virtual unit is beyond its device ID: the serial number Particle
// writes to OTP (eFuse on RTL872x) at manufacture and, on cellular platforms, the SIM's
// ICCID and the modem's IMEI. All are derived from the device ID, so the same ID always
// gets the same identity, across boots and processes.
type Identity struct {
	// Serial is 15 characters as Particle's manufacturing writes them (the shape
	// hal/src/rtl872x/deviceid_hal.cpp spells out: product code (4), manufacturer (2),
	// year (1), week (2), unique code (6 hex; on RTL872x the MAC's non-OUI bytes)).
	Serial string
	// ICCID (19 digits and a Luhn check digit, issuer prefix 89) and IMEI (14 digits and
	// a Luhn check digit) are empty on platforms without a modem.
	ICCID, IMEI string
}

// productCodes are the first four characters of the virtual units' serial numbers. The
// shape is Particle's; these codes are the sim's own (the real per-SKU codes are not
// published), chosen so a person can tell the platform from the sticker.
var productCodes = map[string]string{
	"photon": "PH0T", "p1": "P1MD", "electron": "ELC3", "argon": "ARNH", "boron": "BRNL",
	"xenon": "XENH", "bsom": "BSOM", "b5som": "B5SM", "tracker": "TRKR", "esomx": "ESMX",
	"p2": "P2WF", "msom": "MSOM", "trackerm": "TRKM", "electron2": "ELC2",
}

// IdentityOf is the identity of a unit with this device ID on this platform.
func IdentityOf(id, platformName string) Identity {
	id = strings.ToLower(id)
	h := sha256.Sum256([]byte("pflash-sim-identity:" + id))
	code := productCodes[platformName]
	if code == "" {
		code = strings.ToUpper(platformName + "XXXX")[:4]
	}
	// The unique part is the device ID's last six hex digits, which the sim's MAC also
	// ends with (serialModel.MAC), as an RTL872x serial ends with its MAC.
	uniq := strings.ToUpper(id[max(0, len(id)-6):])
	serial := fmt.Sprintf("%sAB%d%02d%s", code, h[0]%10, 1+int(h[1])%52, uniq)
	ident := Identity{Serial: serial}
	if cellular[platformName] {
		ident.ICCID = withLuhn("8901" + digits(h[2:], 15))
		ident.IMEI = withLuhn("35" + digits(h[10:], 12))
	}
	return ident
}

// digits turns the first n bytes into n decimal digits (len(b) >= n).
func digits(b []byte, n int) string {
	out := make([]byte, n)
	for i := range out {
		out[i] = '0' + b[i]%10
	}
	return string(out)
}

// withLuhn appends the Luhn check digit (ISO/IEC 7812-1), which IMEIs and ICCIDs carry.
func withLuhn(body string) string {
	sum := 0
	for i := len(body) - 1; i >= 0; i-- {
		d := int(body[i] - '0')
		if (len(body)-1-i)%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return body + string(rune('0'+(10-sum%10)%10))
}

// Identity is the unit's identity.
func (d *Device) Identity() Identity { return IdentityOf(d.id, d.p.Name) }

// The versions from which Device OS answers the identity requests: the serial number on
// Gen2 from 1.5.0 (particle-usb device.js getSerialNumber; Gen3 from 0.9.0, older than
// any Gen3 release the sim runs), the IMEI inside the ICCID reply from 5.8.0 (cellular.cpp
// getIccid @v5.8.0; particle-usb getCellularInfo).
const (
	serialNumberGen2Since = 1500
	imeiSince             = 5800
)

// serialNumberRequest is config.cpp's getSerialNumber.
func (d *Device) serialNumberRequest(sys uint16) (int32, []byte) {
	if d.p.Gen < 3 && sys < serialNumberGen2Since {
		return ctrl.CodeNotSupported, nil
	}
	return ctrl.CodeOK, ctrl.EncodeSerialNumberReply(d.Identity().Serial)
}

// cellularInfoRequest is cellular.cpp's getIccid: compiled only where Device OS drives
// the modem as an NCP (HAL_PLATFORM_NCP && HAL_PLATFORM_CELLULAR), so not on the Gen2
// Electron.
func (d *Device) cellularInfoRequest(sys uint16) (int32, []byte) {
	if !cellular[d.p.Name] || d.p.Gen < 3 {
		return ctrl.CodeNotSupported, nil
	}
	ident := d.Identity()
	ci := ctrl.CellularInfo{ICCID: ident.ICCID}
	if sys >= imeiSince {
		ci.IMEI = ident.IMEI
	}
	return ctrl.CodeOK, ctrl.EncodeCellularInfoReply(ci)
}
