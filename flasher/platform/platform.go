// Package platform is the table of every Particle platform this tool can flash: IDs,
// USB IDs, DFU alternate settings and their memory maps, module slots and how each kind
// of module gets written.
//
// Platform facts live here as data (table.go) and nowhere else, so the planner, the DFU
// client and the simulator never branch on a platform ID; they ask this package. Every
// fact comes from shared/docs/particle-reference.md or, where the reference is silent or
// contradicts itself, from the Device OS source it cites (noted beside the value), and
// the tests cross-check the table against Particle's own device-constants.json, real
// release binaries and the Device Restore header dumps.
//
// The *Platform values handed out are shared: treat them and their slices as read-only.
package platform

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
)

// Where a slot's module lives.
const (
	StorageInternal = "internal" // the MCU's internal flash, alt 0
	StorageExternal = "external" // the external SPI/QSPI flash
	StorageNCP      = "ncp"      // another MCU (ESP32 NCP), reachable only through Device OS
)

// Kinds of memory a DFU alt setting exposes; device-constants.json calls the first and
// last "internalFlash" and "externalFlash".
const (
	MemInternal = "internal"
	MemDCT      = "dct"
	MemExternal = "external"
)

// Slot is a place a module of one function and index lives, with what the tool needs to
// check a .bin against it and to write it. A platform can list several slots with the same
// function and index when the location moved between Device OS versions (Gen3
// system-part1); SlotFor picks by module version.
type Slot struct {
	// Name is the module's name in release assets and Device Restore bundles
	// ("bootloader", "system-part1", "user-part", "softdevice", "ncp-firmware",
	// "prebootloader-mbr", "prebootloader-part1", "mono"). On the Electron the names do
	// not follow the indices (reference §6c.1): "system-part1" is index 3.
	Name     string
	Function Function
	Index    uint8
	// Start is module_start_address, the DFU write address. For an EndFixed slot it is the
	// lowest address a maximum-size module may start at; the real start depends on the size.
	Start   uint32
	MaxSize uint32
	// HeaderOffset is where the 24-byte module_info_t sits inside the .bin: 0, 0x184
	// (Gen2 fake vector table), 0x200 (Gen3), 0x20 (after the Realtek image header) or
	// 0x10C (Core). A parser that looks there first avoids guessing.
	HeaderOffset uint32
	// EndFixed marks the RTL872x user part, which grows downwards from a fixed end
	// (0x08600000): start = end - size (reference §1b, §6c.7).
	EndFixed bool
	// Storage is StorageInternal, StorageExternal or StorageNCP.
	Storage string
	// Methods lists the ways this slot can be written, preferred first. Empty means this
	// tool cannot write the slot at all (Core bootloader).
	Methods []Method
	// Encrypted marks a module Particle ships encrypted; particle-cli skips such modules
	// and so should a plan (DC firmwareModules[].encrypted, CLI filterModulesToFlash).
	Encrypted bool
	// MinModuleVersion and MaxModuleVersion bound the module versions this variant of the
	// slot is for (0 = unbounded), for slots that moved between Device OS versions.
	MinModuleVersion, MaxModuleVersion uint16
	// KnownSince is the first system module version whose Device OS knows this slot at all
	// (0 = every version): an application there is invisible to an older Device OS.
	KnownSince uint16
}

// End is the exclusive end of the slot's region: Start + MaxSize (for an EndFixed slot,
// the fixed end every module ends at).
func (s Slot) End() uint32 { return s.Start + s.MaxSize }

// StartFor is where a module of size bytes (file length, end - start + 4) starts in this
// slot: the fixed start, or End() - size for an EndFixed slot.
func (s Slot) StartFor(size uint32) uint32 {
	if s.EndFixed {
		return s.End() - size
	}
	return s.Start
}

// Has reports whether m is one of the slot's methods.
func (s Slot) Has(m Method) bool {
	for _, x := range s.Methods {
		if x == m {
			return true
		}
	}
	return false
}

// AcceptsVersion reports whether a module with this module_version belongs to this
// variant of the slot.
func (s Slot) AcceptsVersion(v uint16) bool {
	return (s.MinModuleVersion == 0 || v >= s.MinModuleVersion) &&
		(s.MaxModuleVersion == 0 || v <= s.MaxModuleVersion)
}

