package listen

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

func TestCRC16XModem(t *testing.T) {
	assert.Equal(t, uint16(0x31C3), crc16XModem([]byte("123456789"))) // the catalogued check value
}

func TestPacketLayout(t *testing.T) {
	s := &sender{o: YModemOptions{BlockSize: 1024}.withDefaults(), crc: true}
	hdr := s.packet(0, []byte("fw.bin\x00123 "), true)
	require.Len(t, hdr, 133, "a short header goes in a 128-byte block")
	assert.Equal(t, []byte{SOH, 0x00, 0xFF}, hdr[:3])
	assert.Equal(t, "fw.bin\x00123 \x00", string(hdr[3:15]))
	data := s.packet(1, []byte{1, 2, 3}, false)
	require.Len(t, data, 1029)
	assert.Equal(t, []byte{STX, 0x01, 0xFE, 1, 2, 3, padByte}, data[:7])
	c := crc16XModem(data[3:1027])
	assert.Equal(t, []byte{byte(c >> 8), byte(c)}, data[1027:])
	end := s.packet(0, nil, true)
	assert.Equal(t, make([]byte, 128), end[3:131])
}

// scripted is a receiver on the far side of io.Pipes (no deadlines: the link's fallback
// reader goroutine is used).
type scripted struct {
	io.Reader
	io.Writer
}

func TestYModemReceiverCancels(t *testing.T) {
	toSender, fromRecv := io.Pipe()
	fromSender, toRecv := io.Pipe()
	go func() {
		buf := make([]byte, 2048)
		fromRecv.Write([]byte{'C'})
		fromSender.Read(buf) // the header
		fromRecv.Write([]byte("\x18\x18Validation failed: 7\r\n"))
		io.Copy(io.Discard, fromSender)
	}()
	defer toRecv.Close()
	err := YModemSend(context.Background(), scripted{toSender, toRecv}, "a.bin", []byte("x"), YModemOptions{})
	var ce *CancelError
	require.True(t, errors.As(err, &ce), "%v", err)
	assert.Equal(t, "Validation failed: 7", ce.Message)
	assert.Contains(t, ce.Stage, "header")
}

func TestYModemSilentReceiverTimesOut(t *testing.T) {
	err := YModemSend(context.Background(), scripted{blockingReader{}, discardWriter{}}, "a.bin", []byte("x"), YModemOptions{StartTimeout: 200 * time.Millisecond})
	require.Error(t, err)
	assert.ErrorContains(t, err, "did not ask for the file")

	// Device OS mode: no 'C' is awaited, but every block answer is.
	err = YModemSend(context.Background(), scripted{blockingReader{}, discardWriter{}}, "a.bin", []byte("x"),
		YModemOptions{DeviceOS: true, AckTimeout: 50 * time.Millisecond, MaxRetries: 2})
	assert.ErrorContains(t, err, "not acknowledged after 3 tries")
}

func TestYModemContextCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := YModemSend(ctx, scripted{blockingReader{}, discardWriter{}}, "a.bin", []byte("x"), YModemOptions{})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestYModemRejectsBadInput(t *testing.T) {
	rw := scripted{blockingReader{}, discardWriter{}}
	assert.ErrorContains(t, YModemSend(context.Background(), rw, "a", nil, YModemOptions{}), "empty")
	assert.ErrorContains(t, YModemSend(context.Background(), rw, "", []byte("x"), YModemOptions{}), "file name")
	assert.ErrorContains(t, YModemSend(context.Background(), rw, "a", []byte("x"), YModemOptions{BlockSize: 512}), "block size")
}

func TestLooksLikeSuccess(t *testing.T) {
	full := DeviceOSSuccessText("fw.bin", 1234)
	lossy := []byte{}
	for i := 0; i < len(full); i++ {
		if i%3 != 2 {
			lossy = append(lossy, full[i])
		}
	}
	assert.True(t, looksLikeSuccess(lossy, "fw.bin", 1234))
	assert.False(t, looksLikeSuccess([]byte("Validation failed: -170\r\n"), "fw.bin", 1234))
	assert.False(t, looksLikeSuccess([]byte("\r\n"), "fw.bin", 1234))
}

func TestParseModuleOddities(t *testing.T) {
	si, err := parseSystemInfo([]byte(`{"p":6,"m":[{"s":1,"l":"m","vc":0,"vv":0,"f":"_","n":2,"v":1,"d":[{"f":"a","n":"0","v":7}]}]}` + "\r\n"))
	require.NoError(t, err)
	assert.Equal(t, FunctionOther, si.Modules[0].Function)
	assert.Equal(t, 2, si.Modules[0].Index, "a numeric n is accepted too")
	assert.Equal(t, platform.FuncRadio, si.Modules[0].Dependencies[0].Function)
	assert.True(t, si.Modules[0].Valid())

	_, err = parseSystemInfo([]byte(`{"p":6,"m":[{"s":1,"l":"m"` + "\r\n"))
	assert.ErrorIs(t, err, errTruncated)
	_, err = parseSystemInfo([]byte(`{"p":6,"m":[{"s":1,}]}` + "\r\n"))
	assert.ErrorContains(t, err, "not valid JSON")
	_, err = parseSystemInfo([]byte("Your device id is x\r\n"))
	assert.ErrorContains(t, err, "no module info")
	si, err = parseSystemInfo([]byte(`{"p":6,"m":[{"f":"q"}]}`))
	require.NoError(t, err, "a letter from a newer Device OS must not hide the other modules")
	assert.Equal(t, FunctionOther, si.Modules[0].Function)
	assert.Equal(t, "q", si.Modules[0].FunctionCode)
}

type blockingReader struct{}

func (blockingReader) Read([]byte) (int, error) { select {} }

type discardWriter struct{}

func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
