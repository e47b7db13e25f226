package module

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// CorruptKind is a way a module file goes bad in the field, for negative tests.
type CorruptKind int

// Corruption kinds and the error Validate (or Parse) then reports.
const (
	// FlipBit flips one bit of the code (not the header, not the suffix): ErrCRC.
	FlipBit CorruptKind = iota
	// Truncate cuts the file short, as an interrupted download does: ErrSize.
	Truncate
	// ZeroHeader zeroes the 24-byte prefix: ErrNoHeader from Parse.
	ZeroHeader
	// WrongPlatform rewrites the platform ID to one no platform has and fixes CRC and SHA,
	// so only the platform is wrong: ErrUnknownPlatform.
	WrongPlatform
	// BadCRC damages only the stored CRC: ErrCRC (the SHA still matches).
	BadCRC
	// Erased replaces every byte with 0xFF, like an erased flash slot: ErrErased from Parse.
	Erased
)

var corruptNames = [...]string{"flip-bit", "truncate", "zero-header", "wrong-platform", "bad-crc", "erased"}

// CorruptKinds lists every kind, for table tests.
var CorruptKinds = []CorruptKind{FlipBit, Truncate, ZeroHeader, WrongPlatform, BadCRC, Erased}

// String names the kind.
func (k CorruptKind) String() string {
	if int(k) >= 0 && int(k) < len(corruptNames) {
		return corruptNames[k]
	}
	return fmt.Sprintf("corrupt-kind(%d)", int(k))
}

// Corrupt returns a damaged copy of a module; the input is not modified. seed picks the
// bit, the cut or the bogus platform, so a test is reproducible. On input that does not
// parse it still damages something sensible (the middle, the length, the first bytes)
// and never panics.
func Corrupt(data []byte, kind CorruptKind, seed int64) []byte {
	out := append([]byte(nil), data...)
	r := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	m, err := Parse(data)
	if err != nil {
		m = nil
	}
	switch kind {
	case FlipBit:
		if len(out) == 0 {
			return out
		}
		lo, hi := 0, len(out)
		if m != nil {
			// The code between the prefix (and its extensions) and the suffix.
			lo = m.HeaderOffset + m.PrefixLen
			hi = len(m.Data) - CRCSize - int(m.SuffixSize)
			if int(m.SuffixSize) > len(m.Data) || hi <= lo {
				lo, hi = 0, len(m.Data)-CRCSize
			}
			if hi <= lo {
				lo, hi = 0, len(out)
			}
		}
		i := lo + r.IntN(hi-lo)
		out[i] ^= 1 << r.IntN(8)
	case Truncate:
		if len(out) < 2 {
			return out[:0]
		}
		lo := len(out) / 2
		if m != nil && m.HeaderOffset+PrefixSize > lo {
			// Keep the header, so the damage reads as a short file, not as noise.
			lo = m.HeaderOffset + PrefixSize
		}
		if lo >= len(out) {
			lo = len(out) - 1
		}
		return out[:lo+r.IntN(len(out)-lo)]
	case ZeroHeader:
		at, n := 0, min(PrefixSize, len(out))
		if m != nil {
			at = m.HeaderOffset
		}
		clear(out[at : at+n])
	case WrongPlatform:
		if m == nil {
			return out
		}
		binary.LittleEndian.PutUint16(out[m.HeaderOffset+12:], unknownPlatformID(r))
		patchChecksums(out[:len(m.Data)])
	case BadCRC:
		if len(out) >= CRCSize {
			// A non-zero mask always changes the value.
			binary.BigEndian.PutUint32(out[len(out)-4:], binary.BigEndian.Uint32(out[len(out)-4:])^(1|r.Uint32()))
		}
	case Erased:
		for i := range out {
			out[i] = 0xFF
		}
	}
	return out
}

// unknownPlatformID picks an ID no platform in the table has (1000 and up are unused).
func unknownPlatformID(r *rand.Rand) uint16 {
	for {
		id := uint16(1000 + r.IntN(60000))
		if _, ok := platform.ByID(id); !ok {
			return id
		}
	}
}
