package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/internal/testbundle"
)

// appWithAssets builds an application for a Device OS that depends on the given raw asset
// files, the way a Workbench build records them (ASSET_DEPENDENCY suffix extensions).
func appWithAssets(t *testing.T, p *platform.Platform, deviceOS string, assets map[string][]byte) []byte {
	t.Helper()
	sl, ok := p.Slot(platform.FuncUser, 2)
	require.True(t, ok)
	sys, ok := module.SystemModuleVersion(deviceOS)
	require.True(t, ok)
	spec, err := module.SpecForSlot(p, sl, 7, module.Dependency{Function: platform.FuncSystem, Index: 1, Version: sys})
	require.NoError(t, err)
	for _, name := range []string{"cat.txt", "house.bin"} {
		if data, ok := assets[name]; ok {
			sum := sha256.Sum256(data)
			spec.SuffixExtensions = append(spec.SuffixExtensions, module.AssetDependencyExtension(sum[:], name))
		}
	}
	b, err := module.Build(spec)
	require.NoError(t, err)
	return b
}

// TestAssetsGoWithTheirApplication is acceptance 1 of "Device OS 5.x and 6.x devices as
// they are in the field": particle-cli's bundle of an application and its assets (app.bin
// beside assets/<name>) flashed to a virtual Argon at 6.3.4: the device reports every asset
// with its hash; a second run writes nothing; the bundle without one of its assets is refused
// before anything is written, naming it.
func TestAssetsGoWithTheirApplication(t *testing.T) {
	assets := map[string][]byte{"cat.txt": []byte("meow\n"), "house.bin": make([]byte, 3000)}
	for i := range assets["house.bin"] {
		assets["house.bin"][i] = byte(i * 7)
	}
	d := releaseSim(t, "argon", "6.3.4", false, sim.Options{})
	app := appWithAssets(t, d.Platform(), "6.3.4", assets)

	// The application file alone: inspect lists what it needs.
	appPath := writeBundle(t, "app.bin", app)
	code, out, errb := flashRun(t, "inspect", "--json", appPath)
	require.Equal(t, 0, code, errb)
	var rep module.Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.Len(t, rep.Assets, 2)
	for _, a := range rep.Assets {
		sum := sha256.Sum256(assets[a.Name])
		assert.Equal(t, hex.EncodeToString(sum[:]), a.Hash, a.Name)
	}

	flashInProcess(t, d)
	missing := writeBundle(t, "missing.zip", testbundle.Zip(t, map[string][]byte{"app.bin": app, "assets/cat.txt": assets["cat.txt"]}))
	before, resets := flashCRC(d), d.Status().Resets
	code, _, errb = flashRun(t, "flash", "--to", missing, "--device", d.ID(), "--yes", "--state-dir", t.TempDir())
	assert.NotEqual(t, 0, code)
	assert.Contains(t, errb, `needs the asset "house.bin"`)
	assert.Contains(t, errb, "neither on the device nor among the files")
	assert.Equal(t, before, flashCRC(d), "nothing written")
	assert.Equal(t, resets, d.Status().Resets)
	assert.Empty(t, d.Assets())

	bundle := writeBundle(t, "app.zip", testbundle.Zip(t, map[string][]byte{"app.bin": app, "assets/cat.txt": assets["cat.txt"], "assets/house.bin": assets["house.bin"]}))
	code, out, errb = flashRun(t, "flash", "--to", bundle, "--device", d.ID(), "--yes", "--state-dir", t.TempDir())
	require.Equal(t, 0, code, "%s\n%s", out, errb)
	assert.Contains(t, out, "asset cat.txt")
	held := d.Assets()
	require.Len(t, held, 2)
	for name, data := range assets {
		sum := sha256.Sum256(data)
		assert.Equal(t, hex.EncodeToString(sum[:]), held[name], name)
	}
	assert.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)

	// The device reports them.
	listWithDoors(t, demo.New(true, d))
	_, out, _ = listRun(t, "inspect-device", d.ID(), "--json")
	var ins inspectJSON
	require.NoError(t, json.Unmarshal([]byte(out), &ins), out)
	require.Len(t, ins.Assets, 2)
	for _, a := range ins.Assets {
		assert.Equal(t, held[a.Name], a.Hash)
		assert.Equal(t, len(assets[a.Name]), a.Size)
	}

	// Again: nothing to write.
	resets = d.Status().Resets
	code, out, errb = flashRun(t, "flash", "--to", bundle, "--device", d.ID(), "--yes", "--state-dir", t.TempDir())
	require.Equal(t, 0, code, "%s\n%s", out, errb)
	assert.Contains(t, out, "already on the device")
	assert.NotContains(t, out, "Send asset")
	assert.Equal(t, resets, d.Status().Resets, "not even restarted")
}
