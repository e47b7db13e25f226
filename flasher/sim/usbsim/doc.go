// Package usbsim lets real, unmodified libusb programs talk to simulated USB
// devices.
//
// # Pieces
//
// The C file shim/libusb_shim.c is a fake libusb-1.0. Built as
// libusb-1.0.so.0 (BuildShim, or `make shim`) and put first on
// LD_LIBRARY_PATH, it is loaded by the Debian dfu-util binary and by Go
// programs that use github.com/google/gousb in place of the real library. It
// exports every symbol of libusb 1.0.26; enumeration, descriptors, open/close,
// claim/release, alt settings, configuration, reset and control transfers are
// forwarded over a unix socket, the rest answers LIBUSB_ERROR_NOT_SUPPORTED.
// Bulk, interrupt and isochronous transfers are not simulated. The wire
// protocol's operations, frame limit and socket I/O are in wire/usbsim_wire.h,
// shared by the shim and the umockdev bridge (umockdev/usbsim_umockdev.c).
//
// The Go side is a Server that listens on that socket and routes requests to
// Device values added to it. A Device sees every control transfer, standard
// requests included, exactly as firmware would; Descriptors builds
// descriptors from a readable spec and answers the standard requests so a
// device model only has to handle its class and vendor requests. A device
// that also implements Resetter sees libusb_reset_device.
//
// # Running a libusb program against the simulation
//
//	so, err := usbsim.BuildShim(dir)   // once per test binary; "" means ShimDir()
//	srv, err := usbsim.NewServer("")   // short socket path under os.TempDir()
//	key := srv.Add(myDevice)           // srv.Remove, srv.Replug to unplug and re-enumerate
//	cmd := exec.Command("dfu-util", "-l")
//	cmd.Env = append(os.Environ(), srv.Env()...)
//
// The dynamic loader reads LD_LIBRARY_PATH only when a process starts, so a
// Go test that wants gousb to load the shim must do the gousb work in a new
// process. Server.TestCommand re-executes the test binary for one test with
// Env() and a marker variable set; in the child InChild(t.Name()) is true:
//
//	func TestX(t *testing.T) {
//		if usbsim.InChild(t.Name()) {
//			ctx := gousb.NewContext() // loads the shim
//			...
//			return
//		}
//		srv := ... // set up devices
//		out, err := srv.TestCommand(t.Name(), "-test.v").CombinedOutput()
//		require.NoError(t, err, "%s", out)
//	}
//
// This package's own gousb tests keep one such child running (TestGousbProbeChild) and
// talk to it over stdin and stdout, so that a device can be unplugged while gousb holds
// it open.
//
// # Wire protocol
//
// The shim reads the socket path from PFLASH_USBSIM_SOCKET (EnvSocket). If the
// variable is unset or nobody listens, libusb_init still succeeds and the
// device list is empty. Each libusb context opens one SOCK_STREAM connection
// and sends one request at a time (a mutex in the shim serialises the
// threads). All integers are little-endian.
//
//	request:  u32 length | u8 op | payload          (length counts op + payload)
//	response: u32 length | u8 op | i32 status | data (op echoed; status < 0 is a libusb error code)
//
// Operations (payloads):
//
//	LIST       (1)  -                      → status 0, u32 count, count × device record
//	OPEN       (2)  u32 key                → status (Device.Open's error, e.g. -3 ACCESS, -4 NO_DEVICE)
//	CLOSE      (3)  u32 key                → status
//	CLAIM      (4)  u32 key, u8 iface, u8 0 → status (-5 NOT_FOUND, -6 BUSY)
//	RELEASE    (5)  u32 key, u8 iface, u8 0 → status
//	SET_ALT    (6)  u32 key, u8 iface, u8 alt → status (sent to the device as SET_INTERFACE)
//	SET_CONFIG (7)  u32 key, i32 config    → status (sent to the device as SET_CONFIGURATION)
//	GET_CONFIG (8)  u32 key                → status = active configuration value (1 after enumeration)
//	RESET      (9)  u32 key                → status (-5 NOT_FOUND if the device re-enumerated)
//	CONTROL    (10) u32 key, u8 bmRequestType, u8 bRequest, u16 wValue, u16 wIndex,
//	                u16 wLength, u32 timeout_ms, wLength OUT bytes (host-to-device only)
//	                                        → status = bytes transferred or error
//	                                          (-9 PIPE for a STALL, -4 NO_DEVICE, -7 TIMEOUT, -1 IO),
//	                                          then the IN bytes
//
// A device record is: u32 key, u8 bus, u8 address, u8 speed (libusb_speed),
// u8 nports, nports port numbers, the 18-byte device descriptor, u32 n, and n
// bytes of configuration descriptors (each complete, wTotalLength bytes, back
// to back). The key names one enumeration instance: a device that is removed
// and added again, or replugged, gets a new key and a new address, and requests
// with an old key fail with NO_DEVICE. The shim parses the configuration
// blob into libusb_config_descriptor structures itself, keeping the bytes
// between standard descriptors as "extra" (where dfu-util finds the DFU
// functional descriptor).
package usbsim
