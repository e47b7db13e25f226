package usb

// The Windows backend's logic against a table of the Windows calls it makes. fakeWin
// answers SetupAPI from a list of device nodes as Windows would describe them, and
// winusb.dll from the virtual devices (usbsim descriptors, the dfudev bootloader, the
// ctrldev control channel): WinUSB itself is the one part these tests cannot have, since
// Wine's winusb.dll is stubs (README, Windows).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/sim/ctrldev"
	"github.com/particle-flasher/particle-flasher/flasher/sim/dfudev"
	"github.com/particle-flasher/particle-flasher/flasher/sim/flash"
	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
)

// fakeDev is what sits behind one WinUSB interface path.
type fakeDev struct {
	desc *usbsim.Descriptors
	dfu  *dfudev.Device
	ctrl *ctrldev.Channel
}

type fakeWin struct {
	nodes  []devNode           // present
	hidden []devNode           // remembered, not attached
	paths  map[string]string   // guid|instanceID -> interface path
	devs   map[string]*fakeDev // by interface path
	fail   map[string]error    // by call name (and argument): the error to answer
	calls  []string
	open   map[winHandle]*fakeDev
	next   winHandle
}

func newFakeWin() *fakeWin {
	return &fakeWin{paths: map[string]string{}, devs: map[string]*fakeDev{}, fail: map[string]error{}, open: map[winHandle]*fakeDev{}, next: 0x100}
}

func (f *fakeWin) log(format string, a ...any) string {
	c := fmt.Sprintf(format, a...)
	f.calls = append(f.calls, c)
	return c
}

func (f *fakeWin) failed(names ...string) error {
	for _, n := range names {
		if err, ok := f.fail[n]; ok {
			return err
		}
	}
	return nil
}

func (f *fakeWin) devNodes(present bool) ([]devNode, error) {
	f.log("SetupDiGetClassDevsEx(USB, present=%v)", present)
	if present {
		return f.nodes, f.failed("SetupDiGetClassDevsEx")
	}
	return append(append([]devNode(nil), f.nodes...), f.hidden...), nil
}

func (f *fakeWin) interfacePaths(guid, instanceID string) ([]string, error) {
	f.log("CM_Get_Device_Interface_List(%s, %s)", guid, instanceID)
	if p, ok := f.paths[strings.ToLower(guid)+"|"+instanceID]; ok {
		return []string{p}, nil
	}
	return nil, nil
}

func (f *fakeWin) createFile(path string) (winHandle, error) {
	f.log("CreateFile(%s)", path)
	if err := f.failed("CreateFile"); err != nil {
		return 0, err
	}
	d, ok := f.devs[path]
	if !ok {
		return 0, &winError{Code: errFileNotFound, Msg: "The system cannot find the file specified."}
	}
	f.next++
	f.open[f.next] = d
	return f.next, nil
}

func (f *fakeWin) closeHandle(h winHandle) error {
	f.log("CloseHandle(%#x)", h)
	delete(f.open, h)
	return nil
}

func (f *fakeWin) winusbInitialize(file winHandle) (winHandle, error) {
	f.log("WinUsb_Initialize(%#x)", file)
	if err := f.failed("WinUsb_Initialize"); err != nil {
		return 0, err
	}
	f.next++
	f.open[f.next] = f.open[file]
	return f.next, nil
}

func (f *fakeWin) winusbFree(h winHandle) error {
	f.log("WinUsb_Free(%#x)", h)
	delete(f.open, h)
	return nil
}

func (f *fakeWin) winusbSetTimeout(h winHandle, ms uint32) error {
	f.log("WinUsb_SetPipePolicy(%#x, 0x00, PIPE_TRANSFER_TIMEOUT, %d)", h, ms)
	return nil
}

var errStallWin = &winError{Code: errGenFailure, Msg: "A device attached to the system is not functioning."}

