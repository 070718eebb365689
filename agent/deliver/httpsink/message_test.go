package httpsink

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/agent/deliver/httpsink/upstreamfake"
	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/internal/testutil"
)

// TestProblemMessages: every fault of the upstream a person can act on is
// answered with a Problem worded as a message of the health catalogue —
// its code, its parameters (the data, never the token), and the English
// sentence the status always showed — which reads in Indonesian without
// an English sentence left (issue: the Wi-Fi login page in Indonesian).
func TestProblemMessages(t *testing.T) {
	recs := testRecords(3)
	// A server of the wrong kind, for the answers the fake never gives.
	odd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("answer") {
		case "text":
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("OK")) //nolint:errcheck
		case "huge":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"pad":"` + strings.Repeat("x", maxResponseBody) + `"}`)) //nolint:errcheck
		case "refuse":
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer odd.Close()
	oddURL := func(answer string) string { return odd.URL + "/?answer=" + answer }

	for _, tc := range []struct {
		name    string
		url     string // default: the fake's
		timeout time.Duration
		inject  func(*upstreamfake.Server)
		code    string
		text    string
		uniform bool // the UniformProblem of a rejection rather than the Problem
	}{
		{"captive portal", "", 0, func(s *upstreamfake.Server) { s.SetFault(upstreamfake.FaultHTMLPage) }, "HealthUpstreamWebPage",
			"the upstream answered with a web page, not an acknowledgement: is a Wi-Fi login page in the way?", false},
		{"portal redirect", "", 0, func(s *upstreamfake.Server) { s.SetFault(upstreamfake.FaultRedirect) }, "HealthUpstreamRedirect",
			"the upstream redirects to wifi-login.cafe.example (302 Found) instead of acknowledging: is a Wi-Fi login page in the way, or is upstream.url wrong?", false},
		{"redirect without a place", "", 0, func(s *upstreamfake.Server) { s.FailNext(1, 302, "") }, "HealthUpstreamRedirectElsewhere",
			"the upstream redirects elsewhere (302 Found) instead of acknowledging: is a Wi-Fi login page in the way, or is upstream.url wrong?", false},
		{"empty answer", "", 0, func(s *upstreamfake.Server) { s.SetFault(upstreamfake.FaultEmpty) }, "HealthUpstreamEmptyAnswer",
			"the upstream answered 200 OK with an empty body, not an acknowledgement", false},
		{"another batch", "", 0, func(s *upstreamfake.Server) { s.SetFault(upstreamfake.FaultWrongBatchID) }, "HealthUpstreamOtherBatch",
			"the upstream answered 200 OK but acknowledged a different batch, not the one sent: is a caching proxy in the way?", false},
		{"json without batch id", "", 0, func(s *upstreamfake.Server) { s.FailNext(1, 200, "") }, "HealthUpstreamNoBatchID",
			"the upstream answered 200 OK without the batch id, not an acknowledgement: is upstream.url the PWBI cloud?", false},
		{"not json", oddURL("text"), 0, nil, "HealthUpstreamNotJSON",
			"the upstream answered 200 OK with something that is not JSON, not an acknowledgement: is upstream.url the PWBI cloud?", false},
		{"answer too large", oddURL("huge"), 0, nil, "HealthUpstreamAnswerTooLarge",
			"the upstream answered 200 OK with an answer too large to check, not an acknowledgement: is upstream.url the PWBI cloud?", false},
		{"token refused", "", 0, func(s *upstreamfake.Server) { s.FailNext(1, 401, "") }, "HealthUpstreamToken",
			"the PWBI cloud refuses the token (401 Unauthorized): check upstream.token", false},
		{"token forbidden", "", 0, func(s *upstreamfake.Server) { s.FailNext(1, 403, "") }, "HealthUpstreamToken",
			"the PWBI cloud refuses the token (403 Forbidden): check upstream.token", false},
		{"proxy login", "", 0, func(s *upstreamfake.Server) { s.FailNext(1, 407, "") }, "HealthUpstreamProxyAuth",
			"a proxy on the way to the PWBI cloud asks for credentials (407 Proxy Authentication Required): check the network's proxy settings", false},
		{"slow down", "", 0, func(s *upstreamfake.Server) { s.FailNext(1, 429, "") }, "HealthUpstreamSlowDown",
			"the PWBI cloud asks the agent to slow down (429 Too Many Requests): sales stay buffered and are sent again", false},
		{"unavailable", "", 0, func(s *upstreamfake.Server) { s.FailNext(1, 503, "") }, "HealthUpstreamUnavailable",
			"the PWBI cloud is not available (503 Service Unavailable): sales stay buffered and are sent again", false},
		{"request timeout", "", 0, func(s *upstreamfake.Server) { s.FailNext(1, 408, "") }, "HealthUpstreamTryAgain",
			"the PWBI cloud answered 408 Request Timeout: the batch is sent again", false},
		{"wrong path", "", 0, func(s *upstreamfake.Server) { s.FailNext(1, 404, "") }, "HealthUpstreamEndpoint",
			"the upstream answered 404 Not Found: check upstream.url", false},
		{"nonsense status", "", 0, func(s *upstreamfake.Server) { s.FailNext(1, 600, "") }, "HealthUpstreamUnexpected",
			"the upstream answered 600, which the agent does not understand: check upstream.url", false},
		{"down", "", 0, func(s *upstreamfake.Server) { s.SetDown(true) }, "HealthUpstreamUnreachable",
			"cannot reach the PWBI cloud: the connection was closed without an answer", false},
		{"answer cut off", "", 0, func(s *upstreamfake.Server) { s.TruncateNext(1) }, "HealthUpstreamCutOff",
			"the answer of the PWBI cloud was cut off", false},
		{"no answer in time", "", 50 * time.Millisecond, func(s *upstreamfake.Server) { s.SetDelay(time.Hour) }, "HealthUpstreamTimeout",
			"the PWBI cloud did not answer within 50ms", false},
		{"not a url", "ftp://u:" + testToken + "@x", 0, nil, "HealthUpstreamBadURL",
			"upstream.url is not a valid address: it must start with http:// or https:// and name a host", false},
		{"every record refused", "", 0, func(s *upstreamfake.Server) { s.SetFault(upstreamfake.FaultRejectAll) }, "HealthUpstreamRefusesAllSaying",
			`the PWBI cloud refuses every record with 400 Bad Request: {"error":"agent_id not registered"}`, true},
		{"every record refused without a word", oddURL("refuse"), 0, nil, "HealthUpstreamRefusesAll",
			"the PWBI cloud refuses every record with 400 Bad Request", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := upstreamfake.NewServer(t, upstreamfake.Options{Token: testToken})
			if tc.inject != nil {
				tc.inject(srv)
			}
			url := tc.url
			if url == "" {
				url = srv.URL()
			}
			s := New(Config{URL: url, Token: testToken, AgentID: testAgent, Timeout: tc.timeout}, Options{Clock: clockwork.NewRealClock()})
			a := s.Send(context.Background(), recs)
			m := sink.Message{Code: a.ProblemCode, Params: a.ProblemParams, Text: a.Problem}
			if tc.uniform {
				if a.Verdict != sink.Rejected || a.Problem != "" || a.ProblemCode != "" {
					t.Fatalf("want a rejection: %+v", a)
				}
				m = sink.Message{Code: a.UniformProblemCode, Params: a.UniformProblemParams, Text: a.UniformProblem}
			} else if a.Verdict != sink.Retry {
				t.Fatalf("want a retry: %+v", a)
			}
			checkMessage(t, m, tc.code, tc.text, testToken)
		})
	}
}

// checkMessage checks a sink's problem m: its code, its English text
// (what the catalogue renders from code and parameters), and its
// Indonesian, which holds the parameters and no sentence of the English
// catalogue.
func checkMessage(t *testing.T, m sink.Message, code, text, secret string) {
	t.Helper()
	if m.Code != code || m.Text != text {
		t.Errorf("problem %s %q,\nwant %s %q", m.Code, m.Text, code, text)
	}
	testutil.CheckTranslated(t, testutil.Message(m), secret)
}

// TestCodesInCatalogue: every message id this package words a problem with
// is in the health catalogue (the sentences no test drives — an encoding
// failure, a request that cannot be built — included).
func TestCodesInCatalogue(t *testing.T) {
	testutil.CodesInCatalogue(t, `sink\.Say\("(\w+)"`, 20)
}
