package catalogfile

import (
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// gen2 platforms ship LTO bootloaders, published as "<platform>-bootloader@<v>+lto.bin".
var ltoBootloader = map[string]bool{"photon": true, "p1": true, "electron": true}

// OldScheme reports whether a version's assets use the pre-1.1.0 naming,
// "<module>-<version>-<platform>.bin" (DOS build/release.sh@v1.0.0).
func OldScheme(version string) bool {
	v, err := semver.NewVersion(version)
	if err != nil {
		return false
	}
	return v.Major() < 1 || v.Major() == 1 && v.Minor() < 1
}

// AssetName is the release asset of a module: "<module>-<v>-<platform>.bin" up to 1.0.x,
// "<platform>-<module>@<v>[+lto].bin" after (reference §8).
func AssetName(platformName, moduleName, version string) string {
	if OldScheme(version) {
		return moduleName + "-" + version + "-" + platformName + ".bin"
	}
	meta := ""
	if moduleName == "bootloader" && ltoBootloader[platformName] {
		meta = "+lto"
	}
	return platformName + "-" + moduleName + "@" + version + meta + ".bin"
}

// AltAssetNames are other names the same file may have been published under: Gen2
// bootloaders with and without "+lto" (which one a 1.1–1.x release used is not recorded).
func AltAssetNames(platformName, moduleName, version string) []string {
	if OldScheme(version) || moduleName != "bootloader" || !ltoBootloader[platformName] {
		return nil
	}
	return []string{platformName + "-" + moduleName + "@" + version + ".bin"}
}

var (
	newName = regexp.MustCompile(`^([a-z0-9]+)-([a-z0-9-]+)@([0-9][0-9A-Za-z.\-]*?)(\+[a-z.]+)?\.bin$`)
	oldName = regexp.MustCompile(`^([a-z0-9-]+?)-([0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.]+)?)-([a-z0-9]+)\.bin$`)
)

// AssetInfo is what an asset's name says about it.
type AssetInfo struct {
	Platform string // platform name, e.g. "argon"
	Module   string // e.g. "system-part1", "bootloader", "softdevice"
	Version  string // e.g. "4.1.0"
	Meta     string // build metadata without '+', e.g. "lto"
}

// ParseAssetName reads an asset name of either scheme. The platform must be a known one,
// which is what tells "system-part1-0.8.0-rc.27-argon.bin" apart from other hyphens.
func ParseAssetName(name string) (AssetInfo, bool) {
	if m := newName.FindStringSubmatch(name); m != nil {
		if _, ok := platform.ByName(m[1]); ok {
			return AssetInfo{Platform: m[1], Module: m[2], Version: m[3], Meta: strings.TrimPrefix(m[4], "+")}, true
		}
	}
	if m := oldName.FindStringSubmatch(name); m != nil {
		if p, ok := platform.ByName(m[3]); ok && p.Name == m[3] {
			return AssetInfo{Platform: m[3], Module: m[1], Version: m[2]}, true
		}
	}
	return AssetInfo{}, false
}

// IsPrerelease reports a version with a prerelease part ("4.0.0-alpha.1", "3.2.1-p2.2").
func IsPrerelease(version string) bool {
	v, err := semver.NewVersion(version)
	if err != nil {
		return strings.Contains(version, "-")
	}
	return v.Prerelease() != ""
}

// CompareVersions orders Device OS versions by semver; versions that do not parse sort
// before those that do, among themselves by text.
func CompareVersions(a, b string) int {
	va, ea := semver.NewVersion(a)
	vb, eb := semver.NewVersion(b)
	switch {
	case ea == nil && eb == nil:
		if c := va.Compare(vb); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	case ea != nil && eb != nil:
		return strings.Compare(a, b)
	case ea != nil:
		return -1
	}
	return 1
}

// InLTSLine reports whether a final version belongs to the long-term-support line the
// restore index names: "4" covers 4.x, "1.5" covers 1.5.x, and "6.5.1" covers 6.x from
// 6.5.1 on.
func InLTSLine(version, lts string) bool {
	if lts == "" || IsPrerelease(version) {
		return false
	}
	v, err := semver.NewVersion(version)
	if err != nil {
		return false
	}
	parts := strings.Split(lts, ".")
	floor, err := semver.NewVersion(lts)
	if err != nil {
		return false
	}
	if v.Major() != floor.Major() {
		return false
	}
	if len(parts) == 2 && v.Minor() != floor.Minor() {
		return false
	}
	return !v.LessThan(floor)
}
