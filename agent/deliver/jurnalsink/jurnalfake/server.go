package jurnalfake

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/internal/fakehttp"
)

// APIPrefix is the path under which the fake serves the Jurnal API.
const APIPrefix = "/public/jurnal/api/v1/"

// MaxClockSkew is how far a request's Date may be from the server's clock.
const MaxClockSkew = 300 * time.Second

// Defaults of Options.
const (
	DefaultClientID     = "jurnal-test-client"
	DefaultClientSecret = "jurnal-test-secret-0123456789abcdef"
)

// Options configure a Server. The zero value is usable.
type Options struct {
	ClientID     string // "" means DefaultClientID
	ClientSecret string // "" means DefaultClientSecret
	// Clock is the server's clock (the Date check, the Date header of the
	// answers, rate-limit windows, the monthly quota, CreatedAt); nil means
	// the real clock. SetSkew moves it.
	Clock clockwork.Clock
	// Addr is where New listens; "" means a free port on 127.0.0.1.
	Addr string
	// Logger receives one debug line per request; nil discards.
	Logger *slog.Logger

	// Master data. nil means the Default* seeds; an empty non-nil slice
	// means none. Products start empty unless given.
	Products       []Product
	Contacts       []string
	Accounts       []Account
	Taxes          []Tax
	Warehouses     []string
	PaymentMethods []string

	// RequestsPerMinute, when > 0, limits authenticated requests per
	// minute of the server's clock (see SetRequestsPerMinute).
	RequestsPerMinute int
	// MonthlyQuota, when > 0, is the monthly API-call quota (see
	// SetMonthlyQuota).
	MonthlyQuota int
	// NotFound404 makes lookups of missing documents answer 404 instead of
	// 422 (see SetNotFoundStatus).
	NotFound404 bool
	// RequireDigest makes a body without a Digest header fail (see
	// SetRequireDigest).
	RequireDigest bool
}

// RequestLog is one request the server received.
type RequestLog struct {
	At     time.Time // the server's clock (skew included) when it arrived
	Method string
	Path   string // as received, decoded
	Query  string // raw query
	// Route is the endpoint, method and pattern relative to APIPrefix
	// ("POST /sales_invoices", "GET /sales_invoices/{id}"), or
	// "<METHOD> ?" for a path the fake does not serve.
	Route string
	// Status is the answer's status; 0 when the connection was closed
	// without an answer (SetDown, LoseAnswerNext, a client that gave up).
	Status int
	// CustomID is the custom_id of a document create ("" otherwise).
	CustomID string
	// Error is the first error message of an error answer.
	Error string
	// Processed: the request reached Jurnal and took effect (a create
	// created, even if its answer was lost).
	Processed bool
}

// MinuteCount is how many requests arrived in one minute of the server's
// clock.
type MinuteCount struct {
	Minute   time.Time
	Requests int
}

// Server is the fake Jurnal API. All methods are safe for concurrent use.
type Server struct {
	opts  Options
	clock clockwork.Clock
	log   *slog.Logger

	mu sync.Mutex
	// knobs
	skew           time.Duration
	down           bool
	failN          int
	failStatus     int
	loseN          int
	latency        time.Duration
	requireDigest  bool
	notFoundStatus int
	looseFilters   bool
	rejects        map[string]string
	rpm            int
	minute         time.Time // start of the current rate-limit window
	minuteUsed     int
	quotaLimit     int
	quotaRemaining int
	quotaMonth     int // year*12+month of quotaRemaining
	// data
	master   master
	nextID   int64
	nextNo   map[string]int
	invoices []Invoice
	payments []Payment
	returns  []Return
	journals []JournalEntry
	// observations
	requests []RequestLog
	inflight int

	web       fakehttp.Server
	closed    chan struct{}
	closeOnce sync.Once
}

