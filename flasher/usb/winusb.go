package usb

// The Windows backend: SetupAPI finds Particle devices and the interface WinUSB serves for
// each (the DFU interface in DFU mode, the control interface of the composite device in
// normal mode, bound through the WCID descriptors Device OS sends), CreateFile and
// WinUsb_Initialize open it, and winusb.dll carries control transfers, alternate settings
// and descriptors. The logic lives here, untagged, over winSys (the Windows calls it
// makes), so its tests run on every system against a table of those calls;
// winusb_sys_windows.go makes them for real through golang.org/x/sys/windows.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// Device interface GUIDs that Device OS's WCID extended-properties descriptors give WinUSB
// (device-os hal/src/*/usbd_*: "DeviceInterfaceGUIDs"). A device bound by an INF (Particle's
// Windows drivers, Zadig) registers its own, read from the registry first.
const (
	guidParticleDFU     = "{37fb5f90-1a34-4929-933b-8a27e1850033}"
	guidParticleControl = "{20b6cfa4-6dc7-468a-a8db-faa7c23ddea5}"
)

// winHandle is a Windows HANDLE or WINUSB_INTERFACE_HANDLE.
type winHandle uintptr

// winError is a Windows error code with the system's words for it.
type winError struct {
	Code uint32
	Msg  string
}

func (e *winError) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("Windows error %d", e.Code)
	}
	return fmt.Sprintf("%s (Windows error %d)", e.Msg, e.Code)
}

// Windows error codes the backend tells apart (winerror.h).
const (
	errFileNotFound       = 2
	errAccessDenied       = 5
	errInvalidHandle      = 6
	errBadCommand         = 22
	errGenFailure         = 31 // WinUSB's word for a STALLed control transfer
	errSharingViolation   = 32
	errNoSuchDevice       = 433
	errOperationAborted   = 995
	errDeviceNotConnected = 1167
)

func winCode(err error) uint32 {
	var we *winError
	if errors.As(err, &we) {
		return we.Code
	}
	return 0
}

// Device Manager problem codes (cfg.h CM_PROB_*) the backend explains.
const (
	probNotConfigured = 1  // no driver selected
	probFailedStart   = 10 // the driver did not start
	probFailedInstall = 28 // no driver installed
	probFailedPost    = 43 // the device failed (a descriptor request, typically)
)

// devNode is one device node of Windows' USB enumerator as SetupAPI and the configuration
// manager describe it.
type devNode struct {
	// InstanceID is the device instance ID: "USB\VID_2B04&PID_D00D\<serial>" for a whole
	// device, "USB\VID_2B04&PID_C00D&MI_02\<generated>" for one function of a composite
	// device.
	InstanceID string
	// Service is the driver's service (SPDRP_SERVICE): "WinUSB", "usbser", "usbccgp", "".
	Service string
	// LocationPaths is SPDRP_LOCATION_PATHS: "PCIROOT(0)#PCI(1400)#USBROOT(0)#USB(2)" for a
	// device, with "#USBMI(2)" after it for a function.
	LocationPaths []string
	// Problem is CM_Get_DevNode_Status's problem number, 0 when the node works.
	Problem uint32
	// InterfaceGUIDs is the DeviceInterfaceGUIDs value of the node's device registry key,
	// as the WCID descriptors or an INF set it.
	InterfaceGUIDs []string
}

// winSetup is WINUSB_SETUP_PACKET.
type winSetup struct {
	RequestType, Request uint8
	Value, Index, Length uint16
}

// packSetup lays WINUSB_SETUP_PACKET out as the 8 bytes Windows passes by value.
func packSetup(s winSetup) uint64 {
	return uint64(s.RequestType) | uint64(s.Request)<<8 | uint64(s.Value)<<16 | uint64(s.Index)<<32 | uint64(s.Length)<<48
}

// winInterface is the part of USB_INTERFACE_DESCRIPTOR WinUsb_QueryInterfaceSettings
// returns that the backend uses.
type winInterface struct {
	Number, Alt, Interface uint8 // bInterfaceNumber, bAlternateSetting, iInterface
}

