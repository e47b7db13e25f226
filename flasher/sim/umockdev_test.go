package sim_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// underUmockdev runs an unmodified program (sh, cat, stty: Debian's own) in the testbed.
func underUmockdev(t *testing.T, b *usbsim.UmockdevBridge, script string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), b.Env()...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The serial door through umockdev: a Boron's serial port is /dev/ttyACM0 with the sysfs
// node and udev properties cdc_acm gives it, found by enumerating /sys/class/tty as serial
// libraries do; picocom (unmodified) opening it at 14400 baud on it puts the device in
// DFU mode, and the port is gone once the device left Device OS.
func TestUmockdevSerialDoor(t *testing.T) {
	p := plat(t, "boron")
	f := newFleet(t)
	d, err := f.Add(sim.Options{Platform: p, Modules: append(releases(t, "boron-bootloader@4.1.0.bin", "boron-system-part1@4.1.0.bin", "boron-softdevice@4.1.0.bin"), userPart(t, p, 4100, 1))})
	require.NoError(t, err)
	require.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
	b := startUmockdev(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d.ServeTTY(ctx, b, 0)
	require.NoError(t, b.Sync())

	out, err := underUmockdev(t, b, "ls /sys/class/tty && cat /sys/class/tty/ttyACM0/uevent && test -c /dev/ttyACM0 && echo is-a-tty")
	require.NoError(t, err, out)
	assert.Contains(t, out, "ttyACM0")
	assert.Contains(t, out, "DEVNAME=ttyACM0")
	assert.Contains(t, out, "ID_VENDOR_ID=2b04")
	assert.Contains(t, out, "ID_MODEL_ID=c00d")
	assert.Contains(t, out, "ID_SERIAL_SHORT="+d.ID())
	assert.Contains(t, out, "is-a-tty")

	// picocom (Debian's, unmodified) sets the custom 14400 baud as particle-cli's serial trigger does.
	if _, err := exec.LookPath("picocom"); err != nil {
		t.Skip("picocom is not installed (scripts/ensure-deps.sh test installs it)")
	}
	out, err = underUmockdev(t, b, "picocom -q --nolock --noreset --exit -b 14400 /dev/ttyACM0")
	require.NoError(t, err, out)
	waitMode(t, d, sim.ModeDFU)
	require.NoError(t, b.Sync())
	out, _ = underUmockdev(t, b, "ls /sys/class/tty; test -e /dev/ttyACM0 && echo still-there")
	assert.False(t, strings.Contains(out, "still-there") || strings.Contains(out, "ttyACM0"), "no serial port in DFU mode:\n%s", out)
}

// startUmockdev starts a umockdev bridge onto the fleet's server, closed when the test
// ends, or skips the test where umockdev is missing (the error names the Debian packages;
// make test installs them).
func startUmockdev(t *testing.T, f *sim.Fleet) *usbsim.UmockdevBridge {
	t.Helper()
	b, err := f.Server().StartUmockdev(shimDir)
	if errors.Is(err, usbsim.ErrNoUmockdev) {
		t.Skip(err.Error())
	}
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// A device that re-enumerates while a program is opening it: the program sees the device
// go (an open that fails, an ioctl answered ENODEV), never a broken ioctl socket. With the
// kernel, an open() of a node that vanishes under it is just an error; umockdev's preload
// kills the program when the socket behind a node it opened goes away, so the bridge must
// never take a node's socket away (dfu-util died so in CI, listing during a DFU leave).
// The replugs go past 127 addresses, so device nodes are also taken over by a new device.
func TestUmockdevReplugUnderOpen(t *testing.T) {
	list := "exec " + testshared.DfuUtil(t) + " -l"
	p := plat(t, "photon")
	f := newFleet(t)
	d, err := f.Add(sim.Options{Platform: p, Blank: true, NoSerial: true})
	require.NoError(t, err)
	b := startUmockdev(t, f)

	const replugs = 140
	replugged := make(chan error, 1)
	go func() {
		for range replugs {
			f.Server().Replug(d.USB())
			// Each replug reaches the testbed before the next: Sync waits for a mirror pass.
			if err := b.Sync(); err != nil {
				replugged <- err
				return
			}
		}
		replugged <- nil
	}()
	var died []string
	runs, failed := 0, 0
	for done := false; !done; runs++ {
		select {
		case err := <-replugged:
			require.NoError(t, err)
			done = true
		default:
		}
		out, err := underUmockdev(t, b, list)
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee) && !ee.Exited() || strings.Contains(out, "libumockdev-preload"):
			died = append(died, fmt.Sprintf("run %d: %v\n%s", runs, err, out))
		case err != nil:
			failed++ // dfu-util's own error for a device that went while it looked: allowed
		}
	}
	t.Logf("%d dfu-util -l runs during %d re-enumerations, %d ended in dfu-util's own error", runs, replugs, failed)
	assert.Empty(t, died, "no program killed by a vanished ioctl socket")
	// The last run came after the last replug: the device is there, on a reused node.
	out, err := underUmockdev(t, b, list)
	require.NoError(t, err, out)
	assert.Len(t, testshared.FoundDFU(out), len(p.Alts), out)
}
