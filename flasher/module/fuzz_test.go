package module

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// fuzzSeedFiles are small real files with the interesting layouts: 0.4.0 suffix 36, RTL
// suffix extensions, prefix extensions, asset, protected bootloader, synthetic unknown.
var fuzzSeedFiles = []string{
	"parser-fixtures/040_user-part.bin",
	"parser-fixtures/p2-user-part.bin",
	"parser-fixtures/tracker-tinker@5.3.1.bin",
	"parser-fixtures/tracker-user-part-extensions.bin",
	"parser-fixtures/unknown.bin",
	"apps/binaries_photon_tinker.bin",
	"apps/third_party_ota_app-with-assets.bin",
}

// FuzzParse feeds arbitrary bytes to every entry point; nothing may panic or read out of
// range. Seeds: a few real files (when ../shared is there), built modules of each layout
// (compressed and combined included), and truncated and bit-flipped variants.
func FuzzParse(f *testing.F) {
	var seeds [][]byte
	if root := testshared.Root(); root != "" {
		for _, name := range fuzzSeedFiles {
			if data, err := os.ReadFile(filepath.Join(root, "firmware", name)); err == nil {
				seeds = append(seeds, data)
			}
		}
	}
	small := func(spec Spec) []byte {
		data, err := Build(spec)
		if err != nil {
			f.Fatal(err)
		}
		return data
	}
	built := [][]byte{
		small(Spec{PlatformID: 13, Function: platform.FuncSystem, Index: 1, Start: 0x30000, HeaderOffset: 0x200, Size: 1024}),
		small(Spec{PlatformID: 32, Function: platform.FuncUser, Index: 1, Start: 0x085FFC00, Size: 1024, Suffix: SuffixRTL,
			PrefixExtensions: []Extension{NameExtension("x")}}),
		small(Spec{PlatformID: 12, Function: platform.FuncRadio, Start: 0x1000, Size: 256, Flags: FlagDropModuleInfo, Suffix: SuffixNoProduct}),
		small(Spec{PlatformID: 6, Function: platform.FuncBootloader, Start: 0x08000000, HeaderOffset: 0x184, Size: 600,
			SuffixExtensions: []Extension{SecurityModeExtension(SecurityProtected, []byte{1, 2, 3})}}),
	}
	if comp, err := Compress(compressible(f, Spec{PlatformID: 13, Function: platform.FuncUser, Index: 2, Start: 0xB4000, Size: 2000})); err == nil {
		built = append(built, comp)
	}
	if comb, err := Combine(built[0], built[2]); err == nil {
		built = append(built, comb)
	}
	seeds = append(seeds, built...)
	for _, s := range seeds {
		f.Add(s)
		f.Add(s[:len(s)/2])
		f.Add(s[:len(s)-1])
		f.Add(Corrupt(s, FlipBit, 1))
		f.Add(Corrupt(s, ZeroHeader, 1))
	}
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, data []byte) {
		exercise(t, data)
		// One corruption per input keeps executions cheap; the fuzzer varies the length.
		_ = Corrupt(data, CorruptKinds[len(data)%len(CorruptKinds)], int64(len(data)))
	})
}
