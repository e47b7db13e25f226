package flash

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
)

// Errors a Region returns, always wrapped with the region name and the address involved.
var (
	// ErrOutOfRange: some byte of the request lies outside every segment of the layout.
	ErrOutOfRange = errors.New("address outside the memory")
	// ErrReadOnly: the sector's permission lacks the bit the operation needs (erase or
	// write), as the bootloader marks its own sectors, the DCT copies and the nRF52 MBR.
	ErrReadOnly = errors.New("sector is read-only")
	// ErrNotErased: NOR flash can only be programmed where it is erased (0xFF); writing
	// anything else is "write before erase", which a real part silently corrupts.
	ErrNotErased = errors.New("write before erase")
	// ErrPowerLoss: an injected power loss interrupted the operation half-way.
	ErrPowerLoss = errors.New("power lost during flash operation")
)

// Erased is the value of every byte of an erased NOR sector.
const Erased = 0xFF

type segment struct {
	memlayout.Segment
	data []byte
}

// Region is one memory of a device (internal flash, DCT, external flash), addressed exactly as
// its DfuSe layout string says, so a simulated bootloader can hand DfuSe addresses straight to
// it. It enforces the layout's permissions, NOR erase-before-program, and charges the device
// time of every erase and program to its Meter. Safe for concurrent use; operations are
// serialised as on a real flash controller.
type Region struct {
	name   string
	layout *memlayout.Layout
	timing Timing
	meter  *Meter

	mu     sync.Mutex
	segs   []segment
	budget int // bytes of erase/program progress left before a power loss; -1 = never
	// changed is called after every erase or program that changed bytes (SetOnChange).
	changed func()
}

// NewRegion builds a memory with the given layout, every byte erased (0xFF) as a factory-fresh
// part is. name is used in error messages only.
func NewRegion(name string, layout *memlayout.Layout, t Timing, m *Meter) *Region {
	r := &Region{name: name, layout: layout, timing: t, meter: m, budget: -1}
	for _, s := range layout.Segments {
		size := uint64(s.SectorSize) * uint64(max(s.Sectors, 0))
		r.segs = append(r.segs, segment{Segment: s, data: bytes.Repeat([]byte{Erased}, int(size))})
	}
	return r
}

// Name is the name given to NewRegion.
func (r *Region) Name() string { return r.name }

// Layout is the DfuSe layout the region was built from.
func (r *Region) Layout() *memlayout.Layout { return r.layout }

// Timing is the timing the region charges.
func (r *Region) Timing() Timing { return r.timing }

// piece is the part of a request that falls into one segment.
type piece struct {
	seg *segment
	off int // offset into seg.data
	n   int
	pos int // offset into the caller's buffer
}

// pieces splits [addr, addr+n) at segment boundaries; it fails if any byte is outside.
func (r *Region) pieces(addr uint32, n int) ([]piece, error) {
	var out []piece
	cur := uint64(addr)
	end := cur + uint64(n)
	for cur < end {
		var found *segment
		for i := range r.segs {
			s := &r.segs[i]
			if cur >= uint64(s.Start) && cur < uint64(s.Start)+uint64(len(s.data)) {
				found = s
				break
			}
		}
		if found == nil {
			return nil, fmt.Errorf("flash %s: 0x%08x: %w", r.name, cur, ErrOutOfRange)
		}
		off := cur - uint64(found.Start)
		take := min(end-cur, uint64(len(found.data))-off)
		out = append(out, piece{seg: found, off: int(off), n: int(take), pos: int(cur - uint64(addr))})
		cur += take
	}
	return out, nil
}

// Read copies len(p) bytes at addr into p. Reading is never restricted by the permission
// letters: the bootloader's UPLOAD reads any address of the memory.
func (r *Region) Read(addr uint32, p []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ps, err := r.pieces(addr, len(p))
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	for _, pc := range ps {
		copy(p[pc.pos:pc.pos+pc.n], pc.seg.data[pc.off:pc.off+pc.n])
	}
	return nil
}

// consume takes up to n bytes from the power-loss budget and reports how many may proceed
// and whether the power fails during this operation.
func (r *Region) consume(n int) (allowed int, lost bool) {
	if r.budget < 0 || n <= r.budget {
		if r.budget >= 0 {
			r.budget -= n
		}
		return n, false
	}
	allowed = r.budget
	r.budget = -1 // one-shot: the device is off now; a restart gets a healthy part
	return allowed, true
}

// EraseSector erases the whole sector containing addr (sets it to 0xFF), as a DfuSe ERASE of
// any address in the sector does. It is refused with ErrReadOnly when the sector is not
// erasable, and charges the part's erase time.
func (r *Region) EraseSector(addr uint32) error {
	r.mu.Lock()
	start, size, perm, ok := r.layout.SectorAt(addr)
	if !ok {
		r.mu.Unlock()
		return fmt.Errorf("flash %s: erase 0x%08x: %w", r.name, addr, ErrOutOfRange)
	}
	if !perm.Has(memlayout.Erasable) {
		r.mu.Unlock()
		return fmt.Errorf("flash %s: erase sector 0x%08x (%s): %w", r.name, start, perm, ErrReadOnly)
	}
	ps, err := r.pieces(start, int(size))
	if err != nil {
		r.mu.Unlock()
		return fmt.Errorf("erase: %w", err)
	}
	allowed, lost := r.consume(int(size))
	fill(ps, allowed, func(dst []byte, _ int) {
		for i := range dst {
			dst[i] = Erased
		}
	})
	changed := r.changed
	r.mu.Unlock()
	if changed != nil && allowed > 0 {
		changed()
	}

	full := r.timing.EraseTime(size)
	if lost {
		r.meter.Charge(time.Duration(float64(full) * float64(allowed) / float64(size)))
		return fmt.Errorf("flash %s: erase sector 0x%08x: %w after %d of %d bytes", r.name, start, ErrPowerLoss, allowed, size)
	}
	r.meter.Charge(full)
	return nil
}

