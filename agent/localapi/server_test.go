package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// fakeBackend records what the API asked of it. Safe for concurrent use
// (the browser test calls it from server goroutines).
type fakeBackend struct {
	calls                  atomic.Int32 // every call but Status
	syncs, pauses, resumes atomic.Int32
	mu                     sync.Mutex
	st                     Status
	syncErr                error
	imports                []ImportRequest
	reload                 ReloadResult
	dead                   []DeadLetter
	deadLimit              int
	deadWithData           bool
	deadSink               string
	requeues               []RequeueRequest
	requeueErr             error
}

func (b *fakeBackend) Status(context.Context) Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.st
}

func (b *fakeBackend) SyncNow(context.Context) error {
	b.calls.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.syncErr != nil {
		return b.syncErr
	}
	b.syncs.Add(1)
	return nil
}

func (b *fakeBackend) Import(_ context.Context, req ImportRequest) error {
	b.calls.Add(1)
	if req.Since == "bad" {
		return &BadRequestError{Err: errors.New("since: not a date")}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.imports = append(b.imports, req)
	return nil
}

func (b *fakeBackend) Pause(context.Context) error {
	b.calls.Add(1)
	b.pauses.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.st.State = StatePaused
	return nil
}

func (b *fakeBackend) Resume(context.Context) error {
	b.calls.Add(1)
	b.resumes.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.st.State = StateOK
	return nil
}

func (b *fakeBackend) Reload(context.Context) ReloadResult {
	b.calls.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reload
}

func (b *fakeBackend) DeadLetters(_ context.Context, q DeadLetterQuery) ([]DeadLetter, error) {
	b.calls.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deadLimit, b.deadWithData, b.deadSink = q.Limit, q.WithData, q.Sink
	if q.Sink == "nope" {
		return nil, &BadRequestError{Err: errors.New(`unknown sink "nope"`)}
	}
	// Like a sloppy backend, always include the data: the server must
	// strip it when it was not asked for.
	var out []DeadLetter
	for _, d := range b.dead {
		if q.Sink == "" || d.Sink == q.Sink {
			out = append(out, d)
		}
	}
	return out[:min(q.Limit, len(out))], nil
}

func (b *fakeBackend) Requeue(_ context.Context, req RequeueRequest) (RequeueResult, error) {
	b.calls.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.requeueErr != nil {
		return RequeueResult{}, b.requeueErr
	}
	b.requeues = append(b.requeues, req)
	res := RequeueResult{}
	for _, id := range req.IDs {
		if id == 99 {
			res.NotRequeued = append(res.NotRequeued, "99: no such dead letter")
			continue
		}
		res.Requeued++
	}
	if req.All {
		res.Requeued = len(b.dead)
	}
	return res, nil
}

var _ Backend = (*fakeBackend)(nil)

func testMetrics(t *testing.T) http.Handler {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "pwbi_agent_test_total", Help: "Test counter."})
	c.Add(7)
	reg.MustRegister(c)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

type guardCase struct {
	name   string
	method string
	path   string
	host   string
	hdr    map[string]string
	body   string
	want   int
	ct     string // Content-Type prefix of the answer; "" means JSON
}

