// Package modfile loads Particle module files the way people hand them over: one .bin
// (a combined file gives its parts), a directory of .bin files, or a .zip bundle of
// them (as Particle's releases and Device Restore ship them). The CLI's --to/--app and
// the app's "Local files..." share it, so a file that works in one works in the other.
//
// It is file handling only; the modules are parsed and checked by flasher/module.
package modfile

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
	"github.com/particle-flasher/particle-flasher/flasher/remedy"
)

// MaxFile bounds what is read from one file or zip member: far above the largest Particle
// module (a P2 system part, under 3 MB), so that a wrong file picked by mistake (a disk
// image, a video) is refused instead of read into memory.
const MaxFile = 64 << 20

// ErrNotModule marks a file that was read but is not a valid Particle module (as opposed
// to a path that cannot be read, or a bundle without modules).
var ErrNotModule = errors.New("not a valid Particle module")

// A Bundle is what a path or a file held: its modules, each with the name it came under,
// and notes on what was left out.
type Bundle struct {
	// Name is what was read: a path or a file's name.
	Name  string
	Files []File
	// Notes say what was read but not taken, one line each: files that are not modules,
	// debug and test builds, another platform's modules, what an image holds besides
	// modules.
	Notes []string
}

// File is one module of a bundle.
type File struct {
	// Name is where it came from: a path, or "bundle.zip:release/boron-system-part1@4.1.0.bin".
	Name   string
	Module *module.Module
	// Warning is set when the file's name says something its header contradicts; the
	// header is what counts.
	Warning string
}

// Modules lists the bundle's modules in order.
func (b *Bundle) Modules() []*module.Module {
	out := make([]*module.Module, len(b.Files))
	for i, f := range b.Files {
		out[i] = f.Module
	}
	return out
}

// Warnings lists the files' warnings, "" ones left out.
func (b *Bundle) Warnings() []string {
	var out []string
	for _, f := range b.Files {
		if f.Warning != "" {
			out = append(out, f.Warning)
		}
	}
	return out
}

// Load reads the modules at path: a module file, a .zip bundle, an Intel HEX image, or
// a directory of any of them (searched into its folders, as an unpacked release is laid
// out). See Parse for what a bundle may hold.
func Load(path string) (*Bundle, error) {
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
	members, err := Members(path)
	if err != nil {
		return nil, err
	}
	b, err := readMembers(path, members)
	if b != nil {
		b.Name = path
	}
	return b, err
}

// Parse reads the modules of a file's contents; name says what it is (.zip: a bundle,
// .hex: an Intel HEX image, anything else: a module file) and names it in messages.
//
// A bundle (a .zip or a directory) is taken as Particle ships them: Device Restore's
// flat "<part>.bin" files, a GitHub release's .binaries.zip with its release/ folder, a
// whole-version zip with every platform's folders, or any folder of module files. Its
// .bin files are the modules (a combined file gives its parts); .elf, .map, .lst and
// other files that are not modules are left out with a note, and so are the debug/ and
// test/ builds a whole-version zip carries beside release/ (they are the same modules
// built differently). A .hex in a bundle is read only when the bundle has no .bin files.
// Identity is always the module header's: a file whose name says otherwise is used as
// its header says, with a warning.
func Parse(name string, data []byte) (*Bundle, error) {
	if len(data) > MaxFile {
		return nil, tooLarge(name)
	}
	var b *Bundle
	var err error
	switch strings.ToLower(filepath.Ext(name)) {
	case ".zip":
		var members []Member
		if members, err = zipMembers(name, data); err == nil {
			b, err = readMembers(name, members)
		}
	case ".hex":
		b, err = parseImage(name, data)
	default:
		var files []File
		if files, err = parseModule(name, data); err == nil {
			b = &Bundle{Files: files}
		}
	}
	if err != nil {
		return nil, err
	}
	b.Name = name
	return b, nil
}

