package sim_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// shimDir holds the libusb shim built for this test binary (the parent builds it; a
// re-executed child inherits it through LD_LIBRARY_PATH).
var shimDir string

func TestMain(m *testing.M) {
	if usbsim.IsChild() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "sim-shim")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := usbsim.BuildShim(dir); err != nil {
		fmt.Fprintln(os.Stderr, "building the libusb shim:", err)
		os.Exit(1)
	}
	shimDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func plat(t testing.TB, name string) *platform.Platform {
	t.Helper()
	p, ok := platform.ByName(name)
	require.True(t, ok, name)
	return p
}

// release reads a real Device OS binary from shared/firmware/releases.
func release(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testshared.Dir(t, "firmware", "releases"), name))
	require.NoError(t, err)
	return b
}

func releases(t testing.TB, names ...string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, n := range names {
		out = append(out, release(t, n))
	}
	return out
}

// userPart builds an application depending on a system part, as the module builder
// would for a given Device OS.
func userPart(t testing.TB, p *platform.Platform, sys uint16, depIdx uint8) []byte {
	t.Helper()
	b, err := sim.SyntheticUserPart(p, sys, module.Dependency{Function: platform.FuncSystem, Index: depIdx, Version: sys})
	require.NoError(t, err)
	return b
}

func newDevice(t testing.TB, o sim.Options) *sim.Device {
	t.Helper()
	if o.DeviceID == "" {
		o.DeviceID = "e00fce68" + fmt.Sprintf("%016x", time.Now().UnixNano())
	}
	d, err := sim.New(o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func ctx(t testing.TB) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func waitMode(t testing.TB, d *sim.Device, m sim.Mode) sim.Status {
	t.Helper()
	st, err := d.WaitMode(ctx(t), m)
	require.NoError(t, err, "status %+v", st)
	return st
}

func newFleet(t testing.TB) *sim.Fleet {
	t.Helper()
	f, err := sim.NewFleet(sim.FleetOptions{ShimDir: shimDir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func testSharedReleases(t testing.TB) string {
	t.Helper()
	return testshared.Dir(t, "firmware", "releases")
}
