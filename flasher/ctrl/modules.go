package ctrl

import (
	"fmt"
	"math"
)

// ModuleInfo is one firmware module as the running Device OS reports it in
// GetModuleInfoReply (type 90). Whichever reply form the device used, the
// fields are normalised to the newer particle.cloud.FirmwareModule meaning,
// so the planner compares like with like across Device OS versions.
type ModuleInfo struct {
	// Function uses module_function numbering (2 bootloader, 3 mono,
	// 4 system part, 5 user part, 7 NCP, 8 radio stack, ...), the same as the
	// module header and flasher/platform.Function.
	Function uint8
	Index    uint8
	Version  uint32
	// Store is "main", "factory", "backup" or "scratchpad"; the deprecated
	// reply form only lists main-store modules.
	Store string
	// MaxSize is the slot size; 0 when the device did not say (deprecated form).
	MaxSize uint32
	// Size is the module's length including its 4-byte CRC, as the new reply
	// form reports it. The deprecated form reports the length without the CRC;
	// the decoder adds 4 so both forms agree.
	Size uint32
	// Checked and Passed are validity bits (Valid* constants): which checks
	// the device ran and which passed. A check that was run and did not pass
	// is a problem the flasher must fix.
	Checked, Passed uint32
	// Hash is the module's SHA-256 when the device sent one (new form only).
	Hash         []byte
	Dependencies []Dependency
	// Assets are the assets a user part needs (new form, Device OS 5.6.0 and later:
	// FirmwareModule.asset_dependencies, name and hash only).
	Assets []Asset
}

// Dependency is a module a ModuleInfo needs, at least at Version.
type Dependency struct {
	Function uint8
	Index    uint8
	Version  uint32
}

// Failed returns the checks that were run and did not pass.
func (m ModuleInfo) Failed() uint32 { return m.Checked &^ m.Passed }

// Validity bits (module_validation_flags_t; particle.cloud.FirmwareModuleValidityFlag).
const (
	ValidIntegrity        uint32 = 0x02
	ValidDependencies     uint32 = 0x04
	ValidRange            uint32 = 0x08
	ValidPlatform         uint32 = 0x10
	ValidProduct          uint32 = 0x20
	ValidDependenciesFull uint32 = 0x40
)

// Module stores (particle.cloud.FirmwareModuleStore).
const (
	StoreMain       = "main"
	StoreFactory    = "factory"
	StoreBackup     = "backup"
	StoreScratchpad = "scratchpad"
)

var storeNames = [...]string{StoreMain, StoreFactory, StoreBackup, StoreScratchpad}

func storeName(v uint32) string {
	if int(v) < len(storeNames) {
		return storeNames[v]
	}
	return fmt.Sprintf("store-%d", v)
}

func storeNumber(s string) uint32 {
	for i, n := range storeNames {
		if n == s {
			return uint32(i)
		}
	}
	var v uint32
	if _, err := fmt.Sscanf(s, "store-%d", &v); err == nil {
		return v
	}
	return 0 // "" and unknown names mean the main store
}

// The deprecated reply form numbers module types with
// particle.ctrl.FirmwareModuleType, not module_function.
const (
	legacyBootloader = 1
	legacySystemPart = 2
	legacyUserPart   = 3
	legacyMono       = 4
	legacyNCP        = 5
	legacyRadioStack = 6
)

// legacyToFunction maps the control enum to module_function; 0 (none) for
// values Device OS never sends.
func legacyToFunction(v uint32) uint8 {
	switch v {
	case legacyBootloader:
		return 2
	case legacySystemPart:
		return 4
	case legacyUserPart:
		return 5
	case legacyMono:
		return 3
	case legacyNCP:
		return 7
	case legacyRadioStack:
		return 8
	}
	return 0
}

// functionToLegacy is the inverse; ok=false for functions the deprecated form
// cannot express (Device OS leaves those modules out).
func functionToLegacy(f uint8) (uint64, bool) {
	switch f {
	case 2:
		return legacyBootloader, true
	case 4:
		return legacySystemPart, true
	case 5:
		return legacyUserPart, true
	case 3:
		return legacyMono, true
	case 7:
		return legacyNCP, true
	case 8:
		return legacyRadioStack, true
	}
	return 0, false
}

