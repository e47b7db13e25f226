// Package module reads, checks, describes and builds Particle firmware module binaries:
// the .bin files Device OS is shipped as (bootloader, system parts, user apps, SoftDevice,
// NCP firmware, assets).
//
// A module is the code with a 24-byte module_info_t prefix somewhere near its start
// (offset 0, or after a vector table at 0x184/0x200/0x20/0x10C/0xC0), an optional list of
// prefix extensions, and a suffix read backwards from the end of the file: CRC-32 (stored
// big-endian), suffix size, SHA-256, reserved, product id/version and suffix extensions
// (reference §5; binary-version-reader lib/HalModuleParser.js is the reference parser).
//
// Parsing never panics and never reads out of range, whatever the input; problems come
// back as errors worded for a person ("file is 1234 bytes but the header says 5678"), each
// wrapping one of the Err* sentinels so callers can branch with errors.Is.
package module

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// Sizes of the fixed parts of the format (DOS dynalib/inc/module_info.h).
const (
	// PrefixSize is the size of module_info_t, the fixed part of the header.
	PrefixSize = 24
	// MinSuffixSize is module_info_suffix_t without product data: reserved, SHA-256 and
	// the suffix size field itself (the CRC after it is not counted).
	MinSuffixSize = 36
	// StandardSuffixSize adds the raw product id and version (the usual 40).
	StandardSuffixSize = MinSuffixSize + 4
	// RTLSuffixSize is the RTL872x suffix: DYNAMIC_LOCATION and PRODUCT_DATA extensions
	// before the base suffix.
	RTLSuffixSize = MinSuffixSize + 16 + 10
	// CRCSize is the trailing CRC-32, which module_end_address points at.
	CRCSize = 4
	// CompressedHeaderSize is compressed_module_header: u16 size, u8 method, u8 window
	// bits, u32 original size.
	CompressedHeaderSize = 8
	// NCPReserved is the reserved (mcu_target) byte of ESP32 NCP modules
	// (PLATFORM_NCP_ESP32, DOS hal/shared/platform_ncp.h).
	NCPReserved = 33
	// maxScanOffset bounds the search for a header: BVR deems anything beyond 8 KB
	// unreasonable, and it keeps a scan of random input cheap.
	maxScanOffset = 8 * 1024
)

// Flags is module_info_t.flags.
type Flags uint8

// Module flags (module_info_flags_t).
const (
	// FlagDropModuleInfo: the header is not written to flash (SoftDevice: the radio stack
	// must start exactly at 0x1000, so the 24-byte prefix is sliced off before writing).
	FlagDropModuleInfo Flags = 0x01
	// FlagCompressed: raw-deflate compressed body after a compressed_module_header.
	FlagCompressed Flags = 0x02
	// FlagCombined: another module follows this one in the same file.
	FlagCombined Flags = 0x04
	// FlagEncrypted: the body is encrypted (RTL872x prebootloader-part1); tools skip it.
	FlagEncrypted Flags = 0x08
	// FlagPrefixExtensions: TLV extensions follow the 24-byte prefix.
	FlagPrefixExtensions Flags = 0x10

	knownFlags = FlagDropModuleInfo | FlagCompressed | FlagCombined | FlagEncrypted | FlagPrefixExtensions
)

// Has reports whether every bit of f2 is set.
func (f Flags) Has(f2 Flags) bool { return f&f2 == f2 }

// String lists the set flags by name ("drop-module-info|compressed"), unknown bits in hex,
// "none" for zero.
func (f Flags) String() string {
	if f == 0 {
		return "none"
	}
	names := []struct {
		f Flags
		n string
	}{
		{FlagDropModuleInfo, "drop-module-info"}, {FlagCompressed, "compressed"},
		{FlagCombined, "combined"}, {FlagEncrypted, "encrypted"}, {FlagPrefixExtensions, "prefix-extensions"},
	}
	var parts []string
	for _, n := range names {
		if f.Has(n.f) {
			parts = append(parts, n.n)
		}
	}
	if rest := f &^ knownFlags; rest != 0 {
		parts = append(parts, fmt.Sprintf("0x%02x", uint8(rest)))
	}
	return strings.Join(parts, "|")
}

// Dependency is one of the two module_dependency_t slots of the header: the module this
// one needs, at least at Version. All zero means "no dependency".
type Dependency struct {
	Function platform.Function
	Index    uint8
	Version  uint16
}

// Empty reports an unused dependency slot.
func (d Dependency) Empty() bool { return d == Dependency{} }

// String formats the dependency as binary-version-reader dumps do: function/index/version,
// e.g. "bootloader/0/1200" ("none/0/0" when empty).
func (d Dependency) String() string {
	return fmt.Sprintf("%s/%d/%d", d.Function, d.Index, d.Version)
}

func (d Dependency) bytes() [4]byte {
	var b [4]byte
	b[0] = byte(d.Function)
	b[1] = d.Index
	binary.LittleEndian.PutUint16(b[2:], d.Version)
	return b
}

// Product is the product id and version a module carries in its suffix. Non-product
// modules carry 0xFFFF/0xFFFF (or 0/0 on recent Gen3 system parts and bootloaders); user
// apps built without PRODUCT_ID carry their platform ID and a small version.
type Product struct {
	ID      uint16
	Version uint16
}

// NoProduct is the value non-product modules carry.
var NoProduct = Product{ID: 0xFFFF, Version: 0xFFFF}

// CompressionHeader is compressed_module_header, found right after the prefix (and prefix
// extensions) of a compressed module.
type CompressionHeader struct {
	Size         uint16 // header size, 8 today; larger headers have fields we skip
	Method       uint8  // 0 = raw Deflate, the only method defined
	WindowBits   uint8  // 0 means 15
	OriginalSize uint32 // length of the data once inflated
}
