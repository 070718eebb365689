package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// maxReasonLen caps a stored dead-letter reason (it may hold a response).
const maxReasonLen = 8 << 10

// moveCorrupt moves an undecodable outbox value to the dead letters.
func (s *Store) moveCorrupt(seq uint64, cause error) error {
	now := s.now()
	s.log.Error("Undecodable outbox record moved to dead letters", "seq", seq, "err", cause)
	err := s.update(func(tx *bolt.Tx) error {
		meta, out := tx.Bucket(bucketMeta), tx.Bucket(bucketOutbox)
		c, err := readCounters(meta)
		if err != nil {
			return err
		}
		k := seqKey(seq)
		v := out.Get(k)
		if v == nil {
			return nil
		}
		ver := sha256.Sum256(v)
		rec := appendRecord(nil, now, "", "", &ver, v)
		c.pendingN--
		c.pendingBytes -= int64(len(v)) + 8
		if err := out.Delete(k); err != nil {
			return err
		}
		if err := putDead(tx, &c, now, seq, StageCorrupt, cause.Error(), rec); err != nil {
			return err
		}
		return c.write(meta)
	})
	if err == nil {
		s.freed()
	}
	return err
}

// putDead stores a dead letter and counts it.
func putDead(tx *bolt.Tx, c *counters, at time.Time, seq uint64, stage, reason string, rec []byte) error {
	dead := tx.Bucket(bucketDead)
	dead.FillPercent = 1.0 // ids only ever grow
	id, err := dead.NextSequence()
	if err != nil {
		return err
	}
	if err := dead.Put(seqKey(id), appendDead(nil, at, seq, stage, truncate(reason, maxReasonLen), rec)); err != nil {
		return err
	}
	c.deadN++
	return nil
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// DeadLetter moves the outbox record seq to the dead letters (stage
// "upstream") with reason (capped at 8 KiB). An unknown seq gives
// ErrNotFound.
func (s *Store) DeadLetter(seq uint64, reason string) error {
	now := s.now()
	err := s.update(func(tx *bolt.Tx) error {
		meta, out := tx.Bucket(bucketMeta), tx.Bucket(bucketOutbox)
		c, err := readCounters(meta)
		if err != nil {
			return err
		}
		k := seqKey(seq)
		v := out.Get(k)
		if v == nil {
			return fmt.Errorf("%w: seq %d", ErrNotFound, seq)
		}
		if err := putDead(tx, &c, now, seq, StageUpstream, reason, v); err != nil {
			return err
		}
		c.pendingN--
		c.pendingBytes -= int64(len(v)) + 8
		if err := out.Delete(k); err != nil {
			return err
		}
		return c.write(meta)
	})
	if err != nil {
		return fmt.Errorf("store: dead letter: %w", err)
	}
	s.freed()
	return nil
}

// AddDead stores a record that never entered the outbox, e.g. stage "map"
// for source data that could not be mapped (SPEC §4). Kind and Key may be
// empty. It returns the dead letter's id.
//
// A record with a key is remembered in the dedupe index like a buffered
// one: offering the same key with the same data again (the next poll
// re-fetching the same broken record) is a no-op that returns id 0, and the
// record is buffered normally once its source is fixed.
func (s *Store) AddDead(in Input, stage, reason string) (uint64, error) {
	if stage == "" {
		return 0, errors.New("store: add dead letter: empty stage")
	}
	now := s.now()
	ver := sha256.Sum256(in.Data)
	rec := appendRecord(nil, now, in.Kind, in.Key, &ver, in.Data)
	var id uint64
	err := s.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		c, err := readCounters(meta)
		if err != nil {
			return err
		}
		dd := tx.Bucket(bucketDedupe)
		if in.Key != "" {
			if old := dd.Get([]byte(in.Key)); len(old) >= versionLen && bytes.Equal(old[:versionLen], ver[:]) {
				return nil // already set aside with this very content
			}
		}
		if err := putDead(tx, &c, now, 0, stage, reason, rec); err != nil {
			return err
		}
		id = tx.Bucket(bucketDead).Sequence()
		if in.Key != "" {
			if err := dd.Put([]byte(in.Key), appendDedupe(nil, &ver, now)); err != nil {
				return err
			}
		}
		return c.write(meta)
	})
	if err != nil {
		return 0, fmt.Errorf("store: add dead letter: %w", err)
	}
	return id, nil
}

// DeadLetter is a record kept aside with the reason.
type DeadLetter struct {
	ID     uint64
	Stage  string // StageUpstream, StageMap, StageCorrupt, or a caller's
	Record Record // Seq is the outbox seq it had (0 if never in the outbox)
	Reason string
	At     time.Time
}

// DeadLetters returns up to limit dead letters, oldest first.
func (s *Store) DeadLetters(limit int) ([]DeadLetter, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []DeadLetter
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDead).Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			id, _ := keySeq(k)
			d, err := decodeDead(id, v)
			if err != nil {
				d = DeadLetter{ID: id, Stage: StageCorrupt, Reason: "undecodable dead letter: " + err.Error()}
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: dead letters: %w", err)
	}
	return out, nil
}

// Requeue moves dead letters back into the outbox, at its end with new
// seqs, in the order given. It ignores MaxPendingBytes (the operator asked
// for it). Dead letters that cannot be requeued stay where they are and are
// reported in the error, which wraps ErrNotFound (unknown id) and/or
// ErrNotRequeueable (stage "map" or "corrupt", or a key since buffered with
// another version: sending the old one after it would regress the
// receiver). The others are requeued all the same; n counts them.
func (s *Store) Requeue(ids ...uint64) (n int, err error) {
	var skipped []error
	err = s.update(func(tx *bolt.Tx) error {
		n, skipped = 0, nil
		rq, err := s.newRequeuer(tx)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := rq.requeue(id); err != nil {
				var ie *itemError
				if !errors.As(err, &ie) {
					return err
				}
				skipped = append(skipped, err)
				continue
			}
			n++
		}
		return rq.finish()
	})
	if err != nil {
		return 0, fmt.Errorf("store: requeue: %w", err)
	}
	if n > 0 {
		signal(s.notify)
	}
	if len(skipped) > 0 {
		return n, fmt.Errorf("store: requeue: %w", errors.Join(skipped...))
	}
	return n, nil
}

