package ctrl

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeDev answers transfers with a function, standing in for broken or
// hostile firmware.
type fakeDev func(rType, request uint8, val, idx uint16, data []byte) (int, error)

func (f fakeDev) Control(rType, request uint8, val, idx uint16, data []byte) (int, error) {
	return f(rType, request, val, idx, data)
}

func quickSleep(ctx context.Context, d time.Duration) error {
	return sleepCtx(ctx, d/200+time.Microsecond)
}

func newFake(f fakeDev, timeout time.Duration) *Client {
	return New(f, Options{RequestTimeout: timeout, Sleep: quickSleep})
}

// reply writes a service reply into an IN buffer.
func reply(data []byte, r ServiceReply) (int, error) { return copy(data, r.Encode()), nil }

func TestGarbageServiceReplies(t *testing.T) {
	ok := ServiceReply{Status: StatusOK, ID: 7, HasID: true}
	cases := map[string]struct {
		dev  fakeDev
		want error
	}{
		"INIT too short": {func(_, _ uint8, _, _ uint16, d []byte) (int, error) { return copy(d, []byte{1, 0}), nil }, ErrProtocol},
		"INIT no status flag": {func(_, _ uint8, _, _ uint16, d []byte) (int, error) {
			return copy(d, []byte{0, 0, 0, 0, 0, 0}), nil
		}, ErrProtocol},
		"INIT OK without id": {func(_, _ uint8, _, _ uint16, d []byte) (int, error) {
			return reply(d, ServiceReply{Status: StatusOK})
		}, ErrProtocol},
		"INIT unknown status": {func(_, _ uint8, _, _ uint16, d []byte) (int, error) {
			return reply(d, ServiceReply{Status: 42, ID: 1, HasID: true})
		}, ErrProtocol},
		"INIT NO_MEMORY": {func(_, _ uint8, _, _ uint16, d []byte) (int, error) {
			return reply(d, ServiceReply{Status: StatusNoMemory})
		}, ErrNoMemory},
		"INIT ERROR": {func(_, _ uint8, _, _ uint16, d []byte) (int, error) {
			return reply(d, ServiceReply{Status: StatusError})
		}, ErrDevice},
		"INIT PENDING for empty payload": {func(_, r uint8, _, _ uint16, d []byte) (int, error) {
			return reply(d, ServiceReply{Status: StatusPending, ID: 1, HasID: true})
		}, ErrProtocol},
		"n larger than buffer": {func(_, _ uint8, _, _ uint16, d []byte) (int, error) { return len(d) + 10, nil }, ErrProtocol},
		"CHECK OK without result": {func(_, r uint8, _, _ uint16, d []byte) (int, error) {
			if r == ServiceInit {
				return reply(d, ok)
			}
			return reply(d, ServiceReply{Status: StatusOK})
		}, ErrProtocol},
		"CHECK absurd size": {func(_, r uint8, _, _ uint16, d []byte) (int, error) {
			if r == ServiceInit {
				return reply(d, ok)
			}
			return reply(d, ServiceReply{Status: StatusOK, HasResult: true, Size: 0xFFFFFFFF, HasSize: true})
		}, ErrProtocol},
		"CHECK NOT_FOUND": {func(_, r uint8, _, _ uint16, d []byte) (int, error) {
			if r == ServiceInit {
				return reply(d, ok)
			}
			return reply(d, ServiceReply{Status: StatusNotFound})
		}, ErrNotFound},
		"CHECK BUSY": {func(_, r uint8, _, _ uint16, d []byte) (int, error) {
			if r == ServiceInit {
				return reply(d, ok)
			}
			return reply(d, ServiceReply{Status: StatusBusy})
		}, ErrProtocol},
		"RECV short": {func(_, r uint8, _, _ uint16, d []byte) (int, error) {
			switch r {
			case ServiceInit:
				return reply(d, ok)
			case ServiceCheck:
				return reply(d, ServiceReply{Status: StatusOK, HasResult: true, Size: 100, HasSize: true})
			case ServiceRecv:
				return len(d) / 2, nil
			}
			return reply(d, ServiceReply{Status: StatusOK})
		}, ErrProtocol},
		"CHECK forever PENDING": {func(_, r uint8, _, _ uint16, d []byte) (int, error) {
			if r == ServiceInit {
				return reply(d, ok)
			}
			return reply(d, ServiceReply{Status: StatusPending})
		}, ErrTimeout},
		"INIT forever BUSY": {func(_, _ uint8, _, _ uint16, d []byte) (int, error) {
			return reply(d, ServiceReply{Status: StatusBusy})
		}, ErrBusy},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := newFake(tc.dev, 80*time.Millisecond)
			_, _, err := c.Request(t.Context(), ReqGetModuleInfo, nil)
			assert.ErrorIs(t, err, tc.want) // the request's own 80 ms bound ended it, not the test's
		})
	}
}

func TestBusyUntilDeadlineIsAlsoATimeout(t *testing.T) {
	c := newFake(func(_, _ uint8, _, _ uint16, d []byte) (int, error) {
		return reply(d, ServiceReply{Status: StatusBusy})
	}, 50*time.Millisecond)
	_, _, err := c.Request(t.Context(), ReqDeviceID, nil)
	assert.ErrorIs(t, err, ErrBusy)
	assert.ErrorIs(t, err, ErrTimeout)
}

