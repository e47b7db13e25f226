package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	cache "github.com/particle-flasher/particle-flasher/firmware-cache"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// cacheFlags are the options every cache subcommand shares.
type cacheFlags struct {
	offline   bool
	mirrors   []string
	allowHTTP bool
	parallel  int
}

func newCacheCmd(g *globals) *cobra.Command {
	cf := &cacheFlags{}
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Device OS release catalog, verified downloads and the offline firmware cache",
		Long: "cache knows what every Device OS release consists of (an embedded catalog that works\n" +
			"offline), downloads release files from GitHub or a mirror, verifies each one (CRC,\n" +
			"platform, module version, size and SHA-256) before keeping it, and keeps them so later\n" +
			"runs need no network. The cache lives in --cache-dir (env PFLASH_CACHE_DIR), by default\n" +
			"the user cache directory. A factory can pre-seed machines with `cache import`.\n\n" +
			"Mirrors serve <base>/v<version>/<asset>, like GitHub releases; a directory works too\n" +
			"(also flat: <dir>/<asset>). Remote mirrors must use https unless --allow-http.",
	}
	cf.register(cmd.PersistentFlags())
	cmd.AddCommand(
		newCacheCatalogCmd(g, cf), newCacheListCmd(g, cf), newCacheFetchCmd(g, cf), newCacheVerifyCmd(g, cf),
		newCachePruneCmd(g, cf), newCacheImportCmd(g, cf), newCacheExportCmd(g, cf),
	)
	return cmd
}

// register adds the download flags: every command that may fetch Device OS has them (and
// the configuration file's offline, mirrors and allow_http fill them).
func (cf *cacheFlags) register(fl *pflag.FlagSet) {
	fl.BoolVar(&cf.offline, "offline", false, "never touch the network: use only cached files and say which are missing")
	fl.StringArrayVar(&cf.mirrors, "mirror", nil, "base URL or directory to download Device OS from, tried in order (repeatable; default: GitHub releases)")
	fl.BoolVar(&cf.allowHTTP, "allow-http", false, "allow plain http:// mirrors on other hosts (a trusted LAN mirror; files are still verified)")
}

// openFiltered opens the cache for a listing and turns a --platform filter (name or ID)
// into the catalog's platform name.
func (cf *cacheFlags) openFiltered(g *globals, plat *string) (*cache.Cache, error) {
	c, err := cf.open(g, nil)
	if err != nil || *plat == "" {
		return c, err
	}
	name, err := cache.PlatformName(*plat)
	if err != nil {
		return nil, failed(err)
	}
	*plat = name
	return c, nil
}

// openCache opens the cache the flags describe; progress, if set, gets download reports.
func (cf *cacheFlags) open(g *globals, progress func(cache.Progress)) (*cache.Cache, error) {
	c, err := cache.Open(cache.Options{
		Dir: g.cacheDir, Mirrors: cf.mirrors, AllowHTTP: cf.allowHTTP, Offline: cf.offline,
		Parallel: cf.parallel, Progress: progress, Logger: slog.Default(),
	})
	if err != nil {
		return nil, failed(err)
	}
	return c, nil
}

func failed(err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: exitFailed, err: err}
}

// cacheInterruptible cancels the command's context on Ctrl-C, so a download stops cleanly
// and keeps its partial file for the next run to resume.
func cacheInterruptible(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(cmd.Context(), os.Interrupt)
}

