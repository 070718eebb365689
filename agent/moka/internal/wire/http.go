package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/pwbi/edge-agent/internal/backoff"
)

// Errors callers branch on, the same in both dialects. Every error of a
// client wraps at most one of them; none contains a secret.
var (
	// ErrCursorLoop: the server handed back a cursor (or next_url) already
	// used in this walk; following it would never end.
	ErrCursorLoop = errors.New("moka pagination repeated a cursor")
	// ErrTooManyPages: the walk reached Options.MaxPages.
	ErrTooManyPages = errors.New("moka pagination exceeded the page limit")
	// ErrBadResponse: a 2xx answer whose body is not the expected JSON
	// (truncated, HTML, wrong shape). Retried like a 5xx.
	ErrBadResponse = errors.New("malformed moka response")
	// ErrResponseTooLarge: the body exceeded Options.MaxBodyBytes. Not
	// retried: the same request would give the same body.
	ErrResponseTooLarge = errors.New("moka response too large")
)

// BadResponse marks err, a failure to read a 2xx body (a scanner's syntax
// error, a wrong shape), as ErrBadResponse so that the request is retried;
// an err that already is one is returned as it is.
func BadResponse(err error) error {
	if err == nil || errors.Is(err, ErrBadResponse) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrBadResponse, err)
}

// snippetLen bounds how much of an error response body goes into an error.
const snippetLen = 256

// ErrorBodyLimit bounds how much of a non-2xx body is read: enough for a
// snippet in an error.
const ErrorBodyLimit = snippetLen * 4

// HTTPError is a non-2xx answer that is not retried (or no longer).
type HTTPError struct {
	Method string
	Path   string // without the query
	Status int
	Body   string // the start of the body, with secrets redacted
}

// Temporary reports whether a retry may cure the answer: 408, 429 and 5xx
// (the loop's Temporary; such answers are shown as "offline", others as an
// error a person must look at).
func (e *HTTPError) Temporary() bool { return Retryable(e.Status) }

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("moka %s %s: HTTP %d", e.Method, e.Path, e.Status)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Snippet is the start of an error body, for an error message: trimmed,
// and cut after 256 bytes with "…". Redact it before use.
func Snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > snippetLen {
		s = s[:snippetLen] + "…"
	}
	return s
}

// Request is one HTTP request of a Moka client, as Pacer.Do sends it.
type Request struct {
	Method string
	// URL is the whole URL, query included. It never appears in a log line
	// or an error (Redact must take it out of transport errors).
	URL string
	// Path names the request in errors, logs and OnRequest: never a query.
	Path string
	// Auth is the Authorization header ("" for none).
	Auth string
	// ContentType and Body are the request body's ("" for none).
	ContentType string
	Body        string
	// MaxBody bounds a 2xx body (a longer one is ErrResponseTooLarge); 0
	// means Options.MaxBodyBytes. MaxErrorBody bounds the body of any other
	// answer, which is cut there; 0 means ErrorBodyLimit.
	MaxBody, MaxErrorBody int64
	// Redact renders an error of the transport (which may name the URL or
	// echo a secret) without secrets (see internal/secret's RedactURL and
	// RedactError); nil leaves it as it is.
	Redact func(error) error
}

// Response is the answer to one attempt.
type Response struct {
	Status int
	Body   []byte
	Header http.Header
}

