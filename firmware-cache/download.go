package cache

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// Errors a fetch can wrap; each comes inside a DownloadError naming the file and URL.
var (
	// ErrInsecureURL: a plain-HTTP mirror on a remote host without AllowHTTP.
	ErrInsecureURL = errors.New("plain HTTP to a remote host refused")
	// ErrNotFound: the server (or mirror directory) does not have the file.
	ErrNotFound = errors.New("not found")
	// ErrOffline: the file is not cached and the network may not be used.
	ErrOffline = errors.New("not in the cache and offline")
	// ErrStalled: the server sent nothing for StallTimeout.
	ErrStalled = errors.New("download stalled")
)

// StatusError is an HTTP answer other than success.
type StatusError struct {
	Code   int
	Status string
	// RetryAfter is the server's Retry-After, if it gave one in seconds.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string { return "HTTP " + e.Status }

// Is makes a 404 or 410 match ErrNotFound.
func (e *StatusError) Is(target error) bool {
	return target == ErrNotFound && (e.Code == http.StatusNotFound || e.Code == http.StatusGone)
}

// DownloadError is one URL's failure for one file.
type DownloadError struct {
	File     string // the asset name
	URL      string
	Attempts int
	Err      error
}

func (e *DownloadError) Error() string {
	s := fmt.Sprintf("%s from %s: %v", e.File, e.URL, e.Err)
	if e.Attempts > 1 {
		s += fmt.Sprintf(" (after %d attempts)", e.Attempts)
	}
	return s
}

// Unwrap returns the cause.
func (e *DownloadError) Unwrap() error { return e.Err }

// FetchError is a module no source could deliver intact: every URL tried and why each
// failed.
type FetchError struct {
	Release string // e.g. "Device OS 4.1.0 for argon"
	File    string
	Tried   []error // *DownloadError, one per URL
}

func (e *FetchError) Error() string {
	msgs := make([]string, len(e.Tried))
	for i, t := range e.Tried {
		msgs[i] = t.Error()
	}
	if len(msgs) == 0 {
		return fmt.Sprintf("cannot fetch %s (%s): no source to fetch it from", e.File, e.Release)
	}
	return fmt.Sprintf("cannot fetch %s (%s): %s", e.File, e.Release, strings.Join(msgs, "; "))
}

// Unwrap returns every URL's error.
func (e *FetchError) Unwrap() []error { return e.Tried }

// Progress reports a download. Done/Total are this file's bytes (Total 0 = unknown),
// AllDone/AllTotal the whole fetch's.
type Progress struct {
	Release  string
	File     string
	URL      string
	Event    string // "start", "data", "resume", "retry", "verified", "cached", "failed"
	Done     int64
	Total    int64
	AllDone  int64
	AllTotal int64
	Err      error
}

// mirror is one source of release assets.
type mirror struct {
	base string // without trailing slash
	dir  string // local directory for file:// mirrors
}

func (m mirror) isDefault() bool { return m.base == DefaultAssetBase }

// parseMirror checks a base URL: https anywhere, http on loopback or with allowHTTP,
// file:// or a plain path for a local directory.
func parseMirror(s string, allowHTTP bool) (mirror, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return mirror{}, errors.New("empty mirror URL")
	}
	if !strings.Contains(s, "://") {
		abs, err := filepath.Abs(s)
		if err != nil {
			return mirror{}, fmt.Errorf("mirror %s: %w", s, err)
		}
		return mirror{base: fileURL(abs), dir: abs}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return mirror{}, fmt.Errorf("mirror %q: %w", s, err)
	}
	base := strings.TrimRight(s, "/")
	switch strings.ToLower(u.Scheme) {
	case "https":
		return mirror{base: base}, nil
	case "http":
		if allowHTTP || isLoopback(u.Hostname()) {
			return mirror{base: base}, nil
		}
		return mirror{}, remedy.With(fmt.Errorf("mirror %s: %w", s, ErrInsecureURL),
			"use an https:// mirror, or pass --allow-http if this is a trusted mirror on your own network (every file is still verified)")
	case "file":
		p := filePath(u)
		return mirror{base: base, dir: p}, nil
	}
	return mirror{}, fmt.Errorf("mirror %s: unsupported scheme %q (use https://, http:// or file://)", s, u.Scheme)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func fileURL(abs string) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // C:/x -> /C:/x
	}
	return (&url.URL{Scheme: "file", Path: p}).String()
}

func filePath(u *url.URL) string {
	p := u.Path
	if runtime.GOOS == "windows" && len(p) > 2 && p[0] == '/' && p[2] == ':' {
		p = p[1:]
	}
	return filepath.FromSlash(p)
}

func defaultClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 60 * time.Second
	return &http.Client{
		Transport: tr,
		// GitHub redirects asset downloads to its CDN; never follow a redirect down to
		// plain HTTP on a remote host.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != "https" && !isLoopback(req.URL.Hostname()) && via[0].URL.Scheme == "https" {
				return fmt.Errorf("redirect to %s: %w", req.URL.Redacted(), ErrInsecureURL)
			}
			return nil
		},
	}
}

