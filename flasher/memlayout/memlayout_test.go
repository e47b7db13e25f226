package memlayout

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	k = 1024
	// Descriptor strings exactly as Particle bootloaders send them (particle-reference.md §1b).
	gen2Internal = "@Internal Flash   /0x08000000/03*016Ka,01*016Kg,01*064Kg,07*128Kg"
	gen2DCT      = "@DCT Flash   /0x00000000/01*016Kg"
	p1Serial     = "@Serial Flash   /0x00000000/256*004Kg"
	gen3Internal = "@Internal Flash   /0x00000000/1*004Ka,47*004Kg,192*004Kg,4*004Kg,4*004Kg,8*004Ka"
	gen3DCT      = "@DCT Flash   /0x00000000/1*016Ke"
	gen3External = "@External Flash   /0x80000000/1024*004Kg"
	rtlInternal  = "@Internal Flash   /0x08000000/2048*004Kg"
	coreInternal = "@Internal Flash   /0x08000000/20*001Ka,108*001Kg"
	coreSPI      = "@ SPI Flash: SST25x  /0x00000000/512*004Kg"
)

func TestParseRealDescriptors(t *testing.T) {
	rw := Readable | Erasable | Writable
	tests := []struct {
		in       string
		name     string
		segments []Segment
		start    uint32
		end      uint32
	}{
		{gen2Internal, "Internal Flash", []Segment{
			{0x08000000, 16 * k, 3, Readable},
			{0x0800C000, 16 * k, 1, rw},
			{0x08010000, 64 * k, 1, rw},
			{0x08020000, 128 * k, 7, rw},
		}, 0x08000000, 0x08100000},
		{gen2DCT, "DCT Flash", []Segment{{0, 16 * k, 1, rw}}, 0, 0x4000},
		{p1Serial, "Serial Flash", []Segment{{0, 4 * k, 256, rw}}, 0, 0x100000},
		{gen3Internal, "Internal Flash", []Segment{
			{0x00000, 4 * k, 1, Readable},
			{0x01000, 4 * k, 47, rw},
			{0x30000, 4 * k, 192, rw},
			{0xF0000, 4 * k, 4, rw},
			{0xF4000, 4 * k, 4, rw},
			{0xF8000, 4 * k, 8, Readable},
		}, 0, 0x100000},
		{gen3DCT, "DCT Flash", []Segment{{0, 16 * k, 1, Readable | Writable}}, 0, 0x4000},
		{gen3External, "External Flash", []Segment{{0x80000000, 4 * k, 1024, rw}}, 0x80000000, 0x80400000},
		{"@External Flash   /0x80000000/2048*004Kg", "External Flash", []Segment{{0x80000000, 4 * k, 2048, rw}}, 0x80000000, 0x80800000},
		{rtlInternal, "Internal Flash", []Segment{{0x08000000, 4 * k, 2048, rw}}, 0x08000000, 0x08800000},
		{coreInternal, "Internal Flash", []Segment{
			{0x08000000, 1 * k, 20, Readable},
			{0x08005000, 1 * k, 108, rw},
		}, 0x08000000, 0x08020000},
		{coreSPI, "SPI Flash: SST25x", []Segment{{0, 4 * k, 512, rw}}, 0, 0x200000},
		// Protected-mode strings: every letter b (DOS usbd_dfu_mal.h *_IF_STRING_PROT).
		{"@DCT Flash   /0x00000000/1*016Kb", "DCT Flash", []Segment{{0, 16 * k, 1, Erasable}}, 0, 0x4000},
		// The Core's descriptor as old docs printed it (no padding, two-digit size).
		{"@SPI Flash : SST25x/0x00000000/512*04Kg", "SPI Flash : SST25x", []Segment{{0, 4 * k, 512, rw}}, 0, 0x200000},
		// Other multipliers and spacing accepted by dfu-util / particle-usb.
		{"@Option Bytes  /0x1FFFC000/01*016 e", "Option Bytes", []Segment{{0x1FFFC000, 16, 1, Readable | Writable}}, 0x1FFFC000, 0x1FFFC010},
		{"@x/0x0/2*1Mg", "x", []Segment{{0, 1024 * k, 2, rw}}, 0, 0x200000},
		{"@x/0x0/2*512Bd", "x", []Segment{{0, 512, 2, Writable}}, 0, 0x400},
		{"@x/0x0/2*512c", "x", []Segment{{0, 512, 2, Readable | Erasable}}, 0, 0x400},
		{"@x/0x0/1*4Kf,", "x", []Segment{{0, 4 * k, 1, Erasable | Writable}}, 0, 0x1000},
		// Several address groups; a gap between them.
		{"@Multi /0x08000000/1*16Ka/0x08100000/2*4Kg", "Multi", []Segment{
			{0x08000000, 16 * k, 1, Readable},
			{0x08100000, 4 * k, 2, rw},
		}, 0x08000000, 0x08102000},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			l, err := Parse(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.name, l.Name)
			assert.Equal(t, tc.segments, l.Segments)
			assert.Equal(t, tc.start, l.Start())
			assert.Equal(t, tc.end, l.End())

			// Round trip through the canonical form.
			again, err := Parse(l.String())
			require.NoError(t, err, "canonical form %q", l.String())
			assert.Equal(t, l, again)
		})
	}
}

