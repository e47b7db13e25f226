package platform

// The platform table. Sources are abbreviated as in shared/docs/particle-reference.md:
// DC = @particle/device-constants constants.json, DOS = particle-iot/device-os (tag after
// '@', none = 6.2.0), CLI = particle-cli, DR = docs.particle.io Device Restore JSON dumps.
//
// The family builders below return fresh values so platforms never share slices.

const (
	kib = 1024
	mib = 1024 * 1024

	particleVID = 0x2B04
	sparkVID    = 0x1D50 // the Core still uses Spark's VID (reference §1a)

	// DCT byte that makes Device OS apply the OTA region at boot, and its "set" value
	// (DOS platform/MCU/*/inc/dct.h: STATIC_ASSERT_DCT_OFFSET(ota_update_flag, 1753),
	// DCT_OTA_UPDATE_FLAG_SET 0xA5; same on STM32F2xx@v2.3.1, nRF52840 and rtl872x).
	dctOTAFlagOffset = 1753
	dctOTAFlagSet    = 0xA5

	// Gen3 (nRF52840) setup-done flag: DCT byte 8134, minded up to 3.x
	// (HAL_PLATFORM_DCT_SETUP_DONE, hal_platform_nrf52840_config.h @v3.3.1); 4.0.0-alpha.1
	// (system 4000) dropped it. The RTL872x platforms never minded it.
	dctSetupDoneOffset = 8134
	setupDoneUntil     = 4000

	// Gen3 system-part1 moved from 0x30000 to 0x28000 in Device OS 6.1.2 (DOS CHANGELOG
	// 6.1.2 "Increase system-part1 size", #2799); 6.1.1 is module version 6101.
	gen3LastLegacyPart1 = 6101
	gen3FirstNewPart1   = 6102

	// The earliest Gen3 module known: BVR fixture 080_system-part1-xenon.bin is module
	// version 312 = 0.8.0-rc.14 (device-os-module-versions.txt); reference §1a: "0.8.0-rc".
	gen3First = "0.8.0-rc.14"
)

// Method lists, preferred first (reference §2b, §6b, §6c).
var (
	// Gen2 bootloader sectors are read-only over DFU (alt 0 marks 0x08000000-0x0800BFFF
	// 'a'), so the CLI wrote it to the OTA region and set the flag (CLI settings.js@v2.14.0).
	gen2BootMethods = []Method{MethodOTARegion, MethodControl, MethodYModem}
	// Gen3 bootloader: the top eight pages of alt 0 (0xF8000-0xFFFFF) are read-only; CLI
	// and device-os-flash-util use normal mode (reference §6c.2).
	gen3BootMethods = []Method{MethodControl, MethodOTARegion, MethodYModem}
	// RTL872x bootloader and prebootloaders: only control requests in normal mode (the P2
	// "stuck on prebootloader-part1" reports in prior-art.md; CLI sends bootloaders to normal mode).
	rtlBootMethods = []Method{MethodControl}
	partMethods    = []Method{MethodDFU, MethodControl, MethodYModem}
	radioMethods   = []Method{MethodDFUDropHeader, MethodControl, MethodYModem}
	ncpMethods     = []Method{MethodControl, MethodYModem} // DC storage externalMcu: never DFU
	monoMethods    = []Method{MethodDFU}
	noMethodsAtAll = []Method(nil)
)

func methods(m []Method) []Method { return append([]Method(nil), m...) }

// ---- Core (Gen1) --------------------------------------------------------------------

func coreAlts() []Alt {
	// DOS bootloader/src/core/usb_desc.c@v0.5.5 (interface string comments).
	return []Alt{
		{Alt: 0, Name: "Internal Flash", Memory: MemInternal, Layout: "@Internal Flash   /0x08000000/20*001Ka,108*001Kg"},
		{Alt: 1, Name: "SPI Flash: SST25x", Memory: MemExternal, Layout: "@ SPI Flash: SST25x  /0x00000000/512*004Kg"},
	}
}

