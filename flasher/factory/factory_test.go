package factory_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/factory"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/records"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
)

// readCSV returns the report's rows (header included), tolerating a torn row.
func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	require.NoError(t, err)
	return rows
}

// readJSONL returns the JSON-lines twin's records; every line must parse.
func readJSONL(t *testing.T, path string) []factory.Record {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []factory.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec factory.Record
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec), "not JSON: %s", sc.Text())
		out = append(out, rec)
	}
	return out
}

// TestBenchEightMixedBorons is issue 8's acceptance 1 at the engine: eight Borons plugged
// in at once in mixed states (normal, DFU, safe and listening mode on 1.5.2, one already
// on 4.1.0) all end normal on 4.1.0, each flashed exactly once, with a report row each
// saying where it started and where it ended.
func TestBenchEightMixedBorons(t *testing.T) {
	type unit struct {
		set    []string
		mode   sim.Mode
		before string
		result string
	}
	units := []unit{
		{boron152, sim.ModeNormal, "1.5.2", factory.ResultOK},
		{boron152, sim.ModeNormal, "1.5.2", factory.ResultOK},
		{boron152, sim.ModeNormal, "1.5.2", factory.ResultOK},
		{boron152, sim.ModeDFU, "1.5.2", factory.ResultOK},
		{boron152, sim.ModeDFU, "1.5.2", factory.ResultOK},
		{boron152, sim.ModeSafe, "1.5.2", factory.ResultOK},
		{boron152, sim.ModeListening, "1.5.2", factory.ResultOK},
		{boron410, sim.ModeNormal, "4.1.0", factory.ResultAlready},
	}
	var devs []*sim.Device
	want := map[string]unit{}
	for _, u := range units {
		d := newBoron(t, u.set, sim.Options{Mode: u.mode})
		require.Equal(t, u.mode, d.Mode(), d.Status().Reason)
		devs = append(devs, d)
		want[d.ID()] = u
	}
	already := devs[7]
	alreadyFlash, alreadyResets := already.InternalFlash(), already.Status().Resets

	dir := t.TempDir()
	rep, err := factory.OpenReport(filepath.Join(dir, "bench.csv"))
	require.NoError(t, err)
	ev := newEvents()
	o := benchOptions(t, demo.New(true, devs...), ev, len(devs))
	o.Report = rep
	tot, err := factory.Run(testCtx(t, 2*time.Minute), o)
	require.NoError(t, err)
	require.NoError(t, rep.Close())
	for _, e := range ev.kind(factory.EvFinished) {
		t.Logf("%s %s -> %s %s %s %s", e.DeviceID, e.Record.Before, e.Record.After, e.Record.Result, e.Record.Error, e.Record.Remedy)
	}
	assert.Equal(t, factory.Totals{Seen: 8, OK: 7, Already: 1}, tot)

	// The devices themselves: all on 4.1.0, running normally.
	tgt := target410(t)
	for _, d := range devs {
		requireAt410(t, d, tgt)
	}
	assert.Equal(t, alreadyResets, already.Status().Resets, "the unit already at 4.1.0 is not even restarted")
	assert.Equal(t, alreadyFlash, already.InternalFlash(), "and nothing is written to it")

	// Each unit was started once, although most reset several times during their runs.
	started := map[string]int{}
	for _, e := range ev.kind(factory.EvStarted) {
		started[e.DeviceID]++
	}
	for _, d := range devs {
		assert.Equal(t, 1, started[d.ID()], "runs of %s", d.ID())
	}
	assert.Empty(t, ev.kind(factory.EvDuplicate))

	// The report: a header and 8 rows, in both files.
	csvPath, jsonlPath := rep.Paths()
	assert.Equal(t, filepath.Join(dir, "bench.jsonl"), jsonlPath)
	rows := readCSV(t, csvPath)
	require.Len(t, rows, 9)
	assert.Equal(t, []string{"time", "device_id", "platform", "before", "after", "duration_seconds", "result", "error", "remedy", "plug", "protection", "setup_done"}, rows[0][:12],
		"the original columns first")
	assert.Equal(t, records.CSVHeader, rows[0])
	seen := map[string]bool{}
	for _, row := range rows[1:] {
		assert.Equal(t, []string{"open", "yes"}, row[10:12], "4.1.0 has no protection and is always set up")
		u, ok := want[row[1]]
		require.True(t, ok, "row for an unknown device: %v", row)
		assert.False(t, seen[row[1]], "two rows for %s", row[1])
		seen[row[1]] = true
		assert.Equal(t, "boron", row[2])
		assert.Equal(t, u.before, row[3], "before of %s (%s mode)", row[1], u.mode)
		assert.Equal(t, "4.1.0", row[4], "after of %s", row[1])
		assert.Equal(t, u.result, row[6], "result of %s: %s", row[1], row[7])
		assert.Empty(t, row[7])
		assert.Equal(t, "1", row[9])
		_, err := time.Parse(time.RFC3339, row[0])
		assert.NoError(t, err)
	}
	recs := readJSONL(t, jsonlPath)
	require.Len(t, recs, 8)
	for _, r := range recs {
		assert.Equal(t, want[r.DeviceID].before, r.Before)
		assert.Equal(t, "4.1.0", r.After)
		assert.Equal(t, want[r.DeviceID].result, r.Result)
		assert.Equal(t, 1, r.Plug)
	}

	// Events: every one carries totals, the runner's events are wrapped per unit.
	last := ev.list()[len(ev.list())-1]
	assert.Equal(t, factory.EvTotals, last.Kind)
	assert.Equal(t, tot, last.Totals)
	runs := 0
	for _, e := range ev.kind(factory.EvRun) {
		require.NotNil(t, e.Run)
		assert.Equal(t, e.DeviceID, e.Run.DeviceID)
		if e.Run.Event == run.EvDone {
			runs++
		}
	}
	assert.Equal(t, 8, runs, "one done event per unit")
}

