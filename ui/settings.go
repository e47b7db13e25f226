package ui

import (
	"fmt"
	"image/color"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/particle-flasher/particle-flasher/assets"
	cache "github.com/particle-flasher/particle-flasher/firmware-cache"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
)

// Preference keys. The app keeps its settings in Fyne's preferences so they survive a
// restart; runs and the factory bench read them when they start (cacheOptions, verifyPref).
const (
	prefOffline = "offline"
	prefMirrors = "mirrors"
	prefVerify  = "verify"
	prefTheme   = "theme"
	prefPace    = "demoPace"
)

// demoPaces are the demo's speeds: a real device's pace by default, so each LED line can
// be read while the device shows it.
var demoPaces = []struct {
	label string
	scale float64
}{
	{"Like a real device", DefaultDemoScale},
	{"Five times faster", 0.2},
	{"Instant", 0.001},
}

// demoScalePref is the virtual devices' time scale chosen in Settings.
func demoScalePref() float64 {
	l := fyne.CurrentApp().Preferences().StringWithFallback(prefPace, demoPaces[0].label)
	for _, p := range demoPaces {
		if p.label == l {
			return p.scale
		}
	}
	return DefaultDemoScale
}

// demoPaceWords is the pace in the demo banner.
func demoPaceWords(scale float64) string {
	if scale == 0 {
		return "instant"
	}
	for _, p := range demoPaces {
		if p.scale == scale {
			return strings.ToLower(p.label[:1]) + p.label[1:]
		}
	}
	return fmt.Sprintf("%g times a real device's time", scale)
}

// udevRulePath is where the Linux permissions check looks for the rule.
var udevRulePath = "/etc/udev/rules.d/50-particle.rules"

// settingsView is the Settings tab.
type settingsView struct {
	cacheDir  *widget.Label
	cacheSize *widget.Label
	udevState *widget.Label
	udevText  *widget.Label
	install   *widget.Label
	obj       fyne.CanvasObject
}