func coreSlots() []Slot {
	return []Slot{
		// The Core bootloader has no module header and sits in the 20 KB alt 0 keeps
		// read-only; nothing in this tool can rewrite it.
		{Name: "bootloader", Function: FuncBootloader, Index: 0, Start: 0x08000000, MaxSize: 0x5000,
			Storage: StorageInternal, Methods: noMethodsAtAll},
		// Monolithic firmware from 0x08005000 (DOS hw_config.h@v0.5.5 CORE_FW_ADDRESS) to the
		// end of the 128 KB flash; header at 0x10C (BVR, 044_Core_Tinker_P5_V10.bin).
		{Name: "mono", Function: FuncMono, Index: 0, Start: 0x08005000, MaxSize: 0x08020000 - 0x08005000,
			HeaderOffset: 0x10C, Storage: StorageInternal, Methods: methods(monoMethods)},
	}
}

// ---- Gen2 STM32F205: Photon, P1, Electron --------------------------------------------

func gen2Alts(serialFlash bool) []Alt {
	// DOS usbd_flash_if.h@v2.3.1, usbd_dct_if.h, usbd_sflash_if.h (P1 only: HAS_SERIAL_FLASH).
	alts := []Alt{
		{Alt: 0, Name: "Internal Flash", Memory: MemInternal, Layout: "@Internal Flash   /0x08000000/03*016Ka,01*016Kg,01*064Kg,07*128Kg"},
		{Alt: 1, Name: "DCT Flash", Memory: MemDCT, Layout: "@DCT Flash   /0x00000000/01*016Kg"},
	}
	if serialFlash {
		alts = append(alts, Alt{Alt: 2, Name: "Serial Flash", Memory: MemExternal, Layout: "@Serial Flash   /0x00000000/256*004Kg"})
	}
	return alts
}

// photonSlots: DOS hal/src/photon/ota_module_bounds.c@v2.3.1; header 0x184 = Gen2 vector
// table (modules/shared/stm32f2xx/part1_vtor_module.ld), confirmed by real files.
func photonSlots() []Slot {
	return []Slot{
		{Name: "bootloader", Function: FuncBootloader, Index: 0, Start: 0x08000000, MaxSize: 0x4000, HeaderOffset: 0x184, Storage: StorageInternal, Methods: methods(gen2BootMethods)},
		{Name: "system-part1", Function: FuncSystem, Index: 1, Start: 0x08020000, MaxSize: 0x40000, HeaderOffset: 0x184, Storage: StorageInternal, Methods: methods(partMethods)},
		{Name: "system-part2", Function: FuncSystem, Index: 2, Start: 0x08060000, MaxSize: 0x40000, HeaderOffset: 0x184, Storage: StorageInternal, Methods: methods(partMethods)},
		{Name: "user-part", Function: FuncUser, Index: 1, Start: 0x080A0000, MaxSize: 0x20000, Storage: StorageInternal, Methods: methods(partMethods)},
		// module_user_mono; RC4_unlocker.bin (BVR fixture) is a mono at 0x08020000, hdr 0x184.
		{Name: "mono", Function: FuncMono, Index: 0, Start: 0x08020000, MaxSize: 0x60000, HeaderOffset: 0x184, Storage: StorageInternal, Methods: methods(monoMethods)},
	}
}

