package sim_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/led"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
)

type bootCase struct {
	name     string
	platform string
	files    []string
	user     uint16 // system module version the user part is built against; 0 = none
	userIdx  uint8  // system part index it depends on
	mode     sim.Mode
	want     sim.Mode
	safe     bool
	version  string // Device OS reported
	reason   string // substring of Status.Reason
}

// Complete release sets boot normal; mixed sets boot as their dependencies say.
func TestBootRealReleaseSets(t *testing.T) {
	cases := []bootCase{
		{name: "photon 1.5.2", platform: "photon", files: []string{"photon-bootloader@1.5.2+lto.bin", "photon-system-part1@1.5.2.bin", "photon-system-part2@1.5.2.bin"},
			user: 1512, userIdx: 2, want: sim.ModeNormal, version: "1.5.2"},
		{name: "photon 2.3.1", platform: "photon", files: []string{"photon-bootloader@2.3.1+lto.bin", "photon-system-part1@2.3.1.bin", "photon-system-part2@2.3.1.bin"},
			user: 2302, userIdx: 2, want: sim.ModeNormal, version: "2.3.1"},
		// The Electron 1.5.2 parts need a bootloader ≥ 400; the 2.3.1 one (1006) is the only
		// Electron bootloader in the releases folder.
		{name: "electron 1.5.2", platform: "electron", files: []string{"electron-bootloader@2.3.1+lto.bin", "electron-system-part1@1.5.2.bin", "electron-system-part2@1.5.2.bin", "electron-system-part3@1.5.2.bin"},
			user: 1512, userIdx: 2, want: sim.ModeNormal, version: "1.5.2"},
		{name: "electron 2.3.1", platform: "electron", files: []string{"electron-bootloader@2.3.1+lto.bin", "electron-system-part1@2.3.1.bin", "electron-system-part2@2.3.1.bin", "electron-system-part3@2.3.1.bin"},
			user: 2302, userIdx: 2, want: sim.ModeNormal, version: "2.3.1"},
		{name: "argon 2.3.0", platform: "argon", files: []string{"argon-bootloader@2.3.0.bin", "argon-system-part1@2.3.0.bin", "argon-softdevice@4.1.0.bin"},
			user: 2301, userIdx: 1, want: sim.ModeNormal, version: "2.3.0"},
		{name: "argon 4.1.0", platform: "argon", files: []string{"argon-bootloader@4.1.0.bin", "argon-system-part1@4.1.0.bin", "argon-softdevice@4.1.0.bin"},
			user: 4100, userIdx: 1, want: sim.ModeNormal, version: "4.1.0"},
		{name: "boron 1.5.2", platform: "boron", files: []string{"boron-bootloader@1.5.2.bin", "boron-system-part1@1.5.2.bin", "boron-softdevice@4.1.0.bin"},
			user: 1512, userIdx: 1, want: sim.ModeNormal, version: "1.5.2"},
		{name: "boron 4.1.0", platform: "boron", files: []string{"boron-bootloader@4.1.0.bin", "boron-system-part1@4.1.0.bin", "boron-softdevice@4.1.0.bin"},
			user: 4100, userIdx: 1, want: sim.ModeNormal, version: "4.1.0"},

		// part2 2.3.1 needs part1 ≥ 2302; a 1.5.2 part1 leaves it unmet.
		{name: "photon part1 1.5.2 + part2 2.3.1", platform: "photon", files: []string{"photon-bootloader@2.3.1+lto.bin", "photon-system-part1@1.5.2.bin", "photon-system-part2@2.3.1.bin"},
			user: 2302, userIdx: 2, want: sim.ModeSafe, safe: true, reason: "system-part2 needs system #1 ≥ 2302, has 1512"},
		// part1 2.3.1 needs part2 ≥ 207 only, which 1.5.2 meets; an application built for
		// 2.3.1 needs part2 ≥ 2302: safe mode.
		{name: "photon part1 2.3.1 + part2 1.5.2 + app for 2.3.1", platform: "photon", files: []string{"photon-bootloader@2.3.1+lto.bin", "photon-system-part1@2.3.1.bin", "photon-system-part2@1.5.2.bin"},
			user: 2302, userIdx: 2, want: sim.ModeSafe, safe: true, reason: "the user application needs system #2 ≥ 2302, has 1512"},
		// The same parts with an application for 1.5.2: every dependency Device OS checks is met.
		{name: "photon part1 2.3.1 + part2 1.5.2 + app for 1.5.2", platform: "photon", files: []string{"photon-bootloader@2.3.1+lto.bin", "photon-system-part1@2.3.1.bin", "photon-system-part2@1.5.2.bin"},
			user: 1512, userIdx: 2, want: sim.ModeNormal},
		// part1 4.1.0 needs bootloader ≥ 1200.
		{name: "boron 4.1.0 with the 1.5.2 bootloader", platform: "boron", files: []string{"boron-bootloader@1.5.2.bin", "boron-system-part1@4.1.0.bin", "boron-softdevice@4.1.0.bin"},
			user: 4100, userIdx: 1, want: sim.ModeSafe, safe: true, reason: "system-part1 needs bootloader #0 ≥ 1200, has 502"},
		{name: "argon without the SoftDevice", platform: "argon", files: []string{"argon-bootloader@4.1.0.bin", "argon-system-part1@4.1.0.bin"},
			user: 4100, userIdx: 1, want: sim.ModeDFU, reason: "no SoftDevice"},
		{name: "boron without an application", platform: "boron", files: []string{"boron-bootloader@4.1.0.bin", "boron-system-part1@4.1.0.bin", "boron-softdevice@4.1.0.bin"},
			want: sim.ModeSafe, safe: true, reason: "no user application"},
		{name: "erased system part", platform: "photon", files: []string{"photon-bootloader@2.3.1+lto.bin", "photon-system-part2@2.3.1.bin"},
			user: 2302, userIdx: 2, want: sim.ModeDFU, reason: "system-part1 is missing"},
		{name: "DFU requested", platform: "boron", files: []string{"boron-bootloader@4.1.0.bin", "boron-system-part1@4.1.0.bin", "boron-softdevice@4.1.0.bin"},
			user: 4100, userIdx: 1, mode: sim.ModeDFU, want: sim.ModeDFU, reason: "DFU requested"},
		{name: "safe requested", platform: "electron", files: []string{"electron-bootloader@2.3.1+lto.bin", "electron-system-part1@2.3.1.bin", "electron-system-part2@2.3.1.bin", "electron-system-part3@2.3.1.bin"},
			user: 2302, userIdx: 2, mode: sim.ModeSafe, want: sim.ModeSafe, safe: true},
		{name: "listening requested", platform: "argon", files: []string{"argon-bootloader@4.1.0.bin", "argon-system-part1@4.1.0.bin", "argon-softdevice@4.1.0.bin"},
			user: 4100, userIdx: 1, mode: sim.ModeListening, want: sim.ModeListening},
		{name: "no bootloader", platform: "boron", files: []string{"boron-system-part1@4.1.0.bin", "boron-softdevice@4.1.0.bin"},
			want: sim.ModeOff, reason: "no bootloader"},
	}
	wantLED := map[sim.Mode]led.State{sim.ModeNormal: led.Connected, sim.ModeSafe: led.SafeMode, sim.ModeDFU: led.DFU, sim.ModeListening: led.Listening, sim.ModeOff: led.Off}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := plat(t, tc.platform)
			mods := releases(t, tc.files...)
			if tc.user != 0 {
				mods = append(mods, userPart(t, p, tc.user, tc.userIdx))
			}
			d := newDevice(t, sim.Options{Platform: p, Modules: mods, Mode: tc.mode, NoSerial: true})
			st := d.Status()
			assert.True(t, st.Ready)
			assert.Equal(t, tc.want, st.Mode, "reason: %s", st.Reason)
			assert.Equal(t, tc.safe, st.Safe, "reason: %s", st.Reason)
			assert.Equal(t, wantLED[tc.want], st.LED)
			assert.Equal(t, tc.want != sim.ModeOff, st.OnBus)
			if tc.version != "" {
				assert.Equal(t, tc.version, st.SystemVersion)
			}
			if tc.reason != "" {
				assert.Contains(t, st.Reason, tc.reason)
			}
			// Every installed real module is in the table with its header's version.
			if tc.want == sim.ModeOff {
				return
			}
			table := d.Modules()
			for _, b := range mods {
				m, err := module.Parse(b)
				require.NoError(t, err)
				found := false
				for _, e := range table {
					if e.Present && e.Function == m.Function && e.Index == m.Index && e.Store == "main" {
						found = true
						assert.Equal(t, m.Version, e.Version, "%s", e.Name)
						if m.Function != platform.FuncRadio {
							assert.Equal(t, m.Start, e.Start, "%s", e.Name)
							assert.Equal(t, uint32(len(b)), e.Size, "%s", e.Name)
						}
					}
				}
				assert.True(t, found, "module %s not in the table %+v", m.SlotName(), table)
			}
		})
	}
}

