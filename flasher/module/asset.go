package module

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// Asset is a file an application depends on (Device OS 5.5.0 and later), by name and the
// SHA-256 of its raw bytes, with its size where known (an asset file gives it; an
// application's dependency does not).
type Asset struct {
	Name string `json:"name"`
	Hash string `json:"hash"`
	Size int    `json:"size,omitempty"`
}

// Assets lists what an application needs (its ASSET_DEPENDENCY extensions), or for an
// asset module the asset it carries.
func (m *Module) Assets() []Asset {
	if m.Function == platform.FuncAsset {
		if a, ok := m.Asset(); ok {
			return []Asset{a}
		}
		return nil
	}
	var out []Asset
	for _, d := range m.AssetDependencies() {
		out = append(out, Asset{Name: d.Name, Hash: d.Hash})
	}
	return out
}

// Asset describes an asset module (function 9): its NAME, the HASH extension (the
// SHA-256 of the raw asset) and the raw size; false for anything else or an asset module
// without both extensions (Device OS's AssetReader refuses those).
func (m *Module) Asset() (Asset, bool) {
	if m.Function != platform.FuncAsset {
		return Asset{}, false
	}
	name, ok := m.Name()
	if !ok {
		return Asset{}, false
	}
	var hash string
	for _, e := range m.Extensions() {
		if e.Type == ExtHash && len(e.Payload) >= 2 && int(e.Payload[1]) <= len(e.Payload)-2 {
			hash = hex.EncodeToString(e.Payload[2 : 2+int(e.Payload[1])])
		}
	}
	if hash == "" {
		return Asset{}, false
	}
	a := Asset{Name: name, Hash: hash}
	if raw, err := m.AssetContent(); err == nil {
		a.Size = len(raw)
	}
	return a, true
}

// AssetContent is an asset module's raw bytes: what follows the 24-byte prefix up to the
// suffix, inflated when the module is compressed.
func (m *Module) AssetContent() ([]byte, error) {
	if m.Compressed() {
		return m.Decompress()
	}
	end := len(m.Data) - CRCSize - int(m.SuffixSize)
	start := m.HeaderOffset + m.PrefixLen
	if end < start || m.SuffixSize == 0xFFFF {
		return nil, newErr(ErrSize, "the asset module's suffix does not fit it")
	}
	return m.Data[start:end], nil
}

// BuildAsset wraps an asset file as the module Device OS takes it (particle-cli's bundles
// hold the raw files; binary-version-reader createAssetModule wraps them): function 9 for
// no particular platform, DROP_MODULE_INFO, the raw bytes, and a suffix with the HASH
// (SHA-256 of the raw bytes), NAME and PRODUCT_DATA extensions. Left uncompressed, which
// Device OS accepts as well.
func BuildAsset(name string, data []byte) ([]byte, error) {
	sum := sha256.Sum256(data)
	spec := Spec{
		Function:         platform.FuncAsset,
		Flags:            FlagDropModuleInfo,
		Suffix:           SuffixProductExtension,
		SuffixExtensions: []Extension{HashExtension(sum[:]), NameExtension(name)},
		Fill:             func(body []byte) { copy(body[PrefixSize:], data) },
	}
	head, err := spec.suffixHead()
	if err != nil {
		return nil, err
	}
	spec.Size = PrefixSize + len(data) + len(head) + MinSuffixSize + CRCSize
	return Build(spec)
}
