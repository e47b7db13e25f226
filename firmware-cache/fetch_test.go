package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

var argon410 = []string{"argon-softdevice@4.1.0.bin", "argon-system-part1@4.1.0.bin", "argon-bootloader@4.1.0.bin"}

// Acceptance 1: fetching 4.1.0 for Argon from a server with the real binaries yields
// verified, indexed cache entries; a second fetch is served from the cache.
func TestFetchArgon410(t *testing.T) {
	srv := newReleaseServer(t)
	dir := t.TempDir()
	var events []Progress
	c := openTest(t, dir, Options{Mirrors: []string{srv.base()}, Progress: func(p Progress) { events = append(events, p) }})

	res, err := c.Fetch(ctxT(t), "4.1.0", "argon", FetchOptions{})
	require.NoError(t, err)
	require.Equal(t, "4.1.0", res.Release.Version)
	require.Len(t, res.Files, 3, "Device OS modules only: SoftDevice, system part, bootloader (no Tinker)")
	for _, f := range res.Files {
		assert.True(t, f.Downloaded)
		data, err := os.ReadFile(f.Entry.Path)
		require.NoError(t, err)
		real, err := os.ReadFile(filepath.Join(srv.dir, f.Module.Asset))
		require.NoError(t, err)
		assert.Equal(t, real, data, "stored file is the served file")
		_, err = VerifyModule(data, f.Module)
		require.NoError(t, err)
		assert.Equal(t, "4.1.0", f.Entry.DeviceOS)
		assert.Equal(t, "argon", f.Entry.Platform)
		assert.Equal(t, int64(len(real)), f.Entry.Size)
		assert.Equal(t, filepath.Join(dir, "objects", f.Entry.SHA256[:2], f.Entry.SHA256+".bin"), f.Entry.Path)
	}

	entries, err := c.Entries()
	require.NoError(t, err)
	byName := map[string]Entry{}
	for _, e := range entries {
		byName[e.Name] = e
	}
	require.Len(t, byName, 3)
	sp := byName["system-part1"]
	assert.Equal(t, "system", sp.Function)
	assert.Equal(t, uint8(1), sp.Index)
	assert.Equal(t, uint16(4100), sp.ModuleVersion)
	assert.Equal(t, "e114a33b", sp.CRC32)
	assert.Equal(t, int64(469386), sp.Size)
	assert.Equal(t, "0x00030000", sp.Start)
	requireAllGood(t, c)

	// Progress: per file and in total, ending with everything done.
	require.NotEmpty(t, events)
	last := events[len(events)-1]
	assert.Equal(t, int64(153048+469386+45844), last.AllTotal)
	assert.Equal(t, last.AllTotal, last.AllDone)
	verified := 0
	for _, e := range events {
		if e.Event == "verified" {
			verified++
		}
	}
	assert.Equal(t, 3, verified)

	before := len(srv.requests())
	res, err = c.Fetch(ctxT(t), "v4.1.0", "argon", FetchOptions{})
	require.NoError(t, err)
	for _, f := range res.Files {
		assert.False(t, f.Downloaded)
	}
	assert.Equal(t, before, len(srv.requests()), "a warm cache makes no requests")
}

