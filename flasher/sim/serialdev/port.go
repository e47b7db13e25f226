package serialdev

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Device OS timings (system_ymodem.h@v5.9.0, system_setup.cpp, system_update.cpp).
const (
	NakTimeout = 5000 * time.Millisecond // NAK_TIMEOUT: per-byte wait inside the receiver
	MaxErrors  = 5                       // MAX_ERRORS: the receiver gives up on the 6th
	// successPause is the HAL_Delay_Milliseconds(1000) between the success text and
	// "Restarting system to apply firmware update...".
	successPause = 1000 * time.Millisecond
	// refusePause is the 100 ms Device OS 6.x waits between the waiting line and its CANs.
	refusePause = 100 * time.Millisecond
)

// Magic line-coding speeds (build/module-defaults.mk).
const (
	DFUBaud       = 14400
	ListeningBaud = 28800
	idleBaud      = 9600
)

const minWait = 10 * time.Millisecond

// Options tune the sim for tests.
type Options struct {
	// TimeScale multiplies Device OS's own waits (NAK_TIMEOUT 5 s, the 1 s pause before
	// "Restarting...", the 100 ms pause before the 6.x refusal). 0 means 1, real timing;
	// 0.02 makes them 50× shorter. A scaled wait never drops below 10 ms, so the receiver
	// still waits for bytes in flight.
	TimeScale float64
	// PollInterval is how often the line settings are read and the listening state is
	// checked (default 25 ms). The host's baud change is seen within this time.
	PollInterval time.Duration
	// Observe, when set, sees every byte that crosses the door after fault injection:
	// fromDevice is true for bytes sent to the host. For tests and traces.
	Observe func(fromDevice bool, p []byte)
}

func (o Options) scaled(d time.Duration) time.Duration {
	s := o.TimeScale
	if s <= 0 {
		s = 1
	}
	d = time.Duration(float64(d) * s)
	if d < minWait {
		d = minWait
	}
	return d
}

// Port is one virtual CDC serial port. The sim owns the pty master and keeps the slave
// open too, so the tty (and the host's line settings on it) survives the host closing and
// reopening the port, as a USB CDC interface does.
type Port struct {
	m       Model
	o       Options
	master  *os.File
	slave   *os.File
	path    string
	slaveFD int

	in input

	faultMu   sync.Mutex
	garbage   []byte
	dropEvery int
	sent      int // bytes offered to the host, for DropEvery

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Open creates the pty, puts the line in raw mode at 9600 baud (a CDC port's state before
// any host sets it) and starts the device: the line-settings watcher and the console.
func Open(m Model, o Options) (*Port, error) {
	if m == nil {
		return nil, errors.New("serialdev: nil model")
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 25 * time.Millisecond
	}
	master, slave, err := openPTY()
	if err != nil {
		return nil, fmt.Errorf("serialdev: create pty: %w", err)
	}
	p := &Port{m: m, o: o, master: master, slave: slave, path: slave.Name(), stop: make(chan struct{})}
	p.slaveFD = int(slave.Fd()) // the sim never reads the slave, so blocking mode is fine
	if err := makeRaw(p.slaveFD, idleBaud); err != nil {
		master.Close()
		slave.Close()
		return nil, fmt.Errorf("serialdev: raw mode on %s: %w", p.path, err)
	}
	p.in.f = master
	p.wg.Add(2)
	go p.watchLine(idleBaud)
	go p.run()
	return p, nil
}

// SlavePath is the tty the host opens, e.g. /dev/pts/7.
func (p *Port) SlavePath() string { return p.path }

// Close unplugs the port: the host's open handle sees EOF/EIO from now on.
func (p *Port) Close() error {
	p.closeOnce.Do(func() {
		close(p.stop)
		err1 := p.master.Close()
		p.wg.Wait()
		err2 := p.slave.Close()
		p.closeErr = errors.Join(err1, err2)
	})
	return p.closeErr
}

// InjectGarbage makes the device write b to the host just before its next reply, as line
// noise or a stray debug print would.
func (p *Port) InjectGarbage(b []byte) {
	p.faultMu.Lock()
	p.garbage = append(p.garbage, b...)
	p.faultMu.Unlock()
}

// DropEvery drops every n-th byte the device sends to the host from now on (n ≤ 0 stops
// dropping), like a marginal cable or a host that overruns its buffer.
func (p *Port) DropEvery(n int) {
	p.faultMu.Lock()
	p.dropEvery = n
	p.sent = 0
	p.faultMu.Unlock()
}

func (p *Port) stopped() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

// send writes device output to the host after fault injection. Like Device OS's USB
// serial it never blocks the device for long: a host that does not read loses the output.
func (p *Port) send(b []byte) {
	p.faultMu.Lock()
	out := make([]byte, 0, len(p.garbage)+len(b))
	out = append(out, p.garbage...)
	p.garbage = nil
	for _, c := range b {
		p.sent++
		if p.dropEvery > 0 && p.sent%p.dropEvery == 0 {
			continue
		}
		out = append(out, c)
	}
	p.faultMu.Unlock()
	if len(out) == 0 || p.stopped() {
		return
	}
	if p.o.Observe != nil {
		p.o.Observe(true, out)
	}
	_ = p.master.SetWriteDeadline(time.Now().Add(2 * time.Second))
	_, _ = p.master.Write(out)
}

func (p *Port) sendString(s string) { p.send([]byte(s)) }

// sleep waits d unless the port closes first.
func (p *Port) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.stop:
	}
}

