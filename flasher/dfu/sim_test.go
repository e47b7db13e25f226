package dfu_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
	"github.com/particle-flasher/particle-flasher/flasher/sim/dfudev"
	"github.com/particle-flasher/particle-flasher/flasher/sim/flash"
)

const (
	photonLayout = "@Internal Flash   /0x08000000/03*016Ka,01*016Kg,01*064Kg,07*128Kg"
	gen3Layout   = "@Internal Flash   /0x00000000/1*004Ka,47*004Kg,192*004Kg,4*004Kg,4*004Kg,8*004Ka"
)

type rig struct {
	dev      *dfudev.Device
	mem      *flash.Region
	meter    *flash.Meter
	layout   *memlayout.Layout
	client   *dfu.Client
	manifest chan bool

	mu  sync.Mutex
	log []dfu.Transfer
}

type rigOpt struct {
	gen2, protected bool
	scale           float64
	mem             func(*flash.Region) dfudev.Memory // wraps the region
	opts            dfu.Options
}

func newRig(t testing.TB, layout string, timing flash.Timing, o rigOpt) *rig {
	t.Helper()
	l, err := memlayout.Parse(layout)
	require.NoError(t, err)
	r := &rig{meter: flash.NewMeter(o.scale), layout: l, manifest: make(chan bool, 1)}
	r.mem = flash.NewRegion("internal", l, timing, r.meter)
	var m dfudev.Memory = r.mem
	if o.mem != nil {
		m = o.mem(r.mem)
	}
	name := layout
	if o.protected {
		name = dfudev.ProtectedName(layout)
	}
	r.dev = dfudev.New(dfudev.Config{
		Alts:       []dfudev.Alt{{Name: name, Mem: m}},
		Gen2:       o.gen2,
		Protected:  o.protected,
		Meter:      r.meter,
		OnManifest: func(safe bool) { r.manifest <- safe },
	})
	fd, err := dfu.ParseFunctionalDescriptor(r.dev.FunctionalDescriptor())
	require.NoError(t, err)
	opts := o.opts
	if opts.TransferSize == 0 {
		opts.TransferSize = fd.TransferSize
	}
	if opts.RetryDelay == 0 {
		opts.RetryDelay = time.Millisecond
	}
	opts.Log = func(tr dfu.Transfer) {
		r.mu.Lock()
		r.log = append(r.log, tr)
		r.mu.Unlock()
	}
	r.client = dfu.New(r.dev, opts) // the adapter: Client.Control goes straight to Device.Control
	return r
}

func (r *rig) clientLog() []dfu.Transfer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]dfu.Transfer(nil), r.log...)
}

