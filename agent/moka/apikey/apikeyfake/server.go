package apikeyfake

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/internal/fakehttp"
)

// Defaults of Options.
const (
	DefaultAPIKey     = "test-api-key"
	DefaultBusinessID = "biz_1"
	DefaultOutlets    = 2
	DefaultDays       = 7
	DefaultTxPerDay   = 20
	MaxLimit          = 100 // the largest page the API serves
)

// ErrUnknownTransaction is returned by Edit for an id the fake never sold
// (or that is not visible yet).
var ErrUnknownTransaction = errors.New("apikeyfake: unknown transaction")

// Options configure a fake. The zero value is usable.
type Options struct {
	APIKey     string // the only key accepted; "" means DefaultAPIKey
	BusinessID string // the only business; "" means DefaultBusinessID
	Seed       int64  // same seed, same options → same data
	Outlets    int    // number of outlets; 0 means DefaultOutlets
	Days       int    // history length in local days, today included; 0 means DefaultDays
	TxPerDay   int    // sales per outlet per full day; 0 means DefaultTxPerDay
	// Location is the business's zone (created_at is local time in it);
	// nil means Asia/Jakarta.
	Location *time.Location
	// Now is the fake's clock (request log times, Live, edits, Retry-After
	// dates); nil means time.Now.
	Now func() time.Time
	// Live keeps the outlets selling: sales (and automatic edits) become
	// visible as Now passes their time. When false, the data is frozen at
	// Now as of New; only Edit changes it.
	Live bool
	// AroundTheClock spreads each day's sales over all 24 hours instead
	// of the opening hours 07:00–22:00, so that a demo shows live sales
	// whatever the time of day (pwbi-devstack sets it).
	AroundTheClock bool

	// NoPageRepeat turns off the pagination glitch (a page that starts
	// with the last transaction of the previous page).
	NoPageRepeat bool
	// NoAutoEdits turns off the automatic edits of ~4 % of the sales.
	NoAutoEdits bool
	// RequestsPerMinute, when > 0, makes the fake enforce Moka's limit: a
	// request that would be the (N+1)-th answered one within 60 s of Now
	// gets 429 with Retry-After.
	RequestsPerMinute int
}

// RequestLog is one request the fake received.
type RequestLog struct {
	Method string
	Path   string
	Query  url.Values
	At     time.Time // Options.Now when the request arrived
	Status int       // the status answered; 0 when the connection was dropped
}

// Server is a fake Moka API (apikey dialect). All methods are safe for
// concurrent use.
type Server struct {
	opts  Options
	loc   *time.Location
	now   func() time.Time
	start time.Time // Now at New; the frozen time unless Live

	mu       sync.Mutex
	outlets  []outlet
	txns     []*txn // sorted by (createdAt, id)
	byID     map[string]*txn
	corrupt  map[string][]override // by transaction id
	frozenAt time.Time             // set by Freeze: the data's time from then on
	firstDay time.Time             // local midnight of the first generated day
	nextDay  time.Time             // local midnight of the first day not generated yet
	log      []RequestLog
	served   []time.Time // answered (2xx) request times, for RequestsPerMinute
	failN    int
	failCode int
	failRA   string
	truncN   int
	dropN    int
	repeatN  int
	delay    time.Duration
	unauth   bool
	broken   map[string]int // outlet id -> how its transaction pages fail (BreakOutlet)
	web      fakehttp.Server
}

