package sim

import (
	"fmt"
	"log/slog"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/sim/ctrldev"
)

// ctrlHandler answers control requests the way Device OS's system_control_internal.cpp
// does, for the requests a flasher uses. It belongs to one boot (gen): a request still
// running when the device resets acts on nothing.
type ctrlHandler struct {
	d   *Device
	gen uint64
	fw  *ctrldev.FirmwareUpdate
}

// HandleRequest serves one complete request on the channel's goroutine.
func (h *ctrlHandler) HandleRequest(reqType uint16, payload []byte) (int32, []byte) {
	d := h.d
	d.mu.Lock()
	sys := d.sysVersionLocked()
	protected := d.protectedLocked()
	d.mu.Unlock()
	// security_mode_check_control_request: a protected device answers only these.
	if protected && reqType != ctrl.ReqDeviceID && reqType != ctrl.ReqGetProtectedState &&
		reqType != ctrl.ReqSetProtectedState && reqType != ctrl.ReqAppCustom {
		return ctrl.CodeDeviceProtected, nil
	}
	if h.fw.Handles(reqType) {
		return h.fw.HandleRequest(reqType, payload)
	}
	switch reqType {
	case ctrl.ReqDeviceID:
		return ctrl.CodeOK, ctrl.EncodeDeviceIDReply(d.id)
	case ctrl.ReqSystemVersion:
		return ctrl.CodeOK, ctrl.EncodeSystemVersionReply(d.SystemVersion())
	case ctrl.ReqSerialNumber:
		return d.serialNumberRequest(sys)
	case ctrl.ReqCellularGetICCID:
		return d.cellularInfoRequest(sys)
	case ctrl.ReqReset, ctrl.ReqDFUMode, ctrl.ReqSafeMode:
		return ctrl.CodeOK, nil // acted on once the host has the reply (requestCompleted)
	case ctrl.ReqStartListening, ctrl.ReqStopListening:
		if !d.setListening(h.gen, reqType == ctrl.ReqStartListening) {
			return ctrl.CodeInvalidState, nil
		}
		return ctrl.CodeOK, nil
	case ctrl.ReqGetDeviceMode:
		m := ctrl.ModeNormal
		if d.Mode() == ModeListening {
			m = ctrl.ModeListening
		}
		return ctrl.CodeOK, ctrl.EncodeDeviceModeReply(m)
	case ctrl.ReqNCPFirmwareVersion:
		// getNcpFirmwareVersion (system/src/control/config.cpp) exists only where Device OS
		// drives an ESP32 over Wi-Fi: Argon always, Tracker from 3.0.0 (the NCP slot's
		// KnownSince); elsewhere SYSTEM_ERROR_NOT_SUPPORTED.
		d.mu.Lock()
		v, known := d.ncpKnownLocked()
		d.mu.Unlock()
		if !known {
			return ctrl.CodeNotSupported, nil
		}
		return ctrl.CodeOK, ctrl.EncodeNCPVersionReply(ctrl.NCPVersion{Version: fmt.Sprintf("0.0.%d", v), ModuleVersion: uint32(v)})
	case ctrl.ReqIsSetupDone, ctrl.ReqSetSetupDone:
		return d.setupDoneRequest(reqType, payload, sys)
	case ctrl.ReqGetAssetInfo:
		return d.assetInfo(sys)
	case ctrl.ReqGetProtectedState:
		if sys < protectionSince {
			return ctrl.CodeNotSupported, nil
		}
		d.mu.Lock()
		st := ctrl.ProtectedState{Protected: protected, Overridden: d.override && sys >= overrideSince}
		d.mu.Unlock()
		return ctrl.CodeOK, ctrl.EncodeProtectedStateReply(st)
	case ctrl.ReqSetProtectedState:
		return d.setProtectedState(payload, sys)
	case ctrl.ReqGetModuleInfo:
		d.mu.Lock()
		mods := d.scanLocked().table()
		deprecated := d.sysVersionLocked() < 5600 // the new reply form came with 5.6.0
		d.mu.Unlock()
		return ctrl.CodeOK, ctrl.EncodeModuleInfoReply(ctrlModules(mods), deprecated)
	}
	return ctrl.CodeNotSupported, nil
}

// requestCompleted is Device OS's completion handler: reset, DFU and safe mode requests
// take effect a second after the host has the reply.
func (d *Device) requestCompleted(gen uint64, reqType uint16) {
	switch reqType {
	case ctrl.ReqReset:
		d.resetLater(gen, bootReq{reason: "reset request"})
	case ctrl.ReqDFUMode:
		d.resetLater(gen, bootReq{dfu: true, reason: "DFU mode request"})
	case ctrl.ReqSafeMode:
		d.resetLater(gen, bootReq{safe: true, reason: "safe mode request"})
	}
}

// live reports whether gen is still the running boot; callbacks of an earlier boot act
// on nothing.
func (d *Device) live(gen uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return gen == d.gen && d.mode.cdc()
}

// beginOTA erases room for size bytes at the start of the OTA region (HAL_FLASH_Begin)
// and returns where the image goes.
func (d *Device) beginOTA(size uint32) (*pendingUpdate, int32) {
	d.mu.Lock()
	mem, reg, ok := d.otaRegion(d.sys)
	d.mu.Unlock()
	if !ok {
		return nil, ctrl.CodeNotSupported
	}
	if size == 0 || size > reg.Size {
		return nil, ctrl.CodeOTAInvalidSize
	}
	secs, err := mem.Layout().SectorsCovering(reg.Address, size)
	if err != nil {
		return nil, ctrl.CodeFlashIO
	}
	for _, s := range secs {
		err := mem.EraseSector(s.Start)
		d.noticePowerLoss(err)
		if err != nil {
			slog.Debug("sim: OTA erase failed", "device", d.id, "err", err)
			return nil, ctrl.CodeFlashIO
		}
	}
	return &pendingUpdate{region: mem, addr: reg.Address, size: size}, ctrl.CodeOK
}

