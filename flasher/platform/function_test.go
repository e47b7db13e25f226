package platform

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFunctionString(t *testing.T) {
	names := []string{"none", "resource", "bootloader", "mono", "system", "user", "settings", "ncp", "radio", "asset"}
	for i, n := range names {
		assert.Equal(t, n, Function(i).String())
		f, ok := ParseFunction(n)
		assert.True(t, ok, n)
		assert.Equal(t, Function(i), f)
	}
	assert.Equal(t, "10", Function(10).String())
	assert.Equal(t, "255", Function(255).String())
}

func TestParseFunctionSynonyms(t *testing.T) {
	for in, want := range map[string]Function{
		"system-part": FuncSystem, "System-Part": FuncSystem, "systemPart": FuncSystem,
		"user-part": FuncUser, "userPart": FuncUser,
		"radio-stack": FuncRadio, "softdevice": FuncRadio, "radioStack": FuncRadio,
		"monolithic": FuncMono, "monoFirmware": FuncMono,
		"ncp-firmware": FuncNCP, "ncpFirmware": FuncNCP,
		" bootloader ": FuncBootloader,
	} {
		f, ok := ParseFunction(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, f, in)
	}
	for _, bad := range []string{"", "kernel", "10", "sys"} {
		_, ok := ParseFunction(bad)
		assert.False(t, ok, bad)
	}
}
