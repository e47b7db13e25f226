package module

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// ExtensionType is module_info_extension_t.type.
type ExtensionType uint16

// Extension types (DOS module_info.h; BVR lib/ModuleInfo.js).
const (
	ExtEnd             ExtensionType = 0x0000 // ends a list; may carry padding
	ExtProductData     ExtensionType = 0x0001 // u32 id; u16 version
	ExtDynamicLocation ExtensionType = 0x0002 // u32 module_start; u32 dynalib_load; u32 dynalib_start
	ExtDependency      ExtensionType = 0x0003 // u8 fn; u8 idx; u16 version; u32 target id
	ExtHash            ExtensionType = 0x0010 // u8 type; u8 len; hash
	ExtName            ExtensionType = 0x0011 // name bytes
	ExtAssetDependency ExtensionType = 0x0012 // u8 hash type; u8 len; hash; name
	ExtSecurityMode    ExtensionType = 0x0013 // u8 mode; DER certificate
	ExtAssetType       ExtensionType = 0x0014 // u8 asset type; u8 reserved
	ExtInvalid         ExtensionType = 0xFFFF // erased flash: never a real extension
)

// extHeaderSize is the {u16 type; u16 length} header; length includes it.
const extHeaderSize = 4

var extNames = map[ExtensionType]string{
	ExtEnd: "end", ExtProductData: "product-data", ExtDynamicLocation: "dynamic-location",
	ExtDependency: "dependency", ExtHash: "hash", ExtName: "name", ExtAssetDependency: "asset-dependency",
	ExtSecurityMode: "security-mode", ExtAssetType: "asset-type", ExtInvalid: "invalid",
}

// String names the type, or gives it in hex when unknown.
func (t ExtensionType) String() string {
	if n, ok := extNames[t]; ok {
		return n
	}
	return "0x" + strconv.FormatUint(uint64(t), 16)
}

// Security modes of the SECURITY_MODE extension.
const (
	SecurityNone      = 0
	SecurityProtected = 1 // device protection (Device OS 6.x): the bootloader refuses DFU I/O
)

// Extension is one TLV record of a module's prefix or suffix extension list.
type Extension struct {
	Type ExtensionType
	// Offset is where the record starts in the module (0 for one not parsed from a file).
	Offset int
	// Payload is the record after its 4-byte header. For END it is the padding.
	Payload []byte
}

// Len is the record's length field: header plus payload.
func (e Extension) Len() int { return extHeaderSize + len(e.Payload) }

// Bytes encodes the record.
func (e Extension) Bytes() []byte {
	b := make([]byte, e.Len())
	binary.LittleEndian.PutUint16(b, uint16(e.Type))
	binary.LittleEndian.PutUint16(b[2:], uint16(e.Len()))
	copy(b[extHeaderSize:], e.Payload)
	return b
}

// ProductData decodes a PRODUCT_DATA record. The 32-bit id field holds the 16-bit
// product id in its upper half (the lower half is 0xFFFF), which is why binary-version-reader
// reports only those 16 bits; version is the product version.
func (e Extension) ProductData() (p Product, ok bool) {
	if e.Type != ExtProductData || len(e.Payload) < 6 {
		return Product{}, false
	}
	return Product{ID: binary.LittleEndian.Uint16(e.Payload[2:]), Version: binary.LittleEndian.Uint16(e.Payload[4:])}, true
}

// DynamicLocation decodes a DYNAMIC_LOCATION record (RTL872x): where the module starts and
// where its dynalib table is loaded from and lives.
func (e Extension) DynamicLocation() (moduleStart, dynalibLoad, dynalibStart uint32, ok bool) {
	if e.Type != ExtDynamicLocation || len(e.Payload) < 12 {
		return 0, 0, 0, false
	}
	p := e.Payload
	return binary.LittleEndian.Uint32(p), binary.LittleEndian.Uint32(p[4:]), binary.LittleEndian.Uint32(p[8:]), true
}

