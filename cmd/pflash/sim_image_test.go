package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/platform"
	frun "github.com/particle-flasher/particle-flasher/flasher/run"
	"github.com/particle-flasher/particle-flasher/flasher/sim"
	"github.com/particle-flasher/particle-flasher/flasher/sim/usbsim"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// The children of TestSimKilledMidWriteComesBackFromImage: "sim" runs `pflash sim`,
// "flash" runs `pflash flash` with gousb on the libusb shim; the arguments are JSON.
const simKillRole, simKillArgs = "PFLASH_TEST_SIMKILL_ROLE", "PFLASH_TEST_SIMKILL_ARGS"

// simChild runs the test binary again as one of the roles.
func simChild(t *testing.T, role string, args []string, env ...string) *exec.Cmd {
	t.Helper()
	a, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.timeout=3m")
	cmd.Env = append(append(os.Environ(), env...), simKillRole+"="+role, simKillArgs+"="+string(a), usbsim.EnvChild+"="+t.Name())
	return cmd
}

// simProc is a running `pflash sim --json`.
type simProc struct {
	cmd   *exec.Cmd
	hello simHello
	done  chan struct{} // closed when it has exited, err then set
	err   error
}

func startSimProc(t *testing.T, args ...string) *simProc {
	t.Helper()
	cmd := simChild(t, "sim", append([]string{"sim", "--json"}, args...))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var errb strings.Builder
	cmd.Stderr = &errb
	require.NoError(t, cmd.Start())
	p := &simProc{cmd: cmd, done: make(chan struct{})}
	br := bufio.NewReader(out)
	line, err := br.ReadBytes('\n')
	require.NoError(t, err, "pflash sim printed nothing: %s", errb.String())
	require.NoError(t, json.Unmarshal(line, &p.hello), "%s", line)
	go func() {
		_, _ = io.Copy(io.Discard, br)
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *simProc) env() []string {
	var env []string
	for k, v := range p.hello.Env {
		env = append(env, k+"="+v)
	}
	return env
}

// TestSimKilledMidWriteComesBackFromImage is issue 16's acceptance 2: a virtual Boron kept
// in an image file (`pflash sim --image`) is killed with SIGKILL while `pflash flash`
// writes its system part over DFU; started again from its image with the same device ID
// it is the same device, stuck in DFU mode with the half-written part, and `pflash flash`
// run again finishes the job: the image the sim writes on exit holds Device OS 4.1.0
// booting normally.
func TestSimKilledMidWriteComesBackFromImage(t *testing.T) {
	switch os.Getenv(simKillRole) {
	case "sim", "flash":
		var args []string
		require.NoError(t, json.Unmarshal([]byte(os.Getenv(simKillArgs)), &args))
		flashTimeouts = frun.Timeouts{Find: 20 * time.Second, EnterMode: 20 * time.Second, Reenumerate: 20 * time.Second, Settle: 5 * time.Second}
		os.Exit(run(args, os.Stdout, os.Stderr))
	}
	if testing.Short() {
		t.Skip("re-executes the test binary as pflash sim and pflash flash")
	}
	rel := testshared.Dir(t, "firmware", "releases")
	apps := testshared.Dir(t, "firmware", "apps")
	cacheDir := flashCache(t)
	image := filepath.Join(t.TempDir(), "boron.img")
	const id = "e00fce68a16e000000000016"
	var mods []string
	for _, f := range []string{"boron-bootloader@1.5.2.bin", "boron-system-part1@1.5.2.bin", "boron-softdevice@4.1.0.bin"} {
		mods = append(mods, filepath.Join(rel, f))
	}
	mods = append(mods, filepath.Join(apps, "binaries_boron_blank.bin"))

	// A tenth of a real Boron's pace: the system part's DFU write takes about a second.
	s1 := startSimProc(t, "--platform", "boron", "--modules", strings.Join(mods, ","), "--scale", "0.1", "--image", image, "--device-id", id)
	require.Len(t, s1.hello.Devices, 1)
	require.Equal(t, id, s1.hello.Devices[0].DeviceID)
	require.Equal(t, "normal", s1.hello.Devices[0].Mode)

	flashArgs := []string{"flash", "--to", "4.1.0", "--device", id, "--yes", "--json", "--offline", "--cache-dir", cacheDir, "--state-dir", t.TempDir()}
	f1 := simChild(t, "flash", flashArgs, s1.env()...)
	out, err := f1.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, f1.Start())
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	killed := false
	var seen []string
	for sc.Scan() {
		var l struct {
			Event  string `json:"event"`
			StepID string `json:"step_id"`
			Phase  string `json:"phase"`
			Bytes  int    `json:"bytes"`
		}
		_ = json.Unmarshal(sc.Bytes(), &l)
		seen = append(seen, l.Event+":"+l.StepID+":"+l.Phase)
		if l.Event == "progress" && strings.HasPrefix(l.StepID, "write:system-part1") && l.Phase == "write" && l.Bytes > 0 {
			require.NoError(t, s1.cmd.Process.Signal(syscall.SIGKILL))
			killed = true
			break
		}
	}
	require.True(t, killed, "the DFU write of the system part never started: %v", seen)
	<-s1.done
	// The person gives up on the first run (Ctrl-C) and plugs the device back in.
	_ = f1.Process.Signal(os.Interrupt)
	go func() { _, _ = io.Copy(io.Discard, out) }()
	_ = f1.Wait()

	s2 := startSimProc(t, "--image", image, "--device-id", id, "--scale", "0.1")
	require.Len(t, s2.hello.Devices, 1)
	assert.Equal(t, id, s2.hello.Devices[0].DeviceID, "the same device")
	assert.Equal(t, "dfu", s2.hello.Devices[0].Mode, "the half-written system part keeps it in DFU mode")

	f2 := simChild(t, "flash", flashArgs, s2.env()...)
	res, err := f2.Output()
	require.NoError(t, err, "%s", res)
	lines := flashLines(t, string(res))
	last := lines[len(lines)-1]
	require.Equal(t, "done", last.Event)
	require.Equal(t, "ok", last.Result, "%s %s", last.Error, last.Remedy)

	// SIGTERM: the sim writes its image and exits; that image is the device at 4.1.0.
	require.NoError(t, s2.cmd.Process.Signal(syscall.SIGTERM))
	<-s2.done
	require.NoError(t, s2.err)
	img, err := sim.ReadImage(image)
	require.NoError(t, err)
	p, _ := platform.ByName("boron")
	d, err := sim.New(sim.Options{Platform: p, Image: img, DeviceID: id, NoSerial: true})
	require.NoError(t, err)
	defer d.Close()
	require.Equal(t, sim.ModeNormal, d.Mode(), d.Status().Reason)
	assert.Equal(t, "4.1.0", d.SystemVersion())
	for _, m := range d.Modules() {
		if m.Present && m.Store == "main" {
			assert.True(t, m.Valid(), m.Name)
		}
	}
}
