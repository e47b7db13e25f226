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
	"github.com/particle-flasher/particle-flasher/flasher/plan"
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

// cancelled is a Boron's run from 1.5.2 toward 4.1.0 that was cancelled.
type cancelled struct {
	d     *sim.Device
	store *run.Store
	tgt   plan.Target
	rec   *recorder
	err   error
	done  run.Event
}

// cancelBoronRun runs a Boron from 1.5.2 toward 4.1.0, cancels the run at the first event
// for which at holds, and checks what every cancel must give: ErrCancelled with a remedy,
// a last event that says what state the device is in, and a cancelled journal.
func cancelBoronRun(t *testing.T, at func(run.Event) bool) *cancelled {
	c := &cancelled{d: newSim(t, "boron/1.5.2", sim.Options{}), store: &run.Store{Dir: t.TempDir()},
		tgt: releases["boron/4.1.0"].target(t), rec: &recorder{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.rec.log = func(e run.Event) {
		if at(e) {
			cancel()
		}
	}
	r := newRunner(t, demo.New(true, c.d), c.rec, run.Options{Journal: c.store})
	_, c.err = r.Flash(ctx, c.d.ID(), c.tgt)
	require.ErrorIs(t, c.err, run.ErrCancelled)
	assert.NotEmpty(t, remedy.Of(c.err))
	c.done = lastEvent(c.rec)
	require.Equal(t, run.EvDone, c.done.Event)
	assert.Equal(t, run.ResultFailed, c.done.Result)
	j, err := c.store.Load(c.d.ID())
	require.NoError(t, err)
	require.NotNil(t, j)
	assert.Equal(t, run.JournalCancelled, j.Status)
	return c
}

// resume runs the same target again and checks that it finished the job as a resumed run.
func (c *cancelled) resume(t *testing.T) *recorder {
	rec := &recorder{}
	r := newRunner(t, demo.New(true, c.d), rec, run.Options{Journal: c.store})
	res, err := r.Flash(testCtx(t, 30*time.Second), c.d.ID(), c.tgt)
	require.NoError(t, err)
	assert.True(t, res.Resumed)
	for _, e := range rec.all() {
		if e.Event == run.EvResume {
			assert.Contains(t, e.Message, "(it was cancelled)", "how it ended, in words, not the error chain")
		}
	}
	assert.True(t, hasEvent(rec, run.EvResume))
	requireAt(t, c.d, c.tgt)
	j, _ := c.store.Load(c.d.ID())
	assert.Equal(t, run.JournalDone, j.Status)
	assert.Equal(t, 2, j.Runs)
	return rec
}

// TestCancelStopsAtSafePointAndResumes: a cancel during a DFU write lets the write finish
// (never between the erase and the write of a slot), stops before the next step, says
// what state the device is in, and running the same target again finishes the job.
func TestCancelStopsAtSafePointAndResumes(t *testing.T) {
	c := cancelBoronRun(t, func(e run.Event) bool { // in the middle of erasing system-part1
		return e.Event == run.EvProgress && strings.HasPrefix(e.StepID, "write:system-part1") && e.Phase == "erase"
	})
	assert.Contains(t, c.done.State, "Write system-part1 4100.", "the write in progress was finished")
	assert.Contains(t, c.done.State, "DFU mode")
	// The slot is intact: the cancel waited for the write.
	for _, m := range c.d.Modules() {
		if m.Name == "system-part1" {
			assert.True(t, m.Valid(), "system-part1 whole")
			assert.Equal(t, uint16(4100), m.Version)
		}
	}
	c.resume(t)
}

// TestCancelDuringInstallWaitsForTheDevice: a cancel while a Boron installs the bootloader
// it was handed (it restarts to do so) lets that wait finish: the run stops with the device
// back in normal mode on the new bootloader, the state it reports is the one it settled in,
// and running the same target again starts from there.
func TestCancelDuringInstallWaitsForTheDevice(t *testing.T) {
	c := cancelBoronRun(t, func(e run.Event) bool { // the bootloader is handed over; the device is installing it
		return e.Event == run.EvStep && strings.HasPrefix(e.StepID, "wait:bootloader")
	})
	waited := false
	for _, e := range c.rec.all() {
		waited = waited || e.Event == run.EvStepDone && strings.HasPrefix(e.StepID, "wait:bootloader")
	}
	assert.True(t, waited, "the wait for the install finished")
	assert.Equal(t, sim.ModeNormal, c.d.Mode(), "back in Device OS when the run stopped")
	for _, m := range c.d.Modules() {
		if m.Name == "bootloader" && m.Store == "main" {
			assert.Equal(t, uint16(1200), m.Version, "the bootloader is installed")
		}
	}
	assert.True(t, strings.HasPrefix(c.done.State, "The device runs Device OS (normal mode)."), c.done.State)
	assert.Contains(t, c.done.State, "Done: Send bootloader 1200")
	assert.Contains(t, c.err.Error(), "after the step \u201cWait for bootloader 1200 to be installed\u201d", "the step's title, not its ID or numbers another screen counts differently")
	assert.Contains(t, c.done.State, "its new bootloader was written whole", "not \"its bootloader was not touched\"")

	for _, e := range c.resume(t).all() {
		assert.False(t, e.Event == run.EvStep && strings.HasPrefix(e.StepID, "write:bootloader"), "the bootloader is not written again")
	}
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
	assert.Contains(t, msg, "(it was interrupted)", "how it ended, in words")
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
