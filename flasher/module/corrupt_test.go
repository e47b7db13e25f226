package module

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// corruptSubjects are modules with the header at each usual place.
func corruptSubjects(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, c := range []struct {
		platform uint16
		slot     string
	}{{13, "system-part1"}, {32, "user-part"}, {6, "system-part2"}, {32, "bootloader"}, {12, "softdevice"}, {0, "mono"}} {
		p, ok := platform.ByID(c.platform)
		require.True(t, ok)
		s, ok := p.SlotByName(c.slot)
		require.True(t, ok)
		data, err := BuildForSlot(p, s, slotVersion(s), slotDeps(s)...)
		require.NoError(t, err)
		out[p.Name+"/"+c.slot] = data
	}
	return out
}

// TestCorrupt checks that every kind of damage is caught with the error it stands for.
func TestCorrupt(t *testing.T) {
	want := map[CorruptKind]error{
		FlipBit:       ErrCRC,
		Truncate:      ErrSize,
		ZeroHeader:    ErrNoHeader,
		WrongPlatform: ErrUnknownPlatform,
		BadCRC:        ErrCRC,
		Erased:        ErrErased,
	}
	require.Len(t, want, len(CorruptKinds))
	for name, data := range corruptSubjects(t) {
		for _, kind := range CorruptKinds {
			for seed := int64(0); seed < 8; seed++ {
				t.Run(fmt.Sprintf("%s/%s/%d", name, kind, seed), func(t *testing.T) {
					orig := bytes.Clone(data)
					bad := Corrupt(data, kind, seed)
					assert.Equal(t, orig, data, "Corrupt must not modify its input")
					assert.False(t, bytes.Equal(bad, data), "the copy must differ")
					m, err := Verify(bad)
					require.Error(t, err)
					assert.ErrorIs(t, err, want[kind])
					r := InspectBytes(name, bad)
					assert.False(t, r.Valid)
					assert.Equal(t, err.Error(), r.Error)
					switch kind {
					case BadCRC:
						// Only the CRC: the SHA and everything else is intact.
						require.NotNil(t, m)
						assert.True(t, m.SHAOK)
						_, single := err.(*Error)
						assert.True(t, single, "only the CRC is wrong: %v", err)
						assert.Contains(t, err.Error(), "CRC mismatch: stored 0x")
					case FlipBit:
						require.NotNil(t, m)
						assert.False(t, m.CRCOK)
					case WrongPlatform:
						require.NotNil(t, m)
						assert.True(t, m.CRCOK)
						assert.True(t, m.SHAOK)
						_, single := err.(*Error)
						require.True(t, single, "only the platform is wrong: %v", err)
						assert.Regexp(t, `^unknown platform \d+$`, err.Error())
					case Truncate:
						require.NotNil(t, m)
						assert.Regexp(t, `^file is \d+ bytes but the header says \d+`, err.Error())
					case Erased:
						assert.Nil(t, m)
						assert.Len(t, bad, len(data))
					}
				})
			}
		}
	}
}

func TestCorruptOddInput(t *testing.T) {
	for _, in := range [][]byte{nil, {}, {1}, {1, 2, 3}, bytes.Repeat([]byte{0x42}, 100)} {
		for _, kind := range append(CorruptKinds, CorruptKind(99)) {
			assert.NotPanics(t, func() { Corrupt(in, kind, 1) })
		}
	}
	assert.Equal(t, "corrupt-kind(99)", CorruptKind(99).String())
	assert.Equal(t, "wrong-platform", WrongPlatform.String())
}
