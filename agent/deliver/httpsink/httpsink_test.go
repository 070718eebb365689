package httpsink

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/agent/deliver/httpsink/upstreamfake"
	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/store"
)

// testRecords returns n well-formed records, seqs from 1.
func testRecords(n int) []store.Record {
	out := make([]store.Record, n)
	for i := range out {
		seq := uint64(i + 1)
		data := fmt.Appendf(nil, `{"external_id":"MOK%d","source_system":"moka","amount":"%d"}`, seq, 25000+seq)
		out[i] = store.Record{
			Kind:    store.KindTransaction,
			Key:     fmt.Sprintf("moka/biz_1/outlet_456/MOK%d", seq),
			Seq:     seq,
			Version: store.Version(data),
			Data:    data,
			AddedAt: t0,
		}
	}
	return out
}

// What each answer of the upstream means for the delivery loop, straight
// from Send: the verdict, the health and Problem a person sees, the wait
// asked for, and the key that tells two rejections apart.
func TestSendAnswers(t *testing.T) {
	recs := testRecords(3)
	for _, tc := range []struct {
		name    string
		inject  func(*upstreamfake.Server)
		verdict sink.Verdict
		status  int
		health  sink.Health
		problem string
		after   time.Duration
		is      error
	}{
		{"acknowledged", func(*upstreamfake.Server) {}, sink.Accepted, 200, sink.HealthOK, "", 0, nil},
		{"503 with Retry-After", func(s *upstreamfake.Server) { s.FailNext(1, 503, "7") }, sink.Retry, 503, sink.HealthOffline,
			"the PWBI cloud is not available (503 Service Unavailable): sales stay buffered and are sent again", 7 * time.Second, nil},
		{"503 with a day's Retry-After: capped", func(s *upstreamfake.Server) { s.FailNext(1, 503, "86400") }, sink.Retry, 503, sink.HealthOffline,
			"the PWBI cloud is not available (503 Service Unavailable): sales stay buffered and are sent again", time.Hour, nil},
		{"503 with a Retry-After date", func(s *upstreamfake.Server) { s.FailNext(1, 503, t0.Add(90*time.Second).Format(http.TimeFormat)) }, sink.Retry, 503, sink.HealthOffline,
			"the PWBI cloud is not available (503 Service Unavailable): sales stay buffered and are sent again", 90 * time.Second, nil},
		{"401", func(s *upstreamfake.Server) { s.FailNext(1, 401, "") }, sink.Retry, 401, sink.HealthError,
			"the PWBI cloud refuses the token (401 Unauthorized): check upstream.token", 0, ErrUnauthorized},
		{"404", func(s *upstreamfake.Server) { s.FailNext(1, 404, "") }, sink.Retry, 404, sink.HealthError,
			"the upstream answered 404 Not Found: check upstream.url", 0, nil},
		{"captive portal", func(s *upstreamfake.Server) { s.FaultNext(1, upstreamfake.FaultHTMLPage) }, sink.Retry, 200, sink.HealthError,
			"the upstream answered with a web page, not an acknowledgement: is a Wi-Fi login page in the way?", 0, ErrNotAcknowledged},
		{"closed connection", func(s *upstreamfake.Server) { s.CloseNext(1) }, sink.Retry, 0, sink.HealthOffline,
			"cannot reach the PWBI cloud: the connection was closed without an answer", 0, nil},
		{"413", func(s *upstreamfake.Server) { s.SetMaxRecords(2) }, sink.TooLarge, 413, "", "", 0, nil},
		{"422", func(s *upstreamfake.Server) { s.Reject(recs[1].Key, 422) }, sink.Rejected, 422, "", "", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := upstreamfake.NewServer(t, upstreamfake.Options{Token: testToken})
			tc.inject(srv)
			s := New(Config{URL: srv.URL(), Token: testToken, AgentID: testAgent}, Options{Clock: clockwork.NewFakeClockAt(t0)})
			a := s.Send(context.Background(), recs)
			if a.Verdict != tc.verdict || a.StatusCode != tc.status || a.Health != tc.health || a.Problem != tc.problem ||
				a.RetryAfter != tc.after || a.BatchID != BatchID(testAgent, recs) {
				t.Errorf("answer %+v", a)
			}
			if (a.Err == nil) != (tc.verdict == sink.Accepted) || (tc.is != nil && !errors.Is(a.Err, tc.is)) {
				t.Errorf("Err %v", a.Err)
			}
			rejection := tc.verdict == sink.TooLarge || tc.verdict == sink.Rejected
			if rejection != (a.Same != "" && a.UniformProblem != "") {
				t.Errorf("Same %q, UniformProblem %q", a.Same, a.UniformProblem)
			}
			if a.Err != nil && strings.Contains(a.Err.Error()+a.Problem+a.Detail, testToken) {
				t.Errorf("the token leaks: %+v", a)
			}
		})
	}
}

