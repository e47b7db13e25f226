// Package stubdev is a device link for tests of the watcher and of `pflash list` and
// `inspect`: it answers control requests (device ID, mode, module table) from a canned
// module table, through the real control-request protocol (the virtual device's channel,
// flasher/sim/ctrldev), so that what the tests see has gone through the one reader
// (device.Read) exactly as a real device's reply does.
package stubdev

import (
	"context"
	"errors"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/listen"
	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim/ctrldev"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// ErrNoDFU is what the stub says when asked for DFU.
var ErrNoDFU = errors.New("stubdev: no DFU interface")

// Link is one stub device as a device.Link.
type Link struct {
	DeviceID string
	Plat     *platform.Platform
	M        state.Mode
	Key      string
	Modules  []state.Module
	ch       *ctrldev.Channel
}

// New makes a stub link that reports mods (Device OS's module table) in mode m.
func New(id string, p *platform.Platform, m state.Mode, key string, mods []state.Module) *Link {
	l := &Link{DeviceID: id, Plat: p, M: m, Key: key, Modules: mods}
	l.ch = ctrldev.New(ctrldev.Config{Handler: ctrldev.HandlerFunc(l.handle)})
	return l
}

func (l *Link) handle(reqType uint16, _ []byte) (int32, []byte) {
	switch reqType {
	case ctrl.ReqDeviceID:
		return ctrl.CodeOK, ctrl.EncodeDeviceIDReply(l.DeviceID)
	case ctrl.ReqGetDeviceMode:
		m := ctrl.ModeNormal
		if l.M == state.ModeListening {
			m = ctrl.ModeListening
		}
		return ctrl.CodeOK, ctrl.EncodeDeviceModeReply(m)
	case ctrl.ReqGetModuleInfo:
		return ctrl.CodeOK, ctrl.EncodeModuleInfoReply(infos(l.Modules), false)
	}
	return ctrl.CodeNotSupported, nil
}

// infos is the module table as Device OS sends it.
func infos(mods []state.Module) []ctrl.ModuleInfo {
	var out []ctrl.ModuleInfo
	for _, m := range mods {
		if !m.Present {
			continue
		}
		mi := ctrl.ModuleInfo{Function: uint8(m.Function), Index: m.Index, Version: uint32(m.Version), Store: ctrl.StoreMain,
			MaxSize: m.MaxSize, Size: m.Size}
		for _, c := range []struct {
			bit  uint32
			name string
			ok   bool
		}{{ctrl.ValidIntegrity, "integrity", m.Checks.Integrity}, {ctrl.ValidRange, "range", m.Checks.Range},
			{ctrl.ValidPlatform, "platform", m.Checks.Platform}, {ctrl.ValidDependencies, "dependencies", m.Checks.Dependencies}} {
			unchecked := false
			for _, u := range m.Unchecked {
				unchecked = unchecked || u == c.name
			}
			if !unchecked {
				mi.Checked |= c.bit
			}
			if c.ok {
				mi.Passed |= c.bit
			}
		}
		for _, d := range m.Deps {
			mi.Dependencies = append(mi.Dependencies, ctrl.Dependency{Function: uint8(d.Function), Index: d.Index, Version: uint32(d.Version)})
		}
		out = append(out, mi)
	}
	return out
}

func (l *Link) ID() string                   { return l.DeviceID }
func (l *Link) Platform() *platform.Platform { return l.Plat }
func (l *Link) Mode() state.Mode             { return l.M }
func (l *Link) Instance() string             { return l.Key }
func (l *Link) Close() error                 { return nil }
func (l *Link) TriggerDFU(context.Context) error {
	return ErrNoDFU
}
func (l *Link) DFU(context.Context, uint8) (*dfu.Client, *memlayout.Layout, error) {
	return nil, nil, ErrNoDFU
}
func (l *Link) Console(context.Context) (*listen.Console, func(), error) {
	return nil, nil, errors.New("stubdev: no serial port")
}

// Ctrl is a control client over the stub's channel, polling without real waits.
func (l *Link) Ctrl() *ctrl.Client {
	return ctrl.New(l.ch, ctrl.Options{RequestTimeout: 5 * time.Second,
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }})
}
