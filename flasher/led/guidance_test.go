package led

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

func plat(t *testing.T, name string) *platform.Platform {
	t.Helper()
	p, ok := platform.ByName(name)
	require.True(t, ok, name)
	return p
}

func TestGoalStrings(t *testing.T) {
	seen := map[string]bool{}
	for _, g := range Goals() {
		s := g.String()
		assert.NotEqual(t, "unknown goal", s)
		assert.False(t, seen[s], s)
		seen[s] = true
		assert.False(t, g.Target().IsZero(), s)
	}
	assert.Equal(t, "unknown goal", Goal(0).String())
	assert.True(t, Goal(0).Target().IsZero())
}

func TestButtonsPhotonSaysSetup(t *testing.T) {
	p := plat(t, "photon")
	assert.Equal(t, "SETUP", ModeButton(p))
	for _, g := range Goals() {
		s := Buttons(p, g)
		assert.NotContains(t, s, "MODE", g.String())
		assert.Contains(t, s, "RESET", g.String())
		if g != GoalReset && g != GoalNormal {
			assert.Contains(t, s, "SETUP", g.String())
		}
	}
	dfu := Buttons(p, GoalDFU)
	assert.Contains(t, dfu, "Hold down SETUP, tap RESET")
	assert.Contains(t, dfu, "yellow")
}

func TestButtonsBoron(t *testing.T) {
	p := plat(t, "boron")
	assert.Equal(t, "MODE", ModeButton(p))
	dfu := Buttons(p, GoalDFU)
	assert.Contains(t, dfu, "MODE")
	assert.Contains(t, dfu, "RESET")
	assert.Contains(t, dfu, "magenta")
	assert.Contains(t, dfu, "yellow")
	assert.NotContains(t, dfu, "SETUP")
	assert.Contains(t, Buttons(p, GoalSafeMode), "magenta")
	assert.Contains(t, Buttons(p, GoalListening), "3 seconds")
	assert.Contains(t, Buttons(p, GoalListening), "dark blue")
	assert.Contains(t, Buttons(p, GoalReset), "Tap RESET")
	// the generic recipe for an unknown device is the same as the Boron's
	assert.Equal(t, dfu, Buttons(nil, GoalDFU))
}

func TestButtonsWithoutModeButton(t *testing.T) {
	for _, p := range platform.All() {
		if p.HasModeButton() {
			continue
		}
		for _, g := range Goals() {
			s := Buttons(p, g)
			low := strings.ToLower(s)
			assert.True(t, strings.Contains(low, "carrier") || strings.Contains(low, "by hand"),
				"%s %s: %s", p.Name, g, s)
			assert.Contains(t, s, "USB", "%s %s", p.Name, g)
			assert.Contains(t, s, "no MODE", "%s %s", p.Name, g)
		}
	}
	// modules: carrier-board signals, with the recipe for a carrier that has buttons
	for _, name := range []string{"p1", "bsom", "b5som", "msom", "esomx"} {
		s := Buttons(plat(t, name), GoalDFU)
		assert.Contains(t, s, "carrier board", name)
		assert.Contains(t, s, "hold down MODE, tap RESET", name)
		assert.Contains(t, s, "Particle Flasher can switch it to DFU mode for you", name)
		assert.NotContains(t, s, "`", "no command line in words for people")
	}
	// P1 is Gen2: old Device OS needs the 14400-baud trick
	assert.Contains(t, Buttons(plat(t, "p1"), GoalDFU), "14400")
	tr := Buttons(plat(t, "tracker"), GoalDFU)
	assert.Contains(t, tr, "Tracker One")
	assert.Contains(t, tr, "cannot be put into DFU mode by hand")
	assert.Contains(t, Buttons(plat(t, "tracker"), GoalListening), "Particle Flasher can switch it to listening mode for you")
}

