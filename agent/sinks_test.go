package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/deliver"
	"github.com/pwbi/edge-agent/agent/deliver/httpsink/upstreamfake"
	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/agent/health"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/agent/metrics"
	"github.com/pwbi/edge-agent/agent/moka"
	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/store"
)

// memorySink is a second sink for the composition tests: it keeps what it
// is sent, in order.
type memorySink struct {
	name string

	mu  sync.Mutex
	got []store.Record
}

// builtSink is one configuration's value of the memory sink, as a sink
// holding a connection would be: the agent must close it when a new
// configuration replaces it, or the sink is switched off.
type builtSink struct {
	*memorySink
	id     int
	closed atomic.Bool
}

func (b *builtSink) Close() error {
	if b.closed.Swap(true) {
		return fmt.Errorf("sink %d closed twice", b.id)
	}
	return nil
}

func (m *memorySink) Endpoint() string { return "memory://" + m.name }

func (m *memorySink) Send(_ context.Context, batch []store.Record) sink.Answer {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, batch...)
	return sink.Answer{Verdict: sink.Accepted}
}

func (m *memorySink) keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, len(m.got))
	for i, r := range m.got {
		out[i] = r.Key
	}
	return out
}

// sinkWorld is an agent's delivery part alone — the store, the sink specs
// (the real upstream spec and a second, test sink switched by a flag) and
// their loops — as Run wires it.
type sinkWorld struct {
	a        *Agent
	srv      *upstreamfake.Server
	second   *memorySink
	secondOn atomic.Bool
	next     int

	mu    sync.Mutex
	built []*builtSink // every value the spec built, in order
	prevs []deliver.Sink
}

func (w *sinkWorld) builtSinks() ([]*builtSink, []deliver.Sink) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.built), slices.Clone(w.prevs)
}

func newSinkWorld(t *testing.T) *sinkWorld {
	t.Helper()
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "agent.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := &sinkWorld{srv: upstreamfake.NewServer(t, upstreamfake.Options{Token: "tok-sinks-test"}), second: &memorySink{name: "second"}}
	w.a = &Agent{
		log:     slog.New(slog.DiscardHandler),
		store:   st,
		metrics: metrics.New(),
		hc:      &http.Client{},
		specs: []sinkSpec{sinkSpecs[0], {
			name: "second", title: "Second", who: "the second sink",
			enabled: func(*config.Config) bool { return w.secondOn.Load() },
			build: func(_ *Agent, _ *config.Config, prev deliver.Sink) deliver.Sink {
				w.mu.Lock()
				defer w.mu.Unlock()
				b := &builtSink{memorySink: w.second, id: len(w.built) + 1}
				w.built = append(w.built, b)
				w.prevs = append(w.prevs, prev)
				return b
			},
			loop: func(*config.Config) deliver.Config { return deliver.Config{BatchSize: 50} },
		}},
	}
	return w
}

func (w *sinkWorld) config(upstream bool) *config.Config {
	c := config.Default()
	cfg := &c
	cfg.Agent.ID = "sinks-test"
	cfg.Upstream.FlushInterval.Duration = 0
	cfg.Upstream.BatchSize = 50
	if upstream {
		cfg.Upstream.URL = w.srv.URL()
		cfg.Upstream.Token = config.NewSecret("tok-sinks-test")
	}
	return cfg
}

func (w *sinkWorld) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.a.delivery.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// add buffers n new records and returns their keys.
func (w *sinkWorld) add(t *testing.T, n int) []string {
	t.Helper()
	var in []store.Input
	var keys []string
	for range n {
		key := fmt.Sprintf("moka/b1/o1/T%05d", w.next)
		in = append(in, store.Input{Kind: store.KindTransaction, Key: key, Data: fmt.Appendf(nil, `{"external_id":"T%05d"}`, w.next)})
		keys = append(keys, key)
		w.next++
	}
	if _, err := w.a.store.Append(in, nil); err != nil {
		t.Fatal(err)
	}
	return keys
}

