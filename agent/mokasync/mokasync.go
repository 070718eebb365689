// Package mokasync runs the Moka POS sync: on a schedule (and on "Sync now")
// it walks every outlet of the business, products first, then transactions,
// through a Connector (one per Moka dialect) and appends what it gets to the
// store, advancing each outlet's watermark in the same transaction as the
// records of the page that completes the walk (SPEC §5.3).
//
// The first sync of an outlet reaches back Config.InitialBackfillDays; later
// ones start from the last successful sync minus Overlap, because the Moka
// API filters by day and late edits must be caught. Re-fetched transactions
// cost nothing downstream: the store forwards a record again only when its
// content changed.
//
// A connector that also implements Updater (the oauth dialect) gets a
// second walk per outlet after its transactions: the sales changed since
// the last such walk (voids and refunds of older sales), with its own
// watermark under the same rules; its first walk reaches back Overlap only,
// since the backfill has just fetched the current state.
//
// When the buffer is full the walk blocks on the page it holds until the
// forwarder frees space; nothing is dropped and the watermark stays put.
package mokasync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/store"
)

// Overlap is how far before the last successful sync a poll starts again.
// The apikey API filters by day, so the window in practice covers yesterday
// and today: edits and voids of yesterday's sales are still caught.
const Overlap = 24 * time.Hour

// productsEvery is how often the catalogue is fetched again; menus change
// rarely, sales every minute.
const productsEvery = time.Hour

// ErrUnauthorized is returned (wrapped) by a Connector whose credentials were
// refused. The syncer stops polling until its configuration changes.
var ErrUnauthorized = errors.New("moka rejected the credentials")

// Outlet is one outlet of the business.
type Outlet struct {
	ID   string
	Name string
}

// Dead is source data that could not be mapped, kept with its reason.
type Dead struct {
	Input  store.Input
	Reason string
}

// Page is one page of a walk, already mapped.
type Page struct {
	Inputs []store.Input
	Dead   []Dead
	// Cursor is the position after this page, kept for diagnosis.
	Cursor string
	// Last is true on the page that ends the walk.
	Last bool
	// Through is the newest source timestamp in the page (import progress).
	Through time.Time
}

// Connector is one Moka dialect, mapping to unified records. Its methods
// call emit for every page in order and stop at the first error emit
// returns.
type Connector interface {
	Outlets(ctx context.Context) ([]Outlet, error)
	Products(ctx context.Context, outletID string, emit func(Page) error) error
	Transactions(ctx context.Context, outletID string, from time.Time, emit func(Page) error) error
}

// Updater is implemented by a connector whose API can also list the sales
// that changed since a time, whatever their creation time (the oauth
// dialect's time_filter=updated_at): voids and refunds of sales older than
// the transactions window. After an outlet's transactions the syncer walks
// its updates too, with their own watermark (source ".../updates") kept by
// the same rules: it advances in the bbolt transaction that stores the page
// ending the walk. (Added for the oauth dialect; the apikey connector does
// not implement it.)
type Updater interface {
	Updates(ctx context.Context, outletID string, from time.Time, emit func(Page) error) error
}

// AuthHinter may be implemented by an error wrapping ErrUnauthorized: its
// AuthHint replaces the default status text (which speaks of
// moka.api_key) with what the person must do for that dialect, such as
// running `pwbi-agent moka connect`. (Added for the oauth dialect.)
type AuthHinter interface {
	AuthHint() string
}

// Sink is what the syncer needs of the store.
type Sink interface {
	Append(in []store.Input, st *store.SourceState) (store.AppendResult, error)
	AddDead(in store.Input, stage, reason string) (uint64, error)
	SourceState(source string) (store.SourceState, bool, error)
	PutSourceState(st store.SourceState) error
	Space() <-chan struct{}
}

var _ Sink = (*store.Store)(nil)

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

// Status is a snapshot of the syncer for /v1/status.
type Status struct {
	Outlets    []OutletStatus
	LastPollAt time.Time
	NextPollAt time.Time
	Polling    bool
	Full       bool // paused: the buffer is full
	// AuthError is set while Moka refuses the credentials: polling stops
	// until the configuration or the tokens change.
	AuthError string
	// PollError is why the last poll failed as a whole (the outlets could
	// not be listed), with its kind and how many polls in a row failed so.
	PollError     string
	PollErrorKind ErrorKind
	PollFailures  int
	Import        *ImportStatus
}

