package plan

import (
	"cmp"
	"fmt"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/led"
	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/state"
	"github.com/particle-flasher/particle-flasher/flasher/words"
)

// emitter turns ordered items into steps: mode changes where the method needs another
// mode, the writes themselves, the restarts that install what Device OS installs, and
// verification. It replays the writes on its own copy of the flash model so each restart
// knows which LED the device will show.
type emitter struct {
	pl    *Plan
	p     *platform.Platform
	st    state.Device
	model *state.Device
	cur   state.Mode
	// pendingOTA is a module staged in the OTA region, installed at the next start.
	pendingOTA *item
	ids        map[string]int
	warnings   []string
	opt        Options

	// Watchdog: budget is the DFU work one window holds, used what the current holds.
	budget time.Duration
	used   time.Duration
	window int
}

func newEmitter(pl *Plan, st state.Device, initial *state.Device, o Options) *emitter {
	return &emitter{pl: pl, p: st.Platform, st: st, model: cloneOf(initial), cur: st.Mode, ids: map[string]int{}, opt: o}
}

func (e *emitter) emit(items []*item) error {
	if d := e.opt.Watchdog; d > 0 {
		e.budget = d - enterDFUTime - d/watchdogMarginDiv
		if e.budget <= 0 {
			return fail(ErrWatchdog, fmt.Sprintf("A window of %s cannot hold even the switch into DFU mode (about %s); check the watchdog period.", d, enterDFUTime),
				"the watchdog window of %s is too short to do any work in DFU mode", d)
		}
	}
	if len(items) == 0 {
		if e.cur == state.ModeDFU {
			e.leaveDFU("Nothing needs writing; the device only has to leave DFU mode.", true)
		}
		if e.setupDone() {
			e.finish()
		}
		return nil
	}
	for i, it := range items {
		if it.method.UsesDFU() {
			if it.method == platform.MethodOTARegion && e.pendingOTA != nil {
				e.leaveDFU("Only one module can wait in the OTA region at a time, so the device restarts to install "+describe(e.pendingOTA.m)+" before the next one is staged.", false)
			}
			if err := e.toDFU(); err != nil {
				return err
			}
			for _, w := range it.wipes {
				if err := e.invalidate(w); err != nil {
					return err
				}
			}
			var err error
			if it.method == platform.MethodOTARegion {
				err = e.stageOTA(it, items[i+1:])
			} else {
				err = e.writeDFU(it)
			}
			if err != nil {
				return err
			}
			continue
		}
		e.toRunning()
		e.writeControl(it, i == len(items)-1)
	}
	if e.cur == state.ModeDFU || e.pendingOTA != nil {
		e.leaveDFU("All the DFU writes are done; leaving DFU mode starts Device OS.", true)
	}
	e.setupDone()
	e.finish()
	return nil
}

// setupDone marks the device's setup done where its Device OS (before 4.0) would otherwise
// wait in listening mode for it (platform.SetupDone), as particle-cli's `usb setup-done`
// does; it reports whether it added the step.
func (e *emitter) setupDone() bool {
	if e.opt.LeaveSetupDone || !e.model.WaitsForSetup() {
		return false
	}
	if e.cur == state.ModeDFU {
		e.leaveDFU("Device OS has to run to take the setup-done request.", true)
	}
	waiting := e.model.Boot()
	e.model.SetupDone = state.FlagYes
	after := e.model.Boot().Mode
	e.add(Step{ID: "setup-done", Kind: KindSetupDone, Mode: after, Estimate: setupDoneTime, LED: running(e.p, after),
		Why: "Device OS " + e.model.DeviceOSName() + " waits in listening mode (blinking dark blue) until the device's setup is marked done: " + waiting.Why +
			". Particle Flasher marks it done over USB (control request 73, as Particle's own tools do) and the device goes on to run its application."})
	e.cur = after
	return true
}

