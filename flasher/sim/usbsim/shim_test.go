package usbsim_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
)

func TestShimExportsEveryLibusbSymbol(t *testing.T) {
	real := "/usr/lib/x86_64-linux-gnu/libusb-1.0.so.0"
	if _, err := os.Stat(real); err != nil {
		t.Skip("no system libusb to compare with")
	}
	nm := func(path string) []string {
		out, err := exec.Command("nm", "-D", "--defined-only", path).Output()
		if err != nil {
			t.Skipf("nm: %v", err)
		}
		var syms []string
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) == 3 && strings.HasPrefix(f[2], "libusb_") {
				syms = append(syms, f[2])
			}
		}
		return syms
	}
	want := nm(real)
	require.NotEmpty(t, want)
	assert.ElementsMatch(t, want, nm(shimPath))
}

func TestBuildShimIsIncremental(t *testing.T) {
	dir := t.TempDir()
	so, err := usbsim.BuildShim(dir)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, usbsim.ShimName), so)
	fi1, err := os.Stat(so)
	require.NoError(t, err)
	_, err = usbsim.BuildShim(dir)
	require.NoError(t, err)
	fi2, err := os.Stat(so)
	require.NoError(t, err)
	assert.Equal(t, fi1.ModTime(), fi2.ModTime(), "an up-to-date shim is not rebuilt")

	// a changed source is rebuilt
	require.NoError(t, os.WriteFile(filepath.Join(dir, "libusb_shim.c"), []byte("old"), 0o644))
	_, err = usbsim.BuildShim(dir)
	require.NoError(t, err)
	src, err := os.ReadFile(filepath.Join(dir, "libusb_shim.c"))
	require.NoError(t, err)
	assert.Equal(t, usbsim.ShimSource(), src)

	// so is a changed wire header, which the shim includes
	hdr := filepath.Join(dir, "usbsim_wire.h")
	fi3, err := os.Stat(so)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(hdr, []byte("#error stale header\n"), 0o644))
	require.NoError(t, os.Chtimes(hdr, fi3.ModTime().Add(time.Second), fi3.ModTime().Add(time.Second)))
	_, err = usbsim.BuildShim(dir)
	require.NoError(t, err, "the embedded header is written back and compiled")
	h, err := os.ReadFile(hdr)
	require.NoError(t, err)
	assert.Contains(t, string(h), "OP_CONTROL")

	_, err = usbsim.BuildShim(filepath.Dir(shimPath)) // restore Env's directory for the other tests
	require.NoError(t, err)
}

func TestShimDirInsideRepo(t *testing.T) {
	dir := usbsim.ShimDir()
	assert.True(t, strings.HasSuffix(dir, filepath.Join("build", "libusb-shim")), dir)
	_, err := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(dir)), "go.mod"))
	assert.NoError(t, err)
}

// TestShimUnderAddressSanitizer runs testdata/shimcheck.c, compiled with the
// shim under ASan/LeakSanitizer, against two devices: no leaks, no bad
// accesses in the list, descriptor, open, transfer and free paths.
func TestShimUnderAddressSanitizer(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	bin := filepath.Join(t.TempDir(), "shimcheck")
	src := filepath.Join(filepath.Dir(shimPath), "libusb_shim.c")
	cc := exec.Command("cc", "-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-g", "-O1", "-Wall",
		"-o", bin, filepath.Join("testdata", "shimcheck.c"), src, "-lpthread")
	if out, err := cc.CombinedOutput(); err != nil {
		t.Skipf("cannot build with -fsanitize=address: %v\n%s", err, out)
	}

	srv := newServer(t)
	srv.Add(newDFUDevice("e00fce68d1234567890abcde", 0xd00d))
	srv.Add(newDFUDevice("e00fce68aaaaaaaaaaaaaaaa", 0xd00d))
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), srv.Env()...)
	cmd.Env = append(cmd.Env, "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0", "UBSAN_OPTIONS=halt_on_error=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "2b04:d00d e00fce68d1234567890abcde 3 0\n2b04:d00d e00fce68aaaaaaaaaaaaaaaa 3 0\n", string(out))

	// and with nobody listening
	require.NoError(t, srv.Close())
	cmd = exec.Command(bin)
	cmd.Env = append(os.Environ(), srv.Env()...)
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Empty(t, string(out))
}
