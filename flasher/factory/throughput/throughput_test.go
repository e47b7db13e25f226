package throughput_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/factory/throughput"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/run"
)

// TestMeasureSynthetic: a measurement with synthetic Argon modules at time scale 0
// flashes every device (Round checks each ended normal) and reports consistent figures.
func TestMeasureSynthetic(t *testing.T) {
	p, ok := platform.ByName("argon")
	require.True(t, ok)
	from, err := throughput.SyntheticModules(p, "2.3.0", true)
	require.NoError(t, err)
	to, err := throughput.SyntheticModules(p, "4.1.0", false)
	require.NoError(t, err)
	tgt, err := throughput.TargetOf("4.1.0", to)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := throughput.Measure(ctx, throughput.Options{Platform: p, From: from, Target: tgt, Devices: 3,
		Timeouts: run.Timeouts{EstimateFactor: -1}, Poll: 5 * time.Millisecond, StateDir: t.TempDir()})
	require.NoError(t, err)
	assert.Equal(t, 3, res.Devices)
	assert.Equal(t, "2.3.0", res.From)
	assert.Equal(t, "4.1.0", res.To)
	assert.Positive(t, res.AloneUnitsPerMin)
	assert.Positive(t, res.ParallelDeviceSeconds, "device time is charged at scale 0 too")
	// Each device does the same work whether alone or beside others: the device time the
	// sims charged for the parallel round is three times one device's (to a few ms of
	// USB round trips), whatever the host's clock did.
	assert.InEpsilon(t, 3*res.AloneDeviceSeconds, res.ParallelDeviceSeconds, 0.02)
	assert.Contains(t, res.String(), "3 devices in parallel: ")
}
