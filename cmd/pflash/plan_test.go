package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/sim"
)

// TestPlanAttachedDeviceIsWhatFlashRuns: `pflash plan --to VERSION` with a device attached
// reads it (over control requests: it stays in normal mode) and prints the plan that
// `pflash flash` then runs, step for step; nothing is written by the plan.
func TestPlanAttachedDeviceIsWhatFlashRuns(t *testing.T) {
	cacheDir := flashCache(t)
	d := flashSim(t, "photon", photon152, "photon_tinker_tinker-0.4.5-photon.bin")
	flashInProcess(t, d)
	resets := d.Status().Resets

	code, out, errb := flashRun(t, "plan", "--to", "2.3.1", "--offline", "--cache-dir", cacheDir, "--json")
	require.Equal(t, 0, code, "%s\n%s", out, errb)
	var pl struct {
		From, To string
		Steps    []struct {
			ID string `json:"id"`
		} `json:"steps"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &pl), out)
	assert.Equal(t, "1.5.2", pl.From)
	assert.Equal(t, "2.3.1", pl.To)
	require.NotEmpty(t, pl.Steps)
	assert.Equal(t, resets, d.Status().Resets, "planning does not restart the device")
	assert.Equal(t, "1.5.2", d.SystemVersion())

	code, out, errb = flashRun(t, "flash", "--to", "2.3.1", "--device", d.ID(), "--yes", "--json", "--offline",
		"--cache-dir", cacheDir, "--state-dir", t.TempDir())
	require.Equal(t, 0, code, "%s\n%s", out, errb)
	var ran []string
	for _, l := range flashLines(t, out) {
		if l.Event == "step" {
			ran = append(ran, l.StepID)
		}
	}
	var planned []string
	for _, s := range pl.Steps {
		planned = append(planned, s.ID)
	}
	assert.Equal(t, planned, ran)
	assert.Equal(t, "2.3.1", d.SystemVersion())
	assert.Equal(t, sim.ModeNormal, d.Mode())

	// A device ID that is not attached: exit 3 with what to do.
	code, _, errb = flashRun(t, "plan", "--to", "2.3.1", "--device", "e00fce680000000000000000", "--offline", "--cache-dir", cacheDir)
	assert.Equal(t, exitNoDevice, code)
	assert.Contains(t, errb, "What to do:")
}
