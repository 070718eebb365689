package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Bucket names and meta keys.
var (
	bucketMeta   = []byte("meta")
	bucketOutbox = []byte("outbox")
	bucketDedupe = []byte("dedupe")
	bucketDead   = []byte("dead")
	bucketState  = []byte("state")
	bucketSinks  = []byte("sinks") // format 2 on (sinks.go)

	keyFormat       = []byte("format")
	keyPendingN     = []byte("pending_n")
	keyPendingBytes = []byte("pending_bytes")
	keyDeadN        = []byte("dead_n")
	keyQuarantine   = []byte("quarantine")
	// keyRelease is the seq from which records no enabled sink needs are
	// still to be removed after a sink was disabled (SetSinks).
	keyRelease = []byte("release_from")

	dataBuckets = [][]byte{bucketOutbox, bucketDedupe, bucketDead, bucketState}
	counterKeys = [][]byte{keyPendingN, keyPendingBytes, keyDeadN}
)

const (
	// formatVersion is the layout written by this code. A database with a
	// higher one is refused (ErrIncompatible), not quarantined; one with a
	// lower one is upgraded by Open (1 -> 2: sinks, migrateSinks).
	formatVersion = 2

	// checkMarkerSuffix names the file that asks the next Open for a full
	// consistency check (written after bbolt panicked).
	checkMarkerSuffix = ".check"
	// compactSuffix names the temporary file of a compaction.
	compactSuffix = ".compact"
	// corruptSuffix ends the name of a quarantined file.
	corruptSuffix = ".corrupt"
)

// corruptError says why a database file is considered corrupt.
type corruptError struct{ reason string }

func (e *corruptError) Error() string { return "corrupt database: " + e.reason }

func corruptf(format string, args ...any) error {
	return &corruptError{reason: fmt.Sprintf(format, args...)}
}

func isCorrupt(err error) (string, bool) {
	var ce *corruptError
	if errors.As(err, &ce) {
		return ce.reason, true
	}
	return "", false
}

// open opens s.path, moving a corrupt file aside and starting fresh (once),
// and retrying I/O errors (see Open).
func (s *Store) open() error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o750); err != nil {
		return fmt.Errorf("store: open: %w", err)
	}
	s.lease = s.readSeqMark()
	var q *Quarantine
	for attempt := 1; ; {
		err := s.tryOpen(q)
		if err == nil {
			break
		}
		if reason, corrupt := isCorrupt(err); corrupt {
			if q != nil {
				return fmt.Errorf("store: open %s: fresh database unusable: %w", s.path, err)
			}
			// bbolt cannot tell a page it could not read from a page that
			// holds garbage (it reports both as an invalid file, or faults
			// on the mapping): the file is moved aside only if all of it
			// can be read.
			if err = s.confirmReadable(); err == nil {
				if q, err = s.moveAside(reason); err != nil {
					return err
				}
				continue
			}
			s.log.Warn("Database looks corrupt but cannot be read; not moving it aside", "path", s.path, "reason", reason, "err", err)
		}
		if errors.Is(err, ErrLocked) || errors.Is(err, ErrIncompatible) {
			return err
		}
		if attempt > len(s.ioRetry) {
			if !errors.Is(err, ErrIO) {
				err = fmt.Errorf("%w: %w", ErrIO, err)
			}
			return fmt.Errorf("store: open %s: gave up after %d attempts; the file was left in place: %w", s.path, attempt, err)
		}
		wait := s.ioRetry[attempt-1]
		s.log.Warn("Cannot open the database; retrying", "path", s.path, "attempt", attempt, "retry_in", wait, "err", err)
		s.sleep(wait)
		attempt++
	}
	return s.maybeCompact()
}

// tryOpen opens the file into s.db and checks it. A corrupt file gives a
// *corruptError, with s.db left nil. q, if set, is recorded in a fresh
// database.
func (s *Store) tryOpen(q *Quarantine) error {
	if err := s.probe(); err != nil {
		return err
	}
	db, err := openBolt(s.path, s.bopt)
	if err != nil {
		return s.classifyOpenErr(err)
	}
	// The file lock is ours from here: clean up after an interrupted
	// compaction.
	_ = os.Remove(s.path + compactSuffix)

	if _, err := os.Stat(s.path + checkMarkerSuffix); err == nil {
		s.log.Warn("Checking database after an earlier panic", "path", s.path)
		if err := fullCheck(db); err != nil {
			_ = db.Close()
			return err
		}
		_ = os.Remove(s.path + checkMarkerSuffix)
	}
	if err := s.initLayout(db, q); err != nil {
		_ = db.Close()
		return err
	}
	s.mu.Lock()
	s.db = db
	s.mu.Unlock()
	return nil
}