// winSys is the Windows calls the backend makes, one method a call (or a fixed short run of
// SetupAPI calls, named in its comment).
type winSys interface {
	// devNodes: SetupDiGetClassDevsEx(nil, "USB", DIGCF_ALLCLASSES[|DIGCF_PRESENT]), then
	// per node SetupDiEnumDeviceInfo, SetupDiGetDeviceInstanceId,
	// SetupDiGetDeviceRegistryProperty(SPDRP_SERVICE, SPDRP_LOCATION_PATHS),
	// CM_Get_DevNode_Status and SetupDiOpenDevRegKey(DIREG_DEV) "DeviceInterfaceGUIDs".
	// present false lists the nodes Windows remembers but are not attached too.
	devNodes(present bool) ([]devNode, error)
	// interfacePaths: CM_Get_Device_Interface_List(guid, instanceID, PRESENT).
	interfacePaths(guid, instanceID string) ([]string, error)
	// createFile: CreateFile(path, GENERIC_READ|GENERIC_WRITE, FILE_SHARE_READ|WRITE,
	// OPEN_EXISTING, FILE_FLAG_OVERLAPPED) as WinUSB wants it.
	createFile(path string) (winHandle, error)
	closeHandle(h winHandle) error
	winusbInitialize(file winHandle) (winHandle, error)
	winusbFree(h winHandle) error
	// winusbSetTimeout: WinUsb_SetPipePolicy(h, 0x00, PIPE_TRANSFER_TIMEOUT, ms).
	winusbSetTimeout(h winHandle, ms uint32) error
	winusbControlTransfer(h winHandle, setup winSetup, buf []byte) (int, error)
	winusbGetDescriptor(h winHandle, typ, index uint8, lang uint16, buf []byte) (int, error)
	winusbSetCurrentAlternateSetting(h winHandle, alt uint8) error
	winusbQueryInterfaceSettings(h winHandle, alt uint8) (winInterface, error)
}

// instanceIDs holds what an instance ID says: "USB\VID_2B04&PID_C00D&MI_02\6&1f..." is
// vid 2b04, pid c00d, interface 2 (mi -1 for a whole device), tail "6&1f...".
type instanceIDs struct {
	vid, pid uint16
	mi       int
	tail     string
}

