package device

import (
	"context"
	"errors"
	"fmt"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/listen"
	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/slots"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// The one reader per mode: every door, the runner and the app read a device's modules
// through these three functions, so a reading means the same wherever it is shown.

// ReadControl reads a device running Device OS (normal, safe or listening mode) with
// control requests: its module table (request 90), its Device OS version (30) and, where
// the platform has NCP firmware the table does not list, the NCP's version (31). mode is
// the mode the device reports (safe mode reports normal; the reading's Boot tells it).
func ReadControl(ctx context.Context, c *ctrl.Client, p *platform.Platform, mode state.Mode) (state.Device, error) {
	infos, err := c.ModuleInfo(ctx)
	if err != nil {
		return state.Device{}, fmt.Errorf("read the modules (control request 90): %w", err)
	}
	var ncp uint16
	if p != nil && p.HasNCP && !listsNCP(infos) {
		if v, err := c.NCPFirmwareVersion(ctx); err == nil {
			ncp = uint16(v.ModuleVersion)
		}
	}
	rd := FromControl(p, mode, infos, ncp)
	if v, err := c.SystemVersion(ctx); err == nil {
		rd.DeviceOS = v
	}
	return rd, nil
}

func listsNCP(infos []ctrl.ModuleInfo) bool {
	for _, mi := range infos {
		if platform.Function(mi.Function) == platform.FuncNCP {
			return true
		}
	}
	return false
}

// ReadConsole reads a device in listening mode with the `s` command.
func ReadConsole(ctx context.Context, con *listen.Console, p *platform.Platform) (state.Device, error) {
	si, err := con.ModuleInfo(ctx)
	if err != nil {
		return state.Device{}, fmt.Errorf("read the modules (listening mode `s`): %w", err)
	}
	return FromSerial(p, si), nil
}

// ReadDFU reads a device in DFU mode: every slot's module header and suffix straight out
// of flash (slots.Read; with the CRC of every module unless o says otherwise).
func ReadDFU(ctx context.Context, c *dfu.Client, p *platform.Platform, layout *memlayout.Layout, o slots.ReadOptions) (state.Device, error) {
	if p == nil {
		return state.Device{}, remedy.With(errors.New("the device is a Particle platform this version does not know"), "Update Particle Flasher.")
	}
	read, err := slots.ReadModulesWith(ctx, c, p, layout, o)
	switch {
	case errors.Is(err, dfu.ErrProtected):
		return state.Device{}, remedy.With(err, "The device has Device Protection, so its flash cannot be read over DFU: "+
			"reset it into normal mode (tap RESET) and read its modules there with control requests.")
	case err != nil:
		return state.Device{}, remedy.With(fmt.Errorf("read the modules over DFU: %w", err), dfu.Remedy)
	}
	return FromDFU(p, read), nil
}
