//go:build ci

package ui

import (
	"fmt"
	"image/png"
	"log"
	"os"
	"path/filepath"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/demo"
)

// checkShots asserts dir holds every screen's PNG, each a real picture of the window:
// it decodes, is at least 800 px wide and has many colours (a blank capture has one).
func checkShots(t *testing.T, dir string) {
	t.Helper()
	for i, st := range shotSteps {
		name := filepath.Join(dir, fmt.Sprintf("%02d-%s.png", i+1, st.name))
		f, err := os.Open(name)
		if !assert.NoError(t, err, "screen %s: run `make screenshots`", st.name) {
			continue
		}
		img, err := png.Decode(f)
		_ = f.Close()
		if !assert.NoError(t, err, name) {
			continue
		}
		assert.GreaterOrEqual(t, img.Bounds().Dx(), 800, name)
		assert.GreaterOrEqual(t, countColours(img, 256), 256, "%s looks blank", name)
	}
}

// TestScreenshotsInDocs checks the screenshots README.md shows (made by `make
// screenshots` from the real app under Xvfb).
func TestScreenshotsInDocs(t *testing.T) {
	checkShots(t, filepath.Join("..", "docs", "screenshots"))
}

// TestScreenshotWalk runs the screenshot walk on a test window with the demo devices at
// the app's demo pace: every screen is reached the way a person reaches it and saved.
func TestScreenshotWalk(t *testing.T) {
	var logBuf syncBuffer
	log.SetOutput(&logBuf)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	// The demo's factory report goes to a temp dir of its own here.
	t.Setenv("TMPDIR", t.TempDir())
	test.NewTempApp(t)
	w := test.NewWindow(nil)
	var m *mainUI
	onUIWait(func() {
		m = newMainUI(w, Options{Demo: true, DemoScale: DefaultDemoScale}, demo.New(false), nil)
		w.SetContent(m.content())
		w.Resize(fyne.NewSize(1100, 700))
	})
	t.Cleanup(func() {
		m.stop()
		_ = m.sims.Close()
		w.Close()
	})
	dir := t.TempDir()
	wait := startScreenshots(m, w, dir, func() {})
	require.NoError(t, wait(shotTotal))
	checkShots(t, dir)
	assert.NotContains(t, logBuf.String(), "Error in Fyne call thread")
}
