package oauthfake

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/internal/fakehttp"
)

// Defaults of Options.
const (
	DefaultClientID     = "pwbi-agent-test-client"
	DefaultClientSecret = "test-client-secret-0123456789abcdef"
	DefaultBusinessID   = 81234
	DefaultOutlets      = 3
	DefaultDays         = 14
	DefaultTxPerDay     = 20
	DefaultAccessTTL    = 2 * time.Hour
	DefaultPerPage      = 50  // get_latest_transactions without per_page
	MaxPerPage          = 100 // the largest page the fake serves
	codeTTL             = 10 * time.Minute
)

// ErrUnknownPayment is returned by Void and Refund for an id the fake never
// sold (or that is not visible yet).
var ErrUnknownPayment = errors.New("oauthfake: unknown payment")

// Options configure a fake. The zero value is usable.
type Options struct {
	ClientID     string // "" means DefaultClientID
	ClientSecret string // "" means DefaultClientSecret
	BusinessID   int64  // 0 means DefaultBusinessID
	Seed         int64  // same seed, same options → same data
	Outlets      int    // 0 means DefaultOutlets (Jakarta +07, Jakarta, Bali +08, Jayapura +09, …)
	Days         int    // history in days, today included; 0 means DefaultDays
	TxPerDay     int    // sales per outlet per day; 0 means DefaultTxPerDay
	// Now is the fake's clock (token expiry, request times, Live, events);
	// nil means time.Now.
	Now func() time.Time
	// Live keeps the outlets selling: sales become visible as Now passes
	// their time. When false the data is frozen at Now as of New (Void and
	// Refund still change it).
	Live bool
	// AroundTheClock spreads each day's sales over all 24 hours instead
	// of the opening hours 07:00–22:00, so that a demo shows live sales
	// whatever the time of day (pwbi-devstack sets it).
	AroundTheClock bool
	// NoEvents turns off the automatic voids and refunds of some sales of
	// more than a week ago (made during the last two days).
	NoEvents bool
	// AccessTTL is the lifetime of access tokens (expires_in); 0 means
	// DefaultAccessTTL.
	AccessTTL time.Duration
	// StrictRotation makes a refresh invalidate the old token pair at once.
	// By default the fake behaves like Doorkeeper with
	// refresh_token_revoked_on_use: the old pair stays valid until the new
	// access token is first used. (With strict rotation a crash between the
	// refresh answer and storing it loses the grant whatever the client
	// does.)
	StrictRotation bool
	// ConsentPage makes GET /oauth/authorize show an HTML page with
	// "Authorize" and "Deny" links, as a person would see; by default it
	// approves at once and redirects (what a test follows).
	ConsentPage bool
	// RedirectURI, when set, is the only redirect_uri accepted (as
	// registered at connect.mokapos.com); else any http(s) URL.
	RedirectURI string
	// RequestsPerMinute, when > 0, makes the fake enforce a limit: the
	// (N+1)-th API request within 60 s gets 429 with Retry-After.
	RequestsPerMinute int
	// OnTokenIssued, when set, is called after a token answer has been
	// written and flushed, with its grant type. Tests kill the agent there.
	OnTokenIssued func(grantType string)
	// NextURL is the shape of get_latest_transactions' next_url (see
	// NextURLStyle); SetNextURLStyle changes it later.
	NextURL NextURLStyle
	// RefundStyle is how the automatic refunds arrive (see RefundStyle);
	// Refund and RefundRow choose for each explicit one.
	RefundStyle RefundStyle
	// SameTimeSales is the percentage (0–100) of sales that share their
	// created_at, to the millisecond, with the outlet's previous sale (a
	// bill split between payments), so that rows with one time straddle
	// page boundaries.
	SameTimeSales int
}

// NextURLStyle is a shape of next_url. Whatever the shape, completed is
// true on the last page.
type NextURLStyle int

const (
	// NextURLSince repeats the query from the last row's time: since for
	// ASC, until for DESC (that row comes again first). The default.
	NextURLSince NextURLStyle = iota
	// NextURLUntil is the only shape public code shows: the query with
	// until one step (a microsecond) before the last row's time, whatever
	// the order. Followed in an ASC walk it asks for the first page again
	// (and, cut at until, for less than it).
	NextURLUntil
	// NextURLMissing sends no next_url at all.
	NextURLMissing
	// NextURLRepeat sends the request's own URL: the same page again.
	NextURLRepeat
)

func (n NextURLStyle) String() string {
	switch n {
	case NextURLUntil:
		return "until"
	case NextURLMissing:
		return "missing"
	case NextURLRepeat:
		return "repeat"
	}
	return "since"
}

// RefundStyle is how refunds show in get_latest_transactions.
type RefundStyle int