func TestUSBErrorsAreWrapped(t *testing.T) {
	pipe := errors.New("libusb: pipe error [code -9]")
	c := newFake(func(_, _ uint8, _, _ uint16, _ []byte) (int, error) { return 0, pipe }, time.Second)
	_, _, err := c.Request(t.Context(), ReqDeviceID, nil)
	assert.ErrorIs(t, err, pipe)
	assert.Contains(t, err.Error(), "INIT")
	_, err = c.LegacySystemVersion(t.Context())
	assert.ErrorIs(t, err, pipe)
	assert.ErrorIs(t, c.ResetAll(t.Context()), pipe)
}

func TestFailedRequestIsReset(t *testing.T) {
	var resets []uint16
	c := newFake(func(_, r uint8, _, idx uint16, d []byte) (int, error) {
		switch r {
		case ServiceInit:
			return reply(d, ServiceReply{Status: StatusOK, ID: 9, HasID: true})
		case ServiceReset:
			resets = append(resets, idx)
			return reply(d, ServiceReply{Status: StatusOK})
		}
		return reply(d, ServiceReply{Status: StatusPending})
	}, 30*time.Millisecond)
	_, _, err := c.Request(t.Context(), ReqDeviceID, nil)
	require.ErrorIs(t, err, ErrTimeout)
	assert.Equal(t, []uint16{9}, resets)
}

func TestCallerCancellationIsNotATimeout(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	c := newFake(func(_, r uint8, _, _ uint16, d []byte) (int, error) {
		if r == ServiceInit {
			return reply(d, ServiceReply{Status: StatusOK, ID: 1, HasID: true})
		}
		cancel()
		return reply(d, ServiceReply{Status: StatusPending})
	}, time.Minute)
	_, _, err := c.Request(ctx, ReqDeviceID, nil)
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, ErrTimeout)
}

// A Sleep that ignores its context must not turn a timeout into a hang.
func TestSleepIgnoringContextStillTimesOut(t *testing.T) {
	c := New(fakeDev(func(_, r uint8, _, _ uint16, d []byte) (int, error) {
		if r == ServiceInit {
			return reply(d, ServiceReply{Status: StatusOK, ID: 1, HasID: true})
		}
		return reply(d, ServiceReply{Status: StatusPending})
	}), Options{RequestTimeout: 20 * time.Millisecond, Sleep: func(context.Context, time.Duration) error {
		time.Sleep(time.Millisecond)
		return nil
	}})
	_, _, err := c.Request(t.Context(), ReqDeviceID, nil)
	assert.ErrorIs(t, err, ErrTimeout)
}

// Random bytes for every IN transfer: every request must end (error or not)
// without panicking and within its timeout.
func TestRandomGarbageDevice(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dev := fakeDev(func(rType, _ uint8, _, _ uint16, d []byte) (int, error) {
		if rType&0x80 == 0 {
			return len(d), nil
		}
		n := rng.IntN(len(d) + 1)
		for i := range n {
			d[i] = byte(rng.Uint32())
		}
		// Bias towards plausible replies so deeper states are reached.
		if n >= 6 && rng.IntN(2) == 0 {
			d[0] |= 1
			d[4], d[5] = byte(rng.IntN(3)), 0
		}
		return n, nil
	})
	c := newFake(dev, 20*time.Millisecond)
	for range 300 {
		func() {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			_, _ = c.ModuleInfo(ctx)
			_, _ = c.DeviceID(ctx)
			_ = c.UpdateFirmware(ctx, []byte{1, 2, 3, 4, 5}, nil)
			_, _ = c.LegacyDeviceID(ctx)
		}()
	}
}

func TestGarbagePayloadThroughClient(t *testing.T) {
	payload := []byte{0x12, 0x40, 0x08} // module field claiming 64 bytes, holding 1
	c := newFake(func(_, r uint8, _, _ uint16, d []byte) (int, error) {
		switch r {
		case ServiceInit:
			return reply(d, ServiceReply{Status: StatusOK, ID: 1, HasID: true})
		case ServiceCheck:
			return reply(d, ServiceReply{Status: StatusOK, Result: 0, HasResult: true, Size: uint32(len(payload)), HasSize: true})
		}
		return copy(d, payload), nil
	}, time.Second)
	_, err := c.ModuleInfo(t.Context())
	assert.ErrorIs(t, err, ErrProtocol)
}

func TestLegacyStripsNULs(t *testing.T) {
	c := newFake(func(_, r uint8, _, idx uint16, d []byte) (int, error) {
		require.Equal(t, LegacyRequest, r)
		if idx == ReqDeviceID {
			return copy(d, "E00FCE68B0B0EC4B2C1E3D7A\x00\x00"), nil
		}
		return copy(d, "6.2.0\x00garbage"), nil
	}, time.Second)
	id, err := c.LegacyDeviceID(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "e00fce68b0b0ec4b2c1e3d7a", id)
	v, err := c.LegacySystemVersion(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "6.2.0", v)
}

func TestPayloadTooLarge(t *testing.T) {
	c := newFake(func(_, _ uint8, _, _ uint16, d []byte) (int, error) { return 0, nil }, time.Second)
	_, _, err := c.Request(t.Context(), ReqEcho, make([]byte, MaxPayload+1))
	assert.Error(t, err)
}
