package dfu_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
)

// script is a Controller whose every reply is decided by a function: the garbage devices.
type script func(call int, rt, req uint8, val uint16, data []byte) (int, error)

type scripted struct {
	f     script
	calls int
}

func (s *scripted) Control(rt, req uint8, val, idx uint16, data []byte) (int, error) {
	s.calls++
	return s.f(s.calls, rt, req, val, data)
}

func noSleep(ctx context.Context, d time.Duration) error { return ctx.Err() }

// ops runs every client operation once against c and returns their errors.
func ops(ctx context.Context, c *dfu.Client, l *memlayout.Layout) []error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	add(c.Write(ctx, l, 0x30000, make([]byte, 5000), nil))
	_, err := c.Read(ctx, 0x30000, 5000)
	add(err)
	add(c.Erase(ctx, l, 0x30000, 4096, nil))
	add(c.Leave(ctx))
	add(c.EnterSafeMode(ctx))
	_, err = c.GetStatus(ctx)
	add(err)
	_, err = c.GetState(ctx)
	add(err)
	_, err = c.Commands(ctx)
	add(err)
	return errs
}

// withDeadline fails the test if f does not return in time: the client must never hang.
func withDeadline(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("client did not return within %v", d)
	}
}

func TestGarbageDeviceNeverHangsOrPanics(t *testing.T) {
	l, err := memlayout.Parse(gen3Layout)
	require.NoError(t, err)
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 7))
		dev := &scripted{f: func(call int, rt, req uint8, val uint16, data []byte) (int, error) {
			switch rng.IntN(10) {
			case 0:
				return 0, errors.New("libusb: pipe error [code -9]")
			case 1:
				return 0, errors.New("libusb: timeout [code -7]")
			case 2:
				return len(data) + 1 + rng.IntN(10), nil // more than asked for
			case 3:
				return -1 - rng.IntN(3), nil
			case 4:
				n := rng.IntN(len(data) + 1)
				for i := range n {
					data[i] = byte(rng.Uint32())
				}
				return n, nil // short reply
			default:
				for i := range data {
					data[i] = byte(rng.Uint32())
				}
				if req == dfu.ReqGetStatus && len(data) == 6 && rng.IntN(2) == 0 {
					data[4] = byte(rng.IntN(12)) // mostly valid states, some unknown
				}
				return len(data), nil
			}
		}}
		c := dfu.New(dev, dfu.Options{TransferSize: 4096, Sleep: noSleep, RetryDelay: time.Millisecond, BusyTimeout: time.Second})
		withDeadline(t, 10*time.Second, func() {
			for _, err := range ops(t.Context(), c, l) {
				_ = err // anything goes except a hang or a panic
			}
		})
	}
}

func TestShortGetStatusIsAProtocolError(t *testing.T) {
	dev := &scripted{f: func(call int, rt, req uint8, val uint16, data []byte) (int, error) {
		return min(3, len(data)), nil
	}}
	c := dfu.New(dev, dfu.Options{TransferSize: 4096, Sleep: noSleep})
	_, err := c.GetStatus(t.Context())
	require.ErrorIs(t, err, dfu.ErrProtocol)
	assert.Contains(t, err.Error(), "3 bytes")
}

func TestUnknownStateIsAProtocolError(t *testing.T) {
	dev := &scripted{f: func(call int, rt, req uint8, val uint16, data []byte) (int, error) {
		if req == dfu.ReqGetStatus {
			copy(data, []byte{0, 0, 0, 0, 42, 0})
			return 6, nil
		}
		return len(data), nil
	}}
	c := dfu.New(dev, dfu.Options{TransferSize: 4096, Sleep: noSleep})
	l, _ := memlayout.Parse(gen3Layout)
	err := c.Write(t.Context(), l, 0x30000, []byte{1}, nil)
	require.ErrorIs(t, err, dfu.ErrProtocol)
	assert.Contains(t, err.Error(), "state 42")
}

func busyDevice(poll uint32) *scripted {
	return &scripted{f: func(call int, rt, req uint8, val uint16, data []byte) (int, error) {
		if req != dfu.ReqGetStatus {
			return len(data), nil
		}
		state := dfu.StateDnbusy
		if call == 1 {
			state = dfu.StateIdle // the initial "to idle" check
		}
		var b [6]byte
		binary.LittleEndian.PutUint32(b[1:5], poll)
		b[4] = state
		return copy(data, b[:]), nil
	}}
}

