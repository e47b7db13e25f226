// Package serialdev is the virtual device's USB CDC serial door. It holds the master side
// of a pseudo-terminal and lets the flasher open the slave side (/dev/pts/N) with
// go.bug.st/serial exactly as it opens /dev/ttyACM0, so the product's real serial code is
// what the tests exercise.
//
// Behind the tty it behaves like Device OS's USB serial: it honours the magic line codings
// (14400 baud → DFU, 28800 → listening mode on ≤ 5.x), answers the listening-mode console
// (system/src/system_setup.cpp) byte for byte, and receives YMODEM uploads exactly as
// system/src/system_ymodem.cpp@v5.9.0 does, quirks included (it checks only seq/~seq, never
// the CRC; it asks for headers only on timeouts; it ACKs the end-of-batch block only after
// validating the image). Faults (garbage, dropped bytes) can be injected to prove the host
// side copes with a flaky cable.
package serialdev

// KV is one key/value pair the HAL reports for the `i` command (cellular and Gen3 devices).
type KV struct {
	Key, Value string
}

// Model is the virtual device behind the console. The sim calls it from more than one
// goroutine (line-coding changes arrive on their own, as USB control transfers do on a real
// device), so implementations must be safe for concurrent use.
type Model interface {
	// DeviceID is the 24-hex-digit device ID printed by `i`.
	DeviceID() string
	// SystemVersion is the Device OS semver printed by `v` ("1.5.2").
	SystemVersion() string
	// MAC is printed by `m` as given ("aa:bb:cc:dd:ee:ff").
	MAC() string
	// ModuleInfoJSON is the complete `s` reply without the trailing "\r\n".
	ModuleInfoJSON() string
	// IdentifyExtra lists HAL key/values for `i`. Non-empty selects the "Device ID: <id>"
	// form; raw HAL keys (imei, iccid, sn, ms, cellfw) are renamed as Device OS does.
	IdentifyExtra() []KV
	// YModemSupported is false for Device OS ≥ 6.0, which refuses `f` with 4×CAN.
	YModemSupported() bool
	// ListenBaudTrigger is true where opening at 28800 baud enters listening mode (≤ 5.x).
	ListenBaudTrigger() bool

	// BeginUpdate prepares for an image of size bytes (Spark_Prepare_For_Firmware_Update);
	// an error makes the device cancel the transfer ("The file size is higher than the
	// allowed space memory!").
	BeginUpdate(size int) error
	// SaveChunk stores one received YMODEM block at offset from the image start
	// (Spark_Save_Firmware_Chunk). Device OS passes whole 128/1024-byte blocks, so the last
	// one runs past size with the sender's padding: keep only the first size bytes.
	SaveChunk(offset int, p []byte) error
	// FinishUpdate validates the image (Spark_Finish_Firmware_Update): 0 = accepted, any
	// other value is printed as "Validation failed: <code>".
	FinishUpdate() (code int)
	// Reset restarts the device; reason is "update" after a successful upload.
	Reset(reason string)

	// EnterDFU is called when the host sets 14400 baud.
	EnterDFU()
	// EnterListening is called when the host sets 28800 baud, ListenBaudTrigger is true
	// and the device is not listening yet.
	EnterListening()
	// ExitListening is the `x` command.
	ExitListening()
	// SafeListen is the `L` command: safe mode, then listening mode after the reset.
	SafeListen()
	// Listening reports whether the console is active; outside listening mode the sim
	// leaves the host's bytes unread, as a user application that ignores Serial would.
	Listening() bool
}

// Claimer is an optional Model extension for the `c` command; without it the device
// reports "Device claimed: no".
type Claimer interface {
	Claimed() bool
}

// Diagnoser is an optional Model extension for the `d` command; without it `d` prints an
// empty JSON object.
type Diagnoser interface {
	DiagnosticsJSON() string
}
