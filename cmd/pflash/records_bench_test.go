package main

// Issue 15's acceptance 1 and 2: several `pflash factory` processes, each with its own
// virtual Borons and Argons (sim scale 0) behind the libusb shim, recording into one real
// PostgreSQL; then the same with PostgreSQL stopped mid-bench and a bench SIGKILLed
// mid-unit and started again.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/factory"
	"github.com/particle-flasher/particle-flasher/flasher/records"
	frun "github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
	"github.com/particle-flasher/particle-flasher/internal/testpg"
)

const (
	benchProcess = "TestFactoryBenchProcess"
	envBenchArgs = "PFLASH_TEST_BENCH_ARGS"
)

// TestFactoryBenchProcess is one bench: `pflash factory` with the arguments the parent
// test gave, in a process of its own whose libusb is the shim (real USB door, gousb).
func TestFactoryBenchProcess(t *testing.T) {
	if !usbsim.InChild(benchProcess) {
		t.Skip("one bench of the multi-bench record tests (run by them in a child process)")
	}
	var args []string
	require.NoError(t, json.Unmarshal([]byte(os.Getenv(envBenchArgs)), &args))
	factoryFast(t)
	// The runner's waits bounded as for in-process devices at scale 0 (flashInProcess),
	// over the real USB door.
	old := flashTimeouts
	flashTimeouts = frun.Timeouts{Find: 5 * time.Second, EnterMode: 5 * time.Second, Buttons: time.Second,
		Reenumerate: 5 * time.Second, Apply: 10 * time.Second, Settle: 2 * time.Second, EstimateFactor: -1}
	t.Cleanup(func() { flashTimeouts = old })
	code := run(args, os.Stdout, os.Stderr)
	require.Equal(t, 0, code, "pflash %s", strings.Join(args, " "))
}

// benchProc is a running bench process and the JSON events it printed.
type benchProc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	evs  []factory.Event
	out  strings.Builder
	done chan error
}

func (b *benchProc) events() []factory.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]factory.Event(nil), b.evs...)
}

func (b *benchProc) output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

// count counts events of a kind that match.
func (b *benchProc) count(kind string, match func(factory.Event) bool) int {
	n := 0
	for _, e := range b.events() {
		if e.Kind == kind && (match == nil || match(e)) {
			n++
		}
	}
	return n
}

// startBench runs `pflash factory args...` in a child process on the fleet's bus.
func startBench(t *testing.T, f *sim.Fleet, name string, args ...string) *benchProc {
	t.Helper()
	cmd := f.Server().TestCommand(benchProcess, "-test.timeout=5m")
	a, err := json.Marshal(args)
	require.NoError(t, err)
	cmd.Env = append(cmd.Env, envBenchArgs+"="+string(a))
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	b := &benchProc{name: name, cmd: cmd, done: make(chan error, 1)}
	require.NoError(t, cmd.Start())
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			b.mu.Lock()
			b.out.WriteString(line + "\n")
			if strings.HasPrefix(line, "{") {
				var e factory.Event
				if json.Unmarshal([]byte(line), &e) == nil && e.Kind != "" {
					b.evs = append(b.evs, e)
				}
			}
			b.mu.Unlock()
		}
		b.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	return b
}

func (b *benchProc) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case err := <-b.done:
		require.NoError(t, err, "bench %s:\n%s", b.name, b.output())
	case <-time.After(d):
		_ = b.cmd.Process.Kill()
		t.Fatalf("bench %s did not finish in %s:\n%s", b.name, d, b.output())
	}
}

