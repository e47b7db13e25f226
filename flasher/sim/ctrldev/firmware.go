package ctrldev

import (
	"sync"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
)

// DefaultChunkSize is what Device OS answers in StartFirmwareUpdateReply
// (system/src/control/storage.cpp: `chunk_size = 1024`).
const DefaultChunkSize = 1024

// FirmwareUpdate is the device side of an update over control requests
// (250 START, 253 DATA, 251 FINISH, 252 CANCEL), with the checks and result
// codes of Device OS storage.cpp. Storage and validation are plugged in, so
// the virtual device decides where the image goes and whether it is valid.
// Route requests to it with HandleRequest and wire Completed into the
// channel's Config.OnComplete; it is safe for concurrent use.
type FirmwareUpdate struct {
	// ChunkSize is the chunk size announced to the host (default 1024).
	ChunkSize uint32
	// Prepare readies the OTA area for an image of size bytes (erase it);
	// a negative result refuses the update (e.g. ctrl.CodeTooLarge). Optional.
	Prepare func(size uint32) int32
	// Write stores one chunk at offset in the OTA area; a negative result
	// aborts the update. Optional: the image is also kept in memory.
	Write func(offset uint32, chunk []byte) int32
	// Validate checks the complete image as Spark_Finish_Firmware_Update
	// with VALIDATE_ONLY does (module header, CRC, platform, dependencies);
	// a negative result is sent to the host and the update is cancelled.
	// Optional: nil accepts everything.
	Validate func(image []byte) int32
	// Apply installs a validated image. Device OS does it from the FINISH
	// request's completion handler, i.e. after the host has had the reply, and
	// then resets; Completed calls it at that moment.
	Apply func(image []byte)

	mu     sync.Mutex
	active bool
	size   uint32
	image  []byte
	apply  []byte // validated image waiting for FINISH to complete
}

// Handles reports whether reqType is one of the update requests.
func (u *FirmwareUpdate) Handles(reqType uint16) bool {
	switch reqType {
	case ctrl.ReqStartFirmwareUpdate, ctrl.ReqFirmwareUpdateData,
		ctrl.ReqFinishFirmwareUpdate, ctrl.ReqCancelFirmwareUpdate:
		return true
	}
	return false
}

// HandleRequest serves requests 250–253 (others answer NOT_SUPPORTED), so a
// FirmwareUpdate can be used directly as, or from, a channel Handler.
func (u *FirmwareUpdate) HandleRequest(reqType uint16, payload []byte) (int32, []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch reqType {
	case ctrl.ReqStartFirmwareUpdate:
		return u.start(payload)
	case ctrl.ReqFirmwareUpdateData:
		res := u.data(payload)
		if res < 0 {
			u.cancel() // storage.cpp's scope guard: any failed chunk ends the update
		}
		return res, nil
	case ctrl.ReqFinishFirmwareUpdate:
		return u.finish(payload), nil
	case ctrl.ReqCancelFirmwareUpdate:
		u.cancel()
		return ctrl.CodeOK, nil
	}
	return ctrl.CodeNotSupported, nil
}

// Progress reports the bytes received so far and the announced size while an
// update is in progress.
func (u *FirmwareUpdate) Progress() (received, total uint32, active bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return uint32(len(u.image)), u.size, u.active
}

// Completed is the channel completion hook: once the FINISH request has left
// the channel (reply delivered, or cancelled — Device OS applies either way)
// the validated image is handed to Apply.
func (u *FirmwareUpdate) Completed(reqType uint16, delivery int32) {
	if reqType != ctrl.ReqFinishFirmwareUpdate {
		return
	}
	u.mu.Lock()
	img := u.apply
	u.apply = nil
	u.mu.Unlock()
	if img != nil && u.Apply != nil {
		u.Apply(img)
	}
}

func (u *FirmwareUpdate) cancel() {
	u.active, u.size, u.image = false, 0, nil
}

func (u *FirmwareUpdate) start(payload []byte) (int32, []byte) {
	size, format, err := ctrl.DecodeStartFirmwareUpdate(payload)
	if err != nil {
		return ctrl.CodeBadData, nil
	}
	u.cancel() // a new START abandons the transfer in progress
	if format != ctrl.FormatBIN {
		return ctrl.CodeNotSupported, nil
	}
	if u.Prepare != nil {
		if res := u.Prepare(size); res < 0 {
			return res, nil
		}
	}
	u.active, u.size = true, size
	u.image = make([]byte, 0, min(size, 4<<20))
	chunk := u.ChunkSize
	if chunk == 0 {
		chunk = DefaultChunkSize
	}
	return ctrl.CodeOK, ctrl.EncodeStartFirmwareUpdateReply(chunk)
}

func (u *FirmwareUpdate) data(payload []byte) int32 {
	chunk, err := ctrl.DecodeFirmwareUpdateData(payload)
	if err != nil {
		return ctrl.CodeBadData
	}
	if !u.active {
		return ctrl.CodeInvalidState
	}
	left := u.size - uint32(len(u.image))
	if len(chunk) == 0 || uint64(len(chunk)) > uint64(left) {
		return ctrl.CodeOutOfRange
	}
	if u.Write != nil {
		if res := u.Write(uint32(len(u.image)), chunk); res < 0 {
			return res
		}
	}
	u.image = append(u.image, chunk...)
	return ctrl.CodeOK
}

func (u *FirmwareUpdate) finish(payload []byte) int32 {
	validateOnly, err := ctrl.DecodeFinishFirmwareUpdate(payload)
	if err != nil {
		u.cancel()
		return ctrl.CodeBadData
	}
	if !u.active || uint32(len(u.image)) != u.size {
		u.cancel()
		return ctrl.CodeInvalidState
	}
	img := u.image
	var res int32
	if u.Validate != nil {
		res = u.Validate(img)
	}
	u.cancel()
	if res < 0 || validateOnly {
		return res
	}
	u.apply = img
	return ctrl.CodeOK
}
