// Package throughput measures a factory bench's throughput with virtual devices
// in-process: n devices flashed in parallel by flasher/factory, through the runner and
// flasher/demo, against one device alone, at a sim time scale (1 is a real
// device's pace). `pflash bench` and the factory benchmark (make bench) both use it, so
// they measure the same thing.
//
// It lives apart from flasher/factory so that the engine does not link the simulator.
package throughput

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/factory"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
)

// Options describe a measurement.
type Options struct {
	Platform *platform.Platform
	// From is what each device holds at the start (module files, the application
	// included); Target is where the bench takes it.
	From   [][]byte
	Target plan.Target
	// Devices is how many devices the parallel round flashes at once (0: 8).
	Devices int
	// Scale is the sim time scale (1: a real device's pace; 0 is allowed but measures
	// only the host's overhead).
	Scale float64
	// Timeouts are the runner's (zero: run.DefaultTimeouts; at scales well below 1 pass
	// EstimateFactor -1 or short ones).
	Timeouts run.Timeouts
	// Poll is the bench's and the runners' polling period (0: the bench's default).
	Poll time.Duration
	// StateDir keeps the runners' journals (empty: a temporary directory, removed after).
	StateDir string
	// Recorder, when set, records every unit as `pflash factory` does (flasher/records),
	// so the cost of recording can be measured.
	Recorder factory.Recorder
}

// Result is a measurement.
type Result struct {
	Platform string  `json:"platform"`
	From     string  `json:"from"`
	To       string  `json:"to"`
	Scale    float64 `json:"scale"`
	Devices  int     `json:"devices"`
	// ParallelUnitsPerMin is the parallel round's throughput, AloneUnitsPerMin one device
	// alone's, Ratio the first over the second (the goal is >= 6 for 8 devices).
	ParallelUnitsPerMin float64 `json:"parallel_units_per_min"`
	AloneUnitsPerMin    float64 `json:"alone_units_per_min"`
	Ratio               float64 `json:"ratio"`
	Goal                float64 `json:"goal"`
	// Wall times of the rounds, and the device-bound time the sims charged (summed over
	// the round's devices): what a perfect host would need.
	ParallelSeconds       float64 `json:"parallel_seconds"`
	AloneSeconds          float64 `json:"alone_seconds"`
	ParallelDeviceSeconds float64 `json:"parallel_device_seconds"`
	AloneDeviceSeconds    float64 `json:"alone_device_seconds"`
}

// Goal is the goal for the ratio of 8 devices in parallel to one alone.
const Goal = 6

// String is the one-line summary.
func (r Result) String() string {
	return fmt.Sprintf("%d devices in parallel: %.2f units/min; 1 device alone: %.2f units/min; ratio %.2f x (goal >= %gx)",
		r.Devices, r.ParallelUnitsPerMin, r.AloneUnitsPerMin, r.Ratio, r.Goal)
}

// Measure runs one device alone, then o.Devices in parallel, and compares them.
func Measure(ctx context.Context, o Options) (Result, error) {
	if o.Devices <= 0 {
		o.Devices = 8
	}
	res := Result{Platform: o.Platform.Name, To: o.Target.Name, Scale: o.Scale, Devices: o.Devices, Goal: Goal}
	alone, err := Round(ctx, o, 1)
	if err != nil {
		return res, fmt.Errorf("one device alone: %w", err)
	}
	par, err := Round(ctx, o, o.Devices)
	if err != nil {
		return res, fmt.Errorf("%d devices in parallel: %w", o.Devices, err)
	}
	res.From = alone.From
	res.AloneSeconds, res.AloneDeviceSeconds = alone.Wall.Seconds(), alone.Device.Seconds()
	res.ParallelSeconds, res.ParallelDeviceSeconds = par.Wall.Seconds(), par.Device.Seconds()
	res.AloneUnitsPerMin = 60 / max(alone.Wall.Seconds(), 1e-9)
	res.ParallelUnitsPerMin = float64(o.Devices) * 60 / max(par.Wall.Seconds(), 1e-9)
	res.Ratio = res.ParallelUnitsPerMin / res.AloneUnitsPerMin
	return res, nil
}

// RoundResult is one round: n devices flashed by one bench.
type RoundResult struct {
	// Wall is from the start of the bench until the last unit finished; Device the
	// device-bound time the sims charged, summed over the devices.
	Wall, Device time.Duration
	// From is the Device OS the devices started on (as the first record says).
	From string
}

