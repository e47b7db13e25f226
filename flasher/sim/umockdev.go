package sim

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
)

// ServeTTY keeps the device's serial port in a umockdev testbed as /dev/ttyACM<n>, with the
// udev properties cdc_acm gives a Particle device's port, for as long as ctx lasts: there in
// the modes where Device OS runs, gone in DFU mode and while the device is off the bus,
// following the device's pty across resets as the kernel follows a re-enumeration.
// Unmodified programs started with the bridge's Env() find and open it like a real port.
func (d *Device) ServeTTY(ctx context.Context, b *usbsim.UmockdevBridge, n int) {
	name := fmt.Sprintf("ttyACM%d", n)
	set := func(st Status) {
		var err error
		if st.Serial == "" {
			err = b.RemoveTTY(name)
		} else {
			err = b.AddTTY(usbsim.TTY{Name: name, PTY: st.Serial, VID: d.p.VID, PID: d.p.PID, Serial: d.id, Minor: n})
		}
		if err != nil {
			slog.Debug("sim: umockdev tty", "device", d.id, "err", err)
		}
	}
	last := d.Status()
	set(last)
	go func() {
		for {
			st, err := d.WaitFor(ctx, func(st Status) bool { return st.Serial != last.Serial })
			if err != nil {
				return
			}
			last = st
			set(st)
		}
	}()
}
