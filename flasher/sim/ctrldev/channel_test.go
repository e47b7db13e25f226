package ctrldev

import (
	"bytes"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
)

// These tests drive the channel with raw transfers, the way a host (or a
// misbehaving host) would, and check the answers against Device OS's
// usb_control_request_channel.cpp.

func svc(t *testing.T, ch *Channel, request uint8, val, idx uint16) ctrl.ServiceReply {
	t.Helper()
	buf := make([]byte, ctrl.MinWLength)
	n, err := ch.Control(ctrl.RequestTypeIn, request, val, idx, buf)
	require.NoError(t, err)
	rep, err := ctrl.ParseServiceReply(buf[:n])
	require.NoError(t, err)
	return rep
}

// waitDone polls CHECK until the request has a result.
func waitDone(t *testing.T, ch *Channel, id uint16) ctrl.ServiceReply {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		rep := svc(t, ch, ctrl.ServiceCheck, 0, id)
		if rep.Status != ctrl.StatusPending {
			return rep
		}
		time.Sleep(100 * time.Microsecond)
	}
	t.Fatal("request never finished")
	return ctrl.ServiceReply{}
}

type echo struct {
	mu    sync.Mutex
	calls []uint16
}

func (e *echo) HandleRequest(typ uint16, p []byte) (int32, []byte) {
	e.mu.Lock()
	e.calls = append(e.calls, typ)
	e.mu.Unlock()
	return int32(-int(typ)), p
}

func TestSmallPayloadRequest(t *testing.T) {
	ch := New(Config{Handler: &echo{}})
	init := svc(t, ch, ctrl.ServiceInit, 5, 42)
	assert.Equal(t, ctrl.ServiceReply{Status: ctrl.StatusOK, ID: 1, HasID: true}, init)

	// SEND must carry no more than the announced size.
	_, err := ch.Control(ctrl.RequestTypeOut, ctrl.ServiceSend, 0, 1, []byte("toolong"))
	assert.ErrorIs(t, err, ErrStall)
	n, err := ch.Control(ctrl.RequestTypeOut, ctrl.ServiceSend, 0, 1, []byte("hello"))
	require.NoError(t, err)
	assert.Equal(t, 5, n)

	rep := waitDone(t, ch, 1)
	assert.Equal(t, ctrl.ServiceReply{Status: ctrl.StatusOK, Result: -42, HasResult: true, Size: 5, HasSize: true}, rep)

	// RECV of a wrong size stalls; chunks are accepted in order.
	_, err = ch.Control(ctrl.RequestTypeIn, ctrl.ServiceRecv, 0, 1, make([]byte, 6))
	assert.ErrorIs(t, err, ErrStall)
	buf := make([]byte, 5)
	n, err = ch.Control(ctrl.RequestTypeIn, ctrl.ServiceRecv, 0, 1, buf[:2])
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	n, err = ch.Control(ctrl.RequestTypeIn, ctrl.ServiceRecv, 0, 1, buf[2:])
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Equal(t, "hello", string(buf))

	// Once the reply has been read the request is gone.
	assert.Equal(t, ctrl.StatusNotFound, svc(t, ch, ctrl.ServiceCheck, 0, 1).Status)
	assert.Zero(t, ch.Active())
}

func TestLargePayloadIsPendingFirst(t *testing.T) {
	ch := New(Config{Handler: &echo{}})
	ch.SetAllocPending(2)
	init := svc(t, ch, ctrl.ServiceInit, 100, 7)
	assert.Equal(t, ctrl.StatusPending, init.Status)
	assert.True(t, init.HasID)

	// No SEND before the buffer exists.
	_, err := ch.Control(ctrl.RequestTypeOut, ctrl.ServiceSend, 0, init.ID, make([]byte, 100))
	assert.ErrorIs(t, err, ErrStall)
	assert.Equal(t, ctrl.StatusPending, svc(t, ch, ctrl.ServiceCheck, 0, init.ID).Status)
	assert.Equal(t, ctrl.StatusPending, svc(t, ch, ctrl.ServiceCheck, 0, init.ID).Status)
	rep := svc(t, ch, ctrl.ServiceCheck, 0, init.ID)
	assert.Equal(t, ctrl.ServiceReply{Status: ctrl.StatusOK}, rep, "buffer ready: OK with no result yet")

	payload := bytes.Repeat([]byte{9}, 100)
	_, err = ch.Control(ctrl.RequestTypeOut, ctrl.ServiceSend, 0, init.ID, payload[:60])
	require.NoError(t, err)
	assert.Equal(t, ctrl.StatusOK, svc(t, ch, ctrl.ServiceCheck, 0, init.ID).Status, "still receiving the payload")
	_, err = ch.Control(ctrl.RequestTypeOut, ctrl.ServiceSend, 0, init.ID, payload[60:])
	require.NoError(t, err)
	rep = waitDone(t, ch, init.ID)
	assert.Equal(t, int32(-7), rep.Result)
	assert.Equal(t, uint32(100), rep.Size)
}

