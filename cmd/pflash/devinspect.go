package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// inspectJSON is the one object `inspect --device ID --json` prints.
type inspectJSON struct {
	DeviceID   string   `json:"device_id"`
	Platform   string   `json:"platform"`
	PlatformID *uint16  `json:"platform_id"`
	Mode       string   `json:"mode"`
	Doors      []string `json:"doors"`
	DeviceOS   string   `json:"device_os"`
	// Boot is the mode Device OS comes up in with these modules, and why when it is not
	// normal mode ("there is no application"); Heals the ways out of an
	// application-caused safe mode, the one that keeps the application first.
	Boot  bootJSON   `json:"boot"`
	Heals []healJSON `json:"heals,omitempty"`
	// Protection is Device Protection's state: open, protected, service (Service Mode)
	// or unknown; SetupDone the setup-done flag (null where it was not read).
	Protection state.Protection `json:"protection"`
	SetupDone  state.Flag       `json:"setup_done"`
	// Identity is the serial number, ICCID, IMEI and NCP version ("" where not read or
	// not on the platform): serial_number, iccid, imei, ncp_version.
	state.Identity
	// Assets are the asset files the device holds (null where they cannot be read).
	Assets  []module.Asset `json:"assets"`
	Modules []state.Module `json:"modules"`
}

type healJSON struct {
	Kind     string `json:"kind"` // "upgrade" or "replace-app"
	DeviceOS string `json:"device_os"`
	Title    string `json:"title"`
}

type bootJSON struct {
	Mode string `json:"mode"`
	Why  string `json:"why,omitempty"`
}

// matchDevice reports whether target names d: its device ID (any case), its USB serial
// string, its key, or one of its ports.
func matchDevice(d device.Device, target string) bool {
	t := strings.TrimSpace(target)
	if t == "" {
		return false
	}
	if strings.EqualFold(d.ID, t) || d.Serial == t || d.Key == t {
		return true
	}
	for _, r := range d.Doors {
		if r.Path == t {
			return true
		}
	}
	return false
}

// inspectDevice implements `pflash inspect --device ID`: it finds the attached device,
// reads its modules through whichever door its mode allows (control request 90, `s`, or
// DfuSe UPLOAD in DFU mode) and prints each with PASS/FAIL for integrity, address range,
// platform and every dependency, and the Device OS version. Exit status: 0 when every
// installed module passes, 1 when one fails or the modules cannot be read, 3 when no such
// device is attached, 4 when it cannot be opened (permissions).
func inspectDevice(g *globals, id string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	doors, closeAll, err := openDoors(g)
	if err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	defer closeAll()
	sctx, cancel := context.WithTimeout(ctx, scanTimeout)
	defer cancel()
	res, err := device.Scan(sctx, device.Options{Doors: doors, ReadModules: func(d device.Device) bool { return matchDevice(d, id) }})
	if err != nil {
		return &exitError{code: exitFailed, err: remedy.With(err, "try again; `pflash list` shows whether the device answers")}
	}
	var found []device.Device
	for _, d := range res.Devices {
		if matchDevice(d, id) {
			found = append(found, d)
		}
	}
	switch {
	case len(found) == 0:
		return &exitError{code: exitNoDevice, err: remedy.With(fmt.Errorf("no attached device matches %q", id),
			"check the USB cable and that the device is powered; `pflash list` shows the attached devices and their IDs")}
	case len(found) > 1:
		var where []string
		for _, d := range found {
			for _, r := range d.Doors {
				where = append(where, r.Path)
			}
		}
		return &exitError{code: exitFailed, err: remedy.With(fmt.Errorf("%d attached devices match %q (a duplicate ID)", len(found), id),
			"name one by its port instead: "+strings.Join(where, ", "))}
	}
	d := found[0]
	if d.Err != nil && d.Modules == nil {
		return &exitError{code: exitAccess, err: d.Err}
	}
	if d.ModulesErr != nil {
		err := fmt.Errorf("read the modules of the %s: %w", d.Name(), d.ModulesErr)
		if remedy.Of(err) == "" {
			err = remedy.With(err, "Try again; if it keeps failing, unplug and replug the device, and run with -v to see what happens on the wire.")
		}
		return &exitError{code: exitFailed, err: err}
	}
	if d.Modules == nil && d.Reading.Protection != state.ProtectionProtected {
		return &exitError{code: exitFailed, err: remedy.With(fmt.Errorf("the %s is in %s mode, where no door can read its modules", d.Name(), modeName(d.Mode)),
			"put it in DFU mode (hold MODE, tap RESET, release when the LED blinks yellow) and try again")}
	}
	if g.json {
		if err := g.emit(toInspectJSON(d)); err != nil {
			return err
		}
	} else {
		printDeviceModules(g.stdout, d)
	}
	for _, m := range d.Reading.Effective() {
		if !m.Valid() {
			return &exitError{code: exitFailed, err: errReported}
		}
	}
	return nil
}

func toInspectJSON(d device.Device) inspectJSON {
	j := inspectJSON{DeviceID: d.ID, Mode: modeName(d.Mode), Doors: d.DoorNames(), DeviceOS: d.Reading.DeviceOSName(), Modules: d.Modules,
		Boot: bootJSON{Mode: modeName(d.Boot.Mode), Why: d.Boot.Why}, Protection: d.Reading.Protection, SetupDone: d.Reading.SetupDone, Identity: d.Reading.Identity}
	if j.Modules == nil {
		j.Modules = []state.Module{}
	}
	if d.Reading.AssetsKnown {
		j.Assets = append([]module.Asset{}, d.Reading.Assets...)
	}
	for _, h := range plan.Heals(d.Reading) {
		kind := "upgrade"
		if h.Kind == plan.HealReplaceApp {
			kind = "replace-app"
		}
		j.Heals = append(j.Heals, healJSON{Kind: kind, DeviceOS: h.DeviceOS, Title: h.Title})
	}
	if d.Platform != nil {
		j.Platform = d.Platform.Name
		pid := d.Platform.ID
		j.PlatformID = &pid
	}
	return j
}