// Error is the reason polling does not work as a whole: refused
// credentials first, else the last poll's failure; empty when neither.
func (st Status) Error() string {
	if st.AuthError != "" {
		return st.AuthError
	}
	return st.PollError
}

// OutletStatus is one outlet's sync state.
type OutletStatus struct {
	ID, Name     string
	LastSyncAt   time.Time
	LastError    string
	Transactions int64 // transactions buffered (new or changed) since the first sync
	Products     int64
	// Failures counts the polls in a row (since the agent started) in
	// which this outlet failed; ErrorKind is the kind of the last failure
	// and Err the failure itself (nil when the last poll went well).
	Failures  int
	ErrorKind ErrorKind
	Err       error
}

// ErrorKind says who can cure a failed poll.
type ErrorKind int

const (
	// KindOther: Moka answered something the agent cannot use (an
	// unreadable page, a 4xx): retrying alone is unlikely to help.
	KindOther ErrorKind = iota
	// KindTransient: network trouble, timeouts, 408/429/5xx: retries
	// will cure it.
	KindTransient
	// KindStorage: the records could not be written to the buffer (disk
	// full, database failure).
	KindStorage
)

func (k ErrorKind) String() string {
	switch k {
	case KindTransient:
		return "transient"
	case KindStorage:
		return "storage"
	}
	return "other"
}

// Temporary is implemented by errors that know whether a retry may cure
// them (an HTTP answer such as 503 or 429).
type Temporary interface {
	Temporary() bool
}

// storageError marks a failure of the buffer itself.
type storageError struct{ err error }

func (e *storageError) Error() string { return e.err.Error() }
func (e *storageError) Unwrap() error { return e.err }

// stored marks err, returned by the Sink, as a storage failure.
func stored(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	var se *storageError
	if errors.As(err, &se) {
		return err
	}
	return &storageError{err: err}
}

// Kind classifies a poll failure.
func Kind(err error) ErrorKind {
	var se *storageError
	if errors.As(err, &se) {
		return KindStorage
	}
	// Any transport failure is network trouble (url.Error and net.Error
	// have a Temporary method of their own, deprecated and narrower than
	// what we mean, so they are looked at first).
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.ErrUnexpectedEOF) {
		return KindTransient
	}
	var t Temporary
	if errors.As(err, &t) && t.Temporary() {
		return KindTransient
	}
	return KindOther
}

// failure is a run of failed polls.
type failure struct {
	err  error
	msg  string
	kind ErrorKind
	n    int
}

// next counts one more failure with err.
func (f failure) next(err error) failure {
	return failure{err: err, msg: err.Error(), kind: Kind(err), n: f.n + 1}
}

// ImportStatus is the progress of a historical import.
type ImportStatus struct {
	Running   bool
	Since     time.Time
	OutletID  string
	DaysDone  int
	DaysTotal int
	Records   int64
	StartedAt time.Time
	Error     string
}