// finish verifies and ends Service Mode.
func (e *emitter) finish() {
	if e.pl.Verify != VerifyNone {
		est := verifyTime
		why := "Re-read the module table and check that the device reports exactly the expected modules (Plan.Expect) and runs in " + e.model.Boot().Mode.String() + " mode."
		if e.pl.Verify == VerifyReadback {
			var n int
			for _, s := range e.pl.Steps {
				if s.Kind == KindWrite && s.Method.UsesDFU() {
					n += len(s.Data)
				}
			}
			est += enterDFUTime + rebootTime + time.Duration(float64(n)/(400*kib)*float64(time.Second))
			why += " Every range written over DFU is also read back and compared."
		}
		e.add(Step{ID: "verify", Kind: KindVerify, Mode: e.model.Boot().Mode, Estimate: est,
			LED: running(e.p, e.model.Boot().Mode), Why: why})
	}
	if e.st.Protection == state.ProtectionService {
		e.add(Step{ID: "end-service-mode", Kind: KindEndServiceMode, Mode: e.model.Boot().Mode, Estimate: serviceModeTime,
			LED: running(e.p, e.model.Boot().Mode),
			Why: "Service Mode ends here rather than after 20 restarts or 24 hours: the device is protected again (control request 77, as particle-cli does at the end of a flash)."})
	}
	e.pl.Windows = e.window
	if e.opt.Watchdog == 0 {
		e.pl.Windows = 0
	}
}

// ---- mode changes -------------------------------------------------------------------

// toDFU switches to DFU mode unless the device is there.
func (e *emitter) toDFU() error {
	if e.cur == state.ModeDFU {
		if e.window == 0 && e.opt.Watchdog > 0 {
			e.window, e.used = 1, 0
		}
		return nil
	}
	why := "Writing over USB needs the DFU bootloader. "
	switch {
	case !e.model.Runnable() && e.cur == state.ModeUnknown:
		why += "Device OS cannot start with what the device has, so it is probably in DFU mode already (blinking yellow); if not, use the buttons."
	case e.p.Gen == 2 && e.model.SystemVersion() != 0 && e.model.SystemVersion() < systemVersion(gen2ControlDFUSince):
		why += "Device OS older than 2.0.0 on this Gen2 device does not take the DFU request reliably (particle-cli refuses it): open its USB serial port at 14400 baud, or use the buttons."
	default:
		why += "Particle Flasher asks Device OS to restart into DFU mode (USB control request); the buttons work too."
	}
	e.enter(state.ModeDFU, why)
	return nil
}

// enter adds a switch into mode.
func (e *emitter) enter(mode state.Mode, why string) {
	goal := led.GoalDFU
	if mode == state.ModeSafe {
		goal = led.GoalSafeMode
	} else if mode == state.ModeListening {
		goal = led.GoalListening
	}
	s := Step{ID: "enter-" + mode.String(), Kind: KindEnterMode, Mode: mode, Estimate: enterDFUTime,
		LED: led.Expect(e.p, goal), Why: why}
	if mode == state.ModeDFU && e.opt.Watchdog > 0 {
		e.window++
		e.used = 0
		s.Window = e.window
	}
	e.add(s)
	e.cur = mode
}

// toRunning makes sure Device OS runs (for control requests).
func (e *emitter) toRunning() {
	if e.cur == state.ModeDFU {
		e.leaveDFU("The next part is installed by Device OS itself, so the device leaves DFU mode.", false)
	}
}

// leaveDFU restarts the device out of DFU mode; Device OS installs a staged module first.
func (e *emitter) leaveDFU(why string, final bool) {
	mode := e.model.BootWary().Mode
	if final {
		mode = e.model.Boot().Mode
	}
	est := rebootTime
	lead := ""
	if e.pendingOTA != nil {
		it := e.pendingOTA
		apply := e.dfuTime(0, it.slot.Start, int(it.inst.Size)) + restartTime
		est += apply
		lead = fmt.Sprintf("It first shows magenta for a few seconds while Device OS copies %s from the OTA region into place and restarts once more; do not unplug it then. ", describe(it.m))
		why += fmt.Sprintf(" On the way Device OS finds the OTA flag set and installs %s.", describe(it.m))
	}
	e.add(Step{ID: "reset", Kind: KindReset, Mode: mode, Estimate: est, LED: restart(e.p, mode, lead, e.model), Why: why})
	e.pendingOTA = nil
	e.cur = mode
}