// electronSlots: DOS hal/src/electron/ota_module_bounds.c@v2.3.1 and
// modules/electron/README.md. The release files are named by link order, not index:
// file system-part1 = index 3 at 0x08060000 (no fake vector table: hdr 0),
// system-part2 = index 1 at 0x08020000, system-part3 = index 2 at 0x08040000.
func electronSlots() []Slot {
	return []Slot{
		{Name: "bootloader", Function: FuncBootloader, Index: 0, Start: 0x08000000, MaxSize: 0x4000, HeaderOffset: 0x184, Storage: StorageInternal, Methods: methods(gen2BootMethods)},
		{Name: "system-part1", Function: FuncSystem, Index: 3, Start: 0x08060000, MaxSize: 0x20000, HeaderOffset: 0, Storage: StorageInternal, Methods: methods(partMethods)},
		{Name: "system-part2", Function: FuncSystem, Index: 1, Start: 0x08020000, MaxSize: 0x20000, HeaderOffset: 0x184, Storage: StorageInternal, Methods: methods(partMethods)},
		{Name: "system-part3", Function: FuncSystem, Index: 2, Start: 0x08040000, MaxSize: 0x20000, HeaderOffset: 0x184, Storage: StorageInternal, Methods: methods(partMethods)},
		{Name: "user-part", Function: FuncUser, Index: 1, Start: 0x08080000, MaxSize: 0x20000, Storage: StorageInternal, Methods: methods(partMethods)},
		{Name: "mono", Function: FuncMono, Index: 0, Start: 0x08020000, MaxSize: 0x60000, HeaderOffset: 0x184, Storage: StorageInternal, Methods: methods(monoMethods)},
	}
}

// ---- Gen3 nRF52840 --------------------------------------------------------------------

const gen3InternalLayout = "@Internal Flash   /0x00000000/1*004Ka,47*004Kg,192*004Kg,4*004Kg,4*004Kg,8*004Ka"

// gen3Alts: DOS bootloader/src/nRF52840/usbd_dfu_mal.h. The DCT alt was called "DCD Flash"
// by many bootloaders (v1.5.2..v4.0, v5.0.0); 8 MB parts described their external flash as
// 1024*008Kg before v4.0.0 (tags v2.0.0, v3.0.0).
func gen3Alts(extFlash8MB bool) []Alt {
	ext := Alt{Alt: 2, Name: "External Flash", Memory: MemExternal, Layout: "@External Flash   /0x80000000/1024*004Kg"}
	if extFlash8MB {
		ext.Layout = "@External Flash   /0x80000000/2048*004Kg"
		ext.Legacy = []string{"@External Flash   /0x80000000/1024*008Kg"}
	}
	return []Alt{
		{Alt: 0, Name: "Internal Flash", Memory: MemInternal, Layout: gen3InternalLayout},
		{Alt: 1, Name: "DCT Flash", Memory: MemDCT, Layout: "@DCT Flash   /0x00000000/1*016Ke",
			Legacy: []string{"@DCD Flash   /0x00000000/1*016Ke"}},
		ext,
	}
}

// gen3ProtectedAlts: *_IF_STRING_PROT in the same header (Device OS 6.x).
func gen3ProtectedAlts(extFlash8MB bool) []Alt {
	ext := "@External Flash   /0x80000000/1024*004Kb"
	if extFlash8MB {
		ext = "@External Flash   /0x80000000/2048*004Kb"
	}
	return []Alt{
		{Alt: 0, Name: "Internal Flash", Memory: MemInternal, Layout: "@Internal Flash   /0x00000000/1*004Kb,47*004Kb,192*004Kb,4*004Kb,4*004Kb,8*004Kb"},
		{Alt: 1, Name: "DCT Flash", Memory: MemDCT, Layout: "@DCT Flash   /0x00000000/1*016Kb"},
		{Alt: 2, Name: "External Flash", Memory: MemExternal, Layout: ext},
	}
}

type gen3Opts struct {
	ncp bool // ESP32 NCP module (DC ncpFirmware, storage externalMcu)
	// ncpSince is the first system module version whose Device OS lists and updates the
	// NCP (HAL_PLATFORM_NCP_UPDATABLE): 0 on the Argon, 3000 (3.0.0-alpha.1, commit
	// 31aaf36b1) on the Tracker.
	ncpSince uint16
	// current: the platform got Device OS >= 3.1.0 (256 KB user part at 0xB4000) and
	// >= 6.1.2 (system-part1 at 0x28000). Xenon, A SoM and X SoM stopped at 1.5.x.
	current bool
}