// New builds a fake with deterministic data: the outlets, the menu, and
// Days days of sales up to Now. It does not listen; call Start or serve
// Handler yourself.
func New(opts Options) *Server {
	if opts.APIKey == "" {
		opts.APIKey = DefaultAPIKey
	}
	if opts.BusinessID == "" {
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
	loc := opts.Location
	if loc == nil {
		var err error
		if loc, err = time.LoadLocation("Asia/Jakarta"); err != nil {
			loc = time.FixedZone("WIB", 7*3600)
		}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Server{opts: opts, loc: loc, now: now, byID: make(map[string]*txn), corrupt: make(map[string][]override)}
	s.start = now().In(loc)
	s.genOutlets()
	today := midnight(s.start)
	s.firstDay = today.AddDate(0, 0, -(opts.Days - 1))
	s.nextDay = s.firstDay
	s.generateThrough(today)
	return s
}

func midnight(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
}

// generateThrough generates every day up to and including the local day of
// last. s.mu must be held (or s not shared yet).
func (s *Server) generateThrough(last time.Time) {
	last = midnight(last.In(s.loc))
	for !s.nextDay.After(last) {
		s.genDay(s.nextDay)
		s.nextDay = s.nextDay.AddDate(0, 0, 1)
	}
}

// evalTime is the time the data is shown at. s.mu must be held.
func (s *Server) evalTime() time.Time {
	if !s.opts.Live {
		return s.start
	}
	if !s.frozenAt.IsZero() {
		return s.frozenAt
	}
	t := s.now().In(s.loc)
	s.generateThrough(t)
	return t
}

// visible returns the number of sales visible at t (a prefix of s.txns).
func (s *Server) visible(t time.Time) int {
	return sort.Search(len(s.txns), func(i int) bool { return s.txns[i].createdAt.After(t) })
}

// Freeze stops a Live fake's time where it is: no sale or edit appears
// after it, and what is visible stays. A test freezes the fake before its
// final sync and comparison, so that a sale made in between (the fake
// keeps selling) is not expected of a sync that fetched before it. It does
// nothing to a fake that is not Live, frozen already.
func (s *Server) Freeze() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.Live && s.frozenAt.IsZero() {
		s.frozenAt = s.evalTime()
	}
}

// Start listens on a loopback port and serves. It panics if it cannot
// listen, like httptest.Server.Start.
func (s *Server) Start() {
	if err := s.web.Listen(fakehttp.Loopback, s.Handler(), nil); err != nil {
		panic("apikeyfake: " + err.Error())
	}
}

// URL returns the base URL ("http://127.0.0.1:port") after Start.
func (s *Server) URL() string { return s.web.URL() }

// Close stops the server started by Start, cutting open connections (a
// delayed request ends at once).
func (s *Server) Close() { s.web.Close() }

// APIKey returns the accepted API key.
func (s *Server) APIKey() string { return s.opts.APIKey }

// BusinessID returns the business id.
func (s *Server) BusinessID() string { return s.opts.BusinessID }

// Location returns the zone of created_at.
func (s *Server) Location() *time.Location { return s.loc }

// OutletIDs returns the outlet ids in API order.
func (s *Server) OutletIDs() []string {
	ids := make([]string, 0, len(s.outlets)) // outlets never change after New
	for _, o := range s.outlets {
		ids = append(ids, o.id)
	}
	return ids
}

// FailNext makes the next n requests fail with status (e.g. 429, 500, 503)
// and body {"error":"…"}; a non-empty retryAfter is sent as Retry-After
// (seconds or an HTTP date). It replaces any previous FailNext.
func (s *Server) FailNext(n, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failCode, s.failRA = n, status, retryAfter
}

// TruncateNext cuts the JSON body of the next n successful answers in half
// (the HTTP response itself is complete).
func (s *Server) TruncateNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.truncN = n
}

// DropNext closes the connection of the next n requests without an answer.
// Go's HTTP client may transparently resend such a GET on a fresh
// connection, so the client may or may not see the error.
func (s *Server) DropNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropN = n
}

// RepeatCursorNext makes the next n list answers to requests that carry a
// cursor hand that same cursor back as next_cursor: a pagination loop.
func (s *Server) RepeatCursorNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repeatN = n
}

// SetDelay delays every answer by d of real time (ended early when the
// client goes away). 0 turns it off.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// SetUnauthorized makes every request answer 401 {"error":"invalid api
// key"} (a revoked key) while on.
func (s *Server) SetUnauthorized(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unauth = on
}

// BreakOutlet makes every transactions request for outlet id fail until it
// is called again with status 0: with status 200 the answer is a page the
// client cannot read (its "data" is not an array, as after a change of
// Moka's API; the client retries those), with any other status that status
// and an error body (a 400 is not retried). Other outlets keep working.
func (s *Server) BreakOutlet(id string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken == nil {
		s.broken = map[string]int{}
	}
	if status == 0 {
		delete(s.broken, id)
		return
	}
	s.broken[id] = status
}

// Requests returns a copy of the request log, oldest first.
func (s *Server) Requests() []RequestLog {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RequestLog, len(s.log))
	for i, r := range s.log {
		r.Query = cloneValues(r.Query)
		out[i] = r
	}
	return out
}

