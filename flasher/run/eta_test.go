package run

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/particle-flasher/particle-flasher/flasher/plan"
)

// TestTimeLeftNeverAboveThePlanWhenFaster: a run going faster than its plan is never told
// more time left than the plan's estimate of what is left; one going slower is told more,
// and both tend to what the measured rate projects as the run goes on.
func TestTimeLeftNeverAboveThePlanWhenFaster(t *testing.T) {
	total := 18500 * time.Millisecond
	for _, pace := range []float64{0.05, 0.12, 0.5, 1, 2, 4} { // time spent per planned time
		for tf := 0.0; tf <= 1.0001; tf += 0.05 {
			spent := time.Duration(pace * tf * float64(total))
			left := timeLeft(total, tf, spent)
			planned := time.Duration((1 - tf) * float64(total))
			msg := fmt.Sprintf("pace %.2f at %.0f%%: %s left, plan says %s", pace, 100*tf, left, planned)
			if pace <= 1 {
				assert.LessOrEqual(t, left, planned+time.Millisecond, msg)
			} else {
				assert.GreaterOrEqual(t, left, planned-time.Millisecond, msg)
			}
			if tf >= 0.5 {
				truth := time.Duration(pace * (1 - tf) * float64(total))
				// Past half, the figure is nearer the truth than the plan is.
				assert.LessOrEqual(t, absDur(left-truth), absDur(planned-truth)+time.Millisecond, msg)
			}
		}
	}
	// The case from the field: 38 % of an 18.5 s plan reached after 0.85 s (the run ended
	// at 2.2 s). The old figure said "About 56 s left".
	left := timeLeft(total, 0.38, 850*time.Millisecond)
	assert.Less(t, left, 18500*time.Millisecond*62/100, "never above the plan's own estimate of what is left: %s", left)
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// TestBarAndStepCountAgree: with one long write among quick mode changes, the bar at the
// start of step i is at least (i-1)/(2N): "Step 5 of 6" never sits beside a bar at 12 %.
func TestBarAndStepCountAgree(t *testing.T) {
	steps := []plan.Step{
		{ID: "enter-dfu", Estimate: 300 * time.Millisecond},
		{ID: "bootloader", Estimate: 200 * time.Millisecond},
		{ID: "reset", Estimate: 400 * time.Millisecond},
		{ID: "enter-dfu-2", Estimate: 300 * time.Millisecond},
		{ID: "ncp", Estimate: 60 * time.Second},
		{ID: "reset-2", Estimate: 400 * time.Millisecond},
	}
	j := &job{plan: &plan.Plan{Steps: steps}}
	for _, s := range steps {
		j.total += s.Estimate
	}
	n := len(steps)
	prev := -1.0
	for i := range steps {
		j.idx = i
		f := j.fraction(0)
		assert.GreaterOrEqual(t, f, float64(i)/float64(2*n), "step %d of %d starts at %.0f%%", i+1, n, 100*f)
		assert.Greater(t, f, prev, "the bar goes forward")
		prev = f
		assert.InDelta(t, j.fraction(1), func() float64 { j.idx = i + 1; defer func() { j.idx = i }(); return j.fraction(0) }(), 1e-9)
	}
	j.idx = n - 1
	assert.InDelta(t, 1, j.fraction(1), 1e-9)
	// Time left is reckoned from the estimates, not the floored shares: at the NCP write's
	// start most of the plan's time is still ahead.
	j.idx = 4
	assert.Less(t, j.timeFraction(0), 0.05)
}
