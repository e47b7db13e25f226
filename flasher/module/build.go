package module

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// SuffixLayout selects how Build lays out the suffix.
type SuffixLayout int

// Suffix layouts seen in real modules.
const (
	// SuffixStandard is 40 bytes: raw product id and version before the base suffix
	// (STM32 and nRF52 modules). Suffix extensions, if any, come first, closed by END.
	SuffixStandard SuffixLayout = iota
	// SuffixNoProduct is the 36-byte base suffix alone (SoftDevice, NCP, 0.4.0-era parts).
	SuffixNoProduct
	// SuffixProductExtension carries the product in a PRODUCT_DATA extension as the last
	// record (asset modules).
	SuffixProductExtension
	// SuffixRTL is the RTL872x suffix: DYNAMIC_LOCATION then PRODUCT_DATA, 62 bytes
	// without further extensions.
	SuffixRTL
)

// Spec describes a synthetic module for Build. The zero value of most fields is what a
// plain module has; Start, Size and the identity fields are up to the caller.
type Spec struct {
	PlatformID uint16
	Function   platform.Function
	Index      uint8
	Version    uint16
	// Start is module_start_address; the end address is derived: Start + Size - 4.
	Start uint32
	// HeaderOffset is where the prefix goes (0x200 Gen3 system parts, 0x184 Gen2, ...).
	HeaderOffset uint32
	// Size is the whole file: prefix, code, suffix and CRC. 0 picks 1 KB of code.
	Size int
	// Reserved is the prefix's reserved byte (NCPReserved for ESP32 NCP modules).
	Reserved uint8
	// Flags go into the header as given, plus FlagPrefixExtensions when PrefixExtensions
	// is not empty.
	Flags Flags
	Deps  [2]Dependency
	// Product is the suffix's product data; nil means NoProduct (0xFFFF/0xFFFF). Ignored
	// by SuffixNoProduct.
	Product *Product
	Suffix  SuffixLayout
	// DynalibLoad and DynalibStart fill the DYNAMIC_LOCATION extension of SuffixRTL (its
	// module_start is Start).
	DynalibLoad, DynalibStart uint32
	// PrefixExtensions follow the 24-byte prefix; an END record is appended if the list
	// does not end with one.
	PrefixExtensions []Extension
	// SuffixExtensions come first in the suffix, before the records the layout adds.
	SuffixExtensions []Extension
	// Seed makes the pseudo-random code bytes; the same Spec always builds the same bytes.
	Seed int64
	// Fill, if set, replaces the pseudo-random filler: it gets everything before the
	// suffix, and the prefix is written over it afterwards.
	Fill func(body []byte)
}

// suffixBytes encodes everything of the suffix before reserved/SHA/size: extensions and
// product data as the layout wants them.
func (s Spec) suffixHead() ([]byte, error) {
	prod := NoProduct
	if s.Product != nil {
		prod = *s.Product
	}
	var b []byte
	for _, e := range s.SuffixExtensions {
		b = append(b, e.Bytes()...)
	}
	switch s.Suffix {
	case SuffixStandard:
		if len(s.SuffixExtensions) > 0 && s.SuffixExtensions[len(s.SuffixExtensions)-1].Type != ExtEnd {
			b = append(b, EndExtension(0).Bytes()...)
		}
		var raw [4]byte
		binary.LittleEndian.PutUint16(raw[:], prod.ID)
		binary.LittleEndian.PutUint16(raw[2:], prod.Version)
		b = append(b, raw[:]...)
	case SuffixNoProduct:
		if len(s.SuffixExtensions) > 0 {
			// Readers take a suffix longer than 36 to hold product data at a fixed place.
			return nil, newErr(ErrBuild, "cannot build module: a suffix with extensions must carry product data")
		}
	case SuffixProductExtension:
		b = append(b, ProductDataExtension(prod).Bytes()...)
	case SuffixRTL:
		b = append(b, DynamicLocationExtension(s.Start, s.DynalibLoad, s.DynalibStart).Bytes()...)
		b = append(b, ProductDataExtension(prod).Bytes()...)
	default:
		return nil, newErr(ErrBuild, "cannot build module: unknown suffix layout %d", s.Suffix)
	}
	return b, nil
}

