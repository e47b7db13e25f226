package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/led"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// sig renders a step as one line that pins what acceptance asks about: order (the list),
// kind, module and version, method, DFU address and alt, and the LED to expect.
func sig(s Step) string {
	var b string
	switch s.Kind {
	case KindEnterMode:
		b = "enter " + s.Mode.String()
	case KindReset:
		b = "reset -> " + s.Mode.String()
	case KindWaitFor:
		b = fmt.Sprintf("wait %s@%d -> %s", s.Slot, s.Module.Version, s.Mode)
	case KindWrite:
		b = fmt.Sprintf("write %s@%d %s", s.Slot, s.Module.Version, s.Method)
		if s.Method.UsesDFU() {
			b += fmt.Sprintf(" 0x%08x/%d", s.Address, s.Alt)
		}
		if s.Parts > 0 {
			b += fmt.Sprintf(" part %d/%d", s.Part, s.Parts)
		}
	case KindInvalidate:
		b = fmt.Sprintf("invalidate 0x%08x/%d", s.Address, s.Alt)
	case KindSetOTAFlag:
		b = fmt.Sprintf("ota-flag %d/%d=%02x", s.Address, s.Alt, s.Data[0])
	default:
		b = s.Kind.String()
	}
	return b + " | " + s.LED.Expect.String()
}

func sigs(p *Plan) []string {
	out := make([]string, len(p.Steps))
	for i, s := range p.Steps {
		out[i] = sig(s)
	}
	return out
}

const (
	yellow       = " | blinking yellow"
	cyan         = " | breathing cyan"
	magenta      = " | blinking magenta"
	safeMagenta  = " | breathing magenta"
	verifyNormal = "verify" + cyan
)

type planCase struct {
	name   string
	state  func(t *testing.T) state.Device
	target func(t *testing.T) Target
	steps  []string
	err    error
	check  func(t *testing.T, p *Plan, err error)
}

func withReplacement(t *testing.T, key string) Target {
	tg := target(t, key)
	tg.ReplacementApp = tinker(t, key)
	return tg
}

// electronAt is an Electron holding a release set; no Electron 1.5.2 bootloader file is
// in ../shared, so it carries the 1.5.2 bootloader version (502) as a reported module.
func electronAt(t *testing.T, key string, mode state.Mode) state.Device {
	st := device(t, key, mode, tinker(t, key))
	if key == "electron/1.5.2" {
		st = with(st, installed(fBoot, 0, 502, true))
	}
	return st
}

