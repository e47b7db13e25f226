package plan

import (
	"fmt"

	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// HealKind is a way out of safe mode caused by the application.
type HealKind int

// Ways out.
const (
	// HealUpgrade brings Device OS to what the application needs: the application stays.
	HealUpgrade HealKind = iota
	// HealReplaceApp keeps Device OS and replaces the application with the release's
	// Tinker, written where Device OS will run it (the planner wipes whatever would still
	// run instead, the 256 KB Gen3 slot included).
	HealReplaceApp
)

// Heal is one way to bring a device back from an application-caused safe mode.
type Heal struct {
	Kind HealKind
	// DeviceOS is the target: the release the application needs, or the one the device
	// runs.
	DeviceOS string
	// Title says it in words, for a button or a line of output.
	Title string
}

// Heals lists the ways out of the safe mode the device's state boots into, when its
// application is the cause: upgrading Device OS to what the application needs (first: it
// keeps the person's application), and replacing the application at the Device OS the
// device has. Nil when the device does not boot into safe mode because of its application.
func Heals(st state.Device) []Heal {
	b := st.Boot()
	if b.Mode != state.ModeSafe {
		return nil
	}
	have := st.DeviceOSName()
	var out []Heal
	if b.Cause == state.CauseAppNeeds && b.Need != nil && state.IsSystem(b.Need.Function) {
		if v, ok := module.FirstDeviceOSVersion(b.Need.Function, b.Need.Version); ok {
			out = append(out, Heal{Kind: HealUpgrade, DeviceOS: v,
				Title: fmt.Sprintf("Upgrade to Device OS %s (keeps your application)", v)})
		}
	}
	switch b.Cause {
	case state.CauseAppNeeds, state.CauseAppCorrupt, state.CauseNoApp:
		if have != "" {
			title := fmt.Sprintf("Keep Device OS %s and replace the application with Tinker", have)
			if b.Cause == state.CauseNoApp {
				title = fmt.Sprintf("Keep Device OS %s and install Tinker", have)
			}
			out = append(out, Heal{Kind: HealReplaceApp, DeviceOS: have, Title: title})
		}
	}
	return out
}
