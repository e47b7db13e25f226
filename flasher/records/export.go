package records

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// CSVHeader names the report's columns: the original twelve first (a CSV started by an
// older pflash keeps them and gets rows of its own shape), then who the unit is, where it
// was flashed and every module. The names are Row's JSON names.
var CSVHeader = []string{"time", "device_id", "platform", "before", "after", "duration_seconds", "result", "error", "remedy", "plug",
	"protection", "setup_done",
	"started", "run_id", "serial_number", "iccid", "imei", "app", "target", "station", "operator", "lot", "modules_before", "modules_after"}

// CSVFields is a row's CSV cells by column name.
func CSVFields(r Row) map[string]string {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	return map[string]string{
		"time": ts(r.Time), "device_id": r.DeviceID, "platform": r.Platform, "before": r.Before, "after": r.After,
		"duration_seconds": strconv.FormatFloat(r.DurationSeconds, 'f', 1, 64), "result": r.Result, "error": r.Error,
		"remedy": r.Remedy, "plug": strconv.Itoa(r.Plug), "protection": r.Protection.String(), "setup_done": r.SetupDone.String(),
		"started": ts(r.Started), "run_id": r.RunID, "serial_number": r.SerialNumber, "iccid": r.ICCID, "imei": r.IMEI,
		"app": r.App, "target": r.Target, "station": r.Station, "operator": r.Operator, "lot": r.Lot,
		"modules_before": ModulesText(r.ModulesBefore), "modules_after": ModulesText(r.ModulesAfter),
	}
}

// CSVRecord is a row's cells in the order of header.
func CSVRecord(r Row, header []string) []string {
	f := CSVFields(r)
	out := make([]string, len(header))
	for i, h := range header {
		out[i] = f[h]
	}
	return out
}

// ModulesText is modules in one cell: "bootloader/0@1200:hash system/1@4100:hash ...".
func ModulesText(ms []Module) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = fmt.Sprintf("%s/%d@%d", m.Function, m.Index, m.Version)
		if m.Hash != "" {
			parts[i] += ":" + m.Hash
		}
	}
	return strings.Join(parts, " ")
}

// Export formats of `pflash report --format`.
const (
	FormatCSV       = "csv"
	FormatJSON      = "json"
	FormatDeviceIDs = "device-ids"
	FormatSerials   = "serials"
	FormatICCIDs    = "iccids"
)

// Formats lists the export formats.
var Formats = []string{FormatCSV, FormatJSON, FormatDeviceIDs, FormatSerials, FormatICCIDs}

// Export writes rows in a format: CSV with the header, JSON lines (one object per row),
// or one identifier per line, each once, in the order first seen: the plain text file
// the Particle console's bulk import takes.
func Export(w io.Writer, rows []Row, format string) error {
	switch format {
	case FormatCSV:
		cw := csv.NewWriter(w)
		if err := cw.Write(CSVHeader); err != nil {
			return err
		}
		for _, r := range rows {
			if err := cw.Write(CSVRecord(r, CSVHeader)); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	case FormatJSON:
		enc := json.NewEncoder(w)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	case FormatDeviceIDs, FormatSerials, FormatICCIDs:
		seen := map[string]bool{}
		for _, r := range rows {
			v := map[string]string{FormatDeviceIDs: r.DeviceID, FormatSerials: r.SerialNumber, FormatICCIDs: r.ICCID}[format]
			if v == "" || seen[v] {
				continue
			}
			seen[v] = true
			if _, err := fmt.Fprintln(w, v); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown format %q (one of %s)", format, strings.Join(Formats, ", "))
}
