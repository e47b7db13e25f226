// Package ctrldev is the device side of the Particle USB control-request
// protocol for the virtual device: the engine of Device OS
// system/src/usb_control_request_channel.cpp (request slots with ids,
// payload buffers, the INIT/CHECK/SEND/RECV/RESET state machine, the raw 0x50
// requests) with the request handling itself left to a Handler, plus a
// reusable FirmwareUpdate state machine for requests 250–253.
//
// Where Device OS behaviour matters to a host it is reproduced: at most 4
// requests in flight (BUSY beyond that), payloads over 64 bytes answered
// PENDING at INIT while the buffer is "allocated", STALL for malformed
// requests, a request freed once its reply has been read, RESET cancelling
// one or all requests. One deliberate superset: Device OS takes a payload or
// reply only as a single SEND/RECV transfer of exactly its size; this channel
// also accepts consecutive smaller chunks (what particle-usb sends for
// payloads over 4096 bytes), because real hosts never hit the difference and
// the flasher's requests fit one transfer anyway.
package ctrldev

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
)

// ErrStall is returned for transfers the device refuses with a STALL
// handshake (libusb reports LIBUSB_ERROR_PIPE). Errors returned by Control
// wrap it with the reason, so logs say why the device would have stalled.
var ErrStall = errors.New("ctrldev: STALL")

// Handler processes a complete request. It runs on the channel's own
// goroutine (one request at a time, in arrival order, like Device OS's system
// thread), so it may be slow; the host sees PENDING until it returns.
type Handler interface {
	HandleRequest(reqType uint16, payload []byte) (result int32, reply []byte)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(reqType uint16, payload []byte) (int32, []byte)

// HandleRequest calls f.
func (f HandlerFunc) HandleRequest(reqType uint16, payload []byte) (int32, []byte) {
	return f(reqType, payload)
}

// Device OS limits (system/inc/usb_control_request_channel.h).
const (
	// DefaultMaxActive is USB_REQUEST_MAX_ACTIVE_COUNT.
	DefaultMaxActive = 4
	// DefaultPooledBufferSize is USB_REQUEST_MAX_POOLED_BUFFER_SIZE: payloads
	// up to this size get a buffer at once, larger ones are allocated later.
	DefaultPooledBufferSize = 64
)

// Config describes the device a Channel stands for.
type Config struct {
	// Handler answers requests; nil answers every request NOT_SUPPORTED.
	Handler Handler
	// OutNeedsData reproduces the RTL872x USB stack (P2, Tracker M, M SoM),
	// which never sees a host-to-device control transfer without a data
	// stage. A real device leaves the host waiting until its timeout; the
	// channel STALLs at once so tests fail fast.
	OutNeedsData bool
	// MaxActive is how many requests may be in flight (default 4); INIT
	// beyond that answers BUSY.
	MaxActive int
	// PooledBufferSize is the largest payload accepted at INIT without a
	// PENDING round (default 64).
	PooledBufferSize int
	// LegacyDeviceID and LegacySystemVersion answer the raw 0x50 IN
	// requests 20 and 30; nil makes them STALL, as DFU-mode firmware does.
	LegacyDeviceID      func() string
	LegacySystemVersion func() string
	// LegacyReset answers the raw 0x50 OUT request 40 (particle-usb's forced
	// reset); nil STALLs, as Device OS 6.x does.
	LegacyReset func()
	// Meter is charged for the time the USB transfers take (about 1 ms per
	// control transfer); nil when time is not simulated.
	Meter interface{ Charge(time.Duration) }
	// OnComplete is Device OS's ctrl_completion_handler_fn: called once per
	// request whose handler ran, after the request has left the channel, with
	// delivery 0 when the host collected the result, ctrl.CodeCancelled when
	// the host RESET it. Device OS resets, enters DFU mode or applies a
	// firmware update only from here, i.e. after the host saw the reply.
	// It is called without the channel's lock held.
	OnComplete func(reqType uint16, delivery int32)
}

type reqState int

const (
	stateAllocPending reqState = iota // waiting for a payload buffer
	stateRecvPayload                  // buffer ready, host SENDs the payload
	statePending                      // handler queued or running
	stateDone                         // result (and reply) ready for the host
)

type request struct {
	id, typ       uint16
	size          int
	buf           []byte
	got           int
	state         reqState
	pendingChecks int

	result int32
	reply  []byte
	sent   int

	// ended is set when the request left the channel while its handler was
	// still queued or running; the completion fires when the handler returns.
	ended    bool
	delivery int32
}

type completion struct {
	typ      uint16
	delivery int32
}

// Channel is the device end of the control-request protocol. It is safe for
// concurrent use.
type Channel struct {
	cfg Config

	mu                 sync.Mutex
	reqs               map[uint16]*request
	lastID             uint16
	maxActive          int
	allocPendingChecks int
	allocFail          bool
	queue              []*request
	running            bool
	gen                uint64 // bumped by Reset; stale handler results are dropped
}

// New makes a channel with no requests in flight.
func New(cfg Config) *Channel {
	if cfg.MaxActive <= 0 {
		cfg.MaxActive = DefaultMaxActive
	}
	if cfg.PooledBufferSize <= 0 {
		cfg.PooledBufferSize = DefaultPooledBufferSize
	}
	return &Channel{cfg: cfg, reqs: map[uint16]*request{}, maxActive: cfg.MaxActive}
}

// SetMaxActive changes the number of requests that may be in flight; 0 makes
// every INIT answer BUSY, which lets tests exercise the host's retry.
func (ch *Channel) SetMaxActive(n int) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.maxActive = max(n, 0)
}

