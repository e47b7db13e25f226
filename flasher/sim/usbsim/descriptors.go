package usbsim

import (
	"encoding/binary"
	"sync"
	"unicode/utf16"
)

// USB descriptor types and standard requests used here.
const (
	DescDevice    = 0x01 // device descriptor
	DescConfig    = 0x02 // configuration descriptor
	DescString    = 0x03 // string descriptor
	DescInterface = 0x04 // interface descriptor
	DescEndpoint  = 0x05 // endpoint descriptor
	DescDFU       = 0x21 // DFU functional descriptor

	ReqGetStatus        = 0x00
	ReqClearFeature     = 0x01
	ReqSetFeature       = 0x03
	ReqSetAddress       = 0x05
	ReqGetDescriptor    = 0x06
	ReqGetConfiguration = 0x08
	ReqSetConfiguration = 0x09
	ReqGetInterface     = 0x0A
	ReqSetInterface     = 0x0B
)

// LangIDEnglishUS is the only language a Descriptors device offers.
const LangIDEnglishUS = 0x0409

// Descriptors builds the device, configuration and string descriptors of a
// one-configuration device from a readable spec, and answers the standard
// requests about them (HandleStandard). It keeps the state those requests
// change (configuration, alt settings), so it must not be copied after first
// use. Its methods are safe for concurrent use; change the exported fields
// only while no host is talking to the device, or under the lock that also
// guards the device's Control and Info.
//
// String descriptor indexes are assigned in order: Manufacturer, Product,
// Serial, then every alt setting name; an empty string gets index 0.
type Descriptors struct {
	VID, PID, BCDDevice           uint16
	Manufacturer, Product, Serial string
	// DeviceClass, DeviceSubClass and DeviceProtocol go in the device
	// descriptor; zero means "defined per interface".
	DeviceClass, DeviceSubClass, DeviceProtocol uint8
	// BCDUSB is the USB version; 0 means 0x0200.
	BCDUSB uint16
	// MaxPacketSize0 is the endpoint 0 packet size; 0 means 64.
	MaxPacketSize0 uint8
	// MaxPower is in 2 mA units; 0 means 50 (100 mA).
	MaxPower uint8
	// Interfaces of configuration 1, in order.
	Interfaces []Interface

	mu     sync.Mutex
	config uint8 // 0 = unconfigured; starts at 1 (the host configured it)
	ready  bool
	alts   map[uint8]uint8
}

// Interface describes one interface and its alternate settings.
type Interface struct {
	Number                    uint8
	Class, SubClass, Protocol uint8
	// Alts are the alternate settings; none means a single alt 0 without a
	// name. If every Alt number is 0, the settings are numbered by position.
	Alts []AltSetting
	// Extra holds class-specific descriptors (e.g. DFUFunctionalDescriptor),
	// placed right after the interface descriptor of the last alt setting,
	// where libusb reports them as that alt setting's "extra" bytes.
	Extra []byte
	// Endpoints of every alt setting.
	Endpoints []Endpoint
}

// AltSetting is one alternate setting of an interface.
type AltSetting struct {
	Alt uint8
	// Name is the iInterface string, e.g. a DfuSe memory layout
	// "@Internal Flash   /0x08000000/04*016Kg".
	Name string
}

// Endpoint is a (non-zero) endpoint of an interface.
type Endpoint struct {
	Address, Attributes uint8
	MaxPacketSize       uint16
	Interval            uint8
}

// DFUFunctionalDescriptor returns the 9-byte DFU functional descriptor (type
// 0x21): bmAttributes, wDetachTimeOut (ms), wTransferSize and bcdDFUVersion
// (0x011A for ST DfuSe).
func DFUFunctionalDescriptor(attrs uint8, detachTimeout, transferSize, bcdDFU uint16) []byte {
	b := []byte{9, DescDFU, attrs, 0, 0, 0, 0, 0, 0}
	binary.LittleEndian.PutUint16(b[3:], detachTimeout)
	binary.LittleEndian.PutUint16(b[5:], transferSize)
	binary.LittleEndian.PutUint16(b[7:], bcdDFU)
	return b
}

