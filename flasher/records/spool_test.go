package records_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/records"
	"github.com/particle-flasher/particle-flasher/internal/testpg"
)

// The spool keeps rows in order across a reopen; a line a crash cut short is dropped
// (it was never reported kept) and the rows after it survive.
func TestSpoolSurvivesATornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.jsonl")
	sp, err := records.OpenSpool(path)
	require.NoError(t, err)
	t0 := time.Now().UTC()
	a, b := row("e00fce68cccccccccccccc01", "r1", records.ResultRunning, t0), row("e00fce68cccccccccccccc01", "r1", records.ResultOK, t0)
	require.NoError(t, sp.Append(a))
	require.NoError(t, sp.Append(b))
	require.NoError(t, sp.Close())

	// A crash in the middle of the third append.
	line, err := records.SpoolLine(row("e00fce68cccccccccccccc02", "r2", records.ResultRunning, t0))
	require.NoError(t, err)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write(line[:len(line)/2])
	require.NoError(t, err)
	require.NoError(t, f.Close())

	sp, err = records.OpenSpool(path)
	require.NoError(t, err)
	assert.Equal(t, 1, sp.Torn)
	got := sp.Pending()
	require.Len(t, got, 2)
	assert.Equal(t, records.ResultRunning, got[0].Result)
	assert.Equal(t, records.ResultOK, got[1].Result)
	// The next row starts on its own line.
	c := row("e00fce68cccccccccccccc03", "r3", records.ResultOK, t0)
	require.NoError(t, sp.Append(c))
	require.NoError(t, sp.Drop(2))
	require.NoError(t, sp.Close())
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	rows, torn := records.ParseSpool(data)
	assert.Zero(t, torn)
	require.Len(t, rows, 1)
	assert.Equal(t, c.DeviceID, rows[0].DeviceID)

	// A bench cannot open a spool another holds.
	sp, err = records.OpenSpool(path)
	require.NoError(t, err)
	defer sp.Close()
	_, err = records.OpenSpool(path)
	require.Error(t, err)
}

// FuzzSpool: no spool file makes the reader panic; every row it accepts written out
// again reads back the same.
func FuzzSpool(f *testing.F) {
	t0 := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	a, _ := records.SpoolLine(row("e00fce68dddddddddddddd01", "r1", records.ResultOK, t0))
	b, _ := records.SpoolLine(row("e00fce68dddddddddddddd02", "r2", records.ResultRunning, t0))
	f.Add(append(append([]byte{}, a...), b...))
	f.Add(a[:len(a)-5])
	f.Add([]byte("00000000 {}\n"))
	f.Add([]byte("zzzzzzzz {\"device_id\":\"x\",\"run_id\":\"y\"}\n\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, torn := records.ParseSpool(data)
		if torn < 0 || len(rows) > bytes.Count(data, []byte("\n"))+1 {
			t.Fatalf("%d rows, %d torn from %d lines", len(rows), torn, bytes.Count(data, []byte("\n"))+1)
		}
		var out []byte
		for _, r := range rows {
			l, err := records.SpoolLine(r)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, l...)
		}
		again, torn2 := records.ParseSpool(out)
		if torn2 != 0 || len(again) != len(rows) {
			t.Fatalf("rewritten spool reads %d rows (%d torn), want %d", len(again), torn2, len(rows))
		}
	})
}

// PostgreSQL stopped in the middle: the recorder spools (saying so), keeps the order,
// and once the server is back sends everything; the spool ends empty and every row is in
// the database once. Rows a killed recorder left in its spool are sent by the next one.
func TestRecorderSpoolsWhilePostgresIsDown(t *testing.T) {
	pg := testpg.Start(t)
	dsn := pg.CreateDB(t, "spooling")
	dir := t.TempDir()
	store, err := records.Open(dsn)
	require.NoError(t, err)
	statuses := make(chan records.Status, 16)
	rec, err := records.NewRecorder(records.RecorderOptions{Store: store, SpoolPath: filepath.Join(dir, "spool.jsonl"),
		Station: "bench-1", Retry: 50 * time.Millisecond, Timeout: 2 * time.Second,
		OnStatus: func(s records.Status) { statuses <- s }})
	require.NoError(t, err)
	c := ctx(t)
	t0 := time.Now().UTC()
	put := func(i int, result string) {
		_, err := rec.Record(c, row(idN(i), "run", result, t0.Add(time.Duration(i)*time.Second)))
		require.NoError(t, err)
	}
	put(0, records.ResultRunning)
	put(0, records.ResultOK)
	require.NoError(t, pg.Stop())
	put(1, records.ResultRunning)
	st := <-statuses
	assert.True(t, st.Spooling)
	assert.Equal(t, 1, st.Pending)
	put(1, records.ResultOK)
	put(2, records.ResultRunning)
	assert.Equal(t, 3, rec.Status().Pending)
	require.NoError(t, pg.Start())
	select {
	case st = <-statuses:
		assert.False(t, st.Spooling)
		assert.Zero(t, st.Pending)
	case <-time.After(30 * time.Second):
		t.Fatalf("the spool was not sent: %+v", rec.Status())
	}
	put(2, records.ResultOK)
	st, err = rec.Close(c)
	require.NoError(t, err)
	assert.Zero(t, st.Pending)

	check, err := records.Open(dsn)
	require.NoError(t, err)
	defer check.Close()
	rows, err := check.Rows(c, records.Filter{})
	require.NoError(t, err)
	require.Len(t, rows, 3)
	for _, r := range rows {
		assert.Equal(t, records.ResultOK, r.Result, r.DeviceID)
	}

	// A spool left by a bench that died while the database was down.
	sp, err := records.OpenSpool(filepath.Join(dir, "spool.jsonl"))
	require.NoError(t, err)
	require.NoError(t, sp.Append(row(idN(3), "run", records.ResultRunning, t0)))
	require.NoError(t, sp.Close())
	store2, err := records.Open(dsn)
	require.NoError(t, err)
	rec2, err := records.NewRecorder(records.RecorderOptions{Store: store2, SpoolPath: filepath.Join(dir, "spool.jsonl"), Station: "bench-1"})
	require.NoError(t, err)
	st, err = rec2.Close(c)
	require.NoError(t, err)
	assert.Zero(t, st.Pending)
	rows, err = check.Rows(c, records.Filter{DeviceID: idN(3)})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	// Its run was still "running" when its bench started again: interrupted.
	assert.Equal(t, records.ResultInterrupted, rows[0].Result)
}

func idN(i int) string {
	return "e00fce68eeeeeeeeeeeeee" + string(rune('0'+i/10)) + string(rune('0'+i%10))
}
