package module

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"hash/crc32"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// Module is a parsed module binary. Fields mirror module_info_t and the suffix; checks
// the parser made (CRC, SHA) are recorded, not enforced: Validate decides.
type Module struct {
	// Data is the module's bytes: the whole input, or for a combined file only the first
	// module (SplitCombined gives the others).
	Data []byte
	// FileSize is the length of the whole input given to Parse.
	FileSize int

	// HeaderOffset is where the 24-byte prefix was found in the file.
	HeaderOffset int
	// HeaderScore is the confidence of the header search, 1..7 (7: every check passed,
	// the exact file size included). Low scores mean a best guess on a damaged file.
	HeaderScore int

	Start      uint32 // module_start_address: where the module goes in flash
	End        uint32 // module_end_address: where its CRC starts (exclusive end)
	Reserved   uint8  // mcu_target on Gen3; 33 on ESP32 NCP modules
	Flags      Flags
	Version    uint16 // module_version
	PlatformID uint16
	Function   platform.Function
	Index      uint8
	Deps       [2]Dependency

	// PrefixExtensions are the TLVs after the prefix (flag 0x10); PrefixLen is the prefix
	// with them (24 without).
	PrefixExtensions []Extension
	PrefixLen        int

	// SuffixSize is the suffix_size field: 36 (no product data), 40 (standard), or more
	// with extensions. 0xFFFF on padded/erased tails.
	SuffixSize     uint16
	SuffixReserved uint16
	// SHA256 is the hash stored in the suffix; ComputedSHA256 the hash of [0, N-38).
	SHA256, ComputedSHA256 []byte
	// StoredCRC is the big-endian CRC-32 in the last 4 bytes; ComputedCRC the IEEE CRC of
	// everything before it.
	StoredCRC, ComputedCRC uint32
	// Product is the product id/version of the suffix, nil when the module has none (suffix
	// shorter than 40, or a suffix size that cannot be right). On RTL872x it is read from
	// where the PRODUCT_DATA extension puts it, exactly as binary-version-reader does.
	Product          *Product
	SuffixExtensions []Extension

	// CRCOK and SHAOK say whether the stored CRC and SHA-256 match the data.
	CRCOK, SHAOK bool

	// Compression is the compressed_module_header of a compressed module, nil otherwise.
	Compression *CompressionHeader

	truncated bool   // header found only by allowing a file shorter than it says
	extErr    error  // malformed extensions (parsing went on without them)
	file      []byte // the whole input, for combined files
	combined  bool   // more data follows the first module and its COMBINED flag is set
}

// Size is the file size the header announces: end - start + 4 (the CRC). 0 when the
// addresses are reversed.
func (m *Module) Size() uint64 {
	if m.End < m.Start {
		return 0
	}
	return uint64(m.End) - uint64(m.Start) + CRCSize
}

// Compressed reports the COMPRESSED flag: the body is raw Deflate (see Decompress).
func (m *Module) Compressed() bool { return m.Flags.Has(FlagCompressed) }

// Combined reports the COMBINED flag: another module follows this one in the file.
func (m *Module) Combined() bool { return m.Flags.Has(FlagCombined) }

// Encrypted reports the ENCRYPTED flag; such modules are flashed as they are or skipped.
func (m *Module) Encrypted() bool { return m.Flags.Has(FlagEncrypted) }

// Dependencies returns the non-empty dependency slots in header order.
func (m *Module) Dependencies() []Dependency {
	out := []Dependency{}
	for _, d := range m.Deps {
		if !d.Empty() {
			out = append(out, d)
		}
	}
	return out
}

// Extensions returns prefix and suffix extensions together.
func (m *Module) Extensions() []Extension {
	return append(append([]Extension{}, m.PrefixExtensions...), m.SuffixExtensions...)
}

// AssetDependencies lists the assets an application needs (ASSET_DEPENDENCY extensions).
func (m *Module) AssetDependencies() []AssetDependency {
	var out []AssetDependency
	for _, e := range m.Extensions() {
		if a, ok := e.AssetDependency(); ok {
			out = append(out, a)
		}
	}
	return out
}

