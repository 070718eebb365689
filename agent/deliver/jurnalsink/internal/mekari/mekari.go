// Package mekari is a small client of the Mekari API gateway as the Jurnal
// sink uses it (SPEC §6.3, reference/jurnal-api.md §2): every request signed
// with Mekari HMAC (Date, Authorization: hmac …, and Digest on requests with
// a body), paced by a client-side rate limit on an injected clock, and every
// answer classified into an [*Error] the sink can act on.
//
// Clock skew: Mekari refuses a Date more than 300 s from its own clock. The
// client reads the gateway's Date header on every answer; when a request is
// refused (401) and that Date is more than [MaxSkew] from the PC's clock,
// the client learns the offset, signs the same request once more with the
// corrected time and, if that works, keeps signing with it (Offset reports
// it, so the status can say "the PC clock is wrong by N minutes"). Learning
// from the Date of a refusal is safe: a wrong offset only makes the
// gateway refuse again, which is then reported, never retried in a storm.
//
// The secret never leaves this package: it is not in an error, a log line
// or an answer.
package mekari

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"golang.org/x/time/rate"

	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/internal/backoff"
)

// APIPrefix is where the Jurnal API lives under the gateway's base URL.
const APIPrefix = "/public/jurnal/api/v1/"

// MaxSkew is how far the Date of a request may be from Mekari's clock.
const MaxSkew = 300 * time.Second

// headroom is the share of requests_per_minute the client paces itself
// at: requests leave evenly spaced, one at a time (burst 1), and 2 % of
// slack absorbs the network's jitter, so that Jurnal never counts more
// than requests_per_minute in a minute while a catch-up still uses 98 %.
const headroom = 0.98

// maxBody bounds what is read of an answer.
const maxBody = 1 << 20

// Config is what the client needs to talk to one Jurnal company.
type Config struct {
	BaseURL      string // e.g. https://api.mekari.com
	ClientID     string
	ClientSecret string
	// RequestsPerMinute bounds the calls (default 60).
	RequestsPerMinute int
	// Timeout bounds each request (default 30s).
	Timeout time.Duration
}

// Client calls the Jurnal API. It is safe for concurrent use.
type Client struct {
	cfg   Config
	hc    *http.Client
	clock clockwork.Clock
	lim   *rate.Limiter

	// OnWait, when set, is told of each wait for the rate budget before
	// it starts (tests drive a fake clock by exactly those waits).
	OnWait func(reason string, d time.Duration)

	mu     sync.Mutex
	offset time.Duration // learnt server − PC clock; 0 while the PC is right
	calls  int64
}