var functionTitles = map[platform.Function]string{
	platform.FuncBootloader: "Bootloader", platform.FuncSystem: "System", platform.FuncUser: "User",
	platform.FuncRadio: "Radio stack", platform.FuncNCP: "NCP", platform.FuncMono: "Monolithic", platform.FuncAsset: "Asset",
}

func passFail(ok bool, unchecked bool) string {
	switch {
	case unchecked:
		return "not checked"
	case ok:
		return "PASS"
	}
	return "FAIL"
}

// printDeviceModules renders the modules the way `particle serial inspect` does, plus a
// line per dependency and what is wrong with a damaged slot.
func printDeviceModules(w io.Writer, d device.Device) {
	var doors []string
	for _, r := range d.Doors {
		doors = append(doors, r.Door+" "+r.Path)
	}
	fmt.Fprintf(w, "%s, %s mode (%s)\n", d.Name(), modeName(d.Mode), strings.Join(doors, ", "))
	if d.Boot.Why != "" {
		if d.Mode == device.ModeDFU && d.Boot.Mode != device.ModeDFU {
			fmt.Fprintf(w, "Leaving DFU mode it would start in %s.\n", d.Boot)
		} else {
			fmt.Fprintf(w, "%s\n", d.Boot.Sentence())
		}
	}
	if heals := plan.Heals(d.Reading); len(heals) > 0 {
		fmt.Fprintln(w, "To leave safe mode:")
		for i, h := range heals {
			fmt.Fprintf(w, "  %d. %s: pflash flash --to %s --device %s\n", i+1, h.Title, h.DeviceOS, d.ID)
		}
	}
	if v := d.Reading.DeviceOSName(); v != "" {
		fmt.Fprintf(w, "Device OS %s\n", v)
	} else {
		fmt.Fprintln(w, "Device OS: unknown (no readable system part)")
	}
	for _, f := range d.Reading.Identity.Facts() {
		fmt.Fprintf(w, "%s: %s\n", f.Label, f.Value)
	}
	if pr := d.Reading.Protection; pr != state.ProtectionUnknown {
		fmt.Fprintf(w, "Device Protection: %s\n", pr.Words())
	}
	if sd := d.Reading.SetupDone; sd != state.FlagUnknown {
		fmt.Fprintf(w, "Setup done: %s\n", sd)
	}
	if d.Reading.AssetsKnown && len(d.Reading.Assets) > 0 {
		fmt.Fprintln(w, "Assets:")
		for _, a := range d.Reading.Assets {
			fmt.Fprintf(w, "  %s (%d bytes, SHA-256 %s)\n", a.Name, a.Size, a.Hash)
		}
	}
	if len(d.Modules) == 0 {
		return
	}
	src := d.Modules[0].Source
	fmt.Fprintf(w, "Modules (read %s):\n", map[string]string{state.SourceControl: "with control request 90", state.SourceSerial: "with the `s` command",
		state.SourceDFU: "from flash over DFU"}[src])
	for _, m := range d.Modules {
		title := functionTitles[m.Function]
		if title == "" {
			title = m.Function.String()
		}
		name := ""
		if m.Name != "" {
			name = " (" + m.Name + ")"
		}
		if !m.Present {
			why := "empty"
			if m.Problem != "" && m.Problem != "empty (erased)" {
				why = m.Problem
			}
			fmt.Fprintf(w, "  %s module #%d%s, %s location: %s\n", title, m.Index, name, m.Location, why)
			continue
		}
		ver := fmt.Sprintf("version %d", m.Version)
		if m.DeviceOS != "" {
			ver += " (Device OS " + m.DeviceOS + ")"
		} else if m.Description != "" {
			ver += " (" + m.Description + ")"
		}
		size := ""
		if m.MaxSize > 0 {
			size = fmt.Sprintf(", %d bytes max size", m.MaxSize)
		}
		fmt.Fprintf(w, "  %s module #%d%s - %s, %s location%s\n", title, m.Index, name, ver, m.Location, size)
		un := func(c string) bool {
			for _, u := range m.Unchecked {
				if u == c {
					return true
				}
			}
			return false
		}
		fmt.Fprintf(w, "    Integrity: %s\n", passFail(m.Checks.Integrity, un("integrity")))
		fmt.Fprintf(w, "    Address Range: %s\n", passFail(m.Checks.Range, un("range")))
		fmt.Fprintf(w, "    Platform: %s\n", passFail(m.Checks.Platform, un("platform")))
		fmt.Fprintf(w, "    Dependencies: %s\n", passFail(m.Checks.Dependencies, un("dependencies")))
		for _, dep := range m.Deps {
			dt := functionTitles[dep.Function]
			if dt == "" {
				dt = dep.Function.String()
			}
			have := "none installed"
			if dep.Have > 0 {
				have = fmt.Sprintf("installed %d", dep.Have)
			}
			verdict := passFail(dep.Met, dep.Unknown)
			if dep.Unknown {
				have = "not visible through this door"
			}
			fmt.Fprintf(w, "      %s module #%d >= %d: %s (%s)\n", strings.ToLower(dt), dep.Index, dep.Version, verdict, have)
		}
		if m.Problem != "" {
			fmt.Fprintf(w, "    Note: %s\n", m.Problem)
		}
	}
}
