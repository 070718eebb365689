package httpsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/internal/backoff"
	"github.com/pwbi/edge-agent/internal/secret"
	"github.com/pwbi/edge-agent/store"
)

// maxRetryAfter caps the wait a server can ask for with Retry-After.
const maxRetryAfter = time.Hour

// maxResponseBody bounds how much of an answer is read.
const maxResponseBody = 64 << 10

// maxSnippet bounds the part of an answer kept in errors and dead-letter
// reasons.
const maxSnippet = 512

// maxProblem bounds a Problem; maxProblemBody the extract of an answer
// quoted in it.
const (
	maxProblem     = 400
	maxProblemBody = 160
)

var errAttemptTimeout = errors.New("attempt timed out")

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
)

// StatusError is the error of an attempt the upstream answered with a status
// or a body that is not an acceptance. Body is a bounded, sanitized snippet of
// the answer with the token redacted.
type StatusError struct {
	StatusCode int
	Body       string
	// RetryAfter is the wait the server asked for, if any.
	RetryAfter time.Duration
	// NotAck, for an accepting status (2xx, 409), says why the answer is not
	// an acknowledgement ("a web page", "an empty body", ...).
	NotAck string
	// RedirectHost, for a 3xx, is the host the redirect points to — only
	// the host: the full URL may carry credentials.
	RedirectHost string
}

func (e *StatusError) Error() string {
	var msg string
	switch c := classify(e.StatusCode); {
	case e.StatusCode == http.StatusUnauthorized, e.StatusCode == http.StatusForbidden:
		msg = fmt.Sprintf("upstream rejected the token (%s)", statusLine(e.StatusCode))
	case c == classAck:
		msg = "upstream answered " + statusLine(e.StatusCode) + " without acknowledging the batch"
		if e.NotAck != "" {
			msg += " (" + e.NotAck + ")"
		}
	case c == classRedirect:
		msg = "upstream answered " + statusLine(e.StatusCode) + ", a redirect"
		if e.RedirectHost != "" {
			msg += " to " + e.RedirectHost
		}
		msg += " (check upstream.url)"
	default:
		msg = "upstream answered " + statusLine(e.StatusCode)
		if c == classEndpoint || c == classUnexpected {
			msg += " (check upstream.url)"
		}
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Is reports whether target is ErrUnauthorized and the status is 401 or 403,
// or target is ErrNotAcknowledged and the status is an accepting one (the
// answer then did not echo the batch) or a redirect.
func (e *StatusError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
	case ErrNotAcknowledged:
		c := classify(e.StatusCode)
		return c == classAck || c == classRedirect
	}
	return false
}

func statusLine(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return fmt.Sprint(code)
}

// class is what a status code means for the batch.
type class int

const (
	classAck        class = iota // 2xx, 409: accepted if, and only if, the body echoes the batch id
	classTransient               // 408, 425, 429, 5xx: retry the same batch
	classAuth                    // 401, 403, 407: retry, the token (or proxy) is wrong
	classEndpoint                // wrong URL, method, coding...: retry, never blame records
	classTooLarge                // 413: split
	classRejected                // other 4xx: bisect, dead-letter single records
	classRedirect                // 3xx: a captive portal or a wrong URL; retry
	classUnexpected              // 1xx, nonsense: retry
)

func classify(code int) class {
	switch {
	case code >= 200 && code <= 299, code == http.StatusConflict:
		return classAck
	case code >= 300 && code <= 399:
		return classRedirect
	case code == http.StatusRequestEntityTooLarge:
		return classTooLarge
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly,
		code == http.StatusTooManyRequests, code >= 500 && code <= 599:
		return classTransient
	case code == http.StatusUnauthorized, code == http.StatusForbidden,
		code == http.StatusProxyAuthRequired:
		return classAuth
	case code == http.StatusNotFound, code == http.StatusMethodNotAllowed,
		code == http.StatusNotAcceptable, code == http.StatusGone,
		code == http.StatusLengthRequired, code == http.StatusRequestURITooLong,
		code == http.StatusUnsupportedMediaType, code == http.StatusMisdirectedRequest,
		code == http.StatusUpgradeRequired, code == http.StatusPreconditionRequired,
		code == http.StatusRequestHeaderFieldsTooLarge:
		// These say the request does not fit the endpoint (bad URL, a
		// proxy, a server without gzip support), whatever the records:
		// bisecting would dead-letter every record of the buffer.
		return classEndpoint
	case code >= 400 && code <= 499:
		return classRejected
	}
	return classUnexpected
}

// response is what one HTTP attempt produced.
type response struct {
	status      int
	body        []byte // at most maxResponseBody bytes
	overflow    bool   // the body was longer than maxResponseBody
	contentType string
	redirect    string        // for a 3xx: the host of Location, if any
	retryAfter  time.Duration // for a transient status
	err         error         // no usable answer (network, timeout, truncated)
	problem     sink.Message  // with err: the plain-language Problem
	local       bool          // with err: nothing was sent (invalid URL): a person must act
	canceled    bool          // the caller's ctx ended
}

// post sends one batch and reads the answer.
func (s *Sink) post(ctx context.Context, id string, seg []store.Record) response {
	cfg := s.cfg
	endpoint, err := batchesURL(cfg.URL)
	if err != nil {
		return response{err: err, local: true, problem: sink.Say("HealthUpstreamBadURL", nil)}
	}
	body, err := s.enc.encode(cfg.AgentID, id, s.clock.Now(), seg)
	if err != nil {
		return response{err: err, local: true,
			problem: sink.Say("HealthUpstreamEncode", map[string]any{"Error": err.Error()}).Fit(maxProblem, "Error")}
	}

	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := s.clock.AfterFunc(cfg.Timeout, func() { cancel(errAttemptTimeout) })
	defer timer.Stop()

	req, err := http.NewRequestWithContext(actx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return response{err: errors.New("invalid upstream url"), local: true,
			problem: sink.Say("HealthUpstreamInvalidURL", nil)}
	}
	if cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.Token)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Idempotency-Key", id)
	req.Header.Set("User-Agent", s.userAgent)

	resp, err := s.client.Do(req)
	if err != nil {
		return s.failed(ctx, actx, 0, err, "HealthUpstreamUnreachable", map[string]any{"Error": netCause(err)})
	}
	defer resp.Body.Close()
	// One byte more than the cap tells an answer that fits from one that
	// was cut (which cannot be verified as an acknowledgement).
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if err != nil {
		return s.failed(ctx, actx, resp.StatusCode, fmt.Errorf("read answer (status %d): %w", resp.StatusCode, err),
			"HealthUpstreamCutOff", nil)
	}
	a := response{status: resp.StatusCode, body: data, contentType: resp.Header.Get("Content-Type")}
	if len(data) > maxResponseBody {
		a.body, a.overflow = data[:maxResponseBody], true
	}
	switch classify(resp.StatusCode) {
	case classTransient:
		if d, ok := backoff.ParseRetryAfter(resp.Header.Get("Retry-After"), s.clock.Now(), maxRetryAfter); ok && d > 0 {
			a.retryAfter = d
		}
	case classRedirect:
		a.redirect = redirectHost(resp)
	}
	return a
}

