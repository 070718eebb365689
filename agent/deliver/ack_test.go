package deliver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/deliver/httpsink"
	"github.com/pwbi/edge-agent/agent/deliver/httpsink/upstreamfake"
)

// Answers with an accepting status that are not acknowledgements: nothing is
// acked, the batch is retried with backoff and the same batch id, the
// status says what came back; once the upstream answers properly,
// everything is delivered exactly once, in order, and the status is fine.
func TestNotAcknowledgedIsRetried(t *testing.T) {
	for _, tc := range []struct {
		name    string
		inject  func(*upstreamfake.Server)
		status  int
		problem string
		errText string // in LastError
	}{
		{"captive portal page", func(s *upstreamfake.Server) { s.FaultNext(2, upstreamfake.FaultHTMLPage) }, 200,
			"the upstream answered with a web page, not an acknowledgement: is a Wi-Fi login page in the way?",
			"upstream answered 200 OK without acknowledging the batch (a web page)"},
		{"empty 200", func(s *upstreamfake.Server) { s.FaultNext(2, upstreamfake.FaultEmpty) }, 200,
			"the upstream answered 200 OK with an empty body, not an acknowledgement",
			"(an empty body)"},
		{"wrong batch id", func(s *upstreamfake.Server) { s.FaultNext(2, upstreamfake.FaultWrongBatchID) }, 200,
			"the upstream answered 200 OK but acknowledged a different batch, not the one sent: is a caching proxy in the way?",
			upstreamfake.WrongBatchID},
		{"redirect", func(s *upstreamfake.Server) { s.FaultNext(2, upstreamfake.FaultRedirect) }, 302,
			"the upstream redirects to wifi-login.cafe.example (302 Found) instead of acknowledging: is a Wi-Fi login page in the way, or is upstream.url wrong?",
			"upstream answered 302 Found, a redirect to wifi-login.cafe.example (check upstream.url)"},
		{"json without batch id", func(s *upstreamfake.Server) { s.FailNext(2, http.StatusOK, "") }, 200,
			"the upstream answered 200 OK without the batch id, not an acknowledgement: is upstream.url the PWBI cloud?",
			`injected failure`},
		{"202 without batch id", func(s *upstreamfake.Server) { s.FailNext(2, http.StatusAccepted, "") }, 202,
			"the upstream answered 202 Accepted without the batch id, not an acknowledgement: is upstream.url the PWBI cloud?",
			"(JSON without the batch id)"},
		{"409 without batch id", func(s *upstreamfake.Server) { s.FailNext(2, http.StatusConflict, "") }, 409,
			"the upstream answered 409 Conflict without the batch id, not an acknowledgement: is upstream.url the PWBI cloud?",
			"409 Conflict"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, withBatchSize(10))
			recs := h.src.add(10, false)
			tc.inject(h.srv)
			h.start()
			for i, want := range []time.Duration{b1, b2} {
				if d := h.clock.nextWait(t); d != want {
					t.Fatalf("backoff %v, want %v", d, want)
				}
				st := h.fwd.Status()
				if st.Health != HealthError || st.Problem != tc.problem || st.Online || st.ConsecutiveFailures != i+1 ||
					!strings.Contains(st.LastError, tc.errText) || st.Delivered != 0 {
					t.Errorf("status after attempt %d: %+v", i+1, st)
				}
				for _, leak := range []string{"s3cr3t-portal-session", "portal?", "<form", testToken} {
					if strings.Contains(st.LastError, leak) || strings.Contains(st.Problem, leak) {
						t.Errorf("status shows %q: %+v", leak, st)
					}
				}
				if n := h.src.pendingCount(); n != 10 {
					t.Fatalf("%d pending: records left the buffer without an acknowledgement", n)
				}
				h.clock.Advance(want)
			}
			h.finish()

			h.src.mu.Lock()
			acks := slices.Clone(h.src.acks)
			h.src.mu.Unlock()
			if len(acks) != 1 || !slices.Equal(acks[0], seqRange(1, 10)) {
				t.Errorf("acks %v, want one ack of 1..10 after the acknowledgement", acks)
			}
			checkDelivered(t, h.srv, seqRange(1, 10))
			hist := h.srv.History()
			if got := statuses(hist); !slices.Equal(got, []int{tc.status, tc.status, 200}) {
				t.Errorf("statuses %v", got)
			}
			checkSameKey(t, hist, recs)
			res := h.resultList()
			if len(res) != 3 || res[0].Outcome != OutcomeRetry || !errors.Is(res[0].Err, httpsink.ErrNotAcknowledged) ||
				res[0].Online || res[2].Outcome != OutcomeAccepted || !res[2].Online {
				t.Errorf("results %+v", res)
			}
			if d := h.src.deadLetters(); len(d) != 0 {
				t.Errorf("dead letters %+v", d)
			}
			st := h.fwd.Status()
			if st.Health != HealthOK || st.Problem != "" || st.LastError != "" || !st.Online || st.Delivered != 10 {
				t.Errorf("status after the acknowledgement: %+v", st)
			}
		})
	}
}

