package wire

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/jonboulle/clockwork"
	"golang.org/x/time/rate"

	"github.com/pwbi/edge-agent/internal/backoff"
)

// Defaults of Options.
const (
	DefaultRequestsPerMinute = 60 // the guide's documented limit
	DefaultMaxRetries        = 8
	DefaultMinBackoff        = time.Second
	DefaultMaxBackoff        = time.Minute
	DefaultTimeout           = 30 * time.Second // per attempt, as in the guide
	DefaultMaxBodyBytes      = 16 << 20         // a 100-transaction page is ~100 KB
	DefaultMaxPages          = 100_000          // 10 million records per walk
)

// MaxRetryAfter caps a server-sent Retry-After, so that a broken or hostile
// value cannot park the poller for days. The attempt is simply retried
// (and counted) after the cap.
const MaxRetryAfter = 15 * time.Minute

// Options are the dependencies and knobs of a Moka client (either dialect;
// the dialects export it as ClientOptions). The zero value is usable.
type Options struct {
	// HTTP is the HTTP client; nil means a dedicated client with its own
	// transport.
	HTTP *http.Client
	// Clock drives every wait (rate limit, backoff, Retry-After); nil means
	// the real clock. The per-attempt Timeout uses real time.
	Clock clockwork.Clock
	// Logger receives retry warnings and debug lines; nil discards.
	Logger *slog.Logger
	// Limiter is the client-side rate limit, shared by every client of the
	// same business (all outlets). Nil means a new limiter of the client's
	// requests per minute with burst 1 (NewLimiter). The client reserves
	// tokens with Clock's time, so a shared limiter must only be used by
	// clients on the same clock.
	Limiter *rate.Limiter
	// MaxRetries bounds the retries of one request (so MaxRetries+1
	// attempts). 0 means DefaultMaxRetries; negative means no retry.
	MaxRetries int
	// MinBackoff and MaxBackoff bound the exponential backoff: attempt n
	// (from 0) waits min(MaxBackoff, MinBackoff·2ⁿ) scaled by a jitter
	// factor in [0.5, 1] (internal/backoff's equal jitter). Zero means the
	// defaults.
	MinBackoff, MaxBackoff time.Duration
	// Rand returns the jitter source in [0, 1] (1: no jitter); nil means
	// math/rand/v2. A value outside [0, 1] counts as 0.5.
	Rand func() float64
	// Timeout bounds one attempt (connect, headers and body); 0 means
	// DefaultTimeout, negative means none.
	Timeout time.Duration
	// MaxBodyBytes bounds a response body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxPages bounds one walk; 0 means DefaultMaxPages.
	MaxPages int
	// OnRequest, when set, is called after every HTTP attempt with the
	// path (no query), the status (0 when no response arrived) and the
	// duration. It must be safe for concurrent use.
	OnRequest func(path string, status int, dur time.Duration)
	// OnWait, when set, is called before every wait with its reason
	// ("rate_limit", "retry_after", "backoff") and length. It must be safe
	// for concurrent use.
	OnWait func(reason string, d time.Duration)
}

// NewLimiter returns the limiter for requestsPerMinute (<= 0 means 60):
// evenly spaced requests with a burst of 1. A burst of 1 is what makes the
// limit hold in every 60-second window, not just on average: any N+1
// requests are at least N·(60 s / rpm) apart, so a window of a minute never
// holds more than rpm of them, while a steady walk still uses the whole
// budget. A larger burst would let rpm+burst−1 requests land in one minute.
func NewLimiter(requestsPerMinute int) *rate.Limiter {
	if requestsPerMinute <= 0 {
		requestsPerMinute = DefaultRequestsPerMinute
	}
	return rate.NewLimiter(rate.Every(time.Minute/time.Duration(requestsPerMinute)), 1)
}

