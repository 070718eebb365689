package jurnalfake

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestMonthlyQuota(t *testing.T) {
	e := newEnv(t, Options{})
	e.s.SetMonthlyQuota(100, 2)
	for want := 1; want >= 0; want-- {
		a := e.get("products").want(t, http.StatusOK)
		if a.header.Get("X-RateLimit-Limit-Month") != "100" || a.header.Get("X-RateLimit-Remaining-Month") != itoa(want) {
			t.Errorf("quota headers %v", a.header)
		}
	}
	a := e.post("sales_invoices", invoice("moka-1-p1")).want(t, http.StatusTooManyRequests)
	if a.body["message"] != MsgRateLimited || a.header.Get("X-RateLimit-Remaining-Month") != "0" {
		t.Errorf("429 %s %v", a.raw, a.header)
	}
	// 2026-09-16 07:30 UTC to 2026-10-01 00:00 UTC.
	if got, want := a.header.Get("Retry-After"), itoa(int((14*24+16)*3600+30*60)); got != want {
		t.Errorf("Retry-After %s, want %s (the month's end)", got, want)
	}
	if len(e.s.Invoices()) != 0 || e.s.QuotaRemaining() != 0 {
		t.Error("a request over the quota took effect")
	}
	e.clock.Advance(15*24*time.Hour + 17*time.Hour)
	e.post("sales_invoices", invoice("moka-1-p1")).want(t, http.StatusCreated)
	if got := e.s.QuotaRemaining(); got != 99 {
		t.Errorf("quota after the month turned: %d, want 99", got)
	}
}

func TestRequestsPerMinute(t *testing.T) {
	e := newEnv(t, Options{RequestsPerMinute: 3})
	for i := range 3 {
		a := e.get("products").want(t, http.StatusOK)
		if got := a.header.Get("X-RateLimit-Remaining-Minute"); got != itoa(2-i) {
			t.Errorf("request %d: remaining %s", i, got)
		}
	}
	e.clock.Advance(20 * time.Second)
	a := e.get("products").want(t, http.StatusTooManyRequests)
	if a.body["message"] != MsgRateLimited || a.header.Get("Retry-After") != "40" {
		t.Errorf("429 %s Retry-After %q", a.raw, a.header.Get("Retry-After"))
	}
	e.get("products").want(t, http.StatusTooManyRequests)
	e.clock.Advance(40 * time.Second) // 07:31:00, a new window
	e.get("products").want(t, http.StatusOK)

	hist := e.s.PerMinute()
	if len(hist) != 2 || hist[0].Requests != 5 || hist[1].Requests != 1 || !hist[0].Minute.Equal(t0) {
		t.Errorf("histogram %+v (every request received counts)", hist)
	}
	if got := e.s.MaxInAnyMinute(); got != 5 { // 07:31:00 is 60 s after 07:30:00: another minute
		t.Errorf("MaxInAnyMinute %d, want 5", got)
	}
	if c := e.s.Counts()["GET /products"]; c != 6 {
		t.Errorf("Counts %v", e.s.Counts())
	}
}

func TestMaxInAnyMinuteSlides(t *testing.T) {
	e := newEnv(t, Options{})
	e.clock.Advance(50 * time.Second) // 07:30:50
	e.get("products")
	e.get("products")
	e.clock.Advance(20 * time.Second) // 07:31:10: two minutes of two and one, but three within 60 s
	e.get("products")
	e.clock.Advance(41 * time.Second) // 07:31:51: more than 60 s after 07:30:50
	e.get("products")
	if got := e.s.MaxInAnyMinute(); got != 3 {
		t.Errorf("MaxInAnyMinute %d, want 3", got)
	}
}

