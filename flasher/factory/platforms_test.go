package factory_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	cache "github.com/particle-flasher/particle-flasher/firmware-cache"
	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/factory"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/sim/releases"
	"github.com/particle-flasher/particle-flasher/flasher/target"
)

// simAt is a virtual device holding a release of the catalog (built from its header dump)
// with the release's application.
func simAt(t *testing.T, plat, version string) *sim.Device {
	t.Helper()
	cat, err := cache.Embedded()
	require.NoError(t, err)
	r, err := cat.Release(version, plat)
	require.NoError(t, err)
	set, err := releases.Build(r)
	require.NoError(t, err)
	p, ok := platform.ByName(plat)
	require.True(t, ok)
	d, err := sim.New(sim.Options{Platform: p, Modules: set.Bytes(true), DeviceID: newID()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// TestBenchMixedPlatformsAtAVersionOneLacks: a bench of a Boron and a Photon at Device OS
// 6.5.0, which the Photon never got (its last is 3.3.1). Each unit's target is resolved
// for its own platform by the one resolver: the Boron is flashed to 6.5.0 with 6.5.0's own
// files, the Photon is reported as having no such release (its releases named) and left
// untouched.
func TestBenchMixedPlatformsAtAVersionOneLacks(t *testing.T) {
	boron := simAt(t, "boron", "4.1.0")
	photon := simAt(t, "photon", "2.3.1")
	require.Equal(t, sim.ModeNormal, photon.Mode(), photon.Status().Reason)
	photonBefore := photon.SystemVersion()

	ev := newEvents()
	o := benchOptions(t, demo.New(true, boron, photon), ev, 2)
	src := demo.Source()
	o.Target = func(ctx context.Context, p *platform.Platform) (plan.Target, error) {
		return target.Resolve(ctx, src, p, target.Spec{Version: "6.5.0"})
	}
	tot, err := factory.Run(testCtx(t, 2*time.Minute), o)
	require.NoError(t, err)
	assert.Equal(t, 1, tot.OK, "%+v", tot)
	assert.Equal(t, 1, tot.Failed, "%+v", tot)

	assert.Equal(t, "6.5.0", boron.SystemVersion())
	assert.Equal(t, sim.ModeNormal, boron.Mode(), boron.Status().Reason)
	assert.Equal(t, photonBefore, photon.SystemVersion(), "the Photon is untouched")

	for _, e := range ev.kind(factory.EvFinished) {
		r := e.Record
		switch r.Platform {
		case "boron":
			assert.Equal(t, factory.ResultOK, r.Result)
			assert.Equal(t, "6.5.0", r.After)
		case "photon":
			assert.Equal(t, factory.ResultFailed, r.Result)
			assert.Contains(t, r.Error, "Device OS 6.5.0 was never released for the Photon")
			assert.Contains(t, r.Error, "3.3.1")
			assert.Contains(t, r.Remedy, "Choose one of the Photon's releases")
		default:
			t.Errorf("unexpected unit %+v", r)
		}
	}
}
