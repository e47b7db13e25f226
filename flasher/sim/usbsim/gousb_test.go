//go:build !windows

// gousb (libusb) has no Windows build here: Windows reaches devices through flasher/usb's WinUSB backend.

package usbsim_test

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
)

// The gousb side runs in a child process, this test binary re-executed by
// Server.TestCommand (the dynamic loader reads LD_LIBRARY_PATH only at process start, so
// only a new process loads the shim). The child, TestGousbProbeChild, keeps opened
// devices between requests so a test can unplug a device while gousb holds it open. It
// takes one JSON request per line on stdin and answers each with one JSON line:
//
//	open     {vid, pid}  open every matching device (pid 0: any); reply devices + err
//	control  {serial, rt, req, val, idx, len, data}  Device.Control; reply n, data, err
//	alt      {serial, intf, alt}  Config(1) then Interface(intf, alt); reply err
//	close    {}  close every open device
//	exit     {}  close the context and exit

const probeChild = "TestGousbProbeChild"

type probe struct {
	t   *testing.T
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

type probeRequest struct {
	Op     string `json:"op"`
	VID    int    `json:"vid"`
	PID    int    `json:"pid"`
	Serial string `json:"serial"`
	RT     uint8  `json:"rt"`
	Req    uint8  `json:"req"`
	Val    uint16 `json:"val"`
	Idx    uint16 `json:"idx"`
	Len    int    `json:"len"`
	Data   []byte `json:"data"`
	Intf   int    `json:"intf"`
	Alt    int    `json:"alt"`
}

type probeErrInfo struct {
	Msg  string          `json:"msg"`
	Code int             `json:"code"` // the gousb.Error, if it is one
	Is   map[string]bool `json:"is"`   // errors.Is against the gousb errors
}

type probeAlt struct {
	Config int    `json:"config"`
	Intf   int    `json:"intf"`
	Alt    int    `json:"alt"`
	Class  int    `json:"class"`
	Name   string `json:"name"`
}

type probeDev struct {
	Bus          int        `json:"bus"`
	Address      int        `json:"address"`
	Path         []int      `json:"path"`
	Speed        string     `json:"speed"`
	VID          int        `json:"vid"`
	PID          int        `json:"pid"`
	Manufacturer string     `json:"manufacturer"`
	Product      string     `json:"product"`
	Serial       string     `json:"serial"`
	ActiveConfig int        `json:"active_config"`
	Alts         []probeAlt `json:"alts"`
	Err          string     `json:"err,omitempty"`
}

type probeReply struct {
	Devices []probeDev    `json:"devices,omitempty"`
	N       int           `json:"n"`
	Data    []byte        `json:"data,omitempty"`
	Err     *probeErrInfo `json:"err,omitempty"`
}

// startProbe starts the gousb child against srv.
func startProbe(t *testing.T, srv *usbsim.Server) *probe {
	t.Helper()
	cmd := srv.TestCommand(probeChild)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &probe{t: t, cmd: cmd, in: in, out: bufio.NewScanner(out)}
	p.out.Buffer(nil, 1<<20)
	t.Cleanup(func() {
		_ = in.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			assert.NoError(t, err, "gousb probe exit")
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("gousb probe did not exit")
		}
	})
	return p
}

// do sends one request and waits (at most 10 s) for the reply.
func (p *probe) do(req map[string]any) probeReply {
	p.t.Helper()
	b, err := json.Marshal(req)
	require.NoError(p.t, err)
	_, err = p.in.Write(append(b, '\n'))
	require.NoError(p.t, err)
	got := make(chan bool, 1)
	go func() { got <- p.out.Scan() }()
	select {
	case ok := <-got:
		require.True(p.t, ok, "gousb probe closed its output: %v", p.out.Err())
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		p.t.Fatalf("gousb probe did not answer %s", b)
	}
	var rep probeReply
	require.NoError(p.t, json.Unmarshal(p.out.Bytes(), &rep), "%s", p.out.Bytes())
	return rep
}

func (p *probe) open(vid, pid int) probeReply {
	return p.do(map[string]any{"op": "open", "vid": vid, "pid": pid})
}

func (p *probe) control(serial string, rt, req uint8, val, idx uint16, length int) probeReply {
	return p.do(map[string]any{"op": "control", "serial": serial, "rt": rt, "req": req, "val": val, "idx": idx, "len": length})
}

func bySerial(devs []probeDev) map[string]probeDev {
	m := map[string]probeDev{}
	for _, d := range devs {
		m[d.Serial] = d
	}
	return m
}

