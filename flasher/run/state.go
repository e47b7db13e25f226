package run

import (
	"context"
	"fmt"

	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// ModuleJSON is one module in the shape `pflash inspect --device ID --json` prints, so a
// script reads the end of a flash the same way it reads an inspection.
type ModuleJSON struct {
	Function     string           `json:"function"`
	Index        uint8            `json:"index"`
	Name         string           `json:"name,omitempty"`
	Version      uint16           `json:"version"`
	DeviceOS     string           `json:"device_os"`
	Description  string           `json:"description,omitempty"`
	Location     string           `json:"location"`
	Present      bool             `json:"present"`
	Valid        bool             `json:"valid"`
	Checks       device.Checks    `json:"checks"`
	Unchecked    []string         `json:"unchecked,omitempty"`
	Dependencies []DependencyJSON `json:"dependencies"`
	Problem      string           `json:"problem,omitempty"`
	Source       string           `json:"source"`
}

// DependencyJSON is one dependency of a ModuleJSON.
type DependencyJSON struct {
	Function string `json:"function"`
	Index    uint8  `json:"index"`
	Version  uint16 `json:"version"`
	Met      bool   `json:"met"`
	Unknown  bool   `json:"unknown,omitempty"`
}

// ModulesJSON converts module readings to their JSON shape.
func ModulesJSON(mods []device.ModuleStatus) []ModuleJSON {
	out := make([]ModuleJSON, 0, len(mods))
	for _, m := range mods {
		mj := ModuleJSON{Function: m.Function.String(), Index: m.Index, Name: m.Name, Version: m.Version, DeviceOS: m.DeviceOS,
			Description: m.Description, Location: m.Location, Present: m.Present, Valid: m.Valid, Checks: m.Checks,
			Unchecked: m.Unchecked, Dependencies: []DependencyJSON{}, Problem: m.Problem, Source: m.Source}
		for _, d := range m.Dependencies {
			mj.Dependencies = append(mj.Dependencies, DependencyJSON{Function: d.Function.String(), Index: d.Index, Version: d.Version, Met: d.Met, Unknown: d.Unknown})
		}
		out = append(out, mj)
	}
	return out
}

// Reading is what the runner learnt by reading a device: its mode (safe mode told from
// the module table), the modules in the door's own words, and the planner's view.
type Reading struct {
	Mode    plan.Mode
	Modules []device.ModuleStatus
	State   plan.DeviceState
}

// readState reads the device's modules through the link: DfuSe UPLOAD of every slot in DFU
// mode (CRCs verified, so a half-written slot shows as corrupt), control request 90 when
// Device OS runs, and listening mode's `s` when the control request is not answered.
func readState(ctx context.Context, l Link) (*Reading, error) {
	p := l.Platform()
	if p == nil {
		return nil, remedy.With(fmt.Errorf("run: the device %s is a platform this version does not know", l.ID()), "update the flasher")
	}
	rd := &Reading{Mode: l.Mode()}
	switch rd.Mode {
	case plan.ModeDFU:
		c, layout, err := l.DFU(ctx, 0)
		if err != nil {
			return nil, fmt.Errorf("open the DFU interface to read the modules: %w", err)
		}
		slots, err := dfu.ReadModules(ctx, c, p, layout)
		if err != nil {
			return nil, remedy.With(fmt.Errorf("read the modules over DFU: %w", err), dfu.Remedy)
		}
		rd.Modules = device.FromDFU(p, slots)
		rd.State = plan.DeviceState{Platform: p, Mode: plan.ModeDFU, Modules: installedFromDFU(p, slots)}
		return rd, nil
	default:
		infos, err := l.Ctrl().ModuleInfo(ctx)
		if err == nil {
			rd.Modules = device.FromControl(p, infos)
			if v, err := l.Ctrl().SystemVersion(ctx); err == nil {
				rd.State.DeviceOS = v
			}
		} else {
			con, done, cerr := l.Console(ctx)
			if cerr != nil {
				return nil, fmt.Errorf("read the modules (control request 90): %w", err)
			}
			defer done()
			si, serr := con.ModuleInfo(ctx)
			if serr != nil {
				return nil, fmt.Errorf("read the modules (control request 90: %v; listening mode `s`): %w", err, serr)
			}
			rd.Modules = device.FromSerial(p, si)
		}
		if rd.Mode == plan.ModeNormal && runsSafe(p, rd.Modules) {
			rd.Mode = plan.ModeSafe
		}
		rd.State.Platform, rd.State.Mode = p, rd.Mode
		rd.State.Modules = installedFromStatus(p, rd.Modules)
		return rd, nil
	}
}

// runsSafe tells safe mode from normal mode by what Device OS itself reports: a module
// whose checks failed, or no intact application, is what makes it hold the app back
// (reference §6a). USB shows both modes the same.
func runsSafe(p *platform.Platform, mods []device.ModuleStatus) bool {
	app := false
	for _, m := range mods {
		if !m.Present || m.Location != "main" {
			continue
		}
		if len(m.Failed()) > 0 {
			return true
		}
		if m.Function == platform.FuncUser && m.Valid {
			app = true
		}
	}
	return !app
}

// intact is the planner's idea of a valid module: its own integrity, range and platform
// checks pass. A failed dependency does not make the module itself broken.
func intact(m device.ModuleStatus) bool {
	for _, f := range m.Failed() {
		if f != "dependencies" {
			return false
		}
	}
	return m.Present
}

// installedFromStatus converts a reading by Device OS (control request or `s`) into the
// planner's terms. Device OS does not say where a module starts, so the slot's start is
// used: the planner needs it to see which modules a write overlaps.
func installedFromStatus(p *platform.Platform, mods []device.ModuleStatus) []plan.Installed {
	var out []plan.Installed
	for _, m := range mods {
		if !m.Present || m.Location != "main" {
			continue
		}
		in := plan.Installed{Function: m.Function, Index: m.Index, Version: m.Version, Size: m.Size, Valid: intact(m), Start: m.Address}
		if in.Start == 0 {
			if s, ok := p.SlotFor(m.Function, m.Index, m.Version); ok && s.Storage != platform.StorageNCP {
				in.Start = s.StartFor(m.Size)
			}
		}
		for _, d := range m.Dependencies {
			in.Deps = append(in.Deps, moduleDep(d))
		}
		out = append(out, in)
	}
	return out
}

// installedFromDFU converts a DFU reading, keeping the stored CRC so that a module of the
// same version but another build is not taken for the target's.
func installedFromDFU(p *platform.Platform, slots []dfu.SlotModule) []plan.Installed {
	var out []plan.Installed
	for _, s := range slots {
		if s.Location != dfu.LocationMain {
			continue
		}
		switch s.State {
		case dfu.SlotPresent, dfu.SlotCorrupt:
		default:
			continue
		}
		valid := s.State == dfu.SlotPresent && s.Checks.Range && s.Checks.Platform && (s.Checks.Integrity || !s.IntegrityChecked)
		in := plan.Installed{Function: s.Function, Index: s.Index, Version: s.Version, Start: s.Address, Size: s.Size,
			Valid: valid, Deps: s.Dependencies}
		if s.Module != nil && s.IntegrityChecked {
			in.CRC = s.Module.StoredCRC
		}
		out = append(out, in)
	}
	return out
}

func moduleDep(d device.Dependency) module.Dependency {
	return module.Dependency{Function: d.Function, Index: d.Index, Version: d.Version}
}

// modeName is the mode as events spell it.
func modeName(m plan.Mode) string {
	if m == plan.ModeUnknown {
		return ""
	}
	return m.String()
}

// deviceOS names the Device OS release the modules show ("" when none).
func deviceOS(mods []device.ModuleStatus) string {
	best, ver := "", uint16(0)
	for _, m := range mods {
		if m.Present && m.Location == "main" && (m.Function == platform.FuncSystem || m.Function == platform.FuncMono) && m.DeviceOS != "" && m.Version >= ver {
			best, ver = m.DeviceOS, m.Version
		}
	}
	return best
}
