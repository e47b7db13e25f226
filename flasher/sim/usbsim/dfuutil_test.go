package usbsim_test

import (
	"github.com/particle-flasher/particle-flasher/internal/testshared"

	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
)

// dfuUtil runs the Debian dfu-util through the libusb shim and returns its output.
func dfuUtil(t *testing.T, srv *usbsim.Server, args ...string) string {
	t.Helper()
	return testshared.RunDfuUtil(t, srv.Env(), 10*time.Second, args...)
}

var foundLines = testshared.FoundDFU

func lineWith(lines []string, sub string) string {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

func TestDFUUtilListsSimulatedDevice(t *testing.T) {
	srv := newServer(t)
	dev := newDFUDevice("e00fce68d1234567890abcde", 0xd00d)
	srv.Add(dev)

	out := dfuUtil(t, srv, "-l")
	lines := foundLines(out)
	require.Len(t, lines, 3, out)
	// dfu-util 0.11 prints the alt settings last to first; match them by number
	for alt, name := range []string{layoutInternal, layoutDCT, layoutExternal} {
		l := lineWith(lines, fmt.Sprintf("alt=%d,", alt))
		require.NotEmpty(t, l, "no line for alt %d in:\n%s", alt, out)
		assert.Contains(t, l, "[2b04:d00d]")
		assert.Contains(t, l, "ver=0251")
		assert.Contains(t, l, "cfg=1, intf=0")
		assert.Contains(t, l, `path="1-1"`)
		assert.Contains(t, l, `name="`+name+`"`)
		assert.Contains(t, l, `serial="e00fce68d1234567890abcde"`)
	}
	// dfu-util read the strings with raw GET_DESCRIPTOR requests
	var sawString bool
	for _, s := range dev.requests() {
		sawString = sawString || (s.Request == usbsim.ReqGetDescriptor && s.Value>>8 == usbsim.DescString)
	}
	assert.True(t, sawString, "dfu-util should have read string descriptors from the device")
}

func TestDFUUtilListsTwoDevices(t *testing.T) {
	srv := newServer(t)
	srv.Add(newDFUDevice("e00fce68d1234567890abcde", 0xd00d))
	srv.Add(newDFUDevice("e00fce68aaaaaaaaaaaaaaaa", 0xd00d))

	out := dfuUtil(t, srv, "-l")
	lines := foundLines(out)
	require.Len(t, lines, 6, out)
	assert.Equal(t, 3, strings.Count(out, `serial="e00fce68d1234567890abcde"`), out)
	assert.Equal(t, 3, strings.Count(out, `serial="e00fce68aaaaaaaaaaaaaaaa"`), out)
	assert.Contains(t, out, `path="1-1"`)
	assert.Contains(t, out, `path="1-2"`)
}

func TestDFUUtilWithoutServerListsNothing(t *testing.T) {
	srv := newServer(t)
	env := srv.Env()
	require.NoError(t, srv.Close()) // the socket is gone: the shim must still work
	path := testshared.DfuUtil(t)
	cmd := exec.Command(path, "-l")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Empty(t, foundLines(string(out)), "%s", out)
}

// noExtraDevice hides the DFU functional descriptor from the configuration
// descriptor, so dfu-util must ask the device for it with GET_DESCRIPTOR(0x21).
type noExtraDevice struct{ *dfuDevice }

func (d *noExtraDevice) Info() usbsim.DeviceInfo {
	info := d.dfuDevice.Info()
	cfg := info.Config[:len(info.Config)-9] // the functional descriptor comes last
	binary.LittleEndian.PutUint16(cfg[2:], uint16(len(cfg)))
	info.Config = cfg
	return info
}

func TestDFUUtilFetchesFunctionalDescriptor(t *testing.T) {
	srv := newServer(t)
	dev := &noExtraDevice{newDFUDevice("e00fce68d1234567890abcde", 0xd00d)}
	srv.Add(dev)

	out := dfuUtil(t, srv, "-l")
	assert.Len(t, foundLines(out), 3, out)
	assert.NotContains(t, out, "no DFU functional descriptor")
	var asked bool
	for _, s := range dev.requests() {
		asked = asked || (s.RequestType == 0x80 && s.Request == usbsim.ReqGetDescriptor && s.Value == usbsim.DescDFU<<8)
	}
	assert.True(t, asked, "dfu-util should have asked for descriptor 0x21: %v", dev.requests())
}

// TestReexecChild shows the re-exec pattern: the child process inherits the
// shim on LD_LIBRARY_PATH and the socket, so libusb callers it starts (or
// gousb in it) see the parent's devices.
func TestReexecChild(t *testing.T) {
	if usbsim.InChild(t.Name()) {
		assert.Contains(t, os.Getenv("LD_LIBRARY_PATH"), filepath.Dir(os.Getenv("PFLASH_USBSIM_SHIM_UNDER_TEST")))
		path := testshared.DfuUtil(t)
		out, err := exec.Command(path, "-l").CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), `serial="e00fce68cccccccccccccccc"`)
		return
	}
	srv := newServer(t)
	srv.Add(newDFUDevice("e00fce68cccccccccccccccc", 0xd00d))
	cmd := srv.TestCommand(t.Name(), "-test.v")
	cmd.Env = append(cmd.Env, "PFLASH_USBSIM_SHIM_UNDER_TEST="+shimPath)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "--- PASS: "+t.Name())
}

