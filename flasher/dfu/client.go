package dfu

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
)

// Controller is the one thing the client needs from a USB stack: a control transfer with
// gousb's (*gousb.Device).Control signature. For IN requests data is the buffer to fill and
// the result is the number of bytes received. Implementations must bound each transfer's
// time themselves (gousb: Device.ControlTimeout); the client cannot interrupt one.
type Controller interface {
	Control(rType, request uint8, val, idx uint16, data []byte) (int, error)
}

// Status is a decoded GETSTATUS reply.
type Status struct {
	Status      byte          // bStatus
	PollTimeout time.Duration // bwPollTimeout: how long to wait before the next GETSTATUS
	State       byte          // bState
	String      byte          // iString
}

// Options configure a Client. The zero value works for a device whose wTransferSize is 1024.
type Options struct {
	// Interface is the DFU interface number (wIndex); Particle devices use 0.
	Interface uint16
	// TransferSize is the device's wTransferSize from its functional descriptor (4096 on
	// every Particle bootloader). When 0 the client uses 1024-byte blocks and, because it
	// cannot know how the device numbers blocks, one SET_ADDRESS per block as dfu-util does.
	TransferSize uint16
	// Log, if set, receives every control transfer (tests and debugging).
	Log func(Transfer)
	// Sleep waits between polls and retries; the default is a timer that honours ctx.
	Sleep func(ctx context.Context, d time.Duration) error
	// Retries is how often a STALLed DfuSe command (SET_ADDRESS, ERASE) is repeated: 0 means
	// the default 4 (particle-usb's count, after a Boron stalled ERASE in the field), a
	// negative value means never.
	Retries int
	// RetryDelay is the pause before repeating a stalled command (default 1 s, as
	// particle-usb waits).
	RetryDelay time.Duration
	// BusyTimeout bounds how long one operation may keep the device busy (dfuDNBUSY) before
	// the client gives up (default 30 s: an STM32F2 128 KB sector takes up to 4 s).
	BusyTimeout time.Duration
	// Logger receives retries and recoveries (default slog.Default()).
	Logger *slog.Logger
}

// Transfer is one control transfer as the client saw it.
type Transfer struct {
	Time        time.Time // when it was issued
	RequestType uint8
	Request     uint8
	Value       uint16
	Index       uint16
	Length      int    // wLength: bytes sent (OUT) or asked for (IN)
	Err         error  // transport error, if any
	Note        string // "SET_ADDRESS 0x08020000", "ERASE 0x00030000", "GETSTATUS state=4 poll=85ms"
}

// Progress reports how far an Erase, Write or Read is, in bytes.
type Progress struct {
	Phase       string // "erase" | "write" | "read"
	Done, Total int
}

// Client drives one DFU interface. It is not safe for concurrent use: DFU is a single state
// machine on the device, so concurrent operations would interleave meaninglessly anyway.
type Client struct {
	ctl       Controller
	opts      Options
	xfer      int  // block size
	sizeKnown bool // xfer is the device's wTransferSize, so block numbers may advance
	retries   int
	delay     time.Duration
	busy      time.Duration
	log       *slog.Logger
}

const (
	defaultTransferSize = 1024
	maxBlock            = 0xFFFF // wBlockNum is u16
	firstBlock          = 2      // DfuSe: blocks 0 and 1 are commands
	maxPolls            = 100000
)

// New returns a client for the DFU interface behind c.
func New(c Controller, opts Options) *Client {
	cl := &Client{ctl: c, opts: opts, xfer: int(opts.TransferSize), sizeKnown: opts.TransferSize != 0,
		retries: opts.Retries, delay: opts.RetryDelay, busy: opts.BusyTimeout, log: opts.Logger}
	if cl.xfer == 0 {
		cl.xfer = defaultTransferSize
	}
	switch {
	case cl.retries == 0:
		cl.retries = 4
	case cl.retries < 0:
		cl.retries = 0
	}
	if cl.delay <= 0 {
		cl.delay = time.Second
	}
	if cl.busy <= 0 {
		cl.busy = 30 * time.Second
	}
	if cl.log == nil {
		cl.log = slog.Default()
	}
	return cl
}

// TransferSize is the block size the client uses.
func (c *Client) TransferSize() int { return c.xfer }

