package moka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// Overlap is how far before the last successful sync a poll starts again.
// The apikey API filters by day, so the window in practice covers yesterday
// and today: edits and voids of yesterday's sales are still caught.
const Overlap = 24 * time.Hour

// productsEvery is how often the catalogue is fetched again; menus change
// rarely, sales every minute.
const productsEvery = time.Hour

// Config is the part of the agent configuration the syncer uses.
type Config struct {
	BusinessID          string
	Outlets             []string // empty: every outlet of the business
	Location            *time.Location
	PollInterval        time.Duration
	InitialBackfillDays int
	SyncProducts        bool
}

// Options are the syncer's collaborators.
type Options struct {
	Clock  clockwork.Clock
	Logger *slog.Logger
	// OnFull, if set, is called when polling pauses because the buffer is
	// full (true) and when it resumes (false); for metrics.
	OnFull func(full bool)
	// OnPoll, if set, is called after every poll of all outlets with
	// whether it completed without error; for metrics.
	OnPoll func(ok bool)
}

// Syncer runs the sync loop. Its methods are safe for concurrent use.
type Syncer struct {
	sink   Sink
	clock  clockwork.Clock
	log    *slog.Logger
	onFull func(bool)
	onPoll func(bool)

	trigger chan struct{}
	imports chan importReq

	mu          sync.Mutex
	conn        Connector
	cfg         Config
	names       map[string]string // outlet id -> name
	outletIDs   []string          // outlets of the last poll
	lastPoll    time.Time
	nextPoll    time.Time
	polling     bool
	full        bool
	authErr     string             // set while the credentials are refused
	pollErr     failure            // why the last polls failed as a whole (listing outlets)
	failing     map[string]failure // outlet id -> its consecutive failed polls
	imp         *ImportStatus
	lastProduct map[string]time.Time
}

// New returns a syncer; call Run to start it.
func New(conn Connector, sink Sink, cfg Config, opts Options) *Syncer {
	if opts.Clock == nil {
		opts.Clock = clockwork.NewRealClock()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	return &Syncer{
		sink:        sink,
		clock:       opts.Clock,
		log:         opts.Logger,
		onFull:      opts.OnFull,
		onPoll:      opts.OnPoll,
		trigger:     make(chan struct{}, 1),
		imports:     make(chan importReq, 1),
		conn:        conn,
		cfg:         cfg,
		names:       map[string]string{},
		lastProduct: map[string]time.Time{},
	}
}

// Update swaps in a new connector (new credentials) and configuration; they
// apply from the next poll, which starts at once. A refused-credentials
// state is cleared.
func (s *Syncer) Update(conn Connector, cfg Config) {
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	s.mu.Lock()
	s.conn, s.cfg, s.authErr = conn, cfg, ""
	s.mu.Unlock()
	s.SyncNow()
}

// SyncNow starts a poll at once (or right after the running one).
func (s *Syncer) SyncNow() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// Run polls until ctx is done. It returns nil on cancellation.
func (s *Syncer) Run(ctx context.Context) error {
	for {
		s.poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		s.mu.Lock()
		interval := s.cfg.PollInterval
		s.nextPoll = s.clock.Now().Add(interval)
		s.mu.Unlock()
		t := s.clock.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.Chan():
		case <-s.trigger:
			t.Stop()
		case req := <-s.imports:
			t.Stop()
			s.runImport(ctx, req)
		}
	}
}

// poll runs one sync of every outlet.
func (s *Syncer) poll(ctx context.Context) {
	s.mu.Lock()
	conn, cfg, authErr := s.conn, s.cfg, s.authErr
	s.mu.Unlock()
	if conn == nil || authErr != "" {
		return
	}
	s.setPolling(true)
	defer s.setPolling(false)
	start := s.clock.Now()
	ok := s.pollOutlets(ctx, conn, cfg, start)
	if ctx.Err() != nil {
		return
	}
	if s.onPoll != nil {
		s.onPoll(ok)
	}
}

