package plan

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/state"
	"github.com/particle-flasher/particle-flasher/flasher/words"
)

// Make plans the way from the device state to the target. Every refusal wraps one of the
// Err* sentinels and carries a remedy (remedy.Of): a protected device below 6.1.1, a
// module for another platform or one that does not fit its slot, a dependency nothing in
// the target or on the device meets. When the device must first go through another
// version (a stepping stone), Make returns a Plan with NeedsSteppingStone set and no steps
// together with a *SteppingStoneError.
func Make(st state.Device, t Target) (*Plan, error) {
	p := st.Platform
	if p == nil {
		return nil, fail(ErrNoPlatform, "Connect the device so its platform can be read, or say which platform it is.",
			"the device's platform is not known")
	}
	o := t.Options
	pl := &Plan{Platform: p, Verify: o.Verify, From: "unknown", To: "unknown", Notes: t.Notes}
	warn := append([]string(nil), t.Warnings...)

	// The target: Device OS parts and, at most, one replacement application.
	var osMods []*module.Module
	replacement := t.ReplacementApp
	for _, m := range t.Modules {
		if m == nil {
			continue
		}
		parts, err := expand(m)
		if err != nil {
			return nil, err
		}
		for _, part := range parts {
			if part.Function == platform.FuncAsset {
				t.Assets = append(t.Assets, part)
				continue
			}
			if _, err := checkModule(p, part); err != nil {
				return nil, err
			}
			if part.PlatformID != p.ID {
				warn = append(warn, fmt.Sprintf("%s is the %s's build; the same SoftDevice serves every %s platform and its header is dropped on the way to flash, so it is written over DFU for this %s.",
					words.UpperFirst(fileDesc(part)), platformName(part.PlatformID), p.MCU, p.DisplayName))
			}
			if part.Function == platform.FuncUser {
				if replacement == nil {
					replacement = part
				}
				continue
			}
			osMods = append(osMods, part)
		}
	}
	app := t.App
	for _, m := range []*module.Module{app, replacement} {
		if m == nil {
			continue
		}
		if _, err := checkModule(p, m); err != nil {
			return nil, err
		}
		if m.Function != platform.FuncUser {
			return nil, fail(ErrConflict, "Give the application's .bin file (a user part) as the app.",
				"%s is not an application but %s", fileDesc(m), describe(m))
		}
	}
	if err := noDuplicates(osMods); err != nil {
		return nil, err
	}

	st.Resolve()
	initial := &st
	if !st.Known() {
		warn = append(warn, "Nothing is known about what the device has, so every part of the target is written.")
	}

	// Versions and direction.
	instSys := initial.SystemVersion()
	var tgtSys uint16
	var tgtBoot *module.Module
	for _, m := range osMods {
		if isSystem(m.Function) && m.Version > tgtSys {
			tgtSys = m.Version
		}
		if m.Function == platform.FuncBootloader && m.Index == 0 {
			tgtBoot = m
		}
	}
	pl.From = cmp.Or(st.DeviceOS, osName(instSys))
	if pl.From == "" {
		pl.From = "unknown"
	}
	pl.To = cmp.Or(t.Name, osName(tgtSys))
	if pl.To == "" {
		pl.To = pl.From // only an application: Device OS stays
	}
	pl.Direction = direction(initial, st, osMods, instSys, tgtSys)

	// Nothing older than the platform's first Device OS: the hardware did not exist then.
	if first, ok := module.SystemModuleVersion(p.FirstDeviceOS); ok && tgtSys != 0 && tgtSys < first {
		return nil, fail(ErrTooOld, fmt.Sprintf("Choose Device OS %s or newer.", p.FirstDeviceOS),
			"Device OS %s is older than the %s: its first Device OS is %s", pl.To, p.DisplayName, p.FirstDeviceOS)
	}

	// SKU floors: some modules sharing the platform ID need a newer Device OS, and the SKU
	// cannot be read over USB (no control request or listening-mode command reports it).
	for _, f := range p.SKUFloors {
		if v, ok := module.SystemModuleVersion(f.DeviceOS); ok && tgtSys != 0 && tgtSys < v {
			warn = append(warn, fmt.Sprintf("If this %s is %s %s, Device OS %s is too old for it: %s needs %s or newer and must never go below it (Particle's manufacturing notes). The SKU is printed on the module's label; it cannot be read over USB.",
				p.DisplayName, platform.Article(f.SKUs), f.SKUs, pl.To, f.Why, f.DeviceOS))
		}
	}

	// Device Protection: a protected device is only written in Service Mode, which only
	// Particle's cloud can open; in Service Mode, nothing below 6.1.1.
	if st.Protection == state.ProtectionProtected {
		// The words name what to do in any front end; the Particle CLI's command line is
		// kept apart for the command line to show (remedy.Command).
		return nil, remedy.WithCommand(&Error{Kind: ErrProtected, Msg: fmt.Sprintf(
			"this %s has Device Protection: its flash is locked against every change that Particle's cloud has not authorised, and this tool works without the cloud. "+
				"It can be flashed locally only in Service Mode, and never below Device OS %s",
			p.DisplayName, protectedMinName)},
			"Put the device in Service Mode with Particle's cloud, then try again within 24 hours: with Particle's command-line tool logged in to the account or product that owns the device, "+
				"disable Device Protection while the device is connected over USB (it stays in Service Mode for 20 restarts or 24 hours). "+
				"Or turn Device Protection off for the device in the Particle Console.",
			"particle device-protection disable")
	}
	if st.Protection == state.ProtectionService {
		if tgtSys != 0 && tgtSys < protectedMinSystem || tgtBoot != nil && tgtBoot.Version < protectedMinBootloader {
			what := "Device OS " + pl.To
			if tgtSys == 0 || tgtSys >= protectedMinSystem {
				what = describe(tgtBoot)
			}
			return nil, fail(ErrProtected,
				"Choose Device OS "+protectedMinName+" or newer, or turn Device Protection off for this device in the Particle Console (it becomes an open device) and plan again.",
				"this %s has Device Protection (now in Service Mode), which refuses anything older than Device OS %s (system part %d, bootloader %d), and the target is %s: a protected device cannot be downgraded that far",
				p.DisplayName, protectedMinName, protectedMinSystem, protectedMinBootloader, what)
		}
	}

	// Stepping stones.
	if ss := steppingStoneFor(p, instSys, tgtSys); ss != nil {
		pl.NeedsSteppingStone = ss.Via
		pl.Warnings = append(warn, ss.Why)
		err := &SteppingStoneError{From: pl.From, To: pl.To, Via: ss.Via, Why: ss.Why}
		return pl, fail(err, fmt.Sprintf("Bring the device to Device OS %s first, let it connect once, then go to %s.", ss.Via, pl.To),
			"%s", err.Error())
	}

	// What to write.
	var items []*item
	for _, m := range osMods {
		slot, _ := checkModule(p, m)
		if why, off := turnedOff(m, slot, o); off {
			pl.Skipped = append(pl.Skipped, Skip{Module: m, Slot: slot.Name, Why: why})
			continue
		}
		if cur, ok := initial.Main(m.Function, m.Index); ok && !o.Force && cur.SameBuild(state.FromFile(p, m)) {
			pl.Skipped = append(pl.Skipped, Skip{Module: m, Slot: slot.Name,
				Why: fmt.Sprintf("already installed: version %d with a valid CRC", m.Version)})
			continue
		}
		items = append(items, newItem(m, slot, whyWrite(initial, m, slot)))
	}

	// A protected device stays protected only with a protected bootloader build
	// (particle-cli rewrites the bootloader for that, maintainDeviceProtection); Device OS
	// itself refuses an open one while protection is only suspended (ota_flash_hal.cpp
	// validateModules).
	if st.Protection == state.ProtectionService {
		for _, it := range items {
			if it.m.Function != platform.FuncBootloader || it.m.Index != 0 {
				continue
			}
			if mode, _, ok := it.m.SecurityMode(); !ok || mode != 1 {
				return nil, fail(ErrProtected,
					"Use the protected build of the bootloader (its file name ends in -protected), or leave the bootloader as it is (--no-bootloader).",
					"this %s has Device Protection, but %s is an open build: installing it would turn the protection off", p.DisplayName, describe(it.m))
			}
		}
	}

	// The application.
	osFinal, err := writeAll(p, initial, items, !st.Known())
	if err != nil {
		return nil, err
	}
	appItem, appSkip, appWarn, err := decideApp(p, initial, osFinal, app, replacement, pl.To, o)
	if err != nil {
		return nil, err
	}
	if appSkip != nil {
		pl.Skipped = append(pl.Skipped, *appSkip)
	}
	warn = append(warn, appWarn...)
	if appItem != nil {
		items = append(items, appItem)
	}

	if err := checkOverlaps(items, initial); err != nil {
		return nil, err
	}

	// The end state must hold together.
	final, err := writeAll(p, initial, items, !st.Known())
	if err != nil {
		return nil, err
	}
	fw, err := checkFinal(p, final, items, o)
	if err != nil {
		return nil, err
	}
	warn = append(warn, fw...)

	ordered, ow, err := order(st, initial, items, pl.Direction, o)
	if err != nil {
		return nil, err
	}
	warn = append(warn, ow...)

	assets, askip, anotes, awarn, err := assetPlan(p, *initial, *final, t.Assets)
	if err != nil {
		return nil, err
	}
	ordered = append(ordered, assets...)
	pl.Skipped = append(pl.Skipped, askip...)
	pl.Notes = append(pl.Notes, anotes...)
	warn = append(warn, awarn...)

	e := newEmitter(pl, st, initial, o)
	if err := e.emit(ordered); err != nil {
		return nil, err
	}
	pl.Warnings = append(warn, e.warnings...)
	for _, s := range pl.Steps {
		pl.EstimatedDuration += s.Estimate
	}
	// The prediction is the emitter's replay of every step on the device's state.
	pl.Predicted = e.model.Clone()
	pl.End = pl.Predicted.Boot()
	pl.Predicted.Mode = pl.End.Mode
	if pl.End.Mode != state.ModeNormal && !o.AllowSafeMode {
		err := &EndStateError{End: pl.End, To: pl.To}
		return pl, remedy.With(err, endRemedy(pl.End))
	}
	return pl, nil
}

