package run_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
)

// shortTimeouts make a device that is gone for good fail the run quickly.
var shortTimeouts = run.Timeouts{Find: 500 * time.Millisecond, EnterMode: time.Second, Buttons: 500 * time.Millisecond,
	Reenumerate: 500 * time.Millisecond, Apply: 2 * time.Second, Step: 30 * time.Second, Settle: time.Second, EstimateFactor: -1}

func lastEvent(rec *recorder) run.Event {
	evs := rec.all()
	return evs[len(evs)-1]
}

func hasEvent(rec *recorder, name string) bool {
	for _, e := range rec.all() {
		if e.Event == name {
			return true
		}
	}
	return false
}

// TestCancelStopsAtSafePointAndResumes: a cancel during a DFU write lets the write finish
// (never between the erase and the write of a slot), stops before the next step, says
// what state the device is in, and running the same target again finishes the job.
func TestCancelStopsAtSafePointAndResumes(t *testing.T) {
	d := newSim(t, "boron/1.5.2", sim.Options{})
	store := &run.Store{Dir: t.TempDir()}
	tgt := releases["boron/4.1.0"].target(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &recorder{}
	rec.log = func(e run.Event) {
		if e.Event == run.EvProgress && strings.HasPrefix(e.StepID, "write:system-part1") && e.Phase == "erase" {
			cancel() // in the middle of erasing system-part1
		}
	}
	r := newRunner(t, demo.New(true, d), rec, run.Options{Journal: store})
	_, err := r.Flash(ctx, d.ID(), tgt)
	require.ErrorIs(t, err, run.ErrCancelled)
	assert.NotEmpty(t, remedy.Of(err))
	done := lastEvent(rec)
	require.Equal(t, run.EvDone, done.Event)
	assert.Equal(t, run.ResultFailed, done.Result)
	assert.Contains(t, done.State, "Write system-part1 4100.", "the write in progress was finished")
	assert.Contains(t, done.State, "DFU mode")
	j, err := store.Load(d.ID())
	require.NoError(t, err)
	require.NotNil(t, j)
	assert.Equal(t, run.JournalCancelled, j.Status)
	// The slot is intact: the cancel waited for the write.
	for _, m := range d.Modules() {
		if m.Name == "system-part1" {
			assert.True(t, m.Valid(), "system-part1 whole")
			assert.Equal(t, uint16(4100), m.Version)
		}
	}

	rec2 := &recorder{}
	r2 := newRunner(t, demo.New(true, d), rec2, run.Options{Journal: store})
	res, err := r2.Flash(testCtx(t, 30*time.Second), d.ID(), tgt)
	require.NoError(t, err)
	assert.True(t, res.Resumed)
	assert.True(t, hasEvent(rec2, run.EvResume))
	requireAt(t, d, tgt)
	j, _ = store.Load(d.ID())
	assert.Equal(t, run.JournalDone, j.Status)
	assert.Equal(t, 2, j.Runs)
}

// TestCancelDuringInstallWaitsForTheDevice: a cancel while a Boron installs the bootloader
// it was handed (it restarts to do so) lets that wait finish: the run stops with the device
// back in normal mode on the new bootloader, the state it reports is the one it settled in,
// and running the same target again starts from there.
func TestCancelDuringInstallWaitsForTheDevice(t *testing.T) {
	d := newSim(t, "boron/1.5.2", sim.Options{})
	store := &run.Store{Dir: t.TempDir()}
	tgt := releases["boron/4.1.0"].target(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &recorder{}
	rec.log = func(e run.Event) {
		if e.Event == run.EvStep && strings.HasPrefix(e.StepID, "wait:bootloader") {
			cancel() // the bootloader is handed over; the device is installing it
		}
	}
	r := newRunner(t, demo.New(true, d), rec, run.Options{Journal: store})
	_, err := r.Flash(ctx, d.ID(), tgt)
	require.ErrorIs(t, err, run.ErrCancelled)
	waited := false
	for _, e := range rec.all() {
		waited = waited || e.Event == run.EvStepDone && strings.HasPrefix(e.StepID, "wait:bootloader")
	}
	assert.True(t, waited, "the wait for the install finished")
	assert.Equal(t, sim.ModeNormal, d.Mode(), "back in Device OS when the run stopped")
	for _, m := range d.Modules() {
		if m.Name == "bootloader" && m.Store == "main" {
			assert.Equal(t, uint16(1200), m.Version, "the bootloader is installed")
		}
	}
	done := lastEvent(rec)
	require.Equal(t, run.EvDone, done.Event)
	assert.True(t, strings.HasPrefix(done.State, "The device runs Device OS (normal mode)."), done.State)
	assert.Contains(t, done.State, "Done: Send bootloader 1200")
	assert.Contains(t, err.Error(), "after step 2 of 6 (Wait for bootloader 1200 to be installed)", "the step's title, not its ID")
	assert.Contains(t, done.State, "its new bootloader was written whole", "not \"its bootloader was not touched\"")
	j, err := store.Load(d.ID())
	require.NoError(t, err)
	require.NotNil(t, j)
	assert.Equal(t, run.JournalCancelled, j.Status)

	rec2 := &recorder{}
	r2 := newRunner(t, demo.New(true, d), rec2, run.Options{Journal: store})
	res, err := r2.Flash(testCtx(t, 30*time.Second), d.ID(), tgt)
	require.NoError(t, err)
	assert.True(t, res.Resumed)
	for _, e := range rec2.all() {
		assert.False(t, e.Event == run.EvStep && strings.HasPrefix(e.StepID, "write:bootloader"), "the bootloader is not written again")
	}
	requireAt(t, d, tgt)
}

// TestPowerLossMidWriteResumes: power lost in the middle of writing system-part1 leaves a
// half-written slot; the run fails with a cause and a remedy, and once the power is back a
// second run reads the device (in DFU mode: its Device OS cannot start), finds the slot
// failing its CRC and rewrites it.
func TestPowerLossMidWriteResumes(t *testing.T) {
	d := newSim(t, "photon/1.5.2", sim.Options{})
	store := &run.Store{Dir: t.TempDir()}
	tgt := releases["photon/2.3.1"].target(t)
	armed := false
	rec := &recorder{}
	rec.log = func(e run.Event) {
		if e.Event == run.EvStep && e.StepID == "write:system-part1@2302" && !armed {
			armed = true
			require.NoError(t, d.PowerLossAfter(0, 300_000)) // erase of 2 sectors done, data half written
		}
	}
	r := newRunner(t, demo.New(true, d), rec, run.Options{Journal: store, Timeouts: shortTimeouts})
	_, err := r.Flash(testCtx(t, 30*time.Second), d.ID(), tgt)
	require.Error(t, err)
	require.ErrorIs(t, err, run.ErrGone)
	assert.Contains(t, remedy.Of(err), "plug")
	assert.Equal(t, sim.ModeOff, d.Mode())

	d.PowerOn()
	st := d.Status()
	require.Equal(t, sim.ModeDFU, st.Mode, "a half-written system part cannot run: %s", st.Reason)
	rec2 := &recorder{}
	r2 := newRunner(t, demo.New(true, d), rec2, run.Options{Journal: store})
	res, err := r2.Flash(testCtx(t, 30*time.Second), d.ID(), tgt)
	require.NoError(t, err)
	assert.True(t, res.Resumed)
	assert.Equal(t, "rescue", res.Plan.Direction.String())
	requireAt(t, d, tgt)
}

// TestCrashLeavesJournalAndResumes: the flasher dies in the middle of a step (here a panic
// out of the event callback); the journal says which step was in progress, and the next
// run says so and finishes.
func TestCrashLeavesJournalAndResumes(t *testing.T) {
	d := newSim(t, "argon/2.3.0", sim.Options{})
	store := &run.Store{Dir: t.TempDir()}
	tgt := releases["argon/4.1.0"].target(t)
	rec := &recorder{}
	rec.log = func(e run.Event) {
		if e.Event == run.EvProgress && strings.HasPrefix(e.StepID, "write:system-part1") && e.StepFraction > 0.6 {
			panic("crash")
		}
	}
	r := newRunner(t, demo.New(true, d), rec, run.Options{Journal: store})
	func() {
		defer func() { require.Equal(t, "crash", recover()) }()
		_, _ = r.Flash(testCtx(t, 30*time.Second), d.ID(), tgt)
	}()
	j, err := store.Load(d.ID())
	require.NoError(t, err)
	require.NotNil(t, j)
	assert.Equal(t, run.JournalRunning, j.Status)
	assert.Equal(t, "write:system-part1@4100", j.Current)

	rec2 := &recorder{}
	r2 := newRunner(t, demo.New(true, d), rec2, run.Options{Journal: store})
	res, err := r2.Flash(testCtx(t, 30*time.Second), d.ID(), tgt)
	require.NoError(t, err)
	assert.True(t, res.Resumed)
	var msg string
	for _, e := range rec2.all() {
		if e.Event == run.EvResume {
			msg = e.Message
		}
	}
	assert.Contains(t, msg, "during the step \u201cWrite system-part1 4100\u201d", "the step's title, not its ID")
	requireAt(t, d, tgt)
}

// TestUnplugResumes: the cable is pulled in the middle of the run; the run fails saying
// so, and after replugging the same command finishes.
func TestUnplugResumes(t *testing.T) {
	d := newSim(t, "electron/2.3.1", sim.Options{})
	tgt := releases["electron/1.5.2"].target(t)
	store := &run.Store{Dir: t.TempDir()}
	rec := &recorder{}
	armed := false
	rec.log = func(e run.Event) {
		if e.Event == run.EvStep && strings.HasPrefix(e.StepID, "write:system-part2") && !armed {
			armed = true
			d.UnplugAtTransfer(20)
		}
	}
	r := newRunner(t, demo.New(true, d), rec, run.Options{Journal: store, Timeouts: shortTimeouts})
	_, err := r.Flash(testCtx(t, 30*time.Second), d.ID(), tgt)
	require.True(t, errors.Is(err, run.ErrGone), "%v", err)
	d.Plug()
	r2 := newRunner(t, demo.New(true, d), &recorder{}, run.Options{Journal: store})
	_, err = r2.Flash(testCtx(t, 30*time.Second), d.ID(), tgt)
	require.NoError(t, err)
	requireAt(t, d, tgt)
}