func TestPlans(t *testing.T) {
	cases := []planCase{
		// ---- Photon (real 1.5.2 and 2.3.1 binaries) ----
		{
			name: "photon upgrade 1.5.2 to 2.3.1",
			state: func(t *testing.T) state.Device {
				return device(t, "photon/1.5.2", state.ModeNormal, tinker(t, "photon/1.5.2"))
			},
			target: func(t *testing.T) Target { return withReplacement(t, "photon/2.3.1") },
			steps: []string{
				"enter dfu" + yellow,
				// Gen2 bootloader: OTA region + DCT flag, first (system-part2 2.3.1 needs bootloader >= 1003)
				"write bootloader@1006 ota-region 0x080c0000/0" + yellow,
				"ota-flag 1753/1=a5" + yellow,
				"write system-part1@2302 dfu 0x08020000/0" + yellow,
				"write system-part2@2302 dfu 0x08060000/0" + yellow,
				"reset -> normal" + cyan,
				verifyNormal,
			},
			check: func(t *testing.T, p *Plan, err error) {
				assert.Equal(t, DirUpgrade, p.Direction)
				assert.Contains(t, p.Steps[0].Why, "14400 baud", "Gen2 below 2.0.0 cannot be switched to DFU by control request reliably")
				assert.Contains(t, p.Steps[len(p.Steps)-2].Why, "installs bootloader 1006")
			},
		},
		{
			name: "photon downgrade 2.3.1 to 1.5.2 replaces the app first",
			state: func(t *testing.T) state.Device {
				return device(t, "photon/2.3.1", state.ModeNormal, tinker(t, "photon/2.3.1"))
			},
			target: func(t *testing.T) Target { return withReplacement(t, "photon/1.5.2") },
			steps: []string{
				"enter dfu" + yellow,
				"write user-part@6 dfu 0x080a0000/0" + yellow,
				// reverse file order: part2 first, so part1 2.3.1 (needs part2 >= 207) never breaks
				"write system-part2@1512 dfu 0x08060000/0" + yellow,
				"write system-part1@1512 dfu 0x08020000/0" + yellow,
				"write bootloader@502 ota-region 0x080c0000/0" + yellow,
				"ota-flag 1753/1=a5" + yellow,
				"reset -> normal" + cyan,
				verifyNormal,
			},
			check: func(t *testing.T, p *Plan, err error) {
				assert.Equal(t, DirDowngrade, p.Direction)
				assert.Contains(t, p.Steps[1].Why, "safe-mode healer")
			},
		},
		{
			name: "photon rescue from DFU with a blank system-part2",
			state: func(t *testing.T) state.Device {
				return without(device(t, "photon/2.3.1", state.ModeDFU, tinker(t, "photon/2.3.1")), fSys, 2)
			},
			target: func(t *testing.T) Target { return target(t, "photon/2.3.1") },
			steps: []string{
				"write system-part2@2302 dfu 0x08060000/0" + yellow,
				"reset -> normal" + cyan,
				verifyNormal,
			},
			check: func(t *testing.T, p *Plan, err error) {
				assert.Equal(t, DirRescue, p.Direction)
				assert.Len(t, p.Skipped, 2)
			},
		},
		{
			name: "photon safe-mode heal: the app needs 2.3.1",
			state: func(t *testing.T) state.Device {
				return device(t, "photon/1.5.2", state.ModeSafe, tinker(t, "photon/2.3.1"))
			},
			target: func(t *testing.T) Target { return withReplacement(t, "photon/2.3.1") },
			steps: []string{
				"enter dfu" + yellow,
				"write bootloader@1006 ota-region 0x080c0000/0" + yellow,
				"ota-flag 1753/1=a5" + yellow,
				"write system-part1@2302 dfu 0x08020000/0" + yellow,
				"write system-part2@2302 dfu 0x08060000/0" + yellow,
				"reset -> normal" + cyan,
				verifyNormal,
			},
		},
		{
			name: "photon downgrade with an incompatible app and nothing to replace it",
			state: func(t *testing.T) state.Device {
				return device(t, "photon/2.3.1", state.ModeNormal, tinker(t, "photon/2.3.1"))
			},
			target: func(t *testing.T) Target { return target(t, "photon/1.5.2") },
			err:    ErrDependency,
		},

		// ---- Electron (file names are not indices) ----
		{
			name:   "electron upgrade 1.5.2 to 2.3.1 in file order",
			state:  func(t *testing.T) state.Device { return electronAt(t, "electron/1.5.2", state.ModeNormal) },
			target: func(t *testing.T) Target { return withReplacement(t, "electron/2.3.1") },
			steps: []string{
				"enter dfu" + yellow,
				"write bootloader@1006 ota-region 0x080c0000/0" + yellow,
				"ota-flag 1753/1=a5" + yellow,
				"write system-part1@2302 dfu 0x08060000/0" + yellow, // index 3
				"write system-part2@2302 dfu 0x08020000/0" + yellow, // index 1
				"write system-part3@2302 dfu 0x08040000/0" + yellow, // index 2
				"reset -> normal" + cyan,
				verifyNormal,
			},
		},
		{
			name:   "electron downgrade 2.3.1 to 1.5.2 in reverse file order, app first",
			state:  func(t *testing.T) state.Device { return electronAt(t, "electron/2.3.1", state.ModeNormal) },
			target: func(t *testing.T) Target { return withReplacement(t, "electron/1.5.2") },
			steps: []string{
				"enter dfu" + yellow,
				"write user-part@6 dfu 0x08080000/0" + yellow,
				"write system-part3@1512 dfu 0x08040000/0" + yellow,
				"write system-part2@1512 dfu 0x08020000/0" + yellow,
				"write system-part1@1512 dfu 0x08060000/0" + yellow,
				"reset -> normal" + cyan,
				verifyNormal,
			},
		},
		{
			name: "electron rescue from DFU with a corrupt system-part1 (index 3)",
			state: func(t *testing.T) state.Device {
				return corrupt(electronAt(t, "electron/2.3.1", state.ModeDFU), fSys, 3)
			},
			target: func(t *testing.T) Target { return target(t, "electron/2.3.1") },
			steps: []string{
				"write system-part1@2302 dfu 0x08060000/0" + yellow,
				"reset -> normal" + cyan,
				verifyNormal,
			},
		},

		// ---- Argon (real 2.3.0 and 4.1.0 with bootloader, SoftDevice, NCP) ----
		{
			name: "argon upgrade 2.3.0 to 4.1.0: bootloader in normal mode, then DFU",
			state: func(t *testing.T) state.Device {
				return device(t, "argon/2.3.0", state.ModeNormal, tinker(t, "argon/2.3.0"))
			},
			target: func(t *testing.T) Target { return withReplacement(t, "argon/4.1.0") },
			steps: []string{
				"write bootloader@1200 control" + magenta,
				"wait bootloader@1200 -> normal" + cyan,
				"enter dfu" + yellow,
				"write system-part1@4100 dfu 0x00030000/0" + yellow,
				"reset -> normal" + cyan,
				verifyNormal,
			},
			check: func(t *testing.T, p *Plan, err error) {
				var skipped []string
				for _, s := range p.Skipped {
					skipped = append(skipped, s.Slot)
				}
				assert.ElementsMatch(t, []string{"softdevice", "ncp-firmware"}, skipped, "same SoftDevice and NCP: nothing to write")
			},
		},
		{
			name: "argon downgrade 4.1.0 to 2.3.0: 256 KB app replaced by a 128 KB one first",
			state: func(t *testing.T) state.Device {
				return device(t, "argon/4.1.0", state.ModeNormal, tinker(t, "argon/4.1.0"))
			},
			target: func(t *testing.T) Target { return withReplacement(t, "argon/2.3.0") },
			steps: []string{
				"enter dfu" + yellow,
				"write user-part@6 dfu 0x000d4000/0" + yellow,
				"write system-part1@2301 dfu 0x00030000/0" + yellow,
				"write bootloader@1006 ota-region 0x80289000/2" + yellow,
				"ota-flag 1753/1=a5" + yellow,
				"reset -> normal" + cyan,
				verifyNormal,
			},
		},
		{
			name: "argon 256 KB app: the former 128 KB user part is invalidated first",
			state: func(t *testing.T) state.Device {
				return device(t, "argon/4.1.0", state.ModeNormal, tinker(t, "argon/2.3.0"))
			},
			target: func(t *testing.T) Target {
				tg := target(t, "argon/4.1.0")
				tg.App = tinker(t, "argon/4.1.0")
				return tg
			},
			steps: []string{
				"enter dfu" + yellow,
				"invalidate 0x000d4000/0" + yellow,
				"write user-part@6 dfu 0x000b4000/0" + yellow,
				"reset -> normal" + cyan,
				verifyNormal,
			},
			check: func(t *testing.T, p *Plan, err error) {
				assert.Len(t, p.Steps[1].Data, 4096)
				for _, b := range p.Steps[1].Data {
					require.Equal(t, byte(0xFF), b)
				}
			},
		},
		{
			name:   "argon with nothing known: everything, in DFU first",
			state:  func(t *testing.T) state.Device { return state.Device{Platform: plat(t, "argon")} },
			target: func(t *testing.T) Target { return withReplacement(t, "argon/4.1.0") },
			steps: []string{
				"enter dfu" + yellow,
				"write bootloader@1200 ota-region 0x80289000/2" + yellow,
				"ota-flag 1753/1=a5" + yellow,
				"write system-part1@4100 dfu 0x00030000/0" + yellow,
				"write softdevice@202 dfu-drop-header 0x00001000/0" + yellow,
				"invalidate 0x000d4000/0" + yellow, // nothing known: the old 128 KB slot may hold an app
				"write user-part@6 dfu 0x000b4000/0" + yellow,
				"reset -> normal" + cyan,
				"write ncp-firmware@5 control" + magenta,
				"wait ncp-firmware@5 -> normal" + cyan,
				verifyNormal,
			},
			check: func(t *testing.T, p *Plan, err error) {
				sd := p.Steps[4]
				assert.Equal(t, sd.Module.Data[24:], sd.Data, "SoftDevice written without its 24-byte prefix")
				assert.NotEmpty(t, p.Steps[3].Unmet, "system-part1 and SoftDevice need each other: one goes first")
				assert.Greater(t, p.Steps[9].Estimate, 2*time.Minute, "NCP takes minutes")
			},
		},

		// ---- Boron (real 1.5.2 and 4.1.0) ----
		{
			name: "boron upgrade 1.5.2 to 4.1.0",
			state: func(t *testing.T) state.Device {
				return device(t, "boron/1.5.2", state.ModeNormal, tinker(t, "boron/1.5.2"))
			},
			target: func(t *testing.T) Target { return withReplacement(t, "boron/4.1.0") },
			steps: []string{
				"write bootloader@1200 control" + magenta,
				"wait bootloader@1200 -> normal" + cyan,
				"enter dfu" + yellow,
				"write system-part1@4100 dfu 0x00030000/0" + yellow,
				"reset -> normal" + cyan,
				verifyNormal,
			},
		},
		{
			name: "boron downgrade 4.1.0 to 1.5.2 with a real replacement app",
			state: func(t *testing.T) state.Device {
				return device(t, "boron/4.1.0", state.ModeNormal, tinker(t, "boron/4.1.0"))
			},
			target: func(t *testing.T) Target {
				tg := target(t, "boron/1.5.2")
				tg.ReplacementApp = appFile(t, "binaries_boron_blank.bin") // user 1 @0xD4000, needs system 1 >= 1213
				return tg
			},
			steps: []string{
				"enter dfu" + yellow,
				"write user-part@6 dfu 0x000d4000/0" + yellow,
				"write system-part1@1512 dfu 0x00030000/0" + yellow,
				"write bootloader@502 ota-region 0x80289000/2" + yellow,
				"ota-flag 1753/1=a5" + yellow,
				"reset -> normal" + cyan,
				verifyNormal,
			},
			check: func(t *testing.T, p *Plan, err error) {
				require.NotEmpty(t, p.Warnings)
				all := strings.Join(p.Warnings, "\n")
				assert.Contains(t, all, "needs Device OS 4.1.0")
				assert.Contains(t, all, "If this Boron is a BRN404X, Device OS 1.5.2 is too old for it", "the SKU floor, which cannot be read")
			},
		},
		{
			name: "boron rescue from DFU: blank system part, old bootloader staged in the same session",
			state: func(t *testing.T) state.Device {
				return without(device(t, "boron/1.5.2", state.ModeDFU, tinker(t, "boron/1.5.2")), fSys, 1)
			},
			target: func(t *testing.T) Target { return target(t, "boron/4.1.0") },
			steps: []string{
				"write bootloader@1200 ota-region 0x80289000/2" + yellow,
				"ota-flag 1753/1=a5" + yellow,
				"write system-part1@4100 dfu 0x00030000/0" + yellow,
				"reset -> normal" + cyan,
				verifyNormal,
			},
		},
		{
			name: "boron safe-mode heal: only the bootloader is missing",
			state: func(t *testing.T) state.Device {
				st := device(t, "boron/4.1.0", state.ModeSafe, tinker(t, "boron/4.1.0"))
				return replace(st, state.FromFile(nil, set(t, "boron/1.5.2")[0]))
			},
			target: func(t *testing.T) Target { return target(t, "boron/4.1.0") },
			steps: []string{
				"write bootloader@1200 control" + magenta,
				"wait bootloader@1200 -> normal" + cyan,
				verifyNormal,
			},
			check: func(t *testing.T, p *Plan, err error) { assert.Equal(t, DirSame, p.Direction) },
		},
		{
			name: "boron upgrade with a 15 s watchdog",
			state: func(t *testing.T) state.Device {
				return device(t, "boron/1.5.2", state.ModeNormal, tinker(t, "boron/1.5.2"))
			},
			target: func(t *testing.T) Target {
				tg := target(t, "boron/4.1.0")
				tg.Options.Watchdog = 15 * time.Second
				return tg
			},
			steps: []string{
				// with a watchdog the bootloader goes through the OTA region: DFU work can be cut
				"enter dfu" + yellow,
				"write bootloader@1200 ota-region 0x80289000/2" + yellow,
				"ota-flag 1753/1=a5" + yellow,
				"write system-part1@4100 dfu 0x00030000/0 part 1/2" + yellow,
				"enter dfu" + yellow,
				"write system-part1@4100 dfu 0x00073000/0 part 2/2" + yellow,
				"reset -> normal" + cyan,
				verifyNormal,
			},
			check: func(t *testing.T, p *Plan, err error) {
				assert.Equal(t, 2, p.Windows)
				for i, w := range []int{1, 1, 1, 1, 2, 2} {
					assert.Equal(t, w, p.Steps[i].Window, p.Steps[i].ID)
				}
				whole := p.Steps[3].Module.Data
				joined := append(append([]byte{}, p.Steps[3].Data...), p.Steps[5].Data...)
				assert.Equal(t, whole, joined, "the parts are the module, in order")
				for _, s := range p.Steps {
					if s.Window > 0 && s.Kind == KindWrite {
						assert.LessOrEqual(t, s.Estimate, 15*time.Second-enterDFUTime)
					}
				}
			},
		},

		// ---- B SoM (built from Device Restore headers; no buttons) ----
		{
			name: "bsom upgrade 2.3.1 to 4.1.0",
			state: func(t *testing.T) state.Device {
				return device(t, "bsom/2.3.1", state.ModeNormal, tinker(t, "bsom/2.3.1"))
			},
			target: func(t *testing.T) Target { return withReplacement(t, "bsom/4.1.0") },
			steps: []string{
				"write bootloader@1200 control" + magenta,
				"wait bootloader@1200 -> normal" + cyan,
				"enter dfu" + yellow,
				"write system-part1@4100 dfu 0x00030000/0" + yellow,
				"reset -> normal" + cyan,
				verifyNormal,
			},
			check: func(t *testing.T, p *Plan, err error) {
				// led's guidance for a board without MODE/RESET buttons
				assert.Contains(t, p.Steps[2].LED.Text, "B-SoM")
				assert.Contains(t, led.Buttons(p.Platform, led.GoalDFU), "carrier")
			},
		},
		{
			name: "bsom downgrade 4.1.0 to 2.3.1",
			state: func(t *testing.T) state.Device {
				return device(t, "bsom/4.1.0", state.ModeNormal, tinker(t, "bsom/4.1.0"))
			},
			target: func(t *testing.T) Target { return withReplacement(t, "bsom/2.3.1") },
			steps: []string{
				"enter dfu" + yellow,
				"write user-part@6 dfu 0x000d4000/0" + yellow,
				"write system-part1@2302 dfu 0x00030000/0" + yellow,
				"write bootloader@1006 ota-region 0x80289000/2" + yellow,
				"ota-flag 1753/1=a5" + yellow,
				"reset -> normal" + cyan,
				verifyNormal,
			},
		},
		{
			name: "bsom downgrade 6.2.0 to 6.1.0 without a replacement app is refused",
			state: func(t *testing.T) state.Device {
				return device(t, "bsom/6.2.0", state.ModeNormal, tinker(t, "bsom/6.2.0"))
			},
			target: func(t *testing.T) Target { return target(t, "bsom/6.1.0") },
			err:    ErrDependency, // the 6.2.0 app cannot run on 6.1.0
			check: func(t *testing.T, p *Plan, err error) {
				assert.Contains(t, remedy.Of(err), "Give an application built for Device OS 6.1.0")
			},
		},
		{
			name: "bsom downgrade 6.2.0 to 6.1.0: system-part1 moves back from 0x28000 to 0x30000",
			state: func(t *testing.T) state.Device {
				return device(t, "bsom/6.2.0", state.ModeNormal, tinker(t, "bsom/6.2.0"))
			},
			target: func(t *testing.T) Target { return withReplacement(t, "bsom/6.1.0") },
			steps: []string{
				"enter dfu" + yellow,
				"write user-part@6 dfu 0x000b4000/0" + yellow,
				// 6.2.0's system-part1 at 0x28000 would still be found first: its header sector is wiped.
				"invalidate 0x00028000/0" + yellow,
				"write system-part1@6100 dfu 0x00030000/0" + yellow,
				"write bootloader@3000 ota-region 0x8024c000/2" + yellow, // Device OS 6.1.0's OTA region
				"ota-flag 1753/1=a5" + yellow,
				"reset -> normal" + cyan,
				verifyNormal,
			},
		},
		{
			name: "bsom upgrade 4.1.0 to 6.2.0: system-part1 moves to 0x28000",
			state: func(t *testing.T) state.Device {
				return device(t, "bsom/4.1.0", state.ModeNormal, tinker(t, "bsom/4.1.0"))
			},
			target: func(t *testing.T) Target { return withReplacement(t, "bsom/6.2.0") },
			steps: []string{
				"write bootloader@3100 control" + magenta,
				"wait bootloader@3100 -> normal" + cyan,
				"enter dfu" + yellow,
				"write system-part1@6200 dfu 0x00028000/0" + yellow,
				"reset -> normal" + cyan,
				verifyNormal,
			},
		},
		{
			name: "bsom rescue from DFU with a corrupt system part",
			state: func(t *testing.T) state.Device {
				return corrupt(device(t, "bsom/4.1.0", state.ModeDFU, tinker(t, "bsom/4.1.0")), fSys, 1)
			},
			target: func(t *testing.T) Target { return target(t, "bsom/4.1.0") },
			steps: []string{
				"write system-part1@4100 dfu 0x00030000/0" + yellow,
				"reset -> normal" + cyan,
				verifyNormal,
			},
		},
		{
			name: "bsom from 2.3.1 to 1.5.1 needs the 1.5.2 stepping stone",
			state: func(t *testing.T) state.Device {
				return device(t, "bsom/2.3.1", state.ModeNormal, tinker(t, "bsom/2.3.1"))
			},
			target: func(t *testing.T) Target { return target(t, "bsom/1.5.1") },
			err:    ErrSteppingStone,
			check: func(t *testing.T, p *Plan, err error) {
				require.NotNil(t, p)
				assert.Equal(t, "1.5.2", p.NeedsSteppingStone)
				assert.Empty(t, p.Steps)
				var ss *SteppingStoneError
				require.ErrorAs(t, err, &ss)
				assert.Equal(t, "1.5.2", ss.Via)
			},
		},
		{
			name: "bsom protected device refused below 6.1.1 even in Service Mode",
			state: func(t *testing.T) state.Device {
				st := device(t, "bsom/6.2.0", state.ModeNormal, tinker(t, "bsom/6.2.0"))
				st.Protection = state.ProtectionService
				return st
			},
			target: func(t *testing.T) Target { return target(t, "bsom/6.1.0") },
			err:    ErrProtected,
			check: func(t *testing.T, p *Plan, err error) {
				assert.Contains(t, err.Error(), "6.1.1")
				assert.Contains(t, remedy.Of(err), "Device Protection off")
			},
		},
		{
			name: "bsom protected device outside Service Mode: refused before anything, with the way that works",
			state: func(t *testing.T) state.Device {
				st := device(t, "bsom/6.2.0", state.ModeNormal, tinker(t, "bsom/4.1.0"))
				st.Protection = state.ProtectionProtected
				return st
			},
			target: func(t *testing.T) Target {
				tg := target(t, "bsom/6.2.0")
				tg.App = tinker(t, "bsom/6.2.0")
				return tg
			},
			err: ErrProtected,
			check: func(t *testing.T, p *Plan, err error) {
				assert.Nil(t, p)
				assert.Contains(t, err.Error(), "has Device Protection")
				assert.Contains(t, err.Error(), "only in Service Mode")
				assert.Contains(t, err.Error(), "never below Device OS 6.1.1")
				assert.Contains(t, remedy.Of(err), "Particle Console")
				assert.Equal(t, "particle device-protection disable", remedy.Command(err))
				assert.Contains(t, remedy.Of(err), "Particle's cloud")
			},
		},
		{
			name: "bsom in Service Mode: a new app, and protection back on at the end",
			state: func(t *testing.T) state.Device {
				st := device(t, "bsom/6.2.0", state.ModeNormal, tinker(t, "bsom/4.1.0"))
				st.Protection = state.ProtectionService
				return st
			},
			target: func(t *testing.T) Target {
				tg := target(t, "bsom/6.2.0")
				tg.App = tinker(t, "bsom/6.2.0")
				return tg
			},
			steps: []string{
				"enter dfu" + yellow,
				// the device reported no image at 0xD4000: nothing there to wipe
				"write user-part@6 dfu 0x000b4000/0" + yellow,
				"reset -> normal" + cyan,
				verifyNormal,
				"end-service-mode" + cyan,
			},
		},

		{
			name: "bsom in Service Mode: an open bootloader build is refused",
			state: func(t *testing.T) state.Device {
				st := device(t, "bsom/6.1.0", state.ModeNormal, tinker(t, "bsom/6.1.0"))
				st.Protection = state.ProtectionService
				return st
			},
			target: func(t *testing.T) Target { return target(t, "bsom/6.2.0") },
			err:    ErrProtected,
			check: func(t *testing.T, p *Plan, err error) {
				assert.Contains(t, err.Error(), "open build")
				assert.Contains(t, remedy.Of(err), "-protected")
			},
		},
		{
			name: "bsom in Service Mode upgrade with the protected bootloader build, from DFU",
			state: func(t *testing.T) state.Device {
				st := device(t, "bsom/6.1.0", state.ModeDFU, tinker(t, "bsom/6.1.0"))
				st.Protection = state.ProtectionService
				return st
			},
			target: func(t *testing.T) Target {
				tg := target(t, "bsom/6.2.0")
				tg.Modules[0] = protectedBootloader(t, "bsom", 3100)
				return tg
			},
			steps: []string{
				"write bootloader@3100 ota-region 0x8024c000/2" + yellow,
				"ota-flag 1753/1=a5" + yellow,
				"write system-part1@6200 dfu 0x00028000/0" + yellow,
				"reset -> normal" + cyan,
				verifyNormal,
				"end-service-mode" + cyan,
			},
		},

		// ---- Tracker (built; system-part1 4.1.0 needs NCP 7, which needs 3.0.0) ----
		{
			name: "tracker upgrade 2.3.1 to 4.1.0 breaks the NCP cycle at the DFU write",
			state: func(t *testing.T) state.Device {
				return with(device(t, "tracker/2.3.1", state.ModeNormal, tinker(t, "tracker/2.3.1")),
					installed(fNCP, 0, 5, true))
			},
			target: func(t *testing.T) Target { return withReplacement(t, "tracker/4.1.0") },
			steps: []string{
				"write bootloader@1200 control" + magenta,
				"wait bootloader@1200 -> normal" + cyan,
				"enter dfu" + yellow,
				"write system-part1@4100 dfu 0x00030000/0" + yellow,
				"reset -> safe" + safeMagenta, // expected: NCP 7 comes next
				"write ncp-firmware@7 control" + magenta,
				"wait ncp-firmware@7 -> normal" + cyan,
				verifyNormal,
			},
			check: func(t *testing.T, p *Plan, err error) {
				require.Len(t, p.Steps[3].Unmet, 1)
				assert.Equal(t, fNCP, p.Steps[3].Unmet[0].Function)
				assert.Contains(t, strings.Join(p.Warnings, " "), "safe mode")
				assert.Contains(t, p.Steps[4].LED.Text, "expected")
			},
		},
		{
			name: "tracker downgrade 4.1.0 to 2.3.1 keeps NCP 7; 8 MB OTA region",
			state: func(t *testing.T) state.Device {
				return device(t, "tracker/4.1.0", state.ModeNormal, tinker(t, "tracker/4.1.0"))
			},
			target: func(t *testing.T) Target { return withReplacement(t, "tracker/2.3.1") },
			steps: []string{
				"enter dfu" + yellow,
				"write user-part@6 dfu 0x000d4000/0" + yellow,
				"write system-part1@2302 dfu 0x00030000/0" + yellow,
				"write bootloader@1006 ota-region 0x80689000/2" + yellow,
				"ota-flag 1753/1=a5" + yellow,
				"reset -> normal" + cyan,
				verifyNormal,
			},
		},
		{
			name: "tracker rescue from DFU: NCP version unknown",
			state: func(t *testing.T) state.Device {
				st := device(t, "tracker/4.1.0", state.ModeDFU, tinker(t, "tracker/4.1.0"))
				return without(without(st, fSys, 1), fNCP, 0) // DFU cannot read the NCP
			},
			target: func(t *testing.T) Target { return target(t, "tracker/4.1.0") },
			steps: []string{
				"write system-part1@4100 dfu 0x00030000/0" + yellow,
				"reset -> safe" + safeMagenta,
				"write ncp-firmware@7 control" + magenta,
				"wait ncp-firmware@7 -> normal" + cyan,
				verifyNormal,
			},
		},

		// ---- P2 (built; RTL872x: bootloaders by control request only) ----
		{
			name:   "p2 upgrade 5.0.0 to 6.2.0: prebootloader first",
			state:  func(t *testing.T) state.Device { return device(t, "p2/5.0.0", state.ModeNormal, tinker(t, "p2/5.0.0")) },
			target: func(t *testing.T) Target { return withReplacement(t, "p2/6.2.0") },
			steps: []string{
				"write prebootloader-part1@9 control" + magenta,
				"wait prebootloader-part1@9 -> normal" + cyan,
				"write bootloader@3100 control" + magenta,
				"wait bootloader@3100 -> normal" + cyan,
				"enter dfu" + yellow,
				"write system-part1@6200 dfu 0x08060000/0" + yellow,
				"reset -> normal" + cyan,
				verifyNormal,
			},
		},
		{
			name:   "p2 downgrade 6.2.0 to 5.0.0: app first, prebootloader last",
			state:  func(t *testing.T) state.Device { return device(t, "p2/6.2.0", state.ModeNormal, tinker(t, "p2/6.2.0")) },
			target: func(t *testing.T) Target { return withReplacement(t, "p2/5.0.0") },
			steps: []string{
				"enter dfu" + yellow,
				"write user-part@6 dfu 0x085fe000/0" + yellow, // RTL user part: start = 0x08600000 - size
				"write system-part1@5002 dfu 0x08060000/0" + yellow,
				"reset -> normal" + cyan,
				"write bootloader@2000 control" + magenta,
				"wait bootloader@2000 -> normal" + cyan,
				"write prebootloader-part1@3 control" + magenta,
				"wait prebootloader-part1@3 -> normal" + cyan,
				verifyNormal,
			},
		},
		{
			name: "p2 rescue from DFU: blank system part, bootloaders after it in normal mode",
			state: func(t *testing.T) state.Device {
				return without(device(t, "p2/5.0.0", state.ModeDFU, tinker(t, "p2/5.0.0")), fSys, 1)
			},
			target: func(t *testing.T) Target { return target(t, "p2/6.2.0") },
			steps: []string{
				"write system-part1@6200 dfu 0x08060000/0" + yellow,
				"reset -> safe" + safeMagenta,
				"write prebootloader-part1@9 control" + magenta,
				"wait prebootloader-part1@9 -> safe" + safeMagenta,
				"write bootloader@3100 control" + magenta,
				"wait bootloader@3100 -> normal" + cyan,
				verifyNormal,
			},
		},
		{
			name: "p2 in Service Mode refused below 6.1.1",
			state: func(t *testing.T) state.Device {
				st := device(t, "p2/6.2.0", state.ModeNormal, tinker(t, "p2/6.2.0"))
				st.Protection = state.ProtectionService
				return st
			},
			target: func(t *testing.T) Target { return withReplacement(t, "p2/5.0.0") },
			err:    ErrProtected,
		},
		{
			name:  "p2 downgrade with an app that needs the newer Device OS",
			state: func(t *testing.T) state.Device { return device(t, "p2/6.2.0", state.ModeNormal, tinker(t, "p2/6.2.0")) },
			target: func(t *testing.T) Target {
				tg := target(t, "p2/5.0.0")
				tg.App = tinker(t, "p2/6.2.0")
				return tg
			},
			err: ErrDependency,
			check: func(t *testing.T, p *Plan, err error) {
				assert.Contains(t, err.Error(), "needs Device OS 6.2.0")
				assert.NotEmpty(t, remedy.Of(err))
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := c.state(t)
			tg := c.target(t)
			p, err := Make(st, tg)
			if c.err != nil {
				require.Error(t, err)
				assert.True(t, errors.Is(err, c.err), "error %v is not %v", err, c.err)
				assert.NotEmpty(t, remedy.Of(err), "every refusal carries a remedy")
				if c.check != nil {
					c.check(t, p, err)
				}
				return
			}
			require.NoError(t, err)
			if !assert.Equal(t, c.steps, sigs(p)) {
				t.Log("\n" + p.String())
			}
			checkInvariants(t, st, p)
			if c.check != nil {
				c.check(t, p, err)
			}
		})
	}
}