// New returns a server listening on Options.Addr (a loopback port by
// default), like httptest.NewServer; it panics if it cannot listen. Close
// it when done.
func New(opts Options) *Server {
	s := NewUnstarted(opts)
	if err := s.web.Listen(opts.Addr, s, log.New(slogWriter{s.log}, "", 0)); err != nil {
		panic(fmt.Sprintf("jurnalfake: %v", err))
	}
	return s
}

// TB is the part of testing.TB that NewServer uses.
type TB = fakehttp.TB

// NewServer starts a server on 127.0.0.1 and closes it when the test ends.
func NewServer(t TB, opts Options) *Server {
	t.Helper()
	opts.Addr = ""
	s := NewUnstarted(opts)
	if err := s.Listen(""); err != nil {
		t.Fatalf("jurnalfake: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// NewUnstarted returns a server that does not listen: call Listen, or serve
// Handler yourself.
func NewUnstarted(opts Options) *Server {
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = DefaultClientSecret
	}
	s := &Server{opts: opts, clock: opts.Clock, log: opts.Logger, closed: make(chan struct{})}
	if s.clock == nil {
		s.clock = clockwork.NewRealClock()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.resetLocked()
	return s
}

// Listen serves on addr ("" means a free port on 127.0.0.1).
func (s *Server) Listen(addr string) error {
	return s.web.Listen(addr, s, log.New(slogWriter{s.log}, "", 0))
}

// URL is the base URL ("http://127.0.0.1:port"); the API is under
// URL()+APIPrefix.
func (s *Server) URL() string { return s.web.URL() }

// Close stops serving, closes connections and ends delayed answers.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
	s.web.Close()
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s }

// ClientID and ClientSecret are the credentials the server accepts.
func (s *Server) ClientID() string     { return s.opts.ClientID }
func (s *Server) ClientSecret() string { return s.opts.ClientSecret }

// Reset brings the server back to its state after New: the master data of
// Options, no documents, an empty request log, and the knobs of Options
// (no skew, failures, latency, rejections).
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
}

func (s *Server) resetLocked() {
	o := s.opts
	s.skew, s.down, s.failN, s.failStatus, s.loseN, s.latency = 0, false, 0, 0, 0, 0
	s.requireDigest = o.RequireDigest
	s.notFoundStatus = http.StatusUnprocessableEntity
	if o.NotFound404 {
		s.notFoundStatus = http.StatusNotFound
	}
	s.rejects = make(map[string]string)
	s.rpm, s.minute, s.minuteUsed = o.RequestsPerMinute, time.Time{}, 0
	s.quotaLimit, s.quotaRemaining, s.quotaMonth = o.MonthlyQuota, o.MonthlyQuota, monthOf(s.clock.Now())
	s.nextID = 1000
	s.nextNo = make(map[string]int)
	s.invoices, s.payments, s.returns, s.journals, s.requests = nil, nil, nil, nil, nil

	s.master = master{}
	for _, p := range o.Products {
		s.addProductLocked(p)
	}
	for _, c := range orDefault(o.Contacts, DefaultContacts) {
		s.addContactLocked(Contact{DisplayName: c})
	}
	for _, a := range orDefault(o.Accounts, DefaultAccounts) {
		s.addAccountLocked(a)
	}
	for _, t := range orDefault(o.Taxes, DefaultTaxes) {
		s.addTaxLocked(t)
	}
	s.master.warehouses = slices.Clone(orDefault(o.Warehouses, DefaultWarehouses))
	s.master.methods = slices.Clone(orDefault(o.PaymentMethods, DefaultPaymentMethods))
	s.master.terms = slices.Clone(DefaultTerms)
}

func orDefault[T any](v, def []T) []T {
	if v == nil {
		return def
	}
	return v
}

func monthOf(t time.Time) int { t = t.UTC(); return t.Year()*12 + int(t.Month()) - 1 }

// newIDLocked hands out the next document or master-data id.
func (s *Server) newIDLocked() int64 {
	s.nextID++
	return s.nextID
}

// newNoLocked hands out the next transaction number of a kind, as Jurnal
// numbers documents per kind from 10001.
func (s *Server) newNoLocked(kind string) string {
	s.nextNo[kind]++
	return fmt.Sprint(10000 + s.nextNo[kind])
}

// now is the server's clock, skew included.
func (s *Server) now() time.Time {
	s.mu.Lock()
	skew := s.skew
	s.mu.Unlock()
	return s.clock.Now().Add(skew)
}

// ---- serving ----

// apiRequest is a request that reached Jurnal.
type apiRequest struct {
	method string
	segs   []string // path segments after APIPrefix
	query  url.Values
	body   []byte
	now    time.Time
	log    *RequestLog
}

// ServeHTTP handles one request: gateway faults (SetDown, FailNext), the
// body limit (1 MiB, 413), routing, authentication, limits, latency, the
// endpoint, then LoseAnswerNext. The request is in Requests before its
// answer is written.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.inflight++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight--
		s.mu.Unlock()
	}()
	now := s.now()
	entry := RequestLog{At: now, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery}
	segs, inAPI := apiSegments(r.URL.Path)
	entry.Route = routeOf(r.Method, segs, inAPI)

	s.mu.Lock()
	down := s.down
	fail, failStatus := false, 0
	if !down && s.failN > 0 {
		s.failN--
		fail, failStatus = true, s.failStatus
	}
	s.mu.Unlock()
	if down {
		s.finish(w, &entry, nil, true)
		return
	}
	if fail {
		s.finish(w, &entry, gatewayError(failStatus, http.StatusText(failStatus)), false)
		return
	}

	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		s.finish(w, &entry, nil, true)
		return
	}
	if len(body) > maxBodyBytes {
		s.finish(w, &entry, gatewayError(http.StatusRequestEntityTooLarge, "Request size limit exceeded"), false)
		return
	}
	if !inAPI {
		s.finish(w, &entry, gatewayError(http.StatusNotFound, MsgNoRoute), false)
		return
	}
	if resp := s.authenticate(r, body, now); resp != nil {
		s.finish(w, &entry, resp, false)
		return
	}
	limitHeader, resp := s.admit(now)
	if resp != nil {
		copyHeader(resp.header, limitHeader)
		s.finish(w, &entry, resp, false)
		return
	}

	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			s.finish(w, &entry, nil, true)
			return
		case <-s.closed:
			t.Stop()
			s.finish(w, &entry, nil, true)
			return
		}
	}

	req := &apiRequest{method: r.Method, segs: segs, query: r.URL.Query(), body: body, now: now, log: &entry}
	resp = s.dispatch(req)
	entry.Processed = true
	copyHeader(resp.header, limitHeader)
	s.mu.Lock()
	lose := s.loseN > 0
	if lose {
		s.loseN--
	}
	s.mu.Unlock()
	if lose {
		s.finish(w, &entry, nil, true)
		return
	}
	s.finish(w, &entry, resp, false)
}

