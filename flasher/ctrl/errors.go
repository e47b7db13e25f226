package ctrl

import "errors"

// Transport-level failures. Errors returned by Client wrap one of these (and
// the underlying cause), so callers can tell "the device said no" (a
// *ResultError) from "we could not talk to it" (these).
var (
	// ErrProtocol means the device's reply did not follow the protocol:
	// truncated, missing fields, an unexpected status, a short RECV. Usually
	// firmware that does not implement control requests (DFU mode, very old
	// Device OS) or a flaky connection.
	ErrProtocol = errors.New("ctrl: protocol error")
	// ErrTimeout means the request did not complete within
	// Options.RequestTimeout: the device kept answering PENDING or BUSY.
	ErrTimeout = errors.New("ctrl: request timed out")
	// ErrNoMemory is the NO_MEMORY status: the device could not allocate a
	// buffer for the request payload.
	ErrNoMemory = errors.New("ctrl: device out of memory for the request")
	// ErrNotFound is the NOT_FOUND status: the device no longer knows the
	// request id (it was reset, or the device rebooted mid-request).
	ErrNotFound = errors.New("ctrl: device does not know the request (cancelled or device reset)")
	// ErrDevice is the generic ERROR status.
	ErrDevice = errors.New("ctrl: device reported a protocol error status")
	// ErrBusy means the device answered BUSY until the deadline: too many
	// requests in flight, typically from another program holding the device.
	ErrBusy = errors.New("ctrl: device busy with other requests")
)
