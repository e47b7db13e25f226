package fyneapp

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf16"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// top is the repository's FyneApp.toml, the one `fyne package` and `make windows` read.
var top = filepath.Join("..", "..", File)

func utf16le(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	return b
}

func TestTopLevelMetadata(t *testing.T) {
	m, err := Load(top)
	require.NoError(t, err)
	assert.Equal(t, "Particle Flasher", m.Details.Name)
	assert.FileExists(t, m.IconPath(), "the icon path is relative to FyneApp.toml")
	v, err := m.FileVersion()
	require.NoError(t, err)
	assert.Equal(t, m.Details.Build, v.Build)
}

// The .syso the Windows build links: a COFF object for the architecture with the icon,
// the version strings Explorer shows and the manifest.
func TestWriteSyso(t *testing.T) {
	m, err := Load(top)
	require.NoError(t, err)
	v, _ := m.FileVersion()
	for arch, machine := range map[string]uint16{"amd64": 0x8664, "386": 0x14c, "arm64": 0xaa64} {
		out := filepath.Join(t.TempDir(), "rsrc.syso")
		require.NoError(t, m.WriteSyso(out, arch, "particle-flasher.exe"))
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		require.Greater(t, len(b), 20)
		assert.Equal(t, machine, binary.LittleEndian.Uint16(b), arch)
		assert.True(t, bytes.Contains(b, []byte(".rsrc")), "one resource section")
		for _, s := range []string{"Particle Flasher", v.GetVersionString(), "particle-flasher.exe", "ProductVersion"} {
			assert.True(t, bytes.Contains(b, utf16le(s)), "%s: version info holds %q", arch, s)
		}
		assert.True(t, bytes.Contains(b, []byte(`name="Particle Flasher"`)), "manifest")
		assert.True(t, bytes.Contains(b, []byte("\x89PNG")) || bytes.Contains(b, []byte{40, 0, 0, 0}), "an icon image")
	}
}

func TestLoadRefusesWhatWindowsCannotNumber(t *testing.T) {
	for name, body := range map[string]string{
		"letters":    "[Details]\nIcon=\"i.png\"\nName=\"A\"\nID=\"a.b\"\nVersion=\"1.x\"\n",
		"four parts": "[Details]\nIcon=\"i.png\"\nName=\"A\"\nID=\"a.b\"\nVersion=\"1.2.3.4\"\n",
		"no name":    "[Details]\nIcon=\"i.png\"\nID=\"a.b\"\nVersion=\"1.2\"\n",
		"big build":  "[Details]\nIcon=\"i.png\"\nName=\"A\"\nID=\"a.b\"\nVersion=\"1.2\"\nBuild=70000\n",
	} {
		p := filepath.Join(t.TempDir(), File)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		_, err := Load(p)
		assert.Error(t, err, name)
	}
}