// SecurityMode returns the SECURITY_MODE extension, if any: protected-mode bootloaders
// carry mode 1 and optionally a certificate.
func (m *Module) SecurityMode() (mode uint8, cert []byte, ok bool) {
	for _, e := range m.Extensions() {
		if mode, cert, ok := e.SecurityMode(); ok {
			return mode, cert, true
		}
	}
	return 0, nil, false
}

// Name returns the NAME extension (asset modules carry their file name).
func (m *Module) Name() (string, bool) {
	for _, e := range m.Extensions() {
		if n, ok := e.Name(); ok {
			return n, true
		}
	}
	return "", false
}

// Parse decodes a module binary. It returns an error only when there is no module to
// speak of (empty, too short, blank, no header); a module with a bad CRC, a wrong size or
// an unknown platform is returned for inspection, and Validate says what is wrong with it.
// A combined file parses as its first module (see SplitCombined).
func Parse(data []byte) (*Module, error) {
	if len(data) == 0 {
		return nil, newErr(ErrEmpty, "empty file")
	}
	if len(data) < PrefixSize {
		return nil, newErr(ErrTooShort, "file is only %d bytes, too short to be a Particle module (the header alone is %d)", len(data), PrefixSize)
	}
	if allBytes(data, 0xFF) {
		return nil, newErr(ErrErased, "not a Particle module: all %d bytes are 0xFF, like an erased flash slot", len(data))
	}
	if allBytes(data, 0x00) {
		return nil, newErr(ErrNoHeader, "not a Particle module: all %d bytes are zero", len(data))
	}
	off, score, truncated := findHeader(data)
	if score == 0 {
		return nil, newErr(ErrNoHeader, "not a Particle module: no module header found")
	}
	m := decode(data, off)
	m.HeaderScore = score
	m.truncated = truncated
	if !m.plausible() {
		return nil, newErr(ErrNoHeader, "not a Particle module: no module header found")
	}
	return m, nil
}

// plausible tells a real (if damaged) header from a best guess in arbitrary data: the file
// length matches it exactly, or it names a known platform and a known function. The scan
// always finds *something* in a large enough file (an ar archive yields "platform 12851,
// function 55, 20 bytes"); reporting that as a broken module would mislead, while
// km4_image2_all.bin's guess (P2, user part) is kept, as binary-version-reader reports it.
func (m *Module) plausible() bool {
	if !m.truncated && uint64(len(m.Data)) == m.Size() {
		return true
	}
	_, known := platform.ByID(m.PlatformID)
	return known && m.Function != platform.FuncNone && knownFunction(m.Function)
}

func allBytes(data []byte, b byte) bool {
	for _, x := range data {
		if x != b {
			return false
		}
	}
	return true
}

// preferredOffsets are where headers normally sit, tried before the scan (reference §5a):
// 0 (user parts, NCP, SoftDevice, RTL part1), 0x200 (Gen3 vector table), 0x184 (Gen2),
// 0xC0 (bluz), 0x10C (Core), 0x20 (after the RTL872x image header). binary-version-reader
// finds 0x20 by its scan; listing it here only spares that scan.
var preferredOffsets = [...]int{0, 0x200, 0x184, 0xC0, 0x10C, 0x20}

const (
	maxScore = 7
	// maxPlausibleSize bounds the module size a truncated file's header may announce;
	// the largest Particle slot is 4 MB, so a header claiming more than 16 MB is noise.
	maxPlausibleSize = 16 << 20
)

