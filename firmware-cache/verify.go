package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/particle-flasher/particle-flasher/flasher/module"
	"github.com/particle-flasher/particle-flasher/flasher/platform"
)

// ErrVerify marks a file that is not the module it should be: damaged, truncated, for
// another platform, or another version. Such a file never enters the cache.
var ErrVerify = errors.New("verification failed")

// VerifyError lists everything wrong with a file compared with what the catalog says.
type VerifyError struct {
	Problems []string
	// Cause is the module package's validation error, when there was one.
	Cause error
}

func (e *VerifyError) Error() string {
	return "verification failed: " + strings.Join(e.Problems, "; ")
}

// Unwrap gives ErrVerify and the underlying validation error.
func (e *VerifyError) Unwrap() []error {
	if e.Cause != nil {
		return []error{ErrVerify, e.Cause}
	}
	return []error{ErrVerify}
}

// facts is what a file is, computed once and compared with any number of catalog modules.
type facts struct {
	m        *module.Module
	size     int64
	crc      string // stored CRC-32, hex
	sha      string // SHA-256 stored in the suffix, hex
	fileSHA  string // SHA-256 of the whole file, hex
	parseErr error
	valErr   error
}

func inspect(data []byte) *facts {
	sum := sha256.Sum256(data)
	f := &facts{size: int64(len(data)), fileSHA: hex.EncodeToString(sum[:])}
	f.m, f.parseErr = module.Parse(data)
	if f.parseErr != nil {
		return f
	}
	f.crc = fmt.Sprintf("%08x", f.m.StoredCRC)
	f.sha = hex.EncodeToString(f.m.SHA256)
	f.valErr = f.m.Validate()
	return f
}

// valid is the catalog-independent verdict: a module, intact by its own CRC and size, and
// for a known platform and function.
func (f *facts) valid() error {
	if f.parseErr != nil {
		return &VerifyError{Problems: []string{f.parseErr.Error()}, Cause: f.parseErr}
	}
	if f.valErr != nil {
		return &VerifyError{Problems: []string{f.valErr.Error()}, Cause: f.valErr}
	}
	return nil
}

// quick rules a module in or out on cheap fields, before the full comparison.
func (f *facts) quick(want *Module) bool {
	if f.m == nil || f.m.PlatformID != want.PlatformID || f.m.Function != want.Function || f.m.Index != want.Index {
		return false
	}
	if want.Size > 0 && want.Size != f.size || want.CRC32 != "" && want.CRC32 != f.crc {
		return false
	}
	return true
}

// check compares the file with what the catalog says the module is.
func (f *facts) check(want *Module) error {
	var probs []string
	sizeWrong := want.Size > 0 && f.size != want.Size
	sizeProblem := func() {
		what := "file is %d bytes, the catalog says %d"
		if f.size < want.Size {
			what += " (truncated)"
		}
		probs = append(probs, fmt.Sprintf(what, f.size, want.Size))
	}
	if f.parseErr != nil {
		if sizeWrong {
			sizeProblem()
		}
		probs = append(probs, f.parseErr.Error())
		return &VerifyError{Problems: probs, Cause: f.parseErr}
	}
	m := f.m
	if m.PlatformID != want.PlatformID {
		probs = append(probs, fmt.Sprintf("wrong platform: the file is built for %s, expected %s",
			platformLabel(m.PlatformID), platformLabel(want.PlatformID)))
	}
	if m.Function != want.Function || m.Index != want.Index {
		probs = append(probs, fmt.Sprintf("wrong module: the file is %s %d, expected %s %d (%s)", m.Function, m.Index, want.Function, want.Index, want.Name))
	}
	if sizeWrong {
		sizeProblem()
	}
	if want.ModuleVersion != 0 && m.Version != want.ModuleVersion {
		probs = append(probs, fmt.Sprintf("wrong module version: %d, expected %d", m.Version, want.ModuleVersion))
	}
	if want.HasStart && m.Start != want.Start {
		probs = append(probs, fmt.Sprintf("start address 0x%08x, expected 0x%08x", m.Start, want.Start))
	}
	// The module's own integrity. A SHA-256 mismatch is tolerated only where the stored
	// hash is a known dummy (SoftDevice, NCP) or is exactly the one the catalog lists.
	verr := f.valErr
	if verr != nil && errors.Is(verr, module.ErrSHA) && !errors.Is(verr, module.ErrCRC) && !errors.Is(verr, module.ErrSize) &&
		want.SHA256 != "" && want.SHA256 == f.sha && onlySHAProblem(verr) {
		verr = nil
	}
	if verr != nil && sizeWrong {
		// The catalog's size already said it; the header's view would only repeat it.
		verr = without(verr, module.ErrSize)
	}
	if verr != nil {
		probs = append(probs, verr.Error())
	}
	if want.CRC32 != "" && f.crc != want.CRC32 && len(probs) == 0 {
		probs = append(probs, fmt.Sprintf("CRC-32 %s, the catalog says %s (another build of this module?)", f.crc, want.CRC32))
	}
	if want.SHA256 != "" && f.sha != want.SHA256 && len(probs) == 0 {
		probs = append(probs, fmt.Sprintf("SHA-256 %s, the catalog says %s", f.sha, want.SHA256))
	}
	if want.FileSHA256 != "" && f.fileSHA != want.FileSHA256 && len(probs) == 0 {
		probs = append(probs, fmt.Sprintf("file SHA-256 %s, the catalog says %s", f.fileSHA, want.FileSHA256))
	}
	if len(probs) == 0 {
		return nil
	}
	return &VerifyError{Problems: probs, Cause: verr}
}