func TestForeverBusyDeviceGivesUpWithRemedy(t *testing.T) {
	l, _ := memlayout.Parse(gen3Layout)
	c := dfu.New(busyDevice(0), dfu.Options{TransferSize: 4096, BusyTimeout: 100 * time.Millisecond})
	err := c.Erase(t.Context(), l, 0x30000, 1, nil)
	require.ErrorIs(t, err, dfu.ErrNotResponding)
	assert.Contains(t, err.Error(), "unplug and replug the device")
	assert.Contains(t, err.Error(), "hold MODE, tap RESET")
	assert.Contains(t, err.Error(), "erase 0x00030000")

	// A device asking for a 4.6 hour wait is given up on at once, not slept for.
	var slept []time.Duration
	sleep := func(ctx context.Context, d time.Duration) error { slept = append(slept, d); return ctx.Err() }
	c = dfu.New(busyDevice(0xFFFFFF), dfu.Options{TransferSize: 4096, BusyTimeout: time.Second, Sleep: sleep})
	require.ErrorIs(t, c.Erase(t.Context(), l, 0x30000, 1, nil), dfu.ErrNotResponding)
	for _, d := range slept {
		assert.LessOrEqual(t, d, time.Second, "never a wait longer than the busy timeout")
	}
}

func TestPollWaitsExactlyTheTimeout(t *testing.T) {
	var waits []time.Duration
	l, _ := memlayout.Parse(gen3Layout)
	dev := &scripted{f: func(call int, rt, req uint8, val uint16, data []byte) (int, error) {
		if req != dfu.ReqGetStatus {
			return len(data), nil
		}
		// idle, then DNBUSY 85 ms, DNBUSY 7 ms, DNLOAD_IDLE
		replies := map[int][]byte{1: {0, 0, 0, 0, 2, 0}, 3: {0, 85, 0, 0, 4, 0}, 4: {0, 7, 0, 0, 4, 0}, 5: {0, 0, 0, 0, 5, 0}}
		return copy(data, replies[call]), nil
	}}
	c := dfu.New(dev, dfu.Options{TransferSize: 4096, Sleep: func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		return nil
	}})
	require.NoError(t, c.Erase(t.Context(), l, 0x30000, 1, nil))
	assert.Equal(t, []time.Duration{85 * time.Millisecond, 7 * time.Millisecond}, waits)
}

func TestLeaveAcceptsVanishingDevice(t *testing.T) {
	for name, fail := range map[string]error{
		"no device": errors.New("libusb: no device [code -4]"),
		"pipe":      errors.New("libusb: pipe error [code -9]"),
		"sentinel":  dfu.ErrNoDevice,
	} {
		t.Run(name, func(t *testing.T) {
			dev := &scripted{f: func(call int, rt, req uint8, val uint16, data []byte) (int, error) {
				switch {
				case req == dfu.ReqGetStatus && call == 1:
					return copy(data, []byte{0, 0, 0, 0, dfu.StateIdle, 0}), nil
				case req == dfu.ReqDnload:
					return 0, nil
				}
				return 0, fail
			}}
			require.NoError(t, dfu.New(dev, dfu.Options{}).Leave(t.Context()))
		})
	}
	// The leave request itself hitting a gone device also counts.
	dev := &scripted{f: func(call int, rt, req uint8, val uint16, data []byte) (int, error) {
		if call == 1 {
			return copy(data, []byte{0, 0, 0, 0, dfu.StateIdle, 0}), nil
		}
		return 0, errors.New("libusb: no device [code -4]")
	}}
	require.NoError(t, dfu.New(dev, dfu.Options{}).Leave(t.Context()))

	// But a timeout is not success.
	dev = &scripted{f: func(call int, rt, req uint8, val uint16, data []byte) (int, error) {
		if call == 1 {
			return copy(data, []byte{0, 0, 0, 0, dfu.StateIdle, 0}), nil
		}
		return 0, errors.New("libusb: timeout [code -7]")
	}}
	require.Error(t, dfu.New(dev, dfu.Options{}).Leave(t.Context()))
}

