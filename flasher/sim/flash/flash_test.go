package flash

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
)

const (
	photonLayout = "@Internal Flash   /0x08000000/03*016Ka,01*016Kg,01*064Kg,07*128Kg"
	gen3Layout   = "@Internal Flash   /0x00000000/1*004Ka,47*004Kg,192*004Kg,4*004Kg,4*004Kg,8*004Ka"
	dctLayout    = "@DCT Flash   /0x00000000/1*016Ke"
)

func region(t *testing.T, s string, tm Timing, m *Meter) *Region {
	t.Helper()
	l, err := memlayout.Parse(s)
	require.NoError(t, err)
	return NewRegion("test", l, tm, m)
}

func TestNewRegionIsErased(t *testing.T) {
	r := region(t, photonLayout, TimingSTM32F2, nil)
	got := r.Snapshot(0x08000000, 1024*1024)
	require.Len(t, got, 1024*1024)
	assert.Equal(t, bytes.Repeat([]byte{0xFF}, 1024*1024), got)
	assert.Nil(t, r.Snapshot(0x080FFFFF, 2), "range running past the end")
	assert.Equal(t, "test", r.Name())
}

func TestProgramNeedsErase(t *testing.T) {
	r := region(t, gen3Layout, TimingNRF52840, nil)
	data := []byte{1, 2, 3, 4}
	require.NoError(t, r.Program(0x30000, data))
	assert.Equal(t, data, r.Snapshot(0x30000, 4))

	err := r.Program(0x30002, []byte{9, 9, 9, 9})
	require.ErrorIs(t, err, ErrNotErased)
	assert.Contains(t, err.Error(), "0x00030002")
	assert.Equal(t, []byte{1, 2, 3, 4, 0xFF, 0xFF}, r.Snapshot(0x30000, 6), "a refused program writes nothing")

	require.NoError(t, r.EraseSector(0x30FFF), "any address in the sector erases it")
	assert.Equal(t, bytes.Repeat([]byte{0xFF}, 4096), r.Snapshot(0x30000, 4096))
	require.NoError(t, r.Program(0x30002, []byte{9, 9, 9, 9}))
}

func TestEraseWholeSectorOnly(t *testing.T) {
	r := region(t, photonLayout, TimingSTM32F2, nil)
	require.NoError(t, r.Load(0x0801FFF0, bytes.Repeat([]byte{0}, 32))) // straddles 64K | 128K sectors
	require.NoError(t, r.EraseSector(0x08020000+5))
	assert.Equal(t, bytes.Repeat([]byte{0}, 16), r.Snapshot(0x0801FFF0, 16), "previous sector untouched")
	assert.Equal(t, bytes.Repeat([]byte{0xFF}, 16), r.Snapshot(0x08020000, 16))
}

func TestReadOnlyRefused(t *testing.T) {
	r := region(t, photonLayout, TimingSTM32F2, nil)
	require.NoError(t, r.Load(0x08000000, []byte{0xAA}))

	err := r.EraseSector(0x08004000)
	require.ErrorIs(t, err, ErrReadOnly)
	assert.Contains(t, err.Error(), "0x08004000")
	assert.Equal(t, []byte{0xAA}, r.Snapshot(0x08000000, 1))

	err = r.Program(0x0800BFFE, []byte{1, 2, 3, 4}) // last 2 bytes of DCT2 + first 2 of the writable sector
	require.ErrorIs(t, err, ErrReadOnly)
	assert.Equal(t, []byte{0xFF, 0xFF, 0xFF, 0xFF}, r.Snapshot(0x0800BFFE, 4), "nothing written")

	require.ErrorIs(t, r.Program(0x08100000, []byte{1}), ErrOutOfRange)
	require.ErrorIs(t, r.EraseSector(0x07FFFFFF), ErrOutOfRange)
	require.ErrorIs(t, r.Read(0x080FFFFF, make([]byte, 2)), ErrOutOfRange)
	require.ErrorIs(t, r.Load(0x08100000, []byte{1}), ErrOutOfRange)
}

func TestProgramAcrossSegments(t *testing.T) {
	r := region(t, photonLayout, TimingSTM32F2, nil)
	data := bytes.Repeat([]byte{0x5A}, 64)
	require.NoError(t, r.Program(0x0800FFE0, data)) // 16K sector | 64K sector
	assert.Equal(t, data, r.Snapshot(0x0800FFE0, 64))
}

func TestWritableNotErasableRewritesInPlace(t *testing.T) {
	r := region(t, dctLayout, TimingNRF52840, nil)
	require.NoError(t, r.Program(1753, []byte{0xA5}))
	require.NoError(t, r.Program(1753, []byte{0x00}), "DCT is rewritten without erase")
	assert.Equal(t, []byte{0x00}, r.Snapshot(1753, 1))
	require.ErrorIs(t, r.EraseSector(0), ErrReadOnly)
}

