package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/particle-flasher/particle-flasher/flasher/records"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	frun "github.com/particle-flasher/particle-flasher/flasher/run"
)

type reportFlags struct {
	db, lot, station, since, format, stateDir string
}

func newReportCmd(g *globals) *cobra.Command {
	var f reportFlags
	cmd := &cobra.Command{
		Use:   "report [--db URL|FILE] [--lot L] [--station S] [--since T] [--format csv|json|device-ids|serials|iccids]",
		Short: "What the factory benches recorded: a lot's summary, or its units as CSV, JSON or identifier lists",
		Long: "report reads the record store the benches write (`pflash factory`): --db, else $" + EnvDB + ", else the\n" +
			"config file's db, else the SQLite file in the state directory. Without --format it prints\n" +
			"the summary of the rows selected: units per result, platform, station and Device OS,\n" +
			"the units not at the target (their latest run did not end ok or already there), the\n" +
			"units flashed more than once and those flashed on more than one station; with --json\n" +
			"one object per unit instead. --format csv and json export every row (json: one per\n" +
			"line); device-ids, serials and iccids print one identifier per line, each once: the\n" +
			"file the Particle console's bulk import takes.\n\n" +
			"--since takes a time (2026-12-06T08:00:00Z), a date (2026-12-06) or a duration back\n" +
			"from now (24h).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runReport(cmdContext(cmd), g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.db, "db", "", "record store: a postgres:// URL or a SQLite file (env "+EnvDB+"; default records.db in the state directory)")
	fl.StringVar(&f.lot, "lot", "", "only this lot")
	fl.StringVar(&f.station, "station", "", "only this station")
	fl.StringVar(&f.since, "since", "", "only runs started since: a time, a date, or a duration back (24h)")
	fl.StringVar(&f.format, "format", "", "export: "+strings.Join(records.Formats, ", "))
	fl.StringVar(&f.stateDir, "state-dir", os.Getenv(frun.EnvStateDir), "state directory holding the default SQLite file (env "+frun.EnvStateDir+")")
	return cmd
}

// parseSince reads --since.
func parseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q is not a time, a date or a duration", s)
}

func runReport(ctx context.Context, g *globals, f reportFlags) error {
	since, err := parseSince(f.since, time.Now())
	if err != nil {
		return &exitError{code: exitUsage, err: remedy.With(err, "Give 2026-12-06T08:00:00Z, 2026-12-06 or 24h.")}
	}
	if f.format != "" {
		ok := false
		for _, x := range records.Formats {
			ok = ok || x == f.format
		}
		if !ok {
			return &exitError{code: exitUsage, err: remedy.With(fmt.Errorf("unknown --format %q", f.format), "Use one of "+strings.Join(records.Formats, ", ")+".")}
		}
	}
	stateDir, err := journalDir(f.stateDir)
	if err != nil {
		return err
	}
	dsn := recordsDSN(f.db, stateDir)
	if !records.IsPostgres(dsn) {
		if _, err := os.Stat(strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite://"), "file:")); err != nil {
			return &exitError{code: exitFailed, err: remedy.With(fmt.Errorf("no records at %s", dsn),
				"Run `pflash factory` first, or name the store the benches write with --db.")}
		}
	}
	store, err := openStore(dsn)
	if err != nil {
		return err
	}
	defer store.Close()
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rows, err := store.Rows(qctx, records.Filter{Lot: f.lot, Station: f.station, Since: since})
	if err != nil {
		return &exitError{code: exitFailed, err: remedy.With(err, "Check that the database is running and the URL is right (`pflash report --db URL`).")}
	}
	switch {
	case f.format != "":
		return records.Export(g.stdout, rows, f.format)
	case g.json:
		order, units := records.Units(rows)
		for _, id := range order {
			u := units[id]
			if err := g.emit(struct {
				DeviceID string `json:"device_id"`
				*records.Unit
			}{id, u}); err != nil {
				return err
			}
		}
		return nil
	}
	printSummary(g.stdout, records.Summarize(rows), f, store.Where())
	return nil
}

func printSummary(w io.Writer, s records.Summary, f reportFlags, where string) {
	var sel []string
	for _, x := range []struct{ k, v string }{{"lot", f.lot}, {"station", f.station}, {"since", f.since}} {
		if x.v != "" {
			sel = append(sel, fmt.Sprintf("%s %s", x.k, x.v))
		}
	}
	what := "all rows"
	if len(sel) > 0 {
		what = strings.Join(sel, ", ")
	}
	fmt.Fprintf(w, "Records in %s (%s): %d unit(s)\n", where, what, s.Units)
	if s.Units == 0 {
		return
	}
	fmt.Fprintf(w, "From %s to %s\n", s.First.Local().Format("2006-01-02 15:04"), s.Last.Local().Format("2006-01-02 15:04"))
	for _, c := range []struct {
		title string
		m     map[string]int
	}{{"By result", s.PerResult}, {"By platform", s.PerPlatform}, {"By station", s.PerStation}, {"By Device OS", s.PerDeviceOS}} {
		var parts []string
		for _, k := range records.Keys(c.m) {
			name := k
			if name == "" {
				name = "(none)"
			}
			parts = append(parts, fmt.Sprintf("%s %d", name, c.m[k]))
		}
		fmt.Fprintf(w, "%s: %s\n", c.title, strings.Join(parts, ", "))
	}
	for _, l := range []struct {
		title string
		ids   []string
	}{{"Not at the target", s.NotAtTarget}, {"Flashed more than once", s.FlashedAgain}, {"Flashed on more than one station", s.OnTwoStations}} {
		fmt.Fprintf(w, "%s: %d\n", l.title, len(l.ids))
		for _, id := range l.ids {
			fmt.Fprintf(w, "  %s\n", id)
		}
	}
}
