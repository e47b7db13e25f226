package listen

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
	"github.com/particle-flasher/particle-flasher/flasher/serialport"
	"github.com/particle-flasher/particle-flasher/flasher/sim/serialdev"
)

const testID = "3a0038000d47353136383631"

// electronJSON is the real Electron 0.7.0-rc.3 `s` payload from the reference (§3b,
// binary-version-reader specs/describes/three_system_modules_with_firmware_reset.json.js).
const electronJSON = `{"p":10,"imei":"123456789012345","iccid":"1234567890123456789","m":[` +
	`{"s":16384,"l":"m","vc":30,"vv":30,"f":"b","n":"0","v":100,"d":[]},` +
	`{"s":131072,"l":"m","vc":30,"vv":30,"f":"s","n":"1","v":202,"d":[{"f":"s","n":"3","v":202,"_":""}]},` +
	`{"s":131072,"l":"m","vc":30,"vv":30,"f":"s","n":"2","v":202,"d":[{"f":"s","n":"1","v":202,"_":""},{"f":"b","n":"0","v":100,"_":""}]},` +
	`{"s":131072,"l":"m","vc":30,"vv":30,"f":"s","n":"3","v":202,"d":[]},` +
	`{"s":131072,"l":"m","vc":30,"vv":30,"u":"6B38BF10BE92BA40717E91F2F0B68BA1310A96CA8E61F89F68753B4D06BA84F8","f":"u","n":"1","v":3,"d":[{"f":"s","n":"2","v":10,"_":""}]},` +
	`{"s":131072,"l":"f","vc":30,"vv":30,"u":"6B38BF10BE92BA40717E91F2F0B68BA1310A96CA8E61F89F68753B4D06BA84F8","f":"u","n":"1","v":3,"d":[{"f":"s","n":"2","v":10,"_":""}]}]}`

// emptySlotJSON has a slot without a valid module (no f/n/v), as binary-version-reader's
// describe.json.js fixture shows, on a Boron-like Gen3 layout.
const emptySlotJSON = `{"p":13,"m":[` +
	`{"s":49152,"l":"m","vc":30,"vv":30,"f":"b","n":"0","v":1101,"d":[]},` +
	`{"s":1036288,"l":"m","vc":30,"vv":30,"f":"s","n":"1","v":5900,"d":[{"f":"b","n":"0","v":1101}]},` +
	`{"s":262144,"l":"m","vc":30,"vv":0,"d":[]},` +
	`{"s":1536000,"l":"m","vc":30,"vv":22,"f":"u","n":"2","v":6,"u":"0011223344556677889900112233445566778899001122334455667788990011","d":[{"f":"s","n":"1","v":5900}]}]}`

type rig struct {
	dev  *serialdev.Port
	m    *serialdev.MemModel
	port serialport.Port
	con  *Console
}

func testOptions() Options {
	return Options{
		Timeout: 2 * time.Second, SlowTimeout: 3 * time.Second, Quiet: 60 * time.Millisecond,
		PromptTimeout: 2 * time.Second,
		YModem:        YModemOptions{AckTimeout: 2 * time.Second, FinishTimeout: 3 * time.Second},
	}
}

