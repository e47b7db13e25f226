package led

import (
	"strings"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/words"
)

// Goal is the mode a step wants the device in.
type Goal int

// The goals a flashing step can have.
const (
	// GoalDFU: the bootloader's DFU mode (blinking yellow), for writing modules over USB.
	GoalDFU Goal = iota + 1
	// GoalSafeMode: safe mode (breathing magenta): Device OS runs, the application does not.
	GoalSafeMode
	// GoalListening: listening mode (blinking dark blue), for the serial console and
	// control-request updates.
	GoalListening
	// GoalReset: restart the device (tap RESET) and let it run its firmware.
	GoalReset
	// GoalNormal: the device running its firmware normally (breathing cyan once connected),
	// e.g. after leaving DFU mode at the end of a flash.
	GoalNormal
)

// Goals lists every Goal.
func Goals() []Goal { return []Goal{GoalDFU, GoalSafeMode, GoalListening, GoalReset, GoalNormal} }

// String names the goal: "DFU mode", "safe mode", "listening mode", "reset", "normal".
func (g Goal) String() string {
	switch g {
	case GoalDFU:
		return "DFU mode"
	case GoalSafeMode:
		return "safe mode"
	case GoalListening:
		return "listening mode"
	case GoalReset:
		return "reset"
	case GoalNormal:
		return "normal"
	}
	return "unknown goal"
}

// Target is the LED that shows the goal was reached (breathing cyan for GoalReset and
// GoalNormal, which needs the cloud; blinking green or cyan before that is the device
// still connecting). An unknown goal gives the zero State.
func (g Goal) Target() State {
	switch g {
	case GoalDFU:
		return DFU
	case GoalSafeMode:
		return SafeMode
	case GoalListening:
		return Listening
	case GoalReset, GoalNormal:
		return Connected
	}
	return State{}
}

// Button names used in Step.Hold. The Photon labels MODE "SETUP"; TimelineFor renames it.
const (
	ButtonMode  = "MODE"
	ButtonReset = "RESET"
)

// ModeButton is what the board calls its MODE button (platform data: "SETUP" on the
// Photon), "MODE" for a nil platform.
func ModeButton(p *platform.Platform) string { return p.ModeButton() }

// FactoryRestoreFor is the factory-restore light on p (platform data: fast blinking green
// on Gen2, fast blinking yellow otherwise), yellow for a nil platform.
func FactoryRestoreFor(p *platform.Platform) State {
	if p != nil && p.LED.FactoryRestoreGreen {
		return FactoryRestoreGen2
	}
	return FactoryRestore
}

// board is what the texts need to know about a platform: every fact comes from its data.
type board struct {
	name    string // "Boron", "device"
	mode    string // "MODE" or "SETUP"
	buttons platform.Buttons
	led     platform.LEDFacts
	known   bool // false for a nil platform: the texts cover every board
}

// hasMode: a person can reach MODE on the board itself.
func (b board) hasMode() bool { return b.buttons.Reach == platform.OnBoard }

func boardOf(p *platform.Platform) board {
	if p == nil {
		return board{name: "device", mode: ButtonMode}
	}
	name := p.DisplayName
	if name == "" {
		name = p.Name
	}
	if name == "" {
		name = "device"
	}
	return board{name: name, mode: p.ModeButton(), buttons: p.Buttons, led: p.LED, known: true}
}

// sequence is the button recipe for goal, starting lower case, with m as MODE's name.
func sequence(m string, goal Goal) string {
	switch goal {
	case GoalDFU:
		return "hold down " + m + ", tap RESET, and keep holding " + m + " while the LED blinks magenta; " +
			"release " + m + " as soon as it blinks yellow (after about 3 seconds). Holding on past 6.5 s " +
			"restores the factory firmware (if there is one), and past 10 s clears the settings"
	case GoalSafeMode:
		return "hold down " + m + ", tap RESET, and keep holding " + m + " until the LED blinks magenta " +
			"(about 1 second), then release it at once, before it turns yellow. The device then connects " +
			"(blinking green, then cyan) and breathes magenta"
	case GoalListening:
		return "while the device is running, hold " + m + " (without touching RESET) for about 3 seconds " +
			"until the LED blinks dark blue, then let go. Holding " + m + " for about 10 seconds in " +
			"listening mode clears the saved network credentials"
	case GoalReset:
		return "tap RESET once, without touching " + m
	case GoalNormal:
		return "tap RESET once, without touching " + m + ", and let the device start its firmware"
	}
	return "tap RESET once"
}

