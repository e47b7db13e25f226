package ctrl

import (
	"context"
	"encoding/hex"
	"errors"

	"google.golang.org/protobuf/encoding/protowire"
)

// Requests about the device rather than its firmware: setup done, Device Protection and
// assets (device-os-protobuf control/config.proto and control/storage.proto; Device OS
// system/src/control/config.cpp and storage.cpp).
const (
	ReqSetSetupDone      RequestType = 73
	ReqIsSetupDone       RequestType = 74
	ReqGetProtectedState RequestType = 76
	ReqSetProtectedState RequestType = 77
	ReqGetAssetInfo      RequestType = 91
	ReqCellularGetICCID  RequestType = 554
)

// NotSupported reports a request the device's Device OS does not know (-120): older
// Device OS, or a platform without the feature.
func NotSupported(err error) bool {
	var re *ResultError
	return errors.As(err, &re) && re.Code == CodeNotSupported
}

// Protected reports a request a protected device refused (-1801).
func Protected(err error) bool {
	var re *ResultError
	return errors.As(err, &re) && re.Code == CodeDeviceProtected
}

// ProtectedState is GetProtectedStateReply (type 76): Protected is set while Device
// Protection locks the device; Overridden while it is lifted (Service Mode).
type ProtectedState struct {
	Protected, Overridden bool
}

// EncodeProtectedStateReply builds GetProtectedStateReply{bool state = 1; bool overridden = 2}.
func EncodeProtectedStateReply(s ProtectedState) []byte {
	var b []byte
	if s.Protected {
		b = appendUint(b, 1, 1)
	}
	if s.Overridden {
		b = appendUint(b, 2, 1)
	}
	return b
}

// DecodeProtectedStateReply reads GetProtectedStateReply.
func DecodeProtectedStateReply(b []byte) (ProtectedState, error) {
	const msg = "GetProtectedStateReply"
	var s ProtectedState
	err := parseFields(msg, b, func(f field) error {
		switch f.num {
		case 1, 2:
			u, err := f.uint32(msg)
			if err != nil {
				return err
			}
			if f.num == 1 {
				s.Protected = u != 0
			} else {
				s.Overridden = u != 0
			}
		}
		return nil
	})
	return s, err
}

// ProtectedState asks for Device Protection's state (type 76). Device OS before 6.0 has
// no protection and answers "not supported" (NotSupported).
func (c *Client) ProtectedState(ctx context.Context) (ProtectedState, error) {
	reply, err := c.call(ctx, ReqGetProtectedState, nil, "the protection state request")
	if err != nil {
		return ProtectedState{}, err
	}
	return DecodeProtectedStateReply(reply)
}

// EndServiceMode ends Service Mode at once (type 77, SetProtectedStateRequest{action =
// RESET}: the zero value, so an empty message), as particle-cli does at the end of a flash.
// It needs no cloud: only entering Service Mode does.
func (c *Client) EndServiceMode(ctx context.Context) error {
	_, err := c.call(ctx, ReqSetProtectedState, nil, "the request to end Service Mode")
	return err
}

// DecodeSetProtectedState reads SetProtectedStateRequest's action (0 RESET, 1 PREPARE,
// 2 CONFIRM): the virtual device's side.
func DecodeSetProtectedState(b []byte) (action uint32, err error) {
	return singleUint("SetProtectedStateRequest", b)
}

// EncodeSetupDone builds SetDeviceSetupDoneRequest{bool done = 1} (type 73) and
// IsDeviceSetupDoneReply{bool done = 1} (type 74), which have the same shape.
func EncodeSetupDone(done bool) []byte {
	if !done {
		return nil
	}
	return appendUint(nil, 1, 1)
}

// DecodeSetupDone reads either message.
func DecodeSetupDone(b []byte) (bool, error) {
	u, err := singleUint("SetupDone", b)
	return u != 0, err
}

