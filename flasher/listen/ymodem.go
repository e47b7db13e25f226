package listen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// YMODEM bytes on the wire (system_ymodem.h; lrzsz uses the same values).
const (
	SOH        byte = 0x01 // starts a 128-byte block
	STX        byte = 0x02 // starts a 1024-byte block
	EOT        byte = 0x04 // end of file
	ACK        byte = 0x06
	NAK        byte = 0x15
	CAN        byte = 0x18 // two in a row cancel the transfer
	CRCRequest byte = 'C'  // receiver: "ready, send with CRC-16"
	padByte    byte = 0x1A // CP/M EOF: pads the last block; receivers cut at the size in block 0
)

// YModemOptions tune YModemSend. The zero value suits lrzsz's rb; SendFirmware sets
// DeviceOS for a Particle device.
//
// Timeouts: the receiver's first 'C' is awaited StartTimeout (default 60 s); each block's
// answer AckTimeout (default 15 s, long enough for a device that erases a 128 KB flash
// sector on the way); the answer to the end-of-batch block FinishTimeout (default 30 s,
// Device OS validates the whole image before it answers). A block is sent at most
// MaxRetries+1 times (default 10 retries).
type YModemOptions struct {
	// BlockSize is 128 (SOH) or 1024 (STX, the default). 128 is gentler on a flaky link.
	BlockSize int
	// DeviceOS selects Device OS's receiver (system_ymodem.cpp ≤ 5.9) instead of a
	// textbook one. It never asks for a header with 'C' (it prints a line instead), so
	// headers go out at once; it NAKs only a block with the wrong sequence number, so a
	// NAK for a block re-sent after an unanswered first copy means the first copy arrived
	// and its ACK was lost, and the sender moves on; it signals a timeout with 'C'; and it
	// answers the end-of-batch block only after validating the image, with text around it.
	DeviceOS bool

	StartTimeout  time.Duration
	AckTimeout    time.Duration
	FinishTimeout time.Duration
	MaxRetries    int

	// Progress, if set, is called with bytes acknowledged so far and the total.
	Progress func(done, total int)
}

func (o YModemOptions) withDefaults() YModemOptions {
	if o.BlockSize == 0 {
		o.BlockSize = 1024
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 15 * time.Second
	}
	if o.FinishTimeout <= 0 {
		o.FinishTimeout = 30 * time.Second
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = 10
	}
	return o
}

// CancelError reports that the receiver cancelled the transfer with CAN CAN. Message is
// the text it printed with the cancel, if any (Device OS: "Validation failed: -170",
// "Failed to save chunk!", "The file size is higher than the allowed space memory!").
type CancelError struct {
	Stage   string
	Message string
}

func (e *CancelError) Error() string {
	if e.Message == "" {
		return "the receiver cancelled the transfer during " + e.Stage
	}
	return fmt.Sprintf("the receiver cancelled the transfer during %s: %s", e.Stage, e.Message)
}

// YModemSend sends one file with YMODEM batch (CRC-16) and ends the batch. It is written
// against two receivers: Device OS ≤ 5.9 (set opts.DeviceOS; it checks only the sequence
// numbers) and lrzsz's rb (checks CRCs, answers NAK/'C' by the book), so it sends real
// CRC-16/XMODEM trailers and pads the last block with 0x1A.
//
// Wire sequence: block 0 = "<name>\0<size> " zero-padded (a 128-byte block when it fits);
// ACK, then 'C'; data blocks 1, 2, … (seq mod 256), each answered by ACK, or NAK/'C'/
// silence → re-send; EOT, answered by ACK (a NAK, as some receivers give to the first EOT,
// → EOT again); an empty block 0 ends the batch, answered by ACK. CAN CAN from the
// receiver at any point returns a *CancelError with its text.
//
// rw should support SetReadTimeout (a serialport.Port; its timeout is left at a short
// value) or SetReadDeadline (pipes, ptys); otherwise a reader goroutine stays behind after
// the call and keeps consuming rw. Bytes that arrive after the final ACK (Device OS's
// success text) are not read: SendFirmware reads and checks them.
func YModemSend(ctx context.Context, rw io.ReadWriter, name string, data []byte, opts YModemOptions) error {
	return ysend(ctx, newLink(rw), name, data, opts)
}