// usb is the USB alternative to the buttons for goal.
func usb(b board, goal Goal) string {
	switch goal {
	case GoalDFU:
		s := "use USB: Particle Flasher can switch it to DFU mode for you"
		if b.led.SerialDFU {
			s += "; with Device OS older than 2.0.0 the Particle CLI cannot do this, but opening its " +
				"USB serial port at 14400 baud still does"
		}
		return s
	case GoalSafeMode:
		return "use USB: Particle Flasher can switch it to safe mode for you"
	case GoalListening:
		return "use USB: Particle Flasher can switch it to listening mode for you"
	case GoalNormal:
		return "use USB: Particle Flasher restarts it for you (a reset over USB makes the bootloader " +
			"leave DFU mode)"
	}
	return "use USB: Particle Flasher can restart it for you"
}

func byHand(goal Goal) string {
	switch goal {
	case GoalDFU, GoalSafeMode, GoalListening:
		return "put into " + goal.String() + " by hand"
	}
	return "restarted by hand"
}

// Buttons is the button sequence for goal in words, with the board's own names: MODE is
// "SETUP" on the Photon. For a board without a user-reachable MODE button (P1, the SoMs,
// E404X, Tracker SoM / Tracker One / Monitor One, ...) it says that MODE and RESET are
// carrier-board signals, or that the unit cannot be put in that mode by hand, and to use
// USB instead. A nil platform gets the generic MODE/RESET recipe.
func Buttons(p *platform.Platform, goal Goal) string {
	b := boardOf(p)
	seq := sequence(b.mode, goal)
	switch {
	case b.buttons.Reach == platform.OnBoard:
		s := words.UpperFirst(seq) + "."
		if b.buttons.Note != "" {
			s += " (" + b.buttons.Note + ")"
		}
		return s
	case b.buttons.Reach == platform.CarrierPins:
		return "The " + b.name + " has no MODE or RESET button of its own: they are signals for its carrier " +
			"board. If your carrier board has buttons for them, " + seq + ". Otherwise " + usb(b, goal) + "."
	case b.buttons.Enclosed != "":
		return b.buttons.Enclosed + ", so it cannot be " + byHand(goal) + ". Instead " + usb(b, goal) + "."
	}
	return "The " + b.name + " has no MODE button you can reach, so it cannot be " + byHand(goal) +
		". Instead " + usb(b, goal) + "."
}

// Guidance is what to tell a person at a step: the LED to expect, a sentence saying so,
// and what to do if the LED does something else.
type Guidance struct {
	// Expect is the LED that means the step worked.
	Expect State
	// Text says it in words: "Your Boron should now blink yellow."
	Text string
	// IfNot lists remedies, most specific first; one with a zero Seen, last, covers
	// anything else.
	IfNot []Remedy
}

// Remedy is what to do when the LED shows Seen instead of the expected state.
type Remedy struct {
	// Seen is the LED this remedy is for; the zero State means anything else.
	Seen State
	// Do is the instruction: "Keep holding MODE: ...".
	Do string
}

// RemedyFor picks the remedy for what the LED shows: the one for seen, else the catch-all.
// It reports false when seen is what was expected (nothing to do) or nothing fits.
func (g Guidance) RemedyFor(seen State) (Remedy, bool) {
	if seen.Is(g.Expect) {
		return Remedy{}, false
	}
	var fallback *Remedy
	for i, r := range g.IfNot {
		if r.Seen.IsZero() {
			if fallback == nil {
				fallback = &g.IfNot[i]
			}
			continue
		}
		if r.Seen.Is(seen) {
			return r, true
		}
	}
	if fallback != nil {
		return *fallback, true
	}
	return Remedy{}, false
}