// ---- writes -------------------------------------------------------------------------

func (e *emitter) writeDFU(it *item) error {
	data := it.m.Data
	if it.m.Compressed() {
		raw, err := it.m.Decompress()
		if err != nil {
			return fail(ErrInvalidModule, "Download the file again.", "%s cannot be decompressed for DFU: %v", describe(it.m), err)
		}
		data = raw
	}
	addr := it.inst.Start
	how := fmt.Sprintf("Written over DFU at 0x%08x (alt 0).", addr)
	if it.method == platform.MethodDFUDropHeader {
		data = data[module.PrefixSize:]
		how = fmt.Sprintf("The file starts with a %d-byte module header (flag DROP_MODULE_INFO) that must not land in flash, so it is dropped and the rest is written over DFU at 0x%08x (alt 0).", module.PrefixSize, addr)
	}
	if err := e.guard(it.slot, 0, addr, len(data)); err != nil {
		return err
	}
	inst := it.inst
	s := Step{ID: fmt.Sprintf("write:%s@%d", it.slot.Name, it.m.Version), Kind: KindWrite, Module: it.m, Slot: it.slot.Name,
		Method: it.method, Alt: 0, Address: addr, Data: data, Mode: state.ModeDFU,
		Estimate: e.dfuTime(0, addr, len(data)),
		LED:      dfuLED(e.p, "its "+it.slot.Name+" is written"),
		Why:      joinWhy(it.why, how, it.relaxWhy), Unmet: it.unmet, Expect: &inst}
	if err := e.addDFU(s); err != nil {
		return err
	}
	e.model.Write(it.inst)
	return nil
}

func (e *emitter) invalidate(w wipe) error {
	if err := e.guardRegion(w.Region, w.Alt, w.Address, int(w.Size)); err != nil {
		return err
	}
	data := make([]byte, w.Size)
	for i := range data {
		data[i] = 0xFF
	}
	s := Step{ID: fmt.Sprintf("invalidate:0x%08x", w.Address), Kind: KindInvalidate, Slot: w.slot,
		Method: platform.MethodDFU, Alt: w.Alt, Address: w.Address, Data: data, Mode: state.ModeDFU,
		Estimate: e.dfuTime(w.Alt, w.Address, len(data)),
		LED:      dfuLED(e.p, "the old "+w.what+" is wiped"),
		Why:      w.why}
	if err := e.addDFU(s); err != nil {
		return err
	}
	e.model.Invalidate(w.Address, w.Size)
	return nil
}

