//go:build !windows

// The signals are POSIX ones sent to this process; Windows has no SIGINT to send.

package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/sim"
)

func sigint(t *testing.T) {
	t.Helper()
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGINT))
}

// TestInterruptibleFirstStopsSecondAborts: the first Ctrl-C cancels the context and tells
// the person that the run stops at the next safe point; the second ends the process with
// 130 and says how to finish the job. The signals are real ones sent to this process.
func TestInterruptibleFirstStopsSecondAborts(t *testing.T) {
	codes := make(chan int, 1)
	old := abortExit
	abortExit = func(code int) { codes <- code }
	t.Cleanup(func() { abortExit = old })

	var stdout, stderr syncBuffer
	g := &globals{stdout: &stdout, stderr: &stderr}
	ctx, stop := interruptible(context.Background(), g)
	defer stop()

	sigint(t)
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the first SIGINT did not cancel the context")
	}
	require.True(t, waitFor(5*time.Second, func() bool { return strings.Contains(stderr.String(), msgStopping) }), stderr.String())
	select {
	case code := <-codes:
		t.Fatalf("the first SIGINT aborted (%d)", code)
	default:
	}

	sigint(t)
	select {
	case code := <-codes:
		assert.Equal(t, 130, code)
	case <-time.After(5 * time.Second):
		t.Fatal("the second SIGINT did not abort")
	}
	assert.Contains(t, stderr.String(), "Aborted. The device may be between steps: run the same command again to finish")
	assert.Empty(t, stdout.String(), "nothing on stdout")
}

// TestInterruptibleJSONKeepsStdoutClean: in --json mode the message still goes to stderr
// and stdout, which a script parses, gets nothing.
func TestInterruptibleJSONKeepsStdoutClean(t *testing.T) {
	old := abortExit
	abortExit = func(int) { t.Error("aborted on the first signal") }
	t.Cleanup(func() { abortExit = old })
	var stdout, stderr syncBuffer
	g := &globals{json: true, stdout: &stdout, stderr: &stderr}
	ctx, stop := interruptible(context.Background(), g)
	sigint(t)
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("SIGINT did not cancel the context")
	}
	require.True(t, waitFor(5*time.Second, func() bool { return stderr.String() != "" }))
	stop()
	assert.Empty(t, stdout.String())
	assert.Contains(t, stderr.String(), msgStopping)
}

// TestFlashCtrlCStopsAtSafePointThenResumes: Ctrl-C (a real SIGINT) during `pflash flash
// --json`, sent when the first step has finished, ends the run at the next safe point
// with a failed event and a done event whose state says what the device is in, and a
// non-zero exit; the same command run again says it resumes and brings the device to the
// target. (flasher/run's TestCancelStopsAtSafePointAndResumes covers the runner's side;
// this is the command's: signal, output, exit code, journal across two processes' worth
// of runs.)
func TestFlashCtrlCStopsAtSafePointThenResumes(t *testing.T) {
	cacheDir := flashCache(t)
	d := flashSim(t, "photon", photon152, "photon_tinker_tinker-0.4.5-photon.bin")
	flashInProcess(t, d)
	old := abortExit
	abortExit = func(int) { t.Error("aborted: only one signal was sent") }
	t.Cleanup(func() { abortExit = old })
	state := t.TempDir()
	args := []string{"flash", "--to", "2.3.1", "--device", d.ID(), "--yes", "--json", "--offline",
		"--cache-dir", cacheDir, "--state-dir", state}

	stderr := &syncBuffer{}
	stdout := &syncBuffer{}
	var once sync.Once
	stdout.onWrite = func(p []byte) {
		if !bytes.Contains(p, []byte(`"event":"step-done"`)) {
			return
		}
		once.Do(func() {
			sigint(t)
			// Hold the runner inside its event callback until the signal has been handled,
			// so the cancel is seen before the next step, whatever the scheduler does.
			if !waitFor(5*time.Second, func() bool { return strings.Contains(stderr.String(), msgStopping) }) {
				t.Error("the SIGINT was not handled")
			}
		})
	}
	code := run(args, stdout, stderr)
	assert.NotEqual(t, 0, code, "a cancelled run is not a success")
	assert.Contains(t, stderr.String(), msgStopping)
	lines := flashLines(t, stdout.String())
	last := lines[len(lines)-1]
	require.Equal(t, "done", last.Event)
	assert.Equal(t, "failed", last.Result)
	assert.Contains(t, last.Error, "cancelled")
	assert.Contains(t, last.Remedy, "Try the same target again")
	assert.NotEmpty(t, last.State, "says what the device is left in")
	var failed bool
	for _, l := range lines {
		if l.Event == "failed" {
			failed = true
			assert.NotEmpty(t, l.State)
		}
	}
	assert.True(t, failed, "a failed event before done")
	assert.NotEqual(t, "2.3.1", d.SystemVersion(), "stopped before the end")

	// The same command again finishes the job, and says it is resuming.
	code, out, errb := flashRun(t, args...)
	require.Equal(t, 0, code, "%s\n%s", out, errb)
	lines = flashLines(t, out)
	kinds := map[string]bool{}
	for _, l := range lines {
		kinds[l.Event] = true
	}
	assert.True(t, kinds["resume"], "the second run says it finishes the first")
	assert.Equal(t, "ok", lines[len(lines)-1].Result)
	assert.Equal(t, sim.ModeNormal, d.Mode())
	assert.Equal(t, "2.3.1", d.SystemVersion())
}
