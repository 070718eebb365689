// Package upstream forwards buffered records to the PWBI cloud ingest service
// (SPEC §6).
//
// A [Forwarder] reads the oldest pending records from a [Source] (the bbolt
// buffer in production), posts them as gzip-compressed JSON batches to
// {url}/v1/batches, and acknowledges them in the source once the upstream has
// accepted them. Acceptance is explicit (SPEC §6.1): a 2xx or 409 whose body
// is a JSON object echoing the batch id that was sent. Nothing acks on a
// status code alone: any other 2xx (a captive portal's login page, an empty
// body, another batch's id) and any redirect leave the batch buffered, to be
// sent again, and the status says what came back.
//
// One batch is in flight at a time and records go out in seq order.
// Transient failures (408, 425, 429, 5xx, network errors, timeouts,
// truncated answers) retry the same batch, with the same batch id, after an
// exponential backoff with jitter or the server's Retry-After.
// Authentication and endpoint failures (401, 403, 404, 405, ...), redirects
// and answers that are not acknowledgements are retried the same way, never
// bisected or dead-lettered. A 413 splits the batch; any other record-level
// 4xx bisects it until the rejected records are isolated: those go to the
// dead-letter bucket while the rest are delivered in order — unless the
// bisection finds that the upstream refuses every record with the same
// answer, which is an endpoint failure and retried (outcome.go describes
// the algorithm).
//
// [Forwarder.Status] tells the truth about the upstream: a machine-readable
// [Health] and a plain-language Problem for a person.
//
// The token never appears in logs, errors or status. Every wait goes through
// the injected clockwork.Clock. This package must not import bbolt: it sees
// the buffer only through [Source].
package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/store"
)

// Source is the buffer the forwarder drains. The store implements it; all
// methods must be safe for concurrent use.
type Source interface {
	// Pending returns up to max of the oldest pending records, oldest
	// first, in strictly increasing Seq order. It must not remove them.
	Pending(max int) ([]store.Record, error)
	// Ack deletes delivered records.
	Ack(seqs ...uint64) error
	// DeadLetter moves one record to the dead-letter bucket with a reason.
	DeadLetter(seq uint64, reason string) error
	// Notify returns a channel signalled (non-blocking, capacity ≥ 1) when
	// records were added. It must return the same channel on every call.
	Notify() <-chan struct{}
}

// Config is the hot-reloadable part of the forwarder's configuration
// (the [upstream] section of the config file plus the agent id).
type Config struct {
	// URL is the ingest service's base URL; batches go to {URL}/v1/batches.
	// Empty means buffer only: nothing is sent.
	URL string
	// Token is the bearer token. It is never logged.
	Token string
	// AgentID is sent as agent_id and is part of every batch id.
	AgentID string
	// BatchSize is the maximum number of records per batch (default 500).
	BatchSize int
	// FlushInterval is how long a partial batch may wait after its oldest
	// record was added. Zero sends partial batches at once.
	FlushInterval time.Duration
	// Timeout bounds each attempt, from sending the request to reading the
	// answer (default 30s).
	Timeout time.Duration
}

// Defaults applied by New and Update to zero or invalid Config fields.
const (
	DefaultBatchSize = 500
	DefaultTimeout   = 30 * time.Second
)

