package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/state"
	"github.com/particle-flasher/particle-flasher/internal/stubdev"
)

// listExec runs pflash in-process; the tests write `inspect-device ID` for
// `inspect --device ID`.
func listExec(args []string, stdout, stderr io.Writer) int {
	if i := slices.Index(args, "inspect-device"); i >= 0 {
		args = slices.Concat(args[:i], []string{"inspect", "--device"}, args[i+1:])
	}
	return run(args, stdout, stderr)
}

func listRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := listExec(args, &out, &errb)
	return code, out.String(), errb.String()
}

// listStubDoor serves fixed sightings and module tables, for output tests without USB.
type listStubDoor struct {
	name   string
	mu     sync.Mutex
	sights []device.Sighting
	mods   map[string][]state.Module
	probes map[string]device.Probe
}

func (s *listStubDoor) Name() string { return s.name }
func (s *listStubDoor) Sightings(context.Context) ([]device.Sighting, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]device.Sighting(nil), s.sights...), nil
}
func (s *listStubDoor) NeedsProbe(x device.Sighting) bool { _, ok := s.probes[x.Key]; return ok }
func (s *listStubDoor) Probe(_ context.Context, x device.Sighting) (device.Probe, error) {
	return s.probes[x.Key], nil
}
func (s *listStubDoor) Open(_ context.Context, x device.Sighting, mode state.Mode) (device.Link, error) {
	m, ok := s.mods[x.Key]
	if !ok {
		return nil, device.ErrNotSupported
	}
	return stubdev.New(x.DeviceID, x.Platform, mode, x.Key, m), nil
}

func listWithDoors(t *testing.T, doors ...device.Door) {
	t.Helper()
	old := openDoors
	openDoors = func(*globals) ([]device.Door, func(), error) { return doors, func() {}, nil }
	t.Cleanup(func() { openDoors = old })
}

var (
	listBoronP, _ = platform.ByName("boron")
)

const (
	listIDA = "e00fce68d1234567890abcde"
	listIDB = "e00fce68aaaaaaaaaaaaaaaa"
)

// listBoronModules is a Boron's module table as control request 90 gives it.
func listBoronModules(depOK bool) []state.Module {
	mods := []state.Module{
		{Function: platform.FuncBootloader, Version: 1200, Location: "main", Present: true, Checks: state.Checks{Integrity: true, Range: true, Platform: true, Dependencies: true}, Source: state.SourceControl, MaxSize: 49152},
		{Function: platform.FuncSystem, Index: 1, Version: 4100, Location: "main", Present: true, Checks: state.Checks{Integrity: true, Range: true, Platform: true, Dependencies: depOK},
			Deps: []state.Dependency{{Function: platform.FuncBootloader, Version: 1200, Met: depOK, Have: 1200}, {Function: platform.FuncRadio, Version: 202, Met: true, Have: 202}}, Source: state.SourceControl},
		{Function: platform.FuncUser, Index: 2, Version: 6, Location: "main", Present: true, Checks: state.AllChecks, Source: state.SourceControl,
			Deps: []state.Dependency{{Function: platform.FuncSystem, Index: 1, Version: 4100, Met: true, Have: 4100}}},
		{Function: platform.FuncRadio, Version: 202, Location: "main", Present: true, Checks: state.AllChecks, Source: state.SourceControl},
	}
	if !depOK {
		mods[0].Version = 502 // the bootloader the 4.1.0 system part needs 1200 of
		mods[1].Deps[0].Have = 502
	}
	return mods
}

