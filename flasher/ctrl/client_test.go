package ctrl_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/sim/ctrldev"
)

// These tests run the product client against the device-side engine
// in-process: the same bytes cross the adapter as would cross the USB cable.

const testDeviceID = "e00fce68b0b0ec4b2c1e3d7a"

// transfer is one recorded control transfer.
type transfer struct {
	rType, request uint8
	val, idx       uint16
	data           []byte // OUT data, or what the device filled for IN
	status         ctrl.Status
	err            error
}

// adapter passes Control through to the channel, recording every transfer
// and optionally reacting to it (e.g. freeing device slots after BUSY).
type adapter struct {
	dev   *ctrldev.Channel
	mu    sync.Mutex
	log   []transfer
	after func(tr transfer)
}

func (a *adapter) Control(rType, request uint8, val, idx uint16, data []byte) (int, error) {
	n, err := a.dev.Control(rType, request, val, idx, data)
	tr := transfer{rType: rType, request: request, val: val, idx: idx, err: err}
	if rType&0x80 != 0 && err == nil {
		tr.data = append([]byte(nil), data[:n]...)
		if request >= ctrl.ServiceInit && request <= ctrl.ServiceReset && request != ctrl.ServiceRecv {
			if rep, perr := ctrl.ParseServiceReply(tr.data); perr == nil {
				tr.status = rep.Status
			}
		}
	} else {
		tr.data = append([]byte(nil), data...)
	}
	a.mu.Lock()
	a.log = append(a.log, tr)
	after := a.after
	a.mu.Unlock()
	if after != nil {
		after(tr)
	}
	return n, err
}

func (a *adapter) transfers() []transfer {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]transfer(nil), a.log...)
}

func (a *adapter) count(request uint8, status ctrl.Status) int {
	n := 0
	for _, tr := range a.transfers() {
		if tr.request == request && tr.err == nil && tr.status == status {
			n++
		}
	}
	return n
}

// fastSleep keeps the protocol's backoff shape but runs it 100 times faster,
// so the suite stays quick while PENDING/BUSY paths still take real waits.
func fastSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d/100 + 50*time.Microsecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// testDevice is a Handler answering the requests the client uses.
type testDevice struct {
	mu       sync.Mutex
	mode     ctrl.Mode
	modules  []ctrl.ModuleInfo
	legacy   bool // module info in the deprecated form
	seen     []uint16
	payloads map[uint16][][]byte
	fw       *ctrldev.FirmwareUpdate
	slow     chan struct{} // if set, ReqEcho blocks until it is closed
}

func (d *testDevice) HandleRequest(reqType uint16, payload []byte) (int32, []byte) {
	d.mu.Lock()
	d.seen = append(d.seen, reqType)
	if d.payloads == nil {
		d.payloads = map[uint16][][]byte{}
	}
	d.payloads[reqType] = append(d.payloads[reqType], append([]byte(nil), payload...))
	slow := d.slow
	d.mu.Unlock()
	switch reqType {
	case ctrl.ReqDeviceID:
		return 0, ctrl.EncodeDeviceIDReply(testDeviceID)
	case ctrl.ReqSystemVersion:
		return 0, ctrl.EncodeSystemVersionReply("4.1.0")
	case ctrl.ReqGetDeviceMode:
		d.mu.Lock()
		defer d.mu.Unlock()
		return 0, ctrl.EncodeDeviceModeReply(d.mode)
	case ctrl.ReqStartListening:
		d.mu.Lock()
		defer d.mu.Unlock()
		d.mode = ctrl.ModeListening
		return 0, nil
	case ctrl.ReqStopListening:
		d.mu.Lock()
		defer d.mu.Unlock()
		d.mode = ctrl.ModeNormal
		return 0, nil
	case ctrl.ReqReset, ctrl.ReqDFUMode, ctrl.ReqSafeMode:
		return 0, nil
	case ctrl.ReqGetModuleInfo:
		return 0, ctrl.EncodeModuleInfoReply(d.modules, d.legacy)
	case ctrl.ReqEcho:
		if slow != nil {
			<-slow
		}
		return 0, payload
	}
	if d.fw != nil && d.fw.Handles(reqType) {
		return d.fw.HandleRequest(reqType, payload)
	}
	return ctrl.CodeNotSupported, nil
}

func (d *testDevice) types() []uint16 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]uint16(nil), d.seen...)
}

type rig struct {
	dev     *testDevice
	ch      *ctrldev.Channel
	ad      *adapter
	client  *ctrl.Client
	applied chan []byte
}

