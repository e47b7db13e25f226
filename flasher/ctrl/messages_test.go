package ctrl

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
)

// The golden byte strings below were worked out by hand from the .proto field
// numbers (device-os-protobuf control/config.proto, control/storage.proto,
// cloud/describe.proto): tag = field<<3 | wire type, varints 7 bits at a time,
// fixed32 little-endian. Each test checks the encoder against the bytes, the
// decoder against the value, and the bytes against protowire's own parser so
// a mistake in the hand arithmetic cannot hide in both directions at once.

// wireFields lists (field number, wire type) of a message as protowire sees it.
func wireFields(t *testing.T, b []byte) [][2]int {
	t.Helper()
	var out [][2]int
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeField(b)
		require.GreaterOrEqual(t, n, 0, "protowire cannot parse the golden bytes: %v", protowire.ParseError(n))
		out = append(out, [2]int{int(num), int(typ)})
		b = b[n:]
	}
	return out
}

func TestGoldenDeviceIDReply(t *testing.T) {
	id := "e00fce68b0b0ec4b2c1e3d7a"
	golden := append([]byte{0x0a, 0x18}, id...) // field 1, bytes, length 24
	assert.Equal(t, golden, EncodeDeviceIDReply(id))
	got, err := DecodeDeviceIDReply(golden)
	require.NoError(t, err)
	assert.Equal(t, id, got)
	assert.Equal(t, [][2]int{{1, 2}}, wireFields(t, golden))
}

func TestGoldenSystemVersionReply(t *testing.T) {
	golden := []byte{0x0a, 0x05, '4', '.', '1', '.', '0'}
	assert.Equal(t, golden, EncodeSystemVersionReply("4.1.0"))
	got, err := DecodeSystemVersionReply(golden)
	require.NoError(t, err)
	assert.Equal(t, "4.1.0", got)
	assert.Equal(t, [][2]int{{1, 2}}, wireFields(t, golden))
}

// GetNcpFirmwareVersionReply{string version = 1; uint32 module_version = 2}
// (proto/control/config.proto), as an Argon's Device OS sends it for NCP 0.0.7.
func TestGoldenNCPVersionReply(t *testing.T) {
	golden := []byte{0x0a, 0x05, '0', '.', '0', '.', '7', 0x10, 0x07}
	v := NCPVersion{Version: "0.0.7", ModuleVersion: 7}
	assert.Equal(t, golden, EncodeNCPVersionReply(v))
	got, err := DecodeNCPVersionReply(golden)
	require.NoError(t, err)
	assert.Equal(t, v, got)
	assert.Equal(t, [][2]int{{1, 2}, {2, 0}}, wireFields(t, golden))
	_, err = DecodeNCPVersionReply([]byte{0x12, 0x01, 0x07}) // module_version as bytes
	assert.ErrorIs(t, err, ErrProtocol)
}

func TestGoldenDeviceModeReply(t *testing.T) {
	golden := []byte{0x08, 0x01} // mode = LISTENING_MODE
	assert.Equal(t, golden, EncodeDeviceModeReply(ModeListening))
	m, err := DecodeDeviceModeReply(golden)
	require.NoError(t, err)
	assert.Equal(t, ModeListening, m)
	// NORMAL_MODE is the proto3 default: an empty message.
	assert.Empty(t, EncodeDeviceModeReply(ModeNormal))
	m, err = DecodeDeviceModeReply(nil)
	require.NoError(t, err)
	assert.Equal(t, ModeNormal, m)
	assert.Equal(t, [][2]int{{1, 0}}, wireFields(t, golden))
}

