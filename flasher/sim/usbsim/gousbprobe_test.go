//go:build !windows

// gousb (libusb) has no Windows build here: Windows reaches devices through flasher/usb's WinUSB backend.

package usbsim_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/google/gousb"

	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
)

// TestGousbProbeChild is the gousb side of the gousb tests (see startProbe): in the child
// that Server.TestCommand starts, gousb loads the libusb shim, and this loop answers the
// parent's requests until stdin closes. It exits the process itself so that nothing of
// the test harness's own output follows the replies on stdout.
func TestGousbProbeChild(t *testing.T) {
	if !usbsim.InChild(probeChild) {
		t.Skip("the gousb half of the gousb tests (run by them in a child process)")
	}
	ctx := gousb.NewContext()
	open := map[string]*gousb.Device{}
	closeAll := func() {
		for s, d := range open {
			_ = d.Close()
			delete(open, s)
		}
	}
	in := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var req probeRequest
		var rep probeReply
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			t.Logf("gousb probe: %v", err)
			os.Exit(2)
		}
		switch req.Op {
		case "open":
			devs, err := ctx.OpenDevices(func(desc *gousb.DeviceDesc) bool {
				return int(desc.Vendor) == req.VID && (req.PID == 0 || int(desc.Product) == req.PID)
			})
			rep.Err = probeDescribe(err)
			for _, d := range devs {
				d.ControlTimeout = 2 * time.Second
				di := probeInfo(d)
				rep.Devices = append(rep.Devices, di)
				if old := open[di.Serial]; old != nil {
					_ = old.Close()
				}
				open[di.Serial] = d
			}
		case "control":
			d := open[req.Serial]
			if d == nil {
				rep.Err = &probeErrInfo{Msg: "not open: " + req.Serial}
				break
			}
			buf := req.Data
			if req.RT&0x80 != 0 {
				buf = make([]byte, req.Len)
			}
			n, err := d.Control(req.RT, req.Req, req.Val, req.Idx, buf)
			rep.N, rep.Err = n, probeDescribe(err)
			if err == nil && req.RT&0x80 != 0 {
				rep.Data = buf[:n]
			}
		case "alt":
			d := open[req.Serial]
			if d == nil {
				rep.Err = &probeErrInfo{Msg: "not open: " + req.Serial}
				break
			}
			cfg, err := d.Config(1)
			if err == nil {
				var intf *gousb.Interface
				intf, err = cfg.Interface(req.Intf, req.Alt)
				if err == nil {
					intf.Close()
				}
				err = errors.Join(err, cfg.Close())
			}
			rep.Err = probeDescribe(err)
		case "close":
			closeAll()
		case "exit":
			closeAll()
			_ = out.Encode(probeReply{Err: probeDescribe(ctx.Close())})
			os.Exit(0)
		default:
			rep.Err = &probeErrInfo{Msg: "unknown op " + req.Op}
		}
		if err := out.Encode(rep); err != nil {
			os.Exit(2)
		}
	}
	closeAll()
	_ = ctx.Close()
	os.Exit(0)
}

// probeDescribe is an error as the parent checks it: the message, the gousb code and
// which gousb errors it matches.
func probeDescribe(err error) *probeErrInfo {
	if err == nil {
		return nil
	}
	e := &probeErrInfo{Msg: err.Error(), Is: map[string]bool{}}
	var ge gousb.Error
	if errors.As(err, &ge) {
		e.Code = int(ge)
	}
	for name, target := range map[string]gousb.Error{
		"access": gousb.ErrorAccess, "no_device": gousb.ErrorNoDevice, "pipe": gousb.ErrorPipe,
		"timeout": gousb.ErrorTimeout, "io": gousb.ErrorIO, "not_found": gousb.ErrorNotFound,
		"busy": gousb.ErrorBusy,
	} {
		e.Is[name] = errors.Is(err, target)
	}
	return e
}

// probeInfo is what gousb tells of an opened device.
func probeInfo(d *gousb.Device) probeDev {
	di := probeDev{
		Bus: d.Desc.Bus, Address: d.Desc.Address, Path: d.Desc.Path, Speed: d.Desc.Speed.String(),
		VID: int(d.Desc.Vendor), PID: int(d.Desc.Product),
	}
	var errs []error
	var err error
	di.Manufacturer, err = d.Manufacturer()
	errs = append(errs, err)
	di.Product, err = d.Product()
	errs = append(errs, err)
	di.Serial, err = d.SerialNumber()
	errs = append(errs, err)
	di.ActiveConfig, err = d.ActiveConfigNum()
	errs = append(errs, err)
	for _, cfg := range d.Desc.Configs {
		for _, intf := range cfg.Interfaces {
			for _, alt := range intf.AltSettings {
				name, err := d.InterfaceDescription(cfg.Number, intf.Number, alt.Alternate)
				errs = append(errs, err)
				di.Alts = append(di.Alts, probeAlt{cfg.Number, intf.Number, alt.Alternate, int(alt.Class), name})
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		di.Err = err.Error()
	}
	return di
}
