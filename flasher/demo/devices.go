package demo

import (
	"fmt"
	"sync"

	cache "github.com/particle-flasher/particle-flasher/firmware-cache"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/sim/releases"
	"github.com/particle-flasher/particle-flasher/flasher/target"
)

// Source is the firmware virtual devices are flashed with: every release of the embedded
// catalog that Particle published module headers for, built from them, with no download.
func Source() target.Source { return source() }

var source = sync.OnceValue(func() target.Source {
	cat, err := cache.Embedded()
	if err != nil {
		// The embedded catalog is part of the binary; a test catches a broken one.
		panic(fmt.Sprintf("demo: embedded catalog: %v", err))
	}
	return releases.Source{Catalog: cat}
})

// release builds a release of the catalog for the demo's devices.
func release(plat, version string) (*releases.Set, error) {
	cat, err := cache.Embedded()
	if err != nil {
		return nil, err
	}
	r, err := cat.Release(version, plat)
	if err != nil {
		return nil, err
	}
	return releases.Build(r)
}

// AddDemo plugs in the three virtual devices the demo shows, one per story a person meets
// in the field: a Photon in safe mode because its application needs a newer Device OS
// (1.5.2 with 2.3.1's Tinker), a Boron running an old Device OS (1.5.2) that wants an
// upgrade, and an Argon fresh from the factory (a bootloader, nothing else), in DFU mode.
// scale is their time scale (sim.Options.Scale): 0 is instant, 1 a real device's pace.
func (d *Bus) AddDemo(scale float64) error {
	photon152, err := release("photon", "1.5.2")
	if err != nil {
		return err
	}
	photon231, err := release("photon", "2.3.1")
	if err != nil {
		return err
	}
	boron152, err := release("boron", "1.5.2")
	if err != nil {
		return err
	}
	pl := func(name string) *platform.Platform { p, _ := platform.ByName(name); return p }
	specs := []sim.Options{
		{Platform: pl("photon"), Modules: append(photon152.Bytes(false), photon231.App.Data)},
		{Platform: pl("boron"), Modules: boron152.Bytes(true)},
		{Platform: pl("argon"), Blank: true},
	}
	var made []*sim.Device
	for _, o := range specs {
		o.NoSerial, o.Scale = true, scale
		dev, err := sim.New(o)
		if err != nil {
			for _, m := range made {
				_ = m.Close()
			}
			return fmt.Errorf("demo: %s: %w", o.Platform.Name, err)
		}
		made = append(made, dev)
	}
	for _, dev := range made {
		d.Add(dev)
	}
	return nil
}