// checkInvariants holds for every plan: unique IDs, LED guidance and an estimate on every
// step, a reason on every write, the expected versions at the end, and JSON that parses.
func checkInvariants(t *testing.T, st state.Device, p *Plan) {
	t.Helper()
	ids := map[string]bool{}
	for _, s := range p.Steps {
		assert.False(t, ids[s.ID], "duplicate step ID %s", s.ID)
		ids[s.ID] = true
		assert.False(t, s.LED.Expect.IsZero(), "%s has no LED", s.ID)
		assert.NotEmpty(t, s.LED.Text, s.ID)
		assert.NotEmpty(t, s.LED.IfNot, "%s says nothing about other LEDs", s.ID)
		assert.Positive(t, s.Estimate, s.ID)
		assert.NotEmpty(t, s.Why, s.ID)
	}
	checkSafety(t, st, p)
	b, err := json.Marshal(p)
	require.NoError(t, err)
	var back map[string]any
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Len(t, back["steps"], len(p.Steps))
	assert.NotEmpty(t, p.String())
}

func TestStepDone(t *testing.T) {
	st := device(t, "boron/1.5.2", state.ModeNormal, tinker(t, "boron/1.5.2"))
	p, err := Make(st, target(t, "boron/4.1.0"))
	require.NoError(t, err)
	after := device(t, "boron/4.1.0", state.ModeNormal, tinker(t, "boron/1.5.2"))
	for _, s := range p.Steps {
		switch s.Kind {
		case KindWrite, KindWaitFor:
			assert.False(t, s.Done(st), "%s not done before", s.ID)
			assert.True(t, s.Done(after), "%s done after", s.ID)
		}
	}
	// A half-written system part fails its CRC: not done.
	half := corrupt(after, fSys, 1)
	for _, s := range p.Steps {
		if s.Kind == KindWrite && s.Slot == "system-part1" {
			assert.False(t, s.Done(half))
		}
	}
	// Re-planning from the finished state writes nothing.
	again, err := Make(after, target(t, "boron/4.1.0"))
	require.NoError(t, err)
	assert.Empty(t, again.Steps)
	assert.Contains(t, again.String(), "nothing to do")
}

