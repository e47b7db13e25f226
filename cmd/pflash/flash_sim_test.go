package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/device"
	frun "github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
	"github.com/particle-flasher/particle-flasher/flasher/usb"
	"github.com/particle-flasher/particle-flasher/internal/simports"
)

const flashEnvPorts, flashEnvArgs = "PFLASH_TEST_FLASH_PORTS", "PFLASH_TEST_FLASH_ARGS"

// TestFlashCommandThroughUSB runs `pflash flash --to 2.3.1 --yes --json` in a child process
// whose gousb loads the libusb shim: the real USB door, and the real serial door on the
// device's pty (a Photon on 1.5.2 is switched to DFU mode at 14400 baud), with Device OS
// resolved from a cache seeded by `pflash cache import`.
func TestFlashCommandThroughUSB(t *testing.T) {
	if usbsim.InChild(t.Name()) {
		var args []string
		require.NoError(t, json.Unmarshal([]byte(os.Getenv(flashEnvArgs)), &args))
		ports := os.Getenv(flashEnvPorts)
		flashBus = func(*globals) (device.Bus, func(), error) {
			h, err := usb.NewHost()
			if err != nil {
				return nil, nil, err
			}
			return &device.USB{Host: h, ListPorts: simports.Reader(ports)}, func() { _ = h.Close() }, nil
		}
		flashTimeouts = frun.Timeouts{Find: 20 * time.Second, EnterMode: 20 * time.Second, Reenumerate: 20 * time.Second, Settle: 5 * time.Second}
		os.Exit(flashExec(args, os.Stdout, os.Stderr))
	}
	if testing.Short() {
		t.Skip("builds the libusb shim and re-executes the test binary")
	}
	cacheDir := flashCache(t)
	f, err := sim.NewFleet(sim.FleetOptions{ShimDir: filepath.Join(t.TempDir(), "shim")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	d := flashSim(t, "photon", photon152, "photon_tinker_tinker-0.4.5-photon.bin")
	d.Attach(f.Server())
	ports := simports.New(filepath.Join(t.TempDir(), "ports.json"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ports.Follow(ctx, d)

	args, _ := json.Marshal([]string{"flash", "--to", "2.3.1", "--device", d.ID(), "--yes", "--json", "--offline",
		"--cache-dir", cacheDir, "--state-dir", t.TempDir()})
	cmd := f.Server().TestCommand(t.Name(), "-test.timeout=3m")
	cmd.Env = append(cmd.Env, flashEnvPorts+"="+ports.Path(), flashEnvArgs+"="+string(args))
	out, err := cmd.Output()
	require.NoError(t, err, "%s", out)
	lines := flashLines(t, string(out))
	last := lines[len(lines)-1]
	require.Equal(t, "done", last.Event)
	require.Equal(t, "ok", last.Result, "%s %s", last.Error, last.Remedy)
	assert.NotEmpty(t, last.Modules)
	assert.Equal(t, sim.ModeNormal, d.Mode())
	assert.Equal(t, "2.3.1", d.SystemVersion())
	for _, m := range d.Modules() {
		if m.Present && m.Store == "main" {
			assert.True(t, m.Valid(), m.Name)
		}
	}
}