// Two rejections are the same answer exactly when status and body are.
func TestRejectionSameAnswer(t *testing.T) {
	srv := upstreamfake.NewServer(t, upstreamfake.Options{Token: testToken})
	recs := testRecords(4)
	srv.Reject(recs[0].Key, 422)                    // names the record
	srv.Reject(recs[1].Key, 422)                    // names another record
	srv.RejectWithMessage(recs[2].Key, 400, "same") // does not name it
	srv.RejectWithMessage(recs[3].Key, 400, "same")
	s := New(Config{URL: srv.URL(), Token: testToken, AgentID: testAgent}, Options{})
	var as []sink.Answer
	for _, r := range recs {
		a := s.Send(context.Background(), []store.Record{r})
		if a.Verdict != sink.Rejected {
			t.Fatalf("seq %d: %+v", r.Seq, a)
		}
		as = append(as, a)
	}
	if as[0].Same == as[1].Same || as[2].Same != as[3].Same || as[1].Same == as[2].Same {
		t.Errorf("Same keys %q", []string{as[0].Same, as[1].Same, as[2].Same, as[3].Same})
	}
	if !strings.Contains(as[0].Detail, recs[0].Key) || !strings.Contains(as[0].Err.Error(), "422") ||
		as[2].UniformProblem != `the PWBI cloud refuses every record with 400 Bad Request: {"error":"same"}` {
		t.Errorf("answers %+v", as)
	}
}

// A batch abandoned because ctx ended is Canceled, not a failure to show;
// an invalid URL is an error a person must fix, and nothing is sent.
func TestSendCanceledAndInvalidURL(t *testing.T) {
	srv := upstreamfake.NewServer(t, upstreamfake.Options{Token: testToken})
	srv.SetDelay(time.Hour)
	s := New(Config{URL: srv.URL(), Token: testToken, AgentID: testAgent}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan sink.Answer, 1)
	go func() { done <- s.Send(ctx, testRecords(2)) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	if err := srv.WaitRequests(wctx, 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if a := <-done; a.Verdict != sink.Canceled || a.Err != nil {
		t.Errorf("canceled: %+v", a)
	}

	bad := New(Config{URL: "ftp://u:" + testToken + "@x", Token: testToken, AgentID: testAgent}, Options{})
	a := bad.Send(context.Background(), testRecords(1))
	if a.Verdict != sink.Retry || a.Health != sink.HealthError || a.StatusCode != 0 ||
		a.Problem != "upstream.url is not a valid address: it must start with http:// or https:// and name a host" ||
		strings.Contains(a.Err.Error(), testToken) {
		t.Errorf("invalid URL: %+v", a)
	}
}

// The endpoint identity tells a new URL, token or agent id from an
// unchanged configuration, is "" without a URL, and shows none of them.
func TestEndpoint(t *testing.T) {
	base := Config{URL: "https://ingest.example", Token: testToken, AgentID: testAgent, Timeout: time.Second}
	id := New(base, Options{}).Endpoint()
	if id == "" || strings.Contains(id, testToken) || strings.Contains(id, "ingest") || strings.Contains(id, testAgent) {
		t.Fatalf("Endpoint %q", id)
	}
	same := base
	same.Timeout = time.Minute // not where nor as whom
	if New(same, Options{UserAgent: "x"}).Endpoint() != id {
		t.Error("an unchanged endpoint got a new identity")
	}
	for _, c := range []Config{
		{URL: "https://other.example", Token: base.Token, AgentID: base.AgentID},
		{URL: base.URL, Token: "other-token-b7e2", AgentID: base.AgentID},
		{URL: base.URL, Token: base.Token, AgentID: "outlet-pc-02"},
		// Field boundaries count: no two configurations share an identity
		// by moving characters from one field to the next.
		{URL: base.URL + testToken[:3], Token: testToken[3:], AgentID: base.AgentID},
	} {
		if New(c, Options{}).Endpoint() == id {
			t.Errorf("%+v has the identity of %+v", c, base)
		}
	}
	if e := New(Config{Token: testToken}, Options{}).Endpoint(); e != "" {
		t.Errorf("Endpoint without a URL = %q, want empty", e)
	}
}
