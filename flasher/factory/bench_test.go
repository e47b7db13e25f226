package factory_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/factory/throughput"
	"github.com/particle-flasher/particle-flasher/flasher/records"
	"github.com/particle-flasher/particle-flasher/internal/testpg"
)

// eightBorons is the benchmarks' bench: 8 Borons taken from 1.5.2 to 4.1.0 with the real
// release files, at sim time scale 1 (a real device's pace).
func eightBorons(b *testing.B) throughput.Options {
	return throughput.Options{
		Platform: boron(b),
		From:     append(readFiles(b, "releases", boron152...), readFiles(b, "apps", boronApp)...),
		Target:   target410(b),
		Devices:  8,
		Scale:    1,
		StateDir: b.TempDir(),
	}
}

// BenchmarkFactoryThroughput is issue 8's acceptance 2: the throughput of a bench
// flashing 8 Borons in parallel (the real 1.5.2 -> 4.1.0 files, at sim time scale 1 - a
// real device's pace - through the runner and simdoor in this process) as a ratio to one
// Boron alone ("x-parallel", goal >= 6), with both throughputs in units per minute. The
// same measurement is `pflash bench`. It reports, never asserts, times.
func BenchmarkFactoryThroughput(b *testing.B) {
	o := eightBorons(b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	var sum throughput.Result
	for b.Loop() {
		r, err := throughput.Measure(ctx, o)
		require.NoError(b, err)
		if sum.Devices == 0 {
			sum = r
		} else {
			sum.AloneSeconds += r.AloneSeconds
			sum.ParallelSeconds += r.ParallelSeconds
			sum.AloneDeviceSeconds += r.AloneDeviceSeconds
			sum.ParallelDeviceSeconds += r.ParallelDeviceSeconds
		}
	}
	n := float64(b.N)
	r := sum
	r.AloneUnitsPerMin = 60 * n / r.AloneSeconds
	r.ParallelUnitsPerMin = float64(r.Devices) * 60 * n / r.ParallelSeconds
	r.Ratio = r.ParallelUnitsPerMin / r.AloneUnitsPerMin
	b.ReportMetric(r.Ratio, "x-parallel")
	b.ReportMetric(r.ParallelUnitsPerMin, "units/min-8")
	b.ReportMetric(r.AloneUnitsPerMin, "units/min-1")
	// The share of one unit's wall time that is device-bound work; the rest is the host's
	// waiting and polling.
	b.ReportMetric(r.AloneDeviceSeconds/r.AloneSeconds, "device/wall-1")
	msg := fmt.Sprintf("Factory throughput, Boron %s -> %s at sim scale 1: %s. One unit: %.1f s wall for %.1f s device-bound; %d units: %.1f s wall for %.1f s device-bound in all",
		r.From, r.To, r, r.AloneSeconds/n, r.AloneDeviceSeconds/n, r.Devices, r.ParallelSeconds/n, r.ParallelDeviceSeconds/n)
	b.Log(msg) // a benchmark's log is always printed, -v or not
}

// BenchmarkFactoryRecording is issue 15's acceptance 4: the wall time of the 8-unit bench
// (Borons 1.5.2 -> 4.1.0, real files, sim scale 1) without recording and with every unit
// recorded into a real PostgreSQL (its running and finished rows, and the query for the
// same unit on other stations), in the same run; the cost is the ratio minus one (goal <=
// 2 %). It reports, never asserts, times.
func BenchmarkFactoryRecording(b *testing.B) {
	pg := testpg.Start(b)
	dsn := pg.CreateDB(b, "bench")
	store, err := records.Open(dsn)
	require.NoError(b, err)
	rec, err := records.NewRecorder(records.RecorderOptions{Store: store, SpoolPath: filepath.Join(b.TempDir(), "spool.jsonl"), Station: "bench"})
	require.NoError(b, err)
	defer func() { _, _ = rec.Close(context.Background()) }()
	o := eightBorons(b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	// Connected and migrated before the clock runs, as a bench is once its first unit is
	// recorded.
	require.NoError(b, store.Ping(ctx))
	with := o
	with.Recorder = rec
	var plain, recorded time.Duration
	for b.Loop() {
		// Alternated, so that whatever warms up over the run favours neither side.
		r1, err := throughput.Round(ctx, o, o.Devices)
		require.NoError(b, err)
		r2, err := throughput.Round(ctx, with, o.Devices)
		require.NoError(b, err)
		r3, err := throughput.Round(ctx, with, o.Devices)
		require.NoError(b, err)
		r4, err := throughput.Round(ctx, o, o.Devices)
		require.NoError(b, err)
		plain += r1.Wall + r4.Wall
		recorded += r2.Wall + r3.Wall
	}
	require.Zero(b, rec.Status().Pending, "every row reached PostgreSQL")
	cost := float64(recorded)/float64(plain) - 1
	b.ReportMetric(100*cost, "%recording-cost")
	runs := 2 * float64(b.N)
	msg := fmt.Sprintf("Factory bench, 8 Borons 1.5.2 -> 4.1.0 at sim scale 1: %.2f s wall without recording, %.2f s recording into PostgreSQL: cost %+.2f %% (goal <= 2 %%)",
		plain.Seconds()/runs, recorded.Seconds()/runs, 100*cost)
	b.Log(msg) // a benchmark's log is always printed, -v or not
}