// Round flashes n fresh virtual devices with one bench (Jobs n) and checks that each
// ended at the target, in normal mode.
func Round(ctx context.Context, o Options, n int) (RoundResult, error) {
	var rr RoundResult
	var devs []*sim.Device
	defer func() {
		for _, d := range devs {
			_ = d.Close()
		}
	}()
	for range n {
		d, err := sim.New(sim.Options{Platform: o.Platform, Modules: o.From, DeviceID: newID(), Scale: o.Scale, NoSerial: false})
		if err != nil {
			return rr, err
		}
		devs = append(devs, d)
	}
	stateDir := o.StateDir
	if stateDir == "" {
		dir, err := os.MkdirTemp("", "pflash-bench-")
		if err != nil {
			return rr, err
		}
		defer os.RemoveAll(dir)
		stateDir = dir
	}
	var (
		mu    sync.Mutex
		last  time.Time
		fails []error
	)
	bo := factory.Options{
		Bus:      demo.New(o.Scale == 0, devs...),
		Target:   func(context.Context, *platform.Platform) (plan.Target, error) { return o.Target, nil },
		Jobs:     n,
		Timeouts: o.Timeouts,
		Journal:  &run.Store{Dir: stateDir},
		Poll:     o.Poll,
		Recorder: o.Recorder,
		Station:  "bench",
		Lot:      "throughput",
		Until:    func(t factory.Totals) bool { return t.Finished() >= n },
		Events: func(e factory.Event) {
			if e.Kind != factory.EvFinished {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			last = e.Time
			if rr.From == "" {
				rr.From = e.Record.Before
			}
			if e.Record.Result != factory.ResultOK {
				fails = append(fails, fmt.Errorf("%s: %s %s", e.DeviceID, e.Record.Result, e.Record.Error))
			}
		},
	}
	start := time.Now()
	tot, err := factory.Run(ctx, bo)
	if err != nil {
		return rr, err
	}
	if err := errors.Join(fails...); err != nil {
		return rr, err
	}
	if tot.OK != n {
		return rr, fmt.Errorf("%d of %d units flashed (%+v)", tot.OK, n, tot)
	}
	for _, d := range devs {
		if d.Mode() != sim.ModeNormal {
			return rr, fmt.Errorf("%s ended in %s mode", d.ID(), d.Mode())
		}
		rr.Device += d.Meter().Charged()
	}
	rr.Wall = last.Sub(start)
	return rr, nil
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// SyntheticModules builds the modules of a Device OS release with sim.SyntheticSet:
// every part of the release for a device's start state (with a Tinker-like application),
// or, with app false, the Device OS parts alone for a target.
func SyntheticModules(p *platform.Platform, version string, app bool) ([][]byte, error) {
	all, err := sim.SyntheticSet(p, version)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, b := range all {
		m, err := module.Parse(b)
		if err != nil {
			return nil, err
		}
		if m.Function == platform.FuncUser && !app {
			continue
		}
		out = append(out, b)
	}
	return out, nil
}

// TargetOf parses module files into a target named name.
func TargetOf(name string, files [][]byte) (plan.Target, error) {
	t := plan.Target{Name: name}
	for _, b := range files {
		m, err := module.Parse(b)
		if err != nil {
			return t, err
		}
		t.Modules = append(t.Modules, m)
	}
	return t, nil
}

// Complete adds to a start set the parts it lacks that a device in the field would
// still have, taken from the synthetic release: a SoftDevice on radio-stack platforms
// (without one the bootloader stays in DFU mode) and an application (without one Device
// OS starts in safe mode). Real release files rarely ship either.
func Complete(p *platform.Platform, version string, files [][]byte) ([][]byte, error) {
	have := map[platform.Function]bool{}
	for _, b := range files {
		m, err := module.Parse(b)
		if err != nil {
			return nil, err
		}
		have[m.Function] = true
	}
	synth, err := SyntheticModules(p, version, true)
	if err != nil {
		return nil, err
	}
	out := append([][]byte(nil), files...)
	for _, b := range synth {
		m, err := module.Parse(b)
		if err != nil {
			return nil, err
		}
		if (m.Function == platform.FuncUser || m.Function == platform.FuncRadio) && !have[m.Function] {
			out = append(out, b)
		}
	}
	return out, nil
}
