package module

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"hash/crc32"
	"io"
)

// maxDecompressedSize refuses compressed headers claiming more than any flash could hold,
// so a hostile file cannot make us allocate gigabytes.
const maxDecompressedSize = 64 << 20

// Decompress inflates a compressed module (flag 0x02) back into the original module, as
// Device OS does before writing it (binary-version-reader moduleEncoding.decompressModule).
// The compressed body is raw Deflate. For a DROP_MODULE_INFO module only the code was
// compressed, so the prefix and suffix are put back around it and the checksums redone.
func (m *Module) Decompress() ([]byte, error) {
	if !m.Compressed() {
		return nil, newErr(ErrNotCompressed, "module is not compressed")
	}
	if m.Combined() {
		return nil, newErr(ErrCompression, "cannot decompress a combined module: split it first")
	}
	d := m.Data
	ss := int(m.SuffixSize)
	if ss < MinSuffixSize {
		return nil, newErr(ErrCompression, "cannot decompress module: suffix size %d is invalid", ss)
	}
	if uint64(len(d)) != m.Size() {
		return nil, newErr(ErrCompression, "cannot decompress module: file is %d bytes but the header says %d", len(d), m.Size())
	}
	pos := m.HeaderOffset + m.PrefixLen
	minSize := pos + CompressedHeaderSize + ss + CRCSize
	h := m.Compression
	if h == nil || len(d) < minSize {
		return nil, newErr(ErrCompression, "cannot decompress module: %d bytes cannot hold the compressed data header", len(d))
	}
	if h.Size < CompressedHeaderSize || len(d) < minSize+int(h.Size)-CompressedHeaderSize {
		return nil, newErr(ErrCompression, "cannot decompress module: compressed data header size %d is invalid", h.Size)
	}
	if h.Method != 0 {
		return nil, newErr(ErrCompression, "cannot decompress module: unknown compression method %d", h.Method)
	}
	if h.WindowBits != 0 && (h.WindowBits < 8 || h.WindowBits > 15) {
		return nil, newErr(ErrCompression, "cannot decompress module: window size %d is invalid", h.WindowBits)
	}
	if h.OriginalSize > maxDecompressedSize {
		return nil, newErr(ErrCompression, "cannot decompress module: it claims to inflate to %d bytes", h.OriginalSize)
	}
	start := pos + int(h.Size)
	r := flate.NewReader(bytes.NewReader(d[start : len(d)-ss-CRCSize]))
	defer r.Close()
	// Read one byte more than promised to catch data that inflates to more.
	out, err := io.ReadAll(io.LimitReader(r, int64(h.OriginalSize)+1))
	if err != nil {
		return nil, wrapErr(ErrCompression, err, "cannot decompress module")
	}
	if len(out) != int(h.OriginalSize) {
		return nil, newErr(ErrCompression, "cannot decompress module: inflated to %d bytes, the header says %d", len(out), h.OriginalSize)
	}
	if !m.Flags.Has(FlagDropModuleInfo) {
		return out, nil
	}
	// Only the code was compressed: restore prefix and suffix around it.
	plen := pos // prefix and its extensions, at the start of the compressed module
	res := make([]byte, 0, plen+len(out)+ss+CRCSize)
	res = append(res, d[:plen]...)
	res = append(res, out...)
	res = append(res, d[len(d)-ss-CRCSize:]...)
	hdr := res[m.HeaderOffset:]
	binary.LittleEndian.PutUint32(hdr[4:], m.Start+uint32(len(res))-CRCSize)
	hdr[9] = byte(m.Flags &^ FlagCompressed)
	patchChecksums(res)
	return res, nil
}

// Compress makes the compressed form of a module (binary-version-reader
// moduleEncoding.compressModule): prefix (moved to offset 0), compressed_module_header,
// raw Deflate of the module (of the code only for DROP_MODULE_INFO), the original suffix,
// and fresh checksums. Decompress reverses it.
func Compress(data []byte) ([]byte, error) {
	m, err := Parse(data)
	if err != nil {
		return nil, err
	}
	switch {
	case m.Compressed():
		return nil, newErr(ErrCompression, "cannot compress: module is already compressed")
	case m.Combined():
		return nil, newErr(ErrCompression, "cannot compress a combined module: compress each part")
	case uint64(len(data)) != m.Size():
		return nil, newErr(ErrSize, "cannot compress: file is %d bytes but the header says %d", len(data), m.Size())
	}
	ss := int(m.SuffixSize)
	if ss < MinSuffixSize || m.HeaderOffset+m.PrefixLen+ss+CRCSize > len(data) {
		return nil, newErr(ErrCompression, "cannot compress: suffix size %d is invalid", ss)
	}
	src := data
	if m.Flags.Has(FlagDropModuleInfo) {
		if m.HeaderOffset != 0 {
			return nil, newErr(ErrCompression, "cannot compress: DROP_MODULE_INFO module with its header at 0x%x", m.HeaderOffset)
		}
		src = data[m.PrefixLen : len(data)-ss-CRCSize]
	}
	var comp bytes.Buffer
	w, err := flate.NewWriter(&comp, flate.DefaultCompression)
	if err != nil {
		return nil, wrapErr(ErrCompression, err, "cannot compress")
	}
	if _, err := w.Write(src); err != nil {
		return nil, wrapErr(ErrCompression, err, "cannot compress")
	}
	if err := w.Close(); err != nil {
		return nil, wrapErr(ErrCompression, err, "cannot compress")
	}
	out := make([]byte, 0, m.PrefixLen+CompressedHeaderSize+comp.Len()+ss+CRCSize)
	out = append(out, data[m.HeaderOffset:m.HeaderOffset+m.PrefixLen]...)
	var ch [CompressedHeaderSize]byte
	binary.LittleEndian.PutUint16(ch[:], CompressedHeaderSize)
	binary.LittleEndian.PutUint32(ch[4:], uint32(len(src)))
	out = append(out, ch[:]...)
	out = append(out, comp.Bytes()...)
	out = append(out, data[len(data)-ss-CRCSize:]...)
	binary.LittleEndian.PutUint32(out[4:], m.Start+uint32(len(out))-CRCSize)
	out[9] = byte(m.Flags | FlagCompressed)
	patchChecksums(out)
	return out, nil
}