// gen3Slots: DOS hal/src/nRF52840/ota_module_bounds.c (HEAD, @v6.1.1, @v3.1.0, @v1.5.2).
func gen3Slots(o gen3Opts) []Slot {
	var s []Slot
	s = append(s, Slot{Name: "bootloader", Function: FuncBootloader, Index: 0, Start: 0xF4000, MaxSize: 0xC000,
		HeaderOffset: 0x200, Storage: StorageInternal, Methods: methods(gen3BootMethods)})
	if o.current {
		// 6.1.2+: 0x28000, maximum_size 0x8C000 (ends where the 256 KB user part begins).
		s = append(s, Slot{Name: "system-part1", Function: FuncSystem, Index: 1, Start: 0x28000, MaxSize: 0x8C000,
			HeaderOffset: 0x200, Storage: StorageInternal, Methods: methods(partMethods), MinModuleVersion: gen3FirstNewPart1})
	}
	// <= 6.1.1: 0x30000, maximum_size 0xA4000 = 671,744 (to 0xD4000; since 3.1.0 a 256 KB
	// user part at 0xB4000 overlaps its end, reference §6c.5).
	s = append(s, Slot{Name: "system-part1", Function: FuncSystem, Index: 1, Start: 0x30000, MaxSize: 0xA4000,
		HeaderOffset: 0x200, Storage: StorageInternal, Methods: methods(partMethods), MaxModuleVersion: gen3LastLegacyPart1})
	if o.current {
		// Known to Device OS since 3.1.0-rc.1 (system module 3102): commit 70edb002f "[gen3]
		// 256KB application support" is first in v3.1.0-rc.1, whose Tinker already sits at
		// 0xB4000 (DR 3.1.0-rc.1). Device OS checks the 128 KB slot at 0xD4000 (index 1)
		// first and runs this one only when that holds no valid application (user_hal.cpp
		// hal_user_module_get_descriptor @v3.1.0..v6.2.0).
		s = append(s, Slot{Name: "user-part", Function: FuncUser, Index: 2, Start: 0xB4000, MaxSize: 0x40000,
			Storage: StorageInternal, Methods: methods(partMethods), KnownSince: 3102})
	}
	s = append(s, Slot{Name: "user-part", Function: FuncUser, Index: 1, Start: 0xD4000, MaxSize: 0x20000,
		Storage: StorageInternal, Methods: methods(partMethods)})
	// SoftDevice from 0x1000 (after the MBR). maximum_size was 0x2F000 (to 0x30000) up to
	// 6.1.1 and is 0x26000 (to 0x27000) since system-part1 moved to 0x28000; the smaller
	// bound is used so a SoftDevice that passes can never reach a relocated system-part1.
	// Real SoftDevices are 148,488-153,204 bytes (DR, EXPECTED.tsv).
	s = append(s, Slot{Name: "softdevice", Function: FuncRadio, Index: 0, Start: 0x1000, MaxSize: 0x26000,
		Storage: StorageInternal, Methods: methods(radioMethods)})
	if o.ncp {
		// module_ncp_mono: 1500*1024 on the NCP's own flash, start 0.
		s = append(s, Slot{Name: "ncp-firmware", Function: FuncNCP, Index: 0, Start: 0, MaxSize: 1500 * kib,
			Storage: StorageNCP, Methods: methods(ncpMethods), KnownSince: o.ncpSince})
	}
	if o.current {
		s = append(s, Slot{Name: "mono", Function: FuncMono, Index: 0, Start: 0x28000, MaxSize: 0xCC000,
			HeaderOffset: 0x200, Storage: StorageInternal, Methods: methods(monoMethods), MinModuleVersion: gen3FirstNewPart1})
	}
	// Monolithic builds sat at 0x30000 up to 6.1.1 (esim-firmware-b5som.bin: v5200 @0x30000, hdr 0x200).
	s = append(s, Slot{Name: "mono", Function: FuncMono, Index: 0, Start: 0x30000, MaxSize: 0xC4000,
		HeaderOffset: 0x200, Storage: StorageInternal, Methods: methods(monoMethods), MaxModuleVersion: gen3LastLegacyPart1})
	return s
}