func image(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func countCommands(log []dfudev.Transfer, cmd byte) int {
	n := 0
	for _, t := range log {
		if t.Request == dfu.ReqDnload && t.Command == int(cmd) && t.Err == nil {
			n++
		}
	}
	return n
}

// assertPollsRespectTimeout checks that no GETSTATUS came sooner than the bwPollTimeout the
// previous GETSTATUS asked for.
func assertPollsRespectTimeout(t *testing.T, log []dfudev.Transfer) (nonZero int) {
	t.Helper()
	var prev *dfudev.Transfer
	for i := range log {
		tr := &log[i]
		if tr.Request != dfu.ReqGetStatus || tr.Err != nil {
			continue
		}
		if prev != nil && prev.Reported == dfu.StateDnbusy {
			gap := tr.Time.Sub(prev.Time)
			assert.GreaterOrEqual(t, gap, prev.PollTimeout, "GETSTATUS #%d came %v after one that asked for %v", i, gap, prev.PollTimeout)
		}
		if tr.PollTimeout > 0 {
			nonZero++
		}
		prev = tr
	}
	return nonZero
}

func TestWriteAndReadBack(t *testing.T) {
	cases := []struct {
		name     string
		layout   string
		timing   flash.Timing
		gen2     bool
		addr     uint32
		erases   []uint32
		transfer int // control transfers of the write, measured at scale 0
	}{
		{"photon", photonLayout, flash.TimingSTM32F2, true, 0x08020000, []uint32{0x08020000, 0x08040000}, 0},
		{"gen3", gen3Layout, flash.TimingNRF52840, false, 0x30000, nil, 0},
	}
	for i := range 64 {
		cases[1].erases = append(cases[1].erases, 0x30000+uint32(i)*4096)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.layout, tc.timing, rigOpt{gen2: tc.gen2, scale: 0.01})
			img := image(256*1024, uint64(tc.addr))
			var phases []string
			err := r.client.Write(t.Context(), r.layout, tc.addr, img, func(p dfu.Progress) {
				if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
					phases = append(phases, p.Phase)
				}
				assert.LessOrEqual(t, p.Done, p.Total)
			})
			require.NoError(t, err)
			assert.Equal(t, []string{"erase", "write"}, phases)
			assert.True(t, bytes.Equal(img, r.mem.Snapshot(tc.addr, uint32(len(img)))), "flash holds exactly the image")

			devLog := r.dev.Log()
			writeTransfers := len(devLog)
			assert.Equal(t, 1, countCommands(devLog, dfu.CmdSetAddress), "one SET_ADDRESS for one contiguous run")
			var erased []uint32
			for _, tr := range devLog {
				if tr.Command == int(dfu.CmdErase) {
					erased = append(erased, tr.Address)
				}
			}
			assert.Equal(t, tc.erases, erased, "exactly the covered sectors are erased")
			nonZero := assertPollsRespectTimeout(t, devLog)
			assert.Positive(t, nonZero, "scale 0.01 gives non-zero poll timeouts")
			// Blocks are numbered 2, 3, 4, ... from the single SET_ADDRESS.
			block := uint16(2)
			for _, tr := range devLog {
				if tr.Request == dfu.ReqDnload && tr.Value >= 2 {
					assert.Equal(t, block, tr.Value)
					assert.Equal(t, tc.addr+uint32(block-2)*4096, tr.Address)
					block++
				}
			}
			assert.Equal(t, uint16(2+64), block)

			got, err := r.client.Read(t.Context(), tc.addr, uint32(len(img)))
			require.NoError(t, err)
			assert.True(t, bytes.Equal(img, got), "Read returns the image")
			assert.Equal(t, dfu.StateIdle, r.dev.State())
			assertPollsRespectTimeout(t, r.dev.Log())
			t.Logf("%s: write of 256 KB took %d control transfers (%d erases); device time %v",
				tc.name, writeTransfers, len(erased), r.meter.Charged())
		})
	}
}

// TestTransferCounts measures the control transfers for a 256 KB write at scale 0.
func TestTransferCounts(t *testing.T) {
	for _, tc := range []struct {
		name, layout string
		gen2         bool
		addr         uint32
		want         int
	}{
		// 1 GETSTATUS (to idle) + erases×3 + SET_ADDRESS×3 + 64 blocks × (DNLOAD + 2 GETSTATUS)
		{"photon", photonLayout, true, 0x08020000, 1 + 2*3 + 3 + 64*3},
		{"gen3", gen3Layout, false, 0x30000, 1 + 64*3 + 3 + 64*3},
	} {
		r := newRig(t, tc.layout, flash.Timing{}, rigOpt{gen2: tc.gen2})
		require.NoError(t, r.client.Write(t.Context(), r.layout, tc.addr, image(256*1024, 1), nil))
		assert.Len(t, r.dev.Log(), tc.want, tc.name)
		assert.Len(t, r.clientLog(), tc.want, tc.name)
	}
}

func TestWriteWithoutKnownTransferSizeFallsBackToAddressPerBlock(t *testing.T) {
	r := newRig(t, gen3Layout, flash.Timing{}, rigOpt{})
	c := dfu.New(r.dev, dfu.Options{}) // no TransferSize: 1024-byte blocks, each with its own SET_ADDRESS
	img := image(10*1024+7, 3)
	require.NoError(t, c.Write(t.Context(), r.layout, 0x31000, img, nil))
	assert.Equal(t, img, r.mem.Snapshot(0x31000, uint32(len(img))))
	assert.Equal(t, 11, countCommands(r.dev.Log(), dfu.CmdSetAddress))
	got, err := c.Read(t.Context(), 0x31000, uint32(len(img)))
	require.NoError(t, err)
	assert.Equal(t, img, got)
	for _, tr := range r.dev.Log() {
		require.NoError(t, tr.Err, "no request was refused")
	}
}

