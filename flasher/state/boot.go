package state

import (
	"fmt"
	"sort"
	"strings"

	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// Cause classifies why a device does not come up in normal mode.
type Cause int

// Causes.
const (
	CauseNone Cause = iota
	// CauseNoSystem: no system part at all; the bootloader stays in DFU mode.
	CauseNoSystem
	// CauseSystemBroken: a system part is missing, corrupt or for another platform, or a
	// system part lacks another system part or the radio stack it needs: DFU mode.
	CauseSystemBroken
	// CauseNeeds: a Device OS part (system part, bootloader) lacks a module it depends on
	// (a newer bootloader, NCP firmware): safe mode.
	CauseNeeds
	// CauseNoApp: there is no application: safe mode.
	CauseNoApp
	// CauseAppCorrupt: the application fails its own checks: safe mode.
	CauseAppCorrupt
	// CauseAppNeeds: the application needs a newer Device OS than the device has: safe mode.
	CauseAppNeeds
)

// Boot is the mode a device comes up in after a reset, and why.
type Boot struct {
	Mode  Mode
	Cause Cause
	// Module is the module that decides it (the application, the system part that lacks
	// something); Need is the dependency it lacks, when that is the reason.
	Module *Module
	Need   *module.Dependency
	// Why says it in words, without the mode: "the application needs Device OS 5.5.1;
	// system-part1 is 4.0.2", "there is no application". "" in normal mode.
	Why string
}

// String is the mode and the reason in one phrase: "safe mode: there is no application",
// "normal mode".
func (b Boot) String() string {
	if b.Why == "" {
		return b.Mode.Title() + " mode"
	}
	return b.Mode.Title() + " mode: " + b.Why
}

// Sentence is String as a sentence for people: "Safe mode: there is no application."
func (b Boot) Sentence() string {
	s := b.String()
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

// bootChecked reports whether Device OS keeps checking a module's dependencies after it
// is installed. System parts, the application and the bootloader are validated at every
// start (safe mode when they fail, reference §6a); a SoftDevice's or NCP firmware's
// dependencies only say which Device OS can install it, so a later downgrade of the
// system part does not undo them (Device Restore never downgrades the Tracker's NCP).
func bootChecked(fn platform.Function) bool {
	return fn != platform.FuncRadio && fn != platform.FuncNCP
}

// BootChecked reports whether Device OS checks a module of this function at every start
// (see bootChecked); the planner asks it of modules it leaves alone.
func BootChecked(fn platform.Function) bool { return bootChecked(fn) }

// rank orders modules the way Device OS validates them at start-up: the bootloader and
// the system parts (HAL_Core_Validate_Modules), then the application.
func rank(fn platform.Function) int {
	switch fn {
	case platform.FuncBootloader:
		return 0
	case platform.FuncSystem, platform.FuncMono:
		return 1
	case platform.FuncRadio, platform.FuncNCP:
		return 2
	case platform.FuncUser:
		return 3
	}
	return 4
}

// ordered returns the installed modules in validation order.
func (d Device) ordered() []Module {
	mods := d.Installed()
	sort.SliceStable(mods, func(i, j int) bool { return rank(mods[i].Function) < rank(mods[j].Function) })
	return mods
}

// Runnable reports whether Device OS can start: at least one system module, every system
// module intact, and their dependencies on other system parts and on the radio stack met.
// Unmet bootloader, NCP or application dependencies still let Device OS run (in safe
// mode); a broken system part sends the bootloader to DFU mode (reference §2a, §6a).
func (d Device) Runnable() bool { return d.dfuReason() == nil }

func (d Device) dfuReason() *Boot {
	found := false
	for _, m := range d.ordered() {
		if !isSystem(m.Function) {
			continue
		}
		found = true
		if !m.Intact() {
			mm := m
			return &Boot{Mode: ModeDFU, Cause: CauseSystemBroken, Module: &mm,
				Why: fmt.Sprintf("%s is damaged (it fails its %s check)", nameOf(m), strings.Join(m.Failed(), " and "))}
		}
		for _, dep := range m.Deps {
			if isSystem(dep.Function) || dep.Function == platform.FuncRadio {
				if ok, _ := d.Meets(dep.Need()); !ok {
					mm, need := m, dep.Need()
					return &Boot{Mode: ModeDFU, Cause: CauseSystemBroken, Module: &mm, Need: &need,
						Why: d.needsSentence(m, need)}
				}
			}
		}
	}
	if !found {
		return &Boot{Mode: ModeDFU, Cause: CauseNoSystem, Why: "there is no Device OS (no system part)"}
	}
	return nil
}

// RunningApp is the application Device OS runs: the intact user part with the lowest
// index, since a valid 128 KB Gen3 app at 0xD4000 wins over a 256 KB one (reference
// §6c.5). Other user parts are leftovers nobody runs or checks.
func (d Device) RunningApp() (Module, bool) {
	var best Module
	found := false
	for _, m := range d.Installed() {
		if m.Function == platform.FuncUser && m.Intact() && (!found || m.Index < best.Index) {
			best, found = m, true
		}
	}
	return best, found
}

// ignored reports a module whose dependencies nobody checks any more: an application
// that is not the running one.
func (d Device) ignored(m Module) bool {
	if m.Function != platform.FuncUser {
		return false
	}
	a, ok := d.RunningApp()
	return ok && a.Index != m.Index
}

// Ignored reports an installed module Device OS does not look at (an application in the
// user slot that does not run).
func (d Device) Ignored(m Module) bool { return d.ignored(m) }

// Boot is the mode the device comes up in after a reset: DFU when Device OS cannot
// start, safe mode when a module Device OS checks at start-up lacks a dependency or there
// is no intact application, normal otherwise. A dependency on firmware nobody could read
// (the NCP of a device read over DFU) counts as met; see BootWary.
func (d Device) Boot() Boot { return d.boot(false) }

// BootWary is Boot counting unreadable dependencies as unmet: the LED to announce in the
// middle of a plan, where "safe mode is expected" is the right thing to say if the NCP
// turns out to be old (and breathing cyan is then welcome news).
func (d Device) BootWary() Boot { return d.boot(true) }

func (d Device) boot(wary bool) Boot {
	if b := d.dfuReason(); b != nil {
		return *b
	}
	_, hasApp := d.RunningApp()
	var corruptApp *Module
	for _, m := range d.ordered() {
		if !m.Intact() {
			if m.Function == platform.FuncUser && corruptApp == nil {
				mm := m
				corruptApp = &mm
			}
			continue
		}
		if !bootChecked(m.Function) || d.ignored(m) {
			continue
		}
		for _, dep := range m.Deps {
			ok, known := d.Meets(dep.Need())
			if ok || !known && !wary {
				continue
			}
			mm, need := m, dep.Need()
			cause := CauseNeeds
			if m.Function == platform.FuncUser {
				cause = CauseAppNeeds
			}
			return Boot{Mode: ModeSafe, Cause: cause, Module: &mm, Need: &need, Why: d.needsSentence(m, need)}
		}
	}
	if !hasApp {
		if corruptApp != nil {
			return Boot{Mode: ModeSafe, Cause: CauseAppCorrupt, Module: corruptApp,
				Why: fmt.Sprintf("the application is damaged (it fails its %s check)", strings.Join(corruptApp.Failed(), " and "))}
		}
		return Boot{Mode: ModeSafe, Cause: CauseNoApp, Why: "there is no application"}
	}
	return Boot{Mode: ModeNormal}
}

// needsSentence says what m lacks: "the application needs Device OS 5.5.1; system-part1
// is 4.0.2", "system-part1 4100 needs NCP firmware 7 or newer; the NCP firmware is 5".
func (d Device) needsSentence(m Module, need module.Dependency) string {
	who := nameOf(m)
	if m.Function != platform.FuncUser {
		who = fmt.Sprintf("%s %d", who, m.Version)
	}
	s := who + " needs " + NeedText(need)
	have, present := d.Main(need.Function, need.Index)
	switch {
	case present:
		s += "; " + haveText(d.Platform, have)
	case d.unread(need.Function):
		s += "; the version of the " + slotWord(d.Platform, need.Function, need.Index) + " cannot be read in this mode"
	default:
		s += "; there is no " + slotWord(d.Platform, need.Function, need.Index)
	}
	return s
}

// nameOf names a module as the subject of a sentence: "the application", "system-part1",
// "the bootloader".
func nameOf(m Module) string {
	switch {
	case m.Function == platform.FuncUser:
		return "the application"
	case m.Function == platform.FuncBootloader && m.Index == 0:
		return "the bootloader"
	case m.Name != "":
		return m.Name
	}
	return fmt.Sprintf("%s module %d", m.Function, m.Index)
}

// slotWord names what a function and index is, for "there is no ...".
func slotWord(p *platform.Platform, fn platform.Function, idx uint8) string {
	switch {
	case fn == platform.FuncUser:
		return "application"
	case fn == platform.FuncBootloader && idx == 0:
		return "bootloader"
	case fn == platform.FuncNCP:
		return "NCP firmware"
	case fn == platform.FuncRadio:
		return "SoftDevice"
	}
	if p != nil {
		if s, ok := p.Slot(fn, idx); ok {
			return s.Name
		}
	}
	return fmt.Sprintf("%s module %d", fn, idx)
}

// NeedText says what a dependency asks for, in words: "Device OS 5.5.1" (a system part),
// "bootloader 1200 (Device OS 4.1.0) or newer", "SoftDevice S140 7.0.1 or newer", "NCP
// firmware 7 or newer".
func NeedText(d module.Dependency) string {
	switch {
	case isSystem(d.Function):
		if v, ok := module.FirstDeviceOSVersion(d.Function, d.Version); ok {
			return "Device OS " + v
		}
		return fmt.Sprintf("system part %d version %d or newer", d.Index, d.Version)
	case d.Function == platform.FuncBootloader && d.Index == 0:
		if v, ok := module.FirstDeviceOSVersion(d.Function, d.Version); ok {
			return fmt.Sprintf("bootloader %d (Device OS %s) or newer", d.Version, v)
		}
		return fmt.Sprintf("bootloader %d or newer", d.Version)
	case d.Function == platform.FuncBootloader:
		return fmt.Sprintf("prebootloader %d version %d or newer", d.Index, d.Version)
	case d.Function == platform.FuncRadio:
		if n, ok := module.RadioStackName(d.Version); ok {
			return n + " or newer"
		}
		return fmt.Sprintf("SoftDevice %d or newer", d.Version)
	case d.Function == platform.FuncNCP:
		return fmt.Sprintf("NCP firmware %d or newer", d.Version)
	case d.Function == platform.FuncUser:
		return fmt.Sprintf("an application version %d or newer", d.Version)
	}
	return fmt.Sprintf("%s module %d version %d or newer", d.Function, d.Index, d.Version)
}

// haveText says what the device has in the place of a dependency: "system-part1 is
// 4.0.2", "the bootloader is 1006 (Device OS 2.3.1)", "the NCP firmware is 5".
func haveText(p *platform.Platform, m Module) string {
	Describe(p, &m)
	var s string
	switch {
	case isSystem(m.Function):
		if m.DeviceOS != "" {
			s = fmt.Sprintf("%s is %s", firstNonEmpty(m.Name, "the system part"), m.DeviceOS)
		} else {
			s = fmt.Sprintf("%s is version %d", firstNonEmpty(m.Name, "the system part"), m.Version)
		}
	case m.Function == platform.FuncBootloader && m.Index == 0:
		s = fmt.Sprintf("the bootloader is %d", m.Version)
		if m.DeviceOS != "" {
			s += " (Device OS " + m.DeviceOS + ")"
		}
	case m.Function == platform.FuncRadio:
		s = fmt.Sprintf("the SoftDevice is %s", firstNonEmpty(strings.TrimPrefix(m.Description, "SoftDevice "), fmt.Sprint(m.Version)))
	default:
		s = fmt.Sprintf("the %s is %d", slotWord(p, m.Function, m.Index), m.Version)
	}
	if !m.Intact() {
		s += " and damaged"
	}
	return s
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
