// Package agent is the composition root of the PWBI Edge Agent: it loads the
// configuration, opens the store and wires the long-running parts (the Moka
// syncer, the upstream forwarder, the local API, the config watcher and
// housekeeping) into one process with one lifetime.
//
// This package depends on every other part of the agent; nothing but cmd/
// and agent/cli should import it.
//
// Shutdown order, and why:
//
//  1. the config watcher stops, so no reload races the shutdown;
//  2. the checkout gateway (checkout.go) stops taking tablet requests, lets
//     those in flight finish (bounded) and stops its order refresh loop, so
//     its last mokka_order records are buffered before the final flush;
//  3. the workers stop: producers (the Moka syncer) so nothing new enters
//     the buffer, and the forwarder's loop;
//  4. the forwarder drains what it can within a deadline, so a clean stop
//     leaves as little as possible pending;
//  5. the local API shuts down last among the servers, so the tray sees the
//     agent until the very end;
//  6. the store closes after everything that uses it has returned.
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

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/configwatch"
	"github.com/pwbi/edge-agent/agent/deliver"
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
	fwd     *deliver.Forwarder
	moka    *moka.Syncer
	metrics *metrics.Metrics
	hc      *http.Client
	watcher *configwatch.Watcher
	started time.Time

	// mokaAuth is the Moka Open API authorization and tokens (mokaauth.go;
	// added with issue 7). Set by setupMoka, never replaced.
	mokaAuth *mokaAuth

	mu       sync.Mutex
	cfg      *config.Config // the configuration in force
	gen      uint64         // config generation; 1 after the first load
	loadedAt time.Time
	cfgErr   string   // why the last load failed; empty if it succeeded
	restart  []string // keys changed on disk that need a restart
	mokaErr  string   // why Moka cannot run with this configuration
	paused   bool

	reloadMu sync.Mutex // serialises reloads

	apiMu     sync.Mutex
	apiSrv    *localapi.Server
	apiAddr   string
	apiCancel context.CancelFunc
	apiDone   chan error
	apiFatal  chan error // a listener that failed by itself

	co checkoutState // the Mokka checkout gateway (checkout.go; issue 5)

	workMu     sync.Mutex
	workCancel context.CancelFunc
	workDone   chan struct{}
	baseCtx    context.Context
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

	a := &Agent{
		cfgPath:  cfg.Path,
		logs:     logs,
		log:      log,
		store:    st,
		metrics:  metrics.New(),
		hc:       &http.Client{},
		started:  time.Now(),
		cfg:      cfg,
		gen:      1,
		loadedAt: time.Now(),
		baseCtx:  ctx,
		apiFatal: make(chan error, 1),
	}
	a.wireMetrics()
	a.fwd = deliver.New(st, a.upstreamSink(cfg), deliverConfig(cfg), deliver.Options{
		Clock:    clockwork.NewRealClock(),
		Logger:   log.With("component", "upstream"),
		OnResult: observeDelivery(a.metrics),
	})
	a.setupMoka(cfg)
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
	a.startCheckout(cfg)
	a.serveAPI(ln)

	log.Info("Agent started",
		"version", version.String(),
		"agent_id", cfg.Agent.ID,
		"config", cfg.Path,
		"data_dir", cfg.Agent.DataDir,
		"local_api", ln.Addr().String(),
		"moka", cfg.Moka.Enabled,
		"upstream_configured", cfg.Upstream.URL != "")
	if q, ok := st.Quarantine(); ok {
		log.Warn("Database was corrupt and has been replaced", "moved_to", q.CorruptPath, "reason", q.Reason)
	}

	a.startWorkers()
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	a.watcher = configwatch.New(cfg.Path, cfg.SHA256, configwatch.Options{
		Logger:    log.With("component", "configwatch"),
		OnProblem: func(err error) { a.reject("file", configReadProblem(cfg.Path, err)) },
	})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		if err := a.watcher.Run(watchCtx, func(c configwatch.Change) { a.apply(c.Data, "file") }); err != nil {
			log.Error("Config watcher stopped", "err", err)
		}
	}()
	if opts.Ready != nil {
		opts.Ready(a.APIAddr())
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("Agent stopping", "reason", context.Cause(ctx))
	case runErr = <-a.apiFatal:
		log.Error("Local API failed", "err", runErr)
	case <-st.Failed():
		// The database became unusable (store.Store.Failed): exit with an
		// error so that the service manager restarts the agent and Open
		// checks the file again. The drain below fails fast.
		runErr = fmt.Errorf("store failed: %w", st.Err())
		log.Error("Store failed; stopping so that the service manager restarts the agent", "err", st.Err())
	}

	// 1. Config watcher.
	stopWatch()
	<-watchDone
	// 2. Checkout gateway: tablets, relays in flight, order refresh.
	a.stopCheckout()
	// 3. Workers: producers and the forwarder loop.
	a.stopWorkers()
	// 4. Deliver what we can before going down.
	drainCtx, cancelDrain := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	if err := a.fwd.Drain(drainCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Warn("Final upstream flush incomplete", "err", err)
	}
	cancelDrain()
	// 5. Local API.
	if err := a.stopAPI(); err != nil && runErr == nil {
		runErr = err
	}
	if s, err := st.Stats(); err == nil {
		log.Info("Agent stopped", "pending", s.Pending, "dead_letters", s.DeadLetters)
	}
	// 6. The store closes in the deferred call above.
	return runErr
}

