package run_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/serialport"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
	"github.com/particle-flasher/particle-flasher/flasher/usb"
	"github.com/particle-flasher/particle-flasher/internal/simports"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// The benchmarks run the virtual device in real time (scale 1) behind the libusb shim, and
// the flasher in a child process with the real USB and serial doors, as on a bench. They
// report ratios, never timed assertions.

const benchChild = "TestBenchChild"

// benchResult is what the child reports.
type benchResult struct {
	Wall  time.Duration
	Steps int
	Error string
}

const benchMarker = "BENCH-RESULT "

// TestBenchChild is the flasher side of the benchmarks; it does nothing unless a
// benchmark started it.
func TestBenchChild(t *testing.T) {
	if !usbsim.InChild(benchChild) {
		t.Skip("the flasher half of the benchmarks (run by them in a child process)")
	}
	h, err := usb.NewHost()
	require.NoError(t, err)
	defer h.Close()
	doors := &device.USB{Host: h, ListPorts: simports.Reader(os.Getenv(envPorts))}
	o := run.Options{Bus: doors, Journal: &run.Store{Dir: os.Getenv(envState)}}
	if os.Getenv("PFLASH_BENCH_TRACE") != "" {
		t0 := time.Now()
		o.Events = func(e run.Event) {
			if e.Event != run.EvProgress {
				fmt.Fprintf(os.Stderr, "%8.3f %s %s %s %s\n", time.Since(t0).Seconds(), e.Event, e.StepID, e.Waiting, e.Error)
			}
		}
	}
	r := run.New(o)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := r.Flash(ctx, os.Getenv(envDevice), releases[os.Getenv(envLeg)].target(t))
	out := benchResult{Wall: time.Since(start)}
	if res != nil && res.Plan != nil {
		out.Steps = len(res.Plan.Steps)
	}
	if err != nil {
		out.Error = err.Error()
	}
	b, _ := json.Marshal(out)
	fmt.Println(benchMarker + string(b))
}

// benchRig is a fleet with the shim built once for all iterations.
type benchRig struct {
	f     *sim.Fleet
	ports *simports.File
	ctx   context.Context
	// umockdev is the door particle-usb reaches the fleet through (started on first use).
	umockdev *usbsim.UmockdevBridge
}

