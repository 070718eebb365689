// Package metrics holds the agent's Prometheus collectors, served by the
// local API at GET /metrics (SPEC §8).
//
// Everything lives on the agent's own registry, never on the global default
// one, so tests and several agents in one process do not share counters.
// The agent wires the Observe/Set methods to its components' callbacks
// (apikey.ClientOptions.OnRequest, moka.Options.OnPoll and OnFull,
// deliver.Options.OnResult, the config reloader) and gives the queue gauges
// a source with [Metrics.SetQueueSource].
//
// Labels carry only bounded, non-secret values: URL paths without their
// query and with ids replaced, status classes, outcomes, record kinds, sink
// names (the agent's fixed list: "upstream", "nats", "jurnal"). Never a
// token, a record key or customer data.
//
// The delivery metrics keep the names they had when the PWBI HTTP upstream
// was the only sink (pwbi_agent_upstream_*) and carry a sink label: the
// upstream's series are those with sink="upstream".
//
// This package is a leaf: it imports no feature package of the agent, and
// no feature package imports it. Its methods take plain values; the agent's
// composition root translates each component's results into them (for the
// delivery loop's results: agent/metricswire.go).
package metrics

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every agent metric name.
const Namespace = "pwbi_agent"

// Label values used by the counters.
const (
	ResultOK      = "ok"
	ResultError   = "error"
	ResultSuccess = "success"
	ResultFailure = "failure"

	OutcomeAccepted     = "accepted"
	OutcomeRetry        = "retry"
	OutcomeSplit        = "split"
	OutcomeDeadLettered = "dead_lettered"
	OutcomeHeld         = "held"
	OutcomeDelivered    = "delivered"

	// StatusNoResponse is the status class of a request that got no HTTP
	// answer (network error, timeout).
	StatusNoResponse = "no_response"
)

// QueueStats is what the queue gauges show; the store provides it.
type QueueStats struct {
	Pending         int64
	PendingBytes    int64
	DeadLetters     int64
	OldestPendingAt time.Time // zero when nothing is pending
	// Sinks are the enabled sinks' views of the buffer.
	Sinks []SinkQueueStats
}

// SinkQueueStats is one sink's view of the buffer.
type SinkQueueStats struct {
	Name            string
	Pending         int64
	PendingBytes    int64
	DeadLetters     int64
	OldestPendingAt time.Time // zero when nothing is pending for the sink
}

// Metrics is the agent's set of collectors. Create it with New. The
// exported collectors may be used directly; the methods are shortcuts that
// fit the components' callbacks. All methods are safe for concurrent use and
// do nothing on a nil *Metrics, so a component may take an optional one.
type Metrics struct {
	// Registry holds every collector below plus the Go and process
	// collectors. Serve it with promhttp.HandlerFor(m.Registry, ...).
	Registry *prometheus.Registry

	MokaRequests        *prometheus.CounterVec // path, status
	MokaRequestDuration prometheus.Histogram
	MokaWaits           *prometheus.CounterVec // reason
	MokaWaitSeconds     *prometheus.CounterVec // reason
	Polls               *prometheus.CounterVec // result
	RecordsBuffered     *prometheus.CounterVec // kind
	PollingPaused       prometheus.Gauge

	UpstreamBatches  *prometheus.CounterVec   // sink, outcome
	UpstreamRecords  *prometheus.CounterVec   // sink, outcome
	UpstreamDuration *prometheus.HistogramVec // sink
	UpstreamOnline   *prometheus.GaugeVec     // sink

	ConfigReloads              *prometheus.CounterVec // result
	ConfigLastReloadSuccessful prometheus.Gauge
	ConfigGeneration           prometheus.Gauge

	BuildInfo *prometheus.GaugeVec // version

	mu          sync.Mutex
	queueSource func() QueueStats
	now         func() time.Time
	configSeen  bool
}