// TransferError is a transport failure of one request. It unwraps to the Controller's error
// and, when that error is a STALL or a vanished device in libusb's words, also to ErrStall or
// ErrNoDevice.
type TransferError struct {
	Request string
	Err     error
}

// Error names the request and the transport's error.
func (e *TransferError) Error() string { return e.Request + ": " + e.Err.Error() }

// Unwrap exposes the cause and the classified sentinel.
func (e *TransferError) Unwrap() []error {
	errs := []error{e.Err}
	if isStall(e.Err) && !errors.Is(e.Err, ErrStall) {
		errs = append(errs, ErrStall)
	}
	if isNoDevice(e.Err) && !errors.Is(e.Err, ErrNoDevice) {
		errs = append(errs, ErrNoDevice)
	}
	return errs
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.opts.Sleep != nil {
		return c.opts.Sleep(ctx, d)
	}
	return Sleep(ctx, d)
}

// Sleep is the client's default wait (Options.Sleep): d, or until ctx is done.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// control issues one request and logs it; note builds the log note from the byte count.
func (c *Client) control(ctx context.Context, rt, req uint8, val uint16, data []byte, note func(n int) string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	t := Transfer{Time: time.Now(), RequestType: rt, Request: req, Value: val, Index: c.opts.Interface, Length: len(data)}
	n, err := c.ctl.Control(rt, req, val, c.opts.Interface, data)
	if err == nil && (n < 0 || n > len(data)) {
		err = fmt.Errorf("%w: %d bytes reported for a %d-byte transfer", ErrProtocol, n, len(data))
		n = 0
	}
	if err != nil {
		n = max(n, 0)
		err = &TransferError{Request: RequestName(req), Err: err}
	}
	if c.opts.Log != nil {
		t.Err = err
		if note != nil {
			t.Note = note(n)
		}
		c.opts.Log(t)
	}
	return n, err
}

func fixed(s string) func(int) string { return func(int) string { return s } }

// GetStatus sends DFU_GETSTATUS. A reply that is not exactly 6 bytes or names a state DFU
// does not have is an ErrProtocol error: acting on it could mean writing into the unknown.
func (c *Client) GetStatus(ctx context.Context) (Status, error) {
	var buf [StatusLength]byte
	var st Status
	n, err := c.control(ctx, RequestTypeIn, ReqGetStatus, 0, buf[:], func(n int) string {
		if n != StatusLength {
			return fmt.Sprintf("GETSTATUS short reply (%d bytes)", n)
		}
		note := fmt.Sprintf("GETSTATUS state=%d poll=%dms", buf[4], uint32(buf[1])|uint32(buf[2])<<8|uint32(buf[3])<<16)
		if buf[0] != StatusOK {
			note += fmt.Sprintf(" status=%s", StatusName(buf[0]))
		}
		return note
	})
	if err != nil {
		return st, err
	}
	if n != StatusLength {
		return st, fmt.Errorf("%w: GETSTATUS returned %d bytes, want %d", ErrProtocol, n, StatusLength)
	}
	st = Status{
		Status:      buf[0],
		PollTimeout: time.Duration(uint32(buf[1])|uint32(buf[2])<<8|uint32(buf[3])<<16) * time.Millisecond,
		State:       buf[4],
		String:      buf[5],
	}
	if st.State > maxState {
		return st, fmt.Errorf("%w: GETSTATUS reports state %d, which DFU 1.1 does not define", ErrProtocol, st.State)
	}
	return st, nil
}

// ClearStatus sends DFU_CLRSTATUS, which takes a device from dfuERROR back to dfuIDLE.
func (c *Client) ClearStatus(ctx context.Context) error {
	_, err := c.control(ctx, RequestTypeOut, ReqClrStatus, 0, nil, fixed("CLRSTATUS"))
	return err
}

// GetState sends DFU_GETSTATE: the state without GETSTATUS's side effects (GETSTATUS is
// what advances dfuDNLOAD_SYNC and dfuMANIFEST_SYNC).
func (c *Client) GetState(ctx context.Context) (byte, error) {
	var buf [1]byte
	n, err := c.control(ctx, RequestTypeIn, ReqGetState, 0, buf[:], func(n int) string {
		return fmt.Sprintf("GETSTATE state=%d", buf[0])
	})
	if err != nil {
		return 0, err
	}
	if n != 1 {
		return 0, fmt.Errorf("%w: GETSTATE returned %d bytes, want 1", ErrProtocol, n)
	}
	if buf[0] > maxState {
		return buf[0], fmt.Errorf("%w: GETSTATE reports state %d, which DFU 1.1 does not define", ErrProtocol, buf[0])
	}
	return buf[0], nil
}