// TestBlockNumberWraps writes more blocks than a u16 wBlockNum can number from one
// SET_ADDRESS (65534: blocks 2..65535), using a device with 8-byte transfers to keep it small.
func TestBlockNumberWraps(t *testing.T) {
	l, err := memlayout.Parse("@Internal Flash   /0x08000000/256*004Kg")
	require.NoError(t, err)
	mem := flash.NewRegion("internal", l, flash.Timing{}, nil)
	dev := dfudev.New(dfudev.Config{Alts: []dfudev.Alt{{Name: l.String(), Mem: mem}}, TransferSize: 8})
	c := dfu.New(dev, dfu.Options{TransferSize: 8})
	img := image(65534*8+20, 8)
	require.NoError(t, c.Write(t.Context(), l, 0x08000004, img, nil))
	assert.True(t, bytes.Equal(img, mem.Snapshot(0x08000004, uint32(len(img)))))
	var addrs []uint32
	maxBlock := uint16(0)
	for _, tr := range dev.Log() {
		if tr.Command == int(dfu.CmdSetAddress) {
			addrs = append(addrs, tr.Address)
		}
		if tr.Request == dfu.ReqDnload && tr.Value > maxBlock {
			maxBlock = tr.Value
		}
	}
	assert.Equal(t, []uint32{0x08000004, 0x08000004 + 65534*8}, addrs, "a new run before wBlockNum overflows")
	assert.Equal(t, uint16(0xFFFF), maxBlock)
}

func TestWriteUnalignedAndSmall(t *testing.T) {
	r := newRig(t, photonLayout, flash.Timing{}, rigOpt{gen2: true})
	require.NoError(t, r.mem.Load(0x08010000, bytes.Repeat([]byte{0x77}, 16)))
	img := image(5000, 9)
	require.NoError(t, r.client.Write(t.Context(), r.layout, 0x0801F000, img, nil)) // 64K sector | 128K sector
	assert.Equal(t, img, r.mem.Snapshot(0x0801F000, uint32(len(img))))
	assert.Equal(t, bytes.Repeat([]byte{0xFF}, 16), r.mem.Snapshot(0x08010000, 16), "the whole 64 KB sector was erased")
	require.NoError(t, r.client.Write(t.Context(), r.layout, 0x08020000, nil, nil), "empty write is a no-op")
}

func TestLeave(t *testing.T) {
	for _, tc := range []struct {
		name     string
		layout   string
		gen2     bool
		reported byte
	}{
		{"gen2", photonLayout, true, dfu.StateDnloadIdle},
		{"gen3", gen3Layout, false, dfu.StateManifest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.layout, flash.Timing{}, rigOpt{gen2: tc.gen2, scale: 0.01})
			require.NoError(t, r.client.Leave(t.Context()))
			select {
			case safe := <-r.manifest:
				assert.False(t, safe)
			case <-time.After(5 * time.Second):
				t.Fatal("OnManifest not called")
			}
			log := r.dev.Log()
			last := log[len(log)-1]
			assert.Equal(t, dfu.ReqGetStatus, last.Request)
			assert.Equal(t, tc.reported, last.Reported)
			assert.True(t, r.dev.Gone())
			_, err := r.client.GetStatus(t.Context())
			assert.ErrorIs(t, err, dfu.ErrNoDevice)
		})
	}
}

