package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	frun "github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/usb"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// flashExec runs pflash in-process (the flash tests' name for run).
func flashExec(args []string, stdout, stderr io.Writer) int { return run(args, stdout, stderr) }

func flashRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := flashExec(args, &out, &errb)
	return code, out.String(), errb.String()
}

// flashCache is a firmware cache seeded the way a bench without internet is:
// `pflash cache import` of the shared release files.
func flashCache(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cache")
	var out, errb bytes.Buffer
	code := run([]string{"cache", "import", testshared.Dir(t, "firmware", "releases"), "--cache-dir", dir}, &out, &errb)
	require.Equal(t, 0, code, "%s%s", out.String(), errb.String())
	return dir
}

func flashSim(t *testing.T, plat string, files []string, app string) *sim.Device {
	t.Helper()
	p, ok := platform.ByName(plat)
	require.True(t, ok)
	var bins [][]byte
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(testshared.Dir(t, "firmware", "releases"), f))
		require.NoError(t, err)
		bins = append(bins, b)
	}
	b, err := os.ReadFile(filepath.Join(testshared.Dir(t, "firmware", "apps"), app))
	require.NoError(t, err)
	d, err := sim.New(sim.Options{Platform: p, Modules: append(bins, b), DeviceID: fmt.Sprintf("e00fce68%016x", time.Now().UnixNano())})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	require.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
	return d
}

var photon152 = []string{"photon-bootloader@1.5.2+lto.bin", "photon-system-part1@1.5.2.bin", "photon-system-part2@1.5.2.bin"}

// flashInProcess points `pflash flash` at virtual devices in-process.
func flashInProcess(t *testing.T, devs ...*sim.Device) {
	t.Helper()
	oldDoors, oldTimeouts := flashBus, flashTimeouts
	flashBus = func(*globals) (device.Bus, func(), error) { return demo.New(true, devs...), func() {}, nil }
	flashTimeouts = frun.Timeouts{Find: 2 * time.Second, EnterMode: 2 * time.Second, Buttons: time.Second,
		Reenumerate: 2 * time.Second, Apply: 5 * time.Second, Settle: 2 * time.Second, EstimateFactor: -1}
	t.Cleanup(func() { flashBus, flashTimeouts = oldDoors, oldTimeouts })
}

type flashLine struct {
	Event   string           `json:"event"`
	Result  string           `json:"result"`
	Error   string           `json:"error"`
	Remedy  string           `json:"remedy"`
	State   string           `json:"state"`
	Modules []map[string]any `json:"modules"`
	StepID  string           `json:"step_id"`
	LED     *struct {
		Expect string `json:"expect"`
		Text   string `json:"text"`
	} `json:"led"`
	Fraction float64 `json:"fraction"`
}

func flashLines(t *testing.T, out string) []flashLine {
	t.Helper()
	var lines []flashLine
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l flashLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), "not JSON: %s", sc.Text())
		require.NotEmpty(t, l.Event, sc.Text())
		lines = append(lines, l)
	}
	require.NotEmpty(t, lines)
	return lines
}

