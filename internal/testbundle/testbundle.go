// Package testbundle builds the files people bring from Particle, for tests: .zip
// bundles laid out as Particle ships them and Intel HEX images like Device Restore's.
package testbundle

import (
	"archive/zip"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	cache "github.com/particle-flasher/particle-flasher/firmware-cache"
	"github.com/particle-flasher/particle-flasher/flasher/sim/releases"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
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

// Release is a Device OS release's files for a platform, by part name ("bootloader",
// "system-part1", "softdevice", "tinker", ...): the real binary from ../shared where it
// has one, else the module built from the release's published header dump.
func Release(t testing.TB, plat, version string) map[string][]byte {
	t.Helper()
	cat, err := cache.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := cat.Release(version, plat)
	if err != nil {
		t.Fatal(err)
	}
	set, err := releases.Build(rel)
	if err != nil {
		t.Fatal(err)
	}
	dir := testshared.Dir(t, "firmware", "releases")
	out := map[string][]byte{}
	files := append([]releases.File(nil), set.OS...)
	if set.App != nil {
		files = append(files, *set.App)
	}
	for _, f := range files {
		out[f.Name] = f.Data
		if cm, ok := rel.Module(f.Name); ok && cm.PlatformID == rel.PlatformID {
			if b, err := os.ReadFile(filepath.Join(dir, cm.Asset)); err == nil {
				out[f.Name] = b
			}
		}
	}
	return out
}

// Shape is a bundle as Particle ships one.
type Shape struct {
	// Name is its file name; Notes are words the reader should say about what it left out.
	Name  string
	Data  []byte
	Notes []string
}

// Shapes are a release for plat in the three shapes Particle publishes: Device Restore's
// <platform>.zip (flat <part>.bin), GitHub's .binaries.zip (release/ with .elf, .map and
// .lst beside each .bin, the SoftDevice published apart) and the whole-version zip, here
// with other's release beside it and debug/ builds.
func Shapes(t testing.TB, plat, other, version string) []Shape {
	t.Helper()
	mine, theirs := Release(t, plat, version), Release(t, other, version)
	restore := map[string][]byte{}
	for part, b := range mine {
		restore[part+".bin"] = b
	}
	binaries := map[string][]byte{}
	n := 0
	for part, b := range mine {
		if part == "softdevice" || part == "ncp" {
			continue
		}
		base := "release/" + plat + "-" + part + "@" + version
		binaries[base+".bin"], binaries[base+".elf"], binaries[base+".map"], binaries[base+".lst"] = b, []byte("\x7fELF"), []byte("map"), []byte("lst")
		n++
	}
	whole := map[string][]byte{}
	others := 0
	for name, set := range map[string]map[string][]byte{plat: mine, other: theirs} {
		for part, b := range set {
			if part == "softdevice" || part == "ncp" {
				continue
			}
			if name == other {
				others++
			}
			whole[version+"/"+name+"/release/"+name+"-"+part+"@"+version+".bin"] = b
			whole[version+"/"+name+"/debug/"+name+"-"+part+"@"+version+"+debug.bin"] = b
		}
	}
	first, second := plat, other
	if second < first {
		first, second = second, first
	}
	return []Shape{
		{Name: plat + ".zip", Data: Zip(t, restore)},
		{Name: "particle_device-os@" + version + "+" + plat + ".binaries.zip", Data: Zip(t, binaries),
			Notes: []string{fmt.Sprintf("left out %d files: %d .elf, %d .lst, %d .map (not modules)", 3*n, n, n, n)}},
		{Name: "particle_device-os@" + version + ".zip", Data: Zip(t, whole),
			Notes: []string{fmt.Sprintf("left out %d modules for other platforms", others),
				fmt.Sprintf("left out the builds in %s/%s/debug/, %s/%s/debug/", version, first, version, second)}},
	}
}