type importReq struct {
	since    time.Time
	outletID string
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

// Import starts a historical import of transactions since the given day, for
// one outlet or (outletID "") all of them. It runs between polls.
func (s *Syncer) Import(since time.Time, outletID string) error {
	s.mu.Lock()
	running := s.imp != nil && s.imp.Running
	s.mu.Unlock()
	if running {
		return errors.New("an import is already running")
	}
	select {
	case s.imports <- importReq{since: since, outletID: outletID}:
		s.mu.Lock()
		s.imp = &ImportStatus{Running: true, Since: since, OutletID: outletID, StartedAt: s.clock.Now()}
		s.mu.Unlock()
		return nil
	default:
		return errors.New("an import is already queued")
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

// Status returns a snapshot, reading per-outlet state from the sink.
func (s *Syncer) Status() Status {
	s.mu.Lock()
	st := Status{
		LastPollAt: s.lastPoll,
		NextPollAt: s.nextPoll,
		Polling:    s.polling,
		Full:       s.full,
		AuthError:  s.authErr,
	}
	st.PollError, st.PollErrorKind, st.PollFailures = s.pollErr.msg, s.pollErr.kind, s.pollErr.n
	failing := make(map[string]failure, len(s.failing))
	for k, v := range s.failing {
		failing[k] = v
	}
	if s.imp != nil {
		imp := *s.imp
		st.Import = &imp
	}
	ids := append([]string(nil), s.outletIDs...)
	if len(ids) == 0 {
		ids = append(ids, s.cfg.Outlets...)
	}
	names := make(map[string]string, len(s.names))
	for k, v := range s.names {
		names[k] = v
	}
	biz := s.cfg.BusinessID
	s.mu.Unlock()

	for _, id := range ids {
		os := OutletStatus{ID: id, Name: names[id]}
		if f, ok := failing[id]; ok {
			os.Failures, os.ErrorKind, os.Err = f.n, f.kind, f.err
		}
		if tx, ok, _ := s.sink.SourceState(source(biz, id, "transactions")); ok {
			os.LastSyncAt, os.LastError = tx.LastSyncAt, tx.LastError
			os.Transactions = tx.Counts["buffered"]
		}
		if up, ok, _ := s.sink.SourceState(source(biz, id, "updates")); ok {
			os.Transactions += up.Counts["buffered"] // changed sales found by the updates pass
		}
		if pr, ok, _ := s.sink.SourceState(source(biz, id, "products")); ok {
			os.Products = pr.Counts["buffered"]
			if os.LastError == "" {
				os.LastError = pr.LastError
			}
		}
		st.Outlets = append(st.Outlets, os)
	}
	return st
}

func source(biz, outlet, what string) string {
	return "moka/" + biz + "/" + outlet + "/" + what
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

func (s *Syncer) syncProducts(ctx context.Context, conn Connector, cfg Config, outlet string) error {
	src := source(cfg.BusinessID, outlet, "products")
	return conn.Products(ctx, outlet, func(p Page) error {
		st, _, err := s.sink.SourceState(src)
		if err != nil {
			return stored(err)
		}
		st.Source, st.Cursor, st.LastAttemptAt = src, p.Cursor, s.clock.Now()
		if p.Last {
			st.LastSyncAt, st.LastError, st.Cursor = s.clock.Now(), "", ""
		}
		_, err = s.store(ctx, p, &st)
		return err
	})
}

func (s *Syncer) syncTransactions(ctx context.Context, conn Connector, cfg Config, outlet string, start time.Time) error {
	return s.syncWalk(ctx, cfg, outlet, start, "transactions", conn.Transactions)
}

// syncWalk runs one watermarked walk of an outlet ("transactions", or
// "updates" for an Updater) from its watermark minus Overlap (or the
// initial backfill), and advances the watermark to start with the page that
// ends the walk.
func (s *Syncer) syncWalk(ctx context.Context, cfg Config, outlet string, start time.Time, what string,
	walk func(ctx context.Context, outletID string, from time.Time, emit func(Page) error) error) error {
	src := source(cfg.BusinessID, outlet, what)
	prev, ok, err := s.sink.SourceState(src)
	if err != nil {
		return stored(err)
	}
	from := start.AddDate(0, 0, -cfg.InitialBackfillDays)
	if what == "updates" {
		// A first updates walk need not repeat the backfill: the
		// transactions walk of this same poll has just fetched the
		// current state of every sale in the window. It only has to
		// catch up with the last Overlap.
		from = start.Add(-Overlap)
	}
	if ok && prev.Watermark != "" {
		wm, err := time.Parse(time.RFC3339Nano, prev.Watermark)
		if err != nil {
			return fmt.Errorf("bad watermark %q in sync state: %w", prev.Watermark, err)
		}
		from = wm.Add(-Overlap)
	}
	from = from.In(cfg.Location)
	s.log.Debug("Syncing transactions", "outlet", outlet, "pass", what, "from", from.Format(time.DateOnly))
	var fetched, dead int
	var buffered int64
	err = walk(ctx, outlet, from, func(p Page) error {
		fetched += len(p.Inputs)
		dead += len(p.Dead)
		st, _, err := s.sink.SourceState(src)
		if err != nil {
			return stored(err)
		}
		st.Source, st.Cursor, st.LastAttemptAt = src, p.Cursor, s.clock.Now()
		if p.Last {
			// The walk that started at start is complete: everything up to
			// start is in the buffer once this page is.
			st.Watermark = start.UTC().Format(time.RFC3339Nano)
			st.LastSyncAt, st.LastError, st.Cursor = s.clock.Now(), "", ""
		}
		n, err := s.store(ctx, p, &st)
		buffered += int64(n)
		return err
	})
	if err != nil {
		return err
	}
	attrs := []any{"outlet", outlet, "from", from.Format(time.DateOnly),
		"fetched", fetched, "new_or_changed", buffered, "unmappable", dead,
		"took", s.clock.Since(start).Round(time.Millisecond)}
	if what == "transactions" {
		s.log.Info("Outlet synced", attrs...)
	} else {
		s.log.Info("Outlet updates synced", attrs...)
	}
	return nil
}

// store writes one page: dead entries first (a crash before the records
// only repeats them), then records and state in one transaction. On ErrFull
// it waits for space and tries again: polling pauses, nothing is dropped.
func (s *Syncer) store(ctx context.Context, p Page, st *store.SourceState) (int, error) {
	for _, d := range p.Dead {
		id, err := s.sink.AddDead(d.Input, store.StageMap, d.Reason)
		if err != nil {
			return 0, stored(fmt.Errorf("set aside unmappable record: %w", err))
		}
		if id != 0 { // 0: the same record was set aside by an earlier poll
			s.log.Warn("Moka record could not be mapped", "key", d.Input.Key, "reason", d.Reason, "dead_letter", id)
		}
	}
	for {
		space := s.sink.Space()
		res, err := s.sink.Append(p.Inputs, st)
		if err == nil {
			s.setFull(false)
			if res.Appended > 0 && st != nil {
				s.count(st.Source, int64(res.Appended))
			}
			return res.Appended, nil
		}
		if !errors.Is(err, store.ErrFull) {
			return 0, stored(fmt.Errorf("buffer records: %w", err))
		}
		if !s.setFull(true) {
			s.log.Warn("Buffer full: polling paused until the upstream takes records")
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-space:
		}
	}
}

// count adds n to a source's buffered counter. It is cosmetic, so it is not
// worth holding up the records' transaction for.
func (s *Syncer) count(src string, n int64) {
	st, _, err := s.sink.SourceState(src)
	if err != nil {
		return
	}
	if st.Counts == nil {
		st.Counts = map[string]int64{}
	}
	st.Counts["buffered"] += n
	if err := s.sink.PutSourceState(st); err != nil {
		s.log.Warn("Saving sync counters failed", "err", err)
	}
}

// setFull records the buffer-full state and returns the previous one.
func (s *Syncer) setFull(v bool) bool {
	s.mu.Lock()
	old := s.full
	s.full = v
	s.mu.Unlock()
	if old && !v {
		s.log.Info("Buffer has space again: polling resumed")
	}
	if old != v && s.onFull != nil {
		s.onFull(v)
	}
	return old
}

func (s *Syncer) runImport(ctx context.Context, req importReq) {
	s.mu.Lock()
	conn, cfg := s.conn, s.cfg
	s.mu.Unlock()
	now := s.clock.Now().In(cfg.Location)
	since := req.since.In(cfg.Location)
	total := int(now.Sub(since).Hours()/24) + 1
	s.updateImport(func(is *ImportStatus) { is.DaysTotal = total })
	s.log.Info("Historical import started", "since", since.Format(time.DateOnly), "outlet", req.outletID)

	err := func() error {
		if conn == nil {
			return errors.New("moka is not configured")
		}
		outlets, err := s.outlets(ctx, conn, cfg)
		if err != nil {
			return err
		}
		for _, o := range outlets {
			if req.outletID != "" && o.ID != req.outletID {
				continue
			}
			err := conn.Transactions(ctx, o.ID, since, func(p Page) error {
				// An import never moves the watermark: the regular poll owns it.
				if _, err := s.store(ctx, p, nil); err != nil {
					return err
				}
				s.updateImport(func(is *ImportStatus) {
					is.Records += int64(len(p.Inputs))
					if !p.Through.IsZero() {
						if d := int(p.Through.Sub(since).Hours()/24) + 1; d > is.DaysDone {
							is.DaysDone = min(d, total)
						}
					}
				})
				return nil
			})
			if err != nil {
				return fmt.Errorf("outlet %s: %w", o.ID, err)
			}
		}
		return nil
	}()
	s.updateImport(func(is *ImportStatus) {
		is.Running = false
		if err != nil {
			is.Error = err.Error()
		} else {
			is.DaysDone = total
		}
	})
	if err != nil {
		s.log.Warn("Historical import failed", "err", err)
	} else {
		s.log.Info("Historical import finished")
	}
}

func (s *Syncer) updateImport(f func(*ImportStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.imp != nil {
		f(s.imp)
	}
}