// alts returns the interface's alt settings as they are enumerated.
func (in *Interface) alts() []AltSetting {
	if len(in.Alts) == 0 {
		return []AltSetting{{}}
	}
	numbered := false
	for _, a := range in.Alts {
		numbered = numbered || a.Alt != 0
	}
	if numbered {
		return in.Alts
	}
	out := make([]AltSetting, len(in.Alts))
	for i, a := range in.Alts {
		out[i] = AltSetting{Alt: uint8(i), Name: a.Name}
	}
	return out
}

// strings returns the string table; index 0 is unused.
func (d *Descriptors) strings() []string {
	t := []string{""}
	for _, s := range []string{d.Manufacturer, d.Product, d.Serial} {
		t = append(t, s)
	}
	for i := range d.Interfaces {
		for _, a := range d.Interfaces[i].alts() {
			t = append(t, a.Name)
		}
	}
	return t
}

// stringIndex returns the descriptor index of table entry i (0 for "").
func stringIndex(t []string, i int) uint8 {
	if t[i] == "" {
		return 0
	}
	return uint8(i)
}

// DeviceDescriptor returns the 18-byte device descriptor.
func (d *Descriptors) DeviceDescriptor() []byte {
	t := d.strings()
	b := make([]byte, 18)
	b[0], b[1] = 18, DescDevice
	binary.LittleEndian.PutUint16(b[2:], orDefault16(d.BCDUSB, 0x0200))
	b[4], b[5], b[6] = d.DeviceClass, d.DeviceSubClass, d.DeviceProtocol
	b[7] = orDefault8(d.MaxPacketSize0, 64)
	binary.LittleEndian.PutUint16(b[8:], d.VID)
	binary.LittleEndian.PutUint16(b[10:], d.PID)
	binary.LittleEndian.PutUint16(b[12:], d.BCDDevice)
	b[14], b[15], b[16] = stringIndex(t, 1), stringIndex(t, 2), stringIndex(t, 3)
	b[17] = 1
	return b
}

// ConfigDescriptor returns the full configuration descriptor (value 1):
// configuration, then for each interface its alt settings, each followed by
// its endpoints, with the interface's Extra after the last alt's interface
// descriptor.
func (d *Descriptors) ConfigDescriptor() []byte {
	t := d.strings()
	str := 4 // first alt name in the string table
	b := []byte{9, DescConfig, 0, 0, uint8(len(d.Interfaces)), 1, 0, 0x80, orDefault8(d.MaxPower, 50)}
	for i := range d.Interfaces {
		in := &d.Interfaces[i]
		alts := in.alts()
		for j, a := range alts {
			b = append(b, 9, DescInterface, in.Number, a.Alt, uint8(len(in.Endpoints)),
				in.Class, in.SubClass, in.Protocol, stringIndex(t, str))
			str++
			if j == len(alts)-1 {
				b = append(b, in.Extra...)
			}
			for _, e := range in.Endpoints {
				b = append(b, 7, DescEndpoint, e.Address, e.Attributes,
					uint8(e.MaxPacketSize), uint8(e.MaxPacketSize>>8), e.Interval)
			}
		}
	}
	binary.LittleEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

// StringDescriptor returns string descriptor i (0: the language list), or
// nil if there is none.
func (d *Descriptors) StringDescriptor(i uint8) []byte {
	if i == 0 {
		return []byte{4, DescString, LangIDEnglishUS & 0xff, LangIDEnglishUS >> 8}
	}
	t := d.strings()
	if int(i) >= len(t) || t[i] == "" {
		return nil
	}
	u := utf16.Encode([]rune(t[i]))
	if len(u) > 126 {
		u = u[:126]
	}
	b := []byte{uint8(2 + 2*len(u)), DescString}
	for _, c := range u {
		b = append(b, uint8(c), uint8(c>>8))
	}
	return b
}

// Info returns a DeviceInfo with these descriptors at full speed; the Server
// assigns bus, address and port path.
func (d *Descriptors) Info() DeviceInfo {
	return DeviceInfo{Speed: SpeedFull, Descriptor: d.DeviceDescriptor(), Config: d.ConfigDescriptor()}
}

// Configuration returns the active configuration value (1 unless the host
// set another).
func (d *Descriptors) Configuration() uint8 {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lazyInit()
	return d.config
}

// Alt returns the alt setting the host selected on interface iface (0 by
// default).
func (d *Descriptors) Alt(iface uint8) uint8 {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lazyInit()
	return d.alts[iface]
}

// ResetState returns configuration and alt settings to their state after
// enumeration (configuration 1, alt 0 everywhere); call it on a bus reset.
func (d *Descriptors) ResetState() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ready = false
	d.lazyInit()
}

