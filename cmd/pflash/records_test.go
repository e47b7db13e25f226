package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/records"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/internal/testbundle"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// The units of the record tests start on Device OS 4.1.0 (the real release files and an
// app) and go to 6.3.4, a release whose ICCID reply carries the IMEI (5.8.0 and later).
var recordStarts = map[string][]string{
	"boron": {"boron-bootloader@4.1.0.bin", "boron-softdevice@4.1.0.bin", "boron-system-part1@4.1.0.bin", "apps/binaries_boron_blank.bin"},
	"argon": {"argon-bootloader@4.1.0.bin", "argon-system-part1@4.1.0.bin", "argon-softdevice@4.1.0.bin", "argon-ncp-firmware@0.0.5.bin", "apps/binaries_argon_stroby.bin"},
}

const recordTo = "6.3.4"

var recordIDs atomic.Int64

// recordUnitOptions are the sim options of a virtual unit for the record tests.
func recordUnitOptions(t testing.TB, plat string) sim.Options {
	t.Helper()
	p, ok := platform.ByName(plat)
	require.True(t, ok)
	var bins [][]byte
	for _, f := range recordStarts[plat] {
		dir := testshared.Dir(t, "firmware", "releases")
		if rest, ok := strings.CutPrefix(f, "apps/"); ok {
			dir, f = testshared.Dir(t, "firmware", "apps"), rest
		}
		b, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		bins = append(bins, b)
	}
	id := fmt.Sprintf("e00fec%010x%08x", time.Now().UnixNano()&0xffffffffff, recordIDs.Add(1))
	return sim.Options{Platform: p, Modules: bins, DeviceID: id}
}

// recordTarget is a directory with Boron and Argon 6.3.4 (the real binaries where ../shared
// has them, else built from the release's header dump): the benches' --to.
func recordTarget(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "target-"+recordTo)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for _, plat := range []string{"boron", "argon"} {
		for name, b := range testbundle.Release(t, plat, recordTo) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%s@%s.bin", plat, name, recordTo)), b, 0o644))
		}
	}
	return dir
}

// TestFactoryRecordsDefaultSQLite is issue 15's acceptance 3: with no --db a bench records
// into the SQLite file in its state directory, and `pflash report` reads it: the summary,
// one JSON object per unit, and the identifier lists for the console's bulk import. The
// cellular unit's identity is complete.
func TestFactoryRecordsDefaultSQLite(t *testing.T) {
	target := recordTarget(t)
	var devs []*sim.Device
	for _, plat := range []string{"boron", "argon"} {
		d, err := sim.New(recordUnitOptions(t, plat))
		require.NoError(t, err)
		t.Cleanup(func() { _ = d.Close() })
		devs = append(devs, d)
	}
	flashInProcess(t, devs...)
	factoryFast(t)
	state := t.TempDir()
	code, out, errb := flashRun(t, "factory", "--to", target, "--count", "2", "--state-dir", state,
		"--station", "line-1", "--lot", "20261206_0001", "--operator", "ana", "--report", filepath.Join(t.TempDir(), "r.csv"))
	require.Equal(t, 0, code, "%s\n%s", out, errb)
	assert.Contains(t, out, "Records: SQLite file "+records.DefaultFile(state))
	_, err := os.Stat(records.DefaultFile(state))
	require.NoError(t, err, "the default store is in the state directory")

	code, out, errb = flashRun(t, "report", "--state-dir", state, "--lot", "20261206_0001")
	require.Equal(t, 0, code, "%s\n%s", out, errb)
	assert.Contains(t, out, "2 unit(s)")
	assert.Contains(t, out, "By result: ok 2")
	assert.Contains(t, out, "By platform: argon 1, boron 1")
	assert.Contains(t, out, "By Device OS: "+recordTo+" 2")
	assert.Contains(t, out, "Not at the target: 0")

	code, out, errb = flashRun(t, "report", "--state-dir", state, "--format", "device-ids")
	require.Equal(t, 0, code, errb)
	ids := strings.Fields(out)
	sort.Strings(ids)
	want := []string{devs[0].ID(), devs[1].ID()}
	sort.Strings(want)
	assert.Equal(t, want, ids)

	code, out, errb = flashRun(t, "report", "--state-dir", state, "--json")
	require.Equal(t, 0, code, errb)
	type unitJSON struct {
		DeviceID string      `json:"device_id"`
		Latest   records.Row `json:"latest"`
		Runs     int         `json:"runs"`
		AtTarget bool        `json:"at_target"`
	}
	units := decodeLines[unitJSON](t, out)
	require.Len(t, units, 2)
	for _, u := range units {
		d := devs[0]
		if u.DeviceID != d.ID() {
			d = devs[1]
		}
		ident := d.Identity()
		l := u.Latest
		assert.True(t, u.AtTarget)
		assert.Equal(t, 1, u.Runs)
		assert.Equal(t, ident.Serial, l.SerialNumber)
		assert.Equal(t, ident.ICCID, l.ICCID)
		assert.Equal(t, ident.IMEI, l.IMEI)
		if d.Platform().Name == "boron" {
			assert.NotEmpty(t, l.ICCID)
			assert.NotEmpty(t, l.IMEI, "6.3.4 gives the IMEI")
		}
		assert.Equal(t, "4.1.0", l.Before)
		assert.Equal(t, recordTo, l.After)
		assert.Equal(t, "line-1", l.Station)
		assert.Equal(t, "ana", l.Operator)
		assert.NotEmpty(t, l.ModulesBefore)
		assert.NotEmpty(t, l.ModulesAfter)
		assert.NotEmpty(t, l.App)
		assert.False(t, l.Started.IsZero())
		assert.True(t, l.Time.After(l.Started))
	}
	code, out, _ = flashRun(t, "report", "--state-dir", state, "--format", "serials")
	require.Equal(t, 0, code)
	assert.Len(t, strings.Fields(out), 2)
	code, out, _ = flashRun(t, "report", "--state-dir", state, "--format", "iccids")
	require.Equal(t, 0, code)
	assert.Equal(t, devs[0].Identity().ICCID+"\n", out, "only the Boron has a SIM")
}