// scoreAt rates the 24 bytes at off as a module prefix, as binary-version-reader's
// _validateModulePrefix does: 0 means impossible; otherwise one point for a plausible
// header and one each for known platform, known function, known dependency functions,
// an exact size match and known flags (7 = certain).
//
// short is the score the header would have (without the size point) when the only thing
// wrong is that the file is shorter than the header says: a truncated download or copy,
// which deserves a "file is N bytes but the header says M" rather than "not a module".
func scoreAt(data []byte, off int) (score, short int) {
	if off < 0 || off+PrefixSize > len(data) {
		return 0, 0
	}
	p := data[off : off+PrefixSize]
	start := binary.LittleEndian.Uint32(p[0:])
	end := binary.LittleEndian.Uint32(p[4:])
	if end <= start {
		return 0, 0
	}
	fn := platform.Function(p[14])
	if fn == platform.FuncNone {
		return 0, 0
	}
	// An empty dependency must be all zero.
	for _, d := range [2]int{16, 20} {
		if p[d] == 0 && (p[d+1] != 0 || binary.LittleEndian.Uint16(p[d+2:]) != 0) {
			return 0, 0
		}
	}
	s := 1
	if _, ok := platform.ByID(binary.LittleEndian.Uint16(p[12:])); ok {
		s++
	}
	if knownFunction(fn) {
		s++
	}
	if knownFunction(platform.Function(p[16])) {
		s++
	}
	if knownFunction(platform.Function(p[20])) {
		s++
	}
	if Flags(p[9])&^knownFlags == 0 {
		s++
	}
	expected := uint64(end) - uint64(start) + CRCSize
	switch n := uint64(len(data)); {
	case n < expected:
		if expected <= maxPlausibleSize {
			return 0, s
		}
		return 0, 0
	case n == expected:
		s++
	}
	return s, 0
}

func knownFunction(f platform.Function) bool { return f <= platform.FuncAsset }

// findHeader locates the prefix: the preferred offsets first, then every 4 bytes up to
// 8 KB, returning the first candidate that passes every check, else the best-scoring one
// (earliest on ties), as binary-version-reader does, so offsets agree with its dumps
// (km4_image2_all.bin: a best guess at 0x17c8).
//
// When nothing scores well but a preferred offset holds a header that is perfect except
// that the file is shorter than it says, that header wins and truncated is set.
func findHeader(data []byte) (off, score int, truncated bool) {
	best, bestOff := 0, 0
	isPreferred := func(o int) bool {
		for _, p := range preferredOffsets {
			if p == o {
				return true
			}
		}
		return false
	}
	for _, o := range preferredOffsets {
		s, _ := scoreAt(data, o)
		if s >= maxScore {
			return o, s, false
		}
		if s > best {
			best, bestOff = s, o
		}
	}
	last := min(maxScanOffset, len(data)-MinSuffixSize-PrefixSize-CRCSize)
	for o := 4; o <= last; o += 4 {
		if isPreferred(o) {
			continue
		}
		s, _ := scoreAt(data, o)
		if s >= maxScore {
			return o, s, false
		}
		if s > best {
			best, bestOff = s, o
		}
	}
	if best < maxScore-1 {
		for _, o := range preferredOffsets {
			if _, short := scoreAt(data, o); short == maxScore-1 {
				return o, short, true
			}
		}
	}
	return bestOff, best, false
}

// decode reads the module whose prefix is at off. It never fails: anything that does not
// fit is left zero and noted for Validate.
func decode(data []byte, off int) *Module {
	m := &Module{FileSize: len(data), HeaderOffset: off, file: data, PrefixLen: PrefixSize}
	p := data[off : off+PrefixSize]
	m.Start = binary.LittleEndian.Uint32(p[0:])
	m.End = binary.LittleEndian.Uint32(p[4:])
	m.Reserved = p[8]
	m.Flags = Flags(p[9])
	m.Version = binary.LittleEndian.Uint16(p[10:])
	m.PlatformID = binary.LittleEndian.Uint16(p[12:])
	m.Function = platform.Function(p[14])
	m.Index = p[15]
	m.Deps[0] = depFromBytes(p[16:20])
	m.Deps[1] = depFromBytes(p[20:24])

	// A combined file holds several modules back to back; the suffix and CRC of the first
	// one end where its header says, not at the end of the file.
	m.Data = data
	if size := m.Size(); m.Combined() && size > 0 && uint64(len(data)) > size && size > uint64(off+PrefixSize) {
		m.Data = data[:size]
		m.combined = true
	}
	d := m.Data

	if m.Flags.Has(FlagPrefixExtensions) {
		m.readPrefixExtensions(d)
	}
	m.readSuffix(d)
	if m.Compressed() {
		if pos := off + m.PrefixLen; pos >= 0 && pos+CompressedHeaderSize <= len(d) {
			h := d[pos:]
			m.Compression = &CompressionHeader{
				Size:         binary.LittleEndian.Uint16(h),
				Method:       h[2],
				WindowBits:   h[3],
				OriginalSize: binary.LittleEndian.Uint32(h[4:]),
			}
		}
	}
	return m
}

