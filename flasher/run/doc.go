// Package run executes a plan.Plan on a device: it switches the device between Device OS
// and the DFU bootloader (control request, 14400-baud serial trigger, or a person with
// the buttons, told what the LED should do), writes over DFU, hands modules to Device OS
// by control request or YMODEM, waits for the same device ID to come back in the mode the
// plan expects, and verifies the result by re-reading the module table (and, with
// readback, every written range). Everything that happens is an Event, so the CLI, the
// desktop app and a factory log all see the same run.
//
// The runner exists because flashing is mostly waiting and recovering, and Particle's own
// tools get exactly that part wrong (shared/docs/prior-art.md §2): particle-cli hides
// errors behind a 4-minute retry loop and reopens blindly, Device Restore needs a browser
// re-authorisation after every reset, and none of them verifies what they wrote. Here
// every wait has a timeout and an LED expectation, a restart the runner did not cause is
// noticed (a device that keeps restarting during DFU work is explained as an external
// watchdog), a cancel is honoured only between steps so an erase is never left without
// its write, and a journal per device lets an interrupted run be finished by running the
// same target again: the device is read again (a half-written slot fails its CRC) and
// planned afresh, so the journal only has to say what was going on.
//
// The runner reaches devices through two small interfaces, device.Bus and device.Link:
// device.USB implements them over flasher/usb and flasher/serialport for real hardware
// (and for the simulator behind the libusb shim); flasher/demo implements them over
// flasher/sim devices in-process, for the app's demo and for fast tests.
package run
