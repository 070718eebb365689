package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// scrape returns the text exposition, as Prometheus would fetch it.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: HTTP %d: %s", resp.StatusCode, b)
	}
	return string(b)
}

func TestExposition(t *testing.T) {
	m := New()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return now }
	m.SetBuildInfo("1.2.3")
	m.SetQueueSource(func() QueueStats {
		return QueueStats{Pending: 42, PendingBytes: 4096, DeadLetters: 3, OldestPendingAt: now.Add(-90 * time.Second),
			Sinks: []SinkQueueStats{
				{Name: "upstream", Pending: 2, PendingBytes: 200, DeadLetters: 1, OldestPendingAt: now.Add(-10 * time.Second)},
				{Name: "nats", Pending: 42, PendingBytes: 4096, DeadLetters: 2, OldestPendingAt: now.Add(-90 * time.Second)},
			}}
	})
	m.ObserveMokaRequest("/v1/transactions?since=2026-01-01&token=s3cr3t", 200, 300*time.Millisecond)
	m.ObserveMokaRequest("/v3/outlets/123456/reports/get_latest_transactions", 429, time.Second)
	m.ObserveMokaRequest("/v1/outlets", 0, 10*time.Second)
	m.ObserveMokaWait("retry_after", 30*time.Second)
	m.ObservePoll(true)
	m.ObservePoll(false)
	m.AddBuffered("transaction", 7)
	m.SetPollingPaused(true)
	m.AddSink("upstream")
	m.AddSink("nats")
	m.ObserveUpstreamBatch("upstream", OutcomeAccepted, 50, 0, false, 200*time.Millisecond)
	m.ObserveUpstreamBatch("upstream", OutcomeDeadLettered, 0, 1, true, 0)
	m.ObserveUpstreamBatch("nats", OutcomeRetry, 0, 0, false, time.Second)
	m.SetConfig(1, true) // at start: not a reload
	m.SetConfig(1, false)
	m.SetConfig(2, true)

	text := scrape(t, m)
	for _, want := range []string{
		`pwbi_agent_build_info{version="1.2.3"} 1`,
		`pwbi_agent_moka_requests_total{path="/v1/transactions",status="2xx"} 1`,
		`pwbi_agent_moka_requests_total{path="/v3/outlets/:id/reports/get_latest_transactions",status="4xx"} 1`,
		`pwbi_agent_moka_requests_total{path="/v1/outlets",status="no_response"} 1`,
		`pwbi_agent_moka_request_duration_seconds_count 3`,
		`pwbi_agent_moka_waits_total{reason="retry_after"} 1`,
		`pwbi_agent_moka_wait_seconds_total{reason="retry_after"} 30`,
		`pwbi_agent_moka_polls_total{result="ok"} 1`,
		`pwbi_agent_moka_polls_total{result="error"} 1`,
		`pwbi_agent_records_buffered_total{kind="transaction"} 7`,
		`pwbi_agent_polling_paused 1`,
		`pwbi_agent_upstream_batches_total{outcome="accepted",sink="upstream"} 1`,
		`pwbi_agent_upstream_batches_total{outcome="dead_lettered",sink="upstream"} 1`,
		`pwbi_agent_upstream_batches_total{outcome="retry",sink="upstream"} 0`,
		`pwbi_agent_upstream_batches_total{outcome="split",sink="upstream"} 0`,
		`pwbi_agent_upstream_batches_total{outcome="retry",sink="nats"} 1`,
		`pwbi_agent_upstream_batches_total{outcome="accepted",sink="nats"} 0`,
		`pwbi_agent_upstream_records_total{outcome="delivered",sink="upstream"} 50`,
		`pwbi_agent_upstream_records_total{outcome="dead_lettered",sink="upstream"} 1`,
		`pwbi_agent_upstream_records_total{outcome="delivered",sink="nats"} 0`,
		`pwbi_agent_upstream_request_duration_seconds_count{sink="upstream"} 2`,
		`pwbi_agent_upstream_request_duration_seconds_count{sink="nats"} 1`,
		`pwbi_agent_upstream_online{sink="upstream"} 1`,
		`pwbi_agent_upstream_online{sink="nats"} 0`,
		`pwbi_agent_queue_pending_records 42`,
		`pwbi_agent_queue_pending_bytes 4096`,
		`pwbi_agent_queue_dead_letters 3`,
		`pwbi_agent_queue_oldest_pending_age_seconds 90`,
		`pwbi_agent_sink_pending_records{sink="upstream"} 2`,
		`pwbi_agent_sink_pending_records{sink="nats"} 42`,
		`pwbi_agent_sink_pending_bytes{sink="nats"} 4096`,
		`pwbi_agent_sink_dead_letters{sink="upstream"} 1`,
		`pwbi_agent_sink_dead_letters{sink="nats"} 2`,
		`pwbi_agent_sink_oldest_pending_age_seconds{sink="upstream"} 10`,
		`pwbi_agent_sink_oldest_pending_age_seconds{sink="nats"} 90`,
		`pwbi_agent_config_reloads_total{result="success"} 1`,
		`pwbi_agent_config_reloads_total{result="failure"} 1`,
		`pwbi_agent_config_last_reload_successful 1`,
		`pwbi_agent_config_generation 2`,
		`# HELP pwbi_agent_queue_pending_records Records saved on this PC`,
		"go_goroutines ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
	for _, leak := range []string{"s3cr3t", "token", "123456", "k-secret", "b-1", "canceled"} {
		if strings.Contains(text, leak) {
			t.Errorf("exposition contains %q", leak)
		}
	}
	if testing.Verbose() {
		t.Log(text)
	}
}

