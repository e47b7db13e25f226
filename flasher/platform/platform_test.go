package platform

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/memlayout"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// ---- device-constants.json ----------------------------------------------------------

type dcSegment struct {
	Address string `json:"address"`
	Alt     *int   `json:"alt"`
	Size    *int   `json:"size"`
}

type dcPlatform struct {
	ID          int      `json:"id"`
	Name        string   `json:"name"`
	DisplayName string   `json:"displayName"`
	Generation  int      `json:"generation"`
	BaseMcu     string   `json:"baseMcu"`
	Aliases     []string `json:"aliases"`
	Modules     []struct {
		Type      string `json:"type"`
		Index     *int   `json:"index"`
		Storage   string `json:"storage"`
		MaxSize   *int   `json:"maxSize"`
		Encrypted bool   `json:"encrypted"`
		GrowsLeft bool   `json:"growsLeft"`
	} `json:"firmwareModules"`
	USB struct {
		VendorID  string          `json:"vendorId"`
		ProductID string          `json:"productId"`
		Quirks    map[string]bool `json:"quirks"`
	} `json:"usb"`
	DFU struct {
		VendorID  string `json:"vendorId"`
		ProductID string `json:"productId"`
		Storage   []struct {
			Type string `json:"type"`
			Alt  int    `json:"alt"`
		} `json:"storage"`
		Segments map[string]dcSegment `json:"segments"`
	} `json:"dfu"`
}

func loadDC(t *testing.T) map[string]dcPlatform {
	t.Helper()
	path := testshared.Dir(t, "data", "device-constants.json")
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var dc map[string]dcPlatform
	require.NoError(t, json.Unmarshal(raw, &dc))
	return dc
}

func hexU32(t *testing.T, s string) uint32 {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "0x"), 16, 32)
	require.NoError(t, err, "hex %q", s)
	return uint32(v)
}

var dcModuleFunction = map[string]Function{
	"bootloader":   FuncBootloader,
	"systemPart":   FuncSystem,
	"userPart":     FuncUser,
	"radioStack":   FuncRadio,
	"ncpFirmware":  FuncNCP,
	"monoFirmware": FuncMono,
}

var dcStorage = map[string]string{"internalFlash": StorageInternal, "externalMcu": StorageNCP}
var dcMemory = map[string]string{"internalFlash": MemInternal, "externalFlash": MemExternal}

// knownDCDisagreements lists the places where the table deliberately differs from
// device-constants.json, with the reason. The test fails on any other difference, and
// also when a listed difference disappears (so the list cannot go stale).
var knownDCDisagreements = map[string]string{
	// DOS platform/MCU/nRF52840/inc/flash_mal.h (v4.0.0..6.2.0) gives PLATFORM_ESOMX the
	// 8 MB layout with the factory image at 0x600000, like B5 SoM and Tracker, for which DC
	// does say 0x00600000; the bootloader also reports 2048*004Kg external flash for it.
	"esomx/factoryReset": "DC 0x00200000 vs DOS 0x600000 (8 MB part)",
	// DC gives Gen2 monoFirmware index 1; DOS module_user_mono and the RC4_unlocker.bin
	// fixture (a real Photon mono) have index 0.
	"photon/monoFirmware/index":   "DC 1 vs DOS 0",
	"p1/monoFirmware/index":       "DC 1 vs DOS 0",
	"electron/monoFirmware/index": "DC 1 vs DOS 0",
	// The P1's 1 MB serial flash is DFU alt 2 (DOS usbd_sflash_if.h@v2.3.1, reference
	// §1b); DC lists only internal flash for it.
	"p1/alt2": "alt 2 (serial flash) not in DC dfu.storage",
}