const (
	// RefundFlags: the sale itself changes (is_refunded, refund_amount,
	// refund_type, payment_refunds[] with one whole payment record per
	// refund, refunded_quantity) and its updated_at moves. The default.
	RefundFlags RefundStyle = iota
	// RefundRows: each refund is a payment row of its own with
	// parent_payment_id = the sale, created and updated when the refund
	// was made; the sale's own JSON does not change.
	RefundRows
	// RefundMixed: about half the sales get RefundFlags, the others
	// RefundRows (decided by the sale's id).
	RefundMixed
)

// RequestLog is one request the fake received.
type RequestLog struct {
	Method string
	Path   string
	Query  url.Values // as received (an access_token in it included)
	Form   url.Values // token requests: grant_type only (secrets left out)
	At     time.Time  // Options.Now when the request arrived
	Status int
	// Bearer says whether the request authenticated with a header; Token
	// is a short, non-secret tag of the access token used ("" if none).
	Bearer bool
	Token  string
}

// TokenEvent is one use or issue of a token, in order, for tests that check
// the client's durability order.
type TokenEvent struct {
	At    time.Time
	Kind  string // "issued" (by a token answer) or "used" (first API use of an access token)
	Grant string // grant type of an issue
	Pair  int    // sequence number of the token pair
	// Access and Refresh are the tokens issued (kind "issued"); tests
	// compare them with what the client stored and sent.
	Access, Refresh string
}

type grantT struct{ revoked bool }

// pair is one access/refresh token pair.
type pair struct {
	n         int
	access    string
	refresh   string
	grant     *grantT
	issuedAt  time.Time
	expiresAt time.Time
	expired   bool // ExpireAccessTokens
	revoked   bool
	used      bool
	previous  *pair // revoked on first use of this pair (Doorkeeper)
	byRefresh bool
}

type authCode struct {
	redirectURI string
	expires     time.Time
	used        bool
}

type consent struct {
	redirectURI, state string
}

// Server is a fake Moka Open API with its OAuth server. All methods are safe
// for concurrent use.
type Server struct {
	opts       Options
	now        func() time.Time
	start      time.Time
	businessID int64

	mu       sync.Mutex
	outlets  []outlet
	payments []*payment // sorted by (createdAt, id)
	byID     map[string]*payment
	nextDay  time.Time // UTC midnight of the first day not generated yet
	pairs    []*pair
	byAccess map[string]*pair
	byRefr   map[string]*pair
	codes    map[string]*authCode
	consents map[string]consent
	events   []TokenEvent
	log      []RequestLog
	served   []time.Time
	failN    int
	failCode int
	failRA   string
	tokFailN int
	tokFailC int
	truncN   int
	delay    time.Duration
	nextHost string
	hold     bool
	held     chan struct{}
	release  chan struct{}
	nextURL  NextURLStyle
	ties     int // answers whose last row shares its time with the first row left out

	web fakehttp.Server
}

// New builds a fake with deterministic data. It does not listen; call Start
// or serve Handler yourself.
func New(opts Options) *Server {
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = DefaultClientSecret
	}
	if opts.BusinessID == 0 {
		opts.BusinessID = DefaultBusinessID
	}
	if opts.Outlets <= 0 {
		opts.Outlets = DefaultOutlets
	}
	if opts.Days <= 0 {
		opts.Days = DefaultDays
	}
	if opts.TxPerDay <= 0 {
		opts.TxPerDay = DefaultTxPerDay
	}
	if opts.AccessTTL <= 0 {
		opts.AccessTTL = DefaultAccessTTL
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Server{
		opts: opts, now: now, businessID: opts.BusinessID,
		byID: map[string]*payment{}, byAccess: map[string]*pair{}, byRefr: map[string]*pair{},
		codes: map[string]*authCode{}, consents: map[string]consent{},
		release: make(chan struct{}), held: make(chan struct{}, 16), nextURL: opts.NextURL,
	}
	s.start = now().Truncate(time.Millisecond)
	s.genOutlets()
	first := midnightUTC(s.start).AddDate(0, 0, -(opts.Days - 1))
	s.nextDay = first
	s.generateThrough(s.start)
	return s
}

