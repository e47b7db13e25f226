// Command gousbprobe drives github.com/google/gousb for the usbsim tests. It
// must be started with the libusb shim on LD_LIBRARY_PATH (usbsim's
// Server.Env). It reads one JSON request per line on stdin and answers each
// with one JSON line on stdout, keeping opened devices between requests so a
// test can unplug a device while the process holds it open.
//
// Requests ({"op": ...}):
//
//	open     {vid, pid}  open every matching device (pid 0: any); reply devices + err
//	control  {serial, rt, req, val, idx, len, data}  Device.Control; reply n, data, err
//	alt      {serial, intf, alt}  Config(1) then Interface(intf, alt); reply err
//	close    {}  close every open device
//	exit     {}  close the context and exit
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/google/gousb"
)

type request struct {
	Op     string `json:"op"`
	VID    int    `json:"vid"`
	PID    int    `json:"pid"`
	Serial string `json:"serial"`
	RT     uint8  `json:"rt"`
	Req    uint8  `json:"req"`
	Val    uint16 `json:"val"`
	Idx    uint16 `json:"idx"`
	Len    int    `json:"len"`
	Data   []byte `json:"data"`
	Intf   int    `json:"intf"`
	Alt    int    `json:"alt"`
}

type errInfo struct {
	Msg  string          `json:"msg"`
	Code int             `json:"code"` // the gousb.Error, if it is one
	Is   map[string]bool `json:"is"`   // errors.Is against the gousb errors
}

type altInfo struct {
	Config int    `json:"config"`
	Intf   int    `json:"intf"`
	Alt    int    `json:"alt"`
	Class  int    `json:"class"`
	Name   string `json:"name"`
}

type devInfo struct {
	Bus          int       `json:"bus"`
	Address      int       `json:"address"`
	Path         []int     `json:"path"`
	Speed        string    `json:"speed"`
	VID          int       `json:"vid"`
	PID          int       `json:"pid"`
	Manufacturer string    `json:"manufacturer"`
	Product      string    `json:"product"`
	Serial       string    `json:"serial"`
	ActiveConfig int       `json:"active_config"`
	Alts         []altInfo `json:"alts"`
	Err          string    `json:"err,omitempty"`
}

type reply struct {
	Devices []devInfo `json:"devices,omitempty"`
	N       int       `json:"n"`
	Data    []byte    `json:"data,omitempty"`
	Err     *errInfo  `json:"err,omitempty"`
}

func describe(err error) *errInfo {
	if err == nil {
		return nil
	}
	e := &errInfo{Msg: err.Error(), Is: map[string]bool{}}
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

func info(d *gousb.Device) devInfo {
	di := devInfo{
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
				di.Alts = append(di.Alts, altInfo{cfg.Number, intf.Number, alt.Alternate, int(alt.Class), name})
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		di.Err = err.Error()
	}
	return di
}

func main() {
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
		var req request
		var rep reply
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			fmt.Fprintln(os.Stderr, "gousbprobe:", err)
			os.Exit(2)
		}
		switch req.Op {
		case "open":
			devs, err := ctx.OpenDevices(func(desc *gousb.DeviceDesc) bool {
				return int(desc.Vendor) == req.VID && (req.PID == 0 || int(desc.Product) == req.PID)
			})
			rep.Err = describe(err)
			for _, d := range devs {
				d.ControlTimeout = 2 * time.Second
				di := info(d)
				rep.Devices = append(rep.Devices, di)
				if old := open[di.Serial]; old != nil {
					_ = old.Close()
				}
				open[di.Serial] = d
			}
		case "control":
			d := open[req.Serial]
			if d == nil {
				rep.Err = &errInfo{Msg: "not open: " + req.Serial}
				break
			}
			buf := req.Data
			if req.RT&0x80 != 0 {
				buf = make([]byte, req.Len)
			}
			n, err := d.Control(req.RT, req.Req, req.Val, req.Idx, buf)
			rep.N, rep.Err = n, describe(err)
			if err == nil && req.RT&0x80 != 0 {
				rep.Data = buf[:n]
			}
		case "alt":
			d := open[req.Serial]
			if d == nil {
				rep.Err = &errInfo{Msg: "not open: " + req.Serial}
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
			rep.Err = describe(err)
		case "close":
			closeAll()
		case "exit":
			closeAll()
			_ = out.Encode(reply{Err: describe(ctx.Close())})
			return
		default:
			rep.Err = &errInfo{Msg: "unknown op " + req.Op}
		}
		if err := out.Encode(rep); err != nil {
			os.Exit(2)
		}
	}
	closeAll()
	_ = ctx.Close()
}
