package mokapos

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
	"golang.org/x/time/rate"
)

// Pacer is the request discipline shared by both Moka dialects (this
// package's apikey Client and the oauth dialect in agent/mokaoauth): the
// client-side rate limit, exponential backoff with jitter, Retry-After, the
// per-attempt timeout and body bound, and the OnRequest/OnWait
// observations, all on one injected clock. The retry loop itself stays with
// each client, since what a status means differs (a 401 is final for an API
// key but first means "refresh the token" for OAuth).
//
// A Pacer is built from ClientOptions with the same defaults as NewClient.
// It is safe for concurrent use.
type Pacer struct {
	http       *http.Client
	clock      clockwork.Clock
	log        *slog.Logger
	lim        *rate.Limiter
	maxRetries int
	minBackoff time.Duration
	maxBackoff time.Duration
	rand       func() float64
	timeout    time.Duration
	maxBody    int64
	maxPages   int
	onRequest  func(string, int, time.Duration)
	onWait     func(string, time.Duration)
}

// NewPacer returns the pacer of opts; requestsPerMinute sizes the limiter
// when opts.Limiter is nil (<= 0 means 60).
func NewPacer(opts ClientOptions, requestsPerMinute int) *Pacer {
	p := &Pacer{
		http:       opts.HTTP,
		clock:      opts.Clock,
		log:        opts.Logger,
		lim:        opts.Limiter,
		maxRetries: opts.MaxRetries,
		minBackoff: opts.MinBackoff,
		maxBackoff: opts.MaxBackoff,
		rand:       opts.Rand,
		timeout:    opts.Timeout,
		maxBody:    opts.MaxBodyBytes,
		maxPages:   opts.MaxPages,
		onRequest:  opts.OnRequest,
		onWait:     opts.OnWait,
	}
	if p.http == nil {
		p.http = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if p.clock == nil {
		p.clock = clockwork.NewRealClock()
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.lim == nil {
		p.lim = NewLimiter(requestsPerMinute)
	}
	switch {
	case p.maxRetries == 0:
		p.maxRetries = DefaultMaxRetries
	case p.maxRetries < 0:
		p.maxRetries = 0
	}
	if p.minBackoff <= 0 {
		p.minBackoff = DefaultMinBackoff
	}
	if p.maxBackoff <= 0 {
		p.maxBackoff = DefaultMaxBackoff
	}
	if p.maxBackoff < p.minBackoff {
		p.maxBackoff = p.minBackoff
	}
	if p.rand == nil {
		p.rand = rand.Float64
	}
	if p.timeout == 0 {
		p.timeout = DefaultTimeout
	}
	if p.maxBody <= 0 {
		p.maxBody = DefaultMaxBodyBytes
	}
	if p.maxPages <= 0 {
		p.maxPages = DefaultMaxPages
	}
	return p
}

// HTTP returns the HTTP client.
func (p *Pacer) HTTP() *http.Client { return p.http }

// Clock returns the clock every wait uses.
func (p *Pacer) Clock() clockwork.Clock { return p.clock }

// Logger returns the logger.
func (p *Pacer) Logger() *slog.Logger { return p.log }

// Limiter returns the rate limiter (shared with whoever else was given it).
func (p *Pacer) Limiter() *rate.Limiter { return p.lim }

// MaxRetries is how many times one request may be retried.
func (p *Pacer) MaxRetries() int { return p.maxRetries }

// Timeout bounds one attempt; <= 0 means none.
func (p *Pacer) Timeout() time.Duration { return p.timeout }

// MaxBodyBytes bounds a 2xx response body.
func (p *Pacer) MaxBodyBytes() int64 { return p.maxBody }

// MaxPages bounds one walk.
func (p *Pacer) MaxPages() int { return p.maxPages }

// ErrorBodyLimit bounds how much of a non-2xx body is read: enough for a
// snippet in an error.
const ErrorBodyLimit = errSnippetLen * 4

// Report records one finished attempt (debug log and OnRequest). path must
// carry no query: it is logged.
func (p *Pacer) Report(path string, status int, start time.Time) {
	dur := p.clock.Since(start)
	p.log.Debug("Moka request", "path", path, "status", status, "duration", dur)
	if p.onRequest != nil {
		p.onRequest(path, status, dur)
	}
}

// Retryable reports whether an answer with this status is worth retrying:
// 408, 429 and 5xx.
func Retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// RetryAfter parses a Retry-After value: delay-seconds or an HTTP date
// (RFC 9110 §10.2.3), relative to the pacer's clock, capped at 15 minutes.
func (p *Pacer) RetryAfter(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(p.clock.Now())
		if d < 0 {
			d = 0
		}
	} else {
		return 0, false
	}
	return min(d, maxRetryAfter), true
}

// Backoff returns the wait before retry number attempt+1:
// min(MaxBackoff, MinBackoff·2^attempt) × a jitter factor in [0.5, 1].
func (p *Pacer) Backoff(attempt int) time.Duration {
	d := p.maxBackoff
	if attempt < 62 {
		if x := p.minBackoff << attempt; x > 0 && x < d && x>>attempt == p.minBackoff {
			d = x
		}
	}
	f := p.rand()
	if !(f >= 0 && f <= 1) { // also catches NaN
		f = 1
	}
	return d/2 + time.Duration(float64(d/2)*f)
}

// WaitTurn waits until the rate limiter grants one request.
func (p *Pacer) WaitTurn(ctx context.Context) error {
	now := p.clock.Now()
	r := p.lim.ReserveN(now, 1)
	if !r.OK() {
		return errors.New("rate limiter allows no request (burst 0)")
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	if err := p.Sleep(ctx, "rate_limit", d); err != nil {
		r.CancelAt(p.clock.Now())
		return err
	}
	return nil
}

// Sleep waits d on the pacer's clock, announcing it to OnWait with its
// reason ("rate_limit", "retry_after", "backoff"). It returns ctx's error
// if ctx ends first.
func (p *Pacer) Sleep(ctx context.Context, reason string, d time.Duration) error {
	if p.onWait != nil {
		p.onWait(reason, d)
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := p.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
