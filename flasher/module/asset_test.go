package module

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// The real asset module binary-version-reader ships (cat.bin) and the real application
// with asset dependencies read as Device OS reads them, and an asset built here reads back
// the same way.
func TestAssets(t *testing.T) {
	dir := testshared.Dir(t, "firmware")
	cat, err := os.ReadFile(filepath.Join(dir, "parser-fixtures", "cat.bin"))
	require.NoError(t, err)
	m, err := Parse(cat)
	require.NoError(t, err)
	a, ok := m.Asset()
	require.True(t, ok)
	assert.Equal(t, "cat.jpg", a.Name)
	raw, err := m.AssetContent()
	require.NoError(t, err)
	sum := sha256.Sum256(raw)
	assert.Equal(t, hex.EncodeToString(sum[:]), a.Hash, "the HASH extension is the SHA-256 of the raw asset")
	assert.Equal(t, len(raw), a.Size)

	app, err := os.ReadFile(filepath.Join(dir, "apps", "third_party_ota_app-with-assets.bin"))
	require.NoError(t, err)
	am, err := Parse(app)
	require.NoError(t, err)
	deps := am.Assets()
	require.NotEmpty(t, deps)
	for _, d := range deps {
		assert.NotEmpty(t, d.Name)
		assert.Len(t, d.Hash, 64)
	}
	r := am.Report("app.bin")
	assert.Equal(t, deps, r.Assets)

	built, err := BuildAsset("cat.jpg", raw)
	require.NoError(t, err)
	bm, err := Verify(built)
	require.NoError(t, err)
	ba, ok := bm.Asset()
	require.True(t, ok)
	assert.Equal(t, a, ba)
	back, err := bm.AssetContent()
	require.NoError(t, err)
	assert.Equal(t, raw, back)
}