// Acceptance 2: every server fault ends with a verified file or a clear error naming the
// file, the URL and the cause, and never with a bad file in the cache.
func TestFetchFaults(t *testing.T) {
	const target = "argon-system-part1@4.1.0.bin"
	cases := []struct {
		name  string
		fault fault
		// wantErr is nil when the fetch must succeed.
		wantErr  error
		wantText []string
		check    func(t *testing.T, srv *releaseServer)
	}{
		{
			name: "cut half-way, then resumed with Range",
			fault: func(w http.ResponseWriter, r *http.Request, asset string, data []byte, n int) bool {
				if asset != target || n != 1 {
					return false
				}
				w.Header().Set("Content-Length", strconv.Itoa(len(data)))
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write(data[:len(data)/2])
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler) // drop the connection mid-body
			},
			check: func(t *testing.T, srv *releaseServer) {
				var ranged []string
				for _, r := range srv.requests() {
					if strings.HasPrefix(r, "GET "+target) && !strings.HasSuffix(r, "range=") {
						ranged = append(ranged, r)
					}
				}
				require.Len(t, ranged, 1, "the second request resumes: %v", srv.requests())
				assert.Equal(t, fmt.Sprintf("GET %s range=bytes=%d-", target, 469386/2), ranged[0])
				assert.Contains(t, srv.responses(), target+" 206", "the server sent only the rest")
			},
		},
		{
			name: "500 twice, then retried",
			fault: func(w http.ResponseWriter, r *http.Request, asset string, data []byte, n int) bool {
				if asset == target && n <= 2 {
					http.Error(w, "boom", http.StatusInternalServerError)
					return true
				}
				return false
			},
			check: func(t *testing.T, srv *releaseServer) { assert.Equal(t, 3, srv.count(target)) },
		},
		{
			name: "stalls once, then retried",
			fault: func(w http.ResponseWriter, r *http.Request, asset string, data []byte, n int) bool {
				if asset == target && n == 1 {
					w.Header().Set("Content-Length", strconv.Itoa(len(data)))
					w.WriteHeader(http.StatusOK)
					_, _ = w.Write(data[:1000])
					w.(http.Flusher).Flush()
					select {
					case <-r.Context().Done():
					case <-time.After(5 * time.Second):
					}
					return true
				}
				return false
			},
		},
		{
			name: "corrupted byte",
			fault: func(w http.ResponseWriter, r *http.Request, asset string, data []byte, n int) bool {
				if asset != target {
					return false
				}
				bad := append([]byte(nil), data...)
				bad[len(bad)/3] ^= 0x40
				_, _ = w.Write(bad)
				return true
			},
			wantErr:  ErrVerify,
			wantText: []string{"CRC mismatch"},
		},
		{
			name: "truncated file",
			fault: func(w http.ResponseWriter, r *http.Request, asset string, data []byte, n int) bool {
				if asset != target {
					return false
				}
				_, _ = w.Write(data[:len(data)-5000])
				return true
			},
			wantErr:  ErrVerify,
			wantText: []string{"truncated", "469386"},
		},
		{
			name: "wrong-platform file",
			fault: func(w http.ResponseWriter, r *http.Request, asset string, data []byte, n int) bool {
				if asset != target {
					return false
				}
				boron, err := os.ReadFile(filepath.Join(filepath.Dir(testshared.Dir(t, "firmware", "releases", target)), "boron-system-part1@4.1.0.bin"))
				if err != nil {
					panic(err)
				}
				_, _ = w.Write(boron)
				return true
			},
			wantErr:  ErrVerify,
			wantText: []string{"wrong platform", "boron (13)", "argon (12)"},
		},
		{
			name: "404",
			fault: func(w http.ResponseWriter, r *http.Request, asset string, data []byte, n int) bool {
				if asset != target {
					return false
				}
				http.NotFound(w, r)
				return true
			},
			wantErr:  ErrNotFound,
			wantText: []string{"404"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newReleaseServer(t)
			srv.setFault(tc.fault)
			dir := t.TempDir()
			// Long enough that a loaded machine (or Wine's network stack in
			// windows-smoke) answering a healthy request late is not taken for a stall,
			// which turned "cut half-way" into a plain retry without Range.
			c := openTest(t, dir, Options{Mirrors: []string{srv.base()}, StallTimeout: 2 * time.Second})
			res, err := c.Fetch(ctxT(t), "4.1.0", "argon", FetchOptions{})
			if tc.wantErr == nil {
				require.NoError(t, err)
				require.Len(t, res.Files, 3)
			} else {
				require.Error(t, err)
				require.ErrorIs(t, err, tc.wantErr)
				msg := err.Error()
				t.Log(msg)
				assert.Contains(t, msg, target, "the error names the file")
				assert.Contains(t, msg, srv.base()+"/v4.1.0/"+target, "the error names the URL")
				for _, s := range tc.wantText {
					assert.Contains(t, msg, s, "the error says the cause")
				}
				var fe *FetchError
				require.ErrorAs(t, err, &fe)
				assert.Empty(t, partials(t, dir), "no partial file is left for a file that cannot be had")
				// The other modules arrived and are kept.
				entries, _ := c.Entries()
				assert.Len(t, entries, 2)
			}
			requireAllGood(t, c)
			if tc.check != nil {
				tc.check(t, srv)
			}
		})
	}
}

// A mirror that fails sends the fetch on to the next one.
func TestFetchMirrorFallback(t *testing.T) {
	bad := newReleaseServer(t)
	bad.setFault(func(w http.ResponseWriter, r *http.Request, asset string, data []byte, n int) bool {
		http.NotFound(w, r)
		return true
	})
	good := newReleaseServer(t)
	c := openTest(t, t.TempDir(), Options{Mirrors: []string{bad.base(), good.base()}})
	res, err := c.Fetch(ctxT(t), "4.1.0", "argon", FetchOptions{})
	require.NoError(t, err)
	for _, f := range res.Files {
		assert.Contains(t, f.Entry.Source, good.srv.URL)
	}
}

