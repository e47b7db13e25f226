package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	frun "github.com/particle-flasher/particle-flasher/flasher/run"
)

// abortExit ends the process after a second interrupt; tests replace it to see the code.
var abortExit = os.Exit

// exitAborted is the conventional exit code of a process ended by SIGINT (128+2).
const exitAborted = 130

const (
	msgStopping = "Stopping at the next safe point; press Ctrl-C again to abort now."
	msgAborted  = "Aborted. The device may be between steps: run the same command again to finish (the journal remembers where it stopped)."
)

// interruptible returns a context that the first SIGINT or SIGTERM cancels, for commands
// that write to devices. Cancelling is the gentle way out: the runner honours it only
// between steps, never between an erase and its write, so the device is left in a state
// the next run can finish. A person who cannot wait presses Ctrl-C a second time and the
// process ends at once (exit 130), told that the journal lets the same command finish the
// job. The messages go to stderr in every mode, so a --json stream on stdout stays pure
// JSON. stop unregisters the signals and releases the context; call it when the command
// ends.
func interruptible(parent context.Context, g *globals) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	// Buffered: signal.Notify drops signals that a full channel cannot take, and the
	// second Ctrl-C must not be lost while the first is being handled.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n := 0
		for {
			select {
			case <-done:
				return
			case <-sigs:
				n++
				if n == 1 {
					// Cancelled before the message, so whoever reads the message can rely on it.
					cancel()
					fmt.Fprintln(g.stderr, msgStopping)
					continue
				}
				fmt.Fprintln(g.stderr, msgAborted)
				abortExit(exitAborted)
				return
			}
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(done)
			// Waiting for the goroutine means nothing is written to g.stderr after stop.
			wg.Wait()
			cancel()
		})
	}
}

// writeCommand is the RunE of the commands that write to devices (flash, restore,
// factory): the first Ctrl-C stops them at the next safe point, and a failure without an
// exit code of its own exits with exitFailed.
func writeCommand(g *globals, fn func(ctx context.Context) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		ctx, stop := interruptible(cmdContext(cmd), g)
		defer stop()
		err := fn(ctx)
		if err == nil {
			return nil
		}
		var ee *exitError
		if !errors.As(err, &ee) {
			ee = &exitError{code: exitFailed, err: err}
		}
		return ee
	}
}

// writeFlags are the flags every writing command shares: where the journals live and how
// a Device OS version is downloaded.
func writeFlags(fl *pflag.FlagSet, stateDir *string, dl *cacheFlags) {
	fl.StringVar(stateDir, "state-dir", os.Getenv(frun.EnvStateDir), "where the per-device journals live (env "+frun.EnvStateDir+")")
	dl.register(fl)
}
