package run

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/led"
	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// enterStep runs a KindEnterMode step. With a watchdog a later window first waits for the
// watchdog's own reset, since a reset the runner causes does not restart the watchdog's
// count: only then does the window really have the whole period.
func (j *job) enterStep(ctx context.Context, s *plan.Step) error {
	if s.Window > 0 && s.Window > j.window {
		if j.window > 0 {
			if err := j.awaitWatchdog(ctx, s); err != nil {
				return err
			}
		}
		j.window = s.Window
	}
	var err error
	switch s.Mode {
	case state.ModeDFU:
		_, err = j.ensureDFU(ctx, s.LED)
	case state.ModeSafe:
		err = j.enterSafe(ctx, s.LED)
	case state.ModeListening:
		err = j.enterListening(ctx, s.LED)
	default:
		err = fmt.Errorf("run: %w: entering %s mode", ErrUnsupported, s.Mode)
	}
	if err == nil && s.Window > 0 {
		j.windowInst = j.inst
	}
	return err
}

// awaitWatchdog waits for the device to restart by itself (the external watchdog) if it has
// not since the current window began.
func (j *job) awaitWatchdog(ctx context.Context, s *plan.Step) error {
	if j.link == nil || j.inst != j.windowInst {
		return nil // it already restarted
	}
	period := j.r.t.Reenumerate
	if j.target != nil && j.target.Options.Watchdog > 0 {
		period = j.target.Options.Watchdog
	}
	j.resetFrom = j.inst
	g := led.Expect(j.plan.Platform, led.GoalDFU)
	g.Text = fmt.Sprintf("The watchdog restarts the device at the end of its period; the next piece of work (window %d of %d) starts once it is back.", s.Window, j.plan.Windows)
	_, err := j.waitMode(ctx, state.ModeUnknown, 2*period+j.r.t.Reenumerate, fmt.Sprintf("the watchdog to restart the device (window %d of %d)", s.Window, j.plan.Windows), g)
	var rp *replanError
	if errors.As(err, &rp) {
		return nil
	}
	return err
}

// ensureDFU makes sure the device is in DFU mode, switching it if needed.
func (j *job) ensureDFU(ctx context.Context, g led.Guidance) (device.Link, error) {
	l, err := j.current(ctx)
	if err != nil && !isGone(err) {
		return nil, err
	}
	if err != nil {
		// Between two resets (a watchdog, a restart it was asked for): wait for it.
		if l, err = j.waitMode(ctx, state.ModeUnknown, j.r.t.Reenumerate, "the device to be back on USB", g); err != nil {
			var rp *replanError
			if !errors.As(err, &rp) {
				return nil, err
			}
		}
	}
	if l.Mode() == state.ModeDFU {
		return l, nil
	}
	if g.Expect.IsZero() {
		g = led.Expect(j.plan.Platform, led.GoalDFU)
	}
	return j.enterDFU(ctx, l, g)
}

// gen2ControlDFUSince: particle-cli does not trust the DFU control request on Gen2 devices
// running Device OS older than 2.0.0 (validateDFUSupport); the 14400-baud trigger works on
// every version (reference §2d).
var gen2ControlDFUSince, _ = module.SystemModuleVersion("2.0.0")

