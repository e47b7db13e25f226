package plan

import (
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// slotKey identifies a module the way dependencies name it: function and index (the Gen3
// system-part1 moved address in 6.1.2 but is still system 1).
type slotKey struct {
	fn  platform.Function
	idx uint8
}

func keyOf(fn platform.Function, idx uint8) slotKey { return slotKey{fn, idx} }

// cloneOf copies a device state for the planner to change.
func cloneOf(d *state.Device) *state.Device {
	c := d.Clone()
	return &c
}

func isSystem(fn platform.Function) bool { return state.IsSystem(fn) }
