package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/particle-flasher/particle-flasher/firmware-cache/internal/catalogfile"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// EnvDir overrides the default cache directory (pflash's --cache-dir wins over it).
const EnvDir = "PFLASH_CACHE_DIR"

// Layout of the cache directory.
const (
	indexFile      = "index.json"
	lockFile       = "lock"
	objectsDir     = "objects"
	tmpDir         = "tmp"
	quarantineDir  = "quarantine"
	githubFile     = "github-releases.json"
	indexSchema    = 1
	maxModuleBytes = 64 << 20 // no Particle module is near this; bounds reads of odd files
)

// DefaultDir is where the cache lives unless told otherwise: $PFLASH_CACHE_DIR, else
// os.UserCacheDir()/particle-flasher.
func DefaultDir() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", remedy.With(fmt.Errorf("no user cache directory: %w", err), "pass --cache-dir DIR or set "+EnvDir)
	}
	return filepath.Join(base, "particle-flasher"), nil
}

// Options configure a Cache. The zero value is a cache in DefaultDir using the embedded
// catalog (plus any refresh saved in the directory) and the GitHub releases.
type Options struct {
	// Dir is the cache directory ("" = DefaultDir()).
	Dir string
	// Catalog replaces the embedded catalog and the refresh saved in Dir.
	Catalog *Catalog
	// Mirrors are base URLs tried in order, each serving <base>/v<version>/<asset>:
	// https:// servers, http:// on loopback (or anywhere with AllowHTTP), and file://
	// directories (also searched flat, <dir>/<asset>). Empty means DefaultAssetBase.
	Mirrors []string
	// AllowHTTP permits plain http:// mirrors on other hosts (a LAN mirror).
	AllowHTTP bool
	// Offline forbids all network access: only cached files resolve, and a missing
	// file is an error naming it.
	Offline bool
	// HTTPClient is used for every request (nil = a client with sane timeouts).
	HTTPClient *http.Client
	// Parallel bounds concurrent downloads (default 4).
	Parallel int
	// Attempts is how many times one URL is tried before the next mirror (default 4).
	Attempts int
	// Backoff is the wait before retry number n (1-based); nil = exponential from
	// 500 ms, capped at 10 s, with jitter.
	Backoff func(n int) time.Duration
	// StallTimeout abandons an attempt that receives nothing for this long (default 30 s).
	StallTimeout time.Duration
	// Progress, if set, receives download progress; calls are serialised.
	Progress func(Progress)
	// Logger receives debug and warning logs (nil = slog.Default()).
	Logger *slog.Logger
}

// Cache is a directory of verified module files with an index by version and platform.
// Several Cache values, in one process or several, may share a directory.
type Cache struct {
	dir      string
	cat      *Catalog
	mirrors  []mirror
	offline  bool
	client   *http.Client
	parallel int
	attempts int
	backoff  func(int) time.Duration
	stall    time.Duration
	progress func(Progress)
	log      *slog.Logger
}

