package dfudev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
	"github.com/particle-flasher/particle-flasher/flasher/sim/flash"
)

const (
	photonLayout = "@Internal Flash   /0x08000000/03*016Ka,01*016Kg,01*064Kg,07*128Kg"
	gen3Layout   = "@Internal Flash   /0x00000000/1*004Ka,47*004Kg,192*004Kg,4*004Kg,4*004Kg,8*004Ka"
	dctLayout    = "@DCT Flash   /0x00000000/1*016Ke"
)

type fixture struct {
	dev      *Device
	mem      *flash.Region
	meter    *flash.Meter
	manifest chan bool
}

func newFixture(t testing.TB, layout string, timing flash.Timing, gen2, protected bool, scale float64) *fixture {
	t.Helper()
	l, err := memlayout.Parse(layout)
	require.NoError(t, err)
	f := &fixture{meter: flash.NewMeter(scale), manifest: make(chan bool, 1)}
	f.mem = flash.NewRegion("internal", l, timing, f.meter)
	dl, err := memlayout.Parse(dctLayout)
	require.NoError(t, err)
	dct := flash.NewRegion("dct", dl, timing, f.meter)
	f.dev = New(Config{
		Alts:       []Alt{{Name: layout, Mem: f.mem}, {Name: dctLayout, Mem: dct}},
		Gen2:       gen2,
		Protected:  protected,
		Meter:      f.meter,
		OnManifest: func(safe bool) { f.manifest <- safe },
	})
	return f
}

// raw helpers, one control transfer each
func (f *fixture) dnload(t testing.TB, val uint16, data []byte) error {
	t.Helper()
	_, err := f.dev.Control(dfu.RequestTypeOut, dfu.ReqDnload, val, 0, data)
	return err
}

func cmd(c byte, addr uint32) []byte { return binary.LittleEndian.AppendUint32([]byte{c}, addr) }

type status struct {
	status byte
	poll   time.Duration
	state  byte
	str    byte
}

func (f *fixture) getStatus(t testing.TB) (status, error) {
	t.Helper()
	b := make([]byte, 6)
	n, err := f.dev.Control(dfu.RequestTypeIn, dfu.ReqGetStatus, 0, 0, b)
	if err != nil {
		return status{}, err
	}
	require.Equal(t, 6, n)
	ms := uint32(b[1]) | uint32(b[2])<<8 | uint32(b[3])<<16
	return status{b[0], time.Duration(ms) * time.Millisecond, b[4], b[5]}, nil
}

func (f *fixture) mustStatus(t testing.TB) status {
	t.Helper()
	s, err := f.getStatus(t)
	require.NoError(t, err)
	return s
}

func (f *fixture) simple(t testing.TB, req uint8) error {
	t.Helper()
	_, err := f.dev.Control(dfu.RequestTypeOut, req, 0, 0, nil)
	return err
}

func TestFunctionalDescriptor(t *testing.T) {
	f := newFixture(t, gen3Layout, flash.Timing{}, false, false, 0)
	assert.Equal(t, []byte{9, 0x21, 0x0B, 0xFF, 0x00, 0x00, 0x10, 0x1A, 0x01}, f.dev.FunctionalDescriptor())
	d := New(Config{TransferSize: 1024})
	assert.Equal(t, []byte{0x00, 0x04}, d.FunctionalDescriptor()[5:7])

	// Also answered as the standard GET_DESCRIPTOR(0x21) dfu-util sends to the interface.
	b := make([]byte, 9)
	n, err := f.dev.Control(0x81, 0x06, 0x2100, 0, b)
	require.NoError(t, err)
	assert.Equal(t, 9, n)
	assert.Equal(t, f.dev.FunctionalDescriptor(), b)
}

func TestAltSettings(t *testing.T) {
	f := newFixture(t, gen3Layout, flash.Timing{}, false, false, 0)
	require.NoError(t, f.dev.SetAlt(1))
	assert.Equal(t, uint8(1), f.dev.Alt())
	require.ErrorIs(t, f.dev.SetAlt(2), ErrStall)
	_, err := f.dev.Control(0x01, 0x0B, 0, 0, nil) // SET_INTERFACE 0
	require.NoError(t, err)
	b := []byte{9}
	_, err = f.dev.Control(0x81, 0x0A, 0, 0, b) // GET_INTERFACE
	require.NoError(t, err)
	assert.Equal(t, byte(0), b[0])
	_, err = f.dev.Control(0x01, 0x0B, 5, 0, nil)
	require.ErrorIs(t, err, ErrStall)

	// DCT ('e'): written in place through alt 1, at the DCT's own addresses.
	require.NoError(t, f.dev.SetAlt(1))
	require.NoError(t, f.dnload(t, 0, cmd(dfu.CmdSetAddress, 1753)))
	f.mustStatus(t)
	f.mustStatus(t)
	require.NoError(t, f.dnload(t, 2, []byte{0xA5}))
	assert.Equal(t, dfu.StateDnbusy, f.mustStatus(t).state)
	assert.Equal(t, dfu.StateDnloadIdle, f.mustStatus(t).state)
}

