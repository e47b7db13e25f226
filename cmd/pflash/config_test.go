package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cacheDirSeen runs doctor and returns what its firmware-cache check reports.
func cacheDirSeen(t *testing.T, args ...string) string {
	t.Helper()
	_, out, errOut := runPflash(t, append([]string{"doctor", "--json"}, args...)...)
	for _, c := range decodeLines[map[string]any](t, out) {
		if c["check"] == "firmware cache" {
			d, _ := c["detail"].(string)
			return d
		}
	}
	t.Fatalf("no firmware cache check; stderr: %s", errOut)
	return ""
}

func TestConfigFileFillsFlagsFlagsWin(t *testing.T) {
	t.Setenv("PFLASH_CACHE_DIR", "")
	fromFile := filepath.Join(t.TempDir(), "from-file")
	cfg := filepath.Join(t.TempDir(), "config.toml")
	require.NoError(t, os.WriteFile(cfg, []byte("cache_dir = \""+fromFile+"\"\noffline = true\njobs = 4\nmirrors = [\"file:///srv/mirror\"]\n"), 0o644))

	assert.Contains(t, cacheDirSeen(t, "--config", cfg), fromFile, "the file's cache_dir is used")
	t.Setenv(EnvConfig, cfg)
	assert.Contains(t, cacheDirSeen(t), fromFile, "PFLASH_CONFIG names the file")
	flagDir := filepath.Join(t.TempDir(), "from-flag")
	assert.Contains(t, cacheDirSeen(t, "--cache-dir", flagDir), flagDir, "a flag wins over the file")
	envDir := filepath.Join(t.TempDir(), "from-env")
	t.Setenv("PFLASH_CACHE_DIR", envDir)
	assert.Contains(t, cacheDirSeen(t), envDir, "the environment wins over the file")
}

func TestConfigErrorsAreUsageErrorsWithARemedy(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "config.toml")
	require.NoError(t, os.WriteFile(bad, []byte("cache_dri = \"/x\"\n"), 0o644))
	code, _, errOut := runPflash(t, "version", "--config", bad)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "unknown key(s) cache_dri")
	assert.Contains(t, errOut, "What to do: known keys")

	code, _, errOut = runPflash(t, "version", "--config", filepath.Join(t.TempDir(), "missing.toml"))
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "missing.toml")

	broken := filepath.Join(t.TempDir(), "broken.toml")
	require.NoError(t, os.WriteFile(broken, []byte("cache_dir = \n"), 0o644))
	code, _, errOut = runPflash(t, "version", "--config", broken)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "What to do:")
}

// TestConfigMirrorsReachFlashCommands: the configuration file's mirrors are where the
// writing commands (here `plan`, which resolves a version exactly as flash, restore and
// factory do) download Device OS from; offline = true keeps them off the network.
func TestConfigMirrorsReachFlashCommands(t *testing.T) {
	srv := newAssetServer(t)
	cfg := filepath.Join(t.TempDir(), "config.toml")
	require.NoError(t, os.WriteFile(cfg, []byte("mirrors = [\""+srv.base()+"\"]\n"), 0o644))
	args := []string{"plan", "--to", "2.3.1", "--platform", "photon", "--allow-safe-mode", "--json", "--config", cfg, "--cache-dir", t.TempDir()}
	code, out, errb := runPflash(t, args...)
	require.Equal(t, 0, code, "%s\n%s", out, errb)
	assert.Positive(t, srv.requests(), "the configured mirror served the release")
	assert.Contains(t, out, `"to":"2.3.1"`)

	offline := filepath.Join(t.TempDir(), "offline.toml")
	require.NoError(t, os.WriteFile(offline, []byte("offline = true\nmirrors = [\""+srv.base()+"\"]\n"), 0o644))
	before := srv.requests()
	code, _, errb = runPflash(t, "plan", "--to", "2.3.1", "--platform", "photon", "--config", offline, "--cache-dir", t.TempDir())
	assert.Equal(t, exitFailed, code)
	assert.Equal(t, before, srv.requests(), "offline: no request")
	assert.Contains(t, errb, "What to do:")
}
