package module

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// slotVersion picks a module version the slot variant accepts.
func slotVersion(s platform.Slot) uint16 {
	switch {
	case s.MinModuleVersion > 0:
		return s.MinModuleVersion
	case s.MaxModuleVersion > 0:
		return s.MaxModuleVersion
	}
	return 1234
}

// slotDeps gives each kind of module the dependencies its real counterparts have.
func slotDeps(s platform.Slot) []Dependency {
	switch s.Function {
	case platform.FuncSystem:
		return []Dependency{{Function: platform.FuncBootloader, Version: 1200}, {Function: platform.FuncRadio, Version: 202}}
	case platform.FuncUser:
		return []Dependency{{Function: platform.FuncSystem, Index: 1, Version: 4100}}
	case platform.FuncRadio:
		return []Dependency{{Function: platform.FuncBootloader, Version: 501}, {Function: platform.FuncSystem, Index: 1, Version: 1321}}
	}
	return nil
}

// TestBuildRoundTripEverySlot builds a module for every slot of every platform and checks
// that parsing gives back exactly what was put in, that it validates, and that the
// platform table files it under the same slot.
func TestBuildRoundTripEverySlot(t *testing.T) {
	n := 0
	for _, p := range platform.All() {
		for _, s := range p.Slots {
			name := fmt.Sprintf("%s/%s#%d@%x", p.Name, s.Name, s.Index, s.Start)
			t.Run(name, func(t *testing.T) {
				v := slotVersion(s)
				deps := slotDeps(s)
				spec, err := SpecForSlot(p, s, v, deps...)
				require.NoError(t, err)
				data, err := BuildForSlot(p, s, v, deps...)
				require.NoError(t, err)
				assert.Equal(t, spec.Size, len(data))

				m, err := Parse(data)
				require.NoError(t, err)
				require.NoError(t, m.Validate())
				assert.Equal(t, maxScore, m.HeaderScore)
				assert.True(t, m.CRCOK)
				assert.True(t, m.SHAOK)
				assert.Equal(t, p.ID, m.PlatformID)
				assert.Equal(t, s.Function, m.Function)
				assert.Equal(t, s.Index, m.Index)
				assert.Equal(t, v, m.Version)
				assert.Equal(t, int(s.HeaderOffset), m.HeaderOffset)
				assert.Equal(t, spec.Start, m.Start)
				assert.Equal(t, spec.Start+uint32(len(data))-4, m.End)
				assert.Equal(t, spec.Deps, m.Deps)
				assert.Equal(t, spec.Flags, m.Flags)
				assert.Equal(t, spec.Reserved, m.Reserved)
				if s.EndFixed {
					assert.Equal(t, p.UserStart(uint32(len(data))), m.Start)
					assert.Equal(t, s.End(), m.End+4, "an RTL user part ends at the fixed end")
				}
				switch {
				case s.Function == platform.FuncRadio || s.Function == platform.FuncNCP:
					assert.EqualValues(t, MinSuffixSize, m.SuffixSize)
					assert.Nil(t, m.Product)
				case p.MCU == "rtl872x":
					assert.EqualValues(t, RTLSuffixSize, m.SuffixSize)
					require.Len(t, m.SuffixExtensions, 2)
					start, _, _, ok := m.SuffixExtensions[0].DynamicLocation()
					assert.True(t, ok)
					assert.Equal(t, m.Start, start)
					prod, ok := m.SuffixExtensions[1].ProductData()
					assert.True(t, ok)
					require.NotNil(t, m.Product)
					assert.Equal(t, prod, *m.Product, "product read raw equals the extension")
				default:
					assert.EqualValues(t, StandardSuffixSize, m.SuffixSize)
					require.NotNil(t, m.Product)
				}
				if s.Function == platform.FuncUser {
					assert.Equal(t, p.ID, m.Product.ID)
				}
				// The module lands in the slot it was built for.
				got, ok := p.SlotFor(m.Function, m.Index, m.Version)
				require.True(t, ok)
				assert.Equal(t, s.Name, got.Name)
				assert.Equal(t, s.Start, got.Start)
				assert.NoError(t, got.Check(m.Start, m.End))
				assert.Equal(t, s.Name, m.SlotName())

				r := m.Report("built")
				assert.True(t, r.Valid, r.Error)
				assert.Equal(t, p.Name, r.Platform)
				assert.Len(t, r.Dependencies, len(deps))

				// Deterministic: the same slot builds the same bytes.
				again, err := BuildForSlot(p, s, v, deps...)
				require.NoError(t, err)
				assert.True(t, bytes.Equal(data, again))
			})
			n++
		}
	}
	require.Greater(t, n, 50, "the platform table should have many slots")
	t.Logf("built and re-parsed %d slots", n)
}