func TestTableMatchesDeviceConstants(t *testing.T) {
	dc := loadDC(t)
	seenDisagreement := map[string]bool{}
	disagree := func(key string, ok bool, format string, args ...any) {
		t.Helper()
		if _, known := knownDCDisagreements[key]; known {
			if !ok {
				seenDisagreement[key] = true
			}
			return
		}
		assert.True(t, ok, "%s: %s", key, fmt.Sprintf(format, args...))
	}

	covered := map[uint16]bool{}
	for key, d := range dc {
		if d.Generation < 1 || d.Generation > 4 {
			continue
		}
		p, ok := ByID(uint16(d.ID))
		if !assert.True(t, ok, "DC platform %s (id %d, generation %d) is missing from the table", key, d.ID, d.Generation) {
			continue
		}
		covered[p.ID] = true
		name := p.Name
		assert.Equal(t, d.Name, p.Name, "id %d name", d.ID)
		assert.Equal(t, d.DisplayName, p.DisplayName, "%s displayName", name)
		assert.Equal(t, d.Generation, p.Gen, "%s generation", name)
		assert.Equal(t, d.BaseMcu, p.MCU, "%s baseMcu", name)
		for _, a := range d.Aliases {
			assert.Contains(t, p.Aliases, a, "%s: DC alias %q missing", name, a)
		}

		assert.Equal(t, hexU32(t, d.USB.VendorID), uint32(p.VID), "%s usb vid", name)
		assert.Equal(t, hexU32(t, d.USB.ProductID), uint32(p.PID), "%s usb pid", name)
		assert.Equal(t, hexU32(t, d.DFU.VendorID), uint32(p.DFUVID), "%s dfu vid", name)
		assert.Equal(t, hexU32(t, d.DFU.ProductID), uint32(p.DFUPID), "%s dfu pid", name)
		assert.Equal(t, d.USB.Quirks["controlOutTransfersRequireDataStage"], p.ControlOutNeedsData, "%s controlOut quirk", name)

		// DFU alt settings: every DC storage must be an alt of ours with that memory, and
		// (where DC lists storage at all) every non-DCT alt of ours must be in DC.
		dcAlts := map[int]string{}
		for _, s := range d.DFU.Storage {
			dcAlts[s.Alt] = s.Type
			a, ok := p.Alt(uint8(s.Alt))
			if assert.True(t, ok, "%s: DC dfu.storage alt %d (%s) missing", name, s.Alt, s.Type) {
				assert.Equal(t, dcMemory[s.Type], a.Memory, "%s alt %d memory kind", name, s.Alt)
			}
		}
		if len(d.DFU.Storage) > 0 {
			for _, a := range p.Alts {
				if a.Memory == MemDCT {
					continue
				}
				_, inDC := dcAlts[int(a.Alt)]
				disagree(fmt.Sprintf("%s/alt%d", name, a.Alt), inDC, "our alt %d (%s) is not in DC dfu.storage", a.Alt, a.Memory)
			}
		}

		// Firmware modules.
		if len(d.Modules) > 0 {
			dcFuncs := map[Function]bool{}
			var dcUserMax int
			for _, m := range d.Modules {
				fn, ok := dcModuleFunction[m.Type]
				require.True(t, ok, "unknown DC module type %q", m.Type)
				dcFuncs[fn] = true
				var matches []Slot
				for _, s := range p.Slots {
					if s.Function == fn {
						matches = append(matches, s)
					}
				}
				if !assert.NotEmpty(t, matches, "%s: no slot for DC module %s", name, m.Type) {
					continue
				}
				if m.Index != nil {
					var indexed []Slot
					for _, s := range matches {
						if int(s.Index) == *m.Index {
							indexed = append(indexed, s)
						}
					}
					disagree(fmt.Sprintf("%s/%s/index", name, m.Type), len(indexed) > 0, "no slot %s index %d", m.Type, *m.Index)
					if len(indexed) > 0 {
						matches = indexed
					}
				}
				for _, s := range matches {
					assert.Equal(t, dcStorage[m.Storage], s.Storage, "%s %s storage", name, s.Name)
					if m.Index != nil {
						assert.Equal(t, m.Encrypted, s.Encrypted, "%s %s (index %d) encrypted", name, s.Name, s.Index)
					}
					if fn == FuncUser {
						assert.Equal(t, m.GrowsLeft, s.EndFixed, "%s %s growsLeft/EndFixed", name, s.Name)
					}
				}
				if m.MaxSize != nil && fn == FuncUser {
					dcUserMax = *m.MaxSize
				}
			}
			if dcUserMax > 0 {
				var ourMax uint32
				for _, s := range p.Slots {
					if s.Function == FuncUser && s.MaxSize > ourMax {
						ourMax = s.MaxSize
					}
				}
				assert.Equal(t, uint32(dcUserMax), ourMax, "%s userPart maxSize", name)
			}
			for _, s := range p.Slots {
				assert.True(t, dcFuncs[s.Function], "%s: slot %s (%s) has no DC firmware module", name, s.Name, s.Function)
			}
			assert.Equal(t, dcFuncs[FuncNCP], p.HasNCP, "%s HasNCP", name)
			assert.Equal(t, dcFuncs[FuncRadio], p.HasRadioStack, "%s HasRadioStack", name)
			// Encrypted modules: DC marks exactly bootloader index 1 on RTL872x.
			for _, s := range p.Slots {
				if s.Encrypted {
					found := false
					for _, m := range d.Modules {
						if dcModuleFunction[m.Type] == s.Function && m.Index != nil && *m.Index == int(s.Index) && m.Encrypted {
							found = true
						}
					}
					assert.True(t, found, "%s: slot %s marked encrypted but DC does not say so", name, s.Name)
				}
			}
		}

		// Segments.
		if seg, ok := d.DFU.Segments["formerUserPart"]; ok {
			if assert.NotNil(t, p.FormerUserPart, "%s formerUserPart", name) {
				assert.Equal(t, Region{Alt: uint8(*seg.Alt), Address: hexU32(t, seg.Address), Size: uint32(*seg.Size)}, *p.FormerUserPart, "%s formerUserPart", name)
			}
		} else {
			assert.Nil(t, p.FormerUserPart, "%s: formerUserPart not in DC", name)
		}
		if seg, ok := d.DFU.Segments["factoryReset"]; ok {
			if assert.NotNil(t, p.FactoryReset, "%s factoryReset", name) {
				assert.Equal(t, uint8(*seg.Alt), p.FactoryReset.Alt, "%s factoryReset alt", name)
				// DC gives external-flash offsets; the DfuSe address adds the alt's base
				// (0x80000000 on Gen3: reference §1b, DOCS `-s 0x80200000`).
				addr := hexU32(t, seg.Address)
				l, err := p.AltLayout(p.FactoryReset.Alt)
				require.NoError(t, err)
				if addr < l.Start() {
					addr += l.Start()
				}
				disagree(name+"/factoryReset", addr == p.FactoryReset.Address, "DC 0x%08x, ours 0x%08x", addr, p.FactoryReset.Address)
			}
		} else {
			assert.Nil(t, p.FactoryReset, "%s: factoryReset not in DC", name)
		}
	}
	for _, p := range All() {
		assert.True(t, covered[p.ID], "table platform %s (%d) is not a generation 1..4 platform in DC", p.Name, p.ID)
	}
	for key, why := range knownDCDisagreements {
		assert.True(t, seenDisagreement[key], "known disagreement %q (%s) no longer seen: remove it from the list", key, why)
	}
}

