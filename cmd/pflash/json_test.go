package main

// The --json audit (issue 8, acceptance 4). Every command's --json output is parsed by a
// test somewhere in this package:
//
//	version                 TestJSONOutputsParse (here)
//	inspect FILE...         TestInspectJSON... (inspect_test.go)
//	inspect --device ID     TestInspectDeviceAgainstSim (list_sim_test.go)
//	cache catalog/fetch/list/import/prune
//	                        cache_test.go
//	cache verify, export    TestJSONOutputsParse (here)
//	plan (plan and error)   TestJSONOutputsParse (here)
//	list, list --watch      list_test.go, list_sim_test.go
//	sim                     TestSimCommandJSON (sim_test.go)
//	doctor                  doctor_test.go, config_test.go
//	flash                   flash_test.go, flash_sim_test.go, signals_test.go
//	restore                 restore_test.go
//
// and TestErrorPathsCauseAndRemedy checks that the error paths say what went wrong and
// what to do, with a non-zero exit code.

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// jsonObjects parses stdout as JSON lines, every line one object.
func jsonObjects(t *testing.T, out string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 4<<20), 4<<20)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "not a JSON object: %s", sc.Text())
		objs = append(objs, m)
	}
	require.NotEmpty(t, objs, "no JSON on stdout")
	return objs
}

// jsonRelease is a directory of links to shared release files.
func jsonRelease(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		require.NoError(t, os.Symlink(filepath.Join(testshared.Dir(t, "firmware", "releases"), n), filepath.Join(dir, n)))
	}
	return dir
}

// TestJSONOutputsParse: the --json outputs no other test parses are JSON lines with the
// keys scripts rely on.
func TestJSONOutputsParse(t *testing.T) {
	rel := func(n string) string { return filepath.Join(testshared.Dir(t, "firmware", "releases"), n) }
	cacheDir := flashCache(t)
	cases := []struct {
		name string
		args []string
		code int
		// keys every object has.
		keys []string
		// check looks at the objects further.
		check func(t *testing.T, objs []map[string]any)
	}{
		{name: "version", args: []string{"version", "--json"}, keys: []string{"version", "commit", "go", "os", "arch"},
			check: func(t *testing.T, objs []map[string]any) {
				require.Len(t, objs, 1)
				assert.Equal(t, version, objs[0]["version"])
			}},
		{name: "plan", args: []string{"plan", "--json", "--allow-safe-mode",
			"--to", jsonRelease(t, "photon-bootloader@2.3.1+lto.bin", "photon-system-part1@2.3.1.bin", "photon-system-part2@2.3.1.bin"),
			"--from", rel("photon-bootloader@1.5.2+lto.bin"), "--from", rel("photon-system-part1@1.5.2.bin"), "--from", rel("photon-system-part2@1.5.2.bin")},
			keys: []string{"platform", "from", "to", "direction", "steps", "expect_mode", "verify"},
			check: func(t *testing.T, objs []map[string]any) {
				require.Len(t, objs, 1)
				assert.Equal(t, "1.5.2", objs[0]["from"])
				assert.Equal(t, "2.3.1", objs[0]["to"])
				assert.Equal(t, "upgrade", objs[0]["direction"])
				steps, _ := objs[0]["steps"].([]any)
				assert.NotEmpty(t, steps)
			}},
		{name: "plan refused", args: []string{"plan", "--json", "--to", rel("argon-system-part1@4.1.0.bin"), "--from", rel("photon-system-part1@1.5.2.bin")},
			code: exitFailed, keys: []string{"error", "remedy"},
			check: func(t *testing.T, objs []map[string]any) {
				assert.Contains(t, objs[0]["error"], "built for the Argon")
			}},
		{name: "cache verify", args: []string{"cache", "verify", "--json", "--cache-dir", cacheDir}, keys: []string{"sha256", "path", "entries", "ok"},
			check: func(t *testing.T, objs []map[string]any) {
				for _, o := range objs {
					assert.Equal(t, true, o["ok"], o["path"])
				}
			}},
		{name: "cache export", args: []string{"cache", "export", "--json", "--version", "4.1.0", "--platform", "argon", "--offline",
			"-o", filepath.Join(t.TempDir(), "argon-4.1.0.zip"), "--cache-dir", cacheDir},
			keys: []string{"file", "device_os", "platform", "modules"},
			check: func(t *testing.T, objs []map[string]any) {
				require.Len(t, objs, 1)
				assert.Equal(t, "4.1.0", objs[0]["device_os"])
				assert.FileExists(t, objs[0]["file"].(string))
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errb := runPflash(t, c.args...)
			require.Equal(t, c.code, code, "stdout:\n%s\nstderr:\n%s", out, errb)
			objs := jsonObjects(t, out)
			for _, o := range objs {
				for _, k := range c.keys {
					assert.Contains(t, o, k)
				}
			}
			if c.check != nil {
				c.check(t, objs)
			}
		})
	}
}

