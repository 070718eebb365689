//go:build !windows

package tray

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Lock is held by the running tray of this user.
type Lock struct{ f *os.File }

// ErrAlreadyRunning is returned by AcquireLock when another tray holds the
// lock.
var ErrAlreadyRunning = errors.New("pwbi-tray is already running")

// AcquireLock makes sure only one tray runs per user: it takes an flock on
// pwbi-tray/tray.lock in the user's cache directory ($XDG_CACHE_HOME or
// ~/.cache; the temporary directory when there is no home). The kernel
// drops the lock when the process ends, however it ends.
func AcquireLock() (*Lock, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = filepath.Join(os.TempDir(), "pwbi-tray-"+strconv.Itoa(os.Getuid()))
	} else {
		dir = filepath.Join(dir, "pwbi-tray")
	}
	return acquireLockIn(dir)
}

func acquireLockIn(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "tray.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrAlreadyRunning
		}
		return nil, fmt.Errorf("lock: %w", err)
	}
	f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return &Lock{f: f}, nil
}

// Release gives the lock up.
func (l *Lock) Release() error { return l.f.Close() }