func TestGoldenStartFirmwareUpdate(t *testing.T) {
	// size = 300000 = 0x493E0 -> varint E0 A7 12; format BIN (0) omitted.
	golden := []byte{0x08, 0xE0, 0xA7, 0x12}
	assert.Equal(t, golden, EncodeStartFirmwareUpdate(300000, FormatBIN))
	size, format, err := DecodeStartFirmwareUpdate(golden)
	require.NoError(t, err)
	assert.Equal(t, uint32(300000), size)
	assert.Equal(t, FormatBIN, format)
	assert.Equal(t, [][2]int{{1, 0}}, wireFields(t, golden))

	withMiniz := []byte{0x08, 0xE0, 0xA7, 0x12, 0x10, 0x01} // + field 2 varint 1
	assert.Equal(t, withMiniz, EncodeStartFirmwareUpdate(300000, FormatMiniz))
	size, format, err = DecodeStartFirmwareUpdate(withMiniz)
	require.NoError(t, err)
	assert.Equal(t, uint32(300000), size)
	assert.Equal(t, FormatMiniz, format)
	assert.Equal(t, [][2]int{{1, 0}, {2, 0}}, wireFields(t, withMiniz))
}

func TestGoldenStartFirmwareUpdateReply(t *testing.T) {
	golden := []byte{0x08, 0x80, 0x08} // chunk_size = 1024
	assert.Equal(t, golden, EncodeStartFirmwareUpdateReply(1024))
	chunk, err := DecodeStartFirmwareUpdateReply(golden)
	require.NoError(t, err)
	assert.Equal(t, uint32(1024), chunk)
	assert.Equal(t, [][2]int{{1, 0}}, wireFields(t, golden))
}

func TestGoldenFirmwareUpdateData(t *testing.T) {
	golden := []byte{0x0a, 0x03, 0x01, 0x02, 0x03}
	assert.Equal(t, golden, EncodeFirmwareUpdateData([]byte{1, 2, 3}))
	data, err := DecodeFirmwareUpdateData(golden)
	require.NoError(t, err)
	assert.Equal(t, []byte{1, 2, 3}, data)
	assert.Equal(t, [][2]int{{1, 2}}, wireFields(t, golden))

	// A 1024-byte chunk needs a two-byte length: 0x80 0x08.
	big := bytes.Repeat([]byte{0x5a}, 1024)
	enc := EncodeFirmwareUpdateData(big)
	assert.Equal(t, []byte{0x0a, 0x80, 0x08}, enc[:3])
	assert.Len(t, enc, 1027)
}

func TestGoldenFinishFirmwareUpdate(t *testing.T) {
	golden := []byte{0x08, 0x01} // validate_only = true
	assert.Equal(t, golden, EncodeFinishFirmwareUpdate(true))
	v, err := DecodeFinishFirmwareUpdate(golden)
	require.NoError(t, err)
	assert.True(t, v)
	assert.Empty(t, EncodeFinishFirmwareUpdate(false))
	v, err = DecodeFinishFirmwareUpdate(nil)
	require.NoError(t, err)
	assert.False(t, v)
	assert.Equal(t, [][2]int{{1, 0}}, wireFields(t, golden))
}