// memDFUDevice is a plain DFU 1.1 device (no DfuSe) holding one memory
// image: enough DFU for dfu-util -D and -U, to push large control transfers
// both ways through the shim.
type memDFUDevice struct {
	desc *usbsim.Descriptors

	mu    sync.Mutex
	mem   []byte
	off   int
	state byte
}

func newMemDFUDevice() *memDFUDevice {
	return &memDFUDevice{state: dfuIdle, desc: &usbsim.Descriptors{
		VID: 0x2b04, PID: 0xd00d, Product: "plain DFU", Serial: "e00fce68dddddddddddddddd",
		Interfaces: []usbsim.Interface{{
			Class: 0xFE, SubClass: 1, Protocol: 2,
			Alts:  []usbsim.AltSetting{{Name: "image"}},
			Extra: usbsim.DFUFunctionalDescriptor(0x07, 255, 4096, 0x0110), // can download, upload; manifestation tolerant
		}},
	}}
}

func (d *memDFUDevice) Info() usbsim.DeviceInfo { return d.desc.Info() }
func (d *memDFUDevice) Open() error             { return nil }

func (d *memDFUDevice) Control(s usbsim.Setup, data []byte) (int, error) {
	const (
		dnload, upload, getStatus, clrStatus, getState, abort = 1, 2, 3, 4, 5, 6
		dnloadIdle, manifest, uploadIdle                      = 5, 7, 9
	)
	d.mu.Lock()
	defer d.mu.Unlock()
	if n, ok, err := d.desc.HandleStandard(s, data); ok {
		return n, err
	}
	switch {
	case s.RequestType == 0xA1 && s.Request == getStatus:
		st := d.state
		if st == manifest {
			d.state = dfuIdle
		}
		return copy(data, []byte{0, 0, 0, 0, st, 0}), nil
	case s.RequestType == 0xA1 && s.Request == getState:
		return copy(data, []byte{d.state}), nil
	case s.RequestType == 0x21 && s.Request == dnload:
		if d.state == dfuIdle {
			d.mem = d.mem[:0]
		}
		if s.Length == 0 {
			d.state = manifest
			return 0, nil
		}
		d.mem = append(d.mem, data...)
		d.state = dnloadIdle
		return 0, nil
	case s.RequestType == 0xA1 && s.Request == upload:
		if d.state == dfuIdle {
			d.off = 0
		}
		n := copy(data, d.mem[d.off:])
		d.off += n
		d.state = uploadIdle
		if n < len(data) {
			d.state = dfuIdle
		}
		return n, nil
	case s.RequestType == 0x21 && (s.Request == abort || s.Request == clrStatus):
		d.state = dfuIdle
		return 0, nil
	}
	return 0, usbsim.ErrStall
}

func TestDFUUtilDownloadUpload(t *testing.T) {
	srv := newServer(t)
	d := newMemDFUDevice()
	srv.Add(d)
	image := make([]byte, 10000) // 4096 + 4096 + 1808
	for i := range image {
		image[i] = byte(i*7 + i>>8)
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.bin"), filepath.Join(dir, "out.bin")
	require.NoError(t, os.WriteFile(in, image, 0o644))

	log := dfuUtil(t, srv, "-d", "2b04:d00d", "-a", "0", "-D", in)
	assert.Contains(t, log, "Download done.")
	d.mu.Lock()
	assert.Equal(t, image, d.mem)
	d.mu.Unlock()

	log = dfuUtil(t, srv, "-d", "2b04:d00d", "-a", "0", "-U", out)
	assert.Contains(t, log, "Received a total of 10000 bytes")
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, image, got)
}
