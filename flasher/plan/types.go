package plan

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/led"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// Mode is what a device is running: Device OS (normal, listening or safe mode) or the
// DFU bootloader. The distinction that matters to a plan is whether Device OS runs
// (control requests work) or the bootloader does (DFU writes work).
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

// display is the mode as a sentence names it: "DFU" for dfu.
func (m Mode) display() string {
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

// Direction says which way a plan moves Device OS, because the rules differ: a downgrade
// writes the user app first and prebootloaders last, a rescue rebuilds what is missing.
type Direction int

// Directions.
const (
	// DirSame: Device OS stays at its version (only the app, or parts that were
	// missing a newer bootloader, are written).
	DirSame Direction = iota
	DirUpgrade
	DirDowngrade
	// DirRescue: a system part is missing or corrupt (or nothing is known about the
	// device), so Device OS cannot start until the plan has run.
	DirRescue
)

var directionNames = [...]string{"same", "upgrade", "downgrade", "rescue"}

// String is "same", "upgrade", "downgrade" or "rescue".
func (d Direction) String() string {
	if d >= 0 && int(d) < len(directionNames) {
		return directionNames[d]
	}
	return fmt.Sprintf("direction(%d)", int(d))
}

// MarshalText writes the direction's name.
func (d Direction) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Kind is what a step does.
type Kind int

// Step kinds.
const (
	// KindEnterMode switches the device to Step.Mode (DFU, safe or listening) and waits
	// for the same device to come back in it.
	KindEnterMode Kind = iota
	// KindWrite writes Step.Data with Step.Method: over DFU at Step.Address on Step.Alt
	// (the module's slot, or the OTA region), or by control request / YMODEM, after which
	// Device OS installs it while it restarts.
	KindWrite
	// KindInvalidate writes Step.Data (4 KB of 0xFF) over DFU so that an old module there
	// stops counting: the 128 KB Gen3 user part a 256 KB one must not lose to.
	KindInvalidate
	// KindSetOTAFlag writes the DCT byte that tells Device OS to install what the OTA
	// region holds at its next start.
	KindSetOTAFlag
	// KindWaitFor waits for the device to come back in Step.Mode after it restarted on
	// its own (to install a control-request update).
	KindWaitFor
	// KindReset restarts the device out of DFU mode (DfuSe leave) and waits for it to come
	// back in Step.Mode; any pending OTA-region module is installed on the way.
	KindReset
	// KindServiceMode suspends Device Protection for the plan (Device OS 6.x).
	KindServiceMode
	// KindEndServiceMode turns Device Protection back on.
	KindEndServiceMode
	// KindVerify re-reads the modules (and with VerifyReadback every written range) and
	// compares them with Plan.Expect.
	KindVerify
)

var kindNames = [...]string{"enter-mode", "write", "invalidate", "set-ota-flag", "wait-for", "reset",
	"service-mode", "end-service-mode", "verify"}

// String is the kind's short name ("write", "enter-mode", ...).
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// MarshalText writes the kind's name.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// VerifyMode is how the runner checks the result.
type VerifyMode int

// Verification modes.
const (
	// VerifyModules re-reads the module table and checks versions, CRCs and the mode the
	// device boots into (the default).
	VerifyModules VerifyMode = iota
	// VerifyReadback also reads every written range back over DFU and compares it.
	VerifyReadback
	// VerifyNone skips verification.
	VerifyNone
)

var verifyNames = [...]string{"modules", "readback", "none"}

// String is "modules", "readback" or "none".
func (v VerifyMode) String() string {
	if v >= 0 && int(v) < len(verifyNames) {
		return verifyNames[v]
	}
	return fmt.Sprintf("verify(%d)", int(v))
}

// ParseVerifyMode reads a verification mode name.
func ParseVerifyMode(s string) (VerifyMode, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	for i, n := range verifyNames {
		if n == s {
			return VerifyMode(i), true
		}
	}
	return VerifyModules, false
}

// MarshalText writes the verification mode's name.
func (v VerifyMode) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// Installed is one module as the device reports it (control request 90, the listening
// mode `s` command, or its header and suffix read out of flash over DFU). A slot that
// was read and found blank is simply not listed; NCP firmware, which DFU cannot read, is
// unknown rather than missing when it is not listed.
type Installed struct {
	Function platform.Function `json:"function"`
	Index    uint8             `json:"index"`
	Version  uint16            `json:"version"`
	// Start and Size locate the module in flash when known (0 = unknown); they let the
	// planner see which installed modules a write destroys.
	Start uint32 `json:"start,omitempty"`
	Size  uint32 `json:"size,omitempty"`
	// Valid: the device's integrity check (CRC) passed. A corrupt module is listed with
	// Valid false so a rescue rewrites it.
	Valid bool `json:"valid"`
	// CRC is the stored CRC-32 when known (0 = unknown): with it, a module at the same
	// version but of another build is not mistaken for the target's.
	CRC uint32 `json:"crc,omitempty"`
	// SHA256 is the hash in the module's suffix when known (the `u` field of user apps):
	// the identity of a user app, whose version number says little.
	SHA256 string `json:"sha256,omitempty"`
	// Deps are the module's dependencies, as its header states them.
	Deps []module.Dependency `json:"deps,omitempty"`
}

// InstalledFrom describes a module file as if it were on the device, e.g. to plan from
// files instead of a device, or from what DFU read out of each slot.
func InstalledFrom(m *module.Module) Installed {
	in := Installed{
		Function: m.Function,
		Index:    m.Index,
		Version:  m.Version,
		Start:    m.Start,
		Size:     uint32(m.Size()),
		Valid:    m.Validate() == nil,
		CRC:      m.StoredCRC,
		Deps:     m.Dependencies(),
	}
	if len(m.SHA256) > 0 {
		in.SHA256 = hex.EncodeToString(m.SHA256)
	}
	return in
}

// String describes the module briefly: "system 1 v4100" or "user 2 v6 (corrupt)".
func (in Installed) String() string {
	s := fmt.Sprintf("%s %d v%d", in.Function, in.Index, in.Version)
	if !in.Valid {
		s += " (corrupt)"
	}
	return s
}

// DeviceState is what the planner knows about the device.
type DeviceState struct {
	Platform *platform.Platform
	Mode     Mode
	// Modules is what the device has; empty means nothing is known, and the plan then
	// writes every part of the target.
	Modules []Installed
	// Protected: Device Protection is on (Device OS 6.x); such a device may not go below
	// Device OS 6.1.1 and needs service mode for DFU writes.
	Protected bool
	// DeviceOS is the running Device OS version when the device said so ("" = derive it
	// from the system part's module version).
	DeviceOS string
	// YModem: listening-mode YMODEM flashing is known to work. When false the planner
	// assumes it works exactly on Device OS up to 5.9.x (6.0.0 removed it).
	YModem bool
}

// StateFromModules describes a device holding exactly these module files, for planning
// without a device (pflash plan --from) and in tests. A nil platform is taken from the
// first module.
func StateFromModules(p *platform.Platform, mode Mode, mods []*module.Module) DeviceState {
	st := DeviceState{Platform: p, Mode: mode}
	for _, m := range mods {
		if m == nil {
			continue
		}
		if st.Platform == nil {
			st.Platform, _ = platform.ByID(m.PlatformID)
		}
		st.Modules = append(st.Modules, InstalledFrom(m))
	}
	return st
}

// Options tune a plan. The zero value is the default: every part the target brings
// (bootloader, SoftDevice and NCP included), no watchdog, module-table verification.
type Options struct {
	// NoBootloader, NoSoftDevice and NoNCP leave those parts as they are on the device
	// (the planner still checks that what stays meets the new parts' dependencies).
	NoBootloader, NoSoftDevice, NoNCP bool
	// Watchdog is the period of an external watchdog that resets the MCU while the
	// bootloader runs (nothing services it in DFU mode); 0 = none. The DFU work is then
	// cut so each uninterrupted stretch fits one period.
	Watchdog time.Duration
	// Verify selects how the runner checks the result.
	Verify VerifyMode
	// Force writes every module even when the same one is installed, and turns refusals
	// that a person may knowingly override (an unmet dependency, a cycle) into warnings.
	// It never overrides device protection, a wrong platform or a module that does not
	// fit its slot.
	Force bool
}

// Target is where the device should end up, resolved by the caller into module files.
type Target struct {
	// Name names the target for people: "4.1.0", or file names.
	Name string
	// Modules are the Device OS parts (bootloader, system parts, SoftDevice, NCP,
	// prebootloaders). A user part among them is treated like ReplacementApp.
	Modules []*module.Module
	// App is a user application to install, checked against the target.
	App *module.Module
	// ReplacementApp (the target's Tinker) is installed only when the device's own app
	// cannot run on the target (a downgrade below what it was built for) or there is no
	// valid app; the plan says why.
	ReplacementApp *module.Module
	Options        Options
}

// Step is one thing the runner does. Steps are plain data so they can be journalled and
// re-checked against a device after a crash.
type Step struct {
	// ID is stable for the same plan: "write:system-part1@4100", "enter-dfu",
	// "ota-flag:bootloader@1200", with "#2" suffixes for repeats and ":1/3" for the parts
	// of a write cut for a watchdog.
	ID   string
	Kind Kind
	// Module is the module written (KindWrite, KindSetOTAFlag, KindWaitFor after a
	// control-request update).
	Module *module.Module
	// Slot names the module's slot ("system-part1"), or the region written.
	Slot string
	// Method says how Data gets to the device.
	Method platform.Method
	// Alt and Address say where a DFU-based step writes Data (DfuSe addressing: Gen3
	// external flash is based at 0x80000000; the DCT alt counts from 0).
	Alt     uint8
	Address uint32
	// Data is exactly what is written: the module, without its 24-byte prefix for a
	// DROP_MODULE_INFO SoftDevice, one piece of it for a write cut for a watchdog, 0xFF
	// bytes to invalidate, the one-byte OTA flag.
	Data []byte
	// Part and Parts number the pieces of a write cut for a watchdog (0 and 0 when whole).
	Part, Parts int
	// Mode is the mode an enter-mode, wait-for or reset step reaches, and the mode the
	// device must be in for the others (ModeNormal meaning Device OS runs: normal,
	// listening or safe).
	Mode Mode
	// LED is what the person should see during the step and what to do otherwise.
	LED led.Guidance
	// Estimate is how long the step may take.
	Estimate time.Duration
	// Why says in plain words why the step is there.
	Why string
	// Window is the watchdog window (1-based) a DFU step runs in; 0 without a watchdog.
	Window int
	// Unmet lists dependencies this module is written ahead of: a cycle that could only
	// be broken here (the device may start in safe mode until the rest is done).
	Unmet []module.Dependency
	// Expect is the module the device should report once this step (and the other
	// parts of the same module) are done; nil for steps that leave no module behind.
	Expect *Installed
}

// Skip is a target module the plan leaves alone, and why.
type Skip struct {
	Module *module.Module
	Slot   string
	Why    string
}

// Plan is an ordered, explained list of steps from a device state to a target.
type Plan struct {
	Platform *platform.Platform
	// From and To name the Device OS versions ("1.5.2", "4.1.0"), or "unknown".
	From, To  string
	Direction Direction
	Steps     []Step
	// Skipped lists the target's modules already on the device (or turned off).
	Skipped []Skip
	// Warnings are things the person should know before starting.
	Warnings []string
	// Windows is how many watchdog windows the DFU work needs (0 without a watchdog).
	Windows int
	// EstimatedDuration is the sum of the steps' estimates.
	EstimatedDuration time.Duration
	// NeedsSteppingStone names the Device OS version the device must go through first
	// (Make also returns a *SteppingStoneError); the plan then has no steps.
	NeedsSteppingStone string
	// Expect is what the device should report after the plan: the verification target.
	Expect []Installed
	// ExpectMode is the mode the device should be in at the end (normal, or safe when it
	// has no application).
	ExpectMode Mode
	// Verify is how the runner should check the result.
	Verify VerifyMode
}

// Writes returns the steps that put bytes on the device.
func (p *Plan) Writes() []Step {
	var out []Step
	for _, s := range p.Steps {
		if s.Kind == KindWrite || s.Kind == KindInvalidate || s.Kind == KindSetOTAFlag {
			out = append(out, s)
		}
	}
	return out
}

// Done reports whether the device state already shows the step's effect, so a runner
// resuming after a crash can skip it. Writes are done when the module they belong to is
// installed at its version with a valid CRC (a half-written slot fails its CRC and is
// written again); an invalidation when nothing valid is left at its address; mode
// changes when the device is in that mode. Resets, service mode and verification are
// never done in advance.
func (s *Step) Done(st DeviceState) bool {
	switch s.Kind {
	case KindWrite, KindSetOTAFlag, KindWaitFor:
		if s.Expect == nil {
			return false
		}
		for _, in := range st.Modules {
			if in.Function == s.Expect.Function && in.Index == s.Expect.Index {
				return sameModule(in, *s.Expect)
			}
		}
		return false
	case KindInvalidate:
		for _, in := range st.Modules {
			if in.Valid && in.Start == s.Address {
				return false
			}
		}
		return true
	case KindEnterMode:
		return st.Mode == s.Mode
	}
	return false
}

// sameModule reports whether the installed module is the expected one: same version,
// valid, and the same build where both CRCs (or both hashes) are known.
func sameModule(in, want Installed) bool {
	if !in.Valid || in.Version != want.Version {
		return false
	}
	if in.SHA256 != "" && want.SHA256 != "" && !strings.EqualFold(in.SHA256, want.SHA256) {
		return false
	}
	if in.CRC != 0 && want.CRC != 0 && in.CRC != want.CRC {
		return false
	}
	return true
}