func newCacheCatalogCmd(g *globals, cf *cacheFlags) *cobra.Command {
	var plat, version, api string
	var refresh bool
	cmd := &cobra.Command{
		Use:   "catalog",
		Short: "Show the Device OS releases and their modules",
		Long: "catalog lists every known release (version, platform) with its modules: name, function,\n" +
			"index, module version, start address, size, CRC-32, SHA-256 and URL, and marks LTS,\n" +
			"latest, prerelease and deprecated releases. It needs no network; --refresh first asks\n" +
			"the GitHub releases API for newer releases and keeps the answer for offline runs.\n" +
			"With --json: one object per (version, platform, module) per line.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.openFiltered(g, &plat)
			if err != nil {
				return err
			}
			cat := c.Catalog()
			if refresh {
				ctx, stop := cacheInterruptible(cmd)
				defer stop()
				if cat, err = c.Refresh(ctx, api); err != nil {
					return failed(err)
				}
			}
			base := ""
			if len(cf.mirrors) > 0 {
				base = cf.mirrors[0]
			}
			version = cache.NormalizeVersion(version)
			if version != "" && plat != "" {
				if _, err := cat.Release(version, plat); err != nil {
					return failed(err)
				}
			}
			rows := cat.Rows(plat, base)
			if g.json {
				for _, r := range rows {
					if version != "" && r.DeviceOS != version {
						continue
					}
					if err := g.emit(r); err != nil {
						return err
					}
				}
				return nil
			}
			printCatalog(g.stdout, cat, plat, version)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&plat, "platform", "", "only this platform (argon, boron, photon, p2, ...)")
	f.StringVar(&version, "version", "", "only this Device OS version")
	f.BoolVar(&refresh, "refresh", false, "ask the GitHub releases API for newer releases first (needs the network)")
	f.StringVar(&api, "api", "", "GitHub API root for --refresh (default https://api.github.com)")
	_ = f.MarkHidden("api")
	return cmd
}

func printCatalog(w io.Writer, cat *cache.Catalog, plat, version string) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	defer tw.Flush()
	for _, r := range cat.Releases(plat) {
		if version != "" && r.Version != version {
			continue
		}
		var marks []string
		for _, m := range []struct {
			on   bool
			name string
		}{{r.Latest, "latest"}, {r.LatestLTS, "latest LTS"}, {r.LTS && !r.LatestLTS, "LTS"}, {r.Prerelease, "prerelease"}, {r.Deprecated, "deprecated"}, {r.Partial, "sizes and checksums unknown"}} {
			if m.on {
				marks = append(marks, m.name)
			}
		}
		note := ""
		if len(marks) > 0 {
			note = " (" + strings.Join(marks, ", ") + ")"
		}
		fmt.Fprintf(tw, "Device OS %s for %s%s\n", r.Version, r.Platform, note)
		for _, m := range r.Modules {
			size, crc := "?", "?"
			if m.Size > 0 {
				size = fmt.Sprintf("%d bytes", m.Size)
			}
			if m.CRC32 != "" {
				crc = m.CRC32
			}
			start := "?"
			if m.HasStart {
				start = fmt.Sprintf("0x%08x", m.Start)
			}
			fmt.Fprintf(tw, "  %s\t%s %d v%d\t%s\t%s\tcrc %s\t%s\n", m.Name, m.Function, m.Index, m.ModuleVersion, start, size, crc, m.Asset)
		}
	}
	if plat == "" || version == "" {
		for _, co := range cat.Components() {
			if plat != "" && co.Platform != plat {
				continue
			}
			fmt.Fprintf(tw, "Component %s for %s\n  %s\t%s %d v%d\t%d bytes\tcrc %s\t%s\n", co.Title, co.Platform,
				co.Module.Name, co.Module.Function, co.Module.Index, co.Module.ModuleVersion, co.Module.Size, co.Module.CRC32, co.Module.Asset)
		}
	}
}