// TestFlashJSONFromSeededCache: `pflash flash --to 2.3.1 --yes --json` with a cache seeded
// by `pflash cache import` streams one JSON event per line (steps with LED guidance,
// progress) and ends with a done event carrying the modules as inspect --json shows
// them; the device is then at 2.3.1. Run again, nothing is written.
func TestFlashJSONFromSeededCache(t *testing.T) {
	cacheDir := flashCache(t)
	d := flashSim(t, "photon", photon152, "photon_tinker_tinker-0.4.5-photon.bin")
	flashInProcess(t, d)
	state := t.TempDir()
	code, out, errb := flashRun(t, "flash", "--to", "2.3.1", "--device", d.ID(), "--yes", "--json", "--offline",
		"--cache-dir", cacheDir, "--state-dir", state)
	require.Equal(t, 0, code, "%s\n%s", out, errb)
	lines := flashLines(t, out)
	last := lines[len(lines)-1]
	assert.Equal(t, "done", last.Event)
	assert.Equal(t, "ok", last.Result, last.Error)
	require.NotEmpty(t, last.Modules)
	for _, k := range []string{"function", "index", "version", "device_os", "location", "valid", "checks", "dependencies", "source"} {
		assert.Contains(t, last.Modules[0], k, "inspect --json keys")
	}
	kinds := map[string]int{}
	for _, l := range lines {
		kinds[l.Event]++
		if l.Event == "led" {
			require.NotNil(t, l.LED)
			assert.NotEmpty(t, l.LED.Expect)
		}
	}
	for _, k := range []string{"plan", "step", "led", "progress", "waiting", "step-done", "verified", "done"} {
		assert.Positive(t, kinds[k], "no %s event", k)
	}
	assert.Equal(t, sim.ModeNormal, d.Mode())
	assert.Equal(t, "2.3.1", d.SystemVersion())

	// Already there: the plan is empty and the device untouched.
	before := d.Status().Resets
	code, out, _ = flashRun(t, "flash", "--to", "2.3.1", "--device", d.ID(), "--yes", "--json", "--offline",
		"--cache-dir", cacheDir, "--state-dir", state)
	require.Equal(t, 0, code, out)
	lines = flashLines(t, out)
	assert.Equal(t, "ok", lines[len(lines)-1].Result)
	assert.Equal(t, before, d.Status().Resets, "nothing to do means no restart")
}

// TestFlashHumanOutput: without --json and without a terminal, plain lines: numbered
// steps, the LED, and a last line saying it is done.
func TestFlashHumanOutput(t *testing.T) {
	d := flashSim(t, "photon", photon152, "photon_tinker_tinker-0.4.5-photon.bin")
	flashInProcess(t, d)
	dir := t.TempDir()
	for _, f := range []string{"photon-bootloader@2.3.1+lto.bin", "photon-system-part1@2.3.1.bin", "photon-system-part2@2.3.1.bin"} {
		require.NoError(t, os.Symlink(filepath.Join(testshared.Dir(t, "firmware", "releases"), f), filepath.Join(dir, f)))
	}
	code, out, errb := flashRun(t, "flash", "--to", dir, "--yes", "--state-dir", t.TempDir())
	require.Equal(t, 0, code, "%s\n%s", out, errb)
	assert.Contains(t, out, "Plan for the Photon: Device OS 1.5.2 -> 2.3.1")
	assert.Contains(t, out, "[1/7] Enter DFU mode")
	assert.Contains(t, out, "LED: blinking yellow.")
	assert.Contains(t, out, "100%")
	assert.Contains(t, out, "Done: the device is at the target, verified.")
	assert.NotContains(t, out, "\r", "no redrawing without a terminal")
}

// TestFlashNeedsConfirmation: nothing is written without --yes when nobody can be asked,
// and the JSON stream still ends with a done event that says why.
func TestFlashNeedsConfirmation(t *testing.T) {
	cacheDir := flashCache(t)
	d := flashSim(t, "photon", photon152, "photon_tinker_tinker-0.4.5-photon.bin")
	flashInProcess(t, d)
	code, out, _ := flashRun(t, "flash", "--to", "2.3.1", "--json", "--offline", "--cache-dir", cacheDir, "--state-dir", t.TempDir())
	assert.Equal(t, exitUsage, code)
	lines := flashLines(t, out)
	assert.Equal(t, "plan", lines[0].Event, "the plan that would have run")
	last := lines[len(lines)-1]
	assert.Equal(t, "done", last.Event)
	assert.Equal(t, "failed", last.Result)
	assert.Contains(t, last.Remedy, "--yes")
	assert.Equal(t, "1.5.2", d.SystemVersion(), "nothing written")
}

