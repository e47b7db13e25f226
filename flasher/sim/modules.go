package sim

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"sort"
	"strconv"
	"strings"

	"github.com/particle-flasher/particle-flasher/flasher/ctrl"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/sim/flash"
)

// Validity bits of module_validation_flags_t, as Device OS fills them for every module it
// lists: RANGE | DEPENDENCIES | PLATFORM are always checked, INTEGRITY because
// HAL_System_Info asks for it (fetch_module in ota_flash_hal.cpp).
const (
	validIntegrity    = ctrl.ValidIntegrity
	validDependencies = ctrl.ValidDependencies
	validRange        = ctrl.ValidRange
	validPlatform     = ctrl.ValidPlatform
	validFull         = ctrl.ValidDependenciesFull
	validChecked      = validIntegrity | validDependencies | validRange | validPlatform
)

// The nRF52 SoftDevice info structure Device OS reads the radio stack version from
// (nrf_sdm.h: SOFTDEVICE_INFO_STRUCT_ADDRESS = 0x3000, magic at +4, size at +8, FWID at
// +0xC; SD_FWID_GET(MBR_SIZE)).
const (
	sdInfoAddr  = 0x3000
	sdMagic     = 0x51B1E5DB
	sdMagicAddr = sdInfoAddr + 4
	sdSizeAddr  = sdInfoAddr + 8
	sdFWIDAddr  = sdInfoAddr + 0xC
)

// bootFamily holds the few boot-time facts that differ between Device OS platform families
// and are not in the platform table because only the simulator needs them.
type bootFamily struct {
	// validateSystemIndex is the system part HAL_Core_Validate_Modules(1) checks after the
	// bootloader (core_hal.c: Gen3 and RTL872x index 1, STM32F2 "i = 2": the part that
	// depends on the bootloader).
	validateSystemIndex uint8
	// skipValidate: the Electron's system part 2 loader sets bootloader_validated = true
	// ("Electron's firmware still contains an embedded bootloader image").
	skipValidate bool
}

func familyOf(p *platform.Platform) bootFamily {
	switch {
	case p.Name == "electron":
		return bootFamily{validateSystemIndex: 3, skipValidate: true}
	case p.MCU == "stm32f2xx":
		return bootFamily{validateSystemIndex: 2}
	case p.MCU == "nrf52840":
		return bootFamily{validateSystemIndex: 1}
	}
	return bootFamily{validateSystemIndex: 1}
}

// slotModule is what the device finds in one slot: Device OS's locate_module (the header,
// trusted as is) plus the checks fetch_module makes.
type slotModule struct {
	slot  platform.Slot
	store string // ctrl.StoreMain or ctrl.StoreFactory
	found bool   // a module header for this slot is there

	start, end uint32
	version    uint16
	platformID uint16
	flags      module.Flags
	deps       [2]module.Dependency
	sha        []byte

	crcOK, rangeOK, platformOK bool
	// security is the SECURITY_MODE suffix extension's mode (1 = protected) of a
	// bootloader: what Device OS's security_mode_init reads to know it is protected.
	security uint8
	// assets are a user part's ASSET_DEPENDENCY extensions (AssetManager::
	// requiredAssetsForModule).
	assets []assetRef
}

// assetRef is an asset by name and SHA-256 (hex).
type assetRef struct{ name, hash string }

func (s *slotModule) size() uint32 {
	if !s.found {
		return 0
	}
	return s.end - s.start + module.CRCSize
}

// scan is a snapshot of what the device's flash holds, built at boot and for every module
// listing, so that all checks see the same picture.
type scan struct {
	p      *platform.Platform
	fam    bootFamily
	sys    uint16 // system module version Device OS runs (highest system part found)
	slots  []*slotModule
	radio  *radioStack
	ncp    *ncpState
	bySlot map[string]*slotModule
}

// radioStack is the SoftDevice as Device OS sees it: only its info struct.
type radioStack struct {
	slot  platform.Slot
	magic bool
	fwid  uint16 // SD_FWID_GET: 0xFFFF on erased flash
	size  uint32
}

// ncpState is the network coprocessor's firmware: another MCU, outside the flash model.
type ncpState struct {
	version uint16
	image   []byte
}

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

