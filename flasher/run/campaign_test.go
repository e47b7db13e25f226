package run_test

import (
	"errors"
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
	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
)

// Faults of the campaign.
var faultKinds = []string{"unplug", "stall", "dfu-error", "power-loss", "slow-reenumeration"}

// outcome of one campaign case.
type outcome struct {
	kind     string
	fired    bool // the fault happened
	failed   bool // the run failed (with a cause and a remedy)
	resumed  bool // a second run reached the target
	reached  bool // the device ended at the target (first or second run)
	unreach  bool // the device could be reached neither in normal nor in DFU mode
	problem  string
	scenario string
	took     time.Duration
}

// TestFaultCampaign is acceptance 4: a random fault (unplug, STALL, dfuERROR, power loss in
// the middle of a write, re-enumeration slower than the runner waits) at a random point of
// a random upgrade or downgrade. A run either rides it out (retries) or fails with a cause
// and a remedy; after the person does what a person would (plug the cable back in), a
// second run reaches the target. No case may end with a device that neither normal nor
// DFU mode can reach. 100 cases in `go test`, 2000 with PFLASH_SOAK=1; the counts are
// printed.
func TestFaultCampaign(t *testing.T) {
	n := cases(100, 2000)
	seed := campaignSeed()
	if s := os.Getenv("PFLASH_SEED"); s != "" {
		_, _ = fmt.Sscan(s, &seed)
	}
	t.Logf("seed %d (PFLASH_SEED=%d repeats it), %d cases", seed, seed, n)
	results := make([]outcome, n)
	work := make(chan int, n) // buffered: a worker stopped by a failed assertion must not block the dispatch
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				rng := rand.New(rand.NewPCG(seed, uint64(i)))
				t0 := time.Now()
				results[i] = faultCase(t, rng)
				results[i].took = time.Since(t0)
			}
		}()
	}
	only := -1
	if s := os.Getenv("PFLASH_CASE"); s != "" {
		_, _ = fmt.Sscan(s, &only)
	}
	start := time.Now()
	for i := range n {
		if only < 0 || i == only {
			work <- i
		}
	}
	close(work)
	wg.Wait()
	if only >= 0 {
		results = results[only : only+1]
		n = 1
	}

	type counts struct{ cases, fired, failed, rode, resumed, unreachable int }
	by := map[string]*counts{}
	var total counts
	var problems []string
	for i, o := range results {
		c := by[o.kind]
		if c == nil {
			c = &counts{}
			by[o.kind] = c
		}
		for _, x := range []*counts{c, &total} {
			x.cases++
			if o.fired {
				x.fired++
			}
			if o.failed {
				x.failed++
			} else {
				x.rode++
			}
			if o.resumed {
				x.resumed++
			}
			if o.unreach {
				x.unreachable++
			}
		}
		if o.problem != "" {
			problems = append(problems, fmt.Sprintf("case %d (%s): %s", i, o.scenario, o.problem))
		}
	}
	var kinds []string
	for k := range by {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	report := fmt.Sprintf("fault campaign, %d cases in %s:\n%-20s %6s %6s %6s %9s %8s %12s\n", n, time.Since(start).Round(time.Millisecond), "fault", "cases", "fired", "failed", "rode out", "resumed", "unreachable")
	for _, k := range append(kinds, "total") {
		c := &total
		if k != "total" {
			c = by[k]
		}
		report += fmt.Sprintf("%-20s %6d %6d %6d %9d %8d %12d\n", k, c.cases, c.fired, c.failed, c.rode, c.resumed, c.unreachable)
	}
	slowest := append([]outcome(nil), results...)
	sort.Slice(slowest, func(i, j int) bool { return slowest[i].took > slowest[j].took })
	for _, o := range slowest[:min(3, len(slowest))] {
		t.Logf("slowest: %s in %s", o.scenario, o.took.Round(time.Millisecond))
	}
	t.Log(report)
	fmt.Print(report) // make test / make soak print the counts
	require.Zero(t, total.unreachable, "devices left unreachable")
	require.Empty(t, problems, "seed %d", seed)
}