// The SoftDevice is stored without its header, yet the table reports its version: Device OS
// reads the FWID from the SoftDevice info struct.
func TestRadioStackVersionFromFWID(t *testing.T) {
	p := plat(t, "boron")
	d := newDevice(t, sim.Options{Platform: p, NoSerial: true, Modules: append(
		releases(t, "boron-bootloader@4.1.0.bin", "boron-system-part1@4.1.0.bin", "boron-softdevice@6.0.0.bin"),
		userPart(t, p, 4100, 1))})
	// 6.0.0's SoftDevice is S140 6.0.0 (FWID 169), below the 202 part1 4.1.0 needs.
	st := d.Status()
	assert.Equal(t, sim.ModeSafe, st.Mode)
	assert.Contains(t, st.Reason, "needs radio #0 ≥ 202, has 169")
	sd := d.Memory(0).Snapshot(0x1000, 16)
	assert.Equal(t, release(t, "boron-softdevice@6.0.0.bin")[24:40], sd, "written without the prefix")
	var radio *sim.Module
	for _, m := range d.Modules() {
		if m.Function == platform.FuncRadio {
			radio = &m
		}
	}
	require.NotNil(t, radio)
	assert.Equal(t, uint16(169), radio.Version)
}

// The `s` JSON lists every slot, empty ones included, in Device OS's format.
func TestModuleJSON(t *testing.T) {
	p := plat(t, "boron")
	d := newDevice(t, sim.Options{Platform: p, NoSerial: true, Modules: releases(t, "boron-bootloader@1.5.2.bin", "boron-system-part1@1.5.2.bin", "boron-softdevice@4.1.0.bin")})
	got := d.ModuleJSON()
	assert.Equal(t, `{"p":13,"m":[`+
		`{"s":49152,"l":"m","vc":30,"vv":30,"f":"b","n":"0","v":502,"d":[{"f":"s","n":"1","v":1102}]},`+
		`{"s":671744,"l":"m","vc":30,"vv":30,"f":"s","n":"1","v":1512,"d":[{"f":"b","n":"0","v":501},{"f":"a","n":"0","v":202}]},`+
		`{"s":131072,"l":"m","vc":30,"vv":0,"d":[]},`+
		`{"s":155648,"l":"m","vc":30,"vv":30,"f":"a","n":"0","v":202,"d":[]}]}`, got)
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(got), &v), "valid JSON")
	assert.Equal(t, sim.ModeSafe, d.Mode(), "no application: safe mode")
}

