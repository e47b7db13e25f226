package plan

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// checkSafety checks a plan against rules stated independently of the planner's code:
//
//   - no DFU step writes outside the region it is for (the module's slot, the OTA region,
//     the former user part, the DCT flag byte), or onto sectors the bootloader's memory
//     map does not let a host erase and write (checked with the platform's AltLayout),
//     and nothing on alt 0 ever touches a bootloader slot: the bootloader, which makes DFU
//     reachable, is never erased;
//   - when a module is written, every dependency it has on a module that the plan writes
//     later is already met, unless the step declares it (Step.Unmet: a cycle broken at a
//     DFU write); a module Device OS installs itself (control request, YMODEM) never has
//     an unmet dependency, and Device OS can run when it is sent;
//   - after the last step the device holds the expected modules.
func checkSafety(t *testing.T, st state.Device, p *Plan) {
	t.Helper()
	pl := p.Platform
	inSlot := func(s Step) bool {
		slot, ok := pl.SlotFor(s.Module.Function, s.Module.Index, s.Module.Version)
		if !ok {
			return false
		}
		return s.Address >= slot.Start && uint64(s.Address)+uint64(len(s.Data)) <= uint64(slot.End())
	}
	inRegion := func(s Step, r platform.Region) bool {
		return s.Alt == r.Alt && s.Address >= r.Address && uint64(s.Address)+uint64(len(s.Data)) <= uint64(r.End())
	}
	for _, s := range p.Steps {
		dfu := s.Kind == KindInvalidate || s.Kind == KindSetOTAFlag || s.Kind == KindWrite && s.Method.UsesDFU()
		if !dfu {
			continue
		}
		layout, err := pl.AltLayout(s.Alt)
		require.NoError(t, err)
		switch {
		case s.Kind == KindSetOTAFlag:
			a, _ := pl.Alt(s.Alt)
			assert.Equal(t, platform.MemDCT, a.Memory, s.ID)
			assert.Equal(t, pl.OTAFlagOffset, s.Address, s.ID)
			assert.Equal(t, []byte{pl.OTAFlagValue}, s.Data, s.ID)
			assert.True(t, layout.Permits(s.Address, uint32(len(s.Data)), memlayout.Writable), s.ID)
			continue
		case s.Kind == KindInvalidate:
			// Only the header sector of an application or system part that would otherwise
			// still be found: never the bootloader, the SoftDevice or anything outside a slot.
			ok := false
			for _, sl := range pl.Slots {
				if sl.Function == platform.FuncUser || sl.Function == platform.FuncSystem {
					ok = ok || inRegion(s, platform.Region{Alt: 0, Address: sl.Start, Size: sl.MaxSize})
				}
			}
			assert.True(t, ok, "%s wipes outside every user and system slot", s.ID)
		case s.Method == platform.MethodOTARegion:
			ok := false
			for _, r := range pl.OTARegions {
				ok = ok || inRegion(s, r.Region)
			}
			assert.True(t, ok, "%s outside every OTA region", s.ID)
			assert.Equal(t, s.Module.Data, s.Data, "%s stages the whole module", s.ID)
		default:
			assert.Equal(t, uint8(0), s.Alt, s.ID)
			assert.True(t, inSlot(s), "%s writes 0x%08x+%d outside its slot", s.ID, s.Address, len(s.Data))
		}
		assert.True(t, layout.Permits(s.Address, uint32(len(s.Data)), memlayout.Erasable|memlayout.Writable),
			"%s writes onto sectors that are not erasable and writable", s.ID)
		if s.Alt == 0 {
			for _, slot := range pl.Slots {
				if slot.Function != platform.FuncBootloader {
					continue
				}
				end := uint64(s.Address) + uint64(len(s.Data))
				assert.False(t, uint64(s.Address) < uint64(slot.End()) && uint64(slot.Start) < end,
					"%s overlaps the %s", s.ID, slot.Name)
			}
		}
	}

	// A write cut for a watchdog is the whole write, in order, without gaps.
	var run []Step
	for _, s := range p.Steps {
		if s.Kind != KindWrite || s.Parts == 0 {
			continue
		}
		run = append(run, s)
		if s.Part != s.Parts {
			continue
		}
		require.Len(t, run, s.Parts, s.ID)
		var joined []byte
		for k, part := range run {
			assert.Equal(t, k+1, part.Part)
			assert.Equal(t, run[0].Address+uint32(len(joined)), part.Address, part.ID)
			joined = append(joined, part.Data...)
		}
		want := s.Module.Data
		if s.Method == platform.MethodDFUDropHeader {
			want = want[module.PrefixSize:]
		}
		assert.Equal(t, want, joined, "%s: parts do not make up the module", s.ID)
		run = nil
	}
	assert.Empty(t, run, "a write cut into parts is not finished")

	// Dependencies, replayed on a plain map of what each slot holds.
	type key struct {
		fn  platform.Function
		idx uint8
	}
	have := map[key]uint16{}
	at := map[key]uint32{} // where each module starts
	for _, in := range st.Modules {
		if in.Intact() {
			have[key{in.Function, in.Index}] = in.Version
			at[key{in.Function, in.Index}] = in.Start
		}
	}
	meets := func(d module.Dependency) bool {
		v, ok := have[key{d.Function, d.Index}]
		return ok && v >= d.Version
	}
	osRuns := func() bool {
		found := false
		for k := range have {
			if k.fn == platform.FuncSystem {
				found = true
			}
		}
		return found
	}
	laterWrites := func(from int, d module.Dependency) bool {
		for _, s := range p.Steps[from+1:] {
			if s.Kind == KindWrite && s.Module.Function == d.Function && s.Module.Index == d.Index && s.Module.Version >= d.Version {
				return true
			}
		}
		return false
	}
	declared := func(s Step, d module.Dependency) bool {
		for _, u := range s.Unmet {
			if u == d {
				return true
			}
		}
		return false
	}
	for i, s := range p.Steps {
		switch s.Kind {
		case KindInvalidate:
			for k := range have {
				if a := at[k]; a >= s.Address && uint64(a) < uint64(s.Address)+uint64(len(s.Data)) {
					delete(have, k)
				}
			}
		case KindWrite:
			m := s.Module
			if s.Part <= 1 {
				for _, d := range m.Dependencies() {
					if d.Function == m.Function && d.Index == m.Index || meets(d) || !laterWrites(i, d) {
						continue
					}
					assert.True(t, declared(s, d), "%s is written before its dependency %s, undeclared", s.ID, d)
					assert.True(t, s.Method.UsesDFU() && s.Method != platform.MethodOTARegion,
						"%s jumps ahead of %s, but Device OS would refuse it", s.ID, d)
				}
				if !s.Method.UsesDFU() {
					assert.True(t, osRuns(), "%s is sent to Device OS, which cannot run", s.ID)
					for _, d := range m.Dependencies() {
						if d.Function == m.Function && d.Index == m.Index || d.Function == platform.FuncNCP {
							continue // itself; the NCP may be unreadable
						}
						assert.True(t, meets(d), "%s is sent to Device OS, which refuses it: %s unmet", s.ID, d)
					}
				}
			}
			if s.Part == s.Parts {
				if m.Function == platform.FuncUser {
					for k := range have {
						if k.fn == platform.FuncUser {
							delete(have, k)
						}
					}
				}
				have[key{m.Function, m.Index}] = m.Version
				at[key{m.Function, m.Index}] = m.Start
			}
		}
	}
	for _, in := range p.Expected() {
		v, ok := have[key{in.Function, in.Index}]
		if assert.True(t, ok, "expected %s is not on the device after the plan", in) {
			assert.Equal(t, in.Version, v, "%s", in)
		}
	}
}