// A persistent captive portal: every attempt is retried with a growing
// backoff; nothing is acked however long it lasts.
func TestCaptivePortalPersistent(t *testing.T) {
	h := newHarness(t, withBatchSize(5))
	h.src.add(5, false)
	h.srv.SetFault(upstreamfake.FaultHTMLPage)
	h.start()
	for _, want := range []time.Duration{b1, b2, 6 * time.Second, 12 * time.Second} {
		if d := h.clock.nextWait(t); d != want {
			t.Fatalf("backoff %v, want %v", d, want)
		}
		h.clock.Advance(want)
	}
	h.clock.nextWait(t)
	if n, st := h.src.pendingCount(), h.fwd.Status(); n != 5 || st.Health != HealthError || st.Delivered != 0 {
		t.Fatalf("pending %d, status %+v", n, st)
	}
	h.srv.SetFault(upstreamfake.FaultNone)
	h.fwd.Flush() // the person logged in to the Wi-Fi and pressed "Sync now"
	h.finish()
	checkDelivered(t, h.srv, seqRange(1, 5))
	if st := h.fwd.Status(); st.Health != HealthOK || st.Problem != "" {
		t.Errorf("status %+v", st)
	}
}

// An acknowledgement larger than the read cap cannot be verified: it is
// not one, the batch is retried and then acknowledged normally.
func TestOversizedAcknowledgementIsNotAccepted(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ack := map[string]string{"batch_id": r.Header.Get("Idempotency-Key")}
		if calls.Add(1) == 1 {
			// Far more than the HTTP sink reads of an answer (64 KiB).
			ack["pad"] = strings.Repeat("x", 1<<20)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(ack)
	}))
	defer srv.Close()
	h := newHarness(t, withBatchSize(3), func(s setup) { s.sink.URL = srv.URL })
	h.src.add(3, false)
	h.start()
	if d := h.clock.nextWait(t); d != b1 {
		t.Fatalf("backoff %v", d)
	}
	st := h.fwd.Status()
	if st.Health != HealthError || h.src.pendingCount() != 3 ||
		st.Problem != "the upstream answered 200 OK with an answer too large to check, not an acknowledgement: is upstream.url the PWBI cloud?" ||
		len(st.LastError) > 1024 {
		t.Errorf("status %+v", st)
	}
	h.clock.Advance(b1)
	h.finish()
	if st := h.fwd.Status(); st.Delivered != 3 || st.Health != HealthOK {
		t.Errorf("status %+v", st)
	}
}

// A redirect's Location may carry credentials or a session: only its host
// is shown, and a redirect without a Location says so.
func TestRedirectShowsOnlyTheHost(t *testing.T) {
	for _, tc := range []struct {
		location, problem string
	}{
		{"https://user:pa55@login.hotspot.example:8443/auth?token=abc123&mac=00:11",
			"the upstream redirects to login.hotspot.example:8443 (307 Temporary Redirect) instead of acknowledging: is a Wi-Fi login page in the way, or is upstream.url wrong?"},
		{"", "the upstream redirects elsewhere (307 Temporary Redirect) instead of acknowledging: is a Wi-Fi login page in the way, or is upstream.url wrong?"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.location != "" {
				w.Header().Set("Location", tc.location)
			}
			w.WriteHeader(http.StatusTemporaryRedirect)
			fmt.Fprintf(w, "<a href=%q>moved</a>", tc.location)
		}))
		h := newHarness(t, withBatchSize(2), func(s setup) { s.sink.URL = srv.URL })
		h.src.add(2, false)
		h.start()
		h.clock.nextWait(t)
		st := h.fwd.Status()
		h.stop()
		srv.Close()
		if st.Health != HealthError || st.Problem != tc.problem || st.Online || h.src.pendingCount() != 2 {
			t.Errorf("status %+v", st)
		}
		for _, leak := range []string{"pa55", "abc123", "auth?", "user:"} {
			if strings.Contains(st.LastError, leak) || strings.Contains(st.Problem, leak) {
				t.Errorf("status shows %q: %+v", leak, st)
			}
		}
	}
}

func TestStatusJSON(t *testing.T) {
	b, err := json.Marshal(Status{Health: HealthError, Problem: "p"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"health":"error"`, `"problem":"p"`, `"online":false`, `"last_error":""`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
}
