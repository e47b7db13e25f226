// Package sim is the virtual Particle device the whole product is tested and demoed
// against: one model per device (flash laid out as the platform table says, real or
// synthetic module binaries in their slots, a DCT with the OTA flag, the bootloader's and
// Device OS's boot-time validation, an LED, a device ID and device-time accounting) and
// three doors onto it:
//
//   - In-process: (*Device).Control has gousb's Control signature, so flasher/dfu and
//     flasher/ctrl clients run against the model directly in unit tests.
//   - USB through real libusb callers: (*Device).USB is a usbsim.Device; a Fleet serves any
//     number of them behind one usbsim.Server, where the Debian dfu-util binary and gousb
//     programs (loaded with the usbsim shim) see them as real Particle devices, including the
//     disappearance and re-enumeration of a reset.
//   - Serial through a pty: in the modes where Device OS runs (normal, safe, listening) the
//     device holds a serialdev.Port whose slave the flasher opens with go.bug.st/serial.
//
// # Boot
//
// Every reset (power-on, a control request, DFU leave, 14400 baud, the watchdog, ...) runs
// the same routine, modelled on the sources cited in shared/docs/particle-reference.md:
//
//  1. Bootloader (bootloader/src/main.c): no bootloader module in its slot means nothing
//     runs (LED off, nothing on USB). Pending module copies registered by a control-request
//     or YMODEM update are applied here unless DFU was requested. DFU when requested
//     (control request 50, 14400 baud, MODE held ≥ 3 s at reset, Options.Mode) or when the
//     system firmware cannot run (a system part missing, failing its CRC, its address range
//     or platform check; on radio-stack platforms a SoftDevice without its info struct).
//  2. Device OS: a module left in the OTA region with the DCT flag at 0xA5 is validated
//     (HAL_FLASH_End's checks) and applied, the flag cleared either way, then the device
//     resets again (HAL_FLASH_ApplyPendingUpdate). Safe mode when requested (control request
//     60, DfuSe 0xFA, `L`, MODE 1–3 s at reset), when HAL_Core_Validate_Modules(1) fails
//     (bootloader integrity, range, platform and dependencies; the one system part each
//     platform family checks, see bootFamily) or when the user part is missing, corrupt or
//     has an unmet dependency (system_part1_loader.c / system_part2_loader.c). Listening mode
//     when requested (control request 70, 28800 baud on Device OS < 6, MODE held ≥ 3 s).
//
// A dependency is met when the installed module with the same function and index has a
// version at least the one required; a missing module is unmet (validate_module_dependencies).
// The radio stack's version is the SoftDevice FWID read from flash (SD_FWID_GET), exactly as
// Device OS reads it, since the SoftDevice is written without its module header.
//
// # Time
//
// Every erase, program, USB transfer and reset costs the device time the real chip needs,
// charged to a flash.Meter that sleeps that time × Options.Scale (0 for unit tests:
// instant, yet Charged() still reports the device-bound time).
package sim

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
)

// Mode is what the device is running, as a person (and the flasher) tells them apart.
type Mode int

// Device modes. The zero value is ModeNormal so that Options{} asks for a plain boot.
const (
	// ModeNormal: Device OS and the application run (breathing cyan).
	ModeNormal Mode = iota
	// ModeDFU: the bootloader's DFU mode (blinking yellow), PID 0xD0xx.
	ModeDFU
	// ModeListening: listening mode (blinking blue); Status.Safe tells whether the
	// application is also held back (safe listening mode).
	ModeListening
	// ModeSafe: Device OS runs but not the application (breathing magenta).
	ModeSafe
	// ModeOff: nothing runs: no power, a reset in progress, or no bootloader (LED dark,
	// nothing on USB).
	ModeOff
)

var modeNames = [...]string{"normal", "dfu", "listening", "safe", "off"}

