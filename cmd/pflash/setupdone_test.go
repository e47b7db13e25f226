package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/internal/testbundle"
)

// TestGen3RestoreTo3xMarksSetupDone is acceptance 3 of "Device OS 5.x and 6.x devices as
// they are in the field": a blank Boron (its DCT erased, so the setup-done flag is not set)
// restored to Device OS 3.3.1 ends with the flag set and the device running its application
// in normal mode, not waiting in listening mode (blinking dark blue). Device OS 3.x minds the
// flag; the sim's own boot rule puts a device without it in listening mode.
func TestGen3RestoreTo3xMarksSetupDone(t *testing.T) {
	for _, version := range []string{"3.3.1", "2.3.0"} {
		t.Run(version, func(t *testing.T) {
			p, _ := platform.ByName("boron")
			d, err := sim.New(sim.Options{Platform: p, Blank: true, NoSerial: true})
			require.NoError(t, err)
			t.Cleanup(func() { _ = d.Close() })
			require.Equal(t, sim.ModeDFU, d.Mode())
			require.False(t, d.SetupDone())

			flashInProcess(t, d)
			code, out, errb := flashRun(t, "flash", "--to", releaseDir(t, "boron", version), "--device", d.ID(), "--yes",
				"--state-dir", t.TempDir())
			require.Equal(t, 0, code, "%s\n%s", out, errb)
			assert.Contains(t, out, "Mark the device's setup done")
			assert.True(t, d.SetupDone(), "the setup-done flag is set")
			assert.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
			assert.Equal(t, version, d.SystemVersion())
		})
	}

	// A Boron set up long ago is left alone: no step for it.
	t.Run("already set up", func(t *testing.T) {
		d := releaseSim(t, "boron", "2.3.0", false, sim.Options{})
		require.True(t, d.SetupDone())
		flashInProcess(t, d)
		code, out, errb := flashRun(t, "plan", "--to", releaseDir(t, "boron", "3.3.1"), "--device", d.ID())
		require.Equal(t, 0, code, "%s\n%s", out, errb)
		assert.NotContains(t, out, "setup done")
	})

	// And one that is not, but already runs the target, only gets the flag.
	t.Run("only the flag", func(t *testing.T) {
		d := releaseSim(t, "boron", "3.3.1", false, sim.Options{SetupNotDone: true})
		require.Equal(t, sim.ModeListening, d.Mode(), d.Status().Reason)
		flashInProcess(t, d)
		code, out, errb := flashRun(t, "flash", "--to", releaseDir(t, "boron", "3.3.1"), "--device", d.ID(), "--yes",
			"--state-dir", t.TempDir())
		require.Equal(t, 0, code, "%s\n%s", out, errb)
		assert.Contains(t, out, "Mark the device's setup done")
		assert.True(t, d.SetupDone())
		assert.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
	})
}

// releaseDir is a folder holding a release's files as Particle publishes them (real
// binaries from ../shared where they exist, else built from the header dumps).
func releaseDir(t *testing.T, plat, version string) string {
	t.Helper()
	dir := t.TempDir()
	for part, b := range testbundle.Release(t, plat, version) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, plat+"-"+part+"@"+version+".bin"), b, 0o644))
	}
	return dir
}
