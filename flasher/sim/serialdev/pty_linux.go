//go:build linux

package serialdev

import (
	"os"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

var standardSpeeds = map[uint32]uint32{
	unix.B50: 50, unix.B75: 75, unix.B110: 110, unix.B134: 134, unix.B150: 150, unix.B200: 200,
	unix.B300: 300, unix.B600: 600, unix.B1200: 1200, unix.B1800: 1800, unix.B2400: 2400,
	unix.B4800: 4800, unix.B9600: 9600, unix.B19200: 19200, unix.B38400: 38400,
	unix.B57600: 57600, unix.B115200: 115200, unix.B230400: 230400, unix.B460800: 460800,
	unix.B500000: 500000, unix.B576000: 576000, unix.B921600: 921600, unix.B1000000: 1000000,
	unix.B1152000: 1152000, unix.B1500000: 1500000, unix.B2000000: 2000000,
	unix.B2500000: 2500000, unix.B3000000: 3000000, unix.B3500000: 3500000, unix.B4000000: 4000000,
}

// lineSpeed reads the tty's output speed. Speeds outside the Bxxx table (14400, 28800)
// are set with CBAUD = BOTHER and the rate in c_ospeed, which only TCGETS2 returns; plain
// TCGETS would show BOTHER and nothing else. Standard speeds are read from CBAUD.
func lineSpeed(fd int) (int, error) {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS2)
	if err != nil {
		return 0, err
	}
	cbaud := t.Cflag & unix.CBAUD
	if cbaud == unix.BOTHER {
		return int(t.Ospeed), nil
	}
	if s, ok := standardSpeeds[cbaud]; ok {
		return int(s), nil
	}
	return int(t.Ospeed), nil
}

func setLineSpeed(fd int, speed int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS2)
	if err != nil {
		return err
	}
	t.Cflag &^= unix.CBAUD | (unix.CBAUD << unix.IBSHIFT)
	t.Cflag |= unix.BOTHER
	t.Ispeed = uint32(speed)
	t.Ospeed = uint32(speed)
	for b, s := range standardSpeeds {
		if int(s) == speed {
			t.Cflag &^= unix.BOTHER
			t.Cflag |= b
		}
	}
	return unix.IoctlSetTermios(fd, unix.TCSETS2, t)
}

// makeRaw is cfmakeraw plus a speed: without it the fresh pty echoes and translates
// line endings until the host opens it, and the device would read its own output.
func makeRaw(fd int, speed int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS2)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS2, t); err != nil {
		return err
	}
	return setLineSpeed(fd, speed)
}

// openPTY is pty.Open with a master the runtime poller can interrupt: creack/pty's ioctls
// call File.Fd(), which leaves the master in blocking mode, and a blocking read ignores
// deadlines and Close. A non-blocking duplicate gets deadlines back.
func openPTY() (master, slave *os.File, err error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, nil, err
	}
	defer m.Close()
	fd, err := unix.Dup(int(m.Fd()))
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		s.Close()
		return nil, nil, err
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), s, nil
}
