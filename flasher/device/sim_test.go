package device_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/listen"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/serialport"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/slots"
	"github.com/particle-flasher/particle-flasher/flasher/state"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// releaseSet is a platform's real Device OS modules from shared/firmware, plus a real
// application so that the device boots normal rather than safe.
type releaseSet struct {
	platform string
	files    []string // under releases/
	app      string   // under apps/
	deviceOS string
}

var releaseSets = []releaseSet{
	{"photon", []string{"photon-bootloader@2.3.1+lto.bin", "photon-system-part1@2.3.1.bin", "photon-system-part2@2.3.1.bin"}, "photon_tinker_tinker-0.4.5-photon.bin", "2.3.1"},
	{"electron", []string{"electron-bootloader@2.3.1+lto.bin", "electron-system-part1@2.3.1.bin", "electron-system-part2@2.3.1.bin", "electron-system-part3@2.3.1.bin"}, "binaries_electron_tinker.bin", "2.3.1"},
	{"argon", []string{"argon-bootloader@4.1.0.bin", "argon-system-part1@4.1.0.bin", "argon-softdevice@4.1.0.bin", "argon-ncp-firmware@0.0.5.bin"}, "binaries_argon_stroby.bin", "4.1.0"},
	{"boron", []string{"boron-bootloader@4.1.0.bin", "boron-system-part1@4.1.0.bin", "boron-softdevice@4.1.0.bin"}, "binaries_boron_blank.bin", "4.1.0"},
}

func (rs releaseSet) load(t *testing.T) (*platform.Platform, [][]byte) {
	t.Helper()
	p, ok := platform.ByName(rs.platform)
	require.True(t, ok)
	var bins [][]byte
	for _, f := range rs.files {
		b, err := os.ReadFile(filepath.Join(testshared.Dir(t, "firmware", "releases"), f))
		require.NoError(t, err)
		bins = append(bins, b)
	}
	b, err := os.ReadFile(filepath.Join(testshared.Dir(t, "firmware", "apps"), rs.app))
	require.NoError(t, err)
	return p, append(bins, b)
}

// summary is what must agree between the doors: every installed main-store module's
// identity, version, dependencies and verdict.
type summary struct {
	Function platform.Function
	Index    uint8
	Version  uint16
	Deps     string
	Valid    bool
}

func summarise(p *platform.Platform, mods []state.Module) []summary {
	var out []summary
	for _, m := range mods {
		if !m.Present || m.Location != "main" {
			continue
		}
		if s, ok := p.Slot(m.Function, m.Index); ok && s.Storage != platform.StorageInternal {
			continue // the NCP lives on another chip: DFU cannot see it
		}
		deps := ""
		for _, d := range m.Deps {
			deps += fmt.Sprintf("%s/%d/%d ", d.Function, d.Index, d.Version)
		}
		out = append(out, summary{m.Function, m.Index, m.Version, deps, m.Valid()})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Function != out[j].Function {
			return out[i].Function < out[j].Function
		}
		return out[i].Index < out[j].Index
	})
	return out
}

func quickCtrl(d *sim.Device) *ctrl.Client {
	return ctrl.New(d, ctrl.Options{RequestTimeout: 10 * time.Second, OutNeedsData: d.Platform().ControlOutNeedsData,
		Sleep: func(ctx context.Context, _ time.Duration) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Millisecond):
				return nil
			}
		}})
}

