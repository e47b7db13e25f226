package ctrl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// call runs a request and turns a negative result into a *ResultError.
func (c *Client) call(ctx context.Context, reqType uint16, payload []byte, what string) ([]byte, error) {
	res, reply, err := c.Request(ctx, reqType, payload)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if res < 0 {
		return nil, &ResultError{Code: res, Op: "device refused " + what}
	}
	return reply, nil
}

// DeviceID asks the running firmware for its device ID (type 20), lower-cased
// to match the USB serial number the device watcher keys devices by.
func (c *Client) DeviceID(ctx context.Context) (string, error) {
	reply, err := c.call(ctx, ReqDeviceID, nil, "the device ID request")
	if err != nil {
		return "", err
	}
	id, err := DecodeDeviceIDReply(reply)
	if err != nil {
		return "", err
	}
	id = strings.ToLower(strings.TrimSpace(id))
	if id == "" {
		return "", fmt.Errorf("%w: empty device ID", ErrProtocol)
	}
	return id, nil
}

// SystemVersion asks for the Device OS version string (type 30), e.g. "4.1.0".
func (c *Client) SystemVersion(ctx context.Context) (string, error) {
	reply, err := c.call(ctx, ReqSystemVersion, nil, "the system version request")
	if err != nil {
		return "", err
	}
	return DecodeSystemVersionReply(reply)
}

// NCPFirmwareVersion asks for the network coprocessor's firmware version (type 31).
// Argon and Tracker (3.0.0+) answer; other platforms refuse it (not supported, -120).
func (c *Client) NCPFirmwareVersion(ctx context.Context) (NCPVersion, error) {
	reply, err := c.call(ctx, ReqNCPFirmwareVersion, nil, "the NCP firmware version request")
	if err != nil {
		return NCPVersion{}, err
	}
	return DecodeNCPVersionReply(reply)
}

// DeviceMode reports normal or listening mode (type 72); safe mode answers
// "normal", DFU mode does not answer at all.
func (c *Client) DeviceMode(ctx context.Context) (Mode, error) {
	reply, err := c.call(ctx, ReqGetDeviceMode, nil, "the device mode request")
	if err != nil {
		return 0, err
	}
	return DecodeDeviceModeReply(reply)
}

// Reset restarts the device (type 40). Device OS replies first and resets
// about a second later, so the caller should expect the device to vanish.
func (c *Client) Reset(ctx context.Context) error {
	_, err := c.call(ctx, ReqReset, nil, "the reset request")
	return err
}

// EnterDFU restarts the device into DFU mode (type 50), about a second after
// replying; it then re-enumerates with the DFU product ID.
func (c *Client) EnterDFU(ctx context.Context) error {
	_, err := c.call(ctx, ReqDFUMode, nil, "the DFU mode request")
	return err
}

// EnterSafeMode restarts the device into safe mode (type 60), where the user
// application does not run; useful when the app keeps the device too busy.
func (c *Client) EnterSafeMode(ctx context.Context) error {
	_, err := c.call(ctx, ReqSafeMode, nil, "the safe mode request")
	return err
}

// StartListening puts the device in listening mode (type 70), which stops
// cloud activity; particle-cli does this before a control-request update.
func (c *Client) StartListening(ctx context.Context) error {
	_, err := c.call(ctx, ReqStartListening, nil, "the start listening request")
	return err
}

// StopListening leaves listening mode (type 71).
func (c *Client) StopListening(ctx context.Context) error {
	_, err := c.call(ctx, ReqStopListening, nil, "the stop listening request")
	return err
}

// ModuleInfo lists the firmware modules on the device (type 90), the basis
// for planning what must be flashed. Both reply forms are understood.
func (c *Client) ModuleInfo(ctx context.Context) ([]ModuleInfo, error) {
	reply, err := c.call(ctx, ReqGetModuleInfo, nil, "the module info request")
	if err != nil {
		return nil, err
	}
	return DecodeModuleInfoReply(reply)
}

// maxUpdateChunk keeps each FIRMWARE_UPDATE_DATA request within one control
// transfer (data plus the 1-byte tag and up to 3-byte length), because Device
// OS accepts a payload only as a single SEND.
const maxUpdateChunk = MaxTransfer - 8

// remedyDFU is the fallback that works for every failure of an update over
// control requests: DFU mode does not depend on the running firmware.
const remedyDFU = "If it keeps failing, put the device in DFU mode (hold MODE, tap RESET, release MODE when the LED blinks yellow) and flash it there."

