package state

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// Where a Module reading comes from.
const (
	SourceControl = "control" // control request 90 (Device OS, normal or listening mode)
	SourceSerial  = "serial"  // listening mode's `s` command
	SourceDFU     = "dfu"     // the slot's header and suffix read out of flash over DFU
	SourceFile    = "file"    // a module file, as if it were installed
	SourcePlan    = "plan"    // written by a plan (a prediction)
)

// Locations (module stores) as Device OS names them.
const (
	LocationMain       = "main"
	LocationFactory    = "factory"
	LocationBackup     = "backup"
	LocationScratchpad = "scratchpad"
)

// Checks are the validity checks of one module as the reader reported them. A check that
// was not run (see Module.Unchecked) is false here but does not make the module invalid.
type Checks struct {
	Integrity    bool `json:"integrity"`
	Range        bool `json:"range"`
	Platform     bool `json:"platform"`
	Dependencies bool `json:"dependencies"`
}

// AllChecks is a module that passed every check.
var AllChecks = Checks{Integrity: true, Range: true, Platform: true, Dependencies: true}

// Dependency is one module a module needs (its header's dependency fields), with whether
// the device that holds it has it, as of the reading (see Device.Resolve).
type Dependency struct {
	Function platform.Function
	Index    uint8
	Version  uint16
	// Met is true when the device has a module of that function and index at least that
	// new (Device OS's rule); false also when it cannot be told (see Unknown).
	Met bool
	// Unknown is true when the reading cannot see the module depended on (the NCP over DFU).
	Unknown bool
	// Have is the installed version, 0 when none.
	Have uint16
}

// Need is the dependency as a module header states it.
func (d Dependency) Need() module.Dependency {
	return module.Dependency{Function: d.Function, Index: d.Index, Version: d.Version}
}

// DependenciesOf converts header dependencies.
func DependenciesOf(ds []module.Dependency) []Dependency {
	var out []Dependency
	for _, d := range ds {
		if d.Empty() {
			continue
		}
		out = append(out, Dependency{Function: d.Function, Index: d.Index, Version: d.Version})
	}
	return out
}

// Module is one module slot of a device: the one shape of a module reading, whichever
// door read it (control request 90, listening mode's `s`, the flash over DFU), a module
// file described as if installed, or a module a plan predicts.
type Module struct {
	Function platform.Function
	Index    uint8
	// Name is the release-asset name of the slot ("system-part1", "bootloader",
	// "softdevice", "user-part"), "" if the platform table has no such slot.
	Name    string
	Version uint16
	// DeviceOS names the Device OS release of a system part, bootloader or monolithic
	// firmware ("4.1.0"); Description names other things (a SoftDevice version).
	DeviceOS    string
	Description string
	// Location is LocationMain (also when ""), LocationFactory, ...
	Location string
	// Present is false for an empty slot.
	Present bool
	// Start and Size locate the module in flash when known (0 = unknown; Size includes the
	// CRC); MaxSize is the slot's size.
	Start, Size, MaxSize uint32
	// CRC is the stored CRC-32 when known (0 = unknown): with it, a module at the same
	// version but of another build is not mistaken for another.
	CRC uint32
	// SHA256 is the hash in the module's suffix when known (hex): the identity of a user
	// app, whose version number says little.
	SHA256 string
	Checks Checks
	// Unchecked lists checks that were not run ("integrity" when a DFU reading skipped the
	// CRC; whatever the device did not check).
	Unchecked []string
	Deps      []Dependency
	// Assets are the assets an application needs (Device OS 5.5.0 and later), by name and
	// SHA-256, where the reading shows them.
	Assets []module.Asset
	// Protects marks a bootloader that is Particle's protected build (SECURITY_MODE
	// extension = 1): installed under Device OS 6.x it turns Device Protection on.
	Protects bool
	// Problem says what is wrong, for a person ("half-written: ...").
	Problem string
	// Source is where the reading comes from (SourceControl, SourceDFU, ...).
	Source string
}

