// Package agent is the composition root of the PWBI Edge Agent: it loads the
// configuration, opens the store and wires the long-running parts (the
// upstream forwarder, the local API, and later the Moka pollers and the Mokka
// gateway) into one process with one lifetime.
//
// This package depends on every other part of the agent; nothing but cmd/
// should import it.
//
// Shutdown order, and why:
//
//  1. producers (Moka pollers) stop first, so nothing new enters the buffer;
//  2. the forwarder stops its loop and drains what it can within a deadline,
//     so a clean stop leaves as little as possible pending;
//  3. the local API shuts down last among the servers, so the tray sees the
//     agent until the very end;
//  4. the store closes after everything that uses it has returned.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/agent/logging"
	"github.com/pwbi/edge-agent/agent/mokasync"
	"github.com/pwbi/edge-agent/agent/upstream"
	"github.com/pwbi/edge-agent/agent/version"
	"github.com/pwbi/edge-agent/store"
)

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
	log     *slog.Logger
	store   *store.Store
	fwd     *upstream.Forwarder
	moka    *mokasync.Syncer
	mokaErr string // why Moka cannot run with this configuration
	started time.Time

	mu       sync.Mutex
	cfg      *config.Config // the configuration in force
	gen      uint64         // config generation; 1 after the first load
	loadedAt time.Time
	cfgErr   string // why the last load failed; empty if it succeeded
}