// newRig starts a virtual device and opens its tty with the product's serial code, exactly
// as /dev/ttyACM0 would be opened.
func newRig(t *testing.T, m *serialdev.MemModel, o Options) *rig {
	t.Helper()
	if m.ID == "" {
		m.ID = testID
	}
	// A fifth of real time: the receiver's 5 s NAK_TIMEOUT is 1 s, so a loaded machine's
	// pause in the middle of a block is not taken for a broken link (at a fiftieth, 100 ms,
	// it was, and the transfer desynchronised).
	dev, err := serialdev.Open(m, serialdev.Options{TimeScale: 0.2, PollInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { dev.Close() })
	sp, err := serialport.Open(dev.SlavePath(), serialport.ConsoleBaud)
	require.NoError(t, err)
	t.Cleanup(func() { sp.Close() })
	return &rig{dev: dev, m: m, port: sp, con: New(sp, o)}
}

func TestIdentifyShortForm(t *testing.T) {
	t.Parallel()
	r := newRig(t, &serialdev.MemModel{StartListening: true}, testOptions())
	id, err := r.con.Identify(context.Background())
	require.NoError(t, err)
	assert.Equal(t, testID, id.DeviceID)
	assert.Empty(t, id.Extra)
}

func TestIdentifyLongForm(t *testing.T) {
	t.Parallel()
	r := newRig(t, &serialdev.MemModel{StartListening: true, Extra: []serialdev.KV{
		{Key: "imei", Value: "352753090123456"}, {Key: "iccid", Value: "89014103271234567890"},
		{Key: "sn", Value: "P041AB123456789"}, {Key: "cellfw", Value: "L0.0.00.00.05.06"},
	}}, testOptions())
	id, err := r.con.Identify(context.Background())
	require.NoError(t, err)
	assert.Equal(t, testID, id.DeviceID)
	assert.Equal(t, map[string]string{
		"IMEI": "352753090123456", "ICCID": "89014103271234567890",
		"Serial Number": "P041AB123456789", "Cell Radio Version": "L0.0.00.00.05.06",
	}, id.Extra)
}

func TestParseIdentityForms(t *testing.T) {
	id, err := parseIdentity([]byte("Your core id is 53ff6f065067544840160887\r\n"))
	require.NoError(t, err)
	assert.Equal(t, "53ff6f065067544840160887", id.DeviceID)
	id, err = parseIdentity([]byte("\x00junk\r\nDevice ID: E00FCE68AABBCCDDEEFF0011\r\nIMEI: 1\r\nICCID: 2\r\n"))
	require.NoError(t, err)
	assert.Equal(t, "e00fce68aabbccddeeff0011", id.DeviceID)
	assert.Equal(t, map[string]string{"IMEI": "1", "ICCID": "2"}, id.Extra)
	_, err = parseIdentity([]byte("Device claimed: no\r\n"))
	assert.ErrorContains(t, err, "no device ID")
}

func TestSystemVersionAndMAC(t *testing.T) {
	t.Parallel()
	r := newRig(t, &serialdev.MemModel{StartListening: true, Version: "1.5.2", MACAddress: "E0:4F:43:12:AB:CD"}, testOptions())
	v, err := r.con.SystemVersion(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "1.5.2", v)
	mac, err := r.con.MAC(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "e0:4f:43:12:ab:cd", mac)
}

func TestModuleInfoElectron(t *testing.T) {
	t.Parallel()
	r := newRig(t, &serialdev.MemModel{StartListening: true, ModuleJSON: electronJSON}, testOptions())
	si, err := r.con.ModuleInfo(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 10, si.PlatformID)
	assert.Equal(t, map[string]any{"imei": "123456789012345", "iccid": "1234567890123456789"}, si.Extra)
	require.Len(t, si.Modules, 6)
	assert.Equal(t, ModuleInfo{MaxSize: 16384, Location: "m", Checked: 30, Passed: 30,
		Function: platform.FuncBootloader, FunctionCode: "b", Index: 0, Version: 100}, si.Modules[0])
	assert.Equal(t, []Dependency{{Function: platform.FuncSystem, FunctionCode: "s", Index: 1, Version: 202},
		{Function: platform.FuncBootloader, FunctionCode: "b", Index: 0, Version: 100}}, si.Modules[2].Dependencies)
	u := si.Modules[5]
	assert.Equal(t, platform.FuncUser, u.Function)
	assert.Equal(t, "f", u.Location)
	assert.Equal(t, 1, u.Index)
	assert.Equal(t, 3, u.Version)
	assert.Len(t, u.Hash, 64)
	assert.True(t, u.Valid())
	assert.False(t, u.Empty)
}

func TestModuleInfoEmptySlot(t *testing.T) {
	t.Parallel()
	r := newRig(t, &serialdev.MemModel{StartListening: true, ModuleJSON: emptySlotJSON}, testOptions())
	si, err := r.con.ModuleInfo(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 13, si.PlatformID)
	require.Len(t, si.Modules, 4)
	e := si.Modules[2]
	assert.True(t, e.Empty)
	assert.Equal(t, platform.FuncNone, e.Function)
	assert.Equal(t, 262144, e.MaxSize)
	assert.False(t, e.Valid())
	assert.Empty(t, e.Dependencies)
	assert.Equal(t, 5900, si.Modules[1].Version)
	assert.False(t, si.Modules[3].Valid(), "vv 22 lacks the range bit")
	assert.Equal(t, ValidIntegrity|ValidDependencies|ValidPlatform, si.Modules[3].Passed)
}

func TestModuleInfoTruncated(t *testing.T) {
	t.Parallel()
	cut := electronJSON[:len(electronJSON)/2]
	r := newRig(t, &serialdev.MemModel{StartListening: true, ModuleJSON: cut}, testOptions())
	_, err := r.con.ModuleInfo(context.Background())
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrNoReply, "it stops at the broken JSON, not at the timeout")
	assert.ErrorContains(t, err, "incomplete module info from the device")
	assert.ErrorContains(t, err, "JSON ends early")
	assert.ErrorContains(t, err, "try another cable or USB port")
	assert.NotEmpty(t, remedy.Of(err))
}

