//go:build !windows

// gousb (libusb) has no Windows build here: Windows reaches devices through flasher/usb's WinUSB backend.

package sim_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/gousb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
)

// gousbDevice is what the re-executed child saw of one device through gousb.
type gousbDevice struct {
	VID, PID     int
	Manufacturer string
	Product      string
	Serial       string
	Alts         []string
}

const gousbMarker = "GOUSB-RESULT "

// The real gousb v1.1.3, in a test process re-executed with the libusb shim on
// LD_LIBRARY_PATH, enumerates two virtual devices at once and reads their strings.
func TestGousbEnumeratesTwoDevices(t *testing.T) {
	if usbsim.InChild(t.Name()) {
		gousbChild(t)
		return
	}
	f := newFleet(t)
	boron, err := f.Add(sim.Options{Platform: plat(t, "boron"), Blank: true, NoSerial: true})
	require.NoError(t, err)
	photon, err := f.Add(sim.Options{Platform: plat(t, "photon"), Blank: true, NoSerial: true})
	require.NoError(t, err)

	cmd := f.Server().TestCommand(t.Name(), "-test.v")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	var got []gousbDevice
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), gousbMarker); ok {
			require.NoError(t, json.Unmarshal([]byte(rest), &got))
		}
	}
	require.Len(t, got, 2, "%s", out)
	bySerial := map[string]gousbDevice{}
	for _, g := range got {
		bySerial[g.Serial] = g
	}
	for _, d := range []*sim.Device{boron, photon} {
		g, ok := bySerial[d.ID()]
		require.True(t, ok, "device %s not enumerated: %+v", d.ID(), got)
		p := d.Platform()
		assert.Equal(t, int(p.DFUVID), g.VID)
		assert.Equal(t, int(p.DFUPID), g.PID)
		assert.Equal(t, "Particle", g.Manufacturer)
		assert.Equal(t, p.DisplayName+" DFU Mode", g.Product)
		var want []string
		for _, a := range p.Alts {
			want = append(want, a.Layout)
		}
		assert.Equal(t, want, g.Alts)
	}
}

func gousbChild(t *testing.T) {
	c := gousb.NewContext()
	defer c.Close()
	devs, err := c.OpenDevices(func(desc *gousb.DeviceDesc) bool { return desc.Vendor == 0x2b04 })
	require.NoError(t, err)
	var out []gousbDevice
	for _, d := range devs {
		d.ControlTimeout = 5 * time.Second
		g := gousbDevice{VID: int(d.Desc.Vendor), PID: int(d.Desc.Product)}
		g.Manufacturer, err = d.Manufacturer()
		require.NoError(t, err)
		g.Product, err = d.Product()
		require.NoError(t, err)
		g.Serial, err = d.SerialNumber()
		require.NoError(t, err)
		for _, cfg := range d.Desc.Configs {
			for _, intf := range cfg.Interfaces {
				for _, alt := range intf.AltSettings {
					name, err := d.InterfaceDescription(cfg.Number, intf.Number, alt.Alternate)
					require.NoError(t, err)
					g.Alts = append(g.Alts, name)
				}
			}
		}
		out = append(out, g)
		require.NoError(t, d.Close())
	}
	b, err := json.Marshal(out)
	require.NoError(t, err)
	fmt.Fprintln(os.Stdout, gousbMarker+string(b))
}