func TestRefusals(t *testing.T) {
	boron := device(t, "boron/1.5.2", state.ModeNormal, tinker(t, "boron/1.5.2"))
	t.Run("module for another platform", func(t *testing.T) {
		_, err := Make(boron, target(t, "argon/4.1.0"))
		require.ErrorIs(t, err, ErrWrongPlatform)
		assert.Contains(t, err.Error(), "Argon")
		assert.Contains(t, remedy.Of(err), "Boron")
	})
	t.Run("module that does not fit its slot", func(t *testing.T) {
		p := plat(t, "boron")
		slot, ok := p.SlotFor(fSys, 1, 4100)
		require.True(t, ok)
		sp, err := module.SpecForSlot(p, slot, 4100)
		require.NoError(t, err)
		sp.Start += 0x1000
		b, err := module.Build(sp)
		require.NoError(t, err)
		m, err := module.Parse(b)
		require.NoError(t, err)
		_, err = Make(boron, Target{Modules: []*module.Module{m}})
		require.ErrorIs(t, err, ErrDoesNotFit)
		assert.Contains(t, err.Error(), "0x00031000")
		assert.NotEmpty(t, remedy.Of(err))
	})
	t.Run("dependency nothing meets", func(t *testing.T) {
		tg := target(t, "boron/4.1.0")
		tg.Options.NoBootloader = true
		_, err := Make(boron, tg)
		require.ErrorIs(t, err, ErrDependency)
		assert.Contains(t, err.Error(), "needs bootloader 1200 (Device OS 4.1.0) or newer, but after the plan the bootloader is 502")
		assert.Contains(t, remedy.Of(err), "back on")
	})
	t.Run("corrupt module", func(t *testing.T) {
		m := set(t, "boron/4.1.0")[1]
		b := append([]byte(nil), m.Data...)
		b[len(b)/2] ^= 0xFF
		bad, err := module.Parse(b)
		require.NoError(t, err)
		_, err = Make(boron, Target{Modules: []*module.Module{bad}})
		require.ErrorIs(t, err, ErrInvalidModule)
	})
	t.Run("watchdog too short", func(t *testing.T) {
		tg := target(t, "boron/4.1.0")
		tg.Options.Watchdog = 4 * time.Second
		_, err := Make(boron, tg)
		require.ErrorIs(t, err, ErrWatchdog)
	})
	t.Run("no platform", func(t *testing.T) {
		_, err := Make(state.Device{}, target(t, "boron/4.1.0"))
		require.ErrorIs(t, err, ErrNoPlatform)
	})
}

