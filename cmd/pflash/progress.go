package main

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/vbauerster/cupwriter"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	frun "github.com/particle-flasher/particle-flasher/flasher/run"
)

// progressView shows runs of the runner (flasher/run) to a person, for one device or
// several at once (keyed by Event.DeviceID). On a terminal it draws one bar per device
// ("<short id> [step i/n title] bar pct ETA" and the LED to expect) and, once there are
// several devices or totals, an overall bar; step lines, LED guidance and failures are
// printed above the bars. Anywhere else it prints plain lines, one per thing that
// happened, with progress every quarter of a step: the form logs and CI keep. In --json
// mode it is not used: the callers emit the events themselves.
//
// All methods are safe for concurrent use: a factory bench feeds it from one runner per
// device.
type progressView struct {
	g   *globals
	tty bool

	mu   sync.Mutex
	devs map[string]*progressDevice
	// order is the devices in the order they appeared (for the overall fraction).
	order []string
	// prefix: lines name their device, from the moment a second device shows up (a run of
	// one device keeps the lines `pflash flash` always printed).
	prefix bool
	totals string

	// Terminal only, created with the first bar: before that, lines go straight out so a
	// confirmation prompt follows the plan it asks about.
	p        *mpb.Progress
	overall  *mpb.Bar
	refresh  chan any
	stopTick chan struct{}
	tickDone chan struct{}
	closed   bool
	// disp guards what the decorators read (they run on mpb's goroutines, which must
	// never wait for mu: mu is held while calling into mpb).
	disp sync.Mutex
}

// progressDevice is one device's state in the view.
type progressDevice struct {
	id, short string
	// lastPct is the step's last reported percentage (plain output reports quarters).
	lastPct int
	bar     *mpb.Bar
	done    bool

	// Guarded by progressView.disp.
	step, steps int
	title       string
	led         string
	fraction    float64
	eta         time.Duration
	result      string
}

// barScale is a bar's total: fractions are shown to a tenth of a percent.
const barScale = 1000

func newProgressView(g *globals) *progressView {
	return &progressView{g: g, tty: isTerminal(g.stdout), devs: map[string]*progressDevice{}}
}

// shortID is the tail of a device ID: the head is the same for every Particle device
// ("e00fce68..."), the tail tells the units on a bench apart.
func shortID(id string) string {
	if len(id) > 8 {
		return id[len(id)-8:]
	}
	return id
}

// Line prints a line for a person: above the bars on a terminal.
func (v *progressView) Line(format string, a ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.line(fmt.Sprintf(format, a...))
}

// line prints s (one or more lines, without the final newline); v.mu is held.
func (v *progressView) line(s string) {
	if v.closed {
		return
	}
	s += "\n"
	if v.p != nil {
		// mpb prints it above the bars at its next refresh.
		if _, err := v.p.Write([]byte(s)); err == nil {
			return
		}
	}
	if _, err := io.WriteString(v.g.stdout, s); err != nil {
		slog.Debug("progress: output", "err", err)
	}
}

// devLine prints a line about a device, naming it when several are shown.
func (v *progressView) devLine(d *progressDevice, format string, a ...any) {
	s := fmt.Sprintf(format, a...)
	if v.prefix && d.short != "" {
		s = d.short + " " + s
	}
	v.line(s)
}

// Totals sets the overall line (a factory's counts: "12 done, 1 failed, 3 running").
func (v *progressView) Totals(text string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if text == v.totals {
		return
	}
	v.disp.Lock()
	v.totals = text
	v.disp.Unlock()
	if !v.tty {
		v.line(text)
		return
	}
	v.ensureOverall()
}

