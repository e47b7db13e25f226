package plan

import (
	"cmp"
	"fmt"

	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// wipe is a region overwritten with 0xFF so that a module whose header sits there stops
// counting.
type wipe struct {
	platform.Region
	slot string // what the step names as written ("former-user-part", "old-system-part1")
	what string // for the LED line: "128 KB application slot"
	why  string
}

// wipesFor finds what must be wiped for the device to run it once it is written, and
// records it on the item. A write only replaces what it covers, so two things can stay
// in the way:
//   - an older copy of the same part at another address, whose header the write does not
//     reach: Device OS 6.1.2 moved the Gen3 system-part1 from 0x30000 to 0x28000, and a
//     downgrade writing 0x30000 leaves the 6.x header at 0x28200, which is found first;
//   - for an application, another user slot's image that would still run instead of it
//     (a valid 128 KB app at 0xD4000 wins over a 256 KB one at 0xB4000, reference §6c.5;
//     particle-cli writes 4 KB of 0xFF there first).
//
// Each is wiped by overwriting the flash sector that holds its header. When nothing was
// known about the device (unknown), every user slot that would win is wiped.
func wipesFor(p *platform.Platform, before *state.Device, it *item, unknown bool) error {
	it.wipes = nil
	after := cloneOf(before)
	after.Write(it.inst)
	for range 2 {
		found, ok := after.Main(it.inst.Function, it.inst.Index)
		if !ok || found.Start == it.inst.Start || found.Start == 0 {
			break
		}
		w, err := headerWipe(p, found, "old-"+it.slot.Name, "copy of "+it.slot.Name)
		if err != nil {
			return err
		}
		w.why = fmt.Sprintf("The device still holds %s at 0x%08x, where Device OS %s kept it; %s goes to 0x%08x, but the old copy's header would still be found first at start-up, so the sector holding it is overwritten with 0xFF first.",
			found.Label(), found.Start, cmp.Or(found.DeviceOS, "another release"), describe(it.m), it.inst.Start)
		it.wipes = append(it.wipes, w)
		after.Invalidate(w.Address, w.Size)
	}
	if it.inst.Function != platform.FuncUser {
		return nil
	}
	if unknown {
		// Nothing is known: any user slot that would win over this one may hold an image.
		for _, s := range p.Slots {
			if s.Function != platform.FuncUser || s.Index >= it.inst.Index || s.Start == it.inst.Start {
				continue
			}
			after.Write(state.Module{Function: s.Function, Index: s.Index, Start: s.Start, Size: s.HeaderOffset + 1,
				Checks: state.AllChecks})
		}
	}
	for range 2 {
		app, ok := after.RunningApp()
		if !ok || app.Start == it.inst.Start {
			return nil
		}
		w, err := headerWipe(p, app, "former-user-part", "application slot at "+fmt.Sprintf("0x%08x", app.Start))
		if err != nil {
			return err
		}
		w.why = fmt.Sprintf("The new application goes to 0x%08x, but the application at 0x%08x (%s) would still be the one that runs at start-up, so the sector holding its header is overwritten with 0xFF first.",
			it.inst.Start, app.Start, app.Label())
		it.wipes = append(it.wipes, w)
		after.Invalidate(w.Address, w.Size)
	}
	return nil
}

// headerWipe is the erase sector holding m's header, on the alt of m's memory; an error
// when DFU may not erase and write it.
func headerWipe(p *platform.Platform, m state.Module, slot, what string) (wipe, error) {
	sl, ok := p.SlotFor(m.Function, m.Index, m.Version)
	if !ok || sl.Start != m.Start {
		sl, ok = slotAt(p, m)
	}
	mem := platform.MemInternal
	if ok && sl.Storage == platform.StorageExternal {
		mem = platform.MemExternal
	}
	alt, found := p.AltByMemory(mem)
	if !found {
		return wipe{}, fail(ErrNoMethod, "Only an SWD/JTAG debugger can clear it.", "the %s has no DFU access to the memory holding %s", p.DisplayName, m.Label())
	}
	hdr := m.Start
	if ok {
		hdr += sl.HeaderOffset
	}
	layout, err := p.AltLayout(alt.Alt)
	if err != nil {
		return wipe{}, err
	}
	secs, err := layout.SectorsCovering(hdr, 1)
	if err != nil || len(secs) != 1 || !layout.Permits(secs[0].Start, secs[0].Size, memlayout.Erasable|memlayout.Writable) {
		return wipe{}, fail(ErrNoMethod, "Only an SWD/JTAG debugger can clear it.",
			"%s at 0x%08x would still be found at start-up, and DFU may not erase the flash holding its header", m.Label(), m.Start)
	}
	return wipe{Region: platform.Region{Alt: alt.Alt, Address: secs[0].Start, Size: secs[0].Size}, slot: slot, what: what}, nil
}

// slotAt finds the slot variant a module sits in by its address.
func slotAt(p *platform.Platform, m state.Module) (platform.Slot, bool) {
	for _, s := range p.Slots {
		if s.Function == m.Function && s.Index == m.Index && (s.Start == m.Start || s.EndFixed && m.Start >= s.Start && m.Start < s.End()) {
			return s, true
		}
	}
	return platform.Slot{}, false
}
