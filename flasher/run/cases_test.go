package run_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	cache "github.com/particle-flasher/particle-flasher/firmware-cache"
	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	synth "github.com/particle-flasher/particle-flasher/flasher/sim/releases"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// The cases the "one model of the device" issue was filed with, each on the virtual
// device, with real binaries from ../shared where they exist and releases built from the
// header dumps elsewhere.

// catalogRelease is a release of the embedded catalog, built from its header dump.
func catalogRelease(t testing.TB, plat, version string) *synth.Set {
	t.Helper()
	cat, err := cache.Embedded()
	require.NoError(t, err)
	r, err := cat.Release(version, plat)
	require.NoError(t, err)
	s, err := synth.Build(r)
	require.NoError(t, err)
	return s
}

// without lists a release's Device OS parts except the named ones.
func without(s *synth.Set, names ...string) []*module.Module {
	var out []*module.Module
	for _, f := range s.OS {
		skip := false
		for _, n := range names {
			skip = skip || f.Name == n
		}
		if !skip {
			out = append(out, f.Module)
		}
	}
	return out
}

// TestTrackerNeedsItsNCP: a Tracker at 2.3.0 (whose ESP32 runs NCP firmware 5) upgraded to
// 4.1.0 with a folder holding the bootloader, SoftDevice and system-part1 but not the NCP
// firmware 4.1.0's system-part1 needs (>= 7): refused before anything is written, the NCP
// file asked for by name. With the NCP file (part of the release) it ends normal at 4.1.0.
func TestTrackerNeedsItsNCP(t *testing.T) {
	from := catalogRelease(t, "tracker", "2.3.0")
	to := catalogRelease(t, "tracker", "4.1.0")
	d, err := sim.New(sim.Options{Platform: plat(t, "tracker"), Modules: from.Bytes(true)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	require.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
	before := flashDigest(d)

	rec := &recorder{}
	r := newRunner(t, demo.New(true, d), rec, run.Options{})
	tgt := plan.Target{Modules: without(to, "ncp"), ReplacementApp: to.App.Module}
	_, err = r.Flash(testCtx(t, time.Minute), d.ID(), tgt)
	require.Error(t, err)
	assert.ErrorIs(t, err, plan.ErrDependency)
	assert.Contains(t, err.Error(), "needs NCP firmware 7 or newer")
	assert.Contains(t, err.Error(), "the version of the NCP firmware cannot be read")
	assert.Contains(t, remedy.Of(err), "Give that part's file too")
	assert.Equal(t, before, flashDigest(d), "nothing was written")
	assert.Equal(t, sim.ModeNormal, d.Mode())

	tgt.Modules = to.Modules()
	res, err := r.Flash(testCtx(t, time.Minute), d.ID(), tgt)
	require.NoError(t, err, rec.names())
	assert.Equal(t, state.ModeNormal, res.Plan.End.Mode)
	assert.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
	assert.Equal(t, "4.1.0", d.SystemVersion())
	ncp := false
	for _, m := range d.Modules() {
		if m.Function == platform.FuncNCP {
			ncp = true
			assert.Equal(t, uint16(7), m.Version)
		}
	}
	assert.True(t, ncp, "the NCP is listed once Device OS knows it")
}

// argonWithBigApp is an Argon at 4.1.0 (real binaries) whose 256 KB application at
// 0xB4000 needs Device OS 5.5.0: it starts in safe mode.
func argonWithBigApp(t *testing.T) (*sim.Device, *module.Module) {
	t.Helper()
	p := plat(t, "argon")
	sl, ok := p.Slot(platform.FuncUser, 2)
	require.True(t, ok)
	spec, err := module.SpecForSlot(p, sl, 6, module.Dependency{Function: platform.FuncSystem, Index: 1, Version: 5501})
	require.NoError(t, err)
	spec.Size = 160 * 1024 // longer than 128 KB: its code runs on past 0xD4000
	b, err := module.Build(spec)
	require.NoError(t, err)
	app, err := module.Parse(b)
	require.NoError(t, err)
	mods := append(append([][]byte(nil), lookupRelease("argon/4.1.0").bins(t)...), b)
	d, err := sim.New(sim.Options{Platform: p, Modules: mods, DeviceID: newID()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	require.Equal(t, sim.ModeSafe, d.Mode())
	require.Contains(t, d.Status().Reason, "5501")
	return d, app
}

// TestArgonBigAppHealedBothWays: an Argon in safe mode because its 256 KB application
// needs a newer Device OS is healed either by the application Device OS then runs
// (Tinker in the 128 KB slot, which Device OS checks first) while Device OS stays at
// 4.1.0, or by upgrading Device OS to what the application needs, which keeps it. The heal
// options say both, the one that keeps the application first.
func TestArgonBigAppHealedBothWays(t *testing.T) {
	t.Run("options", func(t *testing.T) {
		d, _ := argonWithBigApp(t)
		rd := readSim(t, d)
		require.Equal(t, state.CauseAppNeeds, rd.Boot().Cause)
		assert.Equal(t, "the application needs Device OS 5.5.0; system-part1 is 4.1.0", rd.Boot().Why)
		heals := plan.Heals(rd)
		require.Len(t, heals, 2)
		assert.Equal(t, plan.HealUpgrade, heals[0].Kind)
		assert.Equal(t, "5.5.0", heals[0].DeviceOS)
		assert.Contains(t, heals[0].Title, "keeps your application")
		assert.Equal(t, plan.HealReplaceApp, heals[1].Kind)
		assert.Equal(t, "4.1.0", heals[1].DeviceOS)
	})
	t.Run("replace the application", func(t *testing.T) {
		d, _ := argonWithBigApp(t)
		rec := &recorder{}
		r := newRunner(t, demo.New(true, d), rec, run.Options{})
		tinker, err := module.Parse(readShared(t, "apps", "argon_tinker_tinker-0.8.0-rc.27-argon.bin"))
		require.NoError(t, err)
		require.Equal(t, uint32(0xD4000), tinker.Start, "the 128 KB Tinker")
		tgt := lookupRelease("argon/4.1.0").target(t)
		tgt.ReplacementApp = tinker
		res, err := r.Flash(testCtx(t, time.Minute), d.ID(), tgt)
		require.NoError(t, err, rec.names())
		assert.Equal(t, state.ModeNormal, res.Plan.End.Mode)
		assert.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
		assert.Equal(t, "4.1.0", d.SystemVersion())
	})
	t.Run("replace it with the release's Tinker at 0xB4000", func(t *testing.T) {
		d, _ := argonWithBigApp(t)
		rec := &recorder{}
		r := newRunner(t, demo.New(true, d), rec, run.Options{})
		tgt := lookupRelease("argon/4.1.0").target(t)
		tgt.ReplacementApp = catalogRelease(t, "argon", "4.1.0").App.Module
		_, err := r.Flash(testCtx(t, time.Minute), d.ID(), tgt)
		require.NoError(t, err, rec.names())
		assert.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
	})
	t.Run("upgrade Device OS to what the application needs", func(t *testing.T) {
		d, app := argonWithBigApp(t)
		rec := &recorder{}
		r := newRunner(t, demo.New(true, d), rec, run.Options{})
		to := catalogRelease(t, "argon", "5.5.0")
		tgt := plan.Target{Name: "5.5.0", Modules: to.Modules(), ReplacementApp: to.App.Module}
		res, err := r.Flash(testCtx(t, time.Minute), d.ID(), tgt)
		require.NoError(t, err, rec.names())
		assert.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
		assert.Equal(t, "5.5.0", d.SystemVersion())
		kept := false
		for _, m := range d.Modules() {
			if m.Function == platform.FuncUser && m.Present {
				kept = kept || m.SHA256 != nil && string(m.SHA256) == string(app.SHA256)
			}
		}
		assert.True(t, kept, "the person's application still runs")
		for _, s := range res.Plan.Writes() {
			assert.NotEqual(t, platform.FuncUser, s.Module.Function, "the application is not replaced")
		}
	})
}

// TestBoronDowngrade650To152: a Boron at 6.5.0 (system-part1 at 0x28000, bootloader 3301)
// goes down to 1.5.2, from normal and from DFU mode: the 1.5.2 system-part1 written at
// 0x30000 breaks the 6.5.0 one at 0x28000, so the 6.x bootloader falls back to 0x30000; the
// 1.5.2 bootloader is staged where Device OS 1.5.2 looks for it (0x80289000, not 6.5.0's
// 0x8024C000), and the device ends normal at 1.5.2 as predicted.
func TestBoronDowngrade650To152(t *testing.T) {
	for _, mode := range []sim.Mode{sim.ModeNormal, sim.ModeDFU} {
		t.Run(mode.String(), func(t *testing.T) {
			from := catalogRelease(t, "boron", "6.5.0")
			d, err := sim.New(sim.Options{Platform: plat(t, "boron"), Modules: from.Bytes(true), Mode: mode})
			require.NoError(t, err)
			t.Cleanup(func() { _ = d.Close() })
			require.Equal(t, mode, d.Mode(), d.Status().Reason)
			rec := &recorder{}
			r := newRunner(t, demo.New(true, d), rec, run.Options{})
			tgt := lookupRelease("boron/1.5.2").target(t)
			tgt.ReplacementApp = catalogRelease(t, "boron", "1.5.2").App.Module
			res, err := r.Flash(testCtx(t, time.Minute), d.ID(), tgt)
			require.NoError(t, err, rec.names())
			assert.Equal(t, state.ModeNormal, res.Plan.End.Mode)
			assert.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
			assert.Equal(t, "1.5.2", d.SystemVersion())
			requireAt(t, d, tgt)
		})
	}
}

// readSim reads a virtual device as the runner does (control request 90 and friends).
func readSim(t *testing.T, d *sim.Device) state.Device {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	l, err := demo.New(true, d).Find(ctx, d.ID())
	require.NoError(t, err)
	defer l.Close()
	rd, err := device.ReadControl(ctx, l.Ctrl(), d.Platform(), state.ModeNormal)
	require.NoError(t, err)
	return rd
}

// TestBoronDowngradeWipesTheOldSystemPart: the same downgrade from a 6.5.0 whose
// system-part1 is small enough to stay intact beside the new one (the demo's builder
// parts): the 6.x bootloader would still find it at 0x28000 first, so the plan wipes its
// header sector, and the device ends normal at 1.5.2. (The app's demo failed here before:
// the 6.5.0 part kept running and looked for the staged bootloader in its own OTA region.)
func TestBoronDowngradeWipesTheOldSystemPart(t *testing.T) {
	set, err := sim.SyntheticSet(plat(t, "boron"), "6.5.0")
	require.NoError(t, err)
	d, err := sim.New(sim.Options{Platform: plat(t, "boron"), Modules: set, DeviceID: newID()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	require.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
	rec := &recorder{}
	r := newRunner(t, demo.New(true, d), rec, run.Options{})
	tgt := lookupRelease("boron/1.5.2").target(t)
	tgt.ReplacementApp = catalogRelease(t, "boron", "1.5.2").App.Module
	res, err := r.Flash(testCtx(t, time.Minute), d.ID(), tgt)
	require.NoError(t, err, rec.names())
	wiped := false
	for _, s := range res.Plan.Steps {
		wiped = wiped || s.Kind == plan.KindInvalidate && s.Address == 0x28000
	}
	assert.True(t, wiped, "the 6.5.0 system-part1's header sector is wiped")
	assert.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
	assert.Equal(t, "1.5.2", d.SystemVersion())
	requireAt(t, d, tgt)
}

// TestVerifyMismatchOffersNoRetry: a device that differs from the plan's prediction after
// a run is reported as that, naming the module, and the remedy does not say to try again.
func TestVerifyMismatchOffersNoRetry(t *testing.T) {
	err := remedy.With(&run.MismatchError{Problems: []string{"system-part1: predicted version 4100, the device has 2302"}}, "x")
	assert.False(t, run.Transient(err))
	assert.True(t, errors.Is(err, run.ErrVerify))
	assert.True(t, run.Transient(run.ErrGone))
	assert.False(t, run.Transient(plan.ErrEndsSafe))
}

// TestNCPVersionWhereDeviceOSSaysIt: the NCP firmware's version is read where Device OS
// can say it: an Argon answers request 31 and lists it in its module table; a Tracker
// lists it from 3.0.0 on, and before that (2.3.0) neither lists it nor answers 31, so a
// reading leaves it unread rather than missing.
func TestNCPVersionWhereDeviceOSSaysIt(t *testing.T) {
	for _, tc := range []struct {
		plat, version string
		sees          bool
	}{{"argon", "4.1.0", true}, {"tracker", "4.1.0", true}, {"tracker", "2.3.0", false}} {
		t.Run(tc.plat+" "+tc.version, func(t *testing.T) {
			set := catalogRelease(t, tc.plat, tc.version)
			d, err := sim.New(sim.Options{Platform: plat(t, tc.plat), Modules: set.Bytes(true), NCPVersion: 7, DeviceID: newID()})
			require.NoError(t, err)
			t.Cleanup(func() { _ = d.Close() })
			ctx := testCtx(t, 10*time.Second)
			l, err := demo.New(true, d).Find(ctx, d.ID())
			require.NoError(t, err)
			defer l.Close()
			v, err := l.Ctrl().NCPFirmwareVersion(ctx)
			rd := readSim(t, d)
			m, listed := rd.Main(platform.FuncNCP, 0)
			if tc.sees {
				require.NoError(t, err)
				assert.Equal(t, uint32(7), v.ModuleVersion)
				require.True(t, listed)
				assert.Equal(t, uint16(7), m.Version)
				assert.True(t, rd.Sees(platform.FuncNCP))
				return
			}
			assert.Error(t, err, "Device OS 2.x on a Tracker does not support request 31")
			assert.False(t, listed)
			assert.False(t, rd.Sees(platform.FuncNCP), "unread, not missing")
		})
	}
}