// Event shows one event of a run.
func (v *progressView) Event(e frun.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return
	}
	d := v.device(e.DeviceID)
	switch e.Event {
	case frun.EvPlan:
		v.setDisp(d, func() { d.steps, d.fraction, d.result = e.Steps, 0, "" })
		if v.tty {
			v.ensureBar(d)
		}
	case frun.EvResume:
		v.devLine(d, "%s", e.Message)
	case frun.EvStep:
		d.lastPct = -1
		v.setDisp(d, func() { d.step, d.steps, d.title = e.StepIndex, e.Steps, e.Title })
		if v.tty {
			v.ensureBar(d)
		}
		v.devLine(d, "[%d/%d] %s", e.StepIndex, e.Steps, e.Title)
	case frun.EvLED:
		if e.LED != nil {
			v.setDisp(d, func() { d.led = e.LED.Expect })
			v.devLine(d, "      LED: %s. %s", e.LED.Expect, e.LED.Text)
		}
	case frun.EvWaiting:
		v.devLine(d, "      Waiting for %s (up to %s)", e.Waiting, (time.Duration(e.TimeoutSeconds * float64(time.Second))).Round(time.Second))
		if e.Buttons {
			v.devLine(d, "      %s", e.Message)
			if e.LED != nil {
				v.setDisp(d, func() { d.led = e.LED.Expect })
				v.devLine(d, "      LED: %s. %s", e.LED.Expect, e.LED.Text)
			}
		}
	case frun.EvProgress:
		v.progress(d, e)
	case frun.EvStepDone:
		v.setFraction(d, e)
	case frun.EvRetry:
		v.devLine(d, "      %s (%s)", e.Message, e.Error)
	case frun.EvVerified:
		v.devLine(d, "      %s", e.Message)
	case frun.EvFailed:
		v.devLine(d, "Failed: %s", e.Error)
		if e.State != "" {
			v.devLine(d, "State: %s", e.State)
		}
		if e.Remedy != "" {
			v.devLine(d, "What to do: %s", e.Remedy)
		}
	case frun.EvDone:
		v.setDisp(d, func() { d.result = e.Result })
		if e.Result == frun.ResultOK {
			v.setDisp(d, func() { d.fraction, d.eta = 1, 0 })
			v.devLine(d, "Done: the device is at the target, verified.")
		}
		v.finish(d, e.Result == frun.ResultOK)
	}
	v.updateOverall()
}

// device returns the view's state for a device, adding it on first sight.
func (v *progressView) device(id string) *progressDevice {
	if d, ok := v.devs[id]; ok {
		return d
	}
	d := &progressDevice{id: id, short: shortID(id), lastPct: -1}
	v.devs[id] = d
	if id == "" {
		// Not a device yet (a wait before any device is found): it does not count as one.
		return d
	}
	v.order = append(v.order, id)
	if len(v.order) > 1 {
		v.prefix = true
		if v.tty {
			v.ensureOverall()
		}
	}
	return d
}

func (v *progressView) setDisp(_ *progressDevice, f func()) {
	v.disp.Lock()
	f()
	v.disp.Unlock()
}

func (v *progressView) setFraction(d *progressDevice, e frun.Event) {
	v.setDisp(d, func() {
		if e.Fraction > d.fraction {
			d.fraction = e.Fraction
		}
		d.eta = time.Duration(e.ETASeconds * float64(time.Second))
	})
	if d.bar != nil {
		d.bar.SetCurrent(min(int64(e.Fraction*barScale), barScale-1))
	}
}

// progress moves the bar on a terminal, and prints every quarter of a step otherwise.
func (v *progressView) progress(d *progressDevice, e frun.Event) {
	if v.tty {
		v.setFraction(d, e)
		return
	}
	pct := int(e.StepFraction * 100)
	q := pct / 25
	if q <= d.lastPct/25 && d.lastPct >= 0 {
		return
	}
	d.lastPct = pct
	what := map[string]string{"erase": "erased", "write": "written", "read": "read"}[e.Phase]
	if what == "" {
		what = "done"
	}
	v.devLine(d, "      %3d%% (%d of %d bytes %s), %d%% overall", pct, e.Bytes, e.Total, what, int(e.Fraction*100))
}

// ---- terminal ------------------------------------------------------------------------

// termWriter is mpb's terminal writer with a fallback size: a terminal that reports
// 0×0 (some CI ptys, a serial console) would otherwise make mpb draw nothing.
type termWriter struct{ *cupwriter.Writer }

func (w termWriter) GetTermSize() (int, int, error) {
	cols, rows, err := w.Writer.GetTermSize()
	if err != nil || cols <= 0 || rows <= 0 {
		return 100, 24, nil
	}
	return cols, rows, nil
}

// start creates the mpb container; v.mu is held.
func (v *progressView) start() {
	if v.p != nil {
		return
	}
	v.refresh = make(chan any)
	v.stopTick = make(chan struct{})
	v.tickDone = make(chan struct{})
	// Refreshes are driven here rather than by mpb's own ticker so that Close can ask for
	// a last one after the last line: mpb otherwise may shut down with lines unprinted.
	v.p = mpb.New(mpb.WithConsoleWriter(termWriter{cupwriter.New(v.g.stdout, false)}),
		mpb.WithManualRefresh(v.refresh), mpb.WithWidth(100))
	go func() {
		defer close(v.tickDone)
		t := time.NewTicker(150 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-v.stopTick:
				return
			case now := <-t.C:
				select {
				case v.refresh <- now:
				case <-v.stopTick:
					return
				}
			}
		}
	}()
}

