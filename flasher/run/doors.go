package run

import (
	"time"
)

// Timeouts bound every wait. Zero fields take the defaults (DefaultTimeouts), which are
// sized for real hardware from prior-art.md §4: DFU entry "up to 30 s", reopen 60 s, NCP
// 4 minutes.
type Timeouts struct {
	// Find bounds the wait for the device to be attached at the start.
	Find time.Duration
	// EnterMode bounds a switch into DFU, safe or listening mode by software.
	EnterMode time.Duration
	// Buttons bounds the wait for a person to press the buttons.
	Buttons time.Duration
	// Reenumerate bounds a restart the runner caused (leave DFU, reset).
	Reenumerate time.Duration
	// Apply bounds Device OS installing a control-request update (added to the step's
	// estimate).
	Apply time.Duration
	// Step bounds one DFU write, read or control-request transfer.
	Step time.Duration
	// Settle is how long verification keeps re-reading a device whose modules do not
	// match yet (it may still be installing).
	Settle time.Duration
	// EstimateFactor is how many times a step's estimated device time a wait for that
	// step allows on top of its fixed timeout (default 2). Negative: none, for simulated
	// devices at time scale 0, which take no real time at all.
	EstimateFactor float64
}

// allow is the extra wait a step's estimate earns.
func (t Timeouts) allow(estimate time.Duration) time.Duration {
	if t.EstimateFactor < 0 {
		return 0
	}
	return time.Duration(t.EstimateFactor * float64(estimate))
}

// DefaultTimeouts are the timeouts for real devices.
var DefaultTimeouts = Timeouts{
	Find:        10 * time.Second,
	EnterMode:   30 * time.Second,
	Buttons:     2 * time.Minute,
	Reenumerate: 60 * time.Second,
	Apply:       4 * time.Minute,
	Step:        5 * time.Minute,
	Settle:      10 * time.Second,
}

func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&t.Find, d.Find)
	set(&t.EnterMode, d.EnterMode)
	set(&t.Buttons, d.Buttons)
	set(&t.Reenumerate, d.Reenumerate)
	set(&t.Apply, d.Apply)
	set(&t.Step, d.Step)
	set(&t.Settle, d.Settle)
	if t.EstimateFactor == 0 {
		t.EstimateFactor = 2
	}
	return t
}