func defaultBackoff(n int) time.Duration {
	d := 500 * time.Millisecond << min(n-1, 5)
	d = min(d, 10*time.Second)
	return d/2 + rand.N(d/2+1)
}

// candidates are the URLs a module is tried from, in order.
func (c *Cache) candidates(r *Release, m *Module) []string {
	names := append([]string{m.Asset}, m.AltAssets...)
	var out []string
	for _, mi := range c.mirrors {
		if mi.isDefault() && m.Origin != "" {
			out = append(out, m.Origin)
			continue
		}
		for _, n := range names {
			out = append(out, URL(mi.base, r.Version, n))
			if mi.dir != "" {
				out = append(out, mi.base+"/"+n) // a flat directory of assets
			}
		}
	}
	return out
}

// tracker aggregates progress over a fetch and serialises the callback.
type tracker struct {
	mu       sync.Mutex
	fn       func(Progress)
	release  string
	allDone  int64
	allTotal int64
	done     map[string]int64
}

func newTracker(fn func(Progress), release string, total int64) *tracker {
	return &tracker{fn: fn, release: release, allTotal: total, done: map[string]int64{}}
}

func (t *tracker) emit(file, u, event string, delta, total int64, err error) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done[file] += delta
	t.allDone += delta
	if t.fn != nil {
		t.fn(Progress{Release: t.release, File: file, URL: u, Event: event, Done: t.done[file], Total: total,
			AllDone: t.allDone, AllTotal: t.allTotal, Err: err})
	}
}

// doneOf is how many bytes of a file the tracker has counted.
func (t *tracker) doneOf(file string) int64 {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.done[file]
}

// reset forgets a file's bytes when a download starts over.
func (t *tracker) reset(file string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.allDone -= t.done[file]
	t.done[file] = 0
	t.mu.Unlock()
}

// partMeta remembers where a partial file came from, so a resume asks the same URL for
// the same version of the file (If-Range) and never splices two files together.
type partMeta struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

func readMeta(part string) partMeta {
	var m partMeta
	if b, err := os.ReadFile(part + ".json"); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

func writeMeta(part string, m partMeta) {
	b, _ := json.Marshal(m)
	_ = os.WriteFile(part+".json", b, 0o644)
}

func removePart(part string) {
	os.Remove(part)
	os.Remove(part + ".json")
}

// retryable marks an error worth another attempt at the same URL.
type retryable struct{ err error }

func (r *retryable) Error() string { return r.err.Error() }
func (r *retryable) Unwrap() error { return r.err }

func isRetryable(err error) bool {
	var r *retryable
	return errors.As(err, &r)
}

// download fetches u into part, resuming what part already holds and retrying
// transient failures with backoff. resumed reports whether the file was assembled from
// more than one response.
func (c *Cache) download(ctx context.Context, u, part string, want *Module, tr *tracker) (resumed bool, attempts int, err error) {
	for attempts = 1; ; attempts++ {
		err = c.getOnce(ctx, u, part, want, tr, &resumed)
		if err == nil {
			return resumed, attempts, nil
		}
		if ctx.Err() != nil {
			return resumed, attempts, ctx.Err()
		}
		if !isRetryable(err) || attempts >= c.attempts {
			return resumed, attempts, err
		}
		wait := c.backoff(attempts)
		var se *StatusError
		if errors.As(err, &se) && se.RetryAfter > wait {
			wait = min(se.RetryAfter, 30*time.Second)
		}
		c.log.Debug("download failed, retrying", "file", want.Asset, "url", u, "attempt", attempts, "wait", wait, "err", err)
		tr.emit(want.Asset, u, "retry", 0, want.Size, err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return resumed, attempts, ctx.Err()
		case <-t.C:
		}
	}
}

// getOnce makes one attempt: a GET (with Range when part has bytes) appended to part.
func (c *Cache) getOnce(ctx context.Context, u, part string, want *Module, tr *tracker, resumed *bool) error {
	pu, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("bad URL: %w", err)
	}
	var off int64
	meta := readMeta(part)
	if st, err := os.Stat(part); err == nil {
		off = st.Size()
	}
	// A file larger than expected is still read whole (up to the bound on any module),
	// so verification can say what it really is rather than "truncated".
	limit := int64(maxModuleBytes)
	if meta.URL != u || off > limit {
		removePart(part)
		tr.reset(want.Asset)
		off = 0
		meta = partMeta{URL: u}
	}
	if off > 0 && off == want.Size && !strings.Contains(u, ".zip#") {
		return nil // complete from an earlier run; verification decides
	}
	if pu.Scheme == "file" {
		return c.getFile(ctx, filePath(pu), part, off, want, u, tr, resumed)
	}

	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := time.AfterFunc(c.stall, func() { cancel(ErrStalled) })
	defer stall.Stop()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, strings.SplitN(u, "#", 2)[0], nil)
	if err != nil {
		return fmt.Errorf("bad URL: %w", err)
	}
	req.Header.Set("User-Agent", "particle-flasher (pflash cache)")
	if off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
		if meta.ETag != "" {
			req.Header.Set("If-Range", meta.ETag)
		} else if meta.LastModified != "" {
			req.Header.Set("If-Range", meta.LastModified)
		}
	}
	resp, err := c.client.Do(req)
	if err != nil {
		if cause := context.Cause(actx); errors.Is(cause, ErrStalled) {
			return &retryable{fmt.Errorf("no answer for %s: %w", c.stall, ErrStalled)}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrInsecureURL) {
			return err
		}
		return &retryable{err}
	}
	defer resp.Body.Close()

	flags := os.O_WRONLY | os.O_CREATE
	switch code := resp.StatusCode; {
	case code == http.StatusPartialContent:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != off {
			removePart(part)
			tr.reset(want.Asset)
			return &retryable{fmt.Errorf("server resumed at the wrong offset (%q for %d); starting over", resp.Header.Get("Content-Range"), off)}
		}
		*resumed = true
		flags |= os.O_APPEND
		// A resume from an earlier run: count the bytes already there.
		tr.emit(want.Asset, u, "resume", off-tr.doneOf(want.Asset), want.Size, nil)
	case code == http.StatusOK:
		if off > 0 {
			tr.reset(want.Asset) // the server ignored the range (or the file changed): start over
		}
		off = 0
		flags |= os.O_TRUNC
		writeMeta(part, partMeta{URL: u, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")})
	case code == http.StatusRequestedRangeNotSatisfiable:
		removePart(part)
		tr.reset(want.Asset)
		return &retryable{errors.New("server refused to resume (HTTP 416); starting over")}
	default:
		se := &StatusError{Code: code, Status: resp.Status}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			se.RetryAfter = time.Duration(s) * time.Second
		}
		if code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout {
			return &retryable{se}
		}
		return se
	}
	total := want.Size
	if total == 0 && resp.ContentLength > 0 {
		total = off + resp.ContentLength
	}
	if off == 0 {
		tr.emit(want.Asset, u, "start", 0, total, nil)
	}
	f, err := os.OpenFile(part, flags, 0o644)
	if err != nil {
		return fmt.Errorf("write partial file: %w", err)
	}
	err = copyBody(f, resp.Body, limit-off, func(n int) {
		stall.Reset(c.stall)
		tr.emit(want.Asset, u, "data", int64(n), total, nil)
	})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if cause := context.Cause(actx); errors.Is(cause, ErrStalled) {
			return &retryable{fmt.Errorf("nothing received for %s: %w", c.stall, ErrStalled)}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &retryable{fmt.Errorf("connection lost: %w", err)}
	}
	return nil
}

