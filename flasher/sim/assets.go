package sim

import (
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"sort"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// Assets, as Device OS 5.5.0 and later keep them (system/src/asset_manager.cpp): asset
// modules (function 9) stored whole, one file per name, in a file system of their own
// (littlefs instance FILESYSTEM_INSTANCE_ASSET_STORAGE on the external flash).
const (
	// assetsSince: HAL_PLATFORM_ASSETS on nRF52840 and RTL872x from 5.5.0 (system 5500).
	assetsSince = 5500
	// assetInfoSince: GET_ASSET_INFO (91) came with 5.6.0 (system 5600).
	assetInfoSince = 5600
)

// storedAsset is one asset file.
type storedAsset struct {
	name, hash string // hash: the HASH extension (SHA-256 of the raw asset), hex
	size       int    // the raw asset's size
	module     []byte // the whole asset module, as stored
}

// hasAssetStorage: the MCUs whose Device OS keeps assets.
func (d *Device) hasAssetStorage() bool { return d.p.MCU == "nrf52840" || d.p.MCU == "rtl872x" }

// validAsset is AssetReader::validate(full): function 9, DROP_MODULE_INFO, no prefix
// extensions, a size that matches, a good CRC, and NAME and HASH suffix extensions.
func validAsset(img []byte) (storedAsset, bool) {
	if len(img) < module.PrefixSize+module.MinSuffixSize+module.CRCSize {
		return storedAsset{}, false
	}
	start, end := binary.LittleEndian.Uint32(img[0:]), binary.LittleEndian.Uint32(img[4:])
	flags := module.Flags(img[9])
	if platform.Function(img[14]) != platform.FuncAsset || !flags.Has(module.FlagDropModuleInfo) ||
		flags.Has(module.FlagPrefixExtensions) || end < start || uint64(end-start)+module.CRCSize != uint64(len(img)) {
		return storedAsset{}, false
	}
	n := len(img) - module.CRCSize
	if crc32.ChecksumIEEE(img[:n]) != binary.BigEndian.Uint32(img[n:]) {
		return storedAsset{}, false
	}
	name := suffixExtension(img, module.ExtName)
	hash := suffixExtension(img, module.ExtHash)
	if len(name) == 0 || len(hash) < 2 || 2+int(hash[1]) > len(hash) {
		return storedAsset{}, false
	}
	ss := int(binary.LittleEndian.Uint16(img[n-2:]))
	a := storedAsset{name: string(name), hash: hex.EncodeToString(hash[2 : 2+int(hash[1])]), module: append([]byte(nil), img...)}
	a.size = n - ss - module.PrefixSize
	if flags.Has(module.FlagCompressed) {
		if m, err := module.Parse(img); err == nil {
			if raw, err := m.AssetContent(); err == nil {
				a.size = len(raw)
			}
		}
	}
	return a, true
}

// storeAssetLocked is AssetManager::storeAsset: first the assets the running application
// does not need are deleted (clearUnusedAssets), then the new one is written.
func (d *Device) storeAssetLocked(s *scan, a storedAsset) {
	need := map[string]bool{}
	if u, ok := s.userSlot(); ok && u.found {
		for _, r := range u.assets {
			need[r.name] = true
		}
	}
	for name := range d.assets {
		if !need[name] {
			delete(d.assets, name)
		}
	}
	if d.assets == nil {
		d.assets = map[string]storedAsset{}
	}
	d.assets[a.name] = a
}

// assetInfo is storage.cpp's getAssetInfo: the assets stored, and those the current user
// part depends on.
func (d *Device) assetInfo(sys uint16) (int32, []byte) {
	if !d.hasAssetStorage() || sys < assetInfoSince {
		return ctrl.CodeNotSupported, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var info ctrl.AssetInfo
	names := make([]string, 0, len(d.assets))
	for n := range d.assets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a := d.assets[n]
		info.Available = append(info.Available, ctrl.Asset{Name: a.name, Hash: a.hash, Size: uint32(a.size), StorageSize: uint32(len(a.module))})
	}
	if u, ok := d.scanLocked().userSlot(); ok && u.found && u.crcOK {
		for _, r := range u.assets {
			info.Required = append(info.Required, ctrl.Asset{Name: r.name, Hash: r.hash})
		}
	}
	return ctrl.CodeOK, ctrl.EncodeAssetInfoReply(info)
}

// Assets lists the asset files the device holds, by name, with their hashes.
func (d *Device) Assets() map[string]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]string{}
	for n, a := range d.assets {
		out[n] = a.hash
	}
	return out
}
