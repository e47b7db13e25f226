package serialport

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.bug.st/serial/enumerator"
)

func TestFilterPorts(t *testing.T) {
	in := []*enumerator.PortDetails{
		{Name: "/dev/ttyACM0", IsUSB: true, VID: "2B04", PID: "C00C", SerialNumber: "e00fce68ffffffffffffffff", Product: "Boron"},
		{Name: "/dev/ttyACM1", IsUSB: true, VID: "2b04", PID: "c006", SerialNumber: "3a0038000d47353136383631"},
		{Name: "/dev/ttyACM2", IsUSB: true, VID: "1d50", PID: "607d", SerialNumber: "53ff6f065067544840160887"},
		{Name: "/dev/ttyACM3", IsUSB: true, VID: "1d50", PID: "6018"}, // Black Magic Probe: same VID, not a Core
		{Name: "/dev/ttyUSB0", IsUSB: true, VID: "0403", PID: "6001"},
		{Name: "/dev/ttyS0", IsUSB: false},
		{Name: "/dev/ttyACM4", IsUSB: true, VID: "0x2B04", PID: "0xC008"},
		{Name: "/dev/ttyACM5", IsUSB: true, VID: "zz", PID: "c006"},
		nil,
	}
	got := filterPorts(in)
	assert.Equal(t, []PortInfo{
		{Path: "/dev/ttyACM0", VID: 0x2b04, PID: 0xc00c, Serial: "e00fce68ffffffffffffffff", Product: "Boron"},
		{Path: "/dev/ttyACM1", VID: 0x2b04, PID: 0xc006, Serial: "3a0038000d47353136383631"},
		{Path: "/dev/ttyACM2", VID: 0x1d50, PID: 0x607d, Serial: "53ff6f065067544840160887"},
		{Path: "/dev/ttyACM4", VID: 0x2b04, PID: 0xc008},
	}, got)
}

func TestListRuns(t *testing.T) {
	ports, err := List()
	require.NoError(t, err)
	for _, p := range ports {
		assert.True(t, isParticle(p.VID, p.PID), "%+v", p)
	}
}

func TestPermissionError(t *testing.T) {
	err := openError("/dev/ttyACM0", fmt.Errorf("open: %w", syscall.EACCES))
	var pe *PermissionError
	require.True(t, errors.As(err, &pe))
	assert.Equal(t, "/dev/ttyACM0", pe.Path)
	assert.ErrorIs(t, err, syscall.EACCES)
	msg := err.Error()
	for _, want := range []string{"/dev/ttyACM0", "50-particle.rules", "sudo udevadm control --reload && sudo udevadm trigger", "dialout", "plugdev"} {
		assert.Contains(t, msg, want)
	}
	assert.Contains(t, UdevRules, `SUBSYSTEMS=="usb", ATTRS{idVendor}=="2b04", ATTRS{idProduct}=="[cd]0??", GROUP="plugdev", MODE="0666", ENV{ID_MM_DEVICE_IGNORE}="1"`)
}

func TestOpenMissingPort(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "ttyACM9"), ConsoleBaud)
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), "unplugged")
	assert.Error(t, TriggerDFU(filepath.Join(t.TempDir(), "ttyACM9")))
}

func TestParseHex(t *testing.T) {
	for in, want := range map[string]uint16{"2b04": 0x2b04, "2B04": 0x2b04, "0x2b04": 0x2b04, " D00C ": 0xd00c} {
		got, err := parseHex16(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := parseHex16("12345")
	assert.Error(t, err)
}
