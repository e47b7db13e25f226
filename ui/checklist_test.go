//go:build ci

package ui

import (
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"github.com/stretchr/testify/assert"

	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// goldenPlan is a Photon heal as the planner makes it: the application already correct,
// DFU mode, the bootloader staged, both system parts written, a restart and the check.
func goldenPlan() (*plan.Plan, state.Device) {
	p, _ := platform.ByName("photon")
	mod := func(fn platform.Function, idx uint8, v uint16) *module.Module {
		return &module.Module{Function: fn, Index: idx, Version: v}
	}
	from := state.Device{Platform: p, Modules: []state.Module{
		{Function: platform.FuncBootloader, Version: 502, Location: state.LocationMain, Present: true},
		{Function: platform.FuncSystem, Index: 1, Version: 1512, Location: state.LocationMain, Present: true},
		{Function: platform.FuncSystem, Index: 2, Version: 1512, Location: state.LocationMain, Present: true},
		{Function: platform.FuncUser, Index: 1, Version: 6, Location: state.LocationMain, Present: true},
	}}
	pl := &plan.Plan{Platform: p, From: "1.5.2", To: "2.3.1",
		Skipped: []plan.Skip{{Module: mod(platform.FuncUser, 1, 6), Slot: "user-part"}},
		Steps: []plan.Step{
			{ID: "enter-dfu", Kind: plan.KindEnterMode, Mode: state.ModeDFU},
			{ID: "ota:bootloader", Kind: plan.KindWrite, Slot: "bootloader", Method: platform.MethodOTARegion, Module: mod(platform.FuncBootloader, 0, 1006)},
			{ID: "ota-flag", Kind: plan.KindSetOTAFlag, Slot: "bootloader", Module: mod(platform.FuncBootloader, 0, 1006)},
			{ID: "write:system-part1", Kind: plan.KindWrite, Slot: "system-part1", Method: platform.MethodDFU, Module: mod(platform.FuncSystem, 1, 2302)},
			{ID: "write:system-part2", Kind: plan.KindWrite, Slot: "system-part2", Method: platform.MethodDFU, Module: mod(platform.FuncSystem, 2, 2302)},
			{ID: "reset", Kind: plan.KindReset, Mode: state.ModeNormal},
			{ID: "verify", Kind: plan.KindVerify},
		}}
	return pl, from
}

// TestChecklistStates are the checklist's markup goldens: the plan before Start, in the
// middle of a write, done, and stopped by a failure. The rows keep their order; the
// already-correct application keeps its tick throughout.
func TestChecklistStates(t *testing.T) {
	test.NewTempApp(t)
	pl, from := goldenPlan()
	c := newChecklist()
	w := test.NewWindow(c.obj)
	defer w.Close()
	w.Resize(fyne.NewSize(520, 640))
	c.show(pl, from)
	assert.Equal(t, 6, c.todo, "enter DFU, bootloader (with its flag), two system parts, restart, verify")
	test.AssertObjectRendersToMarkup(t, "checklist/planned.xml", c.obj)

	ev := func(e run.Event) { c.apply(e) }
	ev(run.Event{Event: run.EvPlan})
	for _, id := range []string{"enter-dfu", "ota:bootloader", "ota-flag"} {
		ev(run.Event{Event: run.EvStep, StepID: id, Title: id})
		ev(run.Event{Event: run.EvStepDone, StepID: id, Fraction: 0.3})
	}
	ev(run.Event{Event: run.EvStep, StepID: "write:system-part1", Title: "Write system-part1 2302", Fraction: 0.35})
	ev(run.Event{Event: run.EvProgress, StepID: "write:system-part1", Phase: "write", StepFraction: 0.5, Fraction: 0.45})
	assert.Equal(t, []rowState{rowCorrect, rowDone, rowDone, rowRunning, rowPending, rowPending, rowPending}, states(c))
	assert.Equal(t, "Step 3 of 6: Write system-part1 2302", c.summary.Text)
	test.AssertObjectRendersToMarkup(t, "checklist/running.xml", c.obj)

	for _, id := range []string{"write:system-part1", "write:system-part2", "reset", "verify"} {
		ev(run.Event{Event: run.EvStep, StepID: id, Title: id})
		ev(run.Event{Event: run.EvStepDone, StepID: id})
	}
	ev(run.Event{Event: run.EvDone, Result: run.ResultOK})
	assert.Equal(t, []rowState{rowCorrect, rowDone, rowDone, rowDone, rowDone, rowDone, rowDone}, states(c))
	test.AssertObjectRendersToMarkup(t, "checklist/done.xml", c.obj)

	c.show(pl, from)
	ev(run.Event{Event: run.EvStep, StepID: "enter-dfu", Title: "Enter DFU mode"})
	ev(run.Event{Event: run.EvStepDone, StepID: "enter-dfu"})
	ev(run.Event{Event: run.EvStep, StepID: "ota:bootloader", Title: "Stage bootloader"})
	ev(run.Event{Event: run.EvDone, Result: run.ResultFailed})
	assert.Equal(t, []rowState{rowCorrect, rowDone, rowFailed, rowPending, rowPending, rowPending, rowPending}, states(c))
	test.AssertObjectRendersToMarkup(t, "checklist/failed.xml", c.obj)
}

func states(c *checklist) []rowState {
	var out []rowState
	for _, r := range c.rows {
		out = append(out, r.state)
	}
	return out
}