// ensureBar gives a device a bar (a new one when its last run has ended); v.mu is held.
func (v *progressView) ensureBar(d *progressDevice) {
	if d.bar != nil && !d.done {
		return
	}
	v.start()
	d.done = false
	name := decor.Any(func(decor.Statistics) string {
		v.disp.Lock()
		defer v.disp.Unlock()
		step := "starting"
		if d.steps > 0 {
			title := d.title
			if len(title) > 34 {
				title = title[:33] + "…"
			}
			step = fmt.Sprintf("step %d/%d %s", d.step, d.steps, title)
		}
		return fmt.Sprintf("%s [%s]", d.short, step)
	}, decor.WC{W: 50, C: decor.DindentRight})
	tail := decor.Any(func(s decor.Statistics) string {
		v.disp.Lock()
		defer v.disp.Unlock()
		pct := fmt.Sprintf("%3d%%", int(d.fraction*100))
		var eta string
		switch {
		case d.result == frun.ResultOK:
			eta = "done"
		case d.result == frun.ResultFailed:
			eta = "FAILED"
		case d.eta > 0:
			eta = "ETA " + d.eta.Round(time.Second).String()
		}
		led := ""
		if d.led != "" && d.result == "" {
			led = "  LED: " + d.led
		}
		return fmt.Sprintf("%s %-10s%s", pct, eta, led)
	}, decor.WC{W: 44, C: decor.DindentRight})
	d.bar = v.p.AddBar(barScale, mpb.PrependDecorators(name), mpb.AppendDecorators(tail))
	v.ensureOverall()
}

// ensureOverall adds the overall bar when there is more than one device or a total to
// show; v.mu is held.
func (v *progressView) ensureOverall() {
	if v.overall != nil || (len(v.order) < 2 && v.totals == "") {
		return
	}
	v.start()
	name := decor.Any(func(decor.Statistics) string {
		v.disp.Lock()
		defer v.disp.Unlock()
		if v.totals != "" {
			return v.totals
		}
		return "overall"
	}, decor.WC{W: 50, C: decor.DindentRight})
	// The overall bar stays last however many devices join.
	v.overall = v.p.AddBar(barScale, mpb.BarPriority(1<<30), mpb.PrependDecorators(name),
		mpb.AppendDecorators(decor.Any(func(s decor.Statistics) string {
			return fmt.Sprintf("%3d%%", s.Current*100/barScale)
		}, decor.WC{W: 44, C: decor.DindentRight})))
	v.updateOverall()
}

// updateOverall sets the overall bar to the devices' mean fraction; v.mu is held.
func (v *progressView) updateOverall() {
	if v.overall == nil || len(v.order) == 0 {
		return
	}
	v.disp.Lock()
	var sum float64
	for _, id := range v.order {
		sum += v.devs[id].fraction
	}
	v.disp.Unlock()
	// Never complete from here: more devices may come; Close ends it.
	v.overall.SetCurrent(min(int64(sum/float64(len(v.order))*barScale), barScale-1))
}

// finish ends a device's bar: full when the run succeeded, stopped where it was when not.
func (v *progressView) finish(d *progressDevice, ok bool) {
	d.done = true
	if d.bar == nil {
		return
	}
	if ok {
		d.bar.SetCurrent(barScale)
	} else {
		d.bar.Abort(false)
	}
}

// Close draws the last frame and stops drawing; call it before printing anything else
// to stdout. The view is not usable afterwards.
func (v *progressView) Close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return
	}
	v.closed = true
	if v.p == nil {
		return
	}
	close(v.stopTick)
	<-v.tickDone
	for _, id := range v.order {
		if d := v.devs[id]; d.bar != nil && !d.done {
			d.bar.Abort(false)
		}
	}
	if v.overall != nil {
		var all = len(v.order) > 0
		for _, id := range v.order {
			all = all && v.devs[id].result == frun.ResultOK
		}
		if all {
			v.overall.SetCurrent(barScale)
		} else {
			v.overall.Abort(false)
		}
	}
	// Two refreshes: the second is taken only once the first has been handed to the
	// renderer, which has then printed every line written before. Each is bounded: a
	// renderer that has already stopped takes none.
	for range 2 {
		select {
		case v.refresh <- time.Now():
		case <-time.After(2 * time.Second):
		}
	}
	v.p.Shutdown()
}
