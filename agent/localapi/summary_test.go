package localapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// summaryBackend is fakeBackend with the day summary.
type summaryBackend struct {
	fakeBackend
	mu   sync.Mutex
	days []int
	sum  Summary
}

func (b *summaryBackend) Summary(_ context.Context, days int) (Summary, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.days = append(b.days, days)
	s := b.sum
	s.Days = days
	return s, nil
}

// GET /v1/summary passes days (default 14) to the backend and refuses
// what is not a whole number from 1 to 180, before asking it.
func TestSummaryEndpointDays(t *testing.T) {
	b := &summaryBackend{}
	h := NewServer(b, ServerOptions{}).Handler()
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/v1/summary", 200},
		{"/v1/summary?days=7", 200},
		{"/v1/summary?days=180", 200},
		{"/v1/summary?days=0", 400},
		{"/v1/summary?days=181", 400},
		{"/v1/summary?days=seven", 400},
	} {
		w := do(h, "GET", tc.path, "", nil)
		if w.Code != tc.code {
			t.Errorf("GET %s = %d %s, want %d", tc.path, w.Code, w.Body, tc.code)
		}
		if tc.code == 400 && !strings.Contains(w.Body.String(), "from 1 to 180") {
			t.Errorf("GET %s: %s does not say what is allowed", tc.path, w.Body)
		}
	}
	if w := do(h, "POST", "/v1/summary", "", nil); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /v1/summary = %d", w.Code)
	}
	if !reflect.DeepEqual(b.days, []int{14, 7, 180}) {
		t.Errorf("backend asked for %v", b.days)
	}
	// A backend without the summary: no such endpoint.
	if w := do(NewServer(&fakeBackend{}, ServerOptions{}).Handler(), "GET", "/v1/summary", "", nil); w.Code != http.StatusNotFound {
		t.Errorf("GET /v1/summary without SummaryBackend = %d", w.Code)
	}
}

// The client's Summary gets exactly what the backend returned.
func TestClientSummary(t *testing.T) {
	want := Summary{
		From: "2026-12-05", To: "2026-12-06", Today: "2026-12-06", Currency: "IDR", Sinks: []string{"upstream"},
		Outlets: []SummaryOutlet{{ID: "out_a", Name: "Kopi Kenangan", Days: []SummaryDay{
			{Date: "2026-12-05", SummaryFigures: SummaryFigures{Amount: "0", RefundAmount: "0", NetAmount: "0", VoidAmount: "0",
				Delivered: []SinkCount{{Sink: "upstream"}}}},
			{Date: "2026-12-06", SummaryFigures: SummaryFigures{Sales: 2, Amount: "163636.36", Refunds: 1, RefundAmount: "13636.36",
				NetAmount: "150000", VoidAmount: "0", Received: 2, Delivered: []SinkCount{{Sink: "upstream", Delivered: 2}}}},
		}}},
	}
	b := &summaryBackend{sum: want}
	srv := httptest.NewServer(NewServer(b, ServerOptions{}).Handler())
	defer srv.Close()
	c := NewClient(strings.TrimPrefix(srv.URL, "http://"), nil)
	got, err := c.Summary(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	want.Days = 2
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Summary = %+v\nwant %+v", got, want)
	}
	if _, err := c.Summary(context.Background(), 0); err != nil || b.days[len(b.days)-1] != DefaultSummaryDays {
		t.Errorf("Summary(0) = %v, asked for %v", err, b.days)
	}
}
