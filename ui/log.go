package ui

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/words"
)

// logEntry is one line of the window's log.
type logEntry struct {
	Time   time.Time `json:"time"`
	Device string    `json:"device,omitempty"`
	Text   string    `json:"text"`
}

func (e logEntry) String() string {
	dev := ""
	if e.Device != "" {
		dev = " [" + e.Device + "]"
	}
	return e.Time.Format("15:04:05") + dev + " " + e.Text
}

// maxLog bounds the log kept in memory: a bench that runs all day keeps its recent history.
const maxLog = 5000

// logView is the Log tab, as QMK Toolbox and Device Doctor have one: every device that
// comes and goes or changes mode, every step of a run, every wait and error, with the time,
// filterable per device, cleared or saved as plain text. A run's saved report carries its
// device's lines.
type logView struct {
	m       *mainUI
	entries []logEntry
	filter  *widget.Select
	text    *widget.Label
	scroll  *container.Scroll
	obj     fyne.CanvasObject
	devices []string
	// shown: the Log tab is in view; stale: lines came while it was not.
	shown, stale bool
}

const allDevices = "All devices"

func newLogView(m *mainUI) *logView {
	v := &logView{m: m, text: widget.NewLabel("")}
	v.text.Wrapping = fyne.TextWrapWord
	v.text.TextStyle = fyne.TextStyle{Monospace: true}
	v.scroll = container.NewVScroll(v.text)
	v.filter = widget.NewSelect([]string{allDevices}, func(string) { v.render() })
	v.filter.SetSelected(allDevices)
	clear := widget.NewButton("Clear", func() {
		v.entries = nil
		v.render()
	})
	save := widget.NewButton("Save log...", v.save)
	v.obj = container.NewBorder(container.NewBorder(nil, nil, widget.NewLabel("Show:"), container.NewHBox(clear, save), v.filter),
		nil, nil, nil, v.scroll)
	return v
}

// add appends a line (on the UI thread).
func (v *logView) add(device, text string) {
	v.entries = append(v.entries, logEntry{Time: time.Now(), Device: device, Text: text})
	if len(v.entries) > maxLog {
		v.entries = v.entries[len(v.entries)-maxLog:]
	}
	if device != "" && !slices.Contains(v.devices, device) {
		v.devices = append(v.devices, device)
		sort.Strings(v.devices)
		v.filter.Options = append([]string{allDevices}, v.devices...)
		v.filter.Refresh()
	}
	// Laying out hundreds of lines is the costly part: done only while the tab shows, so
	// a busy bench does not pay it for every line nobody is reading.
	if v.shown {
		v.render()
	} else {
		v.stale = true
	}
}

// show is the Log tab coming into view (or going): it renders what came meanwhile.
func (v *logView) show(on bool) {
	v.shown = on
	if on && v.stale {
		v.render()
	}
}

// lines are the entries the filter shows (or of one device).
func (v *logView) lines(device string) []logEntry {
	var out []logEntry
	for _, e := range v.entries {
		if device == "" || device == allDevices || e.Device == device {
			out = append(out, e)
		}
	}
	return out
}

// maxShown bounds the lines on screen: a label of thousands of lines is slow to lay out;
// Save log... writes them all.
const maxShown = 800

func (v *logView) render() {
	v.stale = false
	lines := v.lines(v.filter.Selected)
	var b strings.Builder
	if n := len(lines) - maxShown; n > 0 {
		fmt.Fprintf(&b, "(%d earlier lines are kept: Save log... writes them all)\n", n)
		lines = lines[n:]
	}
	writeLines(&b, lines)
	v.text.SetText(b.String())
	v.scroll.ScrollToBottom()
}

