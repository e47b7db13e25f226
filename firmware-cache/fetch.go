package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// FetchOptions narrow what Fetch resolves.
type FetchOptions struct {
	// IncludeUser also resolves the release's user application (Tinker, Tracker Edge),
	// which an upgrade does not need.
	IncludeUser bool
	// Modules, if set, resolves only the modules with these names.
	Modules []string
}

// Resolution is a release resolved to verified files in the cache.
type Resolution struct {
	Release *Release
	Files   []CachedFile
}

// MissingError lists the files of a release that are not in the cache when the network
// may not be used.
type MissingError struct {
	Release string
	Files   []string // asset names
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("%s: %d file(s) not in the cache and offline: %s", e.Release, len(e.Files), strings.Join(e.Files, ", "))
}

// Unwrap makes a MissingError match ErrOffline.
func (e *MissingError) Unwrap() error { return ErrOffline }

// Fetch resolves a release into verified cached files, downloading what is missing (in
// parallel, bounded by Options.Parallel). Offline, it touches no network and fails with a
// *MissingError naming every missing file. Every file returned was verified against the
// catalog during this call, whether it came from the cache or the network. When some
// files cannot be fetched, the error names each (file, URL, cause) and the files that
// did arrive stay cached.
func (c *Cache) Fetch(ctx context.Context, version, plat string, o FetchOptions) (*Resolution, error) {
	r, err := c.cat.Release(version, plat)
	if err != nil {
		return nil, err
	}
	var mods []*Module
	for i := range r.Modules {
		m := &r.Modules[i]
		if len(o.Modules) > 0 {
			if !contains(o.Modules, m.Name) {
				continue
			}
		} else if m.IsUser() && !o.IncludeUser {
			continue
		}
		mods = append(mods, m)
	}
	if len(o.Modules) > 0 {
		for _, n := range o.Modules {
			if _, ok := r.Module(n); !ok {
				return nil, remedy.WithCommand(fmt.Errorf("%s has no module %q: %w", r, n, ErrNotInCatalog), "choose one of the release's modules", "pflash cache catalog --platform "+r.Platform)
			}
		}
	}
	ix, err := c.readIndex()
	if err != nil {
		return nil, err
	}
	res := &Resolution{Release: r, Files: make([]CachedFile, len(mods))}
	var missing []int
	var total int64
	for i, m := range mods {
		if cf, ok := c.lookup(ctx, ix, r, m); ok {
			res.Files[i] = *cf
			continue
		}
		missing = append(missing, i)
		total += m.Size
	}
	if len(missing) == 0 {
		return res, nil
	}
	if c.offline {
		me := &MissingError{Release: r.String()}
		for _, i := range missing {
			me.Files = append(me.Files, mods[i].Asset)
		}
		return res, remedy.WithCommand(me, fmt.Sprintf("get Device OS %s for the %s while online (or from a local mirror), or import its files (the app's Local files take them too)", r.Version, r.Platform),
			fmt.Sprintf("pflash cache fetch %s --platform %s; pflash cache import PATH", r.Version, r.Platform))
	}

	tr := newTracker(c.progress, r.Version+"/"+r.Platform, total)
	var g errgroup.Group
	g.SetLimit(c.parallel)
	var mu sync.Mutex
	var errs []error
	for _, i := range missing {
		g.Go(func() error {
			cf, err := c.fetchModule(ctx, r, mods[i], tr)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			res.Files[i] = *cf
			return nil
		})
	}
	_ = g.Wait()
	if len(errs) > 0 {
		if ctx.Err() != nil {
			return res, fmt.Errorf("fetch %s: %w", r, ctx.Err())
		}
		return res, remedy.With(errors.Join(errs...), fetchRemedy(errs))
	}
	return res, nil
}