func (f *fakeWin) winusbControlTransfer(h winHandle, s winSetup, buf []byte) (int, error) {
	f.log("WinUsb_ControlTransfer(%#x, %02x %02x %04x %04x %d)", h, s.RequestType, s.Request, s.Value, s.Index, s.Length)
	if err := f.failed(fmt.Sprintf("WinUsb_ControlTransfer %02x", s.Request), "WinUsb_ControlTransfer"); err != nil {
		return 0, err
	}
	d := f.open[h]
	if d == nil {
		return 0, &winError{Code: errInvalidHandle, Msg: "The handle is invalid."}
	}
	var (
		n   int
		err error
	)
	switch {
	case s.RequestType&0x60 == 0x20 && d.dfu != nil:
		n, err = d.dfu.Control(s.RequestType, s.Request, s.Value, s.Index, buf)
	case s.RequestType&0x60 == 0x40 && d.ctrl != nil:
		n, err = d.ctrl.Control(s.RequestType, s.Request, s.Value, s.Index, buf)
	case s.RequestType&0x60 == 0 && d.dfu != nil && s.RequestType&0x1f == 1:
		n, err = d.dfu.Control(s.RequestType, s.Request, s.Value, s.Index, buf)
	default:
		return 0, errStallWin
	}
	if err != nil {
		if errors.Is(err, dfu.ErrStall) || errors.Is(err, ctrldev.ErrStall) {
			return n, errStallWin
		}
		return n, err
	}
	return n, nil
}

func (f *fakeWin) winusbGetDescriptor(h winHandle, typ, index uint8, lang uint16, buf []byte) (int, error) {
	f.log("WinUsb_GetDescriptor(%#x, %d, %d, %04x)", h, typ, index, lang)
	d := f.open[h]
	n, _, err := d.desc.HandleStandard(usbsim.Setup{RequestType: 0x80, Request: 6, Value: uint16(typ)<<8 | uint16(index), Index: lang, Length: uint16(len(buf))}, buf)
	if err != nil {
		return 0, errStallWin
	}
	return n, nil
}

func (f *fakeWin) winusbSetCurrentAlternateSetting(h winHandle, alt uint8) error {
	f.log("WinUsb_SetCurrentAlternateSetting(%#x, %d)", h, alt)
	d := f.open[h]
	if d.dfu == nil || d.dfu.SetAlt(alt) != nil {
		return errStallWin
	}
	return nil
}

func (f *fakeWin) winusbQueryInterfaceSettings(h winHandle, alt uint8) (winInterface, error) {
	f.log("WinUsb_QueryInterfaceSettings(%#x, %d)", h, alt)
	cfg := f.open[h].desc.ConfigDescriptor()
	k := 0
	for i := 0; i+1 < len(cfg) && cfg[i] > 0; i += int(cfg[i]) {
		if cfg[i+1] == usbsim.DescInterface && cfg[i+2] == 0 {
			if k == int(alt) {
				return winInterface{Number: cfg[i+2], Alt: cfg[i+3], Interface: cfg[i+8]}, nil
			}
			k++
		}
	}
	return winInterface{}, &winError{Code: errNoMoreItems, Msg: "No more data is available."}
}

const errNoMoreItems = 259

// Device nodes as Windows lists them for a Boron in DFU mode, an Argon in normal mode
// (composite: CDC on MI_00 with usbser, the control interface on MI_02 with WinUSB
// through its WCID descriptors), and a keyboard.
const (
	boronDFUInstance = `USB\VID_2B04&PID_D00D\E00FCE68D1234567890ABCDE`
	boronDFUPath     = `\\?\usb#vid_2b04&pid_d00d#e00fce68d1234567890abcde#{37fb5f90-1a34-4929-933b-8a27e1850033}`
	argonInstance    = `USB\VID_2B04&PID_C00C\E00FCE68AAAABBBBCCCCDDDD`
	argonCtrlNode    = `USB\VID_2B04&PID_C00C&MI_02\7&2D5F8A1&0&0002`
	argonCtrlPath    = `\\?\usb#vid_2b04&pid_c00c&mi_02#7&2d5f8a1&0&0002#{20b6cfa4-6dc7-468a-a8db-faa7c23ddea5}`
	boronSerial      = "E00FCE68D1234567890ABCDE"
	argonSerial      = "e00fce68aaaabbbbccccdddd"
)

func mustPlatform(t *testing.T, name string) *platform.Platform {
	t.Helper()
	p, ok := platform.ByName(name)
	require.True(t, ok, name)
	return p
}

