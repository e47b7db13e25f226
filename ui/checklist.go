package ui

import (
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/state"
	"github.com/particle-flasher/particle-flasher/flasher/words"
)

// rowState is where one checklist row stands.
type rowState int

const (
	rowPending rowState = iota // will happen
	rowRunning                 // happening now
	rowDone                    // done in this run
	rowCorrect                 // nothing to do: the device already has it
	rowFailed                  // the run stopped here
)

// checkRow is one line of the checklist: a part (from -> to, what happens to it) or a
// mode change, with its status icon and, for a write, its own bar.
type checkRow struct {
	state  rowState
	steps  []string // the plan steps it stands for; done when the last one is
	verb   string   // "will write", "staged for the next restart", ...
	doneAs string   // what it says once done ("written", "installed", ...)
	base   string   // what it is about: "1.5.2 to 2.3.1"
	icon   *widget.Icon
	name   *widget.Label
	detail *widget.Label
	bar    *widget.ProgressBar
	obj    fyne.CanvasObject
	// withBar: the row moves data (a write), so it has a bar of its own while it runs.
	withBar bool
}

func newCheckRow(name, detail, verb, doneAs string, withBar bool) *checkRow {
	r := &checkRow{verb: verb, doneAs: doneAs,
		icon:   widget.NewIcon(theme.RadioButtonIcon()),
		name:   widget.NewLabelWithStyle(name, fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		detail: widget.NewLabel(""),
		bar:    widget.NewProgressBar(),
	}
	// One line per row, so a plan fits a small window: the detail is cut with an
	// ellipsis where there is no room (Details has the whole story).
	r.detail.Truncation = fyne.TextTruncateEllipsis
	r.detail.SetText(joinDot(detail, verb))
	r.base = detail
	// The bar shows once the row is being done: a column of empty bars says nothing.
	r.withBar = withBar
	r.bar.Hide()
	r.obj = container.NewBorder(nil, nil, container.NewHBox(r.icon, r.name),
		container.NewGridWrap(rowBarSize, r.bar), r.detail)
	return r
}

// rowBarSize is a row's own bar: short, on the right, the same place on every row.
var rowBarSize = fyne.NewSize(110, 28)

// set moves the row to a state and says so.
func (r *checkRow) set(s rowState, say string) {
	r.state = s
	switch s {
	case rowPending:
		r.icon.SetResource(theme.RadioButtonIcon())
	case rowRunning:
		r.icon.SetResource(theme.MediaPlayIcon())
	case rowDone, rowCorrect:
		r.icon.SetResource(theme.ConfirmIcon())
	case rowFailed:
		r.icon.SetResource(theme.ErrorIcon())
	}
	r.detail.SetText(joinDot(r.base, say))
	if r.withBar && (s == rowRunning || s == rowDone) {
		r.bar.Show()
	}
	if s == rowDone {
		r.bar.SetValue(1)
	}
}

// checklist shows a plan as the rows a person follows (Device Doctor's stages, Web Device
// Restore's list of parts): parts already correct with a tick, each part that will be
// written, staged or sent with its bar, and the mode changes between them; then, during the
// run, which row is being done and which are done. The plan's own words (each step's why,
// its method and address) sit behind the Details disclosure.
type checklist struct {
	rows    []*checkRow
	byStep  map[string]*checkRow
	box     *fyne.Container
	overall *widget.ProgressBar
	summary *widget.Label
	obj     *fyne.Container
	todo    int // rows with something to do
}

func newChecklist() *checklist {
	c := &checklist{byStep: map[string]*checkRow{}, box: container.NewVBox(), overall: widget.NewProgressBar(),
		summary: widget.NewLabel("")}
	c.summary.Wrapping = fyne.TextWrapWord
	c.obj = container.NewVBox(c.box, c.summary, c.overall)
	c.obj.Hide()
	return c
}

// clear empties the list.
func (c *checklist) clear() {
	c.rows, c.byStep, c.todo = nil, map[string]*checkRow{}, 0
	c.box.Objects = nil
	c.box.Refresh()
	c.summary.SetText("")
	c.overall.SetValue(0)
	c.obj.Hide()
}

// show builds the rows of a plan for a device as it was read.
func (c *checklist) show(p *plan.Plan, from state.Device) {
	c.clear()
	for _, s := range p.Skipped {
		r := newCheckRow(s.Slot, partVersion(s.Module.Function, s.Module.Version), "", "", false)
		r.set(rowCorrect, "already correct")
		c.add(r)
	}
	var last *checkRow
	for _, s := range p.Steps {
		switch s.Kind {
		case plan.KindSetOTAFlag, plan.KindWaitFor:
			// Part of the write before it: the flag that has Device OS install what is
			// staged, and the wait while it installs what it was sent.
			if last != nil {
				last.steps = append(last.steps, s.ID)
				c.byStep[s.ID] = last
				continue
			}
		}
		r := c.rowFor(s, from)
		r.steps = append(r.steps, s.ID)
		c.byStep[s.ID] = r
		c.add(r)
		c.todo++
		last = r
	}
	if verbs := c.verbs(); len(verbs) > 0 {
		c.summary.SetText(fmt.Sprintf("%s to do: %s.", words.Count(c.todo, "step"), words.JoinAnd(verbs)))
	} else {
		c.summary.SetText("Nothing to do.")
	}
	c.obj.Show()
	c.obj.Refresh()
}

func (c *checklist) add(r *checkRow) {
	c.rows = append(c.rows, r)
	c.box.Add(r.obj)
}

// verbs summarise the rows: "2 parts to write, 1 staged, 3 mode changes".
func (c *checklist) verbs() []string {
	var write, staged, modes int
	for _, r := range c.rows {
		switch {
		case r.state == rowCorrect:
		case r.verb == "will write", r.verb == "will send to Device OS":
			write++
		case r.verb == "staged for the next restart":
			staged++
		default:
			modes++
		}
	}
	var out []string
	if write > 0 {
		out = append(out, words.Count(write, "part")+" to write")
	}
	if staged > 0 {
		out = append(out, fmt.Sprintf("%d staged for the next restart", staged))
	}
	if modes > 0 {
		out = append(out, words.Count(modes, "other step"))
	}
	return out
}

// rowFor is the row a step gets.
func (c *checklist) rowFor(s plan.Step, from state.Device) *checkRow {
	switch s.Kind {
	case plan.KindEnterMode:
		return newCheckRow("Enter "+s.Mode.Title()+" mode", "", "", "done", false)
	case plan.KindReset:
		return newCheckRow("Restart in "+s.Mode.Title()+" mode", "", "", "done", false)
	case plan.KindInvalidate:
		return newCheckRow("Clear the old application", fmt.Sprintf("at 0x%06X", s.Address), "will clear", "cleared", true)
	case plan.KindSetupDone:
		return newCheckRow("Mark setup done", "", "", "done", false)
	case plan.KindEndServiceMode:
		return newCheckRow("End Service Mode", "Device Protection back on", "", "done", false)
	case plan.KindVerify:
		return newCheckRow("Verify", "read the device back", "", "verified", false)
	case plan.KindWrite:
		m := s.Module
		if m == nil {
			return newCheckRow(s.Slot, "", "will write", "written", true)
		}
		if a, ok := m.Asset(); ok {
			return newCheckRow("Asset "+a.Name, fmt.Sprintf("%d bytes", a.Size), "will send to Device OS", "stored", true)
		}
		name := s.Slot
		to := partVersion(m.Function, m.Version)
		detail := to
		if cur, ok := from.Main(m.Function, m.Index); ok && cur.Present {
			detail = partVersion(cur.Function, cur.Version) + " to " + to
		} else if ok || from.Known() {
			detail = "none to " + to
		}
		switch {
		case s.Method == platform.MethodOTARegion:
			return newCheckRow(name, detail, "staged for the next restart", "installed", true)
		case s.Method.UsesDFU():
			return newCheckRow(name, detail, "will write", "written", true)
		default:
			return newCheckRow(name, detail, "will send to Device OS", "installed", true)
		}
	}
	return newCheckRow(s.Kind.String(), "", "", "done", false)
}

// partVersion is a part's version as a row shows it: a system part by the Device OS it
// belongs to ("2.3.1"), any other part by its own module version ("version 1200"): a
// bootloader or SoftDevice serves many Device OS releases, and naming one would mislead.
func partVersion(fn platform.Function, v uint16) string {
	if fn == platform.FuncSystem {
		return versionWords(fn, v)
	}
	if v == 0 {
		return "missing"
	}
	return fmt.Sprintf("version %d", v)
}

// apply follows the run: the row of the step in progress, its bar, rows done.
func (c *checklist) apply(e run.Event) {
	r := c.byStep[e.StepID]
	switch e.Event {
	case run.EvPlan:
		c.overall.SetValue(clamp01(e.Fraction))
	case run.EvStep:
		if r != nil && r.state != rowDone {
			r.set(rowRunning, runningWords(r, e))
		}
		if i := c.rowIndex(r); i > 0 {
			c.summary.SetText(fmt.Sprintf("Step %d of %d: %s", i, c.todo, e.Title))
		}
		c.overall.SetValue(clamp01(e.Fraction))
	case run.EvProgress:
		if r != nil {
			r.bar.SetValue(clamp01(e.StepFraction))
			if e.Phase != "" && r.state == rowRunning {
				r.detail.SetText(joinDot(r.base, fmt.Sprintf("%s %d%%", phaseWords(e.Phase), int(100*clamp01(e.StepFraction)))))
			}
		}
		c.overall.SetValue(clamp01(e.Fraction))
	case run.EvStepDone:
		if r != nil && len(r.steps) > 0 && r.steps[len(r.steps)-1] == e.StepID {
			words := r.doneAs
			if e.Skipped {
				words = "already done"
			}
			r.set(rowDone, words)
		} else if r != nil && r.state == rowRunning {
			r.set(rowRunning, "installing...")
		}
		if e.Fraction > 0 {
			c.overall.SetValue(clamp01(e.Fraction))
		}
	case run.EvDone:
		if e.Result == run.ResultOK {
			c.overall.SetValue(1)
			c.summary.SetText(fmt.Sprintf("All %s done.", words.Count(c.todo, "step")))
			return
		}
		for _, r := range c.rows {
			if r.state == rowRunning {
				r.set(rowFailed, "stopped here")
			}
		}
	}
}

// rowIndex is the 1-based position of r among the rows with something to do.
func (c *checklist) rowIndex(r *checkRow) int {
	i := 0
	for _, x := range c.rows {
		if x.state == rowCorrect {
			continue
		}
		i++
		if x == r {
			return i
		}
	}
	return 0
}

func runningWords(r *checkRow, e run.Event) string {
	switch {
	case strings.HasPrefix(r.verb, "staged"):
		return "staging..."
	case r.verb == "will send to Device OS":
		return "sending..."
	case r.verb != "":
		return "writing..."
	}
	return "now"
}

func phaseWords(phase string) string {
	switch phase {
	case "erase":
		return "erasing"
	case "read":
		return "reading back"
	}
	return "writing"
}

func joinDot(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + " · " + b
}
