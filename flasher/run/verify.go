package run

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/led"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// read reads the device's modules, waiting it out if it restarts in the middle.
func (j *job) read(ctx context.Context) (*Reading, error) {
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		l, err := j.current(ctx)
		if err != nil {
			if !isGone(err) {
				return nil, err
			}
			if l, err = j.waitMode(ctx, state.ModeUnknown, j.r.t.Reenumerate, "the device to be back on USB", j.lossGuidanceOrNone()); err != nil {
				var rp *replanError
				if !errors.As(err, &rp) {
					return nil, err
				}
			}
		}
		rctx, cancel := j.stepContext(ctx)
		rd, err := readState(rctx, l)
		cancel()
		if err == nil {
			j.reading, j.mode = rd, rd.Mode
			return rd, nil
		}
		last = err
		if ctx.Err() != nil {
			return nil, j.cancelled()
		}
		j.dropLink()
		if !isGone(err) && attempt > 0 {
			break
		}
	}
	return nil, fmt.Errorf("run: read the device: %w", last)
}

func (j *job) lossGuidanceOrNone() led.Guidance {
	if j.plan == nil || j.plan.Platform == nil {
		return led.Guidance{}
	}
	return j.lossGuidance()
}

// verify runs a KindVerify step: re-read the module table until it shows exactly the
// expected modules in the expected mode (the device may still be installing a staged
// module when it first answers), then, with VerifyReadback, read every written range back.
func (j *job) verify(ctx context.Context, s *plan.Step) error {
	deadline := time.Now().Add(j.r.t.Settle)
	var problems []string
	for {
		if _, err := j.waitMode(ctx, s.Mode, j.r.t.Reenumerate, "the device to start "+s.Mode.String(), s.LED); err != nil {
			var rp *replanError
			if !errors.As(err, &rp) {
				return err
			}
		}
		rd, err := j.read(ctx)
		if err != nil {
			return err
		}
		problems = j.compare(rd)
		if len(problems) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return remedy.With(&MismatchError{Problems: problems},
				"The device does not match the plan's prediction, and running the same target again would do the same thing. "+
					"Keep the device as it is and save the report (it lists every module), then report it; "+
					"the device's state is described above.")
		}
		j.dropLink()
		select {
		case <-ctx.Done():
			return j.cancelled()
		case <-time.After(j.r.o.Poll):
		}
	}
	if j.plan.Verify == plan.VerifyReadback {
		if err := j.readback(ctx, s); err != nil {
			return err
		}
	}
	j.emit(Event{Event: EvVerified, Mode: modeName(j.reading.Mode), Modules: j.reading.Modules(),
		Message: fmt.Sprintf("The device runs in %s mode with Device OS %s and every module the plan predicted.", j.reading.Mode, cmp.Or(j.reading.State.DeviceOSName(), j.plan.To))})
	return nil
}

// compare lists how the reading differs from the plan's prediction, naming the module.
func (j *job) compare(rd *Reading) []string {
	p := j.plan
	var out []string
	if p.Predicted.Protection == state.ProtectionProtected {
		// Protection hides the modules: that it is on is what can be checked.
		if rd.State.Protection != state.ProtectionProtected {
			return []string{fmt.Sprintf("Device Protection: predicted on, the device is %s", rd.State.Protection.Words())}
		}
		return nil
	}
	for _, e := range p.Expected() {
		name := slotName(p.Platform, e.Function, e.Index, e.Version)
		in, ok := rd.State.Main(e.Function, e.Index)
		switch {
		case !ok:
			if !rd.State.Sees(e.Function) {
				continue // the NCP over DFU, or under a Device OS that does not list it
			}
			out = append(out, fmt.Sprintf("%s: predicted version %d, the device has none", name, e.Version))
		case !in.Intact():
			out = append(out, fmt.Sprintf("%s: predicted version %d, the device's %d fails its %s check", name, e.Version, in.Version, strings.Join(in.Failed(), " and ")))
		case in.Version != e.Version:
			out = append(out, fmt.Sprintf("%s: predicted version %d, the device has %d", name, e.Version, in.Version))
		case in.CRC != 0 && e.CRC != 0 && in.CRC != e.CRC:
			out = append(out, fmt.Sprintf("%s: predicted build CRC %08x, the device's %d is another build (CRC %08x)", name, e.CRC, in.Version, in.CRC))
		}
	}
	if app, ok := p.Predicted.RunningApp(); ok && rd.State.AssetsKnown {
		for _, a := range app.Assets {
			if p.Predicted.HasAsset(a) && !rd.State.HasAsset(a) {
				out = append(out, fmt.Sprintf("asset %s: predicted on the device, it does not hold it", a.Name))
			}
		}
	}
	if rd.State.WaitsForSetup() && p.End.Cause != state.CauseSetupNotDone {
		out = append(out, "setup done: predicted marked done, the device's setup-done flag is not set")
	}
	want := p.End.Mode
	if want == state.ModeUnknown {
		want = state.ModeNormal
	}
	if rd.Mode != want && !(want == state.ModeNormal && rd.Mode == state.ModeListening) {
		msg := fmt.Sprintf("mode: predicted %s, the device runs in %s mode", p.End, rd.Mode.Title())
		if rd.Boot.Why != "" && rd.Boot.Mode == rd.Mode {
			msg += " (" + rd.Boot.Why + ")"
		}
		out = append(out, msg)
	}
	return out
}

