package apikey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"golang.org/x/time/rate"

	"github.com/pwbi/edge-agent/agent/moka/apikey/apikeyfake"
	"github.com/pwbi/edge-agent/agent/moka/internal/wire"
	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/internal/testutil"
)

const testKey = "sk-live-SECRET-0123456789"

var t0 = time.Date(2025, 12, 26, 14, 0, 0, 0, time.UTC) // 21:00 in Jakarta

// startFake starts a fake on a fake clock.
func startFake(t *testing.T, fc *clockwork.FakeClock, opts apikeyfake.Options) *apikeyfake.Server {
	t.Helper()
	opts.APIKey = testKey
	opts.Now = fc.Now
	if opts.Location == nil {
		opts.Location = mustLoc(t, "Asia/Jakarta")
	}
	s := apikeyfake.New(opts)
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// newTestClient returns a client of fake s on clock fc, unlimited unless
// opts sets a limiter, with OnWait wired to a driver.
func newTestClient(t *testing.T, s *apikeyfake.Server, fc *clockwork.FakeClock, opts ClientOptions) (*Client, *testutil.ClockDriver) {
	t.Helper()
	d := testutil.NewClockDriver(t, fc)
	opts.Clock = fc
	if opts.Limiter == nil {
		opts.Limiter = rate.NewLimiter(rate.Inf, 1)
	}
	if opts.OnWait == nil {
		opts.OnWait = d.OnWait
	}
	if opts.Rand == nil {
		opts.Rand = func() float64 { return 1 }
	}
	c := NewClient(ClientConfig{BaseURL: s.URL(), APIKey: testKey, BusinessID: s.BusinessID()}, opts)
	return c, d
}

// walkAll walks every transaction from fromDate and returns the raw items
// page by page.
func walkAll(t *testing.T, c *Client, q TxQuery) (pages []Page) {
	t.Helper()
	err := c.Transactions(context.Background(), q, func(p Page) error {
		pages = append(pages, p)
		return nil
	})
	if err != nil {
		t.Fatalf("Transactions: %v", err)
	}
	return pages
}

// mapLatest maps every item of pages, keeping the last version of each id
// (what the store's de-duplication does), and returns canonical JSON by id.
func mapLatest(t *testing.T, pages []Page, m MapContext) map[string]string {
	t.Helper()
	out := make(map[string]string)
	for _, p := range pages {
		ins, rejects, err := TransactionInputs(p.Items, m)
		if err != nil || len(rejects) > 0 {
			t.Fatalf("mapping fake data: %v %+v", err, rejects)
		}
		for _, in := range ins {
			out[in.Key] = string(in.Data)
		}
	}
	return out
}

func expectedByKey(t *testing.T, s *apikeyfake.Server) map[string]string {
	t.Helper()
	out := make(map[string]string)
	for _, tx := range s.Expected() {
		c, err := tx.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		out[tx.Key()] = string(c)
	}
	return out
}

func compareMaps(t *testing.T, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d transactions, want %d", len(got), len(want))
	}
	n := 0
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("missing %s", k)
		} else if g != w {
			t.Errorf("%s:\n got %s\nwant %s", k, g, w)
		} else {
			continue
		}
		if n++; n > 5 {
			t.Fatal("too many differences")
		}
	}
}

func TestOutlets(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := startFake(t, fc, apikeyfake.Options{Seed: 1, Outlets: 3})
	c, _ := newTestClient(t, s, fc, ClientOptions{})
	outlets, err := c.Outlets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(outlets) != 3 || outlets[0].ID != "outlet_1" || outlets[0].Name != "Kedai Kopi Nusantara — Kemang" {
		t.Errorf("outlets = %+v", outlets)
	}
	req := s.Requests()[0]
	if req.Path != "/v1/outlets" || req.Query.Get("business_id") != "biz_1" || req.Status != 200 {
		t.Errorf("request = %+v", req)
	}
}

