package deliver

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/deliver/httpsink"
	"github.com/pwbi/edge-agent/agent/deliver/httpsink/upstreamfake"
	"github.com/pwbi/edge-agent/store"
)

// The backoffs with the harness's Rand (0.5) and the default MinBackoff
// (1s): three quarters of the ceilings 2s and 4s.
const (
	b1 = 1500 * time.Millisecond
	b2 = 3 * time.Second
)

func withBatchSize(n int) func(setup) {
	return func(s setup) { s.cfg.BatchSize = n }
}

// checkDelivered asserts that the fake upstream accepted exactly want, in
// that order, each once, with no order violation.
func checkDelivered(t *testing.T, srv *upstreamfake.Server, want []uint64) {
	t.Helper()
	if got := seqs(srv.Records()); !slices.Equal(got, want) {
		t.Fatalf("upstream got seqs %v\nwant %v", got, want)
	}
	if n := srv.OrderViolations(); n != 0 {
		t.Errorf("OrderViolations = %d, want 0", n)
	}
	for k, n := range srv.Keys() {
		if n != 1 {
			t.Errorf("key %s accepted %d times", k, n)
		}
	}
}

func statuses(h []upstreamfake.RequestInfo) []int {
	out := make([]int, len(h))
	for i, r := range h {
		out[i] = r.Status
	}
	return out
}

// checkSameKey asserts that every request carried the same Idempotency-Key,
// the batch id of recs.
func checkSameKey(t *testing.T, hist []upstreamfake.RequestInfo, recs []store.Record) {
	t.Helper()
	want := httpsink.BatchID(testAgent, recs)
	for i, r := range hist {
		if r.IdempotencyKey != want {
			t.Errorf("request %d: Idempotency-Key %q, want %q", i, r.IdempotencyKey, want)
		}
	}
}