// finish records the request and writes resp, or hangs up.
func (s *Server) finish(w http.ResponseWriter, entry *RequestLog, resp *response, hang bool) {
	if !hang && resp != nil {
		entry.Status = resp.status
		if resp.status >= 400 && entry.Error == "" {
			entry.Error = errorText(resp.body)
		}
	}
	s.mu.Lock()
	s.requests = append(s.requests, *entry)
	s.mu.Unlock()
	s.log.Debug("Fake Jurnal request", "method", entry.Method, "route", entry.Route,
		"status", entry.Status, "custom_id", entry.CustomID)
	if hang || resp == nil {
		hangUp(w)
		return
	}
	h := w.Header()
	for k, v := range resp.header {
		h[k] = v
	}
	h.Set("Date", entry.At.UTC().Format(http.TimeFormat))
	if len(resp.body) > 0 {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}

// apiSegments splits a path under APIPrefix into its segments.
func apiSegments(path string) ([]string, bool) {
	rest, ok := strings.CutPrefix(path, APIPrefix)
	if !ok {
		return nil, false
	}
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" {
		return nil, true
	}
	return strings.Split(rest, "/"), true
}

// routeOf names the endpoint of a request for the log.
func routeOf(method string, segs []string, inAPI bool) string {
	if !inAPI || len(segs) == 0 || !knownResource(segs[0]) {
		return method + " ?"
	}
	switch len(segs) {
	case 1:
		return method + " /" + segs[0]
	case 2:
		if segs[0] == "sales_invoices" && segs[1] == "batch_create" {
			return method + " /sales_invoices/batch_create"
		}
		return method + " /" + segs[0] + "/{id}"
	}
	return method + " ?"
}

