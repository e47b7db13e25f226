package serialdev_test

import (
	"github.com/particle-flasher/particle-flasher/internal/testshared"

	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/sim/serialdev"
)

func lrzsz(t *testing.T, name string) string { return testshared.Lrzsz(t, name) }

// transcript records what the device sent to the host.
type transcript struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (tr *transcript) observe(fromDevice bool, p []byte) {
	if fromDevice {
		tr.mu.Lock()
		tr.b.Write(p)
		tr.mu.Unlock()
	}
}

func (tr *transcript) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.b.String()
}

// readUntil reads f until want has arrived or d passes.
func readUntil(t *testing.T, f *os.File, want string, d time.Duration) string {
	t.Helper()
	var got []byte
	buf := make([]byte, 256)
	deadline := time.Now().Add(d)
	for !bytes.Contains(got, []byte(want)) {
		require.NoError(t, f.SetReadDeadline(deadline))
		n, err := f.Read(buf)
		got = append(got, buf[:n]...)
		require.NoError(t, err, "waiting for %q, got %q", want, got)
	}
	return string(got)
}

// lrzsz's sb, run on the pty slave as on a real tty, uploads to the Device OS receiver.
func TestLrzszSbToReceiver(t *testing.T) {
	sb := lrzsz(t, "sb")
	r := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 700*1024)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	file := filepath.Join(t.TempDir(), "image.bin")
	require.NoError(t, os.WriteFile(file, data, 0o644))

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"128-byte blocks", []string{"--ymodem"}},
		{"1024-byte blocks", []string{"--ymodem", "-k"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var tr transcript
			m := &serialdev.MemModel{StartListening: true}
			p, err := serialdev.Open(m, serialdev.Options{TimeScale: 0.1, PollInterval: 10 * time.Millisecond, Observe: tr.observe})
			require.NoError(t, err)
			defer p.Close()

			tty, err := os.OpenFile(p.SlavePath(), os.O_RDWR|syscall.O_NOCTTY, 0)
			require.NoError(t, err)
			defer tty.Close()
			_, err = tty.Write([]byte("f"))
			require.NoError(t, err)
			readUntil(t, tty, serialdev.WaitingLine+"\r\n", 10*time.Second)

			ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, sb, append(tc.args, file)...)
			cmd.Stdin, cmd.Stdout = tty, tty
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			require.NoError(t, cmd.Run(), "sb said: %s", stderr.String())

			require.Eventually(t, func() bool { return m.HasEvent("reset:update") }, 10*time.Second, 10*time.Millisecond,
				"events %v; device said %q", m.Events(), tr.String())
			got := m.Image()
			assert.Equal(t, len(data), len(got))
			assert.True(t, bytes.Equal(data, got), "image differs")
			out := tr.String()
			assert.Contains(t, out, "\x06\r\nDownloaded file successfully!\r\nName: image.bin\r\nSize: 716800 bytes\r\n")
			assert.True(t, strings.HasSuffix(out, "Restarting system to apply firmware update...\r\n"), "ends with %q", out[max(0, len(out)-80):])
			assert.Equal(t, []string{"begin:716800", "finish:716800", "reset:update"}, m.Events())
		})
	}
}