func TestGuards(t *testing.T) {
	const host = "127.0.0.1:8687"
	const self = "http://" + host
	evil := map[string]string{"Origin": "https://evil.example"}
	form := func(origin string) map[string]string {
		return map[string]string{"Origin": origin, "Content-Type": "application/x-www-form-urlencoded",
			"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Sec-Fetch-Site": "same-origin"}
	}
	tests := []guardCase{
		{"status from localhost", "GET", "/v1/status", host, nil, "", 200, ""},
		{"status by name", "GET", "/v1/status", "localhost:8687", nil, "", 200, ""},
		{"status ipv6 loopback", "GET", "/v1/status", "[::1]:8687", nil, "", 200, ""},
		{"rebinding host", "GET", "/v1/status", "evil.example:8687", nil, "", 403, ""},
		{"lan host", "GET", "/v1/status", "192.168.1.10:8687", nil, "", 403, ""},
		{"status read cross-site", "GET", "/v1/status", host, map[string]string{"Sec-Fetch-Site": "cross-site"}, "", 403, ""},
		{"dead letters read same-site", "GET", "/v1/queue/dead", host, map[string]string{"Sec-Fetch-Site": "same-site"}, "", 403, ""},
		{"metrics read cross-site", "GET", "/metrics", host, map[string]string{"Sec-Fetch-Site": "cross-site"}, "", 403, ""},
		{"dashboard opened from a link elsewhere", "GET", "/", host, map[string]string{"Sec-Fetch-Site": "cross-site"}, "", 200, "text/html"},
		{"dashboard typed in", "GET", "/", host, map[string]string{"Sec-Fetch-Site": "none"}, "", 200, "text/html"},
		{"dashboard HEAD", "HEAD", "/", host, nil, "", 200, "text/html"},
		{"metrics", "GET", "/metrics", host, nil, "", 200, "text/plain"},
		{"sync from cli (no origin)", "POST", "/v1/sync", host, nil, "", 202, ""},
		{"sync same origin", "POST", "/v1/sync", host, map[string]string{"Origin": self}, "", 202, ""},
		{"sync cross-site origin", "POST", "/v1/sync", host, evil, "", 403, ""},
		{"sync null origin", "POST", "/v1/sync", host, map[string]string{"Origin": "null"}, "", 403, ""},
		{"sync other port", "POST", "/v1/sync", host, map[string]string{"Origin": "http://127.0.0.1:9999"}, "", 403, ""},
		{"sync fetch cross-site", "POST", "/v1/sync", host, map[string]string{"Sec-Fetch-Site": "cross-site"}, "", 403, ""},
		{"sync form cross-site", "POST", "/v1/sync", host, form("https://evil.example"), "", 403, ""},
		{"sync via GET", "GET", "/v1/sync", host, nil, "", 405, ""},
		{"status via POST", "POST", "/v1/status", host, nil, "", 405, ""},
		{"dashboard via POST", "POST", "/", host, nil, "", 405, ""},
		{"metrics via POST", "POST", "/metrics", host, nil, "", 405, ""},
		{"pause via GET", "GET", "/v1/pause", host, nil, "", 405, ""},
		{"dead letters via POST", "POST", "/v1/queue/dead", host, nil, "", 405, ""},
		{"retry via GET", "GET", "/v1/queue/retry", host, nil, "", 405, ""},
		{"unknown path", "GET", "/v1/nope", host, nil, "", 404, ""},
		{"favicon", "GET", "/favicon.ico", host, nil, "", 404, ""},
		{"pause from cli", "POST", "/v1/pause", host, nil, "", 200, ""},
		{"resume from cli", "POST", "/v1/resume", host, nil, "", 200, ""},
		{"reload from cli", "POST", "/v1/reload", host, nil, "", 200, ""},
		{"retry from cli", "POST", "/v1/queue/retry", host, nil, `{"ids":[1]}`, 200, ""},
		{"sync form from the dashboard", "POST", "/v1/sync", host, form(self), "", 303, ""},
		{"pause form from the dashboard", "POST", "/v1/pause", host, form(self), "", 303, ""},
		{"resume form from the dashboard", "POST", "/v1/resume", host, form(self), "", 303, ""},
		{"retry as a form", "POST", "/v1/queue/retry", host, form(self), "ids=1", 415, ""},
	}
	// Every endpoint refuses a foreign Host; every state change a foreign
	// Origin.
	for _, ep := range []struct{ method, path, body string }{
		{"GET", "/", ""}, {"GET", "/metrics", ""}, {"GET", "/v1/status", ""}, {"GET", "/v1/queue/dead", ""},
		{"POST", "/v1/sync", ""}, {"POST", "/v1/import", `{"since":"2026-01-01"}`}, {"POST", "/v1/pause", ""},
		{"POST", "/v1/resume", ""}, {"POST", "/v1/reload", ""}, {"POST", "/v1/queue/retry", `{"all":true}`},
	} {
		tests = append(tests, guardCase{"foreign host " + ep.path, ep.method, ep.path, "pwbi.evil.example", nil, ep.body, 403, ""})
		tests = append(tests, guardCase{"foreign host with port " + ep.path, ep.method, ep.path, "10.1.2.3:8687", nil, ep.body, 403, ""})
		if ep.method == "POST" {
			tests = append(tests, guardCase{"cross-site origin " + ep.path, ep.method, ep.path, host, evil, ep.body, 403, ""})
			tests = append(tests, guardCase{"cross-site fetch " + ep.path, ep.method, ep.path, host,
				map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": self}, ep.body, 403, ""})
		}
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &fakeBackend{st: Status{State: StateOK, Version: "test"}}
			h := NewServer(b, ServerOptions{Metrics: testMetrics(t)}).Handler()
			r := httptest.NewRequest(tc.method, "http://"+tc.host+tc.path, strings.NewReader(tc.body))
			r.Host = tc.host
			for k, v := range tc.hdr {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("got %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if w.Code >= 400 && b.calls.Load() != 0 {
				t.Fatal("refused request still reached the backend")
			}
			if w.Code == 405 && w.Header().Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			if w.Code == 303 {
				loc := w.Header().Get("Location")
				if !strings.HasPrefix(loc, "/?") || !strings.HasSuffix(loc, "=1") {
					t.Errorf("redirect to %q", loc)
				}
				if b.calls.Load() != 1 {
					t.Error("form post did not reach the backend")
				}
				return
			}
			want := tc.ct
			if want == "" {
				want = "application/json"
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, want) {
				t.Errorf("content type %q, want %s", ct, want)
			}
			if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("CSP %q", csp)
			}
		})
	}
}

