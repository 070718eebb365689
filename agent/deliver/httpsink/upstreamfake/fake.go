// Package upstreamfake is a faithful, in-process fake of the PWBI ingest
// service (SPEC §6), served over real HTTP. Tests and demo programs point the
// forwarder at it, inject faults (errors, dropped connections, truncated
// answers, slowness, outages, rejected records, size limits, and the answers
// of things that are not the ingest service: a captive portal, an empty 200,
// another batch's acknowledgement, a redirect, an upstream refusing every
// batch) and inspect what was accepted.
//
// It validates every request like the real service should: POST
// /v1/batches, the bearer token, Content-Type application/json,
// Content-Encoding gzip, a well-formed batch, and an Idempotency-Key equal to
// the batch id. It acknowledges a batch (SPEC §6.1) with 200 and a JSON body
// echoing it, {"batch_id": "<id>", "accepted": N}; a batch id accepted before
// is answered 409 {"error": "batch already accepted", "batch_id": "<id>"}
// and not counted again. All methods are safe for concurrent use.
package upstreamfake

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pwbi/edge-agent/internal/fakehttp"
	"github.com/pwbi/edge-agent/store"
)

// Protocol constants.
const (
	Path = "/v1/batches"

	// DefaultMaxBodyBytes bounds the compressed request body unless
	// SetMaxBodyBytes says otherwise.
	DefaultMaxBodyBytes = 32 << 20
	// MaxDecodedBytes bounds the decompressed body (gzip bombs).
	MaxDecodedBytes = 256 << 20
)

// Options configure a Server.
type Options struct {
	// Token is the required bearer token; empty accepts any (or none).
	Token string
	// Logger receives one debug line per request; default: discarded.
	Logger *slog.Logger
	// Discard keeps no accepted record data (Records, Batches and Keys stay
	// empty); counters, idempotency and order checks still work. For long
	// demos and benchmarks.
	Discard bool
}

// Batch is an accepted batch.
type Batch struct {
	ID      string
	AgentID string
	SentAt  time.Time
	Records []store.Record
}

// RequestInfo describes one request the server saw.
type RequestInfo struct {
	Method         string
	Path           string
	IdempotencyKey string
	// Status is the answer's status code; 0 when the connection was closed
	// without an answer (CloseNext, SetDown, or the client gave up).
	Status int
	// Truncated: the answer was cut short (TruncateNext).
	Truncated bool
	// Records is the number of records in a well-formed batch.
	Records int
}

// Server is the fake ingest service.
type Server struct {
	opts Options
	log  *slog.Logger

	mu sync.Mutex
	// fault knobs
	failN          int
	failStatus     int
	failRetryAfter string
	closeN         int
	truncN         int
	delay          time.Duration
	down           bool
	rejects        map[string]rejectRule
	maxRecords     int
	maxBody        int64
	faultN         int
	faultNext      Fault
	fault          Fault
	// observations
	requests   int
	reqChanged chan struct{} // closed and replaced on every request
	history    []RequestInfo
	batches    []Batch
	records    []store.Record
	keys       map[string]int
	accepted   int
	seen       map[string]struct{}
	lastSeq    map[string]uint64
	violations int

	// serving
	web       fakehttp.Server
	closed    chan struct{}
	closeOnce sync.Once
}