// sender is one transfer in progress.
type sender struct {
	l     *link
	o     YModemOptions
	crc   bool   // CRC-16 trailer (else 8-bit checksum, if the receiver asked with NAK)
	noise []byte // bytes that were not protocol answers, for diagnostics and Device OS text
	final bool   // waiting for the end-of-batch answer: Device OS text counts as an answer
	name  string
	size  int
}

// resend prepares a retransmission. With Device OS, bytes already read are answers to
// earlier copies; left in place they would pair every later block with the previous
// block's answer.
func (s *sender) resend(try int) {
	if try > 0 && s.o.DeviceOS {
		s.l.pending = nil
	}
}

type answer int

const (
	ansACK answer = iota
	ansNAK
	ansC
	ansNone // timeout
	ansText // Device OS success text seen without its ACK
)

func (a answer) String() string {
	return [...]string{"ACK", "NAK", "'C'", "no answer", "success text"}[a]
}

func ysend(ctx context.Context, l *link, name string, data []byte, opts YModemOptions) error {
	o := opts.withDefaults()
	if o.BlockSize != 128 && o.BlockSize != 1024 {
		return fmt.Errorf("ymodem: block size %d, want 128 or 1024", o.BlockSize)
	}
	if len(data) == 0 {
		return errors.New("ymodem: nothing to send (empty file)")
	}
	if name == "" || len(name) > 255 || strings.ContainsRune(name, 0) {
		return fmt.Errorf("ymodem: file name %q must be 1-255 bytes without NUL", name)
	}
	total := len(data)
	s := &sender{l: l, o: o, crc: true, name: name, size: total}
	if o.Progress != nil {
		o.Progress(0, total)
	}

	if o.DeviceOS {
		// Anything already read ('C's from Device OS's idle timeouts) predates the header
		// and would be taken for its answer.
		l.pending = nil
	} else if err := s.awaitStart(ctx); err != nil {
		return err
	}

	header := []byte(name + "\x00" + strconv.Itoa(total) + " ")
	if err := s.sendBlock(ctx, 0, header, true, o.AckTimeout, "the file header (block 0)"); err != nil {
		return err
	}
	// After the header's ACK the receiver asks for data with 'C'. If that 'C' is lost
	// Device OS repeats it after its 5 s timeout; lrzsz sends it at once. Go on regardless.
	if _, err := s.waitFor(ctx, o.AckTimeout, ansC, ansNAK); err != nil {
		return err
	}

	seq := byte(1)
	for off := 0; off < total; off += o.BlockSize {
		end := min(off+o.BlockSize, total)
		stage := fmt.Sprintf("block %d (bytes %d-%d)", off/o.BlockSize+1, off, end-1)
		if err := s.sendBlock(ctx, seq, data[off:end], false, o.AckTimeout, stage); err != nil {
			return err
		}
		seq++
		if o.Progress != nil {
			o.Progress(end, total)
		}
	}

	if err := s.sendEOT(ctx); err != nil {
		return err
	}
	if !o.DeviceOS {
		// rb asks for the next header with 'C'; a receiver that stays silent gets it anyway.
		if _, err := s.waitFor(ctx, o.AckTimeout, ansC, ansNAK); err != nil {
			return err
		}
	}
	return s.sendEnd(ctx)
}

// awaitStart waits for the receiver's first 'C' (or NAK: checksum mode), ignoring noise.
func (s *sender) awaitStart(ctx context.Context) error {
	a, err := s.waitFor(ctx, s.o.StartTimeout, ansC, ansNAK)
	if err != nil {
		return err
	}
	switch a {
	case ansNAK:
		s.crc = false
	case ansNone:
		return fmt.Errorf("ymodem: the receiver did not ask for the file within %s (no 'C'); is it running and reading this port?%s",
			s.o.StartTimeout, s.noiseSuffix())
	}
	return nil
}

// waitFor waits up to d for one of the wanted answers and returns it (ansNone on timeout).
// Other answers are skipped.
func (s *sender) waitFor(ctx context.Context, d time.Duration, want ...answer) (answer, error) {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return ansNone, nil
		}
		a, err := s.wait(ctx, left, "")
		if err != nil || a == ansNone {
			return a, err
		}
		for _, w := range want {
			if a == w {
				return a, nil
			}
		}
	}
}