type rigOpt struct {
	outNeedsData, clientOutNeedsData bool
	timeout                          time.Duration
	legacyReset                      func()
	validate                         func([]byte) int32
	write                            func(uint32, []byte) int32
}

func newRig(t *testing.T, o rigOpt) *rig {
	t.Helper()
	r := &rig{applied: make(chan []byte, 1)}
	r.dev = &testDevice{fw: &ctrldev.FirmwareUpdate{
		Validate: o.validate,
		Write:    o.write,
		Apply:    func(img []byte) { r.applied <- img },
	}}
	r.ch = ctrldev.New(ctrldev.Config{
		Handler:             r.dev,
		OutNeedsData:        o.outNeedsData,
		LegacyDeviceID:      func() string { return testDeviceID },
		LegacySystemVersion: func() string { return "4.1.0" },
		LegacyReset:         o.legacyReset,
		OnComplete:          r.dev.fw.Completed,
	})
	r.ad = &adapter{dev: r.ch}
	if o.timeout == 0 {
		o.timeout = 5 * time.Second
	}
	r.client = ctrl.New(r.ad, ctrl.Options{RequestTimeout: o.timeout, OutNeedsData: o.clientOutNeedsData, Sleep: fastSleep})
	require.NoError(t, r.client.ResetAll(t.Context()))
	return r
}

// boronModules is a realistic Boron (Device OS 4.1.0) module set.
func boronModules() []ctrl.ModuleInfo {
	all := ctrl.ValidIntegrity | ctrl.ValidDependencies | ctrl.ValidRange | ctrl.ValidPlatform
	hash := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	return []ctrl.ModuleInfo{
		{Function: 2, Index: 0, Version: 1200, Store: ctrl.StoreMain, MaxSize: 0xC000, Size: 41636,
			Checked: all, Passed: all, Hash: hash("bootloader")},
		{Function: 4, Index: 1, Version: 4100, Store: ctrl.StoreMain, MaxSize: 0xC4000, Size: 712268,
			Checked: all, Passed: all, Hash: hash("system-part1"),
			Dependencies: []ctrl.Dependency{{Function: 2, Index: 0, Version: 1200}, {Function: 8, Index: 0, Version: 202}}},
		{Function: 8, Index: 0, Version: 202, Store: ctrl.StoreMain, MaxSize: 0x26000, Size: 153204,
			Checked: all, Passed: all, Hash: hash("softdevice")},
		{Function: 5, Index: 2, Version: 6, Store: ctrl.StoreMain, MaxSize: 0x40000, Size: 12720,
			Checked: all, Passed: all &^ ctrl.ValidDependencies, Hash: hash("tinker"),
			Dependencies: []ctrl.Dependency{{Function: 4, Index: 1, Version: 4100}}},
	}
}

// deprecatedView is what the deprecated reply form can carry of mods.
func deprecatedView(mods []ctrl.ModuleInfo) []ctrl.ModuleInfo {
	out := make([]ctrl.ModuleInfo, len(mods))
	for i, m := range mods {
		m.MaxSize, m.Hash = 0, nil
		m.Checked = ctrl.ValidIntegrity | ctrl.ValidDependencies
		m.Passed &= m.Checked
		out[i] = m
	}
	return out
}

