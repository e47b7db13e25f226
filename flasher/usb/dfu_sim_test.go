//go:build !windows

// The libusb backend (gousb.go) against virtual devices behind the libusb shim: Linux and macOS.

package usb_test

// Issue acceptance for the DfuSe client over the real libusb path: our client (gousb, in a
// child process under the shim) and the Debian dfu-util binary each write the same real
// system part into a fresh virtual Photon; the flash contents must be identical, and ours
// must not need more control transfers.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

const (
	shimPart  = "photon-system-part1@2.3.1.bin"
	shimAddr  = 0x08020000
	envPart   = "PFLASH_TEST_PART"
	envDevice = "PFLASH_TEST_DEVICE"
)

var pollNote = regexp.MustCompile(`state=(\d+) poll=(\d+)ms`)

// TestDfuClientThroughShim is the child half: it runs with the shim loaded and drives the
// device with flasher/usb + flasher/dfu exactly as the product does.
func TestDfuClientThroughShim(t *testing.T) {
	if !usbsim.InChild(t.Name()) {
		t.Skip("runs as the child of TestDfuClientVersusDfuUtil")
	}
	data, err := os.ReadFile(os.Getenv(envPart))
	require.NoError(t, err)
	h := newHost(t)
	dev, err := h.Open(os.Getenv(envDevice))
	require.NoError(t, err)
	defer dev.Close()

	// The client's waits are recorded against the request they follow (and still slept for
	// real, since the shim's device is real time): the check below counts the waits the
	// client chose, not how long the machine took.
	var log []dfu.Transfer
	waited := map[int]time.Duration{}
	sleep := func(ctx context.Context, d time.Duration) error {
		waited[len(log)-1] += d
		return dfu.Sleep(ctx, d)
	}
	d, err := dev.DFUWith(0, dfu.Options{Log: func(tr dfu.Transfer) { log = append(log, tr) }, Sleep: sleep})
	require.NoError(t, err)
	require.NotNil(t, d.Layout)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	require.NoError(t, d.Client.Write(ctx, d.Layout, shimAddr, data, nil))
	back, err := d.Client.Read(ctx, shimAddr, uint32(len(data)))
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, back), "read back differs from what was written")

	// One SET_ADDRESS per contiguous run: the image is one run.
	setAddr := 0
	for _, tr := range log {
		if strings.HasPrefix(tr.Note, "SET_ADDRESS") {
			setAddr++
		}
	}
	// One for the write and one for the read-back.
	assert.Equal(t, 2, setAddr, "SET_ADDRESS count")
	// No request sooner than the bwPollTimeout the previous GETSTATUS asked for.
	polls := 0
	for i := 0; i+1 < len(log); i++ {
		m := pollNote.FindStringSubmatch(log[i].Note)
		if m == nil {
			continue
		}
		ms, _ := strconv.Atoi(m[2])
		if ms == 0 {
			continue
		}
		polls++
		assert.GreaterOrEqual(t, waited[i], time.Duration(ms)*time.Millisecond, "request %d came after a wait of %v, following a GETSTATUS asking for %d ms", i+1, waited[i], ms)
	}
	assert.Positive(t, polls, "the device reported no poll timeouts; the timing check checked nothing")
	require.NoError(t, d.Client.Leave(ctx))
}

func TestDfuClientVersusDfuUtil(t *testing.T) {
	if usbsim.IsChild() {
		t.Skip("parent only")
	}
	dfuUtil := testshared.DfuUtil(t)
	rel := testshared.Dir(t, "firmware", "releases")
	part := filepath.Join(rel, shimPart)
	data, err := os.ReadFile(part)
	require.NoError(t, err)
	var preload [][]byte
	for _, f := range []string{"photon-bootloader@2.3.1+lto.bin", "photon-system-part2@2.3.1.bin"} {
		b, err := os.ReadFile(filepath.Join(rel, f))
		require.NoError(t, err)
		preload = append(preload, b)
	}
	p := mustPlatform(t, "photon")

	fleet, err := sim.NewFleet(sim.FleetOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = fleet.Close() })
	// Time scale 0.01: erases report real (scaled) bwPollTimeouts, fast enough for a test.
	ours, err := fleet.Add(sim.Options{Platform: p, Modules: preload, Mode: sim.ModeDFU, Scale: 0.01, NoSerial: true})
	require.NoError(t, err)
	theirs, err := fleet.Add(sim.Options{Platform: p, Modules: preload, Mode: sim.ModeDFU, Scale: 0.01, NoSerial: true})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, d := range []*sim.Device{ours, theirs} {
		_, err := d.WaitMode(ctx, sim.ModeDFU)
		require.NoError(t, err)
	}

	// Ours, through gousb and the shim, in a child process.
	cmd := fleet.Server().TestCommand("TestDfuClientThroughShim", "-test.v", "-test.timeout=60s")
	cmd.Env = append(cmd.Env, envPart+"="+part, envDevice+"="+ours.ID())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child failed:\n%s", out)
	require.Contains(t, string(out), "--- PASS: TestDfuClientThroughShim", "child ran no test:\n%s", out)
	oursAll, oursClass := ours.ControlTransfers()

	// dfu-util, the reference DfuSe host, on the other sim: write, then read back.
	run := func(args ...string) {
		c := exec.CommandContext(ctx, dfuUtil, args...)
		c.Env = append(os.Environ(), fleet.Env()...)
		o, err := c.CombinedOutput()
		require.NoError(t, err, "dfu-util %v:\n%s", args, o)
	}
	run("-d", fmt.Sprintf("%04x:%04x", p.DFUVID, p.DFUPID), "-S", theirs.ID(), "-a", "0", "-s", fmt.Sprintf("0x%08x", shimAddr), "-D", part)
	theirsAll, theirsClass := theirs.ControlTransfers()
	up := filepath.Join(t.TempDir(), "up.bin")
	run("-d", fmt.Sprintf("%04x:%04x", p.DFUVID, p.DFUPID), "-S", theirs.ID(), "-a", "0", "-s", fmt.Sprintf("0x%08x:%d", shimAddr, len(data)), "-U", up)
	upData, err := os.ReadFile(up)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, upData), "dfu-util read back something else")

	// Our child also left DFU: the sim rebooted and must run the new part.
	st, err := ours.WaitFor(ctx, func(s sim.Status) bool { return s.Ready && s.Mode != sim.ModeDFU })
	require.NoError(t, err)
	t.Logf("after leave: %s, LED %s", st.Mode, st.LED)

	// Identical flash: both sims hold exactly the file's bytes at its address, and the
	// rest of internal flash matches too.
	a, b := ours.InternalFlash(), theirs.InternalFlash()
	off := shimAddr - 0x08000000
	assert.True(t, bytes.Equal(data, a[off:off+len(data)]), "our client left other bytes in flash")
	assert.True(t, bytes.Equal(data, b[off:off+len(data)]), "dfu-util left other bytes in flash")
	assert.True(t, bytes.Equal(a, b), "the two sims' internal flash differs")

	t.Logf("control transfers for the write: ours %d (DFU class %d; includes read-back and leave), dfu-util %d (DFU class %d; write only)", oursAll, oursClass, theirsAll, theirsClass)
	assert.LessOrEqual(t, oursClass, theirsClass, "our client issued more DFU requests than dfu-util")
}