// A file:// mirror (here a flat directory of assets) works like a server.
func TestFetchFileMirror(t *testing.T) {
	dir := testshared.Dir(t, "firmware", "releases")
	c := openTest(t, t.TempDir(), Options{Mirrors: []string{fileURL(dir)}})
	res, err := c.Fetch(ctxT(t), "2.3.1", "photon", FetchOptions{Modules: []string{"system-part1", "system-part2", "bootloader"}})
	require.NoError(t, err)
	require.Len(t, res.Files, 3)
	requireAllGood(t, c)

	c2 := openTest(t, t.TempDir(), Options{Mirrors: []string{dir}}) // a plain path too
	_, err = c2.Fetch(ctxT(t), "4.1.0", "boron", FetchOptions{})
	require.NoError(t, err)
}

// Plain HTTP is refused for remote mirrors unless allowed (a LAN mirror).
func TestMirrorSecurity(t *testing.T) {
	_, err := Open(Options{Dir: t.TempDir(), Mirrors: []string{"http://192.0.2.10/device-os"}})
	require.ErrorIs(t, err, ErrInsecureURL)
	_, err = Open(Options{Dir: t.TempDir(), Mirrors: []string{"http://192.0.2.10/device-os"}, AllowHTTP: true})
	require.NoError(t, err)
	_, err = Open(Options{Dir: t.TempDir(), Mirrors: []string{"ftp://example.com/x"}})
	require.Error(t, err)
	for _, ok := range []string{"https://mirror.example.com/x", "http://127.0.0.1:8080/x", "http://localhost/x", "file:///srv/mirror"} {
		_, err = Open(Options{Dir: t.TempDir(), Mirrors: []string{ok}})
		require.NoError(t, err, ok)
	}
}

// Acceptance 4: with a warm cache, offline mode resolves a full release with zero
// network calls; with a cold one it names every missing file, still without a call.
func TestOfflineWarmCache(t *testing.T) {
	dir := t.TempDir()
	online := newReleaseServer(t)
	_, err := openTest(t, dir, Options{Mirrors: []string{online.base()}}).Fetch(ctxT(t), "4.1.0", "argon", FetchOptions{})
	require.NoError(t, err)

	trap := newReleaseServer(t)
	trap.failAll = true
	c := openTest(t, dir, Options{Mirrors: []string{trap.base()}, Offline: true})
	res, err := c.Fetch(ctxT(t), "4.1.0", "argon", FetchOptions{})
	require.NoError(t, err)
	require.Len(t, res.Files, 3)
	for _, f := range res.Files {
		assert.FileExists(t, f.Entry.Path)
	}

	// Cold: a release never fetched.
	_, err = c.Fetch(ctxT(t), "4.1.0", "boron", FetchOptions{})
	var me *MissingError
	require.ErrorAs(t, err, &me)
	require.ErrorIs(t, err, ErrOffline)
	assert.ElementsMatch(t, []string{"boron-softdevice@4.1.0.bin", "boron-system-part1@4.1.0.bin", "boron-bootloader@4.1.0.bin"}, me.Files)
	assert.Empty(t, trap.requests())

	// A module shared between releases is found under either: the Argon SoftDevice of
	// 4.1.0 is the same file as 4.0.2's.
	_, err = c.Fetch(ctxT(t), "4.0.2", "argon", FetchOptions{Modules: []string{"softdevice"}})
	require.NoError(t, err)
	assert.Empty(t, trap.requests())
}

// Acceptance 3 (in one process): two Cache values on one directory fetching the same
// release at once end with one good copy of each file, each downloaded once.
func TestConcurrentFetchSameDir(t *testing.T) {
	srv := newReleaseServer(t)
	// Slow the transfers so the two fetches overlap.
	srv.setFault(func(w http.ResponseWriter, r *http.Request, asset string, data []byte, n int) bool {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		for i := 0; i < len(data); i += 64 << 10 {
			_, _ = w.Write(data[i:min(i+64<<10, len(data))])
			w.(http.Flusher).Flush()
			time.Sleep(5 * time.Millisecond)
		}
		return true
	})
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Open(Options{Dir: dir, Mirrors: []string{srv.base()}, Logger: testLogger(t)})
			if err != nil {
				errs[i] = err
				return
			}
			_, errs[i] = c.Fetch(context.Background(), "4.1.0", "argon", FetchOptions{})
		}()
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	requireOneGoodCopy(t, dir)
	for _, a := range argon410 {
		assert.Equal(t, 1, srv.count(a), "%s downloaded once", a)
	}
}