func TestGarbageBeforeReply(t *testing.T) {
	t.Parallel()
	r := newRig(t, &serialdev.MemModel{StartListening: true, ModuleJSON: electronJSON, Version: "5.9.0"}, testOptions())
	ctx := context.Background()

	r.dev.InjectGarbage([]byte("\x00\xff\xfe{\"oops\r\n0123456789abcdef01234567 noise "))
	si, err := r.con.ModuleInfo(ctx)
	require.NoError(t, err)
	assert.Len(t, si.Modules, 6)

	r.dev.InjectGarbage([]byte("\x1b[2J\xff\x00 boot log: Your device id i"))
	id, err := r.con.Identify(ctx)
	require.NoError(t, err)
	assert.Equal(t, testID, id.DeviceID)

	r.dev.InjectGarbage([]byte("\xf0\xf1\r\n"))
	v, err := r.con.SystemVersion(ctx)
	require.NoError(t, err)
	assert.Equal(t, "5.9.0", v)
}

func TestNoReplyOutsideListeningMode(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.Timeout = 300 * time.Millisecond
	r := newRig(t, &serialdev.MemModel{Version: "1.5.2"}, o)
	_, err := r.con.SystemVersion(context.Background())
	require.ErrorIs(t, err, ErrNoReply)
	assert.Contains(t, remedy.Of(err), "listening mode")
}

func TestExit(t *testing.T) {
	t.Parallel()
	r := newRig(t, &serialdev.MemModel{StartListening: true}, testOptions())
	require.NoError(t, r.con.Exit(context.Background()))
	assert.Eventually(t, func() bool { return !r.m.Listening() }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, []string{"exit"}, r.m.Events())
}