// families are the release sets the property test moves between.
var families = map[string][]string{
	"photon":   {"photon/1.5.2", "photon/2.3.1"},
	"electron": {"electron/1.5.2", "electron/2.3.1"},
	"argon":    {"argon/2.3.0", "argon/4.1.0"},
	"boron":    {"boron/1.5.2", "boron/4.1.0"},
	"bsom":     {"bsom/2.3.1", "bsom/4.1.0", "bsom/6.1.0", "bsom/6.2.0"},
	"tracker":  {"tracker/2.3.1", "tracker/4.1.0"},
	"p2":       {"p2/5.0.0", "p2/6.2.0"},
}

// TestPropertyOrderAndBounds plans from random installed sets (any release of the
// family, with slots missing, corrupt or from another release, any mode) to a random
// release, and checks every plan with checkSafety.
func TestPropertyOrderAndBounds(t *testing.T) {
	n := 400
	if testing.Short() {
		n = 100
	}
	// Load every set once.
	sets := map[string][]*module.Module{}
	apps := map[string]*module.Module{}
	var names []string
	for fam, keys := range families {
		names = append(names, fam)
		for _, k := range keys {
			sets[k] = set(t, k)
			if _, ok := tinkerSpecs[k]; ok {
				apps[k] = tinker(t, k)
			}
		}
	}
	rng := rand.New(rand.NewPCG(7, 11))
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	counts := map[string]int{}
	for i := range n {
		fam := names[rng.IntN(len(names))]
		keys := families[fam]
		from, other, to := pick(keys), pick(keys), pick(keys)
		p := plat(t, fam)

		var mods []state.Module
		desc := fmt.Sprintf("case %d: %s", i, from)
		for _, m := range sets[from] {
			in := state.FromFile(nil, m)
			r := rng.IntN(10)
			if m.Function == platform.FuncBootloader && r < 2 {
				r = 9 // a device without working (pre)bootloaders is beyond DFU (dark LED, SWD/JTAG)
			}
			switch {
			case r == 0:
				desc += fmt.Sprintf(" -%s", m.SlotName())
				continue
			case r == 1:
				in.Checks.Integrity = false
				desc += fmt.Sprintf(" !%s", m.SlotName())
			case r == 2:
				for _, o := range sets[other] {
					if o.Function == m.Function && o.Index == m.Index {
						in = state.FromFile(nil, o)
						desc += fmt.Sprintf(" %s@%s", m.SlotName(), other)
					}
				}
			}
			mods = append(mods, in)
		}
		if from == "electron/1.5.2" {
			mods = append(mods, installed(fBoot, 0, 502, true)) // no file in ../shared
		}
		if fam == "tracker" {
			switch rng.IntN(3) {
			case 0:
				mods = append(mods, installed(fNCP, 0, 5, true))
			case 1:
				mods = append(mods, installed(fNCP, 0, 7, true, []module.Dependency{dep(fSys, 1, 3000)}...))
			}
		}
		switch rng.IntN(4) {
		case 0, 1:
			mods = append(mods, state.FromFile(nil, apps[from]))
		case 2:
			mods = append(mods, state.FromFile(nil, apps[other]))
		}
		st := state.Device{Platform: p, Modules: mods}
		st.Mode = []state.Mode{state.ModeNormal, state.ModeDFU, state.ModeSafe, state.ModeListening, state.ModeUnknown}[rng.IntN(5)]
		if !st.Runnable() && st.Mode.RunsDeviceOS() {
			st.Mode = state.ModeDFU // a device whose Device OS cannot start sits in DFU mode
		}
		_, toVer := splitKey(to)
		tg := Target{Name: toVer, Modules: sets[to]}
		withRepl := rng.IntN(5) > 0 && apps[to] != nil
		if withRepl {
			tg.ReplacementApp = apps[to]
		}
		if rng.IntN(3) == 0 {
			tg.Options.Watchdog = 15 * time.Second
		}
		desc += fmt.Sprintf(" [%s] -> %s repl=%v wd=%s", st.Mode, to, withRepl, tg.Options.Watchdog)

		tg.Options.AllowSafeMode = rng.IntN(2) == 0
		pl, err := Make(st, tg)
		if errors.Is(err, ErrEndsSafe) {
			// Predicted to end in safe mode, and nobody said yes to that.
			require.False(t, tg.Options.AllowSafeMode, "%s: %v", desc, err)
			require.Equal(t, state.ModeSafe, pl.End.Mode, desc)
			counts["refused: ends safe"]++
			continue
		}
		if err != nil {
			// Without a replacement app, a device whose app the target cannot run is refused.
			require.True(t, !withRepl && errors.Is(err, ErrDependency), "%s: %v", desc, err)
			counts["refused"]++
			continue
		}
		counts[pl.Direction.String()]++
		ok := t.Run(fmt.Sprint(i), func(t *testing.T) {
			checkSafety(t, st, pl)
			if tg.Options.Watchdog > 0 {
				for _, s := range pl.Steps {
					if s.Window > 0 && s.Kind != KindEnterMode {
						assert.LessOrEqual(t, s.Estimate, tg.Options.Watchdog-enterDFUTime, s.ID)
					}
				}
			}
			// Every target module is on the device afterwards, at its version.
			for _, m := range tg.Modules {
				found := false
				for _, in := range pl.Expected() {
					if in.Function == m.Function && in.Index == m.Index {
						found = true
						assert.Equal(t, m.Version, in.Version, "%s", m.SlotName())
					}
				}
				assert.True(t, found, "%s missing from Expect", m.SlotName())
			}
		})
		if !ok {
			t.Logf("%s\n%s", desc, pl)
		}
	}
	t.Logf("%d cases: %v", n, counts)
}