// UpdateFirmware sends a module image the way particle-usb's updateFirmware
// does: START_FIRMWARE_UPDATE (250) with the size, FIRMWARE_UPDATE_DATA (253)
// in chunks of the size the device asks for, FINISH_FIRMWARE_UPDATE (251)
// with validate_only=false. The device validates the image, replies, then
// applies it and resets, so the caller must wait for it to come back (the
// bootloader may take minutes for an NCP image). On any failure the update is
// cancelled (252) so the device does not keep a half-written OTA area, and the
// error carries a remedy (see flasher/remedy). progress, if not nil, gets
// (bytes sent, total) after each chunk.
func (c *Client) UpdateFirmware(ctx context.Context, image []byte, progress func(done, total int)) error {
	if len(image) == 0 {
		return errors.New("ctrl: firmware update: the image is empty")
	}
	if progress == nil {
		progress = func(int, int) {}
	}
	total := len(image)
	progress(0, total)

	res, reply, err := c.Request(ctx, ReqStartFirmwareUpdate, EncodeStartFirmwareUpdate(uint32(total), FormatBIN))
	if err != nil {
		return remedy.With(fmt.Errorf("starting the firmware update: %w", err), transportRemedy)
	}
	if res < 0 {
		return remedy.With(&ResultError{Code: res, Op: "device refused to start the update"}, startRemedy(res))
	}
	chunk, err := DecodeStartFirmwareUpdateReply(reply)
	if err != nil {
		c.cancelUpdate(ctx)
		return remedy.With(fmt.Errorf("starting the firmware update: %w", err), transportRemedy)
	}
	if chunk == 0 {
		c.cancelUpdate(ctx)
		return remedy.With(fmt.Errorf("%w: device asked for 0-byte update chunks", ErrProtocol), remedyDFU)
	}
	size := min(int(chunk), maxUpdateChunk)
	c.log.Debug("ctrl: firmware update started", "size", total, "chunk", size)

	for off := 0; off < total; {
		n := min(size, total-off)
		res, _, err := c.Request(ctx, ReqFirmwareUpdateData, EncodeFirmwareUpdateData(image[off:off+n]))
		if err != nil {
			c.cancelUpdate(ctx)
			return remedy.With(fmt.Errorf("sending firmware bytes %d–%d of %d: %w", off, off+n, total, err), transportRemedy)
		}
		if res < 0 {
			c.cancelUpdate(ctx)
			return remedy.With(&ResultError{Code: res, Op: fmt.Sprintf("device rejected firmware data at byte %d of %d", off, total)}, dataRemedy(res))
		}
		off += n
		progress(off, total)
	}

	res, _, err = c.Request(ctx, ReqFinishFirmwareUpdate, EncodeFinishFirmwareUpdate(false))
	if err != nil {
		c.cancelUpdate(ctx)
		return remedy.With(fmt.Errorf("finishing the firmware update: %w", err), transportRemedy)
	}
	if res < 0 {
		c.cancelUpdate(ctx)
		return remedy.With(&ResultError{Code: res, Op: "device refused the update"}, finishRemedy(res))
	}
	return nil
}

// cancelUpdate sends CANCEL_FIRMWARE_UPDATE on a best-effort basis: even when
// the caller's context is already cancelled the device should drop the
// partial image, so it runs detached with its own short deadline.
func (c *Client) cancelUpdate(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	res, _, err := c.Request(cctx, ReqCancelFirmwareUpdate, nil)
	if err != nil || res < 0 {
		c.log.Debug("ctrl: cancelling the firmware update failed", "result", res, "err", err)
	}
}

const transportRemedy = "Check the USB cable (use a data cable, plugged straight into the computer) and that no other program (particle-cli, a browser tab, a serial monitor) is using the device, then retry. " + remedyDFU

func startRemedy(code int32) string {
	switch code {
	case CodeNotSupported:
		return "This Device OS cannot take firmware over USB control requests. Put the device in DFU mode (hold MODE, tap RESET, release MODE when the LED blinks yellow) and flash it there."
	case CodeBusy, CodeInvalidState, CodeNotAllowed:
		return "The device is busy, usually with the cloud connection or another update. Put it in listening mode (hold MODE until the LED blinks blue) and retry. " + remedyDFU
	case CodeTooLarge, CodeNoMemory, CodeOutOfRange, CodeLimitExceeded:
		return "The image does not fit the device's update area. Check that the file is for this device's platform; large images must be flashed in DFU mode."
	case CodeOTAUpdatesDisabled:
		return "Firmware updates are disabled on this device (System.disableUpdates() in the application). Enter safe mode (hold SETUP and RESET, release RESET, release SETUP when the LED blinks magenta) and retry, or flash in DFU mode."
	case CodeDeviceProtected:
		return "The device is protected (Device Protection); it only accepts firmware through the Particle cloud or after protection is disabled for service."
	}
	return "Retry the update. " + remedyDFU
}

func dataRemedy(code int32) string {
	switch code {
	case CodeOutOfRange:
		return "The device received more data than announced, so the update was cancelled. Retry from the beginning. " + remedyDFU
	case CodeInvalidState:
		return "The device forgot the update part-way (it may have reset or another program cancelled it). Retry from the beginning. " + remedyDFU
	case CodeFlashIO, CodeIOError:
		return "The device could not write its flash. Retry; if it fails again its flash may be worn, flash in DFU mode to check."
	}
	return "Retry the update from the beginning. " + remedyDFU
}

func finishRemedy(code int32) string {
	switch code {
	case CodeOTAIntegrityFailed:
		return "The image arrived corrupted or the file is damaged (CRC/SHA mismatch). Download the file again and retry."
	case CodeOTADependencyFailed:
		return "The image needs modules the device does not have. Flash its dependencies (system part, bootloader, SoftDevice) first, then this file."
	case CodeOTAInvalidPlatform:
		return "The file is built for a different platform. Pick the file for this device's platform."
	case CodeOTAInvalidAddress, CodeOTAInvalidSize, CodeOTAInvalidFormat, CodeOTAUnsupportedModule, CodeBadData:
		return "The file is not a Particle module this device can install (wrong format, address or size). Check that it is a .bin built for this platform."
	case CodeInvalidState, CodeOTAValidationFailed, CodeOTA:
		return "The device did not accept the image as a complete, valid update. Check that the file is for this device's platform and that the modules it depends on (system part, bootloader) are already on the device, then retry. " + remedyDFU
	}
	return "Retry the update. " + remedyDFU
}
