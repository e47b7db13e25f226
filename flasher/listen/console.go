// Package listen talks to a Particle device in listening mode (blinking dark blue) over its
// USB serial port: the single-letter console of Device OS (system/src/system_setup.cpp)
// for identity, version and module info, and the YMODEM upload that Device OS ≤ 5.9 uses
// to take any module over serial. It is the door of last resort when USB control requests
// are unavailable (old Device OS, or a device that only enumerates as a CDC port).
package listen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/serialport"
)

// Texts the console prints (system_setup.cpp, system_ymodem.cpp, system_update.cpp).
const (
	waitingLine    = "Waiting for the binary file to be sent ... (press 'a' to abort)"
	noLongerText   = "no longer supported"
	successText    = "Downloaded file successfully!"
	restartingText = "Restarting system to apply firmware update..."
)

// Remedies shown beside errors.
const (
	remedyListening = "Put the device in listening mode: hold MODE (SETUP on a Photon) for about 3 seconds " +
		"until the LED blinks dark blue, then try again."
	remedyCable   = "Try another USB cable or port; avoid hubs."
	remedyUSBOnly = "Update over USB instead (DFU mode or USB control requests): Device OS 6.0 and later no longer accept firmware over serial."
	remedyImage   = "Check that the file is a module for this platform and that the modules it depends on are already on the device."
	remedyFlash   = "Reset the device and try again; if it keeps failing, flash it in DFU mode (hold MODE, tap RESET, release when the LED blinks yellow)."
)

// ErrSerialFlashingUnsupported is returned by SendFirmware when the device refuses YMODEM,
// as Device OS 6.0 and later do.
var ErrSerialFlashingUnsupported = errors.New("this Device OS no longer accepts firmware over serial (YMODEM)")

// ErrNoReply means the device said nothing to a command within the timeout: usually it is
// not in listening mode, or another program holds the port.
var ErrNoReply = errors.New("no reply from the device")

// Options tune a Console. Zero values take the defaults.
type Options struct {
	// Timeout bounds one command (default 5 s).
	Timeout time.Duration
	// SlowTimeout bounds `s` and `i`, which a busy device can be slow to answer
	// (default 20 s, as particle-cli).
	SlowTimeout time.Duration
	// Quiet ends a reply: once bytes have arrived, this much silence means the device is
	// done (default 250 ms, the CLI's SerialBatchParser). Tests shorten it.
	Quiet time.Duration
	// PromptTimeout bounds the wait for the reply to `f` (default 10 s, as the CLI).
	PromptTimeout time.Duration
	// YModem tunes SendFirmware's transfer; DeviceOS is always set.
	YModem YModemOptions
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.SlowTimeout <= 0 {
		o.SlowTimeout = 20 * time.Second
	}
	if o.Quiet <= 0 {
		o.Quiet = 250 * time.Millisecond
	}
	if o.PromptTimeout <= 0 {
		o.PromptTimeout = 10 * time.Second
	}
	o.YModem.DeviceOS = true
	return o
}

// Console runs listening-mode commands over an open serial port, one at a time. It does
// not own the port: the caller closes it.
type Console struct {
	mu sync.Mutex
	l  *link
	o  Options
}

// New wraps an open port (serialport.Open at serialport.ConsoleBaud).
func New(p serialport.Port, o Options) *Console {
	return &Console{l: newLink(p), o: o.withDefaults()}
}

// command sends one command letter and returns the reply, ended by done or by silence.
func (c *Console) command(ctx context.Context, cmd byte, timeout time.Duration, done func([]byte) bool) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := c.l.drain(cctx, settleTime(c.o.Quiet)); err != nil {
		return nil, c.ioError(ctx, cmd, err)
	}
	if err := c.l.write([]byte{cmd}); err != nil {
		return nil, c.ioError(ctx, cmd, err)
	}
	buf, err := c.l.collect(cctx, timeout, c.o.Quiet, done)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(buf) == 0 {
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			return nil, remedy.With(fmt.Errorf("%w to `%c` within %s", ErrNoReply, cmd, timeout), remedyListening)
		}
		return nil, c.ioError(ctx, cmd, err)
	}
	return buf, nil
}

