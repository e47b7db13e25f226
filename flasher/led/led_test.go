package led

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// named is every exported State variable, NoBootloader included.
var named = map[string]State{
	"Off": Off, "Connected": Connected, "Connecting": Connecting, "CloudHandshake": CloudHandshake,
	"NetworkConnecting": NetworkConnecting, "NetworkReady": NetworkReady, "NetworkOn": NetworkOn,
	"NetworkOff": NetworkOff, "Listening": Listening, "ClearingCredentials": ClearingCredentials,
	"SafeMode": SafeMode, "Updating": Updating, "ApplyingUpdate": ApplyingUpdate, "DFU": DFU,
	"FactoryRestore": FactoryRestore, "FactoryRestoreGen2": FactoryRestoreGen2,
	"FactoryReset": FactoryReset, "CloudError": CloudError, "Panic": Panic,
	"Signaling": Signaling, "NoBootloader": NoBootloader,
}

func TestNamedStatesMatchReference(t *testing.T) {
	// reference §7
	want := map[string]string{
		"Off": "off", "Connected": "breathing cyan", "Connecting": "blinking cyan",
		"CloudHandshake": "fast blinking cyan", "NetworkConnecting": "blinking green",
		"NetworkReady": "breathing green", "NetworkOn": "breathing blue",
		"NetworkOff": "breathing white", "Listening": "blinking blue",
		"ClearingCredentials": "fast blinking blue", "SafeMode": "breathing magenta",
		"Updating": "blinking magenta", "ApplyingUpdate": "solid magenta", "DFU": "blinking yellow",
		"FactoryRestore": "fast blinking yellow", "FactoryRestoreGen2": "fast blinking green",
		"FactoryReset": "fast blinking white", "CloudError": "blinking orange", "Panic": "red SOS",
		"Signaling": "rainbow", "NoBootloader": "off",
	}
	require.Len(t, want, len(named))
	for name, s := range named {
		assert.Equal(t, want[name], s.String(), name)
	}
}

func TestAllStatesHaveDistinctWordsAndMeanings(t *testing.T) {
	all := All()
	// every named variable is in All (NoBootloader as Off)
	for name, s := range named {
		assert.Contains(t, all, s, name)
	}
	strs := map[string]State{}
	means := map[string]State{}
	for _, s := range all {
		str, m := s.String(), s.Meaning()
		assert.NotEmpty(t, str, "%#v", s)
		assert.NotEmpty(t, m, "%#v", s)
		assert.NotContains(t, m, "Not a Device OS status", "%v has no real meaning", s)
		assert.True(t, strings.HasSuffix(m, "."), "%q is a sentence", m)
		assert.Equal(t, 1, strings.Count(m, ". ")+1, "%q is one sentence", m)
		_, dup := strs[str]
		assert.False(t, dup, "duplicate String %q", str)
		_, dup = means[m]
		assert.False(t, dup, "duplicate Meaning %q", m)
		strs[str], means[m] = s, s
	}
	assert.Equal(t, "DFU mode: the bootloader is waiting for firmware over USB.", DFU.Meaning())
	assert.Contains(t, NoBootloader.Meaning(), "SWD/JTAG")
	assert.Contains(t, NoBootloader.Meaning(), "D7")
}

func TestStringEdgeCases(t *testing.T) {
	assert.Equal(t, "unknown", State{}.String())
	assert.NotEmpty(t, State{}.Meaning())
	assert.Equal(t, "off", State{ColorRed, PatternOff}.String())
	assert.Equal(t, "off", State{ColorOff, PatternBlinking}.String())
	assert.True(t, State{ColorOff, PatternSolid}.Is(Off))
	assert.Equal(t, Off.Meaning(), State{ColorOff, PatternSolid}.Meaning())
	odd := State{ColorOrange, PatternBreathing}
	assert.Equal(t, "breathing orange", odd.String())
	assert.Contains(t, odd.Meaning(), "breathing orange")
	assert.False(t, State{}.IsOff())
}