func TestUnauthorized(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := startFake(t, fc, apikeyfake.Options{Seed: 1})
	var requests atomic.Int32
	opts := ClientOptions{OnRequest: func(string, int, time.Duration) { requests.Add(1) }}
	c, _ := newTestClient(t, s, fc, opts)

	check := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s: error = %v, want ErrUnauthorized", name, err)
		}
		if err != nil && strings.Contains(err.Error(), testKey) {
			t.Errorf("%s: error contains the API key: %v", name, err)
		}
	}
	s.SetUnauthorized(true)
	_, err := c.Outlets(context.Background())
	check("revoked key", err)
	err = c.Transactions(context.Background(), TxQuery{FromDate: "2025-12-20"}, func(Page) error {
		t.Error("fn called")
		return nil
	})
	check("revoked key, transactions", err)
	if requests.Load() != 2 {
		t.Errorf("%d requests, want 2 (no retry on 401)", requests.Load())
	}
	s.SetUnauthorized(false)

	wrong := NewClient(ClientConfig{BaseURL: s.URL(), APIKey: "wrong-key", BusinessID: "biz_1"}, ClientOptions{Clock: fc})
	_, err = wrong.Outlets(context.Background())
	check("wrong key", err)
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "invalid API key") {
		t.Errorf("message = %v", err)
	}
	other := NewClient(ClientConfig{BaseURL: s.URL(), APIKey: testKey, BusinessID: "biz_2"}, ClientOptions{Clock: fc})
	_, err = other.Outlets(context.Background())
	check("other business (403)", err)
}

func TestTransactionsWalkMatchesTruth(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := startFake(t, fc, apikeyfake.Options{Seed: 42, Outlets: 3, Days: 5, TxPerDay: 150})
	c, _ := newTestClient(t, s, fc, ClientOptions{})
	m := MapContext{BusinessID: s.BusinessID(), Currency: "IDR", Location: s.Location()}

	pages := walkAll(t, c, TxQuery{FromDate: "2025-12-01"})
	total, ids := 0, map[string]bool{}
	for i, p := range pages {
		if p.Index != i || p.Last != (i == len(pages)-1) || (p.NextCursor == "") != p.Last {
			t.Errorf("page %d: index %d last %v cursor %q", i, p.Index, p.Last, p.NextCursor)
		}
		for _, raw := range p.Items {
			var v struct{ ID string }
			_ = json.Unmarshal(raw, &v)
			ids[v.ID] = true
		}
		total += len(p.Items)
	}
	if len(ids) != len(s.Truth()) {
		t.Fatalf("walk saw %d ids, the fake has %d", len(ids), len(s.Truth()))
	}
	if total == len(ids) {
		t.Error("no pagination glitch (repeated transaction) was exercised")
	}
	compareMaps(t, mapLatest(t, pages, m), expectedByKey(t, s))

	for _, r := range s.Requests() {
		if r.Query.Get("limit") != "100" || r.Query.Get("from_date") != "2025-12-01" || r.Query.Get("business_id") != "biz_1" {
			t.Errorf("request query = %v", r.Query)
		}
	}
	if len(s.Requests()) != len(pages) {
		t.Errorf("%d requests for %d pages", len(s.Requests()), len(pages))
	}

	// An edit shows up on the next walk, as changed content under the
	// same key.
	truth := s.Truth()
	edited := truth[len(truth)/2].ID
	if err := s.Edit(edited); err != nil {
		t.Fatal(err)
	}
	again := mapLatest(t, walkAll(t, c, TxQuery{FromDate: "2025-12-01"}), m)
	want := expectedByKey(t, s)
	compareMaps(t, again, want)
	key := unified.Key("biz_1", truth[len(truth)/2].OutletID, edited)
	if mapLatest(t, pages, m)[key] == want[key] {
		t.Errorf("edit of %s not visible", edited)
	}
}

