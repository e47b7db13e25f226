package usbsim

import (
	"bufio"
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The umockdev door: a second way onto the server's devices, below any libusb. The bridge
// (umockdev/usbsim_umockdev.c, built against Debian's libumockdev) runs a umockdev testbed
// that mirrors the server's devices as sysfs nodes and /dev/bus/usb files and answers their
// usbdevfs ioctls through the server; a program started with UmockdevBridge.Env() (the
// umockdev preload library and the testbed's directory) sees them as real USB devices, even
// one whose libusb is linked in statically (node-usb, which particle-usb uses), where the
// libusb shim cannot reach.

//go:embed umockdev/usbsim_umockdev.c
var bridgeSource []byte

// BridgeName is the file name of the built bridge program.
const BridgeName = "usbsim-umockdev"

// UmockdevPreload is the preload library (Debian package umockdev) a program is started
// with to see the testbed.
const UmockdevPreload = "libumockdev-preload.so.0"

// ErrNoUmockdev is returned when umockdev or its development files are not installed.
var ErrNoUmockdev = errors.New("usbsim: umockdev is not installed (Debian packages umockdev and libumockdev-dev; scripts/ensure-deps.sh test installs them)")

var bridgeMu sync.Mutex

// BuildBridge compiles the bridge into outDir ("" means ShimDir()) unless it is up to date,
// and returns its path.
func BuildBridge(outDir string) (string, error) {
	if outDir == "" {
		outDir = ShimDir()
	}
	outDir, err := filepath.Abs(outDir)
	if err != nil {
		return "", fmt.Errorf("usbsim: %w", err)
	}
	flags, err := exec.Command("pkg-config", "--cflags", "--libs", "umockdev-1.0", "gio-unix-2.0").Output()
	if err != nil {
		return "", ErrNoUmockdev
	}
	bridgeMu.Lock()
	defer bridgeMu.Unlock()
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("usbsim: %w", err)
	}
	src := filepath.Join(outDir, "usbsim_umockdev.c")
	bin := filepath.Join(outDir, BridgeName)
	newest, err := writeSources(src, bridgeSource)
	if err != nil {
		return "", err
	}
	if bi, err := os.Stat(bin); err == nil && !bi.ModTime().Before(newest) {
		return bin, nil
	}
	tmp := fmt.Sprintf("%s.tmp%d", bin, os.Getpid())
	args := append([]string{"-O2", "-Wall", "-o", tmp, src}, strings.Fields(string(flags))...)
	if out, err := exec.Command("cc", args...).CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("usbsim: building the umockdev bridge: cc %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("usbsim: %w", err)
	}
	return bin, nil
}

// UmockdevBridge is a running bridge onto one server.
type UmockdevBridge struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	dir    string
	done   chan struct{}
	synced chan struct{}
	log    bytes.Buffer
	mu     sync.Mutex
	cmdMu  sync.Mutex // one command (and its answer) at a time
}

// StartUmockdev builds (into outDir, "" for ShimDir()) and starts a bridge onto s. It
// returns once the server's devices are in the testbed.
func (s *Server) StartUmockdev(outDir string) (*UmockdevBridge, error) {
	bin, err := BuildBridge(outDir)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, s.path)
	// The testbed's owner runs under the preload too, so that umockdev's uevents find the
	// devices it added under the testbed's /sys.
	cmd.Env = append(os.Environ(), "LD_PRELOAD="+UmockdevPreload)
	b := &UmockdevBridge{cmd: cmd, done: make(chan struct{}), synced: make(chan struct{}, 1)}
	if b.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("usbsim: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("usbsim: %w", err)
	}
	cmd.Stderr = &lockedWriter{b: b}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("usbsim: starting the umockdev bridge: %w", err)
	}
	go func() { _ = cmd.Wait(); close(b.done) }()
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if d, ok := strings.CutPrefix(line, "UMOCKDEV_DIR="); ok {
				b.dir = d
			}
			if line == "READY" {
				ready <- nil
				for sc.Scan() {
					if sc.Text() == "SYNCED" {
						b.synced <- struct{}{}
					}
				}
				return
			}
		}
		ready <- errors.New("the umockdev bridge exited before it was ready")
	}()
	select {
	case err = <-ready:
	case <-time.After(30 * time.Second):
		err = errors.New("the umockdev bridge did not get ready within 30 s")
	}
	if err != nil || b.dir == "" {
		_ = b.Close()
		return nil, fmt.Errorf("usbsim: %w: %s", errors.Join(err, errors.New("no testbed")), b.stderr())
	}
	return b, nil
}

type lockedWriter struct{ b *UmockdevBridge }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.b.mu.Lock()
	defer w.b.mu.Unlock()
	if w.b.log.Len() < 64<<10 {
		w.b.log.Write(p)
	}
	return len(p), nil
}

func (b *UmockdevBridge) stderr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.log.String())
}

// Dir is the testbed's root directory (UMOCKDEV_DIR).
func (b *UmockdevBridge) Dir() string { return b.dir }

// Env is what a program needs in its environment to see the devices through umockdev, as
// KEY=value strings to append to os.Environ(): the preload library and the testbed.
func (b *UmockdevBridge) Env() []string {
	return []string{"LD_PRELOAD=" + UmockdevPreload, "UMOCKDEV_DIR=" + b.dir}
}

// command sends one line to the bridge.
func (b *UmockdevBridge) command(line string) error {
	if _, err := io.WriteString(b.stdin, line+"\n"); err != nil {
		return fmt.Errorf("usbsim: umockdev bridge: %w", err)
	}
	return nil
}

// Sync returns once the testbed shows the server's devices as they are now, and every
// tty added or removed before is in place.
func (b *UmockdevBridge) Sync() error {
	b.cmdMu.Lock()
	defer b.cmdMu.Unlock()
	if err := b.command("sync"); err != nil {
		return err
	}
	select {
	case <-b.synced:
		return nil
	case <-b.done:
		return fmt.Errorf("usbsim: the umockdev bridge exited: %s", b.stderr())
	case <-time.After(10 * time.Second):
		return errors.New("usbsim: the umockdev bridge did not answer")
	}
}

// TTY is a serial port in the testbed: the /dev node (ttyACM0) of a device's pty, with the
// udev properties the kernel's cdc_acm and udev give a Particle device's port.
type TTY struct {
	Name     string // "ttyACM0"
	PTY      string // the pty it leads to
	VID, PID uint16
	Serial   string // the USB serial number (the device ID)
	Minor    int
}

// AddTTY puts a tty in the testbed (replacing one of the same name), as the kernel does when
// a device in a Device OS mode enumerates.
func (b *UmockdevBridge) AddTTY(t TTY) error {
	if strings.ContainsAny(t.Name+t.PTY+t.Serial, " \n") {
		return fmt.Errorf("usbsim: tty %q: no spaces", t.Name)
	}
	b.cmdMu.Lock()
	defer b.cmdMu.Unlock()
	return b.command(fmt.Sprintf("tty-add %s %s %04x %04x %s %d", t.Name, t.PTY, t.VID, t.PID, t.Serial, t.Minor))
}

// RemoveTTY takes a tty out of the testbed (a udev remove).
func (b *UmockdevBridge) RemoveTTY(name string) error {
	b.cmdMu.Lock()
	defer b.cmdMu.Unlock()
	return b.command("tty-remove " + name)
}

// Close stops the bridge (its testbed directory is removed).
func (b *UmockdevBridge) Close() error {
	_ = b.stdin.Close()
	select {
	case <-b.done:
	case <-time.After(5 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
	return nil
}
