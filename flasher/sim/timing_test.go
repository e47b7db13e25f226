package sim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/sim"
)

// The sim charges what the chip would take: writing a Photon system part is two 128 KB
// sector erases (1 s each), 241,496 bytes at 250 KB/s, and about 1 ms per USB transfer.
func TestDeviceTimeOfADFUWrite(t *testing.T) {
	d := newDevice(t, sim.Options{Platform: plat(t, "photon"), Blank: true, NoSerial: true})
	part := release(t, "photon-system-part1@2.3.1.bin")
	c, layout := dfuClient(t, d)
	before := d.Meter().Charged()
	require.NoError(t, c.Write(ctx(t), layout, 0x08020000, part, nil))
	got := d.Meter().Charged() - before
	floor := 2*time.Second + time.Duration(float64(len(part))/(250*1024)*float64(time.Second))
	assert.GreaterOrEqual(t, got, floor)
	// ~60 blocks, each a 4 KB DNLOAD (1 ms + 4 ms of data) and two GETSTATUS.
	assert.Less(t, got, floor+600*time.Millisecond)
}

// At a non-zero scale the device really takes its time: a reset is 1.5 s of device time.
func TestScaledReset(t *testing.T) {
	d := newDevice(t, sim.Options{Platform: plat(t, "boron"), Blank: true, NoSerial: true, Scale: 0.02})
	before := d.Meter().Charged()
	d.Reset()
	assert.GreaterOrEqual(t, d.Meter().Charged()-before, sim.ReenumerationTime, "the reset is charged as device time")
	assert.Equal(t, 30*time.Millisecond, d.Meter().Scaled(sim.ReenumerationTime), "which the device sleeps at scale 0.02")
	assert.Equal(t, sim.ModeDFU, d.Mode())
}