// enterDFU switches a device running Device OS into DFU mode: the DFU control request (50)
// or the 14400-baud serial trigger, whichever the device's Device OS takes best first, and
// when neither works, a person with the buttons, guided by the LED.
func (j *job) enterDFU(ctx context.Context, l device.Link, g led.Guidance) (device.Link, error) {
	type way struct {
		name string
		do   func() error
	}
	ctrlWay := way{"USB control request 50", func() error {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return l.Ctrl().EnterDFU(rctx)
	}}
	serialWay := way{"14400-baud serial trigger", func() error {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return l.TriggerDFU(rctx)
	}}
	ways := []way{ctrlWay, serialWay}
	if p := l.Platform(); p != nil && p.Gen == 2 {
		if v := j.systemVersion(); v != 0 && v < gen2ControlDFUSince {
			ways = []way{serialWay, ctrlWay}
		}
	}
	var errs []error
	for _, w := range ways {
		before := l.Instance()
		if err := w.do(); err != nil {
			j.r.log.Debug("run: DFU switch failed", "device", j.id, "way", w.name, "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", w.name, err))
			if errors.Is(err, device.ErrNoSerial) || !isGone(err) {
				continue
			}
		}
		j.resetFrom = before
		j.dropLink()
		nl, err := j.waitMode(ctx, state.ModeDFU, j.r.t.EnterMode, "the device to restart in DFU mode ("+w.name+")", g)
		if err == nil {
			return nl, nil
		}
		if errors.Is(err, ErrCancelled) {
			return nil, err
		}
		errs = append(errs, fmt.Errorf("%s: %w", w.name, err))
		if nl2, ferr := j.current(ctx); ferr == nil {
			l = nl2
		} else {
			break
		}
	}
	return j.buttons(ctx, led.GoalDFU, state.ModeDFU, errors.Join(errs...))
}

// buttons asks a person to switch the device's mode with its buttons, showing the LED
// recipe, and waits for it.
func (j *job) buttons(ctx context.Context, goal led.Goal, want state.Mode, why error) (device.Link, error) {
	p := j.plan.Platform
	g := led.Expect(p, goal)
	if j.r.o.NoButtons {
		return nil, remedy.With(fmt.Errorf("run: the device could not be switched to %s mode by software: %w", want, why), g.Text)
	}
	j.dropLink()
	j.resetFrom = ""
	j.emit(Event{Event: EvWaiting, Waiting: fmt.Sprintf("a person to put the device in %s mode with its buttons", want), Buttons: true,
		TimeoutSeconds: j.r.t.Buttons.Seconds(), LED: guidance(g),
		Message: fmt.Sprintf("Software could not switch the device (%v). %s", why, led.Buttons(p, goal))})
	l, err := j.waitMode(ctx, want, j.r.t.Buttons, fmt.Sprintf("the device in %s mode", want), g)
	if err != nil {
		var rp *replanError
		if errors.As(err, &rp) {
			return nil, remedy.With(fmt.Errorf("run: the device could not be put in %s mode: %w", want, err), g.Text)
		}
		return nil, remedy.With(fmt.Errorf("run: the device could not be put in %s mode (software: %v; buttons: %w)", want, why, err), g.Text)
	}
	return l, nil
}

// systemVersion is the highest system module version the last reading found (0 if none).
func (j *job) systemVersion() uint16 {
	if j.reading == nil {
		return 0
	}
	return j.reading.State.SystemVersion()
}

// enterSafe restarts the device into safe mode: control request 60 from Device OS, the
// DfuSe 0xFA command from DFU mode (Gen3 and later).
func (j *job) enterSafe(ctx context.Context, g led.Guidance) error {
	l, err := j.current(ctx)
	if err != nil {
		return err
	}
	before := l.Instance()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if l.Mode() == state.ModeDFU {
		c, _, derr := l.DFU(rctx, 0)
		if derr == nil {
			derr = c.EnterSafeMode(rctx)
		}
		err = derr
	} else {
		err = l.Ctrl().EnterSafeMode(rctx)
	}
	if err != nil && !isGone(err) {
		_, berr := j.buttons(ctx, led.GoalSafeMode, state.ModeSafe, err)
		return berr
	}
	j.resetFrom = before
	j.dropLink()
	_, err = j.waitMode(ctx, state.ModeSafe, j.r.t.EnterMode, "the device to restart in safe mode", g)
	return err
}

