package modfile

import (
	"fmt"
	"path"
	"strings"

	"github.com/particle-flasher/particle-flasher/flasher/assetname"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// claim is what a file's name says it holds, under Particle's naming schemes
// (../shared/data/device-restore/NAMING.md): "<platform>-<part>@<version>[+meta].bin"
// (Device OS 1.1.0 on), "<part>-<version>-<platform>.bin" (1.0.x and the 0.9 mesh
// scripts), and the Device Restore bundles' flat "<part>.bin". Any of the three may be
// unknown (""). Names only ever explain; a module's identity is its header.
type claim struct {
	platform *platform.Platform
	part     string // a slot name or one of its synonyms ("system-part1", "tinker", "softdevice")
	version  string // a Device OS version ("4.1.0", "0.8.0-rc.27")
}

// nameClaim reads what a file name (a bare name or a path in a bundle) says: an asset
// name of either release scheme (assetname.Parse), else the name itself as a part.
func nameClaim(name string) claim {
	base := strings.ToLower(path.Base(strings.ReplaceAll(name, "\\", "/")))
	if info, ok := assetname.Parse(base); ok {
		if p, ok := platform.ByName(info.Platform); ok {
			return claim{platform: p, part: info.Module, version: info.Version}
		}
	}
	return claim{part: strings.TrimSuffix(base, path.Ext(base))}
}

// disagreement says how the header contradicts the name, "" when it does not (or the
// name says nothing this can check). The part is compared through the platform's slot
// names, the version only where it pins the module version (system parts, bootloaders).
func (c claim) disagreement(m *module.Module) string {
	hp, known := platform.ByID(m.PlatformID)
	var diffs []string
	if c.platform != nil && c.platform.ID != m.PlatformID {
		diffs = append(diffs, fmt.Sprintf("the %s, not the %s", m.PlatformName(), c.platform.Name))
	}
	slots := c.platform
	if known {
		slots = hp
	}
	if slots != nil {
		if s, ok := slots.SlotByName(c.part); ok && !samePart(s, m) {
			diffs = append(diffs, fmt.Sprintf("a %s, not a %s", m.SlotName(), s.Name))
		}
	}
	if c.version != "" {
		want, ok := uint16(0), false
		switch {
		case m.Function == platform.FuncSystem || m.Function == platform.FuncMono:
			want, ok = module.SystemModuleVersion(c.version)
		case m.Function == platform.FuncBootloader && m.Index == 0:
			want, ok = module.BootloaderModuleVersion(c.version)
		}
		if ok && want != m.Version {
			got := fmt.Sprintf("version %d", m.Version)
			if v := m.DeviceOS(); v != "" {
				got = "Device OS " + v
			}
			diffs = append(diffs, fmt.Sprintf("%s, not Device OS %s", got, c.version))
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	return "its header says " + strings.Join(diffs, "; ")
}

// samePart: the slot a name points at holds modules like m (any index for user parts,
// whose slot the header's start address decides).
func samePart(s platform.Slot, m *module.Module) bool {
	if s.Function != m.Function {
		return false
	}
	return s.Function == platform.FuncUser || s.Index == m.Index
}