// Build produces a module binary from spec: header, pseudo-random code, suffix, with the
// end address, SHA-256 and big-endian CRC-32 patched in, so Parse and Validate accept it
// (given a known platform and function).
func Build(spec Spec) ([]byte, error) {
	head, err := spec.suffixHead()
	if err != nil {
		return nil, err
	}
	suffixLen := len(head) + MinSuffixSize
	if suffixLen > 0xFFFF {
		return nil, newErr(ErrBuild, "cannot build module: suffix of %d bytes exceeds the 16-bit size field", suffixLen)
	}
	prefixExt := spec.PrefixExtensions
	flags := spec.Flags
	if len(prefixExt) > 0 {
		flags |= FlagPrefixExtensions
		if prefixExt[len(prefixExt)-1].Type != ExtEnd {
			prefixExt = append(append([]Extension{}, prefixExt...), EndExtension(0))
		}
	}
	prefix := make([]byte, PrefixSize, PrefixSize+64)
	for _, e := range prefixExt {
		prefix = append(prefix, e.Bytes()...)
	}
	hdr := int(spec.HeaderOffset)
	minSize := hdr + len(prefix) + suffixLen + CRCSize
	size := spec.Size
	if size == 0 {
		size = minSize + 1024
	}
	if size < minSize {
		return nil, newErr(ErrBuild, "cannot build module: %d bytes cannot hold a header at 0x%x, %d bytes of prefix and a %d-byte suffix (need %d)",
			size, hdr, len(prefix), suffixLen, minSize)
	}
	if uint64(spec.Start)+uint64(size)-CRCSize > 0xFFFFFFFF {
		return nil, newErr(ErrBuild, "cannot build module: %d bytes from 0x%08x run past the 32-bit address space", size, spec.Start)
	}
	end := spec.Start + uint32(size) - CRCSize

	binary.LittleEndian.PutUint32(prefix[0:], spec.Start)
	binary.LittleEndian.PutUint32(prefix[4:], end)
	prefix[8] = spec.Reserved
	prefix[9] = byte(flags)
	binary.LittleEndian.PutUint16(prefix[10:], spec.Version)
	binary.LittleEndian.PutUint16(prefix[12:], spec.PlatformID)
	prefix[14] = byte(spec.Function)
	prefix[15] = spec.Index
	d0, d1 := spec.Deps[0].bytes(), spec.Deps[1].bytes()
	copy(prefix[16:], d0[:])
	copy(prefix[20:], d1[:])

	buf := make([]byte, size)
	suffixAt := size - CRCSize - suffixLen
	body := buf[:suffixAt]
	if spec.Fill != nil {
		spec.Fill(body)
	} else {
		fillPseudoRandom(body, spec.Seed)
	}
	copy(buf[hdr:], prefix)
	copy(buf[suffixAt:], head)
	// reserved (2 bytes) stays zero; the SHA is patched below.
	binary.LittleEndian.PutUint16(buf[size-6:], uint16(suffixLen))
	patchChecksums(buf)
	return buf, nil
}

// fillPseudoRandom fills b deterministically from seed. Code-like randomness keeps
// accidental headers out of the filler, so the parser finds the real one.
func fillPseudoRandom(b []byte, seed int64) {
	r := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	for i := 0; i < len(b); i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		copy(b[i:], w[:])
	}
}

// patchChecksums writes the SHA-256 of [0, N-38) and then the big-endian CRC-32 of
// [0, N-4), in that order because the CRC covers the hash.
func patchChecksums(b []byte) {
	n := len(b)
	if n >= 38 {
		sum := sha256.Sum256(b[:n-38])
		copy(b[n-38:], sum[:])
	}
	patchCRC(b)
}

