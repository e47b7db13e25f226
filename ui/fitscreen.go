//go:build !ci

package ui

import (
	"log/slog"

	"fyne.io/fyne/v2"
	"github.com/go-gl/glfw/v3.3/glfw"
)

// fitScreen shrinks the window, once it is up, to fit the screen it opened on: at
// FYNE_SCALE=1.5 the 1100x700 default is 1650x1050 pixels, larger than a 1600x1000
// screen. Fyne has no monitor API, so the size comes from GLFW, which Fyne's desktop
// driver already runs; its calls must be made on the main thread (fyne.Do).
func fitScreen(w fyne.Window) {
	go fyne.Do(func() {
		mon := glfw.GetPrimaryMonitor()
		if mon == nil {
			return
		}
		mode := mon.GetVideoMode()
		if mode == nil || mode.Width <= 0 || mode.Height <= 0 {
			return
		}
		scale := w.Canvas().Scale()
		if scale <= 0 {
			scale = 1
		}
		size := w.Canvas().Size()
		maxW := float32(mode.Width) * screenMargin / scale
		maxH := float32(mode.Height) * screenMargin / scale
		if size.Width <= maxW && size.Height <= maxH {
			return
		}
		fit := fyne.NewSize(min(size.Width, maxW), min(size.Height, maxH))
		slog.Info("window shrunk to fit the screen", "screen", [2]int{mode.Width, mode.Height}, "scale", scale, "size", fit)
		w.Resize(fit)
	})
}
