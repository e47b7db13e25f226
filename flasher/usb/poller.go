package usb

import (
	"context"
	"time"
)

// DefaultPollInterval is how often the bus is listed: fast enough that a device shows up
// or drops out within a quarter second, cheap because known devices are not reopened.
const DefaultPollInterval = 250 * time.Millisecond

// EventKind says what happened on the bus.
type EventKind int

// Event kinds.
const (
	Appeared    EventKind = iota // a device enumerated (or re-enumerated with a new address)
	Disappeared                  // a device left the bus (unplugged, reset, changed mode)
	ListFailed                   // listing the bus failed; Err says why
)

// String names the kind for logs ("appeared", "disappeared", "list-failed").
func (k EventKind) String() string {
	switch k {
	case Appeared:
		return "appeared"
	case Disappeared:
		return "disappeared"
	case ListFailed:
		return "list-failed"
	}
	return "unknown"
}

// Event is one change on the bus.
type Event struct {
	Kind EventKind
	Info Info  // the device (for Disappeared, as it was last seen)
	Err  error // ListFailed only
}

// Lister is what a Poller polls; *Host implements it, tests give a fake.
type Lister interface {
	List() ([]Info, error)
}

// Poller turns repeated listings into appear/disappear events, since gousb cannot report
// hotplug itself. A device is matched between listings by Info.Key, so a device that
// resets into DFU is reported as one Disappeared and one Appeared (with a new address and
// PID); the device watcher above joins them by device ID.
type Poller struct {
	L        Lister
	Interval time.Duration // default DefaultPollInterval
	// Buffer is the event channel's capacity (default 64).
	Buffer int
}

// Run polls until ctx is done and returns the event channel, which is closed when the
// polling goroutine has exited: cancelling ctx leaves nothing running. The first listing
// happens at once, reporting every attached device as Appeared. A failing listing is
// reported once per distinct error text, not every interval.
func (p *Poller) Run(ctx context.Context) <-chan Event {
	interval := p.Interval
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	buf := p.Buffer
	if buf <= 0 {
		buf = 64
	}
	ch := make(chan Event, buf)
	go func() {
		defer close(ch)
		known := map[string]Info{}
		lastErr := ""
		t := time.NewTicker(interval)
		defer t.Stop()
		send := func(e Event) bool {
			select {
			case ch <- e:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			infos, err := p.L.List()
			if err != nil {
				if err.Error() != lastErr {
					lastErr = err.Error()
					if !send(Event{Kind: ListFailed, Err: err}) {
						return
					}
				}
			} else {
				lastErr = ""
				now := map[string]Info{}
				for _, i := range infos {
					now[i.Key()] = i
				}
				for k, i := range known {
					if _, ok := now[k]; !ok {
						delete(known, k)
						if !send(Event{Kind: Disappeared, Info: i}) {
							return
						}
					}
				}
				for _, i := range infos {
					k := i.Key()
					old, ok := known[k]
					if ok && (old.Err == nil) == (i.Err == nil) {
						continue
					}
					if ok { // now readable (or no longer): report afresh
						if !send(Event{Kind: Disappeared, Info: old}) {
							return
						}
					}
					known[k] = i
					if !send(Event{Kind: Appeared, Info: i}) {
						return
					}
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return ch
}
