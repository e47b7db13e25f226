package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// Exit codes, documented in `pflash help` so scripts can rely on them.
const (
	exitOK       = 0
	exitFailed   = 1 // the operation ran and failed (invalid module, flash failed, ...)
	exitUsage    = 2 // bad command line
	exitNoDevice = 3 // the device asked for is not attached
	exitAccess   = 4 // permission problem (udev rules, tty group)
)

const exitCodesHelp = `Exit codes:
  0  success
  1  the operation failed (e.g. a file is not a valid module, a flash failed)
  2  bad command line
  3  the device asked for was not found
  4  permission denied opening a device (see: pflash doctor)`

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// globals are the flags every command has.
type globals struct {
	json     bool
	cacheDir string
	verbose  bool
	// configFile is --config; "" means $PFLASH_CONFIG or ~/.config/particle-flasher/config.toml.
	configFile string
	stdout     io.Writer
	stderr     io.Writer
}

// emit writes one JSON object on its own line.
func (g *globals) emit(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(g.stdout, "%s\n", b)
	return err
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "pflash",
		Short: "Upgrade, downgrade, rescue and inspect Particle devices over USB, without a display",
		Long: "pflash finds Particle devices on USB and serial, reads what is installed on them,\n" +
			"and flashes Device OS in the right order, saying what the RGB LED should do.\n\n" + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			level := slog.LevelWarn
			if g.verbose {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level})))
			c, err := loadConfig(configPath(g.configFile))
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			return applyConfig(cmd, c)
		},
	}
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	pf := root.PersistentFlags()
	pf.BoolVar(&g.json, "json", false, "machine-readable output: one JSON object per line")
	pf.StringVar(&g.cacheDir, "cache-dir", os.Getenv("PFLASH_CACHE_DIR"), "firmware cache directory (env PFLASH_CACHE_DIR)")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "log what happens on the wire")
	pf.StringVar(&g.configFile, "config", "", "configuration file (env PFLASH_CONFIG; default ~/.config/particle-flasher/config.toml)")
	root.AddCommand(newVersionCmd(g), newInspectCmd(g), newCacheCmd(g), newPlanCmd(g), newListCmd(g), newSimCmd(g), newDoctorCmd(g), newFlashCmd(g))
	root.AddCommand(newRestoreCmd(g))
	root.AddCommand(newFactoryCmd(g), newBenchCmd(g), newReportCmd(g))
	return root
}

// run executes pflash with args and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	code := exitFailed
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	} else if isUsageError(err) {
		code = exitUsage
	}
	// A command that already reported its failure (e.g. per-file lines) returns a bare code.
	if ee == nil || ee.err != errReported {
		fmt.Fprintf(stderr, "pflash: %v\n", err)
		if r := remedy.Of(err); r != "" {
			fmt.Fprintf(stderr, "What to do: %s\n", withCommand(r, err))
		} else if code == exitUsage {
			fmt.Fprintf(stderr, "What to do: %s\n", usageRemedy(root, args))
		}
	}
	return code
}

// usageRemedy is what to do about a bad command line that cobra rejected (an unknown flag
// or command, a missing required flag), which comes without a remedy of its own.
func usageRemedy(root *cobra.Command, args []string) string {
	path := root.CommandPath()
	if cmd, _, err := root.Find(args); err == nil && cmd != nil {
		path = cmd.CommandPath()
	}
	return fmt.Sprintf("See `%s --help` for the commands, flags and arguments it takes.", path)
}

// errReported marks a failure whose details the command has already printed.
var errReported = errors.New("reported")

func isUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "requires at least", "accepts ", "invalid argument", "flag needs an argument", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// parsePlatform reads a --platform value (name or ID); an unknown one is a usage error
// that lists the names the platform table knows.
func parsePlatform(s string) (*platform.Platform, error) {
	if p, ok := platform.ByName(s); ok {
		return p, nil
	}
	var names []string
	for _, p := range platform.All() {
		names = append(names, p.Name)
	}
	return nil, &exitError{code: exitUsage, err: remedy.With(fmt.Errorf("unknown platform %q", s),
		"Give a platform name or ID: "+strings.Join(names, ", ")+".")}
}

// withCommand adds the pflash command that carries out a remedy, where the error names one.
func withCommand(r string, err error) string {
	if c := remedy.Command(err); c != "" && r != "" {
		return r + " (" + c + ")"
	}
	return r
}
