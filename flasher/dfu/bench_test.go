package dfu_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/sim/flash"
)

// BenchmarkWrite256K writes a 256 KB image to a Gen3 sim running in real time (scale 1) and
// reports wall time over device time: how much the host side (polling granularity, the 1 ms
// rounding of bwPollTimeout, scheduling) adds to what the chip and the bus need anyway. 1.0
// would be a perfect host.
func BenchmarkWrite256K(b *testing.B) {
	img := image(256*1024, 42)
	var wall, device time.Duration
	for b.Loop() {
		b.StopTimer()
		r := newRig(b, gen3Layout, flash.TimingNRF52840, rigOpt{scale: 1})
		b.StartTimer()
		start := time.Now()
		require.NoError(b, r.client.Write(b.Context(), r.layout, 0x30000, img, nil))
		wall += time.Since(start)
		device += r.meter.Charged()
	}
	b.SetBytes(int64(len(img)))
	b.ReportMetric(float64(wall)/float64(device), "wall/device")
	b.ReportMetric(device.Seconds()/float64(b.N), "device-s/op")
}