func TestCancelledContext(t *testing.T) {
	t.Parallel()
	r := newRig(t, &serialdev.MemModel{}, testOptions()) // not listening: no reply
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := r.con.ModuleInfo(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestSendFirmware(t *testing.T) {
	t.Parallel()
	for _, bs := range []int{128, 1024} {
		t.Run(map[int]string{128: "128", 1024: "1024"}[bs], func(t *testing.T) {
			t.Parallel()
			o := testOptions()
			o.YModem.BlockSize = bs
			r := newRig(t, &serialdev.MemModel{StartListening: true}, o)
			img := pseudoRandom(150*1024+3, uint64(bs))
			var last int
			err := r.con.SendFirmware(context.Background(), "system-part1.bin", img, func(done, total int) { last = done })
			require.NoError(t, err)
			assert.Equal(t, len(img), last)
			assert.True(t, bytes.Equal(img, r.m.Image()), "image differs")
			// The device resets right after its last line.
			assert.Eventually(t, func() bool { return r.m.HasEvent("reset:update") }, 10*time.Second, 5*time.Millisecond)
			assert.Equal(t, []string{"begin:153603", "finish:153603", "reset:update"}, r.m.Events())
		})
	}
}

// A bare SOH starts the receiver without `f` (handle_peek, Device OS ≤ 5.x).
func TestYModemWithoutF(t *testing.T) {
	t.Parallel()
	r := newRig(t, &serialdev.MemModel{StartListening: true}, testOptions())
	img := pseudoRandom(5000, 9)
	err := YModemSend(context.Background(), r.port, "user.bin", img, YModemOptions{DeviceOS: true, AckTimeout: 2 * time.Second})
	require.NoError(t, err)
	assert.True(t, bytes.Equal(img, r.m.Image()))
	assert.Eventually(t, func() bool { return r.m.HasEvent("reset:update") }, 10*time.Second, 10*time.Millisecond)
}

func TestSendFirmwareRefusedByDeviceOS6(t *testing.T) {
	t.Parallel()
	r := newRig(t, &serialdev.MemModel{StartListening: true, NoYModem: true, NoListenBaud: true}, testOptions())
	err := r.con.SendFirmware(context.Background(), "x.bin", []byte("data"), nil)
	require.ErrorIs(t, err, ErrSerialFlashingUnsupported)
	assert.ErrorContains(t, err, "no longer supported")
	assert.Contains(t, remedy.Of(err), "USB")
	assert.Empty(t, r.m.Events(), "nothing reached the model")
	// The console still works afterwards.
	id, err := r.con.Identify(context.Background())
	require.NoError(t, err)
	assert.Equal(t, testID, id.DeviceID)
}

func TestSendFirmwareDeviceErrors(t *testing.T) {
	t.Parallel()
	img := pseudoRandom(8*1024, 5)
	cases := []struct {
		name  string
		model serialdev.MemModel
		want  string
	}{
		{"validation", serialdev.MemModel{ValidationCode: -170}, "Validation failed: -170"},
		{"too big", serialdev.MemModel{MaxImage: 4096}, "The file size is higher than the allowed space memory!"},
		{"flash write", serialdev.MemModel{FailChunkAt: 2048}, "Failed to save chunk!"},
	}
	for i := range cases {
		tc := &cases[i]
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.model.StartListening = true
			r := newRig(t, &tc.model, testOptions())
			err := r.con.SendFirmware(context.Background(), "bad.bin", img, nil)
			require.Error(t, err)
			var ce *CancelError
			require.True(t, errors.As(err, &ce), "%v", err)
			assert.Contains(t, ce.Message, tc.want)
			assert.NotEmpty(t, remedy.Of(err))
			assert.False(t, tc.model.HasEvent("reset:update"))
		})
	}
}

// A link that loses every n-th byte from the device: the transfer recovers through
// Device OS's 'C'-on-timeout and the sender's retransmissions, or fails with a clear
// error; it never hangs.
func TestSendFirmwareDroppedBytes(t *testing.T) {
	t.Parallel()
	for _, n := range []int{3, 7, 50} {
		t.Run(map[int]string{3: "every 3rd", 7: "every 7th", 50: "every 50th"}[n], func(t *testing.T) {
			t.Parallel()
			r := newRig(t, &serialdev.MemModel{StartListening: true}, testOptions())
			img := pseudoRandom(24*1024, uint64(n))
			r.dev.DropEvery(n)
			// A generous bound only so that a hang fails here, not at the suite's timeout.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			err := r.con.SendFirmware(ctx, "flaky.bin", img, nil)
			t.Logf("every %d: %v", n, err)
			assert.NotErrorIs(t, err, context.DeadlineExceeded, "it recovers or fails on its own; it never hangs")
			if err == nil {
				assert.True(t, bytes.Equal(img, r.m.Image()), "image differs")
				assert.Eventually(t, func() bool { return r.m.HasEvent("reset:update") }, 10*time.Second, 10*time.Millisecond)
				return
			}
			assert.NotEmpty(t, remedy.Of(err), "a failure must say what to do: %v", err)
		})
	}
}