func newSettingsView(w fyne.Window) *settingsView {
	a := fyne.CurrentApp()
	prefs := a.Preferences()
	s := &settingsView{cacheDir: widget.NewLabel(""), cacheSize: widget.NewLabel("measuring...")}
	dir, err := cache.DefaultDir()
	if err != nil {
		s.cacheDir.SetText("unknown: " + errText(err))
	} else {
		s.cacheDir.SetText(dir)
		go func() {
			size := dirSize(dir)
			onUI(func() { s.cacheSize.SetText(size) })
		}()
	}
	offline := widget.NewCheck("Offline mode: never download, use only the cache", func(b bool) { prefs.SetBool(prefOffline, b) })
	offline.SetChecked(prefs.Bool(prefOffline))
	mirrors := widget.NewMultiLineEntry()
	mirrors.SetPlaceHolder("One mirror URL per line (default: GitHub releases)")
	mirrors.SetText(prefs.String(prefMirrors))
	mirrors.OnChanged = func(v string) { prefs.SetString(prefMirrors, v) }
	var labels []string
	for _, c := range verifyChoices {
		labels = append(labels, c.label)
	}
	verify := widget.NewSelect(labels, func(v string) { prefs.SetString(prefVerify, v) })
	verify.SetSelected(verifyChoiceFor(prefs.String(prefVerify)).label)
	themeSel := widget.NewSelect([]string{"System", "Light", "Dark"}, func(v string) {
		prefs.SetString(prefTheme, v)
		applyTheme(a, v)
	})
	themeSel.SetSelected(prefs.StringWithFallback(prefTheme, "System"))

	var paces []string
	for _, p := range demoPaces {
		paces = append(paces, p.label)
	}
	pace := widget.NewSelect(paces, func(v string) { prefs.SetString(prefPace, v) })
	pace.SetSelected(prefs.StringWithFallback(prefPace, demoPaces[0].label))
	paceNote := widget.NewLabel("How fast the virtual devices of the demo work; it applies the next time the demo starts.")
	paceNote.Wrapping = fyne.TextWrapWord
	paceNote.Importance = widget.LowImportance

	form := widget.NewForm(
		widget.NewFormItem("Cache location", s.cacheDir),
		widget.NewFormItem("Cache size", s.cacheSize),
		widget.NewFormItem("Offline", offline),
		widget.NewFormItem("Mirrors", mirrors),
		widget.NewFormItem("Verify", verify),
		widget.NewFormItem("Theme", themeSel),
		widget.NewFormItem("Demo pace", container.NewVBox(pace, paceNote)),
	)
	s.obj = container.NewVScroll(container.NewVBox(
		widget.NewLabelWithStyle("Settings", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		form, widget.NewSeparator(), s.permissions(w)))
	return s
}

// permissions is the USB access check: on Linux a normal user needs the udev rule, on
// Windows the DFU interface needs the WinUSB driver.
func (s *settingsView) permissions(w fyne.Window) fyne.CanvasObject {
	title := widget.NewLabelWithStyle("Permissions", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	switch runtime.GOOS {
	case "windows":
		l := widget.NewLabel("Windows: DFU mode needs the WinUSB driver on the DFU interface. " +
			"Install it once with Zadig (select the Particle DFU device, choose WinUSB, Install), then re-plug the device.")
		l.Wrapping = fyne.TextWrapWord
		return container.NewVBox(title, l)
	case "darwin":
		return container.NewVBox(title, widget.NewLabel("macOS needs no driver or rule for Particle devices."))
	}
	s.udevState = widget.NewLabel("")
	if _, err := os.Stat(udevRulePath); err == nil {
		s.udevState.SetText("Installed: " + udevRulePath + " is present.")
	} else {
		s.udevState.SetText("Not installed: without " + udevRulePath + " only root can open Particle devices.")
		s.udevState.Importance = widget.WarningImportance
	}
	s.udevText = widget.NewLabelWithStyle(assets.UdevRules, fyne.TextAlignLeading, fyne.TextStyle{Monospace: true})
	s.udevText.Wrapping = fyne.TextWrapBreak
	copyRule := widget.NewButtonWithIcon("Copy rule", theme.ContentCopyIcon(), func() {
		fyne.CurrentApp().Clipboard().SetContent(assets.UdevRules)
	})
	s.install = widget.NewLabelWithStyle(assets.UdevInstallCommand, fyne.TextAlignLeading, fyne.TextStyle{Monospace: true})
	s.install.Wrapping = fyne.TextWrapBreak
	copyCmd := widget.NewButtonWithIcon("Copy command", theme.ContentCopyIcon(), func() {
		fyne.CurrentApp().Clipboard().SetContent(assets.UdevInstallCommand)
	})
	how := widget.NewLabel("Save the rule as 50-particle.rules, then run this command in the same folder and re-plug the device:")
	how.Wrapping = fyne.TextWrapWord
	return container.NewVBox(title, s.udevState, widget.NewLabel("Linux udev rule:"), s.udevText, copyRule, how, s.install, copyCmd)
}

// dirSize sums the files under dir, in words.
func dirSize(dir string) string {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	switch {
	case n >= 1<<30:
		return formatSize(float64(n)/(1<<30), "GB")
	case n >= 1<<20:
		return formatSize(float64(n)/(1<<20), "MB")
	case n >= 1<<10:
		return formatSize(float64(n)/(1<<10), "KB")
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

func formatSize(v float64, unit string) string {
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + unit
}

// appTheme is Fyne's default theme with a focus that can be seen: the default tints the
// focused widget so faintly that a keyboard user loses it. Light or dark is forced when
// chosen in Settings, else the system's.
type appTheme struct {
	fyne.Theme
	variant fyne.ThemeVariant
	forced  bool
}

func (t appTheme) Color(n fyne.ThemeColorName, v fyne.ThemeVariant) color.Color {
	if t.forced {
		v = t.variant
	}
	if n == theme.ColorNameFocus {
		r, g, b, _ := t.Theme.Color(theme.ColorNamePrimary, v).RGBA()
		return color.NRGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 0xb0}
	}
	return t.Theme.Color(n, v)
}

func applyTheme(a fyne.App, v string) {
	switch v {
	case "Light":
		a.Settings().SetTheme(appTheme{theme.DefaultTheme(), theme.VariantLight, true})
	case "Dark":
		a.Settings().SetTheme(appTheme{theme.DefaultTheme(), theme.VariantDark, true})
	default:
		a.Settings().SetTheme(appTheme{Theme: theme.DefaultTheme()})
	}
}

// verifyChoices are the verification modes in words, the default first (the CLI's
// default too: the module table is re-read and every module's CRC, platform and
// dependencies checked).
var verifyChoices = []struct {
	label string
	mode  plan.VerifyMode
}{
	{"Check every module (CRC, versions, dependencies)", plan.VerifyModules},
	{"Also read back every written byte (slower)", plan.VerifyReadback},
	{"Do not verify", plan.VerifyNone},
}

func verifyChoiceFor(label string) struct {
	label string
	mode  plan.VerifyMode
} {
	for _, c := range verifyChoices {
		if c.label == label {
			return c
		}
	}
	return verifyChoices[0]
}

// verifyPref is the verification the settings ask for.
func verifyPref() plan.VerifyMode {
	return verifyChoiceFor(fyne.CurrentApp().Preferences().String(prefVerify)).mode
}

// cacheOptions are the firmware cache's options from the settings (offline, mirrors).
func cacheOptions() cache.Options {
	prefs := fyne.CurrentApp().Preferences()
	return cache.Options{Offline: prefs.Bool(prefOffline), Mirrors: strings.Fields(prefs.String(prefMirrors))}
}