// endRemedy says what turns a plan that would end in safe mode into one that does not,
// or how to accept it.
func endRemedy(b state.Boot) string {
	switch b.Cause {
	case state.CauseNoApp, state.CauseAppCorrupt:
		return "Give an application for the device so it is written too, or accept that the device ends in safe mode until an application is flashed (--allow-safe-mode)."
	case state.CauseAppNeeds:
		return "Choose the Device OS the application needs, or give an application built for this Device OS, or accept that the device ends in safe mode (--allow-safe-mode)."
	}
	return "Give the missing part so it is written too, or accept that the device ends in safe mode (--allow-safe-mode)."
}

// writeAll is the device after the items are written in the given order, each with the
// wipes it needs (recorded on the item).
func writeAll(p *platform.Platform, initial *state.Device, items []*item, unknown bool) (*state.Device, error) {
	d := cloneOf(initial)
	for _, it := range items {
		if err := wipesFor(p, d, it, unknown); err != nil {
			return nil, err
		}
		for _, w := range it.wipes {
			d.Invalidate(w.Address, w.Size)
		}
		d.Write(it.inst)
	}
	return d, nil
}

// expand refuses a combined file: Parse keeps only its first module, so the caller has to
// split the file (module.SplitCombined) and give the parts.
func expand(m *module.Module) ([]*module.Module, error) {
	if !m.Combined() {
		return []*module.Module{m}, nil
	}
	return nil, fail(ErrInvalidModule, "Split the file into its modules (module.SplitCombined) and give those.",
		"%s is the first of several modules combined in one file", fileDesc(m))
}

