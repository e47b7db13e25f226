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
)

// ShimName is the file name the shim is built under, the soname that libusb
// callers load.
const ShimName = "libusb-1.0.so.0"

// modulePath identifies this repository's go.mod for ShimDir.
const modulePath = "github.com/particle-flasher/particle-flasher"

//go:embed shim/libusb_shim.c
var shimSource []byte

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
// libusb_shim.c (rewritten only when it changes). The command is
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
	if old, err := os.ReadFile(src); err != nil || !bytes.Equal(old, shimSource) {
		if err := writeAtomic(src, shimSource); err != nil {
			return "", err
		}
	}
	srcInfo, err := os.Stat(src)
	if err != nil {
		return "", fmt.Errorf("usbsim: %w", err)
	}
	if so, err := os.Stat(soPath); err != nil || so.ModTime().Before(srcInfo.ModTime()) {
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