// Do sends one attempt of r, within the pacer's per-attempt timeout, and
// reports it (debug log, OnRequest). It does not wait for the rate
// limiter: Retry does. err is a transport error or ErrResponseTooLarge,
// wrapped as "moka {method} {path}: …"; otherwise every status is an
// answer for the caller to judge.
func (p *Pacer) Do(ctx context.Context, r Request) (Response, error) {
	redact := r.Redact
	if redact == nil {
		redact = func(err error) error { return err }
	}
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	var body io.Reader
	if r.Body != "" {
		body = strings.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, body)
	if err != nil {
		return Response{}, fmt.Errorf("moka %s %s: build request: %w", r.Method, r.Path, redact(err))
	}
	if r.Auth != "" {
		req.Header.Set("Authorization", r.Auth)
	}
	if r.ContentType != "" {
		req.Header.Set("Content-Type", r.ContentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "pwbi-edge-agent")

	start := p.Clock.Now()
	resp, err := p.http.Do(req)
	if err != nil {
		p.report(r.Path, 0, start)
		return Response{}, fmt.Errorf("moka %s %s: %w", r.Method, r.Path, redact(err))
	}
	defer resp.Body.Close()
	maxBody := r.MaxBody
	if maxBody <= 0 {
		maxBody = p.maxBody
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	limit := maxBody
	if !ok {
		limit = r.MaxErrorBody
		if limit <= 0 {
			limit = ErrorBodyLimit
		}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	p.report(r.Path, resp.StatusCode, start)
	if err != nil {
		return Response{}, fmt.Errorf("moka %s %s: read body: %w", r.Method, r.Path, redact(err))
	}
	if int64(len(b)) > limit {
		if ok {
			return Response{}, fmt.Errorf("moka %s %s: %w (over %d bytes)", r.Method, r.Path, ErrResponseTooLarge, maxBody)
		}
		b = b[:limit]
	}
	return Response{Status: resp.StatusCode, Body: b, Header: resp.Header}, nil
}

// Outcome is what a client makes of one attempt (see Pacer.Retry).
type Outcome struct {
	// Err ends the request when Retry and Now are false (nil: success).
	// With Retry it is what went wrong, returned (wrapped) when no retry
	// is left.
	Err error
	// Retry asks for another attempt after a wait: the Retry-After of a
	// 429 answer (Status and Header), else the backoff.
	Retry bool
	// Now asks for another attempt at once, whatever retries are left:
	// the client changed what it sends (a refreshed access token).
	Now bool
	// Status and Header are the answer's (0 and nil when none came), for
	// Retry-After and the retry log.
	Status int
	Header http.Header
}

// Done is the outcome that ends the request with err (nil: success).
func Done(err error) Outcome { return Outcome{Err: err} }

// Retry runs the attempts of one request: before each it waits its turn
// at the rate limiter, then try sends it and judges the answer. A retry
// waits Retry-After (on a 429 that has one) or the backoff, announced to
// OnWait and logged; after maxRetries retries the last error is returned
// as "giving up after N attempts". Errors name method and path only.
func (p *Pacer) Retry(ctx context.Context, method, path string, maxRetries int, try func() Outcome) error {
	var lastErr error
	for attempt := 0; ; attempt++ {
		if err := p.waitTurn(ctx); err != nil {
			return fmt.Errorf("moka %s %s: %w", method, path, err)
		}
		o := try()
		if o.Now {
			continue
		}
		if !o.Retry {
			return o.Err
		}
		lastErr = o.Err
		if attempt >= maxRetries {
			return fmt.Errorf("moka %s %s: giving up after %d attempts: %w", method, path, attempt+1, lastErr)
		}
		wait, reason := time.Duration(0), "backoff"
		if o.Status == http.StatusTooManyRequests {
			if d, ok := backoff.ParseRetryAfter(o.Header.Get("Retry-After"), p.Clock.Now(), MaxRetryAfter); ok {
				wait, reason = d, "retry_after"
			}
		}
		if reason == "backoff" {
			wait = p.backoff.Delay(attempt)
		}
		p.Log.Warn("Moka request failed, retrying",
			"path", path, "status", o.Status, "attempt", attempt+1, "wait", wait, "error", lastErr.Error())
		if err := p.sleep(ctx, reason, wait); err != nil {
			return fmt.Errorf("moka %s %s: %w", method, path, err)
		}
	}
}

// Judge reads the answer to a GET the way both dialects do, once the
// client has handled the statuses that mean something of its own (401 and
// 403):
//
//   - a transport error is retried, unless ctx has ended (the request ends
//     with ctx's error) or the body was too large (the same request would
//     give the same body);
//   - a 2xx body goes to decode: nil ends the request, an error wrapping
//     ErrBadResponse (truncated, HTML) is retried, any other ends it;
//   - 408, 429 and 5xx are retried and any other status ends the request,
//     as an *HTTPError whose body snippet goes through redact.
func Judge(ctx context.Context, r Request, resp Response, err error, decode func([]byte) error, redact func(string) string) Outcome {
	switch {
	case err != nil:
		if ctx.Err() != nil {
			return Done(fmt.Errorf("moka %s %s: %w", r.Method, r.Path, ctx.Err()))
		}
		if errors.Is(err, ErrResponseTooLarge) {
			return Done(err)
		}
		return Outcome{Err: err, Retry: true}
	case resp.Status >= 200 && resp.Status < 300:
		err := decode(resp.Body)
		if err == nil {
			return Done(nil)
		}
		err = fmt.Errorf("moka %s %s: %w", r.Method, r.Path, err)
		if !errors.Is(err, ErrBadResponse) {
			return Done(err)
		}
		return Outcome{Err: err, Retry: true, Status: resp.Status}
	}
	he := &HTTPError{Method: r.Method, Path: r.Path, Status: resp.Status, Body: redact(Snippet(resp.Body))}
	if !Retryable(resp.Status) {
		return Done(he)
	}
	return Outcome{Err: he, Retry: true, Status: resp.Status, Header: resp.Header}
}