// checkModule is the gate every module passes before anything is planned for it: intact,
// built for this platform, and exactly where one of the platform's slots expects it.
func checkModule(p *platform.Platform, m *module.Module) (platform.Slot, error) {
	if err := m.Validate(); err != nil {
		return platform.Slot{}, fail(ErrInvalidModule,
			"Download the file again (verifying the firmware cache finds damaged cached files); a file that fails its CRC must never be written.",
			"%s is not a valid module: %v", fileDesc(m), err)
	}
	shared := sharedRadioStack(p, m)
	if m.PlatformID != p.ID && !shared {
		other := fmt.Sprintf("platform %d", m.PlatformID)
		if op, ok := platform.ByID(m.PlatformID); ok {
			other = op.DisplayName
		}
		return platform.Slot{}, fail(ErrWrongPlatform,
			fmt.Sprintf("Use the %s's files (their names start with %q).", p.DisplayName, p.Name+"-"),
			"%s is built for the %s (platform %d), but this device is %s %s (platform %d)",
			fileDesc(m), other, m.PlatformID, platform.Article(p.DisplayName), p.DisplayName, p.ID)
	}
	slot, ok := p.SlotFor(m.Function, m.Index, m.Version)
	if !ok {
		return platform.Slot{}, fail(ErrDoesNotFit,
			"Use a module built for this platform and Device OS version.",
			"%s: the %s has no place for a %s module with index %d (version %d)",
			fileDesc(m), p.DisplayName, m.Function, m.Index, m.Version)
	}
	if err := slot.Check(m.Start, m.End); err != nil {
		return platform.Slot{}, fail(ErrDoesNotFit,
			"Use a module built for this platform and Device OS version; this one was built for another flash layout.",
			"%s does not fit the %s's %s slot (0x%08x, %d bytes): %v", fileDesc(m), p.DisplayName, slot.Name, slot.Start, slot.MaxSize, err)
	}
	if shared {
		// Device OS refuses another platform's radio stack (SYSTEM_ERROR_OTA_INVALID_PLATFORM),
		// so only the DFU write without the header may take it.
		slot.Methods = []platform.Method{platform.MethodDFUDropHeader}
	}
	if len(slot.Methods) == 0 {
		return platform.Slot{}, fail(ErrNoMethod, "Only an SWD/JTAG debugger can write this part.",
			"nothing this tool does can write the %s's %s", p.DisplayName, slot.Name)
	}
	return slot, nil
}

