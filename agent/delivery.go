package agent

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/deliver"
	"github.com/pwbi/edge-agent/agent/deliver/httpsink"
	"github.com/pwbi/edge-agent/agent/deliver/jurnalsink"
	"github.com/pwbi/edge-agent/agent/deliver/natssink"
	"github.com/pwbi/edge-agent/agent/version"
	"github.com/pwbi/edge-agent/store"
)

// sinkSpec is one kind of sink the agent can deliver to (SPEC §6): its
// name, whether a configuration enables it, and how to build it. Adding a
// sink to the agent is one entry in sinkSpecs; everything else — its
// delivery loop on its own view of the buffer, hot reload (enable, disable,
// re-configure), the status's sinks[], the health rules, the metrics, the
// dashboard card, the tray line, `queue … --sink` and `import --sink` —
// follows from it.
type sinkSpec struct {
	// name is the sink's name in the store, the status, the metrics and
	// the command line: lowercase letters, digits, "_" or "-".
	name string
	// title is how a person knows the sink, as a dashboard card's title
	// ("PWBI cloud").
	title string
	// who names the sink in a sentence of the health rules ("the PWBI
	// cloud").
	who string
	// enabled reports whether cfg enables the sink. An enabled sink
	// holds records in the buffer until it has them.
	enabled func(cfg *config.Config) bool
	// build returns the sink for cfg; called only when enabled(cfg). A new
	// one is built for every configuration, at start and on every reload:
	// the loop compares Endpoints to tell a new address or identity from
	// an unchanged one (and then cuts a backoff short). prev is the sink
	// the previous configuration built (nil if none): a sink that holds
	// something costly (a connection) shares it with its successor. The
	// agent closes prev afterwards if it is an io.Closer (while a batch
	// may still be in flight on it: that attempt fails and the loop
	// retries it with the new sink), and every sink on shutdown after the
	// final delivery.
	build func(a *Agent, cfg *config.Config, prev deliver.Sink) deliver.Sink
	// loop returns the delivery loop's settings (batch size, flush
	// interval) for cfg.
	loop func(cfg *config.Config) deliver.Config
	// unconfigured is the note shown when no sink at all is enabled and
	// this one is the default (records are kept in the buffer only).
	unconfigured string
}

// sinkSpecs are the sinks the agent knows, in the order the status, the
// dashboard and the tray show them. The first is store.DefaultSink: when
// the configuration enables no sink, it keeps holding the records (buffer
// only) until one is enabled.
//
// To add a sink: append an entry like the "nats" one below.
var sinkSpecs = []sinkSpec{
	{
		name:         store.DefaultSink,
		title:        "PWBI cloud",
		who:          "the PWBI cloud",
		enabled:      func(c *config.Config) bool { return c.Upstream.URL != "" },
		build:        func(a *Agent, c *config.Config, _ deliver.Sink) deliver.Sink { return a.upstreamSink(c) },
		loop:         deliverConfig,
		unconfigured: "upstream.url is not set: records are kept in the local buffer only",
	},
	{
		name:    "nats",
		title:   "NATS JetStream",
		who:     "NATS",
		enabled: func(c *config.Config) bool { ok, _ := c.NATSConfigured(); return ok },
		build:   func(a *Agent, c *config.Config, prev deliver.Sink) deliver.Sink { return a.natsSink(c, prev) },
		loop:    natsLoopConfig,
	},
	{
		name:    "jurnal",
		title:   "Jurnal",
		who:     "Jurnal",
		enabled: func(c *config.Config) bool { ok, _ := c.JurnalConfigured(); return ok },
		build:   func(a *Agent, c *config.Config, prev deliver.Sink) deliver.Sink { return a.jurnalSink(c, prev) },
		loop:    jurnalLoopConfig,
	},
}

// deliverConfig is the delivery loop's part of the [upstream] section.
func deliverConfig(cfg *config.Config) deliver.Config {
	return deliver.Config{
		BatchSize:     cfg.Upstream.BatchSize,
		FlushInterval: cfg.Upstream.FlushInterval.Duration,
	}
}