func midnightUTC(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// generateThrough generates every day up to and including the day of last
// (and the next one: outlets east of UTC are already there). s.mu must be
// held (or s not shared yet).
func (s *Server) generateThrough(last time.Time) {
	end := midnightUTC(last).AddDate(0, 0, 1)
	for !s.nextDay.After(end) {
		s.genDay(s.nextDay)
		s.nextDay = s.nextDay.AddDate(0, 0, 1)
	}
}

// evalTime is the time the data is shown at. s.mu must be held.
func (s *Server) evalTime() time.Time {
	if !s.opts.Live {
		return s.start
	}
	t := s.now()
	s.generateThrough(t)
	return t
}

// visible reports whether p exists at now.
func visible(p *payment, now time.Time) bool {
	return !p.createdAt.After(now) && !p.syncedAt.After(now)
}

// Start listens on a loopback port and serves. It panics if it cannot
// listen, like httptest.Server.Start.
func (s *Server) Start() {
	if err := s.web.Listen(fakehttp.Loopback, s.Handler(), nil); err != nil {
		panic("oauthfake: " + err.Error())
	}
}

// URL returns the base URL after Start ("http://127.0.0.1:port").
func (s *Server) URL() string { return s.web.URL() }

// Close stops the server started by Start.
func (s *Server) Close() {
	s.Release()
	s.web.Close()
}

// ClientID returns the accepted client id.
func (s *Server) ClientID() string { return s.opts.ClientID }

// ClientSecret returns the accepted client secret.
func (s *Server) ClientSecret() string { return s.opts.ClientSecret }

// BusinessID returns the business id as the agent writes it.
func (s *Server) BusinessID() string { return strconv.FormatInt(s.businessID, 10) }

// OutletIDs returns the outlet ids in API order.
func (s *Server) OutletIDs() []string {
	out := make([]string, len(s.outlets)) // outlets never change after New
	for i, o := range s.outlets {
		out[i] = strconv.FormatInt(o.id, 10)
	}
	return out
}

// --- knobs -------------------------------------------------------------

// FailNext makes the next n API requests (not token requests) fail with
// status and a meta-style error body; a non-empty retryAfter is sent as
// Retry-After.
func (s *Server) FailNext(n, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failCode, s.failRA = n, status, retryAfter
}

// FailTokenNext makes the next n token requests fail with status (e.g.
// 503) without an OAuth error body.
func (s *Server) FailTokenNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokFailN, s.tokFailC = n, status
}

// TruncateNext cuts the JSON body of the next n successful API answers in
// half.
func (s *Server) TruncateNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.truncN = n
}

// SetDelay delays every API answer by d of real time (0: off).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// SetNextURLHost makes next_url point at host (e.g. "evil.example:1")
// instead of the request's: a client must not send its token there.
func (s *Server) SetNextURLHost(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextHost = host
}

// SetNextURLStyle changes the shape of next_url (Options.NextURL).
func (s *Server) SetNextURLStyle(n NextURLStyle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextURL = n
}

// BoundaryTies counts the get_latest_transactions answers so far whose
// page was cut between two rows of the same time: the rows a walk must
// neither lose nor repeat forever.
func (s *Server) BoundaryTies() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ties
}

// SetRedirectURI sets Options.RedirectURI (the one redirect_uri accepted)
// once the client's address is known.
func (s *Server) SetRedirectURI(uri string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.RedirectURI = uri
}

// ExpireAccessTokens makes every access token issued so far expired: API
// calls with them get 401 invalid_token until the client refreshes.
func (s *Server) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pairs {
		p.expired = true
	}
}

// Revoke revokes every grant (what the owner does in Moka's back office):
// access tokens get 401, refresh tokens invalid_grant.
func (s *Server) Revoke() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pairs {
		p.grant.revoked = true
	}
}

// HoldNewTokens makes the first API request with an access token issued by
// a refresh wait (after the use is recorded, so the previous pair is
// already revoked) until Release; Held receives when one is waiting.
func (s *Server) HoldNewTokens(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = on
}

// Held signals each request HoldNewTokens holds.
func (s *Server) Held() <-chan struct{} { return s.held }

// Release lets held requests go on (and stops holding).
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = false
	select {
	case <-s.release:
	default:
		close(s.release)
	}
}

// Void voids sale id now, as a cashier would in the back office: its
// updated_at moves, its created_at stays.
func (s *Server) Void(id string) error { return s.addEvent(id, evVoid, false) }

// Refund refunds sale id now, shown as flags on the sale (RefundFlags):
// fully (what is left of its total), or (partial) one unit of its first
// line.
func (s *Server) Refund(id string, partial bool) error {
	if partial {
		return s.addEvent(id, evPartialRefund, false)
	}
	return s.addEvent(id, evRefund, false)
}

// RefundRow refunds sale id now like Refund, but the refund arrives as a
// payment row of its own pointing at the sale (RefundRows): the sale's
// JSON and its updated_at do not change. It returns the refund row's id.
func (s *Server) RefundRow(id string, partial bool) (string, error) {
	kind := evRefund
	if partial {
		kind = evPartialRefund
	}
	if err := s.addEvent(id, kind, true); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.byID[id]
	return s.refundID(p, len(p.events)-1), nil
}

func (s *Server) addEvent(id string, kind int, asRow bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.byID[id]
	now := s.evalTime()
	if !ok || !visible(p, now) {
		return fmt.Errorf("%w: %q", ErrUnknownPayment, id)
	}
	at := s.now().Truncate(time.Millisecond)
	if !s.opts.Live {
		// Frozen data: the change is visible at once.
		at = s.start
		if n := len(p.events); n > 0 && !p.events[n-1].at.Before(at) {
			at = p.events[n-1].at.Add(time.Millisecond)
		}
		s.start = at
	}
	p.events = append(p.events, event{at: at.In(s.outlets[p.outlet].loc), kind: kind, line: s.firstLive(p), asRow: asRow})
	return nil
}