func requireOneGoodCopy(t *testing.T, dir string) {
	t.Helper()
	c := openTest(t, dir, Options{Offline: true})
	entries, err := c.Entries()
	require.NoError(t, err)
	require.Len(t, entries, 3, "one index entry per module: %+v", entries)
	require.Len(t, objects(t, dir), 3, "one stored copy per module")
	require.Empty(t, partials(t, dir))
	requireAllGood(t, c)
}

// Acceptance 3 (two processes): this test binary re-runs itself as two fetch processes.
func TestTwoProcessesFetch(t *testing.T) {
	if os.Getenv("PFLASH_CACHE_HELPER") != "" {
		t.Skip("helper process")
	}
	srv := newReleaseServer(t)
	srv.setFault(func(w http.ResponseWriter, r *http.Request, asset string, data []byte, n int) bool {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		for i := 0; i < len(data); i += 64 << 10 {
			_, _ = w.Write(data[i:min(i+64<<10, len(data))])
			w.(http.Flusher).Flush()
			time.Sleep(5 * time.Millisecond)
		}
		return true
	})
	dir := t.TempDir()
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperFetchProcess$", "-test.v")
		cmd.Env = append(os.Environ(), "PFLASH_CACHE_HELPER=1", "PFLASH_HELPER_DIR="+dir, "PFLASH_HELPER_BASE="+srv.base())
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Start())
		cmds, outs = append(cmds, cmd), append(outs, &out)
	}
	for i, cmd := range cmds {
		require.NoError(t, cmd.Wait(), "process %d:\n%s", i, outs[i])
	}
	requireOneGoodCopy(t, dir)
	for _, a := range argon410 {
		assert.Equal(t, 1, srv.count(a), "%s downloaded once", a)
	}
}

// TestHelperFetchProcess is one of TestTwoProcessesFetch's processes.
func TestHelperFetchProcess(t *testing.T) {
	if os.Getenv("PFLASH_CACHE_HELPER") == "" {
		t.Skip("run by TestTwoProcessesFetch")
	}
	c, err := Open(Options{Dir: os.Getenv("PFLASH_HELPER_DIR"), Mirrors: []string{os.Getenv("PFLASH_HELPER_BASE")}})
	require.NoError(t, err)
	res, err := c.Fetch(context.Background(), "4.1.0", "argon", FetchOptions{})
	require.NoError(t, err)
	require.Len(t, res.Files, 3)
}

