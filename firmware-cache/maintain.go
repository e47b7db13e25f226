package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// VerifyResult is the verdict on one stored file.
type VerifyResult struct {
	SHA256 string `json:"sha256"`
	Path   string `json:"path"`
	// Entries are the index entries that point at the file ("4.1.0/argon/system-part1").
	Entries []string `json:"entries"`
	OK      bool     `json:"ok"`
	Problem string   `json:"problem,omitempty"`
	// Quarantined is where a bad file was moved.
	Quarantined string `json:"quarantined,omitempty"`
}

// Verify re-checks every stored file: its content against its SHA-256 name, its own
// module checks (CRC, size, SHA-256) and, for every index entry pointing at it, the
// release module the catalog describes. Bad files are moved to quarantine/ with a note
// and dropped from the index; entries whose file has vanished are dropped too. It holds
// the cache lock throughout, so no fetch sees a half-verified cache.
func (c *Cache) Verify(ctx context.Context) ([]VerifyResult, error) {
	var results []VerifyResult
	err := c.update(ctx, func(ix *index) error {
		bySHA := map[string][]Entry{}
		for _, e := range ix.Entries {
			bySHA[e.SHA256] = append(bySHA[e.SHA256], e)
		}
		root := filepath.Join(c.dir, objectsDir)
		seen := map[string]bool{}
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if d.IsDir() {
				return nil
			}
			sha := strings.TrimSuffix(d.Name(), ".bin")
			seen[sha] = true
			res := VerifyResult{SHA256: sha, Path: path}
			for _, e := range bySHA[sha] {
				res.Entries = append(res.Entries, e.DeviceOS+"/"+e.Platform+"/"+e.Name)
			}
			if problem := c.checkObject(path, sha, bySHA[sha]); problem != "" {
				res.Problem = problem
				c.quarantineLocked(ix, sha, problem)
				res.Quarantined = filepath.Join(c.dir, quarantineDir)
			} else {
				res.OK = true
			}
			results = append(results, res)
			return nil
		})
		if err != nil {
			return fmt.Errorf("verify cache: %w", err)
		}
		kept := ix.Entries[:0]
		for _, e := range ix.Entries {
			if seen[e.SHA256] {
				kept = append(kept, e)
				continue
			}
			results = append(results, VerifyResult{SHA256: e.SHA256, Path: c.objectPath(e.SHA256),
				Entries: []string{e.DeviceOS + "/" + e.Platform + "/" + e.Name}, Problem: "file missing from the cache; entry dropped"})
		}
		ix.Entries = kept
		return nil
	})
	return results, err
}

// checkObject returns what is wrong with a stored file, "" if nothing.
func (c *Cache) checkObject(path, sha string, entries []Entry) string {
	if len(sha) != 64 || strings.Trim(sha, "0123456789abcdef") != "" {
		return "not a cache file (name is not a SHA-256)"
	}
	data, err := readObject(path)
	if err != nil {
		return err.Error()
	}
	f := inspect(data)
	if f.fileSHA != sha {
		return fmt.Sprintf("content changed on disk: SHA-256 is now %s", f.fileSHA)
	}
	if err := f.valid(); err != nil {
		return err.Error()
	}
	for _, e := range entries {
		if e.PlatformID != f.m.PlatformID || e.Function != f.m.Function.String() || e.Index != f.m.Index || e.ModuleVersion != 0 && e.ModuleVersion != f.m.Version {
			return fmt.Sprintf("indexed as %s %s %d v%d for platform %d but the file is %s %d v%d for platform %d",
				e.Name, e.Function, e.Index, e.ModuleVersion, e.PlatformID, f.m.Function, f.m.Index, f.m.Version, f.m.PlatformID)
		}
		if e.DeviceOS == "" {
			continue
		}
		r, err := c.cat.Release(e.DeviceOS, e.Platform)
		if err != nil {
			continue // a release the catalog no longer lists: the module checks above stand
		}
		if m, ok := r.Module(e.Name); ok {
			if err := f.check(m); err != nil {
				return fmt.Sprintf("indexed as %s %s but %v", r, e.Name, err)
			}
		}
	}
	return ""
}