// ---- internal consistency -----------------------------------------------------------

func mustLayout(t *testing.T, s string) *memlayout.Layout {
	t.Helper()
	l, err := memlayout.Parse(s)
	require.NoError(t, err, "layout %q", s)
	return l
}

func TestAltLayoutsParse(t *testing.T) {
	for _, p := range All() {
		require.NotEmpty(t, p.Alts, p.Name)
		for i, a := range p.Alts {
			assert.Equal(t, uint8(i), a.Alt, "%s: alts in order", p.Name)
			l := mustLayout(t, a.Layout)
			assert.Equal(t, a.Name, l.Name, "%s alt %d name", p.Name, a.Alt)
			assert.Contains(t, []string{MemInternal, MemDCT, MemExternal}, a.Memory)
			for _, s := range a.Legacy {
				ll := mustLayout(t, s)
				assert.Equal(t, l.Start(), ll.Start(), "%s alt %d legacy start", p.Name, a.Alt)
				assert.Equal(t, l.End(), ll.End(), "%s alt %d legacy size", p.Name, a.Alt)
			}
			got, err := p.AltLayout(a.Alt)
			require.NoError(t, err)
			assert.Equal(t, l, got)
			known, prot := p.KnownAltString(a.Alt, a.Layout)
			assert.True(t, known)
			assert.False(t, prot)
		}
		_, err := p.AltLayout(9)
		assert.Error(t, err)

		// Protected strings: same geometry, every segment erase-only (reference §1b).
		if len(p.ProtectedAlts) > 0 {
			require.Len(t, p.ProtectedAlts, len(p.Alts), p.Name)
			for i, pa := range p.ProtectedAlts {
				open := mustLayout(t, p.Alts[i].Layout)
				prot := mustLayout(t, pa.Layout)
				require.Len(t, prot.Segments, len(open.Segments))
				for j := range prot.Segments {
					assert.Equal(t, memlayout.Erasable, prot.Segments[j].Perm, "%s protected alt %d", p.Name, pa.Alt)
					o := open.Segments[j]
					o.Perm = memlayout.Erasable
					assert.Equal(t, o, prot.Segments[j])
				}
				known, isProt := p.KnownAltString(pa.Alt, pa.Layout)
				assert.True(t, known)
				assert.True(t, isProt)
			}
		}
		if p.Gen >= 3 && p.LastDeviceOS == "" {
			assert.NotEmpty(t, p.ProtectedAlts, "%s runs 6.x, so it has protected-mode strings", p.Name)
		}
	}
}