// Buckets for request durations, in seconds: from a fast LAN answer to a
// request that is about to time out on a slow mobile link.
var durationBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// New returns the agent's metrics on a fresh registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		now:      time.Now,

		MokaRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "moka_requests_total",
			Help: "HTTP requests made to Moka POS, by API path (ids replaced by :id) and " +
				"status class (2xx, 4xx, 5xx, or no_response when Moka could not be reached).",
		}, []string{"path", "status"}),
		MokaRequestDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "moka_request_duration_seconds",
			Help:    "How long each HTTP request to Moka POS took, in seconds, including failed ones.",
			Buckets: durationBuckets,
		}),
		MokaWaits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "moka_waits_total",
			Help: "Pauses between Moka requests, by reason: rate_limit (our own request budget), " +
				"retry_after (Moka asked us to slow down), backoff (after an error).",
		}, []string{"reason"}),
		MokaWaitSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "moka_wait_seconds_total",
			Help: "Total time spent waiting between Moka requests, in seconds, by reason.",
		}, []string{"reason"}),
		Polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "moka_polls_total",
			Help: "Polls of all outlets in Moka POS, by result: ok, or error when at least one outlet failed.",
		}, []string{"result"}),
		RecordsBuffered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "records_buffered_total",
			Help: "Records newly saved in the local buffer on this PC, by kind (transaction, product, mokka_order, ...).",
		}, []string{"kind"}),
		PollingPaused: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "polling_paused",
			Help: "1 while fetching from Moka is paused because the local buffer is full " +
				"(upstream.max_pending_mb reached), else 0.",
		}),

		UpstreamBatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "upstream_batches_total",
			Help: "Attempts to send a batch to a sink (sink=\"upstream\" is the PWBI cloud), by sink and outcome: " +
				"accepted, retry (will be sent again later), split (sent again as two halves), held (one record " +
				"rejected, kept while the sink is being tested), dead_lettered (one record rejected and set aside).",
		}, []string{"sink", "outcome"}),
		UpstreamRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "upstream_records_total",
			Help: "Records a sink took from the local buffer, by sink and outcome: delivered, or " +
				"dead_lettered (rejected by the sink and kept aside on this PC).",
		}, []string{"sink", "outcome"}),
		UpstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "upstream_request_duration_seconds",
			Help:    "How long each attempt to send a batch to a sink took, in seconds, by sink.",
			Buckets: durationBuckets,
		}, []string{"sink"}),
		UpstreamOnline: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "upstream_online",
			Help: "1 when the last attempt reached the sink and got an acknowledgement (or a record-level " +
				"answer that was handled), else 0; by sink.",
		}, []string{"sink"}),

		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "config_reloads_total",
			Help: "Reloads of the configuration file after start, by result: success (in force, " +
				"or unchanged) or failure (refused; the previous configuration keeps running).",
		}, []string{"result"}),
		ConfigLastReloadSuccessful: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "config_last_reload_successful",
			Help: "1 if the configuration file was loaded without error the last time it was read, " +
				"0 if it has an error (the previous configuration keeps running).",
		}),
		ConfigGeneration: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "config_generation",
			Help: "Number of the configuration in force; it goes up by one every time a changed configuration is applied.",
		}),

		BuildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "build_info",
			Help: "Always 1; the version label is the running agent's version.",
		}, []string{"version"}),
	}

	// Start the fixed label values at zero, so rates and alerts work
	// before the first event.
	for _, r := range []string{ResultOK, ResultError} {
		m.Polls.WithLabelValues(r)
	}
	for _, r := range []string{ResultSuccess, ResultFailure} {
		m.ConfigReloads.WithLabelValues(r)
	}

	m.Registry.MustRegister(
		m.MokaRequests, m.MokaRequestDuration, m.MokaWaits, m.MokaWaitSeconds,
		m.Polls, m.RecordsBuffered, m.PollingPaused,
		m.UpstreamBatches, m.UpstreamRecords, m.UpstreamDuration, m.UpstreamOnline,
		m.ConfigReloads, m.ConfigLastReloadSuccessful, m.ConfigGeneration,
		m.BuildInfo,
		&queueCollector{m: m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Handler serves the registry in the Prometheus text format, for
// localapi.ServerOptions.Metrics; nil on a nil *Metrics (no /metrics).
func (m *Metrics) Handler(log *slog.Logger) http.Handler {
	if m == nil {
		return nil
	}
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// Gatherer returns the registry. It returns nil on a nil *Metrics.
func (m *Metrics) Gatherer() prometheus.Gatherer {
	if m == nil {
		return nil
	}
	return m.Registry
}

// SetBuildInfo records the running version.
func (m *Metrics) SetBuildInfo(version string) {
	if m == nil {
		return
	}
	m.BuildInfo.Reset()
	m.BuildInfo.WithLabelValues(version).Set(1)
}

// SetQueueSource sets the function the queue gauges read at every scrape.
// It must be cheap and safe for concurrent use; until it is set (or when
// f is nil) the queue gauges are absent.
func (m *Metrics) SetQueueSource(f func() QueueStats) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.queueSource = f
	m.mu.Unlock()
}

// ObserveMokaRequest records one HTTP attempt to Moka. Its signature fits
// apikey.ClientOptions.OnRequest: path is the URL path (a query, if any,
// is dropped), status is 0 when no response arrived.
func (m *Metrics) ObserveMokaRequest(path string, status int, dur time.Duration) {
	if m == nil {
		return
	}
	m.MokaRequests.WithLabelValues(NormalizePath(path), StatusClass(status)).Inc()
	m.MokaRequestDuration.Observe(dur.Seconds())
}

// ObserveMokaWait records a pause between Moka requests. Its signature fits
// oauth.ClientOptions.OnWait.
func (m *Metrics) ObserveMokaWait(reason string, d time.Duration) {
	if m == nil {
		return
	}
	m.MokaWaits.WithLabelValues(reason).Inc()
	m.MokaWaitSeconds.WithLabelValues(reason).Add(d.Seconds())
}

// ObservePoll records a poll of all outlets. Its signature fits
// moka.Options.OnPoll.
func (m *Metrics) ObservePoll(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.Polls.WithLabelValues(ResultOK).Inc()
	} else {
		m.Polls.WithLabelValues(ResultError).Inc()
	}
}

// AddBuffered counts n records of a kind newly saved in the buffer. kind
// must come from a small fixed set (the unified record kinds).
func (m *Metrics) AddBuffered(kind string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.RecordsBuffered.WithLabelValues(kind).Add(float64(n))
}

// SetPollingPaused records whether polling is paused because the buffer is
// full. Its signature fits moka.Options.OnFull.
func (m *Metrics) SetPollingPaused(paused bool) {
	if m == nil {
		return
	}
	m.PollingPaused.Set(b2f(paused))
}

// AddSink starts the delivery series of a sink at zero (every outcome, not
// online), so that rates and alerts work before its first attempt. The
// agent calls it for every sink it knows.
func (m *Metrics) AddSink(sink string) {
	if m == nil {
		return
	}
	for _, o := range []string{OutcomeAccepted, OutcomeRetry, OutcomeSplit, OutcomeDeadLettered, OutcomeHeld} {
		m.UpstreamBatches.WithLabelValues(sink, o)
	}
	for _, o := range []string{OutcomeDelivered, OutcomeDeadLettered} {
		m.UpstreamRecords.WithLabelValues(sink, o)
	}
	m.UpstreamOnline.WithLabelValues(sink)
}

// ObserveUpstreamBatch records one attempt to send a batch of records to a
// sink: outcome is one of the Outcome constants; delivered and
// deadLettered count the records the attempt delivered and set aside;
// online is whether the sink acknowledged (a 401 or a captive portal's
// page is not online). Attempts abandoned because the agent is stopping are
// not meant to be recorded.
func (m *Metrics) ObserveUpstreamBatch(sink, outcome string, delivered, deadLettered int, online bool, latency time.Duration) {
	if m == nil {
		return
	}
	m.UpstreamBatches.WithLabelValues(sink, outcome).Inc()
	m.UpstreamDuration.WithLabelValues(sink).Observe(latency.Seconds())
	if delivered > 0 {
		m.UpstreamRecords.WithLabelValues(sink, OutcomeDelivered).Add(float64(delivered))
	}
	if deadLettered > 0 {
		m.UpstreamRecords.WithLabelValues(sink, OutcomeDeadLettered).Add(float64(deadLettered))
	}
	m.UpstreamOnline.WithLabelValues(sink).Set(b2f(online))
}

// SetUpstreamOnline sets a sink's upstream_online gauge directly.
func (m *Metrics) SetUpstreamOnline(sink string, online bool) {
	if m == nil {
		return
	}
	m.UpstreamOnline.WithLabelValues(sink).Set(b2f(online))
}

// SetConfig records the result of reading the configuration file: ok is
// false when it was refused, generation is the number of the configuration
// in force. The first call, for the configuration loaded at start, sets the
// gauges without counting a reload.
func (m *Metrics) SetConfig(generation uint64, ok bool) {
	if m == nil {
		return
	}
	m.mu.Lock()
	first := !m.configSeen
	m.configSeen = true
	m.mu.Unlock()
	if !first {
		if ok {
			m.ConfigReloads.WithLabelValues(ResultSuccess).Inc()
		} else {
			m.ConfigReloads.WithLabelValues(ResultFailure).Inc()
		}
	}
	m.ConfigLastReloadSuccessful.Set(b2f(ok))
	m.ConfigGeneration.Set(float64(generation))
}

// StatusClass turns an HTTP status into a bounded label value: "2xx",
// "3xx", "4xx", "5xx", or StatusNoResponse for 0 (and anything else
// outside 100-599).
func StatusClass(status int) string {
	if status < 100 || status > 599 {
		return StatusNoResponse
	}
	return strconv.Itoa(status/100) + "xx"
}

// NormalizePath makes a URL path safe and bounded as a label value: the
// query and fragment are dropped, and every segment that looks like an id
// (contains a digit and is not a version like "v1", or is long) becomes
// ":id".
func NormalizePath(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	if p == "" {
		return "/"
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if looksLikeID(s) {
			segs[i] = ":id"
		}
	}
	return strings.Join(segs, "/")
}

func looksLikeID(s string) bool {
	if len(s) > 32 {
		return true
	}
	if len(s) >= 2 && s[0] == 'v' && isDigits(s[1:]) {
		return false // an API version
	}
	for _, c := range s {
		if c >= '0' && c <= '9' {
			return true
		}
	}
	return false
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// queueCollector reports the buffer's gauges, the totals and each sink's,
// from one call of the queue source per scrape (GaugeFuncs would read the
// store once per gauge).
type queueCollector struct{ m *Metrics }

var (
	queuePendingDesc = prometheus.NewDesc(Namespace+"_queue_pending_records",
		"Records saved on this PC that at least one sink still has to take.", nil, nil)
	queuePendingBytesDesc = prometheus.NewDesc(Namespace+"_queue_pending_bytes",
		"Size of the records waiting to be sent, in bytes (compare with upstream.max_pending_mb).", nil, nil)
	queueDeadDesc = prometheus.NewDesc(Namespace+"_queue_dead_letters",
		"Records set aside because they were rejected (see `pwbi-agent queue dead`); they are not sent until requeued.", nil, nil)
	queueOldestDesc = prometheus.NewDesc(Namespace+"_queue_oldest_pending_age_seconds",
		"How long the oldest waiting record has been waiting, in seconds; 0 when nothing is waiting.", nil, nil)

	sinkPendingDesc = prometheus.NewDesc(Namespace+"_sink_pending_records",
		"Records saved on this PC that a sink still has to take, by sink (a record waits in the buffer until every enabled sink has it).",
		[]string{"sink"}, nil)
	sinkPendingBytesDesc = prometheus.NewDesc(Namespace+"_sink_pending_bytes",
		"Size of the records a sink still has to take, in bytes, by sink.", []string{"sink"}, nil)
	sinkDeadDesc = prometheus.NewDesc(Namespace+"_sink_dead_letters",
		"Records a sink rejected and that are set aside (see `pwbi-agent queue dead --sink NAME`), by sink.",
		[]string{"sink"}, nil)
	sinkOldestDesc = prometheus.NewDesc(Namespace+"_sink_oldest_pending_age_seconds",
		"How long the oldest record a sink still has to take has been waiting, in seconds, by sink; 0 when none.",
		[]string{"sink"}, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queuePendingDesc
	ch <- queuePendingBytesDesc
	ch <- queueDeadDesc
	ch <- queueOldestDesc
	ch <- sinkPendingDesc
	ch <- sinkPendingBytesDesc
	ch <- sinkDeadDesc
	ch <- sinkOldestDesc
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	src, now := c.m.queueSource, c.m.now
	c.m.mu.Unlock()
	if src == nil {
		return
	}
	qs := src()
	age := 0.0
	if !qs.OldestPendingAt.IsZero() {
		age = max(0, now().Sub(qs.OldestPendingAt).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(queuePendingDesc, prometheus.GaugeValue, float64(qs.Pending))
	ch <- prometheus.MustNewConstMetric(queuePendingBytesDesc, prometheus.GaugeValue, float64(qs.PendingBytes))
	ch <- prometheus.MustNewConstMetric(queueDeadDesc, prometheus.GaugeValue, float64(qs.DeadLetters))
	ch <- prometheus.MustNewConstMetric(queueOldestDesc, prometheus.GaugeValue, age)
	for _, s := range qs.Sinks {
		age := 0.0
		if !s.OldestPendingAt.IsZero() {
			age = max(0, now().Sub(s.OldestPendingAt).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(sinkPendingDesc, prometheus.GaugeValue, float64(s.Pending), s.Name)
		ch <- prometheus.MustNewConstMetric(sinkPendingBytesDesc, prometheus.GaugeValue, float64(s.PendingBytes), s.Name)
		ch <- prometheus.MustNewConstMetric(sinkDeadDesc, prometheus.GaugeValue, float64(s.DeadLetters), s.Name)
		ch <- prometheus.MustNewConstMetric(sinkOldestDesc, prometheus.GaugeValue, age, s.Name)
	}
}