// copyBody appends r to w, at most max bytes (more is left for verification to refuse
// by size: one byte over is enough to know).
func copyBody(w io.Writer, r io.Reader, max int64, onData func(int)) error {
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := r.Read(buf)
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return fmt.Errorf("write partial file: %w", werr)
			}
			n += int64(k)
			onData(k)
			if n > max {
				return nil
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func contentRangeStart(h string) (int64, bool) {
	// "bytes 100-199/200"
	h = strings.TrimSpace(h)
	if !strings.HasPrefix(h, "bytes ") {
		return 0, false
	}
	rng, _, _ := strings.Cut(strings.TrimPrefix(h, "bytes "), "/")
	start, _, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(start, 10, 64)
	return v, err == nil
}

// getFile copies from a mirror directory, resuming at off like HTTP would.
func (c *Cache) getFile(ctx context.Context, path, part string, off int64, want *Module, u string, tr *tracker, resumed *bool) error {
	src, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", path, ErrNotFound)
	}
	if err != nil {
		return err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory: %w", path, ErrNotFound)
	}
	if off > st.Size() {
		off = 0
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if off > 0 {
		if _, err := src.Seek(off, io.SeekStart); err != nil {
			return err
		}
		flags = os.O_WRONLY | os.O_APPEND
		*resumed = true
	} else {
		writeMeta(part, partMeta{URL: u})
		tr.emit(want.Asset, u, "start", 0, st.Size(), nil)
	}
	f, err := os.OpenFile(part, flags, 0o644)
	if err != nil {
		return err
	}
	err = copyBody(f, ctxReader{ctx, src}, maxModuleBytes, func(n int) { tr.emit(want.Asset, u, "data", int64(n), st.Size(), nil) })
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// zipMember extracts one member of a downloaded bundle ("<zip URL>#<member>").
func zipMember(zipPath, member string) ([]byte, error) {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return nil, fmt.Errorf("bundle is not a readable zip: %w", err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if f.Name == member || filepath.Base(filepath.FromSlash(f.Name)) == member {
			if f.UncompressedSize64 > maxModuleBytes {
				return nil, fmt.Errorf("bundle member %s is too large (%d bytes)", member, f.UncompressedSize64)
			}
			rc, err := f.Open()
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			var b bytes.Buffer
			if _, err := io.Copy(&b, io.LimitReader(rc, maxModuleBytes)); err != nil {
				return nil, fmt.Errorf("bundle member %s: %w", member, err)
			}
			return b.Bytes(), nil
		}
	}
	return nil, fmt.Errorf("bundle has no %s: %w", member, ErrNotFound)
}