// New returns a server that is not listening yet: call Start, or serve
// Handler yourself.
func New(opts Options) *Server {
	s := &Server{
		opts:       opts,
		log:        opts.Logger,
		rejects:    make(map[string]rejectRule),
		maxBody:    DefaultMaxBodyBytes,
		reqChanged: make(chan struct{}),
		keys:       make(map[string]int),
		seen:       make(map[string]struct{}),
		lastSeq:    make(map[string]uint64),
		closed:     make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// TB is the part of testing.TB that NewServer uses.
type TB = fakehttp.TB

// NewServer starts a server on 127.0.0.1 and closes it when the test ends.
func NewServer(t TB, opts Options) *Server {
	t.Helper()
	s := New(opts)
	if err := s.Start(); err != nil {
		t.Fatalf("upstreamfake: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start serves on 127.0.0.1 with a free port.
func (s *Server) Start() error {
	return s.web.Listen(fakehttp.Loopback, s, log.New(slogWriter{s.log}, "", 0))
}

// URL is the base URL to configure the forwarder with ("http://127.0.0.1:port").
func (s *Server) URL() string { return s.web.URL() }

// Close stops serving, closes connections and ends any delayed answer.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
	s.web.Close()
}

// Handler returns the server's HTTP handler, to serve it on an address of
// your choice.
func (s *Server) Handler() http.Handler { return s }

// FailNext makes the next n requests answer status (e.g. 500, 503, 429)
// without looking at them, with a Retry-After header if retryAfter is not
// empty.
func (s *Server) FailNext(n, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failStatus, s.failRetryAfter = n, status, retryAfter
}

// CloseNext makes the next n requests end with the connection closed and no
// answer. The batch is not accepted.
func (s *Server) CloseNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeN = n
}

// TruncateNext cuts short the answers to the next n requests that are
// processed: the request takes full effect (a valid batch is accepted), but
// the answer declares a Content-Length larger than what is sent before the
// connection is closed — a response lost on the way back.
func (s *Server) TruncateNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.truncN = n
}

// SetDelay delays every answer by d after the request was read. A client that
// gives up meanwhile gets nothing and its batch is not accepted.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// SetDown makes the server unreachable (down = true): every request's
// connection is closed without an answer.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// rejectRule is how a rejected key is answered; an empty msg names the key.
type rejectRule struct {
	status int
	msg    string
}

// Reject makes any batch containing a record with this key answer status
// (e.g. 422) with a JSON error naming the key and seq, so that every
// rejected record has its own answer. Status 0 removes the rule.
func (s *Server) Reject(key string, status int) {
	s.RejectWithMessage(key, status, "")
}

// RejectWithMessage is Reject with the answer {"error": msg}, which does not
// name the record: records rejected with the same status and msg get the
// very same answer (as from a service that does not say which record is
// wrong). An empty msg is Reject's answer. Status 0 removes the rule.
func (s *Server) RejectWithMessage(key string, status int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == 0 {
		delete(s.rejects, key)
		return
	}
	s.rejects[key] = rejectRule{status, msg}
}

// SetMaxRecords answers 413 to batches of more than n records (0: no limit).
func (s *Server) SetMaxRecords(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxRecords = n
}

// SetMaxBodyBytes answers 413 to request bodies (as sent, compressed) larger
// than n bytes; n ≤ 0 restores DefaultMaxBodyBytes.
func (s *Server) SetMaxBodyBytes(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 {
		n = DefaultMaxBodyBytes
	}
	s.maxBody = n
}

// Fault is an answer that is not an acknowledgement, given instead of
// processing a request (see FaultNext and SetFault). A request answered with
// a fault is never recorded as accepted (Records, Batches, Keys, Accepted).
type Fault int

const (
	// FaultNone: answer normally.
	FaultNone Fault = iota
	// FaultHTMLPage: 200 text/html, a Wi-Fi captive portal's login page,
	// without looking at the request.
	FaultHTMLPage
	// FaultEmpty: 200 with an empty body, without looking at the request.
	FaultEmpty
	// FaultWrongBatchID: 200 application/json echoing another batch id
	// (WrongBatchID), as a caching proxy replaying an old answer would.
	FaultWrongBatchID
	// FaultRedirect: 302 Found to RedirectURL (a captive portal on another
	// host), without looking at the request.
	FaultRedirect
	// FaultRejectAll: the request is validated as usual (token, format),
	// then a valid batch is answered 400 {"error":"agent_id not
	// registered"} instead of being accepted — the same answer for every
	// batch and every record, as an ingest service that does not know the
	// agent would.
	FaultRejectAll
)

// Fault answers.
const (
	// WrongBatchID is the batch id FaultWrongBatchID acknowledges.
	WrongBatchID = "0000000000000000000000000000000000000000000000000000000000000000"
	// RedirectURL is where FaultRedirect points. Its query string stands
	// for a session a client must never show.
	RedirectURL = "http://wifi-login.cafe.example/portal?session=s3cr3t-portal-session"
	// RejectAllMessage is the error of FaultRejectAll.
	RejectAllMessage = "agent_id not registered"
	// PortalPage is the body of FaultHTMLPage.
	PortalPage = `<!DOCTYPE html>
<html><head><title>Free Wi-Fi</title></head>
<body><h1>Welcome to Kopi Kenangan Wi-Fi</h1>
<form method="post" action="/login"><input name="voucher"><button>Log in</button></form>
</body></html>
`
)

func (f Fault) String() string {
	switch f {
	case FaultNone:
		return "none"
	case FaultHTMLPage:
		return "html-page"
	case FaultEmpty:
		return "empty"
	case FaultWrongBatchID:
		return "wrong-batch-id"
	case FaultRedirect:
		return "redirect"
	case FaultRejectAll:
		return "reject-all"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// ParseFault returns the Fault named s (its String form), for flags.
func ParseFault(s string) (Fault, error) {
	for f := FaultNone; f <= FaultRejectAll; f++ {
		if f.String() == s {
			return f, nil
		}
	}
	return FaultNone, fmt.Errorf("unknown fault %q (want none, html-page, empty, wrong-batch-id, redirect or reject-all)", s)
}

// FaultNext answers the next n requests with f (after the Down, CloseNext
// and FailNext knobs, which come first). FaultNext(0, FaultNone) cancels.
func (s *Server) FaultNext(n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faultN, s.faultNext = n, f
}

// SetFault answers every request with f until SetFault(FaultNone). FaultNext,
// CloseNext, FailNext and Down take precedence while they last.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// Records returns the records of accepted batches, in acceptance order
// (duplicates kept).
func (s *Server) Records() []store.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]store.Record(nil), s.records...)
}

// Batches returns the accepted batches, in acceptance order.
func (s *Server) Batches() []Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Batch(nil), s.batches...)
}

