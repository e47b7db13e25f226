//go:build windows

package cache

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/windows"
)

// replaceGrace bounds how long a rename waits for another process to close the file it
// replaces.
const replaceGrace = 2 * time.Second

// replace renames src over dst. Windows refuses to replace a file another process has
// open (a second pflash reading the index: "Access denied" or a sharing violation), where
// POSIX would not; the reader closes it within milliseconds, so the rename is tried again
// until it goes through or the grace is over, as Go's own tools do (cmd/go robustio).
func replace(src, dst string) error {
	deadline := time.Now().Add(replaceGrace)
	wait := time.Millisecond
	for {
		err := os.Rename(src, dst)
		if err == nil || !transient(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait)
		wait = min(2*wait, 50*time.Millisecond)
	}
}

func transient(err error) bool {
	return errors.Is(err, windows.ERROR_ACCESS_DENIED) || errors.Is(err, windows.ERROR_SHARING_VIOLATION) ||
		errors.Is(err, windows.ERROR_LOCK_VIOLATION)
}
