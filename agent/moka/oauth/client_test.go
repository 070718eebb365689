package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/moka/oauth/oauthfake"
)

func mapCtx(biz string) MapContext {
	return MapContext{BusinessID: biz, Currency: "IDR", Location: jakarta}
}

// scriptServer answers fixed bodies by path (query ignored), recording
// the requests.
type scriptServer struct {
	srv    *httptest.Server
	mu     sync.Mutex
	routes map[string]struct {
		status int
		body   string
	}
	seen []*http.Request
}

func newScriptServer(t *testing.T) *scriptServer {
	s := &scriptServer{routes: map[string]struct {
		status int
		body   string
	}{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.seen = append(s.seen, r)
		rt, ok := s.routes[r.URL.Path]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(rt.status)
		_, _ = w.Write([]byte(rt.body))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *scriptServer) route(path string, status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes[path] = struct {
		status int
		body   string
	}{status, body}
}

// client returns a client of the script server using e's (authorized)
// tokens.
func (s *scriptServer) client(t *testing.T, e *env) *Client {
	t.Helper()
	e.authorize()
	c, err := NewClient(ClientConfig{BaseURL: s.srv.URL}, e.tokens, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPaymentsWalk: a walk of the fake (default next_url) delivers every
// sale once, one request per page, each asking from the newest row of the
// previous page, the token always in the header.
func TestPaymentsWalk(t *testing.T) {
	e := newEnv(t, oauthfake.Options{Outlets: 1, Days: 5, TxPerDay: 40})
	e.authorize()
	ctx := context.Background()
	o := e.fake.OutletIDs()[0]
	var pages []PaymentPage
	ids := map[string]bool{}
	err := e.client.Payments(ctx, PaymentQuery{OutletID: o, Since: t0.AddDate(0, 0, -10), Until: t0, PerPage: 15}, func(p PaymentPage) error {
		pages = append(pages, p)
		for _, raw := range p.Payments {
			tx, err := MapPayment(raw, mapCtx("b"))
			if err != nil {
				return err
			}
			ids[tx.ExternalID] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := e.fake.Truth()
	if len(ids) != len(want) {
		t.Fatalf("%d payments, want %d", len(ids), len(want))
	}
	if len(pages) < 10 || !pages[len(pages)-1].Last {
		t.Fatalf("%d pages", len(pages))
	}
	reqs := e.fake.Requests()
	var api []oauthfake.RequestLog
	for _, r := range reqs {
		if strings.Contains(r.Path, "get_latest_transactions") {
			api = append(api, r)
		}
	}
	if len(api) != len(pages) {
		t.Fatalf("%d requests for %d pages", len(api), len(pages))
	}
	first := api[0].Query
	if first.Get("reorder_type") != "ASC" || first.Get("per_page") != "15" || first.Get("since") != epoch(t0.AddDate(0, 0, -10)) ||
		first.Get("until") != epoch(t0) || first.Has("time_filter") {
		t.Fatalf("first query %v", first)
	}
	for i, r := range api {
		if r.Query.Has("access_token") || !r.Bearer {
			t.Fatalf("request %d sent the token in the query or not as a header", i)
		}
		if i > 0 && r.Query.Get("since") <= api[i-1].Query.Get("since") {
			t.Fatalf("request %d did not move on: since %s after %s", i, r.Query.Get("since"), api[i-1].Query.Get("since"))
		}
	}
}

func TestNextURLElsewhereStaysOnTheBaseURL(t *testing.T) {
	e := newEnv(t, oauthfake.Options{Outlets: 1, Days: 3, TxPerDay: 40})
	e.authorize()
	e.fake.SetNextURLHost("evil.example:9") // and plain http
	n := 0
	err := e.client.Payments(context.Background(), PaymentQuery{OutletID: e.fake.OutletIDs()[0], Since: t0.AddDate(0, 0, -5), PerPage: 20},
		func(p PaymentPage) error { n += len(p.Payments); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if n < len(e.fake.Truth()) {
		t.Fatalf("%d payments", n)
	}
}

// TestRepeatingPagesAndBadEnvelopes: a server that answers the same page
// whatever it is asked (since ignored) cannot loop the walk: rows from
// before since stop it with ErrNoProgress, without a word of the
// next_url; the same page of undated rows ends it once nothing is new.
func TestRepeatingPagesAndBadEnvelopes(t *testing.T) {
	srv := newScriptServer(t)
	e := newEnv(t, oauthfake.Options{})
	c := srv.client(t, e)
	ctx := context.Background()
	path := "/v3/outlets/1/reports/get_latest_transactions"
	next := `"next_url":"` + srv.srv.URL + path + `?since=5&access_token=zzz","completed":false}}`
	srv.route(path, 200, `{"data":{"payments":[{"id":1,"created_at":"2026-03-10T10:00:00+07:00"},`+
		`{"id":2,"created_at":"2026-03-10T11:00:00+07:00"}],`+next)
	pages := 0
	err := c.Payments(ctx, PaymentQuery{OutletID: "1", Since: t0.Add(-24 * time.Hour), PerPage: 2}, func(PaymentPage) error { pages++; return nil })
	if !errors.Is(err, ErrNoProgress) || pages != 1 {
		t.Fatalf("repeating page: %v (%d pages)", err, pages)
	}
	if strings.Contains(err.Error(), "zzz") || strings.Contains(err.Error(), "since=") {
		t.Fatalf("error shows the next_url: %v", err)
	}
	srv.route(path, 200, `{"data":{"payments":[{"id":1}],`+next)
	pages, rows := 0, 0
	err = c.Payments(ctx, PaymentQuery{OutletID: "1", Since: time.Unix(5, 0)}, func(p PaymentPage) error {
		pages++
		rows += len(p.Payments)
		return nil
	})
	if err != nil || pages != 2 || rows != 1 {
		t.Fatalf("undated page: %v (%d pages, %d rows)", err, pages, rows)
	}

	for name, body := range map[string]string{
		"no data":          `{"payments":[]}`,
		"payments object":  `{"data":{"payments":{}}}`,
		"truncated":        `{"data":{"payments":[{"id":1}`,
		"completed string": `{"data":{"payments":[],"completed":"yes"}}`,
		"html":             `<html>502</html>`,
	} {
		t.Run(name, func(t *testing.T) {
			srv.route(path, 200, body)
			c.p = NewPacer(ClientOptions{Clock: e.fc, OnWait: e.drv.OnWait, MaxRetries: 1, HTTP: e.hc, Rand: func() float64 { return 1 }}, 0)
			err := c.Payments(ctx, PaymentQuery{OutletID: "1", Since: t0}, func(PaymentPage) error { return nil })
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("%v", err)
			}
		})
	}
	// null payments and a missing next_url end the walk quietly.
	srv.route(path, 200, `{"data":{"payments":null,"completed":true}}`)
	if err := c.Payments(ctx, PaymentQuery{OutletID: "1", Since: t0}, func(p PaymentPage) error {
		if !p.Last || len(p.Payments) != 0 {
			t.Errorf("page %+v", p)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestEnvelopeVariants(t *testing.T) {
	srv := newScriptServer(t)
	e := newEnv(t, oauthfake.Options{})
	c := srv.client(t, e)
	ctx := context.Background()
	for _, body := range []string{
		`{"data":{"id":9,"business_id":77,"outlet_ids":[1,2]}}`,
		`{"id":9,"business_id":"77","outlet_ids":["1","2"],"email":"a@b.c"}`,
	} {
		srv.route("/v1/profile/self", 200, body)
		p, err := c.Profile(ctx)
		if err != nil || p.BusinessID != "77" || len(p.OutletIDs) != 2 {
			t.Fatalf("profile %s: %+v %v", body, p, err)
		}
	}
	srv.route("/v1/profile/self", 200, `{"data":{"id":9}}`)
	c.p = NewPacer(ClientOptions{Clock: e.fc, OnWait: e.drv.OnWait, MaxRetries: -1, HTTP: e.hc}, 0)
	if _, err := c.Profile(ctx); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("profile without business: %v", err)
	}
	for _, body := range []string{
		`{"data":{"outlets":[{"id":1,"name":"A"},{"id":2,"name":"B","is_deleted":true}],"total_count":2}}`,
		`{"outlets":[{"id":"1","name":"A"}],"total_count":1}`,
		`{"data":[{"id":1,"name":"A"}]}`,
	} {
		srv.route("/v1/businesses/77/outlets", 200, body)
		o, err := c.Outlets(ctx, "77")
		if err != nil || len(o) != 1 || o[0] != (Outlet{ID: "1", Name: "A"}) {
			t.Fatalf("outlets %s: %+v %v", body, o, err)
		}
	}
	// Items: a short page ends the walk when total_count is absent.
	srv.route("/v1/outlets/1/items", 200, `{"data":[{"id":1,"name":"Kopi","item_variants":[{"id":11,"price":12000}]}]}`)
	pages := 0
	if err := c.Items(ctx, "1", func(p ItemPage) error { pages++; return nil }); err != nil || pages != 1 {
		t.Fatalf("items: %d pages, %v", pages, err)
	}
}

func TestRetriesAndRateLimits(t *testing.T) {
	e := newEnv(t, oauthfake.Options{Outlets: 1, Days: 2, TxPerDay: 10})
	e.authorize()
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		fault  func()
		reason string
		wait   time.Duration
	}{
		{"429 with Retry-After", func() { e.fake.FailNext(1, 429, "7") }, "retry_after", 7 * time.Second},
		{"429 without Retry-After", func() { e.fake.FailNext(1, 429, "") }, "backoff", time.Second},
		{"503", func() { e.fake.FailNext(1, 503, "") }, "backoff", time.Second},
		{"truncated JSON", func() { e.fake.TruncateNext(1) }, "backoff", time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.drv.Waits())
			tc.fault()
			if _, err := e.client.Outlets(ctx, e.fake.BusinessID()); err != nil {
				t.Fatal(err)
			}
			got := e.drv.Waits()[before:]
			if len(got) != 1 || got[0].Reason != tc.reason || got[0].Dur != tc.wait {
				t.Fatalf("waits %v", got)
			}
		})
	}
	// 404 is final; 403 stops with an AuthError.
	_, err := e.client.Outlets(ctx, "999")
	var ae *AuthError
	if !errors.As(err, &ae) || !errors.Is(err, ErrForbidden) {
		t.Fatalf("other business: %v", err)
	}
	err = e.client.Items(ctx, "404", func(ItemPage) error { return nil })
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != 404 {
		t.Fatalf("unknown outlet: %v", err)
	}
}

func TestExpiredAccessTokenRefreshedOnce(t *testing.T) {
	e := newEnv(t, oauthfake.Options{Outlets: 1, Days: 2, TxPerDay: 10})
	e.authorize()
	e.fake.ExpireAccessTokens()
	if _, err := e.client.Outlets(context.Background(), e.fake.BusinessID()); err != nil {
		t.Fatal(err)
	}
	if n := tokenRequests(e.fake); n != 2 {
		t.Fatalf("%d token requests", n)
	}
	// A 401 with the fresh token too means Moka refuses the grant itself.
	srv := newScriptServer(t)
	srv.route("/v1/businesses/1/outlets", 401, `{"error":"invalid_token"}`)
	c, _ := NewClient(ClientConfig{BaseURL: srv.srv.URL}, e.tokens, e.opts)
	_, err := c.Outlets(context.Background(), "1")
	if !errors.Is(err, ErrTokenRejected) || len(srv.seen) != 2 {
		t.Fatalf("%v after %d requests", err, len(srv.seen))
	}
	if st := e.tokens.State(); !st.NeedsAuthorization {
		t.Fatalf("state %+v", st)
	}
}

func TestEpoch(t *testing.T) {
	for tm, want := range map[time.Time]string{
		time.Unix(1517060430, 505206000): "1517060430.505206",
		time.Unix(1517060430, 0):         "1517060430",
		time.Unix(1517060430, 999):       "1517060430",
		time.Unix(1517060430, 1000):      "1517060430.000001",
		{}:                               "0",
	} {
		if got := epoch(tm); got != want {
			t.Errorf("epoch(%v) = %s, want %s", tm, got, want)
		}
	}
}
