// Package deliver is the delivery loop (SPEC §6): it drains the buffer to a
// sink, whatever the sink's transport, one loop per sink.
//
// A [Forwarder] reads the oldest records pending for its sink from a
// [Source] — the sink's own view of the buffer (store.SinkView in
// production: its own position, acks and dead letters) — in seq order,
// groups them into batches (up to
// batch_size records, or fewer once the oldest has waited flush_interval),
// hands each batch to a [Sink] and acts on its answer ([sink.Answer]):
// acknowledging the records in the source once the sink has them, retrying
// after an exponential backoff with jitter (or the wait the sink was asked
// for), splitting a batch that is too large, and bisecting a batch the sink
// rejects for its records until the rejected ones are isolated: those go to
// the dead-letter bucket while the rest are delivered in order — unless the
// bisection finds the sink refusing every record with the same answer, which
// is an endpoint failure and retried (outcome.go describes the algorithm).
// One batch is in flight at a time. The promise is at-least-once, in order,
// nothing lost, across crashes and reloads: a record leaves the buffer only
// when the sink has it or it was proven poison.
//
// [Forwarder.Status] tells the truth about the sink: a machine-readable
// [Health] and a plain-language Problem for a person, also as a message
// code and parameters to show in the reader's language. [Options.OnResult]
// reports every attempt, for metrics.
//
// Every enabled sink has its own Forwarder on its own view, so a sink that
// is down or rejecting never holds another back: each has its own position,
// batch, backoff and bisection, and the buffer keeps a record until every
// enabled sink has it (the store's job). A [Group] runs the forwarders of
// all sinks together: Run, Flush ("Sync now") and Drain (shutdown) apply to
// every sink, a Drain of one never waiting for another's.
//
// The sinks live beside this package (agent/deliver/httpsink,
// agent/deliver/natssink, agent/deliver/jurnalsink) and speak the
// vocabulary of agent/deliver/sink. This package knows no transport: it must not import
// net/http, bbolt (it sees the buffer only through [Source]) or any sink.
// Every wait goes through the injected clockwork.Clock.
package deliver

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/store"
)

// Source is one sink's view of the buffer: the records pending for that
// sink. The store implements it (store.SinkView, one per sink); all methods
// must be safe for concurrent use.
type Source interface {
	// Pending returns up to max of the oldest records pending for the
	// sink, oldest first, in strictly increasing Seq order. It must not
	// remove them. Records the loop holds in memory (a bisection) stay
	// pending, also while records after them are acked.
	Pending(max int) ([]store.Record, error)
	// Ack marks records delivered to the sink; they are no longer
	// pending for it (the buffer drops them once no other sink needs
	// them).
	Ack(seqs ...uint64) error
	// DeadLetter sets one record aside as the sink's dead letter, with a
	// reason; it is no longer pending for the sink.
	DeadLetter(seq uint64, reason string) error
	// Notify returns a channel signalled (non-blocking, capacity ≥ 1) when
	// records were added. It must return the same channel on every call.
	Notify() <-chan struct{}
}

// Sink delivers batches to one destination with one configuration. A new
// configuration (hot reload) is a new Sink value, handed over with
// [Forwarder.Update]; a sink that holds something costly (a NATS
// connection, a rate limiter's budget) shares it between its values.
//
// The loop calls Send with one batch at a time, never concurrently, with
// records in strictly increasing seq order: the oldest pending ones, or a
// contiguous part of them while a batch is split or bisected. The same
// records are sent again after every answer other than Accepted, also after
// a restart, so a sink must make a repeated batch harmless (an idempotency
// key, a message id, a document's custom id, or asking the destination what
// it has). That is how the loop keeps its promise: at-least-once to the
// sink, in order, nothing lost; a sink that de-duplicates makes it
// exactly-once.
//
// What each verdict of the answer makes the loop do:
//
//   - sink.Accepted: the records are acked in the source (removed), in order.
//   - sink.Retry: nothing is acked or dead-lettered; the same batch is sent
//     again after RetryAfter, or the loop's exponential backoff when it is
//     0. The status shows Health, Problem and Err until the next success.
//   - sink.TooLarge: a batch of several records is split in halves, the
//     left one sent first, at once; a single record is handled as
//     Rejected.
//   - sink.Rejected: a batch of several records is bisected, at once. A
//     single record is dead-lettered (reason: Err.Error()) once the sink
//     is known to take other records; until then it is held in memory
//     while the loop tells a poison record from a sink that refuses every
//     record with the Same answer, which is retried and shown with
//     UniformProblem instead (outcome.go).
//   - sink.Canceled: the batch stays pending; the loop is stopping.
type Sink interface {
	// Endpoint identifies where and as whom the sink delivers (address,
	// credentials, identity), as an opaque string that is never a secret:
	// "" when the sink is not configured (records stay buffered). When it
	// differs from the previous sink's, the loop drops what it learnt
	// from the old endpoint's answers (a bisection under way) and cuts a
	// backoff short.
	Endpoint() string
	// Send delivers batch and says what became of it. It returns when the
	// destination answered, the attempt failed or timed out (the sink
	// bounds each attempt), or ctx ended (sink.Canceled).
	Send(ctx context.Context, batch []store.Record) sink.Answer
}