// gen3OTA: EXTERNAL_FLASH_OTA_ADDRESS in DOS platform/MCU/nRF52840/inc/flash_mal.h, per tag,
// as a DfuSe address on alt 2 (external flash based at 0x80000000), length 1500 KB.
//   - 4 MB parts: 0x200000 (factory) + factory length + reserved = 0x289000 through 5.4.1
//     (module version 5410); 5.5.0-rc.1 (5500) cut the reserved area to 48 KB: 0x24C000.
//   - 8 MB parts (B5 SoM, Tracker, E-SoM-X): 0x689000 since 1.5.3-tracker.1 (1513); the
//     B5 SoM on <= 1.5.2 (1512) still used the 4 MB layout.
func gen3OTA(extFlash8MB bool) (Region, []OTARegionVariant) {
	const alt, size = 2, 1500 * kib
	classic := Region{Alt: alt, Address: 0x80289000, Size: size}
	if extFlash8MB {
		big := Region{Alt: alt, Address: 0x80689000, Size: size}
		return big, []OTARegionVariant{
			{Region: classic, MaxSystemVersion: 1512},
			{Region: big, MinSystemVersion: 1513},
		}
	}
	return classic, []OTARegionVariant{
		{Region: classic, MaxSystemVersion: 5499},
		{Region: Region{Alt: alt, Address: 0x8024C000, Size: size}, MinSystemVersion: 5500},
	}
}

// gen3FactoryReset: EXTERNAL_FLASH_FAC_ADDRESS (flash_mal.h): 0x200000 on 4 MB parts,
// 0x600000 on 8 MB parts; EXTERNAL_FLASH_FAC_LENGTH 256 KB (128 KB before 3.x).
func gen3FactoryReset(extFlash8MB bool) *Region {
	addr := uint32(0x80200000)
	if extFlash8MB {
		addr = 0x80600000
	}
	return &Region{Alt: 2, Address: addr, Size: 256 * kib}
}

// ---- Gen4 / RTL872x: P2, Tracker M, M SoM, Sulu -------------------------------------

func rtlAlts() []Alt {
	// DOS bootloader/src/rtl872x/usbd_dfu_mal.h.
	return []Alt{
		{Alt: 0, Name: "Internal Flash", Memory: MemInternal, Layout: "@Internal Flash   /0x08000000/2048*004Kg"},
		{Alt: 1, Name: "DCT Flash", Memory: MemDCT, Layout: "@DCT Flash   /0x00000000/1*016Ke"},
	}
}

func rtlProtectedAlts() []Alt {
	return []Alt{
		{Alt: 0, Name: "Internal Flash", Memory: MemInternal, Layout: "@Internal Flash   /0x08000000/2048*004Kb"},
		{Alt: 1, Name: "DCT Flash", Memory: MemDCT, Layout: "@DCT Flash   /0x00000000/1*016Kb"},
	}
}

// rtlUserEnd is where every RTL872x user part ends (platform_flash.ld: the 2 MB
// filesystem starts at 0x08600000).
const rtlUserEnd = 0x08600000

// rtlSlots: DOS hal/src/rtl872x/ota_module_bounds.c (sizes since 5.5.0; 2 MB before) and
// build/arm/linker/rtl872x/platform_flash.ld.
func rtlSlots() []Slot {
	return []Slot{
		// Header at 0x20, after the 32-byte Realtek image header.
		{Name: "bootloader", Function: FuncBootloader, Index: 0, Start: 0x08004000, MaxSize: 0x10000, HeaderOffset: 0x20,
			Storage: StorageInternal, Methods: methods(rtlBootMethods)},
		// module_mbr. DC marks bootloader index 1 encrypted and particle-cli therefore never
		// flashes it; Device Restore bundles leave it out too.
		{Name: "prebootloader-mbr", Function: FuncBootloader, Index: 1, Start: 0x08000000, MaxSize: 0x2000, HeaderOffset: 0x20,
			Storage: StorageInternal, Methods: methods(rtlBootMethods), Encrypted: true},
		// module_km0_part1 (0x4A000; 0x4B000 in some 5.x trees). DR shows prefixOffset 0.
		{Name: "prebootloader-part1", Function: FuncBootloader, Index: 2, Start: 0x08014000, MaxSize: 0x4A000,
			Storage: StorageInternal, Methods: methods(rtlBootMethods)},
		{Name: "system-part1", Function: FuncSystem, Index: 1, Start: 0x08060000, MaxSize: 0x180000,
			Storage: StorageInternal, Methods: methods(partMethods)},
		{Name: "user-part", Function: FuncUser, Index: 1, Start: rtlUserEnd - 0x180000, MaxSize: 0x180000, EndFixed: true,
			Storage: StorageInternal, Methods: methods(partMethods)},
		{Name: "mono", Function: FuncMono, Index: 0, Start: 0x08060000, MaxSize: 0x400000,
			Storage: StorageInternal, Methods: methods(monoMethods)},
	}
}

