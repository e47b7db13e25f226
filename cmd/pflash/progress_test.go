package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	frun "github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// progressPTY is a terminal of a known size whose output the test reads: stdout is the
// pty's slave (what pflash writes to, a real terminal to isTerminal and mpb), out
// collects what a terminal emulator would receive.
func progressPTY(t *testing.T) (stdout *os.File, out *syncBuffer) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	require.NoError(t, err)
	require.NoError(t, pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 160}))
	out = &syncBuffer{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(out, ptmx) // ends with EIO once the slave is closed
	}()
	t.Cleanup(func() {
		_ = tty.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("pty reader did not stop")
		}
		_ = ptmx.Close()
	})
	return tty, out
}

var ansiRE = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// screenText is the terminal output without escape sequences or carriage returns.
func screenText(s string) string {
	return strings.ReplaceAll(ansiRE.ReplaceAllString(s, ""), "\r", "")
}

func waitOutput(t *testing.T, out *syncBuffer, want ...string) string {
	t.Helper()
	var text string
	ok := waitFor(5*time.Second, func() bool {
		text = screenText(out.String())
		for _, w := range want {
			if !strings.Contains(text, w) {
				return false
			}
		}
		return true
	})
	require.True(t, ok, "want %q in:\n%s", want, text)
	return text
}

// TestProgressViewTerminalBars: on a terminal, two devices flashed at once get a bar each
// with their short ID, their step, percentage and the LED to expect, plus an overall bar
// with the totals; lines are printed above the bars.
func TestProgressViewTerminalBars(t *testing.T) {
	tty, out := progressPTY(t)
	g := &globals{stdout: tty, stderr: io.Discard}
	v := newProgressView(g)
	require.True(t, v.tty, "a pty is a terminal")
	const a, b = "e00fce68aaaaaaaaaaaa1111", "e00fce68bbbbbbbbbbbb2222"
	now := time.Now()
	for _, id := range []string{a, b} {
		v.Event(frun.Event{Event: frun.EvPlan, Time: now, DeviceID: id, Steps: 4})
		v.Event(frun.Event{Event: frun.EvStep, Time: now, DeviceID: id, StepIndex: 2, Steps: 4, Title: "Write system-part1 2.3.1"})
	}
	v.Event(frun.Event{Event: frun.EvLED, DeviceID: a, LED: &frun.LEDGuidance{Expect: "blinking yellow", Text: "It should blink yellow."}})
	v.Event(frun.Event{Event: frun.EvWaiting, DeviceID: b, Waiting: "the device in DFU mode", TimeoutSeconds: 60, Buttons: true,
		Message: "Hold MODE, tap RESET.", LED: &frun.LEDGuidance{Expect: "blinking magenta", Text: "Keep holding."}})
	v.Event(frun.Event{Event: frun.EvProgress, DeviceID: a, Phase: "write", Bytes: 40, Total: 100, StepFraction: 0.4, Fraction: 0.42, ETASeconds: 12})
	v.Event(frun.Event{Event: frun.EvProgress, DeviceID: b, Phase: "write", Bytes: 75, Total: 100, StepFraction: 0.75, Fraction: 0.73, ETASeconds: 5})
	v.Totals("2 running, 0 done, 0 failed")
	v.Line("a line above the bars")

	text := waitOutput(t, out, "aaaa1111 [step 2/4 Write system-part1 2.3.1]", "bbbb2222 [step 2/4 Write system-part1 2.3.1]",
		"42%", "73%", "LED: blinking yellow", "LED: blinking magenta", "ETA 12s", "2 running, 0 done, 0 failed",
		"a line above the bars")
	// Lines above the bars name their device once there are several.
	assert.Contains(t, text, "aaaa1111       LED: blinking yellow. It should blink yellow.")
	assert.Contains(t, text, "bbbb2222       Hold MODE, tap RESET.")
	assert.NotContains(t, text, "bytes written", "on a terminal, progress is the bar, not lines")

	// One device finishes, the other fails: the last frame says so.
	v.Event(frun.Event{Event: frun.EvDone, DeviceID: a, Result: frun.ResultOK, Fraction: 1})
	v.Event(frun.Event{Event: frun.EvFailed, DeviceID: b, Error: "the device is gone", State: "DFU mode, system-part1 half written",
		Remedy: "run the same command again"})
	v.Event(frun.Event{Event: frun.EvDone, DeviceID: b, Result: frun.ResultFailed})
	v.Close()
	text = waitOutput(t, out, "100%", "done", "FAILED", "bbbb2222 Failed: the device is gone",
		"bbbb2222 What to do: run the same command again", "aaaa1111 Done: the device is at the target, verified.")
	// The last frame (after the last cursor movement) still shows both bars.
	raw := out.String()
	last := screenText(raw[strings.LastIndex(raw, "\x1b[J")+3:])
	assert.Contains(t, last, "aaaa1111", "final frame:\n%s", last)
	assert.Contains(t, last, "bbbb2222", "final frame:\n%s", last)
}

