// Package testshared locates the read-only ../shared folder (real Device OS binaries,
// Particle's data tables) that tests read. The binaries are never copied into the
// project; a test that needs them skips with a clear message when the folder is absent.
package testshared

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// EnvVar overrides where the shared folder is.
const EnvVar = "PFLASH_SHARED_DIR"

// Root returns the shared folder, or "" when it cannot be found.
func Root() string {
	if d := os.Getenv(EnvVar); d != "" {
		return d
	}
	// The shared folder sits beside the repository root: <root>/../shared.
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	repo := filepath.Join(filepath.Dir(file), "..", "..")
	d := filepath.Join(repo, "..", "shared")
	if st, err := os.Stat(filepath.Join(d, "firmware")); err == nil && st.IsDir() {
		abs, err := filepath.Abs(d)
		if err == nil {
			return abs
		}
		return d
	}
	return ""
}

// Dir returns the shared folder joined with elem, skipping the test when the shared
// folder is absent (it is always present in CI).
func Dir(t testing.TB, elem ...string) string {
	t.Helper()
	root := Root()
	if root == "" {
		t.Skipf("../shared (real Particle firmware and data) not found beside the repository; set %s to its path to run this test", EnvVar)
	}
	p := filepath.Join(append([]string{root}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared item %s missing: %v", p, err)
	}
	return p
}