// rtlOTA: module_ota, 0x08260000 in internal flash (alt 0), 1.5 MB since 5.5.0.
func rtlOTA() (Region, []OTARegionVariant) {
	r := Region{Alt: 0, Address: 0x08260000, Size: 0x180000}
	return r, []OTARegionVariant{{Region: r}}
}

// ---- the table ----------------------------------------------------------------------

func gen2Platform(p Platform, serialFlash bool, slots []Slot, ota Region) *Platform {
	p.Gen = 2
	p.MCU = "stm32f2xx"
	p.VID, p.DFUVID = particleVID, particleVID
	p.PID, p.DFUPID = 0xC000|p.ID, 0xD000|p.ID
	p.Alts = gen2Alts(serialFlash)
	p.TransferSize = 4096 // SPARK_Firmware_Driver/inc/usbd_conf.h XFERSIZE
	p.Slots = slots
	p.OTARegion = ota
	p.OTARegions = []OTARegionVariant{{Region: ota}}
	p.OTAFlagOffset, p.OTAFlagValue = dctOTAFlagOffset, dctOTAFlagSet
	p.LED = LEDFacts{FactoryRestoreGreen: true, D7WhenDark: true, SerialDFU: true}
	return &p
}

func gen3Platform(p Platform, extFlash8MB bool, o gen3Opts) *Platform {
	p.Gen = 3
	p.MCU = "nrf52840"
	p.VID, p.DFUVID = particleVID, particleVID
	p.PID, p.DFUPID = 0xC000|p.ID, 0xD000|p.ID
	p.Alts = gen3Alts(extFlash8MB)
	if o.current {
		p.ProtectedAlts = gen3ProtectedAlts(extFlash8MB)
	}
	p.TransferSize = 4096
	p.Slots = gen3Slots(o)
	p.OTARegion, p.OTARegions = gen3OTA(extFlash8MB)
	p.OTAFlagOffset, p.OTAFlagValue = dctOTAFlagOffset, dctOTAFlagSet
	p.SetupDone = &SetupDoneFlag{DCTOffset: dctSetupDoneOffset, Until: setupDoneUntil}
	p.FormerUserPart = &Region{Alt: 0, Address: 0xD4000, Size: 4096} // DC dfu.segments.formerUserPart
	p.FactoryReset = gen3FactoryReset(extFlash8MB)
	p.HasNCP = o.ncp
	p.HasRadioStack = true
	return &p
}

func rtlPlatform(p Platform) *Platform {
	p.MCU = "rtl872x"
	p.VID, p.DFUVID = particleVID, particleVID
	p.PID, p.DFUPID = 0xC000|p.ID, 0xD000|p.ID
	p.Alts = rtlAlts()
	p.ProtectedAlts = rtlProtectedAlts()
	p.TransferSize = 4096
	p.Slots = rtlSlots()
	p.OTARegion, p.OTARegions = rtlOTA()
	p.OTAFlagOffset, p.OTAFlagValue = dctOTAFlagOffset, dctOTAFlagSet
	p.ControlOutNeedsData = true // DC usb.quirks.controlOutTransfersRequireDataStage
	return &p
}

