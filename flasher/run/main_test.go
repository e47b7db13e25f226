package run_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/particle-flasher/particle-flasher/flasher/serialport"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
)

// portsFile publishes the virtual devices' serial ports (ptys, a new one every boot) in a
// file, for a child process whose serial door cannot find ptys the way it finds USB
// serial ports.
type portsFile struct {
	path string
	mu   sync.Mutex
	now  map[string]serialport.PortInfo
}

func newPortsFile(t testing.TB) *portsFile {
	pf := &portsFile{path: filepath.Join(t.TempDir(), "ports.json"), now: map[string]serialport.PortInfo{}}
	pf.write()
	return pf
}

func (pf *portsFile) write() {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	var list []serialport.PortInfo
	for _, p := range pf.now {
		if p.Path != "" {
			list = append(list, p)
		}
	}
	b, _ := json.Marshal(list)
	tmp := pf.path + ".tmp"
	if os.WriteFile(tmp, b, 0o644) == nil {
		_ = os.Rename(tmp, pf.path)
	}
}

// follow keeps the device's port in the file until ctx ends.
func (pf *portsFile) follow(ctx context.Context, d *sim.Device) {
	p := d.Platform()
	set := func(st sim.Status) {
		pf.mu.Lock()
		pf.now[d.ID()] = serialport.PortInfo{Path: st.Serial, VID: p.VID, PID: p.PID, Serial: d.ID()}
		pf.mu.Unlock()
		pf.write()
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

// readPorts is the child's ListPorts.
func readPorts(path string) func() ([]serialport.PortInfo, error) {
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