func TestGetCommands(t *testing.T) {
	for _, tc := range []struct {
		gen2  bool
		len   int
		want  []byte
		state byte
	}{
		{false, 16, []byte{0x00, 0x21, 0x41, 0xFA, 0xFB}, dfu.StateIdle},
		{true, 16, []byte{0x00, 0x21, 0x41}, dfu.StateIdle},
		{true, 3, []byte{0x00, 0x21, 0x41}, dfu.StateUploadIdle}, // usbd_dfu_core.c: wlength > 3 ? IDLE : UPLOAD_IDLE
	} {
		f := newFixture(t, gen3Layout, flash.Timing{}, tc.gen2, false, 0)
		b := make([]byte, tc.len)
		n, err := f.dev.Control(dfu.RequestTypeIn, dfu.ReqUpload, 0, 0, b)
		require.NoError(t, err)
		assert.Equal(t, tc.want, b[:n])
		assert.Equal(t, tc.state, f.dev.State())
	}
}

func TestFirstStatusAfterCommandIsDnbusy(t *testing.T) {
	for _, gen2 := range []bool{false, true} {
		f := newFixture(t, gen3Layout, flash.TimingNRF52840, gen2, false, 0)
		for _, c := range [][]byte{cmd(dfu.CmdSetAddress, 0x30000), cmd(dfu.CmdErase, 0x30000), {dfu.CmdGetCommands}} {
			require.NoError(t, f.dnload(t, 0, c))
			assert.Equal(t, dfu.StateDnloadSync, f.dev.Log()[len(f.dev.Log())-1].After)
			s := f.mustStatus(t)
			assert.Equal(t, dfu.StateDnbusy, s.state, "gen2=%v % x", gen2, c)
			s = f.mustStatus(t)
			assert.Equal(t, dfu.StateDnloadIdle, s.state)
			assert.Equal(t, dfu.StatusOK, s.status)
		}
	}
}

func TestDataBlockAddressing(t *testing.T) {
	f := newFixture(t, gen3Layout, flash.Timing{}, false, false, 0)
	for _, a := range []uint32{0x30000, 0x31000, 0x32000} {
		require.NoError(t, f.dnload(t, 0, cmd(dfu.CmdErase, a)))
		f.mustStatus(t)
		f.mustStatus(t)
	}
	require.NoError(t, f.dnload(t, 0, cmd(dfu.CmdSetAddress, 0x30010)))
	f.mustStatus(t)
	f.mustStatus(t)
	blk := bytes.Repeat([]byte{0xAB}, 4096)
	require.NoError(t, f.dnload(t, 3, blk)) // (3-2)*4096 + 0x30010
	f.mustStatus(t)
	assert.Equal(t, dfu.StateDnloadIdle, f.mustStatus(t).state)
	assert.Equal(t, blk, f.mem.Snapshot(0x31010, 4096))
	assert.Equal(t, uint32(0x31010), f.dev.Log()[len(f.dev.Log())-3].Address)

	// Write before erase is refused: Gen3 reports errUNKNOWN like any MAL failure.
	require.NoError(t, f.dnload(t, 3, blk))
	assert.Equal(t, dfu.StateDnbusy, f.mustStatus(t).state)
	s := f.mustStatus(t)
	assert.Equal(t, dfu.StateError, s.state)
	assert.Equal(t, dfu.StatusErrUnknown, s.status)
	require.NoError(t, f.simple(t, dfu.ReqClrStatus))
	assert.Equal(t, dfu.StateIdle, f.dev.State())

	// UPLOAD: not from dfuDNLOAD_IDLE; after ABORT, same formula.
	require.NoError(t, f.dnload(t, 0, cmd(dfu.CmdSetAddress, 0x30010)))
	f.mustStatus(t)
	f.mustStatus(t)
	_, err := f.dev.Control(dfu.RequestTypeIn, dfu.ReqUpload, 3, 0, make([]byte, 16))
	require.ErrorIs(t, err, ErrStall)
	assert.Equal(t, dfu.StateError, f.dev.State(), "Gen3 stalls and enters dfuERROR")
	require.NoError(t, f.simple(t, dfu.ReqClrStatus))
	require.NoError(t, f.dnload(t, 0, cmd(dfu.CmdSetAddress, 0x30010)))
	f.mustStatus(t)
	f.mustStatus(t)
	require.NoError(t, f.simple(t, dfu.ReqAbort))
	b := make([]byte, 16)
	n, err := f.dev.Control(dfu.RequestTypeIn, dfu.ReqUpload, 3, 0, b)
	require.NoError(t, err)
	assert.Equal(t, 16, n)
	assert.Equal(t, blk[:16], b)
	assert.Equal(t, dfu.StateUploadIdle, f.dev.State())
}