func TestStringCanonical(t *testing.T) {
	l, err := Parse(gen2Internal)
	require.NoError(t, err)
	assert.Equal(t, "@Internal Flash/0x08000000/3*16Ka,1*16Kg,1*64Kg,7*128Kg", l.String())

	l, err = Parse("@Multi /0x08000000/1*16Ka/0x08100000/2*4Kg,1*1Mg,3*100 b")
	require.NoError(t, err)
	assert.Equal(t, "@Multi/0x08000000/1*16Ka/0x08100000/2*4Kg,1*1Mg,3*100Bb", l.String())
}

func TestParseMalformed(t *testing.T) {
	bad := []string{
		"",
		"Internal Flash /0x0/1*4Kg", // no '@'
		"@Internal Flash",           // no address
		"@/0x0/1*4Kg",               // empty name
		"@   /0x0/1*4Kg",            // blank name
		"@x/",                       // nothing after '/'
		"@x/0x/1*4Kg",               // no hex digits
		"@x/08000000/1*4Kg",         // missing 0x
		"@x/0x123456789/1*4Kg",      // more than 32 bits
		"@x/0xZZ/1*4Kg",             // not hex
		"@x/0x0",                    // no segment list
		"@x/0x0/",                   // empty segment list
		"@x/0x0/1*4K",               // no permission
		"@x/0x0/1*4Kz",              // bad permission
		"@x/0x0/1*4Kh",              // bad permission
		"@x/0x0/1*4Xg",              // bad multiplier
		"@x/0x0/*4Kg",               // no count
		"@x/0x0/1*Kg",               // no size
		"@x/0x0/0*4Kg",              // zero sectors
		"@x/0x0/1*0Kg",              // zero size
		"@x/0x0/1x4Kg",              // no '*'
		"@x/0x0/1*4Kg;",             // junk after segment
		"@x/0x0/1*4Kg,,1*4Kg",       // empty item
		"@x/0x0/1*4Kg/0x0/1*4Kg",    // overlap between groups
		"@x/0x1000/1*4Kg/0x0/1*4Kg", // groups out of order
		"@x/0xFFFFF000/2*4Kg",       // runs past 4 GiB
		"@x/0xFFFFF000/1*4Kg",       // ends exactly at 4 GiB (End() would wrap)
		"@x/0x0/99999999999*4Kg",    // count too large
		"@x/0x0/4294967296*1Bg",     // count > int32
		"@x/0x0/1*4294967296Bg",     // size > 32 bits
		"@x/0x0/1*5000Mg",           // size > 32 bits after multiplier
		"@x/0x0/1*4Kg 1*4Kg",        // missing comma
		"@Internal Flash   /0x08000000/03*016Ka,01*016Kg,01*064Kg,07*128K", // truncated
	}
	for _, s := range bad {
		t.Run(s, func(t *testing.T) {
			l, err := Parse(s)
			assert.Error(t, err)
			assert.Nil(t, l)
			assert.True(t, errors.Is(err, ErrSyntax), "error should wrap ErrSyntax: %v", err)
		})
	}
}

