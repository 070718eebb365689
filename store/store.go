// Package store is the agent's durable buffer. It owns the bbolt database
// (it is the only package that imports go.etcd.io/bbolt) and keeps in it:
//
//   - the outbox: records waiting for the sinks, each stored once, keyed by
//     a sequence number that increases strictly across restarts and is
//     never reused (SPEC §6);
//   - the sinks (sinks.go): every enabled sink — the PWBI HTTP upstream,
//     NATS, Jurnal — reads the same ordered records at its own pace, from
//     its own position, and a record leaves the outbox when every enabled
//     sink has acked or dead-lettered it. [Store.Sink] gives a sink's view
//     (its pending records, acks, dead letters, statistics);
//     [Store.SetSinks] says which sinks are enabled;
//   - the dedupe index (record key -> version), so that a record is buffered
//     again only when its content changed (SPEC §5.1); [Store.AppendFor]
//     buffers records again for some sinks only (an import for one sink);
//   - the dead letters: records a sink rejected (stage: the sink's name)
//     and source data that could not be mapped, kept with their reason
//     (SPEC §4, §6);
//   - the per-source sync state (watermark, cursor, last sync, counts), which
//     advances in the same transaction as the records it produced (SPEC §5.3);
//   - O(1) counters (pending records and bytes, dead letters; the same per
//     sink) for /v1/status.
//   - the day summary (summary.go): per outlet and business day, the
//     sales, amounts, refunds and voids of the transaction records
//     appended with a Sale, and how many of them each sink acked or
//     dead-lettered, kept in the same transactions as the records
//     ([Store.Summary]).
//
// The layout has a format number (formatVersion). Open upgrades an older
// database in one transaction (format 1, before sinks: every pending
// record becomes pending for [DefaultSink], its "upstream" dead letters that
// sink's) and refuses a newer one ([ErrIncompatible]).
//
// A database that bbolt cannot open, or that fails a quick sanity check, is
// renamed to "<name>.<UTC time>.corrupt" and replaced by a fresh one, and the
// event stays visible through [Store.Quarantine] (SPEC §11). Only a file that
// can be read from end to end and still fails the checks is moved aside: a
// read error (EIO, permissions) is retried a few times and then reported as
// [ErrIO] with the file left in place, because a disk that fails for a moment
// must not cost every buffered sale. A database held by another process is
// reported as [ErrLocked] and never touched.
//
// The outbox seq never goes backwards, even when the database is replaced and
// the PC clock is behind: a small file next to the database ("<name>.seq")
// keeps a high-water mark above every seq handed out. It is rewritten rarely:
// the store reserves a range of seqs ahead (seqLeaseStep) and persists the
// new mark before it commits the first seq beyond the previous one. Open
// continues above max(the database's own sequence, the mark, and for a new
// database the clock in microseconds); so every open may skip up to one
// range. A missing or garbled file only costs that protection for one open.
//
// A store whose database became unusable while running (a compaction that
// cannot reopen the file, a bbolt handle that reports "database not open")
// fails: [Store.Failed] is closed, [Store.Err] says why, and every later
// operation returns an error wrapping [ErrFailed]. The agent then exits so
// that the service manager restarts it and Open runs its checks again.
//
// A [Store] is safe for concurrent use by multiple goroutines: typically one
// forwarder per sink (its [SinkView]'s Pending, Ack, DeadLetter) and several
// producers (Append). Every
// write is one bbolt transaction, committed with fsync before the method
// returns; bbolt serialises writers. [Store.Compact] and [Store.Close] wait
// for running operations and block new ones while they work.
package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
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
	// ErrFailed is wrapped by the error of every operation after the store
	// failed (see Store.Failed): the database became unusable while the
	// store was open. Only a restart (a new Open) can recover.
	ErrFailed = errors.New("store: database unusable")
	// ErrIO is wrapped by the error Open returns when the database file
	// could not be read, even after a few retries. The file is left in
	// place: an I/O error is never taken for corruption.
	ErrIO = errors.New("store: I/O error on the database file")
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
	// openRead opens the database file for the checks that read it
	// directly (probe, confirmReadable); default os.Open. Tests wrap the
	// file to inject read errors.
	openRead func(name string) (readFile, error)
	// ioRetry are the waits between attempts when Open meets an I/O error;
	// default ioRetryDelays. sleep waits; default time.Sleep.
	ioRetry []time.Duration
	sleep   func(time.Duration)
	// seqStep is how many seqs are reserved per write of the high-water
	// mark file; default seqLeaseStep.
	seqStep uint64
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

	// views are the sinks' views (Sink), each with its Notify channel:
	// records added, or space freed after ErrFull.
	viewsMu sync.Mutex
	views   map[string]*SinkView
	// setMu serialises SetSinks.
	setMu sync.Mutex
	// fullWaiting is set when Append returned ErrFull and cleared by the
	// next transaction that frees space, which then signals every view.
	fullWaiting atomic.Bool

	spaceMu sync.Mutex
	spaceCh chan struct{} // closed (and cleared) when space is freed

	qmu        sync.Mutex
	quarantine *Quarantine

	// closed is set by Close (under mu, exclusively).
	closed bool
	// failed is closed, once, when the store fails; failErr (under failMu)
	// then says why and wraps ErrFailed.
	failed  chan struct{}
	failMu  sync.Mutex
	failErr error

	// writeErr is the last write transaction that failed for a reason of
	// the disk or the file (not a logical refusal such as ErrFull); nil
	// once a write commits again. See WriteErr.
	writeErrMu sync.Mutex
	writeErr   error

	openRead func(name string) (readFile, error)
	ioRetry  []time.Duration
	sleep    func(time.Duration)

	// seqStep seqs are reserved at a time. lease is the high-water mark
	// persisted in the .seq file: no seq above it is committed before the
	// file says so. It is read and written only inside write transactions
	// (bbolt runs one at a time) and by Open before the store is shared.
	// seqWrites counts the writes of the file.
	seqStep   uint64
	lease     uint64
	seqWrites atomic.Int64

	// testHookAppend, when set, runs inside Append's transaction after the
	// records are written; an error aborts the transaction.
	testHookAppend func() error
	// testHookRelease, when set, runs inside every release transaction
	// (SetSinks) before it commits; an error aborts it.
	testHookRelease func() error
	// testHookReopen, when set, runs before a compaction reopens the file;
	// an error stands for a failed reopen.
	testHookReopen func() error
}