// FromFile describes a module file as if it were installed: intact when it validates.
func FromFile(p *platform.Platform, m *module.Module) Module {
	in := Module{Function: m.Function, Index: m.Index, Version: m.Version, Location: LocationMain, Present: true,
		Start: m.Start, Size: uint32(m.Size()), CRC: m.StoredCRC, Deps: DependenciesOf(m.Dependencies()), Source: SourceFile}
	if m.Function == platform.FuncUser || m.Function == platform.FuncAsset {
		in.Assets = m.Assets()
	}
	if mode, _, ok := m.SecurityMode(); ok && mode == module.SecurityProtected && m.Function == platform.FuncBootloader {
		in.Protects = true
	}
	if len(m.SHA256) > 0 {
		in.SHA256 = hex.EncodeToString(m.SHA256)
	}
	if m.Validate() == nil {
		in.Checks = AllChecks
	}
	if p == nil {
		p, _ = platform.ByID(m.PlatformID)
	}
	Describe(p, &in)
	return in
}

// IsMain reports a module in the main store (the one Device OS runs).
func (m Module) IsMain() bool { return m.Location == "" || m.Location == LocationMain }

// Failed lists the checks that ran and failed, by their JSON names.
func (m Module) Failed() []string {
	var out []string
	for _, c := range []struct {
		name string
		ok   bool
	}{{"integrity", m.Checks.Integrity}, {"range", m.Checks.Range}, {"platform", m.Checks.Platform}, {"dependencies", m.Checks.Dependencies}} {
		if !c.ok && !slices.Contains(m.Unchecked, c.name) {
			out = append(out, c.name)
		}
	}
	return out
}

// Valid reports a present module none of whose checks failed, dependencies included.
func (m Module) Valid() bool { return m.Present && len(m.Failed()) == 0 }

// Intact reports a present module whose own integrity, range and platform checks pass
// (or were not run): whatever it depends on, the module itself is not damaged.
func (m Module) Intact() bool {
	if !m.Present {
		return false
	}
	for _, f := range m.Failed() {
		if f != "dependencies" {
			return false
		}
	}
	return true
}

// End is the exclusive end of the module's known extent (Start + Size).
func (m Module) End() uint64 { return uint64(m.Start) + uint64(m.Size) }

// Describe fills the names a person reads: the slot's name, the Device OS release of a
// system part or bootloader, the SoftDevice's name.
func Describe(p *platform.Platform, m *Module) {
	if p != nil && m.Name == "" {
		if s, ok := p.SlotFor(m.Function, m.Index, m.Version); ok {
			m.Name = s.Name
		} else if s, ok := p.Slot(m.Function, m.Index); ok {
			m.Name = s.Name
		}
	}
	if !m.Present {
		return
	}
	switch m.Function {
	case platform.FuncSystem, platform.FuncMono:
		m.DeviceOS, _ = module.DeviceOSVersion(m.Function, m.Version)
	case platform.FuncBootloader:
		if m.Index == 0 {
			m.DeviceOS, _ = module.DeviceOSVersion(m.Function, m.Version)
		}
	case platform.FuncRadio:
		m.Description, _ = module.RadioStackName(m.Version)
	}
}

// SameBuild reports whether the module is the wanted one: same version, intact, and the
// same build where both CRCs (or both hashes) are known.
func (m Module) SameBuild(want Module) bool {
	if !m.Intact() || m.Version != want.Version {
		return false
	}
	if m.SHA256 != "" && want.SHA256 != "" && !strings.EqualFold(m.SHA256, want.SHA256) {
		return false
	}
	if m.CRC != 0 && want.CRC != 0 && m.CRC != want.CRC {
		return false
	}
	return true
}

// Label names the module briefly for people: "system-part1 4100" or, without a slot
// name, "system 1 v4100"; " (corrupt)" when it is not intact.
func (m Module) Label() string {
	s := fmt.Sprintf("%s %d v%d", m.Function, m.Index, m.Version)
	if m.Name != "" {
		s = fmt.Sprintf("%s %d", m.Name, m.Version)
	}
	if m.Present && !m.Intact() {
		s += " (corrupt)"
	}
	return s
}

