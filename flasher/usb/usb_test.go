//go:build !windows

// The libusb backend (gousb.go) against virtual devices behind the libusb shim: Linux and macOS.

package usb_test

// These tests run the package's real gousb code against simulated devices: the parent
// test process serves them with usbsim, and the gousb half runs in a child re-executed
// with the libusb shim on LD_LIBRARY_PATH (the loader reads it only at start-up).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/assets"
	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/sim/ctrldev"
	"github.com/particle-flasher/particle-flasher/flasher/sim/dfudev"
	"github.com/particle-flasher/particle-flasher/flasher/sim/flash"
	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
	"github.com/particle-flasher/particle-flasher/flasher/slots"
	"github.com/particle-flasher/particle-flasher/flasher/usb"
)

func TestMain(m *testing.M) {
	if usbsim.IsChild() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "usb-shim")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := usbsim.BuildShim(dir); err != nil {
		fmt.Fprintln(os.Stderr, "building the libusb shim:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// simDev is a Particle device as the bus sees it: descriptors, and behind them the DFU
// bootloader (dfudev) or Device OS's control-request channel (ctrldev).
type simDev struct {
	mu      sync.Mutex
	desc    *usbsim.Descriptors
	dfu     *dfudev.Device
	ctrl    *ctrldev.Channel
	openErr error
}

func (d *simDev) Info() usbsim.DeviceInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.desc.Info()
}

func (d *simDev) Open() error { return d.openErr }

func (d *simDev) Control(s usbsim.Setup, data []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n, ok, err := d.desc.HandleStandard(s, data); ok {
		return n, err
	}
	var (
		n   int
		err error
	)
	switch {
	case d.dfu != nil && s.RequestType&0x60 == 0x20:
		n, err = d.dfu.Control(s.RequestType, s.Request, s.Value, s.Index, data)
	case d.ctrl != nil && s.RequestType&0x60 == 0x40:
		n, err = d.ctrl.Control(s.RequestType, s.Request, s.Value, s.Index, data)
	default:
		return 0, usbsim.ErrStall
	}
	if err != nil && (errors.Is(err, dfu.ErrStall) || errors.Is(err, ctrldev.ErrStall)) {
		return n, usbsim.ErrStall
	}
	return n, err
}

func dfuDescriptors(p *platform.Platform, serial string) *usbsim.Descriptors {
	var alts []usbsim.AltSetting
	for _, a := range p.Alts {
		alts = append(alts, usbsim.AltSetting{Alt: a.Alt, Name: a.Layout})
	}
	return &usbsim.Descriptors{
		VID: p.DFUVID, PID: p.DFUPID, BCDDevice: 0x0251,
		Manufacturer: "Particle", Product: p.DisplayName + " DFU Mode", Serial: serial,
		Interfaces: []usbsim.Interface{{
			Number: 0, Class: 0xFE, SubClass: 1, Protocol: 2, Alts: alts,
			Extra: usbsim.DFUFunctionalDescriptor(0x0B, 0xFF, p.TransferSize, 0x011A),
		}},
	}
}

// newDFUDev is a device in DFU mode whose alt 0 is backed by mem.
func newDFUDev(t *testing.T, p *platform.Platform, serial string, mem *flash.Region) *simDev {
	t.Helper()
	var alts []dfudev.Alt
	for _, a := range p.Alts {
		m := dfudev.Memory(mem)
		if a.Alt != 0 || mem == nil {
			l, err := memlayout.Parse(a.Layout)
			require.NoError(t, err)
			m = flash.NewRegion(a.Name, l, flash.Timing{}, nil)
		}
		alts = append(alts, dfudev.Alt{Name: a.Layout, Mem: m})
	}
	return &simDev{desc: dfuDescriptors(p, serial), dfu: dfudev.New(dfudev.Config{Alts: alts, Gen2: p.Gen == 2})}
}

// newNormalDev is a device running Device OS: a CDC-like interface and the control channel.
func newNormalDev(p *platform.Platform, serial, product string, h ctrldev.Handler) *simDev {
	return &simDev{
		desc: &usbsim.Descriptors{
			VID: p.VID, PID: p.PID, BCDDevice: 0x0250, Manufacturer: "Particle", Product: product, Serial: serial,
			Interfaces: []usbsim.Interface{{Number: 0, Class: 0x02, SubClass: 0x02, Protocol: 0x01}},
		},
		ctrl: ctrldev.New(ctrldev.Config{Handler: h}),
	}
}

func mustPlatform(t *testing.T, name string) *platform.Platform {
	t.Helper()
	p, ok := platform.ByName(name)
	require.True(t, ok, name)
	return p
}

func newServer(t *testing.T) *usbsim.Server {
	t.Helper()
	srv, err := usbsim.NewServer("")
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// runChild re-executes the current test in a child under the shim and fails with its output
// if it fails; the child gets 60 s.
func runChild(t *testing.T, srv *usbsim.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := srv.TestCommand(t.Name(), "-test.v", "-test.timeout=60s")
	out, err := cmd.CombinedOutput()
	require.NoError(t, ctx.Err())
	require.NoError(t, err, "child test failed:\n%s", out)
	require.Contains(t, string(out), "--- PASS", "child ran no test:\n%s", out)
}

func newHost(t *testing.T) *usb.Host {
	t.Helper()
	h, err := usb.NewHost()
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, h.Close()) })
	return h
}

