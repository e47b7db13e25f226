package run

import (
	"encoding/json"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/led"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// Event names (Event.Event). The JSON form is an interface scripts rely on: `pflash flash
// --json` prints one Event per line and always ends with a "done" one.
const (
	// EvPlan: the plan is made (From, To, Steps, EstimateSeconds, Message lists warnings).
	EvPlan = "plan"
	// EvResume: an earlier run to the same target did not finish; Message says where it
	// stopped.
	EvResume = "resume"
	// EvStep: a step starts (Step, StepIndex, Steps, Title).
	EvStep = "step"
	// EvProgress: bytes moved in the current step, with per-step and overall fractions and
	// the estimated time left.
	EvProgress = "progress"
	// EvLED: what the LED should do now, and what to do if it does not.
	EvLED = "led"
	// EvWaiting: the runner waits for something (Waiting) for at most TimeoutSeconds;
	// with Buttons set a person has to press them (LED says how).
	EvWaiting = "waiting"
	// EvStepDone: a step finished (or Skipped, when the device already showed its effect).
	EvStepDone = "step-done"
	// EvRetry: something failed and is tried again (Error says what).
	EvRetry = "retry"
	// EvVerified: verification passed (Modules).
	EvVerified = "verified"
	// EvFailed: the run failed (Error, Remedy, State says what the device is left in).
	EvFailed = "failed"
	// EvDone: the last event: Result "ok" or "failed", Error, Remedy, Modules.
	EvDone = "done"
)

// Results of EvDone.
const (
	ResultOK     = "ok"
	ResultFailed = "failed"
)

// Event is one thing that happened during a run, for a person (Message, LED) and for a
// program (the other fields). It marshals to one flat JSON object.
type Event struct {
	Event    string    `json:"event"`
	Time     time.Time `json:"time"`
	DeviceID string    `json:"device_id,omitempty"`

	// The step the event is about: its plan ID, 1-based position, the count, its kind and
	// a one-line title.
	StepID    string `json:"step_id,omitempty"`
	StepIndex int    `json:"step_index,omitempty"`
	Steps     int    `json:"steps,omitempty"`
	Kind      string `json:"kind,omitempty"`
	Title     string `json:"title,omitempty"`
	Skipped   bool   `json:"skipped,omitempty"`

	// Progress: bytes of the current step, its fraction, the plan's fraction (weighted by
	// the steps' estimates) and the estimated time left.
	Phase        string  `json:"phase,omitempty"`
	Bytes        int     `json:"bytes,omitempty"`
	Total        int     `json:"total,omitempty"`
	StepFraction float64 `json:"step_fraction,omitempty"`
	Fraction     float64 `json:"fraction"`
	ETASeconds   float64 `json:"eta_seconds,omitempty"`

	// LED is the guidance for this moment.
	LED *LEDGuidance `json:"led,omitempty"`

	// Waiting says what the runner waits for, TimeoutSeconds for how long at most;
	// Buttons is set when only a person can make it happen.
	Waiting        string  `json:"waiting,omitempty"`
	TimeoutSeconds float64 `json:"timeout_seconds,omitempty"`
	Buttons        bool    `json:"buttons,omitempty"`

	// Mode is the device's mode when known ("dfu", "normal", "safe", "listening").
	Mode string `json:"mode,omitempty"`

	// Plan summary (EvPlan).
	From            string  `json:"from,omitempty"`
	To              string  `json:"to,omitempty"`
	Direction       string  `json:"direction,omitempty"`
	EstimateSeconds float64 `json:"estimate_seconds,omitempty"`
	Windows         int     `json:"windows,omitempty"`
	// Plan is the whole plan as `pflash plan --json` prints it (EvPlan).
	Plan json.RawMessage `json:"plan,omitempty"`

	Message string `json:"message,omitempty"`

	// Result is ResultOK or ResultFailed (EvDone only); Error and Remedy say why a run
	// failed; State says what the device is left in.
	Result string `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`
	Remedy string `json:"remedy,omitempty"`
	State  string `json:"state,omitempty"`

	// Modules are the device's modules as last read (EvVerified, EvDone), in the shape
	// `pflash inspect --device ID --json` prints them.
	Modules []state.Module `json:"modules,omitempty"`
}

// LEDGuidance is led.Guidance in words.
type LEDGuidance struct {
	Expect string      `json:"expect"`
	Text   string      `json:"text"`
	IfNot  []LEDRemedy `json:"if_not,omitempty"`
}

// LEDRemedy is one led.Remedy in words.
type LEDRemedy struct {
	Seen string `json:"seen"`
	Do   string `json:"do"`
}

// guidance converts led.Guidance for an event; nil when there is nothing to say.
func guidance(g led.Guidance) *LEDGuidance {
	if g.Expect.IsZero() && g.Text == "" {
		return nil
	}
	out := &LEDGuidance{Expect: g.Expect.String(), Text: g.Text}
	for _, r := range g.IfNot {
		seen := r.Seen.String()
		if r.Seen.IsZero() {
			seen = "anything else"
		}
		out.IfNot = append(out.IfNot, LEDRemedy{Seen: seen, Do: r.Do})
	}
	return out
}
