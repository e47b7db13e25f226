package ui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/particle-flasher/particle-flasher/flasher/factory"
	"github.com/particle-flasher/particle-flasher/flasher/records"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/run"
)

// Texts of the records section a person (and a test) finds it by.
const (
	recordsTestText    = "Test connection"
	recordsRefreshText = "Lot totals"
	recordsExportText  = "Export..."
)

// factoryRecords is the Factory tab's records section: the bench's station, lot and
// operator, the record store every bench writes (a SQLite file by default, or a shared
// PostgreSQL URL) with a button that tests it, the lot's totals as the store has them,
// and the export of the lot (CSV, JSON lines, or one identifier per line for the
// console's bulk import). The bench (factory.go) takes its recorder from here.
type factoryRecords struct {
	win fyne.Window
	// stateDir is asked when needed: the runner's state directory may be set after the
	// tab is built.
	stateDir func() string

	station, lot, operator, db *widget.Entry
	testBtn, totalsBtn         *widget.Button
	format                     *widget.Select
	exportBtn                  *widget.Button
	status, totals             *widget.Label
	obj                        fyne.CanvasObject
}

// newFactoryRecords builds the section; stateDir holds the default SQLite file and the
// spool.
func newFactoryRecords(win fyne.Window, stateDir func() string) *factoryRecords {
	r := &factoryRecords{win: win, stateDir: stateDir,
		station: widget.NewEntry(), lot: widget.NewEntry(), operator: widget.NewEntry(), db: widget.NewEntry(),
		status: widget.NewLabel(""), totals: widget.NewLabel("")}
	host, _ := os.Hostname()
	r.station.SetText(host)
	r.station.SetPlaceHolder("this bench's name")
	r.lot.SetPlaceHolder("e.g. " + time.Now().Format("20060102") + "_0001")
	r.operator.SetPlaceHolder("who runs the bench")
	r.db.SetPlaceHolder("records.db in the state directory, another SQLite file, or postgres://user@host/database")
	r.status.Wrapping = fyne.TextWrapWord
	r.totals.Wrapping = fyne.TextWrapWord
	r.testBtn = widget.NewButton(recordsTestText, r.testConnection)
	r.totalsBtn = widget.NewButton(recordsRefreshText, r.refreshTotals)
	r.format = widget.NewSelect(records.Formats, nil)
	r.format.SetSelected(records.FormatCSV)
	r.exportBtn = widget.NewButton(recordsExportText, r.export)
	form := widget.NewForm(
		widget.NewFormItem("Station", r.station),
		widget.NewFormItem("Lot", r.lot),
		widget.NewFormItem("Operator", r.operator),
		widget.NewFormItem("Records", container.NewBorder(nil, nil, nil, r.testBtn, r.db)),
	)
	box := &recordsBox{r: r, content: container.NewVBox(form, r.status,
		container.NewHBox(r.totalsBtn, widget.NewLabel("Export the lot as"), r.format, r.exportBtn), r.totals)}
	box.ExtendBaseWidget(box)
	r.obj = box
	return r
}

// recordsBox is the section on screen; it knows its factoryRecords, so that whoever
// walks the tab's widgets (a test) finds the section itself.
type recordsBox struct {
	widget.BaseWidget
	r       *factoryRecords
	content *fyne.Container
}

func (b *recordsBox) CreateRenderer() fyne.WidgetRenderer { return widget.NewSimpleRenderer(b.content) }

// shotChildren lets the screen walkers (screenshots, tests) see into the section.
func (b *recordsBox) shotChildren() []fyne.CanvasObject { return []fyne.CanvasObject{b.content} }

// factoryStateDir is where the bench keeps its records and spool: the runner's state
// directory when one was set, else for the demo a directory of its own (virtual units
// never mix with real ones in the records), else the default state directory.
func factoryStateDir(demo bool, runs string) string {
	if runs != "" {
		return runs
	}
	if demo {
		return filepath.Join(os.TempDir(), "particle-flasher-demo")
	}
	if dir, err := run.DefaultStateDir(); err == nil {
		return dir
	}
	return os.TempDir()
}

func (r *factoryRecords) dsn() string {
	if v := strings.TrimSpace(r.db.Text); v != "" {
		return v
	}
	return records.DefaultFile(r.stateDir())
}

// setInputs locks the bench's identity while it runs.
func (r *factoryRecords) setInputs(on bool) {
	for _, w := range []fyne.Disableable{r.station, r.lot, r.operator, r.db} {
		if on {
			w.Enable()
		} else {
			w.Disable()
		}
	}
}

func (r *factoryRecords) setStatus(text string, imp widget.Importance) {
	r.status.Importance = imp
	r.status.SetText(text)
	r.status.Refresh()
}

// testConnection opens the store and checks it answers and holds the schema, on a worker.
func (r *factoryRecords) testConnection() {
	dsn := r.dsn()
	r.setStatus("Testing "+dsn+"...", widget.MediumImportance)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		where, err := pingStore(ctx, dsn)
		onUI(func() {
			if err != nil {
				r.setStatus("The records cannot be reached: "+errorWords(err), widget.DangerImportance)
				return
			}
			r.setStatus("Connected: "+where+" is ready for the records.", widget.SuccessImportance)
		})
	}()
}

func pingStore(ctx context.Context, dsn string) (string, error) {
	s, err := records.Open(dsn)
	if err != nil {
		return "", remedy.With(err, "Give a SQLite file path, or postgres://user@host/database.")
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		return s.Where(), remedy.With(err, "Check that the database server runs and the URL (user, host, database) is right.")
	}
	return s.Where(), nil
}