func TestMetricsWithoutHandler(t *testing.T) {
	h := NewServer(&fakeBackend{}, ServerOptions{}).Handler()
	w := do(h, "GET", "/metrics", "", nil)
	if w.Code != 404 {
		t.Fatalf("got %d", w.Code)
	}
}

func do(h http.Handler, method, path, body string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://127.0.0.1:8687"+path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestReload(t *testing.T) {
	b := &fakeBackend{}
	h := NewServer(b, ServerOptions{}).Handler()

	b.reload = ReloadResult{Applied: true, Generation: 4}
	w := do(h, "POST", "/v1/reload", "", nil)
	if w.Code != 200 {
		t.Fatalf("applied: %d %s", w.Code, w.Body)
	}
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["applied"] != true || got["generation"] != 4.0 || got["error"] != "" {
		t.Fatalf("applied: %s", w.Body)
	}
	if rr, ok := got["restart_required"].([]any); !ok || len(rr) != 0 {
		t.Fatalf("restart_required must be [] not null: %s", w.Body)
	}

	b.reload = ReloadResult{Error: `config.toml:7: unknown key "moka.tokn"`, Generation: 4, RestartRequired: []string{"local_api.listen"}}
	w = do(h, "POST", "/v1/reload", "", nil)
	if w.Code != 422 {
		t.Fatalf("refused: %d %s", w.Code, w.Body)
	}
	var res ReloadResult
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if res.Error != b.reload.Error || res.Applied || res.Generation != 4 || len(res.RestartRequired) != 1 {
		t.Fatalf("refused: %+v", res)
	}
}