// Failure bits of the deprecated form's `validity` field: it records failed
// checks, where the new form records checked and passed ones.
const (
	legacyIntegrityFailed  = 0x01
	legacyDependencyFailed = 0x02
)

// EncodeModuleInfoReply builds GetModuleInfoReply. With deprecatedForm it
// fills `repeated Module modules_deprecated = 1` the way Device OS before
// 5.6 did (main-store modules only, failure bits, size without CRC, control
// enum types); otherwise `repeated particle.cloud.FirmwareModule modules = 2`.
func EncodeModuleInfoReply(mods []ModuleInfo, deprecatedForm bool) []byte {
	var b []byte
	for _, m := range mods {
		if deprecatedForm {
			sub, ok := encodeLegacyModule(m)
			if !ok {
				continue
			}
			b = appendBytes(b, 1, sub, true)
			continue
		}
		b = appendBytes(b, 2, encodeFirmwareModule(m), true)
	}
	return b
}

func encodeFirmwareModule(m ModuleInfo) []byte {
	var b []byte
	b = appendUint(b, 1, uint64(m.Function))
	b = appendUint(b, 2, uint64(m.Index))
	b = appendUint(b, 3, uint64(m.Version))
	b = appendUint(b, 4, uint64(storeNumber(m.Store)))
	b = appendUint(b, 5, uint64(m.MaxSize))
	b = appendFixed32(b, 6, m.Checked)
	b = appendFixed32(b, 7, m.Passed)
	if m.Hash != nil { // `optional bytes hash`: presence is explicit
		b = appendBytes(b, 8, m.Hash, true)
	}
	for _, d := range m.Dependencies {
		var db []byte
		db = appendUint(db, 1, uint64(d.Function))
		db = appendUint(db, 2, uint64(d.Index))
		db = appendUint(db, 3, uint64(d.Version))
		b = appendBytes(b, 9, db, true)
	}
	for _, a := range m.Assets {
		b = appendBytes(b, 10, encodeAsset(Asset{Name: a.Name, Hash: a.Hash}), true)
	}
	b = appendUint(b, 11, uint64(m.Size))
	return b
}

func encodeLegacyModule(m ModuleInfo) ([]byte, bool) {
	typ, ok := functionToLegacy(m.Function)
	if !ok || (m.Store != "" && m.Store != StoreMain) {
		return nil, false
	}
	size := m.Size
	if size >= 4 {
		size -= 4
	}
	var validity uint64
	if m.Passed&ValidIntegrity == 0 {
		validity |= legacyIntegrityFailed
	}
	if m.Passed&ValidDependencies == 0 {
		validity |= legacyDependencyFailed
	}
	var b []byte
	b = appendUint(b, 1, typ)
	b = appendUint(b, 2, uint64(m.Index))
	b = appendUint(b, 3, uint64(m.Version))
	b = appendUint(b, 4, uint64(size))
	b = appendUint(b, 5, validity)
	for _, d := range m.Dependencies {
		dt, ok := functionToLegacy(d.Function)
		if !ok {
			continue
		}
		var db []byte
		db = appendUint(db, 1, dt)
		db = appendUint(db, 2, uint64(d.Index))
		db = appendUint(db, 3, uint64(d.Version))
		b = appendBytes(b, 6, db, true)
	}
	return b, true
}

