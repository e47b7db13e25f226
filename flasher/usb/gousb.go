//go:build !windows

package usb

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/gousb"

	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// NewHost initialises libusb. gousb panics when libusb cannot start (no USB support in a
// container, say); that becomes an error with what to check.
func NewHost() (h *Host, err error) {
	defer func() {
		if r := recover(); r != nil {
			h, err = nil, remedy.With(fmt.Errorf("usb: libusb could not start: %v", r),
				"check that libusb-1.0 is installed and that /dev/bus/usb is visible (in a container, pass the USB devices through)")
		}
	}()
	return newHost(&libusbBackend{ctx: gousb.NewContext()}), nil
}

// libusbBackend reaches devices through libusb (gousb): Linux and macOS.
type libusbBackend struct {
	ctx *gousb.Context
}

func (b *libusbBackend) close() error { return b.ctx.Close() }

func portPath(d *gousb.DeviceDesc) string {
	if len(d.Path) == 0 {
		return strconv.Itoa(d.Bus) + "-0"
	}
	parts := make([]string, len(d.Path))
	for i, p := range d.Path {
		parts[i] = strconv.Itoa(p)
	}
	return strconv.Itoa(d.Bus) + "-" + strings.Join(parts, ".")
}

func infoFromDesc(d *gousb.DeviceDesc) (Info, bool) {
	vid, pid := uint16(d.Vendor), uint16(d.Product)
	p, dfu, ok := Identify(vid, pid)
	if !ok {
		return Info{}, false
	}
	return Info{Bus: d.Bus, Address: d.Address, Path: portPath(d), VID: vid, PID: pid, Platform: p, DFU: dfu}, true
}

// scan reads the descriptors libusb already holds; nothing is opened.
func (b *libusbBackend) scan() ([]Info, error) {
	var seen []Info
	looked := false // the bus was listed (errors after that are per device)
	_, err := b.ctx.OpenDevices(func(d *gousb.DeviceDesc) bool {
		looked = true
		if info, ok := infoFromDesc(d); ok {
			seen = append(seen, info)
		}
		return false
	})
	if !looked && err != nil {
		return nil, remedy.With(fmt.Errorf("usb: list devices: %w", err), "check that USB works on this machine (`lsusb`); in a container, pass /dev/bus/usb through")
	}
	return seen, nil
}

// open opens the device if it is still the same enumeration instance (same bus and
// address).
func (b *libusbBackend) open(info Info, timeout time.Duration) (conn, error) {
	devs, err := b.ctx.OpenDevices(func(d *gousb.DeviceDesc) bool {
		return d.Bus == info.Bus && d.Address == info.Address && uint16(d.Vendor) == info.VID && uint16(d.Product) == info.PID
	})
	if len(devs) == 0 {
		if isAccess(err) {
			return nil, permissionError(info.String(), err)
		}
		if err != nil {
			return nil, fmt.Errorf("usb: cannot open the %s: %w", info, err)
		}
		return nil, remedy.With(fmt.Errorf("%w: the %s left the bus", ErrNotFound, info),
			"it reset or was unplugged; wait for it to come back in the device list and try again")
	}
	for _, extra := range devs[1:] {
		_ = extra.Close()
	}
	d := devs[0]
	d.ControlTimeout = timeout
	return &libusbConn{info: info, dev: d}, nil
}

func isAccess(err error) bool {
	return err != nil && (errors.Is(err, gousb.ErrorAccess) || strings.Contains(err.Error(), gousb.ErrorAccess.Error()))
}

// libusbConn is one device opened through libusb.
type libusbConn struct {
	info Info
	dev  *gousb.Device
	cfg  *gousb.Config
	intf *gousb.Interface
}

func classify(err error) error {
	if err == nil {
		return nil
	}
	ce := &ControlError{Err: err}
	switch {
	case errors.Is(err, gousb.ErrorPipe):
		ce.sentinel = dfu.ErrStall
	case errors.Is(err, gousb.ErrorNoDevice), errors.Is(err, gousb.ErrorNotFound):
		ce.sentinel = dfu.ErrNoDevice
	}
	return ce
}

func (c *libusbConn) control(rType, request uint8, val, idx uint16, data []byte) (int, error) {
	n, err := c.dev.Control(rType, request, val, idx, data)
	return n, classify(err)
}

func (c *libusbConn) serialNumber() (string, error) { return c.dev.SerialNumber() }

func (c *libusbConn) names() (product, manufacturer string) {
	product, _ = c.dev.Product()
	manufacturer, _ = c.dev.Manufacturer()
	return product, manufacturer
}

func (c *libusbConn) cfgNum() int {
	n, err := c.dev.ActiveConfigNum()
	if err != nil || n == 0 {
		return 1
	}
	return n
}

func (c *libusbConn) selectAlt(alt uint8) error {
	cfg, err := c.dev.Config(c.cfgNum())
	if err != nil {
		return c.claimError("select configuration", err)
	}
	intf, err := cfg.Interface(0, int(alt))
	if err != nil {
		_ = cfg.Close()
		return c.claimError(fmt.Sprintf("claim DFU interface 0 alt %d", alt), err)
	}
	c.cfg, c.intf = cfg, intf
	return nil
}

func (c *libusbConn) altName(alt uint8) (string, error) {
	return c.dev.InterfaceDescription(c.cfgNum(), 0, int(alt))
}

func (c *libusbConn) claimError(what string, err error) error {
	if isAccess(err) {
		return permissionError(c.info.String(), err)
	}
	if strings.Contains(err.Error(), gousb.ErrorBusy.Error()) {
		return remedy.With(fmt.Errorf("usb: %s of the %s: %w", what, c.info, err),
			"another program has the device open (dfu-util, particle-cli, another flasher): close it and try again")
	}
	return fmt.Errorf("usb: %s of the %s: %w", what, c.info, err)
}

func (c *libusbConn) release() {
	if c.intf != nil {
		c.intf.Close()
		c.intf = nil
	}
	if c.cfg != nil {
		_ = c.cfg.Close()
		c.cfg = nil
	}
}

func (c *libusbConn) close() error {
	c.release()
	return c.dev.Close()
}
