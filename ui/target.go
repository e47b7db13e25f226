package ui

import (
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	cache "github.com/particle-flasher/particle-flasher/firmware-cache"
	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
)

// targetSection is the first part of points 3 and 4 of the app: pick a Device OS version
// from the catalog and preview the plan, without running it. Running (progress, LED
// guidance, result card) plugs in here once flasher/run's API is settled; Start is
// therefore absent, not disabled-without-reason.
type targetSection struct {
	m        *mainUI
	d        device.Device
	releases []*cache.Release
	picker   *widget.Select
	preview  *widget.Label
	obj      fyne.CanvasObject
}

// releaseLabel names a release in the picker with its markings in words.
func releaseLabel(r *cache.Release) string {
	var tags []string
	if r.Latest {
		tags = append(tags, "latest")
	}
	if r.LatestLTS {
		tags = append(tags, "latest LTS")
	} else if r.LTS {
		tags = append(tags, "LTS")
	}
	if r.Prerelease {
		tags = append(tags, "prerelease")
	}
	if r.Deprecated {
		tags = append(tags, "deprecated")
	}
	if len(tags) == 0 {
		return r.Version
	}
	return r.Version + " (" + strings.Join(tags, ", ") + ")"
}

// newTargetSection builds the picker for a device; nil when the catalog cannot be read.
func newTargetSection(m *mainUI, d device.Device) fyne.CanvasObject {
	t := &targetSection{m: m, d: d, preview: widget.NewLabel("")}
	t.preview.Wrapping = fyne.TextWrapWord
	t.preview.TextStyle = fyne.TextStyle{Monospace: true}
	title := widget.NewLabelWithStyle("Upgrade, downgrade or rescue", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	if d.Platform == nil {
		return container.NewVBox(title, widget.NewLabel("The platform is unknown: the device cannot be planned for."))
	}
	cat, err := cache.Embedded()
	if err != nil {
		return container.NewVBox(title, widget.NewLabel("The firmware catalog cannot be read: "+err.Error()))
	}
	t.releases = cat.Releases(d.Platform.Name) // newest first
	var labels []string
	for _, r := range t.releases {
		labels = append(labels, releaseLabel(r))
	}
	t.picker = widget.NewSelect(labels, func(s string) {
		for i, l := range labels {
			if l == s {
				t.showPlan(t.releases[i])
				return
			}
		}
	})
	t.picker.PlaceHolder = "Choose a Device OS version..."
	t.obj = container.NewVBox(title, widget.NewLabel("Target Device OS:"), t.picker, t.preview)
	return t.obj
}

// showPlan previews the plan for release r. Module files come from the firmware cache on
// real hardware, which the app does not download yet; a virtual device is planned with the
// simulator's synthetic release of that version, so the demo shows a real plan.
func (t *targetSection) showPlan(r *cache.Release) {
	if cur, ok := t.m.devices[t.d.Key]; ok {
		t.d = cur // the device may have changed mode or been read again since
	}
	virtual := false
	for _, doorRef := range t.d.Doors {
		if doorRef.Path == "virtual" {
			virtual = true
		}
	}
	if !virtual {
		t.preview.SetText("Planning " + r.Version + " needs its files in the firmware cache: run `pflash cache fetch " +
			r.Version + " --platform " + t.d.Platform.Name + "`, then `pflash plan`. The app will fetch them itself with the runner.")
		return
	}
	p, err := planFor(t.d, r.Version)
	if err != nil {
		t.preview.SetText("No plan: " + err.Error())
		return
	}
	t.preview.SetText(p.String())
}

// planFor plans a virtual device to a synthetic release of version.
func planFor(d device.Device, version string) (*plan.Plan, error) {
	bins, err := sim.SyntheticSet(d.Platform, version)
	if err != nil {
		return nil, err
	}
	var tgt plan.Target
	tgt.Name = version
	for _, b := range bins {
		m, err := module.Parse(b)
		if err != nil {
			return nil, err
		}
		tgt.Modules = append(tgt.Modules, m)
	}
	return plan.Make(stateOf(d), tgt)
}

// stateOf is what the planner needs to know of a device, from the watcher's reading.
// flasher/run has the same conversion unexported (installedFromStatus); this copy goes
// once it is exported.
func stateOf(d device.Device) plan.DeviceState {
	mode, ok := plan.ParseMode(string(d.Mode))
	if !ok {
		mode = plan.ModeUnknown
	}
	st := plan.DeviceState{Platform: d.Platform, Mode: mode}
	for _, m := range d.Modules {
		if !m.Present || m.Location != "main" {
			continue
		}
		in := plan.Installed{Function: m.Function, Index: m.Index, Version: m.Version, Size: m.Size, Start: m.Address,
			Valid: m.Checks.Integrity || containsStr(m.Unchecked, "integrity")}
		if in.Start == 0 {
			if s, ok := d.Platform.SlotFor(m.Function, m.Index, m.Version); ok && s.Storage != platform.StorageNCP {
				in.Start = s.StartFor(m.Size)
			}
		}
		for _, dep := range m.Dependencies {
			in.Deps = append(in.Deps, module.Dependency{Function: dep.Function, Index: dep.Index, Version: dep.Version})
		}
		st.Modules = append(st.Modules, in)
	}
	return st
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