// Requests returns how many requests the server has seen.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// History returns every completed request, in completion order.
func (s *Server) History() []RequestInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RequestInfo(nil), s.history...)
}

// Keys returns how many times each record key was accepted.
func (s *Server) Keys() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int, len(s.keys))
	for k, v := range s.keys {
		m[k] = v
	}
	return m
}

// Accepted returns how many records were accepted (also with Discard).
func (s *Server) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// OrderViolations counts accepted records whose seq is not greater than the
// previous accepted seq of the same agent. 409 replays are not accepted, so
// they do not count.
func (s *Server) OrderViolations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.violations
}

// WaitRequests blocks until the server has seen at least n requests or ctx
// ends.
func (s *Server) WaitRequests(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		got, ch := s.requests, s.reqChanged
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("upstreamfake: %d of %d requests: %w", got, n, ctx.Err())
		}
	}
}

// action is what a fault knob decided for a request.
type action int

const (
	actServe action = iota
	actClose
	actFail
)

// knobs is what the fault knobs decided for one request.
type knobs struct {
	act        action
	status     int    // actFail
	retryAfter string // actFail
	fault      Fault  // actServe: FaultRejectAll, or a fault answered without processing
	truncate   bool   // actServe
}

// begin counts a request and consumes the fault knob that applies to it.
func (s *Server) begin() knobs {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	close(s.reqChanged)
	s.reqChanged = make(chan struct{})
	switch {
	case s.down:
		return knobs{act: actClose}
	case s.closeN > 0:
		s.closeN--
		return knobs{act: actClose}
	case s.failN > 0:
		s.failN--
		return knobs{act: actFail, status: s.failStatus, retryAfter: s.failRetryAfter}
	case s.faultN > 0 && s.faultNext != FaultNone:
		s.faultN--
		return knobs{act: actServe, fault: s.faultNext}
	case s.fault != FaultNone:
		return knobs{act: actServe, fault: s.fault}
	case s.truncN > 0:
		s.truncN--
		return knobs{act: actServe, truncate: true}
	}
	return knobs{act: actServe}
}

// ServeHTTP handles one request. The request is recorded in History before
// its answer is written, so a client that got an answer finds it there.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := RequestInfo{Method: r.Method, Path: r.URL.Path, IdempotencyKey: r.Header.Get("Idempotency-Key")}
	k := s.begin()
	switch k.act {
	case actClose:
		s.record(info)
		hangUp(w)
		return
	case actFail:
		resp := errorResponse(k.status, "injected failure")
		if k.retryAfter != "" {
			resp.header.Set("Retry-After", k.retryAfter)
		}
		info.Status = resp.status
		s.record(info)
		resp.write(w)
		return
	}
	if resp := faultResponse(k.fault); resp != nil {
		info.Status = resp.status
		s.record(info)
		resp.write(w)
		return
	}

	resp := s.process(r, &info, k.fault == FaultRejectAll)
	if resp == nil { // the client gave up or the server is closing
		s.record(info)
		hangUp(w)
		return
	}
	info.Status = resp.status
	info.Truncated = k.truncate
	s.record(info)
	if k.truncate {
		resp.writeTruncated(w)
		return
	}
	resp.write(w)
}

func (s *Server) record(info RequestInfo) {
	s.mu.Lock()
	s.history = append(s.history, info)
	s.mu.Unlock()
	s.log.Debug("Fake upstream request", "method", info.Method, "path", info.Path,
		"idempotency_key", info.IdempotencyKey, "status", info.Status,
		"records", info.Records, "truncated", info.Truncated)
}