func TestRefusedCommandsGen3(t *testing.T) {
	f := newFixture(t, gen3Layout, flash.Timing{}, false, false, 0)
	check := func(data []byte, want byte) {
		t.Helper()
		require.NoError(t, f.dnload(t, 0, data))
		assert.Equal(t, dfu.StateDnbusy, f.mustStatus(t).state)
		s := f.mustStatus(t)
		assert.Equal(t, dfu.StateError, s.state, "% x", data)
		assert.Equal(t, want, s.status, "% x", data)
		require.NoError(t, f.simple(t, dfu.ReqClrStatus))
	}
	check([]byte{dfu.CmdErase}, dfu.StatusErrTarget)             // mass erase
	check(cmd(dfu.CmdErase, 0x0), dfu.StatusErrUnknown)          // MBR, 'a'
	check(cmd(dfu.CmdErase, 0x200000), dfu.StatusErrUnknown)     // outside
	check([]byte{dfu.CmdSetAddress, 1, 2}, dfu.StatusErrUnknown) // bad length
	check([]byte{dfu.CmdReadUnprotect}, dfu.StatusErrUnknown)    // unsupported
	check([]byte{0x55}, dfu.StatusErrStalledPkt)                 // unknown
	check([]byte{0x00, 0x00}, dfu.StatusErrStalledPkt)           // GET_COMMANDS with a stray byte

	// DNLOAD wValue 1 is not a block.
	require.NoError(t, f.dnload(t, 1, []byte{1}))
	f.mustStatus(t)
	assert.Equal(t, dfu.StatusErrTarget, f.mustStatus(t).status)
	require.NoError(t, f.simple(t, dfu.ReqClrStatus))
}

func TestRefusalsGen2Stall(t *testing.T) {
	f := newFixture(t, photonLayout, flash.Timing{}, true, false, 0)
	for _, data := range [][]byte{{dfu.CmdErase}, cmd(dfu.CmdErase, 0x08000000), {0x55}, {dfu.CmdEnterSafeMode}} {
		require.NoError(t, f.dnload(t, 0, data))
		assert.Equal(t, dfu.StateDnbusy, f.mustStatus(t).state)
		_, err := f.getStatus(t)
		require.ErrorIs(t, err, ErrStall, "usbd_dfu_core.c stalls EP0 (% x)", data)
		require.ErrorIs(t, err, dfu.ErrStall)
		s := f.mustStatus(t)
		assert.Equal(t, dfu.StateDnloadIdle, s.state, "and carries on")
		assert.Equal(t, dfu.StatusOK, s.status)
	}
	// Wrong-state requests stall without entering dfuERROR.
	require.NoError(t, f.dnload(t, 0, cmd(dfu.CmdSetAddress, 0x08020000)))
	_, err := f.dev.Control(dfu.RequestTypeIn, dfu.ReqUpload, 2, 0, make([]byte, 4))
	require.ErrorIs(t, err, ErrStall)
	assert.Equal(t, dfu.StateDnloadSync, f.dev.State())
	require.NoError(t, f.simple(t, dfu.ReqAbort))
	// CLRSTATUS outside dfuERROR puts the STM32 bootloader into dfuERROR/errUNKNOWN.
	require.NoError(t, f.simple(t, dfu.ReqClrStatus))
	s := f.mustStatus(t)
	assert.Equal(t, dfu.StateError, s.state)
	assert.Equal(t, dfu.StatusErrUnknown, s.status)
}