func dfuFake(t *testing.T, p *platform.Platform, serial string, mem *flash.Region) *fakeDev {
	t.Helper()
	var alts []usbsim.AltSetting
	var dalts []dfudev.Alt
	for _, a := range p.Alts {
		alts = append(alts, usbsim.AltSetting{Alt: a.Alt, Name: a.Layout})
		m := dfudev.Memory(mem)
		if a.Alt != 0 || mem == nil {
			l, err := memlayout.Parse(a.Layout)
			require.NoError(t, err)
			m = flash.NewRegion(a.Name, l, flash.Timing{}, nil)
		}
		dalts = append(dalts, dfudev.Alt{Name: a.Layout, Mem: m})
	}
	return &fakeDev{
		desc: &usbsim.Descriptors{VID: p.DFUVID, PID: p.DFUPID, Manufacturer: "Particle", Product: p.DisplayName + " DFU Mode", Serial: serial,
			Interfaces: []usbsim.Interface{{Number: 0, Class: 0xFE, SubClass: 1, Protocol: 2, Alts: alts,
				Extra: usbsim.DFUFunctionalDescriptor(0x0B, 0xFF, p.TransferSize, 0x011A)}}},
		dfu: dfudev.New(dfudev.Config{Alts: dalts, Gen2: p.Gen == 2}),
	}
}

func loc(port string) []string {
	return []string{`PCIROOT(0)#PCI(1400)#USBROOT(0)#USB(` + port + `)`}
}

// twoDevices is the machine most tests start from.
func twoDevices(t *testing.T) *fakeWin {
	f := newFakeWin()
	f.nodes = []devNode{
		{InstanceID: `USB\VID_046D&PID_C31C\5&1A2B3C4D&0&3`, Service: "HidUsb", LocationPaths: loc("3")},
		{InstanceID: boronDFUInstance, Service: "WinUSB", LocationPaths: loc("2"), InterfaceGUIDs: []string{guidParticleDFU}},
		{InstanceID: argonInstance, Service: "usbccgp", LocationPaths: loc("4")},
		{InstanceID: `USB\VID_2B04&PID_C00C&MI_00\7&2D5F8A1&0&0000`, Service: "usbser", LocationPaths: []string{loc("4")[0] + "#USBMI(0)"}},
		{InstanceID: argonCtrlNode, Service: "WinUSB", LocationPaths: []string{loc("4")[0] + "#USBMI(2)"}, InterfaceGUIDs: []string{guidParticleControl}},
	}
	f.paths[guidParticleDFU+"|"+boronDFUInstance] = boronDFUPath
	f.paths[guidParticleControl+"|"+argonCtrlNode] = argonCtrlPath
	f.devs[boronDFUPath] = dfuFake(t, mustPlatform(t, "boron"), boronSerial, nil)
	f.devs[argonCtrlPath] = &fakeDev{
		desc: &usbsim.Descriptors{VID: 0x2B04, PID: 0xC00C, Manufacturer: "Particle", Product: "Argon", Serial: argonSerial,
			Interfaces: []usbsim.Interface{{Number: 2, Class: 0xFF}}},
		ctrl: ctrldev.New(ctrldev.Config{Handler: ctrldev.HandlerFunc(func(req uint16, _ []byte) (int32, []byte) {
			if req == ctrl.ReqDeviceID {
				return 0, ctrl.EncodeDeviceIDReply(argonSerial)
			}
			return ctrl.CodeNotSupported, nil
		})}),
	}
	return f
}

func TestParseInstanceID(t *testing.T) {
	for _, c := range []struct {
		id   string
		want instanceIDs
		ok   bool
	}{
		{`USB\VID_2B04&PID_D00D\E00FCE68`, instanceIDs{vid: 0x2b04, pid: 0xd00d, mi: -1, tail: "E00FCE68"}, true},
		{`USB\VID_2B04&PID_C00C&MI_02\7&2D5F8A1&0&0002`, instanceIDs{vid: 0x2b04, pid: 0xc00c, mi: 2, tail: `7&2D5F8A1&0&0002`}, true},
		{`usb\vid_1d50&pid_607f\8D7F`, instanceIDs{vid: 0x1d50, pid: 0x607f, mi: -1, tail: "8D7F"}, true},
		{`USB\ROOT_HUB30\4&1234`, instanceIDs{}, false},
		{`HID\VID_2B04&PID_C00C\1`, instanceIDs{}, false},
		{`USB\VID_XYZ&PID_C00C\1`, instanceIDs{}, false},
	} {
		got, ok := parseInstanceID(c.id)
		assert.Equal(t, c.ok, ok, c.id)
		if c.ok {
			assert.Equal(t, c.want, got, c.id)
		}
	}
}