// Abort sends DFU_ABORT: back to dfuIDLE from the idle/sync states (needed before UPLOAD
// after a SET_ADDRESS, which leaves the device in dfuDNLOAD_IDLE).
func (c *Client) Abort(ctx context.Context) error {
	_, err := c.control(ctx, RequestTypeOut, ReqAbort, 0, nil, fixed("ABORT"))
	return err
}

func notResponding(what string, format string, args ...any) error {
	return fmt.Errorf("%w during %s: %s; %s", ErrNotResponding, what, fmt.Sprintf(format, args...), Remedy)
}

// waitBusy polls GETSTATUS while the device is busy, waiting exactly the bwPollTimeout it
// asks for between polls, until it reports a settled state. dfuERROR is cleared (CLRSTATUS)
// and returned as a *StatusError. The wait is bounded by BusyTimeout, counting both real time
// and the time the device asked for, so a device that asks for hours fails at once.
func (c *Client) waitBusy(ctx context.Context, what string) (Status, error) {
	start := time.Now()
	var waited time.Duration
	zero := 0
	for polls := 0; ; polls++ {
		st, err := c.GetStatus(ctx)
		if err != nil {
			return st, err
		}
		switch st.State {
		case StateDnbusy, StateDnloadSync:
		case StateError:
			if cerr := c.ClearStatus(ctx); cerr != nil {
				c.log.Warn("dfu: CLRSTATUS after error failed", "during", what, "err", cerr)
			}
			return st, &StatusError{Status: st.Status, State: st.State, String: st.String}
		default:
			if st.Status != StatusOK {
				return st, &StatusError{Status: st.Status, State: st.State, String: st.String}
			}
			return st, nil
		}
		wait := st.PollTimeout
		if wait == 0 {
			// A device that says "busy, ask again now" forever would spin us; after the
			// first immediate re-poll, back off gently (dfu-util gives up after 100).
			if zero++; zero > 1 {
				wait = min(time.Millisecond<<min(zero-2, 6), 50*time.Millisecond)
			}
		} else {
			zero = 0
		}
		waited += wait
		if polls >= maxPolls || max(time.Since(start), waited) > c.busy {
			return st, notResponding(what, "still %s after %v (limit %v)", StateName(st.State), max(time.Since(start), waited).Round(time.Millisecond), c.busy)
		}
		if err := c.sleep(ctx, wait); err != nil {
			return st, err
		}
	}
}

// errLeaving marks a device that is already manifesting (it will reset by itself).
var errLeaving = errors.New("it is already leaving DFU mode and will reset")

// toIdle brings the device to dfuIDLE (or leaves it in dfuDNLOAD_IDLE when that is good
// enough for the next request): CLRSTATUS out of dfuERROR, ABORT out of the other idle and
// sync states, wait out dfuDNBUSY.
func (c *Client) toIdle(ctx context.Context, dnloadIdleOK bool) error {
	for range 5 {
		st, err := c.GetStatus(ctx)
		if err != nil {
			return err
		}
		switch st.State {
		case StateIdle:
			return nil
		case StateDnloadIdle:
			if dnloadIdleOK {
				return nil
			}
			err = c.Abort(ctx)
		case StateError:
			c.log.Debug("dfu: clearing device error", "status", StatusName(st.Status))
			err = c.ClearStatus(ctx)
		case StateUploadIdle, StateDnloadSync, StateManifestSync:
			err = c.Abort(ctx)
		case StateDnbusy:
			err = c.sleep(ctx, min(max(st.PollTimeout, time.Millisecond), c.busy))
		case StateManifest, StateManifestWaitReset:
			return fmt.Errorf("%w: device is in %s: %w", ErrProtocol, StateName(st.State), errLeaving)
		default:
			return fmt.Errorf("%w: device is in %s, from which only a reset gets it back; %s", ErrProtocol, StateName(st.State), Remedy)
		}
		if err != nil {
			return err
		}
	}
	return notResponding("return to dfuIDLE", "the device did not reach dfuIDLE")
}