func TestListJSONOneObjectPerDevice(t *testing.T) {
	usb := &listStubDoor{name: device.DoorUSB, mods: map[string][]state.Module{"a": listBoronModules(true), "b": listBoronModules(false)}}
	usb.sights = []device.Sighting{
		{Door: device.DoorUSB, Key: "a", Path: "1-1", DeviceID: listIDA, Serial: listIDA, Platform: listBoronP},
		{Door: device.DoorUSB, Key: "b", Path: "1-2", DeviceID: listIDB, Serial: listIDB, Platform: listBoronP},
		{Door: device.DoorUSB, Key: "c", Path: "1-3", DeviceID: "e00fce68cccccccccccccccc", Serial: "e00fce68cccccccccccccccc", Platform: listBoronP, DFU: true},
	}
	ser := &listStubDoor{name: device.DoorSerial}
	ser.sights = []device.Sighting{{Door: device.DoorSerial, Key: "/dev/ttyACM0", Path: "/dev/ttyACM0", DeviceID: listIDA, Serial: listIDA, Platform: listBoronP}}
	listWithDoors(t, usb, ser)

	code, out, errOut := listRun(t, "list", "--json")
	require.Equal(t, exitOK, code, errOut)
	type row struct {
		DeviceID   string   `json:"device_id"`
		Platform   string   `json:"platform"`
		PlatformID *int     `json:"platform_id"`
		Mode       string   `json:"mode"`
		Doors      []string `json:"doors"`
	}
	rows := decodeLines[row](t, out)
	require.Len(t, rows, 3, out)
	byID := map[string]row{}
	for _, r := range rows {
		byID[r.DeviceID] = r
		assert.Equal(t, "boron", r.Platform)
		require.NotNil(t, r.PlatformID)
		assert.Equal(t, 13, *r.PlatformID)
	}
	assert.Equal(t, "normal", byID[listIDA].Mode)
	assert.Equal(t, []string{"usb", "serial"}, byID[listIDA].Doors)
	assert.Equal(t, "safe", byID[listIDB].Mode, "a failed dependency in normal mode means safe mode")
	assert.Equal(t, "dfu", byID["e00fce68cccccccccccccccc"].Mode)

	// Human output: one row per device.
	code, out, _ = listRun(t, "list")
	require.Equal(t, exitOK, code)
	assert.Contains(t, out, "DEVICE ID")
	assert.Equal(t, 4, strings.Count(out, "\n"), out)
	assert.Contains(t, out, "usb+serial")
}

func TestListPermissionProblemExitsWithAccess(t *testing.T) {
	perm := remedy.With(errors.New("no permission to open the Boron in DFU mode (2b04:d00d) at USB port 1-4"), "install the udev rule")
	usb := &listStubDoor{name: device.DoorUSB}
	usb.sights = []device.Sighting{{Door: device.DoorUSB, Key: "k", Path: "1-4", Platform: listBoronP, DFU: true, Err: perm}}
	listWithDoors(t, usb)
	code, out, errOut := listRun(t, "list")
	assert.Equal(t, exitAccess, code)
	assert.Contains(t, out, "permission")
	assert.Contains(t, errOut, "What to do: install the udev rule")

	code, out, _ = listRun(t, "list", "--json")
	assert.Equal(t, exitAccess, code)
	type row struct {
		Error  string `json:"error"`
		Remedy string `json:"remedy"`
		Mode   string `json:"mode"`
	}
	rows := decodeLines[row](t, out)
	require.Len(t, rows, 1)
	assert.Contains(t, rows[0].Error, "no permission")
	assert.Equal(t, "install the udev rule", rows[0].Remedy)
	assert.Equal(t, "dfu", rows[0].Mode)
}

func TestListNoDevices(t *testing.T) {
	listWithDoors(t, &listStubDoor{name: device.DoorUSB})
	code, out, _ := listRun(t, "list")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "No Particle devices found")
	code, out, _ = listRun(t, "list", "--json")
	assert.Equal(t, exitOK, code)
	assert.Empty(t, out)
}

