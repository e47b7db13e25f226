package sim_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.bug.st/serial"

	"github.com/particle-flasher/particle-flasher/flasher/listen"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/serialport"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/sim/serialdev"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

func openTTY(t *testing.T, d *sim.Device) *os.File {
	t.Helper()
	path := d.SerialPath()
	require.NotEmpty(t, path, "device has no serial port (mode %s)", d.Mode())
	tty, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tty.Close() })
	return tty
}

// readUntil reads f until want has arrived or d passes.
func readUntil(t *testing.T, f *os.File, want string, d time.Duration) string {
	t.Helper()
	var got []byte
	buf := make([]byte, 4096)
	deadline := time.Now().Add(d)
	for !bytes.Contains(got, []byte(want)) {
		require.NoError(t, f.SetReadDeadline(deadline))
		n, err := f.Read(buf)
		got = append(got, buf[:n]...)
		require.NoError(t, err, "waiting for %q, got %q", want, got)
	}
	return string(got)
}

func boron152(t *testing.T) [][]byte {
	p := plat(t, "boron")
	return append(releases(t, "boron-bootloader@1.5.2.bin", "boron-system-part1@1.5.2.bin", "boron-softdevice@4.1.0.bin"), userPart(t, p, 1512, 1))
}

func TestListeningConsole(t *testing.T) {
	d := newDevice(t, sim.Options{Platform: plat(t, "boron"), Modules: boron152(t), Mode: sim.ModeListening})
	tty := openTTY(t, d)
	_, err := tty.Write([]byte("i"))
	require.NoError(t, err)
	out := readUntil(t, tty, "ICCID", 2*time.Second)
	ident := d.Identity()
	assert.Contains(t, out, "Device ID: "+d.ID()+"\r\nSerial Number: "+ident.Serial+"\r\nIMEI: "+ident.IMEI+"\r\nICCID: "+ident.ICCID+"\r\n")
	_, err = tty.Write([]byte("v"))
	require.NoError(t, err)
	readUntil(t, tty, "system firmware version: 1.5.2\n\r\n", 2*time.Second)
	_, err = tty.Write([]byte("s"))
	require.NoError(t, err)
	out = readUntil(t, tty, "]}\r\n", 2*time.Second)
	assert.Contains(t, out, d.ModuleJSON()+"\r\n")
	_, err = tty.Write([]byte("x"))
	require.NoError(t, err)
	st, err := d.WaitFor(ctx(t), func(st sim.Status) bool { return st.Mode == sim.ModeNormal })
	require.NoError(t, err)
	assert.Equal(t, "left listening mode", st.Reason)
}

// lrzsz's sb sends a real bootloader over the pty with YMODEM, exactly as particle-cli's
// `flash --serial` did; it lands in the OTA region and is applied at the reset.
func TestLrzszYModemUpdate(t *testing.T) {
	sb := testshared.Lrzsz(t, "sb")
	d := newDevice(t, sim.Options{Platform: plat(t, "boron"), Modules: boron152(t), Mode: sim.ModeListening})
	require.Equal(t, sim.ModeListening, d.Mode())
	file := filepath.Join(testSharedReleases(t), "boron-bootloader@4.1.0.bin")
	want := release(t, "boron-bootloader@4.1.0.bin")

	tty := openTTY(t, d)
	_, err := tty.Write([]byte("f"))
	require.NoError(t, err)
	readUntil(t, tty, serialdev.WaitingLine+"\r\n", 2*time.Second)

	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(c, sb, "--ymodem", "-k", file)
	cmd.Stdin, cmd.Stdout = tty, tty
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run(), "sb: %s", stderr.String())

	st, err := d.WaitFor(ctx(t), func(st sim.Status) bool { return st.Ready && st.Resets >= 1 })
	require.NoError(t, err)
	assert.Equal(t, sim.ModeNormal, st.Mode, st.Reason)
	assert.Equal(t, "serial: update", st.LastReset)
	bl, ok := findModule(d.Modules(), platform.FuncBootloader, 0)
	require.True(t, ok)
	assert.Equal(t, uint16(1200), bl.Version)
	assert.True(t, bl.Valid(), "%+v", bl)
	assert.Equal(t, want, d.Memory(0).Snapshot(0xF4000, uint32(len(want))), "the bootloader slot holds the file")
	// The image went through the OTA region of Device OS 1.5.2 (external flash).
	ota := plat(t, "boron").OTARegions[0].Region
	assert.Equal(t, want, d.Memory(2).Snapshot(ota.Address, uint32(len(want))))
}