func TestParseRoundTripsEveryState(t *testing.T) {
	for _, s := range All() {
		got, ok := Parse(s.String())
		require.True(t, ok, s.String())
		assert.Equal(t, s, got, s.String())
	}
	// and every colour × pattern combination
	for _, c := range Colors() {
		for _, p := range Patterns() {
			s := State{c, p}
			got, ok := Parse(s.String())
			require.True(t, ok, s.String())
			assert.Equal(t, s.Canonical(), got, s.String())
		}
	}
}

func TestParseSynonyms(t *testing.T) {
	cases := map[string]State{
		"blinking yellow":          DFU,
		"Blinking Yellow":          DFU,
		"  flashing   yellow ":     DFU,
		"yellow blinking":          DFU,
		"fast-blinking yellow":     FactoryRestore,
		"fast_blinking yellow":     FactoryRestore,
		"rapidly flashing yellow":  FactoryRestore,
		"fast yellow":              FactoryRestore,
		"breathing magenta":        SafeMode,
		"pulsing purple":           SafeMode,
		"breathing light blue":     Connected,
		"blinking dark blue":       Listening,
		"slow blinking dark blue":  Listening,
		"solid magenta":            ApplyingUpdate,
		"magenta":                  ApplyingUpdate,
		"steady magenta":           ApplyingUpdate,
		"red SOS":                  Panic,
		"SOS":                      Panic,
		"sos red":                  Panic,
		"rainbow":                  Signaling,
		"off":                      Off,
		"dark":                     Off,
		"LED off":                  Off,
		"the led is blinking cyan": Connecting,
	}
	for in, want := range cases {
		got, ok := Parse(in)
		if assert.True(t, ok, in) {
			assert.Equal(t, want, got, in)
		}
	}
	for _, bad := range []string{"", "   ", "blinking", "fast", "chartreuse", "blinking red green",
		"breathing blinking cyan", "fast breathing cyan", "off yellow", "blinking yellow please"} {
		_, ok := Parse(bad)
		assert.False(t, ok, bad)
	}
}

func TestRGB(t *testing.T) {
	r, g, b := DFU.RGB()
	assert.Equal(t, [3]uint8{255, 255, 0}, [3]uint8{r, g, b})
	r, g, b = Connected.RGB()
	assert.Equal(t, [3]uint8{0, 255, 255}, [3]uint8{r, g, b})
	r, g, b = Off.RGB()
	assert.Equal(t, [3]uint8{0, 0, 0}, [3]uint8{r, g, b})
	r, g, b = State{ColorRed, PatternOff}.RGB()
	assert.Equal(t, [3]uint8{0, 0, 0}, [3]uint8{r, g, b})
	seen := map[[3]uint8]Color{}
	for _, c := range Colors() {
		if c == ColorOff || c == ColorRainbow {
			continue
		}
		r, g, b := c.RGB()
		k := [3]uint8{r, g, b}
		assert.NotEqual(t, [3]uint8{}, k, c)
		_, dup := seen[k]
		assert.False(t, dup, "%s shares its RGB", c)
		seen[k] = c
	}
}

// sample returns Frame at many times over several periods, negative times included.
func sample(s State) []float64 {
	var out []float64
	for t := -12 * time.Second; t <= 12*time.Second; t += 7 * time.Millisecond {
		out = append(out, s.Frame(t))
	}
	return out
}

func TestFrameRange(t *testing.T) {
	for _, c := range Colors() {
		for _, p := range Patterns() {
			s := State{c, p}
			fs := sample(s)
			lo, hi := fs[0], fs[0]
			for _, f := range fs {
				require.True(t, f >= 0 && f <= 1, "%v frame %v", s, f)
				lo, hi = min(lo, f), max(hi, f)
			}
			switch {
			case s.IsOff():
				assert.Equal(t, 0.0, hi, "%v", s)
			case p == PatternSolid:
				assert.Equal(t, 1.0, lo, "%v constant", s)
				assert.Equal(t, 1.0, hi, "%v constant", s)
			default:
				assert.Less(t, lo, 0.05, "%v gets dark", s)
				assert.Greater(t, hi, 0.95, "%v gets bright", s)
			}
		}
	}
	assert.Equal(t, 0.0, State{}.Frame(time.Second))
}

