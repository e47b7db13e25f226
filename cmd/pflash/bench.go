package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/particle-flasher/particle-flasher/flasher/factory/throughput"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/target"
)

type benchFlags struct {
	devices            int
	platform, from, to string
	scale              float64
	firmwareDir        string
}

func newBenchCmd(g *globals) *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench [--devices 8] [--platform boron] [--from 1.5.2] [--to 4.1.0] [--scale 1]",
		Short: "Measure a factory bench's throughput with virtual devices: N in parallel against one alone",
		Long: "bench runs the factory engine (the one behind `pflash factory`) against virtual devices in\n" +
			"this process: first one device alone, then --devices at once, each taken from --from to\n" +
			"--to, and prints both throughputs and their ratio (the goal for 8 devices is >= 6x).\n" +
			"--scale 1 runs the virtual devices at a real device's pace (a Boron 1.5.2 -> 4.1.0 takes\n" +
			"about half a minute); smaller scales are quicker and measure more of the host.\n\n" +
			"The modules are the real release files from --firmware-dir (named like\n" +
			"boron-system-part1@4.1.0.bin) or the firmware cache when they have both releases,\n" +
			"otherwise synthetic ones with the same module versions and dependencies; a start set\n" +
			"without a SoftDevice or an application gets them, as devices in the field have them.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := interruptible(cmdContext(cmd), g)
			defer stop()
			return runBench(ctx, g, f)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.devices, "devices", 8, "devices flashed in parallel")
	fl.StringVar(&f.platform, "platform", "boron", "platform of the virtual devices")
	fl.StringVar(&f.from, "from", "1.5.2", "Device OS the devices start on")
	fl.StringVar(&f.to, "to", "4.1.0", "Device OS they are taken to")
	fl.Float64Var(&f.scale, "scale", 1, "sim time scale: 1 is a real device's pace")
	fl.StringVar(&f.firmwareDir, "firmware-dir", "", "directory of real release files (platform-part@version.bin)")
	return cmd
}

// benchOutput is `pflash bench --json`: the measurement and where its modules came from.
type benchOutput struct {
	throughput.Result
	Modules string `json:"modules"`
}

func runBench(ctx context.Context, g *globals, f benchFlags) error {
	p, err := parsePlatform(f.platform)
	if err != nil {
		return err
	}
	if f.devices < 1 || f.scale < 0 {
		return &exitError{code: exitUsage, err: remedy.With(fmt.Errorf("--devices %d --scale %g", f.devices, f.scale), "Give at least 1 device and a scale of 0 or more.")}
	}
	from, to := strings.TrimPrefix(f.from, "v"), strings.TrimPrefix(f.to, "v")
	fromFiles, toFiles, source, err := benchModules(ctx, g, f, p, from, to)
	if err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	// A real start set lacks what the release does not ship but devices have: the radio
	// stack (the target's, which field units keep across releases) and an application.
	if !hasFunction(fromFiles, platform.FuncRadio) {
		for _, b := range toFiles {
			if m, err := module.Parse(b); err == nil && m.Function == platform.FuncRadio {
				fromFiles = append(fromFiles, b)
			}
		}
	}
	if fromFiles, err = throughput.Complete(p, from, fromFiles); err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	tgt, err := throughput.TargetOf(to, toFiles)
	if err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	if !g.json {
		fmt.Fprintf(g.stdout, "Benchmark: %s %s -> %s at sim scale %g (%s modules): 1 device alone, then %d in parallel...\n",
			p.DisplayName, from, to, f.scale, source, f.devices)
	}
	o := throughput.Options{Platform: p, From: fromFiles, Target: tgt, Devices: f.devices, Scale: f.scale, Timeouts: flashTimeouts}
	res, err := throughput.Measure(ctx, o)
	if err != nil {
		return &exitError{code: exitFailed, err: remedy.With(err, "This is a bug in pflash or the simulator if it happens with the default flags; run with -v and report it.")}
	}
	if g.json {
		return g.emit(benchOutput{Result: res, Modules: source})
	}
	fmt.Fprintf(g.stdout, "%s\n", res)
	fmt.Fprintf(g.stdout, "(one device: %.1f s wall for %.1f s of device time; %d devices: %.1f s wall)\n",
		res.AloneSeconds, res.AloneDeviceSeconds, res.Devices, res.ParallelSeconds)
	return nil
}

// benchModules finds the two releases' files: --firmware-dir, else the firmware cache
// (offline), else synthetic.
func benchModules(ctx context.Context, g *globals, f benchFlags, p *platform.Platform, from, to string) (fromFiles, toFiles [][]byte, source string, err error) {
	if f.firmwareDir != "" {
		if fromFiles, err = releaseFiles(f.firmwareDir, p, from); err == nil {
			toFiles, err = releaseFiles(f.firmwareDir, p, to)
		}
		if err != nil {
			return nil, nil, "", err
		}
		return fromFiles, toFiles, "real (" + f.firmwareDir + ")", nil
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if c, err := (&cacheFlags{offline: true}).open(g, nil); err == nil {
		src := target.FromCache{Cache: c, AppWait: time.Millisecond}
		if fm, err := src.Release(cctx, from, p); err == nil {
			if tm, err := src.Release(cctx, to, p); err == nil {
				for _, m := range fm.OS {
					fromFiles = append(fromFiles, m.Data)
				}
				if fm.App != nil {
					fromFiles = append(fromFiles, fm.App.Data)
				}
				for _, m := range tm.OS {
					toFiles = append(toFiles, m.Data)
				}
				return fromFiles, toFiles, "real (firmware cache)", nil
			}
		}
	}
	if fromFiles, err = throughput.SyntheticModules(p, from, true); err != nil {
		return nil, nil, "", err
	}
	if toFiles, err = throughput.SyntheticModules(p, to, false); err != nil {
		return nil, nil, "", err
	}
	return fromFiles, toFiles, "synthetic", nil
}

// releaseFiles reads DIR/<platform>-<part>@<version>[+...].bin.
func releaseFiles(dir string, p *platform.Platform, version string) ([][]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasPrefix(n, p.Name+"-") || !strings.HasSuffix(n, ".bin") {
			continue
		}
		_, v, ok := strings.Cut(strings.TrimSuffix(n, ".bin"), "@")
		if !ok {
			continue
		}
		if v, _, _ = strings.Cut(v, "+"); v != version {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, remedy.With(fmt.Errorf("no %s files for Device OS %s in %s", p.Name, version, dir),
			"Name them like "+p.Name+"-system-part1@"+version+".bin, or leave out --firmware-dir to use the cache or synthetic modules.")
	}
	return out, nil
}

func hasFunction(files [][]byte, fn platform.Function) bool {
	for _, b := range files {
		if m, err := module.Parse(b); err == nil && m.Function == fn {
			return true
		}
	}
	return false
}