// benchFleet is a bench's own bus with four Borons and four Argons on 4.1.0.
func benchFleet(t *testing.T, shimDir string, scale float64) (*sim.Fleet, []*sim.Device) {
	t.Helper()
	f, err := sim.NewFleet(sim.FleetOptions{ShimDir: shimDir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	var devs []*sim.Device
	for i := range 8 {
		plat := "boron"
		if i%2 == 1 {
			plat = "argon"
		}
		o := recordUnitOptions(t, plat)
		o.Scale = scale
		d, err := f.Add(o)
		require.NoError(t, err)
		t.Cleanup(func() { _ = d.Close() })
		devs = append(devs, d)
	}
	return f, devs
}

func benchArgs(target, dsn, station, stateDir string, extra ...string) []string {
	return append([]string{"factory", "--to", target, "--count", "8", "--db", dsn, "--station", station, "--lot", "20261206_0001",
		"--operator", "ana", "--state-dir", stateDir, "--report", filepath.Join(stateDir, "report.csv"), "--json"}, extra...)
}

func rowsOf(t *testing.T, dsn string) []records.Row {
	t.Helper()
	s, err := records.Open(dsn)
	require.NoError(t, err)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := s.Rows(ctx, records.Filter{})
	require.NoError(t, err)
	return rows
}

// checkIdentity: every finished row of a cellular unit has its serial number, ICCID and
// IMEI, a Wi-Fi unit its serial number, each as the unit itself knows it.
func checkIdentity(t *testing.T, r records.Row, d *sim.Device) {
	t.Helper()
	ident := d.Identity()
	assert.Equal(t, ident.Serial, r.SerialNumber, r.DeviceID)
	assert.NotEmpty(t, r.SerialNumber, r.DeviceID)
	if d.Platform().Name == "boron" {
		assert.Equal(t, ident.ICCID, r.ICCID, r.DeviceID)
		assert.Equal(t, ident.IMEI, r.IMEI, r.DeviceID)
		assert.NotEmpty(t, r.ICCID, r.DeviceID)
		assert.NotEmpty(t, r.IMEI, r.DeviceID)
	}
}

// TestFactoryThreeBenchesOnePostgres is acceptance 1: three benches, 8 units each, one
// PostgreSQL: 24 rows, every identity field filled for the cellular units, no duplicates,
// and `pflash report --format device-ids` prints those 24 IDs.
func TestFactoryThreeBenchesOnePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("three bench processes behind the libusb shim: not in -short runs")
	}
	pg := testpg.Start(t)
	dsn := pg.CreateDB(t, "line")
	target := recordTarget(t)
	shim := filepath.Join(t.TempDir(), "shim")
	units := map[string]*sim.Device{}
	var benches []*benchProc
	for b := range 3 {
		f, devs := benchFleet(t, shim, 0)
		for _, d := range devs {
			units[d.ID()] = d
		}
		station := fmt.Sprintf("bench-%d", b+1)
		benches = append(benches, startBench(t, f, station, benchArgs(target, dsn, station, t.TempDir())...))
	}
	for _, b := range benches {
		b.wait(t, 4*time.Minute)
		assert.Equal(t, 8, b.count(factory.EvFinished, nil), b.output())
	}

	rows := rowsOf(t, dsn)
	require.Len(t, rows, 24)
	seen := map[string]bool{}
	for _, r := range rows {
		assert.False(t, seen[r.DeviceID], "two rows for %s", r.DeviceID)
		seen[r.DeviceID] = true
		d, ok := units[r.DeviceID]
		require.True(t, ok, "a row for an unknown unit %s", r.DeviceID)
		assert.Equal(t, records.ResultOK, r.Result, "%s: %s", r.DeviceID, r.Error)
		assert.Equal(t, recordTo, r.After)
		assert.Equal(t, d.Platform().Name, r.Platform)
		checkIdentity(t, r, d)
	}

	code, out, errb := flashRun(t, "report", "--db", dsn, "--format", "device-ids")
	require.Equal(t, 0, code, errb)
	ids := strings.Fields(out)
	sort.Strings(ids)
	var want []string
	for id := range units {
		want = append(want, id)
	}
	sort.Strings(want)
	assert.Equal(t, want, ids)
}