// upstreamSink is the HTTP sink for the [upstream] section.
func (a *Agent) upstreamSink(cfg *config.Config) *httpsink.Sink {
	return httpsink.New(httpsink.Config{
		URL:     cfg.Upstream.URL,
		Token:   cfg.Upstream.Token.Value(),
		AgentID: cfg.Agent.ID,
		Timeout: cfg.Upstream.Timeout.Duration,
	}, httpsink.Options{
		Client:    a.hc,
		UserAgent: "pwbi-agent/" + version.String(),
	})
}

// natsLoopConfig is the NATS sink's delivery loop settings: nats.batch_size
// records per batch. [nats] has no flush interval of its own: a partial
// batch waits upstream.flush_interval (default 5s), the agent's one setting
// for how long a new sale may wait for others to go out with, whichever
// sinks it goes to.
func natsLoopConfig(cfg *config.Config) deliver.Config {
	return deliver.Config{
		BatchSize:     cfg.NATS.BatchSize,
		FlushInterval: cfg.Upstream.FlushInterval.Duration,
	}
}

// natsSink is the NATS JetStream sink for the [nats] section (SPEC §6.2).
// prev, the sink of the previous configuration, hands over its connection
// and what it knows of the stream when the new one connects alike (a
// reload that changed another section, or only nats.batch_size); otherwise
// the new sink dials afresh and re-learns from the stream what it holds
// for this agent before publishing, so that a batch in flight on the old
// connection, cut off when the agent closes prev, is neither lost (the
// loop retries it on the new sink) nor stored twice in a stream that has
// it already (natssink's resync).
func (a *Agent) natsSink(cfg *config.Config, prev deliver.Sink) *natssink.Sink {
	p, _ := prev.(*natssink.Sink)
	return natssink.New(NATSSinkConfig(cfg), natssink.Options{
		Clock:    clockwork.NewRealClock(),
		Logger:   a.log.With("component", "sink"),
		Previous: p,
		Version:  version.String(),
	})
}

// NATSSinkConfig is the NATS sink's configuration from the [nats]
// section: what the agent runs with, and what `pwbi-agent doctor` probes.
func NATSSinkConfig(cfg *config.Config) natssink.Config {
	n := cfg.NATS
	return natssink.Config{
		URLs:          n.URLs,
		CredsFile:     n.CredsFile,
		NKeySeedFile:  n.NKeySeedFile,
		User:          n.User,
		Password:      n.Password.Value(),
		TLSCAFile:     n.TLSCAFile,
		TLSCertFile:   n.TLSCertFile,
		TLSKeyFile:    n.TLSKeyFile,
		SubjectPrefix: n.SubjectPrefix,
		Stream:        n.Stream,
		CreateStream:  n.CreateStream,
		AgentID:       cfg.Agent.ID,
		Timeout:       n.Timeout.Duration,
		MaxInFlight:   n.MaxInFlight,
	}
}

// jurnalBatchSize is the Jurnal sink's batch: every sale is several calls
// at requests_per_minute, so a small batch keeps each attempt short and a
// refused sale's bisection cheap.
const jurnalBatchSize = 20

// jurnalLoopConfig is the Jurnal sink's delivery loop settings.
func jurnalLoopConfig(cfg *config.Config) deliver.Config {
	return deliver.Config{BatchSize: jurnalBatchSize, FlushInterval: cfg.Upstream.FlushInterval.Duration}
}

// JurnalSinkConfig is the Jurnal sink's configuration from the [jurnal]
// section (and the outlets' zone, moka.timezone): what the agent runs
// with, and what `pwbi-agent doctor` probes.
func JurnalSinkConfig(cfg *config.Config) jurnalsink.Config {
	j := cfg.Jurnal
	return jurnalsink.Config{
		BaseURL:           j.BaseURL,
		ClientID:          j.ClientID,
		ClientSecret:      j.ClientSecret.Value(),
		Mode:              j.Mode,
		CloseAfter:        j.CloseAfter.Duration,
		RequestsPerMinute: j.RequestsPerMinute,
		CustomerName:      j.CustomerName,
		Outlets:           j.Outlets,
		DepositAccounts:   j.DepositAccounts,
		OutletTags:        j.OutletTags,
		OutletWarehouses:  j.OutletWarehouses,
		Location:          cfg.Moka.Location(),
		Timeout:           j.Timeout.Duration,
	}
}