func TestTransferErrorClassifiesLibusbErrors(t *testing.T) {
	dev := &scripted{f: func(int, uint8, uint8, uint16, []byte) (int, error) {
		return 0, errors.New("libusb: pipe error [code -9]")
	}}
	_, err := dfu.New(dev, dfu.Options{}).GetStatus(t.Context())
	require.ErrorIs(t, err, dfu.ErrStall)
	assert.NotErrorIs(t, err, dfu.ErrNoDevice)
	var te *dfu.TransferError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "GETSTATUS", te.Request)
}

func TestParseFunctionalDescriptor(t *testing.T) {
	fd := []byte{9, 0x21, 0x0B, 0xFF, 0x00, 0x00, 0x10, 0x1A, 0x01}
	f, err := dfu.ParseFunctionalDescriptor(fd)
	require.NoError(t, err)
	assert.Equal(t, dfu.FunctionalDescriptor{Attributes: 0x0B, DetachTimeout: 255, TransferSize: 4096, DFUVersion: 0x011A}, f)
	assert.True(t, f.IsDfuSe())

	// Inside a configuration descriptor: config, three interface descriptors, functional.
	blob := []byte{9, 2, 45, 0, 1, 1, 4, 0xC0, 0x32}
	for alt := range byte(3) {
		blob = append(blob, 9, 4, 0, alt, 0, 0xFE, 1, 2, 6+alt)
	}
	blob = append(blob, fd...)
	f2, err := dfu.ParseFunctionalDescriptor(blob)
	require.NoError(t, err)
	assert.Equal(t, f, f2)

	// DFU 1.0: 7 bytes, no bcdDFUVersion.
	f3, err := dfu.ParseFunctionalDescriptor([]byte{7, 0x21, 0x03, 0x10, 0x00, 0x00, 0x04})
	require.NoError(t, err)
	assert.Equal(t, uint16(1024), f3.TransferSize)
	assert.Equal(t, uint16(0x0100), f3.DFUVersion)

	for _, bad := range [][]byte{nil, {0}, {0, 0x21}, {9, 4, 0, 0, 0, 0xFE, 1, 2, 0}, {5, 0x21, 1, 2, 3}, {9, 0x21, 0x0B}} {
		_, err := dfu.ParseFunctionalDescriptor(bad)
		assert.ErrorIs(t, err, dfu.ErrProtocol, "% x", bad)
	}
}

func FuzzParseFunctionalDescriptor(f *testing.F) {
	f.Add([]byte{9, 0x21, 0x0B, 0xFF, 0x00, 0x00, 0x10, 0x1A, 0x01})
	f.Add([]byte{9, 4, 0, 0, 0, 0xFE, 1, 2, 6, 7, 0x21, 1, 1, 1, 1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = dfu.ParseFunctionalDescriptor(b)
	})
}

// FuzzClient drives the client with a device whose replies come from the fuzzer's bytes.
func FuzzClient(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 2, 0, 1, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 5, 0})
	f.Add([]byte{3, 3, 3, 3, 3, 3, 3, 3})
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	l, _ := memlayout.Parse(gen3Layout)
	f.Fuzz(func(t *testing.T, script []byte) {
		pos := 0
		next := func() byte {
			if len(script) == 0 {
				return 0
			}
			b := script[pos%len(script)]
			pos++
			return b
		}
		dev := &scripted{f: func(call int, rt, req uint8, val uint16, data []byte) (int, error) {
			if call > 2000 {
				return 0, dfu.ErrNoDevice
			}
			switch k := next(); {
			case k < 16:
				return 0, dfu.ErrStall
			case k < 24:
				return 0, errors.New("libusb: no device [code -4]")
			case k < 40:
				return int(next()) % (len(data) + 1), nil
			}
			for i := range data {
				data[i] = next()
			}
			return len(data), nil
		}}
		c := dfu.New(dev, dfu.Options{TransferSize: 4096, Sleep: noSleep, RetryDelay: time.Microsecond, BusyTimeout: 50 * time.Millisecond})
		for _, err := range ops(t.Context(), c, l) {
			_ = err
		}
	})
}
