// Command winres writes the Windows resources of particle-flasher.exe (icon, version
// information, manifest) from FyneApp.toml as a .syso file for the Go linker, or prints
// the version FyneApp.toml gives. `make windows` runs it.
//
//	go run ./internal/fyneapp/winres -toml FyneApp.toml -o cmd/particle-flasher/rsrc_windows_amd64.syso
//	go run ./internal/fyneapp/winres -toml FyneApp.toml -version
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/particle-flasher/particle-flasher/internal/fyneapp"
)

func main() {
	path := flag.String("toml", fyneapp.File, "the FyneApp.toml to read")
	out := flag.String("o", "", "the .syso file to write")
	arch := flag.String("arch", "amd64", "the Windows architecture (amd64, 386, arm64)")
	exe := flag.String("exe", "particle-flasher.exe", "the executable's file name, recorded as OriginalFilename")
	version := flag.Bool("version", false, "print Details.Version and exit")
	flag.Parse()
	m, err := fyneapp.Load(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "winres:", err)
		os.Exit(1)
	}
	if *version {
		fmt.Println(m.Details.Version)
		return
	}
	if *out == "" {
		fmt.Fprintln(os.Stderr, "winres: -o FILE.syso is needed")
		os.Exit(2)
	}
	if err := m.WriteSyso(*out, *arch, filepath.Base(*exe)); err != nil {
		fmt.Fprintln(os.Stderr, "winres:", err)
		os.Exit(1)
	}
}
