// Package task runs the agent's long-running parts. Each part is a function
// run(ctx) error: Go starts it in its own goroutine, Stop cancels its context
// and waits for it. A Slot holds the running task of a part that is replaced
// while the agent runs — a listener moved by a config reload, the workers
// paused and resumed — and starts the new task before it stops the old one,
// so a moved listener never leaves a moment without one.
//
// Cancellation is the normal way to stop a part: a run function returns nil
// (or context.Canceled) when its context ends. A run function that returns
// while its context is still live has failed by itself; Go reports that to
// the task's OnExit callback so that the composition root can stop the
// agent.
package task

import (
	"context"
	"errors"
	"sync"
)

// Task is one running part. Its methods are safe for concurrent use and on
// a nil *Task (a part that was never started).
type Task struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done is closed
}

// Options tune Go.
type Options struct {
	// OnExit, if set, is called (from the task's goroutine) when run
	// returns by itself, that is while its context was not canceled, with
	// what it returned (possibly nil).
	OnExit func(name string, err error)
}

// Go starts run in a goroutine with a context derived from parent.
func Go(parent context.Context, name string, run func(context.Context) error, opts ...Options) *Task {
	ctx, cancel := context.WithCancel(parent)
	t := &Task{name: name, cancel: cancel, done: make(chan struct{})}
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	go func() {
		defer close(t.done)
		err := run(ctx)
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			err = nil
		}
		t.err = err
		if ctx.Err() == nil && o.OnExit != nil {
			o.OnExit(name, err)
		}
	}()
	return t
}

// Name is the part's name.
func (t *Task) Name() string {
	if t == nil {
		return ""
	}
	return t.name
}

// Stop cancels the task and waits for it to return. It returns what run
// returned; a stop by cancellation is nil.
func (t *Task) Stop() error {
	if t == nil {
		return nil
	}
	t.cancel()
	<-t.done
	return t.err
}

// Done is closed when the task has returned.
func (t *Task) Done() <-chan struct{} {
	if t == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return t.done
}

// Slot holds the running task of a part, if any. The zero value is an empty
// slot.
type Slot struct {
	mu sync.Mutex
	t  *Task
}

// Swap makes t the slot's task and then stops the previous one, returning
// what the previous one returned. t is already running when the old one is
// stopped: callers start the replacement first.
func (s *Slot) Swap(t *Task) error {
	s.mu.Lock()
	old := s.t
	s.t = t
	s.mu.Unlock()
	return old.Stop()
}

// Ensure starts a task with start and puts it in the slot, unless the slot
// holds one already. It reports whether it started one.
func (s *Slot) Ensure(start func() *Task) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.t != nil {
		return false
	}
	s.t = start()
	return true
}

// Stop stops the slot's task, if any, and empties the slot.
func (s *Slot) Stop() error { return s.Swap(nil) }

// Running reports whether the slot holds a task.
func (s *Slot) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t != nil
}