func TestFailNextAndDown(t *testing.T) {
	e := newEnv(t, Options{})
	e.s.FailNext(2, http.StatusServiceUnavailable)
	e.post("sales_invoices", invoice("moka-1-p1")).want(t, http.StatusServiceUnavailable)
	e.post("sales_invoices", invoice("moka-1-p1")).want(t, http.StatusServiceUnavailable)
	e.post("sales_invoices", invoice("moka-1-p1")).want(t, http.StatusCreated)

	e.s.SetDown(true)
	req, _ := http.NewRequest(http.MethodGet, e.s.URL()+APIPrefix+"products", nil)
	sign(req, nil, e.s.ClientID(), e.s.ClientSecret(), t0)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("down server answered %d", resp.StatusCode)
	}
	e.s.SetDown(false)
	e.get("products").want(t, http.StatusOK)
	logs := e.s.Requests()
	if logs[4].Status != 0 || logs[4].Processed {
		t.Errorf("request while down logged as %+v", logs[4])
	}
}

// A create whose answer is lost took effect: the retry is 409 with the id,
// and the lookup by custom_id finds it.
func TestLoseAnswerNext(t *testing.T) {
	e := newEnv(t, Options{})
	e.s.LoseAnswerNext(1)
	b := []byte(`{"sales_invoice":{"transaction_date":"2026-09-16","person_name":"Pelanggan Umum","custom_id":"moka-1-p1",` +
		`"transaction_lines_attributes":[{"product_code":"KOPI-01","quantity":1,"rate":25000}]}}`)
	req, _ := http.NewRequest(http.MethodPost, e.s.URL()+APIPrefix+"sales_invoices", bytesReader(b))
	sign(req, b, e.s.ClientID(), e.s.ClientSecret(), t0)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("lost answer arrived: %d", resp.StatusCode)
	}
	if len(e.s.Invoices()) != 1 {
		t.Fatal("the create whose answer was lost did not take effect")
	}
	id := e.get("sales_invoices/moka-1-p1").want(t, http.StatusOK).obj(t, "sales_invoice")["id"]
	if a := e.callRaw(http.MethodPost, "sales_invoices", b, nil).want(t, http.StatusConflict); a.body["id"] != id {
		t.Errorf("409 %s, want id %v", a.raw, id)
	}
	if l := e.s.Requests()[0]; !l.Processed || l.Status != 0 || l.CustomID != "moka-1-p1" {
		t.Errorf("log %+v", l)
	}
}

// A client that gives up during the latency gets nothing, and its request
// does not take effect.
func TestLatencyAndClientTimeout(t *testing.T) {
	e := newEnv(t, Options{})
	e.s.SetLatency(time.Hour)
	b := []byte(`{"sales_invoice":{}}`)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.s.URL()+APIPrefix+"sales_invoices", bytesReader(b))
	sign(req, b, e.s.ClientID(), e.s.ClientSecret(), t0)
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	waitFor(t, "the request to arrive", func() bool { return e.s.InFlight() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client error %v, want canceled", err)
	}
	waitFor(t, "the request to be logged", func() bool { return len(e.s.Requests()) == 1 })
	if l := e.s.Requests()[0]; l.Processed || l.Status != 0 {
		t.Errorf("log %+v", l)
	}
	e.s.SetLatency(0)
	e.get("products").want(t, http.StatusOK)
}

func TestReset(t *testing.T) {
	e := newEnv(t, Options{RequestsPerMinute: 100})
	e.post("sales_invoices", invoice("moka-1-p1")).want(t, http.StatusCreated)
	e.s.SeedProduct(Product{Name: "Teh Tarik"})
	e.s.SetSkew(time.Hour)
	e.s.FailNext(5, 500)
	e.s.Reset()
	e.post("sales_invoices", invoice("moka-1-p1")).want(t, http.StatusCreated)
	if len(e.s.Invoices()) != 1 || len(e.s.Products()) != 3 || len(e.s.Requests()) != 1 {
		t.Errorf("after Reset: %d invoices, %d products, %d requests", len(e.s.Invoices()), len(e.s.Products()), len(e.s.Requests()))
	}
}