// Check verifies that a module whose header says [start, end) (end = module_end_address,
// where its CRC begins) belongs in this slot: the start address the slot expects and a
// total file size (end - start + 4) within MaxSize. Nothing should be written to a device
// that fails this.
func (s Slot) Check(start, end uint32) error {
	if end < start {
		return fmt.Errorf("%s: module end 0x%08x before start 0x%08x", s.Name, end, start)
	}
	size := uint64(end) - uint64(start) + 4
	if size > uint64(s.MaxSize) {
		return fmt.Errorf("%s: module is %d bytes, slot holds at most %d", s.Name, size, s.MaxSize)
	}
	if want := s.StartFor(uint32(size)); start != want {
		return fmt.Errorf("%s: module starts at 0x%08x, slot expects 0x%08x", s.Name, start, want)
	}
	return nil
}

// Alt is one DFU alternate setting of the platform's bootloader.
type Alt struct {
	Alt  uint8
	Name string
	// Layout is the exact iInterface string the current bootloader reports, spaces
	// included.
	Layout string
	// Memory is MemInternal, MemDCT or MemExternal.
	Memory string
	// Legacy lists other strings older bootloaders report for the same memory (e.g.
	// "@DCD Flash" before Device OS 4.2/5.3, or 1024*008Kg on 8 MB parts before 4.0),
	// so a device showing one of them is still recognised.
	Legacy []string
}

// Region is a range of flash reached through one DFU alt setting; Address is the DfuSe
// address (external flash on Gen3 is based at 0x80000000).
type Region struct {
	Alt     uint8
	Address uint32
	Size    uint32
}

// End is the exclusive end address of the region.
func (r Region) End() uint32 { return r.Address + r.Size }

// OTARegionVariant is the OTA region used by a range of Device OS versions, identified
// by the running system part's module version (0 = unbounded). Device OS, not the
// bootloader, applies a module left there with the DCT flag set, so its own layout is
// what counts.
type OTARegionVariant struct {
	Region
	MinSystemVersion, MaxSystemVersion uint16
}

// Platform is everything the tool knows about one kind of device.
type Platform struct {
	ID          uint16
	Name        string   // DC name, e.g. "boron"; also the release asset prefix
	DisplayName string   // DC displayName, e.g. "Boron", "Photon 2 / P2"
	Aliases     []string // DC aliases plus common names ("photon2", "e404x", ...)
	Gen         int      // DC generation, 1..4
	MCU         string   // DC baseMcu: "stm32f1xx", "stm32f2xx", "nrf52840", "rtl872x"

	VID, PID       uint16 // normal mode (and listening mode)
	DFUVID, DFUPID uint16 // DFU bootloader

	// Alts are the DFU alt settings in alt order. ProtectedAlts are the same memories as a
	// 6.x bootloader reports them in protected mode (every letter 'b': erase-only, and
	// writes refused); nil for platforms that never ran 6.x.
	Alts          []Alt
	ProtectedAlts []Alt
	// TransferSize is the bootloader's wTransferSize, the largest DNLOAD/UPLOAD block.
	TransferSize uint16

	Slots []Slot

	// OTARegion is where the OTA-region trick writes a pending module as particle-cli's
	// `update` did (its "otaRegion" segment). On Gen3 4 MB parts that address is only
	// right up to Device OS 5.4.x; prefer OTARegionFor(running system version).
	OTARegion Region
	// OTARegions is OTARegion per Device OS version range, oldest first.
	OTARegions []OTARegionVariant
	// OTAFlagOffset/OTAFlagValue: the DCT byte (alt 1) that tells Device OS to apply the
	// OTA region at boot. Zero on the Core, which has no DCT alt.
	OTAFlagOffset uint32
	OTAFlagValue  byte
	// SetupDone is the setup-done flag of Gen3 Device OS before 4.0 (nil where Device OS
	// never had one): without it Device OS enters listening mode (blinking dark blue) from
	// network_connect() instead of running the application.
	SetupDone *SetupDoneFlag

	// FormerUserPart is the first sector of the 128 KB Gen3 user slot at 0xD4000; CLI
	// erases it before writing a 256 KB user part because a valid image there wins at boot.
	FormerUserPart *Region
	// FactoryReset is where the factory (backup) user firmware lives.
	FactoryReset *Region

	// ControlOutNeedsData is DC's controlOutTransfersRequireDataStage: host-to-device
	// control transfers without payload must still send one byte.
	ControlOutNeedsData bool
	// Buttons says where a person finds MODE and RESET on this board (reference §7); where
	// they cannot be reached the app uses control requests instead of button recipes.
	Buttons Buttons
	// LED holds the board's LED facts that guidance needs beyond the common patterns.
	LED           LEDFacts
	HasNCP        bool // an ESP32 network coprocessor whose firmware is a module
	HasRadioStack bool // a Nordic SoftDevice module

	// SKUFloors are the minimum Device OS of some of the platform's SKUs (one platform ID
	// covers several modules); the SKU cannot be read over USB, so plans below a floor warn.
	SKUFloors []SKUFloor

	// FirstDeviceOS and LastDeviceOS bound the Device OS releases Particle published for
	// the platform ("" = unknown start / still supported). Nothing older than
	// FirstDeviceOS is offered or planned: the hardware did not exist for it.
	FirstDeviceOS, LastDeviceOS string
}

