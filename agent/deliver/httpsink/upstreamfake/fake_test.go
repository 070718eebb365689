package upstreamfake

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/store"
)

const token = "fake-token-123"

func rec(seq uint64) store.Record {
	data := fmt.Appendf(nil, `{"external_id":"MOK%d","amount":"1000"}`, seq)
	return store.Record{
		Kind: store.KindTransaction, Key: fmt.Sprintf("moka/b/o/MOK%d", seq),
		Seq: seq, Version: store.Version(data), Data: data,
	}
}

func recs(from, to uint64) []store.Record {
	var out []store.Record
	for s := from; s <= to; s++ {
		out = append(out, rec(s))
	}
	return out
}

// batchJSON encodes a batch with encoding/json, independently of the
// forwarder's encoder.
func batchJSON(t testing.TB, agent, id string, rs []store.Record) []byte {
	t.Helper()
	type wr struct {
		Kind    string          `json:"kind"`
		Key     string          `json:"key"`
		Seq     uint64          `json:"seq"`
		Version string          `json:"version"`
		Data    json.RawMessage `json:"data"`
	}
	b := struct {
		AgentID string `json:"agent_id"`
		BatchID string `json:"batch_id"`
		SentAt  string `json:"sent_at"`
		Records []wr   `json:"records"`
	}{agent, id, "2025-12-26T10:30:00+07:00", nil}
	for _, r := range rs {
		b.Records = append(b.Records, wr{r.Kind, r.Key, r.Seq, r.Version, r.Data})
	}
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

type req struct {
	method, path string
	header       map[string]string
	body         []byte
}

func validReq(t testing.TB, id string, rs []store.Record) req {
	return req{
		method: http.MethodPost, path: Path,
		header: map[string]string{
			"Authorization":    "Bearer " + token,
			"Content-Type":     "application/json",
			"Content-Encoding": "gzip",
			"Idempotency-Key":  id,
		},
		body: gz(batchJSON(t, "pc-1", id, rs)),
	}
}

func (r req) with(k, v string) req {
	h := make(map[string]string, len(r.header))
	for a, b := range r.header {
		h[a] = b
	}
	if v == "" {
		delete(h, k)
	} else {
		h[k] = v
	}
	r.header = h
	return r
}

func do(t testing.TB, ctx context.Context, base string, r req) (*http.Response, []byte, error) {
	t.Helper()
	hr, err := http.NewRequestWithContext(ctx, r.method, base+r.path, bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	// A fresh transport per request: no connection reuse, so the
	// transport never retries on its own.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(hr)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func mustDo(t testing.TB, base string, r req) (int, string) {
	t.Helper()
	resp, body, err := do(t, context.Background(), base, r)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	return resp.StatusCode, string(body)
}

func TestValidation(t *testing.T) {
	s := NewServer(t, Options{Token: token})
	good := validReq(t, "b1", recs(1, 2))
	bad := func(mutate func(map[string]any)) req {
		var m map[string]any
		json.Unmarshal(batchJSON(t, "pc-1", "bx", recs(1, 2)), &m)
		mutate(m)
		raw, _ := json.Marshal(m)
		r := good.with("Idempotency-Key", "bx")
		r.body = gz(raw)
		return r
	}
	badRec := func(field string, v any) req {
		return bad(func(m map[string]any) {
			rs := m["records"].([]any)
			r := rs[1].(map[string]any)
			if v == nil {
				delete(r, field)
			} else {
				r[field] = v
			}
		})
	}
	for _, tc := range []struct {
		name   string
		r      req
		status int
		msg    string
	}{
		{"wrong path", func() req { r := good; r.path = "/v1/batch"; return r }(), 404, "no such path"},
		{"GET", func() req { r := good; r.method = http.MethodGet; return r }(), 405, "method"},
		{"no token", good.with("Authorization", ""), 401, "token"},
		{"wrong token", good.with("Authorization", "Bearer nope"), 401, "token"},
		{"basic auth", good.with("Authorization", "Basic "+token), 401, "token"},
		{"no content type", good.with("Content-Type", ""), 415, "Content-Type"},
		{"text content type", good.with("Content-Type", "text/plain"), 415, "Content-Type"},
		{"no gzip", good.with("Content-Encoding", ""), 415, "Content-Encoding"},
		{"corrupt gzip", func() req { r := good; r.body = r.body[:len(r.body)/2]; return r }(), 400, "gzip"},
		{"not gzip", func() req { r := good; r.body = []byte("{}"); return r }(), 400, "gzip"},
		{"not json", func() req { r := good; r.body = gz([]byte("nope")); return r }(), 400, "not a valid batch"},
		{"trailing data", func() req { r := good; r.body = gz(append(batchJSON(t, "pc-1", "b1", recs(1, 1)), "{}"...)); return r }(), 400, "after the batch"},
		{"unknown field", bad(func(m map[string]any) { m["extra"] = 1 }), 400, "extra"},
		{"no agent", bad(func(m map[string]any) { delete(m, "agent_id") }), 400, "agent_id"},
		{"no batch id", bad(func(m map[string]any) { m["batch_id"] = "" }), 400, "batch_id"},
		{"bad sent_at", bad(func(m map[string]any) { m["sent_at"] = "yesterday" }), 400, "sent_at"},
		{"no records", bad(func(m map[string]any) { m["records"] = []any{} }), 400, "records"},
		{"bad kind", badRec("kind", "sale"), 400, "records[1]: kind"},
		{"no key", badRec("key", ""), 400, "records[1]: key"},
		{"no seq", badRec("seq", nil), 400, "records[1]: seq"},
		{"negative seq", badRec("seq", -1), 400, "not a valid batch"},
		{"bad version", badRec("version", "ABC"), 400, "records[1]: version"},
		{"no data", badRec("data", nil), 400, "records[1]: data is missing"},
		{"array data", badRec("data", []any{1}), 400, "records[1]: data is not a JSON object"},
		{"key mismatch", good.with("Idempotency-Key", "other"), 400, "Idempotency-Key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := mustDo(t, s.URL(), tc.r)
			if status != tc.status || !strings.Contains(body, tc.msg) {
				t.Errorf("got %d %s, want %d containing %q", status, body, tc.status, tc.msg)
			}
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
				t.Errorf("answer %q is not a JSON error", body)
			}
		})
	}
	if n := s.Accepted(); n != 0 {
		t.Errorf("accepted %d records from invalid requests", n)
	}
	if status, body := mustDo(t, s.URL(), good); status != 200 || !strings.Contains(body, `"accepted":2`) {
		t.Errorf("valid batch: %d %s", status, body)
	}
}