// readSlot reads the module a slot holds, the way Device OS's FLASH_ModuleInfo and
// fetch_module do: the prefix at the slot's header offset, then the CRC over
// [start, end) against the big-endian word at end.
func readSlot(r *flash.Region, s platform.Slot, pid uint16, store string, at uint32) *slotModule {
	sm := &slotModule{slot: s, store: store}
	if r == nil {
		return sm
	}
	start := at
	if s.EndFixed && store == ctrl.StoreMain {
		st, ok := endFixedStart(r, s)
		if !ok {
			return sm
		}
		start = st
	}
	hdr := r.Snapshot(start+s.HeaderOffset, module.PrefixSize)
	if hdr == nil || allFF(hdr) {
		return sm
	}
	sm.start, sm.end = le32(hdr[0:]), le32(hdr[4:])
	sm.flags = module.Flags(hdr[9])
	sm.version = binary.LittleEndian.Uint16(hdr[10:])
	sm.platformID = binary.LittleEndian.Uint16(hdr[12:])
	fn, idx := platform.Function(hdr[14]), hdr[15]
	sm.deps[0] = depOf(hdr[16:20])
	sm.deps[1] = depOf(hdr[20:24])
	// A factory image carries its main-slot addresses; it is read where it is stored.
	want := start
	if store == ctrl.StoreFactory {
		want = s.StartFor(sm.end - sm.start + module.CRCSize)
	}
	if fn != s.Function || idx != s.Index || sm.end <= sm.start || sm.start != want {
		return sm // not this slot's module: Device OS finds nothing it can use
	}
	sm.found = true
	size := sm.end - sm.start + module.CRCSize
	sm.rangeOK = sm.end >= s.Start && sm.end <= s.End()
	sm.platformOK = sm.platformID == pid
	data := r.Snapshot(start, size)
	if data == nil {
		sm.rangeOK = false
		return sm
	}
	sm.crcOK = crc32.ChecksumIEEE(data[:size-4]) == binary.BigEndian.Uint32(data[size-4:])
	if size >= 38 {
		sm.sha = bytes.Clone(data[size-38 : size-6])
	}
	if s.Function == platform.FuncBootloader && s.Index == 0 {
		if ext := suffixExtension(data, module.ExtSecurityMode); len(ext) > 0 {
			sm.security = ext[0]
		}
	}
	if s.Function == platform.FuncUser {
		sm.assets = assetDependencies(data)
	}
	return sm
}

// assetDependencies reads every ASSET_DEPENDENCY extension of a module's suffix: hash type,
// hash length, hash, then the name to the end of the record (module_info.h
// module_info_asset_dependency_ext_t).
func assetDependencies(data []byte) []assetRef {
	n := len(data) - module.CRCSize
	if n < module.MinSuffixSize {
		return nil
	}
	ss := int(binary.LittleEndian.Uint16(data[n-2:]))
	if ss < module.MinSuffixSize || ss > n {
		return nil
	}
	var out []assetRef
	b := data[n-ss : n]
	for pos := 0; pos+4 <= len(b); {
		t := binary.LittleEndian.Uint16(b[pos:])
		l := int(binary.LittleEndian.Uint16(b[pos+2:]))
		if l < 4 || pos+l > len(b) || t == uint16(module.ExtEnd) {
			break
		}
		if p := b[pos+4 : pos+l]; t == uint16(module.ExtAssetDependency) && len(p) >= 2 && 2+int(p[1]) <= len(p) {
			out = append(out, assetRef{hash: hex.EncodeToString(p[2 : 2+int(p[1])]), name: string(p[2+int(p[1]):])})
		}
		pos += l
	}
	return out
}

// suffixExtension finds an extension among a module's suffix extensions (Device OS's
// security_mode_find_module_extension walks them from module_end - suffix size), and
// returns its payload; nil when it has none.
func suffixExtension(data []byte, typ module.ExtensionType) []byte {
	if len(data) < module.MinSuffixSize+module.CRCSize {
		return nil
	}
	n := len(data) - module.CRCSize
	ss := int(binary.LittleEndian.Uint16(data[n-2:]))
	if ss < module.MinSuffixSize || ss > n {
		return nil
	}
	return findExtension(data[n-ss:n], typ)
}

// findExtension walks TLV extensions (type, length including the 4-byte head) until END
// or one that does not fit.
func findExtension(b []byte, typ module.ExtensionType) []byte {
	for pos := 0; pos+4 <= len(b); {
		t := binary.LittleEndian.Uint16(b[pos:])
		n := int(binary.LittleEndian.Uint16(b[pos+2:]))
		if n < 4 || pos+n > len(b) {
			return nil
		}
		if t == uint16(typ) {
			return b[pos+4 : pos+n]
		}
		if t == uint16(module.ExtEnd) {
			return nil
		}
		pos += n
	}
	return nil
}