func TestExpectDFU(t *testing.T) {
	for _, p := range append(platform.All(), nil) {
		g := Expect(p, GoalDFU)
		assert.Equal(t, DFU, g.Expect)
		assert.Equal(t, "blinking yellow", g.Expect.String())
		assert.Contains(t, g.Text, "blink yellow")
		cyan, ok := g.RemedyFor(Connected)
		require.True(t, ok)
		assert.Equal(t, Connected, cyan.Seen)
		assert.Contains(t, cyan.Do, Buttons(p, GoalDFU))
		mag, ok := g.RemedyFor(Updating)
		require.True(t, ok)
		assert.Equal(t, Updating, mag.Seen)
		if p == nil || p.HasModeButton() {
			assert.Contains(t, mag.Do, "Keep holding "+ModeButton(p))
		}
		assert.Contains(t, mag.Do, "yellow")
		off, ok := g.RemedyFor(Off)
		require.True(t, ok)
		assert.Contains(t, off.Do, "cable")
		assert.Contains(t, off.Do, "SWD/JTAG")
		safe, ok := g.RemedyFor(SafeMode)
		require.True(t, ok)
		assert.Contains(t, safe.Do, "safe mode")
		restore, ok := g.RemedyFor(FactoryRestoreFor(p))
		require.True(t, ok)
		assert.Contains(t, restore.Do, "too long")
		_, ok = g.RemedyFor(DFU)
		assert.False(t, ok, "nothing to do when it blinks yellow")
		other, ok := g.RemedyFor(State{ColorOrange, PatternBreathing})
		require.True(t, ok)
		assert.True(t, other.Seen.IsZero())
	}
	b := Expect(plat(t, "boron"), GoalDFU)
	assert.Equal(t, "Your Boron should now blink yellow.", b.Text)
	ph := Expect(plat(t, "photon"), GoalDFU)
	mag, _ := ph.RemedyFor(Updating)
	assert.Contains(t, mag.Do, "Keep holding SETUP")
	off, _ := ph.RemedyFor(Off)
	assert.Contains(t, off.Do, "D7")
	g2, ok := ph.RemedyFor(FactoryRestoreGen2)
	require.True(t, ok)
	assert.Equal(t, FactoryRestoreGen2, g2.Seen)
}

func TestExpectEveryGoal(t *testing.T) {
	for _, p := range append(platform.All(), nil) {
		for _, goal := range Goals() {
			g := Expect(p, goal)
			name := goal.String()
			assert.Equal(t, goal.Target(), g.Expect, name)
			assert.True(t, strings.HasPrefix(g.Text, "Your "), g.Text)
			assert.True(t, strings.HasSuffix(g.Text, "."), g.Text)
			require.NotEmpty(t, g.IfNot, name)
			assert.True(t, g.IfNot[len(g.IfNot)-1].Seen.IsZero(), "%s ends with a catch-all", name)
			seen := map[State]bool{}
			for _, r := range g.IfNot {
				assert.NotEmpty(t, r.Do, name)
				assert.False(t, r.Seen.Is(g.Expect) && !r.Seen.IsZero(), "%s: remedy for the expected state", name)
				assert.False(t, seen[r.Seen], "%s: two remedies for %v", name, r.Seen)
				seen[r.Seen] = true
				if p != nil && p.Name == "photon" {
					assert.NotContains(t, r.Do, "MODE", "%s %v", name, r.Seen)
				}
			}
			_, ok := g.RemedyFor(Off)
			assert.True(t, ok, name)
			_, ok = g.RemedyFor(Panic)
			assert.True(t, ok, name)
		}
	}
	sm := Expect(plat(t, "argon"), GoalSafeMode)
	r, _ := sm.RemedyFor(DFU)
	assert.Contains(t, r.Do, "too long")
	r, _ = sm.RemedyFor(Updating)
	assert.Equal(t, "Release MODE now.", r.Do)
	ls := Expect(plat(t, "argon"), GoalListening)
	r, _ = ls.RemedyFor(Connected)
	assert.Contains(t, r.Do, "3 seconds")
	n := Expect(plat(t, "boron"), GoalNormal)
	r, _ = n.RemedyFor(DFU)
	assert.Contains(t, r.Do, "tap RESET")
	r, _ = n.RemedyFor(SafeMode)
	assert.Contains(t, r.Do, "missing or too old")
	bs := Expect(plat(t, "bsom"), GoalNormal)
	r, _ = bs.RemedyFor(DFU)
	assert.Contains(t, r.Do, "Particle Flasher can restart it for you")
	assert.Empty(t, Expect(nil, Goal(0)).IfNot)
}

