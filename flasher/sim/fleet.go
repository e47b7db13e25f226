package sim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
)

// FleetOptions configure a Fleet.
type FleetOptions struct {
	// SocketPath is the usbsim socket; empty makes a short one under the temp dir.
	SocketPath string
	// ShimDir is where the libusb shim is built (usbsim.BuildShim); empty uses
	// usbsim.ShimDir(). The build is skipped when it is already up to date.
	ShimDir string
	// NoShim skips building the shim, for in-process use or when the caller built it.
	NoShim bool
}

// Fleet runs any number of virtual devices behind one usbsim.Server, so that libusb
// programs (dfu-util, gousb code) started with Env() see them all, as a USB hub full of
// Particle devices. It is also what `pflash sim` runs.
type Fleet struct {
	srv *usbsim.Server

	mu   sync.Mutex
	devs []*Device
}

// NewFleet starts the server (and builds the shim unless told not to).
func NewFleet(o FleetOptions) (*Fleet, error) {
	if !o.NoShim {
		if _, err := usbsim.BuildShim(o.ShimDir); err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
	}
	srv, err := usbsim.NewServer(o.SocketPath)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	return &Fleet{srv: srv}, nil
}

// Add builds a device and plugs it into the fleet's server.
func (f *Fleet) Add(o Options) (*Device, error) {
	d, err := New(o)
	if err != nil {
		return nil, err
	}
	d.Attach(f.srv)
	f.mu.Lock()
	f.devs = append(f.devs, d)
	f.mu.Unlock()
	return d, nil
}

// Devices lists the fleet's devices in the order they were added.
func (f *Fleet) Devices() []*Device {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*Device(nil), f.devs...)
}

// Device finds a device by ID.
func (f *Fleet) Device(id string) (*Device, bool) {
	id = strings.ToLower(id)
	for _, d := range f.Devices() {
		if d.ID() == id {
			return d, true
		}
	}
	return nil, false
}

// Server is the usbsim server the devices are on.
func (f *Fleet) Server() *usbsim.Server { return f.srv }

// Env is what a libusb program needs in its environment (LD_LIBRARY_PATH with the shim
// first, PFLASH_USBSIM_SOCKET), as KEY=value strings to append to os.Environ().
func (f *Fleet) Env() []string { return f.srv.Env() }

// EnvMap is Env as a map, for printing.
func (f *Fleet) EnvMap() map[string]string {
	m := map[string]string{}
	for _, kv := range f.Env() {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// Dump writes each device's internal flash (from the alt-0 base address) to
// dir/<device_id>.bin.
func (f *Fleet) Dump(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("sim: dump: %w", err)
	}
	var errs []error
	for _, d := range f.Devices() {
		p := filepath.Join(dir, d.ID()+".bin")
		if err := os.WriteFile(p, d.InternalFlash(), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("sim: dump %s: %w", d.ID(), err))
		}
	}
	return errors.Join(errs...)
}

// Close powers every device off and stops the server.
func (f *Fleet) Close() error {
	var errs []error
	for _, d := range f.Devices() {
		errs = append(errs, d.Close())
	}
	errs = append(errs, f.srv.Close())
	return errors.Join(errs...)
}
