// Package slots reads the module slots of a Particle device out of its flash over DFU.
// It is Particle's layout (flasher/platform) on top of the generic DFU client
// (flasher/dfu): the one way to inspect a device stuck in DFU mode.
package slots

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/particle-flasher/particle-flasher/flasher/dfu"
	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// Reading the modules of a device in DFU mode.
//
// A device stuck in DFU (a blank or corrupt system part, a safe-mode loop the person broke
// out of with the buttons, a half-finished update) cannot answer control request 90 or the
// `s` command: Device OS is not running. The bootloader can still UPLOAD any readable flash,
// so the flasher reads each slot's module header and suffix straight out of flash and
// decodes them with flasher/module, which is what makes a bricked unit inspectable.

// SlotState says what a probed slot holds.
type SlotState int

const (
	// SlotPresent: a module whose header belongs to this slot. It may still fail checks
	// (see SlotModule.Checks); a module whose CRC does not match is SlotCorrupt instead.
	SlotPresent SlotState = iota
	// SlotErased: the bytes where the header would be are all 0xFF (erased flash).
	SlotErased
	// SlotCorrupt: something is there but it is not an intact module: a bad CRC, a header
	// whose end is erased (an interrupted write), or bytes that are no module header at all.
	SlotCorrupt
	// SlotUnreadable: the bootloader refused to read the slot.
	SlotUnreadable
)

var slotStateNames = [...]string{"present", "erased", "corrupt", "unreadable"}