// fill applies f to the first limit bytes of the pieces, in address order; f gets the slice
// of flash to modify and the matching offset into the caller's buffer.
func fill(ps []piece, limit int, f func(dst []byte, pos int)) {
	for _, pc := range ps {
		if limit <= 0 {
			return
		}
		n := min(pc.n, limit)
		f(pc.seg.data[pc.off:pc.off+n], pc.pos)
		limit -= n
	}
}

// Program writes p at addr. Every byte must lie in a writable sector (ErrReadOnly otherwise),
// and in sectors the host can erase every target byte must be erased (ErrNotErased: "write
// before erase"); nothing is written when either check fails. A writable sector without the
// erase bit (the DCT, "1*016Ke") is rewritten in place: the bootloader implements that memory
// with its own read-modify-write (dct_write_app_data), so the host never erases it. Charges
// the part's programming time.
func (r *Region) Program(addr uint32, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	r.mu.Lock()
	ps, err := r.pieces(addr, len(p))
	if err != nil {
		r.mu.Unlock()
		return fmt.Errorf("program: %w", err)
	}
	for _, pc := range ps {
		if !pc.seg.Perm.Has(memlayout.Writable) {
			r.mu.Unlock()
			return fmt.Errorf("flash %s: program 0x%08x: segment at 0x%08x (%s): %w",
				r.name, addr+uint32(pc.pos), pc.seg.Start, pc.seg.Perm, ErrReadOnly)
		}
		if !pc.seg.Perm.Has(memlayout.Erasable) {
			continue
		}
		for i, b := range pc.seg.data[pc.off : pc.off+pc.n] {
			if b != Erased {
				at := pc.seg.Start + uint32(pc.off+i)
				r.mu.Unlock()
				return fmt.Errorf("flash %s: program 0x%08x: byte at 0x%08x is 0x%02x: %w", r.name, addr, at, b, ErrNotErased)
			}
		}
	}
	allowed, lost := r.consume(len(p))
	fill(ps, allowed, func(dst []byte, pos int) { copy(dst, p[pos:]) })
	changed := r.changed
	r.mu.Unlock()
	if changed != nil && allowed > 0 {
		changed()
	}

	if lost {
		r.meter.Charge(r.timing.ProgramTime(allowed))
		return fmt.Errorf("flash %s: program 0x%08x: %w after %d of %d bytes", r.name, addr, ErrPowerLoss, allowed, len(p))
	}
	r.meter.Charge(r.timing.ProgramTime(len(p)))
	return nil
}

// Load is the backdoor for setting up a device (a factory image, a half-written slot from a
// scenario): it writes p at addr with no timing, no permission check and no erase rule.
func (r *Region) Load(addr uint32, p []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ps, err := r.pieces(addr, len(p))
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	fill(ps, len(p), func(dst []byte, pos int) { copy(dst, p[pos:]) })
	return nil
}

// Snapshot returns a copy of length bytes at addr, or nil when the range is not entirely
// inside the memory; it is for tests and models that already know the range is valid.
func (r *Region) Snapshot(addr, length uint32) []byte {
	p := make([]byte, length)
	if err := r.Read(addr, p); err != nil {
		return nil
	}
	return p
}

// PowerLossAfter arms a power-loss fault: after n more bytes of erase or program progress the
// operation in flight stops where it is (a sector half erased, data half written) and returns
// ErrPowerLoss. The fault fires once; n < 0 disarms it.
func (r *Region) PowerLossAfter(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n < 0 {
		n = -1
	}
	r.budget = n
}

// EraseDuration is the device time erasing the sector holding addr takes (0 outside the
// layout). A simulated bootloader reports it to the host as bwPollTimeout before erasing.
func (r *Region) EraseDuration(addr uint32) time.Duration {
	_, size, _, ok := r.layout.SectorAt(addr)
	if !ok {
		return 0
	}
	return r.timing.EraseTime(size)
}

// ProgramDuration is the device time programming n bytes takes.
func (r *Region) ProgramDuration(n int) time.Duration { return r.timing.ProgramTime(n) }

// SetOnChange makes every erase and program that changes bytes call f afterwards (without
// the region's lock held), so the owner can persist the memory; nil turns it off. Load
// does not call it.
func (r *Region) SetOnChange(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changed = f
}

// Size is the number of bytes of all the region's segments.
func (r *Region) Size() int {
	n := 0
	for _, s := range r.segs {
		n += len(s.data)
	}
	return n
}

// Export returns every segment's bytes, in layout order, as one image of Size bytes.
func (r *Region) Export() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]byte, 0, r.Size())
	for _, s := range r.segs {
		out = append(out, s.data...)
	}
	return out
}

// Import sets every segment's bytes from an image Export made (no timing, no rules).
func (r *Region) Import(b []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(b) != r.Size() {
		return fmt.Errorf("flash %s: image of %d bytes, the memory has %d", r.name, len(b), r.Size())
	}
	for _, s := range r.segs {
		n := copy(s.data, b)
		b = b[n:]
	}
	return nil
}
