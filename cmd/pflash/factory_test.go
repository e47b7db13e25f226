package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/factory"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// A Boron on 1.5.2 keeps the 4.1.0 SoftDevice (every Device OS since 1.4.0 needs it).
var (
	factoryBoron152 = []string{"boron-bootloader@1.5.2.bin", "boron-system-part1@1.5.2.bin", "boron-softdevice@4.1.0.bin"}
	factoryBoron410 = []string{"boron-bootloader@4.1.0.bin", "boron-softdevice@4.1.0.bin", "boron-system-part1@4.1.0.bin"}
)

var factoryIDs atomic.Int64

// factoryBoron is a virtual Boron holding a release set and an app, started in mode.
func factoryBoron(t *testing.T, files []string, mode sim.Mode) *sim.Device {
	t.Helper()
	p, ok := platform.ByName("boron")
	require.True(t, ok)
	var bins [][]byte
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(testshared.Dir(t, "firmware", "releases"), f))
		require.NoError(t, err)
		bins = append(bins, b)
	}
	app, err := os.ReadFile(filepath.Join(testshared.Dir(t, "firmware", "apps"), "binaries_boron_blank.bin"))
	require.NoError(t, err)
	id := fmt.Sprintf("e00fac%010x%08x", time.Now().UnixNano()&0xffffffffff, factoryIDs.Add(1))
	d, err := sim.New(sim.Options{Platform: p, Modules: append(bins, app), DeviceID: id, Mode: mode})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	require.Equal(t, mode, d.Mode(), d.Status().Reason)
	return d
}

// factoryFast shortens the bench's polling for devices at time scale 0.
func factoryFast(t *testing.T) {
	oldPoll, oldGrace := factoryPoll, factoryGrace
	factoryPoll, factoryGrace = 10*time.Millisecond, 500*time.Millisecond
	t.Cleanup(func() { factoryPoll, factoryGrace = oldPoll, oldGrace })
}

func factoryCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	return rows
}

// TestFactoryEightBorons is issue 8's acceptance 1: `pflash factory --to 4.1.0 --offline
// --count 8 --report r.csv --json` with eight virtual Borons at mixed start states takes
// them all to 4.1.0 in normal mode, exits 0, writes 8 report rows with the right before
// and after, and prints nothing but JSON objects.
func TestFactoryEightBorons(t *testing.T) {
	cacheDir := flashCache(t)
	starts := []struct {
		files  []string
		mode   sim.Mode
		before string
	}{
		{factoryBoron152, sim.ModeNormal, "1.5.2"},
		{factoryBoron152, sim.ModeNormal, "1.5.2"},
		{factoryBoron152, sim.ModeNormal, "1.5.2"},
		{factoryBoron152, sim.ModeDFU, "1.5.2"},
		{factoryBoron152, sim.ModeDFU, "1.5.2"},
		{factoryBoron152, sim.ModeSafe, "1.5.2"},
		{factoryBoron152, sim.ModeListening, "1.5.2"},
		{factoryBoron410, sim.ModeNormal, "4.1.0"},
	}
	var devs []*sim.Device
	before := map[string]string{}
	for _, s := range starts {
		d := factoryBoron(t, s.files, s.mode)
		devs = append(devs, d)
		before[d.ID()] = s.before
	}
	flashInProcess(t, devs...)
	factoryFast(t)
	dir := t.TempDir()
	report := filepath.Join(dir, "r.csv")
	code, out, errb := flashRun(t, "factory", "--to", "4.1.0", "--offline", "--count", "8", "--report", report, "--json",
		"--cache-dir", cacheDir, "--state-dir", t.TempDir())
	require.Equal(t, 0, code, "%s\n%s", out, errb)

	for _, d := range devs {
		assert.Equal(t, "4.1.0", d.SystemVersion(), d.ID())
		assert.Equal(t, sim.ModeNormal, d.Mode(), "%s: %+v", d.ID(), d.Status())
	}

	// Every stdout line is a JSON event; one finished event per unit.
	finished := map[string]int{}
	var last factory.Event
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e factory.Event
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e), "not JSON: %s", sc.Text())
		require.NotEmpty(t, e.Kind, sc.Text())
		if e.Kind == factory.EvFinished {
			require.NotNil(t, e.Record)
			finished[e.DeviceID]++
		}
		last = e
	}
	assert.Len(t, finished, 8)
	for id, n := range finished {
		assert.Equal(t, 1, n, "%s finished %d times", id, n)
	}
	assert.Equal(t, factory.EvTotals, last.Kind)
	assert.Equal(t, factory.Totals{Seen: 8, OK: 7, Already: 1}, last.Totals)

	rows := factoryCSV(t, report)
	require.Len(t, rows, 9, "header and 8 rows")
	assert.Equal(t, "device_id", rows[0][1])
	for _, row := range rows[1:] {
		want, ok := before[row[1]]
		require.True(t, ok, "row for an unknown device %v", row)
		assert.Equal(t, want, row[3], "before of %s", row[1])
		assert.Equal(t, "4.1.0", row[4], "after of %s", row[1])
		if want == "4.1.0" {
			assert.Equal(t, factory.ResultAlready, row[6])
		} else {
			assert.Equal(t, factory.ResultOK, row[6], row[7])
		}
	}
	f, err := os.Open(filepath.Join(dir, "r.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	n := 0
	sc = bufio.NewScanner(f)
	for sc.Scan() {
		var r factory.Record
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), sc.Text())
		assert.Equal(t, before[r.DeviceID], r.Before)
		assert.Equal(t, "4.1.0", r.After)
		n++
	}
	assert.Equal(t, 8, n)
}

