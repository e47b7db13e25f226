package assets

import _ "embed"

// Catalog is the Device OS release catalog snapshot (JSON, see firmware-cache): every
// release's modules with addresses, sizes and checksums, embedded so pflash can plan and
// verify with no network. It is generated from the shared Particle data by
// `go generate ./firmware-cache` and committed, so builds never need the shared folder.
//
//go:embed catalog.json
var Catalog []byte
