package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	cache "github.com/particle-flasher/particle-flasher/firmware-cache"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/sim/releases"
	"github.com/particle-flasher/particle-flasher/flasher/target"
)

// envFirmwareDir names a directory of Device OS module files for `sim --version`, until
// the firmware cache exists.
const envFirmwareDir = "PFLASH_FIRMWARE_DIR"

type simFlags struct {
	platform    string
	version     string
	modules     []string
	mode        string
	count       int
	blank       bool
	dump        string
	scale       float64
	firmwareDir string
	socket      string
	protected   bool
	service     bool
	notSetUp    bool
	image       string
	deviceID    string
	umockdev    bool
}

// simDevice is one device in the first JSON line.
type simDevice struct {
	DeviceID string `json:"device_id"`
	Platform string `json:"platform"`
	Mode     string `json:"mode"`
	PTY      string `json:"pty"`
}

// simHello is the first JSON line: everything a script needs to talk to the devices.
type simHello struct {
	Env map[string]string `json:"env"`
	// UmockdevEnv (--umockdev) puts a program on the umockdev door instead: Debian's
	// umockdev preload library and the testbed, below whatever libusb it carries.
	UmockdevEnv map[string]string `json:"umockdev_env,omitempty"`
	Devices     []simDevice       `json:"devices"`
	Modules     string            `json:"modules"`
}

// simEvent is a later JSON line: a device changed mode.
type simEvent struct {
	Event    string `json:"event"`
	DeviceID string `json:"device_id"`
	Mode     string `json:"mode"`
	LED      string `json:"led"`
	Reason   string `json:"reason"`
	PTY      string `json:"pty"`
	OnBus    bool   `json:"on_bus"`
}