// TestFactoryFailingUnitHumanOutput: a unit that fails (it never comes back on USB after
// a reset) makes the exit code 1; the plain output says why and what to do, keeps a
// running count, and the other unit is flashed.
func TestFactoryFailingUnitHumanOutput(t *testing.T) {
	cacheDir := flashCache(t)
	good := factoryBoron(t, factoryBoron152, sim.ModeNormal)
	bad := factoryBoron(t, factoryBoron152, sim.ModeNormal)
	bad.FailReenumeration(true)
	flashInProcess(t, good, bad)
	factoryFast(t)
	report := filepath.Join(t.TempDir(), "r.csv")
	code, out, errb := flashRun(t, "factory", "--to", "4.1.0", "--offline", "--count", "2", "--report", report,
		"--cache-dir", cacheDir, "--state-dir", t.TempDir())
	assert.Equal(t, exitFailed, code, "%s\n%s", out, errb)
	t.Log(out)
	assert.Contains(t, out, "Report: "+report)
	assert.Contains(t, out, good.ID()+" (Boron): 1.5.2 -> 4.1.0, ok in ")
	assert.Contains(t, out, bad.ID()+" (Boron): 1.5.2 -> FAILED after ")
	assert.Contains(t, out, "the device is gone")
	assert.Contains(t, out, "  What to do: ")
	assert.Contains(t, out, "1 ok, 0 already at 4.1.0, 1 failed, 0 running")
	assert.Equal(t, "4.1.0", good.SystemVersion())
	rows := factoryCSV(t, report)
	require.Len(t, rows, 3)
	for _, row := range rows[1:] {
		if row[1] == bad.ID() {
			assert.Equal(t, factory.ResultFailed, row[6])
			assert.NotEmpty(t, row[7])
			assert.NotEmpty(t, row[8], "remedy")
		}
	}
}

// TestFactoryBadTarget: a target that is neither a file nor a version is refused at once
// (exit 2) with the cause and what to do, before any device is touched.
func TestFactoryBadTarget(t *testing.T) {
	d := factoryBoron(t, factoryBoron152, sim.ModeNormal)
	flashInProcess(t, d)
	code, out, errb := flashRun(t, "factory", "--to", "nonsense", "--count", "1", "--report", filepath.Join(t.TempDir(), "r.csv"))
	assert.Equal(t, exitUsage, code, "%s\n%s", out, errb)
	assert.Contains(t, errb, "not a Device OS version")
	assert.Contains(t, errb, "What to do:")
	assert.Equal(t, "1.5.2", d.SystemVersion())
}

