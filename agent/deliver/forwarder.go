package deliver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/internal/backoff"
	"github.com/pwbi/edge-agent/store"
)

// Forwarder drains a Source to a Sink. Its methods are safe for concurrent
// use. Run and Drain never send at the same time: whichever starts second
// waits for the other to return.
type Forwarder struct {
	src      Source
	notify   <-chan struct{}
	clock    clockwork.Clock
	log      *slog.Logger
	rand     func() float64
	minB     time.Duration
	maxB     time.Duration
	onResult func(Result)

	sem      chan struct{} // capacity 1; held by Run or Drain
	flushC   chan struct{} // capacity 1; Flush signal
	updC     chan struct{} // capacity 1; Update signal
	flushReq atomic.Bool   // Flush requested and not yet served
	// switchedOff: an Update switched the sink off since the loop last
	// looked (forgetIfSwitchedOff), though it may be on again already.
	switchedOff atomic.Bool

	mu     sync.Mutex
	tgt    target
	status Status

	// Owned by the holder of sem.
	queue    [][]store.Record // segments of the current batch still to send, in order
	ep       episode          // isolation of rejected records in the current batch
	probe    int              // verifyAt of the next episode (see episode)
	flushing bool             // serving a Flush: partial batches go out at once
	failures int              // consecutive failed attempts
}

// target is what the loop sends with: its settings and the sink, taken
// together at the start of every step so that an attempt never mixes two
// configurations.
type target struct {
	Config
	sink     Sink
	endpoint string // sink.Endpoint(); "" when no sink is configured
}

func newTarget(cfg Config, s Sink) target {
	t := target{Config: cfg.withDefaults(), sink: s}
	if s != nil {
		t.endpoint = s.Endpoint()
	}
	return t
}

