package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNoFyneOrGL keeps pflash buildable on a bench PC or CI box with no display stack:
// nothing it links may come from Fyne or the GL/GLFW bindings.
func TestNoFyneOrGL(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"fyne.io/", "github.com/go-gl/", "github.com/particle-flasher/particle-flasher/ui"} {
			assert.False(t, strings.HasPrefix(pkg, banned), "pflash links %s", pkg)
		}
	}
}