// without drops the problems of one kind from a validation error.
func without(err, kind error) error {
	var p module.Problems
	if errors.As(err, &p) {
		var kept module.Problems
		for _, e := range p {
			if !errors.Is(e, kind) {
				kept = append(kept, e)
			}
		}
		switch len(kept) {
		case 0:
			return nil
		case 1:
			return kept[0]
		}
		return kept
	}
	if errors.Is(err, kind) {
		return nil
	}
	return err
}

func onlySHAProblem(err error) bool {
	var p module.Problems
	if errors.As(err, &p) {
		return len(p) == 1
	}
	return true
}

func platformLabel(id uint16) string {
	if p, ok := platform.ByID(id); ok {
		return fmt.Sprintf("%s (%d)", p.Name, id)
	}
	return fmt.Sprintf("unknown platform %d", id)
}

// VerifyModule checks a file against a catalog module: a valid Particle module (size
// matching its header, CRC-32, SHA-256 except where Particle ships a dummy), of the
// expected platform, function, index, module version and start address, and with the
// catalog's size, CRC-32 and SHA-256 where known. It returns the parsed module, and an
// error wrapping ErrVerify that lists every problem.
func VerifyModule(data []byte, want *Module) (*module.Module, error) {
	f := inspect(data)
	return f.m, f.check(want)
}

// Identify finds every release module the file is, by its header and checksums (a
// SoftDevice image is part of many releases). Modules of partial releases, which have no
// checksums, match on header fields alone.
func (c *Catalog) Identify(data []byte) []Placement {
	return c.identify(inspect(data))
}

func (c *Catalog) identify(f *facts) []Placement {
	var out []Placement
	if f.valid() != nil {
		return nil
	}
	for _, r := range c.releases {
		for i := range r.Modules {
			m := &r.Modules[i]
			if m.CRC32 == "" && (!r.Partial || m.ModuleVersion == 0) {
				continue // nothing to tell this release's file from another's
			}
			if f.quick(m) && f.check(m) == nil {
				out = append(out, Placement{Release: r, Module: m})
			}
		}
	}
	return out
}

// IdentifyComponent finds the component a file is, if any.
func (c *Catalog) IdentifyComponent(data []byte) (*Component, bool) {
	return c.identifyComponent(inspect(data))
}

func (c *Catalog) identifyComponent(f *facts) (*Component, bool) {
	for i := range c.components {
		m := &c.components[i].Module
		if f.quick(m) && f.check(m) == nil {
			return &c.components[i], true
		}
	}
	return nil, false
}