func TestGoldenModuleInfoReplyNewForm(t *testing.T) {
	boot := ModuleInfo{
		Function: 2, Index: 0, Version: 1200, Store: StoreMain, MaxSize: 49152,
		Checked: 0x1e, Passed: 0x1e, Hash: []byte{0xaa, 0xbb}, Size: 41556,
	}
	bootBytes := []byte{
		0x08, 0x02, // type = BOOTLOADER_MODULE (2)
		// index 0 and store MAIN (0) are defaults, omitted
		0x18, 0xB0, 0x09, // version = 1200
		0x28, 0x80, 0x80, 0x03, // max_size = 49152
		0x35, 0x1e, 0x00, 0x00, 0x00, // checked_flags fixed32
		0x3d, 0x1e, 0x00, 0x00, 0x00, // passed_flags fixed32
		0x42, 0x02, 0xaa, 0xbb, // hash
		0x58, 0xD4, 0xC4, 0x02, // size = 41556
	}
	sys := ModuleInfo{
		Function: 4, Index: 1, Version: 4100, Store: StoreMain,
		Dependencies: []Dependency{{Function: 2, Index: 0, Version: 1200}},
	}
	sysBytes := []byte{
		0x08, 0x04, // type = SYSTEM_PART_MODULE
		0x10, 0x01, // index = 1
		0x18, 0x84, 0x20, // version = 4100
		0x4a, 0x05, 0x08, 0x02, 0x18, 0xB0, 0x09, // dependencies {type 2, version 1200}
	}
	golden := append([]byte{0x12, byte(len(bootBytes))}, bootBytes...)
	golden = append(golden, 0x12, byte(len(sysBytes)))
	golden = append(golden, sysBytes...)
	require.Equal(t, 27, len(bootBytes))
	require.Equal(t, 14, len(sysBytes))

	assert.Equal(t, golden, EncodeModuleInfoReply([]ModuleInfo{boot, sys}, false))
	mods, err := DecodeModuleInfoReply(golden)
	require.NoError(t, err)
	assert.Equal(t, []ModuleInfo{boot, sys}, mods)

	assert.Equal(t, [][2]int{{2, 2}, {2, 2}}, wireFields(t, golden))
	assert.Equal(t, [][2]int{{1, 0}, {3, 0}, {5, 0}, {6, 5}, {7, 5}, {8, 2}, {11, 0}}, wireFields(t, bootBytes))
	assert.Equal(t, [][2]int{{1, 0}, {2, 0}, {3, 0}, {9, 2}}, wireFields(t, sysBytes))
}

func TestGoldenModuleInfoReplyDeprecatedForm(t *testing.T) {
	sys := ModuleInfo{
		Function: 4, Index: 1, Version: 4100, Store: StoreMain, Size: 1004,
		Checked: ValidIntegrity | ValidDependencies, Passed: ValidIntegrity | ValidDependencies,
		Dependencies: []Dependency{{Function: 2, Index: 0, Version: 1200}},
	}
	sysBytes := []byte{
		0x08, 0x02, // type = SYSTEM_PART (control enum 2)
		0x10, 0x01, // index = 1
		0x18, 0x84, 0x20, // version = 4100
		0x20, 0xE8, 0x07, // size = 1000 (without the CRC)
		// validity 0 = no failures, omitted
		0x32, 0x05, 0x08, 0x01, 0x18, 0xB0, 0x09, // dependency {BOOTLOADER (1), 0, 1200}
	}
	user := ModuleInfo{
		Function: 5, Index: 2, Version: 6, Store: StoreMain, Size: 0,
		Checked: ValidIntegrity | ValidDependencies, Passed: ValidIntegrity,
	}
	userBytes := []byte{
		0x08, 0x03, // USER_PART
		0x10, 0x02, // index 2
		0x18, 0x06, // version 6
		0x28, 0x02, // validity = DEPENDENCY_CHECK_FAILED
	}
	golden := append([]byte{0x0a, byte(len(sysBytes))}, sysBytes...)
	golden = append(golden, 0x0a, byte(len(userBytes)))
	golden = append(golden, userBytes...)

	assert.Equal(t, golden, EncodeModuleInfoReply([]ModuleInfo{sys, user}, true))
	mods, err := DecodeModuleInfoReply(golden)
	require.NoError(t, err)
	assert.Equal(t, []ModuleInfo{sys, user}, mods)
	assert.Equal(t, ValidDependencies, mods[1].Failed())
	assert.Equal(t, [][2]int{{1, 2}, {1, 2}}, wireFields(t, golden))
	assert.Equal(t, [][2]int{{1, 0}, {2, 0}, {3, 0}, {4, 0}, {6, 2}}, wireFields(t, sysBytes))
}

func TestModuleInfoNewFormWinsOverDeprecated(t *testing.T) {
	legacy := EncodeModuleInfoReply([]ModuleInfo{{Function: 5, Index: 1, Version: 3}}, true)
	modern := EncodeModuleInfoReply([]ModuleInfo{{Function: 5, Index: 1, Version: 6, Store: StoreMain, Size: 100}}, false)
	mods, err := DecodeModuleInfoReply(append(legacy, modern...))
	require.NoError(t, err)
	require.Len(t, mods, 1)
	assert.Equal(t, uint32(6), mods[0].Version)
}