// faultResponse is the answer of a fault that does not look at the request,
// or nil.
func faultResponse(f Fault) *response {
	switch f {
	case FaultHTMLPage:
		return &response{
			status: http.StatusOK,
			header: http.Header{"Content-Type": {"text/html; charset=utf-8"}, "Cache-Control": {"no-store"}},
			body:   []byte(PortalPage),
		}
	case FaultEmpty:
		return &response{status: http.StatusOK, header: http.Header{}}
	case FaultWrongBatchID:
		return jsonResponse(http.StatusOK, map[string]any{"batch_id": WrongBatchID, "accepted": 1})
	case FaultRedirect:
		return &response{
			status: http.StatusFound,
			header: http.Header{"Location": {RedirectURL}, "Content-Type": {"text/html; charset=utf-8"}},
			body:   []byte(`<a href="` + RedirectURL + `">Found</a>.` + "\n"),
		}
	}
	return nil
}

// process validates a request and, if valid, applies it (or, with
// rejectAll, answers 400 RejectAllMessage). nil means no answer.
func (s *Server) process(r *http.Request, info *RequestInfo, rejectAll bool) *response {
	if r.URL.Path != Path {
		return errorResponse(http.StatusNotFound, "no such path: use POST "+Path)
	}
	if r.Method != http.MethodPost {
		resp := errorResponse(http.StatusMethodNotAllowed, "method not allowed: use POST")
		resp.header.Set("Allow", http.MethodPost)
		return resp
	}
	if s.opts.Token != "" && !validBearer(r.Header.Get("Authorization"), s.opts.Token) {
		resp := errorResponse(http.StatusUnauthorized, "missing or invalid bearer token")
		resp.header.Set("WWW-Authenticate", `Bearer realm="pwbi-ingest"`)
		return resp
	}
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		return errorResponse(http.StatusUnsupportedMediaType, err.Error())
	}
	if err := checkContentEncoding(r.Header.Get("Content-Encoding")); err != nil {
		return errorResponse(http.StatusUnsupportedMediaType, err.Error())
	}

	s.mu.Lock()
	maxBody, maxRecords, delay := s.maxBody, s.maxRecords, s.delay
	s.mu.Unlock()
	b, err := readBatch(r.Body, maxBody)
	if err != nil {
		var tl *tooLargeError
		if errors.As(err, &tl) {
			return errorResponse(http.StatusRequestEntityTooLarge, err.Error())
		}
		return errorResponse(http.StatusBadRequest, err.Error())
	}
	info.Records = len(b.Records)
	if key := r.Header.Get("Idempotency-Key"); key != b.ID {
		return errorResponse(http.StatusBadRequest, "Idempotency-Key header does not match batch_id")
	}
	if maxRecords > 0 && len(b.Records) > maxRecords {
		return errorResponse(http.StatusRequestEntityTooLarge,
			fmt.Sprintf("batch has %d records, at most %d allowed", len(b.Records), maxRecords))
	}

	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return nil
		case <-s.closed:
			t.Stop()
			return nil
		}
	}
	if r.Context().Err() != nil {
		return nil
	}
	if rejectAll {
		return errorResponse(http.StatusBadRequest, RejectAllMessage)
	}
	return s.accept(b)
}

// accept applies a valid batch: 409 for a replay, the configured status for a
// rejected key, otherwise records it.
func (s *Server) accept(b Batch) *response {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[b.ID]; ok {
		return jsonResponse(http.StatusConflict, map[string]any{
			"error": "batch already accepted", "batch_id": b.ID,
		})
	}
	for _, rec := range b.Records {
		if rule, ok := s.rejects[rec.Key]; ok {
			if rule.msg != "" {
				return errorResponse(rule.status, rule.msg)
			}
			return jsonResponse(rule.status, map[string]any{
				"error": "record rejected", "key": rec.Key, "seq": rec.Seq,
			})
		}
	}
	s.seen[b.ID] = struct{}{}
	last, ok := s.lastSeq[b.AgentID]
	for _, rec := range b.Records {
		if ok && rec.Seq <= last {
			s.violations++
		}
		last, ok = rec.Seq, true
	}
	s.lastSeq[b.AgentID] = last
	s.accepted += len(b.Records)
	if !s.opts.Discard {
		s.batches = append(s.batches, b)
		s.records = append(s.records, b.Records...)
		for _, rec := range b.Records {
			s.keys[rec.Key]++
		}
	}
	return jsonResponse(http.StatusOK, map[string]any{
		"batch_id": b.ID, "accepted": len(b.Records),
	})
}

func validBearer(header, token string) bool {
	const prefix = "Bearer "
	if len(header) < len(prefix) || !equalFold(header[:len(prefix)], prefix) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(header[len(prefix):]), []byte(token)) == 1
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		// HTTP/2 or a recorder: abort the handler, which resets the
		// stream.
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

// slogWriter adapts the http.Server error log to slog.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Debug("Fake upstream server error", "error", strings.TrimSpace(string(p)))
	return len(p), nil
}