// stageOTA writes a module to the OTA region and sets the DCT flag, for modules whose
// own flash DFU cannot write (bootloaders). Device OS installs it at its next start, so
// the region must be the one of the Device OS that will be running then: the system
// version after the rest of this DFU stretch.
func (e *emitter) stageOTA(it *item, rest []*item) error {
	next := cloneOf(e.model)
	next.Write(it.inst)
	for _, r := range rest {
		if !r.method.UsesDFU() || r.method == platform.MethodOTARegion {
			break
		}
		next.Write(r.inst)
	}
	reg, ok := e.p.OTARegionFor(next.SystemVersion())
	if !ok {
		return fail(ErrNoMethod, "Use the control-request method in normal mode.", "the %s has no OTA region", e.p.DisplayName)
	}
	if err := e.guardRegion(reg, reg.Alt, reg.Address, len(it.m.Data)); err != nil {
		return err
	}
	dct, _ := e.p.AltByMemory(platform.MemDCT)
	inst := it.inst
	name := fmt.Sprintf("%s@%d", it.slot.Name, it.m.Version)
	why := fmt.Sprintf("The %s's own flash cannot be written over DFU (the bootloader keeps it read-only), so the file is staged in the OTA region at 0x%08x (alt %d), where Device OS %s looks for pending updates.",
		it.slot.Name, reg.Address, reg.Alt, cmp.Or(osName(next.SystemVersion()), "that starts next"))
	s := Step{ID: "ota-region:" + name, Kind: KindWrite, Module: it.m, Slot: it.slot.Name, Method: platform.MethodOTARegion,
		Alt: reg.Alt, Address: reg.Address, Data: it.m.Data, Mode: state.ModeDFU,
		Estimate: e.dfuTime(reg.Alt, reg.Address, len(it.m.Data)),
		LED:      dfuLED(e.p, describe(it.m)+" is staged"),
		Why:      joinWhy(it.why, why, it.relaxWhy), Expect: &inst}
	if err := e.addDFU(s); err != nil {
		return err
	}
	flag := Step{ID: "ota-flag:" + name, Kind: KindSetOTAFlag, Module: it.m, Slot: "dct", Method: platform.MethodDFU,
		Alt: dct.Alt, Address: e.p.OTAFlagOffset, Data: []byte{e.p.OTAFlagValue}, Mode: state.ModeDFU,
		Estimate: dctWriteTime, LED: dfuLED(e.p, "the update flag is set"),
		Why: fmt.Sprintf("Setting DCT byte %d (alt %d) to 0x%02X tells Device OS to install what the OTA region holds at its next start.",
			e.p.OTAFlagOffset, dct.Alt, e.p.OTAFlagValue),
		Expect: &inst}
	if err := e.addDFU(flag); err != nil {
		return err
	}
	e.model.Write(it.inst)
	e.pendingOTA = it
	return nil
}

// writeControl sends a module through Device OS (control requests, or YMODEM), which
// checks it, restarts and installs it.
func (e *emitter) writeControl(it *item, last bool) {
	inst := it.inst
	transfer, apply := e.controlTime(it)
	mode := state.ModeNormal
	how := "Device OS receives it over USB control requests, checks its dependencies and installs it while it restarts."
	if it.method == platform.MethodYModem {
		mode = state.ModeListening
		how = "Device OS receives it with YMODEM in listening mode, checks it and installs it while it restarts."
	}
	reason := fmt.Sprintf("The %s cannot be written over DFU. %s", it.slot.Name, how)
	if it.m.Function == platform.FuncAsset {
		reason = "Assets are written after the application, over USB control requests: Device OS stores each in its asset storage and restarts."
	}
	if it.slot.Has(platform.MethodOTARegion) {
		reason = "Device OS is running, so rather than staging it over DFU the plan hands it over directly: " + how
	}
	if it.slot.Storage == platform.StorageNCP {
		reason = "The network coprocessor's firmware is only reachable through Device OS, which passes it on to the ESP32; this takes several minutes."
	}
	id := fmt.Sprintf("%s@%d", it.slot.Name, it.m.Version)
	if w := e.opt.Watchdog; w > 0 && transfer+apply > w {
		e.warnings = append(e.warnings, fmt.Sprintf("%s can only be installed by Device OS and may take longer (about %s) than the %s watchdog window, which cannot be cut; if the watchdog interrupts it, Device OS discards the partial update and it has to be sent again.",
			words.UpperFirst(describe(it.m)), roundDur(transfer+apply), w))
	}
	e.add(Step{ID: "write:" + id, Kind: KindWrite, Module: it.m, Slot: it.slot.Name, Method: it.method,
		Data: it.m.Data, Mode: mode, Estimate: transfer, LED: controlLED(e.p, it),
		Why: joinWhy(it.why, reason), Expect: &inst})
	e.model.Write(it.inst)
	after := e.model.BootWary().Mode
	if last {
		after = e.model.Boot().Mode
	}
	lead := fmt.Sprintf("It shows magenta while it installs %s and then restarts; do not unplug it. ", describe(it.m))
	if it.slot.Storage == platform.StorageNCP {
		lead = "Updating the network coprocessor can take several minutes, with the LED magenta; do not unplug it. "
	}
	e.add(Step{ID: "wait:" + id, Kind: KindWaitFor, Module: it.m, Slot: it.slot.Name, Method: it.method, Mode: after,
		Estimate: apply, LED: restart(e.p, after, lead, e.model),
		Why: fmt.Sprintf("Wait for the device to install %s and come back.", describe(it.m)), Expect: &inst})
	e.cur = after
}