func knownResource(name string) bool {
	switch name {
	case "products", "customers", "contacts", "accounts", "taxes", "warehouses", "payment_methods",
		"sales_invoices", "receive_payments", "sales_returns", "journal_entries":
		return true
	}
	return false
}

// dispatch answers a request that passed the gateway.
func (s *Server) dispatch(req *apiRequest) *response {
	segs := req.segs
	if len(segs) == 0 || len(segs) > 2 || !knownResource(segs[0]) {
		return gatewayError(http.StatusNotFound, MsgNoRoute)
	}
	get, post := req.method == http.MethodGet, req.method == http.MethodPost
	one := len(segs) == 2
	switch {
	case segs[0] == "sales_invoices" && one && segs[1] == "batch_create" && post:
		return s.batchCreateInvoices(req)
	case segs[0] == "sales_invoices" && !one && post:
		return s.createInvoice(req)
	case segs[0] == "sales_invoices" && !one && get:
		return s.listInvoices(req)
	case segs[0] == "sales_invoices" && one && get:
		return s.getInvoice(segs[1])
	case segs[0] == "receive_payments" && !one && post:
		return s.createPayment(req)
	case segs[0] == "receive_payments" && one && get:
		return s.getPayment(segs[1])
	case segs[0] == "sales_returns" && !one && post:
		return s.createReturn(req)
	case segs[0] == "sales_returns" && one && get:
		return s.getReturn(segs[1])
	case segs[0] == "journal_entries" && !one && post:
		return s.createJournal(req)
	case segs[0] == "journal_entries" && one && get:
		return s.getJournal(segs[1])
	case segs[0] == "products" && !one && get:
		return s.listProducts(req)
	case segs[0] == "products" && !one && post:
		return s.createProduct(req)
	case segs[0] == "products" && one && get:
		return s.getProduct(segs[1])
	case (segs[0] == "customers" || segs[0] == "contacts") && !one && get:
		return s.listContacts(req)
	case (segs[0] == "customers" || segs[0] == "contacts") && !one && post:
		return s.createContact(req)
	case (segs[0] == "customers" || segs[0] == "contacts") && one && get:
		return s.getContact(segs[0], segs[1])
	case !one && get:
		return s.listMaster(segs[0])
	}
	return jurnalError(http.StatusMethodNotAllowed, "Method not allowed")
}

// notFoundLocked is the answer to a lookup of a missing document.
func (s *Server) notFoundLocked() *response {
	return jurnalError(s.notFoundStatus, MsgNotFound)
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

// errorText extracts the first message of an error body, for the log.
func errorText(body []byte) string {
	var v struct {
		Message string `json:"message"`
		Errors  any    `json:"errors"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return ""
	}
	if v.Message != "" {
		return v.Message
	}
	switch e := v.Errors.(type) {
	case string:
		return e
	case map[string]any:
		keys := make([]string, 0, len(e))
		for k := range e {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if l, ok := e[k].([]any); ok && len(l) > 0 {
				if m, ok := l[0].(string); ok {
					return m
				}
			}
		}
	}
	return ""
}

// slogWriter adapts the http.Server error log to slog.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Debug("Fake Jurnal server error", "error", strings.TrimSpace(string(p)))
	return len(p), nil
}
