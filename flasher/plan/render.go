package plan

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"strings"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/led"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// String explains the plan in words for a person: where it goes and why, then numbered
// steps, each with the mode it needs, how it writes (method, alt, address, size), how
// long it may take, why it is there and the LED to expect.
func (p *Plan) String() string {
	var b strings.Builder
	name := "device"
	if p.Platform != nil {
		name = boardName(p.Platform)
	}
	fmt.Fprintf(&b, "Plan for the %s: Device OS %s -> %s (%s)", name, p.From, p.To, p.Direction)
	if p.NeedsSteppingStone != "" {
		fmt.Fprintf(&b, "\nThis needs a stop at Device OS %s first: plan %s, run it, then plan %s again.\n", p.NeedsSteppingStone, p.NeedsSteppingStone, p.To)
		writeList(&b, "Why", p.Warnings)
		return b.String()
	}
	if len(p.Steps) == 0 {
		b.WriteString(": nothing to do.\n")
	} else {
		fmt.Fprintf(&b, ", %d steps, about %s.\n", len(p.Steps), roundDur(p.EstimatedDuration))
	}
	if p.Windows > 0 {
		fmt.Fprintf(&b, "The DFU work is cut into %d watchdog windows.\n", p.Windows)
	}
	if len(p.Skipped) > 0 {
		b.WriteString("Left as they are:\n")
		for _, s := range p.Skipped {
			fmt.Fprintf(&b, "  - %s: %s\n", describe(s.Module), s.Why)
		}
	}
	writeList(&b, "Warnings", p.Warnings)
	writeList(&b, "Notes", p.Notes)
	if len(p.Steps) > 0 {
		b.WriteString("Steps:\n")
	}
	for i, s := range p.Steps {
		fmt.Fprintf(&b, "%3d. %s", i+1, s.headline())
		if s.Estimate > 0 {
			fmt.Fprintf(&b, "  (~%s)", roundDur(s.Estimate))
		}
		b.WriteByte('\n')
		if s.Why != "" {
			fmt.Fprintf(&b, "     Why: %s\n", s.Why)
		}
		if s.LED.Expect != (led.State{}) || s.LED.Text != "" {
			fmt.Fprintf(&b, "     LED: %s. %s\n", s.LED.Expect, s.LED.Text)
		}
	}
	if exp := p.Expected(); len(exp) > 0 && len(p.Steps) > 0 {
		parts := make([]string, len(exp))
		for i, in := range exp {
			parts[i] = fmt.Sprintf("%s %d", slotName(p.Platform, in), in.Version)
		}
		fmt.Fprintf(&b, "Afterwards the device should run in %s with %s.\n", p.End, strings.Join(parts, ", "))
	}
	return b.String()
}

func writeList(b *strings.Builder, title string, items []string) {
	if len(items) == 0 {
		return
	}
	mark := "!"
	if title == "Notes" {
		mark = "-" // what was left out, not something to act on
	}
	fmt.Fprintf(b, "%s:\n", title)
	for _, w := range items {
		fmt.Fprintf(b, "  %s %s\n", mark, w)
	}
}

