package serialdev_test

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/sim/serialdev"
)

type claimedModel struct{ serialdev.MemModel }

func (*claimedModel) Claimed() bool           { return true }
func (*claimedModel) DiagnosticsJSON() string { return `{"service":{"uptime":12}}` }

// host opens the tty the way a terminal would, without go.bug.st/serial.
func host(t *testing.T, p *serialdev.Port) *os.File {
	t.Helper()
	f, err := os.OpenFile(p.SlavePath(), os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

// exchange sends cmd and checks that exactly want follows.
func exchange(t *testing.T, f *os.File, cmd string, want string) {
	t.Helper()
	_, err := f.Write([]byte(cmd))
	require.NoError(t, err)
	got := readUntil(t, f, want, 10*time.Second)
	assert.Equal(t, want, got)
}

// The console texts are Device OS's, byte for byte (system_setup.cpp, system_info.cpp).
func TestConsoleTexts(t *testing.T) {
	m := &claimedModel{serialdev.MemModel{
		ID: "e00fce68ffffffffffffffff", Version: "5.9.0", MACAddress: "E0:4F:43:12:AB:CD",
		ModuleJSON: `{"p":12,"m":[]}`, StartListening: true,
	}}
	p, err := serialdev.Open(m, fastOpts())
	require.NoError(t, err)
	defer p.Close()
	f := host(t, p)

	exchange(t, f, "i", "Your device id is e00fce68ffffffffffffffff\r\n")
	exchange(t, f, "v", "system firmware version: 5.9.0\n\r\n")
	exchange(t, f, "m", "Your device MAC address is\r\nE0:4F:43:12:AB:CD\r\n")
	exchange(t, f, "s", `{"p":12,"m":[]}`+"\r\n")
	exchange(t, f, "c", "Device claimed: yes\r\n")
	exchange(t, f, "d", `{"service":{"uptime":12}}`+"\r\n")

	m.Extra = []serialdev.KV{{Key: "imei", Value: "1"}, {Key: "iccid", Value: "2"}, {Key: "sn", Value: "3"}, {Key: "ms", Value: "4"}, {Key: "cellfw", Value: "5"}, {Key: "other", Value: "6"}}
	exchange(t, f, "i", "Device ID: e00fce68ffffffffffffffff\r\nIMEI: 1\r\nICCID: 2\r\nSerial Number: 3\r\nDevice Secret: 4\r\nCell Radio Version: 5\r\nother: 6\r\n")

	_, err = f.Write([]byte("L"))
	require.NoError(t, err)
	assert.Eventually(t, func() bool { return m.HasEvent("safe-listen") }, 10*time.Second, 5*time.Millisecond)
	_, err = f.Write([]byte("x"))
	require.NoError(t, err)
	assert.Eventually(t, func() bool { return !m.Listening() }, 10*time.Second, 5*time.Millisecond)

	// Outside listening mode the bytes wait, unread, until the console comes back.
	_, err = f.Write([]byte("v"))
	require.NoError(t, err)
	time.Sleep(50 * time.Millisecond)
	m.SetListening(true)
	assert.Equal(t, "system firmware version: 5.9.0\n\r\n", readUntil(t, f, "\n\r\n", 10*time.Second))
}

func TestDeviceOS6RefusesF(t *testing.T) {
	m := &serialdev.MemModel{StartListening: true, NoYModem: true}
	p, err := serialdev.Open(m, fastOpts())
	require.NoError(t, err)
	defer p.Close()
	f := host(t, p)
	exchange(t, f, "f", serialdev.WaitingLine+"\r\n\x18\x18\x18\x18Serial/YModem flashing is no longer supported\r\n")
	// A bare SOH is just another byte on 6.x.
	_, err = f.Write([]byte{0x01})
	require.NoError(t, err)
	exchange(t, f, "i", "Your device id is \r\n")
	assert.Empty(t, m.Events())
}

// With nothing sent after `f`, Device OS sends 'C' per NAK_TIMEOUT, cancels after the
// sixth (MAX_ERRORS 5) and says so.
func TestReceiverGivesUp(t *testing.T) {
	m := &serialdev.MemModel{StartListening: true}
	p, err := serialdev.Open(m, timeoutOpts()) // NAK_TIMEOUT 100 ms
	require.NoError(t, err)
	defer p.Close()
	f := host(t, p)
	_, err = f.Write([]byte("f"))
	require.NoError(t, err)
	got := readUntil(t, f, "Failed to receive the file!\r\n", 30*time.Second)
	// Six 'C's, one per NAK_TIMEOUT, then the cancel: the count, not the clock, says it
	// waited the six timeouts.
	assert.Equal(t, serialdev.WaitingLine+"\r\nCCCCCC\x18\x18\x18\x18Failed to receive the file!\r\n", got)
	assert.Empty(t, m.Events())
}

func TestReceiverUserAbort(t *testing.T) {
	m := &serialdev.MemModel{StartListening: true}
	p, err := serialdev.Open(m, fastOpts())
	require.NoError(t, err)
	defer p.Close()
	f := host(t, p)
	exchange(t, f, "f", serialdev.WaitingLine+"\r\n")
	exchange(t, f, "a", "\x18\x18\x18\x18Aborted by user.\r\n")
}

// Device OS checks only seq/~seq: a wrong sequence number is NAKed, a bad CRC is not noticed.
func TestReceiverChecksOnlySequence(t *testing.T) {
	m := &serialdev.MemModel{StartListening: true}
	p, err := serialdev.Open(m, fastOpts())
	require.NoError(t, err)
	defer p.Close()
	f := host(t, p)
	block := func(seq byte, payload string) []byte {
		b := make([]byte, 133)
		b[0], b[1], b[2] = 0x01, seq, ^seq
		copy(b[3:], payload)
		b[131], b[132] = 0xde, 0xad // not the CRC
		return b
	}
	exchange(t, f, string(block(0, "a.bin\x00"+"5 ")), "\x06C")
	exchange(t, f, string(block(2, "wrong")), "\x15")
	exchange(t, f, string(block(1, "hello")), "\x06")
	exchange(t, f, "\x04", "\x06")
	exchange(t, f, string(block(0, "")), "\x06\r\nDownloaded file successfully!\r\nName: a.bin\r\nSize: 5 bytes\r\n")
	readUntil(t, f, "Restarting system to apply firmware update...\r\n", 10*time.Second)
	assert.Equal(t, "hello", string(m.Image()))
	assert.Eventually(t, func() bool { return m.HasEvent("reset:update") }, 10*time.Second, 5*time.Millisecond)
}
