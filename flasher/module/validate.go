package module

import (
	"encoding/hex"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// PlaceholderSHA reports whether this module kind ships with a dummy SHA-256: SoftDevice
// and NCP images carry a unique value that is not the hash of their content (DOS
// CHANGELOG 1.3.1 #1897), so a mismatch there is expected and harmless.
func PlaceholderSHA(fn platform.Function) bool {
	return fn == platform.FuncRadio || fn == platform.FuncNCP
}

// Validate reports whether the module is sound enough to write to a device: header found,
// file size equal to what the header says, CRC correct, platform and function known, and
// SHA-256 correct (except for the SoftDevice/NCP placeholder). For a combined file every
// module in it is checked. It returns nil, a single *Error, or Problems listing everything
// found, most important first.
//
// It does not know the target device: whether the platform is the right one, and whether
// the address fits the slot, are the planner's checks.
func (m *Module) Validate() error {
	if m == nil {
		return newErr(ErrNoHeader, "not a Particle module: no module header found")
	}
	var probs Problems
	sizeOK := true
	if m.truncated {
		sizeOK = false
		probs = append(probs, newErr(ErrSize, "file is %d bytes but the header says %d (truncated?)", len(m.Data), m.Size()))
	} else if uint64(len(m.Data)) != m.Size() {
		sizeOK = false
		probs = append(probs, newErr(ErrSize, "file is %d bytes but the header says %d", len(m.Data), m.Size()))
	}
	// With the size wrong the CRC and SHA are read from the wrong place; reporting them too
	// would only bury the real problem.
	if sizeOK && !m.CRCOK {
		probs = append(probs, newErr(ErrCRC, "CRC mismatch: stored 0x%08x, computed 0x%08x", m.StoredCRC, m.ComputedCRC))
	}
	if _, ok := platform.ByID(m.PlatformID); !ok {
		probs = append(probs, newErr(ErrUnknownPlatform, "unknown platform %d", m.PlatformID))
	}
	if m.Function == platform.FuncNone || !knownFunction(m.Function) {
		probs = append(probs, newErr(ErrUnknownFunction, "unknown module function %d", uint8(m.Function)))
	}
	if sizeOK && !m.SHAOK && !PlaceholderSHA(m.Function) {
		if m.SHA256 == nil {
			probs = append(probs, newErr(ErrSHA, "SHA-256 mismatch: file too short to hold one"))
		} else {
			probs = append(probs, newErr(ErrSHA, "SHA-256 mismatch: stored %s, computed %s",
				hex.EncodeToString(m.SHA256), hex.EncodeToString(m.ComputedSHA256)))
		}
	}
	if m.extErr != nil {
		probs = append(probs, m.extErr)
	}
	if m.Combined() && sizeOK {
		probs = append(probs, m.validateParts()...)
	}
	switch len(probs) {
	case 0:
		return nil
	case 1:
		return probs[0]
	}
	return probs
}

// validateParts checks every module of a combined file.
func (m *Module) validateParts() []error {
	if !m.combined {
		return []error{newErr(ErrCombined, "the combined flag is set but no module follows")}
	}
	parts, err := SplitCombined(m.file)
	if err != nil {
		return []error{err}
	}
	var probs []error
	// The first part is this module, already checked above.
	for i, p := range parts[1:] {
		if err := p.Validate(); err != nil {
			probs = append(probs, wrapErr(ErrCombined, err, "module %d of %d", i+2, len(parts)))
		}
	}
	return probs
}

// Verify parses and validates in one go: the module, and the first error of either step.
func Verify(data []byte) (*Module, error) {
	m, err := Parse(data)
	if err != nil {
		return nil, err
	}
	return m, m.Validate()
}