// readFile is the part of *os.File the checks read the database through.
type readFile interface {
	io.ReaderAt
	io.Closer
	Stat() (fs.FileInfo, error)
}

func openReadOS(name string) (readFile, error) { return os.Open(name) }

// ioRetryDelays are the waits between the attempts of Open when it meets an
// I/O error: three attempts over about three seconds, enough for a disk that
// wakes up or a scanner that lets go of the file, short enough for a
// service start.
var ioRetryDelays = []time.Duration{time.Second, 2 * time.Second}

// Open opens (or creates) the database at opts.Path. A corrupt file is moved
// aside and replaced by a fresh database (see Store.Quarantine); a file held
// by another process gives ErrLocked; a newer format gives ErrIncompatible.
// Other errors (a read error, permissions, a full disk) are retried twice,
// about three seconds in all, each attempt logged; if they persist, the
// error wraps ErrIO and the file is left where it is.
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
	if opts.openRead == nil {
		opts.openRead = openReadOS
	}
	if opts.ioRetry == nil {
		opts.ioRetry = ioRetryDelays
	}
	if opts.sleep == nil {
		opts.sleep = time.Sleep
	}
	if opts.seqStep == 0 {
		opts.seqStep = seqLeaseStep
	}
	s := &Store{
		path:     opts.Path,
		now:      opts.Now,
		log:      opts.Logger,
		bopt:     boltOptions(opts),
		failed:   make(chan struct{}),
		openRead: opts.openRead,
		ioRetry:  opts.ioRetry,
		sleep:    opts.sleep,
		seqStep:  opts.seqStep,
	}
	s.max.Store(opts.MaxPendingBytes)
	s.Sink(DefaultSink) // its Notify reports every Append from the start
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
// return ErrClosed. Closing a failed store releases what is left of it and
// returns nil. A deliberate Close never makes Failed fire.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	if s.db == nil {
		return nil // failed while compacting: no handle left
	}
	err := s.db.Close()
	s.db = nil
	if err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Failed returns a channel that is closed when the store fails: its
// database became unusable while it was open (a compaction could not reopen
// the file; bbolt reported the database not open, or not mapped). Err then
// says why, and every operation returns an error wrapping ErrFailed. The
// channel is never closed by Close. The agent exits when it fires, so that
// the service manager restarts it.
func (s *Store) Failed() <-chan struct{} { return s.failed }

