package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/assets"
	"github.com/particle-flasher/particle-flasher/ui"
)

// TestFyneAppMetadata: `fyne package` (run in this directory, `make package`) reads
// FyneApp.toml here; its ID must be the one the app runs with (preferences live under
// it) and its icon the one the window shows.
func TestFyneAppMetadata(t *testing.T) {
	var meta struct {
		Details struct {
			Icon, Name, ID, Version string
			Build                   int
		}
	}
	_, err := toml.DecodeFile("FyneApp.toml", &meta)
	require.NoError(t, err)
	assert.Equal(t, ui.AppID, meta.Details.ID)
	assert.Equal(t, "Particle Flasher", meta.Details.Name)
	assert.NotEmpty(t, meta.Details.Version)
	icon, err := os.ReadFile(filepath.FromSlash(meta.Details.Icon))
	require.NoError(t, err, "the icon FyneApp.toml names")
	assert.Equal(t, assets.Icon, icon, "the packaged icon is the window's icon")
}