func (c Config) withDefaults() Config {
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.FlushInterval < 0 {
		c.FlushInterval = 0
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Options are the forwarder's dependencies; all fields are optional.
type Options struct {
	// Client sends the requests. Default: a client whose transport is a
	// clone of http.DefaultTransport and which does not follow redirects
	// (a 3xx is reported as an endpoint error rather than silently turning
	// the POST into a GET). Per-attempt timeouts come from Config.Timeout
	// through the Clock, not from Client.Timeout.
	Client *http.Client
	// Clock drives every wait (flush interval, backoff, attempt timeout).
	Clock clockwork.Clock
	// Logger receives structured logs; default: discarded.
	Logger *slog.Logger
	// Rand returns a number in [0, 1) for backoff jitter; default
	// math/rand/v2.Float64.
	Rand func() float64
	// MinBackoff and MaxBackoff bound the retry backoff (defaults 1s, 5m).
	MinBackoff, MaxBackoff time.Duration
	// OnResult, if set, is called after every attempt (from the sending
	// goroutine; it must not block for long). Meant for metrics.
	OnResult func(Result)
	// UserAgent is sent as User-Agent; default "pwbi-agent/dev". Set it to
	// "pwbi-agent/" + version.
	UserAgent string
}

// Default backoff bounds.
const (
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 5 * time.Minute
)

// Outcome says what the forwarder did with a batch after an attempt.
type Outcome int

const (
	// OutcomeAccepted: the upstream acknowledged the batch (a 2xx or 409
	// echoing its batch id); the records were acknowledged in the source.
	OutcomeAccepted Outcome = iota
	// OutcomeRetry: the same batch will be sent again after a wait. Also
	// the outcome of a bisection that found the upstream refusing every
	// record alike (errors.Is(err, ErrUniformRejection)).
	OutcomeRetry
	// OutcomeSplit: 413 or a record-level 4xx on a batch of several
	// records; its halves are sent next, left first.
	OutcomeSplit
	// OutcomeDeadLettered: a single record was rejected and moved to the
	// dead-letter bucket.
	OutcomeDeadLettered
	// OutcomeCanceled: the attempt was abandoned because the forwarder
	// was stopped; the batch stays pending.
	OutcomeCanceled
	// OutcomeHeld: a single record was rejected while nothing of its batch
	// has been accepted yet. It stays pending in the source, held aside in
	// memory, until the bisection tells a poison record (dead-lettered
	// later) from an upstream refusing everything (retried).
	OutcomeHeld
)

func (o Outcome) String() string {
	switch o {
	case OutcomeAccepted:
		return "accepted"
	case OutcomeRetry:
		return "retry"
	case OutcomeSplit:
		return "split"
	case OutcomeDeadLettered:
		return "dead_lettered"
	case OutcomeCanceled:
		return "canceled"
	case OutcomeHeld:
		return "held"
	}
	return "unknown"
}

// Result describes one attempt, for metrics.
type Result struct {
	BatchID    string
	Records    int
	StatusCode int // 0 when no HTTP answer was received
	Latency    time.Duration
	Outcome    Outcome
	// DeadLettered is how many records this attempt moved to the
	// dead-letter bucket: the record itself for OutcomeDeadLettered, and
	// records held earlier that the attempt proved to be poison (an
	// acceptance of the records after them, or a different answer).
	DeadLettered int
	// Online is Status.Online after the attempt.
	Online bool
	// Err is nil when the batch was accepted; otherwise why not. It never
	// contains the token.
	Err error
}

// Health is the forwarder's condition in one word, for the agent's state
// rules.
type Health string

const (
	// HealthOK: deliveries work, or nothing was tried yet.
	HealthOK Health = ""
	// HealthOffline: trouble that retries fix by themselves — network
	// errors, timeouts, truncated answers, 408, 425, 429 and 5xx.
	HealthOffline Health = "offline"
	// HealthError: a person must act — the token refused (401, 403, 407),
	// a wrong endpoint (404, 405, ...), a redirect, a 2xx that is not an
	// acknowledgement, an upstream refusing every record, an invalid
	// upstream.url, or the buffer failing to read, ack or dead-letter.
	HealthError Health = "error"
)

// Status is a snapshot of the forwarder's state for the local API and tray.
// It never contains a secret.
type Status struct {
	// Configured is false when the URL is empty (buffer only).
	Configured bool `json:"configured"`
	// Online: the last attempt got an acknowledgement, or a record-level
	// rejection that was handled (a record dead-lettered). False after any
	// failed attempt (a 401 is not online) and before the first attempt.
	// Splitting a batch does not change it.
	Online bool `json:"online"`
	// Health is "" (fine), "offline" or "error"; see [Health].
	Health Health `json:"health"`
	// Problem is one plain-language sentence for a person saying what is
	// wrong, empty when Health is "". It is kept while the condition lasts
	// and cleared by the next acknowledgement (or handled record-level
	// rejection). It never contains the token; at most a short, sanitized
	// extract of an answer.
	Problem string `json:"problem"`
	// Sending: an attempt is in flight.
	Sending       bool      `json:"sending"`
	LastAttemptAt time.Time `json:"last_attempt_at"`
	LastSuccessAt time.Time `json:"last_success_at"`
	// LastError is the technical error of the last failure, cleared like
	// Problem.
	LastError           string `json:"last_error"`
	ConsecutiveFailures int    `json:"consecutive_failures"`
	// NextRetryAt is set while waiting out a backoff, zero otherwise.
	NextRetryAt  time.Time `json:"next_retry_at"`
	Delivered    uint64    `json:"delivered"`
	DeadLettered uint64    `json:"dead_lettered"`
}

// Errors matched (errors.Is) by the errors of failed attempts.
var (
	// ErrUnauthorized: the attempt was answered 401 or 403, the upstream
	// rejected the token. Such batches are retried with backoff, never
	// bisected or dead-lettered.
	ErrUnauthorized = errors.New("upstream rejected the token")
	// ErrNotAcknowledged: the answer had an accepting status (2xx, 409) but
	// did not echo the batch id, or it was a redirect. The batch stays
	// buffered and is retried.
	ErrNotAcknowledged = errors.New("upstream answer is not an acknowledgement")
	// ErrUniformRejection: bisection found the upstream rejecting every
	// record of the batch with the same answer — an endpoint failure, not
	// poison records. Nothing is dead-lettered; the batch is retried.
	ErrUniformRejection = errors.New("upstream rejects every record")
)

// Forwarder drains a Source to the upstream. Its methods are safe for
// concurrent use. Run and Drain never send at the same time: whichever
// starts second waits for the other to return.
type Forwarder struct {
	src       Source
	notify    <-chan struct{}
	client    *http.Client
	clock     clockwork.Clock
	log       *slog.Logger
	rand      func() float64
	minB      time.Duration
	maxB      time.Duration
	onResult  func(Result)
	userAgent string

	sem      chan struct{} // capacity 1; held by Run or Drain
	flushC   chan struct{} // capacity 1; Flush signal
	updC     chan struct{} // capacity 1; Update signal
	flushReq atomic.Bool   // Flush requested and not yet served

	mu     sync.Mutex
	cfg    Config
	status Status

	// Owned by the holder of sem.
	queue    [][]store.Record // segments of the current batch still to send, in order
	ep       episode          // isolation of rejected records in the current batch
	probe    int              // verifyAt of the next episode (see episode)
	flushing bool             // serving a Flush: partial batches go out at once
	failures int              // consecutive failed attempts
	enc      encoder
}

// New returns a forwarder draining src with cfg. It does not start sending:
// call Run.
func New(src Source, cfg Config, opts Options) *Forwarder {
	f := &Forwarder{
		src:       src,
		notify:    src.Notify(),
		client:    opts.Client,
		clock:     opts.Clock,
		log:       opts.Logger,
		rand:      opts.Rand,
		minB:      opts.MinBackoff,
		maxB:      opts.MaxBackoff,
		onResult:  opts.OnResult,
		userAgent: opts.UserAgent,
		sem:       make(chan struct{}, 1),
		flushC:    make(chan struct{}, 1),
		updC:      make(chan struct{}, 1),
		cfg:       cfg.withDefaults(),
		probe:     probeMin,
	}
	if f.client == nil {
		f.client = defaultClient()
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
	if f.userAgent == "" {
		f.userAgent = "pwbi-agent/dev"
	}
	f.status.Configured = f.cfg.URL != ""
	return f
}

func defaultClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 2
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Update applies a new configuration (hot reload). A new URL, token or batch
// size applies from the next attempt; the batch in flight finishes with the
// old settings. A backoff being waited out is cut short when the URL or the
// token changed. An empty URL stops sending (records stay buffered).
func (f *Forwarder) Update(cfg Config) {
	cfg = cfg.withDefaults()
	f.mu.Lock()
	changed := cfg != f.cfg
	f.cfg = cfg
	f.status.Configured = cfg.URL != ""
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

func (f *Forwarder) config() Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg
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
// again (same batch id) by Drain or the next Run.
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
	cfg := f.config()
	if cfg.URL == "" {
		f.waitIdle(ctx)
		return
	}
	f.checkEndpoint(cfg)
	if len(f.queue) == 0 {
		if f.flushReq.Swap(false) {
			f.flushing = true
		}
		recs, err := f.src.Pending(cfg.BatchSize)
		if err != nil {
			err = fmt.Errorf("read pending records: %w", err)
			f.noteFailure(err, bufferProblem("cannot read the local buffer", err))
			f.log.Error("Reading pending records failed", "error", err)
			f.backoff(ctx, cfg, 0)
			return
		}
		if len(recs) == 0 {
			f.flushing = false
			f.waitIdle(ctx)
			return
		}
		recs = recs[:min(len(recs), cfg.BatchSize)]
		if len(recs) < cfg.BatchSize {
			if f.flushing {
				f.flushing = false
			} else if wait := f.flushWait(cfg, recs[0]); wait > 0 {
				f.waitFlush(ctx, wait)
				return
			}
		}
		f.load(cfg, recs)
	}
	a := f.sendHead(ctx, cfg)
	if a.outcome == OutcomeRetry {
		f.backoff(ctx, cfg, a.retryAfter)
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
// waits for Run to return. With no URL configured it returns nil at once.
func (f *Forwarder) Drain(ctx context.Context) error {
	if !f.acquire(ctx) {
		return ctx.Err()
	}
	defer f.release()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		cfg := f.config()
		if cfg.URL == "" {
			return nil
		}
		f.checkEndpoint(cfg)
		if len(f.queue) == 0 {
			recs, err := f.src.Pending(cfg.BatchSize)
			if err != nil {
				return fmt.Errorf("read pending records: %w", err)
			}
			if len(recs) == 0 {
				return nil
			}
			f.load(cfg, recs[:min(len(recs), cfg.BatchSize)])
		}
		a := f.sendHead(ctx, cfg)
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

// backoff counts a failed attempt and waits before the next one: exactly
// retryAfter when the server asked for it (> 0), otherwise an exponential
// backoff with jitter. Flush, or an Update that changes the URL or token,
// cuts the wait short.
func (f *Forwarder) backoff(ctx context.Context, cfg Config, retryAfter time.Duration) {
	wait := retryAfter
	if wait <= 0 {
		wait = backoffDuration(f.failures, f.minB, f.maxB, f.rand)
	}
	f.mu.Lock()
	f.status.NextRetryAt = f.clock.Now().Add(wait)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.status.NextRetryAt = time.Time{}
		f.mu.Unlock()
	}()
	t := f.clock.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
			return
		case <-f.flushC:
			return
		case <-f.updC:
			if nc := f.config(); nc.URL != cfg.URL || nc.Token != cfg.Token {
				return
			}
		}
	}
}

// noteFailure counts a failure that is not an answer from the upstream (a
// store error) and shows it in the status as an error a person must look
// at. Online is left as it is: the upstream was not asked.
func (f *Forwarder) noteFailure(err error, problem string) {
	f.failures++
	f.mu.Lock()
	f.status.LastError = err.Error()
	f.status.Health = HealthError
	f.status.Problem = problem
	f.status.ConsecutiveFailures = f.failures
	f.mu.Unlock()
}

// load makes recs, fresh from the source, the batch to send and starts its
// episode.
func (f *Forwarder) load(cfg Config, recs []store.Record) {
	f.queue = append(f.queue[:0], recs)
	f.ep = episode{verifyAt: f.probe, url: cfg.URL, token: cfg.Token, agentID: cfg.AgentID}
}

// resetBatch forgets the batch being sent and its episode; its records stay
// pending in the source and are read again, without a flush interval (they
// were due already).
func (f *Forwarder) resetBatch() {
	f.queue = nil
	f.ep = episode{}
	f.flushing = true
}

// checkEndpoint drops the batch being sent when the URL, token or agent id
// changed since it was read: answers of the old endpoint must not decide the
// fate of records on the new one (held records would be dead-lettered as
// poison as soon as the new endpoint accepts the records after them).
func (f *Forwarder) checkEndpoint(cfg Config) {
	if len(f.queue) > 0 && (f.ep.url != cfg.URL || f.ep.token != cfg.Token || f.ep.agentID != cfg.AgentID) {
		f.log.Info("Upstream changed: batch read again")
		f.resetBatch()
	}
}