// New returns a client. hc nil means http.DefaultClient's transport without
// redirects.
func New(cfg Config, hc *http.Client, clock clockwork.Clock) *Client {
	cfg = cfg.withDefaults()
	if hc == nil {
		hc = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	lim := rate.NewLimiter(rate.Limit(float64(cfg.RequestsPerMinute)*headroom/60), 1)
	return &Client{cfg: cfg, hc: hc, clock: clock, lim: lim}
}

// Same reports whether c talks to the same company with the same limits as
// cfg, so that a reloaded sink may keep c (and its rate budget).
func (c *Client) Same(cfg Config) bool {
	return c.cfg == cfg.withDefaults()
}

// withDefaults is cfg with the defaults of what it leaves unset.
func (cfg Config) withDefaults() Config {
	if cfg.RequestsPerMinute <= 0 {
		cfg.RequestsPerMinute = 60
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	return cfg
}

// Offset is the clock offset the client signs with (server − PC), 0 when
// the PC's clock is within MaxSkew.
func (c *Client) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// Calls is the number of requests sent so far.
func (c *Client) Calls() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// Kind classifies a failed call.
type Kind int

const (
	// Network: no answer (connection refused, timeout, broken answer).
	Network Kind = iota
	// NotFound: 404, or 422 whose message says "not found" (Jurnal's quirk).
	NotFound
	// Conflict: 409, the custom_id exists already.
	Conflict
	// Invalid: 400 or 422 with field messages: the document is refused.
	Invalid
	// Auth: 401 or 403: credentials refused (or the clock, see Skew).
	Auth
	// Quota: 429 or a quota answer: wait RetryAfter.
	Quota
	// Server: 408, 5xx or another status, or an answer the caller finds
	// unusable (Status 0, no err): try again later.
	Server
)

// Error is a failed call. Message is Jurnal's own words, shortened and
// without the secret.
type Error struct {
	Kind       Kind
	Status     int
	Message    string
	RetryAfter time.Duration
	// Skew is how far the PC's clock is from Mekari's when the gateway
	// refused the request for it (0 otherwise).
	Skew time.Duration
	err  error
}

func (e *Error) Error() string {
	switch {
	case e.Status == 0 && e.err == nil:
		return e.Message // an answer the caller found unusable
	case e.Status == 0:
		return fmt.Sprintf("no answer from Jurnal: %v", e.err)
	case e.Message != "":
		return fmt.Sprintf("Jurnal answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
	}
	return fmt.Sprintf("Jurnal answered %d %s", e.Status, http.StatusText(e.Status))
}

func (e *Error) Unwrap() error { return e.err }

// IsKind reports whether err is an *Error of kind k.
func IsKind(err error, k Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}

// Wait takes one request from the rate budget, waiting on the clock.
func (c *Client) Wait(ctx context.Context) error {
	now := c.clock.Now()
	r := c.lim.ReserveN(now, 1)
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	after := c.clock.After(d)
	if c.OnWait != nil {
		c.OnWait("rate_limit", d)
	}
	select {
	case <-after:
		return nil
	case <-ctx.Done():
		r.CancelAt(c.clock.Now())
		return ctx.Err()
	}
}

// Do sends method path (relative to APIPrefix, query included) with body
// (JSON-encoded when not nil) and decodes a 2xx answer into out (when not
// nil). A failed call returns an *Error.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("encode %s: %w", strings.SplitN(path, "?", 2)[0], err)
		}
	}
	resp, data, err := c.send(ctx, method, path, payload)
	if err != nil {
		return err
	}
	e := c.classify(resp, data)
	if e != nil && e.Kind == Auth && e.Skew != 0 {
		// The gateway refused our clock: sign once more with its time.
		c.mu.Lock()
		c.offset = e.Skew
		c.mu.Unlock()
		if resp, data, err = c.send(ctx, method, path, payload); err != nil {
			return err
		}
		if e = c.classify(resp, data); e != nil && e.Kind == Auth {
			e.Skew = c.skewOf(resp) // still refused: report what we know
		}
	}
	if e != nil {
		return e
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return &Error{Kind: Server, Status: resp.StatusCode, Message: "the answer is not the JSON Jurnal sends", err: err}
		}
	}
	return nil
}