// parseModule reads one module file (a combined file gives its parts).
func parseModule(name string, data []byte) ([]File, error) {
	m, err := module.Parse(data)
	mods := []*module.Module{m}
	if err == nil && m.Combined() {
		mods, err = module.SplitCombined(data)
	}
	if err != nil {
		return nil, remedy.With(fmt.Errorf("%s: %w: %w", name, ErrNotModule, err),
			"Give Particle module files (.bin), a release's .zip bundle or its folder.")
	}
	c := nameClaim(name)
	out := make([]File, len(mods))
	for i, m := range mods {
		out[i] = File{Name: name, Module: m}
		if len(mods) == 1 {
			if d := c.disagreement(m); d != "" {
				out[i].Warning = fmt.Sprintf("%s: %s; it is used as its header says", name, d)
			}
		}
	}
	return out, nil
}

// parseImage reads an Intel HEX image (Particle's Device Restore .hex, made for SWD
// programmers): the modules are found where their headers say they start, and what else
// the image holds is named in a note.
func parseImage(name string, data []byte) (*Bundle, error) {
	regions, err := parseHex(data)
	if err != nil {
		return nil, remedy.With(fmt.Errorf("%s: %w: %w", name, ErrNotModule, err),
			"Give the release's .zip bundle or its .bin files; download the .hex again if you want to use it.")
	}
	b := &Bundle{}
	var rest []string
	for _, r := range regions {
		at := r.Addr
		for _, l := range module.Locate(r.Addr, r.Data) {
			if l.Addr > at {
				rest = append(rest, leftOver(r, at, l.Addr)...)
			}
			b.Files = append(b.Files, File{Name: fmt.Sprintf("%s@0x%08X", name, l.Addr), Module: l.Module})
			at = l.Addr + uint32(l.Module.Size())
		}
		if uint64(at) < r.end() {
			rest = append(rest, leftOver(r, at, uint32(r.end()-1)+1)...)
		}
	}
	if len(b.Files) == 0 {
		return nil, remedy.With(fmt.Errorf("%s: %w: the image holds no module with a module header", name, ErrNotModule),
			"Give the release's .zip bundle or its .bin files.")
	}
	if len(rest) > 0 {
		b.Notes = append(b.Notes, fmt.Sprintf("%s also holds bytes at %s that carry no module header; they are left out (an image holds the MBR and SoftDevice without one: the release's .bin files or .zip bundle have them as modules)",
			name, strings.Join(rest, ", ")))
	}
	return b, nil
}

// leftOver names the bytes of r in [from, to) that are not erased flash, as address
// ranges (erased gaps shorter than a 4 KB flash page count as part of the data around them).
func leftOver(r region, from, to uint32) []string {
	data := r.Data[from-r.Addr : to-r.Addr]
	var out []string
	i := 0
	for {
		for i < len(data) && data[i] == 0xFF {
			i++
		}
		if i == len(data) {
			return out
		}
		j, gap := i, 0
		for k := i; k < len(data); k++ {
			if data[k] != 0xFF {
				j, gap = k+1, 0
				continue
			}
			if gap++; gap >= 4096 {
				break
			}
		}
		out = append(out, fmt.Sprintf("0x%08X-0x%08X", from+uint32(i), from+uint32(j)-1))
		i = j
	}
}

// buildFolders are the folders of a whole-version release that hold other builds of the
// same modules (release/ is the one to flash).
var buildFolders = map[string]bool{"debug": true, "test": true, "tests": true}

