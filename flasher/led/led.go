// Package led describes what a Particle device's RGB status LED is doing and what that
// means, and what to tell a person at each step of a flash: the LED to expect, the buttons
// to press (with the board's own names) and what to do when the LED does something else.
//
// Every fact comes from shared/docs/particle-reference.md §7 (LED states, buttons and the
// bootloader's 1/3/6.5/10 s timings, boards without a user-reachable MODE button) and §2d
// (getting into and out of DFU). The package is a leaf: it imports only flasher/platform.
//
// A State is a colour and a rhythm. String and Parse convert it to and from words
// ("blinking yellow"), Meaning explains it in one sentence, and RGB, Frame and Pixel let a
// window or a terminal animate it.
package led

import (
	"math"
	"strings"
	"time"
)

// Color is the colour of the RGB LED.
type Color string

// The colours Device OS uses. ColorRainbow is the "nyan" identify signal, which cycles
// through every hue.
const (
	ColorOff     Color = "off"
	ColorWhite   Color = "white"
	ColorRed     Color = "red"
	ColorOrange  Color = "orange"
	ColorYellow  Color = "yellow"
	ColorGreen   Color = "green"
	ColorCyan    Color = "cyan"
	ColorBlue    Color = "blue"
	ColorMagenta Color = "magenta"
	ColorRainbow Color = "rainbow"
)

// Colors lists every Color, ColorOff first.
func Colors() []Color {
	return []Color{ColorOff, ColorWhite, ColorRed, ColorOrange, ColorYellow, ColorGreen,
		ColorCyan, ColorBlue, ColorMagenta, ColorRainbow}
}

// RGB is the colour at full brightness, for drawing. Rainbow gives red, its first hue; use
// State.Pixel to animate it. An unknown colour gives black.
func (c Color) RGB() (r, g, b uint8) {
	switch c {
	case ColorWhite:
		return 255, 255, 255
	case ColorRed, ColorRainbow:
		return 255, 0, 0
	case ColorOrange:
		return 255, 128, 0
	case ColorYellow:
		return 255, 255, 0
	case ColorGreen:
		return 0, 255, 0
	case ColorCyan:
		return 0, 255, 255
	case ColorBlue:
		return 0, 0, 255
	case ColorMagenta:
		return 255, 0, 255
	}
	return 0, 0, 0
}

// Pattern is the LED's rhythm.
type Pattern string

// The rhythms Device OS uses.
const (
	PatternSolid        Pattern = "solid"
	PatternBlinking     Pattern = "blinking"
	PatternFastBlinking Pattern = "fast-blinking"
	PatternBreathing    Pattern = "breathing"
	PatternSOS          Pattern = "sos" // ···−−−··· (panic)
	PatternOff          Pattern = "off"
)

// Patterns lists every Pattern.
func Patterns() []Pattern {
	return []Pattern{PatternSolid, PatternBlinking, PatternFastBlinking, PatternBreathing,
		PatternSOS, PatternOff}
}

// Rhythm of each pattern, as Frame draws it. These are drawing approximations, not
// measurements of Device OS.
const (
	BreathPeriod    = 3 * time.Second        // one dim-bright-dim breath
	BlinkPeriod     = time.Second            // blinking: on half, off half (~1 Hz)
	FastBlinkPeriod = 250 * time.Millisecond // fast blinking: ~4 Hz, 50 %
	SOSUnit         = 150 * time.Millisecond // one Morse unit: a dot; a dash is 3
	RainbowPeriod   = 2 * time.Second        // one trip round the colour wheel
)

// sosUnits is the SOS word in Morse units, alternating on and off: S (···), letter gap,
// O (−−−), letter gap, S (···), word gap before it repeats.
var sosUnits = []int{
	1, 1, 1, 1, 1, 3, // S
	3, 1, 3, 1, 3, 3, // O
	1, 1, 1, 1, 1, 7, // S + word gap
}

// SOSPeriod is how long one SOS (with its trailing word gap) lasts.
var SOSPeriod = func() time.Duration {
	n := 0
	for _, u := range sosUnits {
		n += u
	}
	return time.Duration(n) * SOSUnit
}()