// New returns a forwarder draining src to s with cfg. A nil s, or one whose
// Endpoint is "", keeps records buffered until Update brings a configured
// sink. New does not start sending: call Run.
func New(src Source, s Sink, cfg Config, opts Options) *Forwarder {
	f := &Forwarder{
		src:      src,
		notify:   src.Notify(),
		clock:    opts.Clock,
		log:      opts.Logger,
		rand:     opts.Rand,
		minB:     opts.MinBackoff,
		maxB:     opts.MaxBackoff,
		onResult: opts.OnResult,
		sem:      make(chan struct{}, 1),
		flushC:   make(chan struct{}, 1),
		updC:     make(chan struct{}, 1),
		tgt:      newTarget(cfg, s),
		probe:    probeMin,
	}
	if f.clock == nil {
		f.clock = clockwork.NewRealClock()
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.rand == nil {
		f.rand = rand.Float64
	}
	if f.minB <= 0 {
		f.minB = DefaultMinBackoff
	}
	if f.maxB <= 0 {
		f.maxB = DefaultMaxBackoff
	}
	if f.maxB < f.minB {
		f.maxB = f.minB
	}
	f.status.Configured = f.tgt.endpoint != ""
	return f
}

// Update applies a new configuration (hot reload): the loop's settings and
// the sink built from the new configuration (nil, or a sink whose Endpoint
// is "", stops sending; records stay buffered). They apply from the next
// attempt; the batch in flight finishes with the old ones. When the sink's
// Endpoint changed, a bisection under way is dropped (its records are read
// again) and a backoff being waited out is cut short.
func (f *Forwarder) Update(cfg Config, s Sink) {
	t := newTarget(cfg, s)
	f.mu.Lock()
	changed := t.Config != f.tgt.Config || t.endpoint != f.tgt.endpoint
	f.tgt = t
	f.status.Configured = t.endpoint != ""
	if t.endpoint == "" {
		f.switchedOff.Store(true)
	}
	f.mu.Unlock()
	if changed {
		signal(f.updC)
	}
}

// Flush asks for everything pending to be sent at once ("Sync now"),
// skipping the flush interval and a backoff being waited out. It does not
// wait for the sending to happen.
func (f *Forwarder) Flush() {
	f.flushReq.Store(true)
	signal(f.flushC)
}

// Status returns a snapshot of the forwarder's state.
func (f *Forwarder) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

// current returns the settings and sink the next attempt uses.
func (f *Forwarder) current() target {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tgt
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (f *Forwarder) acquire(ctx context.Context) bool {
	select {
	case f.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (f *Forwarder) release() { <-f.sem }

// Run sends batches until ctx is cancelled, then returns nil. An attempt in
// flight is abandoned on cancellation; its records stay pending and are sent
// again (the same batch: for HTTP, the same batch id) by Drain or the next
// Run.
func (f *Forwarder) Run(ctx context.Context) error {
	if !f.acquire(ctx) {
		return nil
	}
	defer f.release()
	for ctx.Err() == nil {
		f.step(ctx)
	}
	return nil
}

// step does one unit of work: wait for something to send, or make one
// attempt and, after a transient failure, wait out the backoff.
func (f *Forwarder) step(ctx context.Context) {
	t := f.current()
	f.forgetIfSwitchedOff()
	if t.endpoint == "" {
		f.waitIdle(ctx)
		return
	}
	f.checkEndpoint(t)
	if len(f.queue) == 0 {
		if f.flushReq.Swap(false) {
			f.flushing = true
		}
		recs, err := f.src.Pending(t.BatchSize)
		if err != nil {
			err = fmt.Errorf("read pending records: %w", err)
			f.noteFailure(err, loopProblem(codeBufferRead, err))
			f.log.Error("Reading pending records failed", "error", err)
			f.backoff(ctx, t, 0)
			return
		}
		if len(recs) == 0 {
			f.flushing = false
			f.waitIdle(ctx)
			return
		}
		recs = recs[:min(len(recs), t.BatchSize)]
		if len(recs) < t.BatchSize {
			if f.flushing {
				f.flushing = false
			} else if wait := f.flushWait(t.Config, recs[0]); wait > 0 {
				f.waitFlush(ctx, wait)
				return
			}
		}
		f.load(t, recs)
	}
	a := f.sendHead(ctx, t)
	if a.outcome == OutcomeRetry {
		f.backoff(ctx, t, a.retryAfter)
	}
}

// flushWait is how long a partial batch whose oldest record is oldest must
// still wait. A record stamped in the future (clock set back) waits at most
// one interval.
func (f *Forwarder) flushWait(cfg Config, oldest store.Record) time.Duration {
	wait := f.clock.Until(oldest.AddedAt.Add(cfg.FlushInterval))
	return min(wait, cfg.FlushInterval)
}

// Drain sends pending batches until the buffer is empty (nil), an attempt
// fails (its error; no backoff is waited out), or ctx ends (ctx.Err()). It
// ignores the flush interval. Meant for shutdown: cancel Run first — Drain
// waits for Run to return. With no sink configured it returns nil at once.
func (f *Forwarder) Drain(ctx context.Context) error {
	if !f.acquire(ctx) {
		return ctx.Err()
	}
	defer f.release()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		t := f.current()
		f.forgetIfSwitchedOff()
		if t.endpoint == "" {
			return nil
		}
		f.checkEndpoint(t)
		if len(f.queue) == 0 {
			recs, err := f.src.Pending(t.BatchSize)
			if err != nil {
				return fmt.Errorf("read pending records: %w", err)
			}
			if len(recs) == 0 {
				return nil
			}
			f.load(t, recs[:min(len(recs), t.BatchSize)])
		}
		a := f.sendHead(ctx, t)
		switch a.outcome {
		case OutcomeCanceled:
			return ctx.Err()
		case OutcomeRetry:
			return a.err
		}
	}
}

// waitIdle waits for new records, a Flush, an Update or the end of ctx.
func (f *Forwarder) waitIdle(ctx context.Context) {
	select {
	case <-ctx.Done():
	case _, ok := <-f.notify:
		if !ok {
			f.notify = nil // closed: never selectable again
		}
	case <-f.flushC:
	case <-f.updC:
	}
}

// waitFlush waits up to d for a partial batch to fill, returning early on
// new records (the batch may be full now), Flush, Update or ctx.
func (f *Forwarder) waitFlush(ctx context.Context, d time.Duration) {
	t := f.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.Chan():
	case _, ok := <-f.notify:
		if !ok {
			f.notify = nil
		}
	case <-f.flushC:
	case <-f.updC:
	}
}

// retryPolicy is the loop's backoff after consecutive failures: the wait
// after the n-th (n ≥ 1) is Delay(n−1), equal jitter under the ceiling
// minB·2ⁿ capped at maxB — [1s, 2s], [2s, 4s], ... with the defaults —
// never below minB nor above maxB, so that agents that failed together do
// not retry together.
func retryPolicy(minB, maxB time.Duration, rnd func() float64) backoff.Policy {
	return backoff.Policy{Base: 2 * minB, Max: maxB, Min: minB, Rand: rnd}
}

// backoff counts a failed attempt and waits before the next one: exactly
// retryAfter when the destination asked for it (> 0), otherwise an exponential
// backoff with jitter. Flush, or an Update that changes the sink's
// Endpoint, cuts the wait short.
func (f *Forwarder) backoff(ctx context.Context, t target, retryAfter time.Duration) {
	wait := retryAfter
	if wait <= 0 {
		wait = retryPolicy(f.minB, f.maxB, f.rand).Delay(f.failures - 1)
	}
	f.mu.Lock()
	f.status.NextRetryAt = f.clock.Now().Add(wait)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.status.NextRetryAt = time.Time{}
		f.mu.Unlock()
	}()
	timer := f.clock.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.Chan():
			return
		case <-f.flushC:
			return
		case <-f.updC:
			if f.current().endpoint != t.endpoint {
				return
			}
		}
	}
}

