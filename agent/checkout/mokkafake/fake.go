// Package mokkafake is a fake Mokka Online API for tests and the demo: the
// nine methods with the real request and response shapes and error codes,
// store_id and signature checks, the order state machine, the seed's test
// phone numbers, and signed decision callbacks sent over real HTTP to the
// callback_url of the order. Knobs make it slow, down or failing, and it
// records what it received for tests to assert on.
//
// It shares no code with the gateway (agent/checkout) on purpose: signing,
// codes and parsing are written again here, so a mistake in one is caught
// by the other.
package mokkafake

import (
	"context"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // Mokka's signature scheme
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pwbi/edge-agent/internal/fakehttp"
)

// Defaults of Options (the store id and key of the docs' test vectors).
const (
	DefaultStoreID   = "72"
	DefaultSecretKey = "9fff8c602b08b00323567be0001480f6"
	// DefaultLimit is the limit a new customer is granted.
	DefaultLimit = "50000.00"
)

// Options configure a fake. The zero value is usable.
type Options struct {
	StoreID   string // the only store accepted; "" means DefaultStoreID
	SecretKey string // its key; "" means DefaultSecretKey
	// Now is the fake's clock (valid_till, expiry, logs); nil means time.Now.
	Now func() time.Time
	// AutoComplete, when > 0, makes the customer finish the Mokka form that
	// long after a Registration or Checkout, with the phone of the request
	// (the demo). Tests call Complete instead.
	AutoComplete time.Duration
	// Client sends the callbacks; nil means a client with a 10 s timeout.
	Client *http.Client
	Logger *slog.Logger
	// DefaultLimit is a new customer's limit; "" means DefaultLimit.
	DefaultLimit string
	// MaxBodyBytes caps a request body; 0 means 4 MiB.
	MaxBodyBytes int64
	// MaxRequestLog, when > 0, keeps only the last that many requests in
	// the log (benchmarks); 0 keeps them all.
	MaxRequestLog int
	// RegistrationStoreID and RegistrationSecretKey, when set, are a
	// second store for the Registration and Limit methods, as Revo issues
	// them (its docs: STORE_ID1 for Registration and Limit, STORE_ID2 for
	// everything else): those two methods then accept only this store, the
	// others only StoreID. Registration callbacks are signed with its key.
	RegistrationStoreID   string
	RegistrationSecretKey string
	// UnsignedCallbacks makes the fake send its callbacks without a
	// signature, as Mokka may (its own plugins never check one). See also
	// SetUnsignedCallbacks.
	UnsignedCallbacks bool
}

// Request is one request the fake received.
type Request struct {
	At          time.Time
	Method      string // the Mokka method, e.g. "factoring/v1/status"
	HTTPMethod  string
	Query       url.Values
	StoreID     string
	Signature   string
	ContentType string
	Body        []byte // the raw body received
	Signed      []byte // what the signature covers: Body, or the multipart "body" field
	Receipt     []byte // the multipart "check" file of a Finish
	HTTPStatus  int
	Code        int // the Mokka status answered; -1 when the connection was dropped
}

// Callback is one callback the fake sent.
type Callback struct {
	At         time.Time
	OrderID    string
	URL        string // without the signature
	Body       []byte
	Signature  string // "" when sent unsigned (SetUnsignedCallbacks)
	HTTPStatus int    // the receiver's answer; 0 on a transport error
	Err        string // the transport error, if any
}

// Server is a fake Mokka Online API. All methods are safe for concurrent
// use.
type Server struct {
	opts  Options
	now   func() time.Time
	log   *slog.Logger
	hc    *http.Client
	limit int64

	mu        sync.Mutex
	orders    map[string]*order
	byToken   map[string]*order
	clients   map[string]*client
	requests  []Request
	callbacks []Callback
	delay     time.Duration
	down      bool
	unsigned  bool // callbacks go without a signature
	failN     int
	failCode  int
	timers    []*time.Timer

	web       fakehttp.Server
	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // callbacks in flight
}