// packet frames one block: mark, seq, ~seq, payload padded to size, CRC-16 (big-endian)
// or checksum. Block 0 is zero-padded (the header must end in NULs); data with 0x1A.
func (s *sender) packet(seq byte, payload []byte, header bool) []byte {
	size := s.o.BlockSize
	mark := STX
	if size == 128 || (header && len(payload) <= 128) {
		size, mark = 128, SOH
	}
	pkt := make([]byte, 3+size, 3+size+2)
	pkt[0], pkt[1], pkt[2] = mark, seq, ^seq
	copy(pkt[3:], payload)
	if !header {
		for i := 3 + len(payload); i < len(pkt); i++ {
			pkt[i] = padByte
		}
	}
	body := pkt[3:]
	if s.crc {
		c := crc16XModem(body)
		return append(pkt, byte(c>>8), byte(c))
	}
	var sum byte
	for _, b := range body {
		sum += b
	}
	return append(pkt, sum)
}

// sendBlock sends one block until the receiver ACKs it.
func (s *sender) sendBlock(ctx context.Context, seq byte, payload []byte, header bool, d time.Duration, stage string) error {
	pkt := s.packet(seq, payload, header)
	maybeDelivered := false
	last := ansNone
	for try := 0; try <= s.o.MaxRetries; try++ {
		s.resend(try)
		if err := s.l.write(pkt); err != nil {
			return fmt.Errorf("ymodem: send %s: %w", stage, err)
		}
		a, err := s.wait(ctx, d, stage)
		if err != nil {
			return err
		}
		switch a {
		case ansACK:
			return nil
		case ansNAK:
			if s.o.DeviceOS && maybeDelivered {
				// Device OS NAKs only a wrong sequence number: it already has this block.
				return nil
			}
		case ansC, ansNone:
			maybeDelivered = true
		}
		last = a
	}
	return fmt.Errorf("ymodem: %s was not acknowledged after %d tries (last answer: %s)%s; the serial link is unreliable: try another cable or USB port",
		stage, s.o.MaxRetries+1, last, s.noiseSuffix())
}

// sendEOT ends the file. NAK (some receivers NAK the first EOT on purpose), 'C' (the
// receiver timed out; EOT is harmless to repeat) or silence → EOT again.
func (s *sender) sendEOT(ctx context.Context) error {
	last := ansNone
	for try := 0; try <= s.o.MaxRetries; try++ {
		s.resend(try)
		if err := s.l.write([]byte{EOT}); err != nil {
			return fmt.Errorf("ymodem: send EOT: %w", err)
		}
		a, err := s.wait(ctx, s.o.AckTimeout, "the end of the file (EOT)")
		if err != nil {
			return err
		}
		if a == ansACK {
			return nil
		}
		last = a
	}
	return fmt.Errorf("ymodem: EOT was not acknowledged after %d tries (last answer: %s)%s", s.o.MaxRetries+1, last, s.noiseSuffix())
}

// sendEnd sends the empty block 0 that ends the batch and waits for its ACK, which
// Device OS gives only once the image is validated.
func (s *sender) sendEnd(ctx context.Context) error {
	pkt := s.packet(0, nil, true)
	s.final = true
	s.noise = nil
	defer func() { s.final = false }()
	const stage = "the end of the batch (empty block 0)"
	last := ansNone
	for try := 0; try <= s.o.MaxRetries; try++ {
		s.resend(try)
		if err := s.l.write(pkt); err != nil {
			return fmt.Errorf("ymodem: send %s: %w", stage, err)
		}
		a, err := s.wait(ctx, s.o.FinishTimeout, stage)
		if err != nil {
			return err
		}
		switch a {
		case ansACK, ansText:
			return nil
		case ansNone:
			if s.o.DeviceOS {
				// A Device OS that missed the block says 'C' within 5 s; silence means it is
				// busy or gone, and a repeated SOH could start a new transfer.
				return fmt.Errorf("ymodem: no answer to %s within %s%s; the device may still apply the update: wait for it to restart, then check its modules",
					stage, s.o.FinishTimeout, s.noiseSuffix())
			}
		}
		last = a
	}
	return fmt.Errorf("ymodem: %s was not acknowledged after %d tries (last answer: %s)%s", stage, s.o.MaxRetries+1, last, s.noiseSuffix())
}

