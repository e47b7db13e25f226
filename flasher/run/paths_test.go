package run_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/demo"
	"github.com/particle-flasher/particle-flasher/flasher/device"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/plan"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/state"
)

// noSoftwareDFU are doors on which software cannot switch the device to DFU mode: no
// serial port, and Device OS refuses the DFU control request (as a Gen2 device below
// 2.0.0 may).
type noSoftwareDFU struct {
	*demo.Bus
	dev *sim.Device
}

func (n *noSoftwareDFU) Find(ctx context.Context, id string) (device.Link, error) {
	l, err := n.Bus.Find(ctx, id)
	if err != nil {
		return nil, err
	}
	return &noDFULink{Link: l, dev: n.dev}, nil
}

type noDFULink struct {
	device.Link
	dev *sim.Device
}

func (l *noDFULink) TriggerDFU(context.Context) error { return device.ErrNoSerial }

func (l *noDFULink) Ctrl() *ctrl.Client {
	return ctrl.New(refuseDFU{l.dev}, ctrl.Options{RequestTimeout: 5 * time.Second, Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }})
}

// refuseDFU STALLs the INIT of a DFU-mode request.
type refuseDFU struct{ d *sim.Device }

func (r refuseDFU) Control(rType, request uint8, val, idx uint16, data []byte) (int, error) {
	if request == ctrl.ServiceInit && idx == uint16(ctrl.ReqDFUMode) {
		return 0, sim.ErrStall
	}
	return r.d.Control(rType, request, val, idx, data)
}

// TestButtonsWhenSoftwareCannot: when neither the control request nor the serial port
// can switch the device, the runner says which buttons to press and what the LED does,
// waits, and carries on once a person has done it.
func TestButtonsWhenSoftwareCannot(t *testing.T) {
	d := newSim(t, "photon/1.5.2", sim.Options{NoSerial: true})
	rec := &recorder{}
	pressed := false
	rec.log = func(e run.Event) {
		if e.Event == run.EvWaiting && e.Buttons && !pressed {
			pressed = true
			require.NotNil(t, e.LED)
			assert.Equal(t, "blinking yellow", e.LED.Expect)
			assert.Contains(t, e.Message, "SETUP", "the Photon's MODE button is called SETUP")
			go func() { _ = d.ButtonReset(3500 * time.Millisecond) }()
		}
	}
	r := newRunner(t, &noSoftwareDFU{Bus: demo.New(true, d), dev: d}, rec, run.Options{})
	tgt := releases["photon/2.3.1"].target(t)
	_, err := r.Flash(testCtx(t, 30*time.Second), d.ID(), tgt)
	require.NoError(t, err)
	assert.True(t, pressed)
	requireAt(t, d, tgt)

	// Unattended (NoButtons), the same situation fails with the recipe as the remedy.
	d2 := newSim(t, "photon/1.5.2", sim.Options{NoSerial: true})
	r2 := newRunner(t, &noSoftwareDFU{Bus: demo.New(true, d2), dev: d2}, &recorder{}, run.Options{NoButtons: true})
	_, err = r2.Flash(testCtx(t, 30*time.Second), d2.ID(), tgt)
	require.Error(t, err)
	assert.Contains(t, fmt.Sprint(err), "could not be switched")
}

// TestReadbackVerification: with VerifyReadback the runner also reads every written
// range back over DFU (the bootloader staged in the OTA region at its own slot, where
// Device OS copied it) and the device ends in normal mode again.
func TestReadbackVerification(t *testing.T) {
	d := newSim(t, "photon/1.5.2", sim.Options{})
	tgt := releases["photon/2.3.1"].target(t)
	tgt.Options.Verify = plan.VerifyReadback
	rec := &recorder{}
	r := newRunner(t, demo.New(true, d), rec, run.Options{})
	_, err := r.Flash(testCtx(t, 30*time.Second), d.ID(), tgt)
	require.NoError(t, err)
	reads := 0
	for _, e := range rec.all() {
		if e.Event == run.EvProgress && e.Phase == "read" {
			reads++
		}
	}
	assert.Positive(t, reads, "ranges were read back")
	requireAt(t, d, tgt)
}

// TestYModemStep: a module Device OS takes over listening-mode YMODEM (the way for Device
// OS without control requests) goes through the device's serial port.
func TestYModemStep(t *testing.T) {
	d := newSim(t, "argon/2.3.0", sim.Options{})
	m, err := module.Parse(readShared(t, "releases", "argon-bootloader@4.1.0.bin"))
	require.NoError(t, err)
	p := d.Platform()
	in := state.FromFile(nil, m)
	pl := &plan.Plan{Platform: p, From: "2.3.0", To: "bootloader 1200", Steps: []plan.Step{
		{ID: "write:bootloader@1200", Kind: plan.KindWrite, Module: m, Slot: "bootloader", Method: platform.MethodYModem, Data: m.Data, Mode: state.ModeListening, Expect: &in},
		{ID: "wait:bootloader@1200", Kind: plan.KindWaitFor, Module: m, Slot: "bootloader", Method: platform.MethodYModem, Mode: state.ModeNormal, Expect: &in},
	}}
	rec := &recorder{}
	r := newRunner(t, demo.New(true, d), rec, run.Options{})
	_, err = r.Run(testCtx(t, 60*time.Second), d.ID(), pl)
	require.NoError(t, err, rec.names())
	for _, mod := range d.Modules() {
		if mod.Name == "bootloader" {
			assert.Equal(t, uint16(1200), mod.Version)
		}
	}
	assert.Equal(t, sim.ModeNormal, d.Mode())
}