func (d *Descriptors) lazyInit() {
	if !d.ready {
		d.ready, d.config, d.alts = true, 1, map[uint8]uint8{}
	}
}

func (d *Descriptors) findAlt(iface, alt uint8) (ifaceOK, altOK bool) {
	for i := range d.Interfaces {
		if d.Interfaces[i].Number != iface {
			continue
		}
		for _, a := range d.Interfaces[i].alts() {
			if a.Alt == alt {
				return true, true
			}
		}
		return true, false
	}
	return false, false
}

// HandleStandard answers the standard requests (type bits 00): GET_DESCRIPTOR
// for the device, configuration, string (language 0x0409) and DFU functional
// (0x21) descriptors, GET/SET_CONFIGURATION, GET_STATUS, GET/SET_INTERFACE,
// and accepts SET_ADDRESS, CLEAR_FEATURE and SET_FEATURE; other standard
// requests STALL. IN replies are truncated to len(data). handled is false
// for class and vendor requests, which the caller must answer itself.
func (d *Descriptors) HandleStandard(setup Setup, data []byte) (n int, handled bool, err error) {
	if setup.RequestType&0x60 != 0 {
		return 0, false, nil
	}
	reply := func(b []byte) (int, bool, error) {
		if !setup.In() {
			return 0, true, ErrStall
		}
		return copy(data, b), true, nil
	}
	switch setup.Request {
	case ReqGetStatus:
		return reply([]byte{0, 0})
	case ReqClearFeature, ReqSetFeature, ReqSetAddress:
		return 0, true, nil
	case ReqGetDescriptor:
		var b []byte
		switch idx := uint8(setup.Value); setup.Value >> 8 {
		case DescDevice:
			b = d.DeviceDescriptor()
		case DescConfig:
			if idx == 0 {
				b = d.ConfigDescriptor()
			}
		case DescString:
			b = d.StringDescriptor(idx)
		case DescDFU:
			b = d.dfuDescriptor()
		}
		if b == nil {
			return 0, true, ErrStall
		}
		return reply(b)
	case ReqGetConfiguration:
		return reply([]byte{d.Configuration()})
	case ReqSetConfiguration:
		if setup.Value > 1 {
			return 0, true, ErrStall
		}
		d.mu.Lock()
		d.lazyInit()
		d.config, d.alts = uint8(setup.Value), map[uint8]uint8{}
		d.mu.Unlock()
		return 0, true, nil
	case ReqGetInterface:
		if ok, _ := d.findAlt(uint8(setup.Index), 0); !ok {
			return 0, true, ErrStall
		}
		return reply([]byte{d.Alt(uint8(setup.Index))})
	case ReqSetInterface:
		if _, ok := d.findAlt(uint8(setup.Index), uint8(setup.Value)); !ok || setup.Value > 0xff {
			return 0, true, ErrStall
		}
		d.mu.Lock()
		d.lazyInit()
		d.alts[uint8(setup.Index)] = uint8(setup.Value)
		d.mu.Unlock()
		return 0, true, nil
	}
	return 0, true, ErrStall
}

// dfuDescriptor returns the first DFU functional descriptor in any
// interface's Extra bytes, or nil.
func (d *Descriptors) dfuDescriptor() []byte {
	for i := range d.Interfaces {
		x := d.Interfaces[i].Extra
		for len(x) >= 2 && x[0] >= 2 && int(x[0]) <= len(x) {
			if x[1] == DescDFU {
				return x[:x[0]]
			}
			x = x[x[0]:]
		}
	}
	return nil
}

func orDefault8(v, def uint8) uint8 {
	if v == 0 {
		return def
	}
	return v
}

func orDefault16(v, def uint16) uint16 {
	if v == 0 {
		return def
	}
	return v
}
