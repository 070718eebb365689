package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/pwbi/edge-agent/store"
)

// maxResponseBody bounds how much of an answer is read.
const maxResponseBody = 64 << 10

// maxSnippet bounds the part of an answer kept in errors and dead-letter
// reasons.
const maxSnippet = 512

var errAttemptTimeout = errors.New("attempt timed out")

// StatusError is the error of an attempt the upstream answered with a status
// that is not an acceptance. Body is a bounded, sanitized snippet of the
// answer with the token redacted.
type StatusError struct {
	StatusCode int
	Body       string
	// RetryAfter is the wait the server asked for, if any.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	var msg string
	switch e.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		msg = fmt.Sprintf("upstream rejected the token (%s)", statusLine(e.StatusCode))
	default:
		msg = "upstream answered " + statusLine(e.StatusCode)
		if classify(e.StatusCode) == classEndpoint {
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

// Is reports whether target is ErrUnauthorized and the status is 401 or 403.
func (e *StatusError) Is(target error) bool {
	return target == ErrUnauthorized &&
		(e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden)
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
	classAccepted   class = iota // 2xx, 409
	classTransient               // 408, 425, 429, 5xx: retry the same batch
	classAuth                    // 401, 403, 407: retry, the token (or proxy) is wrong
	classEndpoint                // wrong URL, method, coding...: retry, never blame records
	classTooLarge                // 413: split
	classRejected                // other 4xx: bisect, dead-letter single records
	classUnexpected              // 1xx, 3xx, nonsense: retry
)

func classify(code int) class {
	switch {
	case code >= 200 && code <= 299, code == http.StatusConflict:
		return classAccepted
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

// answer is what one HTTP attempt produced.
type answer struct {
	status     int
	body       []byte
	retryAfter time.Duration
	err        error // no usable answer (network, timeout, truncated)
	canceled   bool  // the caller's ctx ended
}

// attemptResult is what sendHead did.
type attemptResult struct {
	outcome    Outcome
	err        error
	retryAfter time.Duration
}

// sendHead makes one attempt with the first segment of f.queue and applies
// the outcome: ack and drop it, split it, dead-letter it, or leave it for a
// retry. The caller waits out a retry.
func (f *Forwarder) sendHead(ctx context.Context, cfg Config) attemptResult {
	seg := f.queue[0]
	id := BatchID(cfg.AgentID, seg)
	start := f.clock.Now()
	f.mu.Lock()
	f.status.Sending = true
	f.status.LastAttemptAt = start
	f.mu.Unlock()

	ans := f.post(ctx, cfg, id, seg)
	latency := f.clock.Since(start)
	res := f.apply(cfg, seg, id, ans)

	f.mu.Lock()
	f.status.Sending = false
	f.mu.Unlock()
	if f.onResult != nil {
		f.onResult(Result{
			BatchID:    id,
			Records:    len(seg),
			StatusCode: ans.status,
			Latency:    latency,
			Outcome:    res.outcome,
			Err:        res.err,
		})
	}
	return res
}

func (f *Forwarder) apply(cfg Config, seg []store.Record, id string, ans answer) attemptResult {
	first, last := seg[0].Seq, seg[len(seg)-1].Seq
	log := f.log.With("batch_id", id, "records", len(seg), "first_seq", first, "last_seq", last)
	if ans.canceled {
		return attemptResult{outcome: OutcomeCanceled, err: context.Canceled}
	}
	if ans.err != nil {
		err := fmt.Errorf("send batch: %w", ans.err)
		return f.retry(log, err, false, ans)
	}
	serr := &StatusError{
		StatusCode: ans.status,
		Body:       snippet(ans.body, cfg.Token, maxSnippet),
		RetryAfter: ans.retryAfter,
	}
	switch classify(ans.status) {
	case classAccepted:
		seqs := make([]uint64, len(seg))
		for i, r := range seg {
			seqs[i] = r.Seq
		}
		if err := f.src.Ack(seqs...); err != nil {
			// The upstream has the batch; resending it (same id) gets a
			// 409, which is acked again.
			return f.retry(log, fmt.Errorf("ack delivered records: %w", err), true, ans)
		}
		f.popHead()
		f.answered()
		f.mu.Lock()
		f.status.LastSuccessAt = f.clock.Now()
		f.status.Delivered += uint64(len(seg))
		f.mu.Unlock()
		log.Debug("Batch accepted", "status", ans.status)
		return attemptResult{outcome: OutcomeAccepted}
	case classTooLarge, classRejected:
		if len(seg) > 1 {
			h := len(seg) / 2
			rest := f.queue[1:]
			f.queue = make([][]store.Record, 0, len(rest)+2)
			f.queue = append(f.queue, seg[:h], seg[h:])
			f.queue = append(f.queue, rest...)
			f.answered()
			log.Info("Batch split", "status", ans.status, "answer", serr.Body)
			return attemptResult{outcome: OutcomeSplit, err: serr}
		}
		r := seg[0]
		reason := serr.Error()
		if err := f.src.DeadLetter(r.Seq, reason); err != nil {
			// Start again from the buffer: if the record is still
			// pending it is isolated and dead-lettered again; if it is
			// gone (the store says "not found"), nothing loops on it.
			// The records were due already: no flush interval again.
			f.queue = nil
			f.flushing = true
			return f.retry(log, fmt.Errorf("dead-letter record %d: %w", r.Seq, err), true, ans)
		}
		f.popHead()
		f.answered()
		f.mu.Lock()
		f.status.DeadLettered++
		f.mu.Unlock()
		log.Warn("Record dead-lettered", "seq", r.Seq, "key", r.Key, "kind", r.Kind, "status", ans.status, "reason", reason)
		return attemptResult{outcome: OutcomeDeadLettered, err: serr}
	default:
		online := ans.status < 500
		return f.retry(log, serr, online, ans)
	}
}

// popHead drops the first segment of the queue.
func (f *Forwarder) popHead() {
	f.queue[0] = nil
	f.queue = f.queue[1:]
	if len(f.queue) == 0 {
		f.queue = nil // let the records go
	}
}

// answered resets the failure count after a definitive answer.
func (f *Forwarder) answered() {
	if f.failures > 0 {
		f.log.Info("Upstream answering again", "failures", f.failures)
	}
	f.failures = 0
	f.mu.Lock()
	f.status.Online = true
	f.status.LastError = ""
	f.status.ConsecutiveFailures = 0
	f.mu.Unlock()
}

// retry counts a failed attempt; the caller waits out the backoff.
func (f *Forwarder) retry(log *slog.Logger, err error, online bool, ans answer) attemptResult {
	f.failures++
	f.mu.Lock()
	f.status.Online = online
	f.status.LastError = err.Error()
	f.status.ConsecutiveFailures = f.failures
	f.mu.Unlock()
	log.Warn("Upstream attempt failed", "status", ans.status, "error", err, "failures", f.failures)
	return attemptResult{outcome: OutcomeRetry, err: err, retryAfter: ans.retryAfter}
}

// post sends one batch and reads the answer.
func (f *Forwarder) post(ctx context.Context, cfg Config, id string, seg []store.Record) answer {
	endpoint, err := batchesURL(cfg.URL)
	if err != nil {
		return answer{err: err}
	}
	body, err := f.enc.encode(cfg.AgentID, id, f.clock.Now(), seg)
	if err != nil {
		return answer{err: err}
	}

	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := f.clock.AfterFunc(cfg.Timeout, func() { cancel(errAttemptTimeout) })
	defer timer.Stop()

	req, err := http.NewRequestWithContext(actx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return answer{err: errors.New("invalid upstream url")}
	}
	if cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.Token)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Idempotency-Key", id)
	req.Header.Set("User-Agent", f.userAgent)

	resp, err := f.client.Do(req)
	if err != nil {
		return f.failed(ctx, actx, cfg, 0, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return f.failed(ctx, actx, cfg, resp.StatusCode, fmt.Errorf("read answer (status %d): %w", resp.StatusCode, err))
	}
	a := answer{status: resp.StatusCode, body: data}
	if class := classify(resp.StatusCode); class == classAccepted {
		if garbled(resp.Header.Get("Content-Type"), data) {
			// Safe to retry: the same batch id is answered 409 if the
			// upstream did take it.
			a.err = fmt.Errorf("garbled answer (status %d)", resp.StatusCode)
		}
	} else if class == classTransient {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), f.clock.Now()); ok && d > 0 {
			a.retryAfter = d
		}
	}
	return a
}

// failed turns a transport error into an answer.
func (f *Forwarder) failed(ctx, actx context.Context, cfg Config, status int, err error) answer {
	if ctx.Err() != nil {
		return answer{status: status, canceled: true}
	}
	if errors.Is(context.Cause(actx), errAttemptTimeout) {
		err = fmt.Errorf("no answer within %s", cfg.Timeout)
	}
	return answer{status: status, err: errors.New(redact(err.Error(), cfg.Token))}
}

// garbled reports whether a JSON answer to an accepted batch does not parse.
// Answers larger than maxResponseBody were cut by us and are not judged.
func garbled(contentType string, body []byte) bool {
	if len(body) == 0 || len(body) >= maxResponseBody {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/json" {
		return false
	}
	return !json.Valid(body)
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