// faultCase runs one case.
func faultCase(t *testing.T, rng *rand.Rand) (o outcome) {
	ct := &caseT{TB: t}
	defer ct.finish()
	defer func() {
		if r := recover(); r != nil {
			o.problem = fmt.Sprint(r)
		}
	}()
	byPlat := releaseKeys()
	plats := []string{"argon", "boron", "electron", "photon"}
	keys := byPlat[plats[rng.IntN(len(plats))]]
	from := keys[rng.IntN(len(keys))]
	to := keys[0]
	if to == from {
		to = keys[1]
	}
	o.kind = faultKinds[rng.IntN(len(faultKinds))]
	d := newSim(ct, from, sim.Options{})
	tgt := propertyTarget(ct, to)
	store := &run.Store{Dir: ct.TempDir()}
	rec := &recorder{}
	r := newRunner(ct, demo.New(true, d), rec, run.Options{Journal: store, Timeouts: shortTimeouts})
	ctx := testCtx(ct, time.Minute)
	pr, err := r.Prepare(ctx, d.ID(), tgt)
	if err != nil {
		o.problem = "prepare: " + err.Error()
		return o
	}
	steps := pr.Plan.Steps
	at := rng.IntN(len(steps))
	if o.kind == "power-loss" {
		// At the start of one of the runner's own DFU writes (a host can neither cause nor
		// prevent a power cut while the device copies a staged bootloader).
		var writes []int
		for i, s := range steps {
			if s.Method.UsesDFU() && (s.Kind == plan.KindWrite || s.Kind == plan.KindInvalidate) && len(s.Data) > 0 {
				writes = append(writes, i)
			}
		}
		if len(writes) > 0 {
			at = writes[rng.IntN(len(writes))]
		}
	}
	o.scenario = fmt.Sprintf("%s -> %s, %s at step %d/%d %s", from, to, o.kind, at+1, len(steps), steps[at].ID)

	// Arm the fault when the chosen step starts.
	var mu sync.Mutex
	dfuErrors := 0
	disarm := func() {}
	rec.log = func(e run.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case e.Event == run.EvStep && e.StepIndex == at+1 && e.StepID == steps[at].ID:
			s := steps[at]
			switch o.kind {
			case "unplug":
				d.UnplugAtTransfer(1 + rng.IntN(200))
			case "stall":
				d.StallNext(1 + rng.IntN(12))
			case "dfu-error":
				dfuErrors = 1 + rng.IntN(3)
				d.InjectDFUStatus([]byte{dfu.StatusErrWrite, dfu.StatusErrErase, dfu.StatusErrTarget, dfu.StatusErrVerify}[rng.IntN(4)])
				dfuErrors--
			case "power-loss":
				if s.Method.UsesDFU() && len(s.Data) > 0 {
					alt := s.Alt
					require.NoError(ct, d.PowerLossAfter(alt, rng.IntN(len(s.Data))))
					disarm = func() { _ = d.PowerLossAfter(alt, -1) }
				}
			case "slow-reenumeration":
				d.FailReenumeration(true)
			}
		case e.Event == run.EvRetry && o.kind == "dfu-error" && dfuErrors > 0:
			dfuErrors--
			d.InjectDFUStatus(dfu.StatusErrWrite)
		case e.Event == run.EvStepDone && o.kind == "power-loss" && e.Kind != plan.KindEnterMode.String():
			disarm()
			disarm = func() {}
		}
	}
	_, err = r.Execute(ctx, pr)
	mu.Lock()
	disarm()
	mu.Unlock()
	d.UnplugAtTransfer(0)
	st := d.Status()
	o.fired = faultFired(o.kind, st, rec, err)
	if err == nil && st.Mode == sim.ModeOff {
		// Unplugged after the verification passed (its last transfer, the version query,
		// is not needed for it): plugged back in, it must start at the target.
		o.fired = true
		d.PowerOn()
		st, _ = d.WaitReady(testCtx(ct, 5*time.Second))
	}
	if err == nil {
		if msg := atTargetMsg(d, tgt); msg != "" || st.Mode != sim.ModeNormal {
			o.problem = fmt.Sprintf("the run said ok but the device is in %s: %s", st.Mode, msg)
		}
		o.reached = true
		d.FailReenumeration(false)
		return o
	}
	o.failed = true
	done := lastEvent(rec)
	if done.Event != run.EvDone || done.Result != run.ResultFailed || done.Error == "" || done.Remedy == "" || remedy.Of(err) == "" {
		o.problem = fmt.Sprintf("a failure without cause or remedy: %v / done %+v", err, done)
		return o
	}

	// What a person does: plug the cable back in / power the board again.
	d.UnplugAtTransfer(0)
	d.StallNext(0)
	if o.kind == "slow-reenumeration" || st.Mode == sim.ModeOff || !st.OnBus {
		d.FailReenumeration(false)
		if !st.OnBus && st.Mode != sim.ModeOff {
			d.PowerOff()
		}
		d.PowerOn()
	}
	st, _ = d.WaitReady(testCtx(ct, 5*time.Second))
	if st.Mode == sim.ModeOff {
		o.unreach = true
		o.problem = "unreachable after the fault: " + st.Reason
		return o
	}
	r2 := newRunner(ct, demo.New(true, d), &recorder{}, run.Options{Journal: store})
	res, err := r2.Flash(testCtx(ct, time.Minute), d.ID(), tgt)
	if err != nil {
		o.problem = fmt.Sprintf("resume failed after %v: %v", errFirst(rec), err)
		return o
	}
	if !res.Resumed {
		o.problem = "the second run did not see the journal"
	}
	if os.Getenv("PFLASH_CASE") != "" {
		for _, e := range rec.all() {
			t.Logf("%s %s %s %s %s", e.Time.Format("05.000"), e.Event, e.StepID, e.Waiting, e.Error)
		}
	}
	if msg := atTargetMsg(d, tgt); msg != "" || d.Mode() != sim.ModeNormal {
		o.problem = fmt.Sprintf("resume ends in %s: %s", d.Mode(), msg)
		return o
	}
	o.resumed, o.reached = true, true
	return o
}

func errFirst(rec *recorder) string {
	for _, e := range rec.all() {
		if e.Event == run.EvFailed {
			return e.Error
		}
	}
	return ""
}

// faultFired tells, as far as can be seen from outside, whether the fault happened.
func faultFired(kind string, st sim.Status, rec *recorder, err error) bool {
	if err != nil {
		return true
	}
	for _, e := range rec.all() {
		if e.Event == run.EvRetry {
			return true
		}
	}
	switch kind {
	case "stall":
		return strings.Contains(fmt.Sprint(err), "stall")
	}
	return errors.Is(err, run.ErrGone)
}
