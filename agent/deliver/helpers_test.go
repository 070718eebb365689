package deliver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/agent/deliver/httpsink"
	"github.com/pwbi/edge-agent/agent/deliver/httpsink/upstreamfake"
	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/store"
)

// waitLimit guards every wait in the tests against a hang; it is never
// reached when the code under test works.
const waitLimit = 20 * time.Second

// t0 is the fake clock's start: whole seconds, so HTTP-dates are exact.
var t0 = time.Date(2025, 12, 26, 3, 0, 0, 0, time.UTC)

const (
	testToken = "tok-SECRET-5f3a9c71"
	testAgent = "outlet-pc-01"
)

// ---- in-memory Source ----

type deadRec struct {
	Seq    uint64
	Key    string
	Reason string
}

// memSource is an in-memory Source with the store's contract: records in
// strictly increasing seq order, Ack and DeadLetter remove them.
type memSource struct {
	clock clockwork.Clock

	mu          sync.Mutex
	pending     []store.Record
	nextSeq     uint64
	acks        [][]uint64
	dead        []deadRec
	unknownAcks int
	failPending int // fail the next n Pending calls
	failAck     int // fail the next n Ack calls
	failDead    int // fail the next n DeadLetter calls
	changed     chan struct{}
	notify      chan struct{}
}

func newMemSource(clock clockwork.Clock) *memSource {
	return &memSource{clock: clock, nextSeq: 1, changed: make(chan struct{}), notify: make(chan struct{}, 1)}
}

func testData(seq uint64) []byte {
	return fmt.Appendf(nil, `{"external_id":"MOK%d","source_system":"moka","amount":"%d","items":[{"name":"Es Kopi Susu","quantity":"2"}]}`, seq, 25000+seq)
}

// add appends n records stamped now; with notify it signals Notify, as the
// store does. Tests that must see exactly one flush timer preload records
// without notify before Run starts.
func (s *memSource) add(n int, notify bool) []store.Record {
	s.mu.Lock()
	var out []store.Record
	for range n {
		seq := s.nextSeq
		out = append(out, s.addLocked(fmt.Sprintf("moka/biz_1/outlet_456/MOK%d", seq), testData(seq)))
	}
	s.mu.Unlock()
	if notify {
		s.signal()
	}
	return out
}

func (s *memSource) addData(key string, data []byte) store.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addLocked(key, data)
}

func (s *memSource) addLocked(key string, data []byte) store.Record {
	r := store.Record{
		Kind:    store.KindTransaction,
		Key:     key,
		Seq:     s.nextSeq,
		Version: store.Version(data),
		Data:    data,
		AddedAt: s.clock.Now(),
	}
	s.nextSeq++
	s.pending = append(s.pending, r)
	s.changedLocked()
	return r
}

func (s *memSource) signal() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *memSource) changedLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *memSource) Pending(max int) ([]store.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failPending > 0 {
		s.failPending--
		return nil, errors.New("disk on fire")
	}
	n := min(max, len(s.pending))
	return slices.Clone(s.pending[:n]), nil
}

func (s *memSource) Ack(seqs ...uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAck > 0 {
		s.failAck--
		return errors.New("disk full")
	}
	s.acks = append(s.acks, slices.Clone(seqs))
	for _, seq := range seqs {
		if !s.removeLocked(seq) {
			s.unknownAcks++
		}
	}
	s.changedLocked()
	return nil
}

func (s *memSource) DeadLetter(seq uint64, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failDead > 0 {
		s.failDead--
		return errors.New("disk full")
	}
	for _, r := range s.pending {
		if r.Seq == seq {
			s.dead = append(s.dead, deadRec{Seq: seq, Key: r.Key, Reason: reason})
			s.removeLocked(seq)
			s.changedLocked()
			return nil
		}
	}
	return fmt.Errorf("dead-letter: no pending record %d", seq)
}

func (s *memSource) removeLocked(seq uint64) bool {
	i := slices.IndexFunc(s.pending, func(r store.Record) bool { return r.Seq == seq })
	if i < 0 {
		return false
	}
	s.pending = slices.Delete(s.pending, i, i+1)
	return true
}

func (s *memSource) Notify() <-chan struct{} { return s.notify }

func (s *memSource) pendingCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

func (s *memSource) deadLetters() []deadRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.dead)
}

