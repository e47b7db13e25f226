package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/assets"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
)

// A device the OS refuses to open (LIBUSB_ERROR_ACCESS, what Linux does without the udev
// rule): doctor must name the permission problem and give the fix, and exit with 4.
func TestDoctorNamesPermissionProblem(t *testing.T) {
	if usbsim.InChild(t.Name()) {
		code, out, errOut := runPflash(t, "doctor", "--json", "--cache-dir", t.TempDir())
		assert.Equal(t, exitAccess, code, "stderr: %s", errOut)
		checks := decodeLines[map[string]any](t, out)
		var found map[string]any
		for _, c := range checks {
			if c["check"] == "usb device" && c["ok"] == false {
				found = c
			}
		}
		require.NotNil(t, found, "no failed usb device check in:\n%s", out)
		assert.Contains(t, found["problem"], "permission denied")
		assert.Contains(t, found["problem"], "Boron")
		fix, _ := found["fix"].(string)
		assert.Contains(t, fix, "ID_MM_DEVICE_IGNORE")
		assert.Contains(t, fix, assets.UdevInstallCommand)

		// The human form says the same in words.
		code, out, _ = runPflash(t, "doctor", "--cache-dir", t.TempDir())
		assert.Equal(t, exitAccess, code)
		assert.Contains(t, out, "PROBLEM  usb device       permission denied opening the")
		assert.Contains(t, out, "fix: ")
		return
	}
	f, err := sim.NewFleet(sim.FleetOptions{ShimDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	p := listPlatform(t, "boron")
	d, err := f.Add(sim.Options{Platform: p, Modules: listBoron410(t), NoSerial: true})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = d.WaitReady(ctx)
	require.NoError(t, err)
	d.RefuseOpen(true)

	cmd := f.Server().TestCommand(t.Name(), "-test.v", "-test.timeout=60s")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child failed:\n%s", out)
	require.True(t, strings.Contains(string(out), "--- PASS: "+t.Name()), "child ran no test:\n%s", out)
}

// With nothing attached and a healthy cache, every device-side check passes.
func TestDoctorJSONHealthyCache(t *testing.T) {
	dir := t.TempDir()
	code, out, _ := runPflash(t, "doctor", "--json", "--cache-dir", dir)
	checks := decodeLines[map[string]any](t, out)
	require.NotEmpty(t, checks)
	for _, c := range checks {
		assert.Contains(t, c, "check")
		assert.Contains(t, c, "ok")
		if c["check"] == "firmware cache" || c["check"] == "usb devices" {
			assert.Equal(t, true, c["ok"], "%v", c)
		}
		if c["ok"] == false {
			assert.NotEmpty(t, c["fix"], "a problem without a fix: %v", c)
		}
	}
	assert.Contains(t, []int{exitOK, exitFailed, exitAccess}, code)
}