// lotRows reads the lot's rows (the whole store when no lot is given).
func (r *factoryRecords) lotRows(ctx context.Context) ([]records.Row, string, error) {
	s, err := records.Open(r.dsn())
	if err != nil {
		return nil, "", err
	}
	defer s.Close()
	rows, err := s.Rows(ctx, records.Filter{Lot: strings.TrimSpace(r.lot.Text)})
	return rows, s.Where(), err
}

// refreshTotals shows the lot's totals as the store has them: every bench's units.
func (r *factoryRecords) refreshTotals() {
	lot := strings.TrimSpace(r.lot.Text)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		rows, _, err := r.lotRows(ctx)
		onUI(func() {
			if err != nil {
				r.totals.SetText("The lot's totals cannot be read: " + errorWords(err))
				return
			}
			r.totals.SetText(lotTotalsWords(lot, records.Summarize(rows)))
		})
	}()
}

// lotTotalsWords is the lot's totals in one paragraph.
func lotTotalsWords(lot string, s records.Summary) string {
	name := "All lots"
	if lot != "" {
		name = "Lot " + lot
	}
	if s.Units == 0 {
		return name + ": no units recorded yet."
	}
	part := func(m map[string]int) string {
		var out []string
		for _, k := range records.Keys(m) {
			out = append(out, fmt.Sprintf("%s %d", orWord(k, "none"), m[k]))
		}
		return strings.Join(out, ", ")
	}
	return fmt.Sprintf("%s: %d unit(s) — %s. Stations: %s. Not at the target: %d. Flashed more than once: %d. On two stations: %d.",
		name, s.Units, part(s.PerResult), part(s.PerStation), len(s.NotAtTarget), len(s.FlashedAgain), len(s.OnTwoStations))
}

// export writes the lot in the chosen format to a file the person picks.
func (r *factoryRecords) export() {
	format := r.format.Selected
	name := "lot"
	if l := strings.TrimSpace(r.lot.Text); l != "" {
		name = l
	}
	ext := map[string]string{records.FormatCSV: ".csv", records.FormatJSON: ".jsonl"}[format]
	if ext == "" {
		ext = "-" + format + ".txt"
	}
	d := dialog.NewFileSave(func(w fyne.URIWriteCloser, err error) {
		if err != nil {
			showError(remedy.With(err, "Choose another file."), r.win)
			return
		}
		if w == nil {
			return // cancelled
		}
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			n, err := r.exportTo(ctx, w, format)
			cerr := w.Close()
			if err == nil {
				err = cerr
			}
			onUI(func() {
				if err != nil {
					showError(remedy.With(err, "Check the records' connection (Test connection) and try again."), r.win)
					return
				}
				r.setStatus(fmt.Sprintf("Exported %d row(s) as %s to %s.", n, format, w.URI().Path()), widget.SuccessImportance)
			})
		}()
	}, r.win)
	d.SetFileName(name + ext)
	d.Show()
}

// exportTo writes the lot's rows in a format; it returns how many rows it read.
func (r *factoryRecords) exportTo(ctx context.Context, w interface{ Write([]byte) (int, error) }, format string) (int, error) {
	rows, _, err := r.lotRows(ctx)
	if err != nil {
		return 0, err
	}
	return len(rows), records.Export(w, rows, format)
}

// open starts the bench's recorder (sending what an earlier session left in its spool)
// and reads which units this station already finished in the lot. status is told, on the
// UI goroutine, when rows are spooled or the spool was sent.
func (r *factoryRecords) open(ctx context.Context) (*records.Recorder, factory.Options, error) {
	station := strings.TrimSpace(r.station.Text)
	if station == "" {
		return nil, factory.Options{}, remedy.With(fmt.Errorf("no station name"), "Give this bench a name (Station), different from every other bench's.")
	}
	o := factory.Options{Station: station, Lot: strings.TrimSpace(r.lot.Text), Operator: strings.TrimSpace(r.operator.Text)}
	s, err := records.Open(r.dsn())
	if err != nil {
		return nil, o, remedy.With(err, "Give a SQLite file path, or postgres://user@host/database.")
	}
	spool := filepath.Join(r.stateDir(), "records-spool-"+safeName(station)+".jsonl")
	rec, err := records.NewRecorder(records.RecorderOptions{Store: s, SpoolPath: spool, Station: station,
		OnStatus: func(st records.Status) { onUI(func() { r.showSpooling(st) }) }})
	if err != nil {
		_ = s.Close()
		return nil, o, remedy.With(err, "Give each bench its own station name.")
	}
	o.Recorder = rec
	o.Finished = map[string]bool{}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if rows, err := s.Rows(qctx, records.Filter{Station: o.Station, Lot: o.Lot}); err == nil {
		for _, row := range rows {
			if records.Finished(row.Result) {
				o.Finished[row.DeviceID] = true
			}
		}
	}
	return rec, o, nil
}

func (r *factoryRecords) showSpooling(st records.Status) {
	if st.Spooling {
		r.setStatus(fmt.Sprintf("The records cannot reach %s: %d row(s) wait in %s and are sent when it is back. The bench keeps flashing.",
			st.Where, st.Pending, st.SpoolPath), widget.WarningImportance)
		return
	}
	r.setStatus("Records: "+st.Where+" is reachable; every row is in it.", widget.SuccessImportance)
}

// safeName keeps a station name usable in a file name.
func safeName(s string) string {
	return strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			return c
		}
		return '_'
	}, s)
}
