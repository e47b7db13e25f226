package usbsim_test

import (
	"encoding/binary"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
)

// wire is a Go client of the shim's protocol, to test the Server's side of
// it directly.
type wire struct {
	t *testing.T
	c net.Conn
}

func dial(t *testing.T, srv *usbsim.Server) *wire {
	t.Helper()
	c, err := net.Dial("unix", srv.Path())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return &wire{t, c}
}

func (w *wire) call(op byte, payload ...byte) (int32, []byte) {
	w.t.Helper()
	req := binary.LittleEndian.AppendUint32(nil, uint32(1+len(payload)))
	req = append(append(req, op), payload...)
	_, err := w.c.Write(req)
	require.NoError(w.t, err)
	var hdr [4]byte
	_, err = io.ReadFull(w.c, hdr[:])
	require.NoError(w.t, err)
	resp := make([]byte, binary.LittleEndian.Uint32(hdr[:]))
	_, err = io.ReadFull(w.c, resp)
	require.NoError(w.t, err)
	require.Equal(w.t, op, resp[0], "op echoed")
	return int32(binary.LittleEndian.Uint32(resp[1:])), resp[5:]
}

func keyBytes(key uint32, rest ...byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, key), rest...)
}

func (w *wire) control(key uint32, s usbsim.Setup, timeoutMS uint32, out []byte) (int32, []byte) {
	p := keyBytes(key, s.RequestType, s.Request)
	p = binary.LittleEndian.AppendUint16(p, s.Value)
	p = binary.LittleEndian.AppendUint16(p, s.Index)
	p = binary.LittleEndian.AppendUint16(p, s.Length)
	p = binary.LittleEndian.AppendUint32(p, timeoutMS)
	return w.call(10, append(p, out...)...)
}

type listed struct {
	key                  uint32
	bus, addr, speed     uint8
	ports, desc, configs []byte
}

func (w *wire) list() []listed {
	st, b := w.call(1)
	require.Equal(w.t, int32(0), st)
	n := binary.LittleEndian.Uint32(b)
	b = b[4:]
	var out []listed
	for range n {
		d := listed{key: binary.LittleEndian.Uint32(b), bus: b[4], addr: b[5], speed: b[6]}
		np := int(b[7])
		d.ports = b[8 : 8+np]
		d.desc = b[8+np : 8+np+18]
		b = b[8+np+18:]
		cl := int(binary.LittleEndian.Uint32(b))
		d.configs = b[4 : 4+cl]
		b = b[4+cl:]
		out = append(out, d)
	}
	require.Empty(w.t, b)
	return out
}

// fixedDevice enumerates with a given bus and port path.
type fixedDevice struct {
	*dfuDevice
	bus   uint8
	ports []uint8
}

func (d *fixedDevice) Info() usbsim.DeviceInfo {
	info := d.dfuDevice.Info()
	info.Bus, info.Ports, info.Speed = d.bus, d.ports, usbsim.SpeedHigh
	return info
}

func TestServerListRecords(t *testing.T) {
	srv := newServer(t)
	a := &fixedDevice{newDFUDevice("e00fce68d1234567890abcde", 0xd00d), 3, []uint8{1, 4}}
	b := newDFUDevice("e00fce68aaaaaaaaaaaaaaaa", 0xc00d)
	ka, kb := srv.Add(a), srv.Add(b)
	assert.NotEqual(t, ka, kb)
	assert.Equal(t, ka, srv.Add(a), "adding a present device again keeps its key")

	w := dial(t, srv)
	l := w.list()
	require.Len(t, l, 2)
	assert.Equal(t, listed{ka, 3, 2, usbsim.SpeedHigh, []byte{1, 4}, a.desc.DeviceDescriptor(), a.desc.ConfigDescriptor()}, l[0])
	assert.Equal(t, listed{kb, 1, 2, usbsim.SpeedFull, []byte{1}, b.desc.DeviceDescriptor(), b.desc.ConfigDescriptor()}, l[1])

	srv.Remove(a)
	srv.Remove(a) // absent: nothing happens
	l = w.list()
	require.Len(t, l, 1)
	assert.Equal(t, kb, l[0].key)
	kb2 := srv.Replug(b)
	l = w.list()
	require.Len(t, l, 1)
	assert.Equal(t, kb2, l[0].key)
	assert.NotEqual(t, kb, kb2)
	assert.Equal(t, uint8(3), l[0].addr, "a fresh address on re-enumeration")
	assert.Equal(t, []byte{1}, l[0].ports, "the same port")

	// requests with a stale key: NO_DEVICE
	st, _ := w.call(2, keyBytes(kb)...)
	assert.Equal(t, int32(-4), st)
}

