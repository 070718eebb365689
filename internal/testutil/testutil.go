// Package testutil holds the helpers the project's tests share: a log
// buffer safe for concurrent writes (SyncBuffer), polling for a condition
// with a deadline (WaitFor), a driver that advances a fake clock by each
// wait a client announces (ClockDriver), and free ports for servers and
// child processes a test starts (FreeAddr, FreePorts).
//
// It is for tests only: import it from _test.go files, never from code
// that ships.
package testutil

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// SyncBuffer is a bytes.Buffer safe for concurrent use, for the output of
// a logger or a child process that tests read while it is written. The
// zero value is ready to use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Polling intervals of WaitFor: short at first, for conditions that hold
// almost at once, then longer, for ones that ask the system (a process, a
// service manager) and should not be asked in a tight loop.
const (
	firstPoll = 5 * time.Millisecond
	maxPoll   = 100 * time.Millisecond
)

// WaitFor polls cond until it holds, and fails the test ("timed out after
// <timeout> waiting for <what>") if it still does not once timeout has
// passed. It is how a test waits for a settled condition (another
// goroutine or process got there); it asserts nothing about speed, so give
// a generous timeout.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for poll := firstPoll; !cond(); poll = min(2*poll, maxPoll) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(poll)
	}
}

// Wait is one wait a client announced to a ClockDriver: its reason (such
// as "rate_limit", "retry_after", "backoff") and its length.
type Wait struct {
	Reason string
	Dur    time.Duration
}

// ClockDriver advances a fake clock by exactly each wait a client announces
// (through an OnWait hook such as the Moka clients'), once the client is
// blocked on it, and records the waits. It suits one client goroutine at a
// time: OnWait blocks until the driver has taken the wait.
type ClockDriver struct {
	fc    *clockwork.FakeClock
	ch    chan Wait
	mu    sync.Mutex
	waits []Wait
}

// NewClockDriver starts a driver of fc; it stops when the test ends.
func NewClockDriver(t testing.TB, fc *clockwork.FakeClock) *ClockDriver {
	d := &ClockDriver{fc: fc, ch: make(chan Wait)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case w := <-d.ch:
				d.mu.Lock()
				d.waits = append(d.waits, w)
				d.mu.Unlock()
				if w.Dur <= 0 {
					continue
				}
				if fc.BlockUntilContext(ctx, 1) != nil {
					return
				}
				fc.Advance(w.Dur)
			}
		}
	}()
	return d
}

// OnWait announces a wait of dur for reason; use it as the client's hook.
func (d *ClockDriver) OnWait(reason string, dur time.Duration) { d.ch <- Wait{reason, dur} }

// Waits returns the waits announced so far, oldest first.
func (d *ClockDriver) Waits() []Wait {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.waits)
}