// State is what the RGB LED is doing: a colour and a rhythm. The zero State means "not
// known / anything"; a State whose Color or Pattern is "off" is the dark LED.
type State struct {
	Color   Color
	Pattern Pattern
}

// The states Device OS and the bootloaders show (reference §7).
var (
	// Off: the LED is dark. Nothing distinguishes "no power" from "no bootloader" on the
	// RGB LED, so NoBootloader is the same value.
	Off = State{ColorOff, PatternOff}
	// Connected: breathing cyan, running and connected to the Particle cloud.
	Connected = State{ColorCyan, PatternBreathing}
	// Connecting: blinking cyan, network up and connecting to the cloud.
	Connecting = State{ColorCyan, PatternBlinking}
	// CloudHandshake: fast blinking cyan, the cloud handshake.
	CloudHandshake = State{ColorCyan, PatternFastBlinking}
	// NetworkConnecting: blinking green, joining Wi-Fi or the cellular network.
	NetworkConnecting = State{ColorGreen, PatternBlinking}
	// NetworkReady: breathing green, network up but not connected to the cloud.
	NetworkReady = State{ColorGreen, PatternBreathing}
	// NetworkOn: breathing (dark) blue, the network is on but not connected.
	NetworkOn = State{ColorBlue, PatternBreathing}
	// NetworkOff: breathing white, the network module is off.
	NetworkOff = State{ColorWhite, PatternBreathing}
	// Listening: blinking dark blue, listening mode.
	Listening = State{ColorBlue, PatternBlinking}
	// ClearingCredentials: fast blinking blue, clearing network credentials.
	ClearingCredentials = State{ColorBlue, PatternFastBlinking}
	// SafeMode: breathing magenta, Device OS connected but the application not running.
	SafeMode = State{ColorMagenta, PatternBreathing}
	// Updating: blinking magenta, an OTA/firmware update in progress; during the button
	// sequence also "release MODE now for safe mode".
	Updating = State{ColorMagenta, PatternBlinking}
	// ApplyingUpdate: solid magenta, the bootloader applying an update, or YMODEM.
	ApplyingUpdate = State{ColorMagenta, PatternSolid}
	// DFU: blinking yellow, the bootloader in DFU mode.
	DFU = State{ColorYellow, PatternBlinking}
	// FactoryRestore: fast blinking yellow, restoring the factory application (Gen3; a Gen2
	// device blinks green instead, see FactoryRestoreGen2 and FactoryRestoreFor).
	FactoryRestore = State{ColorYellow, PatternFastBlinking}
	// FactoryRestoreGen2: fast blinking green, the Gen2 factory restore; the same light
	// also means "getting a network address (DHCP)".
	FactoryRestoreGen2 = State{ColorGreen, PatternFastBlinking}
	// FactoryReset: fast blinking white, clearing settings (MODE held over 10 s at boot).
	FactoryReset = State{ColorWhite, PatternFastBlinking}
	// CloudError: orange blinks between blinking cyan, a cloud connection error.
	CloudError = State{ColorOrange, PatternBlinking}
	// Panic: red SOS, then N red blinks (the fault code, see PanicCode), then SOS again.
	Panic = State{ColorRed, PatternSOS}
	// Signaling: rainbow, the "nyan" identify signal (control request 230).
	Signaling = State{ColorRainbow, PatternSolid}
	// NoBootloader: the RGB LED stays dark because the bootloader is missing or corrupt
	// (a Gen2 board may show a dim blue D7 LED); only SWD/JTAG can fix it. It looks exactly
	// like Off, so it is the same value; Off's Meaning covers both.
	NoBootloader = Off
)

// All lists every distinct named State (NoBootloader is Off, so it appears once).
func All() []State {
	return []State{Off, Connected, Connecting, CloudHandshake, NetworkConnecting,
		NetworkReady, NetworkOn, NetworkOff, Listening, ClearingCredentials, SafeMode,
		Updating, ApplyingUpdate, DFU, FactoryRestore, FactoryRestoreGen2, FactoryReset,
		CloudError, Panic, Signaling}
}

// IsZero reports whether s is the zero State ("unknown" / "anything").
func (s State) IsZero() bool { return s == State{} }

// IsOff reports whether the LED is dark: colour off or pattern off.
func (s State) IsOff() bool {
	return !s.IsZero() && (s.Color == ColorOff || s.Pattern == PatternOff)
}

