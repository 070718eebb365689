package oauth

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/moka/internal/feed"
	"github.com/pwbi/edge-agent/agent/moka/oauth/oauthfake"
)

// walkServer is a get_latest_transactions that honours since, until
// (both inclusive, to the microsecond), reorder_type and per_page (up to
// maxPer), with a choice of how it says a walk is complete and of what
// its next_url holds. It counts requests.
type walkServer struct {
	srv       *httptest.Server
	mu        sync.Mutex
	rows      []walkRow
	maxPer    int
	completed string // "correct", "absent" or "never"
	next      string // "since", "until", "missing", "repeat"
	desc      bool   // ignore reorder_type and answer newest first
	requests  int
}

type walkRow struct {
	id string
	at time.Time
}

func newWalkServer(t *testing.T, rows []walkRow) *walkServer {
	w := &walkServer{rows: rows, maxPer: 1000, completed: "correct", next: "since"}
	sort.Slice(w.rows, func(i, j int) bool {
		if !w.rows[i].at.Equal(w.rows[j].at) {
			return w.rows[i].at.Before(w.rows[j].at)
		}
		return w.rows[i].id < w.rows[j].id
	})
	w.srv = httptest.NewServer(http.HandlerFunc(w.serve))
	t.Cleanup(w.srv.Close)
	return w
}

func walkEpoch(v string) time.Time {
	sec, frac, _ := strings.Cut(v, ".")
	s, _ := strconv.ParseInt(sec, 10, 64)
	ns := int64(0)
	if frac != "" {
		ns, _ = strconv.ParseInt((frac + "000000000")[:9], 10, 64)
	}
	return time.Unix(s, ns)
}

