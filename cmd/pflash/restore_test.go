package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	frun "github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/state"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

const restoreArgonApp = "argon_tinker_tinker-0.8.0-rc.27-argon.bin"

// restoreArgon is an Argon whose system part is gone (erased by a failed update) and
// whose application is corrupt (one bit flipped): the bootloader finds no Device OS to
// start and stays in DFU mode, blinking yellow.
func restoreArgon(t *testing.T) *sim.Device {
	t.Helper()
	p, ok := platform.ByName("argon")
	require.True(t, ok)
	read := func(dir, name string) []byte {
		b, err := os.ReadFile(filepath.Join(testshared.Dir(t, "firmware", dir), name))
		require.NoError(t, err)
		return b
	}
	app := module.Corrupt(read("apps", restoreArgonApp), module.FlipBit, 7)
	d, err := sim.New(sim.Options{Platform: p, Mode: sim.ModeDFU, DeviceID: fmt.Sprintf("e00fce68%016x", time.Now().UnixNano()),
		Modules: [][]byte{read("releases", "argon-bootloader@4.1.0.bin"), read("releases", "argon-softdevice@4.1.0.bin"), app}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	require.Equal(t, sim.ModeDFU, d.Mode())
	var sawApp bool
	for _, m := range d.Modules() {
		if m.Name == "system-part1" {
			assert.False(t, m.Present, "system part erased")
		}
		if m.Present && m.Function == platform.FuncUser {
			sawApp = true
			assert.False(t, m.Valid(), "application corrupt")
		}
	}
	require.True(t, sawApp, "the corrupt application is in its slot")
	return d
}

func restoreAppPath(t *testing.T) string {
	return filepath.Join(testshared.Dir(t, "firmware", "apps"), restoreArgonApp)
}

// requireRestored: the device runs normally at 4.1.0 and every module in its main
// store, the application included, passes its checks.
func requireRestored(t *testing.T, d *sim.Device) {
	t.Helper()
	assert.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
	assert.Equal(t, "4.1.0", d.SystemVersion())
	var app bool
	for _, m := range d.Modules() {
		if !m.Present || m.Store != "main" {
			continue
		}
		assert.True(t, m.Valid(), "%s %d v%d", m.Name, m.Index, m.Version)
		if m.Function == platform.FuncUser {
			app = true
		}
	}
	assert.True(t, app, "an application is installed")
}

// TestRestoreBrickedArgonJSON (acceptance): an Argon stuck in DFU mode with its system
// part erased and a corrupt application is restored by `pflash restore --to 4.1.0 --yes
// --offline --json` from a cache seeded by `pflash cache import`: the first object says
// what was wrong, the run ends with an ok done event, and the device starts normally at
// 4.1.0 with every module valid. The shared releases hold no 4.1.0 Tinker for the
// Argon, so the replacement application comes from --app (the cache's Tinker is taken
// when it has one).
func TestRestoreBrickedArgonJSON(t *testing.T) {
	cacheDir := flashCache(t)
	d := restoreArgon(t)
	flashInProcess(t, d)
	code, out, errb := flashRun(t, "restore", "--to", "4.1.0", "--device", d.ID(), "--yes", "--offline", "--json",
		"--cache-dir", cacheDir, "--state-dir", t.TempDir(), "--app", restoreAppPath(t))
	require.Equal(t, 0, code, "%s\n%s", out, errb)
	lines := flashLines(t, out)
	first := lines[0]
	assert.Equal(t, "restore-diagnosis", first.Event)
	diagLine := strings.SplitN(out, "\n", 2)[0]
	assert.Contains(t, diagLine, `"mode":"dfu"`)
	assert.Contains(t, diagLine, "system-part1 is missing")
	assert.Contains(t, diagLine, "is corrupt or invalid")
	last := lines[len(lines)-1]
	assert.Equal(t, "done", last.Event)
	assert.Equal(t, "ok", last.Result, "%s %s", last.Error, last.Remedy)
	assert.NotEmpty(t, last.Modules)
	requireRestored(t, d)
}

// TestRestoreGuidesIntoDFU: nothing is attached when restore starts; it prints the
// Argon's button sequence and the LED to expect, waits, and once the device shows up in
// DFU mode it restores it and says what was wrong and what it is now.
func TestRestoreGuidesIntoDFU(t *testing.T) {
	cacheDir := flashCache(t)
	d := restoreArgon(t)
	flashInProcess(t)
	doors := demo.New(true) // an empty bus
	flashBus = func(*globals) (device.Bus, func(), error) { return doors, func() {}, nil }

	var stdout, stderr syncBuffer
	codec := make(chan int, 1)
	go func() {
		codec <- run([]string{"restore", "--to", "4.1.0", "--platform", "argon", "--yes", "--offline", "--wait", "20s",
			"--cache-dir", cacheDir, "--state-dir", t.TempDir(), "--app", restoreAppPath(t)}, &stdout, &stderr)
	}()
	require.True(t, waitFor(10*time.Second, func() bool { return strings.Contains(stdout.String(), "blinking yellow") }),
		"no guidance:\n%s\n%s", stdout.String(), stderr.String())
	guide := stdout.String()
	assert.Contains(t, guide, "No device answers.")
	assert.Contains(t, guide, "Hold down MODE, tap RESET, and keep holding MODE while the LED blinks magenta; release MODE as soon as it blinks yellow")
	assert.Contains(t, guide, "LED: blinking yellow. Your Argon should now blink yellow.")
	assert.Contains(t, guide, "Waiting for the device in DFU mode (up to 20s)")

	doors.Add(d) // the person got it into DFU mode
	var code int
	select {
	case code = <-codec:
	case <-time.After(60 * time.Second):
		t.Fatal("restore did not finish")
	}
	out := stdout.String()
	require.Equal(t, 0, code, "%s\n%s", out, stderr.String())
	assert.Contains(t, out, "Found "+d.ID()+" (Argon, DFU mode).")
	assert.Contains(t, out, "The Argon is in DFU mode (blinking yellow); what keeps it from starting normally:")
	assert.Contains(t, out, "  - system-part1 is missing")
	assert.Contains(t, out, "Done: the device is at the target, verified.")
	assert.NotContains(t, out, shortID(d.ID())+" [1/", "one device: lines are not prefixed")
	assert.Regexp(t, `Before: DFU mode \(blinking yellow\); .*system-part1 is missing`, out)
	assert.Regexp(t, `Now: normal mode, Device OS 4.1.0, all \d+ modules intact, verified.`, out)
	requireRestored(t, d)
}

// TestRestoreWaitTimesOut: no device within --wait ends with exit 3, the cause and what
// to do; without --platform the generic sequence names the boards that differ.
func TestRestoreWaitTimesOut(t *testing.T) {
	flashInProcess(t)
	t.Run("human", func(t *testing.T) {
		code, out, errb := flashRun(t, "restore", "--to", "4.1.0", "--wait", "300ms", "--offline", "--cache-dir", t.TempDir(),
			"--state-dir", t.TempDir(), "--yes")
		assert.Equal(t, exitNoDevice, code)
		assert.Contains(t, out, "Hold down MODE, tap RESET")
		assert.Contains(t, out, `the Photon calls MODE "SETUP"`)
		assert.Contains(t, out, "Give --platform NAME")
		assert.Contains(t, errb, "pflash: no Particle device appeared within 300ms")
		assert.Contains(t, errb, "What to do: Check the USB cable")
	})
	t.Run("json", func(t *testing.T) {
		code, out, _ := flashRun(t, "restore", "--to", "4.1.0", "--device", "0123456789abcdef01234567", "--wait", "300ms",
			"--offline", "--cache-dir", t.TempDir(), "--state-dir", t.TempDir(), "--yes", "--json")
		assert.Equal(t, exitNoDevice, code)
		lines := flashLines(t, out)
		assert.Equal(t, "waiting", lines[0].Event)
		require.NotNil(t, lines[0].LED)
		assert.Equal(t, "blinking yellow", lines[0].LED.Expect)
		last := lines[len(lines)-1]
		assert.Equal(t, "done", last.Event)
		assert.Equal(t, "failed", last.Result)
		assert.Contains(t, last.Error, "the device 0123456789abcdef01234567 did not appear")
		assert.Contains(t, last.Remedy, "run the same command again")
	})
}

// TestRestoreGuidanceFromJournal: without --platform, the journal an earlier run left for
// the device ID says what board it is, so the guidance uses the board's own button names
// (the Photon's MODE button is labelled SETUP).
func TestRestoreGuidanceFromJournal(t *testing.T) {
	flashInProcess(t)
	state := t.TempDir()
	const id = "0123456789abcdef01234567"
	require.NoError(t, (&frun.Store{Dir: state}).Save(&frun.Journal{DeviceID: id, Platform: "photon", Target: "2.3.1",
		Started: time.Now(), Updated: time.Now(), Runs: 1, Status: frun.JournalFailed}))
	code, out, errb := flashRun(t, "restore", "--to", "2.3.1", "--device", id, "--wait", "200ms", "--state-dir", state, "--yes")
	assert.Equal(t, exitNoDevice, code)
	assert.Contains(t, out, "Hold down SETUP, tap RESET")
	assert.Contains(t, out, "Your Photon should now blink yellow.")
	assert.NotContains(t, out, "Boards differ", "the board is known")
	assert.Contains(t, errb, "What to do: ")
}

// restoreMuteDoors are the doors onto a device whose Device OS does not answer (a broken
// application that hangs USB): it is listed, but only the DFU bootloader can be opened,
// until the device has been in DFU mode (where the application gets rewritten).
type restoreMuteDoors struct {
	*demo.Bus
	cured atomic.Bool
}

func (m *restoreMuteDoors) Find(ctx context.Context, id string) (device.Link, error) {
	l, err := m.Bus.Find(ctx, id)
	if err != nil {
		return nil, err
	}
	if l.Mode() == state.ModeDFU {
		m.cured.Store(true)
	} else if !m.cured.Load() {
		_ = l.Close()
		return nil, errors.New("control request timed out")
	}
	return l, nil
}

// TestRestoreDeviceThatDoesNotAnswer: an Argon that is attached but whose Device OS does
// not answer is not given up on: restore says so, guides the person into DFU mode (the
// bootloader does not depend on Device OS), and restores the device once it is there.
func TestRestoreDeviceThatDoesNotAnswer(t *testing.T) {
	p, ok := platform.ByName("argon")
	require.True(t, ok)
	read := func(dir, name string) []byte {
		b, err := os.ReadFile(filepath.Join(testshared.Dir(t, "firmware", dir), name))
		require.NoError(t, err)
		return b
	}
	d, err := sim.New(sim.Options{Platform: p, DeviceID: fmt.Sprintf("e00fce68%016x", time.Now().UnixNano()),
		Modules: [][]byte{read("releases", "argon-bootloader@4.1.0.bin"), read("releases", "argon-softdevice@4.1.0.bin"),
			read("releases", "argon-system-part1@4.1.0.bin"), module.Corrupt(read("apps", restoreArgonApp), module.FlipBit, 3)}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	require.Equal(t, sim.ModeSafe, d.Mode(), "a corrupt application: safe mode")
	cacheDir := flashCache(t)
	flashInProcess(t, d)
	flashBus = func(*globals) (device.Bus, func(), error) {
		return &restoreMuteDoors{Bus: demo.New(true, d)}, func() {}, nil
	}

	var stdout, stderr syncBuffer
	codec := make(chan int, 1)
	go func() {
		codec <- run([]string{"restore", "--to", "4.1.0", "--device", d.ID(), "--yes", "--offline", "--wait", "20s",
			"--cache-dir", cacheDir, "--state-dir", t.TempDir(), "--app", restoreAppPath(t)}, &stdout, &stderr)
	}()
	require.True(t, waitFor(20*time.Second, func() bool { return strings.Contains(stdout.String(), "Your Argon should now blink yellow.") }),
		"no guidance:\n%s\n%s", stdout.String(), stderr.String())
	assert.Contains(t, stdout.String(), "is attached but does not answer")
	require.NoError(t, d.ButtonReset(4*time.Second)) // the person holds MODE and taps RESET
	var code int
	select {
	case code = <-codec:
	case <-time.After(60 * time.Second):
		t.Fatal("restore did not finish")
	}
	out := stdout.String()
	require.Equal(t, 0, code, "%s\n%s", out, stderr.String())
	assert.Contains(t, out, "is corrupt or invalid")
	assert.Contains(t, out, "Now: normal mode, Device OS 4.1.0")
	requireRestored(t, d)
}