// TestBenchReplug: a finished unit left on the bench is not flashed again; pulled out
// for longer than the grace period and plugged back in, it is a new plug-in: processed
// again (Plug 2) with a warning that it was flashed before.
func TestBenchReplug(t *testing.T) {
	d := newBoron(t, boron152, sim.Options{})
	dir := t.TempDir()
	rep, err := factory.OpenReport(filepath.Join(dir, "r.csv"))
	require.NoError(t, err)
	defer rep.Close()
	ev := newEvents()
	o := benchOptions(t, demo.New(true, d), ev, 2)
	o.Report = rep
	type result struct {
		tot factory.Totals
		err error
	}
	done := make(chan result, 1)
	go func() {
		tot, err := factory.Run(testCtx(t, time.Minute), o)
		done <- result{tot, err}
	}()
	first := ev.waitFor(t, 30*time.Second, func(e factory.Event) bool { return e.Kind == factory.EvFinished })
	assert.Equal(t, factory.ResultOK, first.Record.Result, first.Record.Error)
	assert.Equal(t, 1, first.Record.Plug)
	requireAt410(t, d, target410(t))

	// Left on the bench for several grace periods: nothing happens.
	time.Sleep(3 * o.Grace)
	assert.Len(t, ev.kind(factory.EvStarted), 1)

	d.Unplug()
	ev.waitFor(t, 10*time.Second, func(e factory.Event) bool { return e.Kind == factory.EvDetached && e.DeviceID == d.ID() })
	d.Plug()
	var res result
	select {
	case res = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the re-plugged unit was not processed")
	}
	require.NoError(t, res.err)
	assert.Equal(t, factory.Totals{Seen: 2, OK: 1, Already: 1, Duplicates: 1}, res.tot)
	dups := ev.kind(factory.EvDuplicate)
	require.Len(t, dups, 1)
	assert.Contains(t, dups[0].Message, "flashed before at "+first.Record.Time.Local().Format("15:04:05"))
	fin := ev.kind(factory.EvFinished)
	require.Len(t, fin, 2)
	assert.Equal(t, 2, fin[1].Record.Plug)
	assert.Equal(t, factory.ResultAlready, fin[1].Record.Result)
	assert.Equal(t, "4.1.0", fin[1].Record.Before)
	rows := readCSV(t, filepath.Join(dir, "r.csv"))
	require.Len(t, rows, 3)
	assert.Equal(t, []string{"1", "2"}, []string{rows[1][9], rows[2][9]})
}