func (c *Client) send(ctx context.Context, method, path string, payload []byte) (*http.Response, []byte, error) {
	if err := c.Wait(ctx); err != nil {
		return nil, nil, err
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timer := c.clock.AfterFunc(c.cfg.Timeout, cancel)
	defer timer.Stop()

	u := strings.TrimRight(c.cfg.BaseURL, "/") + APIPrefix + strings.TrimLeft(path, "/")
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("jurnal request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.mu.Lock()
	now := c.clock.Now().Add(c.offset)
	c.calls++
	c.mu.Unlock()
	Sign(req, c.cfg.ClientID, c.cfg.ClientSecret, now, payload)

	resp, err := c.hc.Do(req)
	if err != nil {
		if parent.Err() != nil {
			return nil, nil, parent.Err()
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("no answer within %s", c.cfg.Timeout)
		}
		return nil, nil, &Error{Kind: Network, err: sanitize(err, c.cfg.ClientSecret)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, nil, &Error{Kind: Network, err: sanitize(err, c.cfg.ClientSecret)}
	}
	return resp, data, nil
}

func sanitize(err error, secret string) error {
	return errors.New(sink.Snippet([]byte(err.Error()), secret, 200))
}

// Sign adds Mekari's HMAC headers to req for the time now: Date,
// Authorization over "date: …\n<METHOD> <path+query> HTTP/1.1", and Digest
// when body is not empty.
func Sign(req *http.Request, clientID, secret string, now time.Time, body []byte) {
	date := now.UTC().Format(http.TimeFormat)
	line := req.Method + " " + req.URL.RequestURI() + " HTTP/1.1"
	mac := hmac.New(sha256.New, []byte(secret))
	io.WriteString(mac, "date: "+date+"\n"+line)
	req.Header.Set("Date", date)
	req.Header.Set("Authorization", fmt.Sprintf(`hmac username=%q, algorithm="hmac-sha256", headers="date request-line", signature=%q`,
		clientID, base64.StdEncoding.EncodeToString(mac.Sum(nil))))
	if len(body) > 0 {
		sum := sha256.Sum256(body)
		req.Header.Set("Digest", "SHA-256="+base64.StdEncoding.EncodeToString(sum[:]))
	}
}

// skewOf is the gateway's clock minus the PC's when the answer's Date is
// more than MaxSkew away, else 0.
func (c *Client) skewOf(resp *http.Response) time.Duration {
	d, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return 0
	}
	skew := d.Sub(c.clock.Now())
	if skew > MaxSkew || skew < -MaxSkew {
		return skew.Round(time.Second)
	}
	return 0
}

// classify turns an answer into nil (2xx) or an *Error.
func (c *Client) classify(resp *http.Response, data []byte) *Error {
	st := resp.StatusCode
	if st >= 200 && st < 300 {
		return nil
	}
	msg := Message(data, c.cfg.ClientSecret)
	e := &Error{Status: st, Message: msg}
	low := strings.ToLower(msg)
	switch {
	case st == http.StatusConflict:
		e.Kind = Conflict
	case st == http.StatusNotFound, st == http.StatusUnprocessableEntity && strings.Contains(low, "not found"):
		e.Kind = NotFound
	case st == http.StatusTooManyRequests || strings.Contains(low, "quota"):
		e.Kind = Quota
		e.RetryAfter, _ = backoff.ParseRetryAfter(resp.Header.Get("Retry-After"), c.clock.Now(), 24*time.Hour)
	case st == http.StatusUnauthorized || st == http.StatusForbidden:
		e.Kind = Auth
		if st == http.StatusUnauthorized {
			c.mu.Lock()
			known := c.offset
			c.mu.Unlock()
			if skew := c.skewOf(resp); skew != 0 && (known == 0 || (skew-known).Abs() > time.Minute) {
				e.Skew = skew
			}
		}
	case st == http.StatusBadRequest || st == http.StatusUnprocessableEntity:
		e.Kind = Invalid
	default:
		e.Kind = Server
		e.RetryAfter, _ = backoff.ParseRetryAfter(resp.Header.Get("Retry-After"), c.clock.Now(), time.Hour)
	}
	return e
}

// Message extracts Jurnal's error message from an answer body: the
// "error_full_messages", "error", "errors" or "message" member, whatever its
// shape (a string, a list, an object of lists), else the body itself,
// shortened for a person and without secret.
func Message(data []byte, secret string) string {
	var m map[string]any
	if json.Unmarshal(data, &m) == nil {
		for _, k := range []string{"error_full_messages", "errors", "error", "message", "messages"} {
			if v, ok := m[k]; ok {
				if s := flatten(v); s != "" {
					return sink.Snippet([]byte(s), secret, 300)
				}
			}
		}
	}
	return sink.Snippet(data, secret, 300)
}

func flatten(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []any:
		var parts []string
		for _, e := range x {
			if s := flatten(e); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, "; ")
	case map[string]any:
		var parts []string
		for _, k := range sortedKeys(x) {
			if s := flatten(x[k]); s != "" {
				parts = append(parts, k+": "+s)
			}
		}
		return strings.Join(parts, "; ")
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func sortedKeys(m map[string]any) []string {
	return slices.Sorted(maps.Keys(m))
}