func TestRender(t *testing.T) {
	st := device(t, "boron/1.5.2", state.ModeNormal, tinker(t, "boron/1.5.2"))
	p, err := Make(st, target(t, "boron/4.1.0"))
	require.NoError(t, err)

	text := p.String()
	for _, want := range []string{
		"Plan for the Boron: Device OS 1.5.2 -> 4.1.0 (upgrade)",
		"softdevice 202 (SoftDevice S140 7.0.1): already installed",
		"  1. [normal] Send bootloader 1200",
		"  3. Enter DFU mode",
		"  4. [dfu] Write system-part1 4100 (Device OS 4.1.0) over DFU at 0x00030000 (alt 0, 507426 bytes)",
		"LED: blinking yellow. Your Boron keeps blinking yellow",
		"LED: blinking magenta.",
		"Afterwards the device should run in normal mode with bootloader 1200, system-part1 4100",
	} {
		assert.Contains(t, text, want)
	}

	b, err := json.Marshal(p)
	require.NoError(t, err)
	var j struct {
		Platform  string  `json:"platform"`
		From      string  `json:"from"`
		To        string  `json:"to"`
		Direction string  `json:"direction"`
		Estimated float64 `json:"estimated_seconds"`
		Skipped   []struct {
			Slot string `json:"slot"`
		} `json:"skipped"`
		Steps []struct {
			ID      string `json:"id"`
			Kind    string `json:"kind"`
			Method  string `json:"method"`
			Alt     *int   `json:"alt"`
			Address string `json:"address"`
			Size    int    `json:"size"`
			CRC     string `json:"data_crc32"`
			Mode    string `json:"mode"`
			LED     struct {
				Expect string `json:"expect"`
				IfNot  []struct {
					Seen, Do string
				} `json:"if_not"`
			} `json:"led"`
			Module *struct {
				Name    string `json:"name"`
				Version int    `json:"version"`
			} `json:"module"`
		} `json:"steps"`
		Expect []struct {
			Function string `json:"function"`
			Version  int    `json:"version"`
		} `json:"expect"`
	}
	require.NoError(t, json.Unmarshal(b, &j))
	assert.Equal(t, "boron", j.Platform)
	assert.Equal(t, "upgrade", j.Direction)
	assert.Positive(t, j.Estimated)
	require.Len(t, j.Steps, len(p.Steps))
	w := j.Steps[3]
	assert.Equal(t, "write:system-part1@4100", w.ID)
	assert.Equal(t, "write", w.Kind)
	assert.Equal(t, "dfu", w.Method)
	require.NotNil(t, w.Alt)
	assert.Equal(t, 0, *w.Alt)
	assert.Equal(t, "0x00030000", w.Address)
	assert.Equal(t, 507426, w.Size)
	assert.Len(t, w.CRC, 8)
	assert.Equal(t, "dfu", w.Mode)
	assert.Equal(t, "blinking yellow", w.LED.Expect)
	assert.NotEmpty(t, w.LED.IfNot)
	require.NotNil(t, w.Module)
	assert.Equal(t, "system-part1", w.Module.Name)
	c := j.Steps[0]
	assert.Equal(t, "control", c.Method)
	assert.Nil(t, c.Alt, "control requests have no DFU address")
	assert.Empty(t, c.Address)
	assert.Len(t, j.Expect, 4)
}