// dfuseCommand sends a DfuSe command (DNLOAD wValue 0) and waits for it to complete, repeating
// it when the device STALLs either the command or its status poll: commands are idempotent,
// and stalls during ERASE have been seen in the field.
func (c *Client) dfuseCommand(ctx context.Context, cmd byte, addr uint32, withAddr bool, accept func(byte) bool) (Status, error) {
	payload := []byte{cmd}
	note := CommandName(cmd)
	if withAddr {
		payload = binary.LittleEndian.AppendUint32(payload, addr)
		note = fmt.Sprintf("%s 0x%08x", note, addr)
	}
	if accept == nil {
		accept = func(s byte) bool { return s == StateDnloadIdle }
	}
	for attempt := 1; ; attempt++ {
		st, err := c.dfuseOnce(ctx, payload, note, accept)
		if err == nil {
			return st, nil
		}
		if !errors.Is(err, ErrStall) || ctx.Err() != nil {
			return st, err
		}
		if attempt > c.retries {
			if attempt > 1 {
				return st, fmt.Errorf("%s: the device stalled it %d times (%s): %w", note, attempt, Remedy, err)
			}
			return st, err
		}
		c.log.Warn("dfu: device stalled a DfuSe command, retrying", "command", note, "attempt", attempt, "err", err)
		if err := c.sleep(ctx, c.delay); err != nil {
			return st, err
		}
		if err := c.toIdle(ctx, true); err != nil && !errors.Is(err, ErrStall) {
			return st, fmt.Errorf("%s: recovering from a stall: %w", note, err)
		}
	}
}

func (c *Client) dfuseOnce(ctx context.Context, payload []byte, note string, accept func(byte) bool) (Status, error) {
	if _, err := c.control(ctx, RequestTypeOut, ReqDnload, 0, payload, fixed(note)); err != nil {
		return Status{}, err
	}
	st, err := c.waitBusy(ctx, note)
	if err != nil {
		return st, err
	}
	if !accept(st.State) {
		return st, fmt.Errorf("%w: %s left the device in %s", ErrProtocol, note, StateName(st.State))
	}
	return st, nil
}

// checkRange returns the sectors covering [addr, addr+length) after checking that every one
// of them allows need, with an error naming the address and the reason otherwise.
func checkRange(l *memlayout.Layout, addr uint32, length int, need memlayout.Perm) ([]memlayout.Sector, error) {
	if l == nil {
		return nil, errors.New("no memory layout (the alt setting's DfuSe string) given")
	}
	if uint64(addr)+uint64(length) > 1<<32 {
		return nil, fmt.Errorf("%d bytes run past the 32-bit address space: %w", length, ErrOutOfRange)
	}
	if l.EraseOnly() && need != memlayout.Erasable {
		return nil, fmt.Errorf("%q advertises every sector as erase-only: %w", l.Name, ErrProtected)
	}
	secs, err := l.SectorsCovering(addr, uint32(length))
	if err != nil {
		return nil, fmt.Errorf("range 0x%08x..0x%08x is not inside %q (0x%08x..0x%08x): %w",
			addr, uint64(addr)+uint64(length), l.Name, l.Start(), l.End(), ErrOutOfRange)
	}
	for _, s := range secs {
		if !s.Perm.Has(need) {
			return nil, fmt.Errorf("sector 0x%08x..0x%08x of %q allows only %s, not %s: %w",
				s.Start, uint64(s.Start)+uint64(s.Size), l.Name, s.Perm, need, ErrReadOnly)
		}
	}
	return secs, nil
}

// Erase erases exactly the sectors that [addr, addr+length) touches, after checking in the
// layout that all of them are erasable.
func (c *Client) Erase(ctx context.Context, layout *memlayout.Layout, addr, length uint32, progress func(Progress)) error {
	secs, err := checkRange(layout, addr, int(length), memlayout.Erasable)
	if err != nil {
		return fmt.Errorf("erase 0x%08x: %w", addr, err)
	}
	if len(secs) == 0 {
		return nil
	}
	if err := c.toIdle(ctx, true); err != nil {
		return fmt.Errorf("erase 0x%08x: %w", addr, err)
	}
	return c.eraseSectors(ctx, secs, progress)
}