func TestAcceptIdempotencyAndOrder(t *testing.T) {
	s := NewServer(t, Options{})
	for _, tc := range []struct {
		id     string
		rs     []store.Record
		status int
	}{
		{"a", recs(1, 3), 200},
		{"a", recs(1, 3), 409}, // replay: not counted
		{"b", recs(4, 5), 200},
		{"c", recs(2, 2), 200}, // older seq: a violation
		{"d", []store.Record{rec(7), rec(6)}, 200},
	} {
		r := validReq(t, tc.id, tc.rs).with("Authorization", "")
		if status, body := mustDo(t, s.URL(), r); status != tc.status {
			t.Fatalf("batch %s: %d %s, want %d", tc.id, status, body, tc.status)
		}
	}
	if n := s.OrderViolations(); n != 2 {
		t.Errorf("OrderViolations = %d, want 2", n)
	}
	var got []uint64
	for _, r := range s.Records() {
		got = append(got, r.Seq)
	}
	if fmt.Sprint(got) != "[1 2 3 4 5 2 7 6]" {
		t.Errorf("records %v", got)
	}
	if k := s.Keys(); k["moka/b/o/MOK2"] != 2 || k["moka/b/o/MOK1"] != 1 {
		t.Errorf("keys %v", k)
	}
	b := s.Batches()
	if len(b) != 4 || b[0].ID != "a" || b[0].AgentID != "pc-1" || b[0].SentAt.IsZero() {
		t.Errorf("batches %+v", b)
	}
	if n := s.Requests(); n != 5 {
		t.Errorf("requests %d", n)
	}
}