// Dependency decodes a DEPENDENCY record: a dependency beyond the header's two slots,
// possibly on another MCU (targetID).
func (e Extension) Dependency() (d Dependency, targetID uint32, ok bool) {
	if e.Type != ExtDependency || len(e.Payload) < 8 {
		return Dependency{}, 0, false
	}
	p := e.Payload
	return depFromBytes(p), binary.LittleEndian.Uint32(p[4:]), true
}

// Hash decodes a HASH record (type 0 = SHA-256) and returns the hash in hex.
func (e Extension) Hash() (hashType uint8, hash string, ok bool) {
	if e.Type != ExtHash || len(e.Payload) < 2 {
		return 0, "", false
	}
	return e.Payload[0], hex.EncodeToString(e.Payload[2:]), true
}

// Name decodes a NAME record (assets carry their file name).
func (e Extension) Name() (string, bool) {
	if e.Type != ExtName {
		return "", false
	}
	return string(e.Payload), true
}

// AssetDependency is an ASSET_DEPENDENCY record: an asset the application needs on the
// device, by hash and file name.
type AssetDependency struct {
	HashType uint8
	Hash     string // hex
	Name     string
}

// AssetDependency decodes an ASSET_DEPENDENCY record.
func (e Extension) AssetDependency() (AssetDependency, bool) {
	if e.Type != ExtAssetDependency || len(e.Payload) < 2 {
		return AssetDependency{}, false
	}
	n := int(e.Payload[1])
	if 2+n > len(e.Payload) {
		return AssetDependency{}, false
	}
	return AssetDependency{
		HashType: e.Payload[0],
		Hash:     hex.EncodeToString(e.Payload[2 : 2+n]),
		Name:     string(e.Payload[2+n:]),
	}, true
}

// SecurityMode decodes a SECURITY_MODE record: the mode and an optional DER certificate.
func (e Extension) SecurityMode() (mode uint8, cert []byte, ok bool) {
	if e.Type != ExtSecurityMode || len(e.Payload) < 1 {
		return 0, nil, false
	}
	if len(e.Payload) > 1 {
		cert = e.Payload[1:]
	}
	return e.Payload[0], cert, true
}

// AssetType decodes an ASSET_TYPE record (0 default, 1 env vars app, 2 env vars snapshot).
func (e Extension) AssetType() (uint8, bool) {
	if e.Type != ExtAssetType || len(e.Payload) < 1 {
		return 0, false
	}
	return e.Payload[0], true
}

// String is a short description for logs.
func (e Extension) String() string {
	switch e.Type {
	case ExtProductData:
		if p, ok := e.ProductData(); ok {
			return fmt.Sprintf("product-data{id %d, version %d}", p.ID, p.Version)
		}
	case ExtDynamicLocation:
		if s, l, d, ok := e.DynamicLocation(); ok {
			return fmt.Sprintf("dynamic-location{start 0x%08x, dynalib load 0x%08x, dynalib 0x%08x}", s, l, d)
		}
	case ExtDependency:
		if d, t, ok := e.Dependency(); ok {
			return fmt.Sprintf("dependency{%s, target %d}", d, t)
		}
	case ExtName:
		return fmt.Sprintf("name{%q}", string(e.Payload))
	case ExtAssetDependency:
		if a, ok := e.AssetDependency(); ok {
			return fmt.Sprintf("asset-dependency{%q %s}", a.Name, a.Hash)
		}
	case ExtSecurityMode:
		if m, c, ok := e.SecurityMode(); ok {
			return fmt.Sprintf("security-mode{mode %d, certificate %d bytes}", m, len(c))
		}
	}
	return fmt.Sprintf("%s{%d bytes}", e.Type, len(e.Payload))
}

// Constructors for the extensions Build can place. They exist so tests and tools build
// records with the right layout instead of poking bytes.