// Pacer is the request discipline shared by both Moka dialects: the
// client-side rate limit, exponential backoff with jitter, Retry-After, the
// per-attempt timeout and body bound, and the OnRequest/OnWait
// observations, all on one injected clock. Do sends one attempt and Retry
// runs the attempts of one request; what an answer means stays with each
// client (a 401 is final for an API key but first means "refresh the
// token" for OAuth).
//
// A Pacer is built by NewPacer from Options; it is safe for concurrent use.
type Pacer struct {
	// Clock, Log, MaxRetries and MaxPages are the Options with their
	// defaults filled in (MaxRetries 0: no retry), for the clients' own
	// use. They are set by NewPacer and never changed.
	Clock      clockwork.Clock
	Log        *slog.Logger
	MaxRetries int
	MaxPages   int

	http      *http.Client
	lim       *rate.Limiter
	backoff   backoff.Policy // the wait before retry attempt+1 is Delay(attempt)
	timeout   time.Duration
	maxBody   int64
	onRequest func(string, int, time.Duration)
	onWait    func(string, time.Duration)
}

// NewPacer returns the pacer of opts; requestsPerMinute sizes the limiter
// when opts.Limiter is nil (<= 0 means 60).
func NewPacer(opts Options, requestsPerMinute int) *Pacer {
	p := &Pacer{
		Clock:      opts.Clock,
		Log:        opts.Logger,
		MaxRetries: opts.MaxRetries,
		MaxPages:   opts.MaxPages,
		http:       opts.HTTP,
		lim:        opts.Limiter,
		timeout:    opts.Timeout,
		maxBody:    opts.MaxBodyBytes,
		onRequest:  opts.OnRequest,
		onWait:     opts.OnWait,
	}
	if p.http == nil {
		p.http = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if p.Clock == nil {
		p.Clock = clockwork.NewRealClock()
	}
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	if p.lim == nil {
		p.lim = NewLimiter(requestsPerMinute)
	}
	switch {
	case p.MaxRetries == 0:
		p.MaxRetries = DefaultMaxRetries
	case p.MaxRetries < 0:
		p.MaxRetries = 0
	}
	// Attempt n (from 0) waits min(MaxBackoff, MinBackoff·2ⁿ) times a
	// jitter factor in [0.5, 1]: equal jitter with MinBackoff as the first
	// ceiling.
	p.backoff = backoff.Policy{Base: opts.MinBackoff, Max: opts.MaxBackoff, Rand: opts.Rand}
	if p.backoff.Base <= 0 {
		p.backoff.Base = DefaultMinBackoff
	}
	if p.backoff.Max <= 0 {
		p.backoff.Max = DefaultMaxBackoff
	}
	if p.backoff.Max < p.backoff.Base {
		p.backoff.Max = p.backoff.Base
	}
	if p.timeout == 0 {
		p.timeout = DefaultTimeout
	}
	if p.maxBody <= 0 {
		p.maxBody = DefaultMaxBodyBytes
	}
	if p.MaxPages <= 0 {
		p.MaxPages = DefaultMaxPages
	}
	return p
}

// report records one finished attempt (debug log and OnRequest). path must
// carry no query: it is logged.
func (p *Pacer) report(path string, status int, start time.Time) {
	dur := p.Clock.Since(start)
	p.Log.Debug("Moka request", "path", path, "status", status, "duration", dur)
	if p.onRequest != nil {
		p.onRequest(path, status, dur)
	}
}

// Retryable reports whether an answer with this status is worth retrying:
// 408, 429 and 5xx.
func Retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// waitTurn waits until the rate limiter grants one request.
func (p *Pacer) waitTurn(ctx context.Context) error {
	now := p.Clock.Now()
	r := p.lim.ReserveN(now, 1)
	if !r.OK() {
		return errors.New("rate limiter allows no request (burst 0)")
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	if err := p.sleep(ctx, "rate_limit", d); err != nil {
		r.CancelAt(p.Clock.Now())
		return err
	}
	return nil
}

// sleep waits d on the pacer's clock, announcing it to OnWait with its
// reason ("rate_limit", "retry_after", "backoff"). It returns ctx's error
// if ctx ends first.
func (p *Pacer) sleep(ctx context.Context, reason string, d time.Duration) error {
	if p.onWait != nil {
		p.onWait(reason, d)
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := p.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
