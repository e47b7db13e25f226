// Command catalog-gen writes assets/catalog.json, the release catalog snapshot pflash
// embeds, from the shared folder (see package gen). Run by `go generate ./firmware-cache`.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/particle-flasher/particle-flasher/firmware-cache/internal/gen"
)

func main() {
	shared := flag.String("shared", "../../shared", "the shared folder (Particle data and real binaries)")
	out := flag.String("out", "../assets/catalog.json", "catalog file to write")
	flag.Parse()
	if st, err := os.Stat(*shared); err != nil || !st.IsDir() {
		fmt.Fprintf(os.Stderr, "catalog-gen: shared folder %s not found; the committed snapshot stays as it is (pass -shared DIR)\n", *shared)
		os.Exit(1)
	}
	f, rep, err := gen.Build(*shared, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "catalog-gen: %v\n", err)
		os.Exit(1)
	}
	if err := gen.Write(f, *out); err != nil {
		fmt.Fprintf(os.Stderr, "catalog-gen: %v\n", err)
		os.Exit(1)
	}
	gen.PrintReport(os.Stderr, rep)
	fmt.Fprintf(os.Stderr, "wrote %s: %d releases, %d components\n", *out, len(f.Releases), len(f.Components))
}