func TestAllocationFailure(t *testing.T) {
	ch := New(Config{Handler: &echo{}})
	ch.SetAllocFail(true)
	init := svc(t, ch, ctrl.ServiceInit, 1000, 7)
	require.Equal(t, ctrl.StatusPending, init.Status)
	assert.Equal(t, ctrl.StatusNoMemory, svc(t, ch, ctrl.ServiceCheck, 0, init.ID).Status)
	assert.Zero(t, ch.Active())
	// Small payloads use the pool and are unaffected.
	assert.Equal(t, ctrl.StatusOK, svc(t, ch, ctrl.ServiceInit, 10, 7).Status)
}

func TestBusyAndIDs(t *testing.T) {
	ch := New(Config{Handler: &echo{}})
	for i := 1; i <= DefaultMaxActive; i++ {
		rep := svc(t, ch, ctrl.ServiceInit, 8, 1) // payloads never sent: slots stay taken
		assert.Equal(t, ctrl.StatusOK, rep.Status)
		assert.Equal(t, uint16(i), rep.ID)
	}
	assert.Equal(t, ctrl.ServiceReply{Status: ctrl.StatusBusy}, svc(t, ch, ctrl.ServiceInit, 8, 1))

	// RESET of one id frees one slot; unknown ids are NOT_FOUND.
	assert.Equal(t, ctrl.StatusOK, svc(t, ch, ctrl.ServiceReset, 0, 2).Status)
	assert.Equal(t, ctrl.StatusNotFound, svc(t, ch, ctrl.ServiceReset, 0, 2).Status)
	assert.Equal(t, uint16(5), svc(t, ch, ctrl.ServiceInit, 8, 1).ID)
	assert.Equal(t, ctrl.StatusBusy, svc(t, ch, ctrl.ServiceInit, 8, 1).Status)

	// RESET 0 frees everything.
	assert.Equal(t, ctrl.StatusOK, svc(t, ch, ctrl.ServiceReset, 0, 0).Status)
	assert.Zero(t, ch.Active())

	ch.SetMaxActive(0)
	assert.Equal(t, ctrl.StatusBusy, svc(t, ch, ctrl.ServiceInit, 0, 1).Status)
}

func TestIDsSkipZeroAndLiveIDs(t *testing.T) {
	ch := New(Config{Handler: &echo{}})
	ch.lastID = 0xFFFE
	assert.Equal(t, uint16(0xFFFF), svc(t, ch, ctrl.ServiceInit, 8, 1).ID)
	assert.Equal(t, uint16(1), svc(t, ch, ctrl.ServiceInit, 8, 1).ID, "0 is the invalid id")
}

func TestMalformedTransfersStall(t *testing.T) {
	ch := New(Config{Handler: &echo{}})
	cases := map[string]struct {
		rType, req uint8
		idx        uint16
		data       []byte
	}{
		"standard request":        {0x80, 6, 0, make([]byte, 64)},
		"interface recipient":     {0xC1, ctrl.ServiceInit, 1, make([]byte, 64)},
		"INIT wLength < 64":       {ctrl.RequestTypeIn, ctrl.ServiceInit, 1, make([]byte, 63)},
		"CHECK wLength < 64":      {ctrl.RequestTypeIn, ctrl.ServiceCheck, 1, make([]byte, 8)},
		"RESET wLength < 64":      {ctrl.RequestTypeIn, ctrl.ServiceReset, 0, make([]byte, 8)},
		"INIT as OUT":             {ctrl.RequestTypeOut, ctrl.ServiceInit, 1, make([]byte, 64)},
		"SEND as IN":              {ctrl.RequestTypeIn, ctrl.ServiceSend, 1, make([]byte, 64)},
		"SEND unknown request":    {ctrl.RequestTypeOut, ctrl.ServiceSend, 77, []byte{1}},
		"RECV unknown request":    {ctrl.RequestTypeIn, ctrl.ServiceRecv, 77, make([]byte, 4)},
		"reserved bRequest":       {ctrl.RequestTypeIn, 9, 1, make([]byte, 64)},
		"unknown bRequest":        {ctrl.RequestTypeIn, 0x42, 1, make([]byte, 64)},
		"legacy unknown IN":       {ctrl.RequestTypeIn, ctrl.LegacyRequest, 99, make([]byte, 64)},
		"legacy id not served":    {ctrl.RequestTypeIn, ctrl.LegacyRequest, ctrl.ReqDeviceID, make([]byte, 64)},
		"legacy reset not served": {ctrl.RequestTypeOut, ctrl.LegacyRequest, ctrl.ReqReset, nil},
	}
	for name, c := range cases {
		_, err := ch.Control(c.rType, c.req, 0, c.idx, c.data)
		assert.ErrorIs(t, err, ErrStall, name)
	}
	assert.Zero(t, ch.Active())
}