func TestEdgeCases(t *testing.T) {
	t.Run("up to date in DFU: only leave DFU", func(t *testing.T) {
		st := device(t, "boron/4.1.0", state.ModeDFU, tinker(t, "boron/4.1.0"))
		p, err := Make(st, target(t, "boron/4.1.0"))
		require.NoError(t, err)
		assert.Equal(t, []string{"reset -> normal" + cyan}, sigs(p))
	})
	t.Run("the same app is not written again", func(t *testing.T) {
		app := tinker(t, "boron/4.1.0")
		st := device(t, "boron/4.1.0", state.ModeNormal, app)
		p, err := Make(st, Target{App: app})
		require.NoError(t, err)
		assert.Empty(t, p.Steps)
		require.Len(t, p.Skipped, 1)
		assert.Equal(t, "user-part", p.Skipped[0].Slot)
	})
	t.Run("force rewrites what is installed", func(t *testing.T) {
		st := device(t, "boron/4.1.0", state.ModeNormal, tinker(t, "boron/4.1.0"))
		tg := target(t, "boron/4.1.0")
		tg.Options.Force = true
		p, err := Make(st, tg)
		require.NoError(t, err)
		var written []string
		for _, s := range p.Steps {
			if s.Kind == KindWrite {
				written = append(written, s.Slot)
			}
		}
		assert.ElementsMatch(t, []string{"bootloader", "system-part1", "softdevice"}, written)
		checkSafety(t, st, p)
	})
	t.Run("same version, other build: rewritten", func(t *testing.T) {
		st := device(t, "boron/4.1.0", state.ModeNormal, tinker(t, "boron/4.1.0"))
		for i := range st.Modules {
			if st.Modules[i].Function == fSys {
				st.Modules[i].CRC ^= 1
			}
		}
		p, err := Make(st, target(t, "boron/4.1.0"))
		require.NoError(t, err)
		assert.Contains(t, sigs(p), "write system-part1@4100 dfu 0x00030000/0"+yellow)
	})
	t.Run("turned-off parts are listed as skipped", func(t *testing.T) {
		st := device(t, "argon/2.3.0", state.ModeNormal, tinker(t, "argon/2.3.0"))
		tg := target(t, "argon/4.1.0")
		tg.Options.NoNCP = true
		p, err := Make(st, tg)
		require.NoError(t, err)
		var why []string
		for _, s := range p.Skipped {
			why = append(why, s.Why)
		}
		assert.Contains(t, why, "NCP updates are turned off")
	})
	t.Run("verify none and readback", func(t *testing.T) {
		st := device(t, "boron/1.5.2", state.ModeNormal, tinker(t, "boron/1.5.2"))
		tg := target(t, "boron/4.1.0")
		tg.Options.Verify = VerifyNone
		p, err := Make(st, tg)
		require.NoError(t, err)
		assert.NotEqual(t, KindVerify, p.Steps[len(p.Steps)-1].Kind)
		tg.Options.Verify = VerifyReadback
		p2, err := Make(st, tg)
		require.NoError(t, err)
		last := p2.Steps[len(p2.Steps)-1]
		assert.Equal(t, KindVerify, last.Kind)
		assert.Contains(t, last.Why, "read back")
	})
}