// readPrefixExtensions reads the TLVs after the prefix up to END, staying clear of the
// minimal suffix as binary-version-reader does.
func (m *Module) readPrefixExtensions(d []byte) {
	pos := m.HeaderOffset + PrefixSize
	limit := len(d) - MinSuffixSize - CRCSize
	sawEnd := false
	for pos < limit {
		e, ok, err := readExtension(d, pos)
		if err != nil {
			m.extErr = wrapErr(ErrExtensions, err, "prefix extensions")
			break
		}
		if !ok {
			break
		}
		m.PrefixExtensions = append(m.PrefixExtensions, e)
		pos += e.Len()
		if e.Type == ExtEnd {
			sawEnd = true
			break
		}
	}
	if !sawEnd && m.extErr == nil {
		m.extErr = newErr(ErrExtensions, "prefix extensions flag set but the list has no END record")
	}
	m.PrefixLen = pos - m.HeaderOffset
}

// readSuffix reads the suffix backwards from the end of d (binary-version-reader
// _readSuffix), then checks CRC and SHA.
func (m *Module) readSuffix(d []byte) {
	n := len(d)
	if n >= CRCSize {
		m.StoredCRC = binary.BigEndian.Uint32(d[n-4:])
		m.ComputedCRC = crc32.ChecksumIEEE(d[:n-4])
		m.CRCOK = m.StoredCRC == m.ComputedCRC
	}
	if n >= 6 {
		m.SuffixSize = binary.LittleEndian.Uint16(d[n-6:])
	}
	if n >= 38 {
		m.SHA256 = bytes.Clone(d[n-38 : n-6])
		sum := sha256.Sum256(d[:n-38])
		m.ComputedSHA256 = sum[:]
		m.SHAOK = bytes.Equal(m.SHA256, m.ComputedSHA256)
	}
	if n >= 40 {
		m.SuffixReserved = binary.LittleEndian.Uint16(d[n-40:])
	}
	// Product data exists only in a suffix of at least 40 bytes, and only when the suffix
	// size is believable: it must fit in the file after the header and in the module the
	// header describes. Padded or erased tails read 0xFFFF there (RC4_bootloader_pad_*,
	// km4_image2_all.bin), and reporting 65535 as a product would mislead.
	ss := int(m.SuffixSize)
	if ss < StandardSuffixSize || n < 44 || ss+CRCSize > n-m.HeaderOffset-m.PrefixLen || uint64(ss+CRCSize) > m.Size() {
		return
	}
	m.Product = &Product{ID: binary.LittleEndian.Uint16(d[n-44:]), Version: binary.LittleEndian.Uint16(d[n-42:])}
	if ss == StandardSuffixSize {
		return
	}
	pos := n - CRCSize - ss
	for pos > 0 && pos < n-CRCSize-MinSuffixSize {
		e, ok, err := readExtension(d, pos)
		if err != nil {
			m.extErr = wrapErr(ErrExtensions, err, "suffix extensions")
			break
		}
		if !ok {
			break
		}
		m.SuffixExtensions = append(m.SuffixExtensions, e)
		pos += e.Len()
		if e.Type == ExtEnd {
			break
		}
	}
}