func altFor(t *testing.T, p *Platform, s Slot) *memlayout.Layout {
	t.Helper()
	mem := MemInternal
	if s.Storage == StorageExternal {
		mem = MemExternal
	}
	a, ok := p.AltByMemory(mem)
	require.True(t, ok, "%s has no %s alt", p.Name, mem)
	return mustLayout(t, a.Layout)
}

func TestDFUWrittenSlotsAreWritable(t *testing.T) {
	rw := memlayout.Erasable | memlayout.Writable
	for _, p := range All() {
		for _, s := range p.Slots {
			assert.Contains(t, []string{StorageInternal, StorageExternal, StorageNCP}, s.Storage)
			assert.Contains(t, []uint32{0, 0x20, 0x184, 0x200, 0x10C}, s.HeaderOffset, "%s %s", p.Name, s.Name)
			assert.NotZero(t, s.MaxSize, "%s %s", p.Name, s.Name)
			if s.Storage == StorageNCP {
				assert.False(t, s.Has(MethodDFU) || s.Has(MethodDFUDropHeader) || s.Has(MethodOTARegion), "%s %s: NCP is not reachable over DFU", p.Name, s.Name)
				continue
			}
			l := altFor(t, p, s)
			assert.True(t, l.Contains(s.Start, s.MaxSize), "%s %s [0x%08x,0x%08x) inside its alt", p.Name, s.Name, s.Start, s.End())
			if s.Has(MethodDFU) || s.Has(MethodDFUDropHeader) {
				assert.True(t, l.Permits(s.Start, s.MaxSize, rw), "%s %s [0x%08x,0x%08x) written by DFU must be erasable+writable", p.Name, s.Name, s.Start, s.End())
			}
			if s.Has(MethodOTARegion) {
				// The reason for the trick: the slot itself is not writable over DFU.
				assert.False(t, l.Permits(s.Start, s.MaxSize, rw), "%s %s uses the OTA region although DFU could write it", p.Name, s.Name)
				assert.False(t, s.Has(MethodDFU), "%s %s", p.Name, s.Name)
				require.NotEmpty(t, p.OTARegions, p.Name)
				for _, v := range p.OTARegions {
					assert.GreaterOrEqual(t, v.Size, s.MaxSize, "%s OTA region holds a whole %s", p.Name, s.Name)
				}
			}
		}
	}
}

func TestRegionsInsideTheirAlts(t *testing.T) {
	rw := memlayout.Erasable | memlayout.Writable
	check := func(p *Platform, what string, r Region) {
		t.Helper()
		l, err := p.AltLayout(r.Alt)
		require.NoError(t, err, "%s %s", p.Name, what)
		assert.True(t, l.Permits(r.Address, r.Size, rw), "%s %s 0x%08x+0x%x must be a writable part of alt %d (%s)", p.Name, what, r.Address, r.Size, r.Alt, l.String())
	}
	for _, p := range All() {
		assert.NotZero(t, p.TransferSize, p.Name)
		if len(p.OTARegions) > 0 {
			check(p, "OTARegion", p.OTARegion)
			found := false
			for _, v := range p.OTARegions {
				check(p, "OTARegions", v.Region)
				found = found || v.Region == p.OTARegion
			}
			assert.True(t, found, "%s: OTARegion is one of OTARegions", p.Name)
			// The OTA flag lives in the DCT alt.
			dct, ok := p.AltByMemory(MemDCT)
			require.True(t, ok, p.Name)
			l := mustLayout(t, dct.Layout)
			assert.True(t, l.Permits(p.OTAFlagOffset, 1, memlayout.Writable), "%s DCT flag offset writable", p.Name)
			assert.Equal(t, uint32(1753), p.OTAFlagOffset)
			assert.Equal(t, byte(0xA5), p.OTAFlagValue)
		} else {
			assert.Zero(t, p.OTAFlagValue, p.Name)
		}
		if p.FormerUserPart != nil {
			check(p, "FormerUserPart", *p.FormerUserPart)
		}
		if p.FactoryReset != nil {
			check(p, "FactoryReset", *p.FactoryReset)
		}
	}
}