// Config is the hot-reloadable part of the loop's configuration.
type Config struct {
	// BatchSize is the maximum number of records per batch (default 500).
	BatchSize int
	// FlushInterval is how long a partial batch may wait after its oldest
	// record was added. Zero sends partial batches at once.
	FlushInterval time.Duration
}

// DefaultBatchSize is applied by New and Update when Config.BatchSize is not
// positive.
const DefaultBatchSize = 500

func (c Config) withDefaults() Config {
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.FlushInterval < 0 {
		c.FlushInterval = 0
	}
	return c
}

// Options are the forwarder's dependencies; all fields are optional.
type Options struct {
	// Clock drives every wait (flush interval, backoff).
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
}

// Default backoff bounds.
const (
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 5 * time.Minute
)

// Outcome says what the forwarder did with a batch after an attempt.
type Outcome int

const (
	// OutcomeAccepted: the sink has the batch; the records were
	// acknowledged in the source.
	OutcomeAccepted Outcome = iota
	// OutcomeRetry: the same batch will be sent again after a wait. Also
	// the outcome of a bisection that found the sink refusing every
	// record alike (errors.Is(err, ErrUniformRejection)).
	OutcomeRetry
	// OutcomeSplit: too large, or a record-level rejection of a batch of
	// several records; its halves are sent next, left first.
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
	// later) from a sink refusing everything (retried).
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
	BatchID    string // the sink's name for the attempt, if any
	Records    int
	StatusCode int // 0 when the sink got no status
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
	// contains a secret.
	Err error
}

// Health is the sink's condition in one word, for the agent's state rules:
// [HealthOK], [HealthOffline] or [HealthError] (see sink.Health).
type Health = sink.Health

// The values of [Health].
const (
	HealthOK      = sink.HealthOK
	HealthOffline = sink.HealthOffline
	HealthError   = sink.HealthError
)

// Status is a snapshot of the forwarder's state for the local API and tray.
// It never contains a secret.
type Status struct {
	// Configured is false when no sink is configured (buffer only).
	Configured bool `json:"configured"`
	// Online: the last attempt got an acknowledgement, or a record-level
	// rejection that was handled (a record dead-lettered). False after any
	// failed attempt (a refused token is not online) and before the first
	// attempt. Splitting a batch does not change it.
	Online bool `json:"online"`
	// Health is "" (fine), "offline" or "error"; see [Health].
	Health Health `json:"health"`
	// Problem is one plain-language sentence for a person saying what is
	// wrong, empty when Health is "". It is kept while the condition lasts
	// and cleared by the next acknowledgement (or handled record-level
	// rejection). It never contains a secret; at most a short, sanitized
	// extract of an answer.
	Problem string `json:"problem"`
	// ProblemCode and ProblemParams are Problem as a message of
	// internal/i18n's health catalogue and its data (sink.Message), for a
	// reader in another language; empty for a sentence without a message.
	// Set and cleared with Problem.
	ProblemCode   string         `json:"problem_code,omitempty"`
	ProblemParams map[string]any `json:"problem_params,omitempty"`
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

// ErrUniformRejection is matched (errors.Is) by the error of a bisection
// that found the sink rejecting every record of the batch with the same
// answer — an endpoint failure, not poison records. Nothing is
// dead-lettered; the batch is retried.
var ErrUniformRejection = errors.New("upstream rejects every record")

// uniformError is the error of a batch whose every record the sink rejects
// with the same answer; it wraps that answer.
type uniformError struct{ answer error }

func (e *uniformError) Error() string {
	return "upstream rejects every record alike: " + e.answer.Error()
}

func (e *uniformError) Unwrap() []error { return []error{ErrUniformRejection, e.answer} }