// New returns a fake. It does not listen: call Start, or serve Handler.
func New(opts Options) *Server {
	if opts.StoreID == "" {
		opts.StoreID = DefaultStoreID
	}
	if opts.SecretKey == "" {
		opts.SecretKey = DefaultSecretKey
	}
	if opts.DefaultLimit == "" {
		opts.DefaultLimit = DefaultLimit
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 4 << 20
	}
	s := &Server{
		opts:    opts,
		now:     opts.Now,
		log:     opts.Logger,
		hc:      opts.Client,
		orders:  make(map[string]*order),
		byToken: make(map[string]*order),
		clients: make(map[string]*client),
		closed:  make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.hc == nil {
		s.hc = &http.Client{Timeout: 10 * time.Second}
	}
	if (opts.RegistrationStoreID == "") != (opts.RegistrationSecretKey == "") {
		panic("mokkafake: RegistrationStoreID and RegistrationSecretKey go together")
	}
	s.unsigned = opts.UnsignedCallbacks
	lim, ok := parseCents(opts.DefaultLimit)
	if !ok {
		panic("mokkafake: bad DefaultLimit " + opts.DefaultLimit)
	}
	s.limit = lim
	return s
}

// TB is the part of testing.TB that NewServer uses.
type TB = fakehttp.TB

// NewServer starts a fake on 127.0.0.1 and closes it when the test ends.
func NewServer(t TB, opts Options) *Server {
	t.Helper()
	s := New(opts)
	if err := s.Start(); err != nil {
		t.Fatalf("mokkafake: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start serves on 127.0.0.1 with a free port.
func (s *Server) Start() error { return s.Listen(fakehttp.Loopback) }

// Listen serves on addr.
func (s *Server) Listen(addr string) error {
	return s.web.Listen(addr, s, log.New(io.Discard, "", 0))
}

// URL is the base URL to configure the gateway with.
func (s *Server) URL() string { return s.web.URL() }

// Close stops serving, ends delayed answers and waits for callbacks in
// flight.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
	s.mu.Lock()
	for _, t := range s.timers {
		t.Stop()
	}
	s.mu.Unlock()
	s.web.Close()
	s.wg.Wait()
}

// Handler returns the fake's HTTP handler.
func (s *Server) Handler() http.Handler { return s }

// StoreID is the store the fake accepts.
func (s *Server) StoreID() string { return s.opts.StoreID }

// SecretKey is the store's key.
func (s *Server) SecretKey() string { return s.opts.SecretKey }

// SetDelay makes every answer wait d (0: none).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// SetUnsignedCallbacks makes the callbacks sent from now on go without a
// signature (true) or signed (false).
func (s *Server) SetUnsignedCallbacks(unsigned bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unsigned = unsigned
}

// credentials returns the store and key that method must be called with.
func (s *Server) credentials(method string) (storeID, key string) {
	if s.opts.RegistrationStoreID != "" && (method == mRegistration || method == mLimit) {
		return s.opts.RegistrationStoreID, s.opts.RegistrationSecretKey
	}
	return s.opts.StoreID, s.opts.SecretKey
}

// SetDown makes the fake hang up on every request without an answer.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// FailNext makes the next n requests answer httpStatus with Mokka's code
// 100, without looking at them.
func (s *Server) FailNext(n, httpStatus int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failCode = n, httpStatus
}

// Requests returns a copy of the requests received, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	copy(out, s.requests)
	return out
}

// RequestsFor returns the requests received for one Mokka method.
func (s *Server) RequestsFor(method string) []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Method == method {
			out = append(out, r)
		}
	}
	return out
}

// Callbacks returns a copy of the callbacks sent, oldest first.
func (s *Server) Callbacks() []Callback {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Callback, len(s.callbacks))
	copy(out, s.callbacks)
	return out
}