// String is the mode's name as the CLI and JSON output spell it.
func (m Mode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// ParseMode accepts the names String prints (any case).
func ParseMode(s string) (Mode, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for i, n := range modeNames {
		if n == s {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("sim: unknown mode %q (want normal, dfu, listening or safe)", s)
}

// usb reports whether the device is on USB in this mode.
func (m Mode) usb() bool { return m != ModeOff }

// cdc reports whether Device OS runs, with its CDC serial port and control requests.
func (m Mode) cdc() bool { return m == ModeNormal || m == ModeListening || m == ModeSafe }

// Options describe a virtual device.
type Options struct {
	// Platform is the kind of device; required.
	Platform *platform.Platform
	// Modules are module files placed at their slots as a factory or an installer would
	// (the SoftDevice without its 24-byte DROP_MODULE_INFO prefix, NCP firmware into the
	// NCP). A device without a bootloader module is a brick: nothing runs.
	Modules [][]byte
	// DeviceID is 24 hex digits (lower-cased); empty picks a random one.
	DeviceID string
	// Mode is the mode to start in: normal (the default) boots as the flash says, dfu,
	// listening and safe are requested as the buttons or a control request would.
	// ModeOff starts the device unpowered (PowerOn boots it).
	Mode Mode
	// Scale multiplies every device-time cost into real time: 0 is instant (unit tests),
	// 1 is a real device's pace (benchmarks, demos).
	Scale float64
	// Blank erases every module slot except the bootloader's: a board fresh from the
	// factory programmer with no Device OS, which comes up in DFU mode. If Modules holds no
	// bootloader, a synthetic one (module.BuildForSlot, the newest version this platform
	// shipped) is installed, since without one nothing would ever enumerate.
	Blank bool
	// DeviceOS overrides the Device OS version the device reports (control request 30,
	// `v`); empty derives it from the installed system part's module version.
	DeviceOS string
	// NCPVersion is the module version of the network coprocessor's firmware a device with
	// one (Argon, Tracker) has when Modules holds no NCP firmware: the ESP32 is another chip,
	// flashed at the factory, and is never blank. 0 means DefaultNCPVersion.
	NCPVersion uint16
	// NoSerial leaves out the pty serial door, for tests that do not need it.
	NoSerial bool
	// SetupNotDone leaves the DCT's setup-done byte erased, as on a Gen3 board nobody set
	// up (a Blank device has it erased too): Device OS before 4.0 then waits in listening
	// mode. Otherwise the device was set up by its owner.
	SetupNotDone bool
	// ServiceMode starts a protected device (one whose bootloader carries the
	// SECURITY_MODE extension) in Service Mode, as Particle's cloud would have left it.
	ServiceMode bool
	// Image starts the device from an image (ReadImage) instead of Modules: the same flash,
	// DCT and external flash it had when the image was written. DeviceID is still given
	// separately (an image of a raw dump has none); Blank and SetupNotDone do not apply.
	Image *Image
	// ImagePath makes the device keep its image (WriteImage) in this file: written a moment
	// after every change to its flash (imageSaveDelay), when it is created, and at Close,
	// so a killed sim can be brought back from it as the same device.
	ImagePath string
	// SerialTimeScale scales Device OS's serial waits (YMODEM NAK timeout 5 s, ...); 0
	// uses Scale, but never below 0.1, so that real serial peers (lrzsz) keep up.
	SerialTimeScale float64
}

// DefaultNCPVersion is the ESP32 NCP firmware a virtual Argon or Tracker holds unless told
// otherwise: 0.0.5 (module version 5), the version the Argon shipped with (particle-cli's
// argon-ncp-firmware-0.0.5-ota.bin). It is older than the 0.0.7 that Tracker system-part1
// 3.0.0 to 5.5.x depends on, as on a Tracker that never ran Device OS 3.x.
const DefaultNCPVersion = 5

// Device-time costs of the things a device does besides flash and USB transfers.
const (
	// ReenumerationTime is a reset until the device is back on USB with its new
	// descriptors (reference issue §6: ~1.5 s).
	ReenumerationTime = 1500 * time.Millisecond
	// RequestResetDelay is how long Device OS waits after replying to a reset, DFU or safe
	// mode request before resetting (system_control_internal.cpp: 1000 ms).
	RequestResetDelay = time.Second
	// ButtonResetTime is the extra time a reset with MODE held takes (the bootloader's
	// button loop).
	ButtonResetTime = 3 * time.Second
	// NCPBytesPerSec is how fast Device OS reflashes the ESP32 NCP (minutes for a 800 KB
	// image with verification; CLI and FU wait up to 4 min).
	NCPBytesPerSec = 8 * 1024
)

// ErrStall and ErrNoDevice are what Control returns when the device STALLs a request or
// is not on the bus. They match both usbsim's libusb codes (so the USB door reports
// LIBUSB_ERROR_PIPE / NO_DEVICE) and flasher/dfu's sentinels (so the DFU client recognises
// them in-process), and are wrapped with the device-side reason.
var (
	ErrStall    error = &doorError{msg: "sim: request stalled", usb: usbsim.ErrStall, dfu: dfu.ErrStall}
	ErrNoDevice error = &doorError{msg: "sim: device is not on the bus", usb: usbsim.ErrNoDevice, dfu: dfu.ErrNoDevice}
)

type doorError struct {
	msg      string
	usb, dfu error
}

func (e *doorError) Error() string   { return e.msg }
func (e *doorError) Unwrap() []error { return []error{e.usb, e.dfu} }

// stallErr wraps a device-side reason into ErrStall.
func stallErr(cause error) error { return fmt.Errorf("%w: %w", ErrStall, cause) }

// goneErr wraps a device-side reason into ErrNoDevice.
func goneErr(cause error) error { return fmt.Errorf("%w: %w", ErrNoDevice, cause) }

var errOffBus = errors.New("the device reset, lost power or was unplugged")