func TestGen3BootloaderTopPagesReadOnly(t *testing.T) {
	// Reference §6c.2: the Gen3 bootloader (0xF4000..0x100000) cannot be DFU-written in
	// place because the top eight 4 KB pages are read-only.
	p, _ := ByName("argon")
	l, err := p.AltLayout(0)
	require.NoError(t, err)
	boot, ok := p.Slot(FuncBootloader, 0)
	require.True(t, ok)
	secs, err := l.SectorsCovering(boot.Start, boot.MaxSize)
	require.NoError(t, err)
	require.Len(t, secs, 12)
	for _, s := range secs {
		want := memlayout.Readable | memlayout.Erasable | memlayout.Writable
		if s.Start >= 0xF8000 {
			want = memlayout.Readable
		}
		assert.Equal(t, want, s.Perm, "page 0x%05x", s.Start)
	}
	// Gen2: alt 0 keeps bootloader + DCT1 + DCT2 (first 48 KB) read-only (§6c.3).
	ph, _ := ByName("photon")
	l, err = ph.AltLayout(0)
	require.NoError(t, err)
	assert.True(t, l.Permits(0x08000000, 48*1024, memlayout.Readable))
	assert.False(t, l.Permits(0x08000000, 1, memlayout.Writable))
	assert.True(t, l.Permits(0x0800C000, 1, memlayout.Writable))
}

func TestLookups(t *testing.T) {
	all := All()
	require.Len(t, all, 18)
	assert.True(t, sort.SliceIsSorted(all, func(i, j int) bool { return all[i].ID < all[j].ID }))
	for _, p := range all {
		got, ok := ByID(p.ID)
		assert.True(t, ok)
		assert.Same(t, p, got)
		for _, n := range append([]string{p.Name, strings.ToUpper(p.Name), p.DisplayName, strconv.Itoa(int(p.ID))}, p.Aliases...) {
			got, ok := ByName(n)
			if assert.True(t, ok, "ByName(%q)", n) {
				assert.Same(t, p, got, "ByName(%q)", n)
			}
		}
		got, dfu, ok := ByUSB(p.VID, p.PID)
		assert.True(t, ok)
		assert.False(t, dfu)
		assert.Same(t, p, got)
		got, dfu, ok = ByUSB(p.DFUVID, p.DFUPID)
		assert.True(t, ok)
		assert.True(t, dfu)
		assert.Same(t, p, got)
		assert.Equal(t, p.Name, p.String())
	}
	for in, want := range map[string]string{
		"photon2": "p2", "Photon 2": "p2", "P2": "p2", "e404x": "esomx", "E404X": "esomx",
		"b": "boron", "B5-SoM": "b5som", "b5 som": "b5som", "E-SoM-X": "esomx", "muon": "msom",
		"assettracker": "tracker", "Monitor One": "tracker", "c": "core", "e": "electron", "26": "tracker",
	} {
		p, ok := ByName(in)
		if assert.True(t, ok, in) {
			assert.Equal(t, want, p.Name, in)
		}
	}
	for _, bad := range []string{"", "nope", "999", "-1", "photon3"} {
		_, ok := ByName(bad)
		assert.False(t, ok, bad)
	}
	_, _, ok := ByUSB(0x2B04, 0xC0FF)
	assert.False(t, ok)
	_, ok = ByID(3)
	assert.False(t, ok)

	// Returned slice is a copy.
	all[0] = nil
	assert.NotNil(t, All()[0])
}