// MismatchError is a device that, read back after a run, differs from the plan's
// prediction. It is not transient: running the same plan again would end the same way.
type MismatchError struct {
	Problems []string
}

func (e *MismatchError) Error() string {
	return "run: " + ErrVerify.Error() + ": " + strings.Join(e.Problems, "; ")
}

// Unwrap makes the error match ErrVerify.
func (e *MismatchError) Unwrap() error { return ErrVerify }

func slotName(p *platform.Platform, fn platform.Function, idx uint8, ver uint16) string {
	if p != nil {
		if s, ok := p.SlotFor(fn, idx, ver); ok {
			return s.Name
		}
	}
	return fmt.Sprintf("%s %d", fn, idx)
}

// span is a range to read back: the bytes expected at addr on alt.
type span struct {
	alt  uint8
	addr uint32
	data []byte
	what string
}

// readbackSpans lists what the plan put where, as it should read now: DFU writes at their
// address; modules installed through the OTA region, a control request or YMODEM at
// their own slot (where Device OS copied them); later writes over earlier ones. The DCT
// flag is left out: Device OS clears it once it has installed the staged module.
func readbackSpans(p *plan.Plan) []span {
	var all []span
	for _, s := range p.Steps {
		switch {
		case s.Kind == plan.KindInvalidate, s.Kind == plan.KindWrite && (s.Method == platform.MethodDFU || s.Method == platform.MethodDFUDropHeader):
			all = append(all, span{alt: s.Alt, addr: s.Address, data: s.Data, what: s.ID})
		case s.Kind == plan.KindWrite && s.Module != nil:
			m := s.Module
			slot, ok := p.Platform.SlotFor(m.Function, m.Index, m.Version)
			if !ok || slot.Storage != platform.StorageInternal || m.Compressed() {
				continue
			}
			all = append(all, span{alt: 0, addr: m.Start, data: m.Data, what: s.ID})
		}
	}
	// Later writes win: cut from every span what a later one covers.
	var out []span
	for i, a := range all {
		pieces := []span{a}
		for _, b := range all[i+1:] {
			if b.alt != a.alt {
				continue
			}
			var next []span
			for _, pc := range pieces {
				next = append(next, subtract(pc, b.addr, b.addr+uint32(len(b.data)))...)
			}
			pieces = next
		}
		out = append(out, pieces...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].alt != out[j].alt {
			return out[i].alt < out[j].alt
		}
		return out[i].addr < out[j].addr
	})
	return out
}

// subtract removes [lo, hi) from the span.
func subtract(s span, lo, hi uint32) []span {
	end := s.addr + uint32(len(s.data))
	if hi <= s.addr || lo >= end {
		return []span{s}
	}
	var out []span
	if lo > s.addr {
		out = append(out, span{alt: s.alt, addr: s.addr, data: s.data[:lo-s.addr], what: s.what})
	}
	if hi < end {
		out = append(out, span{alt: s.alt, addr: hi, data: s.data[hi-s.addr:], what: s.what})
	}
	return out
}

// readback enters DFU mode, reads every written range back and compares it, then lets
// the device start again: the check no Particle tool makes (prior-art.md §2).
func (j *job) readback(ctx context.Context, s *plan.Step) error {
	spans := readbackSpans(j.plan)
	if len(spans) == 0 {
		return nil
	}
	l, err := j.ensureDFU(ctx, j.plan.Steps[0].LED)
	if err != nil {
		return fmt.Errorf("readback: %w", err)
	}
	total := 0
	for _, sp := range spans {
		total += len(sp.data)
	}
	done := 0
	var bad []string
	for _, sp := range spans {
		rctx, cancel := j.stepContext(ctx)
		c, _, err := l.DFU(rctx, sp.alt)
		var got []byte
		if err == nil {
			base := done
			got, err = c.ReadProgress(rctx, sp.addr, uint32(len(sp.data)), func(p dfu.Progress) { j.progress("read", base+p.Done, total) })
		}
		cancel()
		if err != nil {
			return fmt.Errorf("readback of %s at 0x%08x: %w", sp.what, sp.addr, err)
		}
		if !bytes.Equal(got, sp.data) {
			off := 0
			for off < len(got) && got[off] == sp.data[off] {
				off++
			}
			bad = append(bad, fmt.Sprintf("%s: %d bytes at 0x%08x (alt %d) differ from byte %d (0x%08x) on", sp.what, len(sp.data), sp.addr, sp.alt, off, sp.addr+uint32(off)))
		}
		done += len(sp.data)
	}
	if err := j.leave(ctx, l); err != nil {
		return err
	}
	if _, err := j.waitMode(ctx, s.Mode, j.r.t.Reenumerate, "the device to start again after the readback", s.LED); err != nil {
		return err
	}
	if len(bad) > 0 {
		return remedy.With(fmt.Errorf("run: %w: read back, the flash differs from what was written: %s", ErrVerify, strings.Join(bad, "; ")),
			"Try again with read-back verification (the verify setting). If the same range differs again the flash may be worn or the device faulty.")
	}
	if _, err := j.read(ctx); err != nil {
		return err
	}
	return nil
}

