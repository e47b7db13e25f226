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
	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/device"
)

// AppID is the Fyne application ID; it must match the top-level FyneApp.toml.
const AppID = "io.github.particle-flasher"

// SmokeExitEnv makes the app quit by itself after the given duration (e.g. "3s"), so
// `make test` can prove the real binary opens a window under Xvfb.
const SmokeExitEnv = "PFLASH_SMOKE_EXIT"

// Options configure the desktop app at start-up.
type Options struct {
	// Demo starts virtual devices in-process so every flow can be tried without hardware.
	Demo bool
	// Actions builds the device panel's flashing section (target, plan, run); nil shows
	// a placeholder until the runner is wired in.
	Actions ActionsFunc
	// Screenshots, when set, walks the main screens as a person would, saves each as a
	// PNG in this directory and quits (`make screenshots`); Run exits with status 1 when
	// a screen could not be reached.
	Screenshots string
	// DemoScale is the virtual devices' time scale (sim.Options.Scale): 0 is instant, as
	// tests want; Run uses DefaultDemoScale when it is unset, so a person can watch a run.
	DemoScale float64
}

// DefaultDemoScale runs the demo devices at a real device's pace, so a person can read
// each LED line while the device shows it (a mode change takes seconds, as on the bench);
// Settings > Demo pace makes them faster.
const DefaultDemoScale = 1.0

// shutdownGrace is how long the toolkit gets to stop after the window closed.
const shutdownGrace = 15 * time.Second

// screenMargin is the share of the screen the window may take (fitScreen): room for the
// desktop's panels and the window's frame.
const screenMargin = 0.92

// screenshotScale is the pace of the screenshot walk: fast, but slow enough to catch a
// run in the middle.
const screenshotScale = 0.2

// Run opens the main window and blocks until it is closed.
func Run(opts Options) {
	a := app.NewWithID(AppID)
	a.SetIcon(fyne.NewStaticResource("icon.png", assets.Icon))
	applyTheme(a, a.Preferences().StringWithFallback(prefTheme, "System"))
	w := a.NewWindow("Particle Flasher")
	if opts.DemoScale == 0 {
		opts.DemoScale = demoScalePref()
		if opts.Screenshots != "" {
			opts.DemoScale = screenshotScale
		}
	}
	hw := realDoors(opts)
	m := newMainUI(w, opts, demo.New(false), hw.Doors())
	if hw.USB != nil {
		m.runs.usb = hw.USB // the runner reaches real devices through the same libusb host
	}
	w.SetContent(m.content())
	w.Resize(fyne.NewSize(1100, 700))
	fitScreen(w)
	if v := os.Getenv(SmokeExitEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			slog.Error("bad "+SmokeExitEnv, "value", v, "err", err)
			os.Exit(2)
		}
		go func() {
			time.Sleep(d)
			fyne.Do(func() {
				slog.Info("smoke test: window was shown, quitting", "title", w.Title(), "devices", len(m.order))
				a.Quit()
			})
		}()
	}
	shots := func(time.Duration) error { return nil }
	if opts.Screenshots != "" {
		shots = startScreenshots(m, w, opts.Screenshots, a.Quit)
	}
	// Fyne 2.7.1 can hang in its own shutdown (a preferences save queued as its main loop
	// drains, seen under Wine): once the window is closed, the process ends by itself if
	// the loop has not returned within a generous grace.
	w.SetOnClosed(func() {
		time.AfterFunc(shutdownGrace, func() {
			slog.Warn("the window closed but the toolkit did not stop; exiting", "after", shutdownGrace)
			os.Exit(0)
		})
	})
	w.ShowAndRun()
	shotsErr := shots(5 * time.Second) // the walk quit the app, or the person closed it
	m.stop()
	_ = m.sims.Close()
	hw.Close()
	if shotsErr != nil {
		slog.Error("screenshots: some screens could not be taken", "err", shotsErr)
		os.Exit(1)
	}
}

// realDoors opens the hardware doors unless the app runs the demo only. Without libusb
// the app still opens: the empty state offers the virtual devices.
func realDoors(opts Options) *device.Hardware {
	if opts.Demo {
		return &device.Hardware{}
	}
	hw := device.OpenHardware()
	if hw.USBErr != nil {
		slog.Warn("USB unavailable; only serial ports are watched", "err", hw.USBErr)
	}
	return hw
}