// ---- bookkeeping ----------------------------------------------------------------------

// add appends a step with a unique ID.
func (e *emitter) add(s Step) {
	n := e.ids[s.ID]
	e.ids[s.ID] = n + 1
	if n > 0 {
		s.ID = fmt.Sprintf("%s#%d", s.ID, n+1)
	}
	e.pl.Steps = append(e.pl.Steps, s)
}

// addDFU adds a DFU step, fitting it into the watchdog window: a step that does not fit
// what is left starts a new window, and a write longer than a whole window is cut at
// sector boundaries (each piece is erased and written on its own, so a piece never
// erases another's sectors).
func (e *emitter) addDFU(s Step) error {
	if e.opt.Watchdog == 0 {
		e.add(s)
		return nil
	}
	if s.Estimate <= e.budget-e.used {
		s.Window = e.window
		e.used += s.Estimate
		e.add(s)
		return nil
	}
	if s.Kind != KindWrite || s.Estimate <= e.budget {
		e.newWindow()
		s.Window = e.window
		e.used = s.Estimate
		e.add(s)
		return nil
	}
	return e.split(s)
}

func (e *emitter) newWindow() {
	e.window++
	e.used = 0
	e.add(Step{ID: "enter-dfu", Kind: KindEnterMode, Mode: state.ModeDFU, Estimate: enterDFUTime, Window: e.window,
		LED: led.Expect(e.p, led.GoalDFU),
		Why: fmt.Sprintf("Watchdog window %d: the external watchdog restarts the device every %s and nothing services it in DFU mode, so the work stops here. When the device comes back, it goes into DFU mode again (it may already be there if a part is half-written).",
			e.window, e.opt.Watchdog)})
}

// piece is one sector-aligned part of a write cut for the watchdog; fresh marks a
// piece that starts a new window.
type piece struct {
	start, end uint32
	cost       time.Duration
	fresh      bool
}

func (e *emitter) split(s Step) error {
	layout, err := e.p.AltLayout(s.Alt)
	if err != nil {
		return err
	}
	end := s.Address + uint32(len(s.Data))
	secs, err := layout.SectorsCovering(s.Address, uint32(len(s.Data)))
	if err != nil {
		return err
	}
	var pieces []piece
	used := e.used
	var cur *piece
	for _, sec := range secs {
		ps, pe := max(sec.Start, s.Address), min(sec.End(), end)
		cost := e.dfuTime(s.Alt, ps, int(pe-ps))
		if cost > e.budget {
			return fail(ErrWatchdog,
				fmt.Sprintf("Use a longer watchdog period, or disable the watchdog while flashing (a sector of %d bytes takes about %s).", sec.Size, cost.Round(10*time.Millisecond)),
				"the watchdog window of %s leaves %s for work in DFU mode, less than erasing and writing one %d-byte sector of %s takes",
				e.opt.Watchdog, e.budget.Round(10*time.Millisecond), sec.Size, s.Slot)
		}
		if cur == nil {
			cur = &piece{start: ps}
		}
		if used+cur.cost+cost > e.budget {
			if cur.cost > 0 {
				pieces = append(pieces, *cur)
			}
			used = 0
			cur = &piece{start: ps, fresh: true}
		}
		cur.end = pe
		cur.cost += cost
	}
	if cur != nil && cur.cost > 0 {
		pieces = append(pieces, *cur)
	}
	n := len(pieces)
	for k, pc := range pieces {
		if pc.fresh {
			e.newWindow()
		}
		part := s
		part.ID = fmt.Sprintf("%s:%d/%d", s.ID, k+1, n)
		part.Address = pc.start
		part.Data = s.Data[pc.start-s.Address : pc.end-s.Address]
		part.Estimate = pc.cost
		part.Part, part.Parts = k+1, n
		part.Window = e.window
		if k > 0 {
			part.Why = fmt.Sprintf("Part %d of %d of %s, cut to fit the watchdog window.", k+1, n, describe(s.Module))
		} else {
			part.Why = s.Why + fmt.Sprintf(" It is written in %d parts, each within one watchdog window.", n)
		}
		e.used += pc.cost
		e.add(part)
	}
	return nil
}

