package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/assets"
	"github.com/particle-flasher/particle-flasher/internal/fyneapp"
	"github.com/particle-flasher/particle-flasher/ui"
)

// TestFyneAppMetadata: `fyne package` (run from the repository's top, `make package`)
// and the Windows resources (`make windows`) read the top-level FyneApp.toml; its ID must
// be the one the app runs with (preferences live under it) and its icon the one the window
// shows.
func TestFyneAppMetadata(t *testing.T) {
	meta, err := fyneapp.Load(filepath.Join("..", "..", fyneapp.File))
	require.NoError(t, err)
	assert.Equal(t, ui.AppID, meta.Details.ID)
	assert.Equal(t, "Particle Flasher", meta.Details.Name)
	assert.NotEmpty(t, meta.Details.Version)
	icon, err := os.ReadFile(meta.IconPath())
	require.NoError(t, err, "the icon FyneApp.toml names")
	assert.Equal(t, assets.Icon, icon, "the packaged icon is the window's icon")
}
