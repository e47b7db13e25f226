// Package modfile loads Particle module files the way people hand them over: one .bin
// (a combined file gives its parts), a directory of .bin files, or a .zip bundle of
// them (as Particle's releases and Device Restore ship them). The CLI's --to/--app and
// the app's "Local files..." share it, so a file that works in one works in the other.
//
// It is file handling only; the modules are parsed and checked by flasher/module.
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

	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// MaxFile bounds what is read from one file or zip member: far above the largest Particle
// module (a P2 system part, under 3 MB), so that a wrong file picked by mistake (a disk
// image, a video) is refused instead of read into memory.
const MaxFile = 64 << 20

// ErrNotModule marks a file that was read but is not a valid Particle module (as opposed
// to a path that cannot be read, or a bundle without modules).
var ErrNotModule = errors.New("not a valid Particle module")

// Load reads the modules at path: a directory's .bin files in name order, a .zip
// bundle's .bin members in name order, or one file.
func Load(path string) ([]*module.Module, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, remedy.With(err, "Check the path.")
	}
	if !st.IsDir() {
		if st.Size() > MaxFile {
			return nil, tooLarge(path)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, remedy.With(err, "Check the file's permissions.")
		}
		return Parse(path, data)
	}
	entries, err := os.ReadDir(path) // sorted by name
	if err != nil {
		return nil, remedy.With(err, "Check the directory's permissions.")
	}
	var out []*module.Module
	for _, e := range entries {
		if e.IsDir() || !isBin(e.Name()) {
			continue
		}
		mods, err := Load(filepath.Join(path, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, mods...)
	}
	if len(out) == 0 {
		return nil, remedy.With(fmt.Errorf("%s holds no .bin module files", path), "Point at the directory with the module files.")
	}
	return out, nil
}

// Parse reads the modules of a file's contents; name says what it is (a name ending in
// .zip is a bundle) and names it in errors.
func Parse(name string, data []byte) ([]*module.Module, error) {
	if len(data) > MaxFile {
		return nil, tooLarge(name)
	}
	if strings.EqualFold(filepath.Ext(name), ".zip") {
		return parseZip(name, data)
	}
	m, err := module.Parse(data)
	if err == nil && m.Combined() {
		var parts []*module.Module
		if parts, err = module.SplitCombined(data); err == nil {
			return parts, nil
		}
	}
	if err != nil {
		return nil, remedy.With(fmt.Errorf("%s: %w: %w", name, ErrNotModule, err),
			"Give Particle module files (.bin); `pflash inspect FILE` shows what a file holds.")
	}
	return []*module.Module{m}, nil
}

func parseZip(name string, data []byte) ([]*module.Module, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, remedy.With(fmt.Errorf("%s: %w", name, err), "Give a .zip bundle of module files; download it again if it is damaged.")
	}
	files := append([]*zip.File(nil), zr.File...)
	// Refuse the whole bundle if any entry could land outside it when unpacked: nothing is
	// flashed from a bundle built to trick an unzipper, even if its .bin files are fine.
	for _, zf := range files {
		if why := unsafeEntry(zf); why != "" {
			return nil, remedy.With(fmt.Errorf("%s: the entry %q %s", name, zf.Name, why),
				"Do not use this bundle: a genuine Particle bundle holds only module files and folders inside it. Download the release again from Particle.")
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	var out []*module.Module
	for _, zf := range files {
		base := filepath.Base(zf.Name)
		// macOS's Finder adds resource forks (__MACOSX/, ._name) that are not modules.
		if zf.FileInfo().IsDir() || strings.HasPrefix(zf.Name, "__MACOSX/") || strings.HasPrefix(base, "._") || !isBin(base) {
			continue
		}
		if zf.UncompressedSize64 > MaxFile {
			return nil, tooLarge(name + ":" + zf.Name)
		}
		rc, err := zf.Open()
		if err != nil {
			return nil, remedy.With(fmt.Errorf("%s: %s: %w", name, zf.Name, err), "The bundle is damaged: download it again.")
		}
		b, err := io.ReadAll(io.LimitReader(rc, MaxFile+1))
		rc.Close()
		if err != nil {
			return nil, remedy.With(fmt.Errorf("%s: %s: %w", name, zf.Name, err), "The bundle is damaged: download it again.")
		}
		mods, err := Parse(name+":"+zf.Name, b)
		if err != nil {
			return nil, err
		}
		out = append(out, mods...)
	}
	if len(out) == 0 {
		return nil, remedy.With(fmt.Errorf("%s holds no .bin module files", name), "Give a bundle of module files.")
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

func isBin(name string) bool { return strings.EqualFold(filepath.Ext(name), ".bin") }

func tooLarge(name string) error {
	return remedy.With(fmt.Errorf("%s is far larger than any module", name), "Give a module .bin file or a .zip bundle of them.")
}
