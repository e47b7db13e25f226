package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// pflashCache runs pflash in-process (the cache tests' name for runPflash).
func pflashCache(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runPflash(t, args...)
}

func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var res []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var v map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &v), "not a JSON line: %q", sc.Text())
		res = append(res, v)
	}
	return res
}

// assetServer serves ../shared/firmware/releases under the GitHub release layout and
// counts requests; with trap set, any request fails the test.
type assetServer struct {
	srv   *httptest.Server
	mu    sync.Mutex
	n     map[string]int
	trap  bool
	delay time.Duration
}

func newAssetServer(t *testing.T) *assetServer {
	t.Helper()
	dir := testshared.Dir(t, "firmware", "releases")
	s := &assetServer{n: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		trap, delay := s.trap, s.delay
		s.n[filepath.Base(r.URL.Path)]++
		s.mu.Unlock()
		if trap {
			t.Errorf("network request in an offline test: %s", r.URL)
			http.Error(w, "offline", http.StatusTeapot)
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, "/particle-iot/device-os/releases/download/")
		_, asset, _ := strings.Cut(rest, "/")
		data, err := os.ReadFile(filepath.Join(dir, asset))
		if !ok || err != nil || strings.ContainsAny(asset, `/\`) {
			http.NotFound(w, r)
			return
		}
		if delay > 0 {
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			for i := 0; i < len(data); i += 64 << 10 {
				_, _ = w.Write(data[i:min(i+64<<10, len(data))])
				w.(http.Flusher).Flush()
				time.Sleep(delay)
			}
			return
		}
		http.ServeContent(w, r, asset, time.Unix(1600000000, 0), bytes.NewReader(data))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *assetServer) base() string { return s.srv.URL + "/particle-iot/device-os/releases/download" }

func (s *assetServer) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0
	for _, n := range s.n {
		total += n
	}
	return total
}

func TestCacheCatalogJSON(t *testing.T) {
	code, out, errOut := pflashCache(t, "cache", "catalog", "--platform", "argon", "--json", "--cache-dir", t.TempDir())
	require.Equal(t, 0, code, errOut)
	rows := jsonLines(t, out)
	require.NotEmpty(t, rows)
	var sp map[string]any
	for _, r := range rows {
		for _, k := range []string{"device_os", "platform", "name", "function", "index", "module_version", "start", "size", "crc32", "sha256", "url", "lts", "prerelease"} {
			require.Contains(t, r, k)
		}
		if r["device_os"] == "4.1.0" && r["name"] == "system-part1" {
			sp = r
		}
	}
	require.NotNil(t, sp)
	assert.Equal(t, "argon", sp["platform"])
	assert.Equal(t, "system", sp["function"])
	assert.Equal(t, float64(1), sp["index"])
	assert.Equal(t, float64(4100), sp["module_version"])
	assert.Equal(t, "0x00030000", sp["start"])
	assert.Equal(t, float64(469386), sp["size"])
	assert.Equal(t, "e114a33b", sp["crc32"])
	assert.Len(t, sp["sha256"], 64)
	assert.Equal(t, "https://github.com/particle-iot/device-os/releases/download/v4.1.0/argon-system-part1@4.1.0.bin", sp["url"])
	assert.Equal(t, true, sp["lts"])
	assert.Equal(t, false, sp["prerelease"])

	code, out, _ = pflashCache(t, "cache", "catalog", "--platform", "photon", "--version", "2.3.1", "--cache-dir", t.TempDir())
	require.Equal(t, 0, code)
	assert.Contains(t, out, "Device OS 2.3.1 for photon (latest LTS)")
	assert.Contains(t, out, "photon-bootloader@2.3.1+lto.bin")

	code, _, errOut = pflashCache(t, "cache", "catalog", "--platform", "toaster", "--cache-dir", t.TempDir())
	assert.Equal(t, exitFailed, code)
	assert.Contains(t, errOut, "What to do:")
}

// Acceptance 1 through the command line, then list, verify, offline and export/import.
func TestCacheFetchListVerifyOffline(t *testing.T) {
	srv := newAssetServer(t)
	dir := t.TempDir()
	code, out, errOut := pflashCache(t, "cache", "fetch", "4.1.0", "--platform", "argon", "--mirror", srv.base(), "--json", "--cache-dir", dir)
	require.Equal(t, 0, code, errOut)
	rows := jsonLines(t, out)
	require.Len(t, rows, 3)
	for _, r := range rows {
		assert.Equal(t, "downloaded", r["status"])
		assert.FileExists(t, r["path"].(string))
	}

	code, out, errOut = pflashCache(t, "cache", "list", "--json", "--cache-dir", dir)
	require.Equal(t, 0, code, errOut)
	list := jsonLines(t, out)
	require.Len(t, list, 3)
	names := map[string]map[string]any{}
	for _, e := range list {
		for _, k := range []string{"platform", "device_os", "function", "index", "module_version", "size", "sha256", "path"} {
			require.Contains(t, e, k)
		}
		names[e["name"].(string)] = e
	}
	bl := names["bootloader"]
	require.NotNil(t, bl)
	assert.Equal(t, "argon", bl["platform"])
	assert.Equal(t, "4.1.0", bl["device_os"])
	assert.Equal(t, "bootloader", bl["function"])
	assert.Equal(t, float64(1200), bl["module_version"])
	assert.Equal(t, float64(45844), bl["size"])
	assert.True(t, strings.HasPrefix(bl["path"].(string), dir))

	code, out, _ = pflashCache(t, "cache", "verify", "--cache-dir", dir)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "3 file(s) checked, 0 bad")

	// Acceptance 4: offline with a warm cache makes no request at all; the env variable
	// selects the cache.
	srv.mu.Lock()
	srv.trap = true
	srv.mu.Unlock()
	t.Setenv("PFLASH_CACHE_DIR", dir)
	code, out, errOut = pflashCache(t, "cache", "fetch", "4.1.0", "--platform", "argon", "--offline", "--mirror", srv.base(), "--json")
	require.Equal(t, 0, code, errOut)
	for _, r := range jsonLines(t, out) {
		assert.Equal(t, "cached", r["status"])
	}
	code, _, errOut = pflashCache(t, "cache", "fetch", "4.1.0", "--platform", "boron", "--offline", "--mirror", srv.base())
	assert.Equal(t, exitFailed, code)
	assert.Contains(t, errOut, "boron-system-part1@4.1.0.bin")
	assert.Contains(t, errOut, "offline")
	assert.Contains(t, errOut, "What to do:")

	bundle := filepath.Join(t.TempDir(), "argon-4.1.0.zip")
	code, _, errOut = pflashCache(t, "cache", "export", "--version", "4.1.0", "--platform", "argon", "-o", bundle)
	require.Equal(t, 0, code, errOut)
	other := t.TempDir()
	code, out, errOut = pflashCache(t, "cache", "import", bundle, "--cache-dir", other, "--json")
	require.Equal(t, 0, code, errOut)
	assert.Len(t, jsonLines(t, out), 4, "three modules and the skipped manifest")
	code, _, errOut = pflashCache(t, "cache", "fetch", "4.1.0", "--platform", "argon", "--offline", "--cache-dir", other)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, 3, srv.requests(), "only the first fetch's three downloads: the offline runs made none")
}

func TestCacheImportZipSlipAndPrune(t *testing.T) {
	rel := testshared.Dir(t, "firmware", "releases")
	data, err := os.ReadFile(filepath.Join(rel, "photon-system-part1@2.3.1.bin"))
	require.NoError(t, err)
	zp := filepath.Join(t.TempDir(), "evil.zip")
	f, err := os.Create(zp)
	require.NoError(t, err)
	zw := zip.NewWriter(f)
	for _, n := range []string{"system-part1.bin", "../../outside.bin"} {
		w, err := zw.Create(n)
		require.NoError(t, err)
		_, _ = w.Write(data)
	}
	require.NoError(t, zw.Close())
	require.NoError(t, f.Close())
	dir := t.TempDir()
	code, _, errOut := pflashCache(t, "cache", "import", zp, "--cache-dir", dir)
	assert.Equal(t, exitFailed, code)
	assert.Contains(t, errOut, "points outside the bundle")
	assert.Contains(t, errOut, "../../outside.bin")

	code, _, errOut = pflashCache(t, "cache", "import", rel, "--cache-dir", dir)
	require.Equal(t, 0, code, errOut)
	code, out, errOut := pflashCache(t, "cache", "prune", "--keep", "1", "--json", "--cache-dir", dir)
	require.Equal(t, 0, code, errOut)
	res := jsonLines(t, out)
	require.Len(t, res, 1)
	assert.Contains(t, res[0]["removed"], "1.5.2/photon")
	assert.Contains(t, res[0]["kept"], "2.3.1/photon")
}

func TestCacheMirrorSecurity(t *testing.T) {
	code, _, errOut := pflashCache(t, "cache", "fetch", "4.1.0", "--platform", "argon", "--mirror", "http://192.0.2.7/dos", "--cache-dir", t.TempDir())
	assert.Equal(t, exitFailed, code)
	assert.Contains(t, errOut, "plain HTTP")
	assert.Contains(t, errOut, "--allow-http")
}

// Acceptance 3: two `pflash cache fetch` processes for the same release at once end with
// one good copy of each file.
func TestCacheTwoFetchProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pflash")
	}
	srv := newAssetServer(t)
	srv.mu.Lock()
	srv.delay = 5 * time.Millisecond // make the two downloads overlap
	srv.mu.Unlock()
	bin := filepath.Join(t.TempDir(), "pflash")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	help, err := exec.Command(bin, "cache", "--help").CombinedOutput()
	require.NoError(t, err, "%s", help)
	require.Contains(t, string(help), "fetch", "pflash registers the cache command")
	dir := t.TempDir()
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for range 2 {
		cmd := exec.Command(bin, "cache", "fetch", "4.1.0", "--platform", "argon", "--mirror", srv.base(), "--cache-dir", dir, "--json")
		var b bytes.Buffer
		cmd.Stdout, cmd.Stderr = &b, &b
		require.NoError(t, cmd.Start())
		cmds, outs = append(cmds, cmd), append(outs, &b)
	}
	for i, c := range cmds {
		require.NoError(t, c.Wait(), "process %d: %s", i, outs[i])
	}
	code, out, _ := pflashCache(t, "cache", "list", "--json", "--cache-dir", dir)
	require.Equal(t, 0, code)
	assert.Len(t, jsonLines(t, out), 3)
	var files int
	require.NoError(t, filepath.Walk(filepath.Join(dir, "objects"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			files++
		}
		return err
	}))
	assert.Equal(t, 3, files, "one copy of each file")
	code, out, _ = pflashCache(t, "cache", "verify", "--cache-dir", dir)
	require.Equal(t, 0, code, out)
	assert.Equal(t, 3, srv.requests(), "each file downloaded once")
}

func TestCacheCatalogRefresh(t *testing.T) {
	// The same page firmware-cache's Refresh is tested with.
	page, err := os.ReadFile(filepath.Join("..", "..", "testdata", "github-releases.json"))
	require.NoError(t, err)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("page") != "1" {
			_, _ = w.Write([]byte("[]"))
			return
		}
		_, _ = w.Write(page)
	}))
	defer api.Close()
	dir := t.TempDir()
	code, out, errOut := pflashCache(t, "cache", "catalog", "--refresh", "--api", api.URL, "--platform", "boron", "--version", "6.6.0", "--json", "--cache-dir", dir)
	require.Equal(t, 0, code, errOut)
	rows := jsonLines(t, out)
	require.Len(t, rows, 1)
	assert.Equal(t, float64(123456), rows[0]["size"])
	assert.Equal(t, true, rows[0]["latest"])
	// Kept for later runs, which need no network.
	code, out, _ = pflashCache(t, "cache", "catalog", "--offline", "--platform", "boron", "--version", "6.6.0", "--cache-dir", dir)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "Device OS 6.6.0 for boron (latest")
	code, _, errOut = pflashCache(t, "cache", "catalog", "--refresh", "--offline", "--api", api.URL, "--cache-dir", dir)
	assert.Equal(t, exitFailed, code)
	assert.Contains(t, errOut, "offline")
}