func TestEveryRequestRoundTrips(t *testing.T) {
	r := newRig(t, rigOpt{})
	ctx := t.Context()

	id, err := r.client.DeviceID(ctx)
	require.NoError(t, err)
	assert.Equal(t, testDeviceID, id)

	v, err := r.client.SystemVersion(ctx)
	require.NoError(t, err)
	assert.Equal(t, "4.1.0", v)

	lid, err := r.client.LegacyDeviceID(ctx)
	require.NoError(t, err)
	assert.Equal(t, testDeviceID, lid)
	lv, err := r.client.LegacySystemVersion(ctx)
	require.NoError(t, err)
	assert.Equal(t, "4.1.0", lv)

	m, err := r.client.DeviceMode(ctx)
	require.NoError(t, err)
	assert.Equal(t, ctrl.ModeNormal, m)
	require.NoError(t, r.client.StartListening(ctx))
	m, err = r.client.DeviceMode(ctx)
	require.NoError(t, err)
	assert.Equal(t, ctrl.ModeListening, m)
	require.NoError(t, r.client.StopListening(ctx))
	m, err = r.client.DeviceMode(ctx)
	require.NoError(t, err)
	assert.Equal(t, ctrl.ModeNormal, m)

	require.NoError(t, r.client.Reset(ctx))
	require.NoError(t, r.client.EnterDFU(ctx))
	require.NoError(t, r.client.EnterSafeMode(ctx))

	r.dev.modules = boronModules()
	mods, err := r.client.ModuleInfo(ctx)
	require.NoError(t, err)
	assert.Equal(t, boronModules(), mods)

	assert.Equal(t, []uint16{20, 30, 72, 70, 72, 71, 72, 40, 50, 60, 90}, r.dev.types())
	for typ, ps := range r.dev.payloads {
		for _, p := range ps {
			assert.Empty(t, p, "request %d carries an empty protobuf message", typ)
		}
	}
	assert.Zero(t, r.ch.Active(), "every finished request has left the device")

	// Raw request with a payload and a reply: echo.
	payload := bytes.Repeat([]byte("particle"), 40) // 320 bytes: PENDING at INIT
	res, rep, err := r.client.Request(ctx, ctrl.ReqEcho, payload)
	require.NoError(t, err)
	assert.Equal(t, int32(0), res)
	assert.Equal(t, payload, rep)
}

func TestUnsupportedRequest(t *testing.T) {
	r := newRig(t, rigOpt{})
	res, _, err := r.client.Request(t.Context(), 9999, nil)
	require.NoError(t, err, "a negative result is an answer, not a transport error")
	assert.Equal(t, ctrl.CodeNotSupported, res)

	// Typed requests turn it into a ResultError.
	bare := ctrl.New(ctrldev.New(ctrldev.Config{}), ctrl.Options{Sleep: fastSleep})
	_, err = bare.ModuleInfo(t.Context())
	re, ok := ctrl.AsResultError(err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, ctrl.CodeNotSupported, re.Code)
	assert.Equal(t, "device refused the module info request: NOT_SUPPORTED (-120)", err.Error())
}

func TestModuleInfoBothForms(t *testing.T) {
	r := newRig(t, rigOpt{})
	r.dev.modules = boronModules()

	mods, err := r.client.ModuleInfo(t.Context())
	require.NoError(t, err)
	assert.Equal(t, boronModules(), mods, "new form (modules = 2)")

	r.dev.legacy = true
	mods, err = r.client.ModuleInfo(t.Context())
	require.NoError(t, err)
	assert.Equal(t, deprecatedView(boronModules()), mods, "deprecated form (modules_deprecated = 1)")
	assert.Equal(t, ctrl.ValidDependencies, mods[3].Failed(), "the user part's failed dependency check survives")
	assert.Equal(t, []ctrl.Dependency{{Function: 2, Index: 0, Version: 1200}, {Function: 8, Index: 0, Version: 202}}, mods[1].Dependencies)
}

func TestPendingThenOK(t *testing.T) {
	r := newRig(t, rigOpt{})
	r.ch.SetAllocPending(3) // buffer allocation takes three CHECKs
	slow := make(chan struct{})
	r.dev.slow = slow
	go func() { time.Sleep(30 * time.Millisecond); close(slow) }() // and the handler is slow

	payload := bytes.Repeat([]byte{0xA5}, 200)
	res, rep, err := r.client.Request(t.Context(), ctrl.ReqEcho, payload)
	require.NoError(t, err)
	assert.Equal(t, int32(0), res)
	assert.Equal(t, payload, rep)

	assert.Equal(t, 1, r.ad.count(ctrl.ServiceInit, ctrl.StatusPending), "INIT answers PENDING for a 200-byte payload")
	assert.GreaterOrEqual(t, r.ad.count(ctrl.ServiceCheck, ctrl.StatusPending), 4, "three allocation PENDINGs and at least one while the handler runs")
	// The order on the wire: INIT, CHECK×3 PENDING, CHECK OK, SEND, CHECK… OK, RECV.
	var seq []uint8
	for _, tr := range r.ad.transfers() {
		if tr.request != ctrl.ServiceReset && (len(seq) == 0 || seq[len(seq)-1] != tr.request) {
			seq = append(seq, tr.request)
		}
	}
	assert.Equal(t, []uint8{ctrl.ServiceInit, ctrl.ServiceCheck, ctrl.ServiceSend, ctrl.ServiceCheck, ctrl.ServiceRecv}, seq)
}

