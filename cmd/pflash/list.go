package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/state"
	"github.com/particle-flasher/particle-flasher/flasher/usb"
)

// openDoors gives the doors device commands look through: USB (libusb) and serial ports.
// Tests replace it. A missing libusb is not fatal: the serial door still works, and the
// problem is reported on stderr.
var openDoors = func(g *globals) (doors []device.Door, closeAll func(), err error) {
	closeAll = func() {}
	h, herr := usb.NewHost()
	if herr != nil {
		fmt.Fprintf(g.stderr, "pflash: USB unavailable, looking at serial ports only: %v\n", herr)
		if r := remedy.Of(herr); r != "" {
			fmt.Fprintf(g.stderr, "What to do: %s\n", r)
		}
	} else {
		doors = append(doors, &device.USB{Host: h})
		closeAll = func() {
			if err := h.Close(); err != nil {
				slog.Debug("closing libusb", "err", err)
			}
		}
	}
	doors = append(doors, &device.SerialDoor{})
	return doors, closeAll, nil
}

// scanTimeout bounds a one-shot look at the devices, module readings included (a DFU
// reading verifies every module's CRC: a few seconds per device over a real cable).
var scanTimeout = 3 * time.Minute

// deviceJSON is one device in `list --json` and the device part of watch events. The keys
// device_id, platform, platform_id, mode and doors are an interface scripts rely on.
type deviceJSON struct {
	DeviceID   string   `json:"device_id"`
	Platform   string   `json:"platform"`
	PlatformID *uint16  `json:"platform_id"`
	Mode       string   `json:"mode"`
	Doors      []string `json:"doors"`
	// Ports says where each door reaches it (USB port path, tty).
	Ports []device.DoorRef `json:"ports"`
	// Serial is the USB serial string when it is not a device ID (Photon DFU defect).
	Serial    string `json:"serial,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
	Missing   bool   `json:"missing,omitempty"`
	Error     string `json:"error,omitempty"`
	Remedy    string `json:"remedy,omitempty"`
	// Why says why the device is in safe mode (or would stay in DFU mode), in words:
	// "there is no application".
	Why string `json:"why,omitempty"`
}

func modeName(m state.Mode) string { return m.String() }

func toDeviceJSON(d device.Device) deviceJSON {
	j := deviceJSON{DeviceID: d.ID, Mode: modeName(d.Mode), Doors: d.DoorNames(), Ports: d.Doors,
		Serial: d.Serial, Duplicate: d.Duplicate, Missing: d.Missing}
	if j.Ports == nil {
		j.Ports = []device.DoorRef{}
	}
	if d.Platform != nil {
		j.Platform = d.Platform.Name
		id := d.Platform.ID
		j.PlatformID = &id
	}
	if d.Err != nil {
		j.Error, j.Remedy = d.Err.Error(), remedy.Of(d.Err)
	}
	if d.Boot.Mode == d.Mode || d.Mode == device.ModeDFU && d.Boot.Mode == device.ModeDFU {
		j.Why = d.Boot.Why
	}
	return j
}

// whyWords is ": the reason" for a device in safe mode (or stuck in DFU mode), "" else.
func whyWords(d device.Device) string {
	if d.Boot.Why != "" && d.Boot.Mode == d.Mode {
		return " (" + d.Boot.Why + ")"
	}
	return ""
}

// watchEventJSON is one line of `list --watch --json`.
type watchEventJSON struct {
	Event string `json:"event"`
	Time  string `json:"time"`
	deviceJSON
	PrevMode string `json:"prev_mode,omitempty"`
	// Modules is how many modules a modules-read event found; Valid how many passed.
	Modules *int   `json:"modules,omitempty"`
	Valid   *int   `json:"valid,omitempty"`
	Other   string `json:"other,omitempty"`
	Door    string `json:"door,omitempty"`
}

func newListCmd(g *globals) *cobra.Command {
	var watch bool
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List attached Particle devices: device ID, platform, mode and how they are reached",
		Long: "list finds Particle devices on USB (normal and DFU mode) and on serial ports and shows\n" +
			"one row per device, however many doors it is reachable through. Safe mode is inferred\n" +
			"from the device's own module table (a failed check).\n\n" +
			"--watch keeps watching and prints every change (appeared, changed-mode, modules-read,\n" +
			"missing, returned, disappeared, duplicate-id) until Ctrl-C. A device that leaves the\n" +
			"bus is reported missing at once and disappeared after --grace, so a reset into or\n" +
			"out of DFU mode stays one device.\n\n" +
			"With --json: one object per device (device_id, platform, platform_id, mode, doors),\n" +
			"or one object per event with --watch (a \"ready\" event follows the devices attached at\n" +
			"the start).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmdContext(cmd), os.Interrupt, syscall.SIGTERM)
			defer stop()
			doors, closeAll, err := openDoors(g)
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			defer closeAll()
			if watch {
				return watchDevices(ctx, g, doors, grace)
			}
			return listDevices(ctx, g, doors)
		},
	}
	cmd.Flags().BoolVar(&watch, "watch", false, "keep watching and print every change until Ctrl-C")
	cmd.Flags().DurationVar(&grace, "grace", 4*time.Second, "with --watch: how long a device may be off the bus (resetting) before it is reported disappeared")
	return cmd
}

func cmdContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

func listDevices(ctx context.Context, g *globals, doors []device.Door) error {
	sctx, cancel := context.WithTimeout(ctx, scanTimeout)
	defer cancel()
	res, err := device.Scan(sctx, device.Options{
		Doors: doors,
		// Only a normal-mode device's modules matter here: they tell safe mode apart.
		ReadModules: func(d device.Device) bool { return d.Mode == device.ModeNormal },
	})
	if err != nil {
		return &exitError{code: exitFailed, err: remedy.With(err, "try again; if it keeps failing, unplug the devices and run `pflash list -v` to see which one does not answer")}
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(g.stderr, "pflash: warning: %v\n", w.Err)
	}
	var denied error
	for _, d := range res.Devices {
		if d.Err != nil && denied == nil {
			denied = d.Err
		}
	}
	if g.json {
		for _, d := range res.Devices {
			if err := g.emit(toDeviceJSON(d)); err != nil {
				return err
			}
		}
	} else {
		printDevices(g.stdout, res.Devices)
	}
	if denied != nil {
		if !g.json {
			fmt.Fprintf(g.stderr, "pflash: %v\n", denied)
			if r := remedy.Of(denied); r != "" {
				fmt.Fprintf(g.stderr, "What to do: %s\n", r)
			}
		}
		return &exitError{code: exitAccess, err: errReported}
	}
	return nil
}

func printDevices(w io.Writer, devs []device.Device) {
	if len(devs) == 0 {
		fmt.Fprintln(w, "No Particle devices found. Check the USB cable (some only charge) and that the device is powered.")
		return
	}
	sort.SliceStable(devs, func(i, j int) bool { return devs[i].Key < devs[j].Key })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE ID\tPLATFORM\tMODE\tDOORS\tPORTS")
	for _, d := range devs {
		j := toDeviceJSON(d)
		id := j.DeviceID
		if id == "" {
			id = "(unknown)"
			if j.Serial != "" {
				id = "serial " + j.Serial
			}
		}
		plat := "unknown"
		if d.Platform != nil {
			plat = d.Platform.DisplayName
		}
		var ports []string
		for _, p := range d.Doors {
			ports = append(ports, p.Path)
		}
		note := ""
		if d.Duplicate {
			note = "  (duplicate ID!)"
		}
		if d.Err != nil {
			note += "  (cannot open: permission)"
		}
		if j.Why != "" {
			note += "  (" + j.Why + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s%s\n", id, plat, j.Mode, strings.Join(j.Doors, "+"), strings.Join(ports, " "), note)
	}
	_ = tw.Flush()
}

func watchDevices(ctx context.Context, g *globals, doors []device.Door, grace time.Duration) error {
	if grace == 0 {
		grace = -1 // the flag's 0 means "none", the watcher's 0 means "default"
	}
	w := device.NewWatcher(device.Options{Doors: doors, Grace: grace})
	if !g.json {
		fmt.Fprintln(g.stdout, "Watching for Particle devices (Ctrl-C to stop)...")
	}
	for e := range w.Run(ctx) {
		if e.Kind == device.Ready && !g.json {
			continue
		}
		if g.json {
			if err := g.emit(toWatchJSON(e)); err != nil {
				return err
			}
			continue
		}
		printEvent(g.stdout, e)
	}
	if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return &exitError{code: exitFailed, err: err}
	}
	return nil
}

// readyJSON is the one "ready" line of `list --watch --json`: every device attached when
// the watch started has been reported, so a script can take the lines before it as the
// current set.
type readyJSON struct {
	Event string `json:"event"`
	Time  string `json:"time"`
}

func toWatchJSON(e device.Event) any {
	if e.Kind == device.Ready {
		return readyJSON{Event: e.Kind.String(), Time: e.Time.Format(time.RFC3339Nano)}
	}
	j := watchEventJSON{Event: e.Kind.String(), Time: e.Time.Format(time.RFC3339Nano), deviceJSON: toDeviceJSON(e.Device), Other: e.Other, Door: e.Door}
	if e.Kind == device.ChangedMode {
		j.PrevMode = modeName(e.PrevMode)
	}
	if e.Kind == device.ModulesRead && e.Err == nil {
		n, valid := 0, 0
		for _, m := range e.Device.Modules {
			if m.Present {
				n++
				if m.Valid() {
					valid++
				}
			}
		}
		j.Modules, j.Valid = &n, &valid
	}
	if e.Err != nil && (e.Kind == device.ModulesRead || e.Kind == device.DoorFailed || e.Kind == device.DuplicateID) {
		j.Error, j.Remedy = e.Err.Error(), remedy.Of(e.Err)
	}
	return j
}

func printEvent(w io.Writer, e device.Event) {
	ts := e.Time.Format("15:04:05.000")
	d := e.Device
	switch e.Kind {
	case device.Appeared:
		fmt.Fprintf(w, "%s  appeared      %s  %s via %s\n", ts, d.Name(), modeName(d.Mode), strings.Join(d.DoorNames(), "+"))
		if d.Err != nil {
			fmt.Fprintf(w, "%s                cannot open it: %v\n", ts, d.Err)
			if r := remedy.Of(d.Err); r != "" {
				fmt.Fprintf(w, "%s                what to do: %s\n", ts, r)
			}
		}
	case device.ChangedMode:
		fmt.Fprintf(w, "%s  mode          %s  %s -> %s%s\n", ts, d.Name(), modeName(e.PrevMode), modeName(d.Mode), whyWords(d))
	case device.ModulesRead:
		if e.Err != nil {
			fmt.Fprintf(w, "%s  modules       %s  could not be read: %v\n", ts, d.Name(), e.Err)
			return
		}
		var parts []string
		for _, m := range d.Modules {
			if !m.Present {
				continue
			}
			s := fmt.Sprintf("%s %d", m.Name, m.Version)
			if m.Name == "" {
				s = fmt.Sprintf("%s#%d %d", m.Function, m.Index, m.Version)
			}
			if !m.Valid() {
				s += " (FAIL)"
			}
			parts = append(parts, s)
		}
		fmt.Fprintf(w, "%s  modules       %s  %s\n", ts, d.Name(), strings.Join(parts, ", "))
	case device.Missing:
		fmt.Fprintf(w, "%s  missing       %s  left the bus (resetting or unplugged)\n", ts, d.Name())
	case device.Returned:
		fmt.Fprintf(w, "%s  returned      %s  %s\n", ts, d.Name(), modeName(d.Mode))
	case device.Disappeared:
		fmt.Fprintf(w, "%s  disappeared   %s\n", ts, d.Name())
	case device.DuplicateID:
		fmt.Fprintf(w, "%s  WARNING       %v\n", ts, e.Err)
	case device.DoorFailed:
		fmt.Fprintf(w, "%s  WARNING       %s door: %v\n", ts, e.Door, e.Err)
	}
}