// TestBenchDuplicateIDs: two units with the same device ID attached at once cannot be
// told apart: neither is flashed, a warning says so, and a third unit is flashed as usual.
func TestBenchDuplicateIDs(t *testing.T) {
	id := newID()
	a := newBoron(t, boron152, sim.Options{DeviceID: id})
	b := newBoron(t, boron152, sim.Options{DeviceID: id, Mode: sim.ModeDFU})
	other := newBoron(t, boron152, sim.Options{})
	ev := newEvents()
	o := benchOptions(t, demo.New(true, a, b, other), ev, 1)
	tot, err := factory.Run(testCtx(t, time.Minute), o)
	require.NoError(t, err)
	assert.Equal(t, factory.Totals{Seen: 3, OK: 1, Duplicates: 1}, tot)
	dups := ev.kind(factory.EvDuplicate)
	require.Len(t, dups, 1)
	assert.Equal(t, id, dups[0].DeviceID)
	assert.Contains(t, dups[0].Message, "attached 2 times")
	assert.Contains(t, dups[0].Message, "neither is flashed")
	for _, e := range ev.kind(factory.EvStarted) {
		assert.NotEqual(t, id, e.DeviceID, "a duplicate was flashed")
	}
	// The twins are untouched; the other unit is done.
	assert.Equal(t, "1.5.2", a.SystemVersion())
	assert.Equal(t, sim.ModeNormal, a.Mode())
	assert.Equal(t, sim.ModeDFU, b.Mode())
	requireAt410(t, other, target410(t))
}

// TestBenchFailingUnit: a unit that fails (it never comes back on USB after its first
// reset) gets a failed row with the runner's error and a remedy; the others succeed.
func TestBenchFailingUnit(t *testing.T) {
	good1 := newBoron(t, boron152, sim.Options{})
	bad := newBoron(t, boron152, sim.Options{})
	good2 := newBoron(t, boron152, sim.Options{Mode: sim.ModeDFU})
	bad.FailReenumeration(true)
	dir := t.TempDir()
	rep, err := factory.OpenReport(filepath.Join(dir, "r.csv"))
	require.NoError(t, err)
	ev := newEvents()
	o := benchOptions(t, demo.New(true, good1, bad, good2), ev, 3)
	o.Report = rep
	tot, err := factory.Run(testCtx(t, time.Minute), o)
	require.NoError(t, err)
	require.NoError(t, rep.Close())
	assert.Equal(t, factory.Totals{Seen: 3, OK: 2, Failed: 1}, tot)
	tgt := target410(t)
	requireAt410(t, good1, tgt)
	requireAt410(t, good2, tgt)
	assert.False(t, bad.Status().OnBus, "the failing unit is off the bus")
	assert.Equal(t, "1.5.2", bad.SystemVersion(), "and did not get to 4.1.0")

	recs := readJSONL(t, filepath.Join(dir, "r.jsonl"))
	require.Len(t, recs, 3)
	var failed *factory.Record
	for i := range recs {
		if recs[i].DeviceID == bad.ID() {
			failed = &recs[i]
		} else {
			assert.Equal(t, factory.ResultOK, recs[i].Result)
		}
	}
	require.NotNil(t, failed)
	assert.Equal(t, factory.ResultFailed, failed.Result)
	assert.Equal(t, "1.5.2", failed.Before)
	assert.NotEmpty(t, failed.Error)
	assert.NotEmpty(t, failed.Remedy)
	t.Logf("failed: %s / What to do: %s", failed.Error, failed.Remedy)
	for _, row := range readCSV(t, filepath.Join(dir, "r.csv"))[1:] {
		if row[1] == bad.ID() {
			assert.Equal(t, []string{factory.ResultFailed, failed.Error, failed.Remedy}, row[6:9])
		}
	}
}

