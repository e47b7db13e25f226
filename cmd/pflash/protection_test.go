package main

import (
	"encoding/csv"
	"encoding/json"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	cache "github.com/particle-flasher/particle-flasher/firmware-cache"
	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/sim/releases"
	"github.com/particle-flasher/particle-flasher/flasher/state"
	"github.com/particle-flasher/particle-flasher/internal/testbundle"
)

// releaseSim is a virtual device holding a catalog release (built from its header dump,
// with its application), optionally with Device Protection on.
func releaseSim(t *testing.T, plat, version string, protected bool, o sim.Options) *sim.Device {
	t.Helper()
	cat, err := cache.Embedded()
	require.NoError(t, err)
	rel, err := cat.Release(version, plat)
	require.NoError(t, err)
	set, err := releases.Build(rel)
	require.NoError(t, err)
	p, _ := platform.ByName(plat)
	mods := set.Bytes(true)
	if protected {
		mods, err = sim.Protect(p, mods)
		require.NoError(t, err)
	}
	o.Platform, o.Modules, o.NoSerial = p, mods, true
	if o.DeviceID == "" {
		o.DeviceID = "e00fce68" + strings.Repeat("0", 14) + "42"
	}
	d, err := sim.New(o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// flashCRC is a checksum of every byte of the device's flash: whether anything was written.
func flashCRC(d *sim.Device) uint32 {
	h := crc32.NewIEEE()
	for _, a := range d.Platform().Alts {
		if r := d.Memory(a.Alt); r != nil {
			for _, s := range r.Layout().Segments {
				_, _ = h.Write(r.Snapshot(s.Start, s.Size()))
			}
		}
	}
	return h.Sum32()
}

// TestProtectedArgon is acceptance 2 of "Device OS 5.x and 6.x devices as they are in the
// field": an Argon at 6.3.4 with Device Protection on (its bootloader is the protected
// build). `inspect --device --json` says protected and has setup_done; `flash --to 4.1.0`
// is refused before anything is written, explaining Device Protection, Service Mode and the
// 6.1.1 floor, and the device's flash is byte for byte what it was.
func TestProtectedArgon(t *testing.T) {
	d := releaseSim(t, "argon", "6.3.4", true, sim.Options{})
	require.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
	require.True(t, d.Protected())

	listWithDoors(t, demo.New(true, d))
	code, out, errb := listRun(t, "inspect-device", d.ID(), "--json")
	require.Equal(t, 0, code, errb)
	var ins map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &ins), out)
	assert.Equal(t, "protected", ins["protection"])
	assert.Contains(t, ins, "setup_done")
	assert.Equal(t, true, ins["setup_done"])
	_, out, _ = listRun(t, "inspect-device", d.ID())
	assert.Contains(t, out, "Device Protection: protected")

	before := flashCRC(d)
	resets := d.Status().Resets
	flashInProcess(t, d)
	code, out, errb = flashRun(t, "flash", "--to", "4.1.0", "--device", d.ID(), "--yes", "--offline",
		"--cache-dir", flashCache(t), "--state-dir", t.TempDir())
	assert.NotEqual(t, 0, code, out)
	assert.Contains(t, errb, "has Device Protection")
	assert.Contains(t, errb, "Service Mode")
	assert.Contains(t, errb, "never below Device OS 6.1.1")
	assert.Contains(t, errb, "particle device-protection disable")
	assert.Equal(t, before, flashCRC(d), "nothing written")
	assert.Equal(t, resets, d.Status().Resets, "not even restarted")
	assert.True(t, d.Protected())
}

// In Service Mode the same device may be written (never below 6.1.1), and the plan ends
// Service Mode so that it is protected again.
func TestServiceModeArgonEndsProtected(t *testing.T) {
	d := releaseSim(t, "argon", "6.3.4", true, sim.Options{ServiceMode: true})
	require.False(t, d.Protected(), "Service Mode lifts the protection")
	listWithDoors(t, demo.New(true, d))
	_, out, _ := listRun(t, "inspect-device", d.ID(), "--json")
	var ins map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &ins), out)
	assert.Equal(t, state.ProtectionService.String(), ins["protection"])

	flashInProcess(t, d)
	code, out, errb := flashRun(t, "flash", "--to", "4.1.0", "--device", d.ID(), "--yes", "--offline",
		"--cache-dir", flashCache(t), "--state-dir", t.TempDir())
	assert.NotEqual(t, 0, code, out)
	assert.Contains(t, errb, "6.1.1", "below the floor even in Service Mode")
	assert.False(t, d.Protected(), "still in Service Mode: nothing was done")
}

// A new application on an Argon in Service Mode: written, verified, and Service Mode is
// ended at the end (request 77), so the device is protected again.
func TestServiceModeArgonTakesAnAppAndIsProtectedAgain(t *testing.T) {
	d := releaseSim(t, "argon", "6.3.4", true, sim.Options{ServiceMode: true})
	p := d.Platform()
	sl, ok := p.Slot(platform.FuncUser, 2)
	require.True(t, ok)
	sys, _ := module.SystemModuleVersion("6.3.4")
	app, err := module.BuildForSlot(p, sl, 7, module.Dependency{Function: platform.FuncSystem, Index: 1, Version: sys})
	require.NoError(t, err)
	path := writeBundle(t, "app.bin", app)

	flashInProcess(t, d)
	code, out, errb := flashRun(t, "flash", "--to", path, "--device", d.ID(), "--yes", "--state-dir", t.TempDir())
	require.Equal(t, 0, code, "%s\n%s", out, errb)
	assert.Contains(t, out, "End Service Mode")
	assert.True(t, d.Protected(), "protected again")
	assert.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
}

// TestFactoryProtectsUnits: `pflash factory --protect-with FILE` (a protected bootloader
// build) leaves each unit protected at the end of its run, with the report saying so; an
// open bootloader is refused as the --protect-with file.
func TestFactoryProtectsUnits(t *testing.T) {
	a := releaseSim(t, "argon", "6.3.4", false, sim.Options{DeviceID: "e00fce68000000000000a001"})
	b := releaseSim(t, "argon", "6.3.4", false, sim.Options{DeviceID: "e00fce68000000000000a002"})
	boot := testbundle.Release(t, "argon", "6.3.4")["bootloader"]
	protected, err := sim.ProtectedBootloader(a.Platform(), boot)
	require.NoError(t, err)
	bundle := releaseDir(t, "argon", "6.3.4")

	flashInProcess(t, a, b)
	factoryFast(t)
	code, _, errb := flashRun(t, "factory", "--to", bundle, "--count", "2", "--protect-with", writeBundle(t, "open.bin", boot),
		"--state-dir", t.TempDir())
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errb, "open bootloader build")

	report := filepath.Join(t.TempDir(), "r.csv")
	code, out, errb := flashRun(t, "factory", "--to", bundle, "--count", "2", "--report", report,
		"--protect-with", writeBundle(t, "argon-bootloader-protected.bin", protected), "--state-dir", t.TempDir())
	require.Equal(t, 0, code, "%s\n%s", out, errb)
	for _, d := range []*sim.Device{a, b} {
		assert.True(t, d.Protected(), d.ID())
		assert.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
	}
	rows := readCSVFile(t, report)
	require.Len(t, rows, 3)
	for _, row := range rows[1:] {
		assert.Equal(t, "ok", row[6], row)
		assert.Equal(t, "protected", row[10], row)
	}
}

func readCSVFile(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	require.NoError(t, err)
	return rows
}
