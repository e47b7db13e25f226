// Package remedy attaches to an error the thing a person can do about it. Errors deep in
// the engine wrap their cause; at the edge (CLI, app) the remedy is shown beside the cause
// so nobody is left with a raw "LIBUSB_ERROR_PIPE".
package remedy

import (
	"strings"
	"unicode"
)

// Error is an error with a remedy a person can act on: Remedy in words any front end can
// show, and Command, where there is one, the pflash command that does it (the command
// line shows it; the app never does).
type Error struct {
	Err     error
	Remedy  string
	Command string
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

// WithCommand wraps err with a remedy in words and the pflash command that carries it out.
func WithCommand(err error, remedy, command string) error {
	if err == nil {
		return nil
	}
	return &Error{Err: err, Remedy: remedy, Command: command}
}

// Command returns the outermost pflash command in err's chain, "" when there is none.
func Command(err error) string {
	var e *Error
	for err != nil {
		if ee, ok := err.(*Error); ok {
			e = ee
			if e.Command != "" {
				return e.Command
			}
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			break
		}
		err = u.Unwrap()
	}
	return ""
}

// Human is what went wrong, for a person: the error's words without the chain of
// package prefixes Go's wrapping leaves in front ("run: ", "plan: ", "no plan: "), with a
// capital first letter.
func Human(err error) string {
	if err == nil {
		return ""
	}
	return HumanText(err.Error())
}

// HumanText is Human for an error already turned into text (a runner event's).
func HumanText(s string) string {
	for {
		i := strings.Index(s, ": ")
		if i <= 0 || !prefixes[s[:i]] {
			break
		}
		s = s[i+2:]
	}
	// A capital for a sentence, not for a file name or a code ("boron.zip: ...").
	first, _, _ := strings.Cut(s, " ")
	if first == "" || strings.IndexFunc(first, func(r rune) bool { return !unicode.IsLower(r) }) >= 0 {
		return s
	}
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

// prefixes are the context words the engine's packages put before a wrapped cause, which
// mean nothing to a person.
var prefixes = map[string]bool{
	"plan": true, "no plan": true, "run": true, "dfu": true, "ctrl": true, "usb": true, "device": true,
	"cache": true, "target": true, "modfile": true, "listen": true, "slots": true, "sim": true, "factory": true,
	"import": true, "report": true, "catalog": true,
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