// classifyOpenErr maps a bbolt Open error: lock timeout -> ErrLocked,
// content errors -> corruption, anything else (permissions, I/O) returned.
func (s *Store) classifyOpenErr(err error) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("%w: %s", ErrLocked, s.path)
	case errors.Is(err, berrors.ErrInvalid),
		errors.Is(err, berrors.ErrVersionMismatch),
		errors.Is(err, berrors.ErrChecksum):
		return corruptf("bbolt open: %v", err)
	case strings.Contains(err.Error(), "file size too small"):
		return corruptf("bbolt open: %v", err)
	}
	if _, ok := isCorrupt(err); ok {
		return err
	}
	return fmt.Errorf("store: open %s: %w", s.path, err)
}

// openBolt is bolt.Open with panics (including memory faults on the mapped
// file) turned into corruption errors. The file handle is captured so that
// it can be closed, releasing the lock, when bbolt panics half-way.
func openBolt(path string, o bolt.Options) (db *bolt.DB, err error) {
	var file *os.File
	o.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		file = f
		return f, err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if file != nil {
				_ = file.Close()
			}
			db, err = nil, corruptf("bbolt open panicked: %v", r)
		}
	}()
	return bolt.Open(path, 0o600, &o)
}

// safeTx runs fn in a transaction of db, turning panics into corruption.
func safeTx(db *bolt.DB, write bool, fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = corruptf("panic: %v", r)
		}
	}()
	if write {
		return db.Update(fn)
	}
	return db.View(fn)
}

// initLayout creates the buckets of a new database, or checks those of an
// existing one (cheaply: buckets present, counters decodable, first and last
// record decodable), records q, raises the outbox sequence to the
// high-water mark (s.lease) and loads the quarantine note.
func (s *Store) initLayout(db *bolt.DB, q *Quarantine) error {
	var (
		create bool
		note   *Quarantine
		// noSummary: an existing database without the day summary;
		// sumPartial: one with only a part of it.
		noSummary, sumPartial bool
		dbSeq                 uint64
		format                uint64
	)
	err := safeTx(db, false, func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			create = true
			return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
				return corruptf("bucket %q without meta bucket", name)
			})
		}
		var err error
		if format, err = checkLayout(tx); err != nil {
			return err
		}
		dbSeq = tx.Bucket(bucketOutbox).Sequence()
		noSummary = tx.Bucket(bucketSummary) == nil
		sumPartial = !noSummary && !summaryComplete(tx)
		if v := meta.Get(keyQuarantine); v != nil {
			qq, err := decodeQuarantine(v)
			if err != nil {
				return corruptf("quarantine note: %v", err)
			}
			note = &qq
		}
		return nil
	})
	if err != nil {
		return err
	}
	migrate := !create && format < formatVersion
	if create || q != nil || dbSeq < s.lease || migrate || noSummary || sumPartial {
		err = safeTx(db, true, func(tx *bolt.Tx) error {
			if create {
				if err := s.createLayout(tx); err != nil {
					return err
				}
			}
			if noSummary {
				// Started empty: it fills as records arrive (summary.go).
				if err := createSummary(tx, s.now()); err != nil {
					return fmt.Errorf("start the day summary: %w", err)
				}
				s.log.Info("Day summary started; it counts the sales received from now on", "path", s.path)
			}
			if sumPartial {
				if err := createSummary(tx, time.Time{}); err != nil {
					return fmt.Errorf("complete the day summary: %w", err)
				}
			}
			if migrate {
				st, err := migrateSinks(tx)
				if err != nil {
					return fmt.Errorf("upgrade database format %d to %d: %w", format, formatVersion, err)
				}
				s.log.Info("Database upgraded: every pending record is pending for the default sink",
					"path", s.path, "from_format", format, "to_format", formatVersion, "sink", DefaultSink,
					"pending", st.pendingN, "dead_letters", st.deadN)
			}
			// Continue above every seq handed out, by this database or by
			// one it replaces (SPEC §6).
			if out := tx.Bucket(bucketOutbox); out.Sequence() < s.lease {
				s.logSeqRaise(create, out.Sequence())
				if err := out.SetSequence(s.lease); err != nil {
					return err
				}
			}
			if q == nil {
				return nil
			}
			b, err := encodeQuarantine(*q)
			if err != nil {
				return err
			}
			return tx.Bucket(bucketMeta).Put(keyQuarantine, b)
		})
		if err != nil {
			return err
		}
		if q != nil {
			note = q
		}
	}
	s.qmu.Lock()
	s.quarantine = note
	s.qmu.Unlock()
	return nil
}