// endFixedStart finds an RTL872x user part, which ends at the slot's fixed end: the
// suffix's DYNAMIC_LOCATION extension names its start.
func endFixedStart(r *flash.Region, s platform.Slot) (uint32, bool) {
	end := s.End()
	tail := r.Snapshot(end-6, 6)
	if tail == nil {
		return 0, false
	}
	ss := uint32(binary.LittleEndian.Uint16(tail))
	if ss < module.MinSuffixSize || ss > 1024 {
		return 0, false
	}
	ext := findExtension(r.Snapshot(end-module.CRCSize-ss, ss), module.ExtDynamicLocation)
	if len(ext) < 4 {
		return 0, false
	}
	return le32(ext), true
}

func depOf(b []byte) module.Dependency {
	return module.Dependency{Function: platform.Function(b[0]), Index: b[1], Version: binary.LittleEndian.Uint16(b[2:])}
}

func allFF(b []byte) bool {
	for _, c := range b {
		if c != 0xFF {
			return false
		}
	}
	return true
}

// scanLocked builds the snapshot of the device's modules. d.mu must be held.
func (d *Device) scanLocked() *scan {
	p := d.p
	s := &scan{p: p, fam: familyOf(p), ncp: d.ncp, bySlot: map[string]*slotModule{}}
	// First the system parts, whose version decides the layout of the rest.
	type key struct {
		fn  platform.Function
		idx uint8
	}
	groups := map[key][]platform.Slot{}
	var order []key
	for _, sl := range p.Slots {
		k := key{sl.Function, sl.Index}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], sl)
	}
	// pick finds a slot's module where it may sit. For a slot that moved (Gen3
	// system-part1: 0x28000 since 6.1.2, 0x30000 before) the 6.1.2+ bootloader checks the
	// new place and falls back to the old one when the header or CRC there is bad
	// (bootloader/src/nRF52840/dfu_usb.c is_application_valid @v6.2.0): an intact module is
	// found before a damaged one, in the table's order.
	pick := func(k key) *slotModule {
		var first, found *slotModule
		for _, sl := range groups[k] {
			if sl.Storage != platform.StorageInternal {
				continue
			}
			sm := readSlot(d.internal, sl, p.ID, ctrl.StoreMain, sl.Start)
			if sm.found && sl.AcceptsVersion(sm.version) {
				if sm.crcOK {
					return sm
				}
				if found == nil {
					found = sm
				}
			}
			if first == nil || (s.sys != 0 && sl.AcceptsVersion(s.sys)) {
				first = sm
			}
		}
		if found != nil {
			return found
		}
		return first
	}
	for _, k := range order {
		if k.fn == platform.FuncSystem {
			if sm := pick(k); sm != nil && sm.found && sm.version > s.sys {
				s.sys = sm.version
			}
		}
	}
	for _, k := range order {
		switch k.fn {
		case platform.FuncMono, platform.FuncRadio, platform.FuncNCP:
			continue // listed separately (mono only when modular firmware is absent)
		}
		if !s.knows(groups[k][0]) {
			continue // a slot this Device OS does not know (the 256 KB user part before 3.1.0)
		}
		sm := pick(k)
		if sm == nil {
			continue
		}
		if k.fn == platform.FuncUser && !sm.found && s.userSlots() > 1 {
			continue // HAL_System_Info drops an erased user slot when there are two
		}
		s.slots = append(s.slots, sm)
		s.bySlot[slotKey(sm.slot.Function, sm.slot.Index)] = sm
	}
	// Device OS lists system parts by index (module_bounds order), whatever the release
	// file names (the Electron's "system-part1" is index 3).
	var pos []int
	var parts []*slotModule
	for i, sm := range s.slots {
		if sm.slot.Function == platform.FuncSystem {
			pos = append(pos, i)
			parts = append(parts, sm)
		}
	}
	sort.SliceStable(parts, func(i, j int) bool { return parts[i].slot.Index < parts[j].slot.Index })
	for i, at := range pos {
		s.slots[at] = parts[i]
	}
	if f := p.FactoryReset; f != nil {
		if sl, ok := s.userSlot(); ok {
			if r := d.mems[f.Alt]; r != nil {
				fm := readSlot(r, sl.slot, p.ID, ctrl.StoreFactory, f.Address)
				if fm.found && fm.crcOK {
					fm.slot.MaxSize = f.Size
					fm.rangeOK = true // the factory slot is sized for the user slot it restores
					s.slots = append(s.slots, fm)
				}
			}
		}
	}
	if rs, ok := p.Slot(platform.FuncRadio, 0); ok && p.HasRadioStack {
		s.radio = readRadio(d.internal, rs)
	}
	return s
}

