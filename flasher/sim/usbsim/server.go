package usbsim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// EnvSocket is the environment variable that tells the shim where the
// Server listens.
const EnvSocket = "PFLASH_USBSIM_SOCKET"

// Wire protocol operations; the C clients take them from wire/usbsim_wire.h, which
// TestWireHeaderMatchesServer holds to these.
const (
	opList      = 1
	opOpen      = 2
	opClose     = 3
	opClaim     = 4
	opRelease   = 5
	opSetAlt    = 6
	opSetConfig = 7
	opGetConfig = 8
	opReset     = 9
	opControl   = 10

	maxFrame = 16 << 20
)

// maxSocketPath is the size of sockaddr_un.sun_path on Linux, including the
// terminating NUL.
const maxSocketPath = 108

// Server serves simulated devices to any number of libusb client processes
// (each libusb context is one connection). Its methods are safe for
// concurrent use, including from inside a Device's methods.
type Server struct {
	ln      net.Listener
	path    string
	tempDir string // removed on Close if NewServer created it

	done chan struct{} // closed by Close

	mu       sync.Mutex
	closed   bool
	nextKey  uint32
	byKey    map[uint32]*entry
	byDev    map[Device]*entry
	slots    map[Device]*slot // per device, kept across replugs
	nextPort uint8
	lastAddr map[uint8]uint8 // per bus
	conns    map[*conn]struct{}
	wg       sync.WaitGroup
}

// entry is one enumeration instance of a device.
type entry struct {
	key  uint32
	dev  Device
	info DeviceInfo
	gone chan struct{}   // closed when the device disappears
	down <-chan struct{} // the Server's done channel

	slot *slot

	// guarded by Server.mu
	config uint8
	claims map[uint8]*conn
}

// slot is what stays with a device across enumerations.
type slot struct {
	ports []uint8    // port path assigned by the Server
	io    sync.Mutex // serialises calls into the device
}

// conn is one client connection (one libusb context).
type conn struct {
	c     net.Conn
	opens map[uint32]int // key → open handle count; used only by the conn's goroutine
}

// NewServer listens on the unix socket socketPath. An empty socketPath
// creates a short one under os.TempDir() (unix socket paths must stay under
// 108 bytes), removed again by Close.
func NewServer(socketPath string) (*Server, error) {
	s := &Server{
		byKey:    map[uint32]*entry{},
		byDev:    map[Device]*entry{},
		slots:    map[Device]*slot{},
		lastAddr: map[uint8]uint8{},
		conns:    map[*conn]struct{}{},
		done:     make(chan struct{}),
	}
	if socketPath == "" {
		parent := ""
		if len(os.TempDir()) > maxSocketPath-20 {
			parent = "/tmp" // a long TMPDIR would not leave room for the socket name
		}
		dir, err := os.MkdirTemp(parent, "usbsim")
		if err != nil {
			return nil, fmt.Errorf("usbsim: %w", err)
		}
		s.tempDir = dir
		socketPath = filepath.Join(dir, "s")
	}
	if len(socketPath) >= maxSocketPath {
		s.removeTemp()
		return nil, fmt.Errorf("usbsim: socket path %q is %d bytes, must be under %d", socketPath, len(socketPath), maxSocketPath)
	}
	if fi, err := os.Lstat(socketPath); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(socketPath) // stale socket from an earlier run
	}
	ln, err := net.Listen("unix", socketPath)
	if err != nil {
		s.removeTemp()
		return nil, fmt.Errorf("usbsim: %w", err)
	}
	s.ln, s.path = ln, socketPath
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Path returns the socket path.
func (s *Server) Path() string { return s.path }

// Env returns the environment variables a libusb program needs to use this
// server: LD_LIBRARY_PATH with the shim's directory first (the directory of
// the last successful BuildShim in this process, else ShimDir()), and
// PFLASH_USBSIM_SOCKET. Append them to os.Environ() for exec.Cmd.Env.
func (s *Server) Env() []string {
	ld := builtShimDir()
	if old := os.Getenv("LD_LIBRARY_PATH"); old != "" {
		ld += ":" + old
	}
	return []string{"LD_LIBRARY_PATH=" + ld, EnvSocket + "=" + s.path}
}

