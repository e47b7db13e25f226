package records_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/records"
	"github.com/particle-flasher/particle-flasher/flasher/state"
	"github.com/particle-flasher/particle-flasher/internal/testpg"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func row(id, run, result string, started time.Time) records.Row {
	r := records.Row{DeviceID: id, RunID: run, Platform: "boron", Result: result, Started: started,
		SerialNumber: "BRNLAB123" + id[len(id)-6:], ICCID: "89014103211118510720", IMEI: "352656106111232",
		Before: "1.5.2", Station: "bench-1", Operator: "ana", Lot: "L1", Plug: 1, Target: "4.1.0",
		ModulesBefore: []records.Module{{Function: "system", Index: 1, Version: 1512, Hash: "crc32:01020304"}},
		Protection:    state.ProtectionOpen, SetupDone: state.FlagYes}
	if records.Finished(result) {
		r.Time = started.Add(30 * time.Second)
		r.After = "4.1.0"
		r.DurationSeconds = 30
		r.ModulesAfter = []records.Module{{Function: "system", Index: 1, Version: 4100, Hash: "crc32:0a0b0c0d"}}
	}
	return r
}

// stores runs a test on the default SQLite file and on a real PostgreSQL.
func stores(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, records.DefaultFile(t.TempDir())) })
	t.Run("postgres", func(t *testing.T) {
		pg := testpg.Start(t)
		fn(t, pg.CreateDB(t, "records"))
	})
}

// A row is keyed by device ID and run ID: writing it again changes nothing, its finished
// version replaces its running one and never the reverse, and every field comes back.
func TestStoreIdempotentRows(t *testing.T) {
	stores(t, func(t *testing.T, dsn string) {
		s, err := records.Open(dsn)
		require.NoError(t, err)
		defer s.Close()
		c := ctx(t)
		require.NoError(t, s.Ping(c))
		t0 := time.Date(2026, 12, 6, 8, 0, 0, 123456000, time.UTC)
		id := "e00fce68aaaaaaaaaaaaaa01"
		require.NoError(t, s.Put(c, row(id, "run-1", records.ResultRunning, t0)))
		fin := row(id, "run-1", records.ResultOK, t0)
		require.NoError(t, s.Put(c, fin))
		require.NoError(t, s.Put(c, fin), "a retried write")
		require.NoError(t, s.Put(c, row(id, "run-1", records.ResultRunning, t0)), "a late copy of the start")
		rows, err := s.Rows(c, records.Filter{})
		require.NoError(t, err)
		require.Len(t, rows, 1)
		assert.Equal(t, fin, rows[0])

		// Another run of the same unit is another row.
		require.NoError(t, s.Put(c, row(id, "run-2", records.ResultFailed, t0.Add(time.Hour))))
		rows, err = s.Rows(c, records.Filter{DeviceID: id})
		require.NoError(t, err)
		require.Len(t, rows, 2)
		rows, err = s.Rows(c, records.Filter{Since: t0.Add(time.Minute)})
		require.NoError(t, err)
		require.Len(t, rows, 1)
		assert.Equal(t, "run-2", rows[0].RunID)
		rows, err = s.Rows(c, records.Filter{Lot: "other"})
		require.NoError(t, err)
		assert.Empty(t, rows)

		// A run still "running" when its station starts again was cut short.
		require.NoError(t, s.Put(c, row("e00fce68aaaaaaaaaaaaaa02", "run-3", records.ResultRunning, t0)))
		n, err := s.Interrupt(c, "bench-1", t0.Add(time.Second))
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		rows, err = s.Rows(c, records.Filter{DeviceID: "e00fce68aaaaaaaaaaaaaa02"})
		require.NoError(t, err)
		require.Len(t, rows, 1)
		assert.Equal(t, records.ResultInterrupted, rows[0].Result)
	})
}

// Several writers at once (the benches of a line) each see their rows kept, once.
func TestStoreConcurrentWriters(t *testing.T) {
	stores(t, func(t *testing.T, dsn string) {
		c := ctx(t)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for b := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := records.Open(dsn)
				if err != nil {
					errs <- err
					return
				}
				defer s.Close()
				for u := range 8 {
					id := fmt.Sprintf("e00fce68bbbbbbbbbbbb%02d%02d", b, u)
					for _, res := range []string{records.ResultRunning, records.ResultOK, records.ResultOK} {
						r := row(id, fmt.Sprintf("run-%d-%d", b, u), res, time.Now())
						r.Station = fmt.Sprintf("bench-%d", b)
						if err := s.Put(c, r); err != nil {
							errs <- err
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		s, err := records.Open(dsn)
		require.NoError(t, err)
		defer s.Close()
		rows, err := s.Rows(c, records.Filter{})
		require.NoError(t, err)
		assert.Len(t, rows, 24)
		for _, r := range rows {
			assert.Equal(t, records.ResultOK, r.Result)
		}
	})
}

func TestOpenNames(t *testing.T) {
	assert.True(t, records.IsPostgres("postgres://u@h/db"))
	assert.True(t, records.IsPostgres("PostgreSQL://u@h/db"))
	assert.False(t, records.IsPostgres("/var/lib/pflash/records.db"))
	dir := t.TempDir()
	s, err := records.Open("sqlite://" + filepath.Join(dir, "x.db"))
	require.NoError(t, err)
	assert.Contains(t, s.Where(), filepath.Join(dir, "x.db"))
	require.NoError(t, s.Close())
	_, err = records.Open("postgres://%zz")
	require.Error(t, err)
}
