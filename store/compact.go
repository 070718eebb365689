package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
)

// Compact rewrites the database into a new file without free pages
// (bbolt.Compact into <path>.compact, fsync, rename over the original,
// reopen) and returns the file sizes before and after. bbolt files never
// shrink by themselves. It holds the store exclusively: operations from
// other goroutines wait until it is done. If the rename fails the original
// file is kept and reopened; if even reopening fails, the store fails (see
// Failed; later calls return ErrFailed) and the error says why.
func (s *Store) Compact() (before, after int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return 0, 0, err
	}
	return s.compactLocked()
}

// compactLocked does the work of Compact; s.mu must be held exclusively.
func (s *Store) compactLocked() (before, after int64, err error) {
	before, err = fileSize(s.path)
	if err != nil {
		return 0, 0, fmt.Errorf("store: compact: %w", err)
	}
	tmp := s.path + compactSuffix
	_ = os.Remove(tmp)
	// Commits into the temporary file skip fsync; one Sync at the end makes
	// it durable before the rename.
	o := s.bopt
	o.NoSync = true
	o.NoFreelistSync = false
	dst, err := bolt.Open(tmp, 0o600, &o)
	if err != nil {
		return 0, 0, fmt.Errorf("store: compact: %w", err)
	}
	fail := func(err error) (int64, int64, error) {
		_ = dst.Close()
		_ = os.Remove(tmp)
		return 0, 0, fmt.Errorf("store: compact: %w", err)
	}
	if err := s.safeCompact(dst); err != nil {
		return fail(err)
	}
	if err := dst.Sync(); err != nil {
		return fail(err)
	}
	if err := dst.Close(); err != nil {
		_ = os.Remove(tmp)
		return 0, 0, fmt.Errorf("store: compact: %w", err)
	}
	// Windows cannot rename over an open file: close the original first.
	if err := s.db.Close(); err != nil {
		s.log.Warn("Closing database before compaction rename failed", "err", err)
	}
	s.db = nil
	renameErr := os.Rename(tmp, s.path)
	if renameErr == nil {
		syncDir(filepath.Dir(s.path))
	} else {
		_ = os.Remove(tmp)
	}
	db, err := s.reopen()
	if err != nil {
		// Nothing is open any more: without this, every later operation
		// would fail quietly while the agent looks alive.
		err = fmt.Errorf("store: compact: reopen: %w", errors.Join(renameErr, err))
		return 0, 0, s.fail(err)
	}
	s.db = db
	if renameErr != nil {
		return 0, 0, fmt.Errorf("store: compact: %w", renameErr)
	}
	after, err = fileSize(s.path)
	if err != nil {
		return 0, 0, fmt.Errorf("store: compact: %w", err)
	}
	return before, after, nil
}

// reopen opens the file again after a compaction.
func (s *Store) reopen() (*bolt.DB, error) {
	if s.testHookReopen != nil {
		if err := s.testHookReopen(); err != nil {
			return nil, err
		}
	}
	return openBolt(s.path, s.bopt)
}

// safeCompact is bolt.Compact from s.db with bbolt panics turned into
// ErrCorrupt (and the next Open's full check), and a handle lost underneath
// (see dbGone) into the store's failure.
func (s *Store) safeCompact(dst *bolt.DB) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = s.suspect(r)
		}
	}()
	if err := bolt.Compact(dst, s.db, compactTxMaxSize); err != nil {
		if dbGone(err) {
			return s.fail(err)
		}
		return err
	}
	return nil
}

// MaybeCompact compacts the database if the file is larger than 64 MiB and
// more than half of it is free space, as Open does. The agent calls it
// periodically: a service runs for months between restarts, and a drained
// backlog otherwise leaves the file at its high-water mark for good.
func (s *Store) MaybeCompact() error {
	if err := s.maybeCompact(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// maybeCompact compacts when the file is large and mostly free
// space. The decision reads bbolt's in-memory freelist statistics: no I/O.
// It fails only if the database could not be reopened after compacting; the
// store has then failed (Failed, ErrFailed).
func (s *Store) maybeCompact() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return err
	}
	size, err := fileSize(s.path)
	if err != nil || size <= compactMinSize {
		return nil
	}
	var used int64
	_ = safeTx(s.db, false, func(tx *bolt.Tx) error {
		used = tx.Size() // high-water mark; beyond it the file is preallocated
		return nil
	})
	free := size - used + int64(s.db.Stats().FreePageN)*int64(s.db.Info().PageSize)
	if float64(free) <= compactFreeRatio*float64(size) {
		return nil
	}
	s.log.Info("Compacting database", "path", s.path, "size", size, "free", free)
	before, after, err := s.compactLocked()
	if err != nil {
		s.log.Warn("Compaction failed", "err", err)
		if s.db == nil {
			return err
		}
		return nil
	}
	s.log.Info("Compacted database", "path", s.path, "before", before, "after", after)
	return nil
}

func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
