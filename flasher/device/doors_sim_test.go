package device_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/listen"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/serialport"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
	"github.com/particle-flasher/particle-flasher/flasher/state"
	"github.com/particle-flasher/particle-flasher/flasher/usb"
)

// TestRealDoorsAgainstSims runs the production doors (gousb through the libusb shim, and
// go.bug.st/serial on the sims' ptys) over three Borons with the same real 4.1.0 set, one
// in each mode, and checks that a scan tells their modes and doors apart and reads the same
// modules from each: control request 90, `s`, and flash over DFU.
func TestRealDoorsAgainstSims(t *testing.T) {
	p, _ := platform.ByName("boron")
	if usbsim.InChild(t.Name()) {
		env := strings.Split(os.Getenv("PFLASH_TEST_DEVICES"), ",") // id=pty pairs, then the DFU id
		require.Len(t, env, 3)
		var ports []serialport.PortInfo
		ids := map[string]string{}
		for i, kv := range env[:2] {
			id, pty, _ := strings.Cut(kv, "=")
			ports = append(ports, serialport.PortInfo{Path: pty, VID: p.VID, PID: p.PID, Serial: id})
			ids[id] = []string{"normal", "listening"}[i]
		}
		ids[env[2]] = "dfu"

		h, err := usb.NewHost()
		require.NoError(t, err)
		defer func() { assert.NoError(t, h.Close()) }()
		doors := []device.Door{
			&device.USB{Host: h},
			&device.SerialDoor{ListPorts: func() ([]serialport.PortInfo, error) { return ports, nil },
				Console: listen.Options{Quiet: 50 * time.Millisecond}},
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		res, err := device.Scan(ctx, device.Options{Doors: doors})
		require.NoError(t, err)
		require.Empty(t, res.Warnings)
		require.Len(t, res.Devices, 3)
		var want []summary
		for _, d := range res.Devices {
			mode := ids[d.ID]
			require.NotEmpty(t, mode, "unexpected device %v", d)
			wantMode, _ := state.ParseMode(mode)
			assert.Equal(t, wantMode, d.Mode, d.ID)
			assert.Same(t, p, d.Platform)
			require.NoError(t, d.ModulesErr, d.ID)
			src := map[string]string{"normal": state.SourceControl, "listening": state.SourceSerial, "dfu": state.SourceDFU}[mode]
			for _, m := range d.Modules {
				assert.Equal(t, src, m.Source)
			}
			if mode == "dfu" {
				assert.Equal(t, []string{"usb"}, d.DoorNames())
			} else {
				assert.Equal(t, []string{"usb", "serial"}, d.DoorNames())
			}
			got := summarise(p, d.Modules)
			require.NotEmpty(t, got)
			if want == nil {
				want = got
			}
			assert.Equal(t, want, got, "%s mode", mode)
		}
		return
	}
	rs := releaseSets[3]
	_, bins := rs.load(t)
	f, err := sim.NewFleet(sim.FleetOptions{ShimDir: filepath.Join(t.TempDir(), "shim")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	var env []string
	for _, m := range []sim.Mode{sim.ModeNormal, sim.ModeListening} {
		d, err := f.Add(sim.Options{Platform: p, Modules: bins, Mode: m})
		require.NoError(t, err)
		require.NotEmpty(t, d.SerialPath())
		env = append(env, d.ID()+"="+d.SerialPath())
	}
	d, err := f.Add(sim.Options{Platform: p, Modules: bins, Mode: sim.ModeDFU})
	require.NoError(t, err)
	env = append(env, d.ID())
	cmd := f.Server().TestCommand(t.Name(), "-test.v", "-test.timeout=90s")
	cmd.Env = append(cmd.Env, "PFLASH_TEST_DEVICES="+strings.Join(env, ","))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "--- PASS")
}