func TestBusyThenOK(t *testing.T) {
	r := newRig(t, rigOpt{})
	r.ch.SetMaxActive(0)
	busy := 0
	r.ad.after = func(tr transfer) {
		if tr.request == ctrl.ServiceInit && tr.status == ctrl.StatusBusy {
			busy++
			if busy == 3 {
				r.ch.SetMaxActive(ctrldev.DefaultMaxActive)
			}
		}
	}
	id, err := r.client.DeviceID(t.Context())
	require.NoError(t, err)
	assert.Equal(t, testDeviceID, id)
	assert.Equal(t, 3, busy)
}

func TestResetAllClearsStaleRequests(t *testing.T) {
	r := newRig(t, rigOpt{timeout: 100 * time.Millisecond})
	// A previous session left four requests waiting for payloads it never sent.
	buf := make([]byte, ctrl.MinWLength)
	for range ctrldev.DefaultMaxActive {
		n, err := r.ch.Control(ctrl.RequestTypeIn, ctrl.ServiceInit, 10, ctrl.ReqEcho, buf)
		require.NoError(t, err)
		rep, err := ctrl.ParseServiceReply(buf[:n])
		require.NoError(t, err)
		require.Equal(t, ctrl.StatusOK, rep.Status)
	}
	require.Equal(t, 4, r.ch.Active())

	_, err := r.client.DeviceID(t.Context())
	require.ErrorIs(t, err, ctrl.ErrBusy, "all slots taken")

	require.NoError(t, r.client.ResetAll(t.Context()))
	assert.Zero(t, r.ch.Active())
	id, err := r.client.DeviceID(t.Context())
	require.NoError(t, err)
	assert.Equal(t, testDeviceID, id)
}

func TestSlowHandlerTimesOut(t *testing.T) {
	r := newRig(t, rigOpt{timeout: 60 * time.Millisecond})
	slow := make(chan struct{})
	r.dev.slow = slow
	t.Cleanup(func() { close(slow) })

	_, _, err := r.client.Request(t.Context(), ctrl.ReqEcho, []byte("hi"))
	require.ErrorIs(t, err, ctrl.ErrTimeout)
	assert.Contains(t, err.Error(), "timed out")
	assert.Zero(t, r.ch.Active(), "the client RESET its abandoned request")

	// The device is still usable.
	_, err = r.client.SystemVersion(t.Context())
	assert.ErrorIs(t, err, ctrl.ErrTimeout, "handler is still blocked: requests queue behind it, like Device OS's system thread")
}

func TestOutNeedsDataQuirk(t *testing.T) {
	resets := 0
	r := newRig(t, rigOpt{outNeedsData: true, legacyReset: func() { resets++ }})

	// Without the quirk the empty OUT transfer is never seen by the device.
	err := r.client.LegacyReset(t.Context())
	require.ErrorIs(t, err, ctrldev.ErrStall)
	assert.Zero(t, resets)

	quirky := ctrl.New(r.ad, ctrl.Options{OutNeedsData: true, Sleep: fastSleep})
	require.NoError(t, quirky.LegacyReset(t.Context()))
	assert.Equal(t, 1, resets)
	trs := r.ad.transfers()
	last := trs[len(trs)-1]
	assert.Equal(t, ctrl.RequestTypeOut, last.rType)
	assert.Equal(t, ctrl.LegacyRequest, last.request)
	assert.Equal(t, ctrl.ReqReset, last.idx)
	assert.Equal(t, []byte{0}, last.data, "one byte stands in for the missing data stage")

	// The rest of the protocol is unaffected by the quirk.
	id, err := quirky.DeviceID(t.Context())
	require.NoError(t, err)
	assert.Equal(t, testDeviceID, id)
	require.NoError(t, quirky.UpdateFirmware(t.Context(), bytes.Repeat([]byte{7}, 3000), nil))
}