// headline is the one-line summary of a step.
func (s Step) headline() string {
	win := ""
	if s.Window > 0 {
		win = fmt.Sprintf(" [window %d]", s.Window)
	}
	part := ""
	if s.Parts > 0 {
		part = fmt.Sprintf(" part %d/%d", s.Part, s.Parts)
	}
	switch s.Kind {
	case KindEnterMode:
		return fmt.Sprintf("Enter %s mode%s", s.Mode.Title(), win)
	case KindReset:
		return fmt.Sprintf("Leave DFU mode; the device restarts in %s mode", s.Mode.Title())
	case KindWaitFor:
		return fmt.Sprintf("Wait for the device to install %s and come back in %s mode", describe(s.Module), s.Mode.Title())
	case KindSetupDone:
		return fmt.Sprintf("Mark the device's setup done; it continues in %s mode", s.Mode.Title())
	case KindEndServiceMode:
		return "End Service Mode: Device Protection is back on"
	case KindVerify:
		return "Verify the modules"
	case KindInvalidate:
		return fmt.Sprintf("[dfu] Invalidate 0x%08x (alt %d, %d bytes of 0xFF)%s", s.Address, s.Alt, len(s.Data), win)
	case KindSetOTAFlag:
		return fmt.Sprintf("[dfu] Set the OTA flag: DCT offset %d = 0x%02X (alt %d)%s", s.Address, firstByte(s.Data), s.Alt, win)
	case KindWrite:
		switch {
		case s.Method == platform.MethodOTARegion:
			return fmt.Sprintf("[dfu] Stage %s in the OTA region at 0x%08x (alt %d, %d bytes)%s", describe(s.Module), s.Address, s.Alt, len(s.Data), win)
		case s.Method.UsesDFU():
			how := "over DFU"
			if s.Method == platform.MethodDFUDropHeader {
				how = "over DFU without its 24-byte header"
			}
			return fmt.Sprintf("[dfu] Write %s%s %s at 0x%08x (alt %d, %d bytes)%s", describe(s.Module), part, how, s.Address, s.Alt, len(s.Data), win)
		case s.Method == platform.MethodYModem:
			return fmt.Sprintf("[listening] Send %s by YMODEM (%d bytes)", describe(s.Module), len(s.Data))
		}
		return fmt.Sprintf("[normal] Send %s by USB control requests (%d bytes)", describe(s.Module), len(s.Data))
	}
	return s.Kind.String()
}