// --- observations --------------------------------------------------------

// Requests returns a copy of the request log, oldest first.
func (s *Server) Requests() []RequestLog {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RequestLog(nil), s.log...)
}

// ResetRequests empties the request log.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = nil
}

// TokenEvents returns the issues and first uses of tokens, in order.
func (s *Server) TokenEvents() []TokenEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]TokenEvent(nil), s.events...)
}

// IssuedSecrets returns every access and refresh token issued so far (to
// assert that none of them appears in logs).
func (s *Server) IssuedSecrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range s.pairs {
		out = append(out, p.access, p.refresh)
	}
	return out
}

// PaymentTruth is a sale as the fake's Moka knows it now.
type PaymentTruth struct {
	ID        string
	OutletID  string
	CreatedAt time.Time
	UpdatedAt time.Time
	Voided    bool
	Refunded  bool
	// RefundRows are the ids of the refund rows (RefundRows style) that
	// point at the sale, in order.
	RefundRows []string
}

// Truth returns every visible sale, sorted by (created_at, id).
func (s *Server) Truth() []PaymentTruth {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.evalTime()
	var out []PaymentTruth
	for _, p := range s.payments {
		if !visible(p, now) {
			continue
		}
		st := s.state(p, s.money(p), now)
		pt := PaymentTruth{
			ID: p.id, OutletID: strconv.FormatInt(s.outlets[p.outlet].id, 10),
			CreatedAt: p.createdAt, UpdatedAt: st.updatedAt, Voided: st.voided, Refunded: st.refunded,
		}
		for _, rf := range st.refunds {
			if rf.asRow {
				pt.RefundRows = append(pt.RefundRows, s.refundID(p, rf.n))
			}
		}
		out = append(out, pt)
	}
	return out
}

// Expected returns the unified transactions a correct agent derives from
// the visible sales, in Truth order, computed from the generator's state
// rather than from the JSON.
func (s *Server) Expected() []unified.Transaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.evalTime()
	var out []unified.Transaction
	for _, p := range s.payments {
		if visible(p, now) {
			out = append(out, s.expected(p, now))
		}
	}
	return out
}

// ExpectedProducts returns the catalogue as the product records a correct
// agent derives from it.
func (s *Server) ExpectedProducts() []unified.Product {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expectedProducts()
}

// Payment returns the JSON of sale id as currently served.
func (s *Server) Payment(id string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.byID[id]
	now := s.evalTime()
	if !ok || !visible(p, now) {
		return nil, false
	}
	return s.render(nil, p, now), true
}

// Payments returns the JSON of every visible sale of outletID ("" for
// all), in Truth order.
func (s *Server) Payments(outletID string) []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.evalTime()
	var out []json.RawMessage
	for _, p := range s.payments {
		if visible(p, now) && (outletID == "" || strconv.FormatInt(s.outlets[p.outlet].id, 10) == outletID) {
			out = append(out, s.render(nil, p, now))
		}
	}
	return out
}

// --- HTTP ----------------------------------------------------------------

// Handler returns the fake: the OAuth endpoints and the API.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/oauth/authorize":
		s.authorize(w, r)
	case "/oauth/authorize/decide":
		s.decide(w, r)
	case "/oauth/token":
		s.token(w, r)
	case "/oauth/revoke":
		s.revokeEndpoint(w, r)
	default:
		s.api(w, r)
	}
}

func (s *Server) redirectURI() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts.RedirectURI
}

func (s *Server) record(r *http.Request, entry RequestLog) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	entry.Method, entry.Path, entry.At = r.Method, r.URL.Path, s.now()
	if entry.Query == nil {
		entry.Query = r.URL.Query()
	}
	s.log = append(s.log, entry)
	return len(s.log) - 1
}

func (s *Server) setStatus(i, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log[i].Status = status
}