func newSimCmd(g *globals) *cobra.Command {
	f := &simFlags{}
	cmd := &cobra.Command{
		Use:   "sim --platform NAME (--version X.Y.Z | --modules FILE... | --blank)",
		Short: "Run virtual Particle devices to test and demo against",
		Long: "sim runs virtual Particle devices in the foreground until Ctrl-C: flash laid out as\n" +
			"the platform's, the given Device OS modules installed, booting as a real device\n" +
			"would (normal, safe mode, listening mode or DFU). libusb programs (dfu-util,\n" +
			"pflash) see them over USB when started with the printed environment; each device\n" +
			"in a Device OS mode has a serial port (a pty).\n\n" +
			"--version takes modules from --firmware-dir (default $" + envFirmwareDir + "):\n" +
			"the files whose headers match the platform and release; else from the firmware\n" +
			"cache (offline: `pflash cache fetch` first); else it builds synthetic modules\n" +
			"with that release's module versions.\n" +
			"With --json the first line is {\"env\": {...}, \"devices\": [...]}, then one line per\n" +
			"mode change. On SIGINT/SIGTERM --dump writes each device's internal flash to\n" +
			"DIR/<device_id>.bin, and sim exits 0.\n\n" +
			"--image FILE keeps the device's whole flash (internal, DCT, external) in FILE, written\n" +
			"a moment after every change and on exit: when FILE exists the device starts from it\n" +
			"(no --version or --modules needed), so a sim that was killed comes back as the same\n" +
			"device; give it the same --device-id. A raw internal-flash dump (--dump) works too.\n\n" +
			"--umockdev also starts a umockdev testbed where the devices are sysfs nodes and\n" +
			"/dev/bus/usb files and their serial ports /dev/ttyACM*: programs started with the\n" +
			"printed umockdev environment (LD_PRELOAD, UMOCKDEV_DIR) see them whatever libusb they\n" +
			"carry, static or not (node's usb, particle-usb, particle-cli).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSim(cmd.Context(), g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.platform, "platform", "", "platform name or ID (boron, photon, p2, ...)")
	fl.StringVar(&f.version, "version", "", "Device OS version to install (e.g. 4.1.0)")
	fl.StringSliceVar(&f.modules, "modules", nil, "module files to install (repeat or comma-separate)")
	fl.StringVar(&f.mode, "mode", "normal", "start mode: normal, dfu, listening or safe")
	fl.IntVar(&f.count, "count", 1, "number of devices")
	fl.BoolVar(&f.blank, "blank", false, "erased flash with only a bootloader: the devices start in DFU mode")
	fl.StringVar(&f.dump, "dump", "", "on exit, write each device's internal flash to DIR/<device_id>.bin")
	fl.Float64Var(&f.scale, "scale", 1, "time scale: 1 = a real device's pace, 0 = instant")
	fl.StringVar(&f.firmwareDir, "firmware-dir", os.Getenv(envFirmwareDir), "directory of module files for --version (env "+envFirmwareDir+")")
	fl.StringVar(&f.socket, "socket", "", "usbsim socket path (default: a new one under the temp dir)")
	fl.BoolVar(&f.protected, "protected", false, "Device Protection on (Device OS 6.x): the bootloader is its protected build")
	fl.BoolVar(&f.service, "service-mode", false, "with --protected: start in Service Mode, as Particle's cloud would leave it")
	fl.BoolVar(&f.notSetUp, "setup-not-done", false, "leave the setup-done flag unset (Gen3 before 4.0 then waits in listening mode)")
	fl.StringVar(&f.image, "image", "", "keep the device's flash in FILE, and start from it when it exists")
	fl.StringVar(&f.deviceID, "device-id", "", "device ID (24 hex digits; default: the image's, else random)")
	fl.BoolVar(&f.umockdev, "umockdev", false, "also show the devices through umockdev (any libusb, serial ports as /dev/ttyACM*; Debian packages umockdev, libumockdev-dev)")
	return cmd
}

func usage(format string, a ...any) error {
	return &exitError{code: exitUsage, err: remedy.With(fmt.Errorf(format, a...), "See `pflash sim --help` for the flags and examples.")}
}

func runSim(ctx context.Context, g *globals, f *simFlags) error {
	if ctx == nil {
		ctx = context.Background()
	}
	img, err := simImage(f)
	if err != nil {
		return err
	}
	if f.platform == "" && img != nil && img.Platform != "" {
		f.platform = img.Platform
	}
	if f.platform == "" {
		return usage("give --platform (or an --image that names it)")
	}
	p, err := parsePlatform(f.platform)
	if err != nil {
		return err
	}
	mode, err := sim.ParseMode(f.mode)
	if err != nil || mode == sim.ModeOff {
		return usage("--mode must be normal, dfu, listening or safe, not %q", f.mode)
	}
	if f.count < 1 {
		return usage("--count must be at least 1")
	}
	if f.version != "" && len(f.modules) > 0 {
		return usage("give --version or --modules, not both")
	}
	if f.image != "" && f.count != 1 {
		return usage("--image keeps one device: leave out --count")
	}
	if f.deviceID != "" && f.count != 1 {
		return usage("--device-id names one device: leave out --count")
	}
	var mods [][]byte
	var what string
	if img != nil {
		if f.version != "" || len(f.modules) > 0 || f.blank {
			return usage("%s exists: the device starts from it; leave out --version, --modules and --blank (or remove the file)", f.image)
		}
		if f.deviceID == "" {
			f.deviceID = img.DeviceID
		}
		what = "the flash image " + f.image
	} else {
		if f.version == "" && len(f.modules) == 0 && !f.blank {
			return usage("give --version, --modules, --blank or an existing --image")
		}
		if mods, what, err = simModules(ctx, g, p, f); err != nil {
			return err
		}
	}
	if f.service && !f.protected {
		return usage("--service-mode needs --protected")
	}
	if f.protected && img != nil {
		return usage("--protected applies to modules, not to an --image")
	}
	if f.protected {
		if mods, err = sim.Protect(p, mods); err != nil {
			return &exitError{code: exitUsage, err: remedy.With(err, "Give --version or modules with a bootloader.")}
		}
		what += ", with Device Protection on"
		if f.service {
			what += " (in Service Mode)"
		}
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fleet, err := sim.NewFleet(sim.FleetOptions{SocketPath: f.socket})
	if err != nil {
		return fmt.Errorf("starting the USB simulation: %w", err)
	}
	defer fleet.Close()
	for range f.count {
		if _, err := fleet.Add(sim.Options{Platform: p, Modules: mods, Mode: mode, Scale: f.scale, Blank: f.blank,
			ServiceMode: f.service, SetupNotDone: f.notSetUp, DeviceID: f.deviceID, Image: img, ImagePath: f.image}); err != nil {
			return &exitError{code: exitUsage, err: remedy.With(err, "Check --image and --device-id.")}
		}
	}

	hello := simHello{Env: fleet.EnvMap(), Modules: what}
	if f.umockdev {
		b, err := fleet.Server().StartUmockdev("")
		if err != nil {
			return &exitError{code: exitFailed, err: remedy.With(err, "Install Debian's umockdev and libumockdev-dev (scripts/ensure-deps.sh test does), or leave out --umockdev.")}
		}
		defer b.Close()
		for i, d := range fleet.Devices() {
			d.ServeTTY(ctx, b, i)
		}
		if err := b.Sync(); err != nil {
			return &exitError{code: exitFailed, err: err}
		}
		hello.UmockdevEnv = map[string]string{}
		for _, kv := range b.Env() {
			k, v, _ := strings.Cut(kv, "=")
			hello.UmockdevEnv[k] = v
		}
	}
	for _, d := range fleet.Devices() {
		st := d.Status()
		hello.Devices = append(hello.Devices, simDevice{DeviceID: d.ID(), Platform: p.Name, Mode: st.Mode.String(), PTY: st.Serial})
	}
	if g.json {
		if err := g.emit(hello); err != nil {
			return err
		}
	} else {
		printSimHello(g, p, hello)
	}

	done := make(chan struct{})
	events := make(chan simEvent, 64)
	for _, d := range fleet.Devices() {
		go watchDevice(ctx, d, events, done)
	}
	for {
		select {
		case ev := <-events:
			if g.json {
				_ = g.emit(ev)
			} else {
				fmt.Fprintf(g.stdout, "%s  %-9s %s (%s)\n", ev.DeviceID, ev.Mode, ev.LED, ev.Reason)
			}
		case <-ctx.Done():
			close(done)
			return finishSim(g, fleet, f.dump)
		}
	}
}

// simImage reads --image when the file exists (nil when there is none yet).
func simImage(f *simFlags) (*sim.Image, error) {
	if f.image == "" {
		return nil, nil
	}
	if _, err := os.Stat(f.image); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	img, err := sim.ReadImage(f.image)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: remedy.With(err, "Give a file `pflash sim --image` or --dump wrote, or a path that does not exist yet.")}
	}
	return img, nil
}

