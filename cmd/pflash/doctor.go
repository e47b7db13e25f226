package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/particle-flasher/particle-flasher/assets"
	cache "github.com/particle-flasher/particle-flasher/firmware-cache"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/usb"
)

// check is one doctor finding. Fix is what a person types or does; it is empty when the
// check passed.
type check struct {
	Check   string `json:"check"`
	OK      bool   `json:"ok"`
	Detail  string `json:"detail"`
	Problem string `json:"problem,omitempty"`
	Fix     string `json:"fix,omitempty"`
	// access marks a permission problem, which gets its own exit code.
	access bool
}

// udevRuleDirs are where udev reads rules from, most specific first.
var udevRuleDirs = []string{"/etc/udev/rules.d", "/run/udev/rules.d", "/lib/udev/rules.d", "/usr/lib/udev/rules.d"}

func newDoctorCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check USB permissions, udev rules, ModemManager, attached devices and the firmware cache",
		Long: "doctor looks for everything that commonly stops a Particle device from being flashed\n" +
			"on this computer and prints a fix for each problem. Exit status 0 when all is well,\n" +
			"4 when a permission problem was found, 1 for other problems.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmdContext(cmd), 2*time.Minute)
			defer cancel()
			checks := []check{}
			if runtime.GOOS == "linux" {
				checks = append(checks, checkUdevRule(), checkModemManager())
			}
			checks = append(checks, checkUSB()...)
			checks = append(checks, checkCache(ctx, g.cacheDir))
			problems, access := 0, false
			for _, c := range checks {
				if !c.OK {
					problems++
					access = access || c.access
				}
				if g.json {
					if err := g.emit(c); err != nil {
						return err
					}
					continue
				}
				if c.OK {
					fmt.Fprintf(g.stdout, "ok       %-16s %s\n", c.Check, c.Detail)
					continue
				}
				fmt.Fprintf(g.stdout, "PROBLEM  %-16s %s\n", c.Check, c.Problem)
				for _, l := range strings.Split(strings.TrimRight(c.Fix, "\n"), "\n") {
					fmt.Fprintf(g.stdout, "         fix: %s\n", l)
				}
			}
			switch {
			case problems == 0:
				return nil
			case access:
				return &exitError{code: exitAccess, err: errReported}
			default:
				return &exitError{code: exitFailed, err: errReported}
			}
		},
	}
}

// checkUdevRule looks for a rule that gives users access to Particle's vendor ID.
func checkUdevRule() check {
	c := check{Check: "udev rule"}
	for _, dir := range udevRuleDirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.rules"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			if strings.Contains(strings.ToLower(string(b)), "2b04") {
				c.OK = true
				c.Detail = "Particle devices are covered by " + f
				if !strings.Contains(string(b), "ID_MM_DEVICE_IGNORE") {
					c.OK = false
					c.Problem = f + " does not tell ModemManager to leave Particle serial ports alone"
					c.Fix = "replace it with this rule (save as 50-particle.rules):\n" + assets.UdevRules + assets.UdevInstallCommand
				}
				return c
			}
		}
	}
	c.Problem = "no udev rule for Particle devices (vendor 2b04): only root can open them"
	c.Fix = "save this as 50-particle.rules:\n" + assets.UdevRules + "then run: " + assets.UdevInstallCommand + "\nand unplug and replug the device"
	c.access = true
	return c
}

// checkModemManager warns when ModemManager runs: it probes new ttyACM ports with AT
// commands, which garbles listening mode unless the udev rule tells it to stay away.
func checkModemManager() check {
	c := check{Check: "ModemManager", OK: true, Detail: "not running"}
	procs, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.TrimSpace(string(b)) == "ModemManager" {
			c.Detail = "running; the Particle udev rule's ID_MM_DEVICE_IGNORE keeps it off the devices"
			return c
		}
	}
	return c
}

// checkUSB lists the bus: libusb must work, and every Particle device must open.
func checkUSB() []check {
	h, err := usb.NewHost()
	if err != nil {
		fix := remedy.Of(err) // the backend's words: libusb on Linux and macOS, WinUSB on Windows
		if fix == "" {
			fix = "install libusb 1.0 (Debian: apt-get install libusb-1.0-0)"
		}
		return []check{{Check: "usb", Problem: "cannot start USB: " + remedy.Human(err), Fix: fix}}
	}
	defer h.Close()
	infos, err := h.List()
	if err != nil {
		fix := remedy.Of(err)
		if fix == "" {
			fix = "check that /dev/bus/usb is readable (a container may need it mounted)"
		}
		return []check{{Check: "usb devices", Problem: "cannot list USB devices: " + remedy.Human(err), Fix: fix}}
	}
	var out []check
	dfuCount := 0
	for _, in := range infos {
		if in.Err != nil {
			c := check{Check: "usb device", Problem: in.Err.Error()}
			var pe *usb.PermissionError
			if errors.As(in.Err, &pe) {
				c.access = true
				c.Problem = "permission denied opening the " + in.String()
				c.Fix = usb.PermissionRemedy()
			} else if c.Fix = remedy.Of(in.Err); c.Fix == "" {
				// A missing WinUSB driver or a stale Device Manager entry carries its own fix.
				c.Fix = "unplug and replug the device; try another cable or USB port"
			}
			out = append(out, c)
			continue
		}
		if in.DFU {
			dfuCount++
		}
	}
	ok := len(out) == 0
	summary := check{Check: "usb devices", OK: true, Detail: fmt.Sprintf("%d Particle device(s) attached, %d in DFU mode", len(infos), dfuCount)}
	if !ok {
		summary.Detail += fmt.Sprintf("; %d could not be opened", len(out))
	}
	return append([]check{summary}, out...)
}

// checkCache re-verifies every cached file (bad ones are quarantined so nothing flashes them).
func checkCache(ctx context.Context, dir string) check {
	c := check{Check: "firmware cache"}
	if dir == "" {
		d, err := cache.DefaultDir()
		if err != nil {
			c.Problem, c.Fix = err.Error(), "pass --cache-dir or set PFLASH_CACHE_DIR"
			return c
		}
		dir = d
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		c.OK, c.Detail = true, dir+" is empty (nothing downloaded yet)"
		return c
	}
	cc, err := cache.Open(cache.Options{Dir: dir, Offline: true})
	if err != nil {
		c.Problem, c.Fix = "cannot open the cache: "+err.Error(), "check the permissions of "+dir+", or pass --cache-dir"
		return c
	}
	res, err := cc.Verify(ctx)
	if err != nil {
		c.Problem, c.Fix = "cannot verify the cache: "+err.Error(), "check the permissions of "+dir
		return c
	}
	bad := 0
	for _, r := range res {
		if !r.OK {
			bad++
		}
	}
	if bad > 0 {
		c.Problem = fmt.Sprintf("%d of %d cached files were damaged and have been quarantined", bad, len(res))
		c.Fix = "run `pflash cache fetch VERSION --platform P` again to download them"
		return c
	}
	c.OK, c.Detail = true, fmt.Sprintf("%d file(s) in %s verified", len(res), dir)
	return c
}