// Canonical returns s with every dark form folded into Off, so that equal-looking
// States compare equal.
func (s State) Canonical() State {
	if s.IsOff() {
		return Off
	}
	return s
}

// Is reports whether s and o look the same on the LED (both dark counts as the same).
func (s State) Is(o State) bool { return s.Canonical() == o.Canonical() }

// String is the state in words: "blinking yellow", "fast blinking white", "breathing
// magenta", "red SOS", "rainbow", "off"; the zero State is "unknown". Parse reads it back.
func (s State) String() string {
	switch {
	case s.IsZero():
		return "unknown"
	case s.IsOff():
		return "off"
	case s.Pattern == PatternSOS:
		return string(s.Color) + " SOS"
	case s.Color == ColorRainbow && s.Pattern == PatternSolid:
		return "rainbow"
	case s.Pattern == PatternFastBlinking:
		return "fast blinking " + string(s.Color)
	case s.Pattern == "":
		return string(s.Color)
	case s.Color == "":
		return string(s.Pattern)
	}
	return string(s.Pattern) + " " + string(s.Color)
}

var meanings = map[State]string{
	Off:                                 "Off: the device has no power, or its bootloader is missing or corrupt and only an SWD/JTAG debugger can restore it (a Gen2 board then shows at most a dim blue D7 LED).",
	Connected:                           "Connected: Device OS and the application are running and connected to the Particle cloud.",
	Connecting:                          "Connecting to the cloud: the device is on the network and is reaching the Particle cloud.",
	CloudHandshake:                      "Cloud handshake: the device has reached the Particle cloud and is completing the secure handshake.",
	NetworkConnecting:                   "Connecting to the network: the device is joining Wi-Fi or the cellular network.",
	NetworkReady:                        "Network up, cloud not connected: the device is on the network but not connected to the cloud, often because the application blocks or keeps the cloud off.",
	NetworkOn:                           "Network on, not connected: the radio is on but the device has not joined a network.",
	NetworkOff:                          "Network off: Device OS is running with the network module turned off.",
	Listening:                           "Listening mode: the device is waiting to be given network credentials or commands over USB serial.",
	ClearingCredentials:                 "Clearing credentials: MODE was held about 10 seconds in listening mode, so the device is erasing its saved network credentials.",
	SafeMode:                            "Safe mode: Device OS is running and connected to the cloud but the application is not, usually because a part it needs is missing or too old.",
	Updating:                            "Update in progress: firmware is being received over the air or over USB (while MODE is held after RESET, it means release MODE now for safe mode).",
	ApplyingUpdate:                      "Applying an update: the bootloader is installing new firmware (or a serial YMODEM transfer is running), so do not unplug the device.",
	DFU:                                 "DFU mode: the bootloader is waiting for firmware over USB.",
	FactoryRestore:                      "Factory restore: MODE was held past blinking yellow (over 6.5 seconds), so the bootloader is restoring the factory application (Gen3; Gen2 blinks green).",
	FactoryRestoreGen2:                  "Fast blinking green: the device is getting a network address (DHCP), or, on a Gen2 device whose MODE was held past blinking yellow, restoring its factory application.",
	FactoryReset:                        "Factory reset: MODE was held over 10 seconds at start-up, so the device is clearing its settings.",
	CloudError:                          "Cloud connection error: orange blinks between blinking cyan mean the cloud connection failed (1 blink decryption error, 2 no internet, 3 cloud unreachable or bad server key).",
	{ColorRed, PatternBlinking}:         "Cloud handshake error: a red blink between blinking cyan means the cloud handshake failed.",
	Panic:                               "Panic: the firmware crashed; the LED blinks SOS, then a number of red blinks giving the fault code, then SOS again.",
	Signaling:                           "Signaling: the device was asked to identify itself and is flashing rainbow colours.",
	{ColorMagenta, PatternFastBlinking}: "Fast blinking magenta: the device is busy with an update or a cloud operation; wait for it to finish.",
}

