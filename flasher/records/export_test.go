package records_test

import (
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/records"
)

// The summary counts units, not rows: a unit's latest finished run decides where it
// stands; interrupted runs and runs on other stations are told apart.
func TestSummaryAndExports(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	a, b, c := "e00fce68aaaaaaaaaaaa0001", "e00fce68aaaaaaaaaaaa0002", "e00fce68aaaaaaaaaaaa0003"
	failed := row(b, "r2", records.ResultFailed, t0)
	failed.After, failed.Error = "unknown", "the device is gone"
	interrupted := row(c, "r4", records.ResultInterrupted, t0)
	again := row(a, "r5", records.ResultAlready, t0.Add(time.Hour))
	again.Station = "bench-2"
	rows := []records.Row{row(a, "r1", records.ResultOK, t0), failed, row(b, "r3", records.ResultOK, t0.Add(time.Minute)), interrupted, again}
	s := records.Summarize(rows)
	assert.Equal(t, 3, s.Units)
	assert.Equal(t, map[string]int{"already": 1, "ok": 1, "interrupted": 1}, s.PerResult)
	assert.Equal(t, []string{c}, s.NotAtTarget)
	assert.Equal(t, []string{a, b}, s.FlashedAgain)
	assert.Equal(t, []string{a}, s.OnTwoStations)
	assert.Equal(t, []string{"already", "interrupted", "ok"}, records.Keys(s.PerResult)[0:3])

	var out strings.Builder
	require.NoError(t, records.Export(&out, rows, records.FormatDeviceIDs))
	assert.Equal(t, a+"\n"+b+"\n"+c+"\n", out.String(), "each ID once, in the order first seen")
	out.Reset()
	require.NoError(t, records.Export(&out, rows, records.FormatSerials))
	assert.Len(t, strings.Fields(out.String()), 3)
	out.Reset()
	require.NoError(t, records.Export(&out, rows, records.FormatICCIDs))
	assert.Equal(t, "89014103211118510720\n", out.String(), "the same SIM once")
	out.Reset()
	require.NoError(t, records.Export(&out, rows, records.FormatCSV))
	table, err := csv.NewReader(strings.NewReader(out.String())).ReadAll()
	require.NoError(t, err)
	require.Len(t, table, 6)
	assert.Equal(t, records.CSVHeader, table[0])
	assert.Equal(t, "system/1@1512:crc32:01020304", table[1][len(table[1])-2])
	out.Reset()
	require.NoError(t, records.Export(&out, rows, records.FormatJSON))
	assert.Equal(t, 5, strings.Count(out.String(), "\n"))
	require.Error(t, records.Export(&out, rows, "xml"))
}