func finishSim(g *globals, fleet *sim.Fleet, dump string) error {
	if dump != "" {
		if err := fleet.Dump(dump); err != nil {
			return err
		}
		if !g.json {
			fmt.Fprintf(g.stdout, "Wrote %d flash dump(s) to %s\n", len(fleet.Devices()), dump)
		}
	}
	return nil
}

// watchDevice reports every mode change of a device until done.
func watchDevice(ctx context.Context, d *sim.Device, out chan<- simEvent, done <-chan struct{}) {
	last := d.Status()
	for {
		st, err := d.WaitFor(ctx, func(st sim.Status) bool {
			return st.Ready && (st.Mode != last.Mode || st.Resets != last.Resets || st.OnBus != last.OnBus)
		})
		if err != nil {
			return
		}
		last = st
		select {
		case out <- simEvent{Event: "mode", DeviceID: d.ID(), Mode: st.Mode.String(), LED: st.LED.String(), Reason: st.Reason, PTY: st.Serial, OnBus: st.OnBus}:
		case <-done:
			return
		}
	}
}

func printSimHello(g *globals, p *platform.Platform, h simHello) {
	w := g.stdout
	fmt.Fprintf(w, "Running %d virtual %s device(s) with %s.\n", len(h.Devices), p.DisplayName, h.Modules)
	for _, d := range h.Devices {
		pty := d.PTY
		if pty == "" {
			pty = "(no serial port in this mode)"
		}
		fmt.Fprintf(w, "  %s  %-9s %s\n", d.DeviceID, d.Mode, pty)
	}
	keys := make([]string, 0, len(h.Env))
	for k := range h.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var env []string
	for _, k := range keys {
		env = append(env, k+"="+h.Env[k])
	}
	fmt.Fprintf(w, "Point a libusb program at them, e.g.:\n  %s dfu-util -l\n", strings.Join(env, " "))
	if len(h.UmockdevEnv) > 0 {
		var uenv []string
		for _, k := range []string{"LD_PRELOAD", "UMOCKDEV_DIR"} {
			uenv = append(uenv, k+"="+h.UmockdevEnv[k])
		}
		fmt.Fprintf(w, "Or any program, whatever libusb it carries, through umockdev (serial ports as /dev/ttyACM*):\n  %s particle usb list\n", strings.Join(uenv, " "))
	}
	fmt.Fprintf(w, "Press Ctrl-C to stop.\n")
}

// simModules resolves what to install and describes it.
func simModules(ctx context.Context, g *globals, p *platform.Platform, f *simFlags) ([][]byte, string, error) {
	switch {
	case len(f.modules) > 0:
		var mods [][]byte
		for _, path := range f.modules {
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, "", &exitError{code: exitFailed, err: remedy.With(err, "Check the path of the --modules file.")}
			}
			if _, err := module.Parse(b); err != nil {
				return nil, "", &exitError{code: exitFailed, err: remedy.With(fmt.Errorf("%s: %w", path, err),
					"Give Particle module .bin files (`pflash inspect FILE` says what is wrong with this one).")}
			}
			mods = append(mods, b)
		}
		return mods, fmt.Sprintf("%d module file(s)", len(mods)), nil
	case f.version != "" && f.firmwareDir != "":
		mods, names, err := firmwareFromDir(f.firmwareDir, p, f.version)
		if err != nil {
			return nil, "", &exitError{code: exitFailed, err: err}
		}
		return mods, fmt.Sprintf("Device OS %s from %s (%s)", f.version, f.firmwareDir, strings.Join(names, ", ")), nil
	case f.version != "":
		return simRelease(ctx, g, p, strings.TrimPrefix(f.version, "v"))
	}
	return nil, "an erased flash", nil
}