func newCacheListCmd(g *globals, cf *cacheFlags) *cobra.Command {
	var plat, version string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the module files in the cache",
		Long:  "list shows every cached module file by Device OS version and platform.\nWith --json: one object per file per line.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.openFiltered(g, &plat)
			if err != nil {
				return err
			}
			entries, err := c.Entries()
			if err != nil {
				return failed(err)
			}
			version = cache.NormalizeVersion(version)
			tw := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
			n := 0
			for _, e := range entries {
				if plat != "" && e.Platform != plat || version != "" && e.DeviceOS != version {
					continue
				}
				n++
				if g.json {
					if err := g.emit(e); err != nil {
						return err
					}
					continue
				}
				v := e.DeviceOS
				if v == "" {
					v = "-"
				}
				what := e.Name
				if e.Component != "" {
					what += " (" + e.Component + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s %d v%d\t%d bytes\t%s\n", e.Platform, v, what, e.Function, e.Index, e.ModuleVersion, e.Size, e.Path)
			}
			if !g.json {
				tw.Flush()
				if n == 0 {
					fmt.Fprintf(g.stdout, "no cached files in %s\n", c.Dir())
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&plat, "platform", "", "only this platform")
	cmd.Flags().StringVar(&version, "version", "", "only this Device OS version")
	return cmd
}

// fetchRow is one line of `cache fetch --json`: the cache entry and whether this run
// downloaded it.
type fetchRow struct {
	cache.Entry
	Status string `json:"status"` // "downloaded" or "cached"
}

func newCacheFetchCmd(g *globals, cf *cacheFlags) *cobra.Command {
	var plat string
	var withUser bool
	var modules []string
	cmd := &cobra.Command{
		Use:   "fetch VERSION --platform P",
		Short: "Download and verify a Device OS release into the cache",
		Long: "fetch makes every Device OS module of a release (system parts, bootloader, SoftDevice,\n" +
			"prebootloader; the user app only with --with-user) available in the cache, verified.\n" +
			"Files already cached are re-verified and not downloaded again; interrupted downloads\n" +
			"resume. With --offline nothing is downloaded and missing files are named.\n" +
			"With --json: one object per file per line.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var progress func(cache.Progress)
			if !g.json {
				progress = progressPrinter(g.stderr)
			}
			c, err := cf.open(g, progress)
			if err != nil {
				return err
			}
			ctx, stop := cacheInterruptible(cmd)
			defer stop()
			res, err := c.Fetch(ctx, args[0], plat, cache.FetchOptions{IncludeUser: withUser, Modules: modules})
			if res != nil {
				for _, f := range res.Files {
					if f.Module == nil {
						continue // not resolved; the error says why
					}
					status := "cached"
					if f.Downloaded {
						status = "downloaded"
					}
					if g.json {
						if err := g.emit(fetchRow{Entry: f.Entry, Status: status}); err != nil {
							return err
						}
					} else {
						fmt.Fprintf(g.stdout, "%-36s %-10s %8d bytes  %s\n", f.Entry.Asset, status, f.Entry.Size, f.Entry.Path)
					}
				}
			}
			if err != nil {
				return failed(err)
			}
			if !g.json {
				fmt.Fprintf(g.stdout, "%s: %d file(s) verified in %s\n", res.Release, len(res.Files), c.Dir())
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&plat, "platform", "", "the platform (argon, boron, photon, electron, p2, ...)")
	_ = cmd.MarkFlagRequired("platform")
	f.BoolVar(&withUser, "with-user", false, "also fetch the release's user app (Tinker / Tracker Edge)")
	f.StringSliceVar(&modules, "module", nil, "fetch only these modules (system-part1, bootloader, softdevice, ...)")
	f.IntVar(&cf.parallel, "parallel", 4, "downloads at once")
	return cmd
}

// progressPrinter reports downloads for a person: each file's start, retries and
// verification, and the total every 10%.
func progressPrinter(w io.Writer) func(cache.Progress) {
	last := -1
	return func(p cache.Progress) {
		switch p.Event {
		case "start":
			fmt.Fprintf(w, "downloading %s\n", p.URL)
		case "retry":
			fmt.Fprintf(w, "  %s: %v; retrying\n", p.File, p.Err)
		case "verified":
			fmt.Fprintf(w, "  %s: verified\n", p.File)
		case "failed":
			fmt.Fprintf(w, "  %s: failed\n", p.File)
		case "data":
			if p.AllTotal > 0 {
				if pct := int(p.AllDone * 100 / p.AllTotal / 10 * 10); pct != last {
					last = pct
					fmt.Fprintf(w, "  %3d%% of %d bytes\n", pct, p.AllTotal)
				}
			}
		}
	}
}

func newCacheVerifyCmd(g *globals, cf *cacheFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Re-check every cached file; quarantine bad ones",
		Long: "verify re-reads every cached file and checks its SHA-256, its module CRC and header and\n" +
			"what the catalog says about it. Bad files are moved to quarantine/ in the cache with a\n" +
			"note and dropped from the index. Exit status 1 when any was bad.\nWith --json: one object per file per line.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.open(g, nil)
			if err != nil {
				return err
			}
			ctx, stop := cacheInterruptible(cmd)
			defer stop()
			results, err := c.Verify(ctx)
			if err != nil {
				return failed(err)
			}
			bad := 0
			for _, r := range results {
				if !r.OK {
					bad++
				}
				if g.json {
					if err := g.emit(r); err != nil {
						return err
					}
				} else if !r.OK {
					fmt.Fprintf(g.stdout, "BAD %s (%s): %s\n", r.Path, strings.Join(r.Entries, ", "), r.Problem)
				}
			}
			if !g.json {
				fmt.Fprintf(g.stdout, "%d file(s) checked, %d bad", len(results), bad)
				if bad > 0 {
					fmt.Fprintf(g.stdout, " (moved to %s)", c.Dir()+string(os.PathSeparator)+"quarantine")
				}
				fmt.Fprintln(g.stdout)
			}
			if bad > 0 {
				return &exitError{code: exitFailed, err: errReported}
			}
			return nil
		},
	}
}

func newCachePruneCmd(g *globals, cf *cacheFlags) *cobra.Command {
	var keep int
	cmd := &cobra.Command{
		Use:   "prune --keep N",
		Short: "Keep the newest N Device OS versions per platform, delete older ones",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.open(g, nil)
			if err != nil {
				return err
			}
			res, err := c.Prune(cmd.Context(), keep)
			if err != nil {
				return failed(err)
			}
			if g.json {
				return g.emit(res)
			}
			fmt.Fprintf(g.stdout, "kept %d release(s), removed %d: %d file(s), %d bytes freed\n", len(res.Kept), len(res.Removed), res.Files, res.Bytes)
			for _, r := range res.Removed {
				fmt.Fprintf(g.stdout, "  removed %s\n", r)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&keep, "keep", 0, "how many versions to keep per platform")
	_ = cmd.MarkFlagRequired("keep")
	return cmd
}

// importRow is one line of `cache import --json`: an imported entry, or a skipped file.
type importRow struct {
	*cache.Entry `json:",omitempty"`
	Skipped      string `json:"skipped,omitempty"`
	SkippedPath  string `json:"skipped_path,omitempty"`
}

func newCacheImportCmd(g *globals, cf *cacheFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "import PATH...",
		Short: "Add .bin files, directories or .zip bundles to the cache (no network needed)",
		Long: "import identifies every file by its own module header and checksums, whatever its name,\n" +
			"and indexes it under the release(s) it belongs to. Invalid files are skipped; a .zip\n" +
			"with entries escaping the bundle (../) is refused as a whole.\nWith --json: one object per file per line.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.open(g, nil)
			if err != nil {
				return err
			}
			ctx, stop := cacheInterruptible(cmd)
			defer stop()
			for _, p := range args {
				res, err := c.Import(ctx, p)
				if res != nil {
					for i := range res.Imported {
						e := res.Imported[i]
						if g.json {
							if err := g.emit(importRow{Entry: &e}); err != nil {
								return err
							}
							continue
						}
						v := e.DeviceOS
						if v == "" {
							v = "(no Device OS version)"
						}
						fmt.Fprintf(g.stdout, "imported %s: %s %s %s\n", e.Source, e.Platform, v, e.Name)
					}
					for _, s := range res.Skipped {
						if g.json {
							if err := g.emit(importRow{Skipped: s.Reason, SkippedPath: s.Path}); err != nil {
								return err
							}
							continue
						}
						fmt.Fprintf(g.stderr, "skipped %s: %s\n", s.Path, s.Reason)
					}
				}
				if err != nil {
					if remedy.Of(err) == "" {
						err = remedy.With(err, "Give .bin module files, directories of them or .zip bundles that exist and can be read.")
					}
					return failed(err)
				}
			}
			return nil
		},
	}
}

func newCacheExportCmd(g *globals, cf *cacheFlags) *cobra.Command {
	var version, plat, out string
	cmd := &cobra.Command{
		Use:   "export --version V --platform P -o FILE.zip",
		Short: "Write a release from the cache as a .zip bundle for machines without internet",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.open(g, nil)
			if err != nil {
				return err
			}
			man, err := c.Export(cmd.Context(), version, plat, out)
			if err != nil {
				return failed(err)
			}
			if g.json {
				return g.emit(struct {
					File string `json:"file"`
					*cache.BundleManifest
				}{out, man})
			}
			fmt.Fprintf(g.stdout, "wrote %s: Device OS %s for %s, %d module(s)\n", out, man.DeviceOS, man.Platform, len(man.Modules))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&version, "version", "", "Device OS version")
	f.StringVar(&plat, "platform", "", "platform")
	f.StringVarP(&out, "output", "o", "", "bundle to write (.zip)")
	for _, n := range []string{"version", "platform", "output"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}