func TestTransactionsFromDateAndOutlet(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := startFake(t, fc, apikeyfake.Options{Seed: 3, Outlets: 2, Days: 4, TxPerDay: 30, NoPageRepeat: true})
	c, _ := newTestClient(t, s, fc, ClientOptions{})
	m := MapContext{BusinessID: s.BusinessID(), Location: s.Location()}
	pages := walkAll(t, c, TxQuery{FromDate: "2025-12-25", OutletID: "outlet_2"})
	got := mapLatest(t, pages, m)
	want := map[string]string{}
	for k, v := range expectedByKey(t, s) {
		var tx struct {
			OutletID     string `json:"outlet_id"`
			BusinessDate string `json:"business_date"`
		}
		_ = json.Unmarshal([]byte(v), &tx)
		if tx.OutletID == "outlet_2" && tx.BusinessDate >= "2025-12-25" {
			want[k] = v
		}
	}
	if len(want) == 0 {
		t.Fatal("no expected transactions")
	}
	compareMaps(t, got, want)
	if err := c.Transactions(context.Background(), TxQuery{FromDate: "26-12-2025"}, func(Page) error { return nil }); err == nil {
		t.Error("bad from date accepted")
	}
	if len(s.Requests()) != len(pages) {
		t.Error("bad from date reached the server")
	}
}

func TestLiveFakeKeepsSelling(t *testing.T) {
	start := time.Date(2025, 12, 26, 3, 0, 0, 0, time.UTC) // 10:00 in Jakarta
	fc := clockwork.NewFakeClockAt(start)
	s := startFake(t, fc, apikeyfake.Options{Seed: 9, Outlets: 2, Days: 2, TxPerDay: 200, Live: true})
	c, _ := newTestClient(t, s, fc, ClientOptions{})
	m := MapContext{BusinessID: s.BusinessID(), Location: s.Location()}
	first := mapLatest(t, walkAll(t, c, TxQuery{FromDate: "2025-12-26"}), m)
	compareMaps(t, first, filterDate(expectedByKey(t, s), "2025-12-26"))

	fc.Advance(16 * time.Hour) // 02:00 the next day: the evening's sales and a new day
	second := mapLatest(t, walkAll(t, c, TxQuery{FromDate: "2025-12-26"}), m)
	want := filterDate(expectedByKey(t, s), "2025-12-26")
	compareMaps(t, second, want)
	if len(second) <= len(first) {
		t.Errorf("no new sales: %d then %d", len(first), len(second))
	}
	changed := 0
	for k, v := range first {
		if second[k] != v {
			changed++
		}
	}
	if changed == 0 {
		t.Error("no automatic edit became visible")
	}
}

func filterDate(m map[string]string, from string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		var tx struct {
			BusinessDate string `json:"business_date"`
		}
		_ = json.Unmarshal([]byte(v), &tx)
		if tx.BusinessDate >= from {
			out[k] = v
		}
	}
	return out
}

func TestCursorLoopDetected(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := startFake(t, fc, apikeyfake.Options{Seed: 1, Outlets: 2, Days: 3, TxPerDay: 100})
	c, _ := newTestClient(t, s, fc, ClientOptions{})
	s.RepeatCursorNext(1)
	var seen []int
	err := c.Transactions(context.Background(), TxQuery{FromDate: "2025-12-01"}, func(p Page) error {
		seen = append(seen, p.Index)
		return nil
	})
	if !errors.Is(err, ErrCursorLoop) {
		t.Fatalf("error = %v, want ErrCursorLoop", err)
	}
	if !slices.Equal(seen, []int{0}) || len(s.Requests()) != 2 {
		t.Errorf("pages delivered %v, requests %d", seen, len(s.Requests()))
	}
}

func TestPageCap(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := startFake(t, fc, apikeyfake.Options{Seed: 1, Outlets: 2, Days: 3, TxPerDay: 100})
	c, _ := newTestClient(t, s, fc, ClientOptions{MaxPages: 2})
	err := c.Transactions(context.Background(), TxQuery{FromDate: "2025-12-01"}, func(Page) error { return nil })
	if !errors.Is(err, ErrTooManyPages) || len(s.Requests()) != 2 {
		t.Errorf("error = %v after %d requests", err, len(s.Requests()))
	}
}