// TestReportSurvivesCrash: rows written before a crash stay; a row the crash tore in
// half stays alone on its line; the reopened report keeps its single header and appends.
func TestReportSurvivesCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "line 3.csv")
	rep, err := factory.OpenReport(path)
	require.NoError(t, err)
	now := time.Now().UTC().Truncate(time.Second)
	rec := func(id, res string) factory.Record {
		return factory.Record{Time: now, DeviceID: id, Platform: "boron", Before: "1.5.2", After: "4.1.0", DurationSeconds: 61.25, Result: res, Plug: 1}
	}
	require.NoError(t, rep.Write(rec("e00fce680000000000000001", factory.ResultOK)))
	fail := rec("e00fce680000000000000002", factory.ResultFailed)
	fail.Error, fail.Remedy, fail.After = "run: the device is gone, \"quoted\"", "check the cable, then plug it in again", "unknown"
	require.NoError(t, rep.Write(fail))
	// The crash: no Close, and half a row (as if power went mid-write).
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString("2026-01-01T00:00:00Z,e00fce68000000000000")
	require.NoError(t, err)
	require.NoError(t, f.Close())

	rep2, err := factory.OpenReport(path)
	require.NoError(t, err)
	require.NoError(t, rep2.Write(rec("e00fce680000000000000003", factory.ResultAlready)))
	require.NoError(t, rep2.Close())
	require.NoError(t, rep.Close())

	rows := readCSV(t, path)
	require.Len(t, rows, 5, "header, 2 rows, the torn row, the new row")
	assert.Equal(t, "time", rows[0][0])
	assert.Equal(t, "e00fce680000000000000001", rows[1][1])
	assert.Equal(t, []string{"failed", fail.Error, fail.Remedy}, rows[2][6:9])
	assert.Len(t, rows[3], 2, "the torn row")
	assert.Equal(t, []string{now.Format(time.RFC3339), "e00fce680000000000000003", "boron", "1.5.2", "4.1.0", "61.2", "already", "", "", "1", "unknown", "unknown"}, rows[4][:12])
	assert.Len(t, rows[4], len(records.CSVHeader))
	header := 0
	b, _ := os.ReadFile(path)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "time,") {
			header++
		}
	}
	assert.Equal(t, 1, header)
	recs := readJSONL(t, strings.TrimSuffix(path, ".csv")+".jsonl")
	require.Len(t, recs, 3)
	assert.Equal(t, fail, recs[1])
}

// TestBenchJobsLimit: with Jobs 2, four units are flashed at most two at a time, and
// all of them are.
func TestBenchJobsLimit(t *testing.T) {
	var devs []*sim.Device
	for range 4 {
		devs = append(devs, newBoron(t, boron152, sim.Options{Scale: 0.002}))
	}
	ev := newEvents()
	o := benchOptions(t, demo.New(true, devs...), ev, 4)
	o.Jobs = 2
	o.Timeouts = run.Timeouts{}
	tot, err := factory.Run(testCtx(t, 2*time.Minute), o)
	require.NoError(t, err)
	assert.Equal(t, 4, tot.OK, "%+v", tot)
	running, most := 0, 0
	for _, e := range ev.list() {
		switch e.Kind {
		case factory.EvStarted:
			running++
			most = max(most, running)
		case factory.EvFinished:
			running--
		}
	}
	assert.Equal(t, 2, most, "units flashed at once")
	for _, d := range devs {
		assert.Equal(t, "4.1.0", d.SystemVersion())
	}
}