// table lists every supported platform. Display names and aliases follow DC; extra
// aliases come from the reference §1a. Buttons per reference §7 ("P1,
// B/B5/M SoM, E404X, Tracker SoM"; Tracker One / Monitor One have no user-reachable MODE);
// the A and X SoMs are SoMs like the B SoM. The reference says nothing about Tracker M,
// Electron 2 and Sulu: Tracker M and Sulu are treated as button-less (enclosed Tracker
// family / not a dev kit) so the UI falls back to control requests, Electron 2 as a
// development board with buttons like the Electron it replaces.
var table = []*Platform{
	{
		ID: 0, Name: "core", DisplayName: "Core", Aliases: []string{"c"},
		Gen: 1, MCU: "stm32f1xx",
		VID: sparkVID, PID: 0x607D, DFUVID: sparkVID, DFUPID: 0x607F,
		Alts:         coreAlts(),
		TransferSize: 1024, // bootloader/src/core/usb_desc.h wTransferSize 0x0400
		Slots:        coreSlots(),
		// Factory image in the SPI flash (DC segments.factoryReset; hw_config.h@v0.5.5:
		// FAC = 0x20000, one 128 KB block). The Core has no DCT alt, so no OTA-flag trick.
		FactoryReset: &Region{Alt: 1, Address: 0x00020000, Size: 0x20000},
		LastDeviceOS: "1.4.4", // release.sh@v1.4.4 still builds Core; dropped in 1.5.0
	},
	gen2Platform(Platform{
		ID: 6, Name: "photon", DisplayName: "Photon", Aliases: []string{"p"},
		// factory user image: module_factory 0x080E0000, 128 KB
		FactoryReset:  &Region{Alt: 0, Address: 0x080E0000, Size: 0x20000},
		Buttons:       Buttons{Mode: "SETUP"},
		FirstDeviceOS: "0.4.0", LastDeviceOS: "3.3.1",
	}, false, photonSlots(), Region{Alt: 0, Address: 0x080C0000, Size: 0x40000}), // module_ota@v2.3.1
	gen2Platform(Platform{
		ID: 8, Name: "p1", DisplayName: "P1",
		FactoryReset:  &Region{Alt: 0, Address: 0x080E0000, Size: 0x20000},
		Buttons:       Buttons{Reach: CarrierPins},
		FirstDeviceOS: "0.4.0", LastDeviceOS: "3.3.1",
	}, true, photonSlots(), Region{Alt: 0, Address: 0x080C0000, Size: 0x40000}),
	gen2Platform(Platform{
		ID: 10, Name: "electron", DisplayName: "Electron", Aliases: []string{"e", "e series"},
		FactoryReset:  &Region{Alt: 0, Address: 0x080A0000, Size: 0x20000}, // module_factory@v2.3.1
		FirstDeviceOS: "0.4.6", LastDeviceOS: "3.3.1",
	}, false, electronSlots(), Region{Alt: 0, Address: 0x080C0000, Size: 0x20000}), // module_ota@v2.3.1
	gen3Platform(Platform{
		ID: 12, Name: "argon", DisplayName: "Argon", Aliases: []string{"a"},
		FirstDeviceOS: gen3First,
	}, false, gen3Opts{ncp: true, current: true}),
	gen3Platform(Platform{
		ID: 13, Name: "boron", DisplayName: "Boron", Aliases: []string{"b"},
		FirstDeviceOS: gen3First,
		SKUFloors:     []SKUFloor{{SKUs: "BRN404X", DeviceOS: "4.0.1", Why: "its u-blox SARA-R510 modem"}},
	}, false, gen3Opts{current: true}),
	gen3Platform(Platform{
		ID: 14, Name: "xenon", DisplayName: "Xenon", Aliases: []string{"x"},
		FirstDeviceOS: gen3First, LastDeviceOS: "1.5.2",
	}, false, gen3Opts{}),
	// E404X = esomx (rickkas7/NFC_UICR_RK). 8 MB external flash: flash_mal.h lists
	// PLATFORM_ESOMX with Tracker and B5 SoM.
	gen3Platform(Platform{
		ID: 15, Name: "esomx", DisplayName: "E-SoM-X", Aliases: []string{"e404x"},
		Buttons: Buttons{Reach: CarrierPins}, FirstDeviceOS: "4.0.0-alpha.2",
		SKUFloors: []SKUFloor{{SKUs: "E404X", DeviceOS: "4.0.1", Why: "its u-blox SARA-R510 modem"}},
	}, true, gen3Opts{current: true}),
	gen3Platform(Platform{
		ID: 22, Name: "asom", DisplayName: "A-SoM",
		Buttons: Buttons{Reach: CarrierPins}, FirstDeviceOS: "1.1.0", LastDeviceOS: "1.4.4",
	}, false, gen3Opts{ncp: true}),
	gen3Platform(Platform{
		ID: 23, Name: "bsom", DisplayName: "B-SoM",
		Buttons: Buttons{Reach: CarrierPins}, FirstDeviceOS: "1.1.0",
		SKUFloors: []SKUFloor{{SKUs: "B404X", DeviceOS: "4.0.1", Why: "its u-blox SARA-R510 modem"},
			{SKUs: "B404", DeviceOS: "2.3.0", Why: "its EtherSIM"}},
	}, false, gen3Opts{current: true}),
	gen3Platform(Platform{
		ID: 24, Name: "xsom", DisplayName: "X-SoM",
		Buttons: Buttons{Reach: CarrierPins}, FirstDeviceOS: "1.1.0", LastDeviceOS: "1.4.4",
	}, false, gen3Opts{}),
	gen3Platform(Platform{
		ID: 25, Name: "b5som", DisplayName: "B5-SoM",
		Buttons: Buttons{Reach: CarrierPins}, FirstDeviceOS: "1.4.5-b5som",
	}, true, gen3Opts{current: true}),
	gen3Platform(Platform{
		ID: 26, Name: "tracker", DisplayName: "Asset Tracker / Monitor One",
		Aliases:       []string{"assettracker", "tracker one", "tracker som", "monitor one"},
		FirstDeviceOS: "1.5.3-tracker.1",
		Buttons: Buttons{Reach: Enclosed, Enclosed: "The Tracker One and Monitor One have no MODE button you can reach, " +
			"and on a Tracker SoM MODE and RESET are carrier-board signals"},
	}, true, gen3Opts{ncp: true, ncpSince: 3000, current: true}),
	rtlPlatform(Platform{
		ID: 28, Name: "trackerm", DisplayName: "Tracker-M", Gen: 3, // DC generation 3 although RTL872x
		Buttons: Buttons{Reach: Enclosed}, FirstDeviceOS: "5.0.0",
	}),
	rtlPlatform(Platform{
		ID: 32, Name: "p2", DisplayName: "Photon 2 / P2", Aliases: []string{"photon2"},
		// The Photon 2 board has MODE/RESET; the bare P2 module shares the ID and, like
		// the P1, only brings them out as pins.
		Gen: 4, FirstDeviceOS: "3.2.1-p2.2",
		Buttons: Buttons{Note: "A bare P2 module has no buttons: its MODE and RESET are pins for the carrier board."},
	}),
	rtlPlatform(Platform{
		ID: 35, Name: "msom", DisplayName: "M-SoM", Aliases: []string{"muon"},
		Gen: 4, Buttons: Buttons{Reach: CarrierPins}, FirstDeviceOS: "5.5.0-rc.1",
	}),
	// Electron 2 is newer than the Device OS tree the reference read; DC gives it the Gen3
	// segments of a 4 MB part (factoryReset 0x00200000), so it gets the 4 MB Gen3 layout.
	gen3Platform(Platform{
		ID: 37, Name: "electron2", DisplayName: "Electron 2", Aliases: []string{"electron2"},
		// First supported Device OS: DOCS datasheets/e-series/electron-2-datasheet.md.
		FirstDeviceOS: "6.3.0",
	}, false, gen3Opts{current: true}),
	rtlPlatform(Platform{
		ID: 38, Name: "sulu", DisplayName: "Sulu", Aliases: []string{"sulu"},
		Gen: 4, Buttons: Buttons{Reach: Enclosed},
	}),
}
