package usbsim

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWireHeaderMatchesServer: the C clients (the libusb shim and the umockdev bridge) take
// the operation numbers and the frame limit from wire/usbsim_wire.h; the server must
// answer the same numbers, or every client would misread every frame.
func TestWireHeaderMatchesServer(t *testing.T) {
	ops := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^\s*(OP_[A-Z_]+) = (\d+),`).FindAllStringSubmatch(string(wireHeader), -1) {
		n, err := strconv.Atoi(m[2])
		require.NoError(t, err)
		ops[m[1]] = n
	}
	assert.Equal(t, map[string]int{
		"OP_LIST": opList, "OP_OPEN": opOpen, "OP_CLOSE": opClose, "OP_CLAIM": opClaim,
		"OP_RELEASE": opRelease, "OP_SET_ALT": opSetAlt, "OP_SET_CONFIG": opSetConfig,
		"OP_GET_CONFIG": opGetConfig, "OP_RESET": opReset, "OP_CONTROL": opControl,
	}, ops)
	m := regexp.MustCompile(`#define MAX_FRAME \((\d+)u << (\d+)\)`).FindStringSubmatch(string(wireHeader))
	require.NotNil(t, m, "MAX_FRAME in the header")
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	assert.Equal(t, maxFrame, a<<b)
}
