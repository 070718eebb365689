// Package store is the agent's durable buffer. It owns the bbolt database
// (it is the only package that imports go.etcd.io/bbolt) and keeps in it:
//
//   - the outbox: records waiting to go upstream, keyed by a sequence number
//     that increases strictly across restarts and is never reused (SPEC §6);
//   - the dedupe index (record key -> version), so that a record is buffered
//     again only when its content changed (SPEC §5.1);
//   - the dead letters: records the upstream rejected and source data that
//     could not be mapped, kept with their reason (SPEC §4, §6);
//   - the per-source sync state (watermark, cursor, last sync, counts), which
//     advances in the same transaction as the records it produced (SPEC §5.3);
//   - O(1) counters (pending records and bytes, dead letters) for /v1/status.
//
// A database that bbolt cannot open, or that fails a quick sanity check, is
// renamed to "<name>.<UTC time>.corrupt" and replaced by a fresh one, and the
// event stays visible through [Store.Quarantine] (SPEC §11). A database held
// by another process is reported as [ErrLocked] and never touched.
//
// A [Store] is safe for concurrent use by multiple goroutines: typically one
// forwarder (Pending, Ack, DeadLetter) and several producers (Append). Every
// write is one bbolt transaction, committed with fsync before the method
// returns; bbolt serialises writers. [Store.Compact] and [Store.Close] wait
// for running operations and block new ones while they work.
package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Errors callers branch on.
var (
	// ErrFull is returned by Append when the new records would take the
	// outbox over Options.MaxPendingBytes. Nothing was written; the producer
	// should pause until Notify (or Space) is signalled and try again.
	ErrFull = errors.New("store: outbox full")
	// ErrLocked is returned by Open when another process holds the database
	// (the bbolt file lock timed out). It is never treated as corruption.
	ErrLocked = errors.New("store: database locked by another process")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("store: closed")
	// ErrCorrupt is returned when bbolt panicked while reading or writing the
	// database. The store marks the file so that the next Open runs a full
	// consistency check and quarantines it if the check fails.
	ErrCorrupt = errors.New("store: database corrupt")
	// ErrNotFound is returned for an unknown outbox seq or dead-letter id.
	ErrNotFound = errors.New("store: not found")
	// ErrNotRequeueable is returned (wrapped) by Requeue for dead letters
	// that cannot go back into the outbox: stage "map" ones, and ones whose
	// key has since been buffered with a newer version.
	ErrNotRequeueable = errors.New("store: dead letter not requeueable")
	// ErrIncompatible is returned by Open when the database was written by a
	// newer, incompatible version of the agent. The file is left alone.
	ErrIncompatible = errors.New("store: database format too new")
)

// DefaultOpenTimeout is the default Options.OpenTimeout.
const DefaultOpenTimeout = time.Second

const (
	// Open compacts the file when it is larger than compactMinSize and more
	// than compactFreeRatio of it is free pages.
	compactFreeRatio = 0.5
	// compactTxMaxSize bounds the memory used by one compaction transaction.
	compactTxMaxSize = 8 << 20
)

// compactMinSize is a variable for tests (see compactFreeRatio).
var compactMinSize int64 = 64 << 20

// Options configures Open.
type Options struct {
	// Path of the database file, e.g. <data_dir>/agent.db. Its directory is
	// created if missing.
	Path string
	// MaxPendingBytes bounds the encoded size of the outbox; 0 = unbounded.
	MaxPendingBytes int64
	// OpenTimeout is how long Open waits for the bbolt file lock; default 1s.
	OpenTimeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives warnings (quarantine, compaction); default: discard.
	Logger *slog.Logger

	// noFreelistSync sets bbolt's NoFreelistSync (benchmarks only; see
	// boltOptions for why it is off).
	noFreelistSync bool
	// pageSize overrides the page size of a new file (benchmarks only).
	pageSize int
}

// Store is the durable buffer. Create it with Open; it is safe for
// concurrent use.
type Store struct {
	path string
	max  atomic.Int64 // MaxPendingBytes; 0 = unbounded
	now  func() time.Time
	log  *slog.Logger
	bopt bolt.Options

	// mu guards db. Every operation holds it shared for its duration;
	// Compact and Close hold it exclusively. db is nil once closed.
	mu sync.RWMutex
	db *bolt.DB

	notify chan struct{} // records added, or space freed after ErrFull
	// fullWaiting is set when Append returned ErrFull and cleared by the
	// next transaction that frees space, which then signals notify.
	fullWaiting atomic.Bool

	spaceMu sync.Mutex
	spaceCh chan struct{} // closed (and cleared) when space is freed

	qmu        sync.Mutex
	quarantine *Quarantine

	// testHookAppend, when set, runs inside Append's transaction after the
	// records are written; an error aborts the transaction.
	testHookAppend func() error
}