// createLayout initialises a new database.
//
// The outbox sequence of a new database starts at the current time in
// microseconds rather than at 0, so that seq keeps increasing for the
// upstream even when the database is replaced (quarantined, or deleted by
// hand) and the high-water mark file is lost too: it would take more than a
// million records per second to catch up. initLayout then raises it to the
// mark, which covers a clock that is behind. The values stay below 2^53, so
// they are exact in JavaScript receivers.
func (s *Store) createLayout(tx *bolt.Tx) error {
	meta, err := tx.CreateBucket(bucketMeta)
	if err != nil {
		return err
	}
	for _, name := range dataBuckets {
		if _, err := tx.CreateBucket(name); err != nil {
			return err
		}
	}
	if base := s.now().UnixMicro(); base > 0 {
		if err := tx.Bucket(bucketOutbox).SetSequence(uint64(base)); err != nil {
			return err
		}
	}
	sinks, err := tx.CreateBucket(bucketSinks)
	if err != nil {
		return err
	}
	def := sinkState{enabled: true}
	if err := sinks.Put([]byte(DefaultSink), def.encode(nil)); err != nil {
		return err
	}
	if err := createSummary(tx, time.Time{}); err != nil {
		return err
	}
	if err := meta.Put(keyFormat, putUint64(formatVersion)); err != nil {
		return err
	}
	for _, k := range counterKeys {
		if err := meta.Put(k, putUint64(0)); err != nil {
			return err
		}
	}
	return nil
}

// checkLayout is the quick sanity check of an existing database. It
// returns the database's format.
func checkLayout(tx *bolt.Tx) (uint64, error) {
	meta := tx.Bucket(bucketMeta)
	f, ok := getUint64(meta.Get(keyFormat))
	if !ok {
		return 0, corruptf("format key unreadable")
	}
	if f > formatVersion {
		return 0, fmt.Errorf("%w: format %d, this agent reads up to %d", ErrIncompatible, f, formatVersion)
	}
	for _, k := range counterKeys {
		if _, ok := getUint64(meta.Get(k)); !ok {
			return 0, corruptf("counter %q unreadable", k)
		}
	}
	for _, name := range dataBuckets {
		if tx.Bucket(name) == nil {
			return 0, corruptf("bucket %q missing", name)
		}
	}
	if f >= 2 {
		if err := checkSinks(tx); err != nil {
			return 0, err
		}
	}
	return f, checkRecords(tx)
}

// checkSinks checks the sinks bucket of a database of format 2 on: every
// entry decodes, and at least one sink is enabled.
func checkSinks(tx *bolt.Tx) error {
	b := tx.Bucket(bucketSinks)
	if b == nil {
		return corruptf("bucket %q missing", bucketSinks)
	}
	enabled := 0
	err := b.ForEach(func(k, v []byte) error {
		st, err := decodeSinkState(v)
		if err != nil {
			return corruptf("sink %q: %v", k, err)
		}
		if st.enabled {
			enabled++
		}
		return nil
	})
	if err != nil {
		return err
	}
	if enabled == 0 {
		return corruptf("no sink enabled")
	}
	return nil
}

// checkRecords decodes the first and last outbox records and the first
// dead letter.
func checkRecords(tx *bolt.Tx) error {
	out := tx.Bucket(bucketOutbox)
	c := out.Cursor()
	if k, v := c.First(); k != nil {
		seq, ok := keySeq(k)
		if !ok {
			return corruptf("outbox key %x", k)
		}
		if _, err := decodeRecord(seq, v); err != nil {
			return corruptf("outbox record %d: %v", seq, err)
		}
		lk, _ := c.Last()
		last, ok := keySeq(lk)
		if !ok || last > out.Sequence() {
			return corruptf("outbox key %x beyond sequence %d", lk, out.Sequence())
		}
	}
	if k, v := tx.Bucket(bucketDead).Cursor().First(); k != nil {
		id, ok := keySeq(k)
		if !ok {
			return corruptf("dead-letter key %x", k)
		}
		if _, err := decodeDead(id, v); err != nil {
			return corruptf("dead letter %d: %v", id, err)
		}
	}
	return nil
}

// moveAside renames a corrupt file to <path>.<UTC time>.corrupt.
func (s *Store) moveAside(reason string) (*Quarantine, error) {
	at := s.now().UTC()
	base := s.path + "." + at.Format("20060102T150405Z")
	dst := base + corruptSuffix
	for i := 2; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
			break
		}
		dst = fmt.Sprintf("%s-%d%s", base, i, corruptSuffix)
	}
	if err := os.Rename(s.path, dst); err != nil {
		return nil, fmt.Errorf("store: quarantine %s: %w", s.path, err)
	}
	syncDir(filepath.Dir(s.path))
	_ = os.Remove(s.path + checkMarkerSuffix)
	s.log.Warn("Corrupt database moved aside; starting with a fresh one",
		"path", s.path, "corrupt_path", dst, "reason", reason)
	return &Quarantine{CorruptPath: dst, Reason: reason, At: at}, nil
}

// syncDir makes a rename in dir durable. Not possible on Windows, where the
// rename itself is durable enough (MoveFileEx); errors are ignored.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
