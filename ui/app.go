// Package ui holds the Fyne screens of the desktop app. It talks to the engine
// (flasher/...) only through its public API and events; no protocol code lives here.
package ui

import (
	"log/slog"
	"os"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"

	"github.com/particle-flasher/particle-flasher/assets"
)

// AppID is the Fyne application ID; it must match FyneApp.toml.
const AppID = "io.github.particle-flasher"

// SmokeExitEnv makes the app quit by itself after the given duration (e.g. "3s"), so
// `make test` can prove the real binary opens a window under Xvfb.
const SmokeExitEnv = "PFLASH_SMOKE_EXIT"

// Options configure the desktop app at start-up.
type Options struct {
	// Demo starts virtual devices in-process so every flow can be tried without hardware.
	Demo bool
}

// Run opens the main window and blocks until it is closed.
func Run(opts Options) {
	a := app.NewWithID(AppID)
	a.SetIcon(fyne.NewStaticResource("icon.png", assets.Icon))
	w := a.NewWindow("Particle Flasher")
	w.SetContent(NewMainContent(opts))
	w.Resize(fyne.NewSize(960, 640))
	if v := os.Getenv(SmokeExitEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			slog.Error("bad "+SmokeExitEnv, "value", v, "err", err)
			os.Exit(2)
		}
		go func() {
			time.Sleep(d)
			fyne.Do(func() {
				slog.Info("smoke test: window was shown, quitting", "title", w.Title())
				a.Quit()
			})
		}()
	}
	w.ShowAndRun()
}
