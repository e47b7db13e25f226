package testshared

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// DfuUtil returns the path of the Debian dfu-util, the reference DfuSe host the tests
// hold the sim and our client against, or skips naming the package to install.
func DfuUtil(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("dfu-util")
	if err != nil {
		t.Skip("dfu-util is not installed (make test installs it: apt-get install dfu-util)")
	}
	return p
}

// Lrzsz returns the path of an lrzsz program (sb, rb) or skips: the Makefile's deps-test
// installs the package. Another program of the same name (busybox's) is not accepted:
// the tests prove YMODEM against lrzsz specifically.
func Lrzsz(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("lrzsz's %s is not installed (apt-get install lrzsz, or `make deps-test`): %v", name, err)
	}
	out, _ := exec.Command(p, "--version").CombinedOutput()
	if !strings.Contains(string(out), "lrzsz") {
		t.Skipf("%s is not lrzsz's (%q); install lrzsz", p, strings.TrimSpace(string(out)))
	}
	return p
}

// RunDfuUtil runs the Debian dfu-util with env added (the libusb shim's variables) for at
// most timeout and returns its output; a failure fails the test, showing the output.
func RunDfuUtil(t testing.TB, env []string, timeout time.Duration, args ...string) string {
	t.Helper()
	path := DfuUtil(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dfu-util %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// FoundDFU returns the "Found DFU:" lines of `dfu-util -l`, one per alt setting.
func FoundDFU(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Found DFU:") {
			lines = append(lines, l)
		}
	}
	return lines
}