// writeOTA programs a chunk of the image (HAL_FLASH_Update).
func (d *Device) writeOTA(t *pendingUpdate, off uint32, chunk []byte) int32 {
	if t == nil || uint64(off)+uint64(len(chunk)) > uint64(t.size) {
		return ctrl.CodeOutOfRange
	}
	err := t.region.Program(t.addr+off, chunk)
	d.noticePowerLoss(err)
	if err != nil {
		slog.Debug("sim: OTA write failed", "device", d.id, "err", err)
		return ctrl.CodeFlashIO
	}
	return ctrl.CodeOK
}

// validateOTA checks the image as stored in the OTA region (HAL_FLASH_OTA_Validate with
// user dependencies optional and the full-dependency check).
func (d *Device) validateOTA(t *pendingUpdate) int32 {
	if t == nil {
		return ctrl.CodeInvalidState
	}
	img := t.region.Snapshot(t.addr, t.size)
	if img == nil {
		return ctrl.CodeFlashIO
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	_, code := d.validateImage(d.scanLocked(), img)
	return code
}

func (d *Device) fwPrepare(gen uint64, size uint32) int32 {
	if !d.live(gen) {
		return ctrl.CodeInvalidState
	}
	t, code := d.beginOTA(size)
	if code != ctrl.CodeOK {
		return code
	}
	d.mu.Lock()
	if gen == d.gen {
		d.fwTarget = t
	}
	d.mu.Unlock()
	return ctrl.CodeOK
}

func (d *Device) target(gen uint64, serial bool) *pendingUpdate {
	d.mu.Lock()
	defer d.mu.Unlock()
	if gen != d.gen {
		return nil
	}
	if serial {
		return d.serialUpd
	}
	return d.fwTarget
}

func (d *Device) fwWrite(gen uint64, off uint32, chunk []byte) int32 {
	t := d.target(gen, false)
	if t == nil {
		return ctrl.CodeInvalidState
	}
	return d.writeOTA(t, off, chunk)
}

func (d *Device) fwValidate(gen uint64, img []byte) int32 {
	t := d.target(gen, false)
	if t == nil {
		return ctrl.CodeInvalidState
	}
	if uint32(len(img)) != t.size {
		return ctrl.CodeOTAInvalidSize
	}
	code := d.validateOTA(t)
	if code != ctrl.CodeOK {
		slog.Info("sim: firmware update refused", "device", d.id, "code", code, "result", ctrl.ResultName(code))
	}
	return code
}

// fwApply registers the validated image for the bootloader and resets, as HAL_FLASH_End
// and system_pending_shutdown(RESET_REASON_UPDATE) do. An asset module is stored at once
// (HAL_FLASH_End hands it to the asset manager) and the device restarts all the same
// ("Always restart for now", firmware_update.cpp).
func (d *Device) fwApply(gen uint64, img []byte) {
	d.mu.Lock()
	if gen != d.gen || d.fwTarget == nil {
		d.mu.Unlock()
		return
	}
	if a, ok := validAsset(img); ok {
		d.storeAssetLocked(d.scanLocked(), a)
		d.fwTarget = nil
		d.mu.Unlock()
		d.resetLater(gen, bootReq{reason: "asset stored"})
		return
	}
	d.pending = d.fwTarget
	d.fwTarget = nil
	d.mu.Unlock()
	d.resetLater(gen, bootReq{reason: "firmware update"})
}

// setupDoneRequest is config.cpp's isDeviceSetupDone / setDeviceSetupDone: the DCT byte
// where Device OS minds it (Gen3 before 4.0); from 4.0 the flag is always "done" and only
// done=true is accepted; platforms without it do not support either request.
func (d *Device) setupDoneRequest(reqType uint16, payload []byte, sys uint16) (int32, []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.p.MCU != "nrf52840" || d.dct == nil {
		return ctrl.CodeNotSupported, nil
	}
	minds := d.mindsSetupDoneLocked(sys)
	if reqType == ctrl.ReqIsSetupDone {
		return ctrl.CodeOK, ctrl.EncodeSetupDone(!minds || d.setupDoneLocked())
	}
	done, err := ctrl.DecodeSetupDone(payload)
	if err != nil {
		return ctrl.CodeBadData, nil
	}
	if !minds {
		if !done {
			return ctrl.CodeNotSupported, nil
		}
		return ctrl.CodeOK, nil
	}
	v := byte(0xFF)
	if done {
		v = 0x01
	}
	if _, err := d.writeDCT(dctSetupDoneOffset, []byte{v}); err != nil {
		return ctrl.CodeFlashIO, nil
	}
	return ctrl.CodeOK, nil
}

// setProtectedState is config.cpp's setProtectedState: RESET ends Service Mode at once;
// PREPARE and CONFIRM need a nonce signed by Particle's cloud, which a local device never
// has (so they fail as a device would without the server's signature).
func (d *Device) setProtectedState(payload []byte, sys uint16) (int32, []byte) {
	if sys < overrideSince {
		return ctrl.CodeNotSupported, nil
	}
	action, err := ctrl.DecodeSetProtectedState(payload)
	if err != nil {
		return ctrl.CodeInvalidArgument, nil
	}
	if action != 0 {
		return ctrl.CodeInvalidSignature, nil
	}
	d.mu.Lock()
	d.override = false
	d.changedLocked()
	d.mu.Unlock()
	return ctrl.CodeOK, nil
}