// enterListening puts Device OS in listening mode (control request 70; no restart).
func (j *job) enterListening(ctx context.Context, g led.Guidance) error {
	l, err := j.current(ctx)
	if err != nil {
		return err
	}
	if l.Mode() == state.ModeListening {
		return nil
	}
	if l.Mode() == state.ModeDFU {
		return &replanError{cause: fmt.Errorf("run: %w: the device is in DFU mode, listening mode needs Device OS", ErrWrongMode)}
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := l.Ctrl().StartListening(rctx); err != nil {
		_, berr := j.buttons(ctx, led.GoalListening, state.ModeListening, err)
		return berr
	}
	j.dropLink()
	_, err = j.waitMode(ctx, state.ModeListening, j.r.t.EnterMode, "the device to enter listening mode", g)
	return err
}

// ensureDeviceOS makes sure Device OS runs, leaving DFU mode if needed.
func (j *job) ensureDeviceOS(ctx context.Context, g led.Guidance) (device.Link, error) {
	l, err := j.current(ctx)
	if err != nil {
		if !isGone(err) {
			return nil, err
		}
		l, err = j.waitMode(ctx, state.ModeNormal, j.r.t.Reenumerate, "the device to be back on USB", g)
		if err != nil {
			return nil, err
		}
	}
	if l.Mode().RunsDeviceOS() {
		return l, nil
	}
	if err := j.leave(ctx, l); err != nil {
		return nil, err
	}
	return j.waitMode(ctx, state.ModeNormal, j.r.t.Reenumerate, "Device OS to start", g)
}

// leave ends DFU mode (DfuSe zero-length DNLOAD) and marks the restart as the runner's.
func (j *job) leave(ctx context.Context, l device.Link) error {
	before := l.Instance()
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	c, _, err := l.DFU(lctx, 0)
	if err == nil {
		err = c.Leave(lctx)
	}
	if err != nil && !isGone(err) {
		return fmt.Errorf("leave DFU mode: %w", err)
	}
	j.resetFrom = before
	j.dropLink()
	return nil
}

// leaveDFU runs a KindReset step: leave DFU mode and wait for the device to come back in
// the mode the plan expects (Device OS installs a staged module on the way).
func (j *job) leaveDFU(ctx context.Context, s *plan.Step) error {
	l, err := j.current(ctx)
	if err != nil {
		if !isGone(err) {
			return err
		}
		if l, err = j.waitMode(ctx, state.ModeUnknown, j.r.t.Reenumerate, "the device to be back on USB", s.LED); err != nil {
			return err
		}
	}
	if l.Mode() == state.ModeDFU {
		if err := j.leave(ctx, l); err != nil {
			return err
		}
	}
	// It left DFU mode by itself otherwise (a watchdog): it has restarted already.
	timeout := j.r.t.Reenumerate + j.r.t.allow(s.Estimate)
	_, err = j.waitMode(ctx, s.Mode, timeout, fmt.Sprintf("the device to restart in %s mode", s.Mode), s.LED)
	return err
}

// ---- writes --------------------------------------------------------------------------

// stepContext is the context a write runs under: not the caller's, so that a cancel never
// falls between the erase and the write of a slot (the loop stops after the step), but
// bounded by the step timeout.
func (j *job) stepContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), j.r.t.Step)
}

