package serialdev

import (
	"errors"
	"fmt"
	"sync"
)

// MemModel is a minimal in-memory Model: enough device for tests of the serial door and
// for demos that need no flash model. Set the exported fields before Open; read results
// with the accessor methods, which are safe while the port runs.
type MemModel struct {
	ID         string
	Version    string
	MACAddress string
	ModuleJSON string
	Extra      []KV
	// NoYModem makes `f` refuse as Device OS ≥ 6.0 does.
	NoYModem bool
	// NoListenBaud disables the 28800-baud trigger (Device OS ≥ 6.0).
	NoListenBaud bool
	// MaxImage makes BeginUpdate refuse larger images (0: no limit).
	MaxImage int
	// FailChunkAt makes SaveChunk fail for the block at this offset (0: never; use a
	// block-aligned offset ≥ 1).
	FailChunkAt int
	// ValidationCode is what FinishUpdate returns (0 accepts the image).
	ValidationCode int
	// StartListening starts the model in listening mode.
	StartListening bool

	mu        sync.Mutex
	init      bool
	listening bool
	size      int
	image     []byte
	finished  []byte
	events    []string
}

func (m *MemModel) lock() {
	m.mu.Lock()
	if !m.init {
		m.init = true
		m.listening = m.StartListening
	}
}

// DeviceID returns ID.
func (m *MemModel) DeviceID() string { return m.ID }

// SystemVersion returns Version.
func (m *MemModel) SystemVersion() string { return m.Version }

// MAC returns MACAddress.
func (m *MemModel) MAC() string { return m.MACAddress }

// ModuleInfoJSON returns ModuleJSON (cut it short to simulate a truncated reply).
func (m *MemModel) ModuleInfoJSON() string { return m.ModuleJSON }

// IdentifyExtra returns Extra.
func (m *MemModel) IdentifyExtra() []KV { return m.Extra }

// YModemSupported is false when NoYModem is set.
func (m *MemModel) YModemSupported() bool { return !m.NoYModem }

// ListenBaudTrigger is false when NoListenBaud is set.
func (m *MemModel) ListenBaudTrigger() bool { return !m.NoListenBaud }

// BeginUpdate starts a new image of size bytes.
func (m *MemModel) BeginUpdate(size int) error {
	m.lock()
	defer m.mu.Unlock()
	m.events = append(m.events, fmt.Sprintf("begin:%d", size))
	if m.MaxImage > 0 && size > m.MaxImage {
		return fmt.Errorf("image of %d bytes exceeds %d", size, m.MaxImage)
	}
	m.size = size
	m.image = make([]byte, 0, size)
	return nil
}

// SaveChunk appends a block, keeping only the declared size.
func (m *MemModel) SaveChunk(offset int, p []byte) error {
	m.lock()
	defer m.mu.Unlock()
	if m.FailChunkAt > 0 && offset == m.FailChunkAt {
		return errors.New("flash write failed")
	}
	if offset != len(m.image) && offset < m.size {
		return fmt.Errorf("chunk at %d, expected %d", offset, len(m.image))
	}
	if room := m.size - len(m.image); room < len(p) {
		if room < 0 {
			room = 0
		}
		p = p[:room]
	}
	m.image = append(m.image, p...)
	return nil
}

// FinishUpdate records the image and returns ValidationCode.
func (m *MemModel) FinishUpdate() int {
	m.lock()
	defer m.mu.Unlock()
	m.events = append(m.events, fmt.Sprintf("finish:%d", len(m.image)))
	if m.ValidationCode == 0 {
		m.finished = append([]byte(nil), m.image...)
	}
	return m.ValidationCode
}

func (m *MemModel) event(e string) {
	m.lock()
	m.events = append(m.events, e)
	m.mu.Unlock()
}

// Reset records "reset:<reason>" and leaves listening mode.
func (m *MemModel) Reset(reason string) {
	m.lock()
	m.events = append(m.events, "reset:"+reason)
	m.listening = false
	m.mu.Unlock()
}

// EnterDFU records "dfu" and leaves listening mode.
func (m *MemModel) EnterDFU() {
	m.lock()
	m.events = append(m.events, "dfu")
	m.listening = false
	m.mu.Unlock()
}

// EnterListening records "listen" and starts the console.
func (m *MemModel) EnterListening() {
	m.lock()
	m.events = append(m.events, "listen")
	m.listening = true
	m.mu.Unlock()
}

// ExitListening records "exit" and stops the console.
func (m *MemModel) ExitListening() {
	m.lock()
	m.events = append(m.events, "exit")
	m.listening = false
	m.mu.Unlock()
}

// SafeListen records "safe-listen".
func (m *MemModel) SafeListen() { m.event("safe-listen") }

// Listening reports the console state.
func (m *MemModel) Listening() bool {
	m.lock()
	defer m.mu.Unlock()
	return m.listening
}

// SetListening switches the console on or off without recording an event.
func (m *MemModel) SetListening(on bool) {
	m.lock()
	m.listening = on
	m.mu.Unlock()
}

// Image returns the last image that FinishUpdate accepted.
func (m *MemModel) Image() []byte {
	m.lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.finished...)
}

// Events lists what happened to the model, oldest first.
func (m *MemModel) Events() []string {
	m.lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.events...)
}

// HasEvent reports whether e happened.
func (m *MemModel) HasEvent(e string) bool {
	for _, x := range m.Events() {
		if x == e {
			return true
		}
	}
	return false
}