// readMembers reads a bundle's files: the modules of its .bin files, or of its .hex
// images when it has no .bin file; everything else is named in a note.
func readMembers(bundle string, members []Member) (*Bundle, error) {
	b := &Bundle{}
	var skipped []string // names inside the bundle
	var builds []string
	var bins, hexes, assets []Member
	for _, m := range members {
		base := path.Base(m.Name)
		// macOS's Finder adds resource forks (__MACOSX/, ._name) that are not anything.
		if strings.HasPrefix(m.Name, "__MACOSX/") || strings.HasPrefix(base, "._") {
			continue
		}
		if inAssets(m.Name) {
			assets = append(assets, m)
			continue
		}
		if dir := buildFolder(m.Name); dir != "" {
			if !contains(builds, dir) {
				builds = append(builds, dir)
			}
			continue
		}
		switch ext := strings.ToLower(path.Ext(base)); ext {
		case ".bin":
			bins = append(bins, m)
		case ".hex":
			hexes = append(hexes, m)
		default:
			skipped = append(skipped, m.Name)
		}
	}
	use := bins
	if len(bins) == 0 {
		use = hexes
	} else if len(hexes) > 0 {
		var names []string
		for _, m := range hexes {
			names = append(names, m.Name)
		}
		b.Notes = append(b.Notes, fmt.Sprintf("%s: left out %s", bundle, fileList(names, "an image for SWD programmers; the .bin files are used", "images for SWD programmers; the .bin files are used")))
	}
	for _, m := range use {
		data, err := m.Open()
		if err != nil {
			return nil, err
		}
		sub, err := Parse(m.Full, data)
		if err != nil {
			return nil, err
		}
		b.Files = append(b.Files, sub.Files...)
		b.Notes = append(b.Notes, sub.Notes...)
	}
	for _, m := range assets {
		data, err := m.Open()
		if err != nil {
			return nil, err
		}
		mod, err := assetModule(path.Base(m.Name), data)
		if err != nil {
			return nil, remedy.With(fmt.Errorf("%s: %w", m.Full, err), "Check the asset file.")
		}
		b.Files = append(b.Files, File{Name: m.Full, Module: mod})
	}
	if len(b.Files) == 0 {
		return nil, remedy.With(fmt.Errorf("%s holds no module files", bundle),
			"Give a release's .zip bundle, its folder, or module .bin files.")
	}
	if len(skipped) > 0 {
		b.Notes = append(b.Notes, fmt.Sprintf("%s: left out %s", bundle, fileList(skipped, "not a module", "not modules")))
	}
	if len(builds) > 0 {
		b.Notes = append(b.Notes, fmt.Sprintf("%s: left out the builds in %s (debug and test builds of the same modules)", bundle, strings.Join(builds, ", ")))
	}
	return b, nil
}

// inAssets reports a file in an assets/ folder: particle-cli's application bundles (an
// app .bin beside assets/<name>) keep the raw asset files there (binary-version-reader
// unpackApplicationAndAssetBundle).
func inAssets(name string) bool {
	parts := strings.Split(name, "/")
	for _, p := range parts[:len(parts)-1] {
		if strings.EqualFold(p, "assets") {
			return true
		}
	}
	return false
}

// assetModule is the module for an asset file: an asset module given as such is taken as
// it is, a raw file is wrapped the way Device OS takes it (module.BuildAsset).
func assetModule(name string, data []byte) (*module.Module, error) {
	if m, err := module.Parse(data); err == nil && m.Function == platform.FuncAsset {
		if _, ok := m.Asset(); ok {
			return m, nil
		}
	}
	b, err := module.BuildAsset(name, data)
	if err != nil {
		return nil, err
	}
	return module.Parse(b)
}

// fileList names a few files, or counts many by extension, saying what they are:
// "notes.txt (not a module)", "12 files that are not modules (4 .elf, 4 .map, 4 .lst)".
func fileList(names []string, one, many string) string {
	switch {
	case len(names) == 1:
		return fmt.Sprintf("%s (%s)", names[0], one)
	case len(names) <= 3:
		return fmt.Sprintf("%s (%s)", strings.Join(names, ", "), many)
	}
	byExt := map[string]int{}
	for _, n := range names {
		ext := strings.ToLower(path.Ext(n))
		if ext == "" {
			ext = "without extension"
		}
		byExt[ext]++
	}
	exts := make([]string, 0, len(byExt))
	for ext, n := range byExt {
		exts = append(exts, fmt.Sprintf("%d %s", n, ext))
	}
	sort.Strings(exts)
	return fmt.Sprintf("%d files: %s (%s)", len(names), strings.Join(exts, ", "), many)
}

// buildFolder is the debug/ or test/ folder a bundle path lies in ("" if none).
func buildFolder(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts[:len(parts)-1] {
		if buildFolders[strings.ToLower(p)] {
			return strings.Join(parts[:i+1], "/") + "/"
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func tooLarge(name string) error {
	return remedy.With(fmt.Errorf("%s is far larger than any module", name), "Give a module .bin file or a .zip bundle of them.")
}
