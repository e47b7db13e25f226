package run

import (
	"context"
	"fmt"

	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// Reading is what the runner learnt by reading a device: its state as the door read it,
// what that state means (Boot: the mode Device OS comes up in, and why), and the mode it
// is in, safe mode told from normal mode by that one rule (flasher/state).
type Reading struct {
	Mode  state.Mode
	Boot  state.Boot
	State state.Device
}

// Modules are the modules as read.
func (r *Reading) Modules() []state.Module {
	if r == nil {
		return nil
	}
	return r.State.Modules
}

// readState reads the device's modules through the link with the one reader
// (device.Read) and tells safe mode from normal mode by the one rule (state.Boot).
func readState(ctx context.Context, l device.Link) (*Reading, error) {
	if l.Platform() == nil {
		return nil, remedy.With(fmt.Errorf("run: the device %s is a platform this version does not know", l.ID()), "Update Particle Flasher.")
	}
	st, err := device.Read(ctx, l)
	if err != nil {
		return nil, err
	}
	if st.Platform == nil {
		st.Platform = l.Platform()
	}
	mode := l.Mode()
	rd := &Reading{Mode: mode, State: st, Boot: st.Boot()}
	if mode == state.ModeNormal && rd.Boot.Mode == state.ModeSafe {
		rd.Mode = state.ModeSafe
	}
	rd.State.Mode = rd.Mode
	return rd, nil
}

// modeName is the mode as events spell it.
func modeName(m state.Mode) string {
	if m == state.ModeUnknown {
		return ""
	}
	return m.String()
}
