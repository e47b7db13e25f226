package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/particle-flasher/particle-flasher/flasher/modfile"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// inspectRemedy is what to do about files that are not valid modules.
const inspectRemedy = "Check the paths; a file that fails its CRC or has no module header is damaged or not a Particle module: " +
	"download it again (`pflash cache fetch` verifies what it downloads)."

func newInspectCmd(g *globals) *cobra.Command {
	var deviceID string
	cmd := &cobra.Command{
		Use:   "inspect [--device ID | FILE...]",
		Short: "Show what is inside module files (.bin), bundles (.zip, folders, .hex) or an attached device (--device), and whether it is valid",
		Long: "inspect parses each file's module header and suffix and checks its CRC, SHA-256,\n" +
			"platform and size. A folder, a .zip bundle or a .hex image gives one report per module\n" +
			"it holds, with notes on what it left out. Exit status 0 when every module is valid, 1 otherwise.\n" +
			"With --device ID: read the modules of an attached device (normal, listening or DFU mode)\n" +
			"and show PASS/FAIL for integrity, range, platform and each dependency.\n" +
			"With --json: one object per file per line (one object for --device).",
		RunE: func(cmd *cobra.Command, args []string) error {
			if deviceID != "" {
				if len(args) > 0 {
					return &exitError{code: exitUsage, err: remedy.With(errors.New("invalid argument: --device and files given together"),
						"Give either --device ID or module files, not both.")}
				}
				return inspectDevice(g, deviceID)
			}
			if len(args) == 0 {
				return &exitError{code: exitUsage, err: remedy.With(errors.New("requires at least 1 arg: a module file, or --device ID"),
					"Give the module files to inspect, or --device ID for an attached device (`pflash list` shows them).")}
			}
			bad := 0
			for _, path := range args {
				reports, notes := inspectPath(path)
				for _, r := range reports {
					if !r.Valid {
						bad++
					}
					if g.json {
						if err := g.emit(r); err != nil {
							return err
						}
						continue
					}
					printReport(g.stdout, r)
				}
				if !g.json {
					for _, n := range notes {
						fmt.Fprintf(g.stdout, "Note: %s\n", n)
					}
				}
			}
			if bad > 0 {
				if !g.json {
					fmt.Fprintf(g.stderr, "%d of %d file(s) are not valid modules\n", bad, len(args))
					fmt.Fprintf(g.stderr, "What to do: %s\n", inspectRemedy)
				}
				return &exitError{code: exitFailed, err: errReported}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&deviceID, "device", "", "inspect an attached device by its device ID instead of files")
	return cmd
}

// inspectPath reports on each module at path: one report for a module file, one per
// module for a bundle (a folder, a .zip, a .hex image), with what it left out and any
// file whose name its header contradicts as notes.
func inspectPath(path string) ([]module.Report, []string) {
	if !isBundle(path) {
		return []module.Report{module.InspectFile(path)}, nil
	}
	b, err := modfile.Load(path)
	if err != nil {
		return []module.Report{{File: path, Error: err.Error(), Dependencies: []module.ReportDependency{}}}, nil
	}
	reports := make([]module.Report, len(b.Files))
	for i, f := range b.Files {
		reports[i] = f.Module.Report(f.Name)
	}
	return reports, append(b.Warnings(), b.Notes...)
}

// isBundle: a folder, a .zip bundle or an Intel HEX image.
func isBundle(path string) bool {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return true
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".zip", ".hex":
		return true
	}
	return false
}

// printReport renders one module for a person: what it is, where it goes, what it needs,
// and whether it is intact; an invalid file gets one line saying why.
func printReport(w io.Writer, r module.Report) {
	if !r.Valid && r.Function == "" {
		fmt.Fprintf(w, "%s: INVALID: %s\n", r.File, r.Error)
		return
	}
	status := "valid"
	if !r.Valid {
		status = "INVALID: " + r.Error
	}
	fmt.Fprintf(w, "%s: %s\n", r.File, status)
	plat := r.Platform
	if plat == "" {
		plat = "unknown platform"
	}
	fmt.Fprintf(w, "  platform      %s (%d)\n", plat, r.PlatformID)
	ver := fmt.Sprintf("%d", r.Version)
	if r.DeviceOS != "" {
		ver += " (Device OS " + r.DeviceOS + ")"
	} else if fn, ok := platform.ParseFunction(r.Function); ok && fn == platform.FuncRadio {
		if name, ok := module.RadioStackName(r.Version); ok {
			ver += " (" + name + ")"
		}
	}
	fmt.Fprintf(w, "  module        %s %d, version %s\n", r.Function, r.Index, ver)
	fmt.Fprintf(w, "  address       0x%08x-0x%08x (%d bytes, header at 0x%x, flags 0x%02x)\n", r.Start, r.End, r.Size, r.HeaderOffset, r.Flags)
	deps := "nothing"
	if len(r.Dependencies) > 0 {
		parts := make([]string, 0, len(r.Dependencies))
		for _, d := range r.Dependencies {
			parts = append(parts, fmt.Sprintf("%s %d >= %d", d.Function, d.Index, d.Version))
		}
		deps = strings.Join(parts, ", ")
	}
	fmt.Fprintf(w, "  depends on    %s\n", deps)
	if r.ProductID != nil {
		fmt.Fprintf(w, "  product       id %d, version %d\n", *r.ProductID, *r.ProductVersion)
	}
	sha := okWord(r.SHAOK)
	if !r.SHAOK && (r.Function == platform.FuncRadio.String() || r.Function == platform.FuncNCP.String()) {
		// Particle ships SoftDevice and NCP modules with a placeholder hash.
		sha = "placeholder (normal for " + r.Function + " modules)"
	}
	for i, a := range r.Assets {
		label := "assets"
		if r.Function == "asset" {
			label = "asset"
		} else if i > 0 {
			label = ""
		}
		size := ""
		if a.Size > 0 {
			size = fmt.Sprintf(", %d bytes", a.Size)
		}
		fmt.Fprintf(w, "  %-13s %s (SHA-256 %s%s)\n", label, a.Name, a.Hash, size)
	}
	fmt.Fprintf(w, "  integrity     CRC %s, SHA-256 %s (suffix %d bytes)\n", okWord(r.CRCOK), sha, r.SuffixSize)
}

func okWord(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISMATCH"
}
