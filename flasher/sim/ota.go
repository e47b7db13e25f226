package sim

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim/flash"
)

// pendingUpdate is a validated image waiting in the OTA region for the next reset, as
// HAL_FLASH_End leaves it registered in the DCT's module slots for the bootloader to copy.
type pendingUpdate struct {
	region *flash.Region
	addr   uint32
	size   uint32
}

// otaRegion is where Device OS (of the installed system version) keeps an update image.
func (d *Device) otaRegion(sys uint16) (*flash.Region, platform.Region, bool) {
	r, ok := d.p.OTARegionFor(sys)
	if !ok {
		return nil, platform.Region{}, false
	}
	mem := d.mems[r.Alt]
	if mem == nil {
		return nil, platform.Region{}, false
	}
	return mem, r, true
}

// preferred header offsets, as module.Parse tries them.
var headerOffsets = []uint32{0, 0x200, 0x184, 0x20, 0x10C, 0xC0}

// readImage reads a module file stored from addr (the OTA region): the first header
// found at a usual offset gives its length.
func readImage(r *flash.Region, addr, max uint32) ([]byte, bool) {
	for _, off := range headerOffsets {
		h := r.Snapshot(addr+off, module.PrefixSize)
		if h == nil || allFF(h) {
			continue
		}
		start, end := le32(h[0:]), le32(h[4:])
		fn := platform.Function(h[14])
		if end <= start || fn == platform.FuncNone || fn > platform.FuncAsset {
			continue
		}
		size := end - start + module.CRCSize
		if size > max || size < off+module.PrefixSize {
			continue
		}
		if data := r.Snapshot(addr, size); data != nil {
			return data, true
		}
	}
	return nil, false
}

// validateImage is HAL_FLASH_End's validation of the module in the OTA region
// (fetchModules + validateModules, ota_flash_hal.cpp HEAD), with user dependencies
// optional and the full-dependency check: the result codes are Device OS's.
func (d *Device) validateImage(s *scan, img []byte) (*module.Module, int32) {
	m, err := module.Parse(img)
	if err != nil || uint64(len(img)) != m.Size() {
		return nil, ctrl.CodeOTAModuleNotFound
	}
	if m.Function == platform.FuncAsset {
		// fetch_module skips the range, platform and dependency checks for assets; the
		// asset manager validates its own (AssetReader::validate).
		if !d.hasAssetStorage() || s.sys < assetsSince {
			return m, ctrl.CodeOTAUnsupportedModule
		}
		if _, ok := validAsset(img); !ok {
			return m, ctrl.CodeOTAValidationFailed
		}
		return m, ctrl.CodeOK
	}
	// fetch_module: the module's end must lie in the bounds of its slot.
	sl, ok := d.p.SlotFor(m.Function, m.Index, m.Version)
	if !ok || m.End < sl.Start || m.End > sl.End() {
		return nil, ctrl.CodeOTAModuleNotFound
	}
	integrity := m.CRCOK
	deps := s.depsOK(m.Function, m.Deps, true)
	full := deps && s.fullDepsOK(m.Function, m.Index, m.Version, m.Start)
	switch {
	case !integrity:
		return m, ctrl.CodeOTAIntegrityFailed
	case !deps || !full:
		return m, ctrl.CodeOTADependencyFailed
	case m.PlatformID != d.p.ID:
		return m, ctrl.CodeOTAInvalidPlatform
	}
	if m.HeaderOffset > 0 && (m.Flags.Has(module.FlagDropModuleInfo) || m.Compressed()) {
		return m, ctrl.CodeOTAInvalidFormat
	}
	if m.Compressed() && m.Function != platform.FuncUser && m.Function != platform.FuncSystem {
		return m, ctrl.CodeOTAUnsupportedModule
	}
	if m.Function == platform.FuncNCP && !d.p.HasNCP {
		return m, ctrl.CodeOTAUnsupportedModule
	}
	return m, ctrl.CodeOK
}

// applyImage installs a validated module: bootloader and parts at their start address,
// the SoftDevice without its prefix, NCP firmware into the NCP. It returns the device time
// the copy takes. d.mu must be held.
func (d *Device) applyImageLocked(m *module.Module, img []byte) (time.Duration, error) {
	data := img
	if m.Compressed() {
		out, err := m.Decompress()
		if err != nil {
			return 0, fmt.Errorf("sim: decompressing the update: %w", err)
		}
		data = out
		if mm, err := module.Parse(out); err == nil {
			m = mm
		}
	}
	switch m.Function {
	case platform.FuncNCP:
		d.ncp = &ncpState{version: m.Version, image: append([]byte(nil), data...)}
		return time.Duration(float64(len(data)) / NCPBytesPerSec * float64(time.Second)), nil
	case platform.FuncAsset:
		return 0, nil
	}
	addr := m.Start
	if m.Flags.Has(module.FlagDropModuleInfo) {
		data = data[m.HeaderOffset+module.PrefixSize:]
	}
	return d.writeFlash(d.internal, addr, data)
}

