package state

import (
	"fmt"
	"strings"
)

// Protection is a device's Device Protection state (Device OS 6.x), as Device OS reports
// it: control request 76's two booleans (state, overridden), DFU mode's read-only alt
// strings.
type Protection int

// Protection states.
const (
	// ProtectionUnknown: not read (no way to ask in this mode, or the read failed).
	ProtectionUnknown Protection = iota
	// ProtectionOpen: not protected (including every Device OS before 6.0, which has no
	// protection at all).
	ProtectionOpen
	// ProtectionProtected: the flash is locked; only Particle's cloud can open Service Mode.
	ProtectionProtected
	// ProtectionService: protected, but in Service Mode (for 20 restarts or 24 hours):
	// Device OS 6.1.1 and newer may be written.
	ProtectionService
)

var protectionNames = [...]string{"unknown", "open", "protected", "service"}

// String is the state's short name: "open", "protected", "service", "unknown".
func (p Protection) String() string {
	if p >= 0 && int(p) < len(protectionNames) {
		return protectionNames[p]
	}
	return fmt.Sprintf("protection(%d)", int(p))
}

// MarshalText writes the short name.
func (p Protection) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads the short name ("unknown" too).
func (p *Protection) UnmarshalText(b []byte) error {
	if string(b) == ProtectionUnknown.String() {
		*p = ProtectionUnknown
		return nil
	}
	v, ok := ParseProtection(string(b))
	if !ok {
		return fmt.Errorf("unknown protection state %q", b)
	}
	*p = v
	return nil
}

// ParseProtection reads a state as String prints it ("service mode" too).
func ParseProtection(s string) (Protection, bool) {
	s = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), " mode")
	for i, n := range protectionNames {
		if n == s && i != int(ProtectionUnknown) {
			return Protection(i), true
		}
	}
	return ProtectionUnknown, false
}

// Words says it for a person: "open", "protected (Device Protection is on)", ...
func (p Protection) Words() string {
	switch p {
	case ProtectionOpen:
		return "open (no Device Protection)"
	case ProtectionProtected:
		return "protected (Device Protection is on)"
	case ProtectionService:
		return "in Service Mode (Device Protection is lifted for a while)"
	}
	return "not known"
}

// Flag is a yes/no fact that may not be known.
type Flag int

// Flag values.
const (
	FlagUnknown Flag = iota
	FlagNo
	FlagYes
)

// FlagOf is FlagYes or FlagNo.
func FlagOf(b bool) Flag {
	if b {
		return FlagYes
	}
	return FlagNo
}

// String is "yes", "no" or "unknown".
func (f Flag) String() string {
	switch f {
	case FlagYes:
		return "yes"
	case FlagNo:
		return "no"
	}
	return "unknown"
}

// UnmarshalJSON reads true, false or null.
func (f *Flag) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true":
		*f = FlagYes
	case "false":
		*f = FlagNo
	case "null":
		*f = FlagUnknown
	default:
		return fmt.Errorf("not a flag: %s", b)
	}
	return nil
}

// MarshalJSON writes true, false or null.
func (f Flag) MarshalJSON() ([]byte, error) {
	switch f {
	case FlagYes:
		return []byte("true"), nil
	case FlagNo:
		return []byte("false"), nil
	}
	return []byte("null"), nil
}
