package run_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
)

func TestFlashInProcess(t *testing.T) {
	for _, tc := range []struct{ from, to string }{
		{"photon/1.5.2", "photon/2.3.1"},
		{"photon/2.3.1", "photon/1.5.2"},
		{"electron/1.5.2", "electron/2.3.1"},
		{"electron/2.3.1", "electron/1.5.2"},
		{"argon/2.3.0", "argon/4.1.0"},
		{"argon/4.1.0", "argon/2.3.0"},
		{"boron/1.5.2", "boron/4.1.0"},
		{"boron/4.1.0", "boron/1.5.2"},
	} {
		t.Run(tc.from+"->"+tc.to, func(t *testing.T) {
			d := newSim(t, tc.from, sim.Options{})
			require.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
			rec := &recorder{}
			rec.log = func(e run.Event) {
				if e.Event != run.EvProgress {
					t.Logf("%s %s %s %s %s %s", e.Event, e.StepID, e.Waiting, e.Message, e.Error, e.Remedy)
				}
			}
			r := newRunner(t, demo.New(true, d), rec, run.Options{})
			tgt := releases[tc.to].target(t)
			res, err := r.Flash(testCtx(t, 60*time.Second), d.ID(), tgt)
			require.NoError(t, err)
			require.NotNil(t, res)
			requireAt(t, d, tgt)
		})
	}
}
