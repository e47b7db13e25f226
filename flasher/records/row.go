// Package records keeps every factory unit's row in a store that all benches share: an
// embedded SQLite file by default (one bench, nothing to install), or PostgreSQL for many
// benches. A row's key is the device ID and the run ID, so writing the same row again
// (a retry after a crash, a spool replayed twice) never duplicates it. When the store
// cannot be reached, rows go to a local spool file (fsync'd) and are sent, in order, when
// it is back (Recorder).
package records

import (
	"fmt"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// Results of a row. A unit's row is written as ResultRunning when its run starts and
// rewritten with the outcome when it ends; a row still running when its bench starts
// again was cut short (the bench crashed or was killed) and becomes ResultInterrupted.
const (
	ResultOK          = "ok"
	ResultAlready     = "already"
	ResultFailed      = "failed"
	ResultRunning     = "running"
	ResultInterrupted = "interrupted"
)

// Finished reports whether a result is the end of a run (ok, already or failed).
func Finished(result string) bool {
	return result == ResultOK || result == ResultAlready || result == ResultFailed
}

// Module is one module of a unit as recorded: function, index, version and hash (the
// suffix's SHA-256 where the reading shows it, else the CRC-32).
type Module struct {
	Function string `json:"function"`
	Index    int    `json:"index"`
	Version  int    `json:"version"`
	Hash     string `json:"hash,omitempty"`
}

// ModulesOf lists a reading's installed main-store modules as a row records them.
func ModulesOf(d state.Device) []Module {
	var out []Module
	for _, m := range d.Modules {
		if !m.Present || !m.IsMain() {
			continue
		}
		h := m.SHA256
		if h == "" && m.CRC != 0 {
			h = fmt.Sprintf("crc32:%08x", m.CRC)
		}
		out = append(out, Module{Function: m.Function.String(), Index: int(m.Index), Version: int(m.Version), Hash: h})
	}
	return out
}

// Row is one unit's run on a bench: the factory report's row and the store's.
type Row struct {
	// Time is when the unit finished (zero while it runs); Started when its run began.
	Time    time.Time `json:"time"`
	Started time.Time `json:"started"`
	// DeviceID and RunID are the row's key: RunID is new for every run of every unit.
	DeviceID string `json:"device_id"`
	RunID    string `json:"run_id"`
	// SerialNumber, ICCID and IMEI are who the unit is (requests 21 and 554).
	SerialNumber string `json:"serial_number"`
	ICCID        string `json:"iccid"`
	IMEI         string `json:"imei"`
	Platform     string `json:"platform"`
	// Before is the Device OS before ("none" when no system part); After the Device OS
	// after, as verified ("unknown" when the run failed).
	Before string `json:"before"`
	After  string `json:"after"`
	// ModulesBefore and ModulesAfter are every module as read before and after.
	ModulesBefore []Module `json:"modules_before"`
	ModulesAfter  []Module `json:"modules_after"`
	// App is the application after the run: its hash (SHA-256, or crc32:...) and version.
	App string `json:"app"`
	// Target is what the unit was taken to ("4.1.0", "the target" for files).
	Target          string  `json:"target"`
	DurationSeconds float64 `json:"duration_seconds"`
	// Result is one of the Result constants.
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
	Remedy string `json:"remedy,omitempty"`
	// Plug is 1 for the first plug-in of this ID in the bench's session, 2 for the next.
	Plug int `json:"plug"`
	// Protection and SetupDone are the unit's Device Protection state and setup-done flag
	// as read at the end.
	Protection state.Protection `json:"protection"`
	SetupDone  state.Flag       `json:"setup_done"`
	// Station, Operator and Lot say where, by whom and for which batch.
	Station  string `json:"station"`
	Operator string `json:"operator"`
	Lot      string `json:"lot"`
}

// AppOf names a reading's application: "sha256 (version N)", or "" without one.
func AppOf(d state.Device) string {
	for _, m := range ModulesOf(d) {
		if m.Function == "user" {
			return fmt.Sprintf("%s (version %d)", m.Hash, m.Version)
		}
	}
	return ""
}