func TestLint(t *testing.T) {
	m := New()
	m.SetQueueSource(func() QueueStats { return QueueStats{} })
	m.ObserveMokaRequest("/v1/outlets", 200, time.Millisecond)
	m.AddBuffered("product", 1)
	m.SetBuildInfo("dev")
	problems, err := testutil.GatherAndLint(m.Registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, Namespace) {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

func TestQueueGaugesReadTheSourceOncePerScrape(t *testing.T) {
	m := New()
	if n, err := testutil.GatherAndCount(m.Registry, "pwbi_agent_queue_pending_records"); err != nil || n != 0 {
		t.Fatalf("without a source: %d series, %v; want none", n, err)
	}
	var calls atomic.Int32
	var pending atomic.Int64
	m.SetQueueSource(func() QueueStats {
		calls.Add(1)
		return QueueStats{Pending: pending.Load()}
	})
	for _, want := range []int64{5, 0, 1234567} {
		pending.Store(want)
		calls.Store(0)
		mfs, err := m.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if got := gaugeValue(mfs, "pwbi_agent_queue_pending_records"); got != float64(want) {
			t.Errorf("pending = %v, want %d", got, want)
		}
		if got := gaugeValue(mfs, "pwbi_agent_queue_oldest_pending_age_seconds"); got != 0 {
			t.Errorf("oldest age with nothing pending = %v, want 0", got)
		}
		if c := calls.Load(); c != 1 {
			t.Errorf("source called %d times in one scrape, want 1", c)
		}
	}
	m.SetQueueSource(nil)
	if n, _ := testutil.GatherAndCount(m.Registry, "pwbi_agent_queue_pending_records"); n != 0 {
		t.Fatalf("after SetQueueSource(nil): %d series", n)
	}
}

func gaugeValue(mfs []*dto.MetricFamily, name string) float64 {
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

func TestOwnRegistry(t *testing.T) {
	a, b := New(), New() // would panic on a shared registry
	a.ObservePoll(true)
	if got := testutil.ToFloat64(b.Polls.WithLabelValues(ResultOK)); got != 0 {
		t.Fatalf("metrics shared between instances: %v", got)
	}
	if mfs, _ := prometheus.DefaultGatherer.Gather(); hasPrefix(mfs, Namespace) {
		t.Fatal("agent metrics registered on the global default registry")
	}
}

func hasPrefix(mfs []*dto.MetricFamily, p string) bool {
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), p) {
			return true
		}
	}
	return false
}

