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
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	ui.Run(ui.Options{Demo: *demo})
}