// Open opens (or creates) the database at opts.Path. A corrupt file is moved
// aside and replaced by a fresh database (see Store.Quarantine); a file held
// by another process gives ErrLocked; other I/O errors (permissions, disk)
// are returned as they are.
func Open(opts Options) (*Store, error) {
	if opts.Path == "" {
		return nil, errors.New("store: open: empty path")
	}
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = DefaultOpenTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxPendingBytes < 0 {
		opts.MaxPendingBytes = 0
	}
	s := &Store{
		path:   opts.Path,
		now:    opts.Now,
		log:    opts.Logger,
		bopt:   boltOptions(opts),
		notify: make(chan struct{}, 1),
	}
	s.max.Store(opts.MaxPendingBytes)
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

// SetMaxPendingBytes changes the bound on the outbox (a config reload);
// 0 = unbounded. Raising it wakes producers paused by ErrFull.
func (s *Store) SetMaxPendingBytes(n int64) {
	old := s.max.Swap(max(n, 0))
	if n == 0 || (old != 0 && n > old) {
		s.freed()
	}
}

// boltOptions returns the bbolt options every handle of the store uses.
//
// NoFreelistSync stays off. It saves writing the freelist page on every
// commit, which measured within the noise here (+7 % at B = 1000, nothing at
// B <= 100; docs/benchmarks.md), but then every Open rebuilds the freelist by
// walking every page of the file: 310-410 ms instead of ~1 ms for a million
// buffered records with a warm page cache, seconds on a cold HDD, and the
// service must report RUNNING within a second (SPEC §11). The freelist of a
// queue stays small because freed pages are reused by the next appends, and
// Open compacts a file that is mostly free space. The hashmap freelist
// keeps allocation O(1) when the freelist does grow.
func boltOptions(opts Options) bolt.Options {
	return bolt.Options{
		Timeout:        opts.OpenTimeout,
		NoFreelistSync: opts.noFreelistSync,
		FreelistType:   bolt.FreelistMapType,
		PageSize:       opts.pageSize,
	}
}

// Close closes the database. It waits for running operations; later calls
// return ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return ErrClosed
	}
	err := s.db.Close()
	s.db = nil
	if err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Notify returns a channel (capacity 1) that receives a value, without
// blocking the sender, after an Append or Requeue added records, and after
// space was freed following an ErrFull. A forwarder waits on it for work. A
// producer paused by ErrFull may wait on it too, but one value wakes one
// receiver: with several producers, or a forwarder on the same channel,
// prefer Space, which wakes every waiter.
func (s *Store) Notify() <-chan struct{} { return s.notify }

// Space returns a channel that is closed the next time Ack or DeadLetter
// removes records from the outbox. Every waiter is woken. To wait without a
// race, get the channel before the Append that may fail:
//
//	space := s.Space()
//	if _, err := s.Append(in, st); errors.Is(err, store.ErrFull) {
//		<-space // (or ctx.Done()) then retry
//	}
func (s *Store) Space() <-chan struct{} {
	s.spaceMu.Lock()
	defer s.spaceMu.Unlock()
	if s.spaceCh == nil {
		s.spaceCh = make(chan struct{})
	}
	return s.spaceCh
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// freed is called after a commit that removed records from the outbox.
func (s *Store) freed() {
	s.spaceMu.Lock()
	if s.spaceCh != nil {
		close(s.spaceCh)
		s.spaceCh = nil
	}
	s.spaceMu.Unlock()
	if s.fullWaiting.Swap(false) {
		signal(s.notify)
	}
}

// view runs fn in a read transaction, converting bbolt panics to ErrCorrupt.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	return s.tx(false, fn)
}

// update runs fn in a write transaction, converting bbolt panics to
// ErrCorrupt. The transaction commits (with fsync) only if fn returns nil.
func (s *Store) update(fn func(*bolt.Tx) error) error {
	return s.tx(true, fn)
}

func (s *Store) tx(write bool, fn func(*bolt.Tx) error) (err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	// A fault on the memory-mapped file (a page beyond a truncated end)
	// becomes a recoverable panic instead of killing the process.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = s.suspect(r)
		}
	}()
	if write {
		return s.db.Update(fn)
	}
	return s.db.View(fn)
}

// suspect records a panic seen inside bbolt: it is logged, and a marker
// file makes the next Open run a full consistency check.
func (s *Store) suspect(r any) error {
	s.log.Error("Database panic; full check on next open", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	if f, err := os.OpenFile(s.path+checkMarkerSuffix, os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
		_ = f.Close()
	}
	return fmt.Errorf("%w: %v", ErrCorrupt, r)
}
