package ui

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// runRecord is everything a run view learnt about one run, kept so the person can save
// it: a technician attaches it to a ticket, a factory files it with the unit.
type runRecord struct {
	DeviceID string
	Platform string
	// Target names what was asked for ("2.3.1", or file names).
	Target      string
	Before      string
	After       string
	Steps       int
	Started     time.Time
	Finished    time.Time
	Verified    bool
	VerifiedMsg string
	Result      string
	Error       string
	Remedy      string
	State       string
	Modules     []state.Module
	// Events are every runner event, in the order the window rendered them.
	Events []run.Event
	// Log is the Log tab's lines about the device from the run's start to its end.
	Log []string
}

// runReport is the saved report's JSON shape. Field names follow `pflash flash --json`
// (snake case) so the same scripts read both.
type runReport struct {
	Tool           string         `json:"tool"`
	DeviceID       string         `json:"device_id"`
	Platform       string         `json:"platform"`
	Target         string         `json:"target"`
	Before         string         `json:"device_os_before"`
	After          string         `json:"device_os_after"`
	Steps          int            `json:"steps"`
	Result         string         `json:"result"`
	Verified       bool           `json:"verified"`
	Error          string         `json:"error,omitempty"`
	Remedy         string         `json:"remedy,omitempty"`
	State          string         `json:"state,omitempty"`
	Started        time.Time      `json:"started"`
	Finished       time.Time      `json:"finished"`
	ElapsedSeconds float64        `json:"elapsed_seconds"`
	Modules        []state.Module `json:"modules,omitempty"`
	Events         []run.Event    `json:"events"`
	Log            []string       `json:"log,omitempty"`
}

// buildReport renders a run as an indented JSON report; the window writes the bytes
// wherever the person chooses.
func buildReport(r runRecord) ([]byte, error) {
	rep := runReport{Tool: "Particle Flasher", DeviceID: r.DeviceID, Platform: r.Platform, Target: r.Target,
		Before: r.Before, After: r.After, Steps: r.Steps, Result: r.Result, Verified: r.Verified,
		Error: r.Error, Remedy: r.Remedy, State: r.State, Started: r.Started.UTC(), Finished: r.Finished.UTC(),
		Modules: r.Modules, Events: r.Events, Log: r.Log}
	if rep.Events == nil {
		rep.Events = []run.Event{}
	}
	if !r.Finished.IsZero() && !r.Started.IsZero() {
		rep.ElapsedSeconds = r.Finished.Sub(r.Started).Seconds()
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return append(b, '\n'), nil
}

// reportFileName proposes a name that sorts by time and says which unit it is about.
func reportFileName(r runRecord) string {
	id := r.DeviceID
	if len(id) > 8 {
		id = id[:8]
	}
	t := r.Finished
	if t.IsZero() {
		t = time.Now()
	}
	name := fmt.Sprintf("pflash-%s-%s-%s.json", orWord(r.Platform, "device"), orWord(id, "unknown"), t.UTC().Format("20060102-150405"))
	return strings.ReplaceAll(name, " ", "-")
}