func TestDeadLetters(t *testing.T) {
	at := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	b := &fakeBackend{}
	for i := range 3 {
		b.dead = append(b.dead, DeadLetter{
			ID: uint64(i + 1), Stage: "upstream", Sink: "upstream", Kind: "transaction", Key: "moka:o1:tx" + string(rune('a'+i)),
			Reason: "422 invalid amount", At: at, Seq: uint64(100 + i), Data: json.RawMessage(`{"total":"-1","note":"<b>&"}`),
		})
	}
	b.dead = append(b.dead, DeadLetter{ID: 4, Stage: "nats", Sink: "nats", Kind: "transaction", Key: "moka:o1:txz",
		Reason: "stream refused", At: at, Seq: 104})
	h := NewServer(b, ServerOptions{}).Handler()

	w := do(h, "GET", "/v1/queue/dead", "", nil)
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if b.deadLimit != DefaultDeadLetterLimit || b.deadWithData {
		t.Fatalf("backend asked limit=%d data=%v", b.deadLimit, b.deadWithData)
	}
	if strings.Contains(w.Body.String(), `"data"`) || strings.Contains(w.Body.String(), "total") {
		t.Fatalf("data sent without data=1: %s", w.Body)
	}
	var got DeadLetters
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Limit != 100 || len(got.DeadLetters) != 4 || got.DeadLetters[1].Key != "moka:o1:txb" ||
		!got.DeadLetters[0].At.Equal(at) || got.DeadLetters[2].Seq != 102 || got.DeadLetters[0].Stage != "upstream" {
		t.Fatalf("answer: %+v", got)
	}
	for _, key := range []string{`"id"`, `"stage"`, `"sink"`, `"kind"`, `"key"`, `"reason"`, `"at"`, `"seq"`, `"dead_letters"`} {
		if !strings.Contains(w.Body.String(), key) {
			t.Errorf("answer lacks %s", key)
		}
	}

	w = do(h, "GET", "/v1/queue/dead?limit=2&data=1", "", nil)
	if w.Code != 200 || b.deadLimit != 2 || !b.deadWithData {
		t.Fatalf("%d limit=%d data=%v", w.Code, b.deadLimit, b.deadWithData)
	}
	got = DeadLetters{}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	// The record's bytes come back as they are (no re-indenting, no
	// HTML escaping).
	if len(got.DeadLetters) != 2 || string(got.DeadLetters[0].Data) != `{"total":"-1","note":"<b>&"}` ||
		!strings.Contains(w.Body.String(), `"data":{"total":"-1","note":"<b>&"}`) {
		t.Fatalf("with data: %s", w.Body)
	}

	if w = do(h, "GET", "/v1/queue/dead?limit=50000", "", nil); w.Code != 200 || b.deadLimit != MaxDeadLetterLimit {
		t.Fatalf("large limit: %d, backend asked %d", w.Code, b.deadLimit)
	}
	// One sink's dead letters; an unknown sink is the request's fault.
	w = do(h, "GET", "/v1/queue/dead?sink=nats", "", nil)
	got = DeadLetters{}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 || b.deadSink != "nats" ||
		got.Sink != "nats" || len(got.DeadLetters) != 1 || got.DeadLetters[0].ID != 4 || got.DeadLetters[0].Sink != "nats" {
		t.Fatalf("one sink's dead letters: %d %s (%v)", w.Code, w.Body, err)
	}
	if w = do(h, "GET", "/v1/queue/dead?sink=nope", "", nil); w.Code != 400 || !strings.Contains(w.Body.String(), "unknown sink") {
		t.Fatalf("unknown sink: %d %s", w.Code, w.Body)
	}
	for _, q := range []string{"limit=0", "limit=-1", "limit=abc", "limit=1.5", "data=yes"} {
		if w = do(h, "GET", "/v1/queue/dead?"+q, "", nil); w.Code != 400 {
			t.Errorf("%s: got %d, want 400", q, w.Code)
		}
	}
}