// Expect is the guidance for reaching goal on p (nil p: a generic device): the LED that
// shows it worked, a sentence for the person, and remedies for the other things the LED
// may do, using the board's own button names and its USB alternative when it has no
// reachable MODE button. An unknown goal gives a zero Expect and no remedies.
func Expect(p *platform.Platform, goal Goal) Guidance {
	b := boardOf(p)
	m := b.mode
	retry := Buttons(p, goal)
	off := offRemedy(b)
	held := func(what string) string {
		return m + " was held too long, so the device is " + what + ". Let it finish, then start again. " + retry
	}
	restore := []State{FactoryRestoreFor(p)}
	if p == nil {
		restore = []State{FactoryRestore, FactoryRestoreGen2}
	}
	var g Guidance
	switch goal {
	case GoalDFU:
		g.Text = "Your " + b.name + " should now blink yellow."
		running := "It is still running its firmware: it never restarted into the bootloader with " + m +
			" held down. " + retry
		safe := "It started in safe mode because " + m + " was released while the LED blinked magenta. " +
			"Try again and keep holding " + m + " until it blinks yellow. " + retry
		listening := "It is in listening mode because " + m + " was held without tapping RESET. " + retry
		if !b.hasMode() {
			running = "It is still running its firmware, not the DFU bootloader. " + retry
			safe = "It is in safe mode (Device OS runs, the application does not), not DFU mode. " + retry
			listening = "It is in listening mode, not DFU mode. " + retry
		}
		keep := "Keep holding " + m + ": after about 3 seconds of blinking magenta it turns yellow. " +
			"(If you are not holding " + m + ", an update is in progress: let it finish first.)"
		if !b.hasMode() {
			keep = "An update is in progress: let it finish, then try again. (If MODE is being held on the carrier " +
				"board, keep holding it until the LED blinks yellow.)"
		}
		g.IfNot = append(g.IfNot,
			Remedy{Updating, keep},
			Remedy{SafeMode, safe},
			Remedy{Connected, running},
			Remedy{NetworkConnecting, running},
			Remedy{Connecting, running},
			Remedy{CloudHandshake, running},
			Remedy{NetworkReady, running},
			Remedy{NetworkOn, running},
			Remedy{NetworkOff, running},
			Remedy{Listening, listening},
		)
		for _, s := range restore {
			g.IfNot = append(g.IfNot, Remedy{s, held("restoring its factory firmware")})
		}
		g.IfNot = append(g.IfNot,
			Remedy{FactoryReset, held("clearing its settings")},
			Remedy{ApplyingUpdate, "The bootloader is applying an update: wait until it restarts (do not unplug it), then try again."},
			Remedy{Panic, panicDFU(b)},
			Remedy{Off, off},
			Remedy{State{}, "Start again. " + retry},
		)
	case GoalSafeMode:
		g.Text = "Your " + b.name + " should now breathe magenta (it blinks green, then cyan, while it connects)."
		release := "Release " + m + " now."
		if !b.hasMode() {
			release = "If MODE is being held on the carrier board, release it now; otherwise an update is in " +
				"progress: let it finish, then try again."
		}
		g.IfNot = append(g.IfNot,
			Remedy{Updating, release},
			Remedy{DFU, m + " was held too long, so it went into DFU mode. Tap RESET, then try again and release " +
				m + " while the LED still blinks magenta. " + retry},
			Remedy{NetworkConnecting, connectingSafe(retry)},
			Remedy{Connecting, connectingSafe(retry)},
			Remedy{CloudHandshake, connectingSafe(retry)},
			Remedy{Connected, "It started normally, not in safe mode: " + m + " was released too early or not held " +
				"when RESET was released. " + retry},
			Remedy{Listening, "It is in listening mode: " + m + " was held without tapping RESET, or the device has no " +
				"network set up (safe mode needs the cloud). Tap RESET and try again; if it comes back to blinking " +
				"blue, set up its network first."},
		)
		for _, s := range restore {
			g.IfNot = append(g.IfNot, Remedy{s, held("restoring its factory firmware")})
		}
		g.IfNot = append(g.IfNot,
			Remedy{FactoryReset, held("clearing its settings")},
			Remedy{Panic, "It crashes even though safe mode does not run the application, so Device OS itself is " +
				"broken: put it in DFU mode and flash Device OS again. " + Buttons(p, GoalDFU)},
			Remedy{Off, off},
			Remedy{State{}, "Start again. " + retry},
		)
	case GoalListening:
		g.Text = "Your " + b.name + " should now blink dark blue."
		notYet := "It is not in listening mode yet: hold " + m + " for a full 3 seconds. " + retry
		if !b.hasMode() {
			notYet = "It is not in listening mode yet. " + retry
		}
		bootloader := "RESET was tapped while " + m + " was held, which starts the bootloader instead. Tap RESET " +
			"alone, wait for the device to start, then hold only " + m + ". " + retry
		g.IfNot = append(g.IfNot,
			Remedy{Connected, notYet},
			Remedy{NetworkConnecting, notYet},
			Remedy{Connecting, notYet},
			Remedy{NetworkReady, notYet},
			Remedy{NetworkOn, notYet},
			Remedy{NetworkOff, notYet},
			Remedy{SafeMode, notYet},
			Remedy{ClearingCredentials, m + " was held about 10 seconds, so it is clearing its saved network " +
				"credentials. Let it finish; it stays in listening mode, and its network will need setting up again."},
			Remedy{Updating, bootloader},
			Remedy{DFU, bootloader},
			Remedy{Panic, "The application crashes before the device can listen: start it in safe mode first, " +
				"then enter listening mode from there. " + Buttons(p, GoalSafeMode)},
			Remedy{Off, off},
			Remedy{State{}, "Start again. " + retry},
		)
	case GoalReset, GoalNormal:
		if goal == GoalReset {
			g.Text = "Your " + b.name + " should restart and, once it reaches the cloud, breathe cyan (it blinks green, then cyan, while it connects)."
		} else {
			g.Text = "Your " + b.name + " should now run its firmware and, once it reaches the cloud, breathe cyan (it blinks green, then cyan, while it connects)."
		}
		again := Buttons(p, GoalReset)
		dfu := "It is still in DFU mode. "
		if b.hasMode() {
			dfu += "Make sure " + m + " is not held down and tap RESET. "
		} else {
			dfu += "Restart it: " + again + " "
		}
		dfu += "If it keeps coming back to blinking yellow, the firmware on it is incomplete: flash it again."
		g.IfNot = append(g.IfNot,
			Remedy{DFU, dfu},
			Remedy{ApplyingUpdate, "The bootloader is applying an update: wait and do not unplug it; updating the " +
				"network coprocessor can take several minutes."},
			Remedy{Updating, "An update is in progress: wait for it to finish."},
			Remedy{NetworkConnecting, "It is joining the network; wait. If it keeps blinking green, the firmware is " +
				"running but cannot reach the network (Wi-Fi credentials, antenna, SIM or coverage): flashing worked."},
			Remedy{Connecting, "It is connecting to the cloud; wait. If it keeps blinking cyan, check that the network " +
				"lets it reach the Internet: flashing worked."},
			Remedy{CloudHandshake, "It is finishing the cloud handshake; wait."},
			Remedy{CloudError, "The firmware runs but the cloud connection fails (decryption error, no Internet, or " +
				"cloud unreachable / bad server key): flashing worked; check the network and the device's keys."},
			Remedy{NetworkReady, "The firmware runs and the network is up but it is not connected to the cloud, often " +
				"because the application keeps the cloud off or blocks: flashing worked."},
			Remedy{Listening, "The firmware runs but has no network set up (Wi-Fi credentials or an active SIM), so it " +
				"waits in listening mode: flashing worked; set up its network."},
			Remedy{SafeMode, "Device OS runs but the application does not: a part it needs (Device OS, bootloader, " +
				"SoftDevice, ...) is missing or too old. Flash the missing parts, or leave it online so the cloud " +
				"can send them."},
			Remedy{Panic, "The application crashes at start-up (count the red blinks between the SOS for the fault " +
				"code). Put it in safe mode and flash a working application: " + Buttons(p, GoalSafeMode)},
			Remedy{Off, off},
			Remedy{State{}, "Restart it and watch the LED for a minute. " + again},
		)
	default:
		g.Text = "Watch your " + b.name + "'s LED."
		return g
	}
	g.Expect = goal.Target()
	return g
}

