package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/particle-flasher/particle-flasher/internal/testshared"
)

// releasePrefix is the GitHub release download layout the test server mimics.
const releasePrefix = "/particle-iot/device-os/releases/download/"

// fault lets a test change what the server does for one request; it returns true when
// it has answered. n counts the requests for this asset, from 1.
type fault func(w http.ResponseWriter, r *http.Request, asset string, data []byte, n int) bool

// releaseServer serves the real binaries of ../shared/firmware/releases under the
// GitHub asset layout, /particle-iot/device-os/releases/download/v<ver>/<asset>.
type releaseServer struct {
	t      *testing.T
	dir    string
	srv    *httptest.Server
	mu     sync.Mutex
	counts map[string]int
	log    []string // "GET <asset> range=<Range>"
	// statuses are "<asset> <code>" per request, in the order the requests came (a
	// handler held open by a fault can finish after the next request's).
	statuses []string
	fault    fault
	// failAll makes every request a test failure (offline tests).
	failAll bool
}

func newReleaseServer(t *testing.T) *releaseServer {
	t.Helper()
	s := &releaseServer{t: t, dir: testshared.Dir(t, "firmware", "releases"), counts: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *releaseServer) base() string { return s.srv.URL + strings.TrimSuffix(releasePrefix, "/") }

func (s *releaseServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.failAll {
		s.mu.Unlock()
		s.t.Errorf("offline test made a network request: %s %s", r.Method, r.URL)
		http.Error(w, "no network in this test", http.StatusTeapot)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, releasePrefix)
	if !ok {
		s.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	_, asset, _ := strings.Cut(rest, "/")
	s.counts[asset]++
	n := s.counts[asset]
	s.log = append(s.log, "GET "+asset+" range="+r.Header.Get("Range"))
	seq := len(s.statuses)
	s.statuses = append(s.statuses, asset+" unanswered")
	f := s.fault
	s.mu.Unlock()

	data, err := os.ReadFile(filepath.Join(s.dir, asset))
	if err != nil || strings.ContainsAny(asset, `/\`) {
		s.mu.Lock()
		s.statuses[seq] = asset + " 404"
		s.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	// Like GitHub's CDN: a stable ETag, so a resume's If-Range matches.
	w.Header().Set("ETag", fmt.Sprintf(`"%x"`, sha256.Sum256(data)))
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	defer func() {
		s.mu.Lock()
		s.statuses[seq] = fmt.Sprintf("%s %d", asset, rec.code)
		s.mu.Unlock()
	}()
	if f != nil && f(rec, r, asset, data, n) {
		return
	}
	http.ServeContent(rec, r, asset, time.Unix(1600000000, 0), bytes.NewReader(data))
}

// statusRecorder notes the status a handler sent.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Flush() { r.ResponseWriter.(http.Flusher).Flush() }

// responses lists "<asset> <status>" for every request, in the order they came.
func (s *releaseServer) responses() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.statuses...)
}

func (s *releaseServer) setFault(f fault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

func (s *releaseServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

func (s *releaseServer) count(asset string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[asset]
}

// testLogger sends the package's logs to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// openTest opens a cache in dir with fast retries, the given mirrors and options.
func openTest(t *testing.T, dir string, o Options) *Cache {
	t.Helper()
	o.Dir = dir
	if o.Backoff == nil {
		o.Backoff = func(int) time.Duration { return time.Millisecond }
	}
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	c, err := Open(o)
	require.NoError(t, err)
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// objects lists the stored files of a cache directory.
func objects(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(filepath.Join(dir, objectsDir), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// partials lists partial downloads left in the cache's tmp directory.
func partials(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	ents, _ := os.ReadDir(filepath.Join(dir, tmpDir))
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".lock") {
			out = append(out, e.Name())
		}
	}
	return out
}

// requireAllGood asserts the cache holds only files that verify: the invariant every
// fault test ends with.
func requireAllGood(t *testing.T, c *Cache) {
	t.Helper()
	res, err := c.Verify(context.Background())
	require.NoError(t, err)
	for _, r := range res {
		require.True(t, r.OK, "bad file in the cache: %+v", r)
	}
	entries, err := c.Entries()
	require.NoError(t, err)
	require.Len(t, objects(t, c.Dir()), len(uniqueSHAs(entries)), "every stored file is indexed and vice versa")
}

func uniqueSHAs(es []Entry) map[string]bool {
	m := map[string]bool{}
	for _, e := range es {
		m[e.SHA256] = true
	}
	return m
}

// copyFile copies a shared binary into a test's temporary directory (never the repo).
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
	require.NoError(t, os.WriteFile(dst, b, 0o644))
}
