package modfile

import (
	"fmt"
	"sort"
	"strings"

	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// Of is a bundle of modules already parsed, named name.
func Of(name string, mods ...*module.Module) *Bundle {
	b := &Bundle{Name: name}
	for _, m := range mods {
		b.Files = append(b.Files, File{Name: name, Module: m})
	}
	return b
}

// Join is one bundle of several (the files a person chose one after another).
func Join(bs ...*Bundle) *Bundle {
	out := &Bundle{}
	var names []string
	for _, b := range bs {
		if b == nil {
			continue
		}
		names = append(names, b.Name)
		out.Files = append(out.Files, b.Files...)
		out.Notes = append(out.Notes, b.Notes...)
	}
	out.Name = strings.Join(names, ", ")
	return out
}

// For is the part of the bundle a device of platform p can use, picked by each module's
// header:
//   - p's own modules;
//   - a SoftDevice built for another platform that shares p's radio stack
//     (platform.SharesRadioStack: Particle's Gen3 releases before 4.0 ship the Argon's for
//     every Gen3 platform), unless the bundle has one of p's own;
//   - not the modules of a platform the bundle holds a release of (its system parts,
//     bootloader, ...: a whole-version zip), which are left out with a note;
//   - but a stray module of another platform is kept, so that the planner refuses it in
//     its own words rather than the bundle quietly losing a part.
//
// With nothing of p's own left the error says what the bundle is for instead.
func (b *Bundle) For(p *platform.Platform) (*Bundle, error) {
	out := &Bundle{Name: b.Name, Notes: append([]string(nil), b.Notes...)}
	ownRadio := false
	release := map[uint16]bool{} // platforms with more than a radio stack in the bundle
	for _, f := range b.Files {
		m := f.Module
		if m.PlatformID == p.ID && m.Function == platform.FuncRadio {
			ownRadio = true
		}
		if m.Function != platform.FuncRadio && m.Function != platform.FuncAsset {
			release[m.PlatformID] = true
		}
	}
	others := map[string]int{}
	mine := 0
	for _, f := range b.Files {
		m := f.Module
		switch {
		case m.Function == platform.FuncAsset:
			// Assets belong to no platform (Device OS skips the platform check for them).
		case m.PlatformID == p.ID:
			mine++
		case m.Function == platform.FuncRadio && p.SharesRadioStack(m.PlatformID):
			if ownRadio {
				others[platformName(m.PlatformID)]++
				continue
			}
			mine++
		case release[m.PlatformID]:
			others[platformName(m.PlatformID)]++
			continue
		}
		out.Files = append(out.Files, f)
	}
	names := make([]string, 0, len(others))
	n := 0
	for name, k := range others {
		names = append(names, name)
		n += k
	}
	sort.Strings(names)
	if mine == 0 {
		if len(names) == 0 {
			for _, f := range b.Files {
				names = append(names, platformName(f.Module.PlatformID))
			}
		}
		return nil, remedy.With(fmt.Errorf("%s holds no module for the %s: its modules are built for the %s", orWord(b.Name, "the target"), p.DisplayName, strings.Join(names, ", ")),
			fmt.Sprintf("Give the %s's release (its files start with %q), or its Device Restore bundle.", p.DisplayName, p.Name+"-"))
	}
	if n > 0 {
		plural := "s"
		if n == 1 {
			plural = ""
		}
		out.Notes = append(out.Notes, fmt.Sprintf("left out %d module%s for other platforms (%s); the %s's are used", n, plural, strings.Join(names, ", "), p.DisplayName))
	}
	return out, nil
}

func platformName(id uint16) string {
	if p, ok := platform.ByID(id); ok {
		return p.DisplayName
	}
	return fmt.Sprintf("platform %d", id)
}

func orWord(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}
