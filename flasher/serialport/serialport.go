// Package serialport is the flasher's door onto USB CDC serial ports: it finds Particle
// devices among the OS's serial ports, opens them for the listening-mode console, and
// sends the "magic baud" line codings that Device OS turns into mode changes.
//
// It wraps go.bug.st/serial so that the rest of the engine sees one small interface and
// errors a person can act on (a permission error says which udev rule to install).
package serialport

import (
	"github.com/particle-flasher/particle-flasher/assets"

	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.bug.st/serial"
	"go.bug.st/serial/enumerator"
)

// Magic line-coding speeds honoured by Device OS (system_lineCodingBitRateHandler).
const (
	// DFUBaud makes Device OS reset into the DFU bootloader (every version incl. 6.x).
	DFUBaud = 14400
	// ListeningBaud makes Device OS ≤ 5.x enter listening mode; 6.0 removed it.
	ListeningBaud = 28800
	// ConsoleBaud is what the CLI uses for console commands. USB CDC ignores the speed,
	// but it must not be one of the magic ones.
	ConsoleBaud = 9600
)

// USB vendor and product IDs that identify Particle serial ports.
const (
	ParticleVID uint16 = 0x2b04
	// CoreVID and CorePID are the Spark Core's CDC identity (it predates Particle's VID).
	CoreVID uint16 = 0x1d50
	CorePID uint16 = 0x607d
)

// Port is what the listening-mode console needs from an open serial port. A Read after
// SetReadTimeout(d) returns (0, nil) once d passes without data, so every wait can be
// bounded; go.bug.st/serial ports satisfy it directly.
type Port interface {
	io.ReadWriteCloser
	SetReadTimeout(time.Duration) error
}

// UdevRules is the text of assets/50-particle.rules: without it Linux gives the CDC
// port (and the DFU interface) to root and the dialout group only, and ModemManager probes
// the port with AT commands, which a device in listening mode reads as console input.
var UdevRules = assets.UdevRules

// UdevInstallCommand installs UdevRules (saved as 50-particle.rules in the current
// directory) and applies it without a reboot.
const UdevInstallCommand = assets.UdevInstallCommand

// PermissionError reports that the OS refused to open a serial port. It is the most
// common first-run failure on Linux, so its message carries the whole fix.
type PermissionError struct {
	Path string
	Err  error
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("no permission to open %s (%v); %s", e.Path, e.Err, e.Remedy())
}

// Unwrap returns the OS error.
func (e *PermissionError) Unwrap() error { return e.Err }

// Remedy is what a person has to do to be allowed to open the port.
func (e *PermissionError) Remedy() string {
	return "install the Particle udev rule (save it as 50-particle.rules, then run `" + UdevInstallCommand +
		"` and unplug/replug the device), or add yourself to the dialout and plugdev groups " +
		"(`sudo usermod -aG dialout,plugdev $USER`, then log out and back in)"
}

// Open opens path (e.g. /dev/ttyACM0) at baud, 8N1, raw, with no read timeout set.
// Use ConsoleBaud for console work: DFUBaud and ListeningBaud change the device's mode.
func Open(path string, baud int) (Port, error) {
	p, err := serial.Open(path, &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
	if err != nil {
		return nil, openError(path, err)
	}
	return p, nil
}

// openError turns go.bug.st/serial's open failures into errors that say what to do.
func openError(path string, err error) error {
	var pe *serial.PortError
	if errors.As(err, &pe) {
		switch pe.Code() {
		case serial.PermissionDenied:
			return &PermissionError{Path: path, Err: err}
		case serial.PortBusy:
			return fmt.Errorf("serial port %s is busy (%w); close other programs using it (a serial monitor, screen, minicom, another flasher) and try again", path, err)
		case serial.PortNotFound:
			// Windows' answer for a COM port that is gone (Linux gives ENOENT, below).
			err = fmt.Errorf("%w (%w)", err, fs.ErrNotExist)
		}
	}
	if errors.Is(err, syscall.EACCES) || errors.Is(err, fs.ErrPermission) {
		return &PermissionError{Path: path, Err: err}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("serial port %s does not exist (%w); the device may have been unplugged or may have changed mode: check the cable and the LED", path, err)
	}
	return fmt.Errorf("open serial port %s: %w", path, err)
}

// TriggerDFU asks the device on path to reboot into DFU mode by opening the port at
// 14400 baud, the line coding Device OS treats as "enter DFU" (the only serial way in).
// The port disappears shortly after; wait for the DFU device to enumerate.
func TriggerDFU(path string) error {
	return triggerBaud(path, DFUBaud, "DFU mode")
}

// TriggerListening asks a device running Device OS ≤ 5.x to enter listening mode (blinking
// dark blue) by opening the port at 28800 baud. Device OS 6.0 removed this trigger; use
// the USB control request or the MODE button there.
func TriggerListening(path string) error {
	return triggerBaud(path, ListeningBaud, "listening mode")
}

// triggerSettle keeps the port open briefly so the line coding reaches the device before
// the close (some CDC stacks only act on SET_LINE_CODING once the host stops touching it).
const triggerSettle = 50 * time.Millisecond

func triggerBaud(path string, baud int, what string) error {
	p, err := Open(path, baud)
	if err != nil {
		return fmt.Errorf("ask the device on %s to enter %s (open at %d baud): %w", path, what, baud, err)
	}
	time.Sleep(triggerSettle)
	if err := p.Close(); err != nil {
		return fmt.Errorf("ask the device on %s to enter %s: close after setting %d baud: %w", path, what, baud, err)
	}
	return nil
}

// PortInfo describes one Particle serial port found on the system.
type PortInfo struct {
	Path    string
	VID     uint16
	PID     uint16
	Serial  string // USB serial string; for Particle devices usually the device ID
	Product string
}

// List returns the serial ports that belong to Particle devices (VID 0x2b04, and the
// Spark Core's 0x1d50:0x607d), leaving out every other serial port on the machine.
func List() ([]PortInfo, error) {
	all, err := enumerator.GetDetailedPortsList(func(vid, pid string) bool {
		v, p, ok := parseIDs(vid, pid)
		return ok && isParticle(v, p)
	})
	if err != nil {
		return nil, fmt.Errorf("list serial ports: %w", err)
	}
	return filterPorts(all), nil
}

func filterPorts(all []*enumerator.PortDetails) []PortInfo {
	var out []PortInfo
	for _, d := range all {
		if d == nil || !d.IsUSB {
			continue
		}
		vid, pid, ok := parseIDs(d.VID, d.PID)
		if !ok || !isParticle(vid, pid) {
			continue
		}
		out = append(out, PortInfo{Path: d.Name, VID: vid, PID: pid, Serial: d.SerialNumber, Product: d.Product})
	}
	return out
}

func isParticle(vid, pid uint16) bool {
	return vid == ParticleVID || (vid == CoreVID && pid == CorePID)
}

// parseIDs reads VID/PID hex strings as the OSes report them ("2b04", "2B04", "0x2b04").
func parseIDs(vid, pid string) (uint16, uint16, bool) {
	v, err1 := parseHex16(vid)
	p, err2 := parseHex16(pid)
	return v, p, err1 == nil && err2 == nil
}

func parseHex16(s string) (uint16, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	n, err := strconv.ParseUint(s, 16, 16)
	return uint16(n), err
}