func parseInstanceID(id string) (instanceIDs, bool) {
	parts := strings.SplitN(id, `\`, 3)
	if len(parts) != 3 || !strings.EqualFold(parts[0], "USB") {
		return instanceIDs{}, false
	}
	out := instanceIDs{mi: -1, tail: parts[2]}
	var haveVID, havePID bool
	for _, f := range strings.Split(strings.ToUpper(parts[1]), "&") {
		k, v, ok := strings.Cut(f, "_")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(v, 16, 16)
		if err != nil {
			return instanceIDs{}, false
		}
		switch k {
		case "VID":
			out.vid, haveVID = uint16(n), true
		case "PID":
			out.pid, havePID = uint16(n), true
		case "MI":
			out.mi = int(n)
		}
	}
	return out, haveVID && havePID
}

// port is the node's first location path less the function part, so a device's functions
// and the device itself share it.
func port(n devNode) string {
	if len(n.LocationPaths) == 0 {
		return ""
	}
	p := n.LocationPaths[0]
	if i := strings.Index(strings.ToUpper(p), "#USBMI("); i >= 0 {
		p = p[:i]
	}
	return p
}

func isWinUSB(n devNode) bool { return strings.EqualFold(n.Service, "WinUSB") && n.Problem == 0 }

// winDoor is how a listed device is opened: the node WinUSB serves and the interface GUIDs
// to look its path up under.
type winDoor struct {
	instanceID string
	guids      []string
}

// winBackend reaches devices through SetupAPI and WinUSB.
type winBackend struct {
	sys winSys

	mu    sync.Mutex
	doors map[string]winDoor // by Info.Key, from the last scan
}

func newWinBackend(sys winSys) *winBackend {
	return &winBackend{sys: sys, doors: map[string]winDoor{}}
}

func (b *winBackend) close() error { return nil }

// scan lists the Particle devices Windows has attached: each whole-device node with a
// Particle VID/PID, and the node to open for it: the device itself in DFU mode (a single
// interface device), the WinUSB function of the composite device in normal mode (the
// control interface; the CDC serial function has usbser). A device without such a node is
// listed with an error saying which driver it lacks and how to get one.
func (b *winBackend) scan() ([]Info, error) {
	nodes, err := b.sys.devNodes(true)
	if err != nil {
		return nil, remedy.With(fmt.Errorf("usb: list USB devices (SetupAPI): %w", err),
			"check that Device Manager lists the device under Universal Serial Bus devices; unplug and replug it")
	}
	doors := map[string]winDoor{}
	var out []Info
	for _, n := range nodes {
		ids, ok := parseInstanceID(n.InstanceID)
		if !ok || ids.mi >= 0 {
			continue
		}
		p, isDFU, ok := Identify(ids.vid, ids.pid)
		if !ok {
			continue
		}
		info := Info{Instance: n.InstanceID, Path: port(n), VID: ids.vid, PID: ids.pid, Platform: p, DFU: isDFU}
		door, err := b.doorFor(info, n, ids, nodes)
		if err != nil {
			info.Err = err
		} else {
			doors[info.Key()] = door
		}
		out = append(out, info)
	}
	b.mu.Lock()
	b.doors = doors
	b.mu.Unlock()
	return out, nil
}

// doorFor picks the node to open for the device node dev.
func (b *winBackend) doorFor(info Info, dev devNode, ids instanceIDs, nodes []devNode) (winDoor, error) {
	if info.DFU {
		if isWinUSB(dev) {
			return winDoor{instanceID: dev.InstanceID, guids: withGUID(dev.InterfaceGUIDs, guidParticleDFU)}, nil
		}
		return winDoor{}, noDriverError(info, dev, false)
	}
	// Normal mode: the device's functions are the nodes with its IDs, an MI_ part, and a
	// location under the device's own.
	var funcs []devNode
	for _, f := range nodes {
		fi, ok := parseInstanceID(f.InstanceID)
		if !ok || fi.mi < 0 || fi.vid != ids.vid || fi.pid != ids.pid {
			continue
		}
		if info.Path != "" && port(f) != info.Path {
			continue
		}
		funcs = append(funcs, f)
	}
	var pick *devNode
	for i, f := range funcs {
		if !isWinUSB(f) {
			continue
		}
		if pick == nil || hasGUID(f.InterfaceGUIDs, guidParticleControl) {
			pick = &funcs[i]
		}
	}
	if pick == nil {
		// The control interface is the function without a working driver (CDC has usbser).
		var bad devNode
		for _, f := range funcs {
			if f.Problem != 0 || f.Service == "" {
				bad = f
				break
			}
		}
		return winDoor{}, noDriverError(info, bad, true)
	}
	return winDoor{instanceID: pick.InstanceID, guids: withGUID(pick.InterfaceGUIDs, guidParticleControl)}, nil
}

// withGUID is the node's registered GUIDs, then Particle's own for its kind.
func withGUID(registered []string, particle string) []string {
	return append(append([]string(nil), registered...), particle)
}

func hasGUID(guids []string, g string) bool {
	for _, x := range guids {
		if strings.EqualFold(x, g) {
			return true
		}
	}
	return false
}

// open finds the WinUSB interface path of the device's node, opens it and initialises
// WinUSB on it with the control timeout set on the default pipe.
func (b *winBackend) open(info Info, timeout time.Duration) (conn, error) {
	b.mu.Lock()
	door, ok := b.doors[info.Key()]
	b.mu.Unlock()
	if !ok {
		if _, err := b.scan(); err != nil {
			return nil, err
		}
		b.mu.Lock()
		door, ok = b.doors[info.Key()]
		b.mu.Unlock()
		if !ok {
			return nil, leftError(info)
		}
	}
	var path string
	seen := map[string]bool{}
	for _, g := range door.guids {
		if seen[strings.ToLower(g)] {
			continue
		}
		seen[strings.ToLower(g)] = true
		paths, err := b.sys.interfacePaths(g, door.instanceID)
		if err == nil && len(paths) > 0 {
			path = paths[0]
			break
		}
	}
	if path == "" {
		return nil, remedy.With(fmt.Errorf("usb: Windows lists the %s with the WinUSB driver but no device interface to open", info),
			b.staleRemedy())
	}
	f, err := b.sys.createFile(path)
	if err != nil {
		return nil, b.openError(info, "open", err)
	}
	h, err := b.sys.winusbInitialize(f)
	if err != nil {
		_ = b.sys.closeHandle(f)
		return nil, b.openError(info, "start WinUSB on", err)
	}
	ms := uint32(timeout / time.Millisecond)
	if ms == 0 {
		ms = uint32(DefaultControlTimeout / time.Millisecond)
	}
	if err := b.sys.winusbSetTimeout(h, ms); err != nil {
		_ = b.sys.winusbFree(h)
		_ = b.sys.closeHandle(f)
		return nil, fmt.Errorf("usb: set the control timeout of the %s: %w", info, err)
	}
	return &winConn{sys: b.sys, info: info, file: f, h: h}, nil
}

func leftError(info Info) error {
	return remedy.With(fmt.Errorf("%w: the %s left the bus", ErrNotFound, info),
		"it reset or was unplugged; wait for it to come back in the device list and try again")
}

// openError puts a failed CreateFile or WinUsb_Initialize in words with what to do.
func (b *winBackend) openError(info Info, what string, err error) error {
	e := fmt.Errorf("usb: cannot %s the %s: %w", what, info, err)
	switch winCode(err) {
	case errFileNotFound, errDeviceNotConnected, errNoSuchDevice:
		return remedy.With(fmt.Errorf("%w: %w", ErrNotFound, e),
			"it reset or was unplugged; wait for it to come back in the device list and try again")
	case errAccessDenied, errSharingViolation:
		return remedy.With(e, busyRemedyWindows)
	}
	return remedy.With(e, b.staleRemedy())
}

const busyRemedyWindows = "another program has the device open (particle-cli, dfu-util, Zadig, " +
	"another flasher): WinUSB lets one program at a time use a device; close it and try again"

// staleRemedy is the Device Manager clean-up, with the number of hidden Particle entries
// Windows remembers when it can be counted.
func (b *winBackend) staleRemedy() string {
	hidden := 0
	if all, err := b.sys.devNodes(false); err == nil {
		present := map[string]bool{}
		if now, err := b.sys.devNodes(true); err == nil {
			for _, n := range now {
				present[strings.ToUpper(n.InstanceID)] = true
			}
		}
		for _, n := range all {
			ids, ok := parseInstanceID(n.InstanceID)
			if ok && !present[strings.ToUpper(n.InstanceID)] && (ids.vid == ParticleVID || ids.vid == SparkVID) {
				hidden++
			}
		}
	}
	s := "Windows may be holding stale entries for Particle devices: open Device Manager, choose " +
		"View > Show hidden devices, and under Universal Serial Bus devices, Ports (COM & LPT) and " +
		"Other devices uninstall the greyed-out Particle entries"
	if hidden > 0 {
		s += fmt.Sprintf(" (%d here)", hidden)
	}
	return s + "; then unplug and replug the device, and if it still fails try another USB port or cable"
}

// winConn is one device opened through WinUSB.
type winConn struct {
	sys  winSys
	info Info
	file winHandle
	h    winHandle

	dev  []byte // the device descriptor, read once
	lang uint16 // the first language the device lists
}

const (
	descDevice    = 0x01
	descString    = 0x03
	reqSetIntf    = 0x0B
	stdOutIntf    = 0x01
	langEnglishUS = 0x0409
)

// control carries one transfer. Standard GET_DESCRIPTOR requests to the device go through
// WinUsb_GetDescriptor, which WinUSB serves (from its cache where it has one); everything
// else is WinUsb_ControlTransfer.
func (c *winConn) control(rType, request uint8, val, idx uint16, data []byte) (int, error) {
	var (
		n   int
		err error
	)
	if rType == stdIn && request == reqGetDesc {
		n, err = c.sys.winusbGetDescriptor(c.h, uint8(val>>8), uint8(val), idx, data)
	} else {
		n, err = c.sys.winusbControlTransfer(c.h, winSetup{RequestType: rType, Request: request, Value: val, Index: idx, Length: uint16(len(data))}, data)
	}
	return n, classifyWin(err)
}

// classifyWin maps WinUSB's errors onto the sentinels the DFU client branches on: WinUSB
// reports a STALL as ERROR_GEN_FAILURE, a vanished device as not connected or a bad
// command on a dead handle.
func classifyWin(err error) error {
	if err == nil {
		return nil
	}
	ce := &ControlError{Err: err}
	switch winCode(err) {
	case errGenFailure:
		ce.sentinel = dfu.ErrStall
	case errDeviceNotConnected, errNoSuchDevice, errBadCommand, errInvalidHandle, errFileNotFound, errOperationAborted:
		ce.sentinel = dfu.ErrNoDevice
	}
	return ce
}

func (c *winConn) deviceDescriptor() ([]byte, error) {
	if c.dev != nil {
		return c.dev, nil
	}
	buf := make([]byte, 18)
	n, err := c.sys.winusbGetDescriptor(c.h, descDevice, 0, 0, buf)
	if err != nil {
		return nil, fmt.Errorf("usb: read the device descriptor of the %s: %w", c.info, err)
	}
	if n < 18 {
		return nil, fmt.Errorf("usb: the %s sent a %d-byte device descriptor", c.info, n)
	}
	c.dev = buf
	return buf, nil
}

// stringDescriptor reads string index in the device's first language, as libusb's
// ascii variant does, decoded from UTF-16.
func (c *winConn) stringDescriptor(index uint8) (string, error) {
	if index == 0 {
		return "", nil
	}
	if c.lang == 0 {
		buf := make([]byte, 255)
		n, err := c.sys.winusbGetDescriptor(c.h, descString, 0, 0, buf)
		if err == nil && n >= 4 {
			c.lang = uint16(buf[2]) | uint16(buf[3])<<8
		} else {
			c.lang = langEnglishUS
		}
	}
	buf := make([]byte, 255)
	n, err := c.sys.winusbGetDescriptor(c.h, descString, index, c.lang, buf)
	if err != nil {
		return "", fmt.Errorf("usb: read string %d of the %s: %w", index, c.info, err)
	}
	if n < 2 || buf[1] != descString {
		return "", fmt.Errorf("usb: string %d of the %s is not a string descriptor", index, c.info)
	}
	if l := int(buf[0]); l < n {
		n = l
	}
	u := make([]uint16, 0, (n-2)/2)
	for i := 2; i+1 < n; i += 2 {
		u = append(u, uint16(buf[i])|uint16(buf[i+1])<<8)
	}
	return string(utf16.Decode(u)), nil
}

func (c *winConn) serialNumber() (string, error) {
	d, err := c.deviceDescriptor()
	if err != nil {
		return "", err
	}
	return c.stringDescriptor(d[16])
}

func (c *winConn) names() (product, manufacturer string) {
	d, err := c.deviceDescriptor()
	if err != nil {
		return "", ""
	}
	product, _ = c.stringDescriptor(d[15])
	manufacturer, _ = c.stringDescriptor(d[14])
	return product, manufacturer
}

// selectAlt sets the alternate setting of the interface WinUSB opened (interface 0 of a
// DFU-mode device): WinUSB claims the interface when it opens it.
func (c *winConn) selectAlt(alt uint8) error {
	if err := c.sys.winusbSetCurrentAlternateSetting(c.h, alt); err != nil {
		e := fmt.Errorf("usb: select alt %d of DFU interface 0 of the %s: %w", alt, c.info, err)
		if winCode(err) == errGenFailure {
			return remedy.With(e, "the device refused that memory region: it may be locked (Device Protection) or not exist on this platform")
		}
		return classifyWin(e)
	}
	return nil
}

func (c *winConn) altName(alt uint8) (string, error) {
	d, err := c.sys.winusbQueryInterfaceSettings(c.h, alt)
	if err != nil {
		return "", err
	}
	if d.Alt != alt {
		return "", fmt.Errorf("WinUSB answered alt %d for alt %d", d.Alt, alt)
	}
	return c.stringDescriptor(d.Interface)
}

func (c *winConn) release() {}

func (c *winConn) close() error {
	err := c.sys.winusbFree(c.h)
	if cerr := c.sys.closeHandle(c.file); err == nil {
		err = cerr
	}
	return err
}
