package main

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// TestNothingBeforeAPlatformsFirstDeviceOS: the Electron 2's first Device OS is 6.3.0. A
// virtual one at 6.2.0 is refused naming 6.3.0 (`pflash sim`), and so is a plan to 6.2.0
// from its files; 6.3.0 itself works.
func TestNothingBeforeAPlatformsFirstDeviceOS(t *testing.T) {
	var errb bytes.Buffer
	g := &globals{stdout: io.Discard, stderr: &errb}
	cmd := newSimCmd(g)
	cmd.SetArgs([]string{"--platform", "electron2", "--version", "6.2.0"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := cmd.Execute()
	var ee *exitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, exitUsage, ee.code)
	assert.Contains(t, err.Error(), "Device OS 6.2.0 is older than the Electron 2, whose first Device OS is 6.3.0")

	p, _ := platform.ByName("electron2")
	at630, err := sim.SyntheticSet(p, "6.3.0")
	require.NoError(t, err)
	d, err := sim.New(sim.Options{Platform: p, Modules: at630, NoSerial: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	assert.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)

	at620, err := sim.SyntheticSet(p, "6.2.0")
	require.NoError(t, err)
	var mods []*module.Module
	for _, b := range at620 {
		m, err := module.Parse(b)
		require.NoError(t, err)
		mods = append(mods, m)
	}
	st := state.FromFiles(p, state.ModeNormal, nil)
	_, err = plan.Make(st, plan.Target{Modules: mods})
	require.ErrorIs(t, err, plan.ErrTooOld)
	assert.Contains(t, err.Error(), "its first Device OS is 6.3.0")
}
