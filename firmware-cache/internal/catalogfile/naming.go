package catalogfile

import (
	"strings"

	"github.com/Masterminds/semver/v3"
)

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
