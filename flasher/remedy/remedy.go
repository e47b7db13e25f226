// Package remedy attaches to an error the thing a person can do about it. Errors deep in
// the engine wrap their cause; at the edge (CLI, app) the remedy is shown beside the cause
// so nobody is left with a raw "LIBUSB_ERROR_PIPE".
package remedy

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

// Of returns the outermost remedy in err's chain, or "" when there is none. Besides
// Error, any error in the chain with a Remedy() string method counts (e.g.
// usb.PermissionError, which knows the udev rule).
func Of(err error) string {
	for err != nil {
		switch e := err.(type) {
		case *Error:
			return e.Remedy
		case interface{ Remedy() string }:
			if r := e.Remedy(); r != "" {
				return r
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if r := Of(e); r != "" {
					return r
				}
			}
			return ""
		default:
			return ""
		}
	}
	return ""
}
