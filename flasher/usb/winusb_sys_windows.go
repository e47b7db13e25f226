//go:build windows

package usb

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"

	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// NewHost opens the Windows USB door: SetupAPI and winusb.dll (present on Windows 7 and
// later). Nothing is installed or loaded beyond what Windows ships.
func NewHost() (*Host, error) {
	if err := modWinUSB.Load(); err != nil {
		return nil, remedy.With(fmt.Errorf("usb: winusb.dll could not be loaded: %w", err),
			"WinUSB is part of Windows 7 and later; on this Windows, Particle devices are reachable over serial only")
	}
	return newHost(newWinBackend(sysWindows{})), nil
}

var (
	modWinUSB                            = windows.NewLazySystemDLL("winusb.dll")
	procWinUsbInitialize                 = modWinUSB.NewProc("WinUsb_Initialize")
	procWinUsbFree                       = modWinUSB.NewProc("WinUsb_Free")
	procWinUsbSetPipePolicy              = modWinUSB.NewProc("WinUsb_SetPipePolicy")
	procWinUsbControlTransfer            = modWinUSB.NewProc("WinUsb_ControlTransfer")
	procWinUsbGetDescriptor              = modWinUSB.NewProc("WinUsb_GetDescriptor")
	procWinUsbSetCurrentAlternateSetting = modWinUSB.NewProc("WinUsb_SetCurrentAlternateSetting")
	procWinUsbQueryInterfaceSettings     = modWinUSB.NewProc("WinUsb_QueryInterfaceSettings")
)

const pipeTransferTimeout = 0x03 // PIPE_TRANSFER_TIMEOUT (winusbio.h)

// sysWindows makes winSys's calls for real.
type sysWindows struct{}

// werr turns a failed call's last error into a *winError with Windows' words for it.
func werr(err error) error {
	// A configuration manager code is told apart first: its Error and Unwrap call
	// CM_MapCrToWin32Err, which Windows 8 and later have and Wine does not.
	if cr, ok := err.(windows.CONFIGRET); ok {
		return &winError{Msg: fmt.Sprintf("configuration manager error 0x%08x", uint32(cr))}
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		return &winError{Code: uint32(en), Msg: en.Error()}
	}
	return err
}

// call runs a winusb.dll BOOL function: false is a failure with GetLastError's code.
func call(p *windows.LazyProc, args ...uintptr) error {
	r, _, err := p.Call(args...)
	if r == 0 {
		return werr(err)
	}
	return nil
}

func (sysWindows) devNodes(present bool) ([]devNode, error) {
	flags := windows.DIGCF_ALLCLASSES
	if present {
		flags |= windows.DIGCF_PRESENT
	}
	set, err := windows.SetupDiGetClassDevsEx(nil, "USB", 0, flags, 0, "")
	if err != nil {
		return nil, werr(err)
	}
	defer set.Close()
	var out []devNode
	for i := 0; ; i++ {
		data, err := set.EnumDeviceInfo(i)
		if errors.Is(err, windows.ERROR_NO_MORE_ITEMS) {
			break
		}
		if err != nil {
			continue
		}
		id, err := set.DeviceInstanceID(data)
		if err != nil {
			continue
		}
		n := devNode{InstanceID: id}
		if v, err := set.DeviceRegistryProperty(data, windows.SPDRP_SERVICE); err == nil {
			n.Service, _ = v.(string)
		}
		if v, err := set.DeviceRegistryProperty(data, windows.SPDRP_LOCATION_PATHS); err == nil {
			n.LocationPaths, _ = v.([]string)
		}
		var status, problem uint32
		if windows.CM_Get_DevNode_Status(&status, &problem, data.DevInst, 0) == nil && status&windows.DN_HAS_PROBLEM != 0 {
			n.Problem = problem
		}
		if k, err := set.OpenDevRegKey(data, windows.DICS_FLAG_GLOBAL, 0, windows.DIREG_DEV, windows.KEY_READ); err == nil {
			rk := registry.Key(k)
			if v, _, err := rk.GetStringsValue("DeviceInterfaceGUIDs"); err == nil {
				n.InterfaceGUIDs = v
			} else if v, _, err := rk.GetStringValue("DeviceInterfaceGUID"); err == nil {
				n.InterfaceGUIDs = []string{v}
			}
			rk.Close()
		}
		out = append(out, n)
	}
	return out, nil
}