// The setup packet is passed by value as WINUSB_SETUP_PACKET lays it out.
func TestSetupPacketLayout(t *testing.T) {
	v := packSetup(winSetup{RequestType: 0xA1, Request: 0x03, Value: 0x1234, Index: 0x5678, Length: 6})
	var b [8]byte
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	assert.Equal(t, []byte{0xA1, 0x03, 0x34, 0x12, 0x78, 0x56, 0x06, 0x00}, b[:])
}

// Enumeration: only Particle devices, each with the node WinUSB serves for it, and the
// calls that reads their strings (a second listing opens nothing).
func TestWindowsListFiltersAndReadsSerials(t *testing.T) {
	f := twoDevices(t)
	h := newHost(newWinBackend(f))
	infos, err := h.List()
	require.NoError(t, err)
	require.Len(t, infos, 2, "%+v", infos)

	b, a := infos[0], infos[1]
	require.NoError(t, b.Err)
	assert.Equal(t, "boron", b.Platform.Name)
	assert.True(t, b.DFU)
	assert.Equal(t, strings.ToLower(boronSerial), b.DeviceID)
	assert.Equal(t, boronSerial, b.Serial)
	assert.Equal(t, "Boron DFU Mode", b.Product)
	assert.Equal(t, "Particle", b.Manufacturer)
	assert.Equal(t, loc("2")[0], b.Path)
	assert.Equal(t, boronDFUInstance, b.Instance)

	require.NoError(t, a.Err)
	assert.Equal(t, "argon", a.Platform.Name)
	assert.False(t, a.DFU)
	assert.Equal(t, argonSerial, a.DeviceID)
	assert.Equal(t, loc("4")[0], a.Path, "the device's port, not its function's")

	assert.Equal(t, []string{
		"SetupDiGetClassDevsEx(USB, present=true)",
		"CM_Get_Device_Interface_List(" + guidParticleDFU + ", " + boronDFUInstance + ")",
		"CreateFile(" + boronDFUPath + ")",
		"WinUsb_Initialize(0x101)",
		"WinUsb_SetPipePolicy(0x102, 0x00, PIPE_TRANSFER_TIMEOUT, 5000)",
		"WinUsb_GetDescriptor(0x102, 1, 0, 0000)",
		"WinUsb_GetDescriptor(0x102, 3, 0, 0000)",
		"WinUsb_GetDescriptor(0x102, 3, 3, 0409)",
		"WinUsb_GetDescriptor(0x102, 3, 2, 0409)",
		"WinUsb_GetDescriptor(0x102, 3, 1, 0409)",
		"WinUsb_Free(0x102)",
		"CloseHandle(0x101)",
		"CM_Get_Device_Interface_List(" + guidParticleControl + ", " + argonCtrlNode + ")",
		"CreateFile(" + argonCtrlPath + ")",
		"WinUsb_Initialize(0x103)",
		"WinUsb_SetPipePolicy(0x104, 0x00, PIPE_TRANSFER_TIMEOUT, 5000)",
		"WinUsb_GetDescriptor(0x104, 1, 0, 0000)",
		"WinUsb_GetDescriptor(0x104, 3, 0, 0000)",
		"WinUsb_GetDescriptor(0x104, 3, 3, 0409)",
		"WinUsb_GetDescriptor(0x104, 3, 2, 0409)",
		"WinUsb_GetDescriptor(0x104, 3, 1, 0409)",
		"WinUsb_Free(0x104)",
		"CloseHandle(0x103)",
	}, f.calls)
	assert.Empty(t, f.open, "every handle closed")

	f.calls = nil
	again, err := h.List()
	require.NoError(t, err)
	assert.Equal(t, infos, again)
	assert.Equal(t, []string{"SetupDiGetClassDevsEx(USB, present=true)"}, f.calls, "known devices are not reopened")
}

// Two devices of one platform in normal mode: each gets the function under its own port.
func TestWindowsFunctionsJoinTheirDeviceByLocation(t *testing.T) {
	f := newFakeWin()
	for _, port := range []string{"1", "7"} {
		f.nodes = append(f.nodes,
			devNode{InstanceID: `USB\VID_2B04&PID_C00D\SERIAL` + port, Service: "usbccgp", LocationPaths: loc(port)},
			devNode{InstanceID: `USB\VID_2B04&PID_C00D&MI_02\X&` + port, Service: "WinUSB", LocationPaths: []string{loc(port)[0] + "#USBMI(2)"}})
	}
	b := newWinBackend(f)
	infos, err := b.scan()
	require.NoError(t, err)
	require.Len(t, infos, 2)
	for _, i := range infos {
		require.NoError(t, i.Err)
		port := strings.TrimPrefix(i.Instance, `USB\VID_2B04&PID_C00D\SERIAL`)
		assert.Equal(t, `USB\VID_2B04&PID_C00D&MI_02\X&`+port, b.doors[i.Key()].instanceID)
		assert.Equal(t, []string{guidParticleControl}, b.doors[i.Key()].guids, "no registered GUID: Particle's")
	}
}

