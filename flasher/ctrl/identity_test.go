package ctrl

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The identity replies' wire bytes, as nanopb writes them (config.proto
// GetSerialNumberReply, cellular.proto GetIccidReply field numbers).
func TestGoldenIdentityReplies(t *testing.T) {
	b := EncodeSerialNumberReply("ARNHAB849A1B2C3")
	assert.Equal(t, append([]byte{0x0a, 0x0f}, "ARNHAB849A1B2C3"...), b)
	s, err := DecodeSerialNumberReply(b)
	require.NoError(t, err)
	assert.Equal(t, "ARNHAB849A1B2C3", s)
	s, err = DecodeSerialNumberReply(append([]byte{0x0a, 0x04}, 'P', '0', 0, 0))
	require.NoError(t, err)
	assert.Equal(t, "P0", s, "nanopb's NUL padding is dropped")

	ci := CellularInfo{ICCID: "89014103211118510720", IMEI: "352656106111232"}
	b = EncodeCellularInfoReply(ci)
	want := append([]byte{0x0a, 20}, ci.ICCID...)
	want = append(append(want, 0x12, 15), ci.IMEI...)
	assert.Equal(t, want, b)
	back, err := DecodeCellularInfoReply(b)
	require.NoError(t, err)
	assert.Equal(t, ci, back)

	// Before 5.8.0 the reply holds the ICCID alone.
	back, err = DecodeCellularInfoReply(EncodeCellularInfoReply(CellularInfo{ICCID: ci.ICCID}))
	require.NoError(t, err)
	assert.Equal(t, CellularInfo{ICCID: ci.ICCID}, back)

	// A field of the wrong wire type is refused, naming the message.
	_, err = DecodeCellularInfoReply([]byte{0x08, 0x01})
	require.ErrorIs(t, err, ErrProtocol)
	assert.Contains(t, err.Error(), "GetIccidReply")
	_, err = DecodeSerialNumberReply([]byte{0x08, 0x01})
	require.ErrorIs(t, err, ErrProtocol)
}