func (w *sinkWorld) stats(t *testing.T) store.Stats {
	t.Helper()
	st, err := w.a.store.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func upstreamKeys(srv *upstreamfake.Server) []string {
	var keys []string
	for _, r := range srv.Records() {
		keys = append(keys, r.Key)
	}
	return keys
}

// Enabling, disabling and re-configuring any sink is a reload like any
// other: a sink switched on starts at the oldest record still buffered, one
// switched off releases what only it needed, and with no sink enabled the
// records stay buffered (buffer only) until one is.
func TestSinksFollowTheConfiguration(t *testing.T) {
	w := newSinkWorld(t)
	cfg := w.config(true)
	if err := w.a.setupDelivery(cfg); err != nil {
		t.Fatal(err)
	}
	if got, _ := w.a.store.Sinks(); !slices.Equal(got, []string{"upstream"}) {
		t.Fatalf("sinks at start = %v", got)
	}
	w.run(t)

	first := w.add(t, 120)
	testutil.WaitFor(t, "the upstream takes the first records", 20*time.Second, func() bool {
		return w.stats(t).Pending == 0
	})
	// The upstream goes down; records wait for it.
	w.srv.SetDown(true)
	waiting := w.add(t, 80)
	testutil.WaitFor(t, "the upstream to be offline", 20*time.Second, func() bool {
		return w.a.delivery.Forwarder("upstream").Status().Health == deliver.HealthOffline
	})

	// The second sink is switched on: it starts at the oldest record still
	// buffered (not at the first ever), while the upstream still needs them.
	w.secondOn.Store(true)
	w.a.applySinks(cfg)
	testutil.WaitFor(t, "the second sink catches up", 20*time.Second, func() bool {
		ss, err := w.a.store.Sink("second").Stats()
		return err == nil && len(w.second.keys()) >= len(waiting) && ss.Pending == 0 &&
			w.a.delivery.Forwarder("second").Status().Delivered == uint64(len(waiting))
	})
	if got := w.second.keys(); !slices.Equal(got, waiting) {
		t.Fatalf("the second sink got %d records starting %v, want what was buffered: %d from %s", len(got), got[:1], len(waiting), waiting[0])
	}
	if st := w.stats(t); st.Pending != int64(len(waiting)) {
		t.Fatalf("buffer = %d records, want %d kept for the upstream", st.Pending, len(waiting))
	}
	sinks, hs := w.a.sinksStatus(cfg, w.stats(t))
	if len(sinks) != 2 || sinks[0].Name != "upstream" || sinks[0].Pending != int64(len(waiting)) || sinks[0].Online ||
		sinks[0].Health != string(deliver.HealthOffline) || !sinks[1].Enabled || sinks[1].Pending != 0 {
		t.Errorf("sinks status = %+v", sinks)
	}
	if len(hs) != 2 || !hs[0].Configured || hs[0].Unconfigured != "" || !hs[1].Configured {
		t.Errorf("health input = %+v", hs)
	}

	// The upstream is switched off: what only it needed is released. The
	// second sink is rebuilt for the new configuration from the one it
	// replaces, which is closed.
	cfgNoUp := w.config(false)
	w.a.applySinks(cfgNoUp)
	built, prevs := w.builtSinks()
	if len(built) != 2 || prevs[0] != nil || prevs[1] != deliver.Sink(built[0]) || !built[0].closed.Load() || built[1].closed.Load() {
		t.Fatalf("rebuilt sinks: %d built, previous %v, closed %v %v", len(built), prevs, built[0].closed.Load(), built[len(built)-1].closed.Load())
	}
	if st := w.stats(t); st.Pending != 0 || st.PendingBytes != 0 {
		t.Fatalf("buffer after the upstream was switched off = %+v", st)
	}
	more := w.add(t, 30)
	testutil.WaitFor(t, "the second sink alone", 20*time.Second, func() bool { return len(w.second.keys()) == len(waiting)+len(more) })
	testutil.WaitFor(t, "the buffer empties", 20*time.Second, func() bool { return w.stats(t).Pending == 0 })

	// No sink at all: the records stay in the buffer, held for the default
	// sink, and the status says buffer only.
	w.secondOn.Store(false)
	w.a.applySinks(cfgNoUp)
	if built, _ := w.builtSinks(); len(built) != 2 || !built[1].closed.Load() {
		t.Fatal("the second sink was not closed when switched off")
	}
	kept := w.add(t, 10)
	if st := w.stats(t); st.Pending != 10 {
		t.Fatalf("with no sink enabled the buffer holds %d records, want 10", st.Pending)
	}
	sinks, hs = w.a.sinksStatus(cfgNoUp, w.stats(t))
	if sinks[0].Enabled || sinks[0].Configured || sinks[0].Pending != 10 || hs[0].Unconfigured == "" || hs[0].Configured {
		t.Errorf("buffer only: sinks %+v, health %+v", sinks[0], hs[0])
	}

	// The upstream is back, at the same address: it delivers what was
	// kept, after everything it had before, in order.
	w.srv.SetDown(false)
	w.a.applySinks(cfg)
	w.a.delivery.Flush()
	testutil.WaitFor(t, "the upstream delivers what was kept", 20*time.Second, func() bool { return w.stats(t).Pending == 0 })
	got := upstreamKeys(w.srv)
	if want := slices.Concat(first, kept); !slices.Equal(got, want) {
		t.Fatalf("upstream received %d records, want %d: the first ones and what was kept for it", len(got), len(want))
	}
	if v := w.srv.OrderViolations(); v != 0 {
		t.Errorf("%d order violations", v)
	}
}

// Shutdown closes the sinks in use after the final delivery; a reload
// arriving afterwards (the local API stops last) builds none.
func TestShutdownClosesSinks(t *testing.T) {
	w := newSinkWorld(t)
	w.secondOn.Store(true)
	cfg := w.config(true)
	if err := w.a.setupDelivery(cfg); err != nil {
		t.Fatal(err)
	}
	keys := w.add(t, 30)
	if err := w.a.drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := w.second.keys(); !slices.Equal(got, keys) || len(w.srv.Records()) != len(keys) {
		t.Fatalf("final delivery: second got %d, upstream %d, want %d each", len(got), len(w.srv.Records()), len(keys))
	}
	built, _ := w.builtSinks()
	if len(built) != 1 || !built[0].closed.Load() {
		t.Fatalf("sinks after shutdown: %d built, closed %v", len(built), built[0].closed.Load())
	}
	w.a.applySinks(cfg)
	if built, _ := w.builtSinks(); len(built) != 1 {
		t.Fatalf("a reload after shutdown built %d sinks", len(built)-1)
	}
}

// A sink switch the buffer cannot take (a write error) is not only logged:
// it stays in the status as a store write error until a retry succeeds,
// even when other writes commit meanwhile; the retry gives the buffer the
// enabled set.
func TestFailedSinkSwitchIsShownAndRetried(t *testing.T) {
	w := newSinkWorld(t)
	cfg := w.config(true)
	if err := w.a.setupDelivery(cfg); err != nil {
		t.Fatal(err)
	}
	real := setStoreSinks
	t.Cleanup(func() { setStoreSinks = real })
	setStoreSinks = func(*store.Store, ...string) error { return errors.New("write agent.db: input/output error") }

	w.secondOn.Store(true)
	w.a.reloadMu.Lock()
	w.a.applySinks(cfg)
	w.a.reloadMu.Unlock()
	err := w.a.sinkSetError()
	if err == nil || !strings.Contains(err.Error(), "could not switch to the sinks upstream, second") {
		t.Fatalf("sinkSetError = %v", err)
	}
	if got, _ := w.a.store.Sinks(); !slices.Equal(got, []string{"upstream"}) {
		t.Fatalf("the buffer's sinks = %v, want the old set", got)
	}
	w.add(t, 1) // another write commits: the store forgets its own write error
	if err := w.a.storeWriteError(); err == nil || !strings.Contains(err.Error(), "could not switch to the sinks") {
		t.Fatalf("the status's store write error = %v, want the failed switch", err)
	}
	if st, _ := health.Evaluate(health.Input{Store: health.Store{WriteError: w.a.storeWriteError().Error()}}); st != health.Error {
		t.Fatalf("state %q for it, want error", st)
	}

	// The sinks' tick retries the switch (the agent runs tickSinks as a
	// worker; "Sync now" pokes it): once the buffer can write again, the
	// next tick gives it the set and the error goes.
	ctx, cancel := context.WithCancel(context.Background())
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		w.a.tickSinks(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-ticked
	})
	w.a.reloadMu.Lock() // tickSinks calls setStoreSinks under reloadMu
	setStoreSinks = real
	w.a.reloadMu.Unlock()
	w.a.pokeSinks()
	testutil.WaitFor(t, "a tick to retry the switch", 30*time.Second, func() bool { return w.a.sinkSetError() == nil })
	if got, _ := w.a.store.Sinks(); !slices.Equal(got, []string{"second", "upstream"}) {
		t.Fatalf("the buffer's sinks after the retry = %v", got)
	}
}