// ResetRequests empties the request log.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = nil
}

// Edit changes a visible sale now, as a cashier editing a bill would: the
// first line's quantity goes up by one or a line is added (a custom-amount
// sale gains Rp 5,000); grand total and tax follow. Later fetches show the
// new content.
func (s *Server) Edit(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.byID[id]
	if !ok || t.createdAt.After(s.evalTime()) {
		return fmt.Errorf("%w: %q", ErrUnknownTransaction, id)
	}
	t.edits++
	return nil
}

// Corrupt makes the JSON of sale id carry value as field (a top-level key;
// nil value removes the key), e.g. Corrupt(id, "grand_total",
// json.RawMessage(`"12a"`)) or Corrupt(id, "created_at", nil): a record the
// agent must set aside, not drop. value must be valid JSON. Corrupted sales
// stay in Truth but leave Expected.
func (s *Server) Corrupt(id, field string, value json.RawMessage) error {
	if value != nil && !json.Valid(value) {
		return fmt.Errorf("apikeyfake: corrupt %s: value is not valid JSON", field)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[id]; !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTransaction, id)
	}
	s.corrupt[id] = append(s.corrupt[id], override{field, append(json.RawMessage(nil), value...)})
	return nil
}

// Truth returns every visible sale as Moka knows it now, sorted by
// (created_at, id). Each appears once, whatever the pagination glitches.
func (s *Server) Truth() []TxnTruth {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.evalTime()
	n := s.visible(now)
	out := make([]TxnTruth, 0, n)
	for _, t := range s.txns[:n] {
		out = append(out, s.truth(t, now))
	}
	return out
}

// Expected returns the unified transactions a correct agent derives from
// the visible, uncorrupted sales (business id from Options, currency IDR), in Truth
// order. It is computed from the generator's own state, not by parsing the
// JSON, so comparing it with the mapper's output checks the mapper.
func (s *Server) Expected() []unified.Transaction {
	truth := s.Truth()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]unified.Transaction, 0, len(truth))
	for _, tr := range truth {
		if len(s.corrupt[tr.ID]) == 0 {
			out = append(out, s.expected(tr))
		}
	}
	return out
}

// Transactions returns the JSON of every visible sale of outletID ("" for
// all outlets) exactly as the API currently serves it, in Truth order.
func (s *Server) Transactions(outletID string) []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.evalTime()
	var out []json.RawMessage
	for _, t := range s.txns[:s.visible(now)] {
		if outletID == "" || s.outlets[t.outlet].id == outletID {
			out = append(out, s.render(t, now))
		}
	}
	return out
}

// Handler returns the API: GET /v1/outlets, /v1/transactions, /v1/products.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	entry := RequestLog{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), At: s.now()}
	idx := len(s.log)
	s.log = append(s.log, entry)
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

	s.mu.Lock()
	status, header, body, drop := s.answer(r)
	s.log[idx].Status = status
	s.mu.Unlock()

	if drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		status, body = http.StatusBadGateway, []byte(`{"error":"dropped"}`)
	}
	for k, v := range header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func errBody(msg string) []byte {
	b, _ := json.Marshal(map[string]string{"error": msg})
	return b
}