func TestRequeueValidation(t *testing.T) {
	for _, tc := range []struct {
		name, body, ct string
		want           int
	}{
		{"ids", `{"ids":[1,2,99]}`, "application/json", 200},
		{"all", `{"all":true}`, "application/json", 200},
		{"no content type", `{"all":true}`, "", 200},
		{"neither", `{}`, "application/json", 400},
		{"empty ids", `{"ids":[]}`, "application/json", 400},
		{"all false", `{"all":false}`, "application/json", 400},
		{"both", `{"ids":[1],"all":true}`, "application/json", 400},
		{"empty body", ``, "application/json", 400},
		{"not json", `ids=1`, "application/json", 400},
		{"unknown field", `{"id":[1]}`, "application/json", 400},
		{"negative id", `{"ids":[-1]}`, "application/json", 400},
		{"trailing data", `{"all":true} {"all":true}`, "application/json", 400},
		{"form", `ids=1`, "application/x-www-form-urlencoded", 415},
		{"too big", `{"ids":[` + strings.Repeat("1,", maxBody/2) + `1]}`, "application/json", 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &fakeBackend{}
			h := NewServer(b, ServerOptions{}).Handler()
			r := httptest.NewRequest("POST", "http://127.0.0.1:8687/v1/queue/retry", strings.NewReader(tc.body))
			if tc.ct != "" {
				r.Header.Set("Content-Type", tc.ct)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("got %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if tc.want != 200 {
				if len(b.requeues) != 0 {
					t.Fatal("bad request reached the backend")
				}
				var eb ErrorBody
				if json.Unmarshal(w.Body.Bytes(), &eb) != nil || eb.Error == "" {
					t.Fatalf("error body: %s", w.Body)
				}
				return
			}
			var res RequeueResult
			if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(w.Body.String(), `"not_requeued": [`) {
				t.Errorf("not_requeued must be a list: %s", w.Body)
			}
			if tc.name == "ids" && (res.Requeued != 2 || len(res.NotRequeued) != 1) {
				t.Fatalf("result: %+v", res)
			}
		})
	}

	b := &fakeBackend{requeueErr: errors.New("store: disk full")}
	w := do(NewServer(b, ServerOptions{}).Handler(), "POST", "/v1/queue/retry", `{"all":true}`, nil)
	if w.Code != 500 || !strings.Contains(w.Body.String(), "disk full") {
		t.Fatalf("backend failure: %d %s", w.Code, w.Body)
	}
}

