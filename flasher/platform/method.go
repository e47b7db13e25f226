package platform

import "strconv"

// Method is a way of getting a module into its slot. A slot lists the methods that work
// for it, preferred first, because which one applies depends on the device's state: DFU
// needs the bootloader running, control requests need Device OS running, YMODEM needs
// listening mode on Device OS <= 5.9, and some slots (bootloaders) cannot be written
// over DFU at all.
type Method int

const (
	// MethodDFU writes the whole .bin with DfuSe on alt 0 at the slot's start address
	// (particle-cli flash-helper createFlashSteps; reference §2b).
	MethodDFU Method = iota
	// MethodDFUDropHeader writes over DfuSe on alt 0 at the start address but drops the
	// 24-byte module_info_t first: the SoftDevice ships as an OTA image with flag
	// DROP_MODULE_INFO and must not carry the prefix in flash (reference §6c.4).
	MethodDFUDropHeader
	// MethodOTARegion writes the .bin over DFU into the platform's OTA region and then
	// sets the DCT OTA flag (offset 1753 on alt 1) to 0xA5; Device OS applies the pending
	// module at the next boot (DOS HAL_FLASH_ApplyPendingUpdate). It is how the old CLI
	// `update` installed bootloaders, whose own sectors are read-only over DFU. The
	// region's address depends on the Device OS the device runs: see OTARegionFor.
	MethodOTARegion
	// MethodControl uses the USB control requests 250/253/251 (start/data/finish firmware
	// update) in normal mode; the device stores the module in its OTA area and applies it
	// itself (reference §4b). Gen2 needs Device OS >= 0.8.0.
	MethodControl
	// MethodYModem sends the module with YMODEM from the listening-mode serial console
	// ('f' command). Device OS 6.0.0 removed it, so it only works on Device OS <= 5.9.x
	// (reference §3c, §6c.8).
	MethodYModem
)

var methodNames = [...]string{"dfu", "dfu-drop-header", "ota-region", "control", "ymodem"}

// String is the short name used in plans, logs and the CLI.
func (m Method) String() string {
	if m >= 0 && int(m) < len(methodNames) {
		return methodNames[m]
	}
	return "method(" + strconv.Itoa(int(m)) + ")"
}

// UsesDFU reports whether the method writes through the DFU bootloader (so the device
// must be in DFU mode for it).
func (m Method) UsesDFU() bool {
	return m == MethodDFU || m == MethodDFUDropHeader || m == MethodOTARegion
}