// String names the state for logs and JSON ("present", "erased", ...).
func (s SlotState) String() string {
	if s >= 0 && int(s) < len(slotStateNames) {
		return slotStateNames[s]
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// Module locations, as Device OS names its stores (ctrl.StoreMain, ctrl.StoreFactory).
const (
	LocationMain    = "main"
	LocationFactory = "factory"
)

// ModuleChecks are the validity checks Device OS runs on an installed module
// (module_validation_flags_t: INTEGRITY, RANGE, PLATFORM, DEPENDENCIES), computed here from
// what flash holds, so a DFU-mode reading can be compared with what the device reports in
// normal mode.
type ModuleChecks struct {
	Integrity    bool // the CRC matches the content (false when not verified)
	Range        bool // the header's start and end fit the slot
	Platform     bool // the header names this device's platform
	Dependencies bool // every dependency is met by an installed module (Device OS's rule)
}

// All reports whether every check passed.
func (c ModuleChecks) All() bool { return c.Integrity && c.Range && c.Platform && c.Dependencies }

// SlotModule is one slot as read through DFU.
type SlotModule struct {
	// Slot is the platform slot probed; for a slot that moved between Device OS versions
	// (Gen3 system-part1 at 0x28000 or 0x30000) the variant where the module was found.
	Slot platform.Slot
	// Location is LocationMain or LocationFactory.
	Location string
	State    SlotState
	// Address is where the module starts in flash (the slot's start when it is empty).
	Address uint32
	// Function, Index and Version identify the module (the slot's function and index when
	// nothing is there, with Version 0).
	Function platform.Function
	Index    uint8
	Version  uint16
	// Size is the module's length with its CRC, from its header (0 when unknown).
	Size uint32
	// Dependencies are the header's non-empty dependency slots.
	Dependencies []module.Dependency
	// Module is the decoded module, nil when erased, for a SoftDevice (written without
	// its header) and when no header was found. With integrity verification it holds the
	// whole module as read; otherwise only its header and suffix bytes are real.
	Module *module.Module
	// IntegrityChecked is true when the whole module was read and its CRC compared.
	IntegrityChecked bool
	// Checks are the validity checks; meaningful for SlotPresent and SlotCorrupt.
	Checks ModuleChecks
	// Problem says, for a person, what is wrong ("half-written: ...", "CRC mismatch"), or
	// for a SoftDevice that its integrity cannot be verified over DFU. Empty when fine.
	Problem string
}

// Valid reports a present module that passed every check.
func (m SlotModule) Valid() bool { return m.State == SlotPresent && m.Checks.All() }

// ReadOptions tune ReadModulesWith. The zero value is the careful default.
type ReadOptions struct {
	// SkipIntegrity reads only each module's header and suffix instead of the whole module,
	// so the CRC is not verified (Checks.Integrity is false, IntegrityChecked false). A full
	// read is the only way to know that a module is intact, which is why it is the default;
	// skipping it makes a reading about as fast as the header reads alone (a few transfers
	// per slot instead of up to a few hundred).
	SkipIntegrity bool
}

// The Nordic SoftDevice information structure (nrf_sdm.h: SOFTDEVICE_INFO_STRUCT_OFFSET
// 0x2000 from the SoftDevice start; magic 0x51B1E5DB at +4, SD_SIZE at +8, SD_FWID at +0xC).
// Device OS reports the radio stack's module version as SD_FWID_GET(MBR_SIZE), i.e. the
// 16-bit FWID at 0x300C when the SoftDevice starts at 0x1000 after the MBR
// (hal/src/nRF52840/platform_radio_stack.cpp), because the module header is not written to
// flash (DROP_MODULE_INFO).
const (
	sdInfoOffset = 0x2000
	sdMagic      = 0x51B1E5DB
	sdInfoLen    = 16
)

// tailWindow is how much of a module's end is read for its suffix when the whole module
// is not: the standard 40-byte suffix and CRC, and room for the 62-byte RTL872x suffix.
const tailWindow = 128

// maxSuffix bounds the suffix_size a header may announce (apps with asset dependencies
// reach a few hundred bytes).
const maxSuffix = 4096

// ReadModules reads every module slot of platform p that lives in the memory c reads
// (alt 0, internal flash) and reports what each holds, verifying every module's CRC. layout
// is alt 0's memory map as the device reports it (nil: the platform's); slots outside it
// or in unreadable sectors are skipped. c must be a client of the DFU interface set to
// alt 0.
func ReadModules(ctx context.Context, c *dfu.Client, p *platform.Platform, layout *memlayout.Layout) ([]SlotModule, error) {
	return ReadModulesWith(ctx, c, p, layout, ReadOptions{})
}

// ReadModulesWith is ReadModules with options.
//
// What is read, per slot: the 24-byte prefix at slot start + header offset; if it belongs
// to the slot, the whole module (start to end + CRC) to check the CRC, or with SkipIntegrity
// just its last bytes for the suffix. A slot that grows down from a fixed end (RTL872x user
// part) is found from its end: the suffix's DYNAMIC_LOCATION extension names the start. A
// SoftDevice, written without its header, is identified by the Nordic info structure.
// Slots that moved between Device OS versions are all probed; an empty variant is dropped
// when another variant holds the module, and a probe that lands inside a module already
// found is not reported as a slot of its own.
//
// The result is sorted by address, main store first. Transport failures (the device left
// the bus) and device protection end the reading with an error; a slot the bootloader
// refuses to read is reported as SlotUnreadable.
func ReadModulesWith(ctx context.Context, c *dfu.Client, p *platform.Platform, layout *memlayout.Layout, o ReadOptions) ([]SlotModule, error) {
	if p == nil {
		return nil, errors.New("read modules: no platform given")
	}
	if layout == nil {
		l, err := p.AltLayout(0)
		if err != nil {
			return nil, fmt.Errorf("read modules: %w", err)
		}
		layout = l
	}
	if layout.EraseOnly() {
		return nil, fmt.Errorf("read modules: %q advertises every sector as erase-only: %w", layout.Name, dfu.ErrProtected)
	}
	r := &slotReader{ctx: ctx, c: c, p: p, layout: layout, o: o}
	if err := r.run(); err != nil {
		return nil, fmt.Errorf("read modules of the %s: %w", p.DisplayName, err)
	}
	return r.out, nil
}

type slotReader struct {
	ctx    context.Context
	c      *dfu.Client
	p      *platform.Platform
	layout *memlayout.Layout
	o      ReadOptions
	out    []SlotModule
}

// probe is one place a header is looked for, shared by the slots whose header sits there
// (a system part and a monolithic image at the same address).
type probe struct {
	addr  uint32 // where the 24-byte prefix is read
	slots []platform.Slot
}

func (r *slotReader) readable(addr, n uint32) bool {
	return r.layout.Permits(addr, n, memlayout.Readable)
}

func (r *slotReader) run() error {
	var probes []*probe
	byAddr := map[uint32]*probe{}
	var endFixed, dropHeader []platform.Slot
	for _, s := range r.p.Slots {
		if s.Storage != platform.StorageInternal || len(s.Methods) == 0 {
			continue // another chip, or a slot nothing can read a header from (Core bootloader)
		}
		switch {
		case s.Has(platform.MethodDFUDropHeader):
			if r.readable(s.Start+sdInfoOffset, sdInfoLen) {
				dropHeader = append(dropHeader, s)
			}
		case s.EndFixed:
			if r.readable(s.End()-tailWindow, tailWindow) {
				endFixed = append(endFixed, s)
			}
		default:
			at := s.Start + s.HeaderOffset
			if !r.readable(at, module.PrefixSize) {
				continue
			}
			pr := byAddr[at]
			if pr == nil {
				pr = &probe{addr: at}
				byAddr[at] = pr
				probes = append(probes, pr)
			}
			pr.slots = append(pr.slots, s)
		}
	}
	sort.Slice(probes, func(i, j int) bool { return probes[i].addr < probes[j].addr })

	for _, s := range dropHeader {
		m, err := r.readSoftDevice(s)
		if err != nil {
			return err
		}
		r.out = append(r.out, m)
	}
	for _, pr := range probes {
		m, err := r.readFixed(pr)
		if err != nil {
			return err
		}
		if m != nil {
			r.out = append(r.out, *m)
		}
	}
	for _, s := range endFixed {
		m, err := r.readEndFixed(s)
		if err != nil {
			return err
		}
		r.out = append(r.out, m)
	}
	if f := r.p.FactoryReset; f != nil && f.Alt == 0 {
		if m, ok, err := r.readFactory(*f); err != nil {
			return err
		} else if ok {
			r.out = append(r.out, m)
		}
	}
	r.out = dropEmptyVariants(r.out)
	r.check()
	sort.SliceStable(r.out, func(i, j int) bool {
		a, b := r.out[i], r.out[j]
		if (a.Location == LocationMain) != (b.Location == LocationMain) {
			return a.Location == LocationMain
		}
		return a.Address < b.Address
	})
	return nil
}

// covered reports whether addr lies inside a module already found, so that what a probe
// finds there is that module's code, not a slot of its own: the 0x30000 header position of
// a Gen3 system-part1 that now starts at 0x28000, or the 256 KB user slot under a long
// old system part.
func (r *slotReader) covered(addr uint32) bool {
	for _, m := range r.out {
		if m.Location == LocationMain && m.Size > 0 && (m.State == SlotPresent || m.State == SlotCorrupt) && m.Module != nil &&
			addr >= m.Address && uint64(addr) < uint64(m.Address)+uint64(m.Size) {
			return true
		}
	}
	return false
}

// read UPLOADs n bytes at addr; a refusal by the device (a DFU status error) comes back as
// refused=true so the caller can mark the slot unreadable, anything else is fatal.
func (r *slotReader) read(addr, n uint32) (b []byte, refused error, err error) {
	b, err = r.c.Read(r.ctx, addr, n)
	if err == nil {
		return b, nil, nil
	}
	var se *dfu.StatusError
	if errors.As(err, &se) && !errors.Is(err, dfu.ErrProtected) {
		return nil, err, nil
	}
	return nil, nil, err
}

func unreadable(s platform.Slot, loc string, addr uint32, why error) SlotModule {
	return SlotModule{Slot: s, Location: loc, State: SlotUnreadable, Address: addr, Function: s.Function, Index: s.Index,
		Problem: "the bootloader refused to read it: " + why.Error()}
}

func erased(s platform.Slot, loc string, addr uint32) SlotModule {
	return SlotModule{Slot: s, Location: loc, State: SlotErased, Address: addr, Function: s.Function, Index: s.Index}
}

func allFF(b []byte) bool {
	for _, x := range b {
		if x != 0xFF {
			return false
		}
	}
	return true
}

type prefix struct {
	start, end uint32
	flags      module.Flags
	version    uint16
	platformID uint16
	function   platform.Function
	index      uint8
}

func decodePrefix(b []byte) prefix {
	return prefix{
		start:      binary.LittleEndian.Uint32(b[0:]),
		end:        binary.LittleEndian.Uint32(b[4:]),
		flags:      module.Flags(b[9]),
		version:    binary.LittleEndian.Uint16(b[10:]),
		platformID: binary.LittleEndian.Uint16(b[12:]),
		function:   platform.Function(b[14]),
		index:      b[15],
	}
}

// readFixed probes a fixed-start header position.
func (r *slotReader) readFixed(pr *probe) (*SlotModule, error) {
	first := pr.slots[0]
	for _, s := range pr.slots { // report an empty position under its non-mono slot
		if s.Function != platform.FuncMono {
			first = s
			break
		}
	}
	b, refused, err := r.read(pr.addr, module.PrefixSize)
	if err != nil {
		return nil, err
	}
	if refused != nil {
		m := unreadable(first, LocationMain, first.Start, refused)
		return &m, nil
	}
	h := decodePrefix(b)
	for _, s := range pr.slots {
		if h.function == s.Function && h.index == s.Index && h.start == s.Start && h.end > h.start {
			m, err := r.readModule(s, LocationMain, s.Start, h)
			return &m, err
		}
	}
	if r.covered(pr.addr) {
		return nil, nil // the middle of a module found at another slot's address
	}
	if allFF(b) {
		m := erased(first, LocationMain, first.Start)
		return &m, nil
	}
	// Not this position's module: debris (a partly erased slot, a foreign image).
	m := SlotModule{Slot: first, Location: LocationMain, State: SlotCorrupt, Address: first.Start,
		Function: first.Function, Index: first.Index,
		Problem: fmt.Sprintf("no valid module header at 0x%08x (found start 0x%08x, end 0x%08x, function %s %d): the slot holds something that is not a %s module, e.g. a partly erased or overwritten image",
			pr.addr, h.start, h.end, h.function, h.index, first.Name)}
	return &m, nil
}

// readModule reads the module of slot s that starts at start (its prefix already decoded),
// either whole (integrity) or its header and tail only.
func (r *slotReader) readModule(s platform.Slot, loc string, start uint32, h prefix) (SlotModule, error) {
	size := uint64(h.end) - uint64(h.start) + module.CRCSize
	m := SlotModule{Slot: s, Location: loc, State: SlotPresent, Address: start, Function: h.function, Index: h.index,
		Version: h.version, Size: uint32(size)}
	limit := uint64(s.MaxSize)
	if loc == LocationFactory && r.p.FactoryReset != nil {
		limit = uint64(r.p.FactoryReset.Size)
	}
	if size > limit || !r.readable(start, uint32(min(size, 1<<32-1))) {
		// A header announcing more than the slot holds is damaged (or not this slot's);
		// reading it whole could run into the next slot or off the memory.
		m.State = SlotCorrupt
		m.Problem = fmt.Sprintf("its header says %d bytes (0x%08x-0x%08x) but the slot holds at most %d", size, h.start, h.end, limit)
		hdr, _, err := r.read(start+s.HeaderOffset, module.PrefixSize)
		if err != nil {
			return m, err
		}
		if hdr != nil {
			m.Dependencies = nonEmptyDeps(hdr)
		}
		return m, nil
	}
	var data []byte
	if r.o.SkipIntegrity {
		d, refused, err := r.sparse(start, uint32(size), s.HeaderOffset, h)
		if err != nil {
			return m, err
		}
		if refused != nil {
			return unreadable(s, loc, start, refused), nil
		}
		data = d
	} else {
		d, refused, err := r.read(start, uint32(size))
		if err != nil {
			return m, err
		}
		if refused != nil {
			return unreadable(s, loc, start, refused), nil
		}
		data = d
		m.IntegrityChecked = true
	}
	mod, perr := module.Parse(data)
	if perr != nil || mod.HeaderOffset != int(s.HeaderOffset) {
		m.State = SlotCorrupt
		m.Problem = "the module header does not parse"
		if perr != nil {
			m.Problem += ": " + perr.Error()
		}
		return m, nil
	}
	m.Module = mod
	m.Dependencies = mod.Dependencies()
	// The last bytes were read in either mode; erased there means the write stopped early.
	if tail := data[len(data)-min(len(data), 16):]; allFF(tail) {
		m.State = SlotCorrupt
		m.Problem = fmt.Sprintf("half-written: the header is there but the end of the module (up to 0x%08x) is erased; the write was interrupted", uint64(start)+size)
	} else if m.IntegrityChecked && !mod.CRCOK {
		m.State = SlotCorrupt
		m.Problem = fmt.Sprintf("CRC mismatch: stored 0x%08x, content gives 0x%08x; the module is damaged", mod.StoredCRC, mod.ComputedCRC)
	}
	return m, nil
}

// sparse reads what SkipIntegrity needs: the prefix (and its extensions) and the tail,
// placed where they belong in a zero-filled buffer of the module's size, which
// module.Parse decodes like the real thing except for the CRC and SHA.
func (r *slotReader) sparse(start, size, hdrOff uint32, h prefix) ([]byte, error, error) {
	buf := make([]byte, size)
	headLen := uint32(module.PrefixSize)
	if h.flags.Has(module.FlagPrefixExtensions) {
		headLen = min(size-hdrOff, module.PrefixSize+512)
	}
	head, refused, err := r.read(start+hdrOff, min(headLen, size-hdrOff))
	if err != nil || refused != nil {
		return nil, refused, err
	}
	copy(buf[hdrOff:], head)
	tailLen := min(size-hdrOff-uint32(len(head)), tailWindow)
	if tailLen > 0 {
		tail, refused, err := r.read(start+size-tailLen, tailLen)
		if err != nil || refused != nil {
			return nil, refused, err
		}
		copy(buf[size-tailLen:], tail)
		if ss := uint32(binary.LittleEndian.Uint16(tail[len(tail)-6:])); ss+module.CRCSize > tailLen && ss <= maxSuffix &&
			ss+module.CRCSize <= size-hdrOff-uint32(len(head)) {
			more := ss + module.CRCSize
			t2, refused, err := r.read(start+size-more, more)
			if err != nil || refused != nil {
				return nil, refused, err
			}
			copy(buf[size-more:], t2)
		}
	}
	return buf, nil, nil
}

func nonEmptyDeps(hdr []byte) []module.Dependency {
	out := []module.Dependency{}
	for _, o := range []int{16, 20} {
		d := module.Dependency{Function: platform.Function(hdr[o]), Index: hdr[o+1], Version: binary.LittleEndian.Uint16(hdr[o+2:])}
		if !d.Empty() {
			out = append(out, d)
		}
	}
	return out
}

// readEndFixed finds a module that ends at the slot's fixed end (RTL872x user part): the
// suffix size sits 6 bytes before the end, and the suffix's DYNAMIC_LOCATION extension
// names where the module starts (Device OS finds it the same way).
func (r *slotReader) readEndFixed(s platform.Slot) (SlotModule, error) {
	end := s.End()
	tail, refused, err := r.read(end-tailWindow, tailWindow)
	if err != nil {
		return SlotModule{}, err
	}
	if refused != nil {
		return unreadable(s, LocationMain, s.Start, refused), nil
	}
	if allFF(tail) {
		return erased(s, LocationMain, s.Start), nil
	}
	corrupt := func(why string) SlotModule {
		return SlotModule{Slot: s, Location: LocationMain, State: SlotCorrupt, Address: s.Start, Function: s.Function, Index: s.Index, Problem: why}
	}
	ss := uint32(binary.LittleEndian.Uint16(tail[tailWindow-6:]))
	if ss < module.MinSuffixSize || ss > maxSuffix {
		return corrupt(fmt.Sprintf("no module suffix before 0x%08x (suffix size %d): the slot's end holds something that is not a module", end, ss)), nil
	}
	suffix := tail[max(0, tailWindow-module.CRCSize-int(ss)) : tailWindow-module.CRCSize]
	if int(ss)+module.CRCSize > tailWindow {
		full, refused, err := r.read(end-module.CRCSize-ss, ss)
		if err != nil {
			return SlotModule{}, err
		}
		if refused != nil {
			return unreadable(s, LocationMain, s.Start, refused), nil
		}
		suffix = full
	}
	start, ok := dynamicLocation(suffix)
	if !ok || start < s.Start || start >= end {
		return corrupt(fmt.Sprintf("the module suffix before 0x%08x does not say where the module starts (no usable DYNAMIC_LOCATION extension)", end)), nil
	}
	b, refused, err := r.read(start+s.HeaderOffset, module.PrefixSize)
	if err != nil {
		return SlotModule{}, err
	}
	if refused != nil {
		return unreadable(s, LocationMain, start, refused), nil
	}
	h := decodePrefix(b)
	if allFF(b) || h.start != start || h.end != end-module.CRCSize || h.function != s.Function || h.index != s.Index {
		m := corrupt(fmt.Sprintf("half-written or damaged: the suffix says the module starts at 0x%08x but no matching header is there", start))
		m.Address = start
		return m, nil
	}
	return r.readModule(s, LocationMain, start, h)
}

// dynamicLocation walks the suffix's extension list for DYNAMIC_LOCATION.
func dynamicLocation(suffix []byte) (uint32, bool) {
	for pos := 0; pos+4 <= len(suffix); {
		typ := module.ExtensionType(binary.LittleEndian.Uint16(suffix[pos:]))
		n := int(binary.LittleEndian.Uint16(suffix[pos+2:]))
		if n < 4 || pos+n > len(suffix) || typ == module.ExtEnd || typ == module.ExtInvalid {
			return 0, false
		}
		e := module.Extension{Type: typ, Payload: suffix[pos+4 : pos+n]}
		if start, _, _, ok := e.DynamicLocation(); ok {
			return start, true
		}
		pos += n
	}
	return 0, false
}

// readSoftDevice identifies a Nordic SoftDevice by its info structure. Its module header is
// not in flash (DROP_MODULE_INFO), so its CRC, which covers that header, cannot be checked;
// with integrity verification the end of the image is looked for instead, to tell a
// complete SoftDevice from one whose write was interrupted.
func (r *slotReader) readSoftDevice(s platform.Slot) (SlotModule, error) {
	b, refused, err := r.read(s.Start+sdInfoOffset, sdInfoLen)
	if err != nil {
		return SlotModule{}, err
	}
	if refused != nil {
		return unreadable(s, LocationMain, s.Start, refused), nil
	}
	if allFF(b) {
		head, refused, err := r.read(s.Start, module.PrefixSize)
		if err != nil {
			return SlotModule{}, err
		}
		if refused == nil && allFF(head) {
			return erased(s, LocationMain, s.Start), nil
		}
	}
	m := SlotModule{Slot: s, Location: LocationMain, State: SlotPresent, Address: s.Start, Function: s.Function, Index: s.Index,
		Dependencies: []module.Dependency{}}
	if binary.LittleEndian.Uint32(b[4:]) != sdMagic {
		m.State = SlotCorrupt
		m.Problem = fmt.Sprintf("no SoftDevice information structure at 0x%08x (magic missing): the radio stack is damaged or partly erased", s.Start+sdInfoOffset)
		return m, nil
	}
	m.Version = uint16(binary.LittleEndian.Uint32(b[12:]))
	regionEnd := binary.LittleEndian.Uint32(b[8:]) // SD_SIZE: the end of the SoftDevice region
	m.Problem = "integrity not verifiable over DFU: the SoftDevice is stored without the module header its CRC covers"
	if r.o.SkipIntegrity || regionEnd <= s.Start+sdInfoOffset || regionEnd > s.End()+0x1000 || !r.readable(regionEnd-4096, 4096) {
		return m, nil
	}
	// The image ends with the module suffix (36 bytes + CRC) some way below the region end;
	// an erased last page means the write stopped before it.
	page, refused, err := r.read(regionEnd-4096, 4096)
	if err != nil {
		return SlotModule{}, err
	}
	if refused != nil {
		return m, nil
	}
	last := len(page) - 1
	for last >= 0 && page[last] == 0xFF {
		last--
	}
	if last < 0 {
		m.State = SlotCorrupt
		m.Problem = fmt.Sprintf("half-written: the SoftDevice's end (before 0x%08x) is erased; the write was interrupted", regionEnd)
		return m, nil
	}
	m.Size = regionEnd - 4096 + uint32(last) + 1 - s.Start
	return m, nil
}

// readFactory reads the factory (backup) user image where the platform keeps it on alt 0;
// like Device OS it is reported only when it is a valid module.
func (r *slotReader) readFactory(f platform.Region) (SlotModule, bool, error) {
	user, ok := r.p.Slot(platform.FuncUser, 1)
	if !ok || !r.readable(f.Address+user.HeaderOffset, module.PrefixSize) {
		return SlotModule{}, false, nil
	}
	b, refused, err := r.read(f.Address+user.HeaderOffset, module.PrefixSize)
	if err != nil || refused != nil || allFF(b) {
		return SlotModule{}, false, err
	}
	h := decodePrefix(b)
	if h.function != platform.FuncUser || h.end <= h.start {
		return SlotModule{}, false, nil
	}
	s := user
	s.Start, s.MaxSize = f.Address, f.Size
	m, err := r.readModule(s, LocationFactory, f.Address, h)
	if err != nil || m.State != SlotPresent {
		return SlotModule{}, false, err
	}
	return m, true, nil
}

// dropEmptyVariants keeps, for a function and index with several slot variants, only the
// variants that hold something; when all are empty, the newest layout's.
func dropEmptyVariants(in []SlotModule) []SlotModule {
	type key struct {
		fn  platform.Function
		idx uint8
		loc string
	}
	holds := map[key]bool{}
	for _, m := range in {
		if m.State != SlotErased {
			holds[key{m.Slot.Function, m.Slot.Index, m.Location}] = true
		}
	}
	kept := map[key]bool{}
	var out []SlotModule
	for _, m := range in {
		k := key{m.Slot.Function, m.Slot.Index, m.Location}
		if m.State == SlotErased {
			if holds[k] || kept[k] {
				continue
			}
			if m.Slot.MaxModuleVersion != 0 && hasNewerVariant(in, m) {
				continue
			}
		}
		kept[k] = true
		out = append(out, m)
	}
	return out
}

func hasNewerVariant(in []SlotModule, m SlotModule) bool {
	for _, o := range in {
		if o.Slot.Function == m.Slot.Function && o.Slot.Index == m.Slot.Index && o.Location == m.Location &&
			o.Slot.MaxModuleVersion == 0 && o.Slot.Start != m.Slot.Start {
			return true
		}
	}
	return false
}

// check fills in the validity checks as Device OS computes them (fetch_module,
// validate_module_dependencies): range and platform from the header, integrity from the
// CRC, and dependencies against the installed modules' header versions (the radio stack's
// is its FWID), with Device OS's quirk that a module whose first dependency slot is empty
// is not checked further.
func (r *slotReader) check() {
	installed := func(fn platform.Function, idx uint8) (uint16, bool) {
		// An intact module first; else, as Device OS trusts a header without its CRC, a
		// damaged one.
		for _, want := range []SlotState{SlotPresent, SlotCorrupt} {
			for _, m := range r.out {
				if m.Location == LocationMain && m.Function == fn && m.Index == idx && m.State == want &&
					(want == SlotPresent || m.Module != nil) {
					return m.Version, true
				}
			}
		}
		return 0, false
	}
	for i := range r.out {
		m := &r.out[i]
		if m.State != SlotPresent && m.State != SlotCorrupt {
			continue
		}
		if m.Module == nil {
			if m.Function == platform.FuncRadio && m.State == SlotPresent {
				// Device OS assumes every check of the SoftDevice passes
				// (platform_radio_stack_fetch_module_info: "assuming that all checks
				// passed for now"); the info structure is all there is to go on.
				m.Checks = ModuleChecks{Integrity: true, Range: true, Platform: true, Dependencies: true}
			}
			continue
		}
		mod := m.Module
		m.Checks.Integrity = m.IntegrityChecked && mod.CRCOK
		m.Checks.Platform = mod.PlatformID == r.p.ID
		if m.Location == LocationFactory {
			m.Checks.Range = uint64(mod.Size()) <= uint64(m.Slot.MaxSize)
		} else {
			m.Checks.Range = m.Slot.Check(mod.Start, mod.End) == nil
		}
		m.Checks.Dependencies = true
		if mod.Deps[0].Empty() {
			continue
		}
		for _, d := range mod.Deps {
			if d.Empty() {
				continue
			}
			if ds, ok := r.p.Slot(d.Function, d.Index); ok && ds.Storage != platform.StorageInternal {
				continue // on another chip (NCP): not readable over DFU, so not judged
			}
			if v, ok := installed(d.Function, d.Index); !ok || v < d.Version {
				m.Checks.Dependencies = false
			}
		}
	}
}