func TestSlotVariantsAndNames(t *testing.T) {
	argon, _ := ByName("argon")
	s, ok := argon.SlotFor(FuncSystem, 1, 6101)
	require.True(t, ok)
	assert.Equal(t, uint32(0x30000), s.Start)
	s, ok = argon.SlotFor(FuncSystem, 1, 6102)
	require.True(t, ok)
	assert.Equal(t, uint32(0x28000), s.Start)
	s, ok = argon.SlotFor(FuncSystem, 1, 312)
	require.True(t, ok)
	assert.Equal(t, uint32(0x30000), s.Start)
	s, ok = argon.Slot(FuncSystem, 1)
	require.True(t, ok)
	assert.Equal(t, uint32(0x28000), s.Start, "Slot gives the newest layout")
	s, ok = argon.SlotByName("system-part1")
	require.True(t, ok)
	assert.Equal(t, uint32(0x28000), s.Start)

	s, ok = argon.Slot(FuncUser, 2)
	require.True(t, ok)
	assert.Equal(t, Slot{Name: "user-part", Function: FuncUser, Index: 2, Start: 0xB4000, MaxSize: 256 * 1024,
		Storage: StorageInternal, Methods: []Method{MethodDFU, MethodControl, MethodYModem}, KnownSince: 3102}, s)
	s, ok = argon.Slot(FuncUser, 1)
	require.True(t, ok)
	assert.Equal(t, uint32(0xD4000), s.Start)
	assert.Equal(t, uint32(128*1024), s.MaxSize)
	s, ok = argon.SlotByName("tinker")
	require.True(t, ok)
	assert.Equal(t, uint8(2), s.Index)

	s, ok = argon.Slot(FuncRadio, 0)
	require.True(t, ok)
	assert.Equal(t, []Method{MethodDFUDropHeader, MethodControl, MethodYModem}, s.Methods)
	assert.Equal(t, uint32(0x1000), s.Start)
	s, ok = argon.SlotByName("ncp")
	require.True(t, ok)
	assert.Equal(t, StorageNCP, s.Storage)
	assert.Equal(t, uint32(1536000), s.MaxSize)
	assert.Equal(t, []Method{MethodControl, MethodYModem}, s.Methods)
	s, ok = argon.Slot(FuncBootloader, 0)
	require.True(t, ok)
	assert.Equal(t, []Method{MethodControl, MethodOTARegion, MethodYModem}, s.Methods)
	assert.Equal(t, uint32(0x200), s.HeaderOffset)

	boron, _ := ByName("boron")
	_, ok = boron.SlotByName("ncp-firmware")
	assert.False(t, ok, "Boron has no NCP")

	xenon, _ := ByName("xenon")
	s, ok = xenon.Slot(FuncSystem, 1)
	require.True(t, ok)
	assert.Equal(t, uint32(0x30000), s.Start)
	_, ok = xenon.Slot(FuncUser, 2)
	assert.False(t, ok, "Xenon never got the 256 KB user part")
	assert.Equal(t, uint32(0xD4000), xenon.UserStart(1000))

	el, _ := ByName("electron")
	for name, want := range map[string][2]uint32{
		"system-part1": {3, 0x08060000}, "system-part2": {1, 0x08020000}, "system-part3": {2, 0x08040000},
	} {
		s, ok := el.SlotByName(name)
		require.True(t, ok, name)
		assert.Equal(t, uint8(want[0]), s.Index, name)
		assert.Equal(t, want[1], s.Start, name)
	}
	s, _ = el.SlotByName("system-part1")
	assert.Equal(t, uint32(0), s.HeaderOffset)
	s, _ = el.Slot(FuncBootloader, 0)
	assert.Equal(t, []Method{MethodOTARegion, MethodControl, MethodYModem}, s.Methods)

	p2, _ := ByName("p2")
	assert.Equal(t, uint32(0x085F4000), p2.UserStart(48*1024))
	assert.Equal(t, uint32(0x085FE000), p2.UserStart(8192))
	assert.Equal(t, uint32(0x085F3F90), p2.UserStart(49264))
	s, _ = p2.Slot(FuncUser, 1)
	assert.True(t, s.EndFixed)
	assert.Equal(t, uint32(0x08600000), s.End())
	assert.NoError(t, s.Check(0x085F4000, 0x085FFFFC))
	assert.Error(t, s.Check(0x085F5000, 0x085FFFF0), "start must match the size")
	s, _ = p2.SlotByName("prebootloader-mbr")
	assert.True(t, s.Encrypted)
	assert.Equal(t, uint8(1), s.Index)
	s, _ = p2.SlotByName("prebootloader-part1")
	assert.False(t, s.Encrypted)
	assert.Equal(t, uint8(2), s.Index)
	assert.Equal(t, []Method{MethodControl}, s.Methods)

	photon, _ := ByName("photon")
	assert.Equal(t, uint32(0x080A0000), photon.UserStart(5000))
	s, _ = photon.Slot(FuncUser, 1)
	assert.NoError(t, s.Check(0x080A0000, 0x080A128C))
	assert.Error(t, s.Check(0x080A0000, 0x080C0000), "too big")
	assert.Error(t, s.Check(0x080A0000, 0x0809FFFF), "end before start")
	core, _ := ByName("core")
	s, _ = core.Slot(FuncBootloader, 0)
	assert.Empty(t, s.Methods)
	_, ok = core.SlotFor(FuncSystem, 1, 1)
	assert.False(t, ok)
	assert.Equal(t, uint16(1024), core.TransferSize)
	_, ok = core.OTARegionFor(0)
	assert.False(t, ok)
}