// writeFlash is Device OS or the bootloader writing its own flash: it erases the sectors
// covered and programs data, whatever the DFU permission letters say (those describe what
// the host may do), and returns the device time taken.
func (d *Device) writeFlash(r *flash.Region, addr uint32, data []byte) (time.Duration, error) {
	if r == nil {
		return 0, errors.New("sim: no such memory")
	}
	secs, err := r.Layout().SectorsCovering(addr, uint32(len(data)))
	if err != nil {
		return 0, fmt.Errorf("sim: writing %d bytes at 0x%08x: %w", len(data), addr, err)
	}
	var t time.Duration
	for _, s := range secs {
		if err := r.Load(s.Start, erased(int(s.Size))); err != nil {
			return t, fmt.Errorf("sim: erasing 0x%08x: %w", s.Start, err)
		}
		t += r.EraseDuration(s.Start)
	}
	if err := r.Load(addr, data); err != nil {
		return t, fmt.Errorf("sim: programming 0x%08x: %w", addr, err)
	}
	return t + r.ProgramDuration(len(data)), nil
}

func erased(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = flash.Erased
	}
	return b
}

// applyPendingLocked is the bootloader copying a registered update into place. The
// image is checked again (FLASH_CopyMemory verifies the CRC), so a DFU write into the OTA
// region after registration cannot smuggle something else in.
func (d *Device) applyPendingLocked(s *scan) (time.Duration, bool) {
	pu := d.pending
	d.pending = nil
	if pu == nil {
		return 0, false
	}
	img := pu.region.Snapshot(pu.addr, pu.size)
	if img == nil {
		return 0, false
	}
	m, code := d.validateImage(s, img)
	if code != ctrl.CodeOK || m == nil {
		slog.Warn("sim: pending update no longer valid; not applied", "device", d.id, "code", code)
		return 0, false
	}
	t, err := d.applyImageLocked(m, img)
	if err != nil {
		slog.Warn("sim: applying the pending update failed", "device", d.id, "err", err)
		return t, false
	}
	slog.Info("sim: update applied", "device", d.id, "function", m.Function, "index", m.Index, "version", m.Version)
	return t, true
}

// applyOTAFlagLocked is HAL_FLASH_ApplyPendingUpdate: with the DCT flag at 0xA5 the flag
// is cleared, and the module at the start of the OTA region validated and applied. It
// reports whether a module was applied (Device OS then resets).
func (d *Device) applyOTAFlagLocked(s *scan) (time.Duration, bool) {
	if d.dct == nil || d.p.OTAFlagValue == 0 {
		return 0, false
	}
	flag := d.dct.Snapshot(d.p.OTAFlagOffset, 1)
	if flag == nil || flag[0] != d.p.OTAFlagValue {
		return 0, false
	}
	t, _ := d.writeDCT(d.p.OTAFlagOffset, []byte{0xFF})
	mem, reg, ok := d.otaRegion(s.sys)
	if !ok {
		return t, false
	}
	img, ok := readImage(mem, reg.Address, reg.Size)
	if !ok {
		slog.Warn("sim: OTA flag set but no module in the OTA region", "device", d.id)
		return t, false
	}
	m, code := d.validateImage(s, img)
	if code != ctrl.CodeOK {
		slog.Warn("sim: module in the OTA region failed validation; not applied", "device", d.id, "code", code, "result", ctrl.ResultName(code))
		return t, false
	}
	at, err := d.applyImageLocked(m, img)
	if err != nil {
		slog.Warn("sim: applying the OTA region failed", "device", d.id, "err", err)
		return t + at, false
	}
	slog.Info("sim: OTA region applied", "device", d.id, "function", m.Function, "index", m.Index, "version", m.Version)
	return t + at, true
}

// writeDCT rewrites DCT bytes in place (dct_write_app_data).
func (d *Device) writeDCT(off uint32, b []byte) (time.Duration, error) {
	if err := d.dct.Load(off, b); err != nil {
		return 0, fmt.Errorf("sim: DCT write at %d: %w", off, err)
	}
	return d.dct.ProgramDuration(len(b)), nil
}