// A device Windows attached without WinUSB is listed, with what fixes it for its
// generation; nothing is opened.
func TestWindowsMissingDriverRemedies(t *testing.T) {
	for _, c := range []struct {
		name  string
		nodes []devNode
		want  []string
	}{
		{"gen3 control interface before 1.1.0", []devNode{
			{InstanceID: `USB\VID_2B04&PID_C00D\E00F`, Service: "usbccgp", LocationPaths: loc("1")},
			{InstanceID: `USB\VID_2B04&PID_C00D&MI_00\A`, Service: "usbser", LocationPaths: []string{loc("1")[0] + "#USBMI(0)"}},
			{InstanceID: `USB\VID_2B04&PID_C00D&MI_02\B`, Problem: probFailedInstall, LocationPaths: []string{loc("1")[0] + "#USBMI(2)"}},
		}, []string{"control interface", "problem code 28: no driver installed", "Device OS 1.1.0", "DFU mode", "particle_control.inf", driversRepo}},
		{"gen2 DFU before bootloader v9", []devNode{
			{InstanceID: `USB\VID_2B04&PID_D006\3A00`, Problem: probFailedInstall, LocationPaths: loc("1")},
		}, []string{"Photon in DFU mode", "bootloader v9 (Device OS 0.6.1)", "particle_dfu.inf", "Zadig"}},
		{"a driver that does not start", []devNode{
			{InstanceID: `USB\VID_2B04&PID_D00C\E00F`, Service: "WinUSB", Problem: probFailedStart, LocationPaths: loc("1")},
		}, []string{"Argon in DFU mode", "problem code 10: the driver did not start", "Show hidden devices"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeWin()
			f.nodes = c.nodes
			infos, err := newHost(newWinBackend(f)).List()
			require.NoError(t, err)
			require.Len(t, infos, 1)
			require.Error(t, infos[0].Err)
			assert.True(t, errors.Is(infos[0].Err, ErrNoWinUSB), "%v", infos[0].Err)
			msg := infos[0].Err.Error() + "\n" + remedy.Of(infos[0].Err)
			for _, w := range c.want {
				assert.Contains(t, msg, w)
			}
			assert.Equal(t, []string{"SetupDiGetClassDevsEx(USB, present=true)"}, f.calls)
		})
	}
}

// Opening: each Windows error in words with what to do; every handle opened is closed.
func TestWindowsOpenErrors(t *testing.T) {
	for _, c := range []struct {
		call     string
		err      error
		notFound bool
		want     []string
	}{
		{"CreateFile", &winError{Code: errAccessDenied, Msg: "Access is denied."}, false, []string{"Access is denied. (Windows error 5)", "one program at a time"}},
		{"CreateFile", &winError{Code: errDeviceNotConnected, Msg: "The device is not connected."}, true, []string{"unplugged"}},
		{"CreateFile", &winError{Code: errGenFailure, Msg: "A device attached to the system is not functioning."}, false, []string{"Show hidden devices", "greyed-out Particle entries (2 here)"}},
		{"WinUsb_Initialize", &winError{Code: 1, Msg: "Incorrect function."}, false, []string{"start WinUSB on", "Show hidden devices"}},
	} {
		t.Run(c.call+" "+c.err.Error(), func(t *testing.T) {
			f := twoDevices(t)
			f.hidden = []devNode{{InstanceID: `USB\VID_2B04&PID_D00D\OLD1`}, {InstanceID: `USB\VID_2B04&PID_C00D&MI_02\OLD2`}, {InstanceID: `USB\VID_0BDA&PID_1234\X`}}
			f.fail[c.call] = c.err
			h := newHost(newWinBackend(f))
			infos, err := h.List()
			require.NoError(t, err)
			_, err = h.OpenInfo(Info{VID: infos[0].VID, PID: infos[0].PID, Instance: infos[0].Instance, Platform: infos[0].Platform, DFU: true, Path: infos[0].Path})
			require.Error(t, err)
			assert.Equal(t, c.notFound, errors.Is(err, ErrNotFound), "%v", err)
			msg := err.Error() + "\n" + remedy.Of(err)
			for _, w := range c.want {
				assert.Contains(t, msg, w)
			}
			assert.Empty(t, f.open, "every handle closed")
		})
	}
}