// RequeueAll requeues every requeueable dead letter (see Requeue) and
// returns how many; the others stay.
func (s *Store) RequeueAll() (int, error) {
	var n int
	err := s.update(func(tx *bolt.Tx) error {
		n = 0
		var ids []uint64
		if err := tx.Bucket(bucketDead).ForEach(func(k, _ []byte) error {
			if id, ok := keySeq(k); ok {
				ids = append(ids, id)
			}
			return nil
		}); err != nil {
			return err
		}
		rq, err := s.newRequeuer(tx)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := rq.requeue(id); err != nil {
				var ie *itemError
				if !errors.As(err, &ie) {
					return err
				}
				continue
			}
			n++
		}
		return rq.finish()
	})
	if err != nil {
		return 0, fmt.Errorf("store: requeue all: %w", err)
	}
	if n > 0 {
		signal(s.notify)
	}
	return n, nil
}

// itemError is a per-id failure of Requeue or DeleteDead.
type itemError struct {
	id  uint64
	err error
}

func (e *itemError) Error() string { return fmt.Sprintf("dead letter %d: %v", e.id, e.err) }

func (e *itemError) Unwrap() error { return e.err }

type requeuer struct {
	s                   *Store
	now                 time.Time
	meta, out, dd, dead *bolt.Bucket
	c                   counters
	seq                 uint64
}

func (s *Store) newRequeuer(tx *bolt.Tx) (*requeuer, error) {
	rq := &requeuer{
		s:    s,
		now:  s.now(),
		meta: tx.Bucket(bucketMeta),
		out:  tx.Bucket(bucketOutbox),
		dd:   tx.Bucket(bucketDedupe),
		dead: tx.Bucket(bucketDead),
	}
	rq.out.FillPercent = 1.0
	var err error
	rq.c, err = readCounters(rq.meta)
	rq.seq = rq.out.Sequence()
	return rq, err
}

func (rq *requeuer) requeue(id uint64) error {
	k := seqKey(id)
	v := rq.dead.Get(k)
	if v == nil {
		return &itemError{id, ErrNotFound}
	}
	_, _, stage, _, rec, err := deadHeader(v)
	if err != nil {
		return &itemError{id, fmt.Errorf("%w: %v", ErrNotRequeueable, err)}
	}
	if st := string(stage); st == StageMap || st == StageCorrupt {
		return &itemError{id, fmt.Errorf("%w: stage %q", ErrNotRequeueable, st)}
	}
	r, err := decodeRecord(0, rec)
	if err != nil {
		return &itemError{id, fmt.Errorf("%w: %v", ErrNotRequeueable, err)}
	}
	var ver [versionLen]byte
	if err := parseVersion(r.Version, &ver); err != nil {
		return &itemError{id, fmt.Errorf("%w: %v", ErrNotRequeueable, err)}
	}
	if r.Kind == "" || r.Key == "" || len(r.Data) == 0 {
		return &itemError{id, fmt.Errorf("%w: incomplete record", ErrNotRequeueable)}
	}
	key := []byte(r.Key)
	if cur := rq.dd.Get(key); len(cur) >= versionLen && !bytes.Equal(cur[:versionLen], ver[:]) {
		return &itemError{id, fmt.Errorf("%w: key %s was buffered again with a newer version", ErrNotRequeueable, r.Key)}
	}
	val := appendRecord(nil, rq.now, r.Kind, r.Key, &ver, r.Data)
	rq.seq++
	if err := rq.out.Put(seqKey(rq.seq), val); err != nil {
		return err
	}
	if err := rq.dd.Put(key, appendDedupe(nil, &ver, rq.now)); err != nil {
		return err
	}
	if err := rq.dead.Delete(k); err != nil {
		return err
	}
	rq.c.deadN--
	rq.c.pendingN++
	rq.c.pendingBytes += int64(len(val)) + 8
	return nil
}

func (rq *requeuer) finish() error {
	if err := rq.s.reserveSeq(rq.seq); err != nil {
		return err
	}
	if err := rq.out.SetSequence(rq.seq); err != nil {
		return err
	}
	return rq.c.write(rq.meta)
}

// DeleteDead deletes dead letters for good (an operator's decision) and
// returns how many were deleted; unknown ids are reported with ErrNotFound.
func (s *Store) DeleteDead(ids ...uint64) (int, error) {
	var (
		n       int
		missing []error
	)
	err := s.update(func(tx *bolt.Tx) error {
		n, missing = 0, nil
		meta, dead := tx.Bucket(bucketMeta), tx.Bucket(bucketDead)
		c, err := readCounters(meta)
		if err != nil {
			return err
		}
		for _, id := range ids {
			k := seqKey(id)
			if dead.Get(k) == nil {
				missing = append(missing, &itemError{id, ErrNotFound})
				continue
			}
			if err := dead.Delete(k); err != nil {
				return err
			}
			c.deadN--
			n++
		}
		return c.write(meta)
	})
	if err != nil {
		return 0, fmt.Errorf("store: delete dead letters: %w", err)
	}
	if len(missing) > 0 {
		return n, fmt.Errorf("store: delete dead letters: %w", errors.Join(missing...))
	}
	return n, nil
}
