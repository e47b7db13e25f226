package usbsim

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ShimName is the file name the shim is built under, the soname that libusb
// callers load.
const ShimName = "libusb-1.0.so.0"

// modulePath identifies this repository's go.mod for ShimDir.
const modulePath = "github.com/particle-flasher/particle-flasher"

//go:embed shim/libusb_shim.c
var shimSource []byte

// wireHeader is the wire protocol as both C clients (the shim and the umockdev bridge)
// include it; it is written next to either source before it is compiled.
//
//go:embed wire/usbsim_wire.h
var wireHeader []byte

const wireHeaderName = "usbsim_wire.h"

// ShimSource returns the C source of the shim.
func ShimSource() []byte { return bytes.Clone(shimSource) }

var (
	builtMu  sync.Mutex
	builtDir string // directory of the last successful BuildShim
)

// builtShimDir is the directory Env puts first on LD_LIBRARY_PATH.
func builtShimDir() string {
	builtMu.Lock()
	defer builtMu.Unlock()
	if builtDir != "" {
		return builtDir
	}
	return ShimDir()
}

// BuildShim compiles the embedded shim source into outDir/libusb-1.0.so.0
// (outDir "" means ShimDir()) unless it is already there and not older than
// the source, and returns its path. The source is kept next to it as
// libusb_shim.c, with the wire header usbsim_wire.h it includes (each rewritten
// only when it changes). The command is
//
//	cc -shared -fPIC -O2 -Wall -o <outDir>/libusb-1.0.so.0 <outDir>/libusb_shim.c -lpthread
//
// (the Makefile's `shim` target runs the same on the repository's copy).
// Concurrent builds into the same directory are safe: both files are
// replaced atomically. Env uses the directory of the last successful call.
func BuildShim(outDir string) (soPath string, err error) {
	if outDir == "" {
		outDir = ShimDir()
	}
	if outDir, err = filepath.Abs(outDir); err != nil {
		return "", fmt.Errorf("usbsim: %w", err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("usbsim: %w", err)
	}
	src := filepath.Join(outDir, "libusb_shim.c")
	soPath = filepath.Join(outDir, ShimName)
	newest, err := writeSources(src, shimSource)
	if err != nil {
		return "", err
	}
	if so, err := os.Stat(soPath); err != nil || so.ModTime().Before(newest) {
		tmp := fmt.Sprintf("%s.tmp%d", soPath, os.Getpid())
		cmd := exec.Command("cc", "-shared", "-fPIC", "-O2", "-Wall", "-o", tmp, src, "-lpthread")
		if out, err := cmd.CombinedOutput(); err != nil {
			_ = os.Remove(tmp)
			return "", fmt.Errorf("usbsim: building the libusb shim: %s: %w\n%s", strings.Join(cmd.Args, " "), err, out)
		}
		if err := os.Rename(tmp, soPath); err != nil {
			_ = os.Remove(tmp)
			return "", fmt.Errorf("usbsim: %w", err)
		}
	}
	builtMu.Lock()
	builtDir = outDir
	builtMu.Unlock()
	return soPath, nil
}

// writeSources puts a C client's source at src and the wire header beside it, each
// rewritten only when it differs, and returns the newer of their modification times, so a
// change to either rebuilds what is compiled from them.
func writeSources(src string, source []byte) (time.Time, error) {
	var newest time.Time
	for _, f := range []struct {
		path string
		data []byte
	}{{src, source}, {filepath.Join(filepath.Dir(src), wireHeaderName), wireHeader}} {
		if old, err := os.ReadFile(f.path); err != nil || !bytes.Equal(old, f.data) {
			if err := writeAtomic(f.path, f.data); err != nil {
				return time.Time{}, err
			}
		}
		fi, err := os.Stat(f.path)
		if err != nil {
			return time.Time{}, fmt.Errorf("usbsim: %w", err)
		}
		if fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
	}
	return newest, nil
}

func writeAtomic(path string, data []byte) error {
	tmp := fmt.Sprintf("%s.tmp%d", path, os.Getpid())
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("usbsim: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("usbsim: %w", err)
	}
	return nil
}

// ShimDir returns the default directory for the built shim:
// <repo>/build/libusb-shim when the working directory is inside this
// repository (the Makefile builds it there too), otherwise
// <user cache dir>/particle-flasher/libusb-shim.
func ShimDir() string {
	if root := repoRoot(); root != "" {
		return filepath.Join(root, "build", "libusb-shim")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	return filepath.Join(cache, "particle-flasher", "libusb-shim")
}

// repoRoot walks up from the working directory to the go.mod of this module.
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if f, err := os.Open(filepath.Join(dir, "go.mod")); err == nil {
			sc := bufio.NewScanner(f)
			isOurs := false
			for sc.Scan() {
				if fields := strings.Fields(sc.Text()); len(fields) == 2 && fields[0] == "module" {
					isOurs = strings.Trim(fields[1], `"`) == modulePath
					break
				}
			}
			_ = f.Close()
			if isOurs {
				return dir
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
