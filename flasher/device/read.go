package device

import (
	"context"
	"errors"
	"fmt"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/listen"
	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
	"github.com/particle-flasher/particle-flasher/flasher/module"
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
	protection := protectionOf(ctx, c)
	if protection == state.ProtectionProtected {
		// A protected device answers nothing but its ID and this (security_mode.cpp
		// security_mode_check_control_request): its modules stay hidden. Protection exists
		// only from Device OS 6.0, which always reports setup done.
		return state.Device{Platform: p, Mode: mode, Protection: protection, SetupDone: state.FlagYes}, nil
	}
	infos, err := c.ModuleInfo(ctx)
	if err != nil {
		return state.Device{}, fmt.Errorf("read the modules (control request 90): %w", err)
	}
	var ncp uint16
	var ncpName string
	if p != nil && p.HasNCP {
		if v, err := c.NCPFirmwareVersion(ctx); err == nil {
			ncpName = v.Version
			if !listsNCP(infos) {
				ncp = uint16(v.ModuleVersion)
			}
		}
	}
	rd := FromControl(p, mode, infos, ncp)
	rd.Protection = protection
	rd.Identity = readIdentity(ctx, c)
	rd.Identity.NCPVersion = ncpName
	if v, err := c.SystemVersion(ctx); err == nil {
		rd.DeviceOS = v
	}
	if done, err := c.SetupDone(ctx); err == nil {
		rd.SetupDone = state.FlagOf(done)
	}
	readAssets(ctx, c, &rd)
	return rd, nil
}

// readIdentity asks for the serial number (request 21) and, where the platform has a
// modem, the ICCID and IMEI (554). A request the device does not know leaves its field
// empty: the identity is worth recording, never worth failing a reading for.
func readIdentity(ctx context.Context, c *ctrl.Client) state.Identity {
	var id state.Identity
	if sn, err := c.SerialNumber(ctx); err == nil {
		id.SerialNumber = sn
	}
	if ci, err := c.CellularInfo(ctx); err == nil {
		id.ICCID, id.IMEI = ci.ICCID, ci.IMEI
	}
	return id
}

// readAssets asks which asset files the device holds (request 91, Device OS 5.6.0 and
// later). A Device OS before 5.5.0 holds none; 5.5.x has assets but cannot say which.
func readAssets(ctx context.Context, c *ctrl.Client, rd *state.Device) {
	info, err := c.AssetInfo(ctx)
	switch {
	case err == nil:
		rd.AssetsKnown = true
		for _, a := range info.Available {
			rd.Assets = append(rd.Assets, module.Asset{Name: a.Name, Hash: a.Hash, Size: int(a.Size)})
		}
	case ctrl.NotSupported(err):
		if sys := rd.SystemVersion(); sys != 0 && sys < assetsSince {
			rd.AssetsKnown = true
		}
	}
}

// assetsSince is the first system module version with asset storage (5.5.0).
const assetsSince = 5500

// protectionOf asks for Device Protection's state (request 76): Device OS before 6.0 does
// not know the request and has no protection.
func protectionOf(ctx context.Context, c *ctrl.Client) state.Protection {
	ps, err := c.ProtectedState(ctx)
	switch {
	case ctrl.NotSupported(err):
		return state.ProtectionOpen
	case err != nil:
		return state.ProtectionUnknown
	case ps.Protected:
		return state.ProtectionProtected
	case ps.Overridden:
		return state.ProtectionService
	}
	return state.ProtectionOpen
}

func listsNCP(infos []ctrl.ModuleInfo) bool {
	for _, mi := range infos {
		if platform.Function(mi.Function) == platform.FuncNCP {
			return true
		}
	}
	return false
}

// ReadConsole reads a device in listening mode with the `s` command, and its identity
// with `i` where the HAL adds it (serial number on Gen3 and later, IMEI and ICCID on
// cellular platforms).
func ReadConsole(ctx context.Context, con *listen.Console, p *platform.Platform) (state.Device, error) {
	si, err := con.ModuleInfo(ctx)
	if err != nil {
		return state.Device{}, fmt.Errorf("read the modules (listening mode `s`): %w", err)
	}
	rd := FromSerial(p, si)
	if id, err := con.Identify(ctx); err == nil {
		rd.Identity = IdentityFromConsole(id)
	}
	return rd, nil
}

// IdentityFromConsole takes the identity out of `i`'s reply, under the names Device OS
// prints (system_setup.cpp filter_key). The device secret it may also print is left out:
// it is a secret, not an identifier.
func IdentityFromConsole(id listen.Identity) state.Identity {
	return state.Identity{SerialNumber: id.Extra["Serial Number"], ICCID: id.Extra["ICCID"], IMEI: id.Extra["IMEI"]}
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
		// Its flash is locked (every alt read-only): the protection is what there is to
		// know. Device OS 6.x, so setup is done.
		return state.Device{Platform: p, Mode: state.ModeDFU, Protection: state.ProtectionProtected, SetupDone: state.FlagYes}, nil
	case err != nil:
		return state.Device{}, remedy.With(fmt.Errorf("read the modules over DFU: %w", err), dfu.Remedy)
	}
	st := FromDFU(p, read)
	if sys := st.SystemVersion(); sys != 0 && sys < protectionSince {
		st.Protection = state.ProtectionOpen // Device Protection came with 6.0
	}
	return st, nil
}

// protectionSince is the first system module version with Device Protection (6.0.0,
// CHANGELOG "Protected mode #2734"); in DFU mode an open device and one in Service Mode
// look alike from then on.
const protectionSince = 6000

// ReadSetupDone reads the setup-done flag out of the DCT over DFU (alt 1 holds the DCT at
// its own offsets, as the OTA flag's write relies on too): FlagUnknown where the platform
// has no flag or the read fails.
func ReadSetupDone(ctx context.Context, c *dfu.Client, p *platform.Platform) state.Flag {
	sd := p.SetupDoneFlag()
	if sd == nil || c == nil {
		return state.FlagUnknown
	}
	b, err := c.Read(ctx, sd.DCTOffset, 1)
	if err != nil || len(b) != 1 {
		return state.FlagUnknown
	}
	return state.FlagOf(b[0] == 0x01)
}
