package usbsim

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
)

// EnvChild marks a test process started by Server.TestCommand; its value is
// the name of the test to run in the child.
const EnvChild = "PFLASH_USBSIM_CHILD"

// TestCommand returns a command that runs the current test binary again,
// running only the test called name (t.Name(), subtests included), with
// Env() and EnvChild=name added to the environment. The dynamic loader reads
// LD_LIBRARY_PATH only at process start, so this is how a Go test gets a
// process in which gousb loads the shim; in that process InChild(name)
// reports true.
func (s *Server) TestCommand(name string, args ...string) *exec.Cmd {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	args = append([]string{"-test.run=" + strings.Join(parts, "/"), "-test.count=1"}, args...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), s.Env()...)
	cmd.Env = append(cmd.Env, EnvChild+"="+name)
	return cmd
}

// InChild reports whether this process is the child that TestCommand
// started for the test called name.
func InChild(name string) bool { return os.Getenv(EnvChild) == name }

// IsChild reports whether this process was started by TestCommand at all
// (for TestMain, to skip set-up the child does not need).
func IsChild() bool { return os.Getenv(EnvChild) != "" }