func TestBuildLayouts(t *testing.T) {
	hash := sha256.Sum256([]byte("cat.jpg contents"))
	cases := []struct {
		name       string
		spec       Spec
		suffixSize int
		product    *Product
	}{
		{"no product (SoftDevice-like)", Spec{PlatformID: 12, Function: platform.FuncRadio, Start: 0x1000, Flags: FlagDropModuleInfo, Suffix: SuffixNoProduct}, 36, nil},
		{"standard", Spec{PlatformID: 13, Function: platform.FuncUser, Index: 2, Start: 0xB4000, Product: &Product{13, 3}}, 40, &Product{13, 3}},
		{"standard, default product", Spec{PlatformID: 13, Function: platform.FuncSystem, Index: 1, Start: 0x30000, HeaderOffset: 0x200}, 40, &NoProduct},
		{"protected bootloader (tracker)", Spec{PlatformID: 26, Function: platform.FuncBootloader, Start: 0xF4000, HeaderOffset: 0x200,
			Product: &Product{0, 0}, SuffixExtensions: []Extension{SecurityModeExtension(SecurityProtected, nil)}}, 49, &Product{0, 0}},
		{"protected bootloader with cert (tracker)", Spec{PlatformID: 26, Function: platform.FuncBootloader, Start: 0xF4000, HeaderOffset: 0x200,
			Product: &Product{0, 0}, SuffixExtensions: []Extension{SecurityModeExtension(SecurityProtected, make([]byte, 300))}}, 349, &Product{0, 0}},
		{"RTL872x", Spec{PlatformID: 32, Function: platform.FuncUser, Index: 1, Start: 0x085FE000, Size: 8192, Suffix: SuffixRTL, Product: &Product{32, 0xBEEF}}, 62, &Product{32, 0xBEEF}},
		{"protected RTL872x bootloader", Spec{PlatformID: 32, Function: platform.FuncBootloader, Start: 0x08004000, HeaderOffset: 0x20, Suffix: SuffixRTL,
			SuffixExtensions: []Extension{SecurityModeExtension(SecurityProtected, nil)}}, 67, &NoProduct},
		{"asset (cat.bin)", Spec{PlatformID: 0, Function: platform.FuncAsset, Flags: FlagDropModuleInfo, Suffix: SuffixProductExtension,
			SuffixExtensions: []Extension{HashExtension(hash[:]), NameExtension("cat.jpg")}}, 95, &NoProduct},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, err := Build(c.spec)
			require.NoError(t, err)
			m, err := Parse(data)
			require.NoError(t, err)
			require.NoError(t, m.Validate())
			assert.EqualValues(t, c.suffixSize, m.SuffixSize)
			assert.Equal(t, c.product, m.Product)
			assert.Equal(t, c.spec.Start, m.Start)
			assert.Equal(t, int(c.spec.HeaderOffset), m.HeaderOffset)
		})
	}
}

func TestBuildPrefixExtensions(t *testing.T) {
	hash := sha256.Sum256([]byte("asset"))
	spec := Spec{PlatformID: 32, Function: platform.FuncUser, Index: 1, Start: 0x085F3F90, Suffix: SuffixRTL, Product: &Product{32, 4},
		Deps:             [2]Dependency{{Function: platform.FuncSystem, Index: 1, Version: 5300}},
		PrefixExtensions: []Extension{AssetDependencyExtension(hash[:], "unknown.bin"), DependencyExtension(Dependency{platform.FuncNCP, 0, 7}, 3)}}
	data, err := Build(spec)
	require.NoError(t, err)
	m, err := Parse(data)
	require.NoError(t, err)
	require.NoError(t, m.Validate())
	assert.True(t, m.Flags.Has(FlagPrefixExtensions))
	require.Len(t, m.PrefixExtensions, 3)
	assert.Equal(t, ExtEnd, m.PrefixExtensions[2].Type)
	assert.Equal(t, []AssetDependency{{HashType: 0, Hash: fmt.Sprintf("%x", hash), Name: "unknown.bin"}}, m.AssetDependencies())
	d, target, ok := m.PrefixExtensions[1].Dependency()
	assert.True(t, ok)
	assert.Equal(t, Dependency{platform.FuncNCP, 0, 7}, d)
	assert.EqualValues(t, 3, target)
	assert.Equal(t, PrefixSize+m.PrefixExtensions[0].Len()+12+4, m.PrefixLen)
}

func TestBuildErrors(t *testing.T) {
	_, err := Build(Spec{PlatformID: 13, Function: platform.FuncUser, Size: 50})
	assert.ErrorIs(t, err, ErrBuild)
	_, err = Build(Spec{PlatformID: 13, Function: platform.FuncUser, Start: 0xFFFFFF00, Size: 4096})
	assert.ErrorIs(t, err, ErrBuild)
	_, err = Build(Spec{PlatformID: 13, Function: platform.FuncUser, Suffix: SuffixNoProduct, SuffixExtensions: []Extension{NameExtension("x")}})
	assert.ErrorIs(t, err, ErrBuild)
	p, _ := platform.ByID(13)
	s, _ := p.Slot(platform.FuncSystem, 1)
	_, err = BuildForSlot(p, s, 1, Dependency{}, Dependency{}, Dependency{})
	assert.ErrorIs(t, err, ErrBuild)
	_, err = BuildForSlot(nil, s, 1)
	assert.ErrorIs(t, err, ErrBuild)
}

func TestBuildFill(t *testing.T) {
	spec := Spec{PlatformID: 6, Function: platform.FuncUser, Index: 1, Start: 0x080A0000, Size: 512,
		Fill: func(b []byte) {
			for i := range b {
				b[i] = 0xAA
			}
		}}
	data, err := Build(spec)
	require.NoError(t, err)
	m, err := Verify(data)
	require.NoError(t, err)
	assert.Equal(t, byte(0xAA), data[100])
	assert.Equal(t, uint32(0x080A0000+512-4), m.End)
}

func TestSetPlatform(t *testing.T) {
	p, _ := platform.ByID(13)
	s, _ := p.SlotByName("user-part")
	data, err := BuildForSlot(p, s, 6)
	require.NoError(t, err)
	argon, err := SetPlatform(data, 12)
	require.NoError(t, err)
	m, err := Verify(argon)
	require.NoError(t, err)
	assert.EqualValues(t, 12, m.PlatformID)
	assert.True(t, bytes.Equal(data[:100], data[:100]))
}