// TestBenchCancel: cancelling the bench (Ctrl-C) stops a running unit at its next safe
// point: Run returns, the unit has a failed row saying it was cancelled, and the
// runner's journal lets the next run finish it.
func TestBenchCancel(t *testing.T) {
	d := newBoron(t, boron152, sim.Options{Scale: 0.05})
	dir := t.TempDir()
	rep, err := factory.OpenReport(filepath.Join(dir, "r.csv"))
	require.NoError(t, err)
	defer rep.Close()
	ev := newEvents()
	o := benchOptions(t, demo.New(true, d), ev, 0)
	o.Timeouts = run.Timeouts{}
	o.Report = rep
	ctx, cancel := context.WithCancel(testCtx(t, time.Minute))
	done := make(chan factory.Totals, 1)
	go func() {
		tot, err := factory.Run(ctx, o)
		assert.NoError(t, err)
		done <- tot
	}()
	ev.waitFor(t, 10*time.Second, func(e factory.Event) bool { return e.Kind == factory.EvStarted })
	time.Sleep(200 * time.Millisecond)
	cancel()
	var tot factory.Totals
	select {
	case tot = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the bench did not stop")
	}
	assert.Equal(t, factory.Totals{Seen: 1, Failed: 1}, tot)
	recs := readJSONL(t, filepath.Join(dir, "r.jsonl"))
	require.Len(t, recs, 1)
	assert.Equal(t, factory.ResultFailed, recs[0].Result)
	assert.Contains(t, recs[0].Error, "cancelled")
	j, err := o.Journal.Load(d.ID())
	require.NoError(t, err)
	require.NotNil(t, j)
	assert.Equal(t, run.JournalCancelled, j.Status)

	// The next session finishes the job.
	_, err = d.WaitReady(testCtx(t, 10*time.Second))
	require.NoError(t, err)
	ev2 := newEvents()
	o2 := benchOptions(t, demo.New(true, d), ev2, 1)
	o2.Timeouts = run.Timeouts{}
	o2.Journal = o.Journal
	tot, err = factory.Run(testCtx(t, time.Minute), o2)
	require.NoError(t, err)
	assert.Equal(t, 1, tot.OK, "%+v", tot)
	requireAt410(t, d, target410(t))
}

// TestBenchUntilStopsQueue: with Until met, units still waiting for a slot are not
// started: exactly as many units as asked for are flashed.
func TestBenchUntilStopsQueue(t *testing.T) {
	var devs []*sim.Device
	for range 4 {
		devs = append(devs, newBoron(t, boron152, sim.Options{}))
	}
	ev := newEvents()
	o := benchOptions(t, demo.New(true, devs...), ev, 2)
	o.Jobs = 1
	tot, err := factory.Run(testCtx(t, time.Minute), o)
	require.NoError(t, err)
	assert.Equal(t, 2, tot.OK, "%+v", tot)
	assert.Zero(t, tot.Running)
	assert.Len(t, ev.kind(factory.EvStarted), 2)
	at := 0
	for _, d := range devs {
		if d.SystemVersion() == "4.1.0" {
			at++
		}
	}
	assert.Equal(t, 2, at, "devices flashed")
}