// Run loads the configuration at opts.ConfigPath and runs the agent until
// ctx is canceled. Cancellation is a clean stop and returns nil.
func Run(ctx context.Context, opts Options) error {
	stderr := opts.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	cfg, err := config.Load(opts.ConfigPath)
	if err != nil {
		return fmt.Errorf("load config: %w", err)
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
	st, err := store.Open(store.Options{
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
		log:      log,
		store:    st,
		started:  time.Now(),
		cfg:      cfg,
		gen:      1,
		loadedAt: time.Now(),
	}
	a.fwd = upstream.New(st, upstreamConfig(cfg), upstream.Options{
		Client:    &http.Client{},
		Clock:     clockwork.NewRealClock(),
		Logger:    log.With("component", "upstream"),
		UserAgent: "pwbi-agent/" + version.String(),
	})

	if err := a.setupMoka(cfg, &http.Client{}); err != nil {
		return err
	}

	ln, err := localapi.Listen(cfg.LocalAPI.Listen)
	if err != nil {
		return err
	}
	api := localapi.NewServer(a, log.With("component", "localapi"))

	log.Info("Agent started",
		"version", version.String(),
		"agent_id", cfg.Agent.ID,
		"config", cfg.Path,
		"data_dir", cfg.Agent.DataDir,
		"local_api", ln.Addr().String(),
		"upstream_configured", cfg.Upstream.URL != "")
	if q, ok := st.Quarantine(); ok {
		log.Warn("Database was corrupt and has been replaced", "moved_to", q.CorruptPath, "reason", q.Reason)
	}

	runCtx, stopProducers := context.WithCancel(ctx)
	defer stopProducers()
	apiCtx, stopAPI := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAPI()

	hkDone := make(chan struct{})
	go func() { a.housekeeping(runCtx); close(hkDone) }()
	mokaDone := make(chan error, 1)
	go func() { mokaDone <- a.moka.Run(runCtx) }()
	fwdDone := make(chan error, 1)
	go func() { fwdDone <- a.fwd.Run(runCtx) }()
	apiDone := make(chan error, 1)
	go func() { apiDone <- api.Serve(apiCtx, ln) }()
	if opts.Ready != nil {
		opts.Ready(ln.Addr().String())
	}

	var runErr error
	fwdRunning, apiRunning := true, true
	select {
	case <-ctx.Done():
		log.Info("Agent stopping", "reason", context.Cause(ctx))
	case runErr = <-fwdDone:
		fwdRunning = false
		log.Error("Forwarder failed", "err", runErr)
	case runErr = <-apiDone:
		apiRunning = false
		log.Error("Local API failed", "err", runErr)
	}

	// 1. Producers stop, then the forwarder loop.
	stopProducers()
	if err := <-mokaDone; err != nil && runErr == nil {
		runErr = err
	}
	<-hkDone
	if fwdRunning {
		if err := <-fwdDone; err != nil && runErr == nil {
			runErr = err
		}
	}
	// 2. Deliver what we can before going down.
	drainCtx, cancelDrain := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	if err := a.fwd.Drain(drainCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Warn("Final upstream flush incomplete", "err", err)
	}
	cancelDrain()
	// 3. Local API.
	stopAPI()
	if apiRunning {
		if err := <-apiDone; err != nil && runErr == nil {
			runErr = err
		}
	}
	if s, err := st.Stats(); err == nil {
		log.Info("Agent stopped", "pending", s.Pending, "dead_letters", s.DeadLetters)
	}
	// 4. The store closes in the deferred call above.
	return runErr
}

func upstreamConfig(cfg *config.Config) upstream.Config {
	return upstream.Config{
		URL:           cfg.Upstream.URL,
		Token:         cfg.Upstream.Token.Value(),
		AgentID:       cfg.Agent.ID,
		BatchSize:     cfg.Upstream.BatchSize,
		FlushInterval: cfg.Upstream.FlushInterval.Duration,
		Timeout:       cfg.Upstream.Timeout.Duration,
	}
}

// SyncNow implements localapi.Backend: poll Moka and flush upstream at once.
func (a *Agent) SyncNow(ctx context.Context) error {
	a.log.Info("Sync requested")
	a.moka.SyncNow()
	a.fwd.Flush()
	return nil
}

// Status implements localapi.Backend.
func (a *Agent) Status(ctx context.Context) localapi.Status {
	a.mu.Lock()
	cfg, gen, loadedAt, cfgErr := a.cfg, a.gen, a.loadedAt, a.cfgErr
	a.mu.Unlock()

	s := localapi.Status{
		Version:   version.String(),
		AgentID:   cfg.Agent.ID,
		StartedAt: localapi.TimePtr(a.started),
		Problems:  []string{},
		Config: localapi.ConfigStatus{
			Path:            cfg.Path,
			Generation:      gen,
			LoadedAt:        localapi.TimePtr(loadedAt),
			Error:           cfgErr,
			RestartRequired: []string{},
		},
		Moka: mokaStatus(a.moka.Status(), cfg.Moka.Enabled),
		Checkout: localapi.CheckoutStatus{
			Enabled: cfg.Checkout.Enabled,
			Listen:  cfg.Checkout.Listen,
		},
	}
	if ok, why := cfg.MokaConfigured(); cfg.Moka.Enabled {
		s.Moka.Configured = ok && a.mokaErr == ""
		switch {
		case !ok:
			s.Problems = append(s.Problems, why)
		case a.mokaErr != "":
			s.Problems = append(s.Problems, a.mokaErr)
		}
	}
	ms := a.moka.Status()
	if ms.Error != "" {
		s.Problems = append(s.Problems, ms.Error)
	}
	if ms.Full {
		s.Problems = append(s.Problems, "the buffer is full: Moka polling is paused until the upstream takes records")
	}

	if qs, err := a.store.Stats(); err != nil {
		s.Problems = append(s.Problems, "cannot read the buffer: "+err.Error())
	} else {
		s.Queue = localapi.QueueStatus{
			Pending:         qs.Pending,
			PendingBytes:    qs.PendingBytes,
			DeadLetter:      qs.DeadLetters,
			OldestPendingAt: localapi.TimePtr(qs.OldestPendingAt),
			Full:            cfg.Upstream.MaxPendingMB > 0 && qs.PendingBytes >= int64(cfg.Upstream.MaxPendingMB)<<20,
		}
		s.Store.FileSize = qs.FileSize
		if qs.DeadLetters > 0 {
			s.Problems = append(s.Problems, fmt.Sprintf("%d record(s) were rejected and set aside (see `pwbi-agent queue dead`)", qs.DeadLetters))
		}
	}
	if q, ok := a.store.Quarantine(); ok {
		s.Store.Quarantine = &localapi.QuarantineStatus{CorruptPath: q.CorruptPath, Reason: q.Reason, At: q.At}
		s.Problems = append(s.Problems, "the database was damaged and has been replaced; data is fetched again from Moka")
	}

	us := a.fwd.Status()
	s.Upstream = localapi.UpstreamStatus{
		Configured:    us.Configured,
		Online:        us.Online,
		LastSuccessAt: localapi.TimePtr(us.LastSuccessAt),
		LastError:     us.LastError,
		NextRetryAt:   localapi.TimePtr(us.NextRetryAt),
		Delivered:     us.Delivered,
	}
	if !us.Configured {
		s.Problems = append(s.Problems, "upstream.url is not set: records are kept in the local buffer only")
	}

	switch {
	case cfgErr != "" || ms.Error != "":
		s.State = localapi.StateError
	case us.Configured && !us.Online && !us.LastAttemptAt.IsZero():
		s.State = localapi.StateOffline
	case us.Sending || ms.Polling || (ms.Import != nil && ms.Import.Running):
		s.State = localapi.StateSyncing
	default:
		s.State = localapi.StateOK
	}
	return s
}
