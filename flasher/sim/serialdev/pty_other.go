//go:build !linux

package serialdev

import (
	"errors"
	"os"
)

var errNoTermios2 = errors.New("serialdev: the virtual serial port needs Linux (ioctl TCGETS2 to see the host's baud rate)")

func lineSpeed(int) (int, error)  { return 0, errNoTermios2 }
func setLineSpeed(int, int) error { return errNoTermios2 }
func makeRaw(int, int) error      { return errNoTermios2 }

func openPTY() (*os.File, *os.File, error) { return nil, nil, errNoTermios2 }
