package run_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// release is one platform's Device OS release: files in shared/firmware/releases, or
// (synthetic) modules built by sim.SyntheticSet with the release's module versions and
// dependencies, for the releases the shared files lack.
type release struct {
	platform, version string
	files             []string
	synthetic         bool
	// targetOnly: not a start state (see syntheticReleases).
	targetOnly bool
}

// releases are the real release sets the tests move devices between. The Electron's
// 1.5.2 bootloader is not among the shared files, so its 1.5.2 set is the system parts.
var releases = map[string]release{
	"photon/1.5.2":   {platform: "photon", version: "1.5.2", files: []string{"photon-bootloader@1.5.2+lto.bin", "photon-system-part1@1.5.2.bin", "photon-system-part2@1.5.2.bin"}},
	"photon/2.3.1":   {platform: "photon", version: "2.3.1", files: []string{"photon-bootloader@2.3.1+lto.bin", "photon-system-part1@2.3.1.bin", "photon-system-part2@2.3.1.bin"}},
	"electron/1.5.2": {platform: "electron", version: "1.5.2", files: []string{"electron-system-part1@1.5.2.bin", "electron-system-part2@1.5.2.bin", "electron-system-part3@1.5.2.bin"}},
	"electron/2.3.1": {platform: "electron", version: "2.3.1", files: []string{"electron-bootloader@2.3.1+lto.bin", "electron-system-part1@2.3.1.bin", "electron-system-part2@2.3.1.bin", "electron-system-part3@2.3.1.bin"}},
	"argon/2.3.0":    {platform: "argon", version: "2.3.0", files: []string{"argon-bootloader@2.3.0.bin", "argon-system-part1@2.3.0.bin", "argon-softdevice@4.1.0.bin"}},
	"argon/4.1.0":    {platform: "argon", version: "4.1.0", files: []string{"argon-bootloader@4.1.0.bin", "argon-system-part1@4.1.0.bin", "argon-softdevice@4.1.0.bin"}},
	"boron/1.5.2":    {platform: "boron", version: "1.5.2", files: []string{"boron-bootloader@1.5.2.bin", "boron-system-part1@1.5.2.bin", "boron-softdevice@4.1.0.bin"}},
	"boron/4.1.0":    {platform: "boron", version: "4.1.0", files: []string{"boron-bootloader@4.1.0.bin", "boron-system-part1@4.1.0.bin", "boron-softdevice@4.1.0.bin"}},
}

// apps are applications that run on every release above.
var apps = map[string]string{
	"photon":   "photon_tinker_tinker-0.4.5-photon.bin",
	"electron": "binaries_electron_tinker.bin",
	"argon":    "binaries_argon_stroby.bin",
	"boron":    "binaries_boron_blank.bin",
}

func readShared(t testing.TB, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testshared.Dir(t, "firmware", dir), name))
	require.NoError(t, err)
	return b
}

// syntheticReleases widen the property test beyond the shared files: older and newer
// releases built by the module builder. A Gen3 device on 6.1.2 or later keeps its
// system-part1 at 0x28000, which a downgrade does not overwrite when the part is as small
// as the builder's (a planner matter, reported), so 6.2.1 is only a target; and the shared
// Electron 1.5.2 set has no bootloader, which an Electron on 0.7.0's would need, so 0.7.0
// is only a target too.
var syntheticReleases = map[string]release{
	"photon/0.7.0 (synthetic)":   {platform: "photon", version: "0.7.0", synthetic: true},
	"photon/3.3.1 (synthetic)":   {platform: "photon", version: "3.3.1", synthetic: true},
	"electron/0.7.0 (synthetic)": {platform: "electron", version: "0.7.0", synthetic: true, targetOnly: true},
	"electron/3.3.1 (synthetic)": {platform: "electron", version: "3.3.1", synthetic: true},
	"argon/1.5.2 (synthetic)":    {platform: "argon", version: "1.5.2", synthetic: true},
	"argon/3.3.0 (synthetic)":    {platform: "argon", version: "3.3.0", synthetic: true},
	"argon/5.9.0 (synthetic)":    {platform: "argon", version: "5.9.0", synthetic: true},
	"boron/2.3.0 (synthetic)":    {platform: "boron", version: "2.3.0", synthetic: true},
	"boron/5.9.0 (synthetic)":    {platform: "boron", version: "5.9.0", synthetic: true},
	"boron/6.1.1 (synthetic)":    {platform: "boron", version: "6.1.1", synthetic: true},
	"boron/6.2.1 (synthetic)":    {platform: "boron", version: "6.2.1", synthetic: true, targetOnly: true},
}