func TestNilMetricsIsANoOp(t *testing.T) {
	var m *Metrics
	m.ObserveMokaRequest("/v1/outlets", 200, time.Second)
	m.ObserveMokaWait("backoff", time.Second)
	m.ObservePoll(true)
	m.AddBuffered("transaction", 1)
	m.SetPollingPaused(true)
	m.AddSink("upstream")
	m.ObserveUpstreamBatch("upstream", OutcomeAccepted, 1, 0, true, time.Second)
	m.SetUpstreamOnline("upstream", true)
	m.SetConfig(1, true)
	m.SetQueueSource(func() QueueStats { return QueueStats{} })
	m.SetBuildInfo("x")
	if m.Gatherer() != nil {
		t.Fatal("nil metrics has a gatherer")
	}
}

func TestUpstreamOnline(t *testing.T) {
	m := New()
	for _, tc := range []struct {
		outcome         string
		delivered, dead int
		online          bool
		want            float64
	}{
		{OutcomeAccepted, 3, 0, true, 1},
		// A 401 or a captive portal's 200 page is an answer, not online.
		{OutcomeRetry, 0, 0, false, 0},
		{OutcomeDeadLettered, 0, 1, true, 1},
		{OutcomeRetry, 0, 0, false, 0},
	} {
		m.ObserveUpstreamBatch("upstream", tc.outcome, tc.delivered, tc.dead, tc.online, 0)
		if got := testutil.ToFloat64(m.UpstreamOnline.WithLabelValues("upstream")); got != tc.want {
			t.Errorf("after %+v: online = %v, want %v", tc, got, tc.want)
		}
	}
	// An acceptance that also proved two held records poison counts both.
	m.ObserveUpstreamBatch("upstream", OutcomeAccepted, 5, 2, true, 0)
	if got := testutil.ToFloat64(m.UpstreamRecords.WithLabelValues("upstream", OutcomeDelivered)); got != 8 {
		t.Errorf("delivered = %v, want 8", got)
	}
	if got := testutil.ToFloat64(m.UpstreamRecords.WithLabelValues("upstream", OutcomeDeadLettered)); got != 3 {
		t.Errorf("dead-lettered = %v, want 3", got)
	}
	// Another sink's answers are its own.
	m.ObserveUpstreamBatch("nats", OutcomeRetry, 0, 0, false, 0)
	if got := testutil.ToFloat64(m.UpstreamOnline.WithLabelValues("upstream")); got != 1 {
		t.Errorf("upstream online after a nats failure = %v, want 1", got)
	}
}

func TestNormalizePath(t *testing.T) {
	for in, want := range map[string]string{
		"":                                     "/",
		"/v1/outlets":                          "/v1/outlets",
		"/v1/transactions?page=2":              "/v1/transactions",
		"/v3/outlets/42/reports/x":             "/v3/outlets/:id/reports/x",
		"/v1/items/3fa85f64-5717-4562-b3fc-2c": "/v1/items/:id",
		"/v2/a/abcdefabcdefabcdefabcdefabcdefabcdef": "/v2/a/:id",
		"/oauth/token#frag":                          "/oauth/token",
	} {
		if got := NormalizePath(in); got != want {
			t.Errorf("NormalizePath(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[int]string{0: "no_response", 200: "2xx", 204: "2xx", 301: "3xx", 404: "4xx", 599: "5xx", 600: "no_response"} {
		if got := StatusClass(in); got != want {
			t.Errorf("StatusClass(%d) = %q, want %q", in, got, want)
		}
	}
}
