package run_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
	"github.com/particle-flasher/particle-flasher/flasher/usb"
	"github.com/particle-flasher/particle-flasher/internal/simports"
)

// Environment of the child process of TestJourneysThroughUSB.
const (
	envLeg    = "PFLASH_TEST_LEG"
	envDevice = "PFLASH_TEST_DEVICE"
	envPorts  = "PFLASH_TEST_PORTS"
	envState  = "PFLASH_TEST_STATE"
)

const eventMarker = "RUN-EVENT "

// TestJourneysThroughUSB is acceptance 2: with the real release sets, virtual devices
// reached through the libusb shim (real gousb in a child process) and their ptys (real
// go.bug.st/serial) go up and back down, each leg ending booted normal at exactly the
// target versions: Photon 1.5.2 -> 2.3.1 -> 1.5.2, Electron 1.5.2 -> 2.3.1 -> 1.5.2,
// Argon 2.3.0 -> 4.1.0 (bootloader and SoftDevice included) -> 2.3.0, Boron 1.5.2 ->
// 4.1.0 -> 1.5.2. The Photon on 1.5.2 is switched to DFU mode by its serial port at 14400
// baud (Gen2 below 2.0.0), so the pty door is on the path.
func TestJourneysThroughUSB(t *testing.T) {
	journeys := []struct {
		name string
		legs []string
	}{
		{"photon", []string{"photon/1.5.2", "photon/2.3.1", "photon/1.5.2"}},
		{"electron", []string{"electron/1.5.2", "electron/2.3.1", "electron/1.5.2"}},
		{"argon", []string{"argon/2.3.0", "argon/4.1.0", "argon/2.3.0"}},
		{"boron", []string{"boron/1.5.2", "boron/4.1.0", "boron/1.5.2"}},
	}
	for _, jn := range journeys {
		t.Run(jn.name, func(t *testing.T) {
			if usbsim.InChild(t.Name()) {
				journeyChild(t)
				return
			}
			if testing.Short() {
				t.Skip("builds the libusb shim and re-executes the test binary")
			}
			f, err := sim.NewFleet(sim.FleetOptions{ShimDir: filepath.Join(t.TempDir(), "shim")})
			require.NoError(t, err)
			t.Cleanup(func() { _ = f.Close() })
			r := releases[jn.legs[0]]
			bins := append(append([][]byte(nil), r.bins(t)...), readShared(t, "apps", apps[r.platform]))
			if r.platform == "electron" {
				bins = append(bins, readShared(t, "releases", "electron-bootloader@2.3.1+lto.bin"))
			}
			d, err := f.Add(sim.Options{Platform: plat(t, r.platform), Modules: bins, DeviceID: newID()})
			require.NoError(t, err)
			require.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
			ports := simports.New(filepath.Join(t.TempDir(), "ports.json"))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ports.Follow(ctx, d)
			state := t.TempDir()
			for i, leg := range jn.legs[1:] {
				cmd := f.Server().TestCommand(t.Name(), "-test.v", "-test.timeout=5m")
				cmd.Env = append(cmd.Env, envLeg+"="+leg, envDevice+"="+d.ID(), envPorts+"="+ports.Path(), envState+"="+state)
				start := time.Now()
				out, err := cmd.CombinedOutput()
				events := childEvents(out)
				require.NoError(t, err, "leg %d to %s:\n%s", i+1, leg, out)
				require.NotEmpty(t, events)
				if os.Getenv("PFLASH_TEST_TRACE") != "" {
					for _, e := range events {
						t.Logf("%s %s %s %s %s", e.Time.Format("15:04:05.000"), e.Event, e.StepID, e.Waiting, e.Error)
					}
				}
				last := events[len(events)-1]
				require.Equal(t, run.EvDone, last.Event)
				require.Equal(t, run.ResultOK, last.Result, "%s %s", last.Error, last.Remedy)
				requireAt(t, d, releases[leg].target(t))
				t.Logf("leg %s -> %s: %d events, %s, device time %s", jn.legs[i], leg, len(events), time.Since(start).Round(time.Millisecond), d.Meter().Charged().Round(time.Millisecond))
				if jn.legs[i] == "photon/1.5.2" {
					assert.True(t, waitedFor(events, "14400-baud serial trigger"), "the Photon on 1.5.2 goes to DFU by its serial port")
				}
			}
		})
	}
}

func waitedFor(events []run.Event, what string) bool {
	for _, e := range events {
		if e.Event == run.EvWaiting && strings.Contains(e.Waiting, what) {
			return true
		}
	}
	return false
}

func childEvents(out []byte) []run.Event {
	var evs []run.Event
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, eventMarker); ok {
			var e run.Event
			if json.Unmarshal([]byte(rest), &e) == nil {
				evs = append(evs, e)
			}
		}
	}
	return evs
}

// journeyChild runs one leg with the real doors: gousb (loaded with the shim) and the ptys.
func journeyChild(t *testing.T) {
	leg, id := os.Getenv(envLeg), os.Getenv(envDevice)
	require.NotEmpty(t, leg)
	h, err := usb.NewHost()
	require.NoError(t, err)
	defer h.Close()
	doors := &device.USB{Host: h, ListPorts: simports.Reader(os.Getenv(envPorts))}
	r := run.New(run.Options{Bus: doors, Journal: &run.Store{Dir: os.Getenv(envState)}, Poll: 20 * time.Millisecond, ListenSettle: -1,
		Timeouts: run.Timeouts{Find: 20 * time.Second, EnterMode: 20 * time.Second, Reenumerate: 20 * time.Second, Apply: 30 * time.Second, Settle: 5 * time.Second},
		Events: func(e run.Event) {
			if e.Event == run.EvProgress {
				return
			}
			b, _ := json.Marshal(e)
			fmt.Fprintln(os.Stdout, eventMarker+string(b))
		}})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	_, err = r.Flash(ctx, id, releases[leg].target(t))
	require.NoError(t, err)
}
