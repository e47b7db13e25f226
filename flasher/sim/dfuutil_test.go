package sim_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// dfuUtil runs the Debian dfu-util through the libusb shim and returns its output.
func dfuUtil(t *testing.T, f *sim.Fleet, args ...string) string {
	t.Helper()
	return testshared.RunDfuUtil(t, f.Env(), 30*time.Second, args...)
}

// doorEnv is the environment that puts dfu-util on a door onto the fleet: "shim" (the
// libusb shim on LD_LIBRARY_PATH) or "umockdev" (Debian's libusb, unmodified, below which
// the umockdev testbed mirrors the fleet).
func doorEnv(t *testing.T, f *sim.Fleet, door string) []string {
	t.Helper()
	if door == "shim" {
		return f.Env()
	}
	b := startUmockdev(t, f)
	return b.Env()
}

var foundLines = testshared.FoundDFU

func TestDFUUtilListsAltSettings(t *testing.T) {
	for _, name := range []string{"photon", "p1", "electron", "boron", "tracker", "p2"} {
		t.Run(name, func(t *testing.T) {
			p := plat(t, name)
			f := newFleet(t)
			d, err := f.Add(sim.Options{Platform: p, Blank: true, NoSerial: true})
			require.NoError(t, err)
			out := dfuUtil(t, f, "-l")
			lines := foundLines(out)
			require.Len(t, lines, len(p.Alts), out)
			for _, a := range p.Alts {
				var line string
				for _, l := range lines {
					if strings.Contains(l, fmt.Sprintf("alt=%d,", a.Alt)) {
						line = l
					}
				}
				require.NotEmpty(t, line, "alt %d in:\n%s", a.Alt, out)
				assert.Contains(t, line, fmt.Sprintf("[%04x:%04x]", p.DFUVID, p.DFUPID))
				assert.Contains(t, line, `name="`+a.Layout+`"`)
				assert.Contains(t, line, `serial="`+d.ID()+`"`)
			}
		})
	}
}

// dfuCase writes a real system part with dfu-util, reads it back, and leaves DFU.
type dfuCase struct {
	platform string
	preload  []string // installed before: everything but the part written
	user     uint16
	userIdx  uint8
	file     string
	addr     uint32
}

// The same through both doors: the libusb shim, and umockdev under Debian's own libusb.
func TestDFUUtilDownloadUploadLeave(t *testing.T) {
	for _, door := range []string{"shim", "umockdev"} {
		t.Run(door, func(t *testing.T) { testDFUUtilDownloadUploadLeave(t, door) })
	}
}

func testDFUUtilDownloadUploadLeave(t *testing.T, door string) {
	for _, tc := range []dfuCase{
		{platform: "photon", preload: []string{"photon-bootloader@2.3.1+lto.bin", "photon-system-part2@2.3.1.bin"}, user: 2302, userIdx: 2,
			file: "photon-system-part1@2.3.1.bin", addr: 0x08020000},
		{platform: "boron", preload: []string{"boron-bootloader@4.1.0.bin", "boron-softdevice@4.1.0.bin"}, user: 4100, userIdx: 1,
			file: "boron-system-part1@4.1.0.bin", addr: 0x30000},
	} {
		t.Run(tc.platform, func(t *testing.T) {
			t.Parallel()
			p := plat(t, tc.platform)
			f := newFleet(t)
			d, err := f.Add(sim.Options{Platform: p, NoSerial: true,
				Modules: append(releases(t, tc.preload...), userPart(t, p, tc.user, tc.userIdx))})
			require.NoError(t, err)
			st := d.Status()
			require.Equal(t, sim.ModeDFU, st.Mode, "no system part: DFU (%s)", st.Reason)
			env := doorEnv(t, f, door)
			dfuUtil := func(t *testing.T, _ *sim.Fleet, args ...string) string {
				t.Helper()
				return testshared.RunDfuUtil(t, env, 30*time.Second, args...)
			}

			dir := t.TempDir()
			file := filepath.Join(testSharedReleases(t), tc.file)
			want := release(t, tc.file)
			addr := fmt.Sprintf("0x%08x", tc.addr)
			dev := fmt.Sprintf("%04x:%04x", p.DFUVID, p.DFUPID)

			out := dfuUtil(t, f, "-d", dev, "-a", "0", "-s", addr, "-D", file)
			assert.Contains(t, out, "File downloaded successfully")
			assert.Equal(t, want, d.Memory(0).Snapshot(tc.addr, uint32(len(want))), "flash holds exactly the file")
			assert.Equal(t, sim.ModeDFU, d.Mode(), "no :leave: still in DFU")

			back := filepath.Join(dir, "back.bin")
			dfuUtil(t, f, "-d", dev, "-a", "0", "-s", fmt.Sprintf("%s:%d", addr, len(want)), "-U", back)
			got, err := os.ReadFile(back)
			require.NoError(t, err)
			assert.Equal(t, want, got, "-U reads the same bytes back")

			boots := d.Status().Boots
			dfuUtil(t, f, "-d", dev, "-a", "0", "-s", addr+":leave", "-D", file)
			st = waitMode(t, d, sim.ModeNormal)
			assert.Greater(t, st.Boots, boots)
			assert.Equal(t, "DFU leave", st.LastReset)
			assert.True(t, st.OnBus)
			part, ok := findModule(d.Modules(), platform.FuncSystem, 1)
			require.True(t, ok)
			assert.True(t, part.Valid(), "%+v", part)
			assert.Equal(t, uint32(len(want)), part.Size)
			key, ok := f.Server().Key(d.USB())
			assert.True(t, ok, "back on USB (key %d)", key)
			// The umockdev testbed follows the bus within its 10 ms poll: the DFU interface
			// is gone once the re-enumeration's udev remove and add have been sent. Waited
			// for here, not in an Eventually: a dfu-util that fails fails the test on its
			// own goroutine, with its output.
			deadline := time.Now().Add(10 * time.Second)
			for len(foundLines(dfuUtil(t, f, "-l"))) != 0 {
				require.True(t, time.Now().Before(deadline), "normal mode: no DFU interface within 10 s")
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

func findModule(mods []sim.Module, fn platform.Function, idx uint8) (sim.Module, bool) {
	for _, m := range mods {
		if m.Function == fn && m.Index == idx && m.Store == "main" {
			return m, true
		}
	}
	return sim.Module{}, false
}
