package usb

import (
	"errors"
	"fmt"

	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// ErrNoWinUSB is wrapped by the error of a device Windows has attached without the WinUSB
// driver on the interface the flasher needs.
var ErrNoWinUSB = errors.New("usb: no WinUSB driver")

// winusbSince says, per generation, from which firmware on a device asks Windows for WinUSB
// by itself through its WCID descriptors (field notes §7): before it, a driver has to be
// installed. "" means every release does; a generation missing from the table never did.
var winusbSince = map[int]struct{ dfu, control string }{
	2: {dfu: "bootloader v9 (Device OS 0.6.1)", control: "a newer Device OS"},
	3: {dfu: "Device OS 0.9.0", control: "Device OS 1.1.0"},
	4: {},
}

// driversRepo is where Particle publishes its Windows driver INFs (particle_dfu.inf,
// particle_control.inf); the Particle CLI's Windows installer installs them too.
const driversRepo = "github.com/particle-iot/windows-device-drivers"

// noDriverError says that Windows attached the device (or, with control, its control
// interface) without WinUSB, and what fixes it for its platform.
func noDriverError(info Info, node devNode, control bool) error {
	what := "the " + info.String()
	if control {
		what = "the control interface of the " + info.String()
	}
	e := fmt.Errorf("%w for %s", ErrNoWinUSB, what)
	if node.Problem != 0 {
		e = fmt.Errorf("%w (Device Manager problem code %d%s)", e, node.Problem, problemWords(node.Problem))
	}
	gen := 0
	if info.Platform != nil {
		gen = info.Platform.Gen
	}
	since, known := winusbSince[gen]
	var r string
	switch {
	case !control:
		r = "Windows needs the WinUSB driver for DFU mode. "
		if known && since.dfu != "" {
			r += "Bootloaders from " + since.dfu + " on ask Windows for it by themselves; this one is older. "
		}
		r += "Install Particle's Windows drivers (particle_dfu.inf, " + driversRepo + "; the Particle CLI installer for Windows includes them), " +
			"or bind WinUSB to the \"DFU Mode\" device with Zadig; then unplug and replug the device"
	default:
		r = "Windows needs the WinUSB driver on the device's control interface. "
		if known && since.control != "" {
			r += "Device OS asks Windows for it by itself from " + since.control + " on; this device runs an older one. " +
				"Either upgrade it in DFU mode (hold MODE, tap RESET, release MODE when the LED blinks yellow; this flasher reaches DFU mode without the control interface), or install "
		} else {
			r += "Install "
		}
		r += "particle_control.inf from Particle's Windows drivers (" + driversRepo + "); then unplug and replug the device"
	}
	if node.Problem != 0 && node.Problem != probFailedInstall && node.Problem != probNotConfigured {
		r += ". If a driver is installed and it still fails, Windows may be holding a stale entry: " +
			"in Device Manager choose View > Show hidden devices and uninstall the greyed-out Particle entries"
	}
	return remedy.With(e, r)
}

func problemWords(p uint32) string {
	switch p {
	case probNotConfigured:
		return ": no driver selected"
	case probFailedStart:
		return ": the driver did not start"
	case probFailedInstall:
		return ": no driver installed"
	case probFailedPost:
		return ": Windows stopped the device after it reported problems"
	}
	return ""
}