// SetAllocPending makes the next requests with a large payload answer
// PENDING to this many CHECKs before their buffer is ready (default 0: the
// first CHECK after INIT finds it ready, as on an idle device).
func (ch *Channel) SetAllocPending(checks int) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.allocPendingChecks = max(checks, 0)
}

// SetAllocFail makes buffer allocation for large payloads fail, so CHECK
// answers NO_MEMORY.
func (ch *Channel) SetAllocFail(fail bool) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.allocFail = fail
}

// Active reports how many requests the device holds.
func (ch *Channel) Active() int {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return len(ch.reqs)
}

// Reset models the device resetting (or the USB bus being reset): every
// request is dropped without completion, queued handlers do not run, results
// of a handler still running are discarded, and ids start again from 1.
func (ch *Channel) Reset() {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.gen++
	ch.reqs = map[uint16]*request{}
	ch.queue = nil
	ch.lastID = 0
}

func stall(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrStall, fmt.Sprintf(format, a...))
}

// Control handles one vendor control transfer with gousb's Device.Control
// signature. For IN transfers data is the host's buffer (its length is
// wLength) and the returned count is how much the device filled.
func (ch *Channel) Control(rType, request uint8, val, idx uint16, data []byte) (int, error) {
	if ch.cfg.Meter != nil {
		ch.cfg.Meter.Charge(time.Millisecond)
	}
	if rType&0x7F != 0x40 { // vendor request to the device recipient
		return 0, stall("bmRequestType %#02x is not a vendor request to the device", rType)
	}
	in := rType&0x80 != 0
	if !in && len(data) == 0 && ch.cfg.OutNeedsData {
		return 0, stall("OUT transfer without a data stage (this platform never completes one)")
	}
	if request == ctrl.LegacyRequest {
		// Outside the lock: LegacyReset may well Reset the channel.
		return ch.legacy(in, idx, data)
	}
	var done []completion
	ch.mu.Lock()
	n, err := ch.dispatch(in, request, val, idx, data, &done)
	ch.mu.Unlock()
	ch.fire(done)
	return n, err
}

func (ch *Channel) fire(done []completion) {
	if ch.cfg.OnComplete == nil {
		return
	}
	for _, c := range done {
		ch.cfg.OnComplete(c.typ, c.delivery)
	}
}