func connectingSafe(retry string) string {
	return "Wait: safe mode only breathes magenta once the device reaches the cloud. If it ends up breathing " +
		"cyan instead, it started normally. " + retry
}

func offRemedy(b board) string {
	s := "Check that it has power and that the USB cable and port work (try another), then reset it. If the LED " +
		"stays dark while it has power, the bootloader is missing or corrupt and only an SWD/JTAG debugger can " +
		"restore it"
	switch {
	case b.led.D7WhenDark:
		s += " (on this board a dim blue D7 LED with the RGB LED dark means the same)"
	case !b.known:
		s += " (a Gen2 board may show only a dim blue D7 LED)"
	}
	return s + "."
}

func panicDFU(b board) string {
	if b.buttons.Reach == platform.OnBoard {
		return "The firmware crashes (red SOS), but the bootloader runs before it, so the buttons still work: " +
			sequence(b.mode, GoalDFU) + "."
	}
	return "The firmware crashes (red SOS), so it may not answer over USB. The bootloader runs before the " +
		"firmware, so MODE and RESET still work where they can be reached: " + sequence(b.mode, GoalDFU) +
		". Otherwise use an SWD/JTAG debugger."
}

// Step is one moment of the button-sequence animation: from At on, the buttons in Hold
// are held down, the LED shows LED, and Say is the caption.
type Step struct {
	At   time.Duration
	Hold []string
	LED  State
	Say  string
}