// TestProgressViewPlainSeveralDevices: without a terminal, the lines of several devices
// name their device; progress is reported every quarter of a step, and totals as lines.
func TestProgressViewPlainSeveralDevices(t *testing.T) {
	var out bytes.Buffer
	v := newProgressView(&globals{stdout: &out, stderr: io.Discard})
	const a, b = "e00fce68aaaaaaaaaaaa1111", "e00fce68bbbbbbbbbbbb2222"
	v.Event(frun.Event{Event: frun.EvStep, DeviceID: a, StepIndex: 1, Steps: 3, Title: "Enter DFU mode"})
	v.Event(frun.Event{Event: frun.EvStep, DeviceID: b, StepIndex: 1, Steps: 3, Title: "Enter DFU mode"})
	for _, f := range []float64{0.1, 0.2, 0.3, 0.6} {
		v.Event(frun.Event{Event: frun.EvProgress, DeviceID: b, Phase: "write", Bytes: int(f * 100), Total: 100, StepFraction: f, Fraction: f / 2})
	}
	v.Totals("1 done, 1 running")
	v.Close()
	got := out.String()
	assert.Equal(t, "[1/3] Enter DFU mode\n"+
		"bbbb2222 [1/3] Enter DFU mode\n"+
		"bbbb2222        10% (10 of 100 bytes written), 5% overall\n"+
		"bbbb2222        30% (30 of 100 bytes written), 15% overall\n"+
		"bbbb2222        60% (60 of 100 bytes written), 30% overall\n"+
		"1 done, 1 running\n", got)
	assert.NotContains(t, got, "\x1b")
}

// TestFlashOnTerminalShowsBars: `pflash flash` with a terminal as stdout draws the bar
// (device, step, percentage, LED) and ends with the device verified at the target.
func TestFlashOnTerminalShowsBars(t *testing.T) {
	d := flashSim(t, "photon", photon152, "photon_tinker_tinker-0.4.5-photon.bin")
	flashInProcess(t, d)
	tty, out := progressPTY(t)
	var errb bytes.Buffer
	code := run([]string{"flash", "--to", flashFiles(t, "photon-bootloader@2.3.1+lto.bin", "photon-system-part1@2.3.1.bin", "photon-system-part2@2.3.1.bin"),
		"--yes", "--state-dir", t.TempDir()}, tty, &errb)
	require.Equal(t, 0, code, "%s\n%s", screenText(out.String()), errb.String())
	text := waitOutput(t, out, "Plan for the Photon: Device OS 1.5.2 -> 2.3.1", shortID(d.ID())+" [step 7/7", "100%",
		"LED: blinking yellow", "Done: the device is at the target, verified.")
	assert.NotContains(t, text, "bytes written", "the bar replaces the progress lines")
	assert.Equal(t, sim.ModeNormal, d.Mode())
	assert.Equal(t, "2.3.1", d.SystemVersion())
}

// flashFiles is a directory holding links to shared release files.
func flashFiles(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range names {
		require.NoError(t, os.Symlink(filepath.Join(testshared.Dir(t, "firmware", "releases"), f), filepath.Join(dir, f)))
	}
	return dir
}