func TestPowerLossDuringErase(t *testing.T) {
	r := region(t, gen3Layout, TimingNRF52840, nil)
	require.NoError(t, r.Load(0x30000, bytes.Repeat([]byte{0x11}, 4096)))
	r.PowerLossAfter(1000)
	err := r.EraseSector(0x30000)
	require.ErrorIs(t, err, ErrPowerLoss)
	got := r.Snapshot(0x30000, 4096)
	assert.Equal(t, bytes.Repeat([]byte{0xFF}, 1000), got[:1000], "erased up to the budget")
	assert.Equal(t, bytes.Repeat([]byte{0x11}, 3096), got[1000:], "rest still holds old data")

	require.NoError(t, r.EraseSector(0x30000), "fault fires once")
}

func TestPowerLossDuringProgram(t *testing.T) {
	r := region(t, gen3Layout, TimingNRF52840, nil)
	data := bytes.Repeat([]byte{0x42}, 8192)
	r.PowerLossAfter(4096 + 100)
	require.NoError(t, r.Program(0x30000, data[:4096]), "first program fits in the budget")
	err := r.Program(0x31000, data[4096:])
	require.ErrorIs(t, err, ErrPowerLoss)
	got := r.Snapshot(0x30000, 8192)
	assert.Equal(t, data[:4196], got[:4196])
	assert.Equal(t, bytes.Repeat([]byte{0xFF}, 8192-4196), got[4196:], "half-written range")

	r.PowerLossAfter(0)
	r.PowerLossAfter(-1)
	require.NoError(t, r.EraseSector(0x31000), "disarmed")
}

func TestMeterChargesDeviceTime(t *testing.T) {
	m := NewMeter(0)
	var slept []time.Duration
	m.sleep = func(d time.Duration) { slept = append(slept, d) }
	r := region(t, photonLayout, TimingSTM32F2, m)
	require.NoError(t, r.EraseSector(0x0800C000))                   // 16 KB
	require.NoError(t, r.EraseSector(0x08010000))                   // 64 KB
	require.NoError(t, r.EraseSector(0x08020000))                   // 128 KB
	require.NoError(t, r.Program(0x08020000, make([]byte, 256*kb))) // spans two factory-erased sectors
	assert.Empty(t, slept, "scale 0 never sleeps")
	// 0.25 + 0.5 + 1 s of erase, 256 KB at 250 KB/s = 1.024 s of programming.
	want := 1750*time.Millisecond + 1024*time.Millisecond
	assert.Equal(t, want, m.Charged())
	assert.Equal(t, 0.0, m.Scale())

	g := region(t, gen3Layout, TimingNRF52840, m)
	before := m.Charged()
	require.NoError(t, g.EraseSector(0x30000))
	assert.Equal(t, 85*time.Millisecond, m.Charged()-before)
	assert.Equal(t, 85*time.Millisecond, g.EraseDuration(0x30000))
	assert.Equal(t, time.Duration(0), g.EraseDuration(0x200000))
	assert.Equal(t, 40*time.Millisecond, g.ProgramDuration(4096))
}

func TestMeterSleepsScaled(t *testing.T) {
	m := NewMeter(0.5)
	var slept []time.Duration
	m.sleep = func(d time.Duration) { slept = append(slept, d) }
	m.Charge(40 * time.Millisecond)
	assert.Equal(t, []time.Duration{20 * time.Millisecond}, slept, "half the device time, slept once")
	assert.Equal(t, 40*time.Millisecond, m.Charged())
	assert.Equal(t, 20*time.Millisecond, m.Scaled(40*time.Millisecond))

	var nilMeter *Meter
	nilMeter.Charge(time.Hour)
	assert.Zero(t, nilMeter.Charged())
	assert.Zero(t, NewMeter(-3).Scale())
}

func TestMeterConcurrent(t *testing.T) {
	m := NewMeter(0)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 100 {
				m.Charge(time.Millisecond)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 5*time.Second, m.Charged())
}

func TestTimingFor(t *testing.T) {
	for _, mcu := range []string{"stm32f2xx", "STM32F2xx", "nrf52840", "rtl872x", "stm32f1xx"} {
		tm, ok := LookupTiming(mcu)
		assert.True(t, ok, mcu)
		assert.Positive(t, tm.EraseTime(4096), mcu)
		assert.Positive(t, tm.ProgramTime(4096), mcu)
	}
	_, ok := LookupTiming("esp32")
	assert.False(t, ok)
	assert.Zero(t, TimingFor("esp32").EraseTime(4096))
	assert.Equal(t, 250*time.Millisecond, TimingSTM32F2.EraseTime(16*kb))
	assert.Equal(t, 500*time.Millisecond, TimingSTM32F2.EraseTime(64*kb))
	assert.Equal(t, time.Second, TimingSTM32F2.EraseTime(128*kb))
	assert.Equal(t, 45*time.Millisecond, TimingRTL872x.EraseTime(4*kb))
	assert.Equal(t, 180*time.Millisecond, TimingExternalSPI.EraseTime(16*kb))
}