func (c *Console) ioError(ctx context.Context, cmd byte, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return remedy.With(fmt.Errorf("listening-mode command `%c`: %w", cmd, err), remedyCable)
}

// settleTime is how long the line must be quiet before a command is sent.
func settleTime(quiet time.Duration) time.Duration {
	return max(min(quiet/5, 50*time.Millisecond), 5*time.Millisecond)
}

// Identify asks `i` for the device ID (and, on cellular and Gen3 devices, IMEI, ICCID,
// serial number, ...). In listening mode this is how the device is matched to the one
// seen earlier over USB.
func (c *Console) Identify(ctx context.Context) (Identity, error) {
	b, err := c.command(ctx, 'i', c.o.SlowTimeout, identityComplete)
	if err != nil {
		return Identity{}, err
	}
	id, err := parseIdentity(b)
	if err != nil {
		return Identity{}, remedy.With(err, remedyListening)
	}
	return id, nil
}

// SystemVersion asks `v` for the Device OS version ("1.5.2"), which decides what the
// device can take over which door.
func (c *Console) SystemVersion(ctx context.Context) (string, error) {
	b, err := c.command(ctx, 'v', c.o.Timeout, versionComplete)
	if err != nil {
		return "", err
	}
	v, err := parseVersion(b)
	if err != nil {
		return "", remedy.With(err, remedyListening)
	}
	return v, nil
}

// MAC asks `m` for the Wi-Fi MAC address, lower-case with colons.
func (c *Console) MAC(ctx context.Context) (string, error) {
	b, err := c.command(ctx, 'm', c.o.Timeout, macComplete)
	if err != nil {
		return "", err
	}
	m, err := parseMAC(b)
	if err != nil {
		return "", remedy.With(err, remedyListening)
	}
	return m, nil
}

// ModuleInfo asks `s` for the device's own view of its module slots. A reply cut short
// (a flaky link drops bytes) is an error naming the cause, returned once the line goes
// quiet, never a hang.
func (c *Console) ModuleInfo(ctx context.Context) (*SystemInfo, error) {
	b, err := c.command(ctx, 's', c.o.SlowTimeout, moduleInfoComplete)
	if err != nil {
		return nil, err
	}
	si, err := parseSystemInfo(b)
	if err != nil {
		return nil, remedy.With(err, remedyCable)
	}
	return si, nil
}

// Exit sends `x`: the device leaves listening mode and goes back to its application.
// The device does not answer.
func (c *Console) Exit(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	if err := c.l.drain(cctx, settleTime(c.o.Quiet)); err != nil {
		return c.ioError(ctx, 'x', err)
	}
	if err := c.l.write([]byte{'x'}); err != nil {
		return c.ioError(ctx, 'x', err)
	}
	return nil
}

var reSize = regexp.MustCompile(`Size: (\d+) bytes`)

// SendFirmware uploads one module with `f` + YMODEM, the listening-mode way to write any
// module (it is how bootloaders and NCP firmware were flashed before USB control
// requests). The device stores it in its OTA area, validates it, prints a confirmation
// and resets to apply it. Device OS 6.0+ refuses: that returns
// ErrSerialFlashingUnsupported with the USB remedy. The name is only shown by the device.
func (c *Console) SendFirmware(ctx context.Context, name string, image []byte, progress func(done, total int)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.l.drain(ctx, settleTime(c.o.Quiet)); err != nil {
		return c.ioError(ctx, 'f', err)
	}
	if err := c.l.write([]byte{'f'}); err != nil {
		return c.ioError(ctx, 'f', err)
	}
	if err := c.awaitReceiver(ctx); err != nil {
		return err
	}
	yo := c.o.YModem
	yo.Progress = progress
	err := ysend(ctx, c.l, name, image, yo)
	var ce *CancelError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &ce) && strings.Contains(ce.Message, noLongerText):
		return remedy.With(fmt.Errorf("%w: %w", ErrSerialFlashingUnsupported, err), remedyUSBOnly)
	case errors.As(err, &ce) && strings.Contains(ce.Message, "Validation failed"):
		return remedy.With(fmt.Errorf("the device rejected %s: %w", name, err), remedyImage)
	case errors.As(err, &ce) && strings.Contains(ce.Message, "higher than the allowed"):
		return remedy.With(fmt.Errorf("%s does not fit the device's update area: %w", name, err), remedyImage)
	case errors.As(err, &ce) && strings.Contains(ce.Message, "Failed to save chunk"):
		return remedy.With(fmt.Errorf("the device could not write %s to its flash: %w", name, err), remedyFlash)
	default:
		return remedy.With(fmt.Errorf("serial upload of %s: %w", name, err), remedyCable)
	}
	return c.confirm(ctx, name, len(image))
}