func randomToken(prefix string) string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// authorize is GET /oauth/authorize?response_type=code&client_id&
// redirect_uri&state[&scope].
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	i := s.record(r, RequestLog{})
	q := r.URL.Query()
	fail := func(status int, msg string) {
		s.setStatus(i, status)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<!doctype html><title>Moka</title><p>%s</p>", html.EscapeString(msg))
	}
	if r.Method != http.MethodGet {
		fail(http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	redirect := q.Get("redirect_uri")
	ru, err := url.Parse(redirect)
	switch {
	case q.Get("client_id") != s.opts.ClientID:
		fail(http.StatusUnauthorized, "Client authentication failed due to unknown client.")
		return
	case err != nil || (ru.Scheme != "http" && ru.Scheme != "https") || ru.Host == "":
		fail(http.StatusBadRequest, "The redirect uri included is not valid.")
		return
	case s.redirectURI() != "" && redirect != s.redirectURI():
		fail(http.StatusBadRequest, "The redirect uri included is not valid.")
		return
	}
	if q.Get("response_type") != "code" {
		s.redirect(w, i, redirect, url.Values{"error": {"unsupported_response_type"}, "state": {q.Get("state")}})
		return
	}
	if s.opts.ConsentPage {
		id := randomToken("req_")
		s.mu.Lock()
		s.consents[id] = consent{redirectURI: redirect, state: q.Get("state")}
		s.mu.Unlock()
		s.setStatus(i, http.StatusOK)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head><title>Authorize PWBI Agent · Moka</title></head><body>
<h1>Authorize PWBI Edge Agent?</h1>
<p>PWBI Edge Agent asks to read your profile, library and sales reports (%s).</p>
<p><a id="approve" href="/oauth/authorize/decide?req=%s&amp;decision=approve">Authorize</a>
 · <a id="deny" href="/oauth/authorize/decide?req=%s&amp;decision=deny">Deny</a></p></body></html>`,
			html.EscapeString(q.Get("scope")), url.QueryEscape(id), url.QueryEscape(id))
		return
	}
	s.approve(w, i, redirect, q.Get("state"))
}

// decide is the consent page's answer.
func (s *Server) decide(w http.ResponseWriter, r *http.Request) {
	i := s.record(r, RequestLog{})
	q := r.URL.Query()
	s.mu.Lock()
	c, ok := s.consents[q.Get("req")]
	delete(s.consents, q.Get("req"))
	s.mu.Unlock()
	if !ok {
		s.setStatus(i, http.StatusBadRequest)
		http.Error(w, "unknown request", http.StatusBadRequest)
		return
	}
	if q.Get("decision") != "approve" {
		s.redirect(w, i, c.redirectURI, url.Values{
			"error": {"access_denied"}, "error_description": {"The resource owner or authorization server denied the request."},
			"state": {c.state},
		})
		return
	}
	s.approve(w, i, c.redirectURI, c.state)
}

func (s *Server) approve(w http.ResponseWriter, i int, redirect, state string) {
	code := randomToken("code_")
	s.mu.Lock()
	s.codes[code] = &authCode{redirectURI: redirect, expires: s.now().Add(codeTTL)}
	s.mu.Unlock()
	s.redirect(w, i, redirect, url.Values{"code": {code}, "state": {state}})
}

func (s *Server) redirect(w http.ResponseWriter, i int, to string, params url.Values) {
	u, _ := url.Parse(to) // validated by the caller
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	s.setStatus(i, http.StatusFound)
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusFound)
}

func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="Doorkeeper", error="`+code+`"`)
	}
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"error": code, "error_description": desc})
	_, _ = w.Write(b)
}

// token is POST /oauth/token (authorization_code and refresh_token).
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	gt := r.PostForm.Get("grant_type")
	i := s.record(r, RequestLog{Form: url.Values{"grant_type": {gt}}})
	status := http.StatusOK
	defer func() { s.setStatus(i, status) }()
	if r.Method != http.MethodPost {
		status = http.StatusMethodNotAllowed
		writeOAuthError(w, status, "invalid_request", "POST only")
		return
	}
	s.mu.Lock()
	if s.tokFailN > 0 {
		s.tokFailN--
		status = s.tokFailC
		s.mu.Unlock()
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`<html><body>Service Unavailable</body></html>`))
		return
	}
	s.mu.Unlock()

	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != s.opts.ClientID || secret != s.opts.ClientSecret {
		status = http.StatusUnauthorized
		writeOAuthError(w, status, "invalid_client", "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.")
		return
	}
	s.mu.Lock()
	now := s.now()
	var p *pair
	var oerr string
	switch gt {
	case "authorization_code":
		c, ok := s.codes[r.PostForm.Get("code")]
		switch {
		case !ok || c.used || now.After(c.expires):
			oerr = "invalid_grant"
		case c.redirectURI != r.PostForm.Get("redirect_uri"):
			oerr = "invalid_grant"
		default:
			c.used = true
			p = s.issueLocked(&grantT{}, nil, now)
		}
	case "refresh_token":
		old, ok := s.byRefr[r.PostForm.Get("refresh_token")]
		switch {
		case !ok || old.revoked || old.grant.revoked:
			oerr = "invalid_grant"
		default:
			p = s.issueLocked(old.grant, old, now)
			if s.opts.StrictRotation {
				old.revoked = true
			}
		}
	default:
		s.mu.Unlock()
		status = http.StatusBadRequest
		writeOAuthError(w, status, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server.")
		return
	}
	if oerr != "" {
		s.mu.Unlock()
		status = http.StatusBadRequest
		writeOAuthError(w, status, oerr, "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.")
		return
	}
	s.events = append(s.events, TokenEvent{At: now, Kind: "issued", Grant: gt, Pair: p.n, Access: p.access, Refresh: p.refresh})
	body, _ := json.Marshal(map[string]any{
		"access_token": p.access, "token_type": "Bearer", "expires_in": int64(s.opts.AccessTTL / time.Second),
		"refresh_token": p.refresh, "scope": "profile library report transaction", "created_at": now.Unix(),
	})
	hook := s.opts.OnTokenIssued
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	if hook != nil {
		hook(gt)
	}
}

