package usb

// The real Windows calls (sysWindows), run where Windows' APIs are: under Wine in
// `make windows-smoke`, on Windows itself. Wine's SetupAPI and configuration manager are
// real; its winusb.dll is stubs, so nothing here opens a device (the table tests in
// winusb_test.go cover that logic).

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSetupAPIListsWithoutError(t *testing.T) {
	var sys sysWindows
	present, err := sys.devNodes(true)
	require.NoError(t, err, "SetupDiGetClassDevsEx(USB, ALLCLASSES|PRESENT)")
	all, err := sys.devNodes(false)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(all), len(present), "remembered nodes include the present ones")
	for _, n := range present {
		_, ok := parseInstanceID(n.InstanceID)
		t.Logf("%s service=%q problem=%d ok=%v", n.InstanceID, n.Service, n.Problem, ok)
	}
	paths, err := sys.interfacePaths(guidParticleDFU, `USB\VID_2B04&PID_D00D\NOSUCHDEVICE`)
	if err == nil {
		assert.Empty(t, paths, "no interface for a device that is not there")
	}
	_, err = sys.interfacePaths("not a guid", "x")
	assert.Error(t, err)
}

func TestHostOnWindowsListsNoParticleDeviceHere(t *testing.T) {
	h, err := NewHost()
	require.NoError(t, err, "winusb.dll loads")
	defer h.Close()
	infos, err := h.List()
	require.NoError(t, err)
	for _, i := range infos {
		t.Logf("attached: %s (err %v)", i, i.Err) // a developer's real device, on real Windows
	}
}

func TestSetupArgsPassThePacketByValue(t *testing.T) {
	args := setupArgs(winSetup{RequestType: 0xA1, Request: 3, Length: 6})
	if unsafe.Sizeof(uintptr(0)) == 8 {
		require.Len(t, args, 1)
		assert.Equal(t, uintptr(0x0006_0000_0000_03A1), args[0])
	} else {
		require.Len(t, args, 2)
	}
}

func TestWindowsErrorsKeepTheirCode(t *testing.T) {
	_, err := sysWindows{}.createFile(`\\?\usb#vid_2b04&pid_d00d#nosuchdevice#{37fb5f90-1a34-4929-933b-8a27e1850033}`)
	require.Error(t, err)
	assert.NotZero(t, winCode(err), "%v", err)
	mapped := newWinBackend(sysWindows{}).openError(Info{VID: 0x2b04, PID: 0xd00d, DFU: true}, "open", err)
	assert.ErrorIs(t, mapped, ErrNotFound, "a path that is not there: the device left")
}
