package state

import (
	"cmp"
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
	// CauseSetupNotDone: Gen3 Device OS before 4.0 without its setup-done flag waits in
	// listening mode.
	CauseSetupNotDone
	// CauseProtected: Device Protection hides the modules; the mode is the one seen.
	CauseProtected
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

// Runnable reports whether Device OS can start at all: the bootloader finds every system
// part intact (it checks headers and CRCs, never dependencies: bootloader/src/main.c) and,
// where the platform has one, a SoftDevice is there. Otherwise the bootloader stays in DFU
// mode. Unmet dependencies still let Device OS run, in safe mode.
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
			if dep.Function != platform.FuncRadio {
				continue
			}
			if _, present := d.Main(dep.Function, dep.Index); !present && !d.unread(dep.Function) {
				mm, need := m, dep.Need()
				return &Boot{Mode: ModeDFU, Cause: CauseSystemBroken, Module: &mm, Need: &need, Why: d.needsSentence(m, need)}
			}
		}
	}
	if found && d.Platform != nil && d.Platform.HasRadioStack && !d.unread(platform.FuncRadio) {
		// Device OS on an nRF52840 runs on the SoftDevice whatever its header says: without
		// one it cannot start.
		if _, present := d.Main(platform.FuncRadio, 0); !present {
			return &Boot{Mode: ModeDFU, Cause: CauseSystemBroken, Why: "there is no SoftDevice (radio stack), which Device OS runs on"}
		}
	}
	if !found {
		why := "there is no Device OS (no system part)"
		if names := d.systemSlotNames(); len(names) > 0 {
			verb := " is"
			if len(names) > 1 {
				verb = " are"
			}
			why = strings.Join(names, " and ") + verb + " missing: there is no Device OS"
		}
		return &Boot{Mode: ModeDFU, Cause: CauseNoSystem, Why: why}
	}
	return nil
}

// refused reports a module Device OS itself said fails its dependency check (control
// request 90 or `s`), whatever the reading shows of what it depends on: the device's own
// verdict on what it read. A write makes the verdicts stale (Device.Write forgets them).
func refused(m Module) bool {
	if m.Source != SourceControl && m.Source != SourceSerial || m.Checks.Dependencies {
		return false
	}
	for _, u := range m.Unchecked {
		if u == "dependencies" {
			return false
		}
	}
	return true
}

// systemSlotNames names the platform's system parts in their current layout
// ("system-part1", "system-part2").
func (d Device) systemSlotNames() []string {
	if d.Platform == nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, s := range d.Platform.Slots {
		if s.Function == platform.FuncSystem && !seen[s.Name] {
			seen[s.Name] = true
			out = append(out, s.Name)
		}
	}
	sort.Strings(out)
	return out
}