func (s *Server) issueLocked(g *grantT, previous *pair, now time.Time) *pair {
	p := &pair{
		n: len(s.pairs) + 1, access: randomToken("mka_"), refresh: randomToken("mkr_"), grant: g,
		issuedAt: now, expiresAt: now.Add(s.opts.AccessTTL), previous: previous, byRefresh: previous != nil,
	}
	s.pairs = append(s.pairs, p)
	s.byAccess[p.access] = p
	s.byRefr[p.refresh] = p
	return p
}

// revokeEndpoint is POST /oauth/revoke (RFC 7009): the pair of the token is
// revoked; unknown tokens are no error.
func (s *Server) revokeEndpoint(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	i := s.record(r, RequestLog{Form: url.Values{}})
	s.mu.Lock()
	tok := r.PostForm.Get("token")
	if p, ok := s.byAccess[tok]; ok {
		p.revoked = true
	}
	if p, ok := s.byRefr[tok]; ok {
		p.revoked = true
	}
	s.mu.Unlock()
	s.setStatus(i, http.StatusOK)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte("{}"))
}

func metaError(code int, typ, msg string) []byte {
	b, _ := json.Marshal(map[string]any{"meta": map[string]any{"code": code, "error_type": typ, "error_message": msg}})
	return b
}

// api serves the Open API endpoints.
func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	tok, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !bearer {
		tok = r.URL.Query().Get("access_token") // legacy calls
	}
	i := s.record(r, RequestLog{Bearer: bearer, Token: tag(tok)})
	s.mu.Lock()
	delay := s.delay
	s.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		}
	}
	status, header, body, hold := s.answer(r, tok)
	if hold {
		select {
		case s.held <- struct{}{}:
		default:
		}
		s.mu.Lock()
		rel := s.release
		s.mu.Unlock()
		select {
		case <-rel:
		case <-r.Context().Done():
			s.setStatus(i, 0)
			return
		}
	}
	s.setStatus(i, status)
	for k, v := range header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// tag is a short, non-secret label of a token for the request log.
func tag(tok string) string {
	if len(tok) < 12 {
		return ""
	}
	return tok[:4] + "…" + tok[len(tok)-4:]
}

// answer decides an API response. hold is true when the request must wait
// for Release.
func (s *Server) answer(r *http.Request, tok string) (status int, header http.Header, body []byte, hold bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	header = http.Header{}
	if s.failN > 0 {
		s.failN--
		if s.failRA != "" {
			header.Set("Retry-After", s.failRA)
		}
		if s.failCode == http.StatusTooManyRequests {
			return s.failCode, header, nil, false // an empty body, like Spring's limiter
		}
		return s.failCode, header, metaError(s.failCode, "server_error", http.StatusText(s.failCode)), false
	}
	if r.Method != http.MethodGet {
		header.Set("Allow", http.MethodGet)
		return http.StatusMethodNotAllowed, header, metaError(405, "method_not_allowed", "method not allowed"), false
	}
	now := s.now()
	p, ok := s.byAccess[tok]
	unauthorized := func(desc string) (int, http.Header, []byte, bool) {
		header.Set("WWW-Authenticate", `Bearer realm="Doorkeeper", error="invalid_token", error_description="`+desc+`"`)
		b, _ := json.Marshal(map[string]string{"error": "invalid_token", "error_description": desc})
		return http.StatusUnauthorized, header, b, false
	}
	switch {
	case !ok:
		return unauthorized("The access token is invalid")
	case p.revoked || p.grant.revoked:
		return unauthorized("The access token was revoked")
	case p.expired || !now.Before(p.expiresAt):
		return unauthorized("The access token expired")
	}
	if !p.used {
		p.used = true
		s.events = append(s.events, TokenEvent{At: now, Kind: "used", Pair: p.n})
		if p.previous != nil {
			p.previous.revoked = true // Doorkeeper: refresh_token_revoked_on_use
		}
		hold = s.hold && p.byRefresh
	}
	if lim := s.opts.RequestsPerMinute; lim > 0 {
		cut := 0
		for cut < len(s.served) && !s.served[cut].After(now.Add(-time.Minute)) {
			cut++
		}
		s.served = s.served[cut:]
		if len(s.served) >= lim {
			wait := s.served[0].Add(time.Minute).Sub(now)
			header.Set("Retry-After", strconv.Itoa(max(int((wait+time.Second-1)/time.Second), 1)))
			return http.StatusTooManyRequests, header, nil, hold
		}
	}

	evalNow := s.evalTime()
	seg := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var err error
	switch {
	case r.URL.Path == "/v1/profile/self":
		body = s.profileBody()
	case len(seg) == 4 && seg[0] == "v1" && seg[1] == "businesses" && seg[3] == "outlets":
		if seg[2] != strconv.FormatInt(s.businessID, 10) {
			return http.StatusForbidden, header, metaError(403, "forbidden", "business not accessible"), hold
		}
		body = s.outletsBody()
	case len(seg) == 4 && seg[0] == "v1" && seg[1] == "outlets" && seg[3] == "items":
		oi := s.outletIndex(seg[2])
		if oi < 0 {
			return http.StatusNotFound, header, metaError(404, "not_found", "outlet not found"), hold
		}
		body, err = s.itemsBody(oi, r.URL.Query())
	case len(seg) == 5 && seg[0] == "v3" && seg[1] == "outlets" && seg[3] == "reports" && seg[4] == "get_latest_transactions":
		oi := s.outletIndex(seg[2])
		if oi < 0 {
			return http.StatusNotFound, header, metaError(404, "not_found", "outlet not found"), hold
		}
		body, err = s.paymentsBody(r, oi, tok, evalNow)
	default:
		return http.StatusNotFound, header, metaError(404, "not_found", "not found"), hold
	}
	if err != nil {
		return http.StatusBadRequest, header, metaError(400, "bad_request", err.Error()), hold
	}
	if s.opts.RequestsPerMinute > 0 {
		s.served = append(s.served, now)
	}
	if s.truncN > 0 {
		s.truncN--
		body = body[:len(body)/2]
	}
	return http.StatusOK, header, body, hold
}