// Add plugs d in: it is enumerated with a fresh key and bus address, its
// Info read now. It returns the key (the device's identity on the wire until
// it is removed). Adding a device that is already present returns its
// current key.
func (s *Server) Add(d Device) (key uint32) {
	info := d.Info() // outside the lock: the device may call back into s
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.byDev[d]; ok {
		return e.key
	}
	return s.addLocked(d, info)
}

func (s *Server) addLocked(d Device, info DeviceInfo) uint32 {
	if len(info.Descriptor) != 18 {
		panic(fmt.Sprintf("usbsim: device descriptor of %T is %d bytes, want 18", d, len(info.Descriptor)))
	}
	info.Ports = append([]uint8(nil), info.Ports...)
	info.Descriptor = append([]byte(nil), info.Descriptor...)
	info.Config = append([]byte(nil), info.Config...)
	if info.Bus == 0 {
		info.Bus = 1
	}
	if info.Speed == 0 {
		info.Speed = SpeedFull
	}
	sl, ok := s.slots[d]
	if !ok {
		sl = &slot{}
		s.slots[d] = sl
	}
	if len(info.Ports) == 0 {
		if sl.ports == nil {
			s.nextPort++
			sl.ports = []uint8{s.nextPort}
		}
		info.Ports = append([]uint8(nil), sl.ports...)
	}
	if len(info.Ports) > 7 {
		panic(fmt.Sprintf("usbsim: port path of %T is %d deep, at most 7", d, len(info.Ports)))
	}
	if info.Address == 0 {
		info.Address = s.freeAddress(info.Bus)
	}
	s.nextKey++
	e := &entry{key: s.nextKey, dev: d, info: info, gone: make(chan struct{}), down: s.done, slot: sl, claims: map[uint8]*conn{}}
	if len(info.Config) >= 6 {
		e.config = info.Config[5] // bConfigurationValue of the first configuration
	}
	s.byKey[e.key] = e
	s.byDev[d] = e
	return e.key
}

// freeAddress picks the next unused address on bus, like a host does.
func (s *Server) freeAddress(bus uint8) uint8 {
	used := map[uint8]bool{}
	for _, e := range s.byKey {
		if e.info.Bus == bus {
			used[e.info.Address] = true
		}
	}
	a := s.lastAddr[bus]
	for range 127 {
		a = a%127 + 1
		if a >= 2 && !used[a] { // address 1 is the root hub
			break
		}
	}
	s.lastAddr[bus] = a
	return a
}

// Remove unplugs d: it disappears from enumeration, and in-flight and later
// requests to it fail with LIBUSB_ERROR_NO_DEVICE. Removing an absent device
// does nothing.
func (s *Server) Remove(d Device) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(d)
}

func (s *Server) removeLocked(d Device) {
	e, ok := s.byDev[d]
	if !ok {
		return
	}
	delete(s.byDev, d)
	delete(s.byKey, e.key)
	close(e.gone)
}

// Replug makes d disappear and reappear (re-enumeration): a fresh key and
// address, and Info read again. A device that was not present is added. A
// device may replug itself from its own Control or Reset (e.g. a reset into
// DFU mode), as long as it does not hold a lock there that its Info needs.
func (s *Server) Replug(d Device) (key uint32) {
	s.Remove(d)
	info := d.Info()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.byDev[d]; ok { // added concurrently
		return e.key
	}
	return s.addLocked(d, info)
}

// Key returns the current key of d and whether d is present.
func (s *Server) Key(d Device) (uint32, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byDev[d]
	if !ok {
		return 0, false
	}
	return e.key, true
}

