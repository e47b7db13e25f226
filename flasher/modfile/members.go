package modfile

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// ErrUnsafeEntry marks a .zip with an entry that would land outside the bundle when
// unpacked (an absolute path, "..", a link): the whole bundle is refused, since a tool
// that trusted it could write anywhere.
var ErrUnsafeEntry = errors.New("a bundle entry points outside the bundle")

// unsafeError is the refusal of a bundle with an unsafe entry, in words, matching
// ErrUnsafeEntry.
type unsafeError struct{ msg string }

func (e unsafeError) Error() string        { return e.msg }
func (e unsafeError) Is(target error) bool { return target == ErrUnsafeEntry }

// Member is one file a path holds: the file itself, a file under a folder, or an entry
// of a .zip.
type Member struct {
	// Name is its path inside the folder or the zip, with forward slashes (the file's
	// name for a lone file).
	Name string
	// Full names it for people: a path, or "bundle.zip:release/boron-bootloader@4.1.0.bin".
	Full string
	// Path is where it is on disk ("" for a zip entry).
	Path string
	Size int64
	// Open reads it (at most MaxFile bytes; more is an error).
	Open func() ([]byte, error)
}

// Members lists the files at path: a lone file, every file under a folder (searched into
// its folders as an unpacked release is laid out; hidden files left out, links to files
// followed), or every entry of a .zip, in name order. A .zip any of whose entries could
// land outside it is refused whole (ErrUnsafeEntry).
func Members(p string) ([]Member, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, remedy.With(err, "Check the path.")
	}
	if st.IsDir() {
		var out []Member
		err := walkDir(p, func(rel, full string, size int64) error {
			out = append(out, fileMember(rel, full, size))
			return nil
		})
		return out, err
	}
	if strings.EqualFold(filepath.Ext(p), ".zip") {
		if st.Size() > MaxFile {
			return nil, tooLarge(p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, remedy.With(err, "Check the file's permissions.")
		}
		return zipMembers(p, data)
	}
	return []Member{fileMember(filepath.Base(p), p, st.Size())}, nil
}

func fileMember(name, full string, size int64) Member {
	return Member{Name: name, Full: full, Path: full, Size: size, Open: func() ([]byte, error) {
		if size > MaxFile {
			return nil, tooLarge(full)
		}
		b, err := os.ReadFile(full)
		if err != nil {
			return nil, remedy.With(err, "Check the file's permissions.")
		}
		return b, nil
	}}
}

// maxWalk bounds a directory search: a release folder holds a few hundred files at most;
// pointing at a home directory by mistake should fail fast, not read everything.
const (
	maxWalkFiles = 2000
	maxWalkDepth = 6
)

// walkDir lists the files under root (hidden ones left out, links to files followed), in
// name order, as paths relative to root with forward slashes.
func walkDir(root string, f func(rel, full string, size int64) error) error {
	n := 0
	var walk func(dir, rel string, depth int) error
	walk = func(dir, rel string, depth int) error {
		entries, err := os.ReadDir(dir) // sorted by name
		if err != nil {
			return remedy.With(err, "Check the directory's permissions.")
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			full, r := filepath.Join(dir, e.Name()), path.Join(rel, e.Name())
			switch {
			case e.IsDir():
				if depth < maxWalkDepth {
					if err := walk(full, r, depth+1); err != nil {
						return err
					}
				}
			default:
				// Files and links to files; links to folders are not followed (no loops).
				info, err := os.Stat(full)
				if err != nil || !info.Mode().IsRegular() {
					continue
				}
				if n++; n > maxWalkFiles {
					return remedy.With(fmt.Errorf("%s holds more than %d files", root, maxWalkFiles),
						"Point at the folder of one release (its module files), not a larger one.")
				}
				if err := f(r, full, info.Size()); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(root, "", 0)
}

// zipMembers lists a .zip's file entries in name order, after checking every entry.
func zipMembers(name string, data []byte) ([]Member, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, remedy.With(fmt.Errorf("%s: %w", name, err), "Give a .zip bundle of module files; download it again if it is damaged.")
	}
	files := append([]*zip.File(nil), zr.File...)
	// Refuse the whole bundle if any entry could land outside it when unpacked: nothing is
	// taken from a bundle built to trick an unzipper, even if its .bin files are fine.
	for _, zf := range files {
		if why := unsafeEntry(zf); why != "" {
			return nil, remedy.With(unsafeError{fmt.Sprintf("%s: the entry %q %s", name, zf.Name, why)},
				"Do not use this bundle: a genuine Particle bundle holds only module files and folders inside it. Download the release again from Particle.")
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	var out []Member
	for _, zf := range files {
		if zf.FileInfo().IsDir() {
			continue
		}
		zf := zf
		full := name + ":" + zf.Name
		out = append(out, Member{
			Name: strings.ReplaceAll(zf.Name, "\\", "/"),
			Full: full,
			Size: int64(min(zf.UncompressedSize64, 1<<62)),
			Open: func() ([]byte, error) {
				if zf.UncompressedSize64 > MaxFile {
					return nil, tooLarge(full)
				}
				rc, err := zf.Open()
				if err != nil {
					return nil, remedy.With(fmt.Errorf("%s: %w", full, err), "The bundle is damaged: download it again.")
				}
				defer rc.Close()
				b, err := io.ReadAll(io.LimitReader(rc, MaxFile+1))
				if err == nil && len(b) > MaxFile {
					err = errors.New("larger than its entry says")
				}
				if err != nil {
					return nil, remedy.With(fmt.Errorf("%s: %w", full, err), "The bundle is damaged: download it again.")
				}
				return b, nil
			},
		})
	}
	return out, nil
}

// unsafeEntry says why a zip entry's name or kind is not acceptable in a bundle: an
// absolute path, a ".." element, a link, a device or a name that leaves the bundle's
// folders once cleaned ("" when it is fine). Backslashes count as separators, as an
// unzipper on Windows treats them.
func unsafeEntry(zf *zip.File) string {
	n := zf.Name
	if n == "" || strings.ContainsRune(n, 0) {
		return "has no usable name"
	}
	slashed := strings.ReplaceAll(n, "\\", "/")
	if strings.HasPrefix(slashed, "/") || len(slashed) >= 2 && slashed[1] == ':' {
		return "is an absolute path"
	}
	for _, part := range strings.Split(slashed, "/") {
		if part == ".." {
			return "points outside the bundle (..)"
		}
	}
	if c := path.Clean(slashed); c == ".." || strings.HasPrefix(c, "../") || strings.HasPrefix(c, "/") {
		return "points outside the bundle"
	}
	mode := zf.Mode()
	switch {
	case mode&os.ModeSymlink != 0:
		return "is a symbolic link"
	case mode&(os.ModeDevice|os.ModeNamedPipe|os.ModeSocket|os.ModeCharDevice) != 0:
		return "is not a file"
	}
	return ""
}
