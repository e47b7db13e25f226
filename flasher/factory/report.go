package factory

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/particle-flasher/particle-flasher/flasher/records"
)

// Report writes each record as it is made to a CSV file and a JSON-lines file beside it
// (same name, .jsonl), appending and fsyncing each row so a crash loses nothing; an
// existing CSV keeps its header. It is safe for concurrent use.
type Report struct {
	mu        sync.Mutex
	csvPath   string
	jsonlPath string
	csvF      *os.File
	jsonlF    *os.File
	// header is the columns of the CSV file as opened: a file an older pflash started
	// keeps its columns, and its new rows have the same shape.
	header []string
}

// OpenReport opens (creating or appending to) the CSV report at csvPath and its JSON-lines
// twin.
func OpenReport(csvPath string) (*Report, error) {
	r := &Report{csvPath: csvPath, jsonlPath: jsonlPathFor(csvPath)}
	var err error
	if r.csvF, err = openAppend(r.csvPath); err != nil {
		return nil, err
	}
	if r.jsonlF, err = openAppend(r.jsonlPath); err != nil {
		_ = r.csvF.Close()
		return nil, err
	}
	st, err := r.csvF.Stat()
	if err != nil {
		_ = r.Close()
		return nil, err
	}
	r.header = records.CSVHeader
	if st.Size() == 0 {
		// A new file: the header first. An existing one already has it (or was written by
		// an older run of this same code), and a second header mid-file would break every
		// CSV reader.
		if err := r.writeCSV(r.header); err != nil {
			_ = r.Close()
			return nil, err
		}
	} else if h := existingHeader(r.csvPath); len(h) > 0 {
		r.header = h
	}
	return r, nil
}

// existingHeader reads the first row of a CSV file (nil when it cannot).
func existingHeader(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = -1
	h, err := cr.Read()
	if err != nil || len(h) == 0 || h[0] != records.CSVHeader[0] {
		return nil
	}
	return h
}

// jsonlPathFor is the JSON-lines file beside a CSV: r.csv -> r.jsonl.
func jsonlPathFor(csvPath string) string {
	if strings.EqualFold(csvPathExt(csvPath), ".csv") {
		return csvPath[:len(csvPath)-4] + ".jsonl"
	}
	return csvPath + ".jsonl"
}

func csvPathExt(p string) string {
	if len(p) < 4 {
		return ""
	}
	return p[len(p)-4:]
}

// openAppend opens a file for appending. When a crash cut the last row short (no final
// newline), a newline is added first, so the torn row stays alone on its line instead of
// swallowing the next record.
func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("report: %w", err)
	}
	if st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err != nil && !errors.Is(err, io.EOF) {
			_ = f.Close()
			return nil, fmt.Errorf("report: %w", err)
		}
		if last[0] != '\n' {
			if _, err := f.Write([]byte("\n")); err != nil {
				_ = f.Close()
				return nil, fmt.Errorf("report: %w", err)
			}
		}
	}
	return f, nil
}

// Paths returns the CSV file and its JSON-lines twin.
func (r *Report) Paths() (csv, jsonl string) { return r.csvPath, r.jsonlPath }

// Write appends one record to both files and syncs them to disk before returning, so a
// unit reported done is on disk even if the bench PC loses power the next second.
func (r *Report) Write(rec Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.csvF == nil {
		return errors.New("report: closed")
	}
	if err := r.writeCSV(records.CSVRecord(rec, r.header)); err != nil {
		return err
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	// One write call per line: with O_APPEND a line is never interleaved with another.
	if _, err := r.jsonlF.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("report: %s: %w", r.jsonlPath, err)
	}
	if err := r.jsonlF.Sync(); err != nil {
		return fmt.Errorf("report: %s: %w", r.jsonlPath, err)
	}
	return nil
}

// writeCSV writes one row in a single write and syncs it.
func (r *Report) writeCSV(row []string) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(row); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	w.Flush()
	if _, err := r.csvF.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("report: %s: %w", r.csvPath, err)
	}
	if err := r.csvF.Sync(); err != nil {
		return fmt.Errorf("report: %s: %w", r.csvPath, err)
	}
	return nil
}

// Close closes both files.
func (r *Report) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	if r.csvF != nil {
		errs = append(errs, r.csvF.Close())
		r.csvF = nil
	}
	if r.jsonlF != nil {
		errs = append(errs, r.jsonlF.Close())
		r.jsonlF = nil
	}
	return errors.Join(errs...)
}