func (ch *Channel) dispatch(in bool, request uint8, val, idx uint16, data []byte, done *[]completion) (int, error) {
	switch {
	case request == ctrl.ServiceSend:
		if in {
			return 0, stall("SEND must be host-to-device")
		}
		return ch.send(idx, data)
	case request < ctrl.ServiceInit || request > ctrl.ServiceReset:
		return 0, stall("unknown vendor request %#02x", request)
	case !in:
		return 0, stall("service request %d must be device-to-host", request)
	case request == ctrl.ServiceRecv:
		return ch.recv(idx, data, done)
	case len(data) < ctrl.MinWLength:
		return 0, stall("service request %d with wLength %d < %d", request, len(data), ctrl.MinWLength)
	}
	var rep ctrl.ServiceReply
	switch request {
	case ctrl.ServiceInit:
		rep = ch.init(idx, val)
	case ctrl.ServiceCheck:
		rep = ch.check(idx, done)
	case ctrl.ServiceReset:
		rep = ch.reset(idx, done)
	}
	return copy(data, rep.Encode()), nil
}

func (ch *Channel) nextID() uint16 {
	for {
		ch.lastID++
		if ch.lastID == 0 { // 0 is USB_REQUEST_INVALID_ID
			continue
		}
		if _, busy := ch.reqs[ch.lastID]; !busy {
			return ch.lastID
		}
	}
}

func (ch *Channel) init(typ, size uint16) ctrl.ServiceReply {
	if len(ch.reqs) >= ch.maxActive {
		return ctrl.ServiceReply{Status: ctrl.StatusBusy}
	}
	r := &request{id: ch.nextID(), typ: typ, size: int(size)}
	ch.reqs[r.id] = r
	status := ctrl.StatusOK
	switch {
	case r.size == 0:
		r.state = statePending
		ch.enqueue(r)
	case r.size <= ch.cfg.PooledBufferSize:
		r.buf = make([]byte, r.size)
		r.state = stateRecvPayload
	default:
		r.state = stateAllocPending
		r.pendingChecks = ch.allocPendingChecks
		status = ctrl.StatusPending
	}
	return ctrl.ServiceReply{Status: status, ID: r.id, HasID: true}
}

func (ch *Channel) check(id uint16, done *[]completion) ctrl.ServiceReply {
	r := ch.reqs[id]
	if r == nil {
		return ctrl.ServiceReply{Status: ctrl.StatusNotFound}
	}
	switch r.state {
	case stateAllocPending:
		if r.pendingChecks > 0 {
			r.pendingChecks--
			return ctrl.ServiceReply{Status: ctrl.StatusPending}
		}
		if ch.allocFail {
			delete(ch.reqs, id) // no handler ran: nothing to complete
			return ctrl.ServiceReply{Status: ctrl.StatusNoMemory}
		}
		r.buf = make([]byte, r.size)
		r.state = stateRecvPayload
		return ctrl.ServiceReply{Status: ctrl.StatusOK}
	case stateRecvPayload:
		return ctrl.ServiceReply{Status: ctrl.StatusOK}
	case statePending:
		return ctrl.ServiceReply{Status: ctrl.StatusPending}
	}
	rep := ctrl.ServiceReply{Status: ctrl.StatusOK, Result: r.result, HasResult: true}
	if len(r.reply) > 0 {
		rep.Size, rep.HasSize = uint32(len(r.reply)), true
	} else {
		ch.end(r, 0, done) // nothing to RECV: the request is over once this reply is out
	}
	return rep
}

func (ch *Channel) send(id uint16, data []byte) (int, error) {
	r := ch.reqs[id]
	switch {
	case r == nil:
		return 0, stall("SEND for unknown request %d", id)
	case r.state != stateRecvPayload:
		return 0, stall("SEND for request %d, which is not waiting for its payload", id)
	case len(data) == 0 || r.got+len(data) > r.size:
		return 0, stall("SEND of %d bytes for request %d with %d of %d bytes received", len(data), id, r.got, r.size)
	}
	r.got += copy(r.buf[r.got:], data)
	if r.got == r.size {
		r.state = statePending
		ch.enqueue(r)
	}
	return len(data), nil
}