// linePoll is how often the line settings are read at most: a real device gets
// SET_LINE_CODING the moment the host sets the speed (Linux's cdc-acm sends it inside
// tcsetattr) and acts on it at once (system_lineCodingBitRateHandler), so the sim must not
// add its own delay to a 14400-baud trigger. Reading them is one ioctl.
const linePoll = 2 * time.Millisecond

// watchLine polls the slave's line settings: go.bug.st/serial sets 14400 and 28800 with
// BOTHER (TCSETS2), so only TCGETS2's c_ospeed shows them. After acting on a magic speed it
// puts the line back to 9600, so the next open at the same speed is seen as a new request
// (a real device gets a SET_LINE_CODING on every open).
func (p *Port) watchLine(last int) {
	defer p.wg.Done()
	t := time.NewTicker(min(p.o.PollInterval, linePoll))
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		s, err := lineSpeed(p.slaveFD)
		if err != nil || s == last {
			continue
		}
		last = s
		switch s {
		case DFUBaud:
			p.m.EnterDFU()
		case ListeningBaud:
			if p.m.ListenBaudTrigger() && !p.m.Listening() {
				p.m.EnterListening()
			}
		default:
			continue
		}
		if setLineSpeed(p.slaveFD, idleBaud) == nil {
			last = idleBaud
		}
	}
}

var (
	errTimeout = errors.New("timeout")
	errClosed  = errors.New("port closed")
)

// input is the device's receive buffer over the pty master.
type input struct {
	f   *os.File
	buf []byte
	tmp [4096]byte
	obs func(bool, []byte)
}

func (in *input) readByte(d time.Duration) (byte, error) {
	if len(in.buf) == 0 {
		if err := in.fill(d); err != nil {
			return 0, err
		}
	}
	c := in.buf[0]
	in.buf = in.buf[1:]
	return c, nil
}

func (in *input) peek(d time.Duration) (byte, error) {
	if len(in.buf) == 0 {
		if err := in.fill(d); err != nil {
			return 0, err
		}
	}
	return in.buf[0], nil
}

func (in *input) fill(d time.Duration) error {
	if err := in.f.SetReadDeadline(time.Now().Add(d)); err != nil {
		return errClosed
	}
	n, err := in.f.Read(in.tmp[:])
	if n > 0 {
		if in.obs != nil {
			in.obs(false, append([]byte(nil), in.tmp[:n]...))
		}
		in.buf = append(in.buf, in.tmp[:n]...)
		return nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errTimeout
	}
	if err == nil {
		return errTimeout
	}
	return errClosed
}

// run is SystemSetupConsole::loop: outside listening mode the host's bytes stay queued.
func (p *Port) run() {
	defer p.wg.Done()
	p.in.obs = p.o.Observe
	for !p.stopped() {
		if !p.m.Listening() {
			p.sleep(p.o.PollInterval)
			continue
		}
		c, err := p.in.peek(p.o.PollInterval)
		if err == errClosed {
			return
		}
		if err != nil {
			continue
		}
		// handle_peek: a YMODEM packet start begins a transfer without `f` (≤ 5.x).
		if (c == soh || c == stx) && p.m.YModemSupported() {
			p.flashUpdate()
			continue
		}
		_, _ = p.in.readByte(0)
		p.handle(c)
	}
}