func TestLeaveFromErrorState(t *testing.T) {
	r := newRig(t, gen3Layout, flash.Timing{}, rigOpt{})
	r.dev.InjectStatus(dfu.StatusErrProg)
	require.Error(t, r.client.Erase(t.Context(), r.layout, 0x30000, 1, nil))
	r.dev.InjectStatus(dfu.StatusErrProg)
	// Leave the device in dfuERROR behind the client's back with a raw command.
	_, err := r.dev.Control(dfu.RequestTypeOut, dfu.ReqDnload, 0, 0, []byte{dfu.CmdSetAddress, 0, 0, 3, 0})
	require.NoError(t, err)
	_, _ = r.dev.Control(dfu.RequestTypeIn, dfu.ReqGetStatus, 0, 0, make([]byte, 6))
	require.Equal(t, dfu.StateError, r.dev.State())
	require.NoError(t, r.client.Leave(t.Context()))
	assert.False(t, <-r.manifest)
}

func TestEnterSafeMode(t *testing.T) {
	r := newRig(t, gen3Layout, flash.Timing{}, rigOpt{})
	require.NoError(t, r.client.EnterSafeMode(t.Context()))
	select {
	case safe := <-r.manifest:
		assert.True(t, safe)
	case <-time.After(5 * time.Second):
		t.Fatal("OnManifest not called")
	}

	g2 := newRig(t, photonLayout, flash.Timing{}, rigOpt{gen2: true})
	err := g2.client.EnterSafeMode(t.Context())
	require.ErrorIs(t, err, dfu.ErrUnsupported)
	cmds, err := g2.client.Commands(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []byte{0x00, 0x21, 0x41}, cmds)
}

func TestReadOnlyRefusedBeforeTouchingDevice(t *testing.T) {
	r := newRig(t, photonLayout, flash.Timing{}, rigOpt{gen2: true})
	err := r.client.Write(t.Context(), r.layout, 0x08008000, make([]byte, 100), nil) // DCT2 area, 'a'
	require.ErrorIs(t, err, dfu.ErrReadOnly)
	assert.Contains(t, err.Error(), "write 0x08008000")
	assert.Contains(t, err.Error(), "0x08008000..0x0800c000")
	assert.Contains(t, err.Error(), "read-only")

	// A range that starts writable but runs into... the end of the memory.
	err = r.client.Write(t.Context(), r.layout, 0x080F0000, make([]byte, 0x20000), nil)
	require.ErrorIs(t, err, dfu.ErrOutOfRange)
	assert.Contains(t, err.Error(), "write 0x080f0000")

	err = r.client.Erase(t.Context(), r.layout, 0x08000000, 1, nil)
	require.ErrorIs(t, err, dfu.ErrReadOnly)

	g3 := newRig(t, gen3Layout, flash.Timing{}, rigOpt{})
	err = g3.client.Write(t.Context(), g3.layout, 0xF8000, []byte{1}, nil)
	require.ErrorIs(t, err, dfu.ErrReadOnly)
	assert.Empty(t, r.dev.Log(), "nothing was sent to the device")
	assert.Empty(t, g3.dev.Log())
}

func TestInjectedStatusIsReportedAndCleared(t *testing.T) {
	r := newRig(t, photonLayout, flash.Timing{}, rigOpt{gen2: true})
	img := image(12*1024, 4)

	// Fail a data block: inject once the write phase has started.
	injected := false
	err := r.client.Write(t.Context(), r.layout, 0x08020000, img, func(p dfu.Progress) {
		if p.Phase == "write" && !injected {
			injected = true
			r.dev.InjectStatus(dfu.StatusErrWrite)
		}
	})
	require.Error(t, err)
	var se *dfu.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, dfu.StatusErrWrite, se.Status)
	assert.Equal(t, dfu.StateError, se.State)
	assert.Contains(t, err.Error(), "write 0x08021000")
	assert.Contains(t, err.Error(), "errWRITE")
	assert.Equal(t, dfu.StateIdle, r.dev.State(), "the client cleared the error")
	cl := r.clientLog()
	assert.Equal(t, dfu.ReqClrStatus, cl[len(cl)-1].Request)

	// Fail a DfuSe command.
	r.dev.InjectStatus(dfu.StatusErrErase)
	err = r.client.Erase(t.Context(), r.layout, 0x08040000, 10, nil)
	require.ErrorAs(t, err, &se)
	assert.Equal(t, dfu.StatusErrErase, se.Status)
	assert.Contains(t, err.Error(), "erase 0x08040000")

	// Usable again.
	require.NoError(t, r.client.Write(t.Context(), r.layout, 0x08020000, img, nil))
	assert.Equal(t, img, r.mem.Snapshot(0x08020000, uint32(len(img))))
}