func TestSectorAt(t *testing.T) {
	l, err := Parse(gen2Internal)
	require.NoError(t, err)
	tests := []struct {
		addr  uint32
		start uint32
		size  uint32
		perm  Perm
		ok    bool
	}{
		{0x08000000, 0x08000000, 16 * k, Readable, true},
		{0x08003FFF, 0x08000000, 16 * k, Readable, true},
		{0x08004000, 0x08004000, 16 * k, Readable, true},
		{0x0800BFFF, 0x08008000, 16 * k, Readable, true},
		{0x0800C000, 0x0800C000, 16 * k, Readable | Erasable | Writable, true},
		{0x08010001, 0x08010000, 64 * k, Readable | Erasable | Writable, true},
		{0x080A1234, 0x080A0000, 128 * k, Readable | Erasable | Writable, true},
		{0x080FFFFF, 0x080E0000, 128 * k, Readable | Erasable | Writable, true},
		{0x08100000, 0, 0, 0, false},
		{0x07FFFFFF, 0, 0, 0, false},
	}
	for _, tc := range tests {
		start, size, perm, ok := l.SectorAt(tc.addr)
		assert.Equal(t, tc.ok, ok, "0x%08x", tc.addr)
		assert.Equal(t, tc.start, start, "0x%08x", tc.addr)
		assert.Equal(t, tc.size, size, "0x%08x", tc.addr)
		assert.Equal(t, tc.perm, perm, "0x%08x", tc.addr)
	}
}

func TestSectorsCovering(t *testing.T) {
	gen2, err := Parse(gen2Internal)
	require.NoError(t, err)
	rw := Readable | Erasable | Writable

	// A Photon system-part1 write at 0x08020000 of 241496 bytes touches two 128 KB sectors.
	got, err := gen2.SectorsCovering(0x08020000, 241496)
	require.NoError(t, err)
	assert.Equal(t, []Sector{{0x08020000, 128 * k, rw}, {0x08040000, 128 * k, rw}}, got)

	// Crossing segment boundaries: the read-only DCT2 sector, the 16 KB one, then 64 KB.
	got, err = gen2.SectorsCovering(0x0800BFFF, 0x4002)
	require.NoError(t, err)
	assert.Equal(t, []Sector{
		{0x08008000, 16 * k, Readable},
		{0x0800C000, 16 * k, rw},
		{0x08010000, 64 * k, rw},
	}, got)

	// Exactly up to the end of the layout.
	got, err = gen2.SectorsCovering(0x080E0000, 128*k)
	require.NoError(t, err)
	assert.Equal(t, []Sector{{0x080E0000, 128 * k, rw}}, got)

	// One byte past the end.
	_, err = gen2.SectorsCovering(0x080E0000, 128*k+1)
	assert.Error(t, err)
	// Starts before the layout.
	_, err = gen2.SectorsCovering(0x07FFFFFF, 2)
	assert.Error(t, err)
	// Wraps past 4 GiB.
	_, err = gen2.SectorsCovering(0xFFFFFFFF, 2)
	assert.Error(t, err)
	// Empty range.
	got, err = gen2.SectorsCovering(0x08020000, 0)
	assert.NoError(t, err)
	assert.Empty(t, got)

	// A gap between address groups is outside the layout.
	multi, err := Parse("@m/0x0/1*4Kg/0x2000/1*4Kg")
	require.NoError(t, err)
	_, err = multi.SectorsCovering(0x0, 0x3000)
	assert.Error(t, err)
	got, err = multi.SectorsCovering(0x2FFF, 1)
	require.NoError(t, err)
	assert.Equal(t, []Sector{{0x2000, 4 * k, rw}}, got)

	// Gen3 bootloader region 0xF4000..0x100000: four writable pages then eight read-only.
	gen3, err := Parse(gen3Internal)
	require.NoError(t, err)
	got, err = gen3.SectorsCovering(0xF4000, 48*k)
	require.NoError(t, err)
	require.Len(t, got, 12)
	for i, s := range got {
		assert.Equal(t, uint32(0xF4000+i*4*k), s.Start)
		if s.Start < 0xF8000 {
			assert.Equal(t, rw, s.Perm)
		} else {
			assert.Equal(t, Readable, s.Perm)
		}
	}
}