func TestRequestFormat(t *testing.T) {
	type captured struct {
		method, path string
		header       http.Header
		body         []byte
	}
	got := make(chan captured, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			t.Errorf("body is not gzip: %v", err)
			return
		}
		body, _ := io.ReadAll(zr)
		got <- captured{r.Method, r.URL.Path, r.Header.Clone(), body}
		var b struct {
			BatchID string `json:"batch_id"`
		}
		json.Unmarshal(body, &b)
		// Any 2xx acknowledges when it echoes the batch id; no
		// Content-Type is required.
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"batch_id": b.BatchID, "stored": 3})
	}))
	defer srv.Close()

	h := newHarness(t, withBatchSize(3), func(s setup) {
		s.sink.URL = srv.URL + "/" // a trailing slash must not double
		s.sinkOpts.UserAgent = "pwbi-agent/1.2.3"
	})
	recs := h.src.add(2, false)
	// A key with characters JSON must escape.
	recs = append(recs, h.src.addData("moka/b/o/\"quoted\"\\\u2028\x01é", []byte(`{"a": [1, 2.50, "x"]}`)))
	h.start()
	h.finish()

	c := <-got
	if c.method != http.MethodPost || c.path != "/v1/batches" {
		t.Errorf("request %s %s, want POST /v1/batches", c.method, c.path)
	}
	id := httpsink.BatchID(testAgent, recs)
	for k, want := range map[string]string{
		"Authorization":    "Bearer " + testToken,
		"Content-Type":     "application/json",
		"Content-Encoding": "gzip",
		"Idempotency-Key":  id,
		"User-Agent":       "pwbi-agent/1.2.3",
	} {
		if v := c.header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	var body struct {
		AgentID string `json:"agent_id"`
		BatchID string `json:"batch_id"`
		SentAt  string `json:"sent_at"`
		Records []struct {
			Kind    string          `json:"kind"`
			Key     string          `json:"key"`
			Seq     uint64          `json:"seq"`
			Version string          `json:"version"`
			Data    json.RawMessage `json:"data"`
		} `json:"records"`
	}
	dec := json.NewDecoder(bytes.NewReader(c.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("body %s: %v", c.body, err)
	}
	if body.AgentID != testAgent || body.BatchID != id {
		t.Errorf("agent_id %q batch_id %q", body.AgentID, body.BatchID)
	}
	if sent, err := time.Parse(time.RFC3339, body.SentAt); err != nil || !sent.Equal(t0) {
		t.Errorf("sent_at %q (%v), want %s", body.SentAt, err, t0.Format(time.RFC3339))
	}
	if len(body.Records) != len(recs) {
		t.Fatalf("%d records, want %d", len(body.Records), len(recs))
	}
	for i, r := range body.Records {
		w := recs[i]
		if r.Kind != w.Kind || r.Key != w.Key || r.Seq != w.Seq || r.Version != w.Version || !bytes.Equal(r.Data, w.Data) {
			t.Errorf("record %d = %+v, want %+v", i, r, w)
		}
	}
	if st := h.fwd.Status(); !st.Online || st.Delivered != 3 || st.LastSuccessAt != t0 || st.Health != HealthOK || st.Problem != "" {
		t.Errorf("status %+v", st)
	}
}

func TestOrderAcrossManyBatches(t *testing.T) {
	h := newHarness(t)
	h.src.add(1234, false)
	h.fwd.Flush()
	h.start()
	h.finish()

	checkDelivered(t, h.srv, seqRange(1, 1234))
	batches := h.srv.Batches()
	if len(batches) != 13 {
		t.Errorf("%d batches, want 13", len(batches))
	}
	for _, b := range batches {
		if len(b.Records) > 100 {
			t.Errorf("batch of %d records, batch size is 100", len(b.Records))
		}
		if b.AgentID != testAgent || b.ID != httpsink.BatchID(testAgent, b.Records) {
			t.Errorf("batch %s from %s", b.ID, b.AgentID)
		}
	}
	st := h.fwd.Status()
	if !st.Configured || !st.Online || st.Delivered != 1234 || st.LastError != "" || st.ConsecutiveFailures != 0 || st.Sending ||
		st.Health != HealthOK || st.Problem != "" {
		t.Errorf("status %+v", st)
	}
	if w := h.clock.waits(); len(w) != 0 {
		t.Errorf("waits %v, want none", w)
	}
}

func TestFlushOnBatchSize(t *testing.T) {
	h := newHarness(t, withBatchSize(5))
	h.start()
	h.src.add(5, true)
	h.finish()
	checkDelivered(t, h.srv, seqRange(1, 5))
	if w := h.clock.waits(); len(w) != 0 {
		t.Errorf("a full batch waited: %v", w)
	}
}

func TestFlushInterval(t *testing.T) {
	h := newHarness(t)
	h.src.add(3, false)
	h.clock.Advance(2 * time.Second) // the oldest record is 2s old
	h.start()

	if d := h.clock.nextWait(t); d != 3*time.Second {
		t.Fatalf("flush wait %v, want 3s (5s interval from the oldest record's AddedAt)", d)
	}
	if n := h.srv.Requests(); n != 0 {
		t.Fatalf("%d requests before the flush interval", n)
	}
	h.clock.Advance(3 * time.Second)
	h.finish()
	checkDelivered(t, h.srv, seqRange(1, 3))
	if n := len(h.srv.Batches()); n != 1 {
		t.Errorf("%d batches, want 1", n)
	}
}

func TestFlushNow(t *testing.T) {
	h := newHarness(t, func(s setup) { s.cfg.FlushInterval = time.Hour })
	h.src.add(3, false)
	h.start()
	if d := h.clock.nextWait(t); d != time.Hour {
		t.Fatalf("flush wait %v, want 1h", d)
	}
	h.fwd.Flush()
	h.finish()
	checkDelivered(t, h.srv, seqRange(1, 3))
}

func TestRetryOn5xx(t *testing.T) {
	h := newHarness(t, withBatchSize(10))
	recs := h.src.add(10, false)
	h.srv.FailNext(2, http.StatusServiceUnavailable, "")
	h.start()

	if d := h.clock.nextWait(t); d != b1 {
		t.Fatalf("first backoff %v, want %v", d, b1)
	}
	st := h.fwd.Status()
	if st.Online || st.ConsecutiveFailures != 1 || !strings.Contains(st.LastError, "503") ||
		!st.NextRetryAt.Equal(t0.Add(b1)) || st.Sending || st.Health != HealthOffline ||
		st.Problem != "the PWBI cloud is not available (503 Service Unavailable): sales stay buffered and are sent again" {
		t.Errorf("status during backoff: %+v", st)
	}
	h.clock.Advance(b1)
	if d := h.clock.nextWait(t); d != b2 {
		t.Fatalf("second backoff %v, want %v", d, b2)
	}
	if h.src.pendingCount() != 10 {
		t.Fatal("records left the source before the upstream accepted them")
	}
	h.clock.Advance(b2)
	h.finish()

	checkDelivered(t, h.srv, seqRange(1, 10))
	hist := h.srv.History()
	if got := statuses(hist); !slices.Equal(got, []int{503, 503, 200}) {
		t.Errorf("statuses %v", got)
	}
	checkSameKey(t, hist, recs)
	st = h.fwd.Status()
	if !st.Online || st.ConsecutiveFailures != 0 || st.LastError != "" || !st.NextRetryAt.IsZero() ||
		!st.LastSuccessAt.Equal(t0.Add(b1+b2)) || st.Delivered != 10 || st.Health != HealthOK || st.Problem != "" {
		t.Errorf("status after recovery: %+v", st)
	}
}

func TestRetryOnTimeout(t *testing.T) {
	h := newHarness(t, withBatchSize(5), func(s setup) { s.sink.Timeout = 10 * time.Second })
	recs := h.src.add(5, false)
	h.srv.SetDelay(time.Hour) // real time; the client gives up first
	h.start()

	if err := h.srv.WaitRequests(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	if d := h.clock.nextAttemptTimeout(t); d != 10*time.Second {
		t.Fatalf("attempt timeout %v, want 10s", d)
	}
	h.clock.Advance(10 * time.Second)
	if d := h.clock.nextWait(t); d != b1 {
		t.Fatalf("backoff %v, want %v", d, b1)
	}
	if st := h.fwd.Status(); st.Online || !strings.Contains(st.LastError, "no answer within 10s") ||
		st.Health != HealthOffline || st.Problem != "the PWBI cloud did not answer within 10s" {
		t.Errorf("status %+v", st)
	}
	h.srv.SetDelay(0)
	h.clock.Advance(b1)
	h.finish()

	checkDelivered(t, h.srv, seqRange(1, 5))
	if err := h.srv.WaitRequests(testCtx(t), 2); err != nil {
		t.Fatal(err)
	}
	checkSameKey(t, h.srv.History(), recs)
}

func TestRetryOnClosedConnection(t *testing.T) {
	h := newHarness(t, withBatchSize(5))
	recs := h.src.add(5, false)
	h.srv.CloseNext(2)
	h.start()
	for _, want := range []time.Duration{b1, b2} {
		if d := h.clock.nextWait(t); d != want {
			t.Fatalf("backoff %v, want %v", d, want)
		}
		if st := h.fwd.Status(); st.Online || !strings.Contains(st.LastError, "send batch") || st.Health != HealthOffline ||
			st.Problem != "cannot reach the PWBI cloud: the connection was closed without an answer" {
			t.Errorf("status %+v", st)
		}
		h.clock.Advance(want)
	}
	h.finish()
	checkDelivered(t, h.srv, seqRange(1, 5))
	hist := h.srv.History()
	if got := statuses(hist); !slices.Equal(got, []int{0, 0, 200}) {
		t.Errorf("statuses %v", got)
	}
	checkSameKey(t, hist, recs)
}

// A lost answer: the upstream took the batch but the answer was cut. The
// retry (same batch id) is answered 409 and acked; nothing is duplicated.
func TestTruncatedAnswerRetriedThen409(t *testing.T) {
	h := newHarness(t, withBatchSize(5))
	recs := h.src.add(5, false)
	h.srv.TruncateNext(1)
	h.start()
	if d := h.clock.nextWait(t); d != b1 {
		t.Fatalf("backoff %v, want %v", d, b1)
	}
	if st := h.fwd.Status(); st.Online || !strings.Contains(st.LastError, "read answer") || st.Health != HealthOffline ||
		st.Problem != "the answer of the PWBI cloud was cut off" {
		t.Errorf("status %+v", st)
	}
	h.clock.Advance(b1)
	h.finish()

	checkDelivered(t, h.srv, seqRange(1, 5))
	hist := h.srv.History()
	if got := statuses(hist); !slices.Equal(got, []int{200, 409}) || !hist[0].Truncated {
		t.Errorf("history %+v", hist)
	}
	checkSameKey(t, hist, recs)
	if st := h.fwd.Status(); st.Delivered != 5 {
		t.Errorf("delivered %d", st.Delivered)
	}
}

// A 409 echoing the batch id is an acknowledgement: here the upstream got
// the batch from an earlier run of the agent (another forwarder on a copy of
// the buffer) whose ack never reached the buffer.
func Test409IsAccepted(t *testing.T) {
	h := newHarness(t, withBatchSize(4))
	recs := h.src.add(4, false)
	earlier := newMemSource(h.clock)
	earlier.add(4, false)
	if err := New(earlier, h.newSink(h.sink), h.cfg, Options{Clock: h.clock}).Drain(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.finish()
	hist := h.srv.History()
	if got := statuses(hist); !slices.Equal(got, []int{200, 409}) {
		t.Errorf("statuses %v, want [200 409]", got)
	}
	checkSameKey(t, hist, recs)
	checkDelivered(t, h.srv, seqRange(1, 4))
	if w := h.clock.waits(); len(w) != 0 {
		t.Errorf("waits %v after a 409", w)
	}
	if st := h.fwd.Status(); st.Delivered != 4 || len(h.src.deadLetters()) != 0 || !st.Online || st.Health != HealthOK {
		t.Errorf("status %+v", st)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	h := newHarness(t, withBatchSize(3))
	h.src.add(3, false)
	h.srv.FailNext(1, http.StatusTooManyRequests, "7")
	h.start()
	if d := h.clock.nextWait(t); d != 7*time.Second {
		t.Fatalf("wait %v, want exactly Retry-After 7s", d)
	}
	st := h.fwd.Status()
	if st.Online || !strings.Contains(st.LastError, "429") || !strings.Contains(st.LastError, "retry after 7s") ||
		!st.NextRetryAt.Equal(t0.Add(7*time.Second)) || st.Health != HealthOffline ||
		st.Problem != "the PWBI cloud asks the agent to slow down (429 Too Many Requests): sales stay buffered and are sent again" {
		t.Errorf("status %+v", st)
	}
	h.clock.Advance(7 * time.Second)
	h.finish()
	checkDelivered(t, h.srv, seqRange(1, 3))
}

func TestRetryAfterHTTPDate(t *testing.T) {
	h := newHarness(t, withBatchSize(3))
	h.src.add(3, false)
	h.srv.FailNext(1, http.StatusServiceUnavailable, t0.Add(90*time.Second).Format(http.TimeFormat))
	h.start()
	if d := h.clock.nextWait(t); d != 90*time.Second {
		t.Fatalf("wait %v, want 90s", d)
	}
	h.clock.Advance(90 * time.Second)
	h.finish()
}

func TestRetryAfterCapped(t *testing.T) {
	h := newHarness(t, withBatchSize(3))
	h.src.add(3, false)
	h.srv.FailNext(1, http.StatusServiceUnavailable, "86400")
	h.start()
	if d := h.clock.nextWait(t); d != time.Hour {
		t.Fatalf("wait %v, want the 1h cap", d)
	}
	h.fwd.Flush() // "Sync now" cuts even a server-requested wait
	h.finish()
}

func Test429WithoutRetryAfterBacksOffExponentially(t *testing.T) {
	h := newHarness(t, withBatchSize(3), func(s setup) {
		s.opts.MaxBackoff = 8 * time.Second
	})
	h.src.add(3, false)
	h.srv.FailNext(5, http.StatusTooManyRequests, "")
	h.start()
	// Rand is 0.5: three quarters of the ceiling 2s, 4s, 8s, 8s (capped)...
	for _, want := range []time.Duration{b1, b2, 6 * time.Second, 6 * time.Second, 6 * time.Second} {
		if d := h.clock.nextWait(t); d != want {
			t.Fatalf("backoff %v, want %v (all: %v)", d, want, h.clock.waits())
		}
		h.clock.Advance(want)
	}
	h.finish()
	if st := h.fwd.Status(); st.ConsecutiveFailures != 0 || st.Delivered != 3 {
		t.Errorf("status %+v", st)
	}
}

func Test413SplitsBatch(t *testing.T) {
	h := newHarness(t, withBatchSize(37))
	h.src.add(37, false)
	h.srv.SetMaxRecords(10)
	h.start()
	h.finish()

	checkDelivered(t, h.srv, seqRange(1, 37))
	var sizes []int
	for _, b := range h.srv.Batches() {
		sizes = append(sizes, len(b.Records))
	}
	if !slices.Equal(sizes, []int{9, 9, 9, 10}) {
		t.Errorf("accepted batch sizes %v, want [9 9 9 10]", sizes)
	}
	if d := h.src.deadLetters(); len(d) != 0 {
		t.Errorf("dead letters %+v", d)
	}
	if w := h.clock.waits(); len(w) != 0 {
		t.Errorf("a split waited: %v", w)
	}
}

func Test413SingleRecordDeadLettered(t *testing.T) {
	h := newHarness(t, withBatchSize(11))
	h.src.add(5, false)
	// 16 KiB of random hex does not compress below the 4 KiB limit.
	rnd := rand.New(rand.NewPCG(1, 2))
	blob := make([]byte, 8<<10)
	for i := range blob {
		blob[i] = byte(rnd.Uint32())
	}
	big := h.src.addData("moka/biz_1/outlet_456/HUGE", []byte(`{"blob":"`+hex.EncodeToString(blob)+`"}`))
	h.src.add(5, false)
	h.srv.SetMaxBodyBytes(4096)
	h.start()
	h.finish()

	checkDelivered(t, h.srv, seqRange(1, 11, big.Seq))
	dead := h.src.deadLetters()
	if len(dead) != 1 || dead[0].Seq != big.Seq || !strings.Contains(dead[0].Reason, "413") {
		t.Fatalf("dead letters %+v", dead)
	}
}

func TestPoisonRecordIsolatedByBisection(t *testing.T) {
	h := newHarness(t, withBatchSize(37))
	recs := h.src.add(37, false)
	poison := recs[22]
	h.srv.Reject(poison.Key, http.StatusUnprocessableEntity)
	h.start()
	h.finish()

	checkDelivered(t, h.srv, seqRange(1, 37, poison.Seq))
	dead := h.src.deadLetters()
	if len(dead) != 1 || dead[0].Seq != poison.Seq {
		t.Fatalf("dead letters %+v, want only seq %d", dead, poison.Seq)
	}
	if r := dead[0].Reason; !strings.Contains(r, "422") || !strings.Contains(r, poison.Key) || len(r) > 700 {
		t.Errorf("reason %q: want the status and the answer naming the key, bounded", r)
	}
	// Bisection costs about two requests per level.
	if n := h.srv.Requests(); n > 2*6+1 {
		t.Errorf("%d requests to isolate one record of 37", n)
	}
	st := h.fwd.Status()
	if st.DeadLettered != 1 || st.Delivered != 36 || st.LastError != "" || !st.Online {
		t.Errorf("status %+v", st)
	}
	if w := h.clock.waits(); len(w) != 0 {
		t.Errorf("bisection waited: %v", w)
	}
}

func TestTwoPoisonRecords(t *testing.T) {
	h := newHarness(t, withBatchSize(40))
	recs := h.src.add(40, false)
	h.srv.Reject(recs[1].Key, http.StatusBadRequest)
	h.srv.Reject(recs[29].Key, http.StatusBadRequest)
	h.start()
	h.finish()
	checkDelivered(t, h.srv, seqRange(1, 40, 2, 30))
	dead := h.src.deadLetters()
	if len(dead) != 2 || dead[0].Seq != 2 || dead[1].Seq != 30 {
		t.Fatalf("dead letters %+v", dead)
	}
}

// A transient failure in the middle of a bisection retries that half with
// its own (unchanged) batch id; order is kept.
func TestTransientFailureDuringBisection(t *testing.T) {
	var srv *upstreamfake.Server
	var once sync.Once
	h := newHarness(t, withBatchSize(16), func(s setup) {
		prev := s.opts.OnResult
		s.opts.OnResult = func(r Result) {
			prev(r)
			if r.Outcome == OutcomeSplit {
				once.Do(func() { srv.FailNext(1, http.StatusBadGateway, "") })
			}
		}
	})
	srv = h.srv
	recs := h.src.add(16, false)
	h.srv.Reject(recs[9].Key, http.StatusUnprocessableEntity)
	h.start()
	if d := h.clock.nextWait(t); d != b1 {
		t.Fatalf("backoff %v", d)
	}
	h.clock.Advance(b1)
	h.finish()

	checkDelivered(t, h.srv, seqRange(1, 16, 10))
	hist := h.srv.History()
	if hist[1].Status != 502 || hist[2].IdempotencyKey != hist[1].IdempotencyKey ||
		hist[1].IdempotencyKey != httpsink.BatchID(testAgent, recs[:8]) {
		t.Errorf("history %+v", hist)
	}
}

func TestUnauthorizedIsRetriedNotBisected(t *testing.T) {
	const right = "other-token-b7e2"
	h := newHarness(t, withBatchSize(10), func(s setup) { s.srvOpts.Token = right })
	recs := h.src.add(10, false)
	h.start()
	if d := h.clock.nextWait(t); d != b1 {
		t.Fatalf("backoff %v", d)
	}
	h.clock.Advance(b1)
	h.clock.nextWait(t)

	// A refused token is not "online": a person must act.
	st := h.fwd.Status()
	if !strings.Contains(st.LastError, "rejected the token") || !strings.Contains(st.LastError, "401") ||
		st.ConsecutiveFailures != 2 || st.Online || st.Health != HealthError ||
		st.Problem != "the PWBI cloud refuses the token (401 Unauthorized): check upstream.token" {
		t.Errorf("status %+v", st)
	}
	if n := h.src.pendingCount(); n != 10 || len(h.src.deadLetters()) != 0 {
		t.Fatalf("pending %d, dead %v", n, h.src.deadLetters())
	}
	res := h.resultList()
	for _, r := range res {
		if r.Records != 10 {
			t.Errorf("a %d-record attempt: the batch was split", r.Records)
		}
	}
	if len(res) != 2 || !errors.Is(res[0].Err, httpsink.ErrUnauthorized) || res[0].StatusCode != 401 || res[0].Outcome != OutcomeRetry {
		t.Errorf("results %+v", res)
	}

	// A new token cuts the backoff short (the clock is not advanced).
	sc := h.sink
	sc.Token = right
	h.update(sc)
	h.finish()
	checkDelivered(t, h.srv, seqRange(1, 10))
	checkSameKey(t, h.srv.History(), recs)
	if st := h.fwd.Status(); !st.Online || st.Health != HealthOK || st.Problem != "" {
		t.Errorf("status after the token was fixed: %+v", st)
	}
}

// Endpoint and credential failures are not record problems: the whole
// batch is retried with backoff, never split or dead-lettered, and the
// status says a person must act.
func TestForbiddenAndEndpointErrorsAreRetried(t *testing.T) {
	for _, tc := range []struct {
		code    int
		problem string
	}{
		{401, "the PWBI cloud refuses the token (401 Unauthorized): check upstream.token"},
		{403, "the PWBI cloud refuses the token (403 Forbidden): check upstream.token"},
		{404, "the upstream answered 404 Not Found: check upstream.url"},
		{405, "the upstream answered 405 Method Not Allowed: check upstream.url"},
		{407, "a proxy on the way to the PWBI cloud asks for credentials (407 Proxy Authentication Required): check the network's proxy settings"},
		{415, "the upstream answered 415 Unsupported Media Type: check upstream.url"},
	} {
		t.Run(http.StatusText(tc.code), func(t *testing.T) {
			h := newHarness(t, withBatchSize(6))
			recs := h.src.add(6, false)
			h.srv.FailNext(2, tc.code, "")
			h.start()
			for _, want := range []time.Duration{b1, b2} {
				if d := h.clock.nextWait(t); d != want {
					t.Fatalf("backoff %v, want %v", d, want)
				}
				st := h.fwd.Status()
				if st.Online || st.Health != HealthError || st.Problem != tc.problem || !strings.Contains(st.LastError, fmt.Sprint(tc.code)) {
					t.Errorf("status %+v", st)
				}
				if n := h.src.pendingCount(); n != 6 {
					t.Fatalf("%d pending, want 6", n)
				}
				h.clock.Advance(want)
			}
			h.finish()
			checkDelivered(t, h.srv, seqRange(1, 6))
			checkSameKey(t, h.srv.History(), recs)
			if d := h.src.deadLetters(); len(d) != 0 {
				t.Errorf("dead letters %+v", d)
			}
			for _, r := range h.resultList() {
				if r.Records != 6 || r.Outcome == OutcomeSplit || r.Outcome == OutcomeDeadLettered || r.Outcome == OutcomeHeld {
					t.Errorf("result %+v: the batch was split or blamed", r)
				}
			}
			if st := h.fwd.Status(); !st.Online || st.Health != HealthOK || st.Problem != "" {
				t.Errorf("status after recovery %+v", st)
			}
		})
	}
}

func TestUpdateURLFromDownToGood(t *testing.T) {
	h := newHarness(t, withBatchSize(10))
	good := upstreamfake.NewServer(t, upstreamfake.Options{Token: testToken})
	h.srv.SetDown(true)
	recs := h.src.add(10, false)
	h.start()
	if d := h.clock.nextWait(t); d != b1 {
		t.Fatalf("backoff %v", d)
	}
	if st := h.fwd.Status(); st.Online || st.LastError == "" || st.Health != HealthOffline ||
		!strings.HasPrefix(st.Problem, "cannot reach the PWBI cloud: ") {
		t.Errorf("status while down: %+v", st)
	}
	sc := h.sink
	sc.URL = good.URL()
	h.update(sc) // cuts the backoff: no clock advance needed
	h.src.waitEmpty(t)

	checkDelivered(t, good, seqRange(1, 10))
	checkSameKey(t, good.History(), recs)
	if n := h.srv.Accepted(); n != 0 {
		t.Errorf("the down server accepted %d", n)
	}
	// New records go to the new URL too.
	h.src.add(100, true)
	h.finish()
	checkDelivered(t, good, seqRange(1, 110))
}

func TestBufferOnlyWithoutURL(t *testing.T) {
	h := newHarness(t, withBatchSize(5), func(s setup) { s.sink.URL = "none" })
	h.src.add(5, false)
	h.start()
	h.fwd.Flush()
	if st := h.fwd.Status(); st.Configured {
		t.Errorf("status %+v, want Configured=false", st)
	}
	sc := h.sink
	sc.URL = h.srv.URL()
	h.update(sc)
	h.finish()
	checkDelivered(t, h.srv, seqRange(1, 5))
	if st := h.fwd.Status(); !st.Configured {
		t.Errorf("status %+v", st)
	}
}

func TestPendingErrorBacksOff(t *testing.T) {
	h := newHarness(t, withBatchSize(3))
	h.src.add(3, false)
	h.src.failPending = 1
	h.start()
	if d := h.clock.nextWait(t); d != b1 {
		t.Fatalf("backoff %v", d)
	}
	if st := h.fwd.Status(); !strings.Contains(st.LastError, "read pending records: disk on fire") ||
		st.Health != HealthError || st.Problem != "cannot read the local buffer: read pending records: disk on fire" {
		t.Errorf("status %+v", st)
	}
	h.clock.Advance(b1)
	h.finish()
	checkDelivered(t, h.srv, seqRange(1, 3))
}

func TestAckFailureResendsAndGets409(t *testing.T) {
	h := newHarness(t, withBatchSize(3))
	h.src.add(3, false)
	h.src.failAck = 1
	h.start()
	if d := h.clock.nextWait(t); d != b1 {
		t.Fatalf("backoff %v", d)
	}
	if st := h.fwd.Status(); !strings.Contains(st.LastError, "ack delivered records") || st.Health != HealthError ||
		st.Problem != "cannot mark delivered records in the local buffer: ack delivered records: disk full" {
		t.Errorf("status %+v", st)
	}
	h.clock.Advance(b1)
	h.finish()
	checkDelivered(t, h.srv, seqRange(1, 3))
	if got := statuses(h.srv.History()); !slices.Equal(got, []int{200, 409}) {
		t.Errorf("statuses %v", got)
	}
}

func TestDeadLetterFailureRereadsBuffer(t *testing.T) {
	h := newHarness(t, withBatchSize(8))
	recs := h.src.add(8, false)
	h.srv.Reject(recs[5].Key, http.StatusUnprocessableEntity)
	h.src.failDead = 1
	h.start()
	if d := h.clock.nextWait(t); d != b1 {
		t.Fatalf("backoff %v", d)
	}
	if st := h.fwd.Status(); !strings.Contains(st.LastError, "dead-letter record 6: disk full") || st.Health != HealthError ||
		st.Problem != "cannot set a rejected record aside in the local buffer: dead-letter record 6: disk full" {
		t.Errorf("status %+v", st)
	}
	h.clock.Advance(b1)
	h.finish()
	checkDelivered(t, h.srv, seqRange(1, 8, 6))
	if d := h.src.deadLetters(); len(d) != 1 || d[0].Seq != 6 {
		t.Errorf("dead letters %+v", d)
	}
}

// The token must not leak through answers that echo it.
func TestTokenRedactedFromAnswers(t *testing.T) {
	var mu sync.Mutex
	n := 0
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		call := n
		mu.Unlock()
		msg := "bad header " + r.Header.Get("Authorization") + "\x00\n\tmore"
		switch call {
		case 1: // the batch of 2: a transient failure
			http.Error(w, msg, http.StatusInternalServerError)
		case 2: // the batch of 2 again: split
			http.Error(w, msg, http.StatusUnprocessableEntity)
		case 4: // the second record, after the first was accepted: poison
			http.Error(w, msg, http.StatusUnprocessableEntity)
		default: // an acknowledgement that also echoes the token
			json.NewEncoder(w).Encode(map[string]string{"batch_id": r.Header.Get("Idempotency-Key"), "note": msg})
		}
	}))
	defer echo.Close()
	h := newHarness(t, withBatchSize(2), func(s setup) { s.sink.URL = echo.URL })
	h.src.add(2, false)
	h.start()
	h.clock.nextWait(t)
	st := h.fwd.Status()
	if !strings.Contains(st.LastError, "<redacted>") || strings.Contains(st.LastError, "\n") {
		t.Errorf("LastError %q", st.LastError)
	}
	h.clock.Advance(b1)
	h.finish()
	dead := h.src.deadLetters()
	if len(dead) != 1 || dead[0].Seq != 2 || strings.Contains(dead[0].Reason, testToken) || !strings.Contains(dead[0].Reason, "<redacted>") {
		t.Errorf("dead letters %+v", dead)
	}
	for _, r := range h.resultList() {
		if r.Err != nil && strings.Contains(r.Err.Error(), testToken) {
			t.Errorf("result error %v", r.Err)
		}
	}
}

func TestDrain(t *testing.T) {
	h := newHarness(t, withBatchSize(500), func(s setup) { s.cfg.FlushInterval = time.Hour })
	h.src.add(1234, false)
	if err := h.fwd.Drain(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if n := h.src.pendingCount(); n != 0 {
		t.Fatalf("%d records left", n)
	}
	checkDelivered(t, h.srv, seqRange(1, 1234))
	if n := len(h.srv.Batches()); n != 3 {
		t.Errorf("%d batches, want 3", n)
	}
	if err := h.fwd.Drain(testCtx(t)); err != nil {
		t.Errorf("Drain of an empty buffer: %v", err)
	}
}

func TestDrainStopsOnFailure(t *testing.T) {
	h := newHarness(t, withBatchSize(5))
	h.src.add(12, false)
	h.srv.FailNext(1, http.StatusServiceUnavailable, "30")
	if err := h.fwd.Drain(testCtx(t)); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Drain = %v, want the 503", err)
	}
	if n := h.src.pendingCount(); n != 12 {
		t.Errorf("%d pending, want 12", n)
	}
	if w := h.clock.waits(); len(w) != 0 {
		t.Errorf("Drain waited %v", w)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.fwd.Drain(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Drain with a cancelled ctx = %v", err)
	}
	// The next Drain resumes where the failed one stopped.
	if err := h.fwd.Drain(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, h.srv, seqRange(1, 12))
}

// Shutdown: Run is cancelled with a batch in flight; Drain resends it with
// the same batch id.
func TestDrainAfterRunCancelled(t *testing.T) {
	h := newHarness(t, withBatchSize(5))
	recs := h.src.add(5, false)
	h.srv.SetDelay(time.Hour)
	h.start()
	if err := h.srv.WaitRequests(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	h.stop()
	if n := h.src.pendingCount(); n != 5 {
		t.Fatalf("%d pending after cancel", n)
	}
	h.srv.SetDelay(0)
	if err := h.fwd.Drain(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, h.srv, seqRange(1, 5))
	if err := h.srv.WaitRequests(testCtx(t), 2); err != nil {
		t.Fatal(err)
	}
	checkSameKey(t, h.srv.History(), recs)
}