func TestDeprecatedFormSkipsWhatItCannotExpress(t *testing.T) {
	mods := []ModuleInfo{
		{Function: 9, Index: 0, Version: 1},                     // asset: no control enum value
		{Function: 4, Index: 1, Version: 2, Store: StoreBackup}, // not in the main store
		{Function: 7, Index: 0, Version: 3, Store: StoreMain, Dependencies: []Dependency{{Function: 1, Version: 9}}},
	}
	got, err := DecodeModuleInfoReply(EncodeModuleInfoReply(mods, true))
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, uint8(7), got[0].Function)
	assert.Empty(t, got[0].Dependencies, "resource dependency has no control enum value")
}

func TestStoreNames(t *testing.T) {
	for _, s := range []string{StoreMain, StoreFactory, StoreBackup, StoreScratchpad, "store-7"} {
		got, err := DecodeModuleInfoReply(EncodeModuleInfoReply([]ModuleInfo{{Function: 5, Store: s}}, false))
		require.NoError(t, err)
		assert.Equal(t, s, got[0].Store)
	}
}

func TestGoldenServiceReply(t *testing.T) {
	initOK := []byte{0x03, 0, 0, 0, 0x00, 0x00, 0x01, 0x00} // STATUS|ID, OK, id 1
	r := ServiceReply{Status: StatusOK, ID: 1, HasID: true}
	assert.Equal(t, initOK, r.Encode())
	got, err := ParseServiceReply(initOK)
	require.NoError(t, err)
	assert.Equal(t, r, got)

	// STATUS|SIZE|RESULT, OK, size 5, result -210 (0xFFFFFF2E)
	checkDone := []byte{0x0d, 0, 0, 0, 0, 0, 0x05, 0, 0, 0, 0x2e, 0xff, 0xff, 0xff}
	r = ServiceReply{Status: StatusOK, Size: 5, HasSize: true, Result: -210, HasResult: true}
	assert.Equal(t, checkDone, r.Encode())
	got, err = ParseServiceReply(checkDone)
	require.NoError(t, err)
	assert.Equal(t, r, got)

	busy := []byte{0x01, 0, 0, 0, 0x03, 0x00}
	assert.Equal(t, busy, ServiceReply{Status: StatusBusy}.Encode())
}

func TestParseServiceReplyRejectsGarbage(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":          nil,
		"short":          {1, 0, 0},
		"no status flag": {0x02, 0, 0, 0, 0, 0, 1, 0},
		"truncated id":   {0x03, 0, 0, 0, 0, 0, 1},
		"truncated size": {0x05, 0, 0, 0, 0, 0, 1, 0, 0},
		"truncated res":  {0x09, 0, 0, 0, 0, 0, 1, 0},
	} {
		_, err := ParseServiceReply(b)
		assert.ErrorIs(t, err, ErrProtocol, name)
	}
}

func TestResultNames(t *testing.T) {
	assert.Equal(t, "INVALID_STATE", ResultName(-210))
	assert.Equal(t, "ERROR", ResultName(CodeError))
	assert.Equal(t, "TIMEOUT", ResultName(CodeTimeout))
	assert.Equal(t, "IO_ERROR", ResultName(CodeIOError))
	assert.Equal(t, "NETWORK_ERROR", ResultName(CodeNetworkError))
	assert.Equal(t, "OTA_INTEGRITY_CHECK_FAILED", ResultName(-1330))
	assert.Equal(t, "RESULT_-4242", ResultName(-4242))
	e := &ResultError{Code: CodeInvalidState, Op: "device refused the update"}
	assert.Equal(t, "device refused the update: INVALID_STATE (-210)", e.Error())
	assert.Equal(t, "Invalid state", ResultMessage(-210))
}

