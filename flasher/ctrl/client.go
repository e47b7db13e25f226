package ctrl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Controller is the one USB call the client needs. It has gousb's
// (*Device).Control signature so a real device, the libusb-shim door and the
// in-process virtual device all plug in unchanged. For IN transfers data is
// the buffer to fill (its length is wLength) and n is the count received.
type Controller interface {
	Control(rType, request uint8, val, idx uint16, data []byte) (int, error)
}

// DefaultRequestTimeout is particle-usb's default (src/config.js): long,
// because a request such as START_FIRMWARE_UPDATE erases flash before replying.
const DefaultRequestTimeout = 60 * time.Second

// checkIntervals is the CHECK polling schedule; the last value repeats. It starts within
// a millisecond and grows by about 1.4x a poll, so a reply that is ready at once (most
// requests, every FIRMWARE_UPDATE_DATA chunk) is collected after one short wait and a slow
// one (START_FIRMWARE_UPDATE erasing flash) is overshot by at most ~40% of its own time,
// while an idle device is asked no more than once a second. particle-usb's default
// (device-base.js DEFAULT_CHECK_INTERVALS: 50, 50, 100, 100, 250, ... ms) makes every
// request wait at least 50 ms although the device has answered, which is most of a
// control-request bootloader update's time. Each CHECK is one control transfer (about a
// millisecond on a full-speed bus), and the next chunk is never sent before the reply.
var checkIntervals = [...]time.Duration{
	1 * time.Millisecond, 1 * time.Millisecond,
	2 * time.Millisecond, 3 * time.Millisecond,
	4 * time.Millisecond, 6 * time.Millisecond,
	8 * time.Millisecond, 12 * time.Millisecond,
	16 * time.Millisecond, 24 * time.Millisecond,
	32 * time.Millisecond, 50 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond,
	500 * time.Millisecond, 1000 * time.Millisecond,
}

func backoff(attempt int) time.Duration {
	if attempt < len(checkIntervals) {
		return checkIntervals[attempt]
	}
	return checkIntervals[len(checkIntervals)-1]
}

// Options tunes a Client. The zero value works for real hardware.
type Options struct {
	// RequestTimeout bounds one request from INIT to the last RECV
	// (default DefaultRequestTimeout). The caller's context can cut it shorter.
	RequestTimeout time.Duration
	// OutNeedsData enables the controlOutTransfersRequireDataStage quirk of
	// RTL872x platforms (P2/Photon 2, Tracker M, M SoM, ...): their USB stack
	// never completes a host-to-device control transfer without a data stage,
	// so an empty OUT transfer is sent with one zero byte instead.
	OutNeedsData bool
	// Sleep waits between polls; it must return early with an error when ctx
	// is done. Tests replace it to run the protocol without real delays.
	Sleep func(ctx context.Context, d time.Duration) error
	// Log receives debug lines per request; nil discards them.
	Log *slog.Logger
}

// Client runs control requests against one device. It is safe for concurrent
// use: transfers are serialised as on the real control pipe, while several
// requests may be in flight, as the protocol allows.
type Client struct {
	dev Controller
	opt Options
	log *slog.Logger
	mu  sync.Mutex // one control transfer at a time
}

// New wraps a Controller. Call ResetAll after opening a device so requests a
// previous session left behind do not occupy the device's few request slots.
func New(c Controller, o Options) *Client {
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Sleep == nil {
		o.Sleep = sleepCtx
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{dev: c, opt: o, log: log}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// errRequestDeadline marks our own RequestTimeout expiring, as opposed to the
// caller's context ending.
var errRequestDeadline = errors.New("ctrl: request deadline")

// control performs one transfer, applying the OUT data-stage quirk.
func (c *Client) control(rType, request uint8, val, idx uint16, data []byte) (int, error) {
	if rType&0x80 == 0 && len(data) == 0 && c.opt.OutNeedsData {
		data = []byte{0}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.dev.Control(rType, request, val, idx, data)
	if err == nil && rType&0x80 != 0 && (n < 0 || n > len(data)) {
		return 0, fmt.Errorf("%w: device reported %d bytes for a %d-byte IN transfer", ErrProtocol, n, len(data))
	}
	return n, err
}

// service sends INIT, CHECK or RESET and parses the service reply.
func (c *Client) service(request uint8, val, idx uint16) (ServiceReply, error) {
	buf := make([]byte, MinWLength)
	n, err := c.control(RequestTypeIn, request, val, idx, buf)
	if err != nil {
		return ServiceReply{}, err
	}
	return ParseServiceReply(buf[:n])
}

// doneErr turns a finished context into the error Request reports.
func (c *Client) doneErr(ctx context.Context, reqType uint16, what string) error {
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, errRequestDeadline):
		return fmt.Errorf("%w: request %d %s for longer than %v", ErrTimeout, reqType, what, c.opt.RequestTimeout)
	case errors.Is(cause, context.DeadlineExceeded):
		return fmt.Errorf("%w: request %d %s: %w", ErrTimeout, reqType, what, cause)
	}
	return fmt.Errorf("ctrl: request %d %s: %w", reqType, what, cause)
}

// wait sleeps the attempt'th backoff interval, failing once ctx is done even
// if a custom Sleep ignores ctx.
func (c *Client) wait(ctx context.Context, attempt int) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := c.opt.Sleep(ctx, backoff(attempt)); err != nil {
		return err
	}
	return ctx.Err()
}