func TestUpdateFirmwareStreamsImage(t *testing.T) {
	var validated []byte
	var written bytes.Buffer
	r := newRig(t, rigOpt{
		validate: func(img []byte) int32 { validated = img; return 0 },
		write: func(off uint32, chunk []byte) int32 {
			if int(off) != written.Len() {
				return ctrl.CodeInvalidArgument
			}
			written.Write(chunk)
			return 0
		},
	})
	image := make([]byte, 300*1024)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range image {
		image[i] = byte(rng.Uint32())
	}
	var calls [][2]int
	start := time.Now()
	err := r.client.UpdateFirmware(t.Context(), image, func(done, total int) { calls = append(calls, [2]int{done, total}) })
	require.NoError(t, err)
	t.Logf("300 KB update took %v", time.Since(start))

	assert.Equal(t, image, validated, "the device validated the exact image")
	assert.Equal(t, image, written.Bytes(), "the OTA area got the exact image")
	select {
	case got := <-r.applied:
		assert.Equal(t, image, got)
	default:
		t.Fatal("the update was not applied after FINISH completed")
	}

	data := r.dev.payloads[ctrl.ReqFirmwareUpdateData]
	require.Len(t, data, 300)
	for _, p := range data {
		chunk, err := ctrl.DecodeFirmwareUpdateData(p)
		require.NoError(t, err)
		assert.Len(t, chunk, 1024)
	}
	types := r.dev.types()
	assert.Equal(t, ctrl.ReqStartFirmwareUpdate, types[0])
	assert.Equal(t, ctrl.ReqFinishFirmwareUpdate, types[len(types)-1])
	assert.Equal(t, [][]byte{ctrl.EncodeStartFirmwareUpdate(uint32(len(image)), ctrl.FormatBIN)}, r.dev.payloads[ctrl.ReqStartFirmwareUpdate])
	require.Len(t, r.dev.payloads[ctrl.ReqFinishFirmwareUpdate], 1)
	assert.Empty(t, r.dev.payloads[ctrl.ReqFinishFirmwareUpdate][0], "validate_only=false is the empty message")

	require.Len(t, calls, 301)
	assert.Equal(t, [2]int{0, len(image)}, calls[0])
	assert.Equal(t, [2]int{len(image), len(image)}, calls[300])
	for i := 1; i < len(calls); i++ {
		assert.Greater(t, calls[i][0], calls[i-1][0])
	}
	assert.Zero(t, r.ch.Active())
}

func TestUpdateFirmwareValidationFailure(t *testing.T) {
	r := newRig(t, rigOpt{validate: func([]byte) int32 { return ctrl.CodeInvalidState }})
	err := r.client.UpdateFirmware(t.Context(), bytes.Repeat([]byte{1}, 5000), nil)
	require.Error(t, err)

	re, ok := ctrl.AsResultError(err)
	require.True(t, ok, "a ResultError is in the chain: %v", err)
	assert.Equal(t, ctrl.CodeInvalidState, re.Code)
	assert.Equal(t, "INVALID_STATE", re.Name())
	assert.Equal(t, "device refused the update: INVALID_STATE (-210)", err.Error())
	assert.Contains(t, remedy.Of(err), "platform")
	assert.Contains(t, remedy.Of(err), "DFU mode")

	types := r.dev.types()
	assert.Equal(t, ctrl.ReqCancelFirmwareUpdate, types[len(types)-1], "the update was cancelled")
	select {
	case <-r.applied:
		t.Fatal("a refused image was applied")
	default:
	}
	_, _, active := r.dev.fw.Progress()
	assert.False(t, active)
}

func TestUpdateFirmwareDataRejected(t *testing.T) {
	r := newRig(t, rigOpt{write: func(off uint32, _ []byte) int32 {
		if off >= 2048 {
			return ctrl.CodeIOError
		}
		return 0
	}})
	err := r.client.UpdateFirmware(t.Context(), bytes.Repeat([]byte{1}, 5000), nil)
	re, ok := ctrl.AsResultError(err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, ctrl.CodeIOError, re.Code)
	assert.Contains(t, err.Error(), "at byte 2048 of 5000")
	assert.NotEmpty(t, remedy.Of(err))
	types := r.dev.types()
	assert.Equal(t, ctrl.ReqCancelFirmwareUpdate, types[len(types)-1])
}

func TestUpdateFirmwareStartRefused(t *testing.T) {
	r := newRig(t, rigOpt{})
	r.dev.fw.Prepare = func(uint32) int32 { return ctrl.CodeTooLarge }
	err := r.client.UpdateFirmware(t.Context(), []byte{1, 2, 3}, nil)
	re, ok := ctrl.AsResultError(err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, "TOO_LARGE", re.Name())
	assert.Contains(t, remedy.Of(err), "does not fit")
}

func TestConcurrentRequests(t *testing.T) {
	r := newRig(t, rigOpt{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := bytes.Repeat([]byte{byte(i)}, 10+i*20)
			_, rep, err := r.client.Request(t.Context(), ctrl.ReqEcho, payload)
			if err == nil && !bytes.Equal(rep, payload) {
				err = assert.AnError
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	assert.Zero(t, r.ch.Active())
}