func TestWrongStateGen3(t *testing.T) {
	f := newFixture(t, gen3Layout, flash.Timing{}, false, false, 0)
	require.ErrorIs(t, f.simple(t, dfu.ReqClrStatus), ErrStall)
	s := f.mustStatus(t)
	assert.Equal(t, dfu.StateError, s.state)
	assert.Equal(t, dfu.StatusErrUnknown, s.status)
	require.ErrorIs(t, f.dnload(t, 0, cmd(dfu.CmdSetAddress, 0)), ErrStall, "DNLOAD in dfuERROR")
	require.ErrorIs(t, f.simple(t, dfu.ReqAbort), ErrStall, "ABORT is not a way out of dfuERROR")
	require.NoError(t, f.simple(t, dfu.ReqClrStatus))

	require.ErrorIs(t, f.dnload(t, 2, make([]byte, 4097)), ErrStall, "block larger than wTransferSize")
	_, err := f.dev.Control(dfu.RequestTypeOut, dfu.ReqDnload, 0, 1, []byte{0}) // wIndex 1
	require.ErrorIs(t, err, ErrStall)
	_, err = f.dev.Control(dfu.RequestTypeIn, dfu.ReqDnload, 0, 0, []byte{0}) // wrong direction
	require.ErrorIs(t, err, ErrStall)
	_, err = f.dev.Control(dfu.RequestTypeOut, 9, 0, 0, nil)
	require.ErrorIs(t, err, ErrStall)
	b := []byte{0xEE}
	n, err := f.dev.Control(dfu.RequestTypeIn, dfu.ReqGetState, 0, 0, b)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, dfu.StateIdle, b[0])
}

func TestInjectStatusAndStall(t *testing.T) {
	f := newFixture(t, gen3Layout, flash.Timing{}, false, false, 0)
	f.dev.InjectStatus(dfu.StatusErrWrite)
	require.NoError(t, f.dnload(t, 0, cmd(dfu.CmdErase, 0x30000)))
	assert.Equal(t, dfu.StateDnbusy, f.mustStatus(t).state, "dfu-util still sees DNBUSY first")
	s := f.mustStatus(t)
	assert.Equal(t, dfu.StateError, s.state)
	assert.Equal(t, dfu.StatusErrWrite, s.status)
	require.NoError(t, f.simple(t, dfu.ReqClrStatus))

	f.dev.StallNext(2)
	require.ErrorIs(t, f.dnload(t, 0, cmd(dfu.CmdErase, 0x30000)), ErrStall)
	require.ErrorIs(t, f.dnload(t, 0, cmd(dfu.CmdErase, 0x30000)), ErrStall)
	assert.Equal(t, dfu.StateIdle, f.dev.State(), "a stalled command is not accepted")
	require.NoError(t, f.dnload(t, 0, cmd(dfu.CmdErase, 0x30000)))
}

func TestProtected(t *testing.T) {
	f := newFixture(t, gen3Layout, flash.Timing{}, false, true, 0)
	require.NoError(t, f.mem.Load(0x30000, []byte{1, 2, 3}))

	b := make([]byte, 8)
	n, err := f.dev.Control(dfu.RequestTypeIn, dfu.ReqUpload, 0, 0, b)
	require.NoError(t, err, "GET_COMMANDS works when protected")
	assert.Equal(t, 5, n)

	for _, data := range [][]byte{cmd(dfu.CmdSetAddress, 0x30000), cmd(dfu.CmdErase, 0x30000)} {
		require.NoError(t, f.dnload(t, 0, data))
		s := f.mustStatus(t)
		assert.Equal(t, dfu.StateError, s.state, "refused at the first GETSTATUS")
		assert.Equal(t, dfu.StatusErrVendor, s.status)
		assert.Equal(t, byte(10), s.str)
		assert.Equal(t, "Device is in protected mode", f.dev.ErrorString())
		require.NoError(t, f.simple(t, dfu.ReqClrStatus))
		assert.Empty(t, f.dev.ErrorString())
	}
	n, err = f.dev.Control(dfu.RequestTypeIn, dfu.ReqUpload, 2, 0, b)
	require.NoError(t, err)
	assert.Zero(t, n, "UPLOAD answers with no data")
	assert.Equal(t, dfu.StatusErrVendor, f.mustStatus(t).status)
	require.NoError(t, f.simple(t, dfu.ReqClrStatus))
	assert.Equal(t, []byte{1, 2, 3}, f.mem.Snapshot(0x30000, 3))

	// Safe mode is still allowed.
	require.NoError(t, f.dnload(t, 0, []byte{dfu.CmdEnterSafeMode}))
	assert.Equal(t, dfu.StateDnbusy, f.mustStatus(t).state)
	assert.Equal(t, dfu.StateManifest, f.mustStatus(t).state)
	assert.True(t, <-f.manifest)
}

