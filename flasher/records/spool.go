package records

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// Spool is the rows a bench could not send yet, in the order they were made: a local
// file, each row one line "crc32c json" written in one write and fsync'd before Append
// returns, so a row the bench reported as kept survives a crash or a power cut. A line a
// crash cut short fails its checksum and is dropped when the file is read: it was never
// reported as kept.
type Spool struct {
	mu      sync.Mutex
	path    string
	f       *os.File
	unlock  func()
	pending []Row
	// Torn counts the damaged lines dropped when the file was opened.
	Torn int
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// OpenSpool opens (creating) the spool file and reads the rows waiting in it. The file is
// locked (on systems with flock) so that two benches never share one.
func OpenSpool(path string) (*Spool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("records: spool: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("records: spool: %w", err)
	}
	unlock, err := lockFile(f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("records: spool %s is in use by another bench: %w", path, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		unlock()
		_ = f.Close()
		return nil, fmt.Errorf("records: spool: %w", err)
	}
	rows, torn := ParseSpool(data)
	s := &Spool{path: path, f: f, unlock: unlock, pending: rows, Torn: torn}
	if torn > 0 || (len(data) > 0 && data[len(data)-1] != '\n') {
		// Rewritten without the damage, so a torn tail cannot swallow the next row.
		if err := s.rewriteLocked(rows); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	return s, nil
}

// SpoolLine is one row as the spool file holds it, newline included.
func SpoolLine(r Row) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("records: spool: %w", err)
	}
	line := make([]byte, 0, len(b)+10)
	line = fmt.Appendf(line, "%08x ", crc32.Checksum(b, castagnoli))
	line = append(line, b...)
	return append(line, '\n'), nil
}

// ParseSpool reads a spool file's rows in order; damaged lines (a wrong checksum, cut
// short, not a row) are skipped and counted.
func ParseSpool(data []byte) (rows []Row, torn int) {
	for len(data) > 0 {
		line := data
		i := bytes.IndexByte(data, '\n')
		if i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		r, ok := parseSpoolLine(line)
		if !ok {
			torn++
			continue
		}
		rows = append(rows, r)
	}
	return rows, torn
}

func parseSpoolLine(line []byte) (Row, bool) {
	if len(line) < 10 || line[8] != ' ' {
		return Row{}, false
	}
	sum, err := strconv.ParseUint(string(line[:8]), 16, 32)
	if err != nil {
		return Row{}, false
	}
	body := line[9:]
	if crc32.Checksum(body, castagnoli) != uint32(sum) {
		return Row{}, false
	}
	var r Row
	if err := json.Unmarshal(body, &r); err != nil || r.DeviceID == "" || r.RunID == "" {
		return Row{}, false
	}
	return r, true
}

// Path is the spool file.
func (s *Spool) Path() string { return s.path }

// Len is the number of rows waiting.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Pending returns the rows waiting, oldest first.
func (s *Spool) Pending() []Row {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Row(nil), s.pending...)
}

// Append adds a row at the end and syncs it to disk.
func (s *Spool) Append(r Row) error {
	line, err := SpoolLine(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return errors.New("records: spool: closed")
	}
	if _, err := s.f.Write(line); err != nil {
		return fmt.Errorf("records: spool %s: %w", s.path, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("records: spool %s: %w", s.path, err)
	}
	s.pending = append(s.pending, r)
	return nil
}

// Drop removes the first n rows (they were sent), rewriting the file.
func (s *Spool) Drop(n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n = min(n, len(s.pending))
	if n == 0 {
		return nil
	}
	return s.rewriteLocked(s.pending[n:])
}

// rewriteLocked replaces the file with rows: written to a new file, synced, renamed over
// the old one and the directory synced, so a crash leaves either the old spool or the new.
func (s *Spool) rewriteLocked(rows []Row) error {
	var buf bytes.Buffer
	for _, r := range rows {
		line, err := SpoolLine(r)
		if err != nil {
			return err
		}
		buf.Write(line)
	}
	tmp := s.path + ".new"
	if err := writeSynced(tmp, buf.Bytes()); err != nil {
		return fmt.Errorf("records: spool: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("records: spool: %w", err)
	}
	syncDir(filepath.Dir(s.path))
	// The lock and the append handle follow the new file.
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("records: spool: %w", err)
	}
	unlock, err := lockFile(f)
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("records: spool: %w", err)
	}
	s.unlock()
	_ = s.f.Close()
	s.f, s.unlock = f, unlock
	s.pending = append([]Row(nil), rows...)
	return nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// Close releases the file.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	s.unlock()
	err := s.f.Close()
	s.f = nil
	return err
}
