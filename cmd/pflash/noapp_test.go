package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	cache "github.com/particle-flasher/particle-flasher/firmware-cache"
	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	frun "github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/sim/releases"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// TestNoApplicationIsSafeModeEverywhere: a device whose Device OS is intact but that has no
// application boots into safe mode, and every surface says so in the same words: the
// device list (`pflash list`, the watcher the app uses), `pflash inspect --device`, and the
// runner's reading. Seen on the B SoM, the E SoM X and the A SoM.
func TestNoApplicationIsSafeModeEverywhere(t *testing.T) {
	cat, err := cache.Embedded()
	require.NoError(t, err)
	for _, plat := range []string{"bsom", "esomx", "asom"} {
		t.Run(plat, func(t *testing.T) {
			var rel *cache.Release
			for _, r := range cat.Releases(plat) { // newest first
				if releases.Buildable(r) {
					rel = r
					break
				}
			}
			require.NotNil(t, rel, plat)
			set, err := releases.Build(rel)
			require.NoError(t, err)
			p, _ := platform.ByName(plat)
			d, err := sim.New(sim.Options{Platform: p, Modules: set.Bytes(false), DeviceID: "e00fce68" + strings.Repeat("0", 15) + "5"})
			require.NoError(t, err)
			t.Cleanup(func() { _ = d.Close() })
			require.Equal(t, sim.ModeSafe, d.Mode(), "the virtual device itself boots safe: %s", d.Status().Reason)
			const why = "there is no application"

			// The device list: pflash list (the watcher the app's device list uses).
			listWithDoors(t, demo.New(true, d))
			code, out, errb := listRun(t, "list", "--json")
			require.Equal(t, 0, code, errb)
			var row map[string]any
			require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(out)), &row), out)
			assert.Equal(t, "safe", row["mode"])
			assert.Equal(t, why, row["why"])
			code, out, _ = listRun(t, "list")
			require.Equal(t, 0, code)
			assert.Contains(t, out, "safe")
			assert.Contains(t, out, why)

			// pflash inspect --device ID.
			_, out, _ = listRun(t, "inspect-device", d.ID())
			assert.Contains(t, out, "Safe mode: there is no application.")
			assert.Contains(t, out, "To leave safe mode:\n  1. Keep Device OS "+rel.Version+" and install Tinker: pflash flash --to "+rel.Version)
			_, out, _ = listRun(t, "inspect-device", d.ID(), "--json")
			var ins inspectJSON
			require.NoError(t, json.Unmarshal([]byte(out), &ins), out)
			assert.Equal(t, "safe", ins.Mode)
			assert.Equal(t, bootJSON{Mode: "safe", Why: why}, ins.Boot)

			// The runner's reading.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r := frun.New(frun.Options{Bus: demo.New(true, d), Timeouts: demo.Timeouts})
			pr, err := r.Prepare(ctx, d.ID(), plan.Target{Name: rel.Version, Modules: set.Modules()})
			require.ErrorIs(t, err, plan.ErrEndsSafe, "the same Device OS, no application: the plan ends safe too")
			require.NotNil(t, pr)
			assert.Equal(t, state.ModeSafe, pr.Reading.Mode)
			assert.Equal(t, why, pr.Reading.Boot.Why)
			assert.Equal(t, why, pr.Plan.End.Why)

			// The watcher on its own, as the app's device list has it.
			res, err := device.Scan(ctx, device.Options{Doors: []device.Door{demo.New(true, d)}})
			require.NoError(t, err)
			require.Len(t, res.Devices, 1)
			assert.Equal(t, device.ModeSafe, res.Devices[0].Mode)
			assert.Equal(t, why, res.Devices[0].Boot.Why)
		})
	}
}
