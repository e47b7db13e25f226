package platform

import (
	"strconv"
	"strings"
)

// Function is a module_function code as stored in a module header
// (DOS dynalib/inc/module_info.h).
type Function uint8

// Module functions.
const (
	FuncNone       Function = 0
	FuncResource   Function = 1
	FuncBootloader Function = 2
	FuncMono       Function = 3
	FuncSystem     Function = 4
	FuncUser       Function = 5
	FuncSettings   Function = 6
	FuncNCP        Function = 7
	FuncRadio      Function = 8
	FuncAsset      Function = 9
)

var functionNames = [...]string{"none", "resource", "bootloader", "mono", "system", "user", "settings", "ncp", "radio", "asset"}

// String names the function as binary-version-reader does; unknown codes print as numbers
// so a corrupt header still shows what it holds.
func (f Function) String() string {
	if int(f) < len(functionNames) {
		return functionNames[f]
	}
	return strconv.Itoa(int(f))
}

var functionSynonyms = map[string]Function{
	"system-part": FuncSystem, "systempart": FuncSystem, "system_part": FuncSystem,
	"user-part": FuncUser, "userpart": FuncUser, "user_part": FuncUser, "app": FuncUser,
	"radio-stack": FuncRadio, "radiostack": FuncRadio, "radio_stack": FuncRadio, "softdevice": FuncRadio,
	"monolithic": FuncMono, "monofirmware": FuncMono, "mono-firmware": FuncMono,
	"ncp-firmware": FuncNCP, "ncpfirmware": FuncNCP,
}

// ParseFunction accepts the names String prints and common synonyms used by Particle
// tools ("system-part", "radio-stack", "softdevice", ...).
func ParseFunction(s string) (Function, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	for i, n := range functionNames {
		if n == s {
			return Function(i), true
		}
	}
	f, ok := functionSynonyms[s]
	return f, ok
}