func TestRecvBeforeDoneStalls(t *testing.T) {
	block := make(chan struct{})
	ch := New(Config{Handler: HandlerFunc(func(uint16, []byte) (int32, []byte) { <-block; return 0, []byte{1} })})
	init := svc(t, ch, ctrl.ServiceInit, 0, 1)
	_, err := ch.Control(ctrl.RequestTypeIn, ctrl.ServiceRecv, 0, init.ID, make([]byte, 1))
	assert.ErrorIs(t, err, ErrStall)
	assert.Equal(t, ctrl.StatusPending, svc(t, ch, ctrl.ServiceCheck, 0, init.ID).Status)
	close(block)
	assert.Equal(t, uint32(1), waitDone(t, ch, init.ID).Size)
}

func TestCompletions(t *testing.T) {
	type done struct {
		typ      uint16
		delivery int32
	}
	var mu sync.Mutex
	var got []done
	block := make(chan struct{})
	ch := New(Config{
		Handler: HandlerFunc(func(typ uint16, p []byte) (int32, []byte) {
			if typ == 3 {
				<-block
			}
			if typ == 2 {
				return 0, []byte("reply")
			}
			return 0, nil
		}),
		OnComplete: func(typ uint16, delivery int32) {
			mu.Lock()
			got = append(got, done{typ, delivery})
			mu.Unlock()
		},
	})
	completions := func() []done {
		mu.Lock()
		defer mu.Unlock()
		return append([]done(nil), got...)
	}

	// No reply: complete once the CHECK carrying the result is out.
	id := svc(t, ch, ctrl.ServiceInit, 0, 1).ID
	waitDone(t, ch, id)
	assert.Equal(t, []done{{1, 0}}, completions())

	// With a reply: complete once the last RECV is out.
	id = svc(t, ch, ctrl.ServiceInit, 0, 2).ID
	waitDone(t, ch, id)
	assert.Len(t, completions(), 1)
	_, err := ch.Control(ctrl.RequestTypeIn, ctrl.ServiceRecv, 0, id, make([]byte, 5))
	require.NoError(t, err)
	assert.Equal(t, []done{{1, 0}, {2, 0}}, completions())

	// Cancelled while the handler runs: complete (CANCELLED) when it returns.
	id = svc(t, ch, ctrl.ServiceInit, 0, 3).ID
	assert.Equal(t, ctrl.StatusOK, svc(t, ch, ctrl.ServiceReset, 0, id).Status)
	assert.Len(t, completions(), 2)
	close(block)
	require.Eventually(t, func() bool { return len(completions()) == 3 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, done{3, ctrl.CodeCancelled}, completions()[2])

	// A request whose handler never ran completes nothing.
	id = svc(t, ch, ctrl.ServiceInit, 10, 4).ID
	svc(t, ch, ctrl.ServiceReset, 0, id)
	time.Sleep(5 * time.Millisecond)
	assert.Len(t, completions(), 3)
}

func TestDeviceResetDropsEverything(t *testing.T) {
	block := make(chan struct{})
	var completed atomic.Int32
	ch := New(Config{
		Handler:    HandlerFunc(func(uint16, []byte) (int32, []byte) { <-block; return 0, nil }),
		OnComplete: func(uint16, int32) { completed.Add(1) },
	})
	svc(t, ch, ctrl.ServiceInit, 0, 1)
	svc(t, ch, ctrl.ServiceInit, 0, 1)
	require.Equal(t, 2, ch.Active())
	ch.Reset()
	assert.Zero(t, ch.Active())
	close(block)
	id := svc(t, ch, ctrl.ServiceInit, 0, 1).ID
	assert.Equal(t, uint16(1), id, "ids start again after a reset")
	waitDone(t, ch, id)
	assert.Equal(t, int32(1), completed.Load(), "only the post-reset request completed")
}

func TestHandlersRunOneAtATimeInOrder(t *testing.T) {
	var running, maxRunning atomic.Int32
	var mu sync.Mutex
	var order []uint16
	ch := New(Config{MaxActive: 16, Handler: HandlerFunc(func(typ uint16, _ []byte) (int32, []byte) {
		n := running.Add(1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		mu.Lock()
		order = append(order, typ)
		mu.Unlock()
		running.Add(-1)
		return 0, nil
	})})
	var ids []uint16
	for typ := uint16(1); typ <= 8; typ++ {
		ids = append(ids, svc(t, ch, ctrl.ServiceInit, 0, typ).ID)
	}
	for _, id := range ids {
		waitDone(t, ch, id)
	}
	assert.Equal(t, int32(1), maxRunning.Load())
	assert.Equal(t, []uint16{1, 2, 3, 4, 5, 6, 7, 8}, order)
}

func TestNilHandlerIsNotSupported(t *testing.T) {
	ch := New(Config{})
	id := svc(t, ch, ctrl.ServiceInit, 0, 20).ID
	assert.Equal(t, ctrl.CodeNotSupported, waitDone(t, ch, id).Result)
}

func TestLegacyRequests(t *testing.T) {
	resets := 0
	ch := New(Config{
		LegacyDeviceID:      func() string { return "e00fce68b0b0ec4b2c1e3d7a" },
		LegacySystemVersion: func() string { return "6.2.0" },
		LegacyReset:         func() { resets++ },
	})
	buf := make([]byte, 64)
	n, err := ch.Control(ctrl.RequestTypeIn, ctrl.LegacyRequest, 0, ctrl.ReqDeviceID, buf)
	require.NoError(t, err)
	assert.Equal(t, "e00fce68b0b0ec4b2c1e3d7a", string(buf[:n]))
	n, err = ch.Control(ctrl.RequestTypeIn, ctrl.LegacyRequest, 0, ctrl.ReqSystemVersion, buf)
	require.NoError(t, err)
	assert.Equal(t, "6.2.0", string(buf[:n]))
	_, err = ch.Control(ctrl.RequestTypeIn, ctrl.LegacyRequest, 0, ctrl.ReqDeviceID, buf[:10])
	assert.ErrorIs(t, err, ErrStall, "wLength too small for the id")
	_, err = ch.Control(ctrl.RequestTypeIn, ctrl.LegacyRequest, 0, ctrl.ReqSystemVersion, nil)
	assert.ErrorIs(t, err, ErrStall, "no data stage")
	_, err = ch.Control(ctrl.RequestTypeOut, ctrl.LegacyRequest, 0, ctrl.ReqReset, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, resets)
}

func TestOutNeedsData(t *testing.T) {
	resets := 0
	ch := New(Config{OutNeedsData: true, LegacyReset: func() { resets++ }})
	_, err := ch.Control(ctrl.RequestTypeOut, ctrl.LegacyRequest, 0, ctrl.ReqReset, nil)
	assert.ErrorIs(t, err, ErrStall)
	assert.Zero(t, resets)
	_, err = ch.Control(ctrl.RequestTypeOut, ctrl.LegacyRequest, 0, ctrl.ReqReset, []byte{0})
	require.NoError(t, err)
	assert.Equal(t, 1, resets)
}

type meter struct{ total atomic.Int64 }

func (m *meter) Charge(d time.Duration) { m.total.Add(int64(d)) }

func TestMeterChargedPerTransfer(t *testing.T) {
	m := &meter{}
	ch := New(Config{Meter: m, Handler: &echo{}})
	id := svc(t, ch, ctrl.ServiceInit, 0, 1).ID
	rep := svc(t, ch, ctrl.ServiceCheck, 0, id)
	for rep.Status == ctrl.StatusPending {
		time.Sleep(100 * time.Microsecond)
		rep = svc(t, ch, ctrl.ServiceCheck, 0, id)
	}
	transfers := time.Duration(m.total.Load()) / time.Millisecond
	assert.GreaterOrEqual(t, transfers, time.Duration(2))
}

func TestLegacyResetMayResetTheChannel(t *testing.T) {
	var ch *Channel
	ch = New(Config{LegacyReset: func() { ch.Reset() }})
	svc(t, ch, ctrl.ServiceInit, 8, 1)
	_, err := ch.Control(ctrl.RequestTypeOut, ctrl.LegacyRequest, 0, ctrl.ReqReset, nil)
	require.NoError(t, err)
	assert.Zero(t, ch.Active())
}