func TestDecodersRejectWrongWireTypes(t *testing.T) {
	// field 1 as fixed32 where a string is expected, and vice versa
	_, err := DecodeDeviceIDReply([]byte{0x0d, 1, 2, 3, 4})
	assert.ErrorIs(t, err, ErrProtocol)
	_, err = DecodeStartFirmwareUpdateReply([]byte{0x0a, 0x01, 0x00})
	assert.ErrorIs(t, err, ErrProtocol)
	// truncated length-delimited field
	_, err = DecodeModuleInfoReply([]byte{0x12, 0x10, 0x08})
	assert.ErrorIs(t, err, ErrProtocol)
	// index that does not fit a byte
	_, err = DecodeModuleInfoReply(EncodeModuleInfoReplyRaw(t, 2, []byte{0x10, 0x80, 0x04}))
	assert.ErrorIs(t, err, ErrProtocol)
	// unknown fields are skipped
	id, err := DecodeDeviceIDReply([]byte{0x10, 0x05, 0x0a, 0x02, 'a', 'b', 0x1d, 1, 2, 3, 4})
	require.NoError(t, err)
	assert.Equal(t, "ab", id)
}

// EncodeModuleInfoReplyRaw wraps raw module bytes in field num of GetModuleInfoReply.
func EncodeModuleInfoReplyRaw(t *testing.T, num protowire.Number, module []byte) []byte {
	t.Helper()
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendBytes(b, module)
}

// FuzzDecoders makes sure no input makes a decoder panic; `go test` runs the
// seeds, `go test -fuzz FuzzDecoders` explores further.
func FuzzDecoders(f *testing.F) {
	f.Add(EncodeModuleInfoReply([]ModuleInfo{{Function: 4, Index: 1, Version: 4100, Hash: []byte{1}, Dependencies: []Dependency{{2, 0, 1200}}}}, false))
	f.Add(EncodeModuleInfoReply([]ModuleInfo{{Function: 4, Index: 1, Version: 4100, Dependencies: []Dependency{{2, 0, 1200}}}}, true))
	f.Add([]byte{0x0a, 0x18})
	f.Add([]byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{0x0b, 0x0c}) // group
	f.Add(EncodeAssetInfoReply(AssetInfo{Available: []Asset{{Name: "cat.jpg", Hash: "f8dc", Size: 21502, StorageSize: 21597}}, Required: []Asset{{Name: "cat.jpg", Hash: "f8dc"}}}))
	f.Add(EncodeProtectedStateReply(ProtectedState{Protected: true}))
	f.Add(EncodeNCPVersionReply(NCPVersion{Version: "0.0.7", ModuleVersion: 7}))
	f.Add(EncodeSerialNumberReply("ARNHAB849A1B2C3"))
	f.Add(EncodeCellularInfoReply(CellularInfo{ICCID: "89014103211118510720", IMEI: "352656106111232"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		oneLine := func(err error) {
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Fatalf("refusal is not one line: %q", err)
			}
		}
		_, err := DecodeAssetInfoReply(b)
		oneLine(err)
		_, err = DecodeProtectedStateReply(b)
		oneLine(err)
		_, err = DecodeSetupDone(b)
		oneLine(err)
		_, err = DecodeNCPVersionReply(b)
		oneLine(err)
		_, err = DecodeSystemVersionReply(b)
		oneLine(err)
		_, err = DecodeSerialNumberReply(b)
		oneLine(err)
		_, err = DecodeCellularInfoReply(b)
		oneLine(err)
		_, _ = DecodeModuleInfoReply(b)
		_, _ = DecodeDeviceIDReply(b)
		_, _ = DecodeDeviceModeReply(b)
		_, _, _ = DecodeStartFirmwareUpdate(b)
		_, _ = DecodeFirmwareUpdateData(b)
		_, _ = DecodeFinishFirmwareUpdate(b)
		_, _ = ParseServiceReply(b)
	})
}