// guard refuses (as an internal error) a DFU write outside its slot or onto sectors the
// bootloader does not let a host erase and write: the property that keeps the device
// able to reach DFU mode whatever happens.
func (e *emitter) guard(slot platform.Slot, alt uint8, addr uint32, n int) error {
	end := uint64(addr) + uint64(n)
	if addr < slot.Start || end > uint64(slot.End()) {
		return fmt.Errorf("plan: internal error: write 0x%08x+%d outside %s (0x%08x-0x%08x)", addr, n, slot.Name, slot.Start, slot.End())
	}
	return e.permits(alt, addr, n, memlayout.Erasable|memlayout.Writable)
}

func (e *emitter) guardRegion(r platform.Region, alt uint8, addr uint32, n int) error {
	if uint64(addr) < uint64(r.Address) || uint64(addr)+uint64(n) > uint64(r.End()) {
		return fmt.Errorf("plan: internal error: write 0x%08x+%d outside region 0x%08x-0x%08x", addr, n, r.Address, r.End())
	}
	return e.permits(alt, addr, n, memlayout.Erasable|memlayout.Writable)
}

func (e *emitter) permits(alt uint8, addr uint32, n int, need memlayout.Perm) error {
	l, err := e.p.AltLayout(alt)
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	if !l.Permits(addr, uint32(n), need) {
		return fmt.Errorf("plan: internal error: 0x%08x+%d on alt %d is not erasable and writable", addr, n, alt)
	}
	return nil
}

// ---- estimates ----------------------------------------------------------------------

// dfuTime estimates a DFU write of n bytes at addr on alt: erasing every sector it
// covers, programming, and the USB round trips per block.
func (e *emitter) dfuTime(alt uint8, addr uint32, n int) time.Duration {
	if n <= 0 {
		return 0
	}
	a, ok := e.p.Alt(alt)
	if !ok {
		return 0
	}
	t := externalTiming
	switch a.Memory {
	case platform.MemDCT:
		return dctWriteTime
	case platform.MemInternal:
		if it, ok := internalTiming[e.p.MCU]; ok {
			t = it
		}
	}
	var erase time.Duration
	if l, err := e.p.AltLayout(alt); err == nil {
		if secs, err := l.SectorsCovering(addr, uint32(n)); err == nil {
			for _, s := range secs {
				erase += t.erase(s.Size)
			}
		}
	}
	program := time.Duration(float64(n) / t.program * float64(time.Second))
	ts := int(e.p.TransferSize)
	if ts == 0 {
		ts = 1024
	}
	blocks := (n + ts - 1) / ts
	return erase + program + time.Duration(blocks)*usbPerBlock
}

// controlTime estimates a control-request update: the transfer (about ten times slower
// per byte than DFU) and the install Device OS does while restarting.
func (e *emitter) controlTime(it *item) (transfer, apply time.Duration) {
	n := int(it.inst.Size)
	var write time.Duration
	if it.slot.Storage == platform.StorageInternal {
		write = e.dfuTime(0, it.slot.StartFor(uint32(n)), n)
	} else {
		write = time.Duration(float64(n)/externalTiming.program*float64(time.Second)) + perPage(4*kib, 45*time.Millisecond)(uint32(n))
	}
	transfer = controlSetup + controlSlowdown*write
	apply = write + rebootTime
	if it.slot.Storage == platform.StorageNCP {
		apply = ncpApplyTime + rebootTime
	}
	return transfer, apply
}

// ---- LED guidance ---------------------------------------------------------------------