var synthCache sync.Map // version key -> [][]byte

func (r release) bins(t testing.TB) [][]byte {
	if r.synthetic {
		key := r.platform + "/" + r.version
		if v, ok := synthCache.Load(key); ok {
			return v.([][]byte)
		}
		all, err := sim.SyntheticSet(plat(t, r.platform), r.version)
		require.NoError(t, err)
		var out [][]byte
		for _, b := range all {
			m, err := module.Parse(b)
			require.NoError(t, err)
			if m.Function != platform.FuncUser { // the app comes from apps/, as on real devices
				out = append(out, b)
			}
		}
		synthCache.Store(key, out)
		return out
	}
	var out [][]byte
	for _, f := range r.files {
		out = append(out, readShared(t, "releases", f))
	}
	return out
}

func (r release) target(t testing.TB) plan.Target {
	tgt := plan.Target{Name: r.version}
	for _, b := range r.bins(t) {
		m, err := module.Parse(b)
		require.NoError(t, err)
		tgt.Modules = append(tgt.Modules, m)
	}
	return tgt
}

func plat(t testing.TB, name string) *platform.Platform {
	p, ok := platform.ByName(name)
	require.True(t, ok, name)
	return p
}

var idSeq struct {
	sync.Mutex
	n int
}

func newID() string {
	idSeq.Lock()
	defer idSeq.Unlock()
	idSeq.n++
	return fmt.Sprintf("e00fce68%08x%08x", time.Now().UnixNano()&0xffffffff, idSeq.n)
}

// newSim makes a device holding a release set and its app.
func newSim(t testing.TB, key string, o sim.Options) *sim.Device {
	t.Helper()
	r := lookupRelease(key)
	o.Platform = plat(t, r.platform)
	// A copy: bins may come from a cache shared by parallel cases, and appending to it
	// would write this case's app into the other cases' slices.
	o.Modules = append(append([][]byte(nil), r.bins(t)...), readShared(t, "apps", apps[r.platform]))
	if r.platform == "electron" && r.version == "1.5.2" {
		// The shared files lack the Electron's 1.5.2 bootloader; a device keeps the one it has.
		o.Modules = append(o.Modules, readShared(t, "releases", "electron-bootloader@2.3.1+lto.bin"))
	}
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

// recorder keeps the events of a run.
type recorder struct {
	mu     sync.Mutex
	events []run.Event
	log    func(run.Event)
}

func (r *recorder) add(e run.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	f := r.log
	r.mu.Unlock()
	if f != nil {
		f(e)
	}
}

func (r *recorder) all() []run.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]run.Event(nil), r.events...)
}

func (r *recorder) names() string {
	var out []string
	for _, e := range r.all() {
		s := e.Event
		if e.StepID != "" {
			s += ":" + e.StepID
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

func newRunner(t testing.TB, doors device.Bus, rec *recorder, o run.Options) *run.Runner {
	o.Bus = doors
	o.Events = rec.add
	if o.Timeouts == (run.Timeouts{}) {
		o.Timeouts = fastTimeouts
	}
	if o.Poll == 0 {
		o.Poll = 2 * time.Millisecond
	}
	if o.ListenSettle == 0 {
		o.ListenSettle = -1
	}
	if o.Journal == nil {
		o.Journal = &run.Store{Dir: t.TempDir()}
	}
	return run.New(o)
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// requireAt checks the device runs normal at exactly the target's module versions.
func requireAt(t testing.TB, d *sim.Device, tgt plan.Target) {
	t.Helper()
	st := d.Status()
	require.Equal(t, sim.ModeNormal, st.Mode, "status %+v", st)
	have := map[[2]int]uint16{}
	for _, m := range d.Modules() {
		if m.Present && m.Store == "main" {
			require.True(t, m.Valid(), "%s %d invalid", m.Name, m.Version)
			have[[2]int{int(m.Function), int(m.Index)}] = m.Version
		}
	}
	for _, m := range tgt.Modules {
		v, ok := have[[2]int{int(m.Function), int(m.Index)}]
		require.True(t, ok, "no %s", m.SlotName())
		require.Equal(t, m.Version, v, "%s", m.SlotName())
	}
}

var _ = demo.New

// lookupRelease finds a release by key among the real and the synthetic ones.
func lookupRelease(key string) release {
	if r, ok := releases[key]; ok {
		return r
	}
	return syntheticReleases[key]
}
