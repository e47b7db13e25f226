// Package memlayout parses the DfuSe memory layout string that a DFU alternate setting
// carries in its iInterface string descriptor, for example
//
//	@Internal Flash   /0x08000000/03*016Ka,01*016Kg,01*064Kg,07*128Kg
//
// A DfuSe host must know this map before it writes: ERASE works on whole sectors, so the
// host erases every sector a write touches, and sectors without the erase/write bits
// (Particle marks the bootloader, the DCT copies and the nRF52 MBR that way) must be left
// alone. Particle's bootloaders also report protected mode by turning every permission
// letter into 'b' (erase-only), so reading the permissions is how a host notices it.
//
// The syntax is ST's (UM0424 §4.3.2) as dfu-util's parse_memory_layout and particle-usb's
// _parseMemoryDescriptor read it:
//
//	'@' name ( '/' 0xADDRESS '/' N '*' SIZE [multiplier] permission (',' N '*' ...)* )+
//
// The multiplier is ' ' or 'B' (bytes), 'K' (1024) or 'M' (1024*1024); when it is missing
// the size is in bytes, as dfu-util assumes. The permission letter is 'a'..'g' and its low
// three bits are the permission (dfu-util: memtype & 7): a=readable, b=erasable,
// c=read+erase, d=writable, e=read+write, f=erase+write, g=read+erase+write.
//
// The package is a leaf (stdlib only) so the DFU client, the simulator and the platform
// table can all share one reading of these strings.
package memlayout

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Perm is the set of operations a DfuSe segment allows, as the low three bits of its
// permission letter.
type Perm uint8

// Permission bits. A sector a host may rewrite needs Erasable|Writable.
const (
	Readable Perm = 1
	Erasable Perm = 2
	Writable Perm = 4
)

// Has reports whether p includes every bit of q.
func (p Perm) Has(q Perm) bool { return p&q == q }

// Letter is the DfuSe permission letter ('a'..'g') for p, or 0 when p has no bit set
// or bits outside Readable|Erasable|Writable (such a Perm cannot be written in a layout).
func (p Perm) Letter() byte {
	if p == 0 || p > Readable|Erasable|Writable {
		return 0
	}
	return 'a' + byte(p) - 1
}

// String spells the permission out ("read+erase+write") for logs and error messages.
func (p Perm) String() string {
	if p == 0 {
		return "none"
	}
	var parts []string
	if p.Has(Readable) {
		parts = append(parts, "read")
	}
	if p.Has(Erasable) {
		parts = append(parts, "erase")
	}
	if p.Has(Writable) {
		parts = append(parts, "write")
	}
	if rest := p &^ (Readable | Erasable | Writable); rest != 0 {
		parts = append(parts, fmt.Sprintf("0x%02x", uint8(rest)))
	}
	return strings.Join(parts, "+")
}

// Segment is a run of equal-sized sectors with the same permission, one "N*SIZE<perm>"
// item of the layout string.
type Segment struct {
	Start      uint32
	SectorSize uint32
	Sectors    int
	Perm       Perm
}

// End is the exclusive end address of the segment. Parse guarantees it does not wrap.
func (s Segment) End() uint32 { return s.Start + s.SectorSize*uint32(s.Sectors) }

// Size is the number of bytes the segment covers.
func (s Segment) Size() uint32 { return s.SectorSize * uint32(s.Sectors) }

// Layout is a parsed memory layout: the memory's name (trimmed of the padding Particle's
// bootloaders put before the '/') and its segments in ascending address order.
type Layout struct {
	Name     string
	Segments []Segment
}

// Sector is one erasable unit of a layout: what a DfuSe ERASE command acts on.
type Sector struct {
	Start, Size uint32
	Perm        Perm
}

// End is the exclusive end address of the sector.
func (s Sector) End() uint32 { return s.Start + s.Size }

// ErrSyntax is wrapped by every error Parse returns, so callers can tell a malformed
// descriptor (a device or a simulator bug) from other failures with errors.Is.
var ErrSyntax = errors.New("memlayout: malformed DfuSe memory layout")

// Parse reads a DfuSe memory layout string. It accepts the whitespace variations that
// real bootloaders emit ("@ SPI Flash: SST25x  /...", "04Kg", "016Kg") and rejects
// anything that would make the layout ambiguous: a missing or non-hex address, a zero
// sector count or size, an unknown multiplier or permission letter, segments that overlap
// or are out of address order, and layouts that run past the 32-bit address space.
// It never panics, whatever the input.
func Parse(s string) (*Layout, error) {
	p := parser{s: s}
	l, err := p.layout()
	if err != nil {
		return nil, fmt.Errorf("%w: %v (in %q)", ErrSyntax, err, s)
	}
	return l, nil
}

type parser struct {
	s   string
	pos int
}

func (p *parser) eof() bool { return p.pos >= len(p.s) }

func (p *parser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.pos]
}

