package listen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// Identity is what `i` tells: the device ID, and on cellular and Gen3 devices the HAL's
// extra facts under the names Device OS prints ("IMEI", "ICCID", "Serial Number",
// "Device Secret", "Cell Radio Version", or any other key the HAL adds).
type Identity struct {
	DeviceID string
	Extra    map[string]string
}

var (
	reShortID  = regexp.MustCompile(`Your (?:device|core) id is\s+([0-9a-fA-F]{24})`)
	reLongID   = regexp.MustCompile(`Device ID:[ \t]*([0-9a-fA-F]{24})`)
	reAnyID    = regexp.MustCompile(`(?:^|\s)([0-9a-fA-F]{24})(?:\s|$)`) // the CLI's fallback
	reKeyValue = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9 _.-]{0,40}):[ \t]*(.*)$`)
	reVersion  = regexp.MustCompile(`system firmware version:\s+([0-9A-Za-z.+-]+)`)
	reMAC      = regexp.MustCompile(`([0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5})`)
)

// parseIdentity reads both `i` forms: "Your device id is <id>" (and the Core's "Your core
// id is <id>") and "Device ID: <id>" followed by "Key: value" lines. Noise before the reply
// is skipped.
func parseIdentity(b []byte) (Identity, error) {
	text := string(b)
	if m := reLongID.FindStringSubmatchIndex(text); m != nil {
		id := Identity{DeviceID: strings.ToLower(text[m[2]:m[3]]), Extra: map[string]string{}}
		for _, ln := range strings.FieldsFunc(text[m[1]:], func(r rune) bool { return r == '\r' || r == '\n' }) {
			if kv := reKeyValue.FindStringSubmatch(strings.TrimSpace(ln)); kv != nil {
				id.Extra[kv[1]] = strings.TrimSpace(kv[2])
			}
		}
		return id, nil
	}
	if m := reShortID.FindStringSubmatch(text); m != nil {
		return Identity{DeviceID: strings.ToLower(m[1]), Extra: map[string]string{}}, nil
	}
	if m := reAnyID.FindStringSubmatch(text); m != nil {
		return Identity{DeviceID: strings.ToLower(m[1]), Extra: map[string]string{}}, nil
	}
	return Identity{}, fmt.Errorf("no device ID in the reply to `i` (%s)", describeReply(b))
}

func identityComplete(b []byte) bool {
	// The short form is one line; the long form has as many lines as the HAL has keys,
	// so only silence ends it.
	return reShortID.Match(b) && bytes.HasSuffix(b, []byte("\r\n"))
}

func parseVersion(b []byte) (string, error) {
	if m := reVersion.FindSubmatch(b); m != nil {
		return string(m[1]), nil
	}
	return "", fmt.Errorf("no version in the reply to `v` (%s)", describeReply(b))
}

func versionComplete(b []byte) bool {
	i := bytes.Index(b, []byte("system firmware version:"))
	return i >= 0 && bytes.Contains(b[i:], []byte("\r\n"))
}

func parseMAC(b []byte) (string, error) {
	if i := bytes.Index(b, []byte("MAC address is")); i >= 0 {
		if m := reMAC.FindSubmatch(b[i:]); m != nil {
			return strings.ToLower(string(m[1])), nil
		}
	}
	if m := reMAC.FindSubmatch(b); m != nil {
		return strings.ToLower(string(m[1])), nil
	}
	return "", fmt.Errorf("no MAC address in the reply to `m` (%s)", describeReply(b))
}

func macComplete(b []byte) bool {
	i := bytes.Index(b, []byte("MAC address is"))
	return i >= 0 && reMAC.Match(b[i:]) && bytes.HasSuffix(b, []byte("\r\n"))
}

// describeReply shows a reply in an error message: its size and its readable start.
func describeReply(b []byte) string {
	if len(b) == 0 {
		return "empty reply"
	}
	t := printable(b)
	if len(t) > 120 {
		t = t[:120] + "…"
	}
	return fmt.Sprintf("%d bytes: %q", len(b), t)
}

// Validity bits of ModuleInfo.Checked/Passed (hal/inc/ota_flash_hal.h MODULE_VALIDATION_*).
const (
	ValidIntegrity        = 1 << 1
	ValidDependencies     = 1 << 2
	ValidRange            = 1 << 3
	ValidPlatform         = 1 << 4
	ValidProduct          = 1 << 5
	ValidDependenciesFull = 1 << 6
)

// FunctionOther is the Function of a module whose function char is "_" (a module_function
// Device OS has no letter for) or a letter this code does not know; FunctionCode keeps it.
const FunctionOther platform.Function = 0xFF

// SystemInfo is the `s` reply: what the device itself says is in each module slot. It is
// the only way to see a listening-mode device's modules, and unlike a host-side parse it
// includes the device's own validity verdicts.
type SystemInfo struct {
	PlatformID int
	// Extra holds the other top-level keys (cellular: "imei", "iccid", ...).
	Extra   map[string]any
	Modules []ModuleInfo
}

// ModuleInfo is one slot of the `s` reply.
type ModuleInfo struct {
	MaxSize  int    // "s": slot size in bytes
	Location string // "l": "m" main, "f" factory, "b" backup, "t" scratchpad
	Checked  int    // "vc": Valid* bits the device checked
	Passed   int    // "vv": Valid* bits that passed
	// Function is the module_function from "f" (b→bootloader, s→system part, ...);
	// FunctionCode keeps the letter as sent.
	Function     platform.Function
	FunctionCode string
	Index        int    // "n" (a string on the wire)
	Version      int    // "v"
	Hash         string // "u": SHA-256 of a user part, hex
	Dependencies []Dependency
	// Empty is true for a slot without a valid module (no "f"/"n"/"v" in the JSON).
	Empty bool
}

// Valid reports whether every check the device made passed.
func (m ModuleInfo) Valid() bool { return m.Passed&m.Checked == m.Checked }

// Dependency is one entry of a module's "d" list.
type Dependency struct {
	Function     platform.Function
	FunctionCode string
	Index        int
	Version      int
}

// functionFromChar maps system_info.h module_function_string() back to module_function_t.
// Unknown letters become FunctionOther rather than an error, so one odd module does not
// hide the rest of the device's report.
func functionFromChar(s string) platform.Function {
	switch s {
	case "n":
		return platform.FuncNone
	case "r":
		return platform.FuncResource
	case "b":
		return platform.FuncBootloader
	case "m":
		return platform.FuncMono
	case "s":
		return platform.FuncSystem
	case "u":
		return platform.FuncUser
	case "c":
		return platform.FuncNCP
	case "a":
		return platform.FuncRadio
	}
	return FunctionOther
}

type jsonDep struct {
	F string          `json:"f"`
	N json.RawMessage `json:"n"`
	V json.Number     `json:"v"`
}

type jsonModule struct {
	S  json.Number     `json:"s"`
	L  string          `json:"l"`
	VC json.Number     `json:"vc"`
	VV json.Number     `json:"vv"`
	U  string          `json:"u"`
	F  *string         `json:"f"`
	N  json.RawMessage `json:"n"`
	V  json.Number     `json:"v"`
	D  []jsonDep       `json:"d"`
}

// errTruncated marks a reply whose JSON stops before it is complete.
var errTruncated = errors.New("JSON ends early")

// parseSystemInfo finds the module-info object in a reply (skipping noise before it) and
// decodes it.
func parseSystemInfo(b []byte) (*SystemInfo, error) {
	var firstErr error
	truncated := false
	for i := 0; i < len(b); i++ {
		if b[i] != '{' {
			continue
		}
		// The device ends the object with "\r\n"; without it a reply cut inside a string
		// reads as a syntax error instead of as the truncation it is.
		dec := json.NewDecoder(bytes.NewReader(bytes.TrimRight(b[i:], " \t\r\n")))
		dec.UseNumber()
		var top map[string]json.RawMessage
		err := dec.Decode(&top)
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				truncated = true
			} else if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if _, ok := top["m"]; !ok {
			if _, ok := top["p"]; !ok {
				continue
			}
		}
		return decodeSystemInfo(top)
	}
	switch {
	case truncated:
		return nil, fmt.Errorf("incomplete module info from the device (%d bytes, %w); the serial link may be dropping bytes: try another cable or USB port", len(b), errTruncated)
	case firstErr != nil:
		return nil, fmt.Errorf("module info from the device is not valid JSON (%s: %v); the serial link may be corrupting bytes: try another cable or USB port", describeReply(b), firstErr)
	}
	return nil, fmt.Errorf("no module info in the reply to `s` (%s)", describeReply(b))
}

func decodeSystemInfo(top map[string]json.RawMessage) (*SystemInfo, error) {
	si := &SystemInfo{Extra: map[string]any{}}
	for k, raw := range top {
		switch k {
		case "p":
			n, err := jsonInt(raw)
			if err != nil {
				return nil, fmt.Errorf("module info: platform \"p\": %w", err)
			}
			si.PlatformID = n
		case "m":
			var mods []jsonModule
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			if err := dec.Decode(&mods); err != nil {
				return nil, fmt.Errorf("module info: modules \"m\": %w", err)
			}
			for i, jm := range mods {
				m, err := decodeModule(jm)
				if err != nil {
					return nil, fmt.Errorf("module info: module %d: %w", i, err)
				}
				si.Modules = append(si.Modules, m)
			}
		default:
			var v any
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			if err := dec.Decode(&v); err == nil {
				si.Extra[k] = v
			}
		}
	}
	return si, nil
}

func decodeModule(jm jsonModule) (ModuleInfo, error) {
	m := ModuleInfo{Location: jm.L, Hash: jm.U}
	var err error
	if m.MaxSize, err = numberOr0(jm.S); err != nil {
		return m, fmt.Errorf("\"s\": %w", err)
	}
	if m.Checked, err = numberOr0(jm.VC); err != nil {
		return m, fmt.Errorf("\"vc\": %w", err)
	}
	if m.Passed, err = numberOr0(jm.VV); err != nil {
		return m, fmt.Errorf("\"vv\": %w", err)
	}
	if jm.F == nil {
		m.Empty = true
		m.Function = platform.FuncNone
	} else {
		m.FunctionCode = *jm.F
		m.Function = functionFromChar(*jm.F)
	}
	if len(jm.N) > 0 {
		if m.Index, err = jsonInt(jm.N); err != nil {
			return m, fmt.Errorf("\"n\": %w", err)
		}
	}
	if m.Version, err = numberOr0(jm.V); err != nil {
		return m, fmt.Errorf("\"v\": %w", err)
	}
	for _, jd := range jm.D {
		d := Dependency{FunctionCode: jd.F, Function: functionFromChar(jd.F)}
		if len(jd.N) > 0 {
			if d.Index, err = jsonInt(jd.N); err != nil {
				return m, fmt.Errorf("dependency \"n\": %w", err)
			}
		}
		if d.Version, err = numberOr0(jd.V); err != nil {
			return m, fmt.Errorf("dependency \"v\": %w", err)
		}
		m.Dependencies = append(m.Dependencies, d)
	}
	return m, nil
}

func numberOr0(n json.Number) (int, error) {
	if n == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	return int(v), err
}

// jsonInt reads a number that Device OS may send as a number or as a string ("n": "1").
func jsonInt(raw json.RawMessage) (int, error) {
	s := strings.TrimSpace(string(raw))
	if uq, err := strconv.Unquote(s); err == nil {
		s = uq
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not an integer: %s", raw)
	}
	return int(v), nil
}

func moduleInfoComplete(b []byte) bool {
	if !bytes.HasSuffix(b, []byte("}\r\n")) {
		return false
	}
	_, err := parseSystemInfo(b)
	return err == nil
}