// protectedBootloader builds a bootloader carrying the SECURITY_MODE extension (mode 1),
// as Particle's -protected builds do.
func protectedBootloader(t *testing.T, platformName string, ver uint16) *module.Module {
	p := plat(t, platformName)
	slot, ok := p.SlotFor(fBoot, 0, ver)
	require.True(t, ok)
	sp, err := module.SpecForSlot(p, slot, ver)
	require.NoError(t, err)
	sp.SuffixExtensions = []module.Extension{module.SecurityModeExtension(1, nil)}
	b, err := module.Build(sp)
	require.NoError(t, err)
	m, err := module.Parse(b)
	require.NoError(t, err)
	require.NoError(t, m.Validate())
	mode, _, ok := m.SecurityMode()
	require.True(t, ok)
	require.Equal(t, uint8(1), mode)
	return m
}

func TestCombinedModule(t *testing.T) {
	mods := set(t, "boron/4.1.0")
	combined, err := module.Combine(mods[0].Data, mods[1].Data)
	require.NoError(t, err)
	st := device(t, "boron/1.5.2", state.ModeNormal, tinker(t, "boron/1.5.2"))

	cm, err := module.Parse(combined)
	require.NoError(t, err)
	_, err = Make(st, Target{Modules: []*module.Module{cm, mods[2]}})
	require.ErrorIs(t, err, ErrInvalidModule, "Parse keeps only the first part: refuse rather than lose the rest")

	parts, err := module.SplitCombined(combined)
	require.NoError(t, err)
	p, err := Make(st, Target{Modules: append(parts, mods[2])})
	require.NoError(t, err)
	want, err := Make(st, target(t, "boron/4.1.0"))
	require.NoError(t, err)
	assert.Equal(t, sigs(want), sigs(p))
}