func TestTimeline(t *testing.T) {
	for _, goal := range Goals() {
		steps := Timeline(goal)
		require.NotEmpty(t, steps, goal.String())
		assert.Equal(t, time.Duration(0), steps[0].At)
		for i, s := range steps {
			assert.NotEmpty(t, s.Say, goal.String())
			assert.False(t, s.LED.IsZero(), goal.String())
			if i > 0 {
				assert.Greater(t, s.At, steps[i-1].At, goal.String())
			}
			for _, h := range s.Hold {
				assert.Contains(t, []string{ButtonMode, ButtonReset}, h)
			}
		}
		last := steps[len(steps)-1]
		assert.Equal(t, goal.Target(), last.LED, goal.String())
		assert.Empty(t, last.Hold, "%s ends with nothing held", goal)
		assert.Equal(t, last.At, Duration(steps))
	}
	dfu := Timeline(GoalDFU)
	// MODE held through magenta until yellow: released only once the LED is yellow
	var sawMagenta bool
	for i, s := range dfu {
		if s.LED == Updating {
			sawMagenta = true
			assert.Contains(t, s.Hold, ButtonMode)
		}
		if i > 0 && len(s.Hold) == 0 && len(dfu[i-1].Hold) > 0 {
			assert.Equal(t, DFU, dfu[i-1].LED, "release at yellow")
		}
	}
	assert.True(t, sawMagenta)
	// magenta 1 s after RESET is released, yellow 3 s after (reference §7 timings)
	var release, magenta, yellow time.Duration
	for i, s := range dfu {
		if i > 0 && contains(dfu[i-1].Hold, ButtonReset) && !contains(s.Hold, ButtonReset) {
			release = s.At
		}
		if s.LED == Updating && magenta == 0 {
			magenta = s.At
		}
		if s.LED == DFU && yellow == 0 {
			yellow = s.At
		}
	}
	assert.Equal(t, time.Second, magenta-release)
	assert.Equal(t, 3*time.Second, yellow-release)
	// safe mode: released while magenta
	for i, s := range Timeline(GoalSafeMode) {
		if i > 0 && len(s.Hold) == 0 && len(Timeline(GoalSafeMode)[i-1].Hold) > 0 {
			assert.Equal(t, Updating, Timeline(GoalSafeMode)[i-1].LED)
		}
	}
	assert.Nil(t, Timeline(Goal(0)))

	assert.Equal(t, dfu[0], StepAt(dfu, -time.Second))
	assert.Equal(t, DFU, StepAt(dfu, time.Hour).LED)
	assert.Equal(t, Updating, StepAt(dfu, 3500*time.Millisecond).LED)
	assert.Equal(t, Step{}, StepAt(nil, 0))
}

func TestTimelineFor(t *testing.T) {
	ph := TimelineFor(plat(t, "photon"), GoalDFU)
	require.NotEmpty(t, ph)
	var setup bool
	for _, s := range ph {
		assert.NotContains(t, s.Hold, ButtonMode)
		assert.NotContains(t, s.Say, "MODE")
		setup = setup || contains(s.Hold, "SETUP")
	}
	assert.True(t, setup)
	// the generic timeline is untouched
	assert.Contains(t, Timeline(GoalDFU)[1].Hold, ButtonMode)
	assert.Equal(t, Timeline(GoalDFU), TimelineFor(plat(t, "boron"), GoalDFU))
	assert.Equal(t, Timeline(GoalDFU), TimelineFor(nil, GoalDFU))
	assert.Nil(t, TimelineFor(plat(t, "bsom"), GoalDFU))
	assert.Nil(t, TimelineFor(plat(t, "tracker"), GoalListening))
	assert.Equal(t, Timeline(GoalNormal), TimelineFor(plat(t, "tracker"), GoalNormal), "no buttons needed")
}

func contains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}