// sharedRadioStack reports a SoftDevice built for another platform of the same radio MCU
// (platform.SharesRadioStack). Device OS itself checks the header's platform when it
// installs one (ota_flash_hal.cpp fetch_module), so such a module may only be written
// over DFU without its header.
func sharedRadioStack(p *platform.Platform, m *module.Module) bool {
	return m.Function == platform.FuncRadio && m.Flags.Has(module.FlagDropModuleInfo) && p.SharesRadioStack(m.PlatformID)
}

func noDuplicates(mods []*module.Module) error {
	seen := map[slotKey]*module.Module{}
	for _, m := range mods {
		k := keyOf(m.Function, m.Index)
		if o, dup := seen[k]; dup {
			return fail(ErrConflict, "Give one file per part of Device OS.",
				"two modules for the same slot: %s and %s", fileDesc(o), fileDesc(m))
		}
		seen[k] = m
	}
	return nil
}

// direction classifies the plan: a rescue when Device OS cannot start as the device is
// (a system part the target brings is missing or corrupt, or nothing is known), else by
// the system parts' module versions.
func direction(initial *state.Device, st state.Device, osMods []*module.Module, instSys, tgtSys uint16) Direction {
	if tgtSys == 0 {
		return DirSame
	}
	if len(st.Modules) == 0 || !initial.Runnable() {
		return DirRescue
	}
	for _, m := range osMods {
		if !isSystem(m.Function) {
			continue
		}
		if in, ok := initial.Main(m.Function, m.Index); !ok || !in.Intact() {
			return DirRescue
		}
	}
	switch {
	case tgtSys > instSys:
		return DirUpgrade
	case tgtSys < instSys:
		return DirDowngrade
	}
	return DirSame
}

