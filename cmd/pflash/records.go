package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/factory"
	"github.com/particle-flasher/particle-flasher/flasher/records"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// EnvDB names the record store when --db is not given.
const EnvDB = "PFLASH_DB"

// recordsDSN is the store a command uses: --db, $PFLASH_DB (or the config file's db,
// applied to --db), else the SQLite file in the state directory.
func recordsDSN(flagValue, stateDir string) string {
	if flagValue != "" {
		return flagValue
	}
	if v := os.Getenv(EnvDB); v != "" {
		return v
	}
	return records.DefaultFile(stateDir)
}

// openStore opens the record store, as a usage error when the value cannot name one.
func openStore(dsn string) (records.Store, error) {
	st, err := records.Open(dsn)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: remedy.With(err,
			"Give --db postgres://USER@HOST/DATABASE for a shared PostgreSQL, or a file path for SQLite.")}
	}
	return st, nil
}

// spoolName is a station's spool file in the state directory.
func spoolName(stateDir, station string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, station)
	return filepath.Join(stateDir, "records-spool-"+safe+".jsonl")
}

// openRecords opens the bench's recorder (sending what an earlier session left in the
// spool) and reads which units this station already finished in this lot, from the store
// and from the spool.
func openRecords(ctx context.Context, db, stateDir, station, lot string, out *factoryOutput) (*records.Recorder, map[string]bool, error) {
	store, err := openStore(recordsDSN(db, stateDir))
	if err != nil {
		return nil, nil, err
	}
	rec, err := records.NewRecorder(records.RecorderOptions{Store: store, SpoolPath: spoolName(stateDir, station), Station: station,
		OnStatus: out.recordsStatus})
	if err != nil {
		_ = store.Close()
		return nil, nil, &exitError{code: exitFailed, err: remedy.With(err, "Check that the state directory is writable, and that no other bench uses the same --station and --state-dir.")}
	}
	finished := map[string]bool{}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	rows, err := store.Rows(qctx, records.Filter{Station: station, Lot: lot})
	cancel()
	if err == nil {
		for _, r := range rows {
			if records.Finished(r.Result) {
				finished[r.DeviceID] = true
			}
		}
	}
	return rec, finished, nil
}

// recordsStatus tells the person (and a --json reader) that rows are being spooled, or
// that the spool was sent.
func (o *factoryOutput) recordsStatus(st records.Status) {
	msg := fmt.Sprintf("Records: %s is back; the spool is sent.", st.Where)
	if st.Spooling {
		why := ""
		if st.Err != nil {
			why = " (" + firstLine(st.Err.Error()) + ")"
		}
		msg = fmt.Sprintf("Records: %s cannot be reached%s; spooling to %s (%d row(s) waiting). The bench keeps flashing; the rows are sent when it is back.",
			st.Where, why, st.SpoolPath, st.Pending)
	}
	st.Err = nil
	o.event(factory.Event{Kind: factory.EvRecords, Time: time.Now(), Message: msg, Records: &st})
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// targetName is what rows say the units were taken to: the version, or the file's name.
func targetName(to string) string {
	if _, err := os.Stat(to); err == nil {
		return filepath.Base(filepath.Clean(to))
	}
	return strings.TrimPrefix(to, "v")
}