// SetupDone asks whether the device's setup is done (type 74). Gen3 Device OS before
// 4.0 reads the DCT flag; 4.0 and later always say yes; other platforms answer "not
// supported".
func (c *Client) SetupDone(ctx context.Context) (bool, error) {
	reply, err := c.call(ctx, ReqIsSetupDone, nil, "the setup-done request")
	if err != nil {
		return false, err
	}
	return DecodeSetupDone(reply)
}

// SetSetupDone sets (or clears) the setup-done flag (type 73).
func (c *Client) SetSetupDone(ctx context.Context, done bool) error {
	_, err := c.call(ctx, ReqSetSetupDone, EncodeSetupDone(done), "the request to mark setup done")
	return err
}

// Asset is one asset as GetAssetInfoReply and GetModuleInfoReply describe it
// (particle.cloud.FirmwareModuleAsset: bytes hash = 1, string name = 2, uint32 size = 3,
// uint32 storage_size = 4). Hash is the SHA-256 of the asset's raw bytes, in hex.
type Asset struct {
	Name        string
	Hash        string
	Size        uint32
	StorageSize uint32
}

// AssetInfo is GetAssetInfoReply (type 91): the assets the device holds and those its
// application needs.
type AssetInfo struct {
	Available, Required []Asset
}

func encodeAsset(a Asset) []byte {
	h, _ := hex.DecodeString(a.Hash)
	b := appendBytes(nil, 1, h, false)
	b = appendBytes(b, 2, []byte(a.Name), false)
	b = appendUint(b, 3, uint64(a.Size))
	return appendUint(b, 4, uint64(a.StorageSize))
}

func decodeAsset(b []byte) (Asset, error) {
	const msg = "FirmwareModuleAsset"
	var a Asset
	err := parseFields(msg, b, func(f field) error {
		switch f.num {
		case 1, 2:
			if err := f.want(msg, protowire.BytesType); err != nil {
				return err
			}
			if f.num == 1 {
				a.Hash = hex.EncodeToString(f.b)
			} else {
				a.Name = string(f.b)
			}
		case 3, 4:
			u, err := f.uint32(msg)
			if err != nil {
				return err
			}
			if f.num == 3 {
				a.Size = u
			} else {
				a.StorageSize = u
			}
		}
		return nil
	})
	return a, err
}

// EncodeAssetInfoReply builds GetAssetInfoReply{repeated FirmwareModuleAsset available =
// 1; repeated FirmwareModuleAsset required = 2}.
func EncodeAssetInfoReply(info AssetInfo) []byte {
	var b []byte
	for _, a := range info.Available {
		b = appendBytes(b, 1, encodeAsset(a), true)
	}
	for _, a := range info.Required {
		b = appendBytes(b, 2, encodeAsset(a), true)
	}
	return b
}

// DecodeAssetInfoReply reads GetAssetInfoReply.
func DecodeAssetInfoReply(b []byte) (AssetInfo, error) {
	const msg = "GetAssetInfoReply"
	var info AssetInfo
	err := parseFields(msg, b, func(f field) error {
		if f.num != 1 && f.num != 2 {
			return nil
		}
		if err := f.want(msg, protowire.BytesType); err != nil {
			return err
		}
		a, err := decodeAsset(f.b)
		if err != nil {
			return err
		}
		if f.num == 1 {
			info.Available = append(info.Available, a)
		} else {
			info.Required = append(info.Required, a)
		}
		return nil
	})
	return info, err
}

// AssetInfo asks which assets the device holds and which its application needs (type 91,
// Device OS 5.6.0 and later on platforms with asset storage; "not supported" elsewhere).
func (c *Client) AssetInfo(ctx context.Context) (AssetInfo, error) {
	reply, err := c.call(ctx, ReqGetAssetInfo, nil, "the asset information request")
	if err != nil {
		return AssetInfo{}, err
	}
	return DecodeAssetInfoReply(reply)
}
