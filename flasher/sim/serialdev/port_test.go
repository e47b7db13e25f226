package serialdev_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/serialport"
	"github.com/particle-flasher/particle-flasher/flasher/sim/serialdev"
)

// fastOpts runs the device at a fifth of real time: Device OS's 5 s NAK_TIMEOUT becomes 1 s,
// long enough that a loaded machine's pause between two of a test's writes is not taken
// for a silent sender.
func fastOpts() serialdev.Options {
	return serialdev.Options{TimeScale: 0.2, PollInterval: 10 * time.Millisecond}
}

// timeoutOpts runs it at a fiftieth, for the tests that wait for the device's own
// timeouts to fire (NAK_TIMEOUT 100 ms).
func timeoutOpts() serialdev.Options {
	return serialdev.Options{TimeScale: 0.02, PollInterval: 10 * time.Millisecond}
}

func openDev(t *testing.T, m *serialdev.MemModel) *serialdev.Port {
	t.Helper()
	p, err := serialdev.Open(m, fastOpts())
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

func TestBaudTriggers(t *testing.T) {
	t.Run("14400 enters DFU", func(t *testing.T) {
		m := &serialdev.MemModel{ID: "e00fce68ffffffffffffffff"}
		p := openDev(t, m)
		require.NoError(t, serialport.TriggerDFU(p.SlavePath()))
		assert.Eventually(t, func() bool { return m.HasEvent("dfu") }, 10*time.Second, 10*time.Millisecond)
		// A second request is seen again: the line was put back to 9600.
		require.NoError(t, serialport.TriggerDFU(p.SlavePath()))
		assert.Eventually(t, func() bool {
			n := 0
			for _, e := range m.Events() {
				if e == "dfu" {
					n++
				}
			}
			return n == 2
		}, 10*time.Second, 10*time.Millisecond)
	})
	t.Run("28800 enters listening mode", func(t *testing.T) {
		m := &serialdev.MemModel{}
		p := openDev(t, m)
		require.NoError(t, serialport.TriggerListening(p.SlavePath()))
		assert.Eventually(t, m.Listening, 10*time.Second, 10*time.Millisecond)
		assert.Equal(t, []string{"listen"}, m.Events())
	})
	t.Run("28800 ignored on Device OS 6", func(t *testing.T) {
		m := &serialdev.MemModel{NoListenBaud: true}
		p := openDev(t, m)
		require.NoError(t, serialport.TriggerListening(p.SlavePath()))
		time.Sleep(150 * time.Millisecond)
		assert.False(t, m.Listening())
		assert.Empty(t, m.Events())
	})
	t.Run("ordinary speeds do nothing", func(t *testing.T) {
		m := &serialdev.MemModel{}
		p := openDev(t, m)
		for _, baud := range []int{9600, 115200, 19200} {
			sp, err := serialport.Open(p.SlavePath(), baud)
			require.NoError(t, err)
			time.Sleep(30 * time.Millisecond)
			require.NoError(t, sp.Close())
		}
		time.Sleep(50 * time.Millisecond)
		assert.Empty(t, m.Events())
	})
}
