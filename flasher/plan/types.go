package plan

import (
	"fmt"
	"strings"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/led"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

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
	// KindSetupDone marks the device's setup done (control request 73) where Device OS
	// before 4.0 would otherwise wait in listening mode, and lets it leave listening mode
	// for Step.Mode.
	KindSetupDone
	// KindEndServiceMode ends Device Protection's Service Mode (control request 77).
	KindEndServiceMode
	// KindVerify re-reads the modules (and with VerifyReadback every written range) and
	// compares them with Plan.Expect.
	KindVerify
)

var kindNames = [...]string{"enter-mode", "write", "invalidate", "set-ota-flag", "wait-for", "reset",
	"setup-done", "end-service-mode", "verify"}

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
	// AllowSafeMode accepts a plan whose predicted end is safe mode (Plan.End says why:
	// no application, an application that needs another Device OS): the person said yes
	// to exactly that. Without it such a plan is refused before anything is written.
	AllowSafeMode bool
	// LeaveSetupDone does not mark setup done where Device OS before 4.0 minds the flag
	// (platform.SetupDone); by default a plan marks it, so that the device runs its
	// application instead of waiting in listening mode.
	LeaveSetupDone bool
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
	// Assets are asset files (asset modules) the application may need; those it needs and
	// the device lacks are written after it.
	Assets  []*module.Module
	Options Options
	// Notes and Warnings come from reading the target's files (what a bundle held that was
	// left out; a file whose name its header contradicts); the plan passes them on.
	Notes, Warnings []string
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
	Mode state.Mode
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
	Expect *state.Module
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
	// Notes say what the target's files held that the plan leaves out (Target.Notes).
	Notes []string
	// Windows is how many watchdog windows the DFU work needs (0 without a watchdog).
	Windows int
	// EstimatedDuration is the sum of the steps' estimates.
	EstimatedDuration time.Duration
	// NeedsSteppingStone names the Device OS version the device must go through first
	// (Make also returns a *SteppingStoneError); the plan then has no steps.
	NeedsSteppingStone string
	// Predicted is the device as the plan leaves it: every module it should report, the
	// verification target. End is the mode it should come up in, and why when that is
	// not normal mode (the person accepted it: Options.AllowSafeMode).
	Predicted state.Device
	End       state.Boot
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
// written again); an invalidation when nothing intact is left at its address; mode
// changes when the device is in that mode. Resets, service mode and verification are
// never done in advance.
func (s *Step) Done(st state.Device) bool {
	switch s.Kind {
	case KindWrite, KindSetOTAFlag, KindWaitFor:
		if s.Expect == nil {
			return false
		}
		in, ok := st.Main(s.Expect.Function, s.Expect.Index)
		return ok && in.SameBuild(*s.Expect)
	case KindInvalidate:
		for _, in := range st.Installed() {
			if in.Intact() && in.Start == s.Address {
				return false
			}
		}
		return true
	case KindEnterMode:
		return st.Mode == s.Mode
	}
	return false
}

// Expected lists the modules the device should report after the plan: every intact
// module that counts (state.Device.Effective) in the predicted state and that the
// predicted Device OS lists. A damaged module the
// plan leaves alone is part of the prediction (it shapes the end mode) but nothing to
// verify.
func (p *Plan) Expected() []state.Module {
	var out []state.Module
	for _, m := range p.Predicted.Effective() {
		if m.Intact() && p.Predicted.Sees(m.Function) {
			out = append(out, m)
		}
	}
	return out
}
