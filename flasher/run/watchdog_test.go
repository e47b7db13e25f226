package run_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
)

// watchdogScale runs the device at a twentieth of real time: the watchdog counts device
// time, which at scale 0 would only advance while the device works, never while it
// waits, and a window then never ends.
const watchdogScale = 0.05

// TestWatchdogBoronUpgrade is acceptance 5: a Boron whose external watchdog resets it
// every 15 s goes from 1.5.2 to 4.1.0 with Options.Watchdog = 15 s: the plan cuts the DFU
// work into windows, the runner waits for each reset, goes back into DFU mode and carries
// on. An interrupted piece is written again in the next window.
func TestWatchdogBoronUpgrade(t *testing.T) {
	d := newSim(t, "boron/1.5.2", sim.Options{Scale: watchdogScale})
	d.SetWatchdog(15 * time.Second)
	// The run starts at some point of the watchdog's period, not at its start: the first
	// window may be cut short, and the runner must pick up after the reset.
	time.Sleep(time.Duration(float64(7*time.Second) * watchdogScale))
	tgt := releases["boron/4.1.0"].target(t)
	tgt.Options.Watchdog = 15 * time.Second
	rec := &recorder{}
	rec.log = func(e run.Event) {
		if e.Event != run.EvProgress {
			t.Logf("%s %s %s %s %s", e.Time.Format("05.000"), e.Event, e.StepID, e.Waiting, e.Error)
		}
	}
	r := newRunner(t, demo.New(false, d), rec, run.Options{})
	res, err := r.Flash(testCtx(t, 2*time.Minute), d.ID(), tgt)
	require.NoError(t, err)
	assert.Greater(t, res.Plan.Windows, 1)
	// The watchdog goes on resetting the device; stop it to look at the result.
	d.SetWatchdog(0)
	_, err = d.WaitReady(testCtx(t, 10*time.Second))
	require.NoError(t, err)
	requireAt(t, d, tgt)
	t.Logf("%d windows, %d resets, device time %s", res.Plan.Windows, d.Status().Resets, d.Meter().Charged().Round(time.Second))
}

// TestWatchdogWithoutOptionExplains: the same device without the option keeps being reset
// in the middle of writing system-part1 (longer than 15 s); the run stops and says why,
// and what to do.
func TestWatchdogWithoutOptionExplains(t *testing.T) {
	d := newSim(t, "boron/1.5.2", sim.Options{Scale: watchdogScale})
	d.SetWatchdog(15 * time.Second)
	tgt := releases["boron/4.1.0"].target(t)
	rec := &recorder{}
	r := newRunner(t, demo.New(false, d), rec, run.Options{})
	_, err := r.Flash(testCtx(t, 2*time.Minute), d.ID(), tgt)
	require.ErrorIs(t, err, run.ErrRestarts)
	assert.Contains(t, err.Error(), "watchdog")
	assert.Contains(t, remedy.Of(err), "--watchdog")
	t.Log(err)
	t.Log(remedy.Of(err))
}
