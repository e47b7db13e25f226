package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	cache "github.com/particle-flasher/particle-flasher/firmware-cache"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// pflash sim --json prints one object with the environment and the devices first, dfu-util
// started with that environment sees the devices, and SIGINT (here: the context) writes
// the dumps and ends the command without an error.
func TestSimCommandJSON(t *testing.T) {
	releases := testshared.Dir(t, "firmware", "releases")
	dumpDir := t.TempDir()
	pr, pw := io.Pipe()
	g := &globals{json: true, stdout: pw, stderr: io.Discard}
	cmd := newSimCmd(g)
	cmd.SetArgs([]string{"--platform", "boron", "--version", "4.1.0", "--firmware-dir", releases,
		"--mode", "dfu", "--count", "2", "--scale", "0", "--dump", dumpDir})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- cmd.ExecuteContext(ctx)
		_ = pw.Close()
	}()

	lines := bufio.NewScanner(pr)
	require.True(t, lines.Scan(), "first line")
	var hello struct {
		Env     map[string]string `json:"env"`
		Devices []struct {
			DeviceID string `json:"device_id"`
			Platform string `json:"platform"`
			Mode     string `json:"mode"`
			PTY      string `json:"pty"`
		} `json:"devices"`
	}
	require.NoError(t, json.Unmarshal(lines.Bytes(), &hello), "%s", lines.Bytes())
	require.Len(t, hello.Devices, 2)
	assert.Contains(t, hello.Env, "LD_LIBRARY_PATH")
	assert.Contains(t, hello.Env, "PFLASH_USBSIM_SOCKET")
	for _, d := range hello.Devices {
		assert.Len(t, d.DeviceID, 24)
		assert.Equal(t, "boron", d.Platform)
		assert.Equal(t, "dfu", d.Mode)
		assert.Empty(t, d.PTY, "no serial port in DFU mode")
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }() // later lines

	if path, err := exec.LookPath("dfu-util"); err == nil {
		c := exec.Command(path, "-l")
		for k, v := range hello.Env {
			c.Env = append(c.Env, k+"="+v)
		}
		c.Env = append(os.Environ(), c.Env...)
		out, err := c.CombinedOutput()
		require.NoError(t, err, "%s", out)
		for _, d := range hello.Devices {
			assert.Equal(t, 3, strings.Count(string(out), `serial="`+d.DeviceID+`"`), "%s", out)
		}
	}

	cancel()
	select {
	case err := <-errc:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("pflash sim did not stop")
	}
	for _, d := range hello.Devices {
		b, err := os.ReadFile(filepath.Join(dumpDir, d.DeviceID+".bin"))
		require.NoError(t, err)
		assert.Len(t, b, 1024*1024, "the Boron's whole internal flash")
		part, err := os.ReadFile(filepath.Join(releases, "boron-system-part1@4.1.0.bin"))
		require.NoError(t, err)
		assert.Equal(t, part, b[0x30000:0x30000+len(part)])
	}
}

func TestSimCommandUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--platform", "nope", "--blank"},
		{"--platform", "boron"},
		{"--platform", "boron", "--version", "4.1.0", "--modules", "x.bin"},
		{"--platform", "boron", "--blank", "--mode", "off"},
	} {
		g := &globals{stdout: io.Discard, stderr: io.Discard}
		cmd := newSimCmd(g)
		cmd.SetArgs(args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.Execute()
		var ee *exitError
		require.ErrorAs(t, err, &ee, "%v", args)
		assert.Equal(t, exitUsage, ee.code, "%v", args)
	}
}

// --version without a firmware directory takes the release from the firmware cache.
func TestSimCommandFromCache(t *testing.T) {
	releases := testshared.Dir(t, "firmware", "releases")
	cacheDir := t.TempDir()
	c, err := cache.Open(cache.Options{Dir: cacheDir, Offline: true})
	require.NoError(t, err)
	_, err = c.Import(context.Background(), releases)
	require.NoError(t, err)

	pr, pw := io.Pipe()
	var stderr strings.Builder
	g := &globals{json: true, stdout: pw, stderr: &stderr, cacheDir: cacheDir}
	cmd := newSimCmd(g)
	cmd.SetArgs([]string{"--platform", "boron", "--version", "4.1.0", "--firmware-dir", "", "--scale", "0"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- cmd.ExecuteContext(ctx)
		_ = pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	require.True(t, lines.Scan())
	var hello struct {
		Modules string `json:"modules"`
		Devices []struct {
			Mode string `json:"mode"`
			PTY  string `json:"pty"`
		} `json:"devices"`
	}
	require.NoError(t, json.Unmarshal(lines.Bytes(), &hello), "%s", lines.Bytes())
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	assert.Contains(t, hello.Modules, "from the firmware cache")
	assert.Contains(t, hello.Modules, "boron-system-part1@4.1.0.bin")
	require.Len(t, hello.Devices, 1)
	assert.Equal(t, "normal", hello.Devices[0].Mode, "stderr: %s", stderr.String())
	assert.NotEmpty(t, hello.Devices[0].PTY)
	cancel()
	require.NoError(t, <-errc)
}