// dfuClient returns a client on the step's alt, in DFU mode, with the layout the device
// reports (the platform's when it reports none).
func (j *job) dfuClient(ctx context.Context, s *plan.Step) (*dfu.Client, *memlayout.Layout, error) {
	l, err := j.ensureDFU(ctx, s.LED)
	if err != nil {
		return nil, nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, layout, err := l.DFU(sctx, s.Alt)
	if err != nil {
		return nil, nil, fmt.Errorf("open DFU alt %d: %w", s.Alt, err)
	}
	if layout == nil {
		if layout, err = l.Platform().AltLayout(s.Alt); err != nil {
			return nil, nil, err
		}
	}
	return c, layout, nil
}

func (j *job) writeDFU(ctx context.Context, s *plan.Step) error {
	c, layout, err := j.dfuClient(ctx, s)
	if err != nil {
		return err
	}
	wctx, cancel := j.stepContext(ctx)
	defer cancel()
	if err := c.Write(wctx, layout, s.Address, s.Data, j.dfuProgress); err != nil {
		return err
	}
	j.progress("write", len(s.Data), len(s.Data))
	return nil
}

// setFlag writes the DCT's OTA flag byte. The DCT is rewritten in place by the bootloader
// (dct_write_app_data), so the sector is never erased, even where the memory map calls
// it erasable (Gen2 "016Kg"): erasing it would wipe the device's keys and settings. A flag
// already set is left as it is.
func (j *job) setFlag(ctx context.Context, s *plan.Step) error {
	c, layout, err := j.dfuClient(ctx, s)
	if err != nil {
		return err
	}
	wctx, cancel := j.stepContext(ctx)
	defer cancel()
	cur, err := c.Read(wctx, s.Address, uint32(len(s.Data)))
	if err != nil {
		return fmt.Errorf("read the DCT at %d: %w", s.Address, err)
	}
	if string(cur) == string(s.Data) {
		return nil
	}
	return c.Write(wctx, withoutErase(layout), s.Address, s.Data, j.dfuProgress)
}

// writeControl sends a module through Device OS with control requests: listening mode
// first (so the cloud does not keep it busy, as particle-cli does), then the update; the
// device validates it, replies and restarts to install it (the next step waits for that).
func (j *job) writeControl(ctx context.Context, s *plan.Step) error {
	l, err := j.ensureDeviceOS(ctx, s.LED)
	if err != nil {
		return err
	}
	c := l.Ctrl()
	if l.Mode() != state.ModeListening {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := c.StartListening(rctx); err != nil {
			j.r.log.Debug("run: listening mode not entered before the update", "device", j.id, "err", err)
		} else {
			j.awaitListening(rctx, c)
		}
		cancel()
	}
	before := l.Instance()
	uctx, cancel := context.WithTimeout(ctx, j.r.t.Step)
	defer cancel()
	err = c.UpdateFirmware(uctx, s.Data, func(done, total int) { j.progress("write", done, total) })
	if err != nil {
		return fmt.Errorf("control-request update: %w", err)
	}
	j.resetFrom = before
	j.dropLink()
	return nil
}

// awaitListening waits, after START_LISTENING, for the device to say it is in listening
// mode (GET_DEVICE_MODE, polled from a few milliseconds up to Options.Poll) for at most
// Options.ListenSettle. A device that cannot say (an old Device OS, a failing request) is
// given the whole settle time, which is what particle-cli always waits.
func (j *job) awaitListening(ctx context.Context, c *ctrl.Client) {
	limit := j.r.o.ListenSettle
	if limit <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	interval := 2 * time.Millisecond
	for {
		m, err := c.DeviceMode(ctx)
		if err == nil && m == ctrl.ModeListening {
			return
		}
		if err != nil && ctx.Err() == nil {
			j.r.log.Debug("run: the device does not tell its mode; waiting the settle time", "device", j.id, "err", err)
			<-ctx.Done()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		interval = min(2*interval, j.r.o.Poll)
	}
}

// writeYModem sends a module with YMODEM from listening mode (Device OS <= 5.x).
func (j *job) writeYModem(ctx context.Context, s *plan.Step) error {
	if err := j.enterListening(ctx, s.LED); err != nil {
		return err
	}
	l, err := j.current(ctx)
	if err != nil {
		return err
	}
	con, done, err := l.Console(ctx)
	if err != nil {
		return fmt.Errorf("open the listening-mode console: %w", err)
	}
	defer done()
	before := l.Instance()
	uctx, cancel := context.WithTimeout(ctx, j.r.t.Step)
	defer cancel()
	if err := con.SendFirmware(uctx, s.Slot+".bin", s.Data, func(d, t int) { j.progress("write", d, t) }); err != nil {
		return fmt.Errorf("YMODEM: %w", err)
	}
	j.resetFrom = before
	j.dropLink()
	return nil
}

// withoutErase is the layout with no sector erasable, for writes the bootloader performs
// as a read-modify-write.
func withoutErase(l *memlayout.Layout) *memlayout.Layout {
	out := &memlayout.Layout{Name: l.Name, Segments: append([]memlayout.Segment(nil), l.Segments...)}
	for i := range out.Segments {
		out.Segments[i].Perm &^= memlayout.Erasable
	}
	return out
}

// stopListening takes a device out of listening mode (control request 71) when there was
// nothing else to do, so that it ends running its application as a finished run should.
// (A safe mode someone asked for with the buttons cannot be told from normal mode over
// USB, so it is left alone.)
func (j *job) stopListening(ctx context.Context) error {
	l, err := j.current(ctx)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = l.Ctrl().StopListening(rctx)
	cancel()
	if err != nil {
		return fmt.Errorf("run: leave listening mode: %w", err)
	}
	j.dropLink()
	deadline := time.Now().Add(j.r.t.EnterMode)
	for {
		if l, err := j.find(ctx); err == nil {
			if l.Mode() == state.ModeNormal {
				j.setLink(l)
				j.reading.Mode = state.ModeNormal
				return nil
			}
			_ = l.Close()
		}
		if time.Now().After(deadline) {
			return remedy.With(fmt.Errorf("run: %w: the device stayed in listening mode", ErrWrongMode),
				"Press RESET, or hold MODE for 3 s and release it, to leave listening mode (blinking dark blue).")
		}
		select {
		case <-ctx.Done():
			return j.cancelled()
		case <-time.After(j.r.o.Poll):
		}
	}
}

// setupDone runs a KindSetupDone step: mark setup done (control request 73), let a device
// that waits for it leave listening mode (71), and read the flag back as evidence.
func (j *job) setupDone(ctx context.Context, s *plan.Step) error {
	l, err := j.ensureDeviceOS(ctx, s.LED)
	if err != nil {
		return err
	}
	c := l.Ctrl()
	if c == nil {
		return remedy.With(fmt.Errorf("run: %w: the device is reachable only through its serial console, which cannot mark setup done", ErrUnsupported),
			"Connect the device's USB data lines (not only a serial adapter) and try again.")
	}
	sctx, cancel := context.WithTimeout(ctx, j.r.t.Step)
	defer cancel()
	if err := c.SetSetupDone(sctx, true); err != nil {
		return fmt.Errorf("mark setup done: %w", err)
	}
	if l.Mode() == state.ModeListening {
		if err := c.StopListening(sctx); err != nil && !isGone(err) {
			return fmt.Errorf("leave listening mode: %w", err)
		}
	}
	done, err := c.SetupDone(sctx)
	if err != nil && !isGone(err) {
		return fmt.Errorf("read the setup-done flag back: %w", err)
	}
	if err == nil && !done {
		return fmt.Errorf("run: %w: the device still says its setup is not done", ErrVerify)
	}
	j.dropLink() // its mode changes without a new enumeration: read it afresh
	return nil
}

// endServiceMode runs a KindEndServiceMode step: Device Protection back on (request 77,
// RESET), checked by reading the state back (76).
func (j *job) endServiceMode(ctx context.Context, s *plan.Step) error {
	l, err := j.ensureDeviceOS(ctx, s.LED)
	if err != nil {
		return err
	}
	c := l.Ctrl()
	if c == nil {
		return remedy.With(fmt.Errorf("run: %w: the device is reachable only through its serial console", ErrUnsupported),
			"Service Mode ends by itself after 20 restarts or 24 hours.")
	}
	sctx, cancel := context.WithTimeout(ctx, j.r.t.Step)
	defer cancel()
	if err := c.EndServiceMode(sctx); err != nil {
		return remedy.With(fmt.Errorf("end Service Mode: %w", err), "Service Mode ends by itself after 20 restarts or 24 hours; re-enabling Device Protection with Particle's command-line tool ends it at once.")
	}
	ps, err := c.ProtectedState(sctx)
	if err == nil && !ps.Protected {
		return fmt.Errorf("run: %w: the device still says Device Protection is lifted", ErrVerify)
	}
	return nil
}