func slotKey(fn platform.Function, idx uint8) string {
	return strconv.Itoa(int(fn)) + "/" + strconv.Itoa(int(idx))
}

// readRadio reads the SoftDevice info struct.
func readRadio(r *flash.Region, sl platform.Slot) *radioStack {
	rs := &radioStack{slot: sl, fwid: 0xFFFF}
	b := r.Snapshot(sdMagicAddr, 12)
	if b == nil {
		return rs
	}
	rs.magic = le32(b[0:]) == sdMagic
	rs.size = le32(b[4:])
	rs.fwid = uint16(le32(b[8:]))
	return rs
}

// main returns the main-store module of a function and index in the current layout.
func (s *scan) main(fn platform.Function, idx uint8) *slotModule {
	return s.bySlot[slotKey(fn, idx)]
}

// knows reports whether the running Device OS knows a slot at all (Slot.KnownSince: the
// 256 KB Gen3 user part came with 3.1.0-rc.1, the Tracker's NCP with 3.0.0).
func (s *scan) knows(sl platform.Slot) bool {
	return sl.KnownSince == 0 || s.sys == 0 || s.sys >= sl.KnownSince
}

// userSlots counts the user slots this Device OS knows.
func (s *scan) userSlots() int {
	n := 0
	seen := map[uint8]bool{}
	for _, sl := range s.p.Slots {
		if sl.Function == platform.FuncUser && !seen[sl.Index] && s.knows(sl) {
			seen[sl.Index] = true
			n++
		}
	}
	return n
}

// userCandidates are the user slots Device OS tries, in its order: the 128 KB Gen3 slot
// (index 1, 0xD4000) before the 256 KB one (index 2, 0xB4000), "as it takes precedence"
// (hal/src/nRF52840/user_hal.cpp hal_user_module_get_descriptor @v3.1.0..v6.2.0).
func (s *scan) userCandidates() []*slotModule {
	var users []*slotModule
	for _, sm := range s.slots {
		if sm.store == ctrl.StoreMain && sm.slot.Function == platform.FuncUser {
			users = append(users, sm)
		}
	}
	sort.SliceStable(users, func(i, j int) bool { return users[i].slot.Index < users[j].slot.Index })
	return users
}

// userRuns is validUserModuleInfoAtIndex: the image's own header starts at the slot (the
// scan only finds it there), it is for this platform, its CRC holds and its dependencies
// are met (validate_module_dependencies).
func (s *scan) userRuns(u *slotModule) bool {
	return u.found && u.platformOK && u.crcOK && s.depsOK(platform.FuncUser, u.deps, false)
}

// userSlot is the user part Device OS runs: the first candidate that is valid; without
// one, the first candidate (which then explains safe mode).
func (s *scan) userSlot() (*slotModule, bool) {
	users := s.userCandidates()
	if len(users) == 0 {
		return nil, false
	}
	for _, u := range users {
		if s.userRuns(u) {
			return u, true
		}
	}
	for _, u := range users {
		if u.found {
			return u, true
		}
	}
	return users[0], true
}

// installed is Device OS's locate_module for a dependency: the version of the module
// with that function and index, trusted from its header (no CRC check). The radio stack's
// version is the FWID as read from flash, 0xFFFF when erased.
func (s *scan) installed(fn platform.Function, idx uint8) (uint16, bool) {
	switch fn {
	case platform.FuncRadio:
		if s.radio == nil {
			return 0, false
		}
		return s.radio.fwid, true
	case platform.FuncNCP:
		if s.ncp == nil {
			return 0, false
		}
		return s.ncp.version, true
	}
	sm := s.main(fn, idx)
	if sm == nil || !sm.found {
		return 0, false
	}
	return sm.version, true
}

