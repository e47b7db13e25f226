package plan

import (
	"errors"
	"fmt"

	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// Sentinel errors: every error Make returns wraps one of them (errors.Is) and carries a
// remedy (remedy.Of) a person can act on.
var (
	// ErrNoPlatform: the device's platform is unknown.
	ErrNoPlatform = errors.New("unknown platform")
	// ErrInvalidModule: a target module fails validation (CRC, size, header).
	ErrInvalidModule = errors.New("invalid module")
	// ErrWrongPlatform: a module is built for another platform.
	ErrWrongPlatform = errors.New("module for another platform")
	// ErrDoesNotFit: a module's address or size does not match any slot of the platform.
	ErrDoesNotFit = errors.New("module does not fit its slot")
	// ErrConflict: two modules of the target for the same slot, or overlapping.
	ErrConflict = errors.New("conflicting modules")
	// ErrDependency: a dependency the target cannot meet, or an order no device accepts.
	ErrDependency = errors.New("unmet dependency")
	// ErrProtected: Device Protection forbids the target.
	ErrProtected = errors.New("device protection")
	// ErrTooOld: the target's Device OS is older than the platform's first.
	ErrTooOld = errors.New("older than the platform's first Device OS")
	// ErrSteppingStone: the device must go through another version first.
	ErrSteppingStone = errors.New("stepping stone needed")
	// ErrNoMethod: nothing can write a module in the state the device will be in.
	ErrNoMethod = errors.New("no way to write the module")
	// ErrWatchdog: the watchdog window is too short for the smallest unit of work.
	ErrWatchdog = errors.New("watchdog window too short")
	// ErrEndsSafe: the plan's predicted end is not normal mode and the person did not
	// accept that (Options.AllowSafeMode).
	ErrEndsSafe = errors.New("the plan ends in safe mode")
)

// EndStateError says the plan would leave the device in safe mode, and why. Make returns
// it together with the Plan, so the prediction can be shown and accepted.
type EndStateError struct {
	End state.Boot
	To  string
}

func (e *EndStateError) Error() string {
	return fmt.Sprintf("after this plan the device would start in %s", e.End)
}

// Unwrap makes the error match ErrEndsSafe.
func (e *EndStateError) Unwrap() error { return ErrEndsSafe }

// Error is a planning failure: Kind is the sentinel, Msg the specific reason.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Kind }

// fail builds an error with its remedy.
func fail(kind error, rem string, format string, args ...any) error {
	return remedy.With(&Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}, rem)
}

// SteppingStoneError says the device must first go to Via, then to the target. Make
// returns it together with a Plan whose NeedsSteppingStone is Via.
type SteppingStoneError struct {
	From, To, Via string
	Why           string
}

func (e *SteppingStoneError) Error() string {
	return fmt.Sprintf("going from Device OS %s to %s needs a stop at %s first: %s", e.From, e.To, e.Via, e.Why)
}

// Unwrap makes the error match ErrSteppingStone.
func (e *SteppingStoneError) Unwrap() error { return ErrSteppingStone }