func TestStalledEraseIsRetried(t *testing.T) {
	r := newRig(t, gen3Layout, flash.Timing{}, rigOpt{})
	r.dev.StallNext(2)
	require.NoError(t, r.client.Erase(t.Context(), r.layout, 0x30000, 8192, nil))
	stalled := 0
	for _, tr := range r.dev.Log() {
		if tr.Command == int(dfu.CmdErase) && errors.Is(tr.Err, dfu.ErrStall) {
			stalled++
		}
	}
	assert.Equal(t, 2, stalled)
	assert.Equal(t, 2, countCommands(r.dev.Log(), dfu.CmdErase))

	r2 := newRig(t, gen3Layout, flash.Timing{}, rigOpt{})
	r2.dev.StallNext(10)
	err := r2.client.Erase(t.Context(), r2.layout, 0x30000, 4096, nil)
	require.ErrorIs(t, err, dfu.ErrStall)
	assert.Contains(t, err.Error(), "erase 0x00030000")
	assert.Contains(t, err.Error(), "stalled it 5 times")

	r3 := newRig(t, gen3Layout, flash.Timing{}, rigOpt{opts: dfu.Options{Retries: -1}})
	r3.dev.StallNext(1)
	require.ErrorIs(t, r3.client.Erase(t.Context(), r3.layout, 0x30000, 4096, nil), dfu.ErrStall)
}

func TestRetryDelayDefaultsToOneSecond(t *testing.T) {
	r := newRig(t, gen3Layout, flash.Timing{}, rigOpt{})
	var slept []time.Duration
	c := dfu.New(r.dev, dfu.Options{TransferSize: 4096, Sleep: func(ctx context.Context, d time.Duration) error {
		slept = append(slept, d)
		return nil
	}})
	r.dev.StallNext(1)
	require.NoError(t, c.Erase(t.Context(), r.layout, 0x30000, 1, nil))
	assert.Contains(t, slept, time.Second)
}

func TestProtectedDevice(t *testing.T) {
	r := newRig(t, gen3Layout, flash.Timing{}, rigOpt{protected: true})
	advertised, err := memlayout.Parse(dfudev.ProtectedName(gen3Layout))
	require.NoError(t, err)
	for _, s := range advertised.Segments {
		require.Equal(t, memlayout.Erasable, s.Perm)
	}

	// The advertised layout alone tells the client.
	err = r.client.Write(t.Context(), advertised, 0x30000, []byte{1, 2, 3}, nil)
	require.ErrorIs(t, err, dfu.ErrProtected)
	assert.Contains(t, err.Error(), "protected")
	assert.Empty(t, r.dev.Log())

	// A client that believes the layout is writable hears it from the device (errVENDOR).
	err = r.client.Write(t.Context(), r.layout, 0x30000, []byte{1, 2, 3}, nil)
	require.ErrorIs(t, err, dfu.ErrProtected)
	assert.Contains(t, err.Error(), "protected")
	assert.Equal(t, "", r.dev.ErrorString(), "cleared by CLRSTATUS")

	_, err = r.client.Read(t.Context(), 0x30000, 16)
	require.ErrorIs(t, err, dfu.ErrProtected)
	assert.Contains(t, err.Error(), "protected")

	err = r.client.Erase(t.Context(), advertised, 0x30000, 16, nil)
	require.ErrorIs(t, err, dfu.ErrProtected)
	assert.Equal(t, bytes.Repeat([]byte{0xFF}, 16), r.mem.Snapshot(0x30000, 16))
	assert.Equal(t, dfu.StateIdle, r.dev.State())
}

type failingProgram struct{ *flash.Region }