// Open prepares a cache directory (creating it) and checks the mirrors. An insecure
// mirror is refused here, before anything is fetched.
func Open(o Options) (*Cache, error) {
	dir := o.Dir
	if dir == "" {
		d, err := DefaultDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("cache directory %s: %w", dir, err)
	}
	for _, sub := range []string{objectsDir, tmpDir, quarantineDir} {
		if err := os.MkdirAll(filepath.Join(abs, sub), 0o755); err != nil {
			return nil, remedy.With(fmt.Errorf("create cache directory: %w", err), "pass a writable --cache-dir DIR or set "+EnvDir)
		}
	}
	c := &Cache{
		dir: abs, offline: o.Offline, client: o.HTTPClient, parallel: o.Parallel, attempts: o.Attempts,
		backoff: o.Backoff, stall: o.StallTimeout, progress: o.Progress, log: o.Logger,
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.client == nil {
		c.client = defaultClient()
	}
	if c.parallel <= 0 {
		c.parallel = 4
	}
	if c.attempts <= 0 {
		c.attempts = 4
	}
	if c.backoff == nil {
		c.backoff = defaultBackoff
	}
	if c.stall <= 0 {
		c.stall = 30 * time.Second
	}
	bases := o.Mirrors
	if len(bases) == 0 {
		bases = []string{DefaultAssetBase}
	}
	for _, b := range bases {
		m, err := parseMirror(b, o.AllowHTTP)
		if err != nil {
			return nil, err
		}
		c.mirrors = append(c.mirrors, m)
	}
	c.cat = o.Catalog
	if c.cat == nil {
		if c.cat, err = c.loadCatalog(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Dir is the cache directory (absolute).
func (c *Cache) Dir() string { return c.dir }

// Catalog returns the catalog in use: the embedded snapshot plus any saved refresh.
func (c *Cache) Catalog() *Catalog { return c.cat }

// Entry is one indexed module file: which release module it is and where it is.
type Entry struct {
	DeviceOS   string `json:"device_os"`
	Platform   string `json:"platform"`
	PlatformID uint16 `json:"platform_id"`
	Name       string `json:"name"`
	Asset      string `json:"asset,omitempty"`
	// Component is set for a non-Device-OS file (a SoftDevice or NCP image).
	Component     string `json:"component,omitempty"`
	Function      string `json:"function"`
	Index         uint8  `json:"index"`
	ModuleVersion uint16 `json:"module_version"`
	Start         string `json:"start"`
	Size          int64  `json:"size"`
	CRC32         string `json:"crc32"`
	// SHA256 is the hash of the whole file: its address in the cache.
	SHA256 string `json:"sha256"`
	// ModuleSHA256 is the hash stored in the module's suffix.
	ModuleSHA256 string    `json:"module_sha256"`
	Path         string    `json:"path"`
	Source       string    `json:"source,omitempty"`
	Added        time.Time `json:"added"`
}

func (e *Entry) key() string { return e.DeviceOS + "/" + e.Platform + "/" + e.Name + "/" + e.Component }

type index struct {
	Schema  int     `json:"schema"`
	Entries []Entry `json:"entries"`
}

func (c *Cache) objectPath(sha string) string {
	return filepath.Join(c.dir, objectsDir, sha[:2], sha+".bin")
}

// readIndex reads the index without the lock: it is only ever replaced by rename, so a
// reader sees either the old or the new one, never a mix.
func (c *Cache) readIndex() (*index, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, indexFile))
	if errors.Is(err, fs.ErrNotExist) {
		return &index{Schema: indexSchema}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read cache index: %w", err)
	}
	var ix index
	if err := json.Unmarshal(b, &ix); err != nil {
		return nil, remedy.With(fmt.Errorf("cache index %s is damaged: %w", filepath.Join(c.dir, indexFile), err),
			"delete it and import "+filepath.Join(c.dir, objectsDir)+" to rebuild it from the files")
	}
	if ix.Schema > indexSchema {
		return nil, fmt.Errorf("cache index schema %d is newer than this version understands (%d)", ix.Schema, indexSchema)
	}
	for i := range ix.Entries {
		ix.Entries[i].Path = c.objectPath(ix.Entries[i].SHA256)
	}
	return &ix, nil
}

func (c *Cache) writeIndex(ix *index) error {
	sort.Slice(ix.Entries, func(i, j int) bool {
		a, b := ix.Entries[i], ix.Entries[j]
		if a.Platform != b.Platform {
			return a.Platform < b.Platform
		}
		if a.DeviceOS != b.DeviceOS {
			return CompareVersions(a.DeviceOS, b.DeviceOS) > 0
		}
		return a.Name < b.Name
	})
	ix.Schema = indexSchema
	out := index{Schema: indexSchema}
	for _, e := range ix.Entries {
		e.Path = "" // derived from SHA256; keeps the index valid if the directory moves
		out.Entries = append(out.Entries, e)
	}
	b, err := json.MarshalIndent(out, "", " ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(c.dir, indexFile), b)
}

// update runs fn on the index under the cache lock and saves the result.
func (c *Cache) update(ctx context.Context, fn func(ix *index) error) error {
	l, err := acquire(ctx, filepath.Join(c.dir, lockFile))
	if err != nil {
		return err
	}
	defer l.release()
	ix, err := c.readIndex()
	if err != nil {
		return err
	}
	if err := fn(ix); err != nil {
		return err
	}
	return c.writeIndex(ix)
}

// Entries lists every indexed module file, newest versions first within a platform.
func (c *Cache) Entries() ([]Entry, error) {
	ix, err := c.readIndex()
	if err != nil {
		return nil, err
	}
	return ix.Entries, nil
}

// writeFileAtomic writes to a temporary file beside path, syncs it and renames it into
// place, so a crash leaves the old file or the new one.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = replace(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// commit moves a verified file (tmp, inside the cache directory) into the object store
// and indexes it, under the lock. If the same content is already stored, tmp is dropped:
// two processes fetching the same file end with one copy.
func (c *Cache) commit(ctx context.Context, tmp string, f *facts, entries []Entry) ([]Entry, error) {
	var out []Entry
	err := c.update(ctx, func(ix *index) error {
		dst := c.objectPath(f.fileSHA)
		if st, err := os.Stat(dst); err == nil && st.Size() == f.size {
			if tmp != "" {
				os.Remove(tmp)
			}
		} else {
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if tmp == "" {
				return fmt.Errorf("internal: no file to store for %s", f.fileSHA)
			}
			if err := syncFile(tmp); err != nil {
				return err
			}
			if err := replace(tmp, dst); err != nil {
				return fmt.Errorf("store %s: %w", dst, err)
			}
			if runtime.GOOS != "windows" { // Windows cannot delete read-only files
				_ = os.Chmod(dst, 0o444) // cached files are never modified
			}
		}
		now := time.Now().UTC().Truncate(time.Second)
		for _, e := range entries {
			e.SHA256, e.Size, e.CRC32, e.ModuleSHA256 = f.fileSHA, f.size, f.crc, f.sha
			e.Path = dst
			if e.Added.IsZero() {
				e.Added = now
			}
			replaced := false
			for i := range ix.Entries {
				if ix.Entries[i].key() == e.key() {
					ix.Entries[i], replaced = e, true
				}
			}
			if !replaced {
				ix.Entries = append(ix.Entries, e)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// storeBytes writes data to a temporary file in the cache and commits it.
func (c *Cache) storeBytes(ctx context.Context, data []byte, f *facts, entries []Entry) ([]Entry, error) {
	if st, err := os.Stat(c.objectPath(f.fileSHA)); err == nil && st.Size() == f.size {
		return c.commit(ctx, "", f, entries)
	}
	tf, err := os.CreateTemp(filepath.Join(c.dir, tmpDir), "import-*.bin")
	if err != nil {
		return nil, fmt.Errorf("write to cache: %w", err)
	}
	_, err = tf.Write(data)
	if cerr := tf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tf.Name())
		return nil, fmt.Errorf("write to cache: %w", err)
	}
	out, err := c.commit(ctx, tf.Name(), f, entries)
	if err != nil {
		os.Remove(tf.Name())
	}
	return out, err
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// entryFor describes a release module as an index entry (checksums filled at commit).
func entryFor(r *Release, m *Module, source string) Entry {
	e := Entry{
		DeviceOS: r.Version, Platform: r.Platform, PlatformID: m.PlatformID, Name: m.Name, Asset: m.Asset,
		Function: m.Function.String(), Index: m.Index, ModuleVersion: m.ModuleVersion, Source: source,
	}
	if m.HasStart {
		e.Start = fmt.Sprintf("0x%08x", m.Start)
	}
	return e
}

// readObject reads a stored file, refusing anything absurdly large.
func readObject(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxModuleBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxModuleBytes {
		return nil, fmt.Errorf("%s is larger than any module (%d bytes)", path, maxModuleBytes)
	}
	return b, nil
}

// quarantine moves a bad object out of the store with a note saying why, and drops every
// index entry that points at it. Must be called with the lock held (inside update).
func (c *Cache) quarantineLocked(ix *index, sha, reason string) {
	src := c.objectPath(sha)
	stamp := time.Now().UTC().Format("20060102T150405")
	dst := filepath.Join(c.dir, quarantineDir, stamp+"-"+sha+".bin")
	if err := os.Rename(src, dst); err == nil {
		_ = os.WriteFile(dst+".txt", []byte(reason+"\n"), 0o644)
		c.log.Warn("quarantined a bad cache file", "file", src, "to", dst, "reason", reason)
	} else if !errors.Is(err, fs.ErrNotExist) {
		c.log.Warn("could not quarantine a bad cache file; removing it", "file", src, "err", err)
		os.Remove(src)
	}
	kept := ix.Entries[:0]
	for _, e := range ix.Entries {
		if e.SHA256 != sha {
			kept = append(kept, e)
		}
	}
	ix.Entries = kept
}

// CachedFile is a resolved module: the catalog's description and the verified file.
type CachedFile struct {
	Module *Module
	Entry  Entry
	// Downloaded is true when this call fetched it, false for a cache hit.
	Downloaded bool
}

// lookup finds a verified cached file for a release module: indexed under the release,
// or the same file indexed under another (a SoftDevice shared by many releases). A
// stored file that fails verification is quarantined and not returned.
func (c *Cache) lookup(ctx context.Context, ix *index, r *Release, m *Module) (*CachedFile, bool) {
	var cands []Entry
	for _, e := range ix.Entries {
		if e.DeviceOS == r.Version && e.Platform == r.Platform && e.Name == m.Name && e.Component == "" {
			cands = append([]Entry{e}, cands...)
		} else if m.CRC32 != "" && e.CRC32 == m.CRC32 && e.Size == m.Size && e.PlatformID == m.PlatformID &&
			e.Function == m.Function.String() && e.Index == m.Index {
			cands = append(cands, e)
		}
	}
	for _, e := range cands {
		data, err := readObject(c.objectPath(e.SHA256))
		if err != nil {
			c.log.Warn("cached file unreadable", "file", c.objectPath(e.SHA256), "err", err)
			continue
		}
		f := inspect(data)
		if f.fileSHA != e.SHA256 {
			c.dropBad(ctx, e.SHA256, "content does not match its SHA-256 name (damaged on disk)")
			continue
		}
		if err := f.check(m); err != nil {
			if e.DeviceOS == r.Version && e.Platform == r.Platform && e.Name == m.Name {
				c.dropBad(ctx, e.SHA256, fmt.Sprintf("indexed as %s %s but %v", r, m.Name, err))
			}
			continue
		}
		want := entryFor(r, m, e.Source)
		if e.DeviceOS != r.Version || e.Platform != r.Platform || e.Name != m.Name {
			// The same file under this release too.
			if out, err := c.commit(ctx, "", f, []Entry{want}); err == nil && len(out) == 1 {
				e = out[0]
			}
		}
		e.Path = c.objectPath(e.SHA256)
		return &CachedFile{Module: m, Entry: e}, true
	}
	return nil, false
}

func (c *Cache) dropBad(ctx context.Context, sha, reason string) {
	if err := c.update(ctx, func(ix *index) error { c.quarantineLocked(ix, sha, reason); return nil }); err != nil {
		c.log.Warn("could not update the cache index", "err", err)
	}
}

// hashFile returns the SHA-256 of a file.
func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// slotName names a module that matches nothing in the catalog by its slot.
func slotName(p *platform.Platform, fn platform.Function, idx uint8, version uint16) string {
	if p == nil {
		return fn.String()
	}
	if s, ok := p.SlotFor(fn, idx, version); ok {
		return s.Name
	}
	if s, ok := p.Slot(fn, idx); ok {
		return s.Name
	}
	return strings.ToLower(fn.String())
}

// CompareVersions orders Device OS versions by semver ("2.3.1" < "4.0.0-alpha.1" <
// "4.0.0"): -1, 0 or +1.
func CompareVersions(a, b string) int { return catalogfile.CompareVersions(a, b) }
