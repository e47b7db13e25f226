package module

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

func TestDeviceOSVersion(t *testing.T) {
	sys := map[uint16]string{
		6: "0.4.5", 13: "0.5.0", 207: "0.7.0", 326: "0.8.0-rc.27", 1406: "1.4.4", 1512: "1.5.2", 2302: "2.3.1",
		3005: "3.0.0", 4100: "4.1.0", 5400: "5.4.0", 6101: "6.1.1", 6200: "6.2.0", 6305: "6.3.4", 6500: "6.5.0",
		3211: "3.2.1-p2.2",
	}
	for v, want := range sys {
		got, ok := DeviceOSVersion(platform.FuncSystem, v)
		assert.True(t, ok, "%d", v)
		assert.Equal(t, want, got, "system %d", v)
		mono, _ := DeviceOSVersion(platform.FuncMono, v)
		assert.Equal(t, want, mono)
	}
	// Bootloaders: the newest final release shipping the version names it; the first one
	// is what a dependency on it means.
	boot := map[uint16][2]string{
		101:  {"0.7.0", "0.7.0"},
		501:  {"1.4.2", "1.5.1"},
		1005: {"2.0.1", "3.0.0"},
		1006: {"2.2.0", "2.3.1"},
		1200: {"4.1.0", "4.2.0"},
		3000: {"6.0.0", "6.1.0"},
		3001: {"6.1.1", "6.1.1"},
		3301: {"6.4.1", "6.5.0"},
		400:  {"1.3.1-rc.1", "1.3.1-rc.1"},
	}
	for v, want := range boot {
		first, last, ok := DeviceOSRange(platform.FuncBootloader, v)
		assert.True(t, ok, "%d", v)
		assert.Equal(t, want, [2]string{first, last}, "bootloader %d", v)
	}
	for _, fn := range []platform.Function{platform.FuncRadio, platform.FuncNCP, platform.FuncUser} {
		_, ok := DeviceOSVersion(fn, 202)
		assert.False(t, ok, "%s versions are not Device OS versions", fn)
	}
	_, ok := DeviceOSVersion(platform.FuncSystem, 9999)
	assert.False(t, ok)

	n, ok := RadioStackName(202)
	assert.True(t, ok)
	assert.Equal(t, "SoftDevice S140 7.0.1", n)
	_, ok = RadioStackName(1)
	assert.False(t, ok)

	v, ok := SystemModuleVersion("v4.1.0")
	assert.True(t, ok)
	assert.EqualValues(t, 4100, v)
	v, ok = BootloaderModuleVersion("6.5.0")
	assert.True(t, ok)
	assert.EqualValues(t, 3301, v)
}

func TestSemverOrder(t *testing.T) {
	ordered := []string{"0.4.4-rc.1", "0.4.4.rc.6", "0.4.4", "0.4.6", "0.4.6.1", "1.0.0-rc.2", "1.0.0-rc.10", "1.0.0", "1.5.3-tracker.1", "5.4.0"}
	for i := 1; i < len(ordered); i++ {
		a, b := parseSemver(ordered[i-1]), parseSemver(ordered[i])
		assert.True(t, a.less(b), "%s < %s", ordered[i-1], ordered[i])
		assert.False(t, b.less(a), "not %s < %s", ordered[i], ordered[i-1])
	}
	assert.Equal(t, 1, parseSemver("5.4.0+ledger").rank())
	assert.Equal(t, 2, parseSemver("5.4.0").rank())
	assert.Equal(t, 0, parseSemver("5.5.0-rc.1").rank())
}

// TestDeviceOSAgainstDeviceRestore checks the table against Particle's published header
// dumps: every release's system part names that release, and its bootloader version is
// the one the table gives for it.
func TestDeviceOSAgainstDeviceRestore(t *testing.T) {
	dir := testshared.Dir(t, "data", "device-restore")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	checked := 0
	for _, e := range entries {
		if !e.IsDir() || e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		files, err := filepath.Glob(filepath.Join(dir, e.Name(), "*.json"))
		require.NoError(t, err)
		for _, f := range files {
			raw, err := os.ReadFile(f)
			require.NoError(t, err)
			var mods map[string]struct {
				PrefixInfo struct {
					ModuleVersion  uint16 `json:"moduleVersion"`
					ModuleFunction uint8  `json:"moduleFunction"`
					ModuleIndex    uint8  `json:"moduleIndex"`
				} `json:"prefixInfo"`
			}
			require.NoError(t, json.Unmarshal(raw, &mods), f)
			for name, m := range mods {
				p := m.PrefixInfo
				switch {
				case p.ModuleFunction == uint8(platform.FuncSystem):
					got, ok := DeviceOSVersion(platform.FuncSystem, p.ModuleVersion)
					assert.True(t, ok, "%s %s", f, name)
					assert.Equal(t, e.Name(), got, "%s %s v%d", f, name, p.ModuleVersion)
					checked++
				case p.ModuleFunction == uint8(platform.FuncBootloader) && p.ModuleIndex == 0:
					v, ok := BootloaderModuleVersion(e.Name())
					assert.True(t, ok, e.Name())
					assert.Equal(t, v, p.ModuleVersion, "%s %s", f, name)
					checked++
				}
			}
		}
	}
	assert.Greater(t, checked, 500)
}
