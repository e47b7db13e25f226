package sim_test

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
)

// luhnOK checks an IMEI's or ICCID's check digit (ISO/IEC 7812-1), written here apart
// from the sim's own.
func luhnOK(s string) bool {
	sum, double := 0, false
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

var (
	reSerial = regexp.MustCompile(`^[A-Z0-9]{4}[A-Z]{2}[0-9][0-5][0-9][0-9A-F]{6}$`)
	reICCID  = regexp.MustCompile(`^89[0-9]{17,18}$`)
	reIMEI   = regexp.MustCompile(`^[0-9]{15}$`)
)

// Every virtual unit answers request 21 with a serial number in Particle's shape; cellular
// Gen3 units answer 554 with an ICCID (and, from Device OS 5.8.0, a valid IMEI); Wi-Fi
// units and the Gen2 Electron answer "not supported", as Device OS does. All of it is
// stable per device ID.
func TestIdentityRequests(t *testing.T) {
	for _, tc := range []struct {
		platform, version string
		iccid, imei       bool
	}{
		{"boron", "4.1.0", true, false},
		{"boron", "6.2.0", true, true},
		{"argon", "4.1.0", false, false},
		{"msom", "6.2.0", true, true},
		{"p2", "5.6.0", false, false},
		{"electron", "2.3.1", false, false},
	} {
		t.Run(tc.platform+" "+tc.version, func(t *testing.T) {
			p := plat(t, tc.platform)
			mods, err := sim.SyntheticSet(p, tc.version)
			require.NoError(t, err)
			id := "e00fd1e0123456789abcdef0"
			d := newDevice(t, sim.Options{Platform: p, Modules: mods, NoSerial: true, DeviceID: id})
			c := client(d)
			sn, err := c.SerialNumber(ctx(t))
			require.NoError(t, err)
			assert.Regexp(t, reSerial, sn)
			assert.Len(t, sn, ctrl.SerialNumberLen)
			ci, err := c.CellularInfo(ctx(t))
			if !tc.iccid {
				assert.True(t, ctrl.NotSupported(err), "%v", err)
				return
			}
			require.NoError(t, err)
			assert.Regexp(t, reICCID, ci.ICCID)
			assert.True(t, luhnOK(ci.ICCID), ci.ICCID)
			if !tc.imei {
				assert.Empty(t, ci.IMEI, "the IMEI joined the reply in 5.8.0")
			} else {
				assert.Regexp(t, reIMEI, ci.IMEI)
				assert.True(t, luhnOK(ci.IMEI), ci.IMEI)
			}
			// The same device ID on another boot (another process) is the same unit.
			again := sim.IdentityOf(id, tc.platform)
			assert.Equal(t, sn, again.Serial)
			assert.Equal(t, ci.ICCID, again.ICCID)
		})
	}
	a, b := sim.IdentityOf("e00fd1e0123456789abcdef0", "boron"), sim.IdentityOf("e00fd1e0123456789abcdef1", "boron")
	assert.NotEqual(t, a.Serial, b.Serial)
	assert.NotEqual(t, a.ICCID, b.ICCID)
	assert.NotEqual(t, a.IMEI, b.IMEI)
}