// Reach is where a board's MODE and RESET are.
type Reach int

const (
	// OnBoard: buttons on the board a person holds.
	OnBoard Reach = iota
	// CarrierPins: the module only brings MODE and RESET out as pins for its carrier board.
	CarrierPins
	// Enclosed: the product has no MODE button a person can reach.
	Enclosed
)

// Buttons are the facts about a board's buttons that instructions need.
type Buttons struct {
	Reach Reach
	// Mode is what the board prints on its MODE button ("SETUP" on the Photon); "" is MODE.
	Mode string
	// Note is one more sentence the board's instructions need (a bare P2 module's pins).
	Note string
	// Enclosed says why the buttons cannot be reached, for Reach Enclosed; "" gives the
	// generic sentence.
	Enclosed string
}

// LEDFacts are a board's LED facts beyond the patterns every Particle device shares
// (reference §7).
type LEDFacts struct {
	// FactoryRestoreGreen: factory restore blinks green fast (Gen2), not yellow.
	FactoryRestoreGreen bool
	// D7WhenDark: with the RGB LED dark, a dim blue D7 LED means no bootloader (Gen2).
	D7WhenDark bool
	// SerialDFU: opening the USB serial port at 14400 baud enters DFU mode (Gen2), the
	// way in for Device OS before 2.0.0, which does not take the control request.
	SerialDFU bool
}

// HasModeButton reports whether a person can reach MODE on the board itself; a nil
// platform is assumed to have one.
func (p *Platform) HasModeButton() bool { return p == nil || p.Buttons.Reach == OnBoard }

// ModeButton is what the board calls its MODE button: "SETUP" on the Photon.
func (p *Platform) ModeButton() string {
	if p == nil || p.Buttons.Mode == "" {
		return "MODE"
	}
	return p.Buttons.Mode
}

// SKUFloor is a Device OS version some SKUs of a platform must never go below (DOCS
// scaling/manufacturing/manufacturing-firmware-versions.md).
type SKUFloor struct {
	SKUs     string // "BRN404X"
	DeviceOS string // "4.0.1"
	Why      string // "its u-blox SARA-R510 modem"
}

// SetupDoneFlag is where a platform's Device OS keeps the setup-done flag and until when it
// minds it (DOS platform/MCU/nRF52840/inc/dct.h STATIC_ASSERT_DCT_OFFSET(setup_done, 8134);
// system_network_manager_api.cpp testAndClearListeningModeFlag @v3.3.1; CHANGELOG 4.0.0
// "remove setup_done flag #2447").
type SetupDoneFlag struct {
	// DCTOffset is the flag's byte in the DCT (DFU alt 1); 0x01 means done.
	DCTOffset uint32
	// Until is the first system module version that no longer minds it.
	Until uint16
}

// SetupDoneFlag is p.SetupDone, nil for a nil platform.
func (p *Platform) SetupDoneFlag() *SetupDoneFlag {
	if p == nil {
		return nil
	}
	return p.SetupDone
}

// String is the platform's name, for logs.
func (p *Platform) String() string { return p.Name }

// SharesRadioStack reports whether a SoftDevice built for platform id serves p too: both
// run a Nordic SoftDevice on the same MCU. The S140 image is the same on every nRF52840
// platform; only the module header names one, and that header is dropped on the way to
// flash (DROP_MODULE_INFO), after which Device OS describes the radio stack by the FWID
// it reads and its own platform ID (hal/src/nRF52840/platform_radio_stack.cpp @v6.2.0).
// Particle's Gen3 releases before 4.0 ship the Argon's for every Gen3 platform.
func (p *Platform) SharesRadioStack(id uint16) bool {
	o, ok := ByID(id)
	return ok && p.HasRadioStack && o.HasRadioStack && o.MCU == p.MCU
}

var (
	byID   = map[uint16]*Platform{}
	byName = map[string]*Platform{}
	byUSB  = map[[2]uint16]*Platform{}
	byDFU  = map[[2]uint16]*Platform{}
	sorted []*Platform
)

