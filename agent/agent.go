// Package agent is the composition root of the PWBI Edge Agent: it loads the
// configuration, opens the store and wires the long-running parts (the Moka
// syncer, the delivery loop and its sinks, the checkout gateway, the local
// API, the config watcher and housekeeping) into one process with one
// lifetime. It is wiring only: what each part does lives in its package.
//
// This package depends on every other part of the agent; nothing but cmd/
// may import it (deps_test.go).
//
// Every part runs as a task (agent/internal/task): started with its own
// context, stopped by cancelling it and waiting. The shutdown order is
// written once, in [Agent.shutdown], and this is why:
//
//  1. the config watcher stops, so no reload races the shutdown;
//  2. the checkout gateway stops taking tablet requests, lets those in
//     flight finish (bounded) and stops its order refresh loop, so its last
//     mokka_order records are buffered before the final delivery;
//  3. the workers stop: the producer (the Moka syncer) so nothing new enters
//     the buffer, the delivery loops (one per sink), and housekeeping;
//  4. the delivery loops drain what they can within drainTimeout, every
//     sink at once, so a clean stop leaves as little as possible pending;
//     then the sinks release their connections;
//  5. the local API stops last among the servers, so the tray sees the
//     agent until the very end;
//  6. the store closes after everything that uses it has returned (a
//     deferred call in Run).
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/configwatch"
	"github.com/pwbi/edge-agent/agent/deliver"
	"github.com/pwbi/edge-agent/agent/internal/task"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/agent/logging"
	"github.com/pwbi/edge-agent/agent/metrics"
	"github.com/pwbi/edge-agent/agent/moka"
	"github.com/pwbi/edge-agent/agent/version"
	"github.com/pwbi/edge-agent/store"
)

// openStore opens the store; a variable so that a test can reach the store
// the agent runs on (storefail_test.go).
var openStore = store.Open

// drainTimeout bounds the final upstream flush on shutdown. A Windows service
// must stop within 20 s; what is not sent stays safely in the buffer.
const drainTimeout = 5 * time.Second

// Options configure Run.
type Options struct {
	// ConfigPath is the configuration file to load.
	ConfigPath string
	// Stderr receives the human-readable log; nil means os.Stderr.
	Stderr io.Writer
	// Ready, if set, is called once the local API listens and every part
	// runs (tests and the OS service use it).
	Ready func(apiAddr string)
}

// Agent is one running agent. Its methods are safe for concurrent use.
type Agent struct {
	cfgPath string
	logs    *logging.Logger
	log     *slog.Logger
	store   *store.Store
	// delivery is one loop per known sink (delivery.go); specs are the
	// sinks the agent knows (sinkSpecs, or a test's).
	delivery *deliver.Group
	specs    []sinkSpec
	moka     *moka.Syncer
	metrics  *metrics.Metrics
	hc       *http.Client
	watcher  *configwatch.Watcher
	apiSrv   *localapi.Server
	started  time.Time
	// base is the context the parts run under: Run's, so that a canceled
	// Run stops whatever is still running.
	base context.Context
	// fatal receives the error of a part that stopped by itself (a
	// listener that failed): Run stops the agent.
	fatal chan error

	// mokaAuth is the Moka Open API authorization and tokens (mokaauth.go).
	// Set by setupMoka, never replaced.
	mokaAuth *mokaAuth

	mu       sync.Mutex
	cfg      *config.Config // the configuration in force
	gen      uint64         // config generation; 1 after the first load
	loadedAt time.Time
	cfgErr   string   // why the last load failed; empty if it succeeded
	restart  []string // keys changed on disk that need a restart
	mokaErr  string   // why Moka cannot run with this configuration
	// sinkSetErr: the buffer could not switch to the enabled sinks
	// sinkSetWant (delivery.go switchStoreSinks); retried by tickSinks.
	sinkSetErr  error
	sinkSetWant []string
	paused      bool
	apiAddr     string // where the local API listens now

	reloadMu sync.Mutex // serialises reloads
	// built is the sink in use per spec (nil: disabled); sinksClosed:
	// shutdown closed them, reloads build no more. Both under reloadMu;
	// built is also written under mu, so that the status reads it without
	// waiting for a reload (sinkInUse).
	built       map[string]deliver.Sink
	sinksClosed bool
	// sinkTick asks tickSinks (delivery.go) for a tick now; capacity 1.
	sinkTick chan struct{}

	// The running parts (agent/internal/task).
	watch   *task.Task   // the config watcher
	api     task.Slot    // the local API server; swapped when a reload moves it
	workers task.Slot    // syncer, delivery loop, housekeeping; emptied by Pause
	co      checkoutPart // the Mokka gateway (checkout.go)
}