func TestOTARegionFor(t *testing.T) {
	argon, _ := ByName("argon")
	assert.Equal(t, uint32(0x80289000), argon.OTARegion.Address)
	for v, want := range map[uint16]uint32{1512: 0x80289000, 5410: 0x80289000, 5500: 0x8024C000, 6200: 0x8024C000, 0: 0x8024C000} {
		r, ok := argon.OTARegionFor(v)
		require.True(t, ok)
		assert.Equal(t, want, r.Address, "argon system %d", v)
		assert.Equal(t, uint8(2), r.Alt)
	}
	for _, name := range []string{"tracker", "b5som", "esomx"} {
		p, _ := ByName(name)
		assert.Equal(t, uint32(0x80689000), p.OTARegion.Address, name)
		r, _ := p.OTARegionFor(6200)
		assert.Equal(t, uint32(0x80689000), r.Address, name)
		r, _ = p.OTARegionFor(1512)
		assert.Equal(t, uint32(0x80289000), r.Address, name)
	}
	el, _ := ByName("electron")
	r, ok := el.OTARegionFor(2302)
	require.True(t, ok)
	assert.Equal(t, Region{Alt: 0, Address: 0x080C0000, Size: 0x20000}, r)
	p2, _ := ByName("p2")
	r, _ = p2.OTARegionFor(6200)
	assert.Equal(t, Region{Alt: 0, Address: 0x08260000, Size: 0x180000}, r)
}

func TestMethodString(t *testing.T) {
	assert.Equal(t, "dfu", MethodDFU.String())
	assert.Equal(t, "dfu-drop-header", MethodDFUDropHeader.String())
	assert.Equal(t, "ota-region", MethodOTARegion.String())
	assert.Equal(t, "control", MethodControl.String())
	assert.Equal(t, "ymodem", MethodYModem.String())
	assert.Equal(t, "method(42)", Method(42).String())
	assert.Equal(t, "method(-1)", Method(-1).String())
	assert.True(t, MethodOTARegion.UsesDFU())
	assert.False(t, MethodControl.UsesDFU())
}

// ---- real modules ---------------------------------------------------------------------

// checkModule asserts that a real module fits the table: SlotFor finds its slot, the
// start address and header offset agree, and the file fits.
func checkModule(t *testing.T, where string, p *Platform, fn Function, index uint8, version uint16, start, end, prefixOffset uint32) {
	t.Helper()
	s, ok := p.SlotFor(fn, index, version)
	if !assert.True(t, ok, "%s: %s has no slot for %s index %d version %d", where, p.Name, fn, index, version) {
		return
	}
	assert.NoError(t, s.Check(start, end), "%s: %s %s", where, p.Name, s.Name)
	assert.Equal(t, s.HeaderOffset, prefixOffset, "%s: %s %s header offset", where, p.Name, s.Name)
	if s.EndFixed {
		assert.Equal(t, start, p.UserStart(end-start+4), "%s: UserStart", where)
	}
}

// expectedTSVSkips are rows of the EXPECTED.tsv files that are not Particle platform
// modules this table covers.
var expectedTSVSkips = map[string]string{
	"103_system-part1.bin": "bluz (platform 103) is not supported",
	"unknown.bin":          "synthetic module with platform 129",
	"cat.bin":              "asset (function 9) has no flash slot",
	"km4_image2_all.bin":   "raw Realtek image, not a Particle module (misparsed header)",
}

