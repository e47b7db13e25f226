package ctrl

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The wire bytes of the device requests, as nanopb writes them on the device
// (device-os-protobuf control/config.proto and storage.proto field numbers).
func TestGoldenDeviceReplies(t *testing.T) {
	assert.Empty(t, EncodeProtectedStateReply(ProtectedState{}), "open: both false, nothing on the wire")
	assert.Equal(t, []byte{0x08, 0x01}, EncodeProtectedStateReply(ProtectedState{Protected: true}))
	assert.Equal(t, []byte{0x10, 0x01}, EncodeProtectedStateReply(ProtectedState{Overridden: true}))
	s, err := DecodeProtectedStateReply([]byte{0x08, 0x01, 0x10, 0x00})
	require.NoError(t, err)
	assert.Equal(t, ProtectedState{Protected: true}, s)

	assert.Equal(t, []byte{0x08, 0x01}, EncodeSetupDone(true))
	assert.Empty(t, EncodeSetupDone(false))
	done, err := DecodeSetupDone(nil)
	require.NoError(t, err)
	assert.False(t, done, "an empty reply is done=false")

	info := AssetInfo{
		Available: []Asset{{Name: "cat.jpg", Hash: "f8dcbaf0", Size: 21502, StorageSize: 21597}},
		Required:  []Asset{{Name: "cat.jpg", Hash: "f8dcbaf0"}},
	}
	b := EncodeAssetInfoReply(info)
	assert.Equal(t, []byte{0x0a, 0x17, // available: FirmwareModuleAsset, 23 bytes
		0x0a, 0x04, 0xf8, 0xdc, 0xba, 0xf0, // hash
		0x12, 0x07, 'c', 'a', 't', '.', 'j', 'p', 'g', // name
		0x18, 0xfe, 0xa7, 0x01, // size 21502
		0x20, 0xdd, 0xa8, 0x01, // storage_size 21597
		0x12, 0x0f, // required: 15 bytes
		0x0a, 0x04, 0xf8, 0xdc, 0xba, 0xf0,
		0x12, 0x07, 'c', 'a', 't', '.', 'j', 'p', 'g'}, b)
	back, err := DecodeAssetInfoReply(b)
	require.NoError(t, err)
	assert.Equal(t, info, back)

	// GetModuleInfoReply's new form carries a user part's asset dependencies (field 10).
	mods, err := DecodeModuleInfoReply(EncodeModuleInfoReply([]ModuleInfo{{Function: 5, Index: 2, Version: 6,
		Assets: []Asset{{Name: "cat.jpg", Hash: "f8dcbaf0"}}}}, false))
	require.NoError(t, err)
	require.Len(t, mods, 1)
	assert.Equal(t, []Asset{{Name: "cat.jpg", Hash: "f8dcbaf0"}}, mods[0].Assets)
}