func (w *walkServer) serve(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.requests++
	q := r.URL.Query()
	since, until := walkEpoch(q.Get("since")), walkEpoch(q.Get("until"))
	per, _ := strconv.Atoi(q.Get("per_page"))
	per = min(per, w.maxPer)
	var match []walkRow
	for _, row := range w.rows {
		if !row.at.Before(since) && (q.Get("until") == "" || !row.at.After(until)) {
			match = append(match, row)
		}
	}
	if w.desc {
		for i, j := 0, len(match)-1; i < j; i, j = i+1, j-1 {
			match[i], match[j] = match[j], match[i]
		}
	}
	page := match[:min(per, len(match))]
	var b strings.Builder
	b.WriteString(`{"data":{"payments":[`)
	for i, row := range page {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%q,"outlet_id":1,"total_collected":1000,"created_at":%q}`, row.id, row.at.Format("2006-01-02T15:04:05.000000Z07:00"))
	}
	b.WriteString("]")
	next := r.URL.Query()
	if len(page) > 0 {
		switch w.next {
		case "since":
			next.Set("since", strconv.FormatFloat(float64(page[len(page)-1].at.UnixMicro())/1e6, 'f', 6, 64))
		case "until":
			next.Set("until", strconv.FormatFloat(float64(page[len(page)-1].at.UnixMicro()-1)/1e6, 'f', 6, 64))
		}
	}
	if w.next != "missing" {
		fmt.Fprintf(&b, `,"next_url":%q`, w.srv.URL+r.URL.Path+"?"+next.Encode()+"&access_token=secret-in-next-url")
	}
	switch w.completed {
	case "correct":
		fmt.Fprintf(&b, `,"completed":%t`, len(match) <= per)
	case "never":
		b.WriteString(`,"completed":false`)
	}
	b.WriteString("}}")
	rw.Header().Set("Content-Type", "application/json")
	_, _ = rw.Write([]byte(b.String()))
}

func (w *walkServer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.requests
}

// walkAll walks everything of the server and returns how often each id
// came.
func walkAll(t *testing.T, c *Client, per int) (map[string]int, error) {
	t.Helper()
	got := map[string]int{}
	err := c.Payments(context.Background(), PaymentQuery{OutletID: "1", Since: t0.Add(-48 * time.Hour), Until: t0, PerPage: per},
		func(p PaymentPage) error {
			for i := range p.decoded {
				id, _ := paymentID(&p.decoded[i])
				got[id]++
			}
			return nil
		})
	return got, err
}

// tiedRows are n rows over the last day whose times come in groups of one
// to five equal times, so that groups straddle page boundaries.
func tiedRows(n int) []walkRow {
	var rows []walkRow
	at := t0.Add(-20 * time.Hour)
	for i := 0; i < n; {
		group := 1 + (i*7)%5
		for j := 0; j < group && i < n; j++ {
			rows = append(rows, walkRow{id: fmt.Sprintf("p%05d", i), at: at})
			i++
		}
		at = at.Add(time.Duration(1+i%3) * 997 * time.Microsecond)
	}
	return rows
}

func checkOnce(t *testing.T, got map[string]int, rows []walkRow) {
	t.Helper()
	if len(got) != len(rows) {
		t.Fatalf("%d distinct rows delivered, want %d", len(got), len(rows))
	}
	for _, r := range rows {
		if got[r.id] != 1 {
			t.Fatalf("row %s delivered %d times", r.id, got[r.id])
		}
	}
}

// TestWalkEveryRowOnce: rows sharing a time at page boundaries are neither
// lost nor repeated, whatever next_url holds and however the server says
// the walk is complete (or not), also when it serves smaller pages than
// asked for.
func TestWalkEveryRowOnce(t *testing.T) {
	rows := tiedRows(1234)
	for _, completed := range []string{"correct", "absent", "never"} {
		for _, next := range []string{"since", "until", "missing", "repeat"} {
			for _, maxPer := range []int{1000, 37} {
				t.Run(fmt.Sprintf("completed=%s/next_url=%s/max_per_page=%d", completed, next, maxPer), func(t *testing.T) {
					srv := newWalkServer(t, rows)
					srv.completed, srv.next, srv.maxPer = completed, next, maxPer
					e := newEnv(t, oauthfake.Options{})
					c := walkClient(t, e, srv.srv.URL)
					got, err := walkAll(t, c, 100)
					if err != nil {
						t.Fatal(err)
					}
					checkOnce(t, got, rows)
					pages := int(math.Ceil(float64(len(rows)) / float64(min(100, maxPer))))
					if n := srv.count(); float64(n) > 1.1*float64(pages)+1 {
						t.Errorf("%d requests for %d pages", n, pages)
					}
				})
			}
		}
	}
}

func walkClient(t *testing.T, e *env, base string) *Client {
	t.Helper()
	e.authorize()
	c, err := NewClient(ClientConfig{BaseURL: base}, e.tokens, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestWalkTieLargerThanAPage: more rows of one time than a page holds:
// the walk asks for larger pages and still delivers each once; beyond
// the largest page it stops with ErrNoProgress instead of looping.
func TestWalkTieLargerThanAPage(t *testing.T) {
	same := t0.Add(-time.Hour)
	var rows []walkRow
	for i := range 20 {
		rows = append(rows, walkRow{id: fmt.Sprintf("a%03d", i), at: same.Add(-time.Duration(20-i) * time.Second)})
	}
	for i := range 250 {
		rows = append(rows, walkRow{id: fmt.Sprintf("b%03d", i), at: same})
	}
	rows = append(rows, walkRow{id: "c", at: same.Add(time.Second)})
	srv := newWalkServer(t, rows)
	e := newEnv(t, oauthfake.Options{})
	c := walkClient(t, e, srv.srv.URL)
	got, err := walkAll(t, c, 100)
	if err != nil {
		t.Fatal(err)
	}
	checkOnce(t, got, rows)

	for i := range MaxPaymentsPerPage + 1 {
		rows = append(rows, walkRow{id: fmt.Sprintf("d%04d", i), at: same.Add(2 * time.Second)})
	}
	srv = newWalkServer(t, rows)
	c = walkClient(t, e, srv.srv.URL)
	if _, err := walkAll(t, c, 100); !errors.Is(err, ErrNoProgress) {
		t.Fatalf("a tie of more than %d rows: %v", MaxPaymentsPerPage, err)
	}
	if n := srv.count(); n > 20 {
		t.Errorf("%d requests before giving up", n)
	}
}

// TestWalkRefusesUnorderedPages: a server that ignores reorder_type=ASC
// would make a walk from the rows skip some; the walk stops instead.
func TestWalkRefusesUnorderedPages(t *testing.T) {
	srv := newWalkServer(t, tiedRows(300))
	srv.desc = true
	e := newEnv(t, oauthfake.Options{})
	c := walkClient(t, e, srv.srv.URL)
	if _, err := walkAll(t, c, 100); !errors.Is(err, ErrNoProgress) {
		t.Fatalf("newest first: %v", err)
	}
}

// TestWalkRequestsPerPoll measures the walk against the fake Moka under
// each shape of next_url, with a busy outlet (more than 10 pages per pass)
// and sales sharing times: a first poll's created_at and updated_at passes
// deliver every row exactly once, in at most 1.1 × the pages the rows
// need plus one request per outlet (PERFORMANCE.md). (Two busy outlets
// through the real binary: TestMokaWalkNextURLStyles in cmd/pwbi-agent.)
func TestWalkRequestsPerPoll(t *testing.T) {
	for _, style := range []oauthfake.NextURLStyle{oauthfake.NextURLSince, oauthfake.NextURLUntil, oauthfake.NextURLMissing, oauthfake.NextURLRepeat} {
		t.Run(style.String(), func(t *testing.T) {
			const outlets = 1
			e := newEnv(t, oauthfake.Options{Outlets: outlets, Days: 4, TxPerDay: 400, NoEvents: true, SameTimeSales: 15, NextURL: style})
			e.authorize()
			ctx := context.Background()
			now := e.fc.Now()
			from := now.AddDate(0, 0, -3)
			truth := e.fake.Truth()
			requests, pages := 0, 0
			for _, o := range e.fake.OutletIDs() {
				for _, pass := range []string{"transactions", "updates"} {
					start := from
					walk := e.conn.Transactions
					if pass == "updates" {
						start, walk = now.Add(-overlap), e.conn.Updates
					}
					rows := 0
					for _, p := range truth {
						at := p.CreatedAt
						if pass == "updates" {
							at = p.UpdatedAt
						}
						if p.OutletID == o && !at.Before(start) && !at.After(now) {
							rows++
						}
					}
					before := len(e.fake.Requests())
					seen := map[string]int{}
					err := walk(ctx, o, start, func(p feed.Page) error {
						for _, in := range p.Inputs {
							seen[in.Key]++
						}
						return nil
					})
					if err != nil {
						t.Fatal(err)
					}
					if len(seen) != rows {
						t.Fatalf("outlet %s %s: %d sales delivered, %d in the window", o, pass, len(seen), rows)
					}
					for k, n := range seen {
						if n != 1 {
							t.Fatalf("outlet %s %s: %s delivered %d times", o, pass, k, n)
						}
					}
					n := len(e.fake.Requests()) - before
					need := max(1, int(math.Ceil(float64(rows)/PaymentsPerPage)))
					if pass == "transactions" && need <= 10 {
						t.Fatalf("outlet %s: only %d pages: not a busy outlet", o, need)
					}
					requests += n
					pages += need
				}
			}
			if e.fake.BoundaryTies() == 0 {
				t.Error("no page boundary fell inside a group of sales of one time")
			}
			ratio := float64(requests) / float64(pages)
			t.Logf("next_url %s: %d requests for %d pages (%.3f per page), %d outlets", style, requests, pages, ratio, outlets)
			if float64(requests) > 1.1*float64(pages)+outlets {
				t.Errorf("%d requests for %d pages: above 1.1 × pages + %d", requests, pages, outlets)
			}
		})
	}
}