// DeviceOSSuccessText is what Device OS ≤ 5.9 prints after ACKing the end of the batch
// (Ymodem_Serial_Flash_Update, then system_fileTransfer after a 1 s pause).
func DeviceOSSuccessText(name string, size int) string {
	return "\r\nDownloaded file successfully!\r\nName: " + name + "\r\nSize: " + strconv.Itoa(size) +
		" bytes\r\nRestarting system to apply firmware update...\r\n"
}

// looksLikeSuccess reports whether got is Device OS's success text with bytes missing:
// a lossy link drops bytes but does not invent or reorder them.
func looksLikeSuccess(got []byte, name string, size int) bool {
	return len(bytes.TrimSpace(got)) >= 12 && isSubsequence(got, []byte(DeviceOSSuccessText(name, size)))
}

func isSubsequence(sub, full []byte) bool {
	i := 0
	for _, c := range full {
		if i < len(sub) && sub[i] == c {
			i++
		}
	}
	return i == len(sub)
}

// wait reads until the receiver answers, for up to d. Bytes that are no answer are kept
// as noise. CAN CAN, or a CAN followed by text, is a cancel and returns a *CancelError.
func (s *sender) wait(ctx context.Context, d time.Duration, stage string) (answer, error) {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return ansNone, nil
		}
		c, err := s.l.readByte(ctx, left)
		if errors.Is(err, errTimeout) {
			return ansNone, nil
		}
		if err != nil {
			return ansNone, fmt.Errorf("ymodem: waiting for the answer to %s: %w", stage, err)
		}
		switch c {
		case ACK:
			return ansACK, nil
		case NAK:
			return ansNAK, nil
		case CRCRequest:
			return ansC, nil
		case CAN:
			next, err := s.l.readByte(ctx, time.Second)
			if errors.Is(err, errTimeout) {
				continue // a lone CAN is line noise
			}
			if err != nil {
				return ansNone, fmt.Errorf("ymodem: waiting for the answer to %s: %w", stage, err)
			}
			if next == CAN || next >= ' ' || next == '\r' || next == '\n' {
				if next != CAN {
					s.l.unread([]byte{next})
				}
				return ansNone, s.cancelled(ctx, stage)
			}
			s.l.unread([]byte{next})
		default:
			s.addNoise(c)
			if s.final && s.o.DeviceOS {
				text := string(s.noise)
				if strings.Contains(text, "Validation failed") {
					return ansNone, s.cancelled(ctx, stage)
				}
				if looksLikeSuccess(s.noise, s.name, s.size) {
					s.l.unread(s.noise)
					s.noise = nil
					return ansText, nil
				}
			}
		}
	}
}

func (s *sender) addNoise(c byte) {
	s.noise = append(s.noise, c)
	if len(s.noise) > 512 {
		s.noise = s.noise[len(s.noise)-512:]
	}
}

func (s *sender) noiseSuffix() string {
	t := printable(s.noise)
	if t == "" {
		return ""
	}
	return fmt.Sprintf(" (the receiver also sent %q)", t)
}

// cancelled collects what the receiver prints after its CANs and builds the error.
func (s *sender) cancelled(ctx context.Context, stage string) error {
	text, _ := s.l.collect(ctx, 300*time.Millisecond, 300*time.Millisecond, func(b []byte) bool {
		return bytes.HasSuffix(b, []byte("\r\n")) && len(bytes.TrimSpace(bytes.Trim(b, "\x18"))) > 0
	})
	msg := printable(append(append([]byte(nil), s.noise...), text...))
	s.noise = nil
	return &CancelError{Stage: stage, Message: msg}
}

// printable keeps the readable part of device output: text lines, trimmed, joined by "; ".
func printable(b []byte) string {
	var lines []string
	for _, ln := range strings.FieldsFunc(string(b), func(r rune) bool { return r == '\r' || r == '\n' }) {
		ln = strings.Map(func(r rune) rune {
			if r < ' ' || r == 0x7f || r == 0xfffd {
				return -1
			}
			return r
		}, ln)
		if ln = strings.TrimSpace(ln); ln != "" {
			lines = append(lines, ln)
		}
	}
	return strings.Join(lines, "; ")
}

// crc16XModem is CRC-16/XMODEM (poly 0x1021, init 0, no reflection), the YMODEM "CRC" mode.
func crc16XModem(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for i := 0; i < 8; i++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