// fetchRemedy says what a person can do about the failures seen.
func fetchRemedy(errs []error) string {
	all := errors.Join(errs...)
	switch {
	case errors.Is(all, ErrVerify):
		return "a server delivered a damaged or wrong file (nothing bad was kept in the cache); try again, or use another --mirror"
	case errors.Is(all, ErrNotFound):
		return "the file is not where it should be; check the version and platform, or that the --mirror has the v<version>/<asset> layout"
	case errors.Is(all, ErrInsecureURL):
		return "use https:// mirrors, or pass --allow-http for a trusted mirror on your own network"
	}
	return "check the network connection and try again (partial downloads resume), or work offline with imported files"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._@+-]`)

// fetchModule downloads one module, verifies it and commits it. A lock per file keeps
// two processes from downloading the same file into the same partial file; the second
// one waits and then finds the file cached.
func (c *Cache) fetchModule(ctx context.Context, r *Release, m *Module, tr *tracker) (*CachedFile, error) {
	keySum := sha256.Sum256([]byte(r.Version + "/" + r.Platform + "/" + m.Asset))
	base := unsafeChars.ReplaceAllString(m.Asset, "_") + "-" + hex.EncodeToString(keySum[:4])
	part := filepath.Join(c.dir, tmpDir, base+".part")
	l, err := acquire(ctx, part+".lock")
	if err != nil {
		return nil, err
	}
	defer l.release()
	if ix, err := c.readIndex(); err == nil {
		if cf, ok := c.lookup(ctx, ix, r, m); ok {
			tr.emit(m.Asset, "", "cached", 0, m.Size, nil)
			return cf, nil
		}
	}

	fe := &FetchError{Release: r.String(), File: m.Asset}
	for _, u := range c.candidates(r, m) {
		data, attempts, err := c.fetchURL(ctx, u, part, m, tr)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			fe.Tried = append(fe.Tried, &DownloadError{File: m.Asset, URL: u, Attempts: attempts, Err: err})
			c.log.Debug("source failed", "file", m.Asset, "url", u, "err", err)
			continue
		}
		f := inspect(data)
		entries := []Entry{entryFor(r, m, u)}
		stored, err := c.commit(ctx, part, f, entries)
		removePart(part)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Asset, err)
		}
		tr.emit(m.Asset, u, "verified", 0, m.Size, nil)
		c.log.Debug("fetched and verified", "file", m.Asset, "url", u, "sha256", f.fileSHA)
		return &CachedFile{Module: m, Entry: stored[0], Downloaded: true}, nil
	}
	tr.emit(m.Asset, "", "failed", 0, m.Size, fe)
	return nil, fe
}

// fetchURL downloads one URL and verifies the result; a file assembled from several
// responses that fails verification is downloaded once more in one piece before the URL
// is given up, since a resume is the one step that could have spliced it. A file that
// fails verification is deleted.
func (c *Cache) fetchURL(ctx context.Context, u, part string, m *Module, tr *tracker) ([]byte, int, error) {
	_, member, isZip := strings.Cut(u, ".zip#")
	total := 0
	for try := 0; try < 2; try++ {
		resumed, attempts, err := c.download(ctx, u, part, m, tr)
		total += attempts
		if err != nil {
			if !isRetryable(err) || ctx.Err() != nil {
				removePartIfUseless(part, err)
			}
			return nil, total, err
		}
		var data []byte
		if isZip {
			data, err = zipMember(part, member)
		} else {
			data, err = readObject(part)
		}
		if err == nil {
			f := inspect(data)
			if err = f.check(m); err == nil {
				if isZip {
					// Keep exactly the member's bytes in the partial file for commit.
					if err := os.WriteFile(part, data, 0o644); err != nil {
						return nil, total, err
					}
				}
				return data, total, nil
			}
		}
		removePart(part)
		tr.reset(m.Asset)
		if !resumed {
			return nil, total, err
		}
		c.log.Debug("resumed download failed verification; downloading it whole once more", "file", m.Asset, "url", u, "err", err)
	}
	return nil, total, fmt.Errorf("%w (also when downloaded in one piece)", ErrVerify)
}

// removePartIfUseless deletes a partial file that cannot be resumed later: a 404 or a
// refused URL leaves nothing worth keeping, an interrupted transfer does.
func removePartIfUseless(part string, err error) {
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrInsecureURL) {
		removePart(part)
		return
	}
	var se *StatusError
	if errors.As(err, &se) && se.Code < 500 {
		removePart(part)
	}
}