// Request runs one control request: INIT (retrying while the device says
// BUSY), waits out PENDING buffer allocation, SENDs the payload, polls CHECK
// with particle-usb's backoff until the device has a result, and RECVs the
// reply. err reports transport and protocol failures (wrapping ErrTimeout,
// ErrProtocol, ErrNoMemory, ErrNotFound, ErrBusy, ErrDevice or the USB
// error); a negative result is the device's answer and is returned with a nil
// err so callers can decide what it means for them. On failure after INIT the
// request is RESET on the device so it does not hold one of its slots.
func (c *Client) Request(ctx context.Context, reqType uint16, payload []byte) (result int32, reply []byte, err error) {
	if len(payload) > MaxPayload {
		return 0, nil, fmt.Errorf("ctrl: request %d: payload of %d bytes exceeds the protocol maximum %d", reqType, len(payload), MaxPayload)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, c.opt.RequestTimeout, errRequestDeadline)
	defer cancel()
	start := time.Now()

	id, status, err := c.init(ctx, reqType, len(payload))
	if err != nil {
		return 0, nil, err
	}
	result, reply, err = c.complete(ctx, reqType, id, status, payload)
	if err != nil {
		// Free the device's slot; the result does not matter.
		if _, rerr := c.service(ServiceReset, 0, id); rerr != nil {
			c.log.Debug("ctrl: RESET after failure failed", "type", reqType, "id", id, "err", rerr)
		}
		c.log.Debug("ctrl: request failed", "type", reqType, "id", id, "err", err)
		return 0, nil, err
	}
	c.log.Debug("ctrl: request done", "type", reqType, "id", id, "result", result,
		"sent", len(payload), "received", len(reply), "took", time.Since(start))
	return result, reply, nil
}

// init sends INIT until the device gives the request an id.
func (c *Client) init(ctx context.Context, reqType uint16, size int) (uint16, Status, error) {
	for attempt := 0; ; attempt++ {
		rep, err := c.service(ServiceInit, uint16(size), reqType)
		if err != nil {
			return 0, 0, fmt.Errorf("ctrl: request %d: INIT: %w", reqType, err)
		}
		switch rep.Status {
		case StatusOK, StatusPending:
			if !rep.HasID {
				return 0, 0, fmt.Errorf("%w: request %d: INIT answered %v without a request id", ErrProtocol, reqType, rep.Status)
			}
			if rep.Status == StatusPending && size == 0 {
				// Nothing to allocate, so PENDING makes no sense (particle-usb
				// treats it as a protocol error too). Release the slot.
				_, _ = c.service(ServiceReset, 0, rep.ID)
				return 0, 0, fmt.Errorf("%w: request %d: INIT answered PENDING for an empty payload", ErrProtocol, reqType)
			}
			return rep.ID, rep.Status, nil
		case StatusBusy:
			c.log.Debug("ctrl: device busy, retrying INIT", "type", reqType, "attempt", attempt)
			if err := c.wait(ctx, attempt); err != nil {
				return 0, 0, fmt.Errorf("%w: %w", ErrBusy, c.doneErr(ctx, reqType, "was refused with BUSY"))
			}
		case StatusNoMemory:
			return 0, 0, fmt.Errorf("%w (request %d, %d-byte payload)", ErrNoMemory, reqType, size)
		case StatusError:
			return 0, 0, fmt.Errorf("%w: request %d: INIT", ErrDevice, reqType)
		default:
			return 0, 0, fmt.Errorf("%w: request %d: INIT answered %v", ErrProtocol, reqType, rep.Status)
		}
	}
}

