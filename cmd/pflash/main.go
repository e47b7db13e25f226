// Command pflash is Particle Flasher without a display: for technicians, scripts and
// factory benches. It links no Fyne and no GL.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