// TestBenchBlankBoard: a board fresh from the programmer (a bootloader, no Device OS) is
// reported as coming from "none", and gets the release's application with Device OS so
// that it starts normally; without one the bench refuses it before writing, since it would
// end in safe mode.
func TestBenchBlankBoard(t *testing.T) {
	d := newBoron(t, boron152, sim.Options{Blank: true})
	require.Equal(t, sim.ModeDFU, d.Mode())

	refused := newEvents()
	o := benchOptions(t, demo.New(true, d), refused, 1)
	tot, err := factory.Run(testCtx(t, time.Minute), o)
	require.NoError(t, err)
	assert.Equal(t, 1, tot.Failed, "%+v", tot)
	fin := refused.kind(factory.EvFinished)
	require.Len(t, fin, 1)
	assert.Contains(t, fin[0].Record.Error, "safe mode: there is no application")
	assert.Equal(t, sim.ModeDFU, d.Mode(), "nothing was written")

	tinker, err := sim.SyntheticUserPart(boron(t), 4100, module.Dependency{Function: platform.FuncSystem, Index: 1, Version: 4100})
	require.NoError(t, err)
	app, err := module.Parse(tinker)
	require.NoError(t, err)
	ev := newEvents()
	o = benchOptions(t, demo.New(true, d), ev, 1)
	o.Target = func(ctx context.Context, p *platform.Platform) (plan.Target, error) {
		tgt := target410(t)
		tgt.ReplacementApp = app
		return tgt, nil
	}
	tot, err = factory.Run(testCtx(t, time.Minute), o)
	require.NoError(t, err)
	fin = ev.kind(factory.EvFinished)
	require.Len(t, fin, 1)
	r := fin[0].Record
	assert.Equal(t, 1, tot.OK, "%+v %s", tot, r.Error)
	assert.Equal(t, "none", r.Before)
	assert.Equal(t, "4.1.0", r.After)
	assert.Equal(t, "4.1.0", d.SystemVersion())
}

// unreadableDoors adds to a bus a Particle device that cannot be opened, as libusb shows
// a unit plugged into a bench without the udev rule.
type unreadableDoors struct {
	device.Bus
}

func (u unreadableDoors) List(ctx context.Context) ([]device.Attached, error) {
	devs, err := u.Bus.List(ctx)
	return append(devs, device.Attached{Where: "USB 1-9", DFU: true, Platform: nil,
		Problem: remedy.With(errors.New("USB 1-9: access denied opening the device"), "install the udev rule (pflash doctor shows it)")}), err
}

// TestBenchUnreadableUnit: one unit the bench may not open neither hides the others nor
// goes unexplained: it is reported once, with the remedy, and the rest are flashed.
func TestBenchUnreadableUnit(t *testing.T) {
	a := newBoron(t, boron152, sim.Options{})
	b := newBoron(t, boron152, sim.Options{Mode: sim.ModeDFU})
	ev := newEvents()
	o := benchOptions(t, unreadableDoors{demo.New(true, a, b)}, ev, 2)
	tot, err := factory.Run(testCtx(t, time.Minute), o)
	require.NoError(t, err)
	assert.Equal(t, 2, tot.OK)
	tgt := target410(t)
	requireAt410(t, a, tgt)
	requireAt410(t, b, tgt)
	un := ev.kind(factory.EvUnreadable)
	require.Len(t, un, 1, "said once, not at every poll")
	assert.Contains(t, un[0].Message, "access denied")
	assert.Contains(t, un[0].Message, "What to do: install the udev rule")
}

// A CSV an older pflash started (the original twelve columns) keeps its shape: new rows
// have its columns, so no reader sees a row longer than the header.
func TestReportKeepsAnOlderFilesColumns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.csv")
	require.NoError(t, os.WriteFile(path, []byte("time,device_id,platform,before,after,duration_seconds,result,error,remedy,plug,protection,setup_done\n"), 0o644))
	rep, err := factory.OpenReport(path)
	require.NoError(t, err)
	require.NoError(t, rep.Write(factory.Record{Time: time.Now(), DeviceID: "e00fce680000000000000009", Platform: "boron", Result: factory.ResultOK,
		SerialNumber: "BRNLAB1234ABCDE", Station: "s1"}))
	require.NoError(t, rep.Close())
	rows := readCSV(t, path)
	require.Len(t, rows, 2)
	assert.Len(t, rows[1], 12)
	assert.Equal(t, "e00fce680000000000000009", rows[1][1])
}