func (s *Server) outletIndex(id string) int {
	for i, o := range s.outlets {
		if strconv.FormatInt(o.id, 10) == id {
			return i
		}
	}
	return -1
}

func (s *Server) profileBody() []byte {
	w := &jw{}
	w.open('{')
	w.key("data")
	w.open('{')
	w.int("id", 4400+s.businessID%100)
	w.str("email", "owner@kopi-nusantara.example")
	w.str("full_name", "Dewi Lestari")
	w.int("business_id", s.businessID)
	w.key("outlet_ids")
	w.open('[')
	for _, o := range s.outlets {
		if !w.first {
			w.b = append(w.b, ',')
		}
		w.first = false
		w.b = strconv.AppendInt(w.b, o.id, 10)
	}
	w.close(']')
	w.key("outlet_names")
	w.open('[')
	for _, o := range s.outlets {
		if !w.first {
			w.b = append(w.b, ',')
		}
		w.first = false
		w.b = appendJSONString(w.b, o.name)
	}
	w.close(']')
	w.close('}')
	w.close('}')
	return w.b
}

func (s *Server) outletsBody() []byte {
	w := &jw{}
	w.open('{')
	w.key("data")
	w.open('{')
	w.key("outlets")
	w.open('[')
	for i, o := range s.outlets {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.open('{')
		w.int("id", o.id)
		w.int("business_id", s.businessID)
		w.str("name", o.name)
		w.str("address", fmt.Sprintf("Jl. Contoh No. %d", 10+i))
		w.str("phone_number", "+62 21 555 01"+strconv.Itoa(10+i))
		w.str("city", []string{"Jakarta Selatan", "Jakarta Pusat", "Badung", "Jayapura"}[i%4])
		w.boolean("is_deleted", false)
		w.time("created_at", s.start.AddDate(-2, 0, 0).In(o.loc))
		w.close('}')
	}
	w.close(']')
	w.int("total_count", int64(len(s.outlets)))
	w.close('}')
	w.close('}')
	return w.b
}

func pageParams(q url.Values, def int) (page, per int, err error) {
	page, per = 1, def
	if v := q.Get("page"); v != "" {
		if page, err = strconv.Atoi(v); err != nil || page < 1 {
			return 0, 0, fmt.Errorf("invalid page %q", v)
		}
	}
	if v := q.Get("per_page"); v != "" {
		if per, err = strconv.Atoi(v); err != nil || per < 1 {
			return 0, 0, fmt.Errorf("invalid per_page %q", v)
		}
	}
	return page, min(per, MaxPerPage), nil
}

func (s *Server) itemsBody(oi int, q url.Values) ([]byte, error) {
	page, per, err := pageParams(q, 25)
	if err != nil {
		return nil, err
	}
	items := s.outlets[oi].items
	from := min((page-1)*per, len(items))
	to := min(from+per, len(items))
	w := &jw{}
	w.open('{')
	w.key("data")
	w.open('{')
	w.key("items")
	w.open('[')
	for j, m := range items[from:to] {
		if j > 0 {
			w.b = append(w.b, ',')
		}
		w.b = s.renderItem(w.b, oi, m)
	}
	w.close(']')
	w.int("total_count", int64(len(items)))
	w.int("page", int64(page))
	w.int("per_page", int64(per))
	w.close('}')
	w.close('}')
	return w.b, nil
}

