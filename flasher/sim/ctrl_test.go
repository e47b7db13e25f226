package sim_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
)

func client(d *sim.Device) *ctrl.Client {
	return ctrl.New(d, ctrl.Options{
		RequestTimeout: 10 * time.Second,
		OutNeedsData:   d.Platform().ControlOutNeedsData,
		Sleep: func(ctx context.Context, _ time.Duration) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Millisecond):
				return nil
			}
		},
	})
}

// usbIdentity reads the device descriptor and the serial string through standard
// requests, as a host does after enumeration.
func usbIdentity(t *testing.T, d *sim.Device) (vid, pid uint16, serial string) {
	t.Helper()
	desc := make([]byte, 18)
	n, err := d.Control(0x80, 0x06, 0x0100, 0, desc)
	require.NoError(t, err)
	require.Equal(t, 18, n)
	vid, pid = binary.LittleEndian.Uint16(desc[8:]), binary.LittleEndian.Uint16(desc[10:])
	s := make([]byte, 255)
	n, err = d.Control(0x80, 0x06, 0x0300|uint16(desc[16]), 0x0409, s)
	require.NoError(t, err)
	u := make([]uint16, 0, n/2)
	for i := 2; i+1 < n; i += 2 {
		u = append(u, binary.LittleEndian.Uint16(s[i:]))
	}
	return vid, pid, string(utf16.Decode(u))
}

func TestControlRequests(t *testing.T) {
	p := plat(t, "boron")
	mods := boron152(t)
	d := newDevice(t, sim.Options{Platform: p, Modules: mods, NoSerial: true})
	c := client(d)
	cx := ctx(t)
	require.NoError(t, c.ResetAll(cx))

	id, err := c.DeviceID(cx)
	require.NoError(t, err)
	assert.Equal(t, d.ID(), id)
	v, err := c.SystemVersion(cx)
	require.NoError(t, err)
	assert.Equal(t, "1.5.2", v)
	legacy, err := c.LegacyDeviceID(cx)
	require.NoError(t, err)
	assert.Equal(t, d.ID(), legacy)

	infos, err := c.ModuleInfo(cx)
	require.NoError(t, err)
	for _, b := range mods {
		m, err := module.Parse(b)
		require.NoError(t, err)
		var got *ctrl.ModuleInfo
		for i := range infos {
			if infos[i].Function == uint8(m.Function) && infos[i].Index == m.Index {
				got = &infos[i]
			}
		}
		require.NotNil(t, got, "%s missing from %+v", m.SlotName(), infos)
		assert.Equal(t, uint32(m.Version), got.Version)
		assert.Zero(t, got.Failed(), "%+v", got)
		if m.Function != platform.FuncRadio {
			assert.Equal(t, uint32(len(b)), got.Size, m.SlotName())
		}
	}

	mode, err := c.DeviceMode(cx)
	require.NoError(t, err)
	assert.Equal(t, ctrl.ModeNormal, mode)
	require.NoError(t, c.StartListening(cx))
	assert.Equal(t, sim.ModeListening, d.Mode())
	mode, err = c.DeviceMode(cx)
	require.NoError(t, err)
	assert.Equal(t, ctrl.ModeListening, mode)
	require.NoError(t, c.StopListening(cx))
	assert.Equal(t, sim.ModeNormal, d.Mode())

	vid, pid, serial := usbIdentity(t, d)
	assert.Equal(t, [2]uint16{p.VID, p.PID}, [2]uint16{vid, pid})
	assert.Equal(t, d.ID(), serial)

	require.NoError(t, c.EnterDFU(cx))
	st := waitMode(t, d, sim.ModeDFU)
	assert.Equal(t, "DFU mode request", st.LastReset)
	vid, pid, serial = usbIdentity(t, d)
	assert.Equal(t, [2]uint16{p.DFUVID, p.DFUPID}, [2]uint16{vid, pid}, "re-enumerated with the DFU PID")
	assert.Equal(t, d.ID(), serial, "same serial in DFU mode")
	_, err = c.DeviceID(cx)
	assert.ErrorIs(t, err, sim.ErrStall, "no control requests in DFU mode")
	// 1.5 s of re-enumeration and the 1 s Device OS waits were charged.
	assert.GreaterOrEqual(t, d.Meter().Charged(), sim.ReenumerationTime+sim.RequestResetDelay)
}

// The new GetModuleInfoReply form from Device OS 5.6.0 on, with slot sizes and hashes.
func TestModuleInfoNewForm(t *testing.T) {
	p := plat(t, "boron")
	mods, err := sim.SyntheticSet(p, "6.2.0")
	require.NoError(t, err)
	d := newDevice(t, sim.Options{Platform: p, Modules: mods, NoSerial: true})
	infos, err := client(d).ModuleInfo(ctx(t))
	require.NoError(t, err)
	require.Len(t, infos, 4, "%+v", infos) // bootloader, part1, user, radio
	for _, mi := range infos {
		assert.Equal(t, ctrl.StoreMain, mi.Store)
		assert.NotZero(t, mi.MaxSize, "%+v", mi)
		assert.Equal(t, uint32(0x1E), mi.Checked)
		assert.Equal(t, mi.Checked, mi.Passed)
		if mi.Function != uint8(platform.FuncRadio) {
			assert.Len(t, mi.Hash, 32)
		}
	}
}