// answer decides the response. s.mu is held.
func (s *Server) answer(r *http.Request) (status int, header http.Header, body []byte, drop bool) {
	header = http.Header{}
	if s.dropN > 0 {
		s.dropN--
		return 0, header, nil, true
	}
	if s.failN > 0 {
		s.failN--
		if s.failRA != "" {
			header.Set("Retry-After", s.failRA)
		}
		return s.failCode, header, errBody(http.StatusText(s.failCode)), false
	}
	if r.Method != http.MethodGet {
		header.Set("Allow", http.MethodGet)
		return http.StatusMethodNotAllowed, header, errBody("method not allowed"), false
	}
	if s.unauth || r.Header.Get("Authorization") != "Bearer "+s.opts.APIKey {
		return http.StatusUnauthorized, header, errBody("invalid api key"), false
	}
	q := r.URL.Query()
	if q.Get("business_id") != s.opts.BusinessID {
		return http.StatusForbidden, header, errBody("business not accessible with this api key"), false
	}
	now := s.now()
	if lim := s.opts.RequestsPerMinute; lim > 0 {
		cut := 0
		for cut < len(s.served) && !s.served[cut].After(now.Add(-time.Minute)) {
			cut++
		}
		s.served = s.served[cut:]
		if len(s.served) >= lim {
			wait := s.served[0].Add(time.Minute).Sub(now)
			secs := int((wait + time.Second - 1) / time.Second)
			header.Set("Retry-After", strconv.Itoa(max(secs, 1)))
			return http.StatusTooManyRequests, header, errBody("rate limit exceeded"), false
		}
	}

	var err error
	switch r.URL.Path {
	case "/v1/outlets":
		body, err = s.outletsBody()
	case "/v1/transactions":
		switch code := s.broken[q.Get("outlet_id")]; code {
		case 0:
		case http.StatusOK:
			return code, header, []byte(`{"data":{"error":"unexpected"},"next_cursor":null}`), false
		default:
			return code, header, errBody("outlet cannot be read: " + q.Get("outlet_id")), false
		}
		body, err = s.transactionsBody(q)
	case "/v1/products":
		body, err = s.productsBody(q)
	default:
		return http.StatusNotFound, header, errBody("not found"), false
	}
	if err != nil {
		return http.StatusBadRequest, header, errBody(err.Error()), false
	}
	if s.opts.RequestsPerMinute > 0 {
		s.served = append(s.served, now)
	}
	if s.truncN > 0 {
		s.truncN--
		body = body[:len(body)/2]
	}
	return http.StatusOK, header, body, false
}

func (s *Server) outletsBody() ([]byte, error) {
	type o struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		Address string `json:"address"`
	}
	var env struct {
		Outlets []o `json:"outlets"`
	}
	env.Outlets = []o{}
	for i, ol := range s.outlets {
		env.Outlets = append(env.Outlets, o{ID: ol.id, Name: ol.name, Address: fmt.Sprintf("Jl. Contoh No. %d, Jakarta", 10+i)})
	}
	return json.Marshal(env)
}

func parseLimit(q url.Values) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return MaxLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid limit %q", v)
	}
	return min(n, MaxLimit), nil
}

// txCursor is the position after which the next page starts, bound to the
// query it was issued for.
type txCursor struct {
	At     int64  `json:"t"`
	ID     string `json:"i"`
	From   string `json:"f"`
	Outlet string `json:"o"`
}

func encodeCursor(prefix string, v any) string {
	b, _ := json.Marshal(v)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(prefix, s string, v any) error {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return errors.New("invalid cursor")
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || json.Unmarshal(b, v) != nil {
		return errors.New("invalid cursor")
	}
	return nil
}

func (s *Server) transactionsBody(q url.Values) ([]byte, error) {
	from := q.Get("from_date")
	fromDay, err := time.ParseInLocation("2006-01-02", from, s.loc)
	if err != nil {
		return nil, fmt.Errorf("invalid or missing from_date %q", from)
	}
	limit, err := parseLimit(q)
	if err != nil {
		return nil, err
	}
	outletID := q.Get("outlet_id")
	now := s.evalTime()
	vis := s.txns[:s.visible(now)]
	match := func(t *txn) bool { return outletID == "" || s.outlets[t.outlet].id == outletID }

	// Start: the first sale at or after local midnight of from_date, or
	// the first after the cursor's position.
	start := sort.Search(len(vis), func(i int) bool { return !vis[i].createdAt.Before(fromDay) })
	var page []*txn
	cursor := q.Get("cursor")
	if cursor != "" {
		var c txCursor
		if err := decodeCursor("tx1.", cursor, &c); err != nil || c.From != from || c.Outlet != outletID {
			return nil, errors.New("invalid cursor")
		}
		key := &txn{createdAt: time.Unix(0, c.At), id: c.ID}
		start = sort.Search(len(vis), func(i int) bool { return txnLess(key, vis[i]) })
		// The glitch: some pages begin with the previous page's last sale.
		if !s.opts.NoPageRepeat && limit >= 2 && s.rng("glitch", cursor).IntN(5) == 0 {
			if prev, ok := s.byID[c.ID]; ok && !prev.createdAt.After(now) && match(prev) {
				page = append(page, prev)
			}
		}
	}
	i := start
	for ; i < len(vis) && len(page) < limit; i++ {
		if match(vis[i]) {
			page = append(page, vis[i])
		}
	}
	more := false
	for ; i < len(vis); i++ {
		if match(vis[i]) {
			more = true
			break
		}
	}
	next := ""
	if more && len(page) > 0 {
		last := page[len(page)-1]
		next = encodeCursor("tx1.", txCursor{At: last.createdAt.UnixNano(), ID: last.id, From: from, Outlet: outletID})
	}
	if cursor != "" && s.repeatN > 0 {
		s.repeatN--
		next = cursor
	}

	b := make([]byte, 0, 64+600*len(page))
	b = append(b, `{"data":[`...)
	for j, t := range page {
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, s.render(t, now)...)
	}
	b = append(b, ']')
	b = s.appendNext(b, next, cursor+from+outletID)
	return append(b, '}'), nil
}

