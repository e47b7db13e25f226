package usbsim_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
)

func TestDescriptorBytes(t *testing.T) {
	d := newDFUDevice("e00fce68d1234567890abcde", 0xd00d).desc
	assert.Equal(t, []byte{
		18, 1, 0x00, 0x02, 0, 0, 0, 64,
		0x04, 0x2b, 0x0d, 0xd0, 0x51, 0x02,
		1, 2, 3, 1,
	}, d.DeviceDescriptor())

	assert.Equal(t, []byte{
		9, 2, 45, 0, 1, 1, 0, 0x80, 50,
		9, 4, 0, 0, 0, 0xFE, 1, 2, 4,
		9, 4, 0, 1, 0, 0xFE, 1, 2, 5,
		9, 4, 0, 2, 0, 0xFE, 1, 2, 6,
		9, 0x21, 0x0B, 0xFF, 0x00, 0x00, 0x10, 0x1A, 0x01,
	}, d.ConfigDescriptor())

	assert.Equal(t, []byte{4, 3, 0x09, 0x04}, d.StringDescriptor(0))
	assert.Equal(t, []byte{2 + 2*14, 3, 'B', 0, 'o', 0, 'r', 0, 'o', 0}, d.StringDescriptor(2)[:10])
	assert.Len(t, d.StringDescriptor(3), 2+2*24)
	assert.Nil(t, d.StringDescriptor(7))
}

func TestDescriptorsWithEndpointsAndDefaults(t *testing.T) {
	d := &usbsim.Descriptors{
		VID: 0x2b04, PID: 0xc00d, Product: "Boron", // no manufacturer or serial: index 0, the others keep their numbers
		Interfaces: []usbsim.Interface{
			{Number: 0, Class: 0xFF, Alts: []usbsim.AltSetting{{Name: "a"}, {Name: "b"}}}, // numbered by position
			{Number: 1, Class: 0x0A, Endpoints: []usbsim.Endpoint{{Address: 0x81, Attributes: 2, MaxPacketSize: 64}}},
		},
	}
	dev := d.DeviceDescriptor()
	assert.Equal(t, []byte{0, 2, 0}, dev[14:17], "no manufacturer, iProduct 2, no serial")
	assert.Equal(t, []byte{
		9, 2, 43, 0, 2, 1, 0, 0x80, 50,
		9, 4, 0, 0, 0, 0xFF, 0, 0, 4,
		9, 4, 0, 1, 0, 0xFF, 0, 0, 5,
		9, 4, 1, 0, 1, 0x0A, 0, 0, 0,
		7, 5, 0x81, 2, 64, 0, 0,
	}, d.ConfigDescriptor())
	assert.Equal(t, []byte{4, 3, 'a', 0}, d.StringDescriptor(4))
}

func TestHandleStandard(t *testing.T) {
	d := newDFUDevice("e00fce68d1234567890abcde", 0xd00d).desc
	in := func(rt, req uint8, val, idx, length uint16) ([]byte, bool, error) {
		data := make([]byte, length)
		n, handled, err := d.HandleStandard(usbsim.Setup{RequestType: rt, Request: req, Value: val, Index: idx, Length: length}, data)
		return data[:n], handled, err
	}

	b, handled, err := in(0x80, usbsim.ReqGetDescriptor, 0x0100, 0, 64)
	require.NoError(t, err)
	assert.True(t, handled)
	assert.Equal(t, d.DeviceDescriptor(), b)

	b, _, err = in(0x80, usbsim.ReqGetDescriptor, 0x0200, 0, 4) // truncated to wLength
	require.NoError(t, err)
	assert.Equal(t, []byte{9, 2, 45, 0}, b)

	b, _, err = in(0x80, usbsim.ReqGetDescriptor, 0x2100, 0, 255) // dfu-util's GET_DESCRIPTOR(0x21)
	require.NoError(t, err)
	assert.Equal(t, usbsim.DFUFunctionalDescriptor(0x0B, 0xFF, 4096, 0x011A), b)
	b, _, err = in(0x81, usbsim.ReqGetDescriptor, 0x2100, 0, 9) // addressed to the interface
	require.NoError(t, err)
	assert.Len(t, b, 9)

	b, _, err = in(0x80, usbsim.ReqGetDescriptor, 0x0300, 0, 255)
	require.NoError(t, err)
	assert.Equal(t, []byte{4, 3, 0x09, 0x04}, b)

	for _, bad := range []uint16{0x0309, 0x0201, 0x0600, 0x0F00} { // no such string, config 1, qualifier, BOS
		_, handled, err = in(0x80, usbsim.ReqGetDescriptor, bad, 0, 255)
		assert.True(t, handled)
		assert.ErrorIs(t, err, usbsim.ErrStall, "%#04x", bad)
	}

	b, _, err = in(0x80, usbsim.ReqGetConfiguration, 0, 0, 1)
	require.NoError(t, err)
	assert.Equal(t, []byte{1}, b)
	b, _, err = in(0x80, usbsim.ReqGetStatus, 0, 0, 2)
	require.NoError(t, err)
	assert.Equal(t, []byte{0, 0}, b)

	_, _, err = in(0x01, usbsim.ReqSetInterface, 2, 0, 0)
	require.NoError(t, err)
	assert.Equal(t, uint8(2), d.Alt(0))
	b, _, err = in(0x81, usbsim.ReqGetInterface, 0, 0, 1)
	require.NoError(t, err)
	assert.Equal(t, []byte{2}, b)
	_, _, err = in(0x01, usbsim.ReqSetInterface, 3, 0, 0)
	assert.ErrorIs(t, err, usbsim.ErrStall, "no alt 3")
	_, _, err = in(0x01, usbsim.ReqSetInterface, 0, 1, 0)
	assert.ErrorIs(t, err, usbsim.ErrStall, "no interface 1")

	d.ResetState()
	assert.Equal(t, uint8(0), d.Alt(0))
	assert.Equal(t, uint8(1), d.Configuration())

	// class and vendor requests are the caller's
	_, handled, _ = in(0xA1, 3, 0, 0, 6)
	assert.False(t, handled)
	_, handled, _ = in(0xC0, 0x50, 0, 20, 64)
	assert.False(t, handled)
}

func TestErrorCodes(t *testing.T) {
	for err, name := range map[error]string{
		usbsim.ErrIO: "LIBUSB_ERROR_IO", usbsim.ErrAccess: "LIBUSB_ERROR_ACCESS",
		usbsim.ErrNoDevice: "LIBUSB_ERROR_NO_DEVICE", usbsim.ErrTimeout: "LIBUSB_ERROR_TIMEOUT",
		usbsim.ErrStall: "LIBUSB_ERROR_PIPE", usbsim.ErrBusy: "LIBUSB_ERROR_BUSY",
		usbsim.ErrNotFound: "LIBUSB_ERROR_NOT_FOUND",
	} {
		assert.Contains(t, err.Error(), name)
	}
	assert.Equal(t, usbsim.Error(-9), usbsim.ErrStall)
}