const (
	boronID    = "e00fce68d1234567890abcde"
	photonID   = "3a003b000c47353136383631"
	electronID = "1f0041000551353431383736"
)

func TestListMapsPlatformModeAndSerial(t *testing.T) {
	if usbsim.InChild(t.Name()) {
		h := newHost(t)
		infos, err := h.List()
		require.NoError(t, err)
		byID := map[string]usb.Info{}
		for _, i := range infos {
			byID[i.DeviceID] = i
		}
		require.Len(t, infos, 4, "%+v", infos) // the keyboard is not a Particle device

		b := byID[boronID]
		require.NotNil(t, b.Platform)
		assert.Equal(t, "boron", b.Platform.Name)
		assert.True(t, b.DFU)
		assert.Equal(t, "dfu", b.Mode())
		assert.Equal(t, "Boron DFU Mode", b.Product)
		assert.Equal(t, "Particle", b.Manufacturer)
		assert.Regexp(t, `^1-[0-9.]+$`, b.Path)
		assert.NoError(t, b.Err)

		ph := byID[photonID]
		require.NotNil(t, ph.Platform)
		assert.Equal(t, "photon", ph.Platform.Name)
		assert.False(t, ph.DFU)
		assert.Equal(t, strings.ToUpper(photonID), ph.Serial, "raw serial kept")

		el := byID[electronID]
		require.NotNil(t, el.Platform, "old Gen2 serial with the ID inside: %+v", infos)
		assert.Equal(t, "electron", el.Platform.Name)

		var core usb.Info
		for _, i := range infos {
			if i.VID == usb.SparkVID {
				core = i
			}
		}
		require.NotNil(t, core.Platform)
		assert.Equal(t, "core", core.Platform.Name)
		assert.True(t, core.DFU)

		// A second listing reuses what it learnt (same instances, same answers).
		again, err := h.List()
		require.NoError(t, err)
		assert.Equal(t, infos, again)
		return
	}
	srv := newServer(t)
	srv.Add(newDFUDev(t, mustPlatform(t, "boron"), boronID, nil))
	srv.Add(newNormalDev(mustPlatform(t, "photon"), strings.ToUpper(photonID), "Photon", nil))
	srv.Add(newNormalDev(mustPlatform(t, "electron"), "Particle_Electron_"+strings.ToUpper(electronID), "Electron", nil))
	srv.Add(newDFUDev(t, mustPlatform(t, "core"), "8D7F3B5A5049", nil))
	srv.Add(&simDev{desc: &usbsim.Descriptors{VID: 0x046d, PID: 0xc31c, Manufacturer: "Logitech", Product: "Keyboard", Serial: "x",
		Interfaces: []usbsim.Interface{{Number: 0, Class: 3}}}})
	runChild(t, srv)
}