func TestFaults(t *testing.T) {
	s := NewServer(t, Options{Token: token})
	r := validReq(t, "b1", recs(1, 2))

	s.FailNext(2, 503, "7")
	for range 2 {
		resp, _, err := do(t, context.Background(), s.URL(), r)
		if err != nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "7" {
			t.Fatalf("FailNext: %v %v", resp, err)
		}
	}

	s.CloseNext(1)
	if _, _, err := do(t, context.Background(), s.URL(), r); err == nil {
		t.Fatal("CloseNext: got an answer")
	}

	s.SetDown(true)
	if _, _, err := do(t, context.Background(), s.URL(), r); err == nil {
		t.Fatal("down: got an answer")
	}
	s.SetDown(false)

	s.TruncateNext(1)
	resp, _, err := do(t, context.Background(), s.URL(), r)
	if resp == nil || resp.StatusCode != 200 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("TruncateNext: %v, %v; want 200 and an unexpected EOF", resp, err)
	}
	if s.Accepted() != 2 {
		t.Fatal("a truncated answer's batch must be accepted")
	}
	if status, _ := mustDo(t, s.URL(), r); status != 409 {
		t.Fatalf("replay after truncation: %d", status)
	}

	s.Reject("moka/b/o/MOK4", 422)
	status, body := mustDo(t, s.URL(), validReq(t, "b2", recs(3, 5)))
	if status != 422 || !strings.Contains(body, "moka/b/o/MOK4") {
		t.Fatalf("Reject: %d %s", status, body)
	}
	s.Reject("moka/b/o/MOK4", 0)

	s.SetMaxRecords(2)
	if status, _ := mustDo(t, s.URL(), validReq(t, "b2", recs(3, 5))); status != 413 {
		t.Fatalf("SetMaxRecords: %d", status)
	}
	s.SetMaxRecords(0)
	s.SetMaxBodyBytes(10)
	if status, _ := mustDo(t, s.URL(), validReq(t, "b2", recs(3, 5))); status != 413 {
		t.Fatalf("SetMaxBodyBytes: %d", status)
	}
	s.SetMaxBodyBytes(0)
	if status, _ := mustDo(t, s.URL(), validReq(t, "b2", recs(3, 5))); status != 200 {
		t.Fatalf("after clearing the limits: %d", status)
	}

	hist := s.History()
	var got []int
	for _, h := range hist {
		got = append(got, h.Status)
	}
	if fmt.Sprint(got) != "[503 503 0 0 200 409 422 413 413 200]" || !hist[4].Truncated {
		t.Errorf("history statuses %v", got)
	}
	if s.OrderViolations() != 0 {
		t.Errorf("violations %d", s.OrderViolations())
	}
}

