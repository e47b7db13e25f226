package sim

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/sim/serialdev"
)

// serialModel is the device behind one boot's serial port (serialdev.Model). The port
// outlives nothing: every boot into Device OS opens a new one, and a model whose boot is
// over (gen) answers as a device that is gone.
type serialModel struct {
	d   *Device
	gen uint64
}

var _ serialdev.Model = (*serialModel)(nil)

func (m *serialModel) DeviceID() string      { return m.d.id }
func (m *serialModel) SystemVersion() string { return m.d.SystemVersion() }

// MAC derives a stable Wi-Fi MAC from the device ID (Particle's OUI-less sims need only
// something well-formed and per-device).
func (m *serialModel) MAC() string {
	id := m.d.id
	parts := make([]string, 6)
	parts[0] = "02"
	for i := 1; i < 6; i++ {
		parts[i] = id[len(id)-12+2*i : len(id)-10+2*i]
	}
	return strings.Join(parts, ":")
}

func (m *serialModel) ModuleInfoJSON() string { return m.d.ModuleJSON() }

// IdentifyExtra is what HAL_OTA_Add_System_Info adds to `i`: on Gen3 and later the
// serial number ("sn", fetch_system_properties in ota_flash_hal.cpp; the device secret
// before it is left out: a virtual unit has none to give), and on cellular platforms the
// modem's IMEI and the SIM's ICCID (hal/src/boron/ota_flash_hal.cpp), the same identity
// the control requests give.
func (m *serialModel) IdentifyExtra() []serialdev.KV {
	ident := m.d.Identity()
	var kv []serialdev.KV
	if m.d.p.Gen >= 3 {
		kv = append(kv, serialdev.KV{Key: "sn", Value: ident.Serial})
	}
	if cellular[m.d.p.Name] {
		kv = append(kv, serialdev.KV{Key: "imei", Value: ident.IMEI}, serialdev.KV{Key: "iccid", Value: ident.ICCID})
	}
	return kv
}

// cellular lists the platforms with a cellular modem (reference §1a), whose `i` output
// carries the modem's identity.
var cellular = map[string]bool{
	"electron": true, "boron": true, "bsom": true, "b5som": true, "tracker": true,
	"esomx": true, "msom": true, "trackerm": true, "electron2": true,
}

func (m *serialModel) sys() uint16 {
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	return m.d.sysVersionLocked()
}

// YModemSupported: Device OS 6.0.0 removed YMODEM (system_setup.cpp).
func (m *serialModel) YModemSupported() bool { return m.sys() < 6000 }

// ListenBaudTrigger: the 28800-baud trigger is gone from 6.0.0 (module-defaults.mk).
func (m *serialModel) ListenBaudTrigger() bool { return m.sys() < 6000 }

// BeginUpdate is Spark_Prepare_For_Firmware_Update: erase the OTA region for size bytes.
func (m *serialModel) BeginUpdate(size int) error {
	if !m.d.live(m.gen) {
		return errors.New("device reset")
	}
	if size < 0 || size > 1<<30 {
		return fmt.Errorf("bad size %d", size)
	}
	t, code := m.d.beginOTA(uint32(size))
	if code != ctrl.CodeOK {
		return fmt.Errorf("cannot prepare the OTA region for %d bytes: %s", size, ctrl.ResultName(code))
	}
	m.d.mu.Lock()
	if m.gen == m.d.gen {
		m.d.serialUpd = t
	}
	m.d.mu.Unlock()
	return nil
}

// SaveChunk is Spark_Save_Firmware_Chunk; the sender's padding past size is dropped.
func (m *serialModel) SaveChunk(offset int, p []byte) error {
	t := m.d.target(m.gen, true)
	if t == nil {
		return errors.New("no update in progress")
	}
	if offset < 0 || uint64(offset) >= uint64(t.size) {
		return nil
	}
	if room := int(t.size) - offset; len(p) > room {
		p = p[:room]
	}
	if code := m.d.writeOTA(t, uint32(offset), p); code != ctrl.CodeOK {
		return fmt.Errorf("flash write failed: %s", ctrl.ResultName(code))
	}
	return nil
}

// FinishUpdate is Spark_Finish_Firmware_Update: validate the image and register it for
// the bootloader; the code printed on failure is Device OS's system error.
func (m *serialModel) FinishUpdate() int {
	t := m.d.target(m.gen, true)
	if t == nil {
		return int(ctrl.CodeInvalidState)
	}
	code := m.d.validateOTA(t)
	if code != ctrl.CodeOK {
		slog.Info("sim: YMODEM image refused", "device", m.d.id, "code", code, "result", ctrl.ResultName(code))
		return int(code)
	}
	m.d.mu.Lock()
	if m.gen == m.d.gen {
		m.d.pending = t
		m.d.serialUpd = nil
	}
	m.d.mu.Unlock()
	return 0
}

// Reset restarts the device (after a YMODEM upload: to apply it).
func (m *serialModel) Reset(reason string) {
	m.d.resetAsync(m.gen, bootReq{reason: "serial: " + reason}, 0)
}

// EnterDFU is the 14400-baud trigger.
func (m *serialModel) EnterDFU() { m.d.resetAsync(m.gen, bootReq{dfu: true, reason: "14400 baud"}, 0) }

// EnterListening is the 28800-baud trigger.
func (m *serialModel) EnterListening() { m.d.setListening(m.gen, true) }

// ExitListening is `x`.
func (m *serialModel) ExitListening() { m.d.setListening(m.gen, false) }

// SafeListen is `L`: safe listening mode after a reset.
func (m *serialModel) SafeListen() {
	m.d.resetAsync(m.gen, bootReq{safe: true, listen: true, reason: "serial: L"}, 0)
}

// Listening reports whether the console answers: in listening mode, unless Device
// Protection switched it off (ListeningModeHandler::enter returns before the serial setup
// console starts on a protected device, system_listening_mode.cpp).
func (m *serialModel) Listening() bool {
	m.d.mu.Lock()
	defer m.d.mu.Unlock()
	return m.gen == m.d.gen && m.d.mode == ModeListening && !m.d.protectedLocked()
}