// EndExtension returns an END record with padding bytes after its header.
func EndExtension(padding int) Extension {
	if padding < 0 {
		padding = 0
	}
	return Extension{Type: ExtEnd, Payload: make([]byte, padding)}
}

// ProductDataExtension returns a PRODUCT_DATA record laid out as Device OS builds it: the
// 32-bit id is (id<<16)|0xFFFF.
func ProductDataExtension(p Product) Extension {
	b := make([]byte, 6)
	binary.LittleEndian.PutUint16(b, 0xFFFF)
	binary.LittleEndian.PutUint16(b[2:], p.ID)
	binary.LittleEndian.PutUint16(b[4:], p.Version)
	return Extension{Type: ExtProductData, Payload: b}
}

// DynamicLocationExtension returns a DYNAMIC_LOCATION record.
func DynamicLocationExtension(moduleStart, dynalibLoad, dynalibStart uint32) Extension {
	b := make([]byte, 12)
	binary.LittleEndian.PutUint32(b, moduleStart)
	binary.LittleEndian.PutUint32(b[4:], dynalibLoad)
	binary.LittleEndian.PutUint32(b[8:], dynalibStart)
	return Extension{Type: ExtDynamicLocation, Payload: b}
}

// DependencyExtension returns a DEPENDENCY record.
func DependencyExtension(d Dependency, targetID uint32) Extension {
	b := make([]byte, 8)
	db := d.bytes()
	copy(b, db[:])
	binary.LittleEndian.PutUint32(b[4:], targetID)
	return Extension{Type: ExtDependency, Payload: b}
}

// HashExtension returns a HASH record of SHA-256 type.
func HashExtension(sha256 []byte) Extension {
	b := append([]byte{0, byte(len(sha256))}, sha256...)
	return Extension{Type: ExtHash, Payload: b}
}

// NameExtension returns a NAME record.
func NameExtension(name string) Extension {
	return Extension{Type: ExtName, Payload: []byte(name)}
}

// AssetDependencyExtension returns an ASSET_DEPENDENCY record for a SHA-256 hash.
func AssetDependencyExtension(sha256 []byte, name string) Extension {
	b := append([]byte{0, byte(len(sha256))}, sha256...)
	b = append(b, name...)
	return Extension{Type: ExtAssetDependency, Payload: b}
}

// SecurityModeExtension returns a SECURITY_MODE record with an optional certificate.
func SecurityModeExtension(mode uint8, cert []byte) Extension {
	return Extension{Type: ExtSecurityMode, Payload: append([]byte{mode}, cert...)}
}

// AssetTypeExtension returns an ASSET_TYPE record.
func AssetTypeExtension(t uint8) Extension {
	return Extension{Type: ExtAssetType, Payload: []byte{t, 0}}
}

// readExtension reads the record at off. It returns ok=false where binary-version-reader
// stops reading (INVALID type, record past the end of data) and err for a record whose
// length cannot be right (shorter than its own header), which would otherwise loop forever.
func readExtension(data []byte, off int) (e Extension, ok bool, err error) {
	if off < 0 || off+extHeaderSize > len(data) {
		return Extension{}, false, nil
	}
	typ := ExtensionType(binary.LittleEndian.Uint16(data[off:]))
	n := int(binary.LittleEndian.Uint16(data[off+2:]))
	if typ == ExtInvalid {
		return Extension{}, false, nil
	}
	if off+n > len(data) {
		return Extension{}, false, nil
	}
	if n < extHeaderSize {
		return Extension{}, false, fmt.Errorf("%s extension at offset 0x%x has length %d, less than its own 4-byte header", typ, off, n)
	}
	return Extension{Type: typ, Offset: off, Payload: data[off+extHeaderSize : off+n]}, true, nil
}

func depFromBytes(b []byte) Dependency {
	return Dependency{Function: platform.Function(b[0]), Index: b[1], Version: binary.LittleEndian.Uint16(b[2:])}
}