// A client that gives up during a delay gets nothing and the batch is not
// accepted.
func TestDelayHonoursClientCancel(t *testing.T) {
	s := NewServer(t, Options{})
	s.SetDelay(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, _, err := do(t, ctx, s.URL(), validReq(t, "b1", recs(1, 1)))
		errc <- err
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	if err := s.WaitRequests(wctx, 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("client error %v", err)
	}
	s.SetDelay(0)
	if status, _ := mustDo(t, s.URL(), validReq(t, "b1", recs(1, 1))); status != 200 {
		t.Fatalf("after the delay: %d (the abandoned batch must not count)", status)
	}
}

func TestCloseEndsDelayedAnswers(t *testing.T) {
	s := New(Options{})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	s.SetDelay(time.Hour)
	errc := make(chan error, 1)
	go func() {
		_, _, err := do(t, context.Background(), s.URL(), validReq(t, "b1", recs(1, 1)))
		errc <- err
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	if err := s.WaitRequests(wctx, 1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := <-errc; err == nil {
		t.Fatal("got an answer from a closed server")
	}
}

func TestHandlerOnOwnServer(t *testing.T) {
	s := New(Options{Token: token, Discard: true})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	if status, _ := mustDo(t, hs.URL, validReq(t, "b1", recs(1, 3))); status != 200 {
		t.Fatalf("status %d", status)
	}
	if s.Accepted() != 3 || len(s.Records()) != 0 || len(s.Keys()) != 0 {
		t.Errorf("Discard: accepted %d, kept %d", s.Accepted(), len(s.Records()))
	}
	if status, _ := mustDo(t, hs.URL, validReq(t, "b1", recs(1, 3))); status != 409 {
		t.Errorf("Discard must keep idempotency: %d", status)
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(batchJSON(f, "pc-1", "b1", recs(1, 2)))
	f.Add([]byte(`{"agent_id":"a","batch_id":"b","sent_at":"2025-01-01T00:00:00Z","records":[{}]}`))
	f.Add([]byte(`{"records":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := decodeBatch(data)
		if err != nil {
			return
		}
		if b.ID == "" || b.AgentID == "" || len(b.Records) == 0 {
			t.Fatalf("accepted an incomplete batch %+v", b)
		}
		for _, r := range b.Records {
			if checkRecord(wireRecord{r.Kind, r.Key, r.Seq, r.Version, r.Data}) != nil || !json.Valid(r.Data) {
				t.Fatalf("accepted an invalid record %+v", r)
			}
		}
	})
}

// The fault answers are not acknowledgements, and a request answered with
// one is never recorded as accepted.
func TestFaultAnswers(t *testing.T) {
	s := NewServer(t, Options{Token: token})
	r := validReq(t, "b1", recs(1, 2))
	for _, tc := range []struct {
		fault  Fault
		status int
		check  func(h http.Header, body string) bool
	}{
		{FaultHTMLPage, 200, func(h http.Header, body string) bool {
			return strings.HasPrefix(h.Get("Content-Type"), "text/html") && body == PortalPage
		}},
		{FaultEmpty, 200, func(h http.Header, body string) bool { return body == "" }},
		{FaultWrongBatchID, 200, func(h http.Header, body string) bool {
			var a struct {
				BatchID string `json:"batch_id"`
			}
			return json.Unmarshal([]byte(body), &a) == nil && a.BatchID == WrongBatchID
		}},
		{FaultRedirect, 302, func(h http.Header, body string) bool { return h.Get("Location") == RedirectURL }},
		{FaultRejectAll, 400, func(h http.Header, body string) bool {
			return strings.Contains(body, `{"error":"agent_id not registered"}`)
		}},
	} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			s.FaultNext(1, tc.fault)
			// A client that does not follow redirects, as the forwarder.
			hr, _ := http.NewRequest(r.method, s.URL()+r.path, bytes.NewReader(r.body))
			for k, v := range r.header {
				hr.Header.Set(k, v)
			}
			c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := c.Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !tc.check(resp.Header, string(body)) {
				t.Errorf("answer %d %v %q", resp.StatusCode, resp.Header, body)
			}
			if s.Accepted() != 0 || len(s.Records()) != 0 || len(s.Batches()) != 0 || len(s.Keys()) != 0 {
				t.Errorf("a faulted request was recorded as accepted")
			}
		})
	}
	// FaultNext is used up: the batch is accepted with an echo; SetFault
	// lasts until cleared.
	if status, body := mustDo(t, s.URL(), r); status != 200 || !strings.Contains(body, `"batch_id":"b1"`) {
		t.Fatalf("after the faults: %d %s", status, body)
	}
	if status, body := mustDo(t, s.URL(), r); status != 409 || !strings.Contains(body, `"batch_id":"b1"`) {
		t.Fatalf("replay: %d %s, want a 409 echoing the batch", status, body)
	}
	s.SetFault(FaultRejectAll)
	for range 2 {
		if status, _ := mustDo(t, s.URL(), validReq(t, "b2", recs(3, 4))); status != 400 {
			t.Fatalf("SetFault(FaultRejectAll): %d", status)
		}
	}
	// FaultRejectAll still checks the token first, as the service would.
	if status, _ := mustDo(t, s.URL(), validReq(t, "b2", recs(3, 4)).with("Authorization", "Bearer nope")); status != 401 {
		t.Fatalf("wrong token under FaultRejectAll: %d", status)
	}
	s.SetFault(FaultNone)
	if status, _ := mustDo(t, s.URL(), validReq(t, "b2", recs(3, 4))); status != 200 {
		t.Fatalf("after SetFault(FaultNone): %d", status)
	}
	if n := s.Accepted(); n != 4 {
		t.Errorf("accepted %d, want 4", n)
	}
	var got []int
	for _, h := range s.History() {
		got = append(got, h.Status)
	}
	if fmt.Sprint(got) != "[200 200 200 302 400 200 409 400 400 401 200]" {
		t.Errorf("history %v", got)
	}
}

func TestRejectWithMessage(t *testing.T) {
	s := NewServer(t, Options{})
	s.RejectWithMessage("moka/b/o/MOK2", 422, "invalid amount")
	s.RejectWithMessage("moka/b/o/MOK3", 422, "invalid amount")
	_, b2 := mustDo(t, s.URL(), validReq(t, "x", recs(2, 2)))
	status, b3 := mustDo(t, s.URL(), validReq(t, "y", recs(3, 3)))
	if status != 422 || b2 != b3 || b2 != `{"error":"invalid amount"}`+"\n" {
		t.Fatalf("answers %q and %q, want the same one", b2, b3)
	}
	s.RejectWithMessage("moka/b/o/MOK2", 0, "")
	s.Reject("moka/b/o/MOK3", 0)
	if status, _ := mustDo(t, s.URL(), validReq(t, "z", recs(2, 3))); status != 200 {
		t.Fatalf("after removing the rules: %d", status)
	}
}

func TestParseFault(t *testing.T) {
	for f := FaultNone; f <= FaultRejectAll; f++ {
		if got, err := ParseFault(f.String()); err != nil || got != f {
			t.Errorf("ParseFault(%q) = %v, %v", f.String(), got, err)
		}
	}
	if _, err := ParseFault("portal"); err == nil {
		t.Error("ParseFault accepted an unknown name")
	}
}