func steppingStoneFor(p *platform.Platform, from, to uint16) *steppingStone {
	if from == 0 || to == 0 {
		return nil
	}
	for i := range steppingStones {
		s := &steppingStones[i]
		if !slices.Contains(s.Platforms, p.Name) {
			continue
		}
		if from >= systemVersion(s.FromAtLeast) && to <= systemVersion(s.ToAtMost) {
			return s
		}
	}
	return nil
}

// turnedOff reports target modules the options or Particle's practice leave alone.
func turnedOff(m *module.Module, slot platform.Slot, o Options) (string, bool) {
	switch {
	case m.Encrypted() || slot.Encrypted:
		return "shipped encrypted; Particle's tools never flash it (particle-cli filterModulesToFlash)", true
	case m.Function == platform.FuncBootloader && o.NoBootloader:
		return "bootloader updates are turned off", true
	case m.Function == platform.FuncRadio && o.NoSoftDevice:
		return "SoftDevice updates are turned off", true
	case m.Function == platform.FuncNCP && o.NoNCP:
		return "NCP updates are turned off", true
	}
	return "", false
}

// whyWrite says what a Device OS module replaces.
func whyWrite(initial *state.Device, m *module.Module, slot platform.Slot) string {
	cur, ok := initial.Main(m.Function, m.Index)
	switch {
	case !ok:
		return fmt.Sprintf("The device has no %s; %s is installed.", slot.Name, describe(m))
	case !cur.Intact():
		return fmt.Sprintf("The device's %s is corrupt (it fails its CRC); %s replaces it.", slot.Name, describe(m))
	case cur.Version == m.Version:
		return fmt.Sprintf("%s is rewritten (the device has the same version but another build, or rewriting was forced).", describe(m))
	}
	return fmt.Sprintf("%s replaces version %d.", words.UpperFirst(describe(m)), cur.Version)
}

// decideApp chooses the application the plan writes, if any: the one the person gave; or,
// when the device's own app cannot run on the target (or there is none that is valid),
// the replacement. An app is never written when the device's own one is fine.
func decideApp(p *platform.Platform, initial, osFinal *state.Device, app, replacement *module.Module, to string, o Options) (*item, *Skip, []string, error) {
	var warn []string
	var installed *state.Module
	if a, ok := initial.RunningApp(); ok {
		installed = &a
	} else {
		for _, in := range initial.Installed() {
			if in.Function == platform.FuncUser {
				c := in
				installed = &c // a corrupt one
			}
		}
	}
	need := func(m *module.Module) []module.Dependency { return osFinal.Unmet(state.FromFile(p, m), false) }

	if app != nil {
		if unmet := need(app); len(unmet) > 0 {
			msg := fmt.Sprintf("the application %s needs %s, which Device OS %s does not provide", fileDesc(app), depsText(unmet), to)
			if !o.Force {
				return nil, nil, nil, fail(ErrDependency,
					fmt.Sprintf("Choose a target that provides %s, or build the application for Device OS %s.", depsText(unmet), to), "%s", msg)
			}
			warn = append(warn, words.UpperFirst(msg)+"; writing it anyway (forced): the device will start in safe mode.")
		}
		slot, _ := checkModule(p, app)
		if installed != nil && !o.Force && installed.SameBuild(state.FromFile(p, app)) {
			return nil, &Skip{Module: app, Slot: slot.Name, Why: "the same application is already installed"}, warn, nil
		}
		return newItem(app, slot, fmt.Sprintf("The application %s is installed.", fileDesc(app))), nil, warn, nil
	}

	var reason string
	switch {
	case installed == nil:
		reason = "The device has no application"
	case !installed.Intact():
		reason = "The device's application is corrupt (it fails its CRC)"
	default:
		unmet := osFinal.Unmet(*installed, false)
		if len(unmet) == 0 {
			return nil, nil, nil, nil
		}
		reason = fmt.Sprintf("The application on the device needs %s, which Device OS %s does not provide; left there it would keep "+
			"the device in safe mode (breathing magenta), where the cloud's safe-mode healer would upgrade Device OS again",
			depsText(unmet), to)
		if replacement == nil || len(need(replacement)) > 0 {
			if !o.Force {
				return nil, nil, nil, fail(ErrDependency,
					fmt.Sprintf("Give an application built for Device OS %s, or the target's Tinker, so it replaces the one on the device.", to),
					"%s, and there is no application for %s to replace it with", words.LowerFirst(reason), to)
			}
			return nil, nil, []string{reason + ". It stays (forced): expect safe mode."}, nil
		}
	}
	if replacement == nil || len(need(replacement)) > 0 {
		if installed == nil || !installed.Intact() {
			warn = append(warn, reason+", and the target brings none: the device will start in safe mode (breathing magenta) until an application is flashed.")
		}
		return nil, nil, warn, nil
	}
	slot, _ := checkModule(p, replacement)
	why := fmt.Sprintf("%s. It is replaced by the target's application (%s), built for Device OS %s; flash your own application again once the device runs %s.",
		reason, fileDesc(replacement), to, to)
	if installed == nil || !installed.Intact() {
		why = fmt.Sprintf("%s, so the target's application (%s) is installed, so that the device starts normally instead of in safe mode.",
			reason, fileDesc(replacement))
	}
	warn = append(warn, why)
	return newItem(replacement, slot, why), nil, warn, nil
}