// Run loads the configuration at opts.ConfigPath and runs the agent until
// ctx is canceled. Cancellation is a clean stop and returns nil.
func Run(ctx context.Context, opts Options) error {
	stderr := opts.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	cfg, err := config.Load(opts.ConfigPath) // its errors say "load config" or name the file and line
	if err != nil {
		return err
	}
	logs, err := logging.New(cfg.Agent.LogLevel, stderr, filepath.Join(cfg.Agent.DataDir, "logs"))
	if err != nil {
		return err
	}
	defer logs.Close()
	log := logs.Logger

	if err := os.MkdirAll(cfg.Agent.DataDir, 0o750); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	st, err := openStore(store.Options{
		Path:            filepath.Join(cfg.Agent.DataDir, "agent.db"),
		MaxPendingBytes: int64(cfg.Upstream.MaxPendingMB) << 20,
		Logger:          log.With("component", "store"),
	})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("Closing store failed", "err", err)
		}
	}()

	a, err := newAgent(ctx, cfg, st, log)
	if err != nil {
		return err
	}
	a.logs = logs
	a.wireMetrics()
	a.metrics.SetConfig(a.gen, true)

	ln, err := localapi.Listen(cfg.LocalAPI.Listen)
	if err != nil {
		return err
	}
	a.apiSrv = localapi.NewServer(a, localapi.ServerOptions{
		Logger:  log.With("component", "localapi"),
		Metrics: a.metrics.Handler(log),
	})
	// The Mokka gateway for tablets (checkout.go), before the local API
	// serves: status and reload requests may use it at once.
	a.co = checkoutPart{log: log.With("component", "checkout"), base: ctx}
	a.co.start(cfg, st)
	a.serveAPI(ln)

	log.Info("Agent started",
		"version", version.String(),
		"agent_id", cfg.Agent.ID,
		"config", cfg.Path,
		"data_dir", cfg.Agent.DataDir,
		"local_api", ln.Addr().String(),
		"moka", cfg.Moka.Enabled,
		"upstream_configured", cfg.Upstream.URL != "",
		"sinks", a.enabledSinks(cfg))
	if q, ok := st.Quarantine(); ok {
		log.Warn("Database was corrupt and has been replaced", "moved_to", q.CorruptPath, "reason", q.Reason)
	}

	a.startWorkers()
	a.watcher = configwatch.New(cfg.Path, cfg.SHA256, configwatch.Options{
		Logger:    log.With("component", "configwatch"),
		OnProblem: func(err error) { a.reject("file", configReadProblem(cfg.Path, err)) },
	})
	a.watch = task.Go(ctx, "config watcher", func(ctx context.Context) error {
		return a.watcher.Run(ctx, func(c configwatch.Change) { a.apply(c.Data, "file") })
	}, a.failFast())
	if opts.Ready != nil {
		opts.Ready(a.APIAddr())
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("Agent stopping", "reason", context.Cause(ctx))
	case runErr = <-a.fatal:
		log.Error("A part of the agent failed; stopping", "err", runErr)
	case <-st.Failed():
		// The database became unusable (store.Store.Failed): exit with an
		// error so that the service manager restarts the agent and Open
		// checks the file again. The drain fails fast.
		runErr = fmt.Errorf("store failed: %w", st.Err())
		log.Error("Store failed; stopping so that the service manager restarts the agent", "err", st.Err())
	}
	if err := a.shutdown(ctx); err != nil && runErr == nil {
		runErr = err
	}
	if s, err := st.Stats(); err == nil {
		bySink := map[string]int64{}
		for _, ss := range s.Sinks {
			if ss.Enabled {
				bySink[ss.Name] = ss.Pending
			}
		}
		log.Info("Agent stopped", "pending", s.Pending, "dead_letters", s.DeadLetters, "pending_by_sink", bySink)
	}
	return runErr // the store closes in the deferred call above
}