// String is Label, for logs.
func (m Module) String() string { return m.Label() }

// moduleJSON is the shape `pflash inspect --device ID --json`, the runner's events and
// the end of `pflash flash` print, so a script reads every one the same way.
type moduleJSON struct {
	Function     string           `json:"function"`
	Index        uint8            `json:"index"`
	Name         string           `json:"name,omitempty"`
	Version      uint16           `json:"version"`
	DeviceOS     string           `json:"device_os"`
	Description  string           `json:"description,omitempty"`
	Location     string           `json:"location"`
	Present      bool             `json:"present"`
	Valid        bool             `json:"valid"`
	Checks       Checks           `json:"checks"`
	Unchecked    []string         `json:"unchecked,omitempty"`
	Dependencies []dependencyJSON `json:"dependencies"`
	Start        uint32           `json:"start,omitempty"`
	Size         uint32           `json:"size,omitempty"`
	CRC          string           `json:"crc32,omitempty"`
	SHA256       string           `json:"sha256,omitempty"`
	Assets       []module.Asset   `json:"assets,omitempty"`
	Problem      string           `json:"problem,omitempty"`
	Source       string           `json:"source"`
}

type dependencyJSON struct {
	Function string `json:"function"`
	Index    uint8  `json:"index"`
	Version  uint16 `json:"version"`
	Met      bool   `json:"met"`
	Unknown  bool   `json:"unknown,omitempty"`
	Have     uint16 `json:"have,omitempty"`
}

// MarshalJSON writes the module in the shape scripts read (function names as words).
func (m Module) MarshalJSON() ([]byte, error) {
	j := moduleJSON{Function: m.Function.String(), Index: m.Index, Name: m.Name, Version: m.Version, DeviceOS: m.DeviceOS,
		Description: m.Description, Location: m.Location, Present: m.Present, Valid: m.Valid(), Checks: m.Checks,
		Unchecked: m.Unchecked, Dependencies: []dependencyJSON{}, Start: m.Start, Size: m.Size, SHA256: m.SHA256,
		Assets: m.Assets, Problem: m.Problem, Source: m.Source}
	if j.Location == "" {
		j.Location = LocationMain
	}
	if m.CRC != 0 {
		j.CRC = fmt.Sprintf("%08x", m.CRC)
	}
	for _, d := range m.Deps {
		j.Dependencies = append(j.Dependencies, dependencyJSON{Function: d.Function.String(), Index: d.Index, Version: d.Version,
			Met: d.Met, Unknown: d.Unknown, Have: d.Have})
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes (journals and reports read back).
func (m *Module) UnmarshalJSON(b []byte) error {
	var j moduleJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	fn, ok := platform.ParseFunction(j.Function)
	if !ok {
		return fmt.Errorf("unknown module function %q", j.Function)
	}
	*m = Module{Function: fn, Index: j.Index, Name: j.Name, Version: j.Version, DeviceOS: j.DeviceOS, Description: j.Description,
		Location: j.Location, Present: j.Present, Checks: j.Checks, Unchecked: j.Unchecked, Start: j.Start, Size: j.Size,
		SHA256: j.SHA256, Assets: j.Assets, Problem: j.Problem, Source: j.Source}
	if j.CRC != "" {
		if _, err := fmt.Sscanf(j.CRC, "%08x", &m.CRC); err != nil {
			return fmt.Errorf("module crc32 %q: %w", j.CRC, err)
		}
	}
	for _, d := range j.Dependencies {
		df, ok := platform.ParseFunction(d.Function)
		if !ok {
			return fmt.Errorf("unknown dependency function %q", d.Function)
		}
		m.Deps = append(m.Deps, Dependency{Function: df, Index: d.Index, Version: d.Version, Met: d.Met, Unknown: d.Unknown, Have: d.Have})
	}
	return nil
}