// blockingDevice blocks in Control until release is closed.
type blockingDevice struct {
	*dfuDevice
	entered chan struct{}
	release chan struct{}
}

func (d *blockingDevice) Control(s usbsim.Setup, data []byte) (int, error) {
	if s.RequestType == 0xC0 && s.Request == 0x7F {
		d.entered <- struct{}{}
		<-d.release
		return 0, nil
	}
	return d.dfuDevice.Control(s, data)
}

func TestServerControlTimeoutAndUnplug(t *testing.T) {
	srv := newServer(t)
	d := &blockingDevice{newDFUDevice("e00fce68d1234567890abcde", 0xd00d), make(chan struct{}, 4), make(chan struct{})}
	key := srv.Add(d)
	w := dial(t, srv)
	slow := usbsim.Setup{RequestType: 0xC0, Request: 0x7F, Length: 4}

	st, _ := w.control(key, slow, 50, nil)
	assert.Equal(t, int32(-7), st, "LIBUSB_ERROR_TIMEOUT: the transfer's own timeout, not the device, ended it")
	<-d.entered

	// an in-flight transfer (no timeout) fails with NO_DEVICE when the device is unplugged
	done := make(chan int32, 1)
	go func() {
		st, _ := w.control(key, slow, 0, nil)
		done <- st
	}()
	time.Sleep(20 * time.Millisecond) // let it queue behind the first
	srv.Remove(d)
	select {
	case st := <-done:
		assert.Equal(t, int32(-4), st, "LIBUSB_ERROR_NO_DEVICE")
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight transfer not failed by unplug")
	}
	close(d.release)

	st, _ = dial(t, srv).control(key, usbsim.Setup{RequestType: 0xA1, Request: dfuGetState, Length: 1}, 0, nil)
	assert.Equal(t, int32(-4), st)
}

func TestServerControlInAndOut(t *testing.T) {
	srv := newServer(t)
	d := newDFUDevice("e00fce68d1234567890abcde", 0xd00d)
	key := srv.Add(d)
	w := dial(t, srv)

	st, data := w.control(key, usbsim.Setup{RequestType: 0x80, Request: usbsim.ReqGetDescriptor, Value: 0x0200, Length: 9}, 1000, nil)
	assert.Equal(t, int32(9), st)
	assert.Equal(t, d.desc.ConfigDescriptor()[:9], data)

	// OUT: the payload reaches the device; the status is wLength
	out := usbsim.Setup{RequestType: 0x21, Request: 1, Value: 2, Length: 3} // DFU DNLOAD (stalled by this device)
	st, _ = w.control(key, out, 1000, []byte{1, 2, 3})
	assert.Equal(t, int32(-9), st, "LIBUSB_ERROR_PIPE")
	seen := d.requests()
	assert.Equal(t, out, seen[len(seen)-1])

	st, _ = w.control(key, usbsim.Setup{RequestType: 0x00, Request: usbsim.ReqSetFeature, Value: 1}, 1000, nil)
	assert.Equal(t, int32(0), st)
}