func patchCRC(b []byte) {
	n := len(b)
	if n >= CRCSize {
		binary.BigEndian.PutUint32(b[n-4:], crc32.ChecksumIEEE(b[:n-4]))
	}
}

// defaultSlotSize is the file size SpecForSlot picks: small enough for any slot and
// fast tests, and the size of a typical small RTL872x app (start 0x085FE000).
const defaultSlotSize = 8 * 1024

// SpecForSlot describes a plausible module for one slot of a platform: the slot's start
// (for the RTL872x user part, which ends at a fixed address, the start that size implies,
// as p.UserStart gives), header offset, the platform's suffix layout (62 bytes with
// extensions on RTL872x, 36 for SoftDevice and NCP, 40 otherwise), DROP_MODULE_INFO on
// the SoftDevice, the NCP reserved byte, and the usual product data of a user app. At
// most two dependencies fit the header.
func SpecForSlot(p *platform.Platform, s platform.Slot, version uint16, deps ...Dependency) (Spec, error) {
	if p == nil {
		return Spec{}, newErr(ErrBuild, "cannot build module: no platform")
	}
	if len(deps) > 2 {
		return Spec{}, newErr(ErrBuild, "cannot build module: %d dependencies, the header holds 2", len(deps))
	}
	size := uint32(defaultSlotSize)
	if s.MaxSize != 0 && s.MaxSize < size {
		size = s.MaxSize
	}
	spec := Spec{
		PlatformID:   p.ID,
		Function:     s.Function,
		Index:        s.Index,
		Version:      version,
		Start:        s.StartFor(size),
		HeaderOffset: s.HeaderOffset,
		Size:         int(size),
		Seed:         int64(p.ID)<<16 | int64(s.Function)<<8 | int64(s.Index),
	}
	if s.EndFixed && s.Function == platform.FuncUser {
		spec.Start = p.UserStart(size)
	}
	copy(spec.Deps[:], deps)
	rtl := p.MCU == "rtl872x"
	switch {
	case s.Function == platform.FuncRadio || s.Function == platform.FuncNCP:
		spec.Suffix = SuffixNoProduct
	case rtl:
		spec.Suffix = SuffixRTL
	default:
		spec.Suffix = SuffixStandard
	}
	switch s.Function {
	case platform.FuncRadio:
		spec.Flags |= FlagDropModuleInfo
	case platform.FuncNCP:
		spec.Reserved = NCPReserved
	case platform.FuncUser:
		// Apps built without PRODUCT_ID carry the platform ID and version 3 (4 on RTL872x).
		pv := uint16(3)
		if rtl {
			pv = 4
		}
		spec.Product = &Product{ID: p.ID, Version: pv}
	}
	return spec, nil
}

// BuildForSlot builds a module for one slot of a platform (see SpecForSlot).
func BuildForSlot(p *platform.Platform, s platform.Slot, version uint16, deps ...Dependency) ([]byte, error) {
	spec, err := SpecForSlot(p, s, version, deps...)
	if err != nil {
		return nil, err
	}
	return Build(spec)
}

// SetPlatform returns a copy of a module with another platform ID and fresh checksums,
// e.g. to make "a Boron module offered to an Argon" for planner tests.
func SetPlatform(data []byte, id uint16) ([]byte, error) {
	m, err := Parse(data)
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), data...)
	binary.LittleEndian.PutUint16(out[m.HeaderOffset+12:], id)
	patchChecksums(out[:len(m.Data)])
	return out, nil
}

// String describes the spec briefly, for test names.
func (s Spec) String() string {
	return fmt.Sprintf("platform %d %s#%d v%d @0x%08x hdr 0x%x size %d", s.PlatformID, s.Function, s.Index, s.Version, s.Start, s.HeaderOffset, s.Size)
}
