// Package fyneapp reads the app's metadata from the top-level FyneApp.toml, the file Fyne's
// packager reads (`fyne package` run from the repository's top, see `make package`), and
// turns it into the Windows resources of particle-flasher.exe: icon, version information
// and manifest, as a .syso object the Go linker picks up. The name, ID, version and icon
// are kept in FyneApp.toml alone; the Windows build and the Linux package both read them
// from there.
package fyneapp

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/png" // the icon is a PNG
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/fyne-io/image/ico"
	"github.com/josephspurrier/goversioninfo"
)

// File is the metadata file's name, at the repository's top.
const File = "FyneApp.toml"

// Meta is the part of FyneApp.toml the builds use.
type Meta struct {
	Website string
	Details struct {
		Icon, Name, ID, Version string
		Build                   int
	}
	// Dir is where the file was read from; Icon is relative to it.
	Dir string `toml:"-"`
}

// Load reads FyneApp.toml at path and checks what the builds need from it.
func Load(path string) (Meta, error) {
	var m Meta
	if _, err := toml.DecodeFile(path, &m); err != nil {
		return Meta{}, fmt.Errorf("fyneapp: read %s: %w", path, err)
	}
	m.Dir = filepath.Dir(path)
	d := m.Details
	switch {
	case d.Name == "" || d.ID == "" || d.Icon == "":
		return Meta{}, fmt.Errorf("fyneapp: %s needs Details.Name, ID and Icon", path)
	case d.Build < 0 || d.Build > 0xFFFF:
		return Meta{}, fmt.Errorf("fyneapp: %s: Details.Build %d does not fit a Windows version field", path, d.Build)
	}
	if _, err := m.FileVersion(); err != nil {
		return Meta{}, fmt.Errorf("fyneapp: %s: %w", path, err)
	}
	return m, nil
}

// IconPath is the icon's path on disk.
func (m Meta) IconPath() string { return filepath.Join(m.Dir, filepath.FromSlash(m.Details.Icon)) }

// FileVersion is the Windows four-part version: Version's major.minor.patch and Build,
// as Fyne's packager numbers it ("0.1.0" build 2 is 0.1.0.2).
func (m Meta) FileVersion() (goversioninfo.FileVersion, error) {
	var v goversioninfo.FileVersion
	parts := strings.Split(m.Details.Version, ".")
	if m.Details.Version == "" || len(parts) > 3 {
		return v, fmt.Errorf("Details.Version %q is not major[.minor[.patch]]", m.Details.Version)
	}
	fields := []*int{&v.Major, &v.Minor, &v.Patch}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 0xFFFF {
			return v, fmt.Errorf("Details.Version %q: %q is not a number up to 65535", m.Details.Version, p)
		}
		*fields[i] = n
	}
	v.Build = m.Details.Build
	return v, nil
}

// manifest is the application manifest, as Fyne's packager writes it.
const manifest = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<assembly xmlns="urn:schemas-microsoft-com:asm.v1" manifestVersion="1.0">
<assemblyIdentity version="%s" processorArchitecture="*" name="%s" type="win32"/>
</assembly>
`

// WriteSyso writes the Windows resources for arch ("amd64", "386", "arm64") to out: the
// icon (converted from the PNG to .ico, also as the window's IDI_APPLICATION), the version
// information (product name, description, file and product version) and the manifest.
func (m Meta) WriteSyso(out, arch, originalFilename string) error {
	v, err := m.FileVersion()
	if err != nil {
		return err
	}
	png, err := os.ReadFile(m.IconPath())
	if err != nil {
		return fmt.Errorf("fyneapp: the icon FyneApp.toml names: %w", err)
	}
	img, _, err := image.Decode(bytes.NewReader(png))
	if err != nil {
		return fmt.Errorf("fyneapp: decode the icon %s: %w", m.IconPath(), err)
	}
	tmp, err := os.MkdirTemp("", "fyneapp-res")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var icoBuf bytes.Buffer
	if err := ico.Encode(&icoBuf, img); err != nil {
		return fmt.Errorf("fyneapp: encode the icon: %w", err)
	}
	icoPath := filepath.Join(tmp, "app.ico")
	manPath := filepath.Join(tmp, "app.manifest")
	name := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(m.Details.Name)
	if err := errors.Join(
		os.WriteFile(icoPath, icoBuf.Bytes(), 0o644),
		os.WriteFile(manPath, fmt.Appendf(nil, manifest, v.GetVersionString(), name), 0o644),
	); err != nil {
		return err
	}
	vi := &goversioninfo.VersionInfo{IconPath: icoPath, ManifestPath: manPath}
	vi.FixedFileInfo.FileVersion = v
	vi.FixedFileInfo.ProductVersion = v
	vi.StringFileInfo.ProductName = m.Details.Name
	vi.StringFileInfo.FileDescription = m.Details.Name
	vi.StringFileInfo.FileVersion = v.GetVersionString()
	vi.StringFileInfo.ProductVersion = v.GetVersionString()
	vi.StringFileInfo.OriginalFilename = originalFilename
	vi.StringFileInfo.InternalName = strings.TrimSuffix(originalFilename, ".exe")
	vi.StringFileInfo.Comments = m.Website
	vi.VarFileInfo.Translation.LangID = goversioninfo.LngUSEnglish
	vi.VarFileInfo.Translation.CharsetID = goversioninfo.CsUnicode
	vi.Build()
	vi.Walk()
	if err := vi.WriteSyso(out, arch); err != nil {
		return fmt.Errorf("fyneapp: write %s: %w", out, err)
	}
	return nil
}