func (f failingProgram) Program(addr uint32, p []byte) error {
	return errors.New("flash controller: PGSERR")
}

func TestDeviceRefusalGen2StallsGen3Errors(t *testing.T) {
	wrap := func(r *flash.Region) dfudev.Memory { return failingProgram{r} }
	g2 := newRig(t, photonLayout, flash.Timing{}, rigOpt{gen2: true, mem: wrap})
	err := g2.client.Write(t.Context(), g2.layout, 0x08020000, []byte{1, 2, 3, 4}, nil)
	require.ErrorIs(t, err, dfu.ErrStall, "STM32 bootloader stalls EP0 instead of reporting dfuERROR")
	assert.Contains(t, err.Error(), "write 0x08020000")
	assert.Equal(t, dfu.StateIdle, g2.dev.State(), "client recovered the device")

	g3 := newRig(t, gen3Layout, flash.Timing{}, rigOpt{mem: wrap})
	err = g3.client.Write(t.Context(), g3.layout, 0x30000, []byte{1, 2, 3, 4}, nil)
	var se *dfu.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, dfu.StatusErrUnknown, se.Status, "Gen3 bootloader reports every MAL failure as errUNKNOWN")
	assert.Equal(t, dfu.StateIdle, g3.dev.State())
}

func TestPowerLossMidWrite(t *testing.T) {
	r := newRig(t, gen3Layout, flash.Timing{}, rigOpt{})
	r.mem.PowerLossAfter(8*4096 + 3*4096 + 100) // 8 sector erases, 3 blocks and a bit
	img := image(32*1024, 5)
	err := r.client.Write(t.Context(), r.layout, 0x30000, img, nil)
	require.ErrorIs(t, err, dfu.ErrNoDevice)
	assert.Contains(t, err.Error(), "write 0x00033000")
	got := r.mem.Snapshot(0x30000, uint32(len(img)))
	assert.Equal(t, img[:3*4096+100], got[:3*4096+100])
	assert.Equal(t, bytes.Repeat([]byte{0xFF}, len(img)-3*4096-100), got[3*4096+100:], "half-written slot")
	assert.True(t, r.dev.Gone())
}

func TestContextCancel(t *testing.T) {
	r := newRig(t, gen3Layout, flash.TimingNRF52840, rigOpt{scale: 1})
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel()
	err := r.client.Write(ctx, r.layout, 0x30000, image(256*1024, 6), nil)
	require.ErrorIs(t, err, context.DeadlineExceeded, "the context, not the write's end, stopped it")
}

func TestWriteDCTWithoutErase(t *testing.T) {
	l, err := memlayout.Parse("@DCT Flash   /0x00000000/1*016Ke")
	require.NoError(t, err)
	meter := flash.NewMeter(0)
	dct := flash.NewRegion("dct", l, flash.TimingNRF52840, meter)
	require.NoError(t, dct.Load(1753, []byte{0x00}))
	dev := dfudev.New(dfudev.Config{Alts: []dfudev.Alt{{Name: "@DCT Flash   /0x00000000/1*016Ke", Mem: dct}}})
	c := dfu.New(dev, dfu.Options{TransferSize: 4096})
	require.NoError(t, c.Write(t.Context(), l, 1753, []byte{0xA5}, nil))
	assert.Equal(t, []byte{0xA5}, dct.Snapshot(1753, 1))
	assert.Zero(t, countCommands(dev.Log(), dfu.CmdErase), "DCT ('e') is not erasable: written in place")
}

func TestLeaveTwiceWhileResetting(t *testing.T) {
	r := newRig(t, photonLayout, flash.Timing{}, rigOpt{gen2: true, scale: 1}) // 500 ms countdown
	require.NoError(t, r.client.Leave(t.Context()))
	require.NoError(t, r.client.Leave(t.Context()), "already manifesting counts as leaving")
	assert.False(t, <-r.manifest)
	select {
	case <-r.manifest:
		t.Fatal("reset twice")
	case <-time.After(50 * time.Millisecond):
	}
}