func TestContainsAndPermits(t *testing.T) {
	gen3, err := Parse(gen3Internal)
	require.NoError(t, err)
	rw := Erasable | Writable
	assert.True(t, gen3.Contains(0, 0x100000))
	assert.False(t, gen3.Contains(0, 0x100001))
	assert.True(t, gen3.Contains(0xFFFFF, 0))
	assert.False(t, gen3.Contains(0x100000, 0))
	assert.False(t, gen3.Contains(0xFFFFFFFF, 1))

	assert.True(t, gen3.Permits(0x30000, 0xA4000, rw), "system-part1 slot is writable")
	assert.True(t, gen3.Permits(0x1000, 0x26000, rw), "SoftDevice slot is writable")
	assert.False(t, gen3.Permits(0xF4000, 0xC000, rw), "bootloader slot reaches the read-only top pages")
	assert.False(t, gen3.Permits(0x0, 0x1000, rw), "MBR page is read-only")
	assert.True(t, gen3.Permits(0x0, 0x1000, Readable))
	assert.False(t, gen3.Permits(0x100000, 1, 0), "outside")

	multi, err := Parse("@m/0x0/1*4Kg/0x2000/1*4Kg")
	require.NoError(t, err)
	assert.False(t, multi.Contains(0x0, 0x3000), "gap")
	assert.True(t, multi.Contains(0x2000, 0x1000))

	prot, err := Parse("@Internal Flash   /0x00000000/1*004Kb,47*004Kb,192*004Kb,4*004Kb,4*004Kb,8*004Kb")
	require.NoError(t, err)
	assert.False(t, prot.Permits(0x30000, 0x1000, Writable), "protected mode: nothing writable")
	assert.True(t, prot.Permits(0x30000, 0x1000, Erasable))
}

func TestPerm(t *testing.T) {
	for c := byte('a'); c <= 'g'; c++ {
		p := Perm(c-'a') + 1
		assert.Equal(t, c, p.Letter())
	}
	assert.Equal(t, byte(0), Perm(0).Letter())
	assert.Equal(t, byte(0), Perm(8).Letter())
	assert.Equal(t, "read+erase+write", (Readable | Erasable | Writable).String())
	assert.Equal(t, "read", Readable.String())
	assert.Equal(t, "none", Perm(0).String())
	assert.True(t, (Readable | Writable).Has(Writable))
	assert.False(t, (Readable | Writable).Has(Erasable|Writable))
}

func TestZeroLayout(t *testing.T) {
	var l Layout
	assert.Equal(t, uint32(0), l.Start())
	assert.Equal(t, uint32(0), l.End())
	assert.False(t, l.Contains(0, 1))
	_, _, _, ok := l.SectorAt(0)
	assert.False(t, ok)
	_, err := l.SectorsCovering(0, 1)
	assert.Error(t, err)
	// Hand-built nonsense must not hang or panic.
	odd := Layout{Name: "odd", Segments: []Segment{{Start: 0xFFFFF000, SectorSize: 0x1000, Sectors: 2, Perm: 7}, {Start: 0, SectorSize: 0, Sectors: 5, Perm: 7}}}
	assert.True(t, odd.Contains(0xFFFFF000, 0x1000))
	assert.False(t, odd.Contains(0, 1))
	_ = odd.String()
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		gen2Internal, gen2DCT, p1Serial, gen3Internal, gen3DCT, gen3External, rtlInternal, coreInternal, coreSPI,
		"@Multi /0x08000000/1*16Ka/0x08100000/2*4Kg", "@x/0x0/2*512c", "@x/0x0/1*4Kf,", "@x/0xFFFFF000/1*4Kg",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := Parse(s)
		if err != nil {
			if l != nil {
				t.Fatalf("layout returned with error")
			}
			return
		}
		if len(l.Segments) == 0 {
			t.Fatalf("parsed %q with no segments", s)
		}
		var prevEnd uint64
		for i, seg := range l.Segments {
			if seg.Sectors <= 0 || seg.SectorSize == 0 || seg.Perm == 0 || seg.Perm > 7 {
				t.Fatalf("bad segment %+v from %q", seg, s)
			}
			end := uint64(seg.Start) + uint64(seg.SectorSize)*uint64(seg.Sectors)
			if end > 0xFFFFFFFF {
				t.Fatalf("segment wraps: %+v from %q", seg, s)
			}
			if i > 0 && uint64(seg.Start) < prevEnd {
				t.Fatalf("segments overlap in %q", s)
			}
			prevEnd = end
		}
		again, err := Parse(l.String())
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", l.String(), s, err)
		}
		if again.String() != l.String() || again.Name != l.Name || len(again.Segments) != len(l.Segments) {
			t.Fatalf("round trip changed %q: %q -> %q", s, l.String(), again.String())
		}
		for i := range l.Segments {
			if again.Segments[i] != l.Segments[i] {
				t.Fatalf("round trip changed segment %d of %q", i, s)
			}
		}
		// Queries must not panic on whatever parsed.
		l.SectorAt(l.Start())
		l.Contains(l.Start(), 1)
		if l.End()-l.Start() <= 1<<20 {
			_, _ = l.SectorsCovering(l.Start(), l.End()-l.Start())
		}
	})
}