// DecodeModuleInfoReply reads GetModuleInfoReply in either form. When the
// device filled `modules` (field 2) those win, since they carry store, slot
// size, hash and the full validity picture; otherwise the deprecated entries
// are converted (see ModuleInfo for the normalisation).
func DecodeModuleInfoReply(b []byte) ([]ModuleInfo, error) {
	const msg = "GetModuleInfoReply"
	var legacy, mods []ModuleInfo
	err := parseFields(msg, b, func(f field) error {
		switch f.num {
		case 1:
			sub, err := f.bytes(msg)
			if err != nil {
				return err
			}
			m, err := decodeLegacyModule(sub)
			if err != nil {
				return err
			}
			legacy = append(legacy, m)
		case 2:
			sub, err := f.bytes(msg)
			if err != nil {
				return err
			}
			m, err := decodeFirmwareModule(sub)
			if err != nil {
				return err
			}
			mods = append(mods, m)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(mods) > 0 {
		return mods, nil
	}
	return legacy, nil
}

func small(msg string, what string, v uint32) (uint8, error) {
	if v > 0xFF {
		return 0, fmt.Errorf("%w: %s: %s %d does not fit a module header byte", ErrProtocol, msg, what, v)
	}
	return uint8(v), nil
}

func decodeDependency(msg string, b []byte, legacy bool) (Dependency, error) {
	var d Dependency
	err := parseFields(msg, b, func(f field) error {
		if f.num < 1 || f.num > 3 {
			return nil
		}
		v, err := f.uint32(msg)
		if err != nil {
			return err
		}
		switch f.num {
		case 1:
			if legacy {
				d.Function = legacyToFunction(v)
			} else {
				d.Function, err = small(msg, "type", v)
			}
		case 2:
			d.Index, err = small(msg, "index", v)
		case 3:
			d.Version = v
		}
		return err
	})
	return d, err
}

func decodeFirmwareModule(b []byte) (ModuleInfo, error) {
	const msg = "FirmwareModule"
	m := ModuleInfo{Store: StoreMain}
	err := parseFields(msg, b, func(f field) error {
		var (
			v   uint32
			err error
		)
		switch f.num {
		case 1, 2, 3, 4, 5, 11:
			if v, err = f.uint32(msg); err != nil {
				return err
			}
		}
		switch f.num {
		case 1:
			m.Function, err = small(msg, "type", v)
		case 2:
			m.Index, err = small(msg, "index", v)
		case 3:
			m.Version = v
		case 4:
			m.Store = storeName(v)
		case 5:
			m.MaxSize = v
		case 6:
			m.Checked, err = f.fixed32(msg)
		case 7:
			m.Passed, err = f.fixed32(msg)
		case 8:
			var h []byte
			if h, err = f.bytes(msg); err == nil {
				m.Hash = append([]byte{}, h...)
			}
		case 9:
			var sub []byte
			if sub, err = f.bytes(msg); err != nil {
				return err
			}
			var d Dependency
			if d, err = decodeDependency("FirmwareModuleDependency", sub, false); err == nil {
				m.Dependencies = append(m.Dependencies, d)
			}
		case 10:
			var sub []byte
			if sub, err = f.bytes(msg); err != nil {
				return err
			}
			var a Asset
			if a, err = decodeAsset(sub); err == nil {
				m.Assets = append(m.Assets, a)
			}
		case 11:
			m.Size = v
		}
		return err
	})
	return m, err
}

func decodeLegacyModule(b []byte) (ModuleInfo, error) {
	const msg = "GetModuleInfoReply.Module"
	m := ModuleInfo{Store: StoreMain, Checked: ValidIntegrity | ValidDependencies}
	var validity uint32
	err := parseFields(msg, b, func(f field) error {
		if f.num == 6 {
			sub, err := f.bytes(msg)
			if err != nil {
				return err
			}
			d, err := decodeDependency("GetModuleInfoReply.Dependency", sub, true)
			if err == nil {
				m.Dependencies = append(m.Dependencies, d)
			}
			return err
		}
		if f.num < 1 || f.num > 5 {
			return nil
		}
		v, err := f.uint32(msg)
		if err != nil {
			return err
		}
		switch f.num {
		case 1:
			m.Function = legacyToFunction(v)
		case 2:
			m.Index, err = small(msg, "index", v)
		case 3:
			m.Version = v
		case 4:
			if v > 0 && v <= math.MaxUint32-4 {
				v += 4 // the deprecated form leaves out the CRC
			}
			m.Size = v
		case 5:
			validity = v
		}
		return err
	})
	m.Passed = m.Checked
	if validity&legacyIntegrityFailed != 0 {
		m.Passed &^= ValidIntegrity
	}
	if validity&legacyDependencyFailed != 0 {
		m.Passed &^= ValidDependencies
	}
	return m, err
}