// The status reads the Jurnal sink in use without waiting for a reload in
// progress: a status call made while a reload holds reloadMu (binding a
// moved local API waits up to seconds for the old API's calls) used to
// block until the reload ended.
func TestStatusReadsJurnalSinkDuringReload(t *testing.T) {
	w := newSinkWorld(t)
	cfg := w.config(true)
	cfg.Jurnal.Enabled = true
	cfg.Jurnal.ClientID = "client-status-test"
	cfg.Jurnal.ClientSecret = config.NewSecret("secret-status-test")
	jurnal, ok := sinkSpecByName("jurnal")
	if !ok {
		t.Fatal("no jurnal spec")
	}
	built, _ := w.a.buildSink(jurnal, cfg)
	if built == nil {
		t.Fatal("the jurnal spec built no sink for a configured [jurnal]")
	}
	t.Cleanup(func() {
		w.a.reloadMu.Lock()
		w.a.closeSinks()
		w.a.reloadMu.Unlock()
	})

	w.a.reloadMu.Lock() // a reload in progress
	defer w.a.reloadMu.Unlock()
	done := make(chan localapi.JurnalStatus, 1)
	go func() {
		js, _ := w.a.jurnalStatus(cfg, moka.Status{})
		done <- js
	}()
	select {
	case js := <-done:
		if !js.Enabled || js.Setup != "" {
			t.Errorf("jurnal status %+v, want the configured sink's", js)
		}
		if got := w.a.sinkInUse("jurnal"); got != built {
			t.Errorf("sinkInUse(jurnal) = %v, want the sink built", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the status waited for the reload to end")
	}
}

func sinkSpecByName(name string) (sinkSpec, bool) {
	i := slices.IndexFunc(sinkSpecs, func(s sinkSpec) bool { return s.name == name })
	if i < 0 {
		return sinkSpec{}, false
	}
	return sinkSpecs[i], true
}
