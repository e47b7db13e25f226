package sim_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/led"
	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
)

func dfuClient(t *testing.T, d *sim.Device) (*dfu.Client, *memlayout.Layout) {
	t.Helper()
	l, err := d.Platform().AltLayout(0)
	require.NoError(t, err)
	h, err := d.Open()
	require.NoError(t, err)
	return dfu.New(h, dfu.Options{TransferSize: d.Platform().TransferSize, RetryDelay: time.Millisecond, Retries: -1}), l
}

// Power lost while DFU writes a system part leaves it half written: the device drops off
// the bus, and when the power comes back the part fails its CRC and the bootloader stays
// in DFU mode.
func TestPowerLossMidWrite(t *testing.T) {
	p := plat(t, "boron")
	mods := append(releases(t, "boron-bootloader@4.1.0.bin", "boron-system-part1@1.5.2.bin", "boron-softdevice@4.1.0.bin"), userPart(t, p, 1512, 1))
	d := newDevice(t, sim.Options{Platform: p, Modules: mods, Mode: sim.ModeDFU, NoSerial: true})
	part := release(t, "boron-system-part1@4.1.0.bin")
	c, layout := dfuClient(t, d)

	secs, err := layout.SectorsCovering(0x30000, uint32(len(part)))
	require.NoError(t, err)
	eraseBytes := 0
	for _, s := range secs {
		eraseBytes += int(s.Size)
	}
	require.NoError(t, d.PowerLossAfter(0, eraseBytes+200_000)) // every sector erased, 200 KB written
	err = c.Write(ctx(t), layout, 0x30000, part, nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, dfu.ErrNoDevice)
	st, err := d.WaitFor(ctx(t), func(st sim.Status) bool { return st.Mode == sim.ModeOff && st.Ready })
	require.NoError(t, err)
	assert.Equal(t, led.Off, st.LED)
	assert.False(t, st.OnBus)
	assert.Equal(t, "power loss", st.LastReset)

	got := d.Memory(0).Snapshot(0x30000, uint32(len(part)))
	assert.Equal(t, part[:200_000], got[:200_000], "written up to the power loss")
	assert.NotEqual(t, part[200_000:], got[200_000:], "not beyond")

	d.PowerOn()
	st = waitMode(t, d, sim.ModeDFU)
	assert.Contains(t, st.Reason, "system-part1 fails its CRC check")
	m, ok := findModule(d.Modules(), platform.FuncSystem, 1)
	require.True(t, ok)
	assert.True(t, m.Present)
	assert.Zero(t, m.Passed&0x02, "integrity fails")
	assert.Equal(t, uint16(4100), m.Version, "the new header was written")
}

// Losing power while the user part is erased leaves it without an application: Device
// OS runs in safe mode.
func TestPowerLossMidEraseOfApplication(t *testing.T) {
	p := plat(t, "photon")
	mods := append(releases(t, "photon-bootloader@2.3.1+lto.bin", "photon-system-part1@2.3.1.bin", "photon-system-part2@2.3.1.bin"), userPart(t, p, 2302, 2))
	d := newDevice(t, sim.Options{Platform: p, Modules: mods, Mode: sim.ModeDFU, NoSerial: true})
	c, layout := dfuClient(t, d)
	require.NoError(t, d.PowerLossAfter(0, 1000))
	err := c.Erase(ctx(t), layout, 0x080A0000, 4096, nil)
	assert.ErrorIs(t, err, dfu.ErrNoDevice)
	_, err = d.WaitFor(ctx(t), func(st sim.Status) bool { return st.Mode == sim.ModeOff && st.Ready })
	require.NoError(t, err)
	d.PowerOn()
	st := waitMode(t, d, sim.ModeSafe)
	assert.Equal(t, led.SafeMode, st.LED)
	assert.Contains(t, st.Reason, "user application")
}

// An external watchdog resets the device every period of device time, whatever it does.
func TestWatchdogResetsEveryPeriod(t *testing.T) {
	d := newDevice(t, sim.Options{Platform: plat(t, "photon"), Blank: true, NoSerial: true})
	c, layout := dfuClient(t, d)
	d.SetWatchdog(2 * time.Second)
	start := d.Meter().Charged()
	var resets []time.Duration
	for i := 0; len(resets) < 3 && i < 50; i++ {
		// A 128 KB STM32F2 sector takes 1 s to erase: the watchdog outruns a few of them.
		err := c.Erase(ctx(t), layout, 0x08020000, 128*1024, nil)
		if err != nil {
			require.True(t, errors.Is(err, dfu.ErrNoDevice) || errors.Is(err, dfu.ErrStall), "%v", err)
			st := waitMode(t, d, sim.ModeDFU)
			require.Equal(t, "watchdog", st.LastReset)
			resets = append(resets, d.Meter().Charged()-start)
			c, layout = dfuClient(t, d)
		}
	}
	require.Len(t, resets, 3)
	for i := 1; i < len(resets); i++ {
		gap := resets[i] - resets[i-1]
		assert.GreaterOrEqual(t, gap, 2*time.Second, "resets %v", resets)
		assert.Less(t, gap, 5*time.Second, "resets %v", resets)
	}
	d.SetWatchdog(0)
}

