package module

import (
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// maxInspectSize bounds what InspectFile reads: the largest Particle module is a few MB,
// so anything far bigger is the wrong file and not worth loading into memory.
const maxInspectSize = 64 << 20

// SlotName names the module the way release assets do ("system-part1", "bootloader",
// "softdevice", "user-part", "prebootloader-part1"), using the platform's slot table, so
// the Electron's index-3 part is "system-part1" as its file is called. Without a known
// platform it falls back to function and index.
func (m *Module) SlotName() string {
	if p, ok := platform.ByID(m.PlatformID); ok {
		if s, ok := p.SlotFor(m.Function, m.Index, m.Version); ok {
			return s.Name
		}
		if s, ok := p.Slot(m.Function, m.Index); ok {
			return s.Name
		}
	}
	if m.Index == 0 {
		return m.Function.String()
	}
	return fmt.Sprintf("%s#%d", m.Function, m.Index)
}

// PlatformName is the platform's short name ("boron"), or "platform N" when unknown.
func (m *Module) PlatformName() string {
	if p, ok := platform.ByID(m.PlatformID); ok {
		return p.Name
	}
	return fmt.Sprintf("platform %d", m.PlatformID)
}

// DeviceOS names the Device OS release of a system part, monolithic firmware or
// bootloader (see DeviceOSVersion), "" for other modules or unknown versions.
func (m *Module) DeviceOS() string {
	if m.Function == platform.FuncBootloader && m.Index != 0 {
		return "" // RTL872x prebootloaders have their own counter
	}
	v, _ := DeviceOSVersion(m.Function, m.Version)
	return v
}

// versionNote is the parenthesised explanation of the module version in String.
func (m *Module) versionNote() string {
	switch {
	case m.Function == platform.FuncRadio:
		if n, ok := RadioStackName(m.Version); ok {
			return " (" + n + ")"
		}
	case m.Function == platform.FuncBootloader && m.Index == 0:
		if first, last, ok := DeviceOSRange(m.Function, m.Version); ok {
			if first == last {
				return " (Device OS " + first + ")"
			}
			return " (Device OS " + first + "–" + last + ")"
		}
	default:
		if v := m.DeviceOS(); v != "" {
			return " (Device OS " + v + ")"
		}
	}
	return ""
}

// depLabel names what a dependency points at: the slot name for system parts and
// secondary bootloaders (system-part2, prebootloader-part1), the function otherwise.
func (m *Module) depLabel(d Dependency) string {
	label := d.Function.String()
	if d.Function == platform.FuncSystem || d.Function == platform.FuncBootloader && d.Index != 0 {
		label = fmt.Sprintf("%s#%d", d.Function, d.Index)
		if p, ok := platform.ByID(m.PlatformID); ok {
			if s, ok := p.Slot(d.Function, d.Index); ok {
				label = s.Name
			}
		}
	}
	s := fmt.Sprintf("%s ≥%d", label, d.Version)
	if n, ok := dependencyName(d); ok {
		s += " (" + n + ")"
	}
	return s
}

// String is one human line, e.g. "boron system-part1 v4100 (Device OS 4.1.0)
// @0x00030000-0x000abe1e, needs bootloader ≥1200 (4.1.0) and radio ≥202 (S140 7.0.1),
// CRC ok, SHA ok".
func (m *Module) String() string {
	if m == nil {
		return "not a Particle module"
	}
	var b strings.Builder
	b.WriteString(m.PlatformName() + " " + m.SlotName())
	if name, ok := m.Name(); ok {
		fmt.Fprintf(&b, " %q", name) // assets carry their file name
	}
	fmt.Fprintf(&b, " v%d%s @0x%08x-0x%08x", m.Version, m.versionNote(), m.Start, m.End)
	if deps := m.Dependencies(); len(deps) > 0 {
		labels := make([]string, len(deps))
		for i, d := range deps {
			labels[i] = m.depLabel(d)
		}
		b.WriteString(", needs " + strings.Join(labels, " and "))
	}
	if p := m.Product; p != nil && *p != NoProduct && p.ID != 0 && p.ID != m.PlatformID {
		fmt.Fprintf(&b, ", product %d v%d", p.ID, p.Version)
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{m.Compressed(), "compressed"}, {m.Combined(), "combined"}, {m.Encrypted(), "encrypted"}} {
		if f.on {
			b.WriteString(", " + f.name)
		}
	}
	if mode, _, ok := m.SecurityMode(); ok && mode == SecurityProtected {
		b.WriteString(", protected mode")
	}
	if m.CRCOK {
		b.WriteString(", CRC ok")
	} else {
		b.WriteString(", CRC BAD")
	}
	switch {
	case m.SHAOK:
		b.WriteString(", SHA ok")
	case PlaceholderSHA(m.Function):
		b.WriteString(", SHA placeholder (normal for " + m.Function.String() + " modules)")
	default:
		b.WriteString(", SHA BAD")
	}
	if err := m.Validate(); err != nil {
		b.WriteString("; INVALID: " + err.Error())
	}
	return b.String()
}

// Report is the JSON view of a module for scripts; the json names are an interface and
// must not change.
type Report struct {
	File  string `json:"file"`
	Valid bool   `json:"valid"`
	// Error says why the module is not valid (omitted when it is).
	Error      string `json:"error,omitempty"`
	PlatformID uint16 `json:"platform_id"`
	// Platform is the platform's short name, "" if unknown.
	Platform string `json:"platform"`
	// Function is the module function's name ("system", "bootloader", ... or a number).
	Function string `json:"function"`
	Index    uint8  `json:"index"`
	Version  uint16 `json:"version"`
	// DeviceOS names the Device OS release of a system part or bootloader, when known.
	DeviceOS     string `json:"device_os,omitempty"`
	Start        uint32 `json:"start"`
	End          uint32 `json:"end"`
	HeaderOffset int    `json:"header_offset"`
	Flags        uint8  `json:"flags"`
	// Dependencies lists the non-empty dependency slots in header order, never null.
	Dependencies []ReportDependency `json:"dependencies"`
	SuffixSize   uint16             `json:"suffix_size"`
	// ProductID and ProductVersion are null when the module has no product data.
	ProductID      *uint16 `json:"product_id"`
	ProductVersion *uint16 `json:"product_version"`
	CRCOK          bool    `json:"crc_ok"`
	SHAOK          bool    `json:"sha_ok"`
	// Size is the file's length in bytes.
	Size       int  `json:"size"`
	Compressed bool `json:"compressed"`
	Combined   bool `json:"combined"`
	Encrypted  bool `json:"encrypted"`
	// SHA256 is the hash stored in the suffix, in hex ("" if the file is too short).
	SHA256 string `json:"sha256"`
	// Assets are the assets an application needs, or the one an asset module carries.
	Assets []Asset `json:"assets,omitempty"`
}

// ReportDependency is one dependency in a Report.
type ReportDependency struct {
	Function string `json:"function"`
	Index    uint8  `json:"index"`
	Version  uint16 `json:"version"`
}

// Report builds the JSON view; file is what to call the input (usually its path).
func (m *Module) Report(file string) Report {
	if m == nil {
		return failedReport(file, 0, newErr(ErrNoHeader, "not a Particle module: no module header found"))
	}
	r := Report{
		File:         file,
		PlatformID:   m.PlatformID,
		Function:     m.Function.String(),
		Index:        m.Index,
		Version:      m.Version,
		DeviceOS:     m.DeviceOS(),
		Start:        m.Start,
		End:          m.End,
		HeaderOffset: m.HeaderOffset,
		Flags:        uint8(m.Flags),
		Dependencies: []ReportDependency{},
		SuffixSize:   m.SuffixSize,
		CRCOK:        m.CRCOK,
		SHAOK:        m.SHAOK,
		Size:         m.FileSize,
		Compressed:   m.Compressed(),
		Combined:     m.Combined(),
		Encrypted:    m.Encrypted(),
		SHA256:       hex.EncodeToString(m.SHA256),
	}
	if p, ok := platform.ByID(m.PlatformID); ok {
		r.Platform = p.Name
	}
	for _, d := range m.Dependencies() {
		r.Dependencies = append(r.Dependencies, ReportDependency{Function: d.Function.String(), Index: d.Index, Version: d.Version})
	}
	if m.Product != nil {
		id, ver := m.Product.ID, m.Product.Version
		r.ProductID, r.ProductVersion = &id, &ver
	}
	r.Assets = m.Assets()
	if err := m.Validate(); err != nil {
		r.Error = err.Error()
	} else {
		r.Valid = true
	}
	return r
}

func failedReport(file string, size int, err error) Report {
	return Report{File: file, Size: size, Error: err.Error(), Dependencies: []ReportDependency{}}
}

// InspectBytes parses and validates data and never fails: bad input gives a Report with
// valid=false and the reason in error.
func InspectBytes(name string, data []byte) Report {
	m, err := Parse(data)
	if err != nil {
		return failedReport(name, len(data), err)
	}
	return m.Report(name)
}

// InspectFile reads and inspects a file; like InspectBytes it never fails, unreadable or
// oversized files included.
func InspectFile(path string) Report {
	st, err := os.Stat(path)
	if err != nil {
		return failedReport(path, 0, wrapErr(ErrRead, err, "cannot read file"))
	}
	if st.IsDir() {
		return failedReport(path, 0, newErr(ErrNoHeader, "not a Particle module: %s is a directory", path))
	}
	if st.Size() > maxInspectSize {
		return failedReport(path, int(st.Size()), newErr(ErrNoHeader,
			"not a Particle module: file is %d bytes, far larger than any module (at most a few MB)", st.Size()))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return failedReport(path, 0, wrapErr(ErrRead, err, "cannot read file"))
	}
	return InspectBytes(path, data)
}
