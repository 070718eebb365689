//go:build unix

package configwatch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/config"
)

// replaceWith makes the config path the thing create makes, atomically: it
// is created under a temporary name and renamed over the path.
func replaceWith(t *testing.T, path string, create func(tmp string) error) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".config.toml.tmp")
	if err := create(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func fifo(tmp string) error { return syscall.Mkfifo(tmp, 0o600) }

func devZero(tmp string) error { return os.Symlink("/dev/zero", tmp) }

func oversized(tmp string) error {
	return os.WriteFile(tmp, []byte(strings.Repeat("# padding\n", config.MaxFileSize/10+1)), 0o600)
}

// waitProblem waits for a reported problem that satisfies ok.
func waitProblem(t *testing.T, problems <-chan error, what string, ok func(error) bool) {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case err := <-problems:
			if ok(err) {
				return
			}
			t.Logf("problem reported (waiting for %s): %v", what, err)
		case <-timeout:
			t.Fatalf("no problem reported for %s", what)
		}
	}
}

func isProblem(kind error, text string) func(error) bool {
	return func(err error) bool { return errors.Is(err, kind) && strings.Contains(err.Error(), text) }
}

// Issue 10: the config path replaced by a FIFO, by a symlink to /dev/zero
// or by a file over 1 MiB is refused without blocking or reading it whole.
// Each is reported to OnProblem, naming the file and what is wrong (a new
// report when what is wrong changes), nothing reaches onChange, a valid
// file is reported again afterwards, and Run returns promptly on cancel
// even while the path is a FIFO.
func TestUnsafeConfigFileReported(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skipf("no /dev/zero: %v", err)
	}
	t.Parallel()
	problems := make(chan error, 64)
	e := newEnv(t, contentA, Options{Poll: -1, OnProblem: func(err error) { problems <- err }})
	e.w.rewatchMin, e.w.rewatchMax = 20*time.Millisecond, 100*time.Millisecond // quick retries
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.w.Run(ctx, func(c Change) { e.changes <- c }) }()
	e.logs.wait(t, msgReady, 1)

	replaceWith(t, e.path, fifo)
	waitProblem(t, problems, "a FIFO", isProblem(config.ErrNotRegular, "config file "+e.path+" is not a regular file (named pipe)"))
	replaceWith(t, e.path, devZero)
	waitProblem(t, problems, "a link to /dev/zero", isProblem(config.ErrNotRegular, "(character device /dev/zero)"))
	replaceWith(t, e.path, oversized)
	waitProblem(t, problems, "a file over 1 MiB", isProblem(config.ErrTooLarge, "config file "+e.path+" is larger than 1 MiB"))
	select {
	case c := <-e.changes:
		t.Fatalf("reported %d bytes from an unsafe file", len(c.Data))
	default:
	}

	replaceWith(t, e.path, func(tmp string) error { return os.WriteFile(tmp, contentB, 0o600) })
	wantData(t, e.next(), contentB)

	replaceWith(t, e.path, fifo)
	waitProblem(t, problems, "a FIFO again", isProblem(config.ErrNotRegular, "(named pipe)"))
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return after cancel while the config path is a FIFO")
	}
}

// A watcher started while the config path is a FIFO reports it and does
// not block: Run still returns on cancel.
func TestFIFOAtStart(t *testing.T) {
	t.Parallel()
	problems := make(chan error, 16)
	e := newEnv(t, nil, Options{Poll: -1, OnProblem: func(err error) { problems <- err }})
	if err := syscall.Mkfifo(e.path, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Should a read ever block in open(2) on the FIFO, release it so
		// that a failure does not leave the goroutine behind.
		if f, err := os.OpenFile(e.path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.w.Run(ctx, func(c Change) { e.changes <- c }) }()
	waitProblem(t, problems, "a FIFO at start", isProblem(config.ErrNotRegular, "(named pipe)"))
	cancel()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return after cancel")
	}
}
