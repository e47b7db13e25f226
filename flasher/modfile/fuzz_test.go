package modfile_test

import (
	"strings"
	"testing"

	"github.com/particle-flasher/particle-flasher/flasher/modfile"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/internal/testbundle"
)

// FuzzParse feeds arbitrary bytes to the bundle reader as a .zip, an Intel HEX image and
// a module file, then picks a platform from what it read: nothing may panic, and every
// refusal is one line.
func FuzzParse(f *testing.F) {
	p, _ := platform.ByName("boron")
	set := boronSet(f)
	f.Add(testbundle.Zip(f, map[string][]byte{"system-part1.bin": set[1], "release/x.elf": []byte("elf"), "debug/a.bin": set[0]}))
	f.Add(testbundle.Hex(testbundle.Part{Addr: 0x30000, Data: set[1]}))
	f.Add([]byte(":020000040000FA\n:0400000001020304F2\n:00000001FF\n"))
	f.Add(set[0])
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range []string{"x.zip", "x.hex", "x.bin"} {
			b, err := modfile.Parse(name, data)
			if err != nil {
				if msg := err.Error(); msg == "" || strings.Contains(msg, "\n") {
					t.Fatalf("%s: refusal is not one line: %q", name, msg)
				}
				continue
			}
			if len(b.Files) == 0 {
				t.Fatalf("%s: read without error but holds nothing", name)
			}
			_, _ = b.For(p)
			_ = b.Warnings()
		}
	})
}