// TestFactoryDuplicateWarning: two units with the same ID are warned about on stderr and
// in the JSON stream, and neither is flashed; a third unit is.
func TestFactoryDuplicateWarning(t *testing.T) {
	cacheDir := flashCache(t)
	p, _ := platform.ByName("boron")
	a := factoryBoron(t, factoryBoron152, sim.ModeNormal)
	var bins [][]byte
	for _, f := range append(factoryBoron152, "../apps/binaries_boron_blank.bin") {
		b, err := os.ReadFile(filepath.Join(testshared.Dir(t, "firmware", "releases"), f))
		require.NoError(t, err)
		bins = append(bins, b)
	}
	twin, err := sim.New(sim.Options{Platform: p, Modules: bins, DeviceID: a.ID()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = twin.Close() })
	other := factoryBoron(t, factoryBoron152, sim.ModeDFU)
	flashInProcess(t, a, twin, other)
	factoryFast(t)
	code, out, errb := flashRun(t, "factory", "--to", "4.1.0", "--offline", "--count", "1", "--json",
		"--report", filepath.Join(t.TempDir(), "r.csv"), "--cache-dir", cacheDir, "--state-dir", t.TempDir())
	require.Equal(t, 0, code, "%s\n%s", out, errb)
	assert.Contains(t, errb, "Warning: device ID "+a.ID()+" is attached 2 times")
	assert.Contains(t, out, `"kind":"duplicate"`)
	assert.Equal(t, "1.5.2", a.SystemVersion())
	assert.Equal(t, "1.5.2", twin.SystemVersion())
	assert.Equal(t, "4.1.0", other.SystemVersion())
}

// TestBenchCommandJSON: `pflash bench` at a small scale with synthetic modules prints one
// JSON object with both throughputs and their ratio.
func TestBenchCommandJSON(t *testing.T) {
	code, out, errb := flashRun(t, "bench", "--scale", "0.01", "--devices", "3", "--json", "--cache-dir", t.TempDir())
	require.Equal(t, 0, code, "%s\n%s", out, errb)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 1, out)
	var r struct {
		Devices  int     `json:"devices"`
		Parallel float64 `json:"parallel_units_per_min"`
		Alone    float64 `json:"alone_units_per_min"`
		Ratio    float64 `json:"ratio"`
		Goal     float64 `json:"goal"`
		From     string  `json:"from"`
		To       string  `json:"to"`
		Modules  string  `json:"modules"`
	}
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &r), lines[0])
	t.Log(lines[0])
	assert.Equal(t, 3, r.Devices)
	assert.Positive(t, r.Parallel)
	assert.Positive(t, r.Alone)
	assert.InDelta(t, r.Parallel/r.Alone, r.Ratio, 1e-9)
	assert.Equal(t, 6.0, r.Goal)
	assert.Equal(t, "1.5.2", r.From)
	assert.Equal(t, "4.1.0", r.To)
	assert.Equal(t, "synthetic", r.Modules)
}

// TestBenchCommandRealFiles: with --firmware-dir the real release files are used, and the
// plain output is the one-line summary.
func TestBenchCommandRealFiles(t *testing.T) {
	code, out, errb := flashRun(t, "bench", "--scale", "0", "--devices", "2",
		"--firmware-dir", testshared.Dir(t, "firmware", "releases"), "--cache-dir", t.TempDir())
	require.Equal(t, 0, code, "%s\n%s", out, errb)
	assert.Contains(t, out, "real (")
	assert.Regexp(t, `2 devices in parallel: [0-9.]+ units/min; 1 device alone: [0-9.]+ units/min; ratio [0-9.]+ x \(goal >= 6x\)`, out)
}
