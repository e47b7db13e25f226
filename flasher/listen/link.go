package listen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// errTimeout is a wait that ran out; callers turn it into an error that says what was
// being waited for.
var errTimeout = errors.New("timed out")

// pollSlice bounds each blocking read so a cancelled context is noticed promptly.
const pollSlice = 50 * time.Millisecond

// link reads from a serial-like stream with timeouts. It understands the two ways streams
// offer bounded reads: SetReadTimeout (go.bug.st/serial: a Read returns (0, nil) when the
// timeout passes) and SetReadDeadline (os.File on pipes and ptys, net.Conn). For anything
// else it falls back to a goroutine that keeps reading: that goroutine outlives the call,
// so such streams must not be shared with another reader afterwards.
type link struct {
	rw      io.ReadWriter
	pending []byte
	tmp     []byte
	read    func(p []byte, d time.Duration) (int, error)
}

type readTimeouter interface {
	SetReadTimeout(time.Duration) error
}

type readDeadliner interface {
	SetReadDeadline(time.Time) error
}

func newLink(rw io.ReadWriter) *link {
	l := &link{rw: rw, tmp: make([]byte, 4096)}
	switch r := rw.(type) {
	case readTimeouter:
		l.read = func(p []byte, d time.Duration) (int, error) {
			if err := r.SetReadTimeout(d); err != nil {
				return 0, err
			}
			return rw.Read(p)
		}
	case readDeadliner:
		l.read = func(p []byte, d time.Duration) (int, error) {
			if err := r.SetReadDeadline(time.Now().Add(d)); err != nil {
				return 0, err
			}
			n, err := rw.Read(p)
			if err != nil && isTimeout(err) {
				err = nil
			}
			return n, err
		}
	default:
		l.read = pumpReader(rw)
	}
	return l
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

type chunk struct {
	b   []byte
	err error
}

func pumpReader(r io.Reader) func([]byte, time.Duration) (int, error) {
	ch := make(chan chunk, 16)
	go func() {
		for {
			buf := make([]byte, 4096)
			n, err := r.Read(buf)
			if n > 0 {
				ch <- chunk{b: buf[:n]}
			}
			if err != nil {
				ch <- chunk{err: err}
				close(ch)
				return
			}
		}
	}()
	var rest []byte
	var final error
	return func(p []byte, d time.Duration) (int, error) {
		if len(rest) == 0 {
			if final != nil {
				return 0, final
			}
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case c, ok := <-ch:
				if !ok {
					return 0, io.EOF
				}
				if c.err != nil {
					final = c.err
					return 0, c.err
				}
				rest = c.b
			case <-t.C:
				return 0, nil
			}
		}
		n := copy(p, rest)
		rest = rest[n:]
		return n, nil
	}
}

// fill reads once, waiting at most d (and never past ctx). errTimeout if nothing came.
func (l *link) fill(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return errTimeout
		}
		if left > pollSlice {
			left = pollSlice
		}
		n, err := l.read(l.tmp, left)
		if n > 0 {
			l.pending = append(l.pending, l.tmp[:n]...)
			return nil
		}
		if err != nil {
			return fmt.Errorf("serial port read failed (the device may have reset or been unplugged): %w", err)
		}
	}
}

// readByte returns the next byte, waiting at most d.
func (l *link) readByte(ctx context.Context, d time.Duration) (byte, error) {
	if len(l.pending) == 0 {
		if err := l.fill(ctx, d); err != nil {
			return 0, err
		}
	}
	c := l.pending[0]
	l.pending = l.pending[1:]
	return c, nil
}

// unread puts b back in front of the pending bytes.
func (l *link) unread(b []byte) {
	if len(b) == 0 {
		return
	}
	l.pending = append(append([]byte(nil), b...), l.pending...)
}

func (l *link) write(b []byte) error {
	for len(b) > 0 {
		n, err := l.rw.Write(b)
		if err != nil {
			return fmt.Errorf("serial port write failed (the device may have reset or been unplugged): %w", err)
		}
		if n == 0 {
			return fmt.Errorf("serial port write failed: %w", io.ErrShortWrite)
		}
		b = b[n:]
	}
	return nil
}

// drain discards stale input (an earlier reply's tail, boot messages) so the next reply
// is read from its start. It stops once the line has been quiet for settle.
func (l *link) drain(ctx context.Context, settle time.Duration) error {
	l.pending = nil
	limit := time.Now().Add(20 * settle)
	for time.Now().Before(limit) {
		err := l.fill(ctx, settle)
		l.pending = nil
		if errors.Is(err, errTimeout) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// collect gathers a reply: it waits up to first for the first byte, then keeps reading
// until the line is quiet for quiet, or done reports the reply complete, or ctx ends.
// It returns what arrived; the error is set only when nothing did and the wait did not
// simply run out (a quiet line returns no bytes and no error).
func (l *link) collect(ctx context.Context, first, quiet time.Duration, done func([]byte) bool) ([]byte, error) {
	var buf []byte
	take := func() {
		buf = append(buf, l.pending...)
		l.pending = nil
	}
	take()
	for {
		if len(buf) > 0 && done != nil && done(buf) {
			return buf, nil
		}
		wait := quiet
		if len(buf) == 0 {
			wait = first
		}
		err := l.fill(ctx, wait)
		switch {
		case err == nil:
			take()
		case errors.Is(err, errTimeout):
			return buf, nil
		case len(buf) > 0 && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)):
			return buf, nil
		default:
			return buf, err
		}
	}
}
