package run_test

import (
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	cache "github.com/particle-flasher/particle-flasher/firmware-cache"
	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	synth "github.com/particle-flasher/particle-flasher/flasher/sim/releases"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// The release matrix: for every platform of the embedded catalog and every (from, to) pair
// of its releases (modules built from Particle's published header dumps), with and without
// the `from` release's application, starting in normal and in DFU mode, a run on the
// virtual device is either refused before anything is written, with a reason in words, or
// ends exactly in the state its plan predicted. The virtual device keeps its own boot
// rules (flasher/sim), so agreement is a check and not the engine agreeing with itself.

// matrixCase is one run of the matrix.
type matrixCase struct {
	platform string
	from, to *cache.Release
	app, dfu bool
}

func (c matrixCase) String() string {
	v := "normal"
	if c.dfu {
		v = "dfu"
	}
	if c.app {
		v += "+app"
	}
	return fmt.Sprintf("%s %s -> %s [%s]", c.platform, c.from.Version, c.to.Version, v)
}

// matrixOutcome is how a case ended.
type matrixOutcome int

const (
	outRefused        matrixOutcome = iota // refused before any write, with a reason
	outPredicted                           // ran and ended in exactly the predicted state
	outOtherwise                           // ended somewhere the plan did not predict
	outUnacceptedSafe                      // started, then ended in safe mode nobody accepted
)

// matrixReleases lists, per platform, the releases the catalog can build (a header dump
// exists), sorted by version.
func matrixReleases(t testing.TB) map[string][]*cache.Release {
	cat, err := cache.Embedded()
	require.NoError(t, err)
	out := map[string][]*cache.Release{}
	for _, name := range cat.Platforms() {
		for _, r := range cat.Releases(name) {
			if synth.Buildable(r) {
				out[name] = append(out[name], r)
			}
		}
		sort.Slice(out[name], func(i, j int) bool { return out[name][i].Version < out[name][j].Version })
	}
	return out
}

// matrixCases is every (from, to) pair once, the four start variants rotated over the
// pairs; with sample > 0, a fixed sample of that many, every platform in it.
func matrixCases(t testing.TB, sample int) []matrixCase {
	rels := matrixReleases(t)
	var plats []string
	for p := range rels {
		plats = append(plats, p)
	}
	sort.Strings(plats)
	var all []matrixCase
	byPlat := map[string][]matrixCase{}
	for _, p := range plats {
		k := 0
		for _, from := range rels[p] {
			for _, to := range rels[p] {
				c := matrixCase{platform: p, from: from, to: to, app: k%2 == 0, dfu: k/2%2 == 1}
				all = append(all, c)
				byPlat[p] = append(byPlat[p], c)
				k++
			}
		}
	}
	if sample <= 0 || sample >= len(all) {
		return all
	}
	// Every platform gets its share (at least 12 cases), the rest in proportion to its
	// pairs; the same cases every run (a fixed seed), all four variants among them.
	rng := rand.New(rand.NewPCG(13, 13))
	var out []matrixCase
	for _, p := range plats {
		cs := byPlat[p]
		n := max(12, sample*len(cs)/len(all))
		n = min(n, len(cs))
		for i, j := range rng.Perm(len(cs))[:n] {
			c := cs[j]
			c.app, c.dfu = i%2 == 0, i/2%2 == 1
			out = append(out, c)
		}
	}
	return out
}

// flashDigest is a checksum of everything the device's DFU alt settings expose: whether
// anything was written.
func flashDigest(d *sim.Device) uint32 {
	h := crc32.NewIEEE()
	for _, a := range d.Platform().Alts {
		r := d.Memory(a.Alt)
		if r == nil {
			continue
		}
		for _, s := range r.Layout().Segments {
			_, _ = h.Write(r.Snapshot(s.Start, s.Size()))
		}
	}
	return h.Sum32()
}

// runMatrixCase runs one case and says how it ended (and, when not as it should, why).
func runMatrixCase(t testing.TB, c matrixCase, n int) (out matrixOutcome, detail string) {
	defer func() {
		if r := recover(); r != nil {
			out, detail = outOtherwise, fmt.Sprint(r)
		}
	}()
	ct := &caseT{TB: t}
	defer ct.finish()
	from, err := synth.Build(c.from)
	require.NoError(ct, err)
	to, err := synth.Build(c.to)
	require.NoError(ct, err)
	mode := sim.ModeNormal
	if c.dfu {
		mode = sim.ModeDFU
	}
	d, err := sim.New(sim.Options{Platform: plat(ct, c.platform), Modules: from.Bytes(c.app), Mode: mode, DeviceID: fmt.Sprintf("e00fa7a1%016x", n)})
	require.NoError(ct, err)
	defer d.Close()
	_, err = d.WaitReady(testCtx(ct, 5*time.Second))
	require.NoError(ct, err)
	before := flashDigest(d)

	tgt := plan.Target{Name: c.to.Version, Modules: to.Modules()}
	if to.App != nil {
		tgt.ReplacementApp = to.App.Module
	}
	rec := &recorder{}
	r := newRunner(ct, demo.New(true, d), rec, run.Options{})
	pr, err := r.Prepare(testCtx(ct, time.Minute), d.ID(), tgt)
	if err != nil {
		if flashDigest(d) != before {
			return outOtherwise, "refused, but the flash changed: " + err.Error()
		}
		if !strings.Contains(err.Error(), " ") {
			return outOtherwise, "refused without a reason in words: " + err.Error()
		}
		return outRefused, err.Error()
	}
	res, err := r.Execute(testCtx(ct, 2*time.Minute), pr)
	st := d.Status()
	predicted := pr.Plan.End
	if res != nil && res.Plan != nil {
		predicted = res.Plan.End // a run that re-planned on the way: its last prediction
	}
	if err != nil {
		if st.Mode == sim.ModeSafe && predicted.Mode != state.ModeSafe {
			return outUnacceptedSafe, fmt.Sprintf("%v (device: %s, %s)", err, st.Mode, st.Reason)
		}
		return outOtherwise, fmt.Sprintf("%v (device: %s, %s; events %s)", err, st.Mode, st.Reason, rec.names())
	}
	if got := simMode(st.Mode); got != predicted.Mode && !(predicted.Mode == state.ModeNormal && got == state.ModeListening) {
		if st.Mode == sim.ModeSafe {
			return outUnacceptedSafe, fmt.Sprintf("predicted %s, the device is in safe mode: %s", predicted, st.Reason)
		}
		return outOtherwise, fmt.Sprintf("predicted %s, the device is in %s: %s", predicted, st.Mode, st.Reason)
	}
	have := map[[2]int]sim.Module{}
	for _, m := range d.Modules() {
		if m.Present && m.Store == "main" {
			have[[2]int{int(m.Function), int(m.Index)}] = m
		}
	}
	final := res.Plan
	for _, e := range final.Expected() {
		m, ok := have[[2]int{int(e.Function), int(e.Index)}]
		switch {
		case !ok:
			return outOtherwise, fmt.Sprintf("predicted %s, the device lists none", e.Label())
		case m.Version != e.Version:
			return outOtherwise, fmt.Sprintf("predicted %s, the device has version %d", e.Label(), m.Version)
		}
	}
	return outPredicted, ""
}

func simMode(m sim.Mode) state.Mode {
	switch m {
	case sim.ModeNormal:
		return state.ModeNormal
	case sim.ModeSafe:
		return state.ModeSafe
	case sim.ModeListening:
		return state.ModeListening
	case sim.ModeDFU:
		return state.ModeDFU
	}
	return state.ModeUnknown
}

// TestReleaseMatrix is acceptance 1 of "one model of the device": a fixed sample of at
// least 500 cases in `go test`, every (from, to) pair with PFLASH_SOAK=1 (make soak). The
// counts are printed per platform; no case may end anywhere its plan did not predict.
func TestReleaseMatrix(t *testing.T) {
	sample := 520
	if soak() {
		sample = 0
	}
	cases := matrixCases(t, sample)
	type counts struct{ cases, refused, predicted, otherwise, unaccepted int }
	by := map[string]*counts{}
	var mu sync.Mutex
	var bad []string
	refusals := map[string]int{}
	work := make(chan int, len(cases))
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c := cases[i]
				out, detail := runMatrixCase(t, c, i)
				mu.Lock()
				ct := by[c.platform]
				if ct == nil {
					ct = &counts{}
					by[c.platform] = ct
				}
				ct.cases++
				switch out {
				case outRefused:
					ct.refused++
					refusals[refusalKind(detail)]++
				case outPredicted:
					ct.predicted++
				case outOtherwise:
					ct.otherwise++
					bad = append(bad, fmt.Sprintf("%s: %s", c, detail))
				case outUnacceptedSafe:
					ct.unaccepted++
					bad = append(bad, fmt.Sprintf("%s: ended in safe mode, not predicted: %s", c, detail))
				}
				mu.Unlock()
			}
		}()
	}
	for i := range cases {
		work <- i
	}
	close(work)
	wg.Wait()

	var plats []string
	for p := range by {
		plats = append(plats, p)
	}
	sort.Strings(plats)
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s %6s %8s %10s %10s %12s\n", "platform", "cases", "refused", "predicted", "otherwise", "unacc. safe")
	var tot counts
	for _, p := range plats {
		c := by[p]
		fmt.Fprintf(&b, "%-10s %6d %8d %10d %10d %12d\n", p, c.cases, c.refused, c.predicted, c.otherwise, c.unaccepted)
		tot.cases += c.cases
		tot.refused += c.refused
		tot.predicted += c.predicted
		tot.otherwise += c.otherwise
		tot.unaccepted += c.unaccepted
	}
	fmt.Fprintf(&b, "%-10s %6d %8d %10d %10d %12d\n", "all", tot.cases, tot.refused, tot.predicted, tot.otherwise, tot.unaccepted)
	var kinds []string
	for k, n := range refusals {
		kinds = append(kinds, fmt.Sprintf("  %4d  %s", n, k))
	}
	sort.Strings(kinds)
	t.Logf("release matrix (%d cases):\n%s refusals by reason:\n%s", len(cases), b.String(), strings.Join(kinds, "\n"))
	sort.Strings(bad)
	if len(bad) > 20 {
		bad = append(bad[:20], fmt.Sprintf("... and %d more", len(bad)-20))
	}
	require.Empty(t, bad, "cases that ended where their plan did not say")
	require.GreaterOrEqual(t, tot.cases, min(500, len(cases)))
}

// refusalKind groups refusals by the start of their reason, for the printed summary.
func refusalKind(msg string) string {
	msg = strings.TrimPrefix(msg, "plan: ")
	for _, sep := range []string{":", ";", ","} {
		if i := strings.Index(msg, sep); i > 0 && i < 70 {
			msg = msg[:i]
		}
	}
	fields := strings.Fields(msg)
	for i, f := range fields {
		if strings.ContainsAny(f, "0123456789") {
			fields[i] = "#"
		}
	}
	if len(fields) > 9 {
		fields = fields[:9]
	}
	return strings.Join(fields, " ")
}