// jurnalSink is the Jurnal sink for the [jurnal] section (SPEC §6.3). It
// keeps its state (what it posted, the products it created, the
// daily-summary ledger) in the store's documents; prev hands over its
// figures and, for the same company, its rate budget.
func (a *Agent) jurnalSink(cfg *config.Config, prev deliver.Sink) *jurnalsink.Sink {
	p, _ := prev.(*jurnalsink.Sink)
	return jurnalsink.New(JurnalSinkConfig(cfg), jurnalsink.Options{
		Docs:     a.store,
		Client:   a.hc,
		Clock:    clockwork.NewRealClock(),
		Logger:   a.log.With("component", "sink", "sink", "jurnal"),
		Previous: p,
	})
}

// sinkTicker is a sink with work that needs time rather than records
// (Jurnal's daily_summary closing its days). The agent calls Tick on every
// enabled sink that has it, every sinkTickInterval and on "Sync now".
type sinkTicker interface {
	Tick(ctx context.Context) error
}

// sinkTickInterval is how often sinks are ticked.
const sinkTickInterval = time.Minute

// tickSinks ticks the enabled sinks until ctx ends (a worker: Pause stops
// it). A tick never runs twice at once.
func (a *Agent) tickSinks(ctx context.Context) {
	t := time.NewTicker(sinkTickInterval)
	defer t.Stop()
	for {
		a.reloadMu.Lock()
		a.retryStoreSinks()
		var tickers []sinkTicker
		for _, spec := range a.specs {
			if tk, ok := a.built[spec.name].(sinkTicker); ok { // a nil sink (switched off) is none
				tickers = append(tickers, tk)
			}
		}
		a.reloadMu.Unlock()
		for _, tk := range tickers {
			if err := tk.Tick(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("A sink's periodic work failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.sinkTick:
		}
	}
}

// pokeSinks asks tickSinks for a tick now ("Sync now").
func (a *Agent) pokeSinks() {
	select {
	case a.sinkTick <- struct{}{}:
	default:
	}
}

// buildSink returns the sink spec builds for cfg — nil when cfg does not
// enable it (its loop then idles) — and the one it replaces. Called at
// start and under reloadMu.
func (a *Agent) buildSink(spec sinkSpec, cfg *config.Config) (sink, prev deliver.Sink) {
	prev = a.built[spec.name]
	if spec.enabled(cfg) {
		sink = spec.build(a, cfg, prev)
	}
	a.mu.Lock()
	if a.built == nil {
		a.built = map[string]deliver.Sink{}
	}
	a.built[spec.name] = sink
	a.mu.Unlock()
	return sink, prev
}

// sinkInUse is the named sink in use (nil: disabled), for the status: it
// does not wait for a reload in progress (reloadMu).
func (a *Agent) sinkInUse(name string) deliver.Sink {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.built[name]
}

// closeSink closes a sink that is no longer used, if it holds something
// (an io.Closer).
func (a *Agent) closeSink(name string, s deliver.Sink) {
	c, ok := s.(io.Closer) // false for a nil sink
	if !ok {
		return
	}
	if err := c.Close(); err != nil {
		a.log.Warn("Closing a sink failed", "sink", name, "err", err)
	}
}

// closeSinks closes every sink in use (shutdown, after the final
// delivery); later reloads leave the sinks alone. Called under reloadMu.
func (a *Agent) closeSinks() {
	a.sinksClosed = true
	a.mu.Lock()
	built := a.built
	a.built = nil
	a.mu.Unlock()
	for name, s := range built {
		a.closeSink(name, s)
	}
}

// enabledSinks returns the names of the sinks cfg enables — or, when it
// enables none, the default sink, which then keeps the records buffered
// ("buffer only") until a sink is enabled: a record must never leave the
// buffer because nobody wants it.
func (a *Agent) enabledSinks(cfg *config.Config) []string {
	var names []string
	for _, spec := range a.specs {
		if spec.enabled(cfg) {
			names = append(names, spec.name)
		}
	}
	if len(names) == 0 {
		names = []string{a.specs[0].name}
	}
	return names
}

// setupDelivery builds one delivery loop per known sink, each on its own
// view of the buffer, and tells the store which sinks are enabled. A sink
// the configuration does not enable has a loop all the same, idle, so that
// a reload can switch it on.
func (a *Agent) setupDelivery(cfg *config.Config) error {
	if a.specs == nil {
		a.specs = sinkSpecs
	}
	if a.sinkTick == nil {
		a.sinkTick = make(chan struct{}, 1)
	}
	if err := a.store.SetSinks(a.enabledSinks(cfg)...); err != nil {
		return fmt.Errorf("enable sinks: %w", err)
	}
	members := make([]deliver.Member, len(a.specs))
	for i, spec := range a.specs {
		a.metrics.AddSink(spec.name)
		sink, _ := a.buildSink(spec, cfg)
		members[i] = deliver.Member{Name: spec.name, Forwarder: deliver.New(a.store.Sink(spec.name), sink, spec.loop(cfg), deliver.Options{
			Clock:    clockwork.NewRealClock(),
			Logger:   a.log.With("component", "sink", "sink", spec.name),
			OnResult: observeDelivery(a.metrics, spec.name),
		})}
	}
	a.delivery = deliver.NewGroup(members...)
	return nil
}

// applySinks hot-reloads the sinks (SPEC §3, §6): the store learns the new
// set of enabled sinks first — a sink switched on starts at the oldest
// record still buffered, one switched off releases what only it needed —
// then every loop takes its new settings and sink from its next attempt (a
// sink switched off gets none and idles; a new Endpoint cuts a backoff
// short). Nothing buffered or in flight is lost: a batch in flight to a
// sink being switched off finishes, and its acks are ignored.
func (a *Agent) applySinks(cfg *config.Config) {
	if a.sinksClosed {
		return // shutting down: the final delivery is over
	}
	a.switchStoreSinks(a.enabledSinks(cfg))
	for _, spec := range a.specs {
		sink, prev := a.buildSink(spec, cfg)
		a.delivery.Forwarder(spec.name).Update(spec.loop(cfg), sink)
		if prev != sink {
			a.closeSink(spec.name, prev)
		}
	}
}

// setStoreSinks is (*store.Store).SetSinks; tests make it fail.
var setStoreSinks = (*store.Store).SetSinks

// switchStoreSinks tells the buffer which sinks are enabled. On a failure
// (a write error) the loops still follow the configuration and the store
// keeps the records of the set it has, so nothing is lost; the failure
// stays in the status (a store write error: state error) and tickSinks
// tries again every tick until the buffer has the set. Under reloadMu.
func (a *Agent) switchStoreSinks(names []string) {
	err := setStoreSinks(a.store, names...)
	if err != nil {
		a.log.Error("Switching sinks in the buffer failed", "sinks", names, "err", err)
		err = fmt.Errorf("the buffer could not switch to the sinks %s (retried every minute): %w", strings.Join(names, ", "), err)
	}
	a.mu.Lock()
	a.sinkSetErr = err
	if err != nil {
		a.sinkSetWant = names
	}
	a.mu.Unlock()
}

// retryStoreSinks repeats a failed switchStoreSinks. Under reloadMu.
func (a *Agent) retryStoreSinks() {
	a.mu.Lock()
	failed, names := a.sinkSetErr != nil, a.sinkSetWant
	a.mu.Unlock()
	if failed && !a.sinksClosed {
		a.switchStoreSinks(names)
	}
}

// sinkSetError is why the buffer does not have the enabled sinks, or nil.
func (a *Agent) sinkSetError() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sinkSetErr
}

// sinkSpec returns the spec of the named sink.
func (a *Agent) sinkSpec(name string) (sinkSpec, bool) {
	i := slices.IndexFunc(a.specs, func(s sinkSpec) bool { return s.name == name })
	if i < 0 {
		return sinkSpec{}, false
	}
	return a.specs[i], true
}

// checkSinkName validates a sink name given on the command line or the
// local API: it must be one the agent knows.
func (a *Agent) checkSinkName(name string) error {
	if _, ok := a.sinkSpec(name); ok {
		return nil
	}
	known := make([]string, len(a.specs))
	for i, s := range a.specs {
		known[i] = s.name
	}
	return fmt.Errorf("unknown sink %q (known: %s)", name, strings.Join(known, ", "))
}