func TestProtectedName(t *testing.T) {
	assert.Equal(t, "@Internal Flash   /0x00000000/1*004Kb,47*004Kb,192*004Kb,4*004Kb,4*004Kb,8*004Kb", ProtectedName(gen3Layout))
	assert.Equal(t, "@Internal Flash   /0x080a0000/2048*004Kb", ProtectedName("@Internal Flash   /0x080a0000/2048*004Kg"), "hex digits untouched")
	assert.Equal(t, "@DCT Flash   /0x00000000/1*016Kb", ProtectedName(dctLayout))
	assert.Equal(t, "garbage", ProtectedName("garbage"))
}

func TestLeaveGen3(t *testing.T) {
	f := newFixture(t, gen3Layout, flash.Timing{}, false, false, 0.01)
	require.NoError(t, f.dnload(t, 2, nil))
	assert.Equal(t, dfu.StateManifestSync, f.dev.State())
	assert.Equal(t, dfu.StateManifest, f.mustStatus(t).state)
	select {
	case safe := <-f.manifest:
		assert.False(t, safe)
	case <-time.After(5 * time.Second):
		t.Fatal("no reset")
	}
	_, err := f.getStatus(t)
	require.ErrorIs(t, err, ErrNoDevice)
	require.ErrorIs(t, err, dfu.ErrNoDevice)
	assert.True(t, f.dev.Gone())
	assert.GreaterOrEqual(t, f.meter.Charged(), ResetCountdown)
}

func TestLeaveGen3StallsStatusWhileWaitingForReset(t *testing.T) {
	f := newFixture(t, gen3Layout, flash.Timing{}, false, false, 1) // 500 ms countdown in real time
	require.NoError(t, f.dnload(t, 2, nil))
	assert.Equal(t, dfu.StateManifest, f.mustStatus(t).state)
	_, err := f.getStatus(t)
	require.ErrorIs(t, err, ErrStall, "dfuMANIFEST_WAIT_RESET has no GETSTATUS transition")
	<-f.manifest
}

func TestLeaveGen2ReportsDnloadIdle(t *testing.T) {
	f := newFixture(t, photonLayout, flash.Timing{}, true, false, 1)
	require.NoError(t, f.dnload(t, 2, nil))
	assert.Equal(t, dfu.StateDnloadIdle, f.mustStatus(t).state, "the Gen2 quirk")
	assert.Equal(t, dfu.StateManifestWaitReset, f.mustStatus(t).state)
	assert.False(t, <-f.manifest)
}

// TestStatusBlocksUntilOperationDone: a host that ignores bwPollTimeout still gets a correct
// answer; the device NAKs (here: blocks) until the flash is done. The erase is held in
// flight by the meter's sleep, so what the device answers meanwhile does not depend on
// how fast this machine runs.
func TestStatusBlocksUntilOperationDone(t *testing.T) {
	f := newFixture(t, photonLayout, flash.TimingSTM32F2, true, false, 0.05) // 128 KB erase: 1 s → 50 ms
	inErase, letGo := make(chan struct{}), make(chan struct{})
	f.meter.SetSleep(func(d time.Duration) {
		if d >= 10*time.Millisecond { // the erase; the round trips' microseconds pass
			close(inErase)
			<-letGo
		}
	})
	require.NoError(t, f.mem.Program(0x08020000, []byte{1, 2, 3, 4})) // so the erase shows
	before := f.meter.Charged()
	require.NoError(t, f.dnload(t, 0, cmd(dfu.CmdErase, 0x08020000)))
	statusIn := func(c chan<- status) {
		s, err := f.getStatus(t)
		assert.NoError(t, err)
		c <- s
	}

	first := make(chan status, 1)
	go statusIn(first)
	var s status
	select {
	case s = <-first:
	case <-time.After(10 * time.Second):
		t.Fatal("GETSTATUS waited for the erase instead of answering dfuDNBUSY with the poll time")
	}
	assert.Equal(t, dfu.StateDnbusy, s.state)
	assert.Equal(t, 50*time.Millisecond, s.poll)

	second := make(chan status, 1)
	go statusIn(second) // no wait at all
	<-inErase
	select {
	case s = <-second:
		t.Fatalf("answered %d while the erase was still in flight", s.state)
	default:
	}
	close(letGo)
	s = <-second
	assert.Equal(t, dfu.StateDnloadIdle, s.state, "the next answer came only once the erase was done")
	assert.Equal(t, bytes.Repeat([]byte{0xff}, 4), f.mem.Snapshot(0x08020000, 4))
	assert.Equal(t, time.Second+3*USBRoundTrip+5*time.Microsecond+12*time.Microsecond, f.meter.Charged()-before)
}