// noteFailure counts a failure that is not an answer from the sink (a store
// error) and shows it in the status as an error a person must look at.
// Online is left as it is: the sink was not asked.
func (f *Forwarder) noteFailure(err error, problem sink.Message) {
	f.failures++
	f.mu.Lock()
	f.status.LastError = err.Error()
	f.status.Health = HealthError
	f.status.setProblem(problem)
	f.status.ConsecutiveFailures = f.failures
	f.mu.Unlock()
}

// load makes recs, fresh from the source, the batch to send and starts its
// episode.
func (f *Forwarder) load(t target, recs []store.Record) {
	f.queue = append(f.queue[:0], recs)
	f.ep = episode{verifyAt: f.probe, endpoint: t.endpoint}
}

// resetBatch forgets the batch being sent and its episode; its records stay
// pending in the source and are read again, without a flush interval (they
// were due already).
func (f *Forwarder) resetBatch() {
	f.queue = nil
	f.ep = episode{}
	f.flushing = true
}

// forgetIfSwitchedOff drops the batch in hand if the sink was switched off
// since the loop last looked: what was learnt about it is stale by the
// time the sink comes back (its records may have been released
// meanwhile), also when it came back before the loop looked.
func (f *Forwarder) forgetIfSwitchedOff() {
	if f.switchedOff.Swap(false) && len(f.queue) > 0 {
		f.resetBatch()
	}
}

// checkEndpoint drops the batch being sent when the sink's Endpoint changed
// since it was read: answers of the old endpoint must not decide the fate of
// records on the new one (held records would be dead-lettered as poison as
// soon as the new endpoint accepts the records after them).
func (f *Forwarder) checkEndpoint(t target) {
	if len(f.queue) > 0 && f.ep.endpoint != t.endpoint {
		f.log.Info("Sink changed: batch read again")
		f.resetBatch()
	}
}

// sendHead makes one attempt with the first segment of f.queue and applies
// the answer: ack and drop it, split it, hold or dead-letter it, or leave
// it for a retry. The caller waits out a retry.
func (f *Forwarder) sendHead(ctx context.Context, t target) attemptResult {
	f.recheckHeld()
	seg := f.queue[0]
	start := f.clock.Now()
	f.mu.Lock()
	f.status.Sending = true
	f.status.LastAttemptAt = start
	f.mu.Unlock()

	ans := settle(ctx, t.sink.Send(ctx, seg))
	latency := f.clock.Since(start)
	res := f.apply(t, seg, ans)

	f.mu.Lock()
	f.status.Sending = false
	online := f.status.Online
	f.mu.Unlock()
	if f.onResult != nil {
		f.onResult(Result{
			BatchID:      ans.BatchID,
			Records:      len(seg),
			StatusCode:   ans.StatusCode,
			Latency:      latency,
			Outcome:      res.outcome,
			DeadLettered: res.dead,
			Online:       online,
			Err:          res.err,
		})
	}
	return res
}

// errNoReason stands in for the error of an answer that gave none.
var errNoReason = errors.New("the sink gave no reason")

// settle makes an answer safe to act on whatever the sink filled in: a
// failure always has an error and a Problem and is never shown as healthy,
// and only the end of ctx counts as Canceled (anything else would resend
// at once, without a backoff, for as long as it lasts).
func settle(ctx context.Context, a sink.Answer) sink.Answer {
	switch a.Verdict {
	case sink.Accepted:
		return a
	case sink.Canceled:
		if ctx.Err() != nil {
			return a
		}
		a.Verdict = sink.Retry
	case sink.Retry, sink.TooLarge, sink.Rejected:
	default:
		a.Verdict = sink.Retry
	}
	if a.Err == nil {
		a.Err = errNoReason
	}
	if a.Verdict == sink.Retry {
		if a.Health == HealthOK {
			a.Health = HealthError
		}
		if a.Problem == "" {
			a = a.WithProblem(loopProblem(codeDeliveryFailed, a.Err))
		}
	} else if a.UniformProblem == "" {
		a = a.WithUniformProblem(loopProblem(codeRefusedAlike, a.Err))
	}
	return a
}

// setProblem shows m as the Problem, with its code and parameters. The
// caller holds the Forwarder's mu.
func (s *Status) setProblem(m sink.Message) {
	s.Problem, s.ProblemCode, s.ProblemParams = m.Text, m.Code, m.Params
}

// attemptResult is what sendHead did.
type attemptResult struct {
	outcome    Outcome
	err        error
	retryAfter time.Duration
	dead       int // records dead-lettered
}
