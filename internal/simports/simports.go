// Package simports stands in for the OS's serial port list in tests whose flasher runs in
// a child process (gousb through the libusb shim): the OS does not list the virtual
// devices' ptys as USB serial ports, so the parent publishes them, a new one every boot,
// in a file, and the child reads that file as its device.USB.ListPorts.
package simports

import (
	"context"
	"encoding/json"
	"os"
	"sync"

	"github.com/particle-flasher/particle-flasher/flasher/serialport"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
)

// File is the published port list.
type File struct {
	path string
	mu   sync.Mutex
	now  map[string]serialport.PortInfo
}

// New starts an empty list at path.
func New(path string) *File {
	f := &File{path: path, now: map[string]serialport.PortInfo{}}
	f.write()
	return f
}

// Path is where the list is, for the child's environment.
func (f *File) Path() string { return f.path }

// write replaces the file atomically: the child may read it at any moment.
func (f *File) write() {
	f.mu.Lock()
	defer f.mu.Unlock()
	list := []serialport.PortInfo{}
	for _, p := range f.now {
		if p.Path != "" {
			list = append(list, p)
		}
	}
	b, _ := json.Marshal(list)
	tmp := f.path + ".tmp"
	if os.WriteFile(tmp, b, 0o644) == nil {
		_ = os.Rename(tmp, f.path)
	}
}

// Follow keeps the device's current pty in the list until ctx ends.
func (f *File) Follow(ctx context.Context, d *sim.Device) {
	p := d.Platform()
	set := func(st sim.Status) {
		f.mu.Lock()
		f.now[d.ID()] = serialport.PortInfo{Path: st.Serial, VID: p.VID, PID: p.PID, Serial: d.ID()}
		f.mu.Unlock()
		f.write()
	}
	last := d.Status()
	set(last)
	go func() {
		for {
			st, err := d.WaitFor(ctx, func(st sim.Status) bool { return st.Serial != last.Serial })
			if err != nil {
				return
			}
			last = st
			set(st)
		}
	}()
}

// Reader is the child's ListPorts: the list as last published at path.
func Reader(path string) func() ([]serialport.PortInfo, error) {
	return func() ([]serialport.PortInfo, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		var list []serialport.PortInfo
		if err := json.Unmarshal(b, &list); err != nil {
			return nil, err
		}
		return list, nil
	}
}