// Close stops listening, drops every client connection, fails requests
// waiting on devices, and removes the socket. Device methods still running
// are not waited for.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	for c := range s.conns {
		_ = c.c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	s.removeTemp()
	return err
}

func (s *Server) removeTemp() {
	if s.tempDir != "" {
		_ = os.RemoveAll(s.tempDir)
	}
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		c := &conn{c: nc, opens: map[uint32]int{}}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

func (s *Server) serve(c *conn) {
	defer s.wg.Done()
	defer func() {
		_ = c.c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		for _, e := range s.byKey { // a process that dies releases its interfaces
			for i, owner := range e.claims {
				if owner == c {
					delete(e.claims, i)
				}
			}
		}
		s.mu.Unlock()
	}()
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(c.c, hdr[:]); err != nil {
			return
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n < 1 || n > maxFrame {
			return
		}
		req := make([]byte, n)
		if _, err := io.ReadFull(c.c, req); err != nil {
			return
		}
		status, data := s.handle(c, req[0], req[1:])
		resp := make([]byte, 9, 9+len(data))
		binary.LittleEndian.PutUint32(resp, uint32(5+len(data)))
		resp[4] = req[0]
		binary.LittleEndian.PutUint32(resp[5:], uint32(status))
		resp = append(resp, data...)
		if _, err := c.c.Write(resp); err != nil {
			return
		}
	}
}

// lookup returns the present entry for key, or nil.
func (s *Server) lookup(key uint32) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byKey[key]
}

func (e *entry) isGone() bool {
	select {
	case <-e.gone:
		return true
	default:
		return false
	}
}

// invoke runs f (a call into the device) with the device's lock held and
// waits for it, for the device to disappear or the Server to close
// (ErrNoDevice), or for timeout (ErrTimeout; 0 means no limit). A call still
// running after a timeout or removal keeps the device locked until it
// returns.
func (e *entry) invoke(timeout time.Duration, f func() error) error {
	done := make(chan error, 1)
	go func() {
		e.slot.io.Lock()
		defer e.slot.io.Unlock()
		if e.isGone() {
			done <- ErrNoDevice
			return
		}
		done <- f()
	}()
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case err := <-done:
		if e.isGone() {
			return ErrNoDevice
		}
		return err
	case <-e.gone:
		return ErrNoDevice
	case <-e.down:
		return ErrNoDevice
	case <-expired:
		return ErrTimeout
	}
}

// control runs one control transfer on the device and returns the libusb
// status and the IN data.
func (e *entry) control(setup Setup, out []byte, timeout time.Duration) (int32, []byte) {
	buf := make([]byte, setup.Length)
	copy(buf, out)
	var n int
	err := e.invoke(timeout, func() (err error) {
		n, err = e.dev.Control(setup, buf)
		return err
	})
	if err != nil {
		return errCode(err), nil
	}
	if !setup.In() {
		return int32(setup.Length), nil
	}
	n = max(0, min(n, int(setup.Length)))
	return int32(n), buf[:n]
}

// hasInterface reports whether the configuration blob declares interface i.
func hasInterface(config []byte, i uint8) bool {
	for p := 0; p+2 < len(config) && config[p] >= 2; p += int(config[p]) {
		if config[p+1] == DescInterface && p+2 < len(config) && config[p+2] == i {
			return true
		}
	}
	return false
}