// pollOutlets syncs every outlet; it reports whether all went well.
func (s *Syncer) pollOutlets(ctx context.Context, conn Connector, cfg Config, start time.Time) bool {
	outlets, err := s.outlets(ctx, conn, cfg)
	if err != nil {
		s.fail(err, "")
		return false
	}
	s.mu.Lock()
	s.pollErr = failure{}
	s.mu.Unlock()
	ok := true
	for _, o := range outlets {
		if ctx.Err() != nil {
			return false
		}
		if err := s.syncOutlet(ctx, conn, cfg, o.ID, start); err != nil {
			ok = false
			if s.fail(err, o.ID) {
				return false
			}
			continue
		}
		s.mu.Lock()
		delete(s.failing, o.ID)
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.lastPoll = start
	s.mu.Unlock()
	return ok
}

// syncOutlet runs one outlet's passes: products (when due), transactions,
// and the updates pass of an Updater (voids and refunds of older sales).
func (s *Syncer) syncOutlet(ctx context.Context, conn Connector, cfg Config, outlet string, start time.Time) error {
	if cfg.SyncProducts && s.productsDue(outlet, start) {
		if err := s.syncProducts(ctx, conn, cfg, outlet); err != nil {
			return err
		}
		s.mu.Lock()
		s.lastProduct[outlet] = start
		s.mu.Unlock()
	}
	if err := s.syncTransactions(ctx, conn, cfg, outlet, start); err != nil {
		return err
	}
	if u, isUpdater := conn.(Updater); isUpdater {
		return s.syncWalk(ctx, cfg, outlet, start, "updates", u.Updates)
	}
	return nil
}

func (s *Syncer) setPolling(v bool) {
	s.mu.Lock()
	s.polling = v
	s.mu.Unlock()
}

func (s *Syncer) productsDue(outlet string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	last, ok := s.lastProduct[outlet]
	return !ok || now.Sub(last) >= productsEvery
}

// fail records err; it returns true when the whole poll must stop
// (cancellation or refused credentials).
func (s *Syncer) fail(err error, outlet string) bool {
	if errors.Is(err, context.Canceled) {
		return true
	}
	msg := err.Error()
	s.mu.Lock()
	biz := s.cfg.BusinessID
	stop := false
	switch {
	case errors.Is(err, ErrUnauthorized):
		s.authErr = "Moka rejected the credentials: check moka.api_key (or run `pwbi-agent moka connect`)"
		var hint AuthHinter
		if errors.As(err, &hint) && hint.AuthHint() != "" {
			s.authErr = hint.AuthHint()
		}
		stop = true
	case outlet == "":
		s.pollErr = s.pollErr.next(err)
	default:
		if s.failing == nil {
			s.failing = map[string]failure{}
		}
		s.failing[outlet] = s.failing[outlet].next(err)
	}
	s.mu.Unlock()
	s.log.Warn("Moka sync failed", "outlet", outlet, "err", err)
	if outlet != "" {
		src := source(biz, outlet, "transactions")
		st, _, _ := s.sink.SourceState(src)
		st.Source = src
		st.LastError = msg
		st.LastAttemptAt = s.clock.Now()
		if perr := s.sink.PutSourceState(st); perr != nil {
			s.log.Error("Saving sync state failed", "err", perr)
		}
	}
	return stop
}

func (s *Syncer) outlets(ctx context.Context, conn Connector, cfg Config) ([]Outlet, error) {
	all, err := conn.Outlets(ctx)
	if err != nil {
		return nil, fmt.Errorf("list outlets: %w", err)
	}
	s.mu.Lock()
	for _, o := range all {
		s.names[o.ID] = o.Name
	}
	s.mu.Unlock()
	var out []Outlet
	if len(cfg.Outlets) == 0 {
		out = all
	} else {
		for _, id := range cfg.Outlets {
			out = append(out, Outlet{ID: id, Name: s.names[id]})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	ids := make([]string, len(out))
	for i, o := range out {
		ids[i] = o.ID
	}
	s.mu.Lock()
	s.outletIDs = ids
	s.mu.Unlock()
	return out, nil
}