// TestModulesAgreeAcrossDoors is acceptance 3: the modules read from flash in DFU mode
// (DfuSe UPLOAD) equal those the device itself reports in normal mode (control request
// 90) and in listening mode (`s`), for real release sets of four platforms.
func TestModulesAgreeAcrossDoors(t *testing.T) {
	for _, rs := range releaseSets {
		t.Run(rs.platform, func(t *testing.T) {
			p, bins := rs.load(t)
			d, err := sim.New(sim.Options{Platform: p, Modules: bins})
			require.NoError(t, err)
			t.Cleanup(func() { _ = d.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			require.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
			c := quickCtrl(d)

			// Normal mode: control request 90.
			infos, err := c.ModuleInfo(ctx)
			require.NoError(t, err)
			normal := device.FromControl(p, state.ModeNormal, infos, 0).Modules
			want := summarise(p, normal)
			require.NotEmpty(t, want)
			for _, s := range want {
				assert.True(t, s.Valid, "%+v invalid in normal mode", s)
			}
			// Who the unit is: requests 21 and 554 over USB, the same as `i` tells in
			// listening mode (Gen3: serial number; cellular: ICCID and IMEI).
			rd, err := device.ReadControl(ctx, c, p, state.ModeNormal)
			require.NoError(t, err)
			ident := d.Identity()
			if p.Gen >= 3 || rs.platform == "photon" {
				assert.Equal(t, ident.Serial, rd.Identity.SerialNumber)
			}
			if rs.platform == "boron" {
				assert.Equal(t, ident.ICCID, rd.Identity.ICCID)
				assert.Empty(t, rd.Identity.IMEI, "4.1.0 gives the ICCID alone")
			} else {
				assert.Empty(t, rd.Identity.ICCID, "no modem reached by request 554")
			}
			if p.HasNCP {
				assert.NotEmpty(t, rd.Identity.NCPVersion)
			}

			// Listening mode: `s` over the serial port.
			require.NoError(t, c.StartListening(ctx))
			_, err = d.WaitMode(ctx, sim.ModeListening)
			require.NoError(t, err)
			door := &device.SerialDoor{
				ListPorts: func() ([]serialport.PortInfo, error) {
					return []serialport.PortInfo{{Path: d.SerialPath(), VID: p.VID, PID: p.PID, Serial: d.ID()}}, nil
				},
				Console: listen.Options{Quiet: 50 * time.Millisecond},
			}
			sights, err := door.Sightings(ctx)
			require.NoError(t, err)
			require.Len(t, sights, 1)
			assert.Equal(t, d.ID(), sights[0].DeviceID)
			l, err := door.Open(ctx, sights[0], device.ModeListening)
			require.NoError(t, err)
			listening, err := device.Read(ctx, l)
			require.NoError(t, err)
			assert.Equal(t, want, summarise(p, listening.Modules), "listening mode `s`")
			if p.Gen >= 3 {
				assert.Equal(t, ident.Serial, listening.Identity.SerialNumber, "listening mode `i`")
			}
			if rs.platform == "boron" || rs.platform == "electron" {
				assert.Equal(t, ident.IMEI, listening.Identity.IMEI, "listening mode `i`")
				assert.Equal(t, ident.ICCID, listening.Identity.ICCID, "listening mode `i`")
			}

			// DFU mode: read from flash.
			require.NoError(t, c.StopListening(ctx))
			require.NoError(t, c.EnterDFU(ctx))
			_, err = d.WaitMode(ctx, sim.ModeDFU)
			require.NoError(t, err)
			client := dfu.New(d, dfu.Options{TransferSize: p.TransferSize})
			read, err := slots.ReadModules(ctx, client, p, nil)
			require.NoError(t, err)
			inDFU := device.FromDFU(p, read).Modules
			assert.Equal(t, want, summarise(p, inDFU), "DFU UPLOAD")
			t.Logf("%s: %+v", rs.platform, want)
			for _, m := range inDFU {
				if m.Present {
					assert.Empty(t, m.Unchecked, "%s: every check is made from flash", m.Name)
				}
			}

			// The Device OS name comes out the same way.
			for _, m := range inDFU {
				if m.Function == platform.FuncSystem {
					assert.Equal(t, rs.deviceOS, m.DeviceOS)
				}
			}
		})
	}
}

// TestDFUReadingSeesWhatSafeModeHides: a Boron 4.1.0 system part with a 1.5.2 bootloader
// boots safe; the DFU reading shows the unmet dependency the same way normal mode does.
func TestDFUReadingSeesWhatSafeModeHides(t *testing.T) {
	rs := releaseSets[3]
	rs.files = []string{"boron-bootloader@1.5.2.bin", "boron-system-part1@4.1.0.bin", "boron-softdevice@4.1.0.bin"}
	p, bins := rs.load(t)
	d, err := sim.New(sim.Options{Platform: p, Modules: bins, NoSerial: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	require.Equal(t, sim.ModeSafe, d.Mode())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := quickCtrl(d)
	infos, err := c.ModuleInfo(ctx)
	require.NoError(t, err)
	normal := device.FromControl(p, state.ModeNormal, infos, 0).Modules
	want := summarise(p, normal)
	require.NoError(t, c.EnterDFU(ctx))
	_, err = d.WaitMode(ctx, sim.ModeDFU)
	require.NoError(t, err)
	read, err := slots.ReadModules(ctx, dfu.New(d, dfu.Options{TransferSize: 4096}), p, nil)
	require.NoError(t, err)
	got := device.FromDFU(p, read).Modules
	assert.Equal(t, want, summarise(p, got))
	for _, m := range got {
		if m.Function == platform.FuncSystem {
			assert.False(t, m.Valid())
			assert.Equal(t, []string{"dependencies"}, m.Failed())
			require.Len(t, m.Deps, 2)
			assert.False(t, m.Deps[0].Met, "bootloader ≥ 1200 with 502 installed")
			assert.Equal(t, uint16(502), m.Deps[0].Have)
			assert.True(t, m.Deps[1].Met, "radio ≥ 202")
		}
	}
}