// shutdown stops the parts in the order the package doc explains. It
// returns the first error a part stopped with.
func (a *Agent) shutdown(ctx context.Context) error {
	steps := []struct {
		name string
		stop func() error
	}{
		{"config watcher", a.watch.Stop},
		{"checkout gateway", a.co.stop},
		{"workers", a.workers.Stop},
		{"final delivery", func() error { return a.drain(ctx) }},
		{"local API", a.api.Stop},
	}
	var first error
	for _, s := range steps {
		if err := s.stop(); err != nil {
			a.log.Warn("Part stopped with an error", "part", s.name, "err", err)
			if first == nil {
				first = fmt.Errorf("%s: %w", s.name, err)
			}
		}
	}
	return first
}

// drain delivers what it can to every sink at once within drainTimeout;
// what is not sent stays in the buffer, so running out of time, or a sink
// that is down, is not an error.
func (a *Agent) drain(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	if err := a.delivery.Drain(dctx); err != nil {
		a.log.Warn("Final delivery incomplete; the rest stays in the buffer", "err", err)
	}
	a.reloadMu.Lock() // no reload builds a sink any more (the watcher stopped first)
	a.closeSinks()
	a.reloadMu.Unlock()
	return nil
}

// failFast is the task option of parts whose stopping by themselves must
// stop the agent (the service manager restarts it).
func (a *Agent) failFast() task.Options {
	return task.Options{OnExit: func(name string, err error) {
		if err == nil {
			err = errors.New("stopped unexpectedly")
		}
		select {
		case a.fatal <- fmt.Errorf("%s: %w", name, err):
		default:
		}
	}}
}

// startWorkers starts the parts that do the syncing — the Moka syncer, the
// delivery loop and housekeeping — unless they run already. Pause stops
// them; Resume starts them again. Their Run methods return nil on
// cancellation and can run again.
func (a *Agent) startWorkers() {
	a.workers.Ensure(func() *task.Task {
		return task.Go(a.base, "workers", func(ctx context.Context) error {
			var wg sync.WaitGroup
			wg.Go(func() {
				if err := a.moka.Run(ctx); err != nil {
					a.log.Error("Moka syncer stopped", "err", err)
				}
			})
			wg.Go(func() {
				if err := a.delivery.Run(ctx); err != nil {
					a.log.Error("Delivery loops stopped", "err", err)
				}
			})
			wg.Go(func() { a.housekeeping(ctx) })
			wg.Go(func() { a.tickSinks(ctx) })
			wg.Wait()
			return nil
		})
	})
}

// serveAPI serves the local API on ln, then stops the previous listener, if
// any: a reload that moves the API never leaves a moment without one. The
// server outlives Run's context until shutdown stops it (step 5), so it
// runs under a context of its own.
func (a *Agent) serveAPI(ln net.Listener) {
	t := task.Go(context.WithoutCancel(a.base), "local API", func(ctx context.Context) error {
		return a.apiSrv.Serve(ctx, ln)
	}, a.failFast())
	a.mu.Lock()
	a.apiAddr = ln.Addr().String()
	a.mu.Unlock()
	if err := a.api.Swap(t); err != nil {
		a.log.Warn("Old local API listener stopped with an error", "err", err)
	}
}

// APIAddr is the address the local API listens on now.
func (a *Agent) APIAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.apiAddr
}

func (a *Agent) config() *config.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

// newAgent is the agent of cfg on st, its parts built but not running:
// one delivery loop per sink (delivery.go) and the Moka syncer. Run
// starts them; the status benchmark measures them as they are.
func newAgent(ctx context.Context, cfg *config.Config, st *store.Store, log *slog.Logger) (*Agent, error) {
	a := &Agent{
		cfgPath:  cfg.Path,
		log:      log,
		store:    st,
		metrics:  metrics.New(),
		hc:       &http.Client{},
		started:  time.Now(),
		cfg:      cfg,
		gen:      1,
		loadedAt: time.Now(),
		base:     ctx,
		fatal:    make(chan error, 1),
	}
	if err := a.setupDelivery(cfg); err != nil {
		return nil, err
	}
	a.setupMoka(cfg)
	return a, nil
}