// Two modules only Device OS can install, each needing the other's new version: no order
// exists, and the plan says so instead of sending a module Device OS would refuse.
func TestControlCycleRefused(t *testing.T) {
	p := plat(t, "p2")
	st := device(t, "p2/5.0.0", state.ModeNormal, tinker(t, "p2/5.0.0"))
	tg := Target{Modules: []*module.Module{
		build(t, p, spec{fBoot, 2, 9, []module.Dependency{dep(fBoot, 0, 3100)}}),
		build(t, p, spec{fBoot, 0, 3100, []module.Dependency{dep(fBoot, 2, 9)}}),
	}}
	_, err := Make(st, tg)
	require.ErrorIs(t, err, ErrDependency)
	assert.Contains(t, err.Error(), "no order installs")
	assert.NotEmpty(t, remedy.Of(err))
}

func TestDoneChecks(t *testing.T) {
	st := device(t, "argon/4.1.0", state.ModeNormal, tinker(t, "argon/2.3.0"))
	tg := target(t, "argon/4.1.0")
	tg.App = tinker(t, "argon/4.1.0")
	p, err := Make(st, tg)
	require.NoError(t, err)
	var inval, enter *Step
	for i := range p.Steps {
		switch p.Steps[i].Kind {
		case KindInvalidate:
			inval = &p.Steps[i]
		case KindEnterMode:
			enter = &p.Steps[i]
		}
	}
	require.NotNil(t, inval)
	require.NotNil(t, enter)
	assert.False(t, inval.Done(st), "the 128 KB app is still there")
	assert.True(t, inval.Done(without(st, fUser, 1)))
	assert.False(t, enter.Done(st))
	st.Mode = state.ModeDFU
	assert.True(t, enter.Done(st))
	assert.Len(t, p.Writes(), 2)
}