func (p *parser) skipSpace() {
	for !p.eof() && isSpace(p.s[p.pos]) {
		p.pos++
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func (p *parser) layout() (*Layout, error) {
	if p.peek() != '@' {
		return nil, errors.New("does not start with '@'")
	}
	p.pos++
	slash := strings.IndexByte(p.s[p.pos:], '/')
	if slash < 0 {
		return nil, errors.New("no '/' after the name")
	}
	name := strings.TrimSpace(p.s[p.pos : p.pos+slash])
	if name == "" {
		return nil, errors.New("empty name")
	}
	p.pos += slash
	l := &Layout{Name: name}
	var end uint64 // exclusive end of the previous segment, for the ordering check
	for !p.eof() {
		// p.s[p.pos] == '/': start of an address group.
		p.pos++
		addr, err := p.address()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.peek() != '/' {
			return nil, fmt.Errorf("expected '/' after address 0x%x at offset %d", addr, p.pos)
		}
		p.pos++
		next := uint64(addr)
		for {
			seg, err := p.segment(next)
			if err != nil {
				return nil, err
			}
			if len(l.Segments) > 0 && uint64(seg.Start) < end {
				return nil, fmt.Errorf("segment at 0x%08x overlaps or precedes the previous one (which ends at 0x%x)", seg.Start, end)
			}
			l.Segments = append(l.Segments, seg)
			end = uint64(seg.Start) + uint64(seg.Size())
			next = end
			p.skipSpace()
			if p.peek() != ',' {
				break
			}
			p.pos++
			p.skipSpace()
			// dfu-util tolerates a trailing comma before the next group or the end.
			if p.eof() || p.peek() == '/' {
				break
			}
		}
		p.skipSpace()
		if !p.eof() && p.peek() != '/' {
			return nil, fmt.Errorf("unexpected %q at offset %d", p.peek(), p.pos)
		}
	}
	if len(l.Segments) == 0 {
		return nil, errors.New("no segments")
	}
	return l, nil
}

// address reads "0x" followed by 1..8 hex digits.
func (p *parser) address() (uint32, error) {
	p.skipSpace()
	if !strings.HasPrefix(p.s[p.pos:], "0x") && !strings.HasPrefix(p.s[p.pos:], "0X") {
		return 0, fmt.Errorf("expected 0x address at offset %d", p.pos)
	}
	p.pos += 2
	start := p.pos
	for !p.eof() && isHex(p.s[p.pos]) {
		p.pos++
	}
	digits := p.s[start:p.pos]
	if digits == "" || len(digits) > 8 {
		return 0, fmt.Errorf("address at offset %d must have 1 to 8 hex digits", start)
	}
	v, err := strconv.ParseUint(digits, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("bad address %q", digits)
	}
	return uint32(v), nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// number reads a decimal count or size (at most 10 digits so it cannot overflow).
func (p *parser) number(what string) (uint64, error) {
	p.skipSpace()
	start := p.pos
	for !p.eof() && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
		p.pos++
	}
	digits := p.s[start:p.pos]
	if digits == "" {
		return 0, fmt.Errorf("expected %s at offset %d", what, start)
	}
	if len(digits) > 10 {
		return 0, fmt.Errorf("%s %q too large", what, digits)
	}
	v, _ := strconv.ParseUint(digits, 10, 64) // ≤10 digits always fits
	if v == 0 {
		return 0, fmt.Errorf("%s must not be zero (offset %d)", what, start)
	}
	return v, nil
}

// segment reads "N*SIZE[mult]perm" starting at address start.
func (p *parser) segment(start uint64) (Segment, error) {
	n, err := p.number("sector count")
	if err != nil {
		return Segment{}, err
	}
	p.skipSpace()
	if p.peek() != '*' {
		return Segment{}, fmt.Errorf("expected '*' at offset %d", p.pos)
	}
	p.pos++
	size, err := p.number("sector size")
	if err != nil {
		return Segment{}, err
	}
	// A space directly after the digits may itself be the "bytes" multiplier, so skip
	// spaces first and then look for a multiplier letter.
	p.skipSpace()
	switch p.peek() {
	case 'B':
		p.pos++
	case 'K':
		size *= 1024
		p.pos++
	case 'M':
		size *= 1024 * 1024
		p.pos++
	}
	p.skipSpace()
	c := p.peek()
	if c < 'a' || c > 'g' {
		if p.eof() {
			return Segment{}, errors.New("missing permission letter at end of input")
		}
		return Segment{}, fmt.Errorf("expected permission letter a..g at offset %d, got %q", p.pos, c)
	}
	p.pos++
	if n > math.MaxInt32 {
		return Segment{}, fmt.Errorf("sector count %d too large", n)
	}
	if size > math.MaxUint32 {
		return Segment{}, fmt.Errorf("sector size %d does not fit in 32 bits", size)
	}
	if start+n*size > math.MaxUint32 {
		return Segment{}, fmt.Errorf("segment at 0x%x of %d*%d bytes runs past the 32-bit address space", start, n, size)
	}
	return Segment{Start: uint32(start), SectorSize: uint32(size), Sectors: int(n), Perm: Perm(c-'a') + 1}, nil
}

// String renders the layout in a canonical form that Parse reads back to an equal Layout:
// no padding after the name, 8-digit upper-case addresses, the largest exact multiplier
// (M, K or B), and a new "/0x.../" group wherever a segment does not start where the
// previous one ended. It is not byte-identical to what a Particle bootloader sends (their
// padding and zero-filling vary between bootloaders); compare parsed layouts, not strings.
func (l *Layout) String() string {
	var b strings.Builder
	b.WriteByte('@')
	b.WriteString(l.Name)
	for i, s := range l.Segments {
		if i == 0 || s.Start != l.Segments[i-1].End() {
			fmt.Fprintf(&b, "/0x%08X/", s.Start)
		} else {
			b.WriteByte(',')
		}
		size, mult := s.SectorSize, byte('B')
		switch {
		case size != 0 && size%(1024*1024) == 0:
			size, mult = size/(1024*1024), 'M'
		case size != 0 && size%1024 == 0:
			size, mult = size/1024, 'K'
		}
		letter := s.Perm.Letter()
		if letter == 0 {
			letter = '?' // only for hand-built layouts with an invalid Perm; Parse rejects it
		}
		fmt.Fprintf(&b, "%d*%d%c%c", s.Sectors, size, mult, letter)
	}
	return b.String()
}

// Start is the lowest address the layout covers (0 for an empty layout).
func (l *Layout) Start() uint32 {
	if len(l.Segments) == 0 {
		return 0
	}
	return l.Segments[0].Start
}

// End is the exclusive end of the highest segment (0 for an empty layout). Addresses
// between Start and End may still fall in a gap between segments; use Contains.
func (l *Layout) End() uint32 {
	if len(l.Segments) == 0 {
		return 0
	}
	return l.Segments[len(l.Segments)-1].End()
}

// end64 is the exclusive end of s without wrapping, so hand-built segments with odd
// values cannot make the address loops below spin or panic.
func end64(s Segment) uint64 {
	if s.Sectors <= 0 {
		return uint64(s.Start)
	}
	return uint64(s.Start) + uint64(s.SectorSize)*uint64(s.Sectors)
}

// segmentAt returns the segment holding addr.
func (l *Layout) segmentAt(addr uint64) (Segment, uint64, bool) {
	for _, s := range l.Segments {
		if e := end64(s); s.SectorSize != 0 && addr >= uint64(s.Start) && addr < e {
			return s, e, true
		}
	}
	return Segment{}, 0, false
}

// SectorAt returns the sector that holds addr: the unit a DfuSe ERASE of addr clears.
func (l *Layout) SectorAt(addr uint32) (start, size uint32, perm Perm, ok bool) {
	s, _, ok := l.segmentAt(uint64(addr))
	if !ok {
		return 0, 0, 0, false
	}
	start = s.Start + (addr-s.Start)/s.SectorSize*s.SectorSize
	return start, s.SectorSize, s.Perm, true
}

// SectorsCovering lists, in address order, every sector that overlaps [addr, addr+length):
// the sectors a host must erase before writing that range. Because erasing is per sector,
// the first and last may extend beyond the range. It fails if any byte of the range lies
// outside the layout (including a gap between segments) or if the range wraps past 4 GiB.
// An empty range covers no sectors.
func (l *Layout) SectorsCovering(addr, length uint32) ([]Sector, error) {
	if length == 0 {
		return nil, nil
	}
	end := uint64(addr) + uint64(length)
	if end > math.MaxUint32+1 {
		return nil, fmt.Errorf("memlayout: range 0x%08x+%d wraps past the 32-bit address space", addr, length)
	}
	var out []Sector
	for cur := uint64(addr); cur < end; {
		start, size, perm, ok := l.SectorAt(uint32(cur))
		if !ok {
			return nil, fmt.Errorf("memlayout: address 0x%08x (in range 0x%08x..0x%08x) is outside %q", cur, addr, end, l.Name)
		}
		out = append(out, Sector{Start: start, Size: size, Perm: perm})
		cur = uint64(start) + uint64(size)
	}
	return out, nil
}

// Contains reports whether every byte of [addr, addr+length) lies in a segment. An empty
// range is contained when addr itself is inside the layout.
func (l *Layout) Contains(addr, length uint32) bool {
	return l.Permits(addr, length, 0)
}

// Permits reports whether every sector overlapping [addr, addr+length) exists and has all
// the bits in need; Permits(a, n, Erasable|Writable) is the question "may a DfuSe host
// rewrite this range?" (particle-usb refuses to touch segments that are not both). An
// empty range is judged by the sector holding addr.
func (l *Layout) Permits(addr, length uint32, need Perm) bool {
	end := uint64(addr) + uint64(length)
	if length == 0 {
		end = uint64(addr) + 1
	}
	for cur := uint64(addr); cur < end; {
		s, segEnd, ok := l.segmentAt(cur)
		if !ok || !s.Perm.Has(need) {
			return false
		}
		cur = segEnd
	}
	return true
}

// EraseOnly reports a layout whose every segment may only be erased ('b'): what Particle
// bootloaders in Device Protection's protected mode advertise, refusing reads and writes.
func (l *Layout) EraseOnly() bool {
	if len(l.Segments) == 0 {
		return false
	}
	for _, s := range l.Segments {
		if s.Perm != Erasable {
			return false
		}
	}
	return true
}