// depsOK is validate_module_dependencies (ota_flash_hal.cpp, HEAD): the first dependency,
// then the second, each met by an installed module of the same function and index with
// at least the required version. With userOptional (OTA images) a user part's
// dependencies and a bootloader second dependency are not checked; a module whose first
// dependency is empty is not checked further, as the source does.
func (s *scan) depsOK(fn platform.Function, deps [2]module.Dependency, userOptional bool) bool {
	if deps[0].Function == platform.FuncNone || (userOptional && fn == platform.FuncUser) {
		return true
	}
	if v, ok := s.installed(deps[0].Function, deps[0].Index); !ok || v < deps[0].Version {
		return false
	}
	d2 := deps[1]
	if d2.Function == platform.FuncNone || (d2.Function == platform.FuncBootloader && userOptional) {
		return true
	}
	v, ok := s.installed(d2.Function, d2.Index)
	return ok && v >= d2.Version
}

// fullDepsOK is validate_module_dependencies_full: replacing a system part must leave
// every other installed system part's dependencies on it met.
func (s *scan) fullDepsOK(fn platform.Function, idx uint8, version uint16, start uint32) bool {
	if fn != platform.FuncSystem {
		return true
	}
	for _, sm := range s.slots {
		if !sm.found || sm.store != ctrl.StoreMain || sm.slot.Function != platform.FuncSystem {
			continue
		}
		if sm.start == start && sm.slot.Index == idx {
			continue // the module being replaced
		}
		for _, d := range sm.deps {
			if d.Function == fn && d.Index == idx && version < d.Version {
				return false
			}
		}
	}
	return true
}

// passed computes the validity bits fetch_module reports for an installed module.
func (s *scan) passed(sm *slotModule) uint32 {
	if !sm.found {
		return 0
	}
	var v uint32
	if sm.rangeOK {
		v |= validRange
	}
	if sm.platformOK {
		v |= validPlatform
	}
	if s.depsOK(sm.slot.Function, sm.deps, false) {
		v |= validDependencies
	}
	if sm.crcOK {
		v |= validIntegrity
	}
	return v
}

func (s *scan) valid(sm *slotModule) bool {
	return sm != nil && sm.found && s.passed(sm) == validChecked
}

// Module is one entry of the device's module table, as Device OS reports it (control
// request 90, the `s` command), computed from what the flash holds now.
type Module struct {
	// Name is the slot's release-asset name ("system-part1", "softdevice", ...).
	Name     string
	Function platform.Function
	Index    uint8
	// Store is ctrl.StoreMain or ctrl.StoreFactory.
	Store string
	// Present is false for an empty (or unreadable) slot, which Device OS still lists in
	// the `s` JSON with no function, index or version.
	Present bool
	Version uint16
	Start   uint32
	// Size is the module's length including its CRC.
	Size    uint32
	MaxSize uint32
	// Checked and Passed are the ctrl.Valid* bits: checks run and checks passed.
	Checked, Passed uint32
	Dependencies    []module.Dependency
	SHA256          []byte
	// Assets are a user part's asset dependencies (GetModuleInfoReply from 5.6.0 lists
	// them for a user part that passed its integrity check).
	Assets []ctrl.Asset
}

// Valid reports a present module that passed every check Device OS ran.
func (m Module) Valid() bool { return m.Present && m.Checked == m.Passed }

// table lists the modules in Device OS's order: main slots (bootloader, system parts,
// user parts), a valid factory image, the radio stack, the NCP.
func (s *scan) table() []Module {
	var out []Module
	// "128KB application will take precedence and the newer 256KB application will not be
	// reported" (HAL_System_Info, hal/src/nRF52840/ota_flash_hal.cpp @v3.1.0..v6.2.0).
	var shadowed *slotModule
	if users := s.userCandidates(); len(users) > 1 && s.userRuns(users[0]) {
		shadowed = users[1]
	}
	for _, sm := range s.slots {
		if sm == shadowed {
			continue
		}
		m := Module{Name: sm.slot.Name, Function: sm.slot.Function, Index: sm.slot.Index, Store: sm.store,
			MaxSize: sm.slot.MaxSize, Checked: validChecked}
		if sm.found {
			m.Present, m.Version, m.Start, m.Size = true, sm.version, sm.start, sm.size()
			m.Passed = s.passed(sm)
			m.Dependencies = nonEmpty(sm.deps)
			m.SHA256 = sm.sha
			if sm.crcOK {
				for _, a := range sm.assets {
					m.Assets = append(m.Assets, ctrl.Asset{Name: a.name, Hash: a.hash})
				}
			}
		}
		out = append(out, m)
	}
	if rs := s.radio; rs != nil && rs.magic {
		out = append(out, Module{Name: rs.slot.Name, Function: platform.FuncRadio, Store: ctrl.StoreMain,
			Present: true, Version: rs.fwid, Start: rs.slot.Start, Size: rs.size - rs.slot.Start,
			MaxSize: rs.slot.MaxSize, Checked: validChecked, Passed: validChecked})
	}
	if sl, ok := s.p.Slot(platform.FuncNCP, 0); ok && s.ncp != nil && s.knows(sl) {
		n := s.ncp
		out = append(out, Module{Name: sl.Name, Function: platform.FuncNCP, Store: ctrl.StoreMain, Present: true,
			Version: n.version, Size: uint32(len(n.image)), MaxSize: sl.MaxSize, Checked: validChecked, Passed: validChecked})
	}
	return out
}