func init() {
	for _, p := range table {
		if _, dup := byID[p.ID]; dup {
			panic(fmt.Sprintf("platform: duplicate ID %d", p.ID))
		}
		byID[p.ID] = p
		sorted = append(sorted, p)
		for _, k := range append([]string{p.Name, p.DisplayName}, p.Aliases...) {
			k = nameKey(k)
			if other, dup := byName[k]; dup && other != p {
				panic(fmt.Sprintf("platform: name %q used by %s and %s", k, other.Name, p.Name))
			}
			byName[k] = p
		}
		byUSB[[2]uint16{p.VID, p.PID}] = p
		byDFU[[2]uint16{p.DFUVID, p.DFUPID}] = p
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
}

// nameKey folds case and the separators people type differently ("B5-SoM", "b5 som").
func nameKey(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.NewReplacer(" ", "", "-", "", "_", "").Replace(s)
}

// All returns every platform, sorted by ID.
func All() []*Platform {
	out := make([]*Platform, len(sorted))
	copy(out, sorted)
	return out
}

// ByID looks a platform up by its platform ID (module header platform_id, USB PID low byte).
func ByID(id uint16) (*Platform, bool) {
	p, ok := byID[id]
	return p, ok
}

// ByName accepts a name, alias or display name in any case and with or without spaces,
// dashes or underscores ("photon2" and "P2" give p2, "e404x" gives esomx, "b" gives boron),
// or a decimal platform ID ("13").
func ByName(s string) (*Platform, bool) {
	if p, ok := byName[nameKey(s)]; ok {
		return p, true
	}
	if n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16); err == nil {
		return ByID(uint16(n))
	}
	return nil, false
}

// ByUSB identifies a device from its USB IDs; dfu tells whether they are the DFU
// bootloader's.
func ByUSB(vid, pid uint16) (p *Platform, dfu bool, ok bool) {
	if p, ok := byUSB[[2]uint16{vid, pid}]; ok {
		return p, false, true
	}
	if p, ok := byDFU[[2]uint16{vid, pid}]; ok {
		return p, true, true
	}
	return nil, false, false
}

// Slot returns the slot for a function and index as the newest Device OS lays it out
// (the variant with no upper module-version bound). Use SlotFor when the module's version
// is known.
func (p *Platform) Slot(fn Function, index uint8) (Slot, bool) {
	var first *Slot
	for i := range p.Slots {
		s := &p.Slots[i]
		if s.Function != fn || s.Index != index {
			continue
		}
		if s.MaxModuleVersion == 0 {
			return *s, true
		}
		if first == nil {
			first = s
		}
	}
	if first != nil {
		return *first, true
	}
	return Slot{}, false
}

// SlotFor returns the slot a module with this function, index and module_version belongs
// in, e.g. Gen3 system-part1 at 0x30000 for module versions up to 6101 (Device OS 6.1.1)
// and at 0x28000 from 6102 (6.1.2) on (reference §1b, §6c.6).
func (p *Platform) SlotFor(fn Function, index uint8, moduleVersion uint16) (Slot, bool) {
	for _, s := range p.Slots {
		if s.Function == fn && s.Index == index && s.AcceptsVersion(moduleVersion) {
			return s, true
		}
	}
	return Slot{}, false
}

// slotNameSynonyms maps the names Device Restore bundles, release assets and people use
// to the Slot.Name values of the table.
var slotNameSynonyms = map[string]string{
	"tinker":       "user-part",
	"tracker-edge": "user-part",
	"user":         "user-part",
	"userpart":     "user-part",
	"app":          "user-part",
	"ncp":          "ncp-firmware",
	"radio-stack":  "softdevice",
	"radiostack":   "softdevice",
	"monolithic":   "mono",
}

// SlotByName finds a slot by its release asset name ("system-part1", "softdevice",
// "tinker", ...). Where several slots share a name the first listed wins: the current
// variant (Gen3 system-part1 at 0x28000, user part index 2 at 0xB4000). On the Electron
// "system-part1" is index 3, following the file names, not the indices.
func (p *Platform) SlotByName(name string) (Slot, bool) {
	n := strings.ToLower(strings.TrimSpace(name))
	if syn, ok := slotNameSynonyms[n]; ok {
		n = syn
	}
	for _, s := range p.Slots {
		if s.Name == n {
			return s, true
		}
	}
	return Slot{}, false
}

