package run_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
)

// campaignSeed is fixed for `go test`, so CI is repeatable, and fresh for every soak run,
// so the long campaigns keep exploring; PFLASH_SEED overrides both.
func campaignSeed() uint64 {
	if soak() {
		return uint64(time.Now().UnixNano())
	}
	return 1
}

// soak reports whether the long campaigns were asked for (make soak).
func soak() bool { return os.Getenv("PFLASH_SOAK") != "" }

func cases(normal, long int) int {
	if soak() {
		return long
	}
	return normal
}

// startState is a random device to begin from: a release set, maybe damaged, in a mode.
type startState struct {
	from, to string
	damage   string // "", "corrupt:<slot>", "missing:<slot>"
	mode     string // "normal", "dfu", "safe", "listening"
}

func (s startState) String() string {
	d := s.damage
	if d == "" {
		d = "intact"
	}
	return fmt.Sprintf("%s (%s, %s) -> %s", s.from, d, s.mode, s.to)
}

// releaseKeys lists the release sets per platform.
func releaseKeys() map[string][]string {
	out := map[string][]string{}
	for k, r := range releases {
		out[r.platform] = append(out[r.platform], k)
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

// allReleaseKeys lists the real and synthetic release sets per platform: those a device
// may start from, and those it may go to.
func allReleaseKeys() (from, to map[string][]string) {
	from, to = releaseKeys(), releaseKeys()
	for k, r := range syntheticReleases {
		to[r.platform] = append(to[r.platform], k)
		if !r.targetOnly {
			from[r.platform] = append(from[r.platform], k)
		}
	}
	for _, m := range []map[string][]string{from, to} {
		for _, v := range m {
			sort.Strings(v)
		}
	}
	return from, to
}

// randomStart draws a start state and a target on the same platform.
func randomStart(rng *rand.Rand) startState {
	fromKeys, toKeys := allReleaseKeys()
	plats := []string{"argon", "boron", "electron", "photon"}
	p := plats[rng.IntN(len(plats))]
	s := startState{from: fromKeys[p][rng.IntN(len(fromKeys[p]))], to: toKeys[p][rng.IntN(len(toKeys[p]))]}
	slots := []string{"system-part1", "user-part"}
	switch p {
	case "photon":
		slots = append(slots, "system-part2")
	case "electron":
		slots = append(slots, "system-part2", "system-part3")
	default:
		slots = append(slots, "softdevice")
	}
	switch rng.IntN(4) {
	case 0:
		s.damage = "corrupt:" + slots[rng.IntN(len(slots))]
	case 1:
		s.damage = "missing:" + slots[rng.IntN(len(slots))]
	}
	s.mode = []string{"normal", "dfu", "safe", "listening"}[rng.IntN(4)]
	return s
}

// build makes the device: the release set and app installed, the damage done behind the
// device's back, then powered on and put in the mode as a person would (buttons).
func (s startState) build(t testing.TB) *sim.Device {
	d := newSim(t, s.from, sim.Options{Mode: sim.ModeOff, NoSerial: false})
	if s.damage != "" {
		kind, slot, _ := strings.Cut(s.damage, ":")
		var found bool
		for _, m := range d.Modules() {
			if m.Name != slot || !m.Present || m.Store != "main" {
				continue
			}
			found = true
			mem := d.Memory(0)
			switch kind {
			case "corrupt":
				// Flip bytes in the middle, where only the CRC notices.
				at := m.Start + m.Size/2
				buf := mem.Snapshot(at, 16)
				for i := range buf {
					buf[i] ^= 0x5A
				}
				require.NoError(t, mem.Load(at, buf))
			case "missing":
				blank := make([]byte, m.Size)
				for i := range blank {
					blank[i] = 0xFF
				}
				require.NoError(t, mem.Load(m.Start, blank))
			}
		}
		require.True(t, found, "no %s on %s", slot, s.from)
	}
	d.PowerOn()
	switch s.mode {
	case "dfu":
		require.NoError(t, d.ButtonReset(3500*time.Millisecond))
	case "safe":
		require.NoError(t, d.ButtonReset(1500*time.Millisecond))
	case "listening":
		if d.Mode() != sim.ModeDFU {
			require.NoError(t, d.HoldMode(3500*time.Millisecond))
		}
	}
	_, err := d.WaitReady(testCtx(t, 5*time.Second))
	require.NoError(t, err)
	return d
}

// propertyTarget is the target release with the platform's app as the replacement for an
// application that is missing, corrupt or cannot run.
func propertyTarget(t testing.TB, key string) plan.Target {
	r := lookupRelease(key)
	tgt := r.target(t)
	app, err := module.Parse(readShared(t, "apps", apps[r.platform]))
	require.NoError(t, err)
	tgt.ReplacementApp = app
	return tgt
}

// TestPropertyAnyStartReachesTarget is acceptance 3: from a random start (any release set,
// real or built with the release's module versions, possibly a corrupt or missing slot,
// in any mode) to a random target, a run on the sim
// always ends with the device booted normal at exactly the target versions. 100 cases in
// `go test`, 2000 with PFLASH_SOAK=1 (make soak).
func TestPropertyAnyStartReachesTarget(t *testing.T) {
	n := cases(100, 2000)
	seed := campaignSeed()
	if s := os.Getenv("PFLASH_SEED"); s != "" {
		_, _ = fmt.Sscan(s, &seed)
	}
	t.Logf("seed %d (PFLASH_SEED=%d repeats it), %d cases", seed, seed, n)
	var mu sync.Mutex
	stats := map[string]int{}
	work := make(chan int, n) // buffered: a worker stopped by a failed assertion must not block the dispatch
	var wg sync.WaitGroup
	failed := make(chan string, n)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				rng := rand.New(rand.NewPCG(seed, uint64(i)))
				s := randomStart(rng)
				if msg := propertyCase(t, s); msg != "" {
					failed <- fmt.Sprintf("case %d %s: %s", i, s, msg)
					continue
				}
				mu.Lock()
				stats[s.mode]++
				if s.damage != "" {
					stats[strings.SplitN(s.damage, ":", 2)[0]]++
				}
				if s.from == s.to {
					stats["same"]++
				}
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(failed)
	var fails []string
	for f := range failed {
		fails = append(fails, f)
	}
	t.Logf("%d cases, %d reached the target; starts: %v", n, n-len(fails), stats)
	require.Empty(t, fails, "seed %d", seed)
}

// propertyCase runs one case and says what went wrong ("" when it reached the target).
func propertyCase(t *testing.T, s startState) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	ct := &caseT{TB: t}
	defer ct.finish()
	d := s.build(ct)
	defer d.Close()
	rec := &recorder{}
	r := newRunner(ct, demo.New(true, d), rec, run.Options{})
	tgt := propertyTarget(ct, s.to)
	res, err := r.Flash(testCtx(ct, time.Minute), d.ID(), tgt)
	if err != nil {
		return fmt.Sprintf("%v (events: %s)", err, rec.names())
	}
	st := d.Status()
	if st.Mode == sim.ModeSafe && s.mode == "safe" && len(res.Plan.Steps) == 0 {
		// Nothing to write (a SoftDevice corrupted past its info struct is invisible to
		// Device OS and DFU alike), and a safe mode asked for with the buttons looks like
		// normal mode over USB (Device OS reports "normal"): such a device is left alone.
		return atTargetMsg(d, tgt)
	}
	if st.Mode != sim.ModeNormal {
		return fmt.Sprintf("ends in %s: %s", st.Mode, st.Reason)
	}
	return atTargetMsg(d, tgt)
}

func atTargetMsg(d *sim.Device, tgt plan.Target) string {
	if err := atTarget(d, tgt); err != nil {
		return err.Error()
	}
	return ""
}

// atTarget checks the device holds exactly the target's versions, every module valid.
func atTarget(d *sim.Device, tgt plan.Target) error {
	have := map[[2]int]uint16{}
	for _, m := range d.Modules() {
		if m.Present && m.Store == "main" {
			if !m.Valid() {
				return fmt.Errorf("%s %d is not valid", m.Name, m.Version)
			}
			have[[2]int{int(m.Function), int(m.Index)}] = m.Version
		}
	}
	for _, m := range tgt.Modules {
		if v, ok := have[[2]int{int(m.Function), int(m.Index)}]; !ok || v != m.Version {
			return fmt.Errorf("%s is %d, want %d", m.SlotName(), v, m.Version)
		}
	}
	return nil
}

// caseT is a testing.TB for one case of a campaign run on several goroutines: a failed
// require panics out of the case instead of ending the whole test, and cleanups run when
// the case ends.
type caseT struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
}

func (c *caseT) Helper()                   {}
func (c *caseT) Errorf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
func (c *caseT) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
func (c *caseT) FailNow()                  { panic("failed") }
func (c *caseT) Fatal(a ...any)            { panic(fmt.Sprint(a...)) }
func (c *caseT) Error(a ...any)            { panic(fmt.Sprint(a...)) }
func (c *caseT) Logf(string, ...any)       {}
func (c *caseT) Log(...any)                {}
func (c *caseT) Cleanup(f func())          { c.mu.Lock(); c.cleanups = append(c.cleanups, f); c.mu.Unlock() }
func (c *caseT) TempDir() string           { return c.TB.TempDir() }

// finish runs the case's cleanups, last first.
func (c *caseT) finish() {
	c.mu.Lock()
	fs := c.cleanups
	c.cleanups = nil
	c.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
