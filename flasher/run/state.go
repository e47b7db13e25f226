package run

import (
	"context"
	"fmt"

	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/slots"
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

// readState reads the device's modules through the link with the reader of its mode
// (flasher/device): DfuSe UPLOAD of every slot in DFU mode (CRCs verified, so a
// half-written slot shows as corrupt), control requests when Device OS runs, and listening
// mode's `s` when the control requests are not answered.
func readState(ctx context.Context, l Link) (*Reading, error) {
	p := l.Platform()
	if p == nil {
		return nil, remedy.With(fmt.Errorf("run: the device %s is a platform this version does not know", l.ID()), "Update Particle Flasher.")
	}
	mode := l.Mode()
	var st state.Device
	switch mode {
	case state.ModeDFU:
		c, layout, err := l.DFU(ctx, 0)
		if err != nil {
			return nil, fmt.Errorf("open the DFU interface to read the modules: %w", err)
		}
		if st, err = device.ReadDFU(ctx, c, p, layout, slots.ReadOptions{}); err != nil {
			return nil, err
		}
	default:
		var err error
		st, err = device.ReadControl(ctx, l.Ctrl(), p, mode)
		if err != nil {
			con, done, cerr := l.Console(ctx)
			if cerr != nil {
				return nil, err
			}
			defer done()
			var serr error
			if st, serr = device.ReadConsole(ctx, con, p); serr != nil {
				return nil, fmt.Errorf("%v; %w", err, serr)
			}
		}
	}
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