func (c *Client) eraseSectors(ctx context.Context, secs []memlayout.Sector, progress func(Progress)) error {
	total := 0
	for _, s := range secs {
		total += int(s.Size)
	}
	done := 0
	for _, s := range secs {
		if _, err := c.dfuseCommand(ctx, CmdErase, s.Start, true, nil); err != nil {
			return fmt.Errorf("erase 0x%08x: %w", s.Start, err)
		}
		done += int(s.Size)
		if progress != nil {
			progress(Progress{Phase: "erase", Done: done, Total: total})
		}
	}
	return nil
}

// blocksPerRun is how many blocks one SET_ADDRESS may cover: all wBlockNum values from 2 to
// 0xFFFF when the block size is the device's wTransferSize, otherwise one.
func (c *Client) blocksPerRun() int {
	if !c.sizeKnown {
		return 1
	}
	return maxBlock - firstBlock + 1
}

// run is a stretch of the transfer covered by one SET_ADDRESS.
type run struct {
	off, n int // offset into the data and length
}

func planRuns(n, xfer, blocks int) []run {
	var out []run
	for off := 0; off < n; {
		l := min(n-off, blocks*xfer)
		out = append(out, run{off, l})
		off += l
	}
	return out
}

// Write puts data at addr. It first checks the range in the layout (every sector writable;
// a clear error names the address and whether it is read-only, outside the memory or the
// device is protected), erases exactly the erasable sectors the range covers, then sends one
// SET_ADDRESS per contiguous run and DNLOAD blocks 2, 3, 4, ..., each followed by GETSTATUS
// polling until dfuDNLOAD_IDLE. A device error is cleared (CLRSTATUS) and returned as
// "write 0x<address>: ..." wrapping a *StatusError.
func (c *Client) Write(ctx context.Context, layout *memlayout.Layout, addr uint32, data []byte, progress func(Progress)) error {
	secs, err := checkRange(layout, addr, len(data), memlayout.Writable)
	if err != nil {
		return fmt.Errorf("write 0x%08x: %w", addr, err)
	}
	if len(data) == 0 {
		return nil
	}
	if err := c.toIdle(ctx, true); err != nil {
		return fmt.Errorf("write 0x%08x: %w", addr, err)
	}
	var erase []memlayout.Sector
	for _, s := range secs {
		if s.Perm.Has(memlayout.Erasable) { // a DCT ('e') is rewritten without erasing
			erase = append(erase, s)
		}
	}
	if err := c.eraseSectors(ctx, erase, progress); err != nil {
		return err
	}
	for _, r := range planRuns(len(data), c.xfer, c.blocksPerRun()) {
		runAddr := addr + uint32(r.off)
		if _, err := c.dfuseCommand(ctx, CmdSetAddress, runAddr, true, nil); err != nil {
			return fmt.Errorf("write 0x%08x: %w", runAddr, err)
		}
		for b := 0; b*c.xfer < r.n; b++ {
			lo, hi := r.off+b*c.xfer, r.off+min((b+1)*c.xfer, r.n)
			at := addr + uint32(lo)
			if err := c.writeBlock(ctx, uint16(firstBlock+b), at, data[lo:hi]); err != nil {
				return fmt.Errorf("write 0x%08x: %w", at, err)
			}
			if progress != nil {
				progress(Progress{Phase: "write", Done: hi, Total: len(data)})
			}
		}
	}
	return nil
}

func (c *Client) writeBlock(ctx context.Context, block uint16, at uint32, chunk []byte) error {
	note := fmt.Sprintf("DNLOAD block %d (0x%08x, %d bytes)", block, at, len(chunk))
	if _, err := c.control(ctx, RequestTypeOut, ReqDnload, block, chunk, fixed(note)); err != nil {
		c.recover(ctx)
		return err
	}
	st, err := c.waitBusy(ctx, note)
	if err != nil {
		var se *StatusError
		if !errors.As(err, &se) { // a StatusError was already cleared by waitBusy
			c.recover(ctx)
		}
		return err
	}
	if st.State != StateDnloadIdle {
		c.recover(ctx)
		return fmt.Errorf("%w: after the block the device is in %s, not dfuDNLOAD_IDLE", ErrProtocol, StateName(st.State))
	}
	return nil
}