func (sysWindows) interfacePaths(guid, instanceID string) ([]string, error) {
	g, err := windows.GUIDFromString(guid)
	if err != nil {
		return nil, err
	}
	paths, err := windows.CM_Get_Device_Interface_List(instanceID, &g, windows.CM_GET_DEVICE_INTERFACE_LIST_PRESENT)
	if err != nil {
		return nil, werr(err)
	}
	return paths, nil
}

func (sysWindows) createFile(path string) (winHandle, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return 0, err
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ|windows.GENERIC_WRITE, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE,
		nil, windows.OPEN_EXISTING, windows.FILE_ATTRIBUTE_NORMAL|windows.FILE_FLAG_OVERLAPPED, 0)
	if err != nil {
		return 0, werr(err)
	}
	return winHandle(h), nil
}

func (sysWindows) closeHandle(h winHandle) error { return werr(windows.CloseHandle(windows.Handle(h))) }

func (sysWindows) winusbInitialize(file winHandle) (winHandle, error) {
	var h winHandle
	if err := call(procWinUsbInitialize, uintptr(file), uintptr(unsafe.Pointer(&h))); err != nil {
		return 0, err
	}
	return h, nil
}

func (sysWindows) winusbFree(h winHandle) error { return call(procWinUsbFree, uintptr(h)) }

func (sysWindows) winusbSetTimeout(h winHandle, ms uint32) error {
	return call(procWinUsbSetPipePolicy, uintptr(h), 0, pipeTransferTimeout, 4, uintptr(unsafe.Pointer(&ms)))
}

// setupArgs passes WINUSB_SETUP_PACKET (8 bytes) by value: one register on 64-bit
// Windows, two stack words on 32-bit.
func setupArgs(s winSetup) []uintptr {
	v := packSetup(s)
	if unsafe.Sizeof(uintptr(0)) == 8 {
		return []uintptr{uintptr(v)}
	}
	return []uintptr{uintptr(uint32(v)), uintptr(uint32(v >> 32))}
}

func bufPtr(b []byte) uintptr {
	if len(b) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(&b[0]))
}

func (sysWindows) winusbControlTransfer(h winHandle, setup winSetup, buf []byte) (int, error) {
	var n uint32
	args := append([]uintptr{uintptr(h)}, setupArgs(setup)...)
	args = append(args, bufPtr(buf), uintptr(len(buf)), uintptr(unsafe.Pointer(&n)), 0)
	err := call(procWinUsbControlTransfer, args...)
	return int(n), err
}

func (sysWindows) winusbGetDescriptor(h winHandle, typ, index uint8, lang uint16, buf []byte) (int, error) {
	var n uint32
	err := call(procWinUsbGetDescriptor, uintptr(h), uintptr(typ), uintptr(index), uintptr(lang), bufPtr(buf), uintptr(len(buf)), uintptr(unsafe.Pointer(&n)))
	return int(n), err
}

func (sysWindows) winusbSetCurrentAlternateSetting(h winHandle, alt uint8) error {
	return call(procWinUsbSetCurrentAlternateSetting, uintptr(h), uintptr(alt))
}

func (sysWindows) winusbQueryInterfaceSettings(h winHandle, alt uint8) (winInterface, error) {
	var d [9]byte // USB_INTERFACE_DESCRIPTOR
	if err := call(procWinUsbQueryInterfaceSettings, uintptr(h), uintptr(alt), uintptr(unsafe.Pointer(&d[0]))); err != nil {
		return winInterface{}, err
	}
	return winInterface{Number: d[2], Alt: d[3], Interface: d[8]}, nil
}
