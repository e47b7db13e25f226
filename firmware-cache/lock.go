package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// lockPoll is how often a waiting process retries a lock another process holds.
const lockPoll = 25 * time.Millisecond

// errWouldBlock is what tryLock returns when another process holds the lock.
var errWouldBlock = errors.New("lock held by another process")

// fileLock is an exclusive advisory lock on a file, held across processes (flock on
// Unix, LockFileEx on Windows). The lock dies with the process, so a crashed pflash
// never leaves the cache locked.
type fileLock struct{ f *os.File }

// acquire waits for the lock on path until ctx is done.
func acquire(ctx context.Context, path string) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	for {
		err := tryLock(f)
		if err == nil {
			return &fileLock{f: f}, nil
		}
		if !errors.Is(err, errWouldBlock) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for another program using the firmware cache %s: %w", path, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}

// tryAcquire takes the lock only if it is free.
func tryAcquire(path string) (*fileLock, bool) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false
	}
	if tryLock(f) != nil {
		f.Close()
		return nil, false
	}
	return &fileLock{f: f}, true
}

func (l *fileLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = unlock(l.f)
	_ = l.f.Close()
	l.f = nil
}
