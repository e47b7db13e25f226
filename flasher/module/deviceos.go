package module

import (
	"bufio"
	_ "embed"
	"strconv"
	"strings"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// The table maps Device OS tags to the module versions they build. Module versions are
// counters, not a formula (prereleases increment them), so only a table can name them.
//
//go:embed data/device-os-module-versions.txt
var moduleVersionsTxt string

// release is one Device OS tag that ships a given module version.
type release struct {
	name string // without the leading "v"
	ver  semver
}

var (
	systemReleases     = map[uint16][]release{} // system-part / mono module version -> tags
	bootloaderReleases = map[uint16][]release{} // bootloader (index 0) module version -> tags
	systemByName       = map[string]uint16{}
	bootloaderByName   = map[string]uint16{}
)

func init() {
	sc := bufio.NewScanner(strings.NewReader(moduleVersionsTxt))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// "tag system bootloader" with single spaces; an empty column is a missing value.
		f := strings.Split(line, " ")
		tag := f[0]
		if !strings.HasPrefix(tag, "v") {
			continue // pre-0.4 and side-branch tags without module versions
		}
		r := release{name: strings.TrimPrefix(tag, "v")}
		r.ver = parseSemver(r.name)
		if len(f) > 1 {
			if v, err := strconv.ParseUint(f[1], 10, 16); err == nil {
				systemReleases[uint16(v)] = append(systemReleases[uint16(v)], r)
				systemByName[r.name] = uint16(v)
			}
		}
		if len(f) > 2 {
			if v, err := strconv.ParseUint(f[2], 10, 16); err == nil {
				bootloaderReleases[uint16(v)] = append(bootloaderReleases[uint16(v)], r)
				bootloaderByName[r.name] = uint16(v)
			}
		}
	}
}

func releasesFor(fn platform.Function, v uint16) []release {
	switch fn {
	case platform.FuncSystem, platform.FuncMono:
		return systemReleases[v]
	case platform.FuncBootloader:
		return bootloaderReleases[v]
	}
	return nil
}

// pick chooses among the releases sharing a module version: final releases win over
// prereleases and build variants ("5.4.0" over "5.4.0+ledger" and "5.4.0-rc.1"), then the
// newest (newest=true) or oldest.
func pick(rs []release, newest bool) (string, bool) {
	var best *release
	for i := range rs {
		r := &rs[i]
		if best == nil || r.ver.rank() > best.ver.rank() {
			best = r
			continue
		}
		if r.ver.rank() == best.ver.rank() && (newest && best.ver.less(r.ver) || !newest && r.ver.less(best.ver)) {
			best = r
		}
	}
	if best == nil {
		return "", false
	}
	return best.name, true
}

// DeviceOSVersion names the Device OS release a module version belongs to, for system
// parts and monolithic firmware (system module version) and the bootloader (bootloader
// module version; pass only index-0 bootloaders, RTL prebootloaders count separately).
// A system module version belongs to exactly one final release. A bootloader version is
// often shipped by several; the newest final release that ships it is named, because
// that is the release a person would download to get it (1200 → "4.2.0"; DeviceOSRange
// gives the whole span). Radio stacks are not Device OS versions: see RadioStackName.
func DeviceOSVersion(fn platform.Function, moduleVersion uint16) (string, bool) {
	return pick(releasesFor(fn, moduleVersion), true)
}

// FirstDeviceOSVersion names the first release (finals preferred) that shipped this
// module version: what a dependency "bootloader ≥1200" means in releases (4.1.0).
func FirstDeviceOSVersion(fn platform.Function, moduleVersion uint16) (string, bool) {
	return pick(releasesFor(fn, moduleVersion), false)
}

// DeviceOSRange gives the first and the newest release (finals preferred) shipping this
// module version; they are equal when only one does.
func DeviceOSRange(fn platform.Function, moduleVersion uint16) (first, last string, ok bool) {
	first, ok = FirstDeviceOSVersion(fn, moduleVersion)
	if !ok {
		return "", "", false
	}
	last, _ = DeviceOSVersion(fn, moduleVersion)
	return first, last, true
}

