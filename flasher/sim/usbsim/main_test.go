package usbsim_test

import (
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
)

// shimPath is the shim built for this test binary.
var shimPath string

func TestMain(m *testing.M) {
	if usbsim.IsChild() { // re-executed by Server.TestCommand: the parent built the shim
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "usbsim-shim")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shimPath, err = usbsim.BuildShim(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// Gen3 DfuSe memory layouts, as a Boron's bootloader names its alt settings.
const (
	layoutInternal = "@Internal Flash   /0x00000000/1*004Ka,47*004Kg,192*004Kg,4*004Kg,4*004Kg,8*004Ka"
	layoutDCT      = "@DCT Flash   /0x00000000/1*016Ke"
	layoutExternal = "@External Flash   /0x80000000/1024*004Kg"
)

// DFU and Particle requests the test device answers.
const (
	dfuGetStatus = 3
	dfuGetState  = 5
	dfuIdle      = 2

	vendorIn       = 0xC0
	vendorRequest  = 0x50 // Particle control request
	reqDeviceID    = 20   // wIndex: get the device ID
	reqAlwaysStall = 0x51 // bRequest the test device STALLs
)

// dfuDevice is a minimal Boron in DFU mode: descriptors, DFU GETSTATUS and
// GETSTATE (always dfuIDLE), and the vendor request that returns its device
// ID.
type dfuDevice struct {
	desc    *usbsim.Descriptors
	openErr error

	mu   sync.Mutex
	seen []usbsim.Setup
}

func newDFUDevice(serial string, pid uint16) *dfuDevice {
	return &dfuDevice{desc: &usbsim.Descriptors{
		VID: 0x2b04, PID: pid, BCDDevice: 0x0251,
		Manufacturer: "Particle", Product: "Boron DFU Mode", Serial: serial,
		Interfaces: []usbsim.Interface{{
			Number: 0, Class: 0xFE, SubClass: 1, Protocol: 2,
			Alts:  []usbsim.AltSetting{{Alt: 0, Name: layoutInternal}, {Alt: 1, Name: layoutDCT}, {Alt: 2, Name: layoutExternal}},
			Extra: usbsim.DFUFunctionalDescriptor(0x0B, 0xFF, 4096, 0x011A),
		}},
	}}
}

func (d *dfuDevice) Info() usbsim.DeviceInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.desc.Info()
}

// setPID changes the product ID the device enumerates with next time.
func (d *dfuDevice) setPID(pid uint16) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.desc.PID = pid
}

func (d *dfuDevice) Open() error { return d.openErr }

func (d *dfuDevice) Control(s usbsim.Setup, data []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen = append(d.seen, s)
	if n, ok, err := d.desc.HandleStandard(s, data); ok {
		return n, err
	}
	switch {
	case s.RequestType == 0xA1 && s.Request == dfuGetStatus:
		// bStatus OK, bwPollTimeout 0, bState dfuIDLE, iString 0
		return copy(data, []byte{0, 0, 0, 0, dfuIdle, 0}), nil
	case s.RequestType == 0xA1 && s.Request == dfuGetState:
		return copy(data, []byte{dfuIdle}), nil
	case s.RequestType == vendorIn && s.Request == vendorRequest && s.Index == reqDeviceID:
		id, err := hex.DecodeString(d.desc.Serial)
		if err != nil {
			return 0, usbsim.ErrIO
		}
		return copy(data, id), nil
	}
	return 0, usbsim.ErrStall
}

// requests returns the control requests the device has seen.
func (d *dfuDevice) requests() []usbsim.Setup {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]usbsim.Setup(nil), d.seen...)
}

func newServer(t *testing.T) *usbsim.Server {
	t.Helper()
	srv, err := usbsim.NewServer("")
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}