// TestFactoryRecordsSurviveFaults is acceptance 2: PostgreSQL stopped in the middle of a
// bench and started again; another bench killed with SIGKILL in the middle of a unit (while
// the database is down, so its rows were in its spool) and started again. Afterwards the
// database holds exactly one finished row per unit, the killed attempts apart as
// interrupted, none lost, none doubled, and every spool is empty.
func TestFactoryRecordsSurviveFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("bench processes behind the libusb shim: not in -short runs")
	}
	pg := testpg.Start(t)
	dsn := pg.CreateDB(t, "faults")
	target := recordTarget(t)
	shim := filepath.Join(t.TempDir(), "shim")
	units := map[string]*sim.Device{}
	// A quarter of a real unit's pace, so that each unit takes seconds: the faults have to
	// find both benches in the middle of their work (at scale 0 a bench of eight is done
	// in about two seconds, before the first fault).
	fa, devsA := benchFleet(t, shim, 0.25)
	fb, devsB := benchFleet(t, shim, 0.25)
	for _, d := range append(devsA, devsB...) {
		units[d.ID()] = d
	}
	stateA, stateB := t.TempDir(), t.TempDir()
	// Two at a time, so that each bench has units waiting and running when the faults come.
	a := startBench(t, fa, "A", benchArgs(target, dsn, "bench-a", stateA, "--jobs", "2")...)
	b := startBench(t, fb, "B", benchArgs(target, dsn, "bench-b", stateB, "--jobs", "2")...)

	t0 := time.Now()
	waitEv := func(what string, cond func() bool) {
		t.Helper()
		require.True(t, waitFor(2*time.Minute, cond), "waiting for %s\nA:\n%s\nB:\n%s", what, a.output(), b.output())
		t.Logf("%5.1fs %s", time.Since(t0).Seconds(), what)
	}
	// PostgreSQL goes away once bench A has finished a unit.
	waitEv("A's first unit", func() bool { return a.count(factory.EvFinished, nil) >= 1 })
	require.NoError(t, pg.Stop())
	// B starts a unit while the database is down (its running row is spooled), and is
	// killed in the middle of it.
	progress := func() int {
		return b.count(factory.EvRun, func(e factory.Event) bool { return e.Run != nil && e.Run.Event == "progress" })
	}
	startedB, progressB := b.count(factory.EvStarted, nil), progress()
	waitEv("B starting a unit with the database down", func() bool { return b.count(factory.EvStarted, nil) > startedB })
	waitEv("B writing", func() bool { return progress() > progressB })
	require.NoError(t, b.cmd.Process.Signal(syscall.SIGKILL))
	<-b.done
	finishedB := b.count(factory.EvFinished, nil)
	require.Less(t, finishedB, 8, "B was killed before its last unit")
	// A keeps flashing and says it is spooling.
	waitEv("A spooling", func() bool {
		return a.count(factory.EvRecords, func(e factory.Event) bool { return e.Records != nil && e.Records.Spooling }) > 0
	})
	waitEv("A finishing a unit with the database down", func() bool { return a.count(factory.EvFinished, nil) >= 2 })
	require.NoError(t, pg.Start())
	// B again, same station and state directory.
	b2 := startBench(t, fb, "B again", benchArgs(target, dsn, "bench-b", stateB, "--jobs", "2")...)
	a.wait(t, 4*time.Minute)
	t.Logf("%5.1fs A done", time.Since(t0).Seconds())
	b2.wait(t, 4*time.Minute)
	t.Logf("%5.1fs B again done", time.Since(t0).Seconds())
	assert.Positive(t, a.count(factory.EvRecords, func(e factory.Event) bool { return e.Records != nil && !e.Records.Spooling }),
		"A said the spool was sent:\n%s", a.output())

	rows := rowsOf(t, dsn)
	finished := map[string]int{}
	interrupted := map[string]int{}
	for _, r := range rows {
		switch {
		case records.Finished(r.Result):
			finished[r.DeviceID]++
			// A killed unit's retry may find its writes done: "already" at the target.
			assert.Contains(t, []string{records.ResultOK, records.ResultAlready}, r.Result, "%s: %s", r.DeviceID, r.Error)
			assert.Equal(t, recordTo, r.After, r.DeviceID)
			checkIdentity(t, r, units[r.DeviceID])
		case r.Result == records.ResultInterrupted:
			interrupted[r.DeviceID]++
			assert.Equal(t, "bench-b", r.Station)
		default:
			t.Errorf("row %s/%s is still %q", r.DeviceID, r.RunID, r.Result)
		}
	}
	for id := range units {
		assert.Equal(t, 1, finished[id], "finished rows of %s", id)
	}
	assert.Len(t, finished, 16)
	assert.NotEmpty(t, interrupted, "the killed attempt is kept, told apart")
	for id := range interrupted {
		assert.Contains(t, devsIDs(devsB), id)
	}
	for _, dir := range []string{stateA, stateB} {
		spools, _ := filepath.Glob(filepath.Join(dir, "records-spool-*.jsonl"))
		require.NotEmpty(t, spools)
		for _, p := range spools {
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			assert.Empty(t, data, "spool %s", p)
		}
	}
	t.Logf("B finished %d unit(s) before the kill; interrupted attempts: %v", finishedB, interrupted)
}

func devsIDs(devs []*sim.Device) []string {
	var out []string
	for _, d := range devs {
		out = append(out, d.ID())
	}
	return out
}