// Timeline is the button sequence for goal as an animation, with the generic names MODE
// and RESET (see TimelineFor for the board's own names). DFU, safe mode and listening
// start from a device breathing cyan; reset and normal start from DFU mode, the usual
// case at the end of a flash. The bootloader timings (magenta after 1 s, yellow after 3 s
// of MODE held) follow reference §7; the connecting times are illustrative. An unknown
// goal gives nil.
func Timeline(goal Goal) []Step {
	s := time.Second
	ms := time.Millisecond
	m, r := ButtonMode, ButtonReset
	press := []Step{
		{0, nil, Connected, "The device is running: breathing cyan."},
		{1 * s, []string{m}, Connected, "Press and hold MODE."},
		{1500 * ms, []string{m, r}, Off, "Keep holding MODE and press RESET."},
		{2 * s, []string{m}, Off, "Release RESET; keep holding MODE."},
	}
	connect := func(at time.Duration, final State, say string) []Step {
		return []Step{
			{at, nil, NetworkConnecting, "It starts and joins the network: blinking green."},
			{at + 2*s, nil, Connecting, "It connects to the cloud: blinking cyan."},
			{at + 4*s, nil, final, say},
		}
	}
	switch goal {
	case GoalDFU:
		return append(press,
			Step{3 * s, []string{m}, Updating, "It blinks magenta: keep holding MODE."},
			Step{5 * s, []string{m}, DFU, "It blinks yellow: release MODE now."},
			Step{5500 * ms, nil, DFU, "Blinking yellow: DFU mode."},
		)
	case GoalSafeMode:
		steps := append(press, Step{3 * s, []string{m}, Updating, "It blinks magenta: release MODE now."})
		return append(steps, connect(3500*ms, SafeMode, "Breathing magenta: safe mode.")...)
	case GoalListening:
		return []Step{
			{0, nil, Connected, "The device is running: breathing cyan."},
			{1 * s, []string{m}, Connected, "Press and hold MODE (not RESET)."},
			{4 * s, []string{m}, Listening, "After about 3 seconds it blinks dark blue: release MODE."},
			{4500 * ms, nil, Listening, "Blinking dark blue: listening mode."},
		}
	case GoalReset:
		steps := []Step{
			{0, nil, DFU, "The device is in DFU mode: blinking yellow."},
			{1 * s, []string{r}, Off, "Tap RESET (leave MODE alone)."},
		}
		return append(steps, connect(1300*ms, Connected, "Breathing cyan: running and connected.")...)
	case GoalNormal:
		steps := []Step{{0, nil, DFU, "The device is in DFU mode: blinking yellow."}}
		steps = append(steps, connect(1*s, Connected, "Breathing cyan: running and connected.")...)
		steps[1].Say = "It leaves DFU mode, starts its firmware and joins the network: blinking green."
		return steps
	}
	return nil
}

// TimelineFor is Timeline with p's own button names (SETUP on the Photon). It is nil when
// the sequence needs buttons and p has no user-reachable MODE button: show Buttons' text
// instead. A nil platform gets Timeline.
func TimelineFor(p *platform.Platform, goal Goal) []Step {
	steps := Timeline(goal)
	if !p.HasModeButton() {
		for _, s := range steps {
			if len(s.Hold) > 0 {
				return nil
			}
		}
		return steps
	}
	mode := ModeButton(p)
	if mode == ButtonMode {
		return steps
	}
	for i := range steps {
		hold := make([]string, len(steps[i].Hold))
		for j, h := range steps[i].Hold {
			if h == ButtonMode {
				h = mode
			}
			hold[j] = h
		}
		if steps[i].Hold == nil {
			hold = nil
		}
		steps[i].Hold = hold
		steps[i].Say = strings.ReplaceAll(steps[i].Say, ButtonMode, mode)
	}
	return steps
}

// StepAt is the step showing at time t: the last one whose At is not after t (the first
// one before the start). nil or empty steps give the zero Step.
func StepAt(steps []Step, t time.Duration) Step {
	if len(steps) == 0 {
		return Step{}
	}
	cur := steps[0]
	for _, s := range steps[1:] {
		if s.At > t {
			break
		}
		cur = s
	}
	return cur
}

// Duration is when the last step starts; an animation can hold that frame for a moment
// and loop.
func Duration(steps []Step) time.Duration {
	if len(steps) == 0 {
		return 0
	}
	return steps[len(steps)-1].At
}