func writeLines(b *strings.Builder, lines []logEntry) {
	for _, e := range lines {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
}

// since is the lines about a device from a time on, as a report carries them.
func (v *logView) since(device string, t time.Time) []string {
	var out []string
	for _, e := range v.lines(strings.ToLower(device)) {
		if !e.Time.Before(t) {
			out = append(out, e.String())
		}
	}
	return out
}

// plain is the log as saved: every line the filter shows, from the entries (the label
// holds only the last maxShown, and only once the tab has been looked at).
func (v *logView) plain() string {
	var b strings.Builder
	writeLines(&b, v.lines(v.filter.Selected))
	return b.String()
}

// writeLog writes the lines the filter shows, as plain text.
func (v *logView) writeLog(w io.Writer) error {
	_, err := io.WriteString(w, v.plain())
	return err
}

func (v *logView) save() {
	d := dialog.NewFileSave(func(w fyne.URIWriteCloser, err error) {
		if err != nil {
			showError(remedy.With(err, "Choose another folder."), v.m.win)
			return
		}
		if w == nil {
			return
		}
		werr := v.writeLog(w)
		if cerr := w.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			showError(remedy.With(werr, "Choose another folder, or check the disk has room."), v.m.win)
		}
	}, v.m.win)
	d.SetFileName("particle-flasher-" + time.Now().Format("20060102-150405") + ".log")
	d.Show()
}

// log adds a line about a device (or the window, device "") to the Log tab.
func (m *mainUI) log(device, text string) {
	if m.logv != nil {
		m.logv.add(strings.ToLower(device), text)
	}
}

// logDevice notes what the watcher saw of a device.
func (m *mainUI) logDevice(e device.Event) {
	d := e.Device
	id := orWord(d.ID, d.Key)
	name := platformName(d.Platform) + virtualTag(d)
	switch e.Kind {
	case device.Appeared:
		m.log(id, fmt.Sprintf("%s appeared in %s.", name, modeWords(d)))
	case device.Disappeared:
		m.log(id, name+" left USB.")
	case device.ChangedMode:
		m.log(id, fmt.Sprintf("%s changed mode: %s.", name, modeWords(d)))
	case device.ModulesRead:
		if e.Err != nil {
			m.log(id, "Could not read the modules: "+errText(e.Err))
		} else if d.Boot.Why != "" {
			m.log(id, "Modules read: "+d.Boot.Sentence())
		} else {
			m.log(id, fmt.Sprintf("Modules read: %s, Device OS %s.", words.Count(mainModules(d), "module"), orWord(deviceOS(d), "none")))
		}
	case device.DoorFailed:
		m.log("", "Cannot list "+e.Door+" devices: "+errText(e.Err))
	}
}

// logRunEvent notes what a run did: its steps, waits, retries and end.
// The step line is the checklist's own ("Step 2 of 5: ..."), so the log and the panel count
// alike.
func (m *mainUI) logRunEvent(e run.Event, t *targetSection) {
	id := e.DeviceID
	switch e.Event {
	case run.EvStep:
		if t != nil && strings.HasPrefix(t.checklist.summary.Text, "Step ") {
			m.log(id, t.checklist.summary.Text)
		} else {
			m.log(id, e.Title)
		}
	case run.EvWaiting:
		m.log(id, "Waiting for "+e.Waiting+".")
	case run.EvRetry:
		m.log(id, "Trying again: "+e.Message)
	case run.EvVerified:
		m.log(id, "Verified: "+e.Message)
	case run.EvFailed:
		m.log(id, "Failed: "+remedy.HumanText(e.Error))
	case run.EvDone:
		if e.Result == run.ResultOK {
			m.log(id, "Run finished.")
		}
	}
}

// logLine is a finished run in one line.
func (r runRecord) logLine() string {
	if r.Result == run.ResultOK {
		return fmt.Sprintf("Done: Device OS %s to %s, verified.", orWord(r.Before, "?"), orWord(r.After, "?"))
	}
	s := "Stopped before reaching " + orWord(r.Target, "the target")
	if r.Error != "" {
		s += ": " + remedy.HumanText(r.Error)
	}
	return s + "."
}