// TestFlashNoDevice: exit code 3 and a done event with a remedy.
func TestFlashNoDevice(t *testing.T) {
	d := flashSim(t, "photon", photon152, "photon_tinker_tinker-0.4.5-photon.bin")
	flashInProcess(t, d)
	code, out, _ := flashRun(t, "flash", "--to", "2.3.1", "--device", "0123456789abcdef01234567", "--yes", "--json", "--offline",
		"--cache-dir", t.TempDir(), "--state-dir", t.TempDir())
	assert.Equal(t, exitNoDevice, code)
	lines := flashLines(t, out)
	last := lines[len(lines)-1]
	assert.Equal(t, "failed", last.Result)
	assert.NotEmpty(t, last.Error)
	assert.NotEmpty(t, last.Remedy)
}

// TestFlashFailureReportsStateAndRemedy: a device unplugged in the middle fails the run
// with the cause, the state it is left in and what to do, as the last JSON line.
func TestFlashFailureReportsStateAndRemedy(t *testing.T) {
	cacheDir := flashCache(t)
	d := flashSim(t, "photon", photon152, "photon_tinker_tinker-0.4.5-photon.bin")
	flashInProcess(t, d)
	flashTimeouts.Reenumerate = 300 * time.Millisecond
	// Unplugged in the middle of the first DFU write.
	inner := demo.New(true, d)
	flashBus = func(*globals) (device.Bus, func(), error) {
		return &flashUnplugDoors{Bus: inner, d: d}, func() {}, nil
	}
	code, out, _ := flashRun(t, "flash", "--to", "2.3.1", "--device", d.ID(), "--yes", "--json", "--offline",
		"--cache-dir", cacheDir, "--state-dir", t.TempDir())
	assert.Equal(t, exitNoDevice, code)
	lines := flashLines(t, out)
	last := lines[len(lines)-1]
	assert.Equal(t, "done", last.Event)
	assert.Equal(t, "failed", last.Result)
	assert.Contains(t, last.Error, "did not come back")
	assert.Contains(t, last.Remedy, "try the same target again")
	assert.NotEmpty(t, last.State)
}

// flashUnplugDoors unplug the device 50 control transfers after the DFU interface is first
// opened.
type flashUnplugDoors struct {
	*demo.Bus
	d     *sim.Device
	armed bool
}

func (u *flashUnplugDoors) Find(ctx context.Context, id string) (device.Link, error) {
	l, err := u.Bus.Find(ctx, id)
	if err != nil {
		return nil, err
	}
	return &flashUnplugLink{Link: l, u: u}, nil
}

type flashUnplugLink struct {
	device.Link
	u *flashUnplugDoors
}

func (l *flashUnplugLink) DFU(ctx context.Context, alt uint8) (*dfu.Client, *memlayout.Layout, error) {
	if !l.u.armed {
		l.u.armed = true
		l.u.d.UnplugAtTransfer(50)
	}
	return l.Link.DFU(ctx, alt)
}

// flashDeniedDoors list one Particle device the OS will not let pflash open.
type flashDeniedDoors struct{ device.Bus }

func (d flashDeniedDoors) List(ctx context.Context) ([]device.Attached, error) {
	return []device.Attached{{Where: "USB 1-4", DFU: true,
		Problem: &usb.PermissionError{Device: "USB 1-4 (2b04:d00d)", Err: errors.New("LIBUSB_ERROR_ACCESS")}}}, nil
}

// TestFlashUnreadableDeviceExitsWithAccess: a device pflash may not open is not "no device":
// the exit code is 4 and the message names the permission problem and its fix.
func TestFlashUnreadableDeviceExitsWithAccess(t *testing.T) {
	oldDoors := flashBus
	flashBus = func(*globals) (device.Bus, func(), error) {
		return flashDeniedDoors{demo.New(true)}, func() {}, nil
	}
	t.Cleanup(func() { flashBus = oldDoors })
	code, out, errb := flashRun(t, "flash", "--to", "2.3.1", "--yes", "--offline", "--state-dir", t.TempDir())
	assert.Equal(t, exitAccess, code, "%s\n%s", out, errb)
	assert.Contains(t, errb, "USB 1-4")
	assert.Contains(t, errb, "What to do:")
	assert.Contains(t, strings.ToLower(errb), "udev")
}