func TestPollTimeoutRoundsUpToMilliseconds(t *testing.T) {
	f := newFixture(t, gen3Layout, flash.TimingNRF52840, false, false, 0.001) // 85 µs
	require.NoError(t, f.dnload(t, 0, cmd(dfu.CmdErase, 0x30000)))
	assert.Equal(t, time.Millisecond, f.mustStatus(t).poll)
	f0 := newFixture(t, gen3Layout, flash.TimingNRF52840, false, false, 0)
	require.NoError(t, f0.dnload(t, 0, cmd(dfu.CmdErase, 0x30000)))
	assert.Zero(t, f0.mustStatus(t).poll)
}

func TestPowerLossTakesDeviceOffTheBus(t *testing.T) {
	f := newFixture(t, gen3Layout, flash.TimingNRF52840, false, false, 0)
	f.mem.PowerLossAfter(100)
	require.NoError(t, f.dnload(t, 0, cmd(dfu.CmdErase, 0x30000)))
	f.mustStatus(t)
	_, err := f.getStatus(t)
	require.ErrorIs(t, err, ErrNoDevice)
	assert.True(t, f.dev.Gone())
	f2 := newFixture(t, gen3Layout, flash.Timing{}, false, false, 0)
	f2.dev.Unplug()
	require.ErrorIs(t, f2.dnload(t, 0, cmd(dfu.CmdErase, 0x30000)), ErrNoDevice)
	require.ErrorIs(t, f2.dev.SetAlt(0), ErrNoDevice)
}

func TestConcurrentUse(t *testing.T) {
	f := newFixture(t, gen3Layout, flash.TimingNRF52840, false, false, 0.001)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			_ = f.dev.Log()
			_ = f.dev.State()
		}
	}()
	for range 20 {
		require.NoError(t, f.dnload(t, 0, cmd(dfu.CmdErase, 0x30000)))
		f.mustStatus(t)
		f.mustStatus(t)
	}
	<-done
}

// dfuUtil reproduces what dfu-util 0.11 (src/dfuse.c: dfuse_special_command,
// dfuse_dnload_chunk, dfuse_dnload_element, dfuse_do_upload, dfuse_do_leave) sends, to prove
// the sim gives that host the answers it insists on and to count its control transfers.
type dfuUtil struct {
	t         testing.TB
	dev       *Device
	xfer      int
	layout    *memlayout.Layout
	transfers int
}

func (u *dfuUtil) control(rt, req uint8, val uint16, data []byte) int {
	u.t.Helper()
	u.transfers++
	n, err := u.dev.Control(rt, req, val, 0, data)
	require.NoError(u.t, err, "%s", dfu.RequestName(req))
	return n
}

func (u *dfuUtil) getStatus() (state, stat byte, poll time.Duration) {
	b := make([]byte, 6)
	require.Equal(u.t, 6, u.control(dfu.RequestTypeIn, dfu.ReqGetStatus, 0, b))
	return b[4], b[0], time.Duration(uint32(b[1])|uint32(b[2])<<8|uint32(b[3])<<16) * time.Millisecond
}

func (u *dfuUtil) special(c byte, addr uint32) {
	u.control(dfu.RequestTypeOut, dfu.ReqDnload, 0, cmd(c, addr))
	first := true
	for {
		state, stat, poll := u.getStatus()
		if first {
			first = false
			require.Equal(u.t, dfu.StateDnbusy, state, "Wrong state after command %q download", dfu.CommandName(c))
		}
		time.Sleep(poll)
		if state != dfu.StateDnbusy {
			require.Equal(u.t, dfu.StatusOK, stat, "%s not correctly executed", dfu.CommandName(c))
			return
		}
	}
}

