package deliver

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Member is one sink's delivery loop in a Group.
type Member struct {
	// Name is the sink's name ("upstream", "nats", "jurnal"), as the store
	// and the status know it.
	Name string
	// Forwarder drains the sink's own view of the buffer.
	Forwarder *Forwarder
}

// Group is the delivery loops of every sink, one Forwarder each, run
// together: a sink that is down or rejecting never holds another back,
// because each loop has its own goroutine, position, backoff and bisection
// (see the package doc). The set of members is fixed when the Group is
// made; a sink that is switched off keeps its member, with a sink whose
// Endpoint is "" (Forwarder.Update), and idles. A Group is safe for
// concurrent use.
type Group struct {
	members []Member
}

// NewGroup returns a group of the given members, in that order (the order
// of Members, of Drain's errors).
func NewGroup(members ...Member) *Group {
	return &Group{members: members}
}

// Members returns the members, in order.
func (g *Group) Members() []Member { return g.members }

// Forwarder returns the named sink's forwarder, or nil.
func (g *Group) Forwarder(name string) *Forwarder {
	for _, m := range g.members {
		if m.Name == name {
			return m.Forwarder
		}
	}
	return nil
}

// Run runs every member's Forwarder.Run until ctx is cancelled, then
// returns nil once all have returned.
func (g *Group) Run(ctx context.Context) error {
	return g.each(func(f *Forwarder) error { return f.Run(ctx) })
}

// Flush asks every member to send what is pending at once ("Sync now"); see
// Forwarder.Flush.
func (g *Group) Flush() {
	for _, m := range g.members {
		m.Forwarder.Flush()
	}
}

// Drain drains every member at the same time (Forwarder.Drain), so that a
// sink that is slow or down does not use up another's time, and returns
// when all have returned: nil when every buffer view is empty (or its sink
// switched off), else the errors of the members that stopped short, each
// naming its sink. Cancel Run first (Drain waits for it).
func (g *Group) Drain(ctx context.Context) error {
	return g.each(func(f *Forwarder) error { return f.Drain(ctx) })
}

// each calls fn on every member's forwarder at once and returns when all
// have returned, with their errors, each naming its sink.
func (g *Group) each(fn func(*Forwarder) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(g.members))
	for i, m := range g.members {
		wg.Go(func() {
			if err := fn(m.Forwarder); err != nil {
				errs[i] = fmt.Errorf("sink %s: %w", m.Name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