// recover makes a best effort to leave the device idle after a failed request, so the next
// operation (or a retry by the user) starts clean. Its own failure is only logged: the
// original error is the one that matters.
func (c *Client) recover(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	if err := c.toIdle(ctx, false); err != nil {
		c.log.Debug("dfu: could not return the device to dfuIDLE after an error", "err", err)
	}
}

// Read returns length bytes at addr (UPLOAD works on any address, no layout needed).
func (c *Client) Read(ctx context.Context, addr, length uint32) ([]byte, error) {
	return c.ReadProgress(ctx, addr, length, nil)
}

// ReadProgress is Read with progress reports: SET_ADDRESS, ABORT to dfuIDLE (UPLOAD is not
// allowed in dfuDNLOAD_IDLE), then UPLOAD blocks 2, 3, ... and a final ABORT.
func (c *Client) ReadProgress(ctx context.Context, addr, length uint32, progress func(Progress)) ([]byte, error) {
	if uint64(addr)+uint64(length) > 1<<32 {
		return nil, fmt.Errorf("read 0x%08x: %d bytes run past the 32-bit address space: %w", addr, length, ErrOutOfRange)
	}
	out := make([]byte, 0, length)
	if length == 0 {
		return out, nil
	}
	if err := c.toIdle(ctx, true); err != nil {
		return nil, fmt.Errorf("read 0x%08x: %w", addr, err)
	}
	for i, r := range planRuns(int(length), c.xfer, c.blocksPerRun()) {
		runAddr := addr + uint32(r.off)
		if i > 0 { // dfuUPLOAD_IDLE does not take a DNLOAD
			if err := c.Abort(ctx); err != nil {
				return nil, fmt.Errorf("read 0x%08x: %w", runAddr, err)
			}
		}
		if _, err := c.dfuseCommand(ctx, CmdSetAddress, runAddr, true, nil); err != nil {
			return nil, fmt.Errorf("read 0x%08x: %w", runAddr, err)
		}
		if err := c.Abort(ctx); err != nil {
			return nil, fmt.Errorf("read 0x%08x: %w", runAddr, err)
		}
		for b := 0; b*c.xfer < r.n; b++ {
			lo, hi := r.off+b*c.xfer, r.off+min((b+1)*c.xfer, r.n)
			at := addr + uint32(lo)
			buf := make([]byte, hi-lo)
			note := fmt.Sprintf("UPLOAD block %d (0x%08x, %d bytes)", firstBlock+b, at, len(buf))
			n, err := c.control(ctx, RequestTypeIn, ReqUpload, uint16(firstBlock+b), buf, fixed(note))
			if err != nil {
				c.recover(ctx)
				return nil, fmt.Errorf("read 0x%08x: %w", at, err)
			}
			if n < len(buf) {
				return nil, fmt.Errorf("read 0x%08x: %w", at, c.shortUpload(ctx, n, len(buf)))
			}
			out = append(out, buf...)
			if progress != nil {
				progress(Progress{Phase: "read", Done: len(out), Total: int(length)})
			}
		}
	}
	if err := c.Abort(ctx); err != nil {
		return nil, fmt.Errorf("read 0x%08x: returning to idle: %w", addr, err)
	}
	return out, nil
}

// shortUpload explains a short UPLOAD: protected Gen3 devices answer with zero bytes and
// dfuERROR/errVENDOR.
func (c *Client) shortUpload(ctx context.Context, got, want int) error {
	st, err := c.GetStatus(ctx)
	if err == nil && st.State == StateError {
		if cerr := c.ClearStatus(ctx); cerr != nil {
			c.log.Warn("dfu: CLRSTATUS after a short upload failed", "err", cerr)
		}
		return &StatusError{Status: st.Status, State: st.State, String: st.String}
	}
	c.recover(ctx)
	return fmt.Errorf("%w: UPLOAD returned %d of %d bytes", ErrProtocol, got, want)
}

// Commands asks the bootloader which DfuSe commands it supports (UPLOAD wValue 0): 00 21 41
// on Gen2, 00 21 41 FA FB on Gen3 and later.
func (c *Client) Commands(ctx context.Context) ([]byte, error) {
	if err := c.toIdle(ctx, false); err != nil {
		return nil, fmt.Errorf("get commands: %w", err)
	}
	buf := make([]byte, 16) // > 3 so that the STM32 bootloader returns to dfuIDLE afterwards
	n, err := c.control(ctx, RequestTypeIn, ReqUpload, 0, buf, fixed("GET_COMMANDS"))
	if err != nil {
		return nil, fmt.Errorf("get commands: %w", err)
	}
	if n == 0 || buf[0] != CmdGetCommands {
		return nil, fmt.Errorf("get commands: %w: reply % x does not start with 00", ErrProtocol, buf[:n])
	}
	return buf[:n], nil
}