// SystemModuleVersion is the reverse lookup: the system module version a Device OS
// release ("4.1.0" or "v4.1.0") builds.
func SystemModuleVersion(deviceOS string) (uint16, bool) {
	v, ok := systemByName[strings.TrimPrefix(strings.TrimSpace(deviceOS), "v")]
	return v, ok
}

// BootloaderModuleVersion is the bootloader module version a Device OS release ships.
func BootloaderModuleVersion(deviceOS string) (uint16, bool) {
	v, ok := bootloaderByName[strings.TrimPrefix(strings.TrimSpace(deviceOS), "v")]
	return v, ok
}

// Radio stack module versions are the Nordic SoftDevice firmware IDs the device reads
// back with SD_FWID_GET (reference §5c).
var radioStacks = map[uint16]string{
	169: "SoftDevice S140 6.0.0",
	182: "SoftDevice S140 6.1.1",
	202: "SoftDevice S140 7.0.1",
}

// RadioStackName names a radio stack (SoftDevice) module version, e.g. 202 → "SoftDevice
// S140 7.0.1". It is kept apart from DeviceOSVersion because many Device OS releases
// share one SoftDevice.
func RadioStackName(moduleVersion uint16) (string, bool) {
	n, ok := radioStacks[moduleVersion]
	return n, ok
}

// dependencyName names what a dependency asks for, for descriptions: the first release
// providing the version for system and bootloader, the SoftDevice for radio stacks.
func dependencyName(d Dependency) (string, bool) {
	switch {
	case d.Function == platform.FuncRadio:
		n, ok := RadioStackName(d.Version)
		return strings.TrimPrefix(n, "SoftDevice "), ok
	case d.Function == platform.FuncBootloader && d.Index != 0:
		return "", false
	}
	return FirstDeviceOSVersion(d.Function, d.Version)
}

// semver is just enough of a version to order Device OS tags, including odd ones such as
// "0.4.4.rc.6", "0.4.6.1", "1.5.3-tracker.1" and "5.4.0+ledger".
type semver struct {
	nums  [4]int
	pre   []string
	build string
}

func parseSemver(s string) semver {
	var v semver
	if i := strings.IndexByte(s, '+'); i >= 0 {
		v.build, s = s[i+1:], s[:i]
	}
	main, pre, _ := strings.Cut(s, "-")
	parts := strings.Split(main, ".")
	n := 0
	for n < len(parts) && n < len(v.nums) {
		x, err := strconv.Atoi(parts[n])
		if err != nil {
			break
		}
		v.nums[n] = x
		n++
	}
	rest := parts[n:]
	if pre != "" {
		rest = append(rest, strings.Split(pre, ".")...)
	}
	if len(rest) > 0 {
		v.pre = rest
	}
	return v
}

// rank orders kinds of release: final 2, final with build metadata 1, prerelease 0.
func (v semver) rank() int {
	switch {
	case v.pre != nil:
		return 0
	case v.build != "":
		return 1
	}
	return 2
}

func (v semver) less(o semver) bool {
	for i := range v.nums {
		if v.nums[i] != o.nums[i] {
			return v.nums[i] < o.nums[i]
		}
	}
	// A prerelease comes before its release.
	if (v.pre == nil) != (o.pre == nil) {
		return v.pre != nil
	}
	for i := 0; i < len(v.pre) && i < len(o.pre); i++ {
		a, b := v.pre[i], o.pre[i]
		if a == b {
			continue
		}
		x, errA := strconv.Atoi(a)
		y, errB := strconv.Atoi(b)
		switch {
		case errA == nil && errB == nil:
			return x < y
		case errA == nil:
			return true
		case errB == nil:
			return false
		}
		return a < b
	}
	if len(v.pre) != len(o.pre) {
		return len(v.pre) < len(o.pre)
	}
	return v.build < o.build
}
