package device_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/usb"
)

// A Tachyon on the bus (2b04:c02a) is listed, not read: it is no Device OS device, and
// the person is told what flashes it.
func TestTachyonIsRecognisedAndExplained(t *testing.T) {
	p, dfu, ok := usb.Identify(0x2b04, 0xc02a)
	require.True(t, ok, "listed")
	assert.Nil(t, p)
	assert.False(t, dfu)
	f, ok := platform.ForeignByUSB(0x2b04, 0xc02a)
	require.True(t, ok)
	err := device.ForeignError(f)
	assert.Equal(t, "this Tachyon is not a Device OS device", err.Error())
	assert.Contains(t, remedy.Of(err), "Qualcomm EDL")
	assert.Contains(t, remedy.Of(err), "Tachyon tools")
	_, ok = platform.ForeignByUSB(0x2b04, 0xc00d)
	assert.False(t, ok, "a Boron is not foreign")
}