// startWorkers starts the parts that do the syncing: the Moka syncer, the
// forwarder loop and housekeeping. Pause stops them; Resume starts them
// again. Their Run methods return nil on cancellation and can run again.
func (a *Agent) startWorkers() {
	a.workMu.Lock()
	defer a.workMu.Unlock()
	if a.workCancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(a.baseCtx)
	done := make(chan struct{})
	a.workCancel, a.workDone = cancel, done
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := a.moka.Run(ctx); err != nil {
				a.log.Error("Moka syncer stopped", "err", err)
			}
		})
		wg.Go(func() {
			if err := a.fwd.Run(ctx); err != nil {
				a.log.Error("Forwarder stopped", "err", err)
			}
		})
		wg.Go(func() { a.housekeeping(ctx) })
		wg.Wait()
	}()
}

// stopWorkers stops the workers and waits for them.
func (a *Agent) stopWorkers() {
	a.workMu.Lock()
	defer a.workMu.Unlock()
	if a.workCancel == nil {
		return
	}
	a.workCancel()
	<-a.workDone
	a.workCancel, a.workDone = nil, nil
}

// serveAPI starts serving the local API on ln, replacing (after the new
// listener serves) any previous listener: a reload that moves the API never
// leaves a moment without one.
func (a *Agent) serveAPI(ln net.Listener) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(a.baseCtx))
	done := make(chan error, 1)
	go func() {
		err := a.apiSrv.Serve(ctx, ln)
		if err != nil && ctx.Err() == nil {
			select {
			case a.apiFatal <- err:
			default:
			}
		}
		done <- err
	}()
	a.apiMu.Lock()
	oldCancel, oldDone := a.apiCancel, a.apiDone
	a.apiCancel, a.apiDone, a.apiAddr = cancel, done, ln.Addr().String()
	a.apiMu.Unlock()
	if oldCancel != nil {
		oldCancel()
		if err := <-oldDone; err != nil {
			a.log.Warn("Old local API listener stopped with an error", "err", err)
		}
	}
}

func (a *Agent) stopAPI() error {
	a.apiMu.Lock()
	cancel, done := a.apiCancel, a.apiDone
	a.apiCancel = nil
	a.apiMu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	return <-done
}

// APIAddr is the address the local API listens on now.
func (a *Agent) APIAddr() string {
	a.apiMu.Lock()
	defer a.apiMu.Unlock()
	return a.apiAddr
}

func (a *Agent) config() *config.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}
