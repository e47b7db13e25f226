package state

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// TestWriteForgetsTheReportedDeviceOS: a device that said it runs 1.5.2 and is predicted
// to get 2.3.1's system parts is predicted to run 2.3.1, not what it said before.
func TestWriteForgetsTheReportedDeviceOS(t *testing.T) {
	p, _ := platform.ByName("photon")
	d := Device{Platform: p, DeviceOS: "1.5.2", Modules: []Module{
		{Function: platform.FuncSystem, Index: 1, Version: 1512, Location: LocationMain, Present: true, Start: 0x08020000, Size: 0x1000},
	}}
	assert.Equal(t, "1.5.2", d.DeviceOSName())
	d.Write(Module{Function: platform.FuncSystem, Index: 1, Version: 2302, Start: 0x08020000, Size: 0x1000})
	assert.Equal(t, "2.3.1", d.DeviceOSName())
}