// failed turns a transport error into a response; the message code with
// params (an "Error" ending the sentence) is the Problem to show unless the
// attempt timed out. The token is redacted from every parameter.
func (s *Sink) failed(ctx, actx context.Context, status int, err error, code string, params map[string]any) response {
	cfg := s.cfg
	if ctx.Err() != nil {
		return response{status: status, canceled: true}
	}
	if errors.Is(context.Cause(actx), errAttemptTimeout) {
		err = fmt.Errorf("no answer within %s", cfg.Timeout)
		code, params = "HealthUpstreamTimeout", map[string]any{"Timeout": cfg.Timeout.String()}
	}
	for k, v := range params {
		if s, ok := v.(string); ok {
			params[k] = secret.Redact(s, cfg.Token)
		}
	}
	return response{
		status:  status,
		err:     errors.New(secret.Redact(err.Error(), cfg.Token)),
		problem: sink.Say(code, params).Fit(maxProblem, "Error"),
	}
}

// netCause is the part of a transport error a person can read: the reason
// without the request's method and URL.
func netCause(err error) string {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection was closed without an answer"
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	return err.Error()
}

// redirectHost returns the host a redirect points to, or "" when it has no
// usable Location. Only the host: the URL may hold credentials or a session.
func redirectHost(resp *http.Response) string {
	u, err := resp.Location()
	if err != nil || u.Host == "" {
		return ""
	}
	return sink.Snippet([]byte(u.Host), "", 100)
}

// batchesURL returns {base}/v1/batches. The error does not echo the URL,
// which may carry credentials.
func batchesURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("invalid upstream url (want http:// or https://host)")
	}
	return u.JoinPath("v1", "batches").String(), nil
}
