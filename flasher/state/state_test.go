package state_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

func plat(t *testing.T, name string) *platform.Platform {
	t.Helper()
	p, ok := platform.ByName(name)
	require.True(t, ok, name)
	return p
}

func dep(fn platform.Function, idx uint8, v uint16) module.Dependency {
	return module.Dependency{Function: fn, Index: idx, Version: v}
}

// build makes a module for the slot of fn/idx at version v.
func build(t *testing.T, p *platform.Platform, fn platform.Function, idx uint8, v uint16, deps ...module.Dependency) *module.Module {
	t.Helper()
	sl, ok := p.SlotFor(fn, idx, v)
	require.True(t, ok, "%s has no slot %s/%d for %d", p.Name, fn, idx, v)
	b, err := module.BuildForSlot(p, sl, v, deps...)
	require.NoError(t, err)
	m, err := module.Parse(b)
	require.NoError(t, err)
	return m
}

// gen3 is a Device OS set for a Gen3 platform: bootloader, system-part1 needing it and
// the SoftDevice, the SoftDevice itself.
func gen3(t *testing.T, p *platform.Platform, sys, boot uint16) []*module.Module {
	return []*module.Module{
		build(t, p, platform.FuncBootloader, 0, boot),
		build(t, p, platform.FuncSystem, 1, sys, dep(platform.FuncBootloader, 0, boot), dep(platform.FuncRadio, 0, 202)),
		build(t, p, platform.FuncRadio, 0, 202),
	}
}

func TestBootReasons(t *testing.T) {
	argon := plat(t, "argon")
	os402 := gen3(t, argon, 4006, 1101)

	t.Run("no application", func(t *testing.T) {
		d := state.FromFiles(argon, state.ModeNormal, os402)
		b := d.Boot()
		assert.Equal(t, state.ModeSafe, b.Mode)
		assert.Equal(t, state.CauseNoApp, b.Cause)
		assert.Equal(t, "safe mode: there is no application", b.String())
	})
	t.Run("app needs a newer Device OS", func(t *testing.T) {
		app := build(t, argon, platform.FuncUser, 2, 6, dep(platform.FuncSystem, 1, 5501))
		d := state.FromFiles(argon, state.ModeNormal, append(os402, app))
		b := d.Boot()
		assert.Equal(t, state.ModeSafe, b.Mode)
		assert.Equal(t, state.CauseAppNeeds, b.Cause)
		assert.Equal(t, "safe mode: the application needs Device OS 5.5.0; system-part1 is 4.0.2", b.String())
		require.NotNil(t, b.Need)
		assert.Equal(t, uint16(5501), b.Need.Version)
	})
	t.Run("app fine", func(t *testing.T) {
		app := build(t, argon, platform.FuncUser, 2, 6, dep(platform.FuncSystem, 1, 4006))
		d := state.FromFiles(argon, state.ModeNormal, append(os402, app))
		assert.Equal(t, state.Boot{Mode: state.ModeNormal}, d.Boot())
	})
	t.Run("no system part", func(t *testing.T) {
		d := state.FromFiles(argon, state.ModeDFU, os402[:1])
		b := d.Boot()
		assert.Equal(t, state.ModeDFU, b.Mode)
		assert.Equal(t, state.CauseNoSystem, b.Cause)
	})
	t.Run("system part lacks the SoftDevice", func(t *testing.T) {
		d := state.FromFiles(argon, state.ModeDFU, os402[:2])
		b := d.Boot()
		assert.Equal(t, state.ModeDFU, b.Mode)
		assert.Equal(t, state.CauseSystemBroken, b.Cause)
		assert.Contains(t, b.Why, "needs SoftDevice S140 7.0.1 or newer; there is no SoftDevice")
	})
}

