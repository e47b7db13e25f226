// Package testbundle builds the files people bring from Particle, for tests: .zip
// bundles laid out as Particle ships them and Intel HEX images like Device Restore's.
package testbundle

import (
	"archive/zip"
	"bytes"
	"fmt"
	"sort"
	"strings"
	"testing"
)

// Zip is a .zip holding files (name -> contents), written in name order.
func Zip(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for _, n := range names {
		f, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(files[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return zb.Bytes()
}

// Part is bytes at an address of an image.
type Part struct {
	Addr uint32
	Data []byte
}

// Hex is an Intel HEX image of the parts, written the way Particle's restore generator
// writes one: 16 data bytes a record, an extended linear address record whenever the
// upper 16 bits change, an end-of-file record.
func Hex(parts ...Part) []byte {
	var b strings.Builder
	record := func(typ byte, addr uint16, data []byte) {
		rec := append([]byte{byte(len(data)), byte(addr >> 8), byte(addr), typ}, data...)
		var sum byte
		for _, x := range rec {
			sum += x
		}
		rec = append(rec, -sum)
		fmt.Fprintf(&b, ":%X\n", rec)
	}
	for _, p := range parts {
		upper := -1
		for off := 0; off < len(p.Data); off += 16 {
			addr := p.Addr + uint32(off)
			if int(addr>>16) != upper {
				upper = int(addr >> 16)
				record(0x04, 0, []byte{byte(upper >> 8), byte(upper)})
			}
			end := min(off+16, len(p.Data))
			// A record may not run past a 64 KB boundary.
			if lim := int(0x10000 - addr&0xFFFF); end-off > lim {
				end = off + lim
			}
			record(0x00, uint16(addr), p.Data[off:end])
			if end-off < 16 && end < len(p.Data) {
				off = end - 16 // continue right after what was written
			}
		}
	}
	record(0x01, 0, nil)
	return []byte(b.String())
}