// Combine concatenates modules into one file, setting COMBINED on every module but the
// last and redoing their checksums (binary-version-reader combineModules).
func Combine(modules ...[]byte) ([]byte, error) {
	if len(modules) == 0 {
		return nil, newErr(ErrCombined, "nothing to combine")
	}
	var out []byte
	for i, data := range modules {
		m, err := Parse(data)
		if err != nil {
			return nil, wrapErr(ErrCombined, err, "module %d", i+1)
		}
		if uint64(len(data)) != m.Size() {
			return nil, newErr(ErrCombined, "module %d: file is %d bytes but the header says %d", i+1, len(data), m.Size())
		}
		if m.Combined() {
			return nil, newErr(ErrCombined, "module %d is already combined", i+1)
		}
		part := append([]byte(nil), data...)
		if i < len(modules)-1 {
			part[m.HeaderOffset+9] |= byte(FlagCombined)
			patchChecksums(part)
		}
		out = append(out, part...)
	}
	return out, nil
}

// SplitCombined cuts a combined file into its modules and clears their COMBINED flag
// (binary-version-reader splitCombinedModules). A plain module comes back as a list of
// one. Checksums are redone after clearing the flag only where they were right before,
// so damage inside a part still shows.
func SplitCombined(data []byte) ([]*Module, error) {
	if len(data) == 0 {
		return nil, newErr(ErrEmpty, "empty file")
	}
	var mods []*Module
	for offs := 0; ; {
		rest := data[offs:]
		n := len(mods) + 1
		if len(rest) < PrefixSize+MinSuffixSize {
			return nil, newErr(ErrCombined, "module %d at offset 0x%x: only %d bytes left", n, offs, len(rest))
		}
		at, score, truncated := findHeader(rest)
		if score == 0 || truncated {
			return nil, newErr(ErrCombined, "module %d at offset 0x%x: no module header found", n, offs)
		}
		hdr := rest[at:]
		start, end := binary.LittleEndian.Uint32(hdr), binary.LittleEndian.Uint32(hdr[4:])
		size := uint64(end) - uint64(start) + CRCSize
		if end < start || size > uint64(len(rest)) || size < uint64(at+PrefixSize) {
			return nil, newErr(ErrCombined, "module %d at offset 0x%x needs %d bytes, %d are left", n, offs, size, len(rest))
		}
		part := append([]byte(nil), rest[:size]...)
		combined := Flags(part[at+9]).Has(FlagCombined)
		if combined {
			shaWas := shaOK(part)
			crcWas := crcOK(part)
			part[at+9] &^= byte(FlagCombined)
			if shaWas {
				sum := sha256Of(part)
				copy(part[len(part)-38:], sum)
			}
			if crcWas {
				patchCRC(part)
			}
		}
		m := decode(part, at)
		m.HeaderScore = score
		mods = append(mods, m)
		offs += int(size)
		if !combined {
			if offs < len(data) {
				return nil, newErr(ErrCombined, "%d bytes follow the last module (one without the combined flag)", len(data)-offs)
			}
			return mods, nil
		}
		if offs >= len(data) {
			return nil, newErr(ErrCombined, "module %d has the combined flag set but nothing follows it", n)
		}
	}
}

func crcOK(b []byte) bool {
	n := len(b)
	return n >= CRCSize && binary.BigEndian.Uint32(b[n-4:]) == crc32.ChecksumIEEE(b[:n-4])
}

func shaOK(b []byte) bool {
	n := len(b)
	return n >= 38 && bytes.Equal(b[n-38:n-6], sha256Of(b))
}

// sha256Of hashes what a module's SHA covers: everything before the hash.
func sha256Of(b []byte) []byte {
	n := len(b)
	if n < 38 {
		return nil
	}
	s := sha256.Sum256(b[:n-38])
	return s[:]
}