func TestCallbackErrorStopsWalk(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := startFake(t, fc, apikeyfake.Options{Seed: 1, Outlets: 2, Days: 3, TxPerDay: 100})
	c, _ := newTestClient(t, s, fc, ClientOptions{})
	stop := errors.New("store full")
	err := c.Transactions(context.Background(), TxQuery{FromDate: "2025-12-01"}, func(Page) error { return stop })
	if !errors.Is(err, stop) || len(s.Requests()) != 1 {
		t.Errorf("error = %v after %d requests", err, len(s.Requests()))
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := startFake(t, fc, apikeyfake.Options{Seed: 1})
	c, d := newTestClient(t, s, fc, ClientOptions{})
	s.FailNext(1, http.StatusTooManyRequests, "7")
	if _, err := c.Outlets(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := d.Waits(); !slices.Equal(got, []testutil.Wait{{Reason: "retry_after", Dur: 7 * time.Second}}) {
		t.Errorf("waits = %v", got)
	}
	reqs := s.Requests()
	if len(reqs) != 2 || reqs[0].Status != 429 || reqs[1].Status != 200 || reqs[1].At.Sub(reqs[0].At) != 7*time.Second {
		t.Errorf("requests = %+v", reqs)
	}
}

func TestRetryAfterHTTPDate(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := startFake(t, fc, apikeyfake.Options{Seed: 1})
	c, d := newTestClient(t, s, fc, ClientOptions{})
	s.FailNext(2, http.StatusTooManyRequests, t0.Add(30*time.Second).Format(http.TimeFormat))
	if _, err := c.Outlets(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The first 429 says "at t0+30s": wait 30 s. The second arrives at that
	// very time with the same date: wait 0.
	if got := d.Waits(); !slices.Equal(got, []testutil.Wait{{Reason: "retry_after", Dur: 30 * time.Second}, {Reason: "retry_after", Dur: 0}}) {
		t.Errorf("waits = %v", got)
	}
	reqs := s.Requests()
	if len(reqs) != 3 || reqs[2].At.Sub(reqs[0].At) != 30*time.Second {
		t.Errorf("requests = %+v", reqs)
	}
}

func TestRetryAfterCapped(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := startFake(t, fc, apikeyfake.Options{Seed: 1})
	c, d := newTestClient(t, s, fc, ClientOptions{})
	s.FailNext(1, http.StatusTooManyRequests, "86400")
	if _, err := c.Outlets(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := d.Waits(); !slices.Equal(got, []testutil.Wait{{Reason: "retry_after", Dur: wire.MaxRetryAfter}}) {
		t.Errorf("waits = %v", got)
	}
}

func TestBackoffExponentialWithJitter(t *testing.T) {
	for _, tc := range []struct {
		name string
		rand float64
		want []time.Duration
	}{
		{"full", 1, []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second}},
		{"half", 0, []time.Duration{500 * time.Millisecond, 1 * time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := clockwork.NewFakeClockAt(t0)
			s := startFake(t, fc, apikeyfake.Options{Seed: 1})
			r := tc.rand
			c, d := newTestClient(t, s, fc, ClientOptions{
				MinBackoff: time.Second, MaxBackoff: 10 * time.Second, Rand: func() float64 { return r },
			})
			s.FailNext(5, http.StatusTooManyRequests, "") // 429 without Retry-After
			if _, err := c.Outlets(context.Background()); err != nil {
				t.Fatal(err)
			}
			var got []time.Duration
			for _, w := range d.Waits() {
				if w.Reason != "backoff" {
					t.Errorf("wait reason %q", w.Reason)
				}
				got = append(got, w.Dur)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("backoff = %v, want %v", got, tc.want)
			}
			reqs := s.Requests()
			var sum time.Duration
			for _, w := range tc.want {
				sum += w
			}
			if len(reqs) != 6 || reqs[5].At.Sub(reqs[0].At) != sum {
				t.Errorf("%d requests over %v, want 6 over %v", len(reqs), reqs[len(reqs)-1].At.Sub(reqs[0].At), sum)
			}
		})
	}
}

func TestTransientFailuresRetried(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := startFake(t, fc, apikeyfake.Options{Seed: 5, Outlets: 2, Days: 3, TxPerDay: 100, NoPageRepeat: true})
	c, _ := newTestClient(t, s, fc, ClientOptions{})
	m := MapContext{BusinessID: s.BusinessID(), Location: s.Location()}
	want := expectedByKey(t, s)

	for _, tc := range []struct {
		name  string
		fault func()
	}{
		{"500", func() { s.FailNext(2, 500, "") }},
		{"503", func() { s.FailNext(1, 503, "") }},
		{"502", func() { s.FailNext(1, 502, "") }},
		{"408", func() { s.FailNext(1, 408, "") }},
		{"truncated JSON", func() { s.TruncateNext(2) }},
		{"dropped connection", func() { s.DropNext(1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.ResetRequests()
			var pages []Page
			n := 0
			err := c.Transactions(context.Background(), TxQuery{FromDate: "2025-12-01"}, func(p Page) error {
				if n++; n == 2 {
					tc.fault() // fail in the middle of the walk
				}
				pages = append(pages, p)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			compareMaps(t, mapLatest(t, pages, m), want)
			if len(s.Requests()) <= len(pages) && tc.name != "dropped connection" {
				t.Errorf("%d requests for %d pages: the fault was not exercised", len(s.Requests()), len(pages))
			}
		})
	}
}

func TestGiveUpAfterMaxRetries(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := startFake(t, fc, apikeyfake.Options{Seed: 1})
	c, _ := newTestClient(t, s, fc, ClientOptions{MaxRetries: 2})
	s.FailNext(10, 503, "")
	_, err := c.Outlets(context.Background())
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != 503 || !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Errorf("error = %v", err)
	}
	if n := len(s.Requests()); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}

	s.ResetRequests()
	s.FailNext(10, 500, "")
	c, _ = newTestClient(t, s, fc, ClientOptions{MaxRetries: -1})
	if _, err := c.Outlets(context.Background()); err == nil || len(s.Requests()) != 1 {
		t.Errorf("MaxRetries -1: %v after %d requests", err, len(s.Requests()))
	}
	s.FailNext(0, 0, "")

	s.ResetRequests()
	s.TruncateNext(10)
	c, _ = newTestClient(t, s, fc, ClientOptions{MaxRetries: 1})
	if _, err := c.Outlets(context.Background()); !errors.Is(err, ErrBadResponse) || len(s.Requests()) != 2 {
		t.Errorf("truncated: %v after %d requests", err, len(s.Requests()))
	}
	s.TruncateNext(0)
}

func TestClientErrorsNotRetried(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := startFake(t, fc, apikeyfake.Options{Seed: 1})
	c, _ := newTestClient(t, s, fc, ClientOptions{})
	for _, status := range []int{400, 404, 405, 422} {
		s.ResetRequests()
		s.FailNext(1, status, "")
		_, err := c.Outlets(context.Background())
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != status || he.Path != "/v1/outlets" {
			t.Errorf("%d: error = %v", status, err)
		}
		if n := len(s.Requests()); n != 1 {
			t.Errorf("%d: %d requests", status, n)
		}
	}
}

func TestTimeoutRetried(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := startFake(t, fc, apikeyfake.Options{Seed: 1})
	s.SetDelay(time.Minute) // real time; the client gives up long before
	// The timeout is per attempt and real, so it also bounds the answered
	// attempt after the server recovers: 1 s, not less, so that a loaded
	// machine answers within it. Should one still time out, it is retried
	// too: every timeout must be followed by exactly one more attempt.
	var timeouts atomic.Int32
	c, _ := newTestClient(t, s, fc, ClientOptions{
		Timeout: time.Second,
		OnRequest: func(_ string, status int, _ time.Duration) {
			if status == 0 {
				timeouts.Add(1)
				s.SetDelay(0) // the server recovers after the first timeout
			}
		},
	})
	if _, err := c.Outlets(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, to := len(s.Requests()), int(timeouts.Load()); to < 1 || n != to+1 {
		t.Errorf("%d requests with %d timeouts, want one more request than timeouts (at least one)", n, to)
	}

	s.SetDelay(time.Minute)
	c, _ = newTestClient(t, s, fc, ClientOptions{Timeout: 50 * time.Millisecond, MaxRetries: -1})
	_, err := c.Outlets(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v, want a deadline", err)
	}
	s.SetDelay(0)
}

func TestContextCanceledDuringWait(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := startFake(t, fc, apikeyfake.Options{Seed: 1})
	ctx, cancel := context.WithCancel(context.Background())
	c := NewClient(ClientConfig{BaseURL: s.URL(), APIKey: testKey, BusinessID: "biz_1"}, ClientOptions{
		Clock: fc, OnWait: func(string, time.Duration) { cancel() },
	})
	s.FailNext(1, 429, "60")
	if _, err := c.Outlets(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v", err)
	}
}

func TestResponseTooLarge(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := startFake(t, fc, apikeyfake.Options{Seed: 1, Days: 2, TxPerDay: 100})
	c, _ := newTestClient(t, s, fc, ClientOptions{MaxBodyBytes: 4096})
	err := c.Transactions(context.Background(), TxQuery{FromDate: "2025-12-01"}, func(Page) error { return nil })
	if !errors.Is(err, ErrResponseTooLarge) || len(s.Requests()) != 1 {
		t.Errorf("error = %v after %d requests", err, len(s.Requests()))
	}
}

func TestAPIKeyNeverInErrors(t *testing.T) {
	// A server that echoes the Authorization header in its error bodies.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"bad request with %s"}`, r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	c := NewClient(ClientConfig{BaseURL: srv.URL, APIKey: testKey, BusinessID: "b"}, ClientOptions{})
	_, err := c.Outlets(context.Background())
	if err == nil || strings.Contains(err.Error(), testKey) || !strings.Contains(err.Error(), "<redacted>") {
		t.Errorf("error = %v", err)
	}
}

func TestListEnvelopeVariants(t *testing.T) {
	for _, tc := range []struct {
		body  string
		items int
		next  string
		bad   bool
	}{
		{`{"data":[{"id":"a"}],"next_cursor":"c1"}`, 1, "c1", false},
		{`{"data":[{"id":"a"}],"next_cursor":null}`, 1, "", false},
		{`{"data":[{"id":"a"}],"next_cursor":""}`, 1, "", false},
		{`{"data":[{"id":"a"}]}`, 1, "", false},
		{`{"data":[],"next_cursor":42}`, 0, "42", false},
		{`{"data":null}`, 0, "", false},
		{`{"error":"oops"}`, 0, "", true},
		{`{"data":{}}`, 0, "", true},
		{`{"data":[],"next_cursor":{}}`, 0, "", true},
		{`{"data":[{"id":"a"}`, 0, "", true},
		{`<html>`, 0, "", true},
		{``, 0, "", true},
	} {
		items, next, err := decodeListPage([]byte(tc.body))
		if tc.bad {
			if !errors.Is(err, ErrBadResponse) {
				t.Errorf("%s: error = %v, want ErrBadResponse", tc.body, err)
			}
			continue
		}
		if err != nil || len(items) != tc.items || next != tc.next || items == nil {
			t.Errorf("%s: %d items, next %q, err %v", tc.body, len(items), next, err)
		}
	}
}

func TestProducts(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := startFake(t, fc, apikeyfake.Options{Seed: 2, Outlets: 12})
	c, _ := newTestClient(t, s, fc, ClientOptions{})
	m := MapContext{BusinessID: s.BusinessID(), Location: s.Location()}
	var got []unified.Product
	pages := 0
	err := c.Products(context.Background(), ProductQuery{}, func(p Page) error {
		pages++
		for _, raw := range p.Items {
			pr, err := MapProduct(raw, m)
			if err != nil {
				return err
			}
			got = append(got, pr)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := s.Products()
	if len(got) != len(want) || pages < 2 {
		t.Fatalf("%d products in %d pages, want %d", len(got), pages, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.ExternalID != w.ID || g.OutletID != w.OutletID || g.Name != w.Name || g.Category != w.Category ||
			!g.Price.Equal(w.Price) {
			t.Errorf("product %d = %+v, want %+v", i, g, w)
		}
	}
}

// TestRateLimitSequential: a long walk at 60 requests per minute never puts
// more than 60 requests in any 60-second window of the server's clock, and
// uses the budget fully.
func TestRateLimitSequential(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := startFake(t, fc, apikeyfake.Options{Seed: 4, Outlets: 3, Days: 5, TxPerDay: 800, NoPageRepeat: true,
		RequestsPerMinute: 60})
	c, _ := newTestClient(t, s, fc, ClientOptions{Limiter: NewLimiter(60)})
	pages := walkAll(t, c, TxQuery{FromDate: "2025-12-01"})
	reqs := s.Requests()
	if len(pages) < 100 || len(reqs) != len(pages) {
		t.Fatalf("%d pages, %d requests", len(pages), len(reqs))
	}
	checkWindows(t, reqs, 60)
	if span, want := reqs[len(reqs)-1].At.Sub(reqs[0].At), time.Duration(len(reqs)-1)*time.Second; span != want {
		t.Errorf("%d requests took %v, want %v (full use of the budget)", len(reqs), span, want)
	}
	for _, r := range reqs {
		if r.Status != 200 {
			t.Errorf("status %d: the server's own limit was hit", r.Status)
		}
	}
}

// checkWindows fails if any half-open 60-second window holds more than
// limit requests.
func checkWindows(t *testing.T, reqs []apikeyfake.RequestLog, limit int) {
	t.Helper()
	at := make([]time.Time, len(reqs))
	for i, r := range reqs {
		at[i] = r.At
	}
	slices.SortFunc(at, time.Time.Compare)
	for i := 0; i+limit < len(at); i++ {
		if d := at[i+limit].Sub(at[i]); d < time.Minute {
			t.Fatalf("requests %d..%d within %v: over %d per minute", i, i+limit, d, limit)
		}
	}
}

// TestRateLimitSharedByOutlets: several goroutines (one per outlet) share
// one limiter; together they stay within the limit.
func TestRateLimitSharedByOutlets(t *testing.T) {
	fc := clockwork.NewFakeClockAt(t0)
	s := startFake(t, fc, apikeyfake.Options{Seed: 1, Outlets: 3, RequestsPerMinute: 30})
	lim := NewLimiter(30)
	const workers, calls = 3, 25
	var active atomic.Int32
	active.Store(workers)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		c := NewClient(ClientConfig{BaseURL: s.URL(), APIKey: testKey, BusinessID: "biz_1"},
			ClientOptions{Clock: fc, Limiter: lim})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer active.Add(-1)
			for range calls {
				if _, err := c.Outlets(context.Background()); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// Advance the clock only while every live worker is blocked on it, so
	// that no request is in flight while time moves: the server then sees
	// the times the limiter granted.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			reqs := s.Requests()
			if len(reqs) != workers*calls {
				t.Fatalf("%d requests", len(reqs))
			}
			checkWindows(t, reqs, 30)
			span := reqs[len(reqs)-1].At.Sub(reqs[0].At)
			t.Logf("%d requests from %d workers over %v of fake time", len(reqs), workers, span)
			if min := time.Duration(workers*calls-1) * 2 * time.Second; span < min || span > min+2*time.Second {
				t.Errorf("%d requests took %v, want about %v", len(reqs), span, min)
			}
			return
		default:
		}
		n := int(active.Load())
		if n == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := fc.BlockUntilContext(ctx, n)
		cancel()
		if err == nil {
			fc.Advance(100 * time.Millisecond)
		}
	}
}