// appendNext writes next_cursor; the end of a walk is shown in the three
// ways real APIs use (absent, null, ""), chosen deterministically.
func (s *Server) appendNext(b []byte, next, salt string) []byte {
	if next != "" {
		b = append(b, `,"next_cursor":`...)
		return appendJSONString(b, next)
	}
	switch s.rng("end", salt).IntN(3) {
	case 0:
		return b
	case 1:
		return append(b, `,"next_cursor":null`...)
	default:
		return append(b, `,"next_cursor":""`...)
	}
}

type productCursor struct {
	Off int `json:"n"`
}

func (s *Server) productsBody(q url.Values) ([]byte, error) {
	limit, err := parseLimit(q)
	if err != nil {
		return nil, err
	}
	type prod struct {
		oi, m int
	}
	var all []prod
	for oi, o := range s.outlets {
		for _, m := range o.menu {
			all = append(all, prod{oi, m})
		}
	}
	off := 0
	cursor := q.Get("cursor")
	if cursor != "" {
		var c productCursor
		if err := decodeCursor("pr1.", cursor, &c); err != nil || c.Off < 0 || c.Off > len(all) {
			return nil, errors.New("invalid cursor")
		}
		off = c.Off
	}
	end := min(off+limit, len(all))
	next := ""
	if end < len(all) {
		next = encodeCursor("pr1.", productCursor{Off: end})
	}
	if cursor != "" && s.repeatN > 0 {
		s.repeatN--
		next = cursor
	}
	b := []byte(`{"data":[`)
	for j, p := range all[off:end] {
		if j > 0 {
			b = append(b, ',')
		}
		b = s.appendProduct(b, p.oi, p.m)
	}
	b = append(b, ']')
	b = s.appendNext(b, next, "products"+cursor)
	return append(b, '}'), nil
}

// productID returns the id of menu item m at outlet index oi.
func productID(oi, m int) string { return fmt.Sprintf("PRD-%d-%02d", oi+1, m+1) }

func (s *Server) appendProduct(b []byte, oi, m int) []byte {
	r := s.rng("product", strconv.Itoa(oi), strconv.Itoa(m))
	it := menu[m]
	b = append(b, `{"id":`...)
	b = appendJSONString(b, productID(oi, m))
	b = append(b, `,"name":`...)
	b = appendJSONString(b, it.name)
	b = append(b, `,"price":`...)
	st := numString
	if r.IntN(4) == 0 {
		st = numJSON
	}
	b = appendNum(b, decimal.RequireFromString(it.price), st)
	b = append(b, `,"category":`...)
	b = appendJSONString(b, it.category)
	b = append(b, `,"outlet_id":`...)
	b = appendJSONString(b, s.outlets[oi].id)
	if r.IntN(3) > 0 {
		b = append(b, `,"sku":`...)
		b = appendJSONString(b, fmt.Sprintf("%.3s-%03d", strings.ToUpper(it.category), m+1))
	}
	return append(b, '}')
}

// ProductTruth is a catalogue item as the fake serves it.
type ProductTruth struct {
	ID, OutletID, Name, Category string
	Price                        unified.Decimal
}

// Products returns the whole catalogue in API order.
func (s *Server) Products() []ProductTruth {
	var out []ProductTruth
	for oi, o := range s.outlets {
		for _, m := range o.menu {
			out = append(out, ProductTruth{
				ID: productID(oi, m), OutletID: o.id, Name: menu[m].name,
				Category: menu[m].category, Price: unified.NewDecimal(decimal.RequireFromString(menu[m].price)),
			})
		}
	}
	return out
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
