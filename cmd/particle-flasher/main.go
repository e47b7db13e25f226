// Command particle-flasher is the Particle Flasher desktop app.
package main

import (
	"flag"
	"log/slog"
	"os"

	"github.com/particle-flasher/particle-flasher/ui"
)

func main() {
	demo := flag.Bool("demo", false, "start with virtual demo devices instead of real hardware")
	shots := flag.String("screenshots", "", "walk the main screens, save each as a PNG in this directory, then quit (use with --demo)")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if *shots != "" && !*demo {
		// The walk shows the demo's stories (a safe-mode Photon, ...); real devices differ.
		slog.Error("--screenshots needs --demo")
		os.Exit(2)
	}
	ui.Run(ui.Options{Demo: *demo, Screenshots: *shots})
}