// Meaning is one plain sentence saying what the state means, e.g. "DFU mode: the
// bootloader is waiting for firmware over USB.". A colour and rhythm Device OS does not
// use gets a sentence saying so.
func (s State) Meaning() string {
	if s.IsZero() {
		return "Unknown: nobody has said what the LED is doing."
	}
	if m, ok := meanings[s.Canonical()]; ok {
		return m
	}
	return "Not a Device OS status signal (" + s.String() + "): the application may be driving the LED itself."
}

// RGB is the state's colour at full brightness, for drawing (black when off). Combine it
// with Frame, or use Pixel, to animate.
func (s State) RGB() (r, g, b uint8) {
	if s.IsOff() || s.IsZero() {
		return 0, 0, 0
	}
	return s.Color.RGB()
}

// Frame is the LED's brightness, 0..1, at time t into the pattern: breathing is a sine
// with period BreathPeriod, blinking is on for the first half of each BlinkPeriod,
// fast blinking likewise with FastBlinkPeriod, SOS is ···−−−··· in SOSUnit steps, solid
// is always 1 and off always 0. t may be any duration, negative included; the pattern
// repeats.
func (s State) Frame(t time.Duration) float64 {
	if s.IsZero() || s.IsOff() {
		return 0
	}
	switch s.Pattern {
	case PatternBreathing:
		ph := float64(mod(t, BreathPeriod)) / float64(BreathPeriod)
		return clamp01(0.5 - 0.5*math.Cos(2*math.Pi*ph))
	case PatternBlinking:
		return onFor(mod(t, BlinkPeriod) < BlinkPeriod/2)
	case PatternFastBlinking:
		return onFor(mod(t, FastBlinkPeriod) < FastBlinkPeriod/2)
	case PatternSOS:
		return sosFrame(mod(t, SOSPeriod))
	}
	return 1
}

// Pixel is the colour to draw at time t: RGB scaled by Frame, with the rainbow walking
// round the colour wheel once per RainbowPeriod.
func (s State) Pixel(t time.Duration) (r, g, b uint8) {
	f := s.Frame(t)
	if f == 0 {
		return 0, 0, 0
	}
	var rf, gf, bf float64
	if s.Color == ColorRainbow {
		rf, gf, bf = hue(float64(mod(t, RainbowPeriod)) / float64(RainbowPeriod))
	} else {
		r0, g0, b0 := s.RGB()
		rf, gf, bf = float64(r0)/255, float64(g0)/255, float64(b0)/255
	}
	return scale(rf, f), scale(gf, f), scale(bf, f)
}

// PanicFrame is the brightness of the full panic signal at time t: SOS, a pause, code red
// blinks (one per SOSUnit*4), a pause, repeating. code <= 0 gives plain SOS.
func PanicFrame(code int, t time.Duration) float64 {
	if code <= 0 {
		return Panic.Frame(t)
	}
	blink := 4 * SOSUnit
	period := SOSPeriod + time.Duration(code)*blink + 7*SOSUnit
	t = mod(t, period)
	if t < SOSPeriod {
		return sosFrame(t)
	}
	t -= SOSPeriod
	if t >= time.Duration(code)*blink {
		return 0
	}
	return onFor(t%blink < blink/2)
}

// panicCodes: DOS services/inc/panic.h via reference §7.
var panicCodes = []string{"", "HardFault", "NMIFault", "MemManage", "BusFault", "UsageFault",
	"InvalidLength", "Exit", "OutOfHeap", "SPIOverRun", "AssertionFailure", "InvalidCase",
	"PureVirtualCall", "StackOverflow", "HeapError", "SecureFault"}

// PanicCode names the fault a panic signals with n red blinks between the SOS
// (1 HardFault … 8 OutOfHeap … 13 StackOverflow … 15 SecureFault).
func PanicCode(n int) (string, bool) {
	if n <= 0 || n >= len(panicCodes) {
		return "", false
	}
	return panicCodes[n], true
}

func sosFrame(t time.Duration) float64 {
	on := true
	for _, u := range sosUnits {
		d := time.Duration(u) * SOSUnit
		if t < d {
			return onFor(on)
		}
		t -= d
		on = !on
	}
	return 0
}

func mod(t, p time.Duration) time.Duration {
	t %= p
	if t < 0 {
		t += p
	}
	return t
}

func onFor(on bool) float64 {
	if on {
		return 1
	}
	return 0
}