func nonEmpty(deps [2]module.Dependency) []module.Dependency {
	out := []module.Dependency{}
	for _, d := range deps {
		if d.Function != platform.FuncNone {
			out = append(out, d)
		}
	}
	return out
}

// funcChar is module_function_string's one-letter code in the `s` JSON.
func funcChar(f platform.Function) string {
	switch f {
	case platform.FuncNone:
		return "n"
	case platform.FuncResource:
		return "r"
	case platform.FuncBootloader:
		return "b"
	case platform.FuncMono:
		return "m"
	case platform.FuncSystem:
		return "s"
	case platform.FuncUser:
		return "u"
	case platform.FuncNCP:
		return "c"
	case platform.FuncRadio:
		return "a"
	}
	return "_"
}

func storeChar(store string) string {
	switch store {
	case ctrl.StoreFactory:
		return "f"
	case ctrl.StoreBackup:
		return "b"
	case ctrl.StoreScratchpad:
		return "t"
	}
	return "m"
}

// moduleJSON renders the `s` reply exactly as system_info_to_json does: "p", then "m"
// with one object per slot; an empty slot keeps only s, l, vc, vv and an empty d.
func moduleJSON(pid uint16, mods []Module) string {
	var b strings.Builder
	b.WriteString(`{"p":` + strconv.Itoa(int(pid)) + `,"m":[`)
	for i, m := range mods {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"s":` + strconv.FormatUint(uint64(m.MaxSize), 10))
		b.WriteString(`,"l":"` + storeChar(m.Store) + `"`)
		b.WriteString(`,"vc":` + strconv.FormatUint(uint64(m.Checked), 10))
		b.WriteString(`,"vv":` + strconv.FormatUint(uint64(m.Passed), 10))
		if m.Present {
			if m.Function == platform.FuncUser && len(m.SHA256) == 32 {
				b.WriteString(`,"u":"` + strings.ToUpper(hex.EncodeToString(m.SHA256)) + `"`)
			}
			b.WriteString(`,"f":"` + funcChar(m.Function) + `"`)
			b.WriteString(`,"n":"` + strconv.Itoa(int(m.Index)) + `"`)
			b.WriteString(`,"v":` + strconv.Itoa(int(m.Version)))
		}
		b.WriteString(`,"d":[`)
		if m.Present {
			for j, d := range m.Dependencies {
				if j > 0 {
					b.WriteByte(',')
				}
				b.WriteString(`{"f":"` + funcChar(d.Function) + `","n":"` + strconv.Itoa(int(d.Index)) +
					`","v":` + strconv.Itoa(int(d.Version)) + `}`)
			}
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`]}`)
	return b.String()
}

// ctrlModules converts the table for GetModuleInfoReply; Device OS leaves out slots with
// nothing in them.
func ctrlModules(mods []Module) []ctrl.ModuleInfo {
	var out []ctrl.ModuleInfo
	for _, m := range mods {
		if !m.Present {
			continue
		}
		mi := ctrl.ModuleInfo{Function: uint8(m.Function), Index: m.Index, Version: uint32(m.Version),
			Store: m.Store, MaxSize: m.MaxSize, Size: m.Size, Checked: m.Checked, Passed: m.Passed}
		if m.Function != platform.FuncRadio && m.Function != platform.FuncNCP && m.SHA256 != nil {
			mi.Hash = bytes.Clone(m.SHA256)
		}
		for _, d := range m.Dependencies {
			mi.Dependencies = append(mi.Dependencies, ctrl.Dependency{Function: uint8(d.Function), Index: d.Index, Version: uint32(d.Version)})
		}
		mi.Assets = m.Assets
		out = append(out, mi)
	}
	return out
}
