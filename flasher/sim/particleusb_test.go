package sim_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/internal/testbundle"
)

// peerDir is the particle-usb peer program (peers/particle-usb), installed by `make test`
// (npm ci).
var peerDir = filepath.Join("..", "..", "peers", "particle-usb")

// peerLine is one answer the peer printed.
type peerLine struct {
	Request string          `json:"request"`
	Got     json.RawMessage `json:"got"`
	Error   string          `json:"error"`
}

// peerCheck is one row of the table: what the sim says the answer must be, and what
// particle-usb got.
type peerCheck struct {
	request, expected, got string
	ok                     bool
}

// particleUSBModuleType is particle-usb's name for a module function (FirmwareModule).
var particleUSBModuleType = map[platform.Function]string{
	platform.FuncBootloader: "BOOTLOADER", platform.FuncSystem: "SYSTEM_PART", platform.FuncUser: "USER_PART",
	platform.FuncMono: "MONO_FIRMWARE", platform.FuncNCP: "NCP_FIRMWARE", platform.FuncRadio: "RADIO_STACK", platform.FuncAsset: "ASSET",
}

// simModules is the module table as the sim holds it, in particle-usb's terms. Device OS
// before 5.6.0 answers in the deprecated form: main-store modules only, sizes without the
// CRC (ctrl.EncodeModuleInfoReply).
func simModules(d *sim.Device) string {
	legacy := false
	for _, m := range d.Modules() {
		if m.Present && m.Function == platform.FuncSystem && m.Version < 5600 {
			legacy = true
		}
	}
	var out []string
	for _, m := range d.Modules() {
		if !m.Present || (legacy && m.Store != "main") {
			continue
		}
		size := m.Size
		if legacy {
			size -= module.CRCSize
		}
		out = append(out, fmt.Sprintf("%s#%d v%d %dB", particleUSBModuleType[m.Function], m.Index, m.Version, size))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// peerModules is a getFirmwareModuleInfo answer in the same terms.
func peerModules(raw json.RawMessage) string {
	var mods []struct {
		Type                 string `json:"type"`
		Index, Version, Size int
	}
	if json.Unmarshal(raw, &mods) != nil {
		return string(raw)
	}
	var out []string
	for _, m := range mods {
		out = append(out, fmt.Sprintf("%s#%d v%d %dB", m.Type, m.Index, m.Version, m.Size))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// TestParticleUSBPeer is issue 16's acceptance 1: Particle's own host library,
// particle-usb (node, its own libusb linked in statically), through the umockdev door
// against a Photon on 2.3.1, a Boron on 4.1.0 and a P2 on a synthetic 5.9.0: list, open,
// device ID, serial number, system version, mode, module info, listening mode in and out,
// the bootloader by updateFirmware in normal mode, DFU mode, writeOverDfu and reading it
// back, reset. Every answer is checked against the sim's own state and flash, and printed
// as a table.
func TestParticleUSBPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node and the umockdev bridge")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed (scripts/ensure-deps.sh test installs it)")
	}
	if _, err := os.Stat(filepath.Join(peerDir, "node_modules", "particle-usb")); err != nil {
		t.Skipf("particle-usb is not installed: run `npm ci --prefix %s` (make test does)", peerDir)
	}
	devices := []struct{ platform, version string }{{"photon", "2.3.1"}, {"boron", "4.1.0"}, {"p2", "5.9.0"}}
	f := newFleet(t)
	var table []peerCheck
	for i, dv := range devices {
		p := plat(t, dv.platform)
		files := testbundle.Release(t, dv.platform, dv.version)
		var mods [][]byte
		var app, boot []byte
		for name, b := range files {
			mods = append(mods, b)
			m, err := module.Parse(b)
			require.NoError(t, err, name)
			switch m.Function {
			case platform.FuncUser:
				app = b
			case platform.FuncBootloader:
				boot = b
			}
		}
		require.NotNil(t, app, "%s %s ships an application", dv.platform, dv.version)
		require.NotNil(t, boot)
		id := fmt.Sprintf("e00fce68716e5b0000000%03d", i)
		d, err := f.Add(sim.Options{Platform: p, Modules: mods, DeviceID: id, NoSerial: true})
		require.NoError(t, err)
		require.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
		table = append(table, peerRun(t, f, node, d, app, boot)...)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "%-4s %-48s | %-60s | %s\n", "ok", "request", "expected (the sim)", "got (particle-usb)")
	bad := 0
	for _, c := range table {
		mark := "ok"
		if !c.ok {
			mark, bad = "FAIL", bad+1
		}
		fmt.Fprintf(&b, "%-4s %-48s | %-60s | %s\n", mark, c.request, clip(c.expected, 60), clip(c.got, 200))
	}
	t.Logf("particle-usb against the virtual devices through umockdev:\n%s", b.String())
	require.Zero(t, bad, "answers that differ from the sim's state")
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

// peerRun runs the peer program against one device and checks its answers.
func peerRun(t *testing.T, f *sim.Fleet, node string, d *sim.Device, app, boot []byte) []peerCheck {
	t.Helper()
	bridge := startUmockdev(t, f)
	defer bridge.Close()
	dir := t.TempDir()
	appFile, bootFile := filepath.Join(dir, "app.bin"), filepath.Join(dir, "bootloader.bin")
	require.NoError(t, os.WriteFile(appFile, app, 0o644))
	require.NoError(t, os.WriteFile(bootFile, boot, 0o644))
	am, err := module.Parse(app)
	require.NoError(t, err)
	bm, err := module.Parse(boot)
	require.NoError(t, err)
	p := d.Platform()
	name := p.Name

	before := simModules(d)
	resets := d.Status().Resets
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "peer.js", "--device", d.ID(), "--app", appFile, "--app-addr", fmt.Sprint(am.Start), "--bootloader", bootFile)
	cmd.Dir = peerDir
	cmd.Env = append(os.Environ(), bridge.Env()...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "peer.js: %s\n%s", out, stderr.String())
	got := map[string]peerLine{}
	var order []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l peerLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), "%s", sc.Text())
		got[l.Request] = l
		order = append(order, l.Request)
	}

	str := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	var checks []peerCheck
	check := func(req, expected string, match func(l peerLine) (string, bool)) {
		l, ok := got[req]
		c := peerCheck{request: name + ": " + req, expected: expected}
		switch {
		case !ok:
			c.got = "(not asked: the peer stopped after " + strings.Join(order, ", ") + ")"
		default:
			c.got, c.ok = match(l)
		}
		checks = append(checks, c)
	}
	equal := func(want string) func(peerLine) (string, bool) {
		return func(l peerLine) (string, bool) {
			if l.Error != "" {
				return "error: " + l.Error, false
			}
			var v any
			if json.Unmarshal(l.Got, &v) != nil {
				return string(l.Got), false
			}
			g := str(v) // keys in one order, as str gives the expected value
			return g, g == want
		}
	}
	modules := func(want string) func(peerLine) (string, bool) {
		return func(l peerLine) (string, bool) {
			if l.Error != "" {
				return "error: " + l.Error, false
			}
			g := peerModules(l.Got)
			return g, g == want
		}
	}
	id := d.ID()
	check("list", str(map[string]any{"id": id, "type": name, "platformId": p.ID, "dfu": false}), equal(str(map[string]any{"id": id, "type": name, "platformId": p.ID, "dfu": false})))
	check("open", str(map[string]any{"id": id, "type": name, "dfu": false}), equal(str(map[string]any{"id": id, "type": name, "dfu": false})))
	check("getDeviceId", str(id), equal(str(id)))
	check("getSerialNumber", str(d.Identity().Serial), equal(str(d.Identity().Serial)))
	check("firmwareVersion", str(d.SystemVersion()), equal(str(d.SystemVersion())))
	check("getDeviceMode", `"NORMAL"`, equal(`"NORMAL"`))
	check("getFirmwareModuleInfo", before, modules(before))
	check("enterListeningMode", `"ok"`, equal(`"ok"`))
	check("getDeviceMode (listening)", `"LISTENING"`, equal(`"LISTENING"`))
	check("leaveListeningMode", `"ok"`, equal(`"ok"`))
	check("getDeviceMode (left listening)", `"NORMAL"`, equal(`"NORMAL"`))
	check("updateFirmware (bootloader)", fmt.Sprint(len(boot)), equal(fmt.Sprint(len(boot))))
	// The sim's flash now holds the bootloader the peer sent, where the platform keeps it.
	bootInFlash := d.Memory(0).Snapshot(bm.Start, uint32(len(bm.Data)))
	checks = append(checks, peerCheck{request: name + ": bootloader in the sim's flash", expected: fmt.Sprintf("%d bytes at 0x%x as sent", len(bm.Data), bm.Start),
		got: fmt.Sprintf("equal: %v", bytes.Equal(bootInFlash, bm.Data)), ok: bytes.Equal(bootInFlash, bm.Data)})
	check("getFirmwareModuleInfo (after the update)", before, modules(before))
	check("enterDfuMode", `"ok"`, equal(`"ok"`))
	check("open (DFU)", str(map[string]any{"id": id, "dfu": true}), equal(str(map[string]any{"id": id, "dfu": true})))
	check("writeOverDfu", fmt.Sprint(len(app)), equal(fmt.Sprint(len(app))))
	appInFlash := d.Memory(0).Snapshot(am.Start, uint32(len(app)))
	checks = append(checks, peerCheck{request: name + ": application in the sim's flash", expected: fmt.Sprintf("%d bytes at 0x%x as written", len(app), am.Start),
		got: fmt.Sprintf("equal: %v", bytes.Equal(appInFlash, app)), ok: bytes.Equal(appInFlash, app)})
	readBack := str(map[string]any{"size": len(app), "same": true})
	if p.Gen >= 3 {
		// Device OS's Gen3 and RTL872x bootloaders STALL CLRSTATUS outside dfuERROR
		// (usbd_dfu.cpp handleDfuClrStatus), which particle-usb sends after a download.
		check("readOverDfu (right after the write)", "a STALL (Device OS's DFU driver)", func(l peerLine) (string, bool) {
			return "error: " + l.Error, l.Error != "" && strings.Contains(l.Error, "control transfer failed")
		})
	} else {
		check("readOverDfu (right after the write)", readBack, equal(readBack))
	}
	check("readOverDfu (again)", readBack, equal(readBack))
	check("reset", `"ok"`, equal(`"ok"`))
	check("getDeviceMode (after the reset)", `"NORMAL"`, equal(`"NORMAL"`))
	st := d.Status()
	checks = append(checks, peerCheck{request: name + ": the sim at the end", expected: "normal mode, restarted (update, DFU, reset)",
		got: fmt.Sprintf("%s after %d restarts", st.Mode, st.Resets-resets), ok: st.Mode == sim.ModeNormal && st.Resets-resets >= 3})
	if l, ok := got["fatal"]; ok {
		checks = append(checks, peerCheck{request: name + ": fatal", expected: "none", got: l.Error})
	}
	return checks
}