// simRelease is a release for a virtual device, through the one resolver's sources: the
// firmware cache when it holds the release (offline: nothing is downloaded), else the
// release built from Particle's header dump. A version the platform never got is refused,
// naming its releases.
func simRelease(ctx context.Context, g *globals, p *platform.Platform, version string) ([][]byte, string, error) {
	cat, err := cache.Embedded()
	if err != nil {
		return nil, "", &exitError{code: exitFailed, err: err}
	}
	built := releases.Source{Catalog: cat}
	rel := cachedRelease(ctx, g, p, version)
	from := ""
	if rel != nil {
		from = "from the firmware cache: " + strings.Join(rel.Files, ", ")
		if rel.App == nil {
			// Device OS without its Tinker would sit in safe mode: the release's
			// application, built from its header dump, stands in.
			if b, err := built.Release(ctx, version, p); err == nil && b.App != nil {
				rel.App = b.App
				from += ", and the release's application built from its published header"
			}
		}
	} else {
		if err := target.Published(built, p, version); err != nil {
			// A platform with no published release headers at all (the Electron 2): a
			// release it did get is built from its module versions instead.
			if target.BeforeFirst(p, version) == nil && len(built.Versions(p)) == 0 {
				if set, serr := sim.SyntheticSet(p, version); serr == nil {
					return set, fmt.Sprintf("Device OS %s (built from its module versions: Particle publishes no module headers for the %s)", version, p.DisplayName), nil
				}
			}
			return nil, "", &exitError{code: exitUsage, err: err}
		}
		var err error
		if rel, err = built.Release(ctx, version, p); err != nil {
			return nil, "", &exitError{code: exitFailed, err: err}
		}
		from = "built from Particle's published module headers"
	}
	var mods [][]byte
	for _, m := range rel.OS {
		mods = append(mods, m.Data)
	}
	if rel.App != nil {
		mods = append(mods, rel.App.Data)
	}
	return mods, fmt.Sprintf("Device OS %s (%s)", version, from), nil
}

// cachedRelease is the release (and its application when cached) from the firmware
// cache, without the network; nil when the cache does not hold its Device OS parts.
func cachedRelease(ctx context.Context, g *globals, p *platform.Platform, version string) *target.Release {
	c, err := (&cacheFlags{offline: true}).open(g, nil)
	if err != nil {
		return nil
	}
	rel, err := target.FromCache{Cache: c, AppWait: time.Millisecond}.Release(ctx, version, p)
	if err != nil {
		return nil
	}
	return rel
}

// firmwareFromDir picks, from a directory tree of .bin files, the modules of one Device
// OS release for a platform: bootloader and system parts by module version, the rest
// (SoftDevice, NCP, Tinker) by the release's file naming ("...@<version>.bin").
func firmwareFromDir(dir string, p *platform.Platform, version string) ([][]byte, []string, error) {
	sys, ok := module.SystemModuleVersion(version)
	if !ok {
		return nil, nil, fmt.Errorf("unknown Device OS version %q", version)
	}
	bl, _ := module.BootloaderModuleVersion(version)
	var mods [][]byte
	var names []string
	seen := map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(e.Name(), ".bin") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		m, err := module.Parse(b)
		if err != nil || m.PlatformID != p.ID || m.Validate() != nil {
			return nil
		}
		var match bool
		switch m.Function {
		case platform.FuncBootloader:
			match = m.Index != 0 || m.Version == bl
		case platform.FuncSystem, platform.FuncMono:
			match = m.Version == sys
		default:
			match = strings.Contains(e.Name(), "@"+version)
		}
		key := fmt.Sprintf("%d/%d", m.Function, m.Index)
		if match && !seen[key] {
			seen[key] = true
			mods = append(mods, b)
			names = append(names, e.Name())
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	if !seen[fmt.Sprintf("%d/%d", platform.FuncSystem, 1)] && !seen[fmt.Sprintf("%d/%d", platform.FuncMono, 0)] {
		return nil, nil, errors.New("no " + p.Name + " system part for Device OS " + version + " in " + dir)
	}
	return mods, names, nil
}