// PruneResult says what Prune removed.
type PruneResult struct {
	// Removed lists the releases dropped ("2.3.0/argon").
	Removed []string `json:"removed"`
	// Kept lists the releases kept.
	Kept []string `json:"kept"`
	// Files and Bytes are the stored files deleted and the space freed.
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
}

// Prune keeps, for each platform, the newest keep Device OS versions in the cache and
// drops everything older. A version counts when a system part of it is cached (files
// such as a SoftDevice are shared by many releases and do not make a version on their
// own); entries at or above the oldest kept version stay, whatever they hold. Files no
// longer indexed are deleted, so a SoftDevice shared with a kept release stays. Files not
// tied to a Device OS version (components, unidentified imports) are kept. Stale partial
// downloads nobody is working on go too.
func (c *Cache) Prune(ctx context.Context, keep int) (*PruneResult, error) {
	if keep < 0 {
		return nil, fmt.Errorf("prune: keep must be 0 or more, not %d", keep)
	}
	res := &PruneResult{}
	err := c.update(ctx, func(ix *index) error {
		present := map[string][]string{}
		all := map[string][]string{}
		for _, e := range ix.Entries {
			if e.DeviceOS == "" {
				continue
			}
			if !contains(all[e.Platform], e.DeviceOS) {
				all[e.Platform] = append(all[e.Platform], e.DeviceOS)
			}
			if (e.Function == "system" || e.Function == "mono") && !contains(present[e.Platform], e.DeviceOS) {
				present[e.Platform] = append(present[e.Platform], e.DeviceOS)
			}
		}
		// cutoff[p] is the oldest version kept; "" keeps everything, and a platform with
		// keep == 0 has no cutoff at all (everything goes).
		cutoff := map[string]string{}
		dropAll := map[string]bool{}
		for p, vs := range present {
			sort.Slice(vs, func(i, j int) bool { return CompareVersions(vs[i], vs[j]) > 0 })
			switch {
			case keep == 0:
				dropAll[p] = true
			case len(vs) > keep:
				cutoff[p] = vs[keep-1]
			}
		}
		keepVersion := func(p, v string) bool {
			if keep == 0 {
				return false
			}
			if dropAll[p] {
				return false
			}
			c, ok := cutoff[p]
			return !ok || CompareVersions(v, c) >= 0
		}
		var plats []string
		for p := range all {
			plats = append(plats, p)
		}
		sort.Strings(plats)
		for _, p := range plats {
			vs := all[p]
			sort.Slice(vs, func(i, j int) bool { return CompareVersions(vs[i], vs[j]) > 0 })
			for _, v := range vs {
				if keepVersion(p, v) {
					res.Kept = append(res.Kept, v+"/"+p)
				} else {
					res.Removed = append(res.Removed, v+"/"+p)
				}
			}
		}
		kept := ix.Entries[:0]
		referenced := map[string]bool{}
		for _, e := range ix.Entries {
			if e.DeviceOS == "" || keepVersion(e.Platform, e.DeviceOS) {
				kept = append(kept, e)
				referenced[e.SHA256] = true
			}
		}
		ix.Entries = kept
		return filepath.WalkDir(filepath.Join(c.dir, objectsDir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if referenced[strings.TrimSuffix(d.Name(), ".bin")] {
				return nil
			}
			if st, err := d.Info(); err == nil {
				res.Bytes += st.Size()
			}
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("prune: %w", err)
			}
			res.Files++
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	c.cleanTmp(24 * time.Hour)
	return res, nil
}

// cleanTmp deletes partial files older than age that no process holds.
func (c *Cache) cleanTmp(age time.Duration) {
	dir := filepath.Join(c.dir, tmpDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".part") {
			continue
		}
		st, err := e.Info()
		if err != nil || time.Since(st.ModTime()) < age {
			continue
		}
		p := filepath.Join(dir, name)
		if l, ok := tryAcquire(p + ".lock"); ok {
			removePart(p)
			l.release()
		}
	}
}