// userSlots are the platform's user slots in the order Device OS tries them (the 128 KB
// Gen3 slot, index 1, before the 256 KB one: user_hal.cpp), without those the running
// Device OS does not know.
func (d Device) userSlots() []platform.Slot {
	if d.Platform == nil {
		return nil
	}
	sys := d.SystemVersion()
	var out []platform.Slot
	for _, s := range d.Platform.Slots {
		if s.Function != platform.FuncUser || sys != 0 && s.KnownSince != 0 && sys < s.KnownSince {
			continue
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}

// inSlot reports whether a module's own start address puts it in the slot.
func inSlot(m Module, s platform.Slot) bool {
	if s.EndFixed {
		return m.Start >= s.Start && m.Start < s.End()
	}
	return m.Start == s.Start
}

// userAt is the application whose header sits at the slot's start, if any.
func (d Device) userAt(s platform.Slot) (Module, bool) {
	var found *Module
	for i := range d.Modules {
		m := &d.Modules[i]
		if m.Present && m.IsMain() && m.Function == platform.FuncUser && inSlot(*m, s) {
			if found == nil || !found.Intact() && m.Intact() {
				found = m
			}
		}
	}
	if found == nil {
		return Module{}, false
	}
	return *found, true
}

// RunningApp is the application Device OS runs: in each user slot it knows, in its order,
// the image whose own header starts there, that is intact (CRC, platform) and whose
// dependencies are met; the first such one runs (user_hal.cpp validUserModuleInfoAtIndex,
// reference §6c.5). A dependency nobody could read counts as met. Where the module
// addresses are not known, the intact application with the lowest index stands for it.
func (d Device) RunningApp() (Module, bool) {
	runs := func(m Module) bool {
		if !m.Intact() || refused(m) {
			return false
		}
		for _, dep := range m.Deps {
			if ok, known := d.Meets(dep.Need()); !ok && known {
				return false
			}
		}
		return true
	}
	slots := d.userSlots()
	if len(slots) > 0 && d.located() {
		for _, s := range slots {
			if m, ok := d.userAt(s); ok && runs(m) {
				return m, true
			}
		}
		return Module{}, false
	}
	var best Module
	found := false
	for _, m := range d.Installed() {
		if m.Function == platform.FuncUser && runs(m) && (!found || m.Index < best.Index) {
			best, found = m, true
		}
	}
	return best, found
}

// ignored reports a module whose dependencies nobody checks any more: an application
// that is not the running one (while another one runs).
func (d Device) ignored(m Module) bool {
	if m.Function != platform.FuncUser {
		return false
	}
	a, ok := d.RunningApp()
	return ok && (a.Start != m.Start || a.Index != m.Index)
}

// Ignored reports an installed module Device OS does not look at (an application in a
// user slot that does not run while another one does).
func (d Device) Ignored(m Module) bool { return d.ignored(m) }

// Effective lists the installed modules that count: one per slot, without an
// application that does not run while another one does (a leftover Device OS neither runs
// nor, on older releases, even lists).
func (d Device) Effective() []Module {
	var out []Module
	for _, m := range d.Installed() {
		if !d.ignored(m) {
			out = append(out, m)
		}
	}
	return out
}

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
	if d.Protection == ProtectionProtected && len(d.Modules) == 0 {
		// Nothing but the protection can be read: the device is in the mode it was seen in.
		return Boot{Mode: d.Mode, Cause: CauseProtected,
			Why: "Device Protection is on: its modules can only be read and changed in Service Mode"}
	}
	if b := d.dfuReason(); b != nil {
		return *b
	}
	b := d.running(wary)
	if d.WaitsForSetup() {
		// network_connect() finds no setup-done flag and enters listening mode, whatever
		// the application (system_network_manager_api.cpp testAndClearListeningModeFlag
		// @v3.3.1), so that mode wins even over safe mode.
		why := "setup is not done: Device OS before 4.0 waits in listening mode (blinking dark blue) until it is marked done"
		if b.Mode == ModeSafe {
			why += "; then it would run in safe mode: " + b.Why
		}
		return Boot{Mode: ModeListening, Cause: CauseSetupNotDone, Why: why}
	}
	return b
}

// WaitsForSetup reports a device whose Device OS minds the setup-done flag
// (platform.SetupDone, before 4.0) and which does not have it.
func (d Device) WaitsForSetup() bool {
	return d.SetupDone == FlagNo && d.MindsSetup()
}

// MindsSetup reports whether the device's Device OS minds the setup-done flag
// (platform.SetupDone: Gen3 before 4.0).
func (d Device) MindsSetup() bool {
	sd := d.Platform.SetupDoneFlag()
	sys := d.SystemVersion()
	return sd != nil && sys != 0 && sys < sd.Until
}

// running is the mode of a device whose Device OS starts: normal, or safe and why.
func (d Device) running(wary bool) Boot {
	for _, m := range d.ordered() {
		if !m.Intact() || !bootChecked(m.Function) || m.Function == platform.FuncUser {
			continue
		}
		for _, dep := range m.Deps {
			ok, known := d.Meets(dep.Need())
			if ok || !known && !wary {
				continue
			}
			mm, need := m, dep.Need()
			return Boot{Mode: ModeSafe, Cause: CauseNeeds, Module: &mm, Need: &need, Why: d.needsSentence(m, need)}
		}
		if refused(m) {
			mm := m
			return Boot{Mode: ModeSafe, Cause: CauseNeeds, Module: &mm,
				Why: fmt.Sprintf("%s %d fails Device OS's own dependency check", nameOf(m), m.Version)}
		}
	}
	app, ok := d.RunningApp()
	if ok {
		if wary {
			for _, dep := range app.Deps {
				if ok, _ := d.Meets(dep.Need()); !ok {
					mm, need := app, dep.Need()
					return Boot{Mode: ModeSafe, Cause: CauseAppNeeds, Module: &mm, Need: &need, Why: d.needsSentence(app, need)}
				}
			}
		}
		return Boot{Mode: ModeNormal}
	}
	// No application runs: say why, of the first one Device OS would have tried.
	var corrupt *Module
	for _, m := range d.appCandidates() {
		if !m.Intact() {
			if corrupt == nil {
				mm := m
				corrupt = &mm
			}
			continue
		}
		for _, dep := range m.Deps {
			if ok, known := d.Meets(dep.Need()); !ok && (known || wary) {
				mm, need := m, dep.Need()
				return Boot{Mode: ModeSafe, Cause: CauseAppNeeds, Module: &mm, Need: &need, Why: d.needsSentence(m, need)}
			}
		}
	}
	if corrupt != nil {
		return Boot{Mode: ModeSafe, Cause: CauseAppCorrupt, Module: corrupt,
			Why: fmt.Sprintf("the application is damaged (it fails its %s check)", strings.Join(corrupt.Failed(), " and "))}
	}
	return Boot{Mode: ModeSafe, Cause: CauseNoApp, Why: "there is no application"}
}

// appCandidates are the applications Device OS would look at, in its order.
func (d Device) appCandidates() []Module {
	var out []Module
	slots := d.userSlots()
	for _, s := range slots {
		if m, ok := d.userAt(s); ok {
			out = append(out, m)
		}
	}
	if len(out) > 0 || len(slots) > 0 && d.located() {
		return out
	}
	for _, m := range d.Installed() {
		if m.Function == platform.FuncUser {
			out = append(out, m)
		}
	}
	return out
}

// located reports whether every application's address is known.
func (d Device) located() bool {
	for _, m := range d.Installed() {
		if m.Function == platform.FuncUser && m.Start == 0 {
			return false
		}
	}
	return true
}

// needsSentence says what m lacks: "the application needs Device OS 5.5.1; system-part1
// is 4.0.2", "system-part1 4100 needs NCP firmware 7 or newer; the NCP firmware is 5".
func (d Device) needsSentence(m Module, need module.Dependency) string {
	who := nameOf(m)
	if m.Function != platform.FuncUser {
		who = fmt.Sprintf("%s %d", who, m.Version)
	}
	return who + " needs " + NeedText(need) + "; " + d.HaveText(need)
}

// HaveText says what the device has where a dependency looks: "system-part2 is 1.5.2",
// "the bootloader is 502 (Device OS 1.5.2) and damaged", "there is no SoftDevice", "the
// version of the NCP firmware cannot be read in this mode".
func (d Device) HaveText(need module.Dependency) string {
	have, present := d.Main(need.Function, need.Index)
	switch {
	case present:
		return haveText(d.Platform, have)
	case d.unread(need.Function):
		mode := "this"
		if d.Mode != ModeUnknown {
			mode = d.Mode.Title()
		}
		return "the version of the " + slotWord(d.Platform, need.Function, need.Index) + " cannot be read in " + mode + " mode"
	}
	return "there is no " + slotWord(d.Platform, need.Function, need.Index)
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
			s = fmt.Sprintf("%s is %s", cmp.Or(m.Name, "the system part"), m.DeviceOS)
		} else {
			s = fmt.Sprintf("%s is version %d", cmp.Or(m.Name, "the system part"), m.Version)
		}
	case m.Function == platform.FuncBootloader && m.Index == 0:
		s = fmt.Sprintf("the bootloader is %d", m.Version)
		if m.DeviceOS != "" {
			s += " (Device OS " + m.DeviceOS + ")"
		}
	case m.Function == platform.FuncRadio:
		s = fmt.Sprintf("the SoftDevice is %s", cmp.Or(strings.TrimPrefix(m.Description, "SoftDevice "), fmt.Sprint(m.Version)))
	default:
		s = fmt.Sprintf("the %s is %d", slotWord(p, m.Function, m.Index), m.Version)
	}
	if !m.Intact() {
		s += " and damaged"
	}
	return s
}