func (ch *Channel) recv(id uint16, data []byte, done *[]completion) (int, error) {
	r := ch.reqs[id]
	switch {
	case r == nil:
		return 0, stall("RECV for unknown request %d", id)
	case r.state != stateDone || len(r.reply) == 0:
		return 0, stall("RECV for request %d, which has no reply ready", id)
	case len(data) == 0 || r.sent+len(data) > len(r.reply):
		return 0, stall("RECV of %d bytes for request %d with %d of %d bytes sent", len(data), id, r.sent, len(r.reply))
	}
	n := copy(data, r.reply[r.sent:])
	r.sent += n
	if r.sent == len(r.reply) {
		ch.end(r, 0, done)
	}
	return n, nil
}

func (ch *Channel) reset(id uint16, done *[]completion) ctrl.ServiceReply {
	if id != 0 {
		r := ch.reqs[id]
		if r == nil {
			return ctrl.ServiceReply{Status: ctrl.StatusNotFound}
		}
		ch.end(r, ctrl.CodeCancelled, done)
		return ctrl.ServiceReply{Status: ctrl.StatusOK}
	}
	for _, r := range ch.reqs {
		ch.end(r, ctrl.CodeCancelled, done)
	}
	return ctrl.ServiceReply{Status: ctrl.StatusOK}
}

// end removes a request from the channel. Its completion fires now if its
// handler already ran, later (when the handler returns) if it is queued or
// running, and never if the handler was never going to run.
func (ch *Channel) end(r *request, delivery int32, done *[]completion) {
	delete(ch.reqs, r.id)
	switch r.state {
	case stateDone:
		*done = append(*done, completion{r.typ, delivery})
	case statePending:
		r.ended, r.delivery = true, delivery
	}
}

func (ch *Channel) enqueue(r *request) {
	ch.queue = append(ch.queue, r)
	if !ch.running {
		ch.running = true
		go ch.work()
	}
}

// work runs queued handlers one at a time and exits when the queue is empty,
// so an idle channel holds no goroutine.
func (ch *Channel) work() {
	for {
		ch.mu.Lock()
		if len(ch.queue) == 0 {
			ch.running = false
			ch.mu.Unlock()
			return
		}
		r := ch.queue[0]
		ch.queue = ch.queue[1:]
		gen := ch.gen
		ch.mu.Unlock()

		result, reply := int32(ctrl.CodeNotSupported), []byte(nil)
		if ch.cfg.Handler != nil {
			result, reply = ch.cfg.Handler.HandleRequest(r.typ, r.buf)
		}

		var done []completion
		ch.mu.Lock()
		if gen == ch.gen {
			if r.ended {
				done = append(done, completion{r.typ, r.delivery})
			} else {
				r.state, r.result, r.reply = stateDone, result, reply
			}
		}
		ch.mu.Unlock()
		ch.fire(done)
	}
}

// legacy answers the raw 0x50 requests, which Device OS serves from the USB
// interrupt without the protocol.
func (ch *Channel) legacy(in bool, typ uint16, data []byte) (int, error) {
	if !in {
		if typ == ctrl.ReqReset && ch.cfg.LegacyReset != nil {
			ch.cfg.LegacyReset()
			return len(data), nil
		}
		return 0, stall("legacy OUT request %d not supported", typ)
	}
	if len(data) == 0 {
		return 0, stall("legacy IN request %d without a data stage", typ)
	}
	var answer func() string
	switch typ {
	case ctrl.ReqDeviceID:
		answer = ch.cfg.LegacyDeviceID
	case ctrl.ReqSystemVersion:
		answer = ch.cfg.LegacySystemVersion
	}
	if answer == nil {
		return 0, stall("legacy IN request %d not supported", typ)
	}
	s := answer()
	if len(data) < len(s) {
		return 0, stall("legacy IN request %d: wLength %d < %d", typ, len(data), len(s))
	}
	return copy(data, s), nil
}