// Title is a step in one line, for progress displays.
func Title(s plan.Step) string {
	name := s.Slot
	if s.Module != nil {
		name = fmt.Sprintf("%s %d", s.Module.SlotName(), s.Module.Version)
		if a, ok := s.Module.Asset(); ok {
			name = "asset " + a.Name
		}
	}
	part := ""
	if s.Parts > 0 {
		part = fmt.Sprintf(" (part %d/%d)", s.Part, s.Parts)
	}
	switch s.Kind {
	case plan.KindEnterMode:
		return "Enter " + modeTitle(s.Mode) + " mode"
	case plan.KindReset:
		return "Restart in " + modeTitle(s.Mode) + " mode"
	case plan.KindWaitFor:
		return "Wait for " + name + " to be installed"
	case plan.KindVerify:
		return "Verify"
	case plan.KindInvalidate:
		return fmt.Sprintf("Invalidate the old application at 0x%08x", s.Address)
	case plan.KindSetOTAFlag:
		return "Set the update flag"
	case plan.KindSetupDone:
		return "Mark setup done"
	case plan.KindEndServiceMode:
		return "End Service Mode"
	case plan.KindWrite:
		switch s.Method {
		case platform.MethodOTARegion:
			return "Stage " + name + " in the OTA region"
		case platform.MethodControl:
			return "Send " + name + " over USB control requests"
		case platform.MethodYModem:
			return "Send " + name + " with YMODEM"
		}
		return "Write " + name + part
	}
	return s.Kind.String()
}

func modeTitle(m state.Mode) string {
	if m == state.ModeDFU {
		return "DFU"
	}
	return m.String()
}

// describeState says, after a failure or a cancel, what the device is left in and what
// comes next, from what the runner last saw and which steps were done. Trying again is
// offered only after a fault a retry can get past (Transient).
func (j *job) describeState(cause error) string {
	var b strings.Builder
	switch {
	case j.link == nil && j.mode == state.ModeUnknown:
		b.WriteString("The device's state is not known (it is not on USB).")
	case j.link == nil:
		fmt.Fprintf(&b, "The device was last seen in %s mode and is not on USB now (resetting, unplugged or without power).", modeTitle(j.mode))
	case j.mode == state.ModeDFU:
		b.WriteString("The device is in DFU mode (blinking yellow).")
	case j.mode == state.ModeSafe:
		b.WriteString("The device runs Device OS in safe mode (breathing magenta).")
	default:
		fmt.Fprintf(&b, "The device runs Device OS (%s mode).", j.mode)
	}
	if j.plan == nil {
		return b.String()
	}
	doneSet := map[string]bool{}
	for _, id := range j.done {
		doneSet[id] = true
	}
	var wrote, left []string
	bootloader := false // a bootloader among the writes done
	for _, s := range j.plan.Steps {
		if s.Kind != plan.KindWrite && s.Kind != plan.KindInvalidate {
			continue
		}
		if doneSet[s.ID] {
			wrote = append(wrote, Title(s))
			bootloader = bootloader || s.Module != nil && s.Module.Function == platform.FuncBootloader
		} else {
			left = append(left, Title(s))
		}
	}
	if len(wrote) > 0 {
		fmt.Fprintf(&b, " Done: %s.", strings.Join(wrote, "; "))
	}
	if len(left) > 0 {
		fmt.Fprintf(&b, " Not done yet: %s.", strings.Join(left, "; "))
		if len(wrote) > 0 {
			b.WriteString(" Until the rest is written the device may start in safe mode or stay in DFU mode; ")
			if bootloader {
				b.WriteString("its new bootloader was written whole, so DFU mode stays reachable.")
			} else {
				b.WriteString("its bootloader was not touched, so DFU mode stays reachable.")
			}
		}
	}
	if Transient(cause) {
		b.WriteString(" Trying the same target again reads the device and finishes the job.")
	}
	return b.String()
}
