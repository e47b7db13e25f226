// Package flash models the flash memories of a simulated Particle device: NOR semantics
// (erase a whole sector to 0xFF, program only erased bytes), the permission map of the
// DfuSe layout the bootloader advertises, power-loss faults, and the time each operation
// takes on the real chip.
//
// Time is accounted, not assumed: every operation charges the device time the real part
// would need to a Meter, and the simulator sleeps that long times the Meter's scale. Unit
// tests run at scale 0 (instant, but the charged total is still exact); benchmarks run at
// scale 1 so that the host side feels real latencies and a wall-clock/device-time ratio
// says how much overhead the host adds.
package flash

import (
	"math"
	"sync"
	"time"
)

// Meter accounts device-bound time: every operation charges what the real chip would take,
// and the sim sleeps that times Scale (0 for unit tests, 1 for benchmarks). It is safe for
// concurrent use, and a nil *Meter is valid and charges nothing, so models that do not care
// about time need not build one.
type Meter struct {
	scale float64

	mu      sync.Mutex
	charged time.Duration
	// oversleep is how much longer than asked the sleeps so far took (the OS wakes a
	// thread late, ~0.1 ms), taken off the next ones, so that thousands of small charges
	// (one per USB transfer) add up to the real time they stand for instead of twice that.
	// Only the sleeps' own lateness is paid back, never the host's time between charges,
	// which a real device does not overlap with its work either.
	oversleep time.Duration
	// sleep blocks for the scaled time (time.Sleep; tests record the waits instead).
	sleep func(time.Duration)
}

// NewMeter returns a Meter that sleeps scale × the charged device time. A negative or NaN
// scale is treated as 0.
func NewMeter(scale float64) *Meter {
	if !(scale > 0) || math.IsInf(scale, 0) {
		scale = 0
	}
	return &Meter{scale: scale, sleep: time.Sleep}
}

// SetSleep replaces how the Meter waits out the scaled time (time.Sleep by default). A test
// that must hold a flash operation in flight, to see what the device answers meanwhile,
// passes a sleep that blocks until it lets go; nothing else should need it.
func (m *Meter) SetSleep(sleep func(time.Duration)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sleep = sleep
}

// Charge adds d of device time and, at a non-zero scale, blocks the caller for the scaled
// duration, which is how the simulator makes a slow flash erase slow for the host too.
func (m *Meter) Charge(d time.Duration) {
	if m == nil || d <= 0 {
		return
	}
	m.mu.Lock()
	m.charged += d
	wait := m.Scaled(d)
	if wait > 0 {
		paid := min(wait, m.oversleep)
		m.oversleep -= paid
		wait -= paid
	}
	sleep := m.sleep
	m.mu.Unlock()
	if wait > 0 {
		start := time.Now()
		sleep(wait)
		if late := time.Since(start) - wait; late > 0 {
			m.mu.Lock()
			m.oversleep += late
			m.mu.Unlock()
		}
	}
}

// Charged is the total device time charged so far.
func (m *Meter) Charged() time.Duration {
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.charged
}

// Scale is the real-time factor given to NewMeter.
func (m *Meter) Scale() float64 {
	if m == nil {
		return 0
	}
	return m.scale
}

// Scaled converts device time into the real time the simulator spends on it, so a device
// can advertise the wait (for example as a DFU bwPollTimeout) that its sleep will take.
func (m *Meter) Scaled(d time.Duration) time.Duration {
	if m == nil || m.scale == 0 || d <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(float64(d) * m.scale))
}