// Err returns why the store failed (wrapping ErrFailed), or nil.
func (s *Store) Err() error {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	return s.failErr
}

// fail marks the store failed (once) and returns the error operations
// return from now on. Paused producers and the forwarder are woken, so
// that they see it.
func (s *Store) fail(cause error) error {
	s.failMu.Lock()
	first := s.failErr == nil
	if first {
		s.failErr = fmt.Errorf("%w: %w", ErrFailed, cause)
		close(s.failed)
	}
	err := s.failErr
	s.failMu.Unlock()
	if first {
		s.log.Error("Database unusable; the store has failed and needs a restart", "path", s.path, "err", cause)
		s.freed()
		s.signalAll()
	}
	return err
}

// usableLocked returns why the store cannot be used, or nil; s.mu must be
// held (shared or exclusively).
func (s *Store) usableLocked() error {
	if s.closed {
		return ErrClosed
	}
	if err := s.Err(); err != nil {
		return err
	}
	if s.db == nil {
		return ErrClosed // not reached: db is nil only when closed or failed
	}
	return nil
}

// dbGone reports whether a bbolt error means the handle itself is unusable
// (closed underneath us, or its memory map lost after a failed remap): no
// later transaction on it can succeed.
func dbGone(err error) bool {
	return errors.Is(err, berrors.ErrDatabaseNotOpen) || errors.Is(err, berrors.ErrInvalidMapping)
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Notify is the Notify channel of the default sink's view (see
// SinkView.Notify). A producer paused by ErrFull should wait on Space,
// which wakes every waiter.
func (s *Store) Notify() <-chan struct{} { return s.Sink(DefaultSink).Notify() }

// Pending is the default sink's Pending (SinkView.Pending): the records
// pending for DefaultSink.
func (s *Store) Pending(limit int) ([]Record, error) { return s.Sink(DefaultSink).Pending(limit) }

// Ack is the default sink's Ack (SinkView.Ack).
func (s *Store) Ack(seqs ...uint64) error { return s.Sink(DefaultSink).Ack(seqs...) }

// DeadLetter is the default sink's DeadLetter (SinkView.DeadLetter): the
// record becomes a dead letter of stage "upstream".
func (s *Store) DeadLetter(seq uint64, reason string) error {
	return s.Sink(DefaultSink).DeadLetter(seq, reason)
}

// Space returns a channel that is closed the next time records leave the
// outbox (the last sink that needed them acked or dead-lettered them, or a
// disabled sink released them). Every waiter is woken. To wait without a
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
		s.signalAll()
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
	if err := s.usableLocked(); err != nil {
		return err
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
		var fnErr error
		err = s.db.Update(func(tx *bolt.Tx) error {
			fnErr = fn(tx)
			return fnErr
		})
		s.noteWrite(err, fnErr)
	} else {
		err = s.db.View(fn)
	}
	if dbGone(err) {
		// The store closes its handle only under mu held exclusively, and
		// sets db to nil when it does: this handle was lost underneath.
		return s.fail(err)
	}
	return err
}

// noteWrite keeps WriteErr up to date after a write transaction that ended
// with err, fnErr being what the transaction's function returned. A commit
// clears it. A failed commit sets it, and so does a function error that
// comes from the file system (the .seq file could not be written, say):
// logical refusals such as ErrFull or a missing record say nothing about the
// disk.
func (s *Store) noteWrite(err, fnErr error) {
	var pe *fs.PathError
	var errno syscall.Errno
	switch {
	case err == nil:
		s.writeErrMu.Lock()
		s.writeErr = nil
		s.writeErrMu.Unlock()
	case err != fnErr || errors.As(err, &pe) || errors.As(err, &errno):
		s.writeErrMu.Lock()
		s.writeErr = err
		s.writeErrMu.Unlock()
	}
}

// WriteErr returns why the last write to the database failed — a full disk
// (errors.Is(err, syscall.ENOSPC)), an I/O error — or nil once a write has
// committed since. The agent shows it: while it is set, sales fetched from
// Moka cannot be buffered (they stay in Moka and are fetched again).
func (s *Store) WriteErr() error {
	s.writeErrMu.Lock()
	defer s.writeErrMu.Unlock()
	return s.writeErr
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