// An interrupted fetch (cancelled) keeps its partial file, and the next run resumes it.
func TestResumeAcrossRuns(t *testing.T) {
	const target = "argon-system-part1@4.1.0.bin"
	srv := newReleaseServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv.setFault(func(w http.ResponseWriter, r *http.Request, asset string, data []byte, n int) bool {
		if asset != target || n != 1 {
			return false
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		_, _ = w.Write(data[:200000])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return true
	})
	dir := t.TempDir()
	c := openTest(t, dir, Options{Mirrors: []string{srv.base()}, Parallel: 1, Progress: func(p Progress) {
		if p.Done >= 150000 {
			cancel() // the person presses Ctrl-C
		}
	}})
	_, err := c.Fetch(ctx, "4.1.0", "argon", FetchOptions{Modules: []string{"system-part1"}})
	require.ErrorIs(t, err, context.Canceled)
	require.NotEmpty(t, partials(t, dir), "the partial download is kept for a resume")

	var last Progress
	c.progress = func(p Progress) { last = p }
	_, err = c.Fetch(ctxT(t), "4.1.0", "argon", FetchOptions{Modules: []string{"system-part1"}})
	require.NoError(t, err)
	assert.Equal(t, int64(469386), last.AllDone, "the resumed bytes count in the total")
	assert.Equal(t, last.AllTotal, last.AllDone)
	reqs := srv.requests()
	require.Len(t, reqs, 2)
	assert.Regexp(t, `range=bytes=\d+-$`, reqs[1])
	assert.Equal(t, target+" 206", srv.responses()[1], "resumed, not restarted")
	assert.Empty(t, partials(t, dir))
	requireAllGood(t, c)
}

// A stored file damaged on disk is quarantined by the next fetch and downloaded again.
func TestDamagedCacheFileRefetched(t *testing.T) {
	srv := newReleaseServer(t)
	dir := t.TempDir()
	c := openTest(t, dir, Options{Mirrors: []string{srv.base()}})
	res, err := c.Fetch(ctxT(t), "4.1.0", "argon", FetchOptions{Modules: []string{"bootloader"}})
	require.NoError(t, err)
	damage(t, res.Files[0].Entry.Path)

	res, err = c.Fetch(ctxT(t), "4.1.0", "argon", FetchOptions{Modules: []string{"bootloader"}})
	require.NoError(t, err)
	assert.True(t, res.Files[0].Downloaded)
	assert.Equal(t, 2, srv.count("argon-bootloader@4.1.0.bin"))
	q, _ := os.ReadDir(filepath.Join(dir, quarantineDir))
	assert.NotEmpty(t, q)
	requireAllGood(t, c)
}

func damage(t *testing.T, path string) {
	t.Helper()
	require.NoError(t, os.Chmod(path, 0o644))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[100] ^= 0xFF
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// Unknown versions and platforms say what exists.
func TestFetchUnknownRelease(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{Offline: true})
	_, err := c.Fetch(ctxT(t), "9.9.9", "argon", FetchOptions{})
	require.ErrorIs(t, err, ErrNotInCatalog)
	_, err = c.Fetch(ctxT(t), "4.1.0", "toaster", FetchOptions{})
	require.ErrorIs(t, err, ErrNotInCatalog)
	assert.True(t, errors.Is(err, ErrNotInCatalog))
}

// The module parse of a downloaded file is the one the catalog expects.
func TestVerifyModuleAgainstCatalog(t *testing.T) {
	dir := testshared.Dir(t, "firmware", "releases")
	cat, err := Embedded()
	require.NoError(t, err)
	r, err := cat.Release("2.3.1", "electron")
	require.NoError(t, err)
	for _, name := range []string{"system-part1", "system-part2", "system-part3"} {
		m, _ := r.Module(name)
		data, err := os.ReadFile(filepath.Join(dir, m.Asset))
		require.NoError(t, err)
		mod, err := VerifyModule(data, m)
		require.NoError(t, err, name)
		assert.Equal(t, m.Index, mod.Index)
	}
	// The Electron's system-part1 file is index 3 (reference §6c.1): the part2 file in
	// its place is refused.
	m1, _ := r.Module("system-part1")
	data, err := os.ReadFile(filepath.Join(dir, "electron-system-part2@2.3.1.bin"))
	require.NoError(t, err)
	_, err = VerifyModule(data, m1)
	require.ErrorIs(t, err, ErrVerify)
	assert.Contains(t, err.Error(), "wrong module")
	_, err = VerifyModule(nil, m1)
	require.ErrorIs(t, err, ErrVerify)
	require.ErrorIs(t, err, module.ErrEmpty)
}

// Modules that are not Device OS release assets (the Tracker NCP, Tracker Edge) come
// from a member of a Device Restore bundle: "<zip URL>#<member>".
func TestFetchBundleMember(t *testing.T) {
	rel := testshared.Dir(t, "firmware", "releases")
	sd, err := os.ReadFile(filepath.Join(rel, "argon-softdevice@4.1.0.bin"))
	require.NoError(t, err)
	zp := filepath.Join(t.TempDir(), "argon.zip")
	writeZip(t, zp, map[string][]byte{"softdevice.bin": sd, "readme.txt": []byte("x")})
	zb, err := os.ReadFile(zp)
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "argon.zip", time.Unix(1600000000, 0), bytes.NewReader(zb))
	}))
	defer srv.Close()

	cat, err := Embedded()
	require.NoError(t, err)
	r, err := cat.Release("4.1.0", "argon")
	require.NoError(t, err)
	m, _ := r.Module("softdevice")
	c := openTest(t, t.TempDir(), Options{Mirrors: []string{srv.URL}})
	part := filepath.Join(c.Dir(), tmpDir, "x.part")
	data, _, err := c.fetchURL(ctxT(t), srv.URL+"/argon.zip#softdevice.bin", part, m, nil)
	require.NoError(t, err)
	assert.Equal(t, sd, data)
	got, err := os.ReadFile(part)
	require.NoError(t, err)
	assert.Equal(t, sd, got, "the partial file holds the member, ready to commit")

	_, _, err = c.fetchURL(ctxT(t), srv.URL+"/argon.zip#ncp.bin", part, m, nil)
	require.ErrorIs(t, err, ErrNotFound)
}

// A download that starts on HTTPS never follows a redirect to plain HTTP elsewhere.
func TestNoRedirectDowngrade(t *testing.T) {
	cl := defaultClient()
	req := func(u string) *http.Request {
		r, err := http.NewRequest(http.MethodGet, u, nil)
		require.NoError(t, err)
		return r
	}
	via := []*http.Request{req("https://github.com/particle-iot/device-os/releases/download/v4.1.0/a.bin")}
	require.ErrorIs(t, cl.CheckRedirect(req("http://evil.example/a.bin"), via), ErrInsecureURL)
	require.NoError(t, cl.CheckRedirect(req("https://objects.githubusercontent.com/a.bin"), via))
}