func TestSyncFailure(t *testing.T) {
	b := &fakeBackend{syncErr: errors.New("the agent is paused: resume it first")}
	h := NewServer(b, ServerOptions{}).Handler()
	w := do(h, "POST", "/v1/sync", "", nil)
	if w.Code != 503 || !strings.Contains(w.Body.String(), "resume it first") {
		t.Fatalf("api: %d %s", w.Code, w.Body)
	}
	// A browser gets the dashboard, saying what went wrong.
	w = do(h, "POST", "/v1/sync", "", map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if w.Code != 503 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") ||
		!strings.Contains(w.Body.String(), "Sync could not start: the agent is paused: resume it first") {
		t.Fatalf("browser: %d %s", w.Code, w.Body)
	}
}

func TestClientAgainstServer(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b := &fakeBackend{st: Status{
		State:    StateOffline,
		Version:  "1.0.0",
		Config:   ConfigStatus{Path: "/etc/pwbi-agent/config.toml", Generation: 3},
		Queue:    QueueStatus{Pending: 12, OldestPendingAt: &now},
		Upstream: UpstreamStatus{Configured: true, LastError: "connection refused"},
	}}
	b.dead = []DeadLetter{{ID: 7, Stage: "upstream", Sink: "upstream", Kind: "transaction", Key: "k7", Reason: "rejected", At: now, Seq: 70,
		Data: json.RawMessage(`{"a":1}`)}}
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewServer(b, ServerOptions{Metrics: testMetrics(t)}).Serve(ctx, ln) }()

	c := NewClient(ln.Addr().String(), nil)
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateOffline || st.Queue.Pending != 12 || !st.Queue.OldestPendingAt.Equal(now) ||
		st.Config.Generation != 3 || st.Upstream.LastError != "connection refused" {
		t.Fatalf("status round trip: %+v", st)
	}
	if st.Moka.LastPollAt != nil {
		t.Fatal("unset time must be null")
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if b.syncs.Load() != 1 {
		t.Fatalf("syncs = %d", b.syncs.Load())
	}
	if err := c.Import(ctx, ImportRequest{Since: "2026-01-01", OutletID: "o1", Sink: "upstream"}); err != nil {
		t.Fatal(err)
	}
	if len(b.imports) != 1 || b.imports[0].OutletID != "o1" || b.imports[0].Sink != "upstream" {
		t.Fatalf("imports: %+v", b.imports)
	}
	if err := c.Import(ctx, ImportRequest{Since: "bad"}); err == nil || !strings.Contains(err.Error(), "not a date") || !strings.Contains(err.Error(), "400") {
		t.Fatalf("bad import: %v", err)
	}

	if err := c.Pause(ctx); err != nil || b.pauses.Load() != 1 {
		t.Fatalf("pause: %v, %d", err, b.pauses.Load())
	}
	if st, _ := c.Status(ctx); st.State != StatePaused {
		t.Fatalf("state after pause: %s", st.State)
	}
	if err := c.Resume(ctx); err != nil || b.resumes.Load() != 1 {
		t.Fatalf("resume: %v, %d", err, b.resumes.Load())
	}

	b.mu.Lock()
	b.reload = ReloadResult{Applied: true, Generation: 4, RestartRequired: []string{"agent.data_dir"}}
	b.mu.Unlock()
	res, err := c.Reload(ctx)
	if err != nil || !res.Applied || res.Generation != 4 || len(res.RestartRequired) != 1 {
		t.Fatalf("reload: %+v, %v", res, err)
	}
	b.mu.Lock()
	b.reload = ReloadResult{Error: "config.toml:3: bad duration", Generation: 4}
	b.mu.Unlock()
	res, err = c.Reload(ctx)
	if !errors.Is(err, ErrConfigRejected) || !strings.Contains(err.Error(), "bad duration") ||
		res.Error != "config.toml:3: bad duration" || res.Generation != 4 {
		t.Fatalf("refused reload: %+v, %v", res, err)
	}

	dls, err := c.DeadLetters(ctx, DeadLetterQuery{})
	if err != nil || len(dls) != 1 || dls[0].ID != 7 || dls[0].Key != "k7" || dls[0].Data != nil || b.deadLimit != 100 {
		t.Fatalf("dead letters: %+v, %v (limit %d)", dls, err, b.deadLimit)
	}
	dls, err = c.DeadLetters(ctx, DeadLetterQuery{Limit: 5, WithData: true, Sink: "upstream"})
	if err != nil || len(dls) != 1 || string(dls[0].Data) != `{"a":1}` || b.deadLimit != 5 || b.deadSink != "upstream" {
		t.Fatalf("dead letters with data: %+v, %v", dls, err)
	}

	rq, err := c.Requeue(ctx, RequeueRequest{IDs: []uint64{7, 99}, Sink: "upstream"})
	if err != nil || rq.Requeued != 1 || len(rq.NotRequeued) != 1 || !strings.Contains(rq.NotRequeued[0], "99") {
		t.Fatalf("requeue: %+v, %v", rq, err)
	}
	if b.requeues[len(b.requeues)-1].Sink != "upstream" {
		t.Fatalf("requeue sink not passed: %+v", b.requeues)
	}
	if _, err := c.Requeue(ctx, RequeueRequest{}); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("empty requeue: %v", err)
	}

	text, err := c.Metrics(ctx)
	if err != nil || !strings.Contains(text, "pwbi_agent_test_total 7") {
		t.Fatalf("metrics: %v\n%s", err, text)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	// The listener is closed now: the client must say so plainly.
	if _, err := c.Status(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("after shutdown: %v, want ErrNotRunning", err)
	}
}

func TestListenRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "[::]:0"} {
		if ln, err := Listen(addr); err == nil {
			ln.Close()
			t.Errorf("Listen(%q) accepted a non-loopback address", addr)
		}
	}
}

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST:1": true, "127.0.0.1": true, "127.1.2.3:80": true,
		"[::1]:8687": true, "::1": true, "0.0.0.0": false, "": false, "localhost.evil.example": false,
		"10.0.0.1:8687": false,
	} {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v", host, got)
		}
	}
}