func (u *dfuUtil) chunk(data []byte, transaction uint16) (state byte) {
	u.control(dfu.RequestTypeOut, dfu.ReqDnload, transaction, data)
	for {
		state, stat, poll := u.getStatus()
		time.Sleep(poll)
		if state == dfu.StateDnloadIdle || state == dfu.StateError || state == dfu.StateManifest {
			require.Equal(u.t, dfu.StatusOK, stat)
			return state
		}
	}
}

func (u *dfuUtil) download(addr uint32, data []byte) {
	lastErased := ^uint32(0)
	page := func(a uint32) (uint32, uint32) {
		_, size, perm, ok := u.layout.SectorAt(a)
		require.True(u.t, ok)
		require.True(u.t, perm.Has(memlayout.Writable), "Page at 0x%08x is not writeable", a)
		return size, a &^ (size - 1)
	}
	for p := 0; p < len(data); p += u.xfer { // first pass: erase
		a := addr + uint32(p)
		n := min(u.xfer, len(data)-p)
		size, _ := page(a)
		for e := a; e < a+uint32(n); e += size {
			if _, pg := page(e); pg != lastErased {
				u.special(dfu.CmdErase, e)
				lastErased = pg
			}
		}
		if _, pg := page(a + uint32(n) - 1); pg != lastErased {
			u.special(dfu.CmdErase, a+uint32(n)-1)
			lastErased = pg
		}
	}
	for p := 0; p < len(data); p += u.xfer { // second pass: write
		a := addr + uint32(p)
		u.special(dfu.CmdSetAddress, a)
		u.chunk(data[p:min(p+u.xfer, len(data))], 2)
	}
}

func (u *dfuUtil) abortToIdle() {
	u.control(dfu.RequestTypeOut, dfu.ReqAbort, 0, nil)
	state, _, _ := u.getStatus()
	require.Equal(u.t, dfu.StateIdle, state)
}

func (u *dfuUtil) upload(addr uint32, n int) []byte {
	u.special(dfu.CmdSetAddress, addr)
	u.abortToIdle()
	var out []byte
	for block := uint16(2); len(out) < n; block++ {
		b := make([]byte, min(u.xfer, n-len(out)))
		got := u.control(dfu.RequestTypeIn, dfu.ReqUpload, block, b)
		out = append(out, b[:got]...)
		if got < len(b) {
			break
		}
	}
	u.abortToIdle()
	return out
}

func TestDfuUtil011Sequence(t *testing.T) {
	for _, tc := range []struct {
		name     string
		layout   string
		timing   flash.Timing
		gen2     bool
		addr     uint32
		transfer int
		leave    byte
	}{
		{"photon", photonLayout, flash.TimingSTM32F2, true, 0x08020000, 2*3 + 64*6, dfu.StateDnloadIdle},
		{"gen3", gen3Layout, flash.TimingNRF52840, false, 0x30000, 64*3 + 64*6, dfu.StateManifest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.layout, tc.timing, tc.gen2, false, 0.002)
			l, err := memlayout.Parse(tc.layout)
			require.NoError(t, err)
			u := &dfuUtil{t: t, dev: f.dev, xfer: 4096, layout: l}
			img := make([]byte, 256*1024)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range img {
				img[i] = byte(rng.Uint32())
			}
			state, _, _ := u.getStatus() // "Determining device status"
			require.Equal(t, dfu.StateIdle, state)
			u.transfers = 0
			u.download(tc.addr, img)
			assert.Equal(t, tc.transfer, u.transfers, "dfu-util 0.11 control transfers for 256 KB")
			t.Logf("%s: dfu-util 0.11 needs %d control transfers for 256 KB", tc.name, u.transfers)
			assert.True(t, bytes.Equal(img, f.mem.Snapshot(tc.addr, uint32(len(img)))))
			got := u.upload(tc.addr, len(img))
			assert.True(t, bytes.Equal(img, got))
			assert.Equal(t, tc.leave, u.chunk(nil, 2), ":leave")
			select {
			case <-f.manifest:
			case <-time.After(5 * time.Second):
				t.Fatal("no reset after leave")
			}
		})
	}
}

func TestErrorsWrapHostSentinels(t *testing.T) {
	assert.True(t, errors.Is(ErrStall, dfu.ErrStall))
	assert.True(t, errors.Is(ErrNoDevice, dfu.ErrNoDevice))
}