// TestErrorPathsCauseAndRemedy: a failure says what went wrong and what to do, and exits
// with the documented code; in --json mode flash, restore and plan say both in their last
// object, which scripts read.
func TestErrorPathsCauseAndRemedy(t *testing.T) {
	d := flashSim(t, "photon", photon152, "photon_tinker_tinker-0.4.5-photon.bin")
	flashInProcess(t, d)
	empty := t.TempDir()
	cases := []struct {
		name   string
		args   []string
		code   int
		cause  string
		remedy string
		// json: the cause and the remedy are in the last JSON object on stdout.
		json bool
	}{
		{"unknown flag", []string{"flash", "--bogus"}, exitUsage, "unknown flag: --bogus", "`pflash flash --help`", false},
		{"missing required flag", []string{"flash"}, exitUsage, `required flag(s) "to" not set`, "`pflash flash --help`", false},
		{"unknown command", []string{"nosuchcmd"}, exitUsage, `unknown command "nosuchcmd"`, "--help", false},
		{"bad duration", []string{"list", "--grace", "soon"}, exitUsage, `invalid argument "soon"`, "`pflash list --help`", false},
		{"missing required flag of a subcommand", []string{"cache", "prune", "--cache-dir", empty}, exitUsage, `required flag(s) "keep" not set`, "`pflash cache prune --help`", false},
		{"bad --verify", []string{"flash", "--to", "2.3.1", "--verify", "bogus", "--state-dir", empty}, exitUsage, `unknown --verify "bogus"`, "modules, readback or none", false},
		{"bad --verify json", []string{"flash", "--to", "2.3.1", "--verify", "bogus", "--json", "--state-dir", empty}, exitUsage, `unknown --verify "bogus"`, "modules, readback or none", true},
		{"unknown target", []string{"flash", "--to", "/nonexistent/x.bin", "--device", d.ID(), "--yes", "--state-dir", empty}, exitUsage,
			"no such file or directory, and not a Device OS version", "Give a version such as 4.1.0", false},
		{"version not cached", []string{"flash", "--to", "2.3.1", "--device", d.ID(), "--yes", "--offline", "--cache-dir", empty, "--state-dir", empty, "--json"},
			exitFailed, "not in the cache", "cache", true},
		{"inspect unreadable file", []string{"inspect", "/nonexistent/x.bin"}, exitFailed, "no such file or directory", "download it again", false},
		{"inspect nothing", []string{"inspect"}, exitUsage, "requires at least 1 arg", "Give the module files", false},
		{"plan unknown target", []string{"plan", "--to", "/nonexistent/x.bin"}, exitUsage, "no such file or directory", "a module file", false},
		{"plan unknown target json", []string{"plan", "--json", "--to", "/nonexistent/x.bin"}, exitUsage, "no such file or directory", "a module file", true},
		{"cache fetch offline", []string{"cache", "fetch", "4.1.0", "--platform", "argon", "--offline", "--cache-dir", empty}, exitFailed,
			"not in the cache and offline", "pflash cache", false},
		{"cache import missing", []string{"cache", "import", "/nonexistent/dir", "--cache-dir", empty}, exitFailed, "no such file or directory", "that exist", false},
		{"sim unknown platform", []string{"sim", "--platform", "bogus", "--version", "1.5.2"}, exitUsage, `unknown platform "bogus"`, "platform name", false},
		{"restore unknown platform", []string{"restore", "--to", "4.1.0", "--platform", "bogus"}, exitUsage, `unknown platform "bogus"`, "platform name", false},
		{"restore no device", []string{"restore", "--to", "4.1.0", "--device", "0123456789abcdef01234567", "--wait", "200ms", "--state-dir", empty},
			exitNoDevice, "did not appear within 200ms", "Check the USB cable", false},
		{"restore no device json", []string{"restore", "--to", "4.1.0", "--device", "0123456789abcdef01234567", "--wait", "200ms", "--state-dir", empty, "--json"},
			exitNoDevice, "did not appear within 200ms", "Check the USB cable", true},
		{"unreadable config", []string{"--config", "/nonexistent/config.toml", "version"}, exitUsage, "read configuration", "fix the file", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errb := runPflash(t, c.args...)
			assert.Equal(t, c.code, code, "stdout:\n%s\nstderr:\n%s", out, errb)
			if c.json {
				objs := jsonObjects(t, out)
				last := objs[len(objs)-1]
				assert.Contains(t, last["error"], c.cause)
				assert.Contains(t, last["remedy"], c.remedy)
				return
			}
			all := out + errb
			assert.Contains(t, all, c.cause)
			var what string
			for _, l := range strings.Split(errb, "\n") {
				if strings.HasPrefix(l, "What to do: ") {
					what = l
				}
			}
			require.NotEmpty(t, what, "no \"What to do:\" line on stderr:\n%s", errb)
			assert.Contains(t, what, c.remedy)
		})
	}
}