func TestGousbEnumeratesTwoDevices(t *testing.T) {
	srv := newServer(t)
	a := newDFUDevice("e00fce68d1234567890abcde", 0xd00d)
	b := newDFUDevice("e00fce68aaaaaaaaaaaaaaaa", 0xd00d)
	srv.Add(a)
	srv.Add(b)
	p := startProbe(t, srv)

	rep := p.open(0x2b04, 0)
	require.Nil(t, rep.Err)
	require.Len(t, rep.Devices, 2)
	devs := bySerial(rep.Devices)
	for _, serial := range []string{"e00fce68d1234567890abcde", "e00fce68aaaaaaaaaaaaaaaa"} {
		d, ok := devs[serial]
		require.True(t, ok, "device %s not enumerated: %+v", serial, rep.Devices)
		assert.Empty(t, d.Err)
		assert.Equal(t, 0x2b04, d.VID)
		assert.Equal(t, 0xd00d, d.PID)
		assert.Equal(t, "Boron DFU Mode", d.Product)
		assert.Equal(t, "Particle", d.Manufacturer)
		assert.Equal(t, 1, d.Bus)
		assert.Equal(t, "full", d.Speed)
		assert.Equal(t, 1, d.ActiveConfig)
		assert.Equal(t, []probeAlt{
			{1, 0, 0, 0xFE, layoutInternal},
			{1, 0, 1, 0xFE, layoutDCT},
			{1, 0, 2, 0xFE, layoutExternal},
		}, d.Alts)

		// the Particle vendor request: device ID
		r := p.control(serial, 0xC0, vendorRequest, 0, reqDeviceID, 64)
		require.Nil(t, r.Err)
		assert.Equal(t, 12, r.N)
		assert.Equal(t, serial, hex.EncodeToString(r.Data))
	}
	assert.NotEqual(t, devs["e00fce68d1234567890abcde"].Address, devs["e00fce68aaaaaaaaaaaaaaaa"].Address)
	assert.NotEqual(t, devs["e00fce68d1234567890abcde"].Path, devs["e00fce68aaaaaaaaaaaaaaaa"].Path)

	// claim + alt setting reach the device as SET_INTERFACE
	r := p.do(map[string]any{"op": "alt", "serial": "e00fce68aaaaaaaaaaaaaaaa", "intf": 0, "alt": 2})
	require.Nil(t, r.Err)
	assert.Equal(t, uint8(2), b.desc.Alt(0))
	assert.Equal(t, uint8(0), a.desc.Alt(0))
}

func TestGousbErrors(t *testing.T) {
	srv := newServer(t)
	ok := newDFUDevice("e00fce68d1234567890abcde", 0xd00d)
	locked := newDFUDevice("e00fce68bbbbbbbbbbbbbbbb", 0xd00d)
	locked.openErr = usbsim.ErrAccess
	srv.Add(ok)
	srv.Add(locked)
	p := startProbe(t, srv)

	// Open returning ErrAccess surfaces as LIBUSB_ERROR_ACCESS; the other device still opens
	rep := p.open(0x2b04, 0)
	require.NotNil(t, rep.Err)
	assert.True(t, rep.Err.Is["access"], "errors.Is(err, gousb.ErrorAccess): %+v", rep.Err)
	require.Len(t, rep.Devices, 1)
	serial := rep.Devices[0].Serial
	assert.Equal(t, "e00fce68d1234567890abcde", serial)

	// a STALL is LIBUSB_ERROR_PIPE
	r := p.control(serial, 0xC0, reqAlwaysStall, 0, 0, 8)
	require.NotNil(t, r.Err)
	assert.True(t, r.Err.Is["pipe"], "errors.Is(err, gousb.ErrorPipe): %+v", r.Err)

	// still fine after the stall
	r = p.control(serial, 0xA1, dfuGetStatus, 0, 0, 6)
	require.Nil(t, r.Err)
	assert.Equal(t, []byte{0, 0, 0, 0, dfuIdle, 0}, r.Data)

	// unplugged while open: LIBUSB_ERROR_NO_DEVICE
	srv.Remove(ok)
	r = p.control(serial, 0xA1, dfuGetStatus, 0, 0, 6)
	require.NotNil(t, r.Err)
	assert.True(t, r.Err.Is["no_device"], "errors.Is(err, gousb.ErrorNoDevice): %+v", r.Err)
	p.do(map[string]any{"op": "close"})

	// and it is no longer enumerated
	rep = p.open(0x2b04, 0)
	assert.Empty(t, rep.Devices)
	assert.True(t, rep.Err != nil && rep.Err.Is["access"], "%+v", rep.Err)
}

func TestGousbSeesReplugWithNewPID(t *testing.T) {
	srv := newServer(t)
	dev := newDFUDevice("e00fce68d1234567890abcde", 0xc00d) // normal mode PID
	srv.Add(dev)
	p := startProbe(t, srv)

	rep := p.open(0x2b04, 0)
	require.Nil(t, rep.Err)
	require.Len(t, rep.Devices, 1)
	before := rep.Devices[0]
	assert.Equal(t, 0xc00d, before.PID)
	p.do(map[string]any{"op": "close"})

	dev.setPID(0xd00d) // it resets into DFU mode
	oldKey, _ := srv.Key(dev)
	srv.Remove(dev)
	rep = p.open(0x2b04, 0)
	assert.Empty(t, rep.Devices, "a removed device must not be listed")
	newKey := srv.Add(dev)
	assert.NotEqual(t, oldKey, newKey)

	rep = p.open(0x2b04, 0)
	require.Nil(t, rep.Err)
	require.Len(t, rep.Devices, 1)
	after := rep.Devices[0]
	assert.Equal(t, 0xd00d, after.PID)
	assert.Equal(t, "e00fce68d1234567890abcde", after.Serial)
	assert.NotEqual(t, before.Address, after.Address, "re-enumeration gets a new address")
	assert.Equal(t, before.Path, after.Path, "same physical port")
	p.do(map[string]any{"op": "close"})

	// Replug does the same in one step
	dev.setPID(0xc00d)
	srv.Replug(dev)
	rep = p.open(0x2b04, 0)
	require.Len(t, rep.Devices, 1)
	assert.Equal(t, 0xc00d, rep.Devices[0].PID)
}