// complete sends the payload when the device is ready for it, then polls
// CHECK until the result is there and fetches the reply.
func (c *Client) complete(ctx context.Context, reqType, id uint16, status Status, payload []byte) (int32, []byte, error) {
	sent := len(payload) == 0
	if status == StatusOK && !sent {
		if err := c.send(reqType, id, payload); err != nil {
			return 0, nil, err
		}
		sent = true
	}
	for attempt := 0; ; attempt++ {
		if err := c.wait(ctx, attempt); err != nil {
			what := "stayed pending"
			if !sent {
				what = "waited for a payload buffer"
			}
			return 0, nil, c.doneErr(ctx, reqType, what)
		}
		rep, err := c.service(ServiceCheck, 0, id)
		if err != nil {
			return 0, nil, fmt.Errorf("ctrl: request %d (id %d): CHECK: %w", reqType, id, err)
		}
		switch rep.Status {
		case StatusOK:
			if !sent {
				// The buffer is allocated: send, then poll from the start of
				// the backoff schedule, as particle-usb does.
				if err := c.send(reqType, id, payload); err != nil {
					return 0, nil, err
				}
				sent = true
				attempt = -1
				continue
			}
			if !rep.HasResult {
				return 0, nil, fmt.Errorf("%w: request %d (id %d): CHECK answered OK without a result", ErrProtocol, reqType, id)
			}
			if !rep.HasSize || rep.Size == 0 {
				return rep.Result, nil, nil
			}
			reply, err := c.recv(reqType, id, rep.Size)
			if err != nil {
				return 0, nil, err
			}
			return rep.Result, reply, nil
		case StatusPending:
			continue
		case StatusNoMemory:
			return 0, nil, fmt.Errorf("%w (request %d, %d-byte payload)", ErrNoMemory, reqType, len(payload))
		case StatusNotFound:
			return 0, nil, fmt.Errorf("%w (request %d, id %d)", ErrNotFound, reqType, id)
		case StatusError:
			return 0, nil, fmt.Errorf("%w: request %d (id %d): CHECK", ErrDevice, reqType, id)
		default:
			return 0, nil, fmt.Errorf("%w: request %d (id %d): CHECK answered %v", ErrProtocol, reqType, id, rep.Status)
		}
	}
}

func (c *Client) send(reqType, id uint16, payload []byte) error {
	for off := 0; off < len(payload); {
		n := min(MaxTransfer, len(payload)-off)
		if _, err := c.control(RequestTypeOut, ServiceSend, 0, id, payload[off:off+n]); err != nil {
			return fmt.Errorf("ctrl: request %d (id %d): SEND of bytes %d–%d: %w", reqType, id, off, off+n, err)
		}
		off += n
	}
	return nil
}

func (c *Client) recv(reqType, id uint16, size uint32) ([]byte, error) {
	if size > maxReplySize {
		return nil, fmt.Errorf("%w: request %d (id %d): reply size %d is implausible", ErrProtocol, reqType, id, size)
	}
	buf := make([]byte, size)
	for off := 0; off < len(buf); {
		n := min(MaxTransfer, len(buf)-off)
		got, err := c.control(RequestTypeIn, ServiceRecv, 0, id, buf[off:off+n])
		if err != nil {
			return nil, fmt.Errorf("ctrl: request %d (id %d): RECV: %w", reqType, id, err)
		}
		if got != n {
			return nil, fmt.Errorf("%w: request %d (id %d): RECV returned %d bytes, want %d", ErrProtocol, reqType, id, got, n)
		}
		off += n
	}
	return buf, nil
}

// ResetAll cancels every request the device holds (RESET with id 0). Requests
// left by a crashed or killed session otherwise keep the device answering
// BUSY, since it has only a handful of request slots.
func (c *Client) ResetAll(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ctrl: RESET: %w", err)
	}
	rep, err := c.service(ServiceReset, 0, 0)
	if err != nil {
		return fmt.Errorf("ctrl: RESET: %w", err)
	}
	if rep.Status != StatusOK {
		return fmt.Errorf("%w: RESET answered %v", ErrProtocol, rep.Status)
	}
	return nil
}

// legacyIn reads one of the raw 0x50 vendor requests, which Device OS answers
// straight from the USB interrupt: it works even when the system thread is
// too busy to serve the protocol.
func (c *Client) legacyIn(ctx context.Context, reqType uint16) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("ctrl: legacy request %d: %w", reqType, err)
	}
	buf := make([]byte, MinWLength)
	n, err := c.control(RequestTypeIn, LegacyRequest, 0, reqType, buf)
	if err != nil {
		return "", fmt.Errorf("ctrl: legacy request %d: %w", reqType, err)
	}
	b := buf[:n]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%w: legacy request %d returned no text", ErrProtocol, reqType)
	}
	return s, nil
}

// LegacyDeviceID reads the device ID with the raw 0x50 request (type 20),
// lower-cased like the USB serial number particle-usb uses.
func (c *Client) LegacyDeviceID(ctx context.Context) (string, error) {
	s, err := c.legacyIn(ctx, ReqDeviceID)
	return strings.ToLower(s), err
}

// LegacySystemVersion reads the Device OS version string with the raw 0x50
// request (type 30), as particle-usb does on open. Device OS before 0.6 and
// DFU mode do not answer it.
func (c *Client) LegacySystemVersion(ctx context.Context) (string, error) {
	return c.legacyIn(ctx, ReqSystemVersion)
}

// LegacyReset asks for an immediate reset with the raw 0x50 OUT request
// (type 40), particle-usb's reset({force: true}). It has no data stage, which
// is exactly the transfer RTL872x devices never complete unless
// Options.OutNeedsData adds a byte. Device OS versions that do not implement
// it STALL, so callers fall back to Reset.
func (c *Client) LegacyReset(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ctrl: legacy reset: %w", err)
	}
	if _, err := c.control(RequestTypeOut, LegacyRequest, 0, ReqReset, nil); err != nil {
		return fmt.Errorf("ctrl: legacy reset: %w", err)
	}
	return nil
}
