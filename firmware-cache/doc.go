// Package cache resolves a Device OS target (a version for a platform) into module files
// that are proven intact, downloading what is missing and keeping it for offline use.
//
// Three parts work together:
//
//   - The Catalog says what each release consists of: for every version and platform,
//     each module's name, function, index, module version, start address, size, CRC-32
//     and SHA-256 where known, and the asset it is published as. An embedded snapshot
//     (assets/catalog.json, generated from Particle's Device Restore header dumps and
//     corrected from real binaries) works offline; Refresh adds what the GitHub releases
//     API knows beyond it.
//   - The downloader fetches release assets from a list of mirrors (the GitHub releases
//     by default, or an internal HTTP server, or a file:// directory), in parallel and
//     bounded, resuming with HTTP Range after a cut, retrying 5xx and stalls with
//     backoff, and verifying every file against the catalog before it is kept.
//   - The Cache stores verified files content-addressed by SHA-256 with an index by
//     version and platform, under a file lock so two processes can share it. It can
//     re-verify everything (quarantining bad files), prune old versions, import files,
//     directories and .zip bundles (for machines with no internet), and export bundles.
//
// Nothing enters the cache without passing verification, and no file in it is ever
// modified: new files are written aside and renamed into place.
package cache

//go:generate go run ./internal/gen/catalog-gen -shared ../../shared -out ../assets/catalog.json