func TestDFUAltLayoutDescriptorAndModules(t *testing.T) {
	p := mustPlatform(t, "boron")
	if usbsim.InChild(t.Name()) {
		h := newHost(t)
		d, err := h.Open(strings.ToUpper(boronID)) // any case
		require.NoError(t, err)
		defer func() { assert.NoError(t, d.Close()) }()
		assert.Equal(t, boronID, d.Info().DeviceID)

		for _, a := range p.Alts {
			x, err := d.DFU(a.Alt)
			require.NoError(t, err, "alt %d", a.Alt)
			assert.Equal(t, a.Layout, x.LayoutString, "alt %d", a.Alt)
			require.NotNil(t, x.Layout)
			assert.True(t, x.FunctionalFound)
			assert.Equal(t, uint16(4096), x.Functional.TransferSize)
			assert.True(t, x.Functional.IsDfuSe())
			assert.Equal(t, 4096, x.TransferSize())
		}

		x, err := d.DFU(0)
		require.NoError(t, err)
		hdr, err := x.Read(context.Background(), 0xF4200, module.PrefixSize)
		require.NoError(t, err)
		assert.Equal(t, uint16(1200), uint16(hdr[10])|uint16(hdr[11])<<8)

		// The whole DFU-mode module reading through real libusb calls.
		mods, err := slots.ReadModules(context.Background(), x.Client, p, x.Layout)
		require.NoError(t, err)
		var boot slots.SlotModule
		for _, m := range mods {
			if m.Function == platform.FuncBootloader {
				boot = m
			}
		}
		assert.Equal(t, slots.SlotPresent, boot.State)
		assert.Equal(t, uint16(1200), boot.Version)
		assert.True(t, boot.Valid(), "%+v", boot)

		// A normal-mode operation on a DFU device is refused with a remedy; DFU on a
		// normal device likewise is checked by mode.
		_, err = x.Read(context.Background(), 0xFFFFF000, 0x2000)
		assert.Error(t, err)
		return
	}
	l, err := p.AltLayout(0)
	require.NoError(t, err)
	mem := flash.NewRegion("internal", l, flash.Timing{}, nil)
	boot, err := module.BuildForSlot(p, mustSlot(t, p, "bootloader"), 1200)
	require.NoError(t, err)
	require.NoError(t, mem.Load(0xF4000, boot))
	srv := newServer(t)
	srv.Add(newDFUDev(t, p, boronID, mem))
	runChild(t, srv)
}

func mustSlot(t *testing.T, p *platform.Platform, name string) platform.Slot {
	t.Helper()
	s, ok := p.SlotByName(name)
	require.True(t, ok)
	return s
}

func TestControlRequestsInNormalMode(t *testing.T) {
	p := mustPlatform(t, "argon")
	if usbsim.InChild(t.Name()) {
		h := newHost(t)
		d, err := h.Open(boronID)
		require.NoError(t, err)
		defer d.Close()
		c := d.Ctrl(ctrl.Options{RequestTimeout: 5 * time.Second})
		id, err := c.DeviceID(context.Background())
		require.NoError(t, err)
		assert.Equal(t, boronID, id)
		_, err = d.DFU(0)
		require.Error(t, err, "not in DFU mode")
		assert.NotEmpty(t, remedy.Of(err))

		// A request the device STALLs comes back as dfu.ErrStall for callers to branch on.
		_, err = d.Control(0xC0, 0x77, 0, 0, make([]byte, 8))
		require.Error(t, err)
		assert.True(t, errors.Is(err, dfu.ErrStall), "%v", err)
		return
	}
	srv := newServer(t)
	srv.Add(newNormalDev(p, boronID, "Argon", ctrldev.HandlerFunc(func(req uint16, _ []byte) (int32, []byte) {
		if req == ctrl.ReqDeviceID {
			return 0, ctrl.EncodeDeviceIDReply(boronID)
		}
		return ctrl.CodeNotSupported, nil
	})))
	runChild(t, srv)
}

func TestPermissionErrorNamesDeviceAndRule(t *testing.T) {
	if usbsim.InChild(t.Name()) {
		h := newHost(t)
		infos, err := h.List()
		require.NoError(t, err, "an unopenable device does not fail the listing")
		require.Len(t, infos, 1)
		i := infos[0]
		require.Error(t, i.Err)
		var pe *usb.PermissionError
		require.True(t, errors.As(i.Err, &pe), "%T %v", i.Err, i.Err)
		assert.Contains(t, i.Err.Error(), "Boron in DFU mode (2b04:d00d)")
		assert.Contains(t, i.Err.Error(), i.Path)
		rem := remedy.Of(i.Err)
		assert.Contains(t, rem, `ATTRS{idVendor}=="2b04"`)
		assert.Contains(t, rem, "50-particle.rules")
		assert.Contains(t, rem, assets.UdevInstallCommand)
		assert.Contains(t, rem, "unplug and replug")

		_, err = h.Open(i.Path)
		require.Error(t, err)
		assert.True(t, errors.As(err, &pe))
		assert.Contains(t, remedy.Of(err), "udev")

		_, err = h.Open("ffffffffffffffffffffffff")
		assert.True(t, errors.Is(err, usb.ErrNotFound), "%v", err)
		return
	}
	srv := newServer(t)
	d := newDFUDev(t, mustPlatform(t, "boron"), boronID, nil)
	d.openErr = usbsim.ErrAccess
	srv.Add(d)
	runChild(t, srv)
}