func TestReleaseBinariesFitSlots(t *testing.T) {
	n := 0
	for _, dir := range []string{"releases", "apps", "parser-fixtures"} {
		path := testshared.Dir(t, "firmware", dir, "EXPECTED.tsv")
		f, err := os.Open(path)
		require.NoError(t, err)
		sc := bufio.NewScanner(f)
		var cols map[string]int
		for sc.Scan() {
			fields := strings.Split(sc.Text(), "\t")
			if cols == nil {
				cols = map[string]int{}
				for i, c := range fields {
					cols[c] = i
				}
				for _, c := range []string{"platform", "function", "index", "module_version", "start", "end", "prefix_offset"} {
					require.Contains(t, cols, c, path)
				}
				continue
			}
			file := fields[0]
			if _, skip := expectedTSVSkips[file]; skip {
				continue
			}
			where := dir + "/" + file
			pid, err := strconv.Atoi(fields[cols["platform"]])
			require.NoError(t, err, where)
			p, ok := ByID(uint16(pid))
			if !assert.True(t, ok, "%s: platform %d", where, pid) {
				continue
			}
			fn, ok := ParseFunction(fields[cols["function"]])
			require.True(t, ok, "%s: function %q", where, fields[cols["function"]])
			idx, err := strconv.Atoi(fields[cols["index"]])
			require.NoError(t, err)
			ver, err := strconv.Atoi(fields[cols["module_version"]])
			require.NoError(t, err)
			checkModule(t, where, p, fn, uint8(idx), uint16(ver),
				hexU32(t, fields[cols["start"]]), hexU32(t, fields[cols["end"]]), hexU32(t, fields[cols["prefix_offset"]]))
			n++
		}
		require.NoError(t, sc.Err())
		f.Close()
	}
	assert.Greater(t, n, 80, "rows checked")
}

type restorePrefix struct {
	Start        string `json:"moduleStartAddy"`
	End          string `json:"moduleEndAddy"`
	Flags        int    `json:"moduleFlags"`
	Version      int    `json:"moduleVersion"`
	PlatformID   int    `json:"platformID"`
	Function     int    `json:"moduleFunction"`
	Index        int    `json:"moduleIndex"`
	PrefixOffset int    `json:"prefixOffset"`
}

// TestDeviceRestoreModulesFitSlots checks every module header Particle published for Web
// Device Restore (457 files, 1.4.4..6.5.0) against the table.
func TestDeviceRestoreModulesFitSlots(t *testing.T) {
	root := testshared.Dir(t, "data", "device-restore")
	files, err := filepath.Glob(filepath.Join(root, "*", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	n := 0
	for _, file := range files {
		ver := filepath.Base(filepath.Dir(file))
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		where := ver + "/" + name
		p, ok := ByName(name)
		if !assert.True(t, ok, "%s: unknown platform", where) {
			continue
		}
		raw, err := os.ReadFile(file)
		require.NoError(t, err)
		var doc map[string]struct {
			Prefix restorePrefix `json:"prefixInfo"`
		}
		require.NoError(t, json.Unmarshal(raw, &doc), where)
		for key, m := range doc {
			pre := m.Prefix
			w := where + "/" + key
			fn := Function(pre.Function)
			// Before 4.0 every Gen3 softdevice entry is the Argon's (NAMING.md).
			if fn != FuncRadio {
				assert.Equal(t, int(p.ID), pre.PlatformID, "%s platformID", w)
			}
			checkModule(t, w, p, fn, uint8(pre.Index), uint16(pre.Version),
				hexU32(t, pre.Start), hexU32(t, pre.End), uint32(pre.PrefixOffset))
			if key != "undefined" { // upstream artefact: a duplicate of "ncp"
				s, ok := p.SlotByName(key)
				if assert.True(t, ok, "%s: SlotByName(%q)", w, key) {
					assert.Equal(t, fn, s.Function, "%s: SlotByName function", w)
				}
			}
			if pre.Flags&1 != 0 { // DROP_MODULE_INFO
				s, _ := p.SlotFor(fn, uint8(pre.Index), uint16(pre.Version))
				assert.Equal(t, MethodDFUDropHeader, s.Methods[0], "%s: DROP_MODULE_INFO module must drop its header", w)
			}
			n++
		}
	}
	assert.Greater(t, n, 1500, "modules checked")
}

func TestArticle(t *testing.T) {
	for word, want := range map[string]string{"Argon": "an", "Boron": "a", "E-SoM-X": "an", "B-SoM": "a", "M-SoM": "an",
		"X-SoM": "an", "Photon": "a", "Asset Tracker / Monitor One": "an", "BRN404X": "a", "E404X": "an", "Electron 2": "an", "": "a"} {
		assert.Equal(t, want, Article(word), word)
	}
}