// checkOverlaps refuses writes that would run over each other or over an installed
// module the plan keeps (apart from applications, which a new one supersedes).
func checkOverlaps(items []*item, initial *state.Device) error {
	extent := func(in state.Module) (uint64, uint64) {
		return uint64(in.Start), uint64(in.Start) + uint64(in.Size)
	}
	internal := func(in state.Module) bool {
		return in.Size > 0 && in.Function != platform.FuncNCP
	}
	for i, a := range items {
		if !internal(a.inst) {
			continue
		}
		as, ae := extent(a.inst)
		for _, b := range items[i+1:] {
			if !internal(b.inst) {
				continue
			}
			if bs, be := extent(b.inst); as < be && bs < ae {
				return fail(ErrConflict, "Give modules of one Device OS release.",
					"%s and %s overlap in flash", describe(a.m), describe(b.m))
			}
		}
		replaced := map[slotKey]bool{}
		for _, b := range items {
			replaced[b.key] = true
		}
		for _, in := range initial.Installed() {
			if replaced[keyOf(in.Function, in.Index)] || in.Function == platform.FuncUser || !internal(in) || !in.Intact() {
				continue
			}
			if is, ie := extent(in); as < ie && is < ae {
				return fail(ErrConflict, "Write the matching Device OS parts too, or choose an application built for the Device OS on the device.",
					"writing %s at 0x%08x would overwrite the installed %s at 0x%08x, which the plan keeps", describe(a.m), a.inst.Start, in, in.Start)
			}
		}
	}
	return nil
}