// leftOK reports whether err means the device went away while leaving DFU mode, which is the
// goal of leaving: a device that resets before answering has left.
func leftOK(err error) bool { return errors.Is(err, ErrNoDevice) || errors.Is(err, ErrStall) }

// manifesting waits, after a leave or safe-mode request, until the device reports that it is
// manifesting (it resets on its own afterwards).
func (c *Client) manifesting(ctx context.Context, what string) error {
	start := time.Now()
	var waited time.Duration
	for polls := 0; ; polls++ {
		st, err := c.GetStatus(ctx)
		if err != nil {
			if leftOK(err) {
				c.log.Debug("dfu: device went away while manifesting", "during", what, "err", err)
				return nil
			}
			return err
		}
		switch st.State {
		case StateManifest, StateManifestWaitReset, StateDnloadIdle: // dfuDNLOAD_IDLE: Gen2 quirk
			return nil
		case StateManifestSync, StateDnbusy, StateDnloadSync:
		case StateError:
			if cerr := c.ClearStatus(ctx); cerr != nil {
				c.log.Warn("dfu: CLRSTATUS failed", "during", what, "err", cerr)
			}
			return &StatusError{Status: st.Status, State: st.State, String: st.String}
		default:
			return fmt.Errorf("%w: device went to %s instead of manifesting", ErrProtocol, StateName(st.State))
		}
		wait := max(st.PollTimeout, time.Millisecond)
		waited += wait
		if polls >= maxPolls || max(time.Since(start), waited) > c.busy {
			return notResponding(what, "still %s after %v", StateName(st.State), max(time.Since(start), waited).Round(time.Millisecond))
		}
		if err := c.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// Leave ends DFU mode the DfuSe way: back to idle, a zero-length DNLOAD, then GETSTATUS until
// the device manifests. Gen3 reports dfuMANIFEST, the Gen2 bootloader deliberately reports
// dfuDNLOAD_IDLE; both are accepted, and so is the device vanishing (no device, pipe error)
// while it resets.
func (c *Client) Leave(ctx context.Context) error {
	if err := c.toIdle(ctx, true); err != nil {
		if errors.Is(err, errLeaving) {
			return nil // already manifesting: it resets on its own
		}
		return fmt.Errorf("leave: %w", err)
	}
	if _, err := c.control(ctx, RequestTypeOut, ReqDnload, firstBlock, nil, fixed("DNLOAD zero-length (leave)")); err != nil {
		if errors.Is(err, ErrNoDevice) {
			return nil
		}
		return fmt.Errorf("leave: %w", err)
	}
	if err := c.manifesting(ctx, "leave"); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	return nil
}

// EnterSafeMode asks a Gen3+ bootloader (DfuSe command 0xFA) to reset into safe mode, where
// Device OS stays off the user application: the way to reach a device whose application
// crashes on boot. Gen2 bootloaders lack the command (ErrUnsupported).
func (c *Client) EnterSafeMode(ctx context.Context) error {
	cmds, err := c.Commands(ctx)
	if err != nil {
		return fmt.Errorf("enter safe mode: %w", err)
	}
	supported := false
	for _, b := range cmds {
		supported = supported || b == CmdEnterSafeMode
	}
	if !supported {
		return fmt.Errorf("enter safe mode: bootloader commands are % x: %w", cmds, ErrUnsupported)
	}
	accept := func(s byte) bool {
		return s == StateManifestSync || s == StateManifest || s == StateManifestWaitReset
	}
	st, err := c.dfuseCommand(ctx, CmdEnterSafeMode, 0, false, accept)
	if err != nil {
		if errors.Is(err, ErrNoDevice) {
			return nil
		}
		return fmt.Errorf("enter safe mode: %w", err)
	}
	if st.State != StateManifestSync {
		return nil // already manifesting; it resets on its own
	}
	if err := c.manifesting(ctx, "enter safe mode"); err != nil {
		return fmt.Errorf("enter safe mode: %w", err)
	}
	return nil
}
