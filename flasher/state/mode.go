// Package state is the flasher's one model of a Particle device's installed firmware and
// of how it boots: which module sits in which slot (and where the reading came from), which
// of them Device OS counts as intact, which dependencies hold, which user slot runs, and so
// in which mode the device comes up after a reset (normal; safe, and why; DFU, and why).
//
// Every surface asks this package: the watcher's device list and `pflash list` (safe mode
// told from a normal-mode reading), `pflash inspect` and the app's diagnosis (the reason
// in words), the planner (the state after every write, and the predicted end of a plan),
// and the runner's verification (the device read back against that prediction).
//
// The virtual device (flasher/sim) does not use this package: it keeps its own boot rules,
// written from Device OS's bootloader and system code, so that a prediction made here and
// what the virtual device does are two independent accounts of the same firmware.
package state

import (
	"fmt"
	"strings"
)

// Mode is what a device is running: Device OS (normal, listening or safe mode) or the DFU
// bootloader. USB shows safe mode as normal mode; the module table tells them apart.
type Mode int

// Device modes.
const (
	ModeUnknown Mode = iota
	ModeNormal
	ModeListening
	ModeSafe
	ModeDFU
)

var modeNames = [...]string{"unknown", "normal", "listening", "safe", "dfu"}

// String is the mode's short name: "normal", "listening", "safe", "dfu", "unknown".
func (m Mode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// Title is the mode as a sentence names it: "DFU" for dfu, the short name otherwise.
func (m Mode) Title() string {
	if m == ModeDFU {
		return "DFU"
	}
	return m.String()
}

// ParseMode reads a mode name as String prints it ("safe-mode" and "safe mode" too).
func ParseMode(s string) (Mode, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimSuffix(strings.TrimSuffix(s, " mode"), "-mode")
	for i, n := range modeNames {
		if n == s {
			return Mode(i), true
		}
	}
	return ModeUnknown, false
}

// RunsDeviceOS reports a mode in which Device OS answers control requests.
func (m Mode) RunsDeviceOS() bool {
	return m == ModeNormal || m == ModeListening || m == ModeSafe
}

// MarshalText writes the mode's name.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText reads a mode's name.
func (m *Mode) UnmarshalText(b []byte) error {
	v, ok := ParseMode(string(b))
	if !ok {
		return fmt.Errorf("unknown device mode %q", b)
	}
	*m = v
	return nil
}