// DFU through WinUSB: alt selection by WinUsb_SetCurrentAlternateSetting, the memory
// layout from the alt's iInterface string, the functional descriptor, and a DfuSe write
// whose bytes land in the bootloader's flash; STALL and a vanished device map onto the
// sentinels the DFU client branches on.
func TestWindowsDFUWriteAndErrorMapping(t *testing.T) {
	p := mustPlatform(t, "boron")
	l, err := p.AltLayout(0)
	require.NoError(t, err)
	mem := flash.NewRegion("internal", l, flash.Timing{}, nil)
	f := twoDevices(t)
	f.devs[boronDFUPath] = dfuFake(t, p, boronSerial, mem)
	h := newHost(newWinBackend(f))
	d, err := h.Open(strings.ToLower(boronSerial))
	require.NoError(t, err)
	defer func() { assert.NoError(t, d.Close()) }()

	for _, a := range p.Alts {
		f.calls = nil
		x, err := d.DFU(a.Alt)
		require.NoError(t, err, "alt %d", a.Alt)
		assert.Equal(t, a.Layout, x.LayoutString)
		assert.True(t, x.FunctionalFound)
		assert.Equal(t, int(p.TransferSize), x.TransferSize())
		require.GreaterOrEqual(t, len(f.calls), 3)
		assert.Equal(t, fmt.Sprintf("WinUsb_SetCurrentAlternateSetting(0x106, %d)", a.Alt), f.calls[0])
		assert.Equal(t, fmt.Sprintf("WinUsb_QueryInterfaceSettings(0x106, %d)", a.Alt), f.calls[1])
	}

	x, err := d.DFU(0)
	require.NoError(t, err)
	data := bytes.Repeat([]byte{0xA5, 0x5A, 0x01, 0x02}, 2048)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f.calls = nil
	require.NoError(t, x.Write(ctx, x.Layout, 0x30000, data, nil))
	assert.Equal(t, data, mem.Snapshot(0x30000, uint32(len(data))), "the bytes in the bootloader's flash")
	assert.Contains(t, f.calls, "WinUsb_ControlTransfer(0x106, 21 01 0002 0000 4096)", "DNLOAD block 2 on interface 0")

	_, err = d.DFU(9)
	require.Error(t, err)
	assert.Contains(t, remedy.Of(err), "refused that memory region")

	f.fail["WinUsb_ControlTransfer"] = errStallWin
	_, err = x.GetStatus(ctx)
	assert.True(t, errors.Is(err, dfu.ErrStall), "%v", err)
	f.fail["WinUsb_ControlTransfer"] = &winError{Code: errDeviceNotConnected, Msg: "The device is not connected."}
	_, err = d.Control(0xA1, dfu.ReqGetStatus, 0, 0, make([]byte, 6))
	assert.True(t, errors.Is(err, dfu.ErrNoDevice), "%v", err)
	f.fail["WinUsb_ControlTransfer"] = &winError{Code: 121, Msg: "The semaphore timeout period has expired."}
	_, err = d.Control(0xA1, dfu.ReqGetStatus, 0, 0, make([]byte, 6))
	assert.False(t, errors.Is(err, dfu.ErrNoDevice) || errors.Is(err, dfu.ErrStall), "a timeout is neither: %v", err)
	assert.Contains(t, err.Error(), "Windows error 121")
}

// Control requests in normal mode go over the WinUSB function of the composite device.
func TestWindowsControlRequests(t *testing.T) {
	f := twoDevices(t)
	h := newHost(newWinBackend(f))
	d, err := h.Open(argonSerial)
	require.NoError(t, err)
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := d.Ctrl(ctrl.Options{RequestTimeout: 5 * time.Second}).DeviceID(ctx)
	require.NoError(t, err)
	assert.Equal(t, argonSerial, id)
	var vendor int
	for _, c := range f.calls {
		if strings.HasPrefix(c, "WinUsb_ControlTransfer(0x106, 40 ") || strings.HasPrefix(c, "WinUsb_ControlTransfer(0x106, c0 ") {
			vendor++
		}
	}
	assert.Positive(t, vendor, "vendor requests on the control function: %v", f.calls)
}
