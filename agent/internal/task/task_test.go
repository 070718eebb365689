package task

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// blockUntilCanceled is a well-behaved part.
func blockUntilCanceled(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestStopIsACleanStop(t *testing.T) {
	tk := Go(context.Background(), "part", blockUntilCanceled)
	if err := tk.Stop(); err != nil {
		t.Fatalf("Stop = %v, want nil: cancellation is the normal stop", err)
	}
	select {
	case <-tk.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if err := tk.Stop(); err != nil {
		t.Fatalf("second Stop = %v", err)
	}
	var none *Task
	if none.Stop() != nil || none.Name() != "" {
		t.Fatal("a nil task is not a no-op")
	}
	<-none.Done()
}

func TestStopReturnsTheError(t *testing.T) {
	boom := errors.New("boom")
	tk := Go(context.Background(), "part", func(ctx context.Context) error {
		<-ctx.Done()
		return boom
	})
	if err := tk.Stop(); !errors.Is(err, boom) {
		t.Fatalf("Stop = %v, want %v", err, boom)
	}
}

// A part that returns while nobody stopped it has failed by itself: OnExit
// hears of it; a stopped part is not reported.
func TestOnExitOnlyWhenAPartEndsByItself(t *testing.T) {
	var mu sync.Mutex
	var exits []string
	onExit := func(name string, err error) {
		mu.Lock()
		defer mu.Unlock()
		exits = append(exits, name+": "+errString(err))
	}
	failing := Go(context.Background(), "listener", func(context.Context) error { return errors.New("accept: too many open files") }, Options{OnExit: onExit})
	<-failing.Done()
	stopped := Go(context.Background(), "workers", blockUntilCanceled, Options{OnExit: onExit})
	stopped.Stop()
	parent, cancel := context.WithCancel(context.Background())
	byParent := Go(parent, "child", blockUntilCanceled, Options{OnExit: onExit})
	cancel()
	<-byParent.Done()

	mu.Lock()
	defer mu.Unlock()
	if len(exits) != 1 || exits[0] != "listener: accept: too many open files" {
		t.Fatalf("exits = %q, want only the listener's", exits)
	}
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// Swap starts the new before it stops the old: at no moment is the slot
// without a running task.
func TestSlotSwapHasNoGap(t *testing.T) {
	var s Slot
	var mu sync.Mutex
	running := 0
	minRunning := 1 << 30
	started := make(chan struct{})
	part := func(ctx context.Context) error {
		mu.Lock()
		running++
		mu.Unlock()
		// Signal only once counted: signalling before the count let the
		// old task stop while the new one was not yet counted (a false gap).
		started <- struct{}{}
		<-ctx.Done()
		mu.Lock()
		running--
		minRunning = min(minRunning, running)
		mu.Unlock()
		return nil
	}
	start := func() *Task {
		return Go(context.Background(), "api", part)
	}
	s.Swap(start())
	<-started
	for range 5 {
		next := start()
		<-started // the new one runs
		if err := s.Swap(next); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	if minRunning < 1 {
		t.Fatalf("a swap left %d tasks running", minRunning)
	}
	mu.Unlock()
	if !s.Running() {
		t.Fatal("slot empty after swaps")
	}
	if err := s.Stop(); err != nil || s.Running() {
		t.Fatalf("Stop = %v, running %v", err, s.Running())
	}
	mu.Lock()
	defer mu.Unlock()
	if running != 0 {
		t.Fatalf("%d tasks still running after Stop", running)
	}
}

func TestSlotEnsureStartsOnce(t *testing.T) {
	var s Slot
	starts := 0
	start := func() *Task {
		starts++
		return Go(context.Background(), "workers", blockUntilCanceled)
	}
	if !s.Ensure(start) || s.Ensure(start) || starts != 1 {
		t.Fatalf("Ensure started %d tasks", starts)
	}
	s.Stop()
	if !s.Ensure(start) || starts != 2 {
		t.Fatal("Ensure after Stop did not start again")
	}
	done := make(chan struct{})
	go func() { s.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop hangs")
	}
}