// parseEpoch reads epoch seconds with an optional fraction, exactly.
func parseEpoch(v string) (time.Time, error) {
	secs, frac, _ := strings.Cut(v, ".")
	sec, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || len(frac) > 9 {
		return time.Time{}, fmt.Errorf("invalid epoch %q", v)
	}
	ns := int64(0)
	if frac != "" {
		n, err := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("invalid epoch %q", v)
		}
		ns = n
	}
	return time.Unix(sec, ns), nil
}

func fmtEpoch(t time.Time) string {
	return strconv.FormatInt(t.Unix(), 10) + "." + fmt.Sprintf("%06d", t.Nanosecond()/1000)
}

// paymentsBody answers get_latest_transactions: the payments (sales and
// refund rows) whose time_filter field lies in [since, until] (both
// inclusive), in the requested order, per_page at most; next_url in the
// style of the moment (see NextURLStyle), with the access token.
func (s *Server) paymentsBody(r *http.Request, oi int, tok string, now time.Time) ([]byte, error) {
	q := r.URL.Query()
	_, per, err := pageParams(q, DefaultPerPage)
	if err != nil {
		return nil, err
	}
	var since, until time.Time
	hasSince, hasUntil := q.Get("since") != "", q.Get("until") != ""
	if hasSince {
		if since, err = parseEpoch(q.Get("since")); err != nil {
			return nil, err
		}
	}
	if hasUntil {
		if until, err = parseEpoch(q.Get("until")); err != nil {
			return nil, err
		}
	}
	filter := q.Get("time_filter")
	if filter == "" {
		filter = "created_at"
	}
	if filter != "created_at" && filter != "updated_at" && filter != "synchronized_at" {
		return nil, fmt.Errorf("invalid time_filter %q", filter)
	}
	asc := strings.EqualFold(q.Get("reorder_type"), "ASC")
	if rt := q.Get("reorder_type"); rt != "" && !asc && !strings.EqualFold(rt, "DESC") {
		return nil, fmt.Errorf("invalid reorder_type %q", rt)
	}
	type row struct {
		p      *payment
		refund *refundRec // a refund row of p; nil for the sale
		id     string
		t      time.Time
	}
	var rows []row
	add := func(rw row) {
		rw.t = rw.t.Truncate(time.Microsecond)
		if (hasSince && rw.t.Before(since)) || (hasUntil && rw.t.After(until)) {
			return
		}
		rows = append(rows, rw)
	}
	for _, p := range s.payments {
		if p.outlet != oi || !visible(p, now) {
			continue
		}
		if len(p.events) == 0 && filter == "created_at" {
			add(row{p: p, id: p.id, t: p.createdAt}) // the common case, without computing the sale's state
			continue
		}
		st := s.state(p, s.money(p), now)
		t := p.createdAt
		switch filter {
		case "updated_at":
			t = st.updatedAt
		case "synchronized_at":
			t = st.syncedAt
		}
		add(row{p: p, id: p.id, t: t})
		for i := range st.refunds {
			rf := &st.refunds[i]
			if !rf.asRow {
				continue
			}
			t := rf.at // created and updated when the refund was made
			if filter == "synchronized_at" {
				t = rf.at.Add(1500 * time.Millisecond)
			}
			add(row{p: p, refund: rf, id: s.refundID(p, rf.n), t: t})
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if !rows[i].t.Equal(rows[j].t) {
			return rows[i].t.Before(rows[j].t) == asc
		}
		return (rows[i].id < rows[j].id) == asc
	})
	page := rows[:min(per, len(rows))]
	completed := len(rows) <= per
	if !completed && page[len(page)-1].t.Equal(rows[len(page)].t) {
		s.ties++
	}

	next := cloneQuery(q)
	next.Del("access_token")
	if len(page) > 0 {
		last := page[len(page)-1].t
		switch {
		case s.nextURL == NextURLUntil:
			next.Set("until", fmtEpoch(last.Add(-time.Microsecond)))
		case s.nextURL == NextURLRepeat:
		case asc:
			next.Set("since", fmtEpoch(last))
		default:
			next.Set("until", fmtEpoch(last))
		}
	}
	next.Set("access_token", tok) // as the real API does: never log a next_url
	host := r.Host
	if s.nextHost != "" {
		host = s.nextHost
	}
	nextURL := "http://" + host + r.URL.Path + "?" + next.Encode()

	b := make([]byte, 0, 64+2500*len(page))
	b = append(b, `{"data":{"payments":[`...)
	for j, rw := range page {
		if j > 0 {
			b = append(b, ',')
		}
		if rw.refund != nil {
			b = s.renderRefundRow(b, rw.p, *rw.refund)
		} else {
			b = s.render(b, rw.p, now)
		}
	}
	b = append(b, ']')
	if s.nextURL != NextURLMissing {
		b = append(b, `,"next_url":`...)
		b = appendJSONString(b, nextURL)
	}
	b = append(b, `,"completed":`...)
	b = strconv.AppendBool(b, completed)
	return append(b, "}}"...), nil
}

func cloneQuery(q url.Values) url.Values {
	out := make(url.Values, len(q)+1)
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}
