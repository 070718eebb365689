package wire

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"golang.org/x/time/rate"

	"github.com/pwbi/edge-agent/internal/secret"
)

// waits records the pacer's OnWait calls.
type waits struct {
	mu  sync.Mutex
	got []string
}

func (w *waits) add(reason string, d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, reason+" "+d.String())
}

func (w *waits) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.got...)
}

func testPacer(fc clockwork.Clock, w *waits, maxRetries int) *Pacer {
	return NewPacer(Options{
		Clock: fc, Limiter: rate.NewLimiter(rate.Inf, 1), MaxRetries: maxRetries,
		MinBackoff: time.Second, Rand: func() float64 { return 1 }, OnWait: w.add,
	}, 0)
}

// A retry "at once" (the oauth client after refreshing its token) neither
// waits nor spends a retry, and the error of the attempt before it is the
// one a later give-up reports.
func TestRetryNowDoesNotSpendARetry(t *testing.T) {
	var w waits
	p := testPacer(clockwork.NewFakeClock(), &w, -1) // no retries
	errFirst := errors.New("first failure")
	var outcomes = []Outcome{{Now: true}, {Err: errFirst, Retry: true, Status: 503}}
	n := 0
	err := p.Retry(context.Background(), http.MethodGet, "/v1/x", p.MaxRetries, func() Outcome {
		o := outcomes[n]
		n++
		return o
	})
	if n != 2 {
		t.Fatalf("%d attempts, want 2 (the at-once retry is not counted)", n)
	}
	if !errors.Is(err, errFirst) || !strings.Contains(err.Error(), "moka GET /v1/x: giving up after 2 attempts") {
		t.Fatalf("err = %v", err)
	}
	if got := w.list(); len(got) != 0 {
		t.Fatalf("waited %v", got)
	}
}

// retryOnFakeClock runs p.Retry over outcomes, one per attempt, and
// advances fc by advance once the retry loop sleeps on it.
func retryOnFakeClock(t *testing.T, p *Pacer, fc *clockwork.FakeClock, advance time.Duration, outcomes ...Outcome) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	n := 0
	go func() {
		done <- p.Retry(ctx, http.MethodGet, "/v1/x", p.MaxRetries, func() Outcome {
			o := outcomes[n]
			n++
			return o
		})
	}()
	if err := fc.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	fc.Advance(advance)
	return <-done
}

// Retry-After is honoured on a 429 only; other retried answers back off,
// and the request ends at the first outcome that does not ask for a retry.
func TestRetryWaitsRetryAfterOf429ElseBackoff(t *testing.T) {
	fc := clockwork.NewFakeClock()
	var w waits
	p := testPacer(fc, &w, 5)
	ra := http.Header{"Retry-After": {"0"}}
	// The 503's backoff (MinBackoff·2¹ with jitter factor 1) sleeps on the
	// fake clock: advance it once the sleeper is waiting.
	err := retryOnFakeClock(t, p, fc, 2*time.Second,
		Outcome{Err: errors.New("slow down"), Retry: true, Status: 429, Header: ra},
		Outcome{Err: errors.New("unavailable"), Retry: true, Status: 503, Header: ra},
		Done(nil))
	if err != nil {
		t.Fatalf("Retry = %v", err)
	}
	want := []string{"retry_after 0s", "backoff 2s"}
	if got := w.list(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("waits %v, want %v", got, want)
	}
}

// A Retry-After of more seconds than 32 bits hold is still a server asking
// for a long wait: it is capped at MaxRetryAfter like any long one, not
// taken for a malformed header (which would mean the backoff).
func TestRetryAfterBeyond32BitsIsCapped(t *testing.T) {
	fc := clockwork.NewFakeClock()
	var w waits
	p := testPacer(fc, &w, 1)
	err := retryOnFakeClock(t, p, fc, MaxRetryAfter,
		Outcome{Err: errors.New("slow down"), Retry: true, Status: 429, Header: http.Header{"Retry-After": {"4294967296"}}},
		Done(nil))
	if err != nil {
		t.Fatalf("Retry = %v", err)
	}
	if got, want := strings.Join(w.list(), ","), "retry_after "+MaxRetryAfter.String(); got != want {
		t.Fatalf("waits %v, want %v", got, want)
	}
}

// Do bounds bodies: a 2xx over MaxBody is ErrResponseTooLarge (not
// truncated into something that might parse), another answer is cut at
// MaxErrorBody; a transport error goes through Redact and never shows the
// URL's query.
func TestDoBoundsBodiesAndRedacts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" || r.Header.Get("User-Agent") != "pwbi-edge-agent" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if r.URL.Path == "/ok" {
			w.Write([]byte(strings.Repeat("a", 11)))
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(strings.Repeat("e", 50)))
	}))
	defer srv.Close()
	var w waits
	p := testPacer(clockwork.NewRealClock(), &w, 0)
	ctx := context.Background()

	_, err := p.Do(ctx, Request{Method: http.MethodGet, URL: srv.URL + "/ok", Path: "/ok", Auth: "Bearer k", MaxBody: 10})
	if !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("11-byte body over a 10-byte bound: %v", err)
	}
	resp, err := p.Do(ctx, Request{Method: http.MethodGet, URL: srv.URL + "/ok", Path: "/ok", Auth: "Bearer k", MaxBody: 11})
	if err != nil || resp.Status != 200 || len(resp.Body) != 11 {
		t.Fatalf("body at the bound: %d %q %v", resp.Status, resp.Body, err)
	}
	resp, err = p.Do(ctx, Request{Method: http.MethodGet, URL: srv.URL + "/fail", Path: "/fail", Auth: "Bearer k", MaxErrorBody: 20})
	if err != nil || resp.Status != 500 || string(resp.Body) != strings.Repeat("e", 20) {
		t.Fatalf("error body: %d %q %v", resp.Status, resp.Body, err)
	}

	srv.Close()
	_, err = p.Do(ctx, Request{
		Method: http.MethodGet, URL: srv.URL + "/x?token=s3cret", Path: "/x", Auth: "Bearer k",
		Redact: func(err error) error {
			return secret.RedactError(err, func(s string) string { return secret.Redact(s, "s3cret") })
		},
	})
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.HasPrefix(err.Error(), "moka GET /x: ") {
		t.Fatalf("transport error %v", err)
	}
}