// waitFor blocks until cond (called with s.mu held) is true.
func (s *memSource) waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	limit := time.NewTimer(waitLimit)
	defer limit.Stop()
	for {
		s.mu.Lock()
		ok, ch := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-limit.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (s *memSource) waitEmpty(t testing.TB) {
	t.Helper()
	s.waitFor(t, "the source to be empty", func() bool { return len(s.pending) == 0 })
}

// ---- recording fake clock ----

type clockEvent struct {
	afterFunc bool // an attempt timeout; otherwise a wait (NewTimer)
	d         time.Duration
}

// recClock is a clockwork.FakeClock that records every timer created, so
// tests can assert the exact waits the forwarder chose (and the attempt
// timeouts of the HTTP sink) and advance the clock by them.
type recClock struct {
	*clockwork.FakeClock

	mu      sync.Mutex
	events  []clockEvent
	changed chan struct{}
	waitPos int // next NewTimer event to hand out
	funcPos int // next AfterFunc event to hand out
}

var _ clockwork.Clock = (*recClock)(nil)

func newRecClock() *recClock {
	return &recClock{FakeClock: clockwork.NewFakeClockAt(t0), changed: make(chan struct{})}
}

func (c *recClock) record(afterFunc bool, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, clockEvent{afterFunc, d})
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *recClock) NewTimer(d time.Duration) clockwork.Timer {
	t := c.FakeClock.NewTimer(d)
	c.record(false, d)
	return t
}

func (c *recClock) After(d time.Duration) <-chan time.Time {
	return c.NewTimer(d).Chan()
}

func (c *recClock) AfterFunc(d time.Duration, f func()) clockwork.Timer {
	t := c.FakeClock.AfterFunc(d, f)
	c.record(true, d)
	return t
}

func (c *recClock) next(t testing.TB, afterFunc bool) time.Duration {
	t.Helper()
	limit := time.NewTimer(waitLimit)
	defer limit.Stop()
	for {
		c.mu.Lock()
		pos := &c.waitPos
		if afterFunc {
			pos = &c.funcPos
		}
		for *pos < len(c.events) && c.events[*pos].afterFunc != afterFunc {
			*pos++
		}
		if *pos < len(c.events) {
			d := c.events[*pos].d
			*pos++
			c.mu.Unlock()
			return d
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-limit.C:
			t.Fatalf("timed out waiting for a timer (afterFunc=%v)", afterFunc)
		}
	}
}

// tryNextWait returns the duration of the next wait timer not handed out
// yet, if there is one, without blocking.
func (c *recClock) tryNextWait() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.waitPos < len(c.events) && c.events[c.waitPos].afterFunc {
		c.waitPos++
	}
	if c.waitPos == len(c.events) {
		return 0, false
	}
	d := c.events[c.waitPos].d
	c.waitPos++
	return d, true
}

// nextWait returns the duration of the next wait timer (flush interval or
// backoff) the forwarder started, blocking until there is one.
func (c *recClock) nextWait(t testing.TB) time.Duration {
	t.Helper()
	return c.next(t, false)
}

// nextAttemptTimeout returns the duration of the next attempt timeout.
func (c *recClock) nextAttemptTimeout(t testing.TB) time.Duration {
	t.Helper()
	return c.next(t, true)
}

// waits returns every wait timer recorded so far.
func (c *recClock) waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Duration
	for _, e := range c.events {
		if !e.afterFunc {
			out = append(out, e.d)
		}
	}
	return out
}

// ---- harness ----

type harness struct {
	t        *testing.T
	clock    *recClock
	src      *memSource
	srv      *upstreamfake.Server
	logs     *testutil.SyncBuffer
	cfg      Config
	opts     Options
	sink     httpsink.Config
	sinkOpts httpsink.Options
	fwd      *Forwarder

	mu      sync.Mutex
	results []Result

	cancel context.CancelFunc
	done   chan error
}

type setup struct {
	cfg      *Config
	opts     *Options
	sink     *httpsink.Config
	sinkOpts *httpsink.Options
	srvOpts  *upstreamfake.Options
}