func TestFrameRhythm(t *testing.T) {
	// blinking ~1 Hz, 50 %
	assert.Equal(t, 1.0, DFU.Frame(100*time.Millisecond))
	assert.Equal(t, 0.0, DFU.Frame(600*time.Millisecond))
	assert.Equal(t, 1.0, DFU.Frame(1100*time.Millisecond))
	// fast ~4 Hz
	assert.Equal(t, 1.0, FactoryRestore.Frame(50*time.Millisecond))
	assert.Equal(t, 0.0, FactoryRestore.Frame(200*time.Millisecond))
	assert.Equal(t, 1.0, FactoryRestore.Frame(300*time.Millisecond))
	// breathing: smooth, dark at 0, bright half a period later, period ~3 s
	assert.InDelta(t, 0, SafeMode.Frame(0), 1e-9)
	assert.InDelta(t, 1, SafeMode.Frame(BreathPeriod/2), 1e-9)
	assert.InDelta(t, SafeMode.Frame(700*time.Millisecond), SafeMode.Frame(700*time.Millisecond+BreathPeriod), 1e-9)
	assert.InDelta(t, 3*time.Second, BreathPeriod, float64(time.Second))
	for tt := time.Duration(0); tt < BreathPeriod; tt += 10 * time.Millisecond {
		assert.InDelta(t, SafeMode.Frame(tt), SafeMode.Frame(tt+10*time.Millisecond), 0.02, "smooth")
	}
	// pattern repeats for negative time
	assert.Equal(t, DFU.Frame(300*time.Millisecond), DFU.Frame(300*time.Millisecond-5*BlinkPeriod))
}

// morse reads the on/off runs of Panic over one SOSPeriod, in units.
func morse(f func(time.Duration) float64, period time.Duration) string {
	var b strings.Builder
	run, on := 0, f(0) > 0.5
	flush := func() {
		switch {
		case on && run == 1:
			b.WriteString(".")
		case on && run == 3:
			b.WriteString("-")
		case on:
			b.WriteString("?")
		case run >= 7:
			b.WriteString(" / ")
		case run == 3:
			b.WriteString(" ")
		}
	}
	for t := SOSUnit / 2; t < period; t += SOSUnit {
		o := f(t) > 0.5
		if o != on {
			flush()
			run, on = 0, o
		}
		run++
	}
	flush()
	return b.String()
}

func TestSOS(t *testing.T) {
	assert.Equal(t, "... --- ... / ", morse(Panic.Frame, SOSPeriod))
	// with a code: SOS then 3 blinks
	fs := 0
	prev := 0.0
	start := SOSPeriod
	for tt := start; tt < start+3*4*SOSUnit+7*SOSUnit; tt += SOSUnit / 4 {
		f := PanicFrame(3, tt)
		if f > prev {
			fs++
		}
		prev = f
	}
	assert.Equal(t, 3, fs)
	assert.Equal(t, Panic.Frame(123*time.Millisecond), PanicFrame(0, 123*time.Millisecond))
	name, ok := PanicCode(1)
	assert.True(t, ok)
	assert.Equal(t, "HardFault", name)
	name, _ = PanicCode(13)
	assert.Equal(t, "StackOverflow", name)
	_, ok = PanicCode(16)
	assert.False(t, ok)
	_, ok = PanicCode(0)
	assert.False(t, ok)
}

func TestPixel(t *testing.T) {
	r, g, b := DFU.Pixel(100 * time.Millisecond)
	assert.Equal(t, [3]uint8{255, 255, 0}, [3]uint8{r, g, b})
	r, g, b = DFU.Pixel(600 * time.Millisecond)
	assert.Equal(t, [3]uint8{0, 0, 0}, [3]uint8{r, g, b})
	r, g, b = SafeMode.Pixel(BreathPeriod / 4)
	assert.InDelta(t, 128, int(r), 2)
	assert.Equal(t, uint8(0), g)
	assert.InDelta(t, 128, int(b), 2)
	// the rainbow changes hue
	hues := map[[3]uint8]bool{}
	for tt := time.Duration(0); tt < RainbowPeriod; tt += RainbowPeriod / 12 {
		r, g, b := Signaling.Pixel(tt)
		hues[[3]uint8{r, g, b}] = true
		assert.NotEqual(t, [3]uint8{}, [3]uint8{r, g, b})
	}
	assert.GreaterOrEqual(t, len(hues), 6)
}
