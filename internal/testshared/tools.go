package testshared

import (
	"os/exec"
	"strings"
	"testing"
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
