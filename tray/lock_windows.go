//go:build windows

package tray

import (
	"errors"
	"fmt"

	"golang.org/x/sys/windows"
)

// Lock is held by the running tray of this logon session.
type Lock struct{ h windows.Handle }

// ErrAlreadyRunning is returned by AcquireLock when another tray holds the
// lock.
var ErrAlreadyRunning = errors.New("pwbi-tray is already running")

// mutexName is in the session namespace ("Local\"): one tray per logon
// session, which is one per user at the console, and one for each remote
// desktop session, each with its own taskbar.
const mutexName = `Local\PWBI-Agent-Tray`

// AcquireLock makes sure only one tray runs in this session, with a named
// mutex that Windows removes when the process ends.
func AcquireLock() (*Lock, error) {
	return acquireLockNamed(mutexName)
}

func acquireLockNamed(name string) (*Lock, error) {
	n, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return nil, err
	}
	h, err := windows.CreateMutex(nil, false, n)
	if errors.Is(err, windows.ERROR_ALREADY_EXISTS) {
		windows.CloseHandle(h)
		return nil, ErrAlreadyRunning
	}
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	return &Lock{h: h}, nil
}

// Release gives the lock up.
func (l *Lock) Release() error { return windows.CloseHandle(l.h) }