func TestBlankDeviceBootsDFU(t *testing.T) {
	for _, name := range []string{"photon", "electron", "boron", "p2", "tracker"} {
		t.Run(name, func(t *testing.T) {
			d := newDevice(t, sim.Options{Platform: plat(t, name), Blank: true, NoSerial: true})
			st := d.Status()
			assert.Equal(t, sim.ModeDFU, st.Mode, st.Reason)
			assert.Equal(t, led.DFU, st.LED)
			mods := d.Modules()
			require.NotEmpty(t, mods)
			assert.True(t, mods[0].Present && mods[0].Function == platform.FuncBootloader, "%+v", mods[0])
		})
	}
}

// A synthetic set for any Device OS release boots normal on every platform that got it.
func TestSyntheticSetsBootNormal(t *testing.T) {
	for _, tc := range []struct{ platform, version string }{
		{"photon", "2.3.1"}, {"p1", "1.5.2"}, {"electron", "2.3.1"}, {"argon", "4.1.0"}, {"boron", "6.2.0"},
		{"boron", "2.3.0"}, {"bsom", "5.6.0"}, {"tracker", "4.1.0"}, {"xenon", "1.5.2"}, {"p2", "5.6.0"}, {"msom", "6.2.0"},
	} {
		t.Run(tc.platform+" "+tc.version, func(t *testing.T) {
			p := plat(t, tc.platform)
			mods, err := sim.SyntheticSet(p, tc.version)
			require.NoError(t, err)
			d := newDevice(t, sim.Options{Platform: p, Modules: mods, NoSerial: true})
			st := d.Status()
			assert.Equal(t, sim.ModeNormal, st.Mode, st.Reason)
			assert.Equal(t, tc.version, st.SystemVersion)
			for _, m := range d.Modules() {
				if m.Present {
					assert.True(t, m.Valid(), "%+v", m)
				}
			}
		})
	}
}

// The Electron's release files are named by link order, not index; Device OS lists the
// parts by index, as in the real 0.7.0 payload quoted in the reference (§3b).
func TestElectronModuleJSONOrder(t *testing.T) {
	p := plat(t, "electron")
	d := newDevice(t, sim.Options{Platform: p, NoSerial: true, Modules: append(
		releases(t, "electron-bootloader@2.3.1+lto.bin", "electron-system-part1@2.3.1.bin", "electron-system-part2@2.3.1.bin", "electron-system-part3@2.3.1.bin"),
		userPart(t, p, 2302, 2))})
	var v struct {
		P int `json:"p"`
		M []struct {
			S  int    `json:"s"`
			L  string `json:"l"`
			F  string `json:"f"`
			N  string `json:"n"`
			V  int    `json:"v"`
			VV int    `json:"vv"`
			U  string `json:"u"`
		} `json:"m"`
	}
	require.NoError(t, json.Unmarshal([]byte(d.ModuleJSON()), &v))
	assert.Equal(t, 10, v.P)
	var got []string
	for _, m := range v.M {
		got = append(got, m.F+m.N)
		assert.Equal(t, 30, m.VV, "%+v", m)
		assert.Equal(t, "m", m.L)
	}
	assert.Equal(t, []string{"b0", "s1", "s2", "s3", "u1"}, got)
	assert.Len(t, v.M[4].U, 64, "the user part carries its SHA-256")
}