func TestServerInterfacesAndConfiguration(t *testing.T) {
	srv := newServer(t)
	d := newDFUDevice("e00fce68d1234567890abcde", 0xd00d)
	key := srv.Add(d)
	w1, w2 := dial(t, srv), dial(t, srv)

	st, _ := w1.call(8, keyBytes(key)...)
	assert.Equal(t, int32(1), st, "GET_CONFIG")

	st, _ = w1.call(6, keyBytes(key, 0, 1)...)
	assert.Equal(t, int32(-5), st, "SET_ALT without a claim")
	st, _ = w1.call(4, keyBytes(key, 5, 0)...)
	assert.Equal(t, int32(-5), st, "no interface 5")
	st, _ = w1.call(4, keyBytes(key, 0, 0)...)
	assert.Equal(t, int32(0), st)
	st, _ = w2.call(4, keyBytes(key, 0, 0)...)
	assert.Equal(t, int32(-6), st, "claimed by another process")
	st, _ = w1.call(6, keyBytes(key, 0, 2)...)
	assert.Equal(t, int32(0), st)
	assert.Equal(t, uint8(2), d.desc.Alt(0))
	st, _ = w1.call(6, keyBytes(key, 0, 7)...)
	assert.Equal(t, int32(-5), st, "no alt 7")
	st, _ = w1.call(7, keyBytes(key, 1, 0, 0, 0)...)
	assert.Equal(t, int32(-6), st, "SET_CONFIG with a claimed interface")

	require.NoError(t, w1.c.Close()) // a process that exits releases its claims
	require.Eventually(t, func() bool {
		st, _ := w2.call(4, keyBytes(key, 0, 0)...)
		return st == 0
	}, 10*time.Second, 10*time.Millisecond)
	st, _ = w2.call(5, keyBytes(key, 0, 0)...)
	assert.Equal(t, int32(0), st)

	st, _ = w2.call(7, keyBytes(key, 0, 0, 0, 0)...)
	assert.Equal(t, int32(0), st)
	st, _ = w2.call(8, keyBytes(key)...)
	assert.Equal(t, int32(0), st)
	assert.Equal(t, uint8(0), d.desc.Configuration())
	st, _ = w2.call(7, keyBytes(key, 2, 0, 0, 0)...)
	assert.Equal(t, int32(-5), st, "no configuration 2")
}

// resettingDevice re-enumerates (as another PID) when reset.
type resettingDevice struct {
	*dfuDevice
	srv *usbsim.Server
}

func (d *resettingDevice) Reset() error {
	d.setPID(0xc00d)
	d.srv.Replug(d)
	return nil
}

func TestServerResetReenumerates(t *testing.T) {
	srv := newServer(t)
	d := &resettingDevice{newDFUDevice("e00fce68d1234567890abcde", 0xd00d), srv}
	key := srv.Add(d)
	plain := newDFUDevice("e00fce68aaaaaaaaaaaaaaaa", 0xd00d)
	plainKey := srv.Add(plain)
	w := dial(t, srv)

	st, _ := w.call(9, keyBytes(plainKey)...)
	assert.Equal(t, int32(0), st, "a device without Reset just resets")
	st, _ = w.call(9, keyBytes(key)...)
	assert.Equal(t, int32(-5), st, "re-enumerated: LIBUSB_ERROR_NOT_FOUND")
	// The reset answers as soon as the old enumeration is gone; the new one appears a
	// moment later, as on a real bus.
	var newKey uint32
	require.Eventually(t, func() bool {
		var ok bool
		newKey, ok = srv.Key(d)
		return ok
	}, 10*time.Second, time.Millisecond, "the device comes back after its reset")
	assert.NotEqual(t, key, newKey)
	for _, l := range w.list() {
		if l.key == newKey {
			assert.Equal(t, uint16(0xc00d), binary.LittleEndian.Uint16(l.desc[10:]))
		}
	}
}

func TestNewServerSocketPath(t *testing.T) {
	_, err := usbsim.NewServer("/tmp/" + strings.Repeat("x", 110))
	assert.ErrorContains(t, err, "must be under 108")

	srv := newServer(t)
	assert.Less(t, len(srv.Path()), 108)
	env := srv.Env()
	require.Len(t, env, 2)
	assert.True(t, strings.HasPrefix(env[0], "LD_LIBRARY_PATH="+filepath.Dir(shimPath)), "the shim's directory comes first: %s", env[0])
	assert.Equal(t, usbsim.EnvSocket+"="+srv.Path(), env[1])
	require.NoError(t, srv.Close())
	require.NoError(t, srv.Close(), "Close twice")
	_, err = net.Dial("unix", srv.Path())
	assert.Error(t, err, "socket removed")
}

func TestServerCloseDoesNotWaitForStuckDevice(t *testing.T) {
	srv, err := usbsim.NewServer("")
	require.NoError(t, err)
	d := &blockingDevice{newDFUDevice("e00fce68d1234567890abcde", 0xd00d), make(chan struct{}, 1), make(chan struct{})}
	defer close(d.release)
	key := srv.Add(d)
	w := dial(t, srv)
	go func() {
		p := keyBytes(key, 0xC0, 0x7F, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0) // no timeout
		req := binary.LittleEndian.AppendUint32(nil, uint32(1+len(p)))
		_, _ = w.c.Write(append(append(req, 10), p...))
	}()
	<-d.entered
	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	select {
	case err := <-closed:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs on a device stuck in Control")
	}
}
