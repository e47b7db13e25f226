// Package assetname knows how Particle names Device OS release assets (build/release.sh
// in particle-iot/device-os; ../shared/data/device-restore/NAMING.md): the firmware
// catalog names the files it downloads with it, and the bundle reader checks what a
// file's name says against its header.
package assetname

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

// Name is the release asset of a module: "<module>-<v>-<platform>.bin" up to 1.0.x,
// "<platform>-<module>@<v>[+lto].bin" after (reference §8).
func Name(platformName, moduleName, version string) string {
	if OldScheme(version) {
		return moduleName + "-" + version + "-" + platformName + ".bin"
	}
	meta := ""
	if moduleName == "bootloader" && ltoBootloader[platformName] {
		meta = "+lto"
	}
	return platformName + "-" + moduleName + "@" + version + meta + ".bin"
}

// AltNames are other names the same file may have been published under: Gen2
// bootloaders with and without "+lto" (which one a 1.1–1.x release used is not recorded).
func AltNames(platformName, moduleName, version string) []string {
	if OldScheme(version) || moduleName != "bootloader" || !ltoBootloader[platformName] {
		return nil
	}
	return []string{platformName + "-" + moduleName + "@" + version + ".bin"}
}

var (
	newName = regexp.MustCompile(`^([a-z0-9]+)-([a-z0-9-]+)@([0-9][0-9A-Za-z.\-]*?)(\+[a-z.]+)?\.bin$`)
	oldName = regexp.MustCompile(`^([a-z0-9-]+?)-([0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.]+)?)-([a-z0-9]+)\.bin$`)
)

// Info is what an asset's name says about it.
type Info struct {
	Platform string // platform name, e.g. "argon"
	Module   string // e.g. "system-part1", "bootloader", "softdevice"
	Version  string // e.g. "4.1.0"
	Meta     string // build metadata without '+', e.g. "lto"
}

// Parse reads an asset name of either scheme. The platform must be a known one,
// which is what tells "system-part1-0.8.0-rc.27-argon.bin" apart from other hyphens.
func Parse(name string) (Info, bool) {
	if m := newName.FindStringSubmatch(name); m != nil {
		if _, ok := platform.ByName(m[1]); ok {
			return Info{Platform: m[1], Module: m[2], Version: m[3], Meta: strings.TrimPrefix(m[4], "+")}, true
		}
	}
	if m := oldName.FindStringSubmatch(name); m != nil {
		if p, ok := platform.ByName(m[3]); ok && p.Name == m[3] {
			return Info{Platform: m[3], Module: m[1], Version: m[2]}, true
		}
	}
	return Info{}, false
}