// Device OS 6.x answers `f` with four CANs.
func TestYModemRefusedOn6(t *testing.T) {
	p := plat(t, "boron")
	mods, err := sim.SyntheticSet(p, "6.2.0")
	require.NoError(t, err)
	d := newDevice(t, sim.Options{Platform: p, Modules: mods, Mode: sim.ModeListening})
	tty := openTTY(t, d)
	_, err = tty.Write([]byte("f"))
	require.NoError(t, err)
	out := readUntil(t, tty, serialdev.NoLongerLine, 3*time.Second)
	assert.Contains(t, out, "\x18\x18\x18\x18")
}

// The magic baud rates, set the way the flasher sets them (go.bug.st/serial uses BOTHER,
// which the sim reads back with TCGETS2): 28800 enters listening mode, 14400 DFU mode.
func TestMagicBaudRates(t *testing.T) {
	d := newDevice(t, sim.Options{Platform: plat(t, "boron"), Modules: boron152(t), SerialTimeScale: 0.1})
	require.Equal(t, sim.ModeNormal, d.Mode())
	port, err := serial.Open(d.SerialPath(), &serial.Mode{BaudRate: 28800})
	require.NoError(t, err)
	waitMode(t, d, sim.ModeListening)
	require.NoError(t, port.Close())
	// serialdev puts the line back to 9600 just after acting on a magic speed; a host
	// reopening within that moment would have its new speed overwritten.
	time.Sleep(100 * time.Millisecond)

	port, err = serial.Open(d.SerialPath(), &serial.Mode{BaudRate: 14400})
	require.NoError(t, err)
	defer port.Close()
	st := waitMode(t, d, sim.ModeDFU)
	assert.Equal(t, "14400 baud", st.LastReset)
	assert.Empty(t, st.Serial, "no serial port in DFU mode")
}

// Our YMODEM sender (flasher/listen over go.bug.st/serial on the pty) delivers a real
// module to the sim's listening mode; the device applies it at the reset that follows.
func TestOurYModemSenderUpdate(t *testing.T) {
	d := newDevice(t, sim.Options{Platform: plat(t, "boron"), Modules: boron152(t), Mode: sim.ModeListening})
	want := release(t, "boron-bootloader@4.1.0.bin")
	port, err := serialport.Open(d.SerialPath(), serialport.ConsoleBaud)
	require.NoError(t, err)
	defer port.Close()
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	con := listen.New(port, listen.Options{Quiet: 50 * time.Millisecond})
	var last int
	require.NoError(t, con.SendFirmware(c, "binary", want, func(done, total int) { last = done }))
	assert.Equal(t, len(want), last, "progress reached the whole image")

	st, err := d.WaitFor(ctx(t), func(st sim.Status) bool { return st.Ready && st.Resets >= 1 })
	require.NoError(t, err)
	assert.Equal(t, sim.ModeNormal, st.Mode, st.Reason)
	bl, ok := findModule(d.Modules(), platform.FuncBootloader, 0)
	require.True(t, ok)
	assert.Equal(t, uint16(1200), bl.Version)
	assert.Equal(t, want, d.Memory(0).Snapshot(0xF4000, uint32(len(want))), "the bootloader slot holds the file")
}