// awaitReceiver waits for the device to be ready after `f`: Device OS ≤ 5.9 prints the
// waiting line (and sends 'C' only after 5 s of silence), 6.x prints the line and then
// cancels with CANs.
func (c *Console) awaitReceiver(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, c.o.PromptTimeout)
	defer cancel()
	ready := func(b []byte) bool {
		return bytes.IndexByte(b, CAN) >= 0 || bytes.IndexByte(b, CRCRequest) >= 0 ||
			bytes.Contains(b, []byte(waitingLine+"\r\n"))
	}
	buf, err := c.l.collect(pctx, c.o.PromptTimeout, c.o.PromptTimeout, ready)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !ready(buf) {
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return c.ioError(ctx, 'f', err)
		}
		return remedy.With(fmt.Errorf("%w to `f` within %s (expected %q; got %s)", ErrNoReply, c.o.PromptTimeout, waitingLine, describeReply(buf)), remedyListening)
	}
	if bytes.IndexByte(buf, CRCRequest) < 0 && bytes.IndexByte(buf, CAN) < 0 {
		// Device OS 6.x sends its CANs 100 ms after the line: give them time to show.
		// Whatever else comes (a 'C' from the receiver's idle timeout) is consumed too.
		more, _ := c.l.collect(ctx, c.o.Quiet, c.o.Quiet, func(b []byte) bool { return bytes.IndexByte(b, CAN) >= 0 })
		buf = append(buf, more...)
	}
	if bytes.IndexByte(buf, CAN) >= 0 || bytes.Contains(buf, []byte(noLongerText)) {
		rest, _ := c.l.collect(ctx, c.o.Quiet, c.o.Quiet, func(b []byte) bool { return bytes.Contains(b, []byte(noLongerText+"\r\n")) })
		msg := printable(append(buf, rest...))
		return remedy.With(fmt.Errorf("%w (the device answered %q)", ErrSerialFlashingUnsupported, msg), remedyUSBOnly)
	}
	return nil
}

// confirm reads the device's closing text: "Downloaded file successfully!", the name and
// size, then (after a 1 s pause) "Restarting system to apply firmware update...". The ACK
// said the image was accepted; the text must agree (it may have lost bytes on a flaky link,
// but it must be there and must not be a failure).
func (c *Console) confirm(ctx context.Context, name string, size int) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	quiet := max(c.o.Quiet, 1500*time.Millisecond) // spans the device's 1 s pause
	text, _ := c.l.collect(cctx, quiet, quiet, func(b []byte) bool { return bytes.Contains(b, []byte(restartingText+"\r\n")) })
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// Stray protocol bytes (a late ACK, an idle 'C') are not part of the text.
	body := bytes.Map(func(r rune) rune {
		if r == rune(ACK) || r == rune(NAK) || r == rune(CRCRequest) {
			return -1
		}
		return r
	}, text)
	switch {
	case bytes.IndexByte(text, CAN) >= 0 || bytes.Contains(text, []byte("Validation failed")) || bytes.Contains(text, []byte("Failed to")):
		return remedy.With(fmt.Errorf("the device reported a failure after the upload of %s: %q", name, printable(text)), remedyImage)
	case !bytes.Contains(body, []byte(successText)) && !looksLikeSuccess(body, name, size):
		return remedy.With(fmt.Errorf("no confirmation from the device after the upload of %s (got %s); it may still apply the update: wait for it to restart, then check its modules", name, describeReply(text)), remedyCable)
	}
	if m := reSize.FindSubmatch(text); m != nil {
		if n, _ := strconv.Atoi(string(m[1])); n != size {
			return remedy.With(fmt.Errorf("the device reports %d bytes received for %s, %d were sent", n, name, size), remedyCable)
		}
	}
	return nil
}
