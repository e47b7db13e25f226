package module

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error this package returns wraps one of them, so callers can
// branch with errors.Is while the message itself stays specific and readable.
var (
	ErrEmpty              = errors.New("empty file")
	ErrRead               = errors.New("cannot read file")
	ErrTooShort           = errors.New("file too short to be a Particle module")
	ErrNoHeader           = errors.New("not a Particle module: no module header found")
	ErrErased             = errors.New("blank: erased flash (all 0xFF)")
	ErrSize               = errors.New("file size does not match the module header")
	ErrCRC                = errors.New("CRC mismatch")
	ErrSHA                = errors.New("SHA-256 mismatch")
	ErrUnknownPlatform    = errors.New("unknown platform")
	ErrUnknownFunction    = errors.New("unknown module function")
	ErrExtensions         = errors.New("malformed module extensions")
	ErrCombined           = errors.New("malformed combined module")
	ErrNotCompressed      = errors.New("module is not compressed")
	ErrCompression        = errors.New("cannot decompress module")
	ErrBuild              = errors.New("cannot build module")
	ErrUnsupportedCorrupt = errors.New("unknown corruption kind")
)

// Error is a specific problem: Msg says exactly what is wrong, Kind is the sentinel it
// belongs to and Cause, if any, the lower-level error behind it.
type Error struct {
	Kind  error
	Msg   string
	Cause error
}

// Error is the specific message, followed by the cause's when there is one.
func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Msg + ": " + e.Cause.Error()
	}
	return e.Msg
}

// Unwrap gives both the sentinel and the cause, so errors.Is finds either.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}

func newErr(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

func wrapErr(kind, cause error, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...), Cause: cause}
}

// Problems is everything Validate found wrong with a module, most important first. Its
// message joins them with "; " so a report stays one line; errors.Is matches any of them.
type Problems []error

// Error joins the problems' messages with "; ".
func (p Problems) Error() string {
	msgs := make([]string, len(p))
	for i, e := range p {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap returns the individual problems.
func (p Problems) Unwrap() []error { return p }