func boardName(p *platform.Platform) string {
	if p.DisplayName != "" {
		return p.DisplayName
	}
	return p.Name
}

// dfuLED: the device stays in DFU mode (blinking yellow) while it is written; anything
// else means it left DFU mode, and led's DFU remedies say how to get back.
func dfuLED(p *platform.Platform, what string) led.Guidance {
	g := led.Expect(p, led.GoalDFU)
	g.Text = fmt.Sprintf("Your %s keeps blinking yellow (DFU mode) while %s.", boardName(p), what)
	return g
}

// controlLED: blinking magenta while Device OS receives an update.
func controlLED(p *platform.Platform, it *item) led.Guidance {
	base := led.Expect(p, led.GoalNormal)
	g := led.Guidance{
		Expect: led.Updating,
		Text: fmt.Sprintf("Your %s blinks magenta while it receives %s over USB, then restarts to install it.",
			boardName(p), describe(it.m)),
		IfNot: []led.Remedy{
			{Seen: led.Listening, Do: "It is in listening mode (blinking dark blue), where the transfer starts: wait."},
			{Seen: led.SafeMode, Do: "Safe mode (breathing magenta) is fine: Device OS takes updates in safe mode. Wait for the transfer to start."},
			{Seen: led.Connected, Do: "Breathing cyan: the transfer has not started yet, or has just finished. Wait."},
			{Seen: led.ApplyingUpdate, Do: "Solid magenta: it is installing the update. Wait, and do not unplug it."},
		},
	}
	for _, r := range base.IfNot {
		if r.Seen.Is(led.Listening) || r.Seen.Is(led.SafeMode) || r.Seen.Is(led.Connected) || r.Seen.Is(led.ApplyingUpdate) || r.Seen.Is(led.Updating) {
			continue
		}
		g.IfNot = append(g.IfNot, r)
	}
	return g
}

// running is the LED of a device running Device OS in mode (normal or safe).
func running(p *platform.Platform, mode state.Mode) led.Guidance {
	if mode == state.ModeSafe {
		return safeLED(p, "")
	}
	return led.Expect(p, led.GoalNormal)
}

// restart is the LED after a restart the plan causes: normal, or safe mode when the
// model says a dependency is still open or there is no application - which is then
// expected, and said so.
func restart(p *platform.Platform, mode state.Mode, lead string, m *state.Device) led.Guidance {
	switch mode {
	case state.ModeSafe:
		reason := "a part it needs comes later in the plan"
		if _, hasApp := m.RunningApp(); !hasApp {
			reason = "it has no application yet"
		}
		return safeLED(p, lead+"Safe mode is expected here because "+reason+". ")
	case state.ModeDFU:
		g := led.Expect(p, led.GoalDFU)
		g.Text = lead + fmt.Sprintf("Your %s comes back blinking yellow (DFU mode): Device OS cannot start yet.", boardName(p))
		return g
	}
	g := led.Expect(p, led.GoalNormal)
	g.Text = lead + g.Text
	return g
}

// safeLED expects breathing magenta without the button advice led gives for reaching
// safe mode on purpose.
func safeLED(p *platform.Platform, lead string) led.Guidance {
	base := led.Expect(p, led.GoalNormal)
	g := led.Guidance{
		Expect: led.SafeMode,
		Text: lead + fmt.Sprintf("Your %s should breathe magenta (safe mode: Device OS runs, the application does not); it blinks green, then cyan, while it connects.",
			boardName(p)),
		IfNot: []led.Remedy{
			{Seen: led.Connected, Do: "Breathing cyan: it started normally, which is fine too."},
		},
	}
	for _, r := range base.IfNot {
		if r.Seen.Is(led.SafeMode) {
			continue
		}
		g.IfNot = append(g.IfNot, r)
	}
	return g
}

func joinWhy(parts ...string) string {
	out := ""
	for _, p := range parts {
		if p == "" {
			continue
		}
		if out != "" {
			out += " "
		}
		out += p
	}
	return out
}
