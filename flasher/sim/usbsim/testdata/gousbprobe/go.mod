// A separate module so that the main module does not need gousb: the usbsim
// tests build this program and run it with the shim on LD_LIBRARY_PATH.
module github.com/particle-flasher/particle-flasher/flasher/sim/usbsim/testdata/gousbprobe

go 1.26.0

require github.com/google/gousb v1.1.3
