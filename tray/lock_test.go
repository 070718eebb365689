package tray

import (
	"errors"
	"os"
	"testing"
)

func TestLockSingleInstance(t *testing.T) {
	dir, err := os.MkdirTemp("", "pwbi-tray-lock")
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: its cleanup fails under Wine (toolchain.md §4).
	defer os.RemoveAll(dir)
	t.Setenv("XDG_CACHE_HOME", dir)
	t.Setenv("HOME", dir)

	l, err := AcquireLock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AcquireLock(); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second lock: %v, want ErrAlreadyRunning", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := AcquireLock()
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.Release()
}