// UserStart is where a user part of size bytes (the .bin's length) starts: on RTL872x the
// end is fixed at 0x08600000 and the start moves down with the size (a 48 KB Tinker
// starts at 0x085F4000, an 8 KB app at 0x085FE000, unaligned sizes give unaligned starts);
// elsewhere it is the current user slot's fixed start. 0 if the platform has no user part.
func (p *Platform) UserStart(size uint32) uint32 {
	for _, s := range p.Slots {
		if s.Function == FuncUser {
			return s.StartFor(size)
		}
	}
	return 0
}

// Alt returns the alt setting with number n.
func (p *Platform) Alt(n uint8) (Alt, bool) {
	for _, a := range p.Alts {
		if a.Alt == n {
			return a, true
		}
	}
	return Alt{}, false
}

// AltByMemory returns the first alt exposing that kind of memory (MemInternal, MemDCT,
// MemExternal).
func (p *Platform) AltByMemory(mem string) (Alt, bool) {
	for _, a := range p.Alts {
		if a.Memory == mem {
			return a, true
		}
	}
	return Alt{}, false
}

// AltLayout parses the memory map of alt n as the current bootloader reports it.
func (p *Platform) AltLayout(alt uint8) (*memlayout.Layout, error) {
	a, ok := p.Alt(alt)
	if !ok {
		return nil, fmt.Errorf("platform %s has no DFU alt %d", p.Name, alt)
	}
	return memlayout.Parse(a.Layout)
}

// KnownAltString reports whether s is a descriptor string this platform's bootloaders
// report for alt n: the current one, a legacy one, or the protected-mode one.
func (p *Platform) KnownAltString(alt uint8, s string) (known, protected bool) {
	if a, ok := p.Alt(alt); ok {
		if s == a.Layout {
			return true, false
		}
		for _, l := range a.Legacy {
			if s == l {
				return true, false
			}
		}
	}
	for _, a := range p.ProtectedAlts {
		if a.Alt == alt && a.Layout == s {
			return true, true
		}
	}
	return false, false
}

// OTARegionFor returns the OTA region Device OS with this system module version uses
// (0 = unknown: the newest layout). ok is false on platforms without the OTA-region trick.
func (p *Platform) OTARegionFor(systemVersion uint16) (Region, bool) {
	if len(p.OTARegions) == 0 {
		return Region{}, false
	}
	v := systemVersion
	if v == 0 {
		v = math.MaxUint16
	}
	for _, r := range p.OTARegions {
		if (r.MinSystemVersion == 0 || v >= r.MinSystemVersion) && (r.MaxSystemVersion == 0 || v <= r.MaxSystemVersion) {
			return r.Region, true
		}
	}
	return p.OTARegions[len(p.OTARegions)-1].Region, true
}

// Foreign is a Particle product that shows up on USB but is not a Device OS device:
// nothing here can flash it, and the person is told what can.
type Foreign struct {
	ID          uint16
	Name        string
	DisplayName string
	// PID is its normal-mode USB product ID (VID 0x2B04).
	PID uint16
	// Instead says what to use for it.
	Instead string
}

// foreign lists them (DC 4.2.1 constants.json: tachyon 2b04:c02a with
// controlRequestsNotSupported; the "linux" platform 43 has no USB IDs at all, so it never
// shows up here; particle-usb src/edl-device.js).
var foreign = []Foreign{
	{ID: 42, Name: "tachyon", DisplayName: "Tachyon", PID: 0xC02A,
		Instead: "Tachyon runs Linux, not Device OS, and is flashed through Qualcomm EDL: use Particle's Tachyon tools (the Particle CLI's tachyon commands) instead."},
}

// ForeignByUSB recognises a Particle product that is not a Device OS device.
func ForeignByUSB(vid, pid uint16) (Foreign, bool) {
	for _, f := range foreign {
		if vid == particleVID && pid == f.PID {
			return f, true
		}
	}
	return Foreign{}, false
}

// Article is "a" or "an" before a word, by its sound as people read these names: "an
// Argon", "an E-SoM-X", "an asset", "a Boron", "a B-SoM".
func Article(word string) string {
	if word == "" {
		return "a"
	}
	w := strings.ToLower(word)
	// Letters said with a vowel sound when they stand alone ("an M-SoM", "an X-SoM").
	if len(w) == 1 || len(w) > 1 && (w[1] == '-' || w[1] == ' ') {
		if strings.ContainsRune("aefhilmnorsx", rune(w[0])) {
			return "an"
		}
		return "a"
	}
	if strings.ContainsRune("aeiou", rune(w[0])) {
		return "an"
	}
	return "a"
}