func clamp01(x float64) float64 { return math.Max(0, math.Min(1, x)) }

func scale(c, f float64) uint8 { return uint8(math.Round(clamp01(c*f) * 255)) }

// hue gives the fully saturated colour at position h (0..1) round the wheel.
func hue(h float64) (r, g, b float64) {
	x := h * 6
	switch int(x) % 6 {
	case 0:
		return 1, x, 0
	case 1:
		return 2 - x, 1, 0
	case 2:
		return 0, 1, x - 2
	case 3:
		return 0, 4 - x, 1
	case 4:
		return x - 4, 0, 1
	default:
		return 1, 0, 6 - x
	}
}

// Words Parse understands.
var (
	colorWords = map[string]Color{
		"white": ColorWhite, "red": ColorRed, "orange": ColorOrange, "yellow": ColorYellow,
		"green": ColorGreen, "cyan": ColorCyan, "teal": ColorCyan, "turquoise": ColorCyan,
		"blue": ColorBlue, "magenta": ColorMagenta, "purple": ColorMagenta,
		"pink": ColorMagenta, "violet": ColorMagenta, "rainbow": ColorRainbow,
	}
	patternWords = map[string]Pattern{
		"solid": PatternSolid, "steady": PatternSolid, "constant": PatternSolid,
		"blinking": PatternBlinking, "blink": PatternBlinking, "blinks": PatternBlinking,
		"flashing": PatternBlinking, "flash": PatternBlinking, "flashes": PatternBlinking,
		"breathing": PatternBreathing, "breathe": PatternBreathing, "breathes": PatternBreathing,
		"pulsing": PatternBreathing, "pulse": PatternBreathing, "pulses": PatternBreathing,
		"sos": PatternSOS,
	}
	fastWords  = map[string]bool{"fast": true, "rapid": true, "rapidly": true, "quick": true, "quickly": true}
	offWords   = map[string]bool{"off": true, "dark": true, "none": true, "nothing": true, "unlit": true}
	noiseWords = map[string]bool{"led": true, "rgb": true, "the": true, "is": true, "it": true,
		"slow": true, "slowly": true, "dim": true, "bright": true, "light": true, "a": true}
)

// Parse reads a State from words: String's output ("blinking yellow", "fast blinking
// white", "red SOS", "rainbow", "off") and common ways people say it ("flashing
// purple", "fast-blinking yellow", "pulsing light blue", "solid magenta", "dark", "SOS").
// A colour with no rhythm is solid. It reports false for anything it does not understand.
func Parse(s string) (State, bool) {
	s = strings.NewReplacer("-", " ", "_", " ", ",", " ").Replace(strings.ToLower(s))
	words := strings.Fields(s)
	if len(words) == 0 {
		return State{}, false
	}
	var c Color
	var p Pattern
	fast, off, dark := false, false, false
	setColor := func(x Color) bool {
		if c != "" && c != x {
			return false
		}
		c = x
		return true
	}
	setPattern := func(x Pattern) bool {
		if p != "" && p != x {
			return false
		}
		p = x
		return true
	}
	for i, w := range words {
		switch {
		case w == "light" && i+1 < len(words) && words[i+1] == "blue":
			if !setColor(ColorCyan) {
				return State{}, false
			}
		case w == "blue" && i > 0 && words[i-1] == "light":
			// handled with "light"
		case w == "dark":
			dark = true // "dark blue" is blue; "dark" alone is off
		case colorWords[w] != "":
			if !setColor(colorWords[w]) {
				return State{}, false
			}
		case patternWords[w] != "":
			if !setPattern(patternWords[w]) {
				return State{}, false
			}
		case fastWords[w]:
			fast = true
		case offWords[w]:
			off = true
		case noiseWords[w]:
		default:
			return State{}, false
		}
	}
	if off {
		if c != "" || p != "" || fast {
			return State{}, false
		}
		return Off, true
	}
	if fast {
		if p != "" && p != PatternBlinking {
			return State{}, false
		}
		p = PatternFastBlinking
	}
	switch {
	case c == "" && p == PatternSOS:
		c = ColorRed
	case c == "" && p == "" && dark:
		return Off, true
	case c == "":
		return State{}, false
	case p == "":
		p = PatternSolid
	}
	return State{c, p}, true
}
