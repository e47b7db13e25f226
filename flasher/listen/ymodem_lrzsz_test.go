package listen

import (
	"github.com/particle-flasher/particle-flasher/internal/testshared"

	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lrzsz finds an lrzsz program or skips: the Makefile's deps-test installs the package.
func lrzsz(t *testing.T, name string) string { return testshared.Lrzsz(t, name) }

func pseudoRandom(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// pipeRW joins two pipe ends into the sender's stream; os.File pipes support deadlines.
type pipeRW struct{ r, w *os.File }

func (p pipeRW) Read(b []byte) (int, error)        { return p.r.Read(b) }
func (p pipeRW) Write(b []byte) (int, error)       { return p.w.Write(b) }
func (p pipeRW) SetReadDeadline(t time.Time) error { return p.r.SetReadDeadline(t) }

// runRB starts `rb --ymodem args...` in dir with its stdin/stdout on pipes.
func runRB(t *testing.T, ctx context.Context, dir string, args ...string) (pipeRW, func() (string, error)) {
	t.Helper()
	rb := lrzsz(t, "rb")
	inR, inW, err := os.Pipe()
	require.NoError(t, err)
	outR, outW, err := os.Pipe()
	require.NoError(t, err)
	cmd := exec.CommandContext(ctx, rb, append([]string{"--ymodem"}, args...)...)
	cmd.Dir = dir
	cmd.Stdin, cmd.Stdout = inR, outW
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	inR.Close()
	outW.Close()
	t.Cleanup(func() { inW.Close(); outR.Close() })
	return pipeRW{r: outR, w: inW}, func() (string, error) {
		inW.Close()
		err := cmd.Wait()
		return stderr.String(), err
	}
}

func TestYModemSendToLrzszRb(t *testing.T) {
	t.Parallel()
	data := pseudoRandom(700*1024, 1)
	for _, bs := range []int{128, 1024} {
		t.Run(map[int]string{128: "128-byte blocks", 1024: "1024-byte blocks"}[bs], func(t *testing.T) {
			t.Parallel() // rb spends ~3 s in its own EOT and header timeouts
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			dir := t.TempDir()
			rw, wait := runRB(t, ctx, dir)
			var calls, last int
			err := YModemSend(ctx, rw, "firmware.bin", data, YModemOptions{
				BlockSize: bs, AckTimeout: 5 * time.Second,
				Progress: func(done, total int) { calls++; last = done; assert.Equal(t, len(data), total) },
			})
			stderr, werr := wait()
			require.NoError(t, err, "rb said: %s", stderr)
			require.NoError(t, werr, "rb said: %s", stderr)
			got, err := os.ReadFile(filepath.Join(dir, "firmware.bin"))
			require.NoError(t, err)
			assert.Equal(t, len(data), len(got))
			assert.True(t, bytes.Equal(data, got), "file differs")
			assert.Equal(t, len(data), last)
			assert.Equal(t, (len(data)+bs-1)/bs+1, calls)
		})
	}
}

// rb --errors N corrupts the CRC check every N bytes: the sender must re-send on NAK.
func TestYModemSendRetransmitsOnNAK(t *testing.T) {
	t.Parallel()
	data := pseudoRandom(20*1024+77, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()
	rw, wait := runRB(t, ctx, dir, "--errors", "7000")
	err := YModemSend(ctx, rw, "nak.bin", data, YModemOptions{BlockSize: 1024, AckTimeout: 5 * time.Second})
	stderr, werr := wait()
	require.NoError(t, err, "rb said: %s", stderr)
	require.NoError(t, werr, "rb said: %s", stderr)
	got, err := os.ReadFile(filepath.Join(dir, "nak.bin"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, got), "file differs")
}