func TestFirmwareUpdateOverControlRequests(t *testing.T) {
	p := plat(t, "boron")
	part := release(t, "boron-system-part1@4.1.0.bin")

	t.Run("applied at reset", func(t *testing.T) {
		t.Parallel()
		mods := append(releases(t, "boron-bootloader@4.1.0.bin", "boron-system-part1@1.5.2.bin", "boron-softdevice@4.1.0.bin"), userPart(t, p, 1512, 1))
		d := newDevice(t, sim.Options{Platform: p, Modules: mods, NoSerial: true})
		require.Equal(t, sim.ModeNormal, d.Mode())
		c := client(d)
		var seen []int
		require.NoError(t, c.UpdateFirmware(ctx(t), part, func(done, total int) { seen = append(seen, done) }))
		assert.Equal(t, len(part), seen[len(seen)-1])
		st, err := d.WaitFor(ctx(t), func(st sim.Status) bool { return st.Ready && st.Resets >= 1 })
		require.NoError(t, err)
		assert.Equal(t, sim.ModeNormal, st.Mode, st.Reason)
		assert.Equal(t, "4.1.0", st.SystemVersion)
		assert.Equal(t, "firmware update", st.LastReset)
		got, ok := findModule(d.Modules(), platform.FuncSystem, 1)
		require.True(t, ok)
		assert.Equal(t, uint16(4100), got.Version)
		assert.True(t, got.Valid(), "%+v", got)
		assert.Equal(t, part, d.Memory(0).Snapshot(0x30000, uint32(len(part))))
	})

	t.Run("dependency refused", func(t *testing.T) {
		t.Parallel()
		d := newDevice(t, sim.Options{Platform: p, Modules: boron152(t), NoSerial: true})
		err := client(d).UpdateFirmware(ctx(t), part, nil)
		re, ok := ctrl.AsResultError(err)
		require.True(t, ok, "%v", err)
		assert.Equal(t, ctrl.CodeOTADependencyFailed, re.Code, "part1 4.1.0 needs bootloader 1200, the device has 502")
		time.Sleep(20 * time.Millisecond)
		st := d.Status()
		assert.Zero(t, st.Resets)
		assert.Equal(t, "1.5.2", st.SystemVersion)
	})

	t.Run("wrong platform", func(t *testing.T) {
		t.Parallel()
		d := newDevice(t, sim.Options{Platform: plat(t, "argon"), NoSerial: true, Modules: append(
			releases(t, "argon-bootloader@4.1.0.bin", "argon-system-part1@2.3.0.bin", "argon-softdevice@4.1.0.bin"), userPart(t, plat(t, "argon"), 2301, 1))})
		err := client(d).UpdateFirmware(ctx(t), part, nil)
		re, ok := ctrl.AsResultError(err)
		require.True(t, ok, "%v", err)
		assert.Equal(t, ctrl.CodeOTAInvalidPlatform, re.Code)
	})

	t.Run("corrupt", func(t *testing.T) {
		t.Parallel()
		mods := append(releases(t, "boron-bootloader@4.1.0.bin", "boron-system-part1@1.5.2.bin", "boron-softdevice@4.1.0.bin"), userPart(t, p, 1512, 1))
		d := newDevice(t, sim.Options{Platform: p, Modules: mods, NoSerial: true})
		err := client(d).UpdateFirmware(ctx(t), module.Corrupt(part, module.FlipBit, 1), nil)
		re, ok := ctrl.AsResultError(err)
		require.True(t, ok, "%v", err)
		assert.Equal(t, ctrl.CodeOTAIntegrityFailed, re.Code)
	})
}

// The Web Device Restore trick, as particle-cli's `update` did it over DFU: the
// bootloader into the OTA region (alt 0), the DCT flag at 0xA5 (alt 1), leave. Device OS
// applies the module at the next boot and clears the flag.
func TestOTARegionFlag(t *testing.T) {
	p := plat(t, "photon")
	d := newDevice(t, sim.Options{Platform: p, NoSerial: true, Mode: sim.ModeDFU, Modules: append(
		releases(t, "photon-bootloader@1.5.2+lto.bin", "photon-system-part1@2.3.1.bin", "photon-system-part2@2.3.1.bin"), userPart(t, p, 2302, 2))})
	bl := release(t, "photon-bootloader@2.3.1+lto.bin")
	c, layout := dfuClient(t, d)
	require.NoError(t, c.Write(ctx(t), layout, p.OTARegion.Address, bl, nil))
	_, err := d.Control(0x01, 0x0B, 1, 0, nil) // SET_INTERFACE alt 1: the DCT
	require.NoError(t, err)
	dct, err := p.AltLayout(1)
	require.NoError(t, err)
	require.NoError(t, c.Write(ctx(t), dct, p.OTAFlagOffset, []byte{p.OTAFlagValue}, nil))
	assert.Equal(t, p.OTAFlagValue, d.OTAFlag())
	require.NoError(t, c.Leave(ctx(t)))

	st := waitMode(t, d, sim.ModeNormal)
	assert.Equal(t, byte(0xFF), d.OTAFlag(), "flag cleared")
	got, _ := findModule(d.Modules(), platform.FuncBootloader, 0)
	assert.Equal(t, uint16(1006), got.Version, "part2 2.3.1 needed bootloader ≥ 1003")
	assert.Equal(t, bl, d.Memory(0).Snapshot(0x08000000, uint32(len(bl))))
	assert.GreaterOrEqual(t, st.Boots, 3, "power on, leave, reset after applying")
}