func TestDuplicateSerialsNeedAPath(t *testing.T) {
	if usbsim.InChild(t.Name()) {
		h := newHost(t)
		infos, err := h.List()
		require.NoError(t, err)
		require.Len(t, infos, 2)
		assert.Equal(t, "", infos[0].DeviceID, "the defect serial is not a device ID")
		_, err = h.Open("00000000010C")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "2 devices match")
		d, err := h.Open(infos[1].Path)
		require.NoError(t, err)
		assert.Equal(t, infos[1].Path, d.Info().Path)
		require.NoError(t, d.Close())
		return
	}
	srv := newServer(t)
	p := mustPlatform(t, "photon")
	srv.Add(newDFUDev(t, p, "00000000010C", nil))
	srv.Add(newDFUDev(t, p, "00000000010C", nil))
	runChild(t, srv)
}

// TestPollerSeesDevicesComeAndGo drives a child that runs the Poller and prints its events
// while the parent plugs, replugs (normal → DFU) and unplugs a device.
func TestPollerSeesDevicesComeAndGo(t *testing.T) {
	type line struct {
		Kind string `json:"kind"`
		ID   string `json:"id"`
		Mode string `json:"mode"`
	}
	if usbsim.InChild(t.Name()) {
		h := newHost(t)
		ctx, cancel := context.WithCancel(context.Background())
		events := (&usb.Poller{L: h, Interval: 50 * time.Millisecond}).Run(ctx)
		go func() { _, _ = io.Copy(io.Discard, os.Stdin); cancel() }() // parent closes stdin: stop
		enc := json.NewEncoder(os.Stdout)
		fmt.Println(`{"kind":"ready"}`)
		for e := range events {
			require.NotEqual(t, usb.ListFailed, e.Kind, "%v", e.Err)
			_ = enc.Encode(line{Kind: e.Kind.String(), ID: e.Info.DeviceID, Mode: e.Info.Mode()})
		}
		// The channel closed: the polling goroutine is gone.
		return
	}
	srv := newServer(t)
	cmd := srv.TestCommand(t.Name(), "-test.v", "-test.timeout=60s")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	lines := make(chan line, 64)
	var rest lockedBuilder
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l line
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Kind != "" {
				lines <- l
			} else {
				rest.WriteString(sc.Text() + "\n")
			}
		}
		close(lines)
	}()
	next := func(what string) line {
		t.Helper()
		select {
		case l, ok := <-lines:
			require.True(t, ok, "child ended while waiting for %s: %s %s", what, rest.String(), stderr.String())
			return l
		case <-time.After(10 * time.Second):
			// The acceptance bound (within 1 s) holds by construction: one poll interval
			// (50 ms here) and a scan. The wait allows a loaded machine seconds.
			t.Fatalf("no %s within 10 s", what)
		}
		return line{}
	}
	require.Equal(t, "ready", next("ready").Kind)

	p := mustPlatform(t, "boron")
	dev := newNormalDev(p, boronID, "Boron", nil)
	srv.Add(dev)
	assert.Equal(t, line{"appeared", boronID, "normal"}, next("appearance"))

	// Reset into DFU: re-enumeration with the DFU PID.
	dev.mu.Lock()
	dev.desc = dfuDescriptors(p, boronID)
	dev.mu.Unlock()
	srv.Replug(dev)
	got := []line{next("disappearance"), next("re-appearance")}
	assert.ElementsMatch(t, []line{{"disappeared", boronID, "normal"}, {"appeared", boronID, "dfu"}}, got)

	srv.Remove(dev)
	assert.Equal(t, line{"disappeared", boronID, "dfu"}, next("removal"))

	require.NoError(t, stdin.Close())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "%s %s", rest.String(), stderr.String())
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("child did not stop when asked: the poller did not end")
	}
	for range lines { // the reader has seen the end of the output
	}
	assert.Contains(t, rest.String(), "--- PASS")
}

// lockedBuilder collects text from one goroutine for another.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
