//go:build unix

package testutil

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// heldLocks keeps the lock files of the blocks this process took open
// (and reachable: a collected os.File would close, and unlock).
var heldLocks struct {
	sync.Mutex
	files []*os.File
}

// lockBlock takes the lock file at path (flock, exclusive) for the rest of
// the process's life. It is false when another process holds it. Where no
// lock file can be had (a temporary directory this user cannot write), it
// is true: the binary keeps only its own ports apart, as without locks.
func lockBlock(path string) bool {
	f, err := openLockFile(path)
	if err != nil {
		return true
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return !errors.Is(err, syscall.EWOULDBLOCK)
	}
	heldLocks.Lock()
	heldLocks.files = append(heldLocks.files, f)
	heldLocks.Unlock()
	return true
}

// openLockFile opens (creating) the lock file at path, read-only: flock
// needs no write access, so a file another user created will do.
func openLockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
			return nil, err
		}
		f, err = os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
	}
	return f, err
}