func (s *Server) handle(c *conn, op byte, p []byte) (status int32, data []byte) {
	const (
		errInvalid  = -2
		errNotFound = -5
		errBusy     = -6
		errNoDevice = -4
	)
	if op == opList {
		return 0, s.list()
	}
	if len(p) < 4 {
		return errInvalid, nil
	}
	key := binary.LittleEndian.Uint32(p)
	e := s.lookup(key)
	if e == nil {
		delete(c.opens, key) // closing a handle to an unplugged device
		return errNoDevice, nil
	}
	p = p[4:]
	switch op {
	case opOpen:
		if err := e.invoke(0, e.dev.Open); err != nil {
			return errCode(err), nil
		}
		c.opens[e.key]++
		return 0, nil
	case opClose:
		if c.opens[e.key]--; c.opens[e.key] <= 0 {
			delete(c.opens, e.key)
			s.mu.Lock()
			for i, owner := range e.claims {
				if owner == c {
					delete(e.claims, i)
				}
			}
			s.mu.Unlock()
		}
		return 0, nil
	case opClaim, opRelease, opSetAlt:
		if len(p) < 2 {
			return errInvalid, nil
		}
		iface, alt := p[0], p[1]
		s.mu.Lock()
		owner, claimed := e.claims[iface]
		switch {
		case !hasInterface(e.info.Config, iface):
			status = errNotFound
		case op == opClaim && claimed && owner != c:
			status = errBusy
		case op == opClaim:
			e.claims[iface] = c
		case !claimed || owner != c: // release or set alt without a claim
			status = errNotFound
		case op == opRelease:
			delete(e.claims, iface)
		}
		s.mu.Unlock()
		if status != 0 || op != opSetAlt {
			return status, nil
		}
		st, _ := e.control(Setup{RequestType: 0x01, Request: ReqSetInterface, Value: uint16(alt), Index: uint16(iface)}, nil, 5*time.Second)
		if st == errCode(ErrStall) {
			st = errNotFound
		}
		return min(st, 0), nil
	case opSetConfig:
		if len(p) < 4 {
			return errInvalid, nil
		}
		cfg := int32(binary.LittleEndian.Uint32(p))
		if cfg < 0 {
			cfg = 0 // -1 means unconfigured
		}
		s.mu.Lock()
		busy := len(e.claims) > 0
		s.mu.Unlock()
		if busy {
			return errBusy, nil
		}
		st, _ := e.control(Setup{RequestType: 0x00, Request: ReqSetConfiguration, Value: uint16(cfg)}, nil, 5*time.Second)
		if st == errCode(ErrStall) {
			return errNotFound, nil
		}
		if st < 0 {
			return st, nil
		}
		s.mu.Lock()
		e.config = uint8(cfg)
		s.mu.Unlock()
		return 0, nil
	case opGetConfig:
		s.mu.Lock()
		defer s.mu.Unlock()
		return int32(e.config), nil
	case opReset:
		r, ok := e.dev.(Resetter)
		if !ok {
			return 0, nil
		}
		err := e.invoke(0, r.Reset)
		if errors.Is(err, ErrNoDevice) {
			return errNotFound, nil // re-enumerated: the handle is stale
		}
		if err != nil {
			return errCode(err), nil
		}
		return 0, nil
	case opControl:
		if len(p) < 12 {
			return errInvalid, nil
		}
		setup := Setup{
			RequestType: p[0], Request: p[1],
			Value:  binary.LittleEndian.Uint16(p[2:]),
			Index:  binary.LittleEndian.Uint16(p[4:]),
			Length: binary.LittleEndian.Uint16(p[6:]),
		}
		timeout := time.Duration(binary.LittleEndian.Uint32(p[8:])) * time.Millisecond
		return e.control(setup, p[12:], timeout)
	}
	return errInvalid, nil
}

// list encodes the LIST reply (after the status): count and device records.
func (s *Server) list() []byte {
	s.mu.Lock()
	entries := make([]*entry, 0, len(s.byKey))
	for _, e := range s.byKey {
		entries = append(entries, e)
	}
	s.mu.Unlock()
	sort.Slice(entries, func(i, j int) bool { return entries[i].key < entries[j].key })
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(entries)))
	for _, e := range entries {
		in := &e.info
		b = binary.LittleEndian.AppendUint32(b, e.key)
		b = append(b, in.Bus, in.Address, uint8(in.Speed), uint8(len(in.Ports)))
		b = append(b, in.Ports...)
		b = append(b, in.Descriptor...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(in.Config)))
		b = append(b, in.Config...)
	}
	return b
}
