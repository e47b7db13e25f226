//go:build !windows

package cache

import "os"

// replace renames src over dst: atomic on POSIX even while another process reads dst.
func replace(src, dst string) error { return os.Rename(src, dst) }