func firstByte(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// ---- JSON ----------------------------------------------------------------------------

type jsonPlan struct {
	Platform           string          `json:"platform"`
	PlatformID         uint16          `json:"platform_id"`
	From               string          `json:"from"`
	To                 string          `json:"to"`
	Direction          Direction       `json:"direction"`
	NeedsSteppingStone string          `json:"needs_stepping_stone,omitempty"`
	Windows            int             `json:"windows"`
	EstimatedSeconds   float64         `json:"estimated_seconds"`
	Verify             VerifyMode      `json:"verify"`
	ExpectMode         state.Mode      `json:"expect_mode"`
	EndWhy             string          `json:"end_why,omitempty"`
	Warnings           []string        `json:"warnings"`
	Notes              []string        `json:"notes"`
	Skipped            []jsonSkip      `json:"skipped"`
	Steps              []jsonStep      `json:"steps"`
	Expect             []jsonInstalled `json:"expect"`
}

type jsonSkip struct {
	Slot    string `json:"slot"`
	Version uint16 `json:"version"`
	Why     string `json:"why"`
}

type jsonStep struct {
	ID              string         `json:"id"`
	Kind            Kind           `json:"kind"`
	Slot            string         `json:"slot,omitempty"`
	Module          *jsonModule    `json:"module,omitempty"`
	Method          string         `json:"method,omitempty"`
	Alt             *uint8         `json:"alt,omitempty"`
	Address         string         `json:"address,omitempty"`
	Size            int            `json:"size,omitempty"`
	DataCRC32       string         `json:"data_crc32,omitempty"`
	Part            int            `json:"part,omitempty"`
	Parts           int            `json:"parts,omitempty"`
	Mode            state.Mode     `json:"mode"`
	Window          int            `json:"window,omitempty"`
	EstimateSeconds float64        `json:"estimate_seconds"`
	Why             string         `json:"why"`
	LED             jsonLED        `json:"led"`
	Unmet           []string       `json:"unmet,omitempty"`
	Expect          *jsonInstalled `json:"expect,omitempty"`
}

type jsonModule struct {
	Name     string `json:"name"`
	Function string `json:"function"`
	Index    uint8  `json:"index"`
	Version  uint16 `json:"version"`
	DeviceOS string `json:"device_os,omitempty"`
	Start    string `json:"start"`
	Size     int    `json:"size"`
	CRC32    string `json:"crc32"`
}

type jsonLED struct {
	Expect string       `json:"expect"`
	Text   string       `json:"text"`
	IfNot  []jsonRemedy `json:"if_not,omitempty"`
}

type jsonRemedy struct {
	Seen string `json:"seen"`
	Do   string `json:"do"`
}

type jsonInstalled struct {
	Function string   `json:"function"`
	Index    uint8    `json:"index"`
	Version  uint16   `json:"version"`
	Start    string   `json:"start,omitempty"`
	Size     uint32   `json:"size,omitempty"`
	Valid    bool     `json:"valid"`
	CRC32    string   `json:"crc32,omitempty"`
	SHA256   string   `json:"sha256,omitempty"`
	Deps     []string `json:"deps,omitempty"`
}

func toJSONInstalled(in state.Module) jsonInstalled {
	j := jsonInstalled{Function: in.Function.String(), Index: in.Index, Version: in.Version, Size: in.Size,
		Valid: in.Intact(), SHA256: in.SHA256}
	if in.Start != 0 || in.Size != 0 {
		j.Start = fmt.Sprintf("0x%08x", in.Start)
	}
	if in.CRC != 0 {
		j.CRC32 = fmt.Sprintf("%08x", in.CRC)
	}
	for _, d := range in.Deps {
		j.Deps = append(j.Deps, d.Need().String())
	}
	return j
}

// MarshalJSON renders the plan for machines: steps with hex addresses, sizes and the
// CRC-32 of exactly the bytes each writes (not the bytes themselves), LED guidance as
// words, and the expected end state.
func (p *Plan) MarshalJSON() ([]byte, error) {
	j := jsonPlan{From: p.From, To: p.To, Direction: p.Direction, NeedsSteppingStone: p.NeedsSteppingStone,
		Windows: p.Windows, EstimatedSeconds: p.EstimatedDuration.Seconds(), Verify: p.Verify, ExpectMode: p.End.Mode, EndWhy: p.End.Why,
		Warnings: append([]string{}, p.Warnings...), Notes: append([]string{}, p.Notes...), Skipped: []jsonSkip{}, Steps: []jsonStep{}, Expect: []jsonInstalled{}}
	if p.Platform != nil {
		j.Platform, j.PlatformID = p.Platform.Name, p.Platform.ID
	}
	for _, s := range p.Skipped {
		js := jsonSkip{Slot: s.Slot, Why: s.Why}
		if s.Module != nil {
			js.Version = s.Module.Version
		}
		j.Skipped = append(j.Skipped, js)
	}
	for _, s := range p.Steps {
		js := jsonStep{ID: s.ID, Kind: s.Kind, Slot: s.Slot, Mode: s.Mode, Window: s.Window, Part: s.Part, Parts: s.Parts,
			EstimateSeconds: s.Estimate.Seconds(), Why: s.Why,
			LED: jsonLED{Expect: s.LED.Expect.String(), Text: s.LED.Text}}
		for _, r := range s.LED.IfNot {
			seen := r.Seen.String()
			if r.Seen.IsZero() {
				seen = "anything else"
			}
			js.LED.IfNot = append(js.LED.IfNot, jsonRemedy{Seen: seen, Do: r.Do})
		}
		if s.Module != nil {
			m := s.Module
			js.Module = &jsonModule{Name: m.SlotName(), Function: m.Function.String(), Index: m.Index, Version: m.Version,
				DeviceOS: moduleOS(m), Start: fmt.Sprintf("0x%08x", m.Start), Size: len(m.Data), CRC32: fmt.Sprintf("%08x", m.StoredCRC)}
		}
		if s.Kind == KindWrite || s.Kind == KindInvalidate || s.Kind == KindSetOTAFlag {
			js.Method = s.Method.String()
			js.Size = len(s.Data)
			js.DataCRC32 = fmt.Sprintf("%08x", crc32.ChecksumIEEE(s.Data))
			if s.Method.UsesDFU() {
				alt := s.Alt
				js.Alt = &alt
				js.Address = fmt.Sprintf("0x%08x", s.Address)
			}
		}
		for _, d := range s.Unmet {
			js.Unmet = append(js.Unmet, d.String())
		}
		if s.Expect != nil {
			e := toJSONInstalled(*s.Expect)
			js.Expect = &e
		}
		j.Steps = append(j.Steps, js)
	}
	for _, in := range p.Expected() {
		j.Expect = append(j.Expect, toJSONInstalled(in))
	}
	return json.Marshal(j)
}

// moduleOS names the Device OS release(s) a module belongs to: the release of a system
// part, the span of releases that ship a bootloader version.
func moduleOS(m *module.Module) string {
	if m.Function == platform.FuncBootloader && m.Index == 0 {
		if first, last, ok := module.DeviceOSRange(m.Function, m.Version); ok {
			if first == last {
				return first
			}
			return first + "-" + last
		}
		return ""
	}
	return m.DeviceOS()
}
