package ctrldev

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
)

func start(t *testing.T, u *FirmwareUpdate, size uint32) {
	t.Helper()
	res, rep := u.HandleRequest(ctrl.ReqStartFirmwareUpdate, ctrl.EncodeStartFirmwareUpdate(size, ctrl.FormatBIN))
	require.Equal(t, ctrl.CodeOK, res)
	chunk, err := ctrl.DecodeStartFirmwareUpdateReply(rep)
	require.NoError(t, err)
	require.Equal(t, uint32(DefaultChunkSize), chunk)
}

func data(u *FirmwareUpdate, b []byte) int32 {
	res, _ := u.HandleRequest(ctrl.ReqFirmwareUpdateData, ctrl.EncodeFirmwareUpdateData(b))
	return res
}

func finish(u *FirmwareUpdate, validateOnly bool) int32 {
	res, _ := u.HandleRequest(ctrl.ReqFinishFirmwareUpdate, ctrl.EncodeFinishFirmwareUpdate(validateOnly))
	return res
}

func TestFirmwareUpdateHappyPath(t *testing.T) {
	var applied []byte
	u := &FirmwareUpdate{Apply: func(img []byte) { applied = img }}
	start(t, u, 6)
	assert.Equal(t, ctrl.CodeOK, data(u, []byte("abc")))
	got, total, active := u.Progress()
	assert.Equal(t, [3]any{uint32(3), uint32(6), true}, [3]any{got, total, active})
	assert.Equal(t, ctrl.CodeOK, data(u, []byte("def")))
	assert.Equal(t, ctrl.CodeOK, finish(u, false))
	assert.Nil(t, applied, "nothing is applied before the FINISH reply has gone out")
	u.Completed(ctrl.ReqGetModuleInfo, 0)
	assert.Nil(t, applied)
	u.Completed(ctrl.ReqFinishFirmwareUpdate, 0)
	assert.Equal(t, []byte("abcdef"), applied)
	applied = nil
	u.Completed(ctrl.ReqFinishFirmwareUpdate, 0)
	assert.Nil(t, applied, "applied once")
}

func TestFirmwareUpdateErrors(t *testing.T) {
	u := &FirmwareUpdate{}
	assert.Equal(t, ctrl.CodeInvalidState, data(u, []byte{1}), "data without START")
	assert.Equal(t, ctrl.CodeInvalidState, finish(u, false), "FINISH without START")

	start(t, u, 4)
	assert.Equal(t, ctrl.CodeOutOfRange, data(u, []byte{1, 2, 3, 4, 5}), "more than announced")
	_, _, active := u.Progress()
	assert.False(t, active, "a bad chunk cancels the update")

	start(t, u, 4)
	assert.Equal(t, ctrl.CodeOutOfRange, data(u, nil), "empty chunk")
	start(t, u, 4)
	assert.Equal(t, ctrl.CodeOK, data(u, []byte{1, 2}))
	assert.Equal(t, ctrl.CodeInvalidState, finish(u, false), "FINISH with bytes missing")

	res, _ := u.HandleRequest(ctrl.ReqStartFirmwareUpdate, ctrl.EncodeStartFirmwareUpdate(4, ctrl.FormatMiniz))
	assert.Equal(t, ctrl.CodeNotSupported, res, "only BIN")
	res, _ = u.HandleRequest(ctrl.ReqStartFirmwareUpdate, []byte{0x0a, 0x05})
	assert.Equal(t, ctrl.CodeBadData, res, "undecodable request")
	res, _ = u.HandleRequest(ctrl.ReqGetModuleInfo, nil)
	assert.Equal(t, ctrl.CodeNotSupported, res)
}

func TestFirmwareUpdateValidation(t *testing.T) {
	applied := 0
	verdict := ctrl.CodeInvalidState
	var seen []byte
	u := &FirmwareUpdate{
		Validate: func(img []byte) int32 { seen = img; return verdict },
		Apply:    func([]byte) { applied++ },
	}
	start(t, u, 3)
	data(u, []byte{7, 8, 9})
	assert.Equal(t, ctrl.CodeInvalidState, finish(u, false))
	assert.Equal(t, []byte{7, 8, 9}, seen)
	u.Completed(ctrl.ReqFinishFirmwareUpdate, 0)
	assert.Zero(t, applied, "a refused image is never applied")

	verdict = 0
	start(t, u, 3)
	data(u, []byte{7, 8, 9})
	assert.Equal(t, ctrl.CodeOK, finish(u, true))
	u.Completed(ctrl.ReqFinishFirmwareUpdate, 0)
	assert.Zero(t, applied, "validate_only does not apply")
	_, _, active := u.Progress()
	assert.False(t, active, "and ends the update, as Device OS does")
}

func TestFirmwareUpdateStorageHooks(t *testing.T) {
	var ota bytes.Buffer
	u := &FirmwareUpdate{
		ChunkSize: 512,
		Prepare: func(size uint32) int32 {
			if size > 8 {
				return ctrl.CodeTooLarge
			}
			ota.Reset()
			return 0
		},
		Write: func(off uint32, b []byte) int32 {
			if off == 4 {
				return ctrl.CodeFlashIO
			}
			ota.Write(b)
			return 0
		},
	}
	res, _ := u.HandleRequest(ctrl.ReqStartFirmwareUpdate, ctrl.EncodeStartFirmwareUpdate(9, ctrl.FormatBIN))
	assert.Equal(t, ctrl.CodeTooLarge, res)
	res, rep := u.HandleRequest(ctrl.ReqStartFirmwareUpdate, ctrl.EncodeStartFirmwareUpdate(8, ctrl.FormatBIN))
	require.Equal(t, ctrl.CodeOK, res)
	chunk, _ := ctrl.DecodeStartFirmwareUpdateReply(rep)
	assert.Equal(t, uint32(512), chunk)
	assert.Equal(t, ctrl.CodeOK, data(u, []byte{1, 2, 3, 4}))
	assert.Equal(t, ctrl.CodeFlashIO, data(u, []byte{5, 6, 7, 8}))
	assert.Equal(t, []byte{1, 2, 3, 4}, ota.Bytes())
	_, _, active := u.Progress()
	assert.False(t, active)

	// CANCEL always succeeds and a new START starts over.
	res, _ = u.HandleRequest(ctrl.ReqCancelFirmwareUpdate, nil)
	assert.Equal(t, ctrl.CodeOK, res)
}
