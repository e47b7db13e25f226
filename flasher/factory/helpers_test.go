package factory_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/factory"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// The Boron release sets in shared/firmware/releases. A Boron on 1.5.2 keeps the 4.1.0
// SoftDevice (S140 7.0.1, which every Device OS since 1.4.0 requires), as field units do.
var (
	boron152 = []string{"boron-bootloader@1.5.2.bin", "boron-system-part1@1.5.2.bin", "boron-softdevice@4.1.0.bin"}
	boron410 = []string{"boron-bootloader@4.1.0.bin", "boron-softdevice@4.1.0.bin", "boron-system-part1@4.1.0.bin"}
	// boronApp runs on both releases.
	boronApp = "binaries_boron_blank.bin"
)

func readFiles(t testing.TB, dir string, names ...string) [][]byte {
	t.Helper()
	base := testshared.Dir(t, "firmware", dir)
	var out [][]byte
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(base, n))
		require.NoError(t, err)
		out = append(out, b)
	}
	return out
}

func boron(t testing.TB) *platform.Platform {
	p, ok := platform.ByName("boron")
	require.True(t, ok)
	return p
}

// target410 is Device OS 4.1.0 for the Boron, parsed from the release files.
func target410(t testing.TB) plan.Target {
	tgt := plan.Target{Name: "4.1.0"}
	for _, b := range readFiles(t, "releases", boron410...) {
		m, err := module.Parse(b)
		require.NoError(t, err)
		tgt.Modules = append(tgt.Modules, m)
	}
	return tgt
}

var idSeq struct {
	sync.Mutex
	n int
}

func newID() string {
	idSeq.Lock()
	defer idSeq.Unlock()
	idSeq.n++
	return fmt.Sprintf("e00fbe%010x%08x", time.Now().UnixNano()&0xffffffffff, idSeq.n)
}

// newBoron makes a virtual Boron holding a release set and the app.
func newBoron(t testing.TB, set []string, o sim.Options) *sim.Device {
	t.Helper()
	o.Platform = boron(t)
	o.Modules = append(readFiles(t, "releases", set...), readFiles(t, "apps", boronApp)...)
	if o.DeviceID == "" {
		o.DeviceID = newID()
	}
	d, err := sim.New(o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// fastTimeouts suit devices at time scale 0, which restart in milliseconds.
var fastTimeouts = demo.Timeouts

// events keeps a bench's events.
type events struct {
	mu  sync.Mutex
	all []factory.Event
	ch  chan factory.Event
}

func newEvents() *events { return &events{ch: make(chan factory.Event, 10000)} }

func (e *events) add(ev factory.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
	if ev.Kind != factory.EvRun {
		e.ch <- ev
	}
}

func (e *events) list() []factory.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]factory.Event(nil), e.all...)
}

func (e *events) kind(k string) []factory.Event {
	var out []factory.Event
	for _, ev := range e.list() {
		if ev.Kind == k {
			out = append(out, ev)
		}
	}
	return out
}

// waitFor waits for a non-run event matching pred.
func (e *events) waitFor(t *testing.T, d time.Duration, pred func(factory.Event) bool) factory.Event {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case ev := <-e.ch:
			if pred(ev) {
				return ev
			}
		case <-timer.C:
			t.Fatalf("no such event within %s", d)
			return factory.Event{}
		}
	}
}

// benchOptions are options for a bench of devices at scale 0 that stops after n units.
func benchOptions(t *testing.T, doors device.Bus, ev *events, n int) factory.Options {
	tgt := target410(t)
	var calls sync.Map
	return factory.Options{
		Bus: doors,
		Target: func(ctx context.Context, p *platform.Platform) (plan.Target, error) {
			if _, again := calls.LoadOrStore(p.Name, true); again {
				t.Errorf("Target called twice for %s", p.Name)
			}
			return tgt, nil
		},
		Jobs:     8,
		Timeouts: fastTimeouts,
		Journal:  &run.Store{Dir: t.TempDir()},
		Events:   ev.add,
		Poll:     5 * time.Millisecond,
		Grace:    300 * time.Millisecond,
		Until:    func(tt factory.Totals) bool { return n > 0 && tt.Finished() >= n },
	}
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// requireAt410 checks the device runs normally at Device OS 4.1.0 with every target
// module installed and valid.
func requireAt410(t *testing.T, d *sim.Device, tgt plan.Target) {
	t.Helper()
	st := d.Status()
	require.Equal(t, sim.ModeNormal, st.Mode, "%s: %+v", d.ID(), st)
	require.Equal(t, "4.1.0", d.SystemVersion(), d.ID())
	have := map[[2]int]uint16{}
	for _, m := range d.Modules() {
		if m.Present && m.Store == "main" {
			require.True(t, m.Valid(), "%s: %s %d invalid", d.ID(), m.Name, m.Version)
			have[[2]int{int(m.Function), int(m.Index)}] = m.Version
		}
	}
	for _, m := range tgt.Modules {
		v, ok := have[[2]int{int(m.Function), int(m.Index)}]
		require.True(t, ok, "%s: no %s", d.ID(), m.SlotName())
		require.Equal(t, m.Version, v, "%s: %s", d.ID(), m.SlotName())
	}
}