func TestBootNCP(t *testing.T) {
	tracker := plat(t, "tracker")
	mods := []*module.Module{
		build(t, tracker, platform.FuncBootloader, 0, 1200),
		build(t, tracker, platform.FuncSystem, 1, 4100, dep(platform.FuncBootloader, 0, 1200), dep(platform.FuncNCP, 0, 7)),
		build(t, tracker, platform.FuncRadio, 0, 202),
		build(t, tracker, platform.FuncUser, 2, 6, dep(platform.FuncSystem, 1, 3201)),
	}
	t.Run("NCP not read", func(t *testing.T) {
		d := state.FromFiles(tracker, state.ModeDFU, mods)
		assert.Equal(t, state.ModeNormal, d.Boot().Mode, "an unreadable NCP counts as met")
		w := d.BootWary()
		assert.Equal(t, state.ModeSafe, w.Mode)
		assert.Equal(t, "system-part1 4100 needs NCP firmware 7 or newer; the version of the NCP firmware cannot be read in DFU mode", w.Why)
	})
	t.Run("NCP too old", func(t *testing.T) {
		ncp := build(t, tracker, platform.FuncNCP, 0, 5)
		d := state.FromFiles(tracker, state.ModeNormal, append(mods, ncp))
		b := d.Boot()
		assert.Equal(t, state.ModeSafe, b.Mode)
		assert.Equal(t, state.CauseNeeds, b.Cause)
		assert.Equal(t, "system-part1 4100 needs NCP firmware 7 or newer; the NCP firmware is 5", b.Why)
	})
	t.Run("NCP new enough", func(t *testing.T) {
		ncp := build(t, tracker, platform.FuncNCP, 0, 7)
		d := state.FromFiles(tracker, state.ModeNormal, append(mods, ncp))
		assert.Equal(t, state.ModeNormal, d.Boot().Mode)
	})
}

// TestWriteKeepsTheOtherUserSlot: writing an application into one Gen3 user slot leaves
// the other slot's application where it is; which one runs is RunningApp's decision.
func TestWriteKeepsTheOtherUserSlot(t *testing.T) {
	argon := plat(t, "argon")
	big := build(t, argon, platform.FuncUser, 2, 6, dep(platform.FuncSystem, 1, 5501))
	d := state.FromFiles(argon, state.ModeNormal, append(gen3(t, argon, 4006, 1101), big))
	tinker := state.FromFile(argon, build(t, argon, platform.FuncUser, 1, 6, dep(platform.FuncSystem, 1, 4006)))
	d.Write(tinker)
	var users []uint8
	for _, m := range d.Installed() {
		if m.Function == platform.FuncUser {
			users = append(users, m.Index)
		}
	}
	assert.Equal(t, []uint8{1, 2}, users)
	app, ok := d.RunningApp()
	require.True(t, ok)
	assert.Equal(t, uint8(1), app.Index)
	assert.Equal(t, state.ModeNormal, d.Boot().Mode)

	d.Invalidate(tinker.Start, 4096)
	_, ok = d.RunningApp()
	assert.False(t, ok, "the 256 KB app needs Device OS 5.5.0: nothing runs")
	b := d.Boot()
	assert.Equal(t, state.CauseAppNeeds, b.Cause)
	assert.Equal(t, uint8(2), b.Module.Index)
}

func TestModuleJSONRoundTrip(t *testing.T) {
	argon := plat(t, "argon")
	d := state.FromFiles(argon, state.ModeNormal, gen3(t, argon, 4006, 1101))
	b, err := json.Marshal(d.Modules)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"function":"system"`)
	var back []state.Module
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, d.Modules, back)
}

func TestModeText(t *testing.T) {
	for _, m := range []state.Mode{state.ModeUnknown, state.ModeNormal, state.ModeListening, state.ModeSafe, state.ModeDFU} {
		b, err := m.MarshalText()
		require.NoError(t, err)
		var back state.Mode
		require.NoError(t, back.UnmarshalText(b))
		assert.Equal(t, m, back)
	}
	m, ok := state.ParseMode("Safe mode")
	assert.True(t, ok)
	assert.Equal(t, state.ModeSafe, m)
}