func TestInspectDeviceJSONAndText(t *testing.T) {
	usb := &listStubDoor{name: device.DoorUSB, mods: map[string][]state.Module{"a": listBoronModules(true), "b": listBoronModules(false)}}
	usb.sights = []device.Sighting{
		{Door: device.DoorUSB, Key: "a", Path: "1-1", DeviceID: listIDA, Serial: listIDA, Platform: listBoronP},
		{Door: device.DoorUSB, Key: "b", Path: "1-2", DeviceID: listIDB, Serial: listIDB, Platform: listBoronP},
	}
	listWithDoors(t, usb)

	code, out, errOut := listRun(t, "--json", "inspect-device", strings.ToUpper(listIDA))
	require.Equal(t, exitOK, code, errOut)
	type obj struct {
		DeviceID string `json:"device_id"`
		Platform string `json:"platform"`
		Mode     string `json:"mode"`
		DeviceOS string `json:"device_os"`
		Modules  []struct {
			Function string `json:"function"`
			Index    int    `json:"index"`
			Version  int    `json:"version"`
			DeviceOS string `json:"device_os"`
			Location string `json:"location"`
			Valid    bool   `json:"valid"`
			Checks   map[string]bool
		} `json:"modules"`
	}
	objs := decodeLines[obj](t, out)
	require.Len(t, objs, 1)
	o := objs[0]
	assert.Equal(t, listIDA, o.DeviceID)
	assert.Equal(t, "boron", o.Platform)
	assert.Equal(t, "normal", o.Mode)
	require.Len(t, o.Modules, 4)
	assert.Equal(t, "system", o.Modules[1].Function)
	assert.Equal(t, 4100, o.Modules[1].Version)
	assert.Equal(t, "main", o.Modules[1].Location)
	assert.True(t, o.Modules[1].Valid)
	assert.Equal(t, map[string]bool{"integrity": true, "range": true, "platform": true, "dependencies": true}, o.Modules[1].Checks)

	// The safe-mode unit: text output with a FAIL on the bootloader dependency; exit 1.
	code, out, _ = listRun(t, "inspect-device", listIDB)
	assert.Equal(t, exitFailed, code)
	assert.Contains(t, out, "safe mode")
	assert.Contains(t, out, "Dependencies: FAIL")
	assert.Contains(t, out, "bootloader module #0 >= 1200: FAIL (installed 502)")
	assert.Contains(t, out, "radio stack module #0 >= 202: PASS")
	assert.Contains(t, out, "Integrity: PASS")

	code, _, errOut = listRun(t, "inspect-device", "ffffffffffffffffffffffff")
	assert.Equal(t, exitNoDevice, code)
	assert.Contains(t, errOut, "What to do:")
}

func TestWatchJSONStream(t *testing.T) {
	usb := &listStubDoor{name: device.DoorUSB, mods: map[string][]state.Module{"a": listBoronModules(true)}}
	usb.sights = []device.Sighting{{Door: device.DoorUSB, Key: "a", Path: "1-1", DeviceID: listIDA, Serial: listIDA, Platform: listBoronP}}
	listWithDoors(t, usb)
	pr, pw := io.Pipe()
	var errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- listExecWatch(t, pw, &errb)
		_ = pw.Close()
	}()
	lines := make(chan string, 16)
	go func() {
		buf := make([]byte, 0, 4096)
		tmp := make([]byte, 1024)
		for {
			n, err := pr.Read(tmp)
			buf = append(buf, tmp[:n]...)
			for {
				i := bytes.IndexByte(buf, '\n')
				if i < 0 {
					break
				}
				lines <- string(buf[:i])
				buf = buf[i+1:]
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	var got []string
	timeout := time.After(5 * time.Second)
	for len(got) < 3 {
		select {
		case l := <-lines:
			got = append(got, l)
		case <-timeout:
			t.Fatalf("watch printed only %q", got)
		}
	}
	assert.Contains(t, got[0], `"event":"appeared"`)
	assert.Contains(t, got[0], `"device_id":"`+listIDA+`"`)
	assert.Contains(t, got[1], `"event":"modules-read"`)
	assert.Contains(t, got[1], `"modules":4`)
	assert.Contains(t, got[2], `"event":"ready"`)
	listWatchCancel()
	select {
	case code := <-done:
		assert.Equal(t, exitOK, code, errb.String())
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not stop on cancel")
	}
}

var (
	listWatchCancelMu sync.Mutex
	listWatchCancel   = func() {}
)

// listExecWatch runs `list --watch --json` with a context the test cancels (Ctrl-C stands in).
func listExecWatch(t *testing.T, stdout io.Writer, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(context.Background())
	listWatchCancelMu.Lock()
	listWatchCancel = cancel
	listWatchCancelMu.Unlock()
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRoot(g)
	root.SetArgs([]string{"list", "--watch", "--json"})
	if err := root.ExecuteContext(ctx); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return exitFailed
	}
	return exitOK
}
