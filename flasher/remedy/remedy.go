// Package remedy attaches to an error the thing a person can do about it. Errors deep in
// the engine wrap their cause; at the edge (CLI, app) the remedy is shown beside the cause
// so nobody is left with a raw "LIBUSB_ERROR_PIPE".
package remedy

import "errors"

// Error is an error with a remedy a person can act on.
type Error struct {
	Err    error
	Remedy string
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// With wraps err with a remedy; a nil err stays nil.
func With(err error, remedy string) error {
	if err == nil {
		return nil
	}
	return &Error{Err: err, Remedy: remedy}
}

// Of returns the outermost remedy in err's chain, or "" when there is none.
func Of(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Remedy
	}
	return ""
}