// checkFinal makes sure the device will hold together after the plan: Device OS starts
// and every module's dependencies are met. Force turns unmet dependencies into warnings.
func checkFinal(p *platform.Platform, final *state.Device, items []*item, o Options) ([]string, error) {
	var warn, problems, unread []string
	written := map[slotKey]bool{}
	for _, it := range items {
		written[it.key] = true
	}
	for _, in := range final.Installed() {
		if !written[keyOf(in.Function, in.Index)] && !state.BootChecked(in.Function) || final.Ignored(in) {
			continue // installed long ago (its dependencies only mattered then), or an app nobody runs
		}
		for _, dep := range in.Deps {
			d := dep.Need()
			ok, known := final.Meets(d)
			if ok {
				continue
			}
			who := fmt.Sprintf("the installed %s", in)
			if written[keyOf(in.Function, in.Index)] {
				who = fmt.Sprintf("%s %d", slotName(p, in), in.Version)
			}
			if !known {
				unread = append(unread, fmt.Sprintf("%s needs %s, but %s", who, depText(d), final.HaveText(d)))
				continue
			}
			problems = append(problems, fmt.Sprintf("%s needs %s, but after the plan %s", who, depText(d), final.HaveText(d)))
		}
	}
	for _, in := range final.Installed() {
		if !in.Intact() {
			warn = append(warn, fmt.Sprintf("The device's %s is corrupt and the target does not replace it; it stays as it is.", slotName(p, in)))
		}
	}
	if !final.Runnable() {
		problems = append(problems, "Device OS could not start after the plan: a system part or the SoftDevice it needs would be missing")
	}
	if len(problems) == 0 && len(unread) > 0 && !o.Force {
		return nil, fail(ErrDependency, "Give that part's file too (it is part of the Device OS release, so choosing the version fetches it with the rest), "+
			"or restart the device into normal mode (tap RESET) so its version can be read, and plan again.", "%s", strings.Join(unread, "; "))
	}
	if len(problems) == 0 {
		return warn, nil
	}
	msg := strings.Join(problems, "; ")
	rem := "Give the complete set of Device OS files for one release (bootloader, system parts, SoftDevice), and check that no part is turned off."
	if o.NoBootloader || o.NoSoftDevice || o.NoNCP {
		rem = "Turn the bootloader, SoftDevice and NCP updates back on, or give the missing parts."
	}
	if o.Force && final.Runnable() {
		return append(warn, "Forced despite: "+msg+"."), nil
	}
	return nil, fail(ErrDependency, rem, "%s", msg)
}

// ---- names --------------------------------------------------------------------------

// describe names a module for people: "system-part1 4100 (Device OS 4.1.0)".
func describe(m *module.Module) string {
	if m == nil {
		return "no module"
	}
	if a, ok := m.Asset(); ok {
		return fmt.Sprintf("the asset %s", a.Name)
	}
	s := fmt.Sprintf("%s %d", m.SlotName(), m.Version)
	switch {
	case m.Function == platform.FuncRadio:
		if n, ok := module.RadioStackName(m.Version); ok {
			s += " (" + n + ")"
		}
	case m.Function == platform.FuncBootloader && m.Index == 0:
		if first, last, ok := module.DeviceOSRange(m.Function, m.Version); ok {
			if first == last {
				s += " (Device OS " + first + ")"
			} else {
				s += " (Device OS " + first + "-" + last + ")"
			}
		}
	case isSystem(m.Function):
		if v := m.DeviceOS(); v != "" {
			s += " (Device OS " + v + ")"
		}
	}
	return s
}

// platformName names a platform ID for people.
func platformName(id uint16) string {
	if p, ok := platform.ByID(id); ok {
		return p.DisplayName
	}
	return fmt.Sprintf("platform %d", id)
}

// fileDesc names a module by what it is, since the planner never sees file names.
func fileDesc(m *module.Module) string {
	return fmt.Sprintf("%s %s %d", m.PlatformName(), m.SlotName(), m.Version)
}

func slotName(p *platform.Platform, in state.Module) string {
	if s, ok := p.SlotFor(in.Function, in.Index, in.Version); ok {
		return s.Name
	}
	return fmt.Sprintf("%s %d", in.Function, in.Index)
}

// depText says what a dependency asks for in words, the way the device's state says it
// ("Device OS 4.1.0", "bootloader 1200 (Device OS 5.6.0) or newer").
func depText(d module.Dependency) string { return state.NeedText(d) }

func depsText(ds []module.Dependency) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = depText(d)
	}
	return strings.Join(parts, " and ")
}

func osName(v uint16) string {
	if v == 0 {
		return ""
	}
	if n, ok := module.DeviceOSVersion(platform.FuncSystem, v); ok {
		return n
	}
	return fmt.Sprintf("system module %d", v)
}