// newHarness builds a forwarder (not running) sending through the HTTP sink
// to a fake upstream over loopback HTTP, with a recording fake clock and an
// in-memory source. At the end of the test it stops Run (which must return
// nil) and checks that no secret reached the logs.
func newHarness(t *testing.T, mods ...func(setup)) *harness {
	t.Helper()
	h := &harness{t: t, clock: newRecClock(), logs: &testutil.SyncBuffer{}}
	h.src = newMemSource(h.clock)
	srvOpts := upstreamfake.Options{Token: testToken}
	h.cfg = Config{
		BatchSize:     100,
		FlushInterval: 5 * time.Second,
	}
	h.sink = httpsink.Config{
		Token:   testToken,
		AgentID: testAgent,
		Timeout: 30 * time.Second,
	}
	h.sinkOpts = httpsink.Options{Clock: h.clock}
	h.opts = Options{
		Clock:  h.clock,
		Logger: slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Rand:   func() float64 { return 0.5 },
		OnResult: func(r Result) {
			h.mu.Lock()
			h.results = append(h.results, r)
			h.mu.Unlock()
		},
	}
	s := setup{&h.cfg, &h.opts, &h.sink, &h.sinkOpts, &srvOpts}
	for _, m := range mods {
		m(s)
	}
	h.srv = upstreamfake.NewServer(t, srvOpts)
	if h.sink.URL == "" {
		h.sink.URL = h.srv.URL()
	} else if h.sink.URL == "none" {
		h.sink.URL = ""
	}
	h.fwd = New(h.src, h.newSink(h.sink), h.cfg, h.opts)
	t.Cleanup(func() {
		h.stop()
		for _, secret := range []string{testToken, "other-token-b7e2"} {
			if strings.Contains(h.logs.String(), secret) {
				t.Errorf("a token appears in the logs:\n%s", h.logs.String())
			}
			if strings.Contains(h.fwd.Status().LastError, secret) {
				t.Errorf("a token appears in LastError: %q", h.fwd.Status().LastError)
			}
		}
		h.src.mu.Lock()
		defer h.src.mu.Unlock()
		if h.src.unknownAcks != 0 {
			t.Errorf("%d acks of records that were not pending", h.src.unknownAcks)
		}
	})
	return h
}

// newSink returns an HTTP sink with c and the harness's clock.
func (h *harness) newSink(c httpsink.Config) *httpsink.Sink {
	return httpsink.New(c, h.sinkOpts)
}

// update hot-reloads the sink's configuration (the loop's stays), as the
// agent does.
func (h *harness) update(c httpsink.Config) {
	h.fwd.Update(h.cfg, h.newSink(c))
}

// start runs the forwarder in the background.
func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.fwd.Run(ctx) }()
}

// stop cancels Run and checks that it returned nil.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run returned %v, want nil", err)
		}
	case <-time.After(waitLimit):
		h.t.Fatalf("Run did not return after cancel")
	}
}

// finish waits until the source is empty and stops Run, so that the status
// is final (it is updated just after the source acks).
func (h *harness) finish() {
	h.t.Helper()
	h.src.waitEmpty(h.t)
	h.stop()
}

// driveUntil waits until cond (called with h.src.mu held) holds, advancing
// the fake clock through every wait (backoff, flush interval) the forwarder
// starts meanwhile. It returns the waits it advanced through.
func (h *harness) driveUntil(what string, cond func() bool) []time.Duration {
	h.t.Helper()
	limit := time.NewTimer(waitLimit)
	defer limit.Stop()
	var waits []time.Duration
	for {
		h.src.mu.Lock()
		ok, srcChanged := cond(), h.src.changed
		h.src.mu.Unlock()
		if ok {
			return waits
		}
		h.clock.mu.Lock()
		clockChanged := h.clock.changed
		h.clock.mu.Unlock()
		if d, ok := h.clock.tryNextWait(); ok {
			waits = append(waits, d)
			h.clock.Advance(d)
			continue
		}
		select {
		case <-srcChanged:
		case <-clockChanged:
		case <-limit.C:
			h.t.Fatalf("timed out waiting for %s (waits so far %v)", what, waits)
		}
	}
}

func (h *harness) resultList() []Result {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.results)
}

// seqs returns the seqs of recs.
func seqs(recs []store.Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

// seqRange returns from..to, skipping the listed seqs.
func seqRange(from, to uint64, skip ...uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		if !slices.Contains(skip, s) {
			out = append(out, s)
		}
	}
	return out
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}