func newBenchRig(b *testing.B) *benchRig {
	f, err := sim.NewFleet(sim.FleetOptions{ShimDir: filepath.Join(b.TempDir(), "shim")})
	require.NoError(b, err)
	b.Cleanup(func() { _ = f.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	return &benchRig{f: f, ports: simports.New(filepath.Join(b.TempDir(), "ports.json")), ctx: ctx}
}

// device adds a device at a release, running in real time.
func (r *benchRig) device(b *testing.B, key string) *sim.Device { return r.deviceAt(b, key, 1) }

// deviceAt adds a device at a release, running at the given sim time scale.
func (r *benchRig) deviceAt(b *testing.B, key string, scale float64) *sim.Device {
	rel := releases[key]
	bins := append(append([][]byte(nil), rel.bins(b)...), readShared(b, "apps", apps[rel.platform]))
	if rel.platform == "electron" && rel.version == "1.5.2" {
		bins = append(bins, readShared(b, "releases", "electron-bootloader@2.3.1+lto.bin"))
	}
	d, err := r.f.Add(sim.Options{Platform: plat(b, rel.platform), Modules: bins, DeviceID: newID(), Scale: scale})
	require.NoError(b, err)
	b.Cleanup(func() { _ = d.Close() })
	r.ports.Follow(r.ctx, d)
	return d
}

// flash runs our flasher in the child against the device, to the release.
func (r *benchRig) flash(b *testing.B, d *sim.Device, to string) benchResult {
	cmd := r.f.Server().TestCommand(benchChild, "-test.timeout=6m")
	cmd.Env = append(cmd.Env, envLeg+"="+to, envDevice+"="+d.ID(), envPorts+"="+r.ports.Path(), envState+"="+b.TempDir())
	out, err := cmd.CombinedOutput()
	require.NoError(b, err, "%s", out)
	if os.Getenv("PFLASH_BENCH_TRACE") != "" {
		b.Logf("child output:\n%s", out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), benchMarker); ok {
			var res benchResult
			require.NoError(b, json.Unmarshal([]byte(rest), &res))
			require.Empty(b, res.Error)
			return res
		}
	}
	b.Fatalf("no result from the child:\n%s", out)
	return benchResult{}
}

// BenchmarkPhotonUpgrade is acceptance 6: a Photon 1.5.2 -> 2.3.1 upgrade at sim time
// scale 1, reporting our wall time over the device-bound time the sim charged
// ("wall/device", goal <= 1.15), and the same job done the way particle-cli did it before
// 3.16 (switch to DFU, then dfu-util once per file, opening the device afresh each time,
// :leave on the last) as a ratio of its wall time to ours ("old/ours").
func BenchmarkPhotonUpgrade(b *testing.B) {
	dfuUtil := testshared.DfuUtil(b)
	rig := newBenchRig(b)
	var ours, device, old time.Duration
	for b.Loop() {
		d := rig.device(b, "photon/1.5.2")
		before := d.Meter().Charged()
		res := rig.flash(b, d, "photon/2.3.1")
		ours += res.Wall
		device += d.Meter().Charged() - before
		requireAt(b, d, releases["photon/2.3.1"].target(b))

		od := rig.device(b, "photon/1.5.2")
		old += oldWay(b, rig, od, dfuUtil)
		requireAt(b, od, releases["photon/2.3.1"].target(b))
	}
	b.ReportMetric(float64(ours)/float64(device), "wall/device")
	b.ReportMetric(float64(old)/float64(ours), "old/ours")
	b.ReportMetric(ours.Seconds()/float64(b.N), "wall-s/op")
	b.ReportMetric(device.Seconds()/float64(b.N), "device-s/op")
	b.Logf("Photon 1.5.2 -> 2.3.1 at sim scale 1: ours %.1f s wall for %.1f s device-bound (ratio %.3f, goal <= 1.15); "+
		"particle-cli's old dfu-util way %.1f s (%.2f x ours)",
		ours.Seconds()/float64(b.N), device.Seconds()/float64(b.N), float64(ours)/float64(device), old.Seconds()/float64(b.N), float64(old)/float64(ours))
}

// oldWay does the upgrade as particle-cli < 3.16 `update` did (settings.js updates map,
// reference §6b): into DFU mode by the 14400-baud serial trigger (the CLI's serial
// switcher), then dfu-util per file - bootloader into the OTA region, the OTA flag into
// the DCT, system-part1, system-part2 with :leave - and done when the device runs 2.3.1.
func oldWay(b *testing.B, rig *benchRig, d *sim.Device, dfuUtil string) time.Duration {
	dir := testshared.Dir(b, "firmware", "releases")
	flag := filepath.Join(b.TempDir(), "ota-flag-a5.bin")
	require.NoError(b, os.WriteFile(flag, []byte{0xA5}, 0o644))
	start := time.Now()
	require.NoError(b, serialport.TriggerDFU(d.SerialPath()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := d.WaitMode(ctx, sim.ModeDFU)
	require.NoError(b, err)
	id := fmt.Sprintf("%04x:%04x", d.Platform().DFUVID, d.Platform().DFUPID)
	for _, w := range []struct{ alt, addr, file string }{
		{"0", "0x080C0000", filepath.Join(dir, "photon-bootloader@2.3.1+lto.bin")},
		{"1", "1753", flag},
		{"0", "0x08020000", filepath.Join(dir, "photon-system-part1@2.3.1.bin")},
		{"0", "0x08060000:leave", filepath.Join(dir, "photon-system-part2@2.3.1.bin")},
	} {
		cmd := exec.CommandContext(ctx, dfuUtil, "-d", id, "-a", w.alt, "-i", "0", "-s", w.addr, "-D", w.file)
		cmd.Env = append(os.Environ(), rig.f.Env()...)
		out, err := cmd.CombinedOutput()
		require.NoError(b, err, "dfu-util -s %s:\n%s", w.addr, out)
	}
	_, err = d.WaitFor(ctx, func(st sim.Status) bool { return st.Ready && st.Mode == sim.ModeNormal && st.SystemVersion == "2.3.1" })
	require.NoError(b, err)
	return time.Since(start)
}

// BenchmarkAlreadyCurrent is acceptance 6's last figure: asked to go to the release it
// already runs, the flasher only reads the device. It reports the total wall time and the
// bytes of flash that changed ("written-B", goal 0).
func BenchmarkAlreadyCurrent(b *testing.B) {
	rig := newBenchRig(b)
	var wall, device time.Duration
	changed := 0
	for b.Loop() {
		d := rig.device(b, "photon/2.3.1")
		before := d.InternalFlash()
		resets := d.Status().Resets
		charged := d.Meter().Charged()
		res := rig.flash(b, d, "photon/2.3.1")
		require.Zero(b, res.Steps, "nothing to do")
		wall += res.Wall
		device += d.Meter().Charged() - charged
		after := d.InternalFlash()
		for i := range before {
			if before[i] != after[i] {
				changed++
			}
		}
		require.Equal(b, resets, d.Status().Resets, "not even restarted")
		require.True(b, bytes.Equal(before, after))
	}
	b.ReportMetric(wall.Seconds()/float64(b.N), "wall-s/op")
	b.ReportMetric(device.Seconds()/float64(b.N), "device-s/op")
	b.ReportMetric(float64(changed)/float64(b.N), "written-B")
	b.Logf("Photon already at 2.3.1: %.2f s wall (%.2f s device-bound, reading the module table), %d bytes written",
		wall.Seconds()/float64(b.N), device.Seconds()/float64(b.N), changed/b.N)
}

// journey is one leg of the benchmarks' release journeys.
type journey struct{ from, to string }

// peerDir is particle-usb's peer program (peers/particle-usb), installed by `make peers`.
var peerDir = filepath.Join("..", "..", "peers", "particle-usb")

// theirs does the journey as particle-cli's `flash --local` does it, with Particle's own
// particle-usb (peers/particle-usb/cli-flash.js) through the umockdev door, and returns its
// wall time from the driver's start until the device runs the target; "" and a reason
// when node, particle-usb or umockdev are missing.
func (r *benchRig) theirs(b *testing.B, d *sim.Device, to string) (time.Duration, string) {
	node, err := exec.LookPath("node")
	if err != nil {
		return 0, "node is not installed"
	}
	if _, err := os.Stat(filepath.Join(peerDir, "node_modules", "particle-usb")); err != nil {
		return 0, "particle-usb is not installed (make peers)"
	}
	if r.umockdev == nil {
		u, err := r.f.Server().StartUmockdev(filepath.Join(b.TempDir(), "bridge"))
		if err != nil {
			return 0, err.Error()
		}
		b.Cleanup(func() { _ = u.Close() })
		r.umockdev = u
	}
	// particle-cli's plan for these files (flash-helper.js createFlashSteps,
	// filterModulesToFlash): the bootloader in normal mode, the radio stack left out,
	// everything else over DFU at its start address.
	args := []string{"cli-flash.js", "--device", d.ID()}
	dir := b.TempDir()
	for i, bin := range releases[to].bins(b) {
		m, err := module.Parse(bin)
		require.NoError(b, err)
		f := filepath.Join(dir, fmt.Sprintf("%d.bin", i))
		require.NoError(b, os.WriteFile(f, bin, 0o644))
		switch m.Function {
		case platform.FuncBootloader:
			args = append(args, "--normal", f)
		case platform.FuncRadio:
		default:
			args = append(args, "--dfu", fmt.Sprintf("%s@%d", f, m.Start))
		}
	}
	cmd := exec.Command(node, args...)
	cmd.Dir = peerDir
	cmd.Env = append(os.Environ(), r.umockdev.Env()...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(b, err, "cli-flash.js: %s\n%s", out, stderr.String())
	var res struct {
		Start int64 `json:"start_ms"`
	}
	require.NoError(b, json.Unmarshal(bytes.TrimSpace(out), &res), "%s", out)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want := releases[to].version
	_, err = d.WaitFor(ctx, func(st sim.Status) bool { return st.Ready && st.Mode == sim.ModeNormal && st.SystemVersion == want })
	require.NoError(b, err)
	return time.Since(time.UnixMilli(res.Start)), ""
}

// BenchmarkBoronJourney is issue 16's figure: a Boron 1.5.2 -> 4.1.0 (bootloader by control
// request, system part and SoftDevice) at sim scale 0, where everything left is host and
// protocol overhead (goal <= 1.0 s), and at scale 1, as wall time over the device-bound
// time the sim charged (goal <= 1.03).
func BenchmarkBoronJourney(b *testing.B) {
	rig := newBenchRig(b)
	jn := journey{"boron/1.5.2", "boron/4.1.0"}
	type side struct{ ours, theirs, device, theirsDevice time.Duration }
	var at [2]side // by scale
	why := ""
	for b.Loop() {
		for i, scale := range []float64{0, 1} {
			d := rig.deviceAt(b, jn.from, scale)
			before := d.Meter().Charged()
			res := rig.flash(b, d, jn.to)
			at[i].ours += res.Wall
			at[i].device += d.Meter().Charged() - before
			requireAt(b, d, releases[jn.to].target(b))
			_ = d.Close()

			d = rig.deviceAt(b, jn.from, scale)
			before = d.Meter().Charged()
			theirs, reason := rig.theirs(b, d, jn.to)
			if reason != "" {
				why = reason
			} else {
				at[i].theirs += theirs
				at[i].theirsDevice += d.Meter().Charged() - before
				requireAt(b, d, releases[jn.to].target(b))
			}
			_ = d.Close()
		}
	}
	n := float64(b.N)
	s0, s1 := at[0], at[1]
	b.ReportMetric(s0.ours.Seconds()/n, "scale0-s/op")
	b.ReportMetric(float64(s1.ours)/float64(s1.device), "wall/device")
	// b.Log: a benchmark's log is always printed, -v or not.
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "Boron 1.5.2 -> 4.1.0           %12s %14s %14s\n", "pflash", "particle-usb*", "theirs/ours")
	if why != "" {
		fmt.Fprintf(&tbl, "  (* not run: %s)\n", why)
	}
	fmt.Fprintf(&tbl, "  scale 0 (host overhead)      %10.2f s %12.2f s %14.2f   goal: pflash <= 1.0 s\n",
		s0.ours.Seconds()/n, s0.theirs.Seconds()/n, ratio(s0.theirs, s0.ours))
	fmt.Fprintf(&tbl, "  scale 1 wall                 %10.2f s %12.2f s %14.2f\n", s1.ours.Seconds()/n, s1.theirs.Seconds()/n, ratio(s1.theirs, s1.ours))
	fmt.Fprintf(&tbl, "  scale 1 device-bound         %10.2f s %12.2f s\n", s1.device.Seconds()/n, s1.theirsDevice.Seconds()/n)
	fmt.Fprintf(&tbl, "  scale 1 wall / device-bound  %12.3f %14.3f %14s   goal: pflash <= 1.03\n", ratio(s1.ours, s1.device), ratio(s1.theirs, s1.theirsDevice), "")
	fmt.Fprintf(&tbl, "  (* particle-cli's flash --local done with particle-usb through the umockdev door: peers/particle-usb/cli-flash.js)\n")
	b.Log("\n" + tbl.String())
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// BenchmarkJourneys runs every leg of the release journeys (TestJourneysThroughUSB: Photon,
// Electron, Argon and Boron up to the newer release and back down, with the real release
// files) at sim scale 1 through the USB and serial doors, and prints each leg's wall time
// over the device-bound time the sim charged (goal <= 1.03 for every leg).
func BenchmarkJourneys(b *testing.B) {
	legs := []journey{
		{"photon/1.5.2", "photon/2.3.1"}, {"photon/2.3.1", "photon/1.5.2"},
		{"electron/1.5.2", "electron/2.3.1"}, {"electron/2.3.1", "electron/1.5.2"},
		{"argon/2.3.0", "argon/4.1.0"}, {"argon/4.1.0", "argon/2.3.0"},
		{"boron/1.5.2", "boron/4.1.0"}, {"boron/4.1.0", "boron/1.5.2"},
	}
	if only := os.Getenv("PFLASH_BENCH_LEG"); only != "" { // e.g. "argon/4.1.0 ->"
		var some []journey
		for _, jn := range legs {
			if strings.Contains(jn.from+" -> "+jn.to, only) {
				some = append(some, jn)
			}
		}
		legs = some
	}
	rig := newBenchRig(b)
	wall := make([]time.Duration, len(legs))
	dev := make([]time.Duration, len(legs))
	for b.Loop() {
		for i, jn := range legs {
			d := rig.device(b, jn.from)
			before := d.Meter().Charged()
			res := rig.flash(b, d, jn.to)
			wall[i] += res.Wall
			dev[i] += d.Meter().Charged() - before
			requireAt(b, d, releases[jn.to].target(b))
			_ = d.Close()
		}
	}
	worst := 0.0
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "%-34s %9s %9s %7s\n", "journey at sim scale 1", "wall s", "device s", "ratio")
	for i, jn := range legs {
		r := float64(wall[i]) / float64(dev[i])
		worst = max(worst, r)
		fmt.Fprintf(&tbl, "%-34s %9.2f %9.2f %7.3f\n", jn.from+" -> "+jn.to, wall[i].Seconds()/float64(b.N), dev[i].Seconds()/float64(b.N), r)
	}
	fmt.Fprintf(&tbl, "worst wall/device %.3f (goal <= 1.03)\n", worst)
	b.Log("\n" + tbl.String())
	b.ReportMetric(worst, "worst-wall/device")
}
