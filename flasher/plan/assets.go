package plan

import (
	"fmt"
	"strings"

	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// assetsSince is the first system module version that stores assets (Device OS 5.5.0:
// HAL_PLATFORM_ASSETS, CHANGELOG "Asset OTA #2668").
const assetsSince = 5500

// ErrMissingAsset: the application needs an asset that is neither on the device nor among
// the target's files.
var ErrMissingAsset = fmt.Errorf("%w: a missing asset", ErrDependency)

// assetPlan decides the asset writes: every asset the application that will run needs
// and the device does not hold, from the target's asset files, written after the
// application by control request (Device OS stores an asset module in its asset file
// system and restarts, ota_flash_hal.cpp HAL_FLASH_End; particle-cli writes them last and
// skips those the device holds with the same hash). An asset the application needs that
// nobody has is asked for by name before anything is written.
func assetPlan(p *platform.Platform, initial, final state.Device, given []*module.Module) (items []*item, skipped []Skip, notes, warn []string, err error) {
	app, ok := final.RunningApp()
	var need []module.Asset
	if ok {
		need = app.Assets
	}
	byName := map[string]*module.Module{}
	for _, m := range given {
		if a, ok := m.Asset(); ok {
			byName[a.Name] = m
		}
	}
	used := map[string]bool{}
	if len(need) > 0 && final.SystemVersion() != 0 && final.SystemVersion() < assetsSince {
		return nil, nil, nil, nil, fail(ErrDependency, "Choose Device OS 5.5.0 or newer for this application.",
			"the application needs %s, but Device OS %s cannot store assets (5.5.0 and newer can)", assetNames(need), final.DeviceOSName())
	}
	for _, a := range need {
		m, have := byName[a.Name]
		if have {
			used[a.Name] = true
		}
		switch {
		case initial.AssetsKnown && initial.HasAsset(a):
			if have {
				skipped = append(skipped, Skip{Module: m, Slot: "asset " + a.Name, Why: "already on the device, with the same SHA-256"})
			}
		case have:
			if got, _ := m.Asset(); got.Hash != a.Hash {
				return nil, nil, nil, nil, fail(ErrMissingAsset, "Give the asset files the application was built with (its .zip bundle's assets/ folder).",
					"the asset %q among the files is not the one the application needs: its SHA-256 is %s, the application's %s", a.Name, short(got.Hash), short(a.Hash))
			}
			in := state.FromFile(p, m)
			slot := platform.Slot{Name: "asset " + a.Name, Function: platform.FuncAsset}
			it := &item{m: m, slot: slot, key: keyOf(platform.FuncAsset, 0), inst: in, method: platform.MethodControl,
				why: fmt.Sprintf("The application needs the asset %q, which the device does not hold.", a.Name)}
			items = append(items, it)
		case initial.AssetsKnown:
			return nil, nil, nil, nil, fail(ErrMissingAsset, fmt.Sprintf("Give the asset file %q too (particle-cli's .zip bundle of the application holds it in assets/).", a.Name),
				"the application needs the asset %q (SHA-256 %s), which is neither on the device nor among the files", a.Name, short(a.Hash))
		default:
			warn = append(warn, fmt.Sprintf("The application needs the asset %q, which is not among the files, and the device's assets cannot be read now; if it lacks it, the application runs without it.", a.Name))
		}
	}
	var unused []string
	for name := range byName {
		if !used[name] {
			unused = append(unused, name)
		}
	}
	if len(unused) > 0 {
		notes = append(notes, fmt.Sprintf("left out the asset files %s: the application that will run does not use them", strings.Join(unused, ", ")))
	}
	return items, skipped, notes, warn, nil
}

func assetNames(as []module.Asset) string {
	var names []string
	for _, a := range as {
		names = append(names, fmt.Sprintf("%q", a.Name))
	}
	if len(names) == 1 {
		return "the asset " + names[0]
	}
	return "the assets " + strings.Join(names, ", ")
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12] + "…"
	}
	return hash
}