// ServeHTTP serves the API ({base}/{method}?store_id=…&signature=…) and the
// customer's form ({base}/form/v1/{token}).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/form/v1/") {
		s.serveForm(w, r)
		return
	}
	method := strings.TrimPrefix(r.URL.Path, "/")
	rec := Request{
		At: s.now(), Method: method, HTTPMethod: r.Method, Query: r.URL.Query(),
		ContentType: r.Header.Get("Content-Type"), Code: -1,
	}
	rec.StoreID, rec.Signature = rec.Query.Get("store_id"), rec.Query.Get("signature")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	rec.Body = body

	s.mu.Lock()
	delay, down := s.delay, s.down
	fail := 0
	if s.failN > 0 {
		s.failN--
		fail = s.failCode
	}
	s.mu.Unlock()

	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
		case <-s.closed:
		}
		t.Stop()
	}
	if down {
		s.record(rec)
		hangUp(w)
		return
	}
	var (
		status int
		resp   any
	)
	switch {
	case fail != 0:
		status, resp = fail, mokkaError(codeServer)
	case err != nil:
		status, resp = http.StatusRequestEntityTooLarge, mokkaError(codeJSON)
	case !isMethod(method):
		status, resp = http.StatusNotFound, mokkaError(codeNotFound)
	case r.Method != http.MethodPost:
		status, resp = http.StatusNotFound, mokkaError(codeNotFound)
	default:
		status = http.StatusOK
		resp = s.handle(r, method, &rec)
	}
	rec.HTTPStatus, rec.Code = status, codeOf(resp)
	s.record(rec)
	writeJSON(w, status, resp)
}

func (s *Server) record(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.opts.MaxRequestLog; n > 0 && len(s.requests) >= n {
		s.requests = append(s.requests[:0], s.requests[len(s.requests)-n+1:]...)
	}
	s.requests = append(s.requests, r)
}

// handle authenticates and runs one API call; it returns the answer body.
func (s *Server) handle(r *http.Request, method string, rec *Request) any {
	storeID, key := s.credentials(method)
	switch {
	case rec.StoreID == "":
		return mokkaError(codeStoreIDMissing)
	case rec.StoreID != storeID:
		return mokkaError(codeStoreNotFound)
	}
	rec.Signed = rec.Body
	if mt, params, err := mime.ParseMediaType(rec.ContentType); err == nil && mt == "multipart/form-data" {
		body, receipt, ok := readMultipart(rec.Body, params["boundary"])
		if !ok {
			return mokkaError(codeJSON)
		}
		rec.Signed, rec.Receipt = body, receipt
	}
	switch {
	case rec.Signature == "":
		return mokkaError(codeSignatureMissing)
	case !validSignature(rec.Signed, key, rec.Signature):
		return mokkaError(codeSignatureWrong)
	}
	return s.call(method, rec.Signed, rec.Receipt, rec.ContentType)
}

// sign is Mokka's signature: lowercase hex SHA-1 of data followed by key.
func sign(data []byte, key string) string {
	h := sha1.New() //nolint:gosec // Mokka's scheme
	h.Write(data)
	h.Write([]byte(key))
	return hex.EncodeToString(h.Sum(nil))
}

func validSignature(data []byte, key, sig string) bool {
	return subtle.ConstantTimeCompare([]byte(sign(data, key)), []byte(sig)) == 1
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

func newToken() string {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// sendCallback POSTs body to the order's callback_url, signed with key
// unless key is "", and records the attempt. It does not hold the lock
// while sending.
func (s *Server) sendCallback(ctx context.Context, orderID, callbackURL, key string, body []byte) Callback {
	cb := Callback{At: s.now(), OrderID: orderID, URL: callbackURL, Body: body}
	target := callbackURL
	if key != "" {
		cb.Signature = sign(body, key)
		if strings.Contains(target, "?") {
			target += "&signature=" + cb.Signature
		} else {
			target += "?signature=" + cb.Signature
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(string(body)))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		var resp *http.Response
		resp, err = s.hc.Do(req)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) //nolint:errcheck // drained for reuse
			resp.Body.Close()
			cb.HTTPStatus = resp.StatusCode
		}
	}
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		cb.Err = err.Error()
	}
	s.mu.Lock()
	s.callbacks = append(s.callbacks, cb)
	s.mu.Unlock()
	s.log.Debug("Fake Mokka callback sent", "order_id", orderID, "http_status", cb.HTTPStatus, "err", cb.Err)
	return cb
}