func TestUnplugAtTransfer(t *testing.T) {
	d := newDevice(t, sim.Options{Platform: plat(t, "boron"), Blank: true, NoSerial: true})
	c, layout := dfuClient(t, d)
	d.UnplugAtTransfer(5)
	err := c.Write(ctx(t), layout, 0x30000, make([]byte, 16*1024), nil)
	assert.ErrorIs(t, err, dfu.ErrNoDevice)
	st, err := d.WaitFor(ctx(t), func(st sim.Status) bool { return st.Mode == sim.ModeOff && st.Ready })
	require.NoError(t, err)
	assert.Contains(t, st.LastReset, "unplugged at control transfer")
	d.Plug()
	waitMode(t, d, sim.ModeDFU)
}

func TestStallAndStatusFaults(t *testing.T) {
	d := newDevice(t, sim.Options{Platform: plat(t, "boron"), Blank: true, NoSerial: true})
	c, layout := dfuClient(t, d)
	d.StallNext(1)
	err := c.Erase(ctx(t), layout, 0x30000, 4096, nil)
	assert.ErrorIs(t, err, dfu.ErrStall)
	d.InjectDFUStatus(dfu.StatusErrWrite)
	err = c.Write(ctx(t), layout, 0x30000, make([]byte, 64), nil)
	var se *dfu.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, dfu.StatusErrWrite, se.Status)
	require.NoError(t, c.Write(ctx(t), layout, 0x30000, []byte{1, 2, 3, 4}, nil), "faults fire once")
}

func TestReenumerationFaults(t *testing.T) {
	d := newDevice(t, sim.Options{Platform: plat(t, "boron"), Blank: true, NoSerial: true})
	d.SlowReenumeration(10 * time.Second)
	before := d.Meter().Charged()
	d.Reset()
	assert.Equal(t, sim.ReenumerationTime+10*time.Second, d.Meter().Charged()-before)
	assert.True(t, d.Status().OnBus)

	d.FailReenumeration(true)
	d.Reset()
	st := d.Status()
	assert.Equal(t, sim.ModeDFU, st.Mode, "it boots")
	assert.False(t, st.OnBus, "but never comes back on USB")
	_, err := d.Control(0xA1, 3, 0, 0, make([]byte, 6))
	assert.ErrorIs(t, err, sim.ErrNoDevice)
	d.FailReenumeration(false)
	d.Reset()
	assert.True(t, d.Status().OnBus)
}

func TestSerialGarbage(t *testing.T) {
	d := newDevice(t, sim.Options{Platform: plat(t, "boron"), Modules: boron152(t), Mode: sim.ModeListening})
	d.SerialGarbage([]byte("\x00noise\xff"))
	tty := openTTY(t, d)
	_, err := tty.Write([]byte("i"))
	require.NoError(t, err)
	out := readUntil(t, tty, d.ID()+"\r\n", 2*time.Second)
	assert.Contains(t, out, "\x00noise\xff")
}

// Leaving DFU with the DfuSe 0xFA command resets a Gen3 device into safe mode; a plain
// leave boots normally.
func TestDFULeaveModes(t *testing.T) {
	p := plat(t, "boron")
	mods := append(releases(t, "boron-bootloader@4.1.0.bin", "boron-system-part1@4.1.0.bin", "boron-softdevice@4.1.0.bin"), userPart(t, p, 4100, 1))
	d := newDevice(t, sim.Options{Platform: p, Modules: mods, Mode: sim.ModeDFU, NoSerial: true})
	c, _ := dfuClient(t, d)
	require.NoError(t, c.EnterSafeMode(ctx(t)))
	st := waitMode(t, d, sim.ModeSafe)
	assert.Equal(t, led.SafeMode, st.LED)
	assert.Equal(t, "safe mode requested", st.Reason)

	require.NoError(t, d.ButtonReset(3*time.Second))
	waitMode(t, d, sim.ModeDFU)
	c, _ = dfuClient(t, d)
	require.NoError(t, c.Leave(ctx(t)))
	st = waitMode(t, d, sim.ModeNormal)
	assert.Equal(t, led.Connected, st.LED)
}

func TestStartUnpowered(t *testing.T) {
	d := newDevice(t, sim.Options{Platform: plat(t, "argon"), Blank: true, NoSerial: true, Mode: sim.ModeOff})
	st := d.Status()
	assert.Equal(t, sim.ModeOff, st.Mode)
	assert.True(t, st.Ready)
	assert.False(t, st.OnBus)
	d.PowerOn()
	waitMode(t, d, sim.ModeDFU)
}
