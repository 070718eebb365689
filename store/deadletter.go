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

// moveCorrupt moves an undecodable outbox value to the dead letters, for
// every sink: no sink can deliver it.
func (s *Store) moveCorrupt(seq uint64, cause error) error {
	now := s.now()
	s.log.Error("Undecodable outbox record moved to dead letters", "seq", seq, "err", cause)
	err := s.update(func(tx *bolt.Tx) error {
		meta, out := tx.Bucket(bucketMeta), tx.Bucket(bucketOutbox)
		c, err := readCounters(meta)
		if err != nil {
			return err
		}
		sinks, err := loadSinks(tx)
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
		size := int64(len(v)) + 8
		for _, e := range sinks.enabled() {
			if e.st.needs(seq) {
				e.st.pendingN--
				e.st.pendingBytes -= size
			}
		}
		c.pendingN--
		c.pendingBytes -= size
		if err := out.Delete(k); err != nil {
			return err
		}
		if sum := newSumTx(tx, sinks, s.log); sum != nil {
			if err := sum.dropPointer(seq); err != nil {
				return err
			}
			if err := sum.flush(); err != nil {
				return err
			}
		}
		if err := putDead(tx, &c, now, seq, StageCorrupt, cause.Error(), rec); err != nil {
			return err
		}
		sinks.normalizeAll(out)
		if err := sinks.save(); err != nil {
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
			// The day summary's facts stay with the key (summary.go).
			nv := keepFacts(appendDedupe(nil, &ver, now), dd.Get([]byte(in.Key)))
			if err := dd.Put([]byte(in.Key), nv); err != nil {
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
	ID    uint64
	Stage string // a sink's name (StageUpstream, ...), StageMap, StageCorrupt, or a caller's
	// Sink is the sink that rejected the record: the Stage, unless that
	// is StageMap or StageCorrupt (then "": no sink ever had it).
	Sink   string
	Record Record // Seq is the outbox seq it had (0 if never in the outbox)
	Reason string
	At     time.Time
}

// deadSink returns the sink a dead letter of stage belongs to ("" for the
// stages that are not sinks).
func deadSink(stage string) string {
	if stage == StageMap || stage == StageCorrupt {
		return ""
	}
	return stage
}

// DeadLetters returns up to limit dead letters, oldest first.
func (s *Store) DeadLetters(limit int) ([]DeadLetter, error) {
	return s.deadLetters("", limit)
}

// DeadLettersOf returns up to limit dead letters of one sink (those it
// rejected), oldest first. It reads every dead letter to find them.
func (s *Store) DeadLettersOf(sink string, limit int) ([]DeadLetter, error) {
	if sink == "" {
		return nil, fmt.Errorf("%w: empty", ErrSinkName)
	}
	return s.deadLetters(sink, limit)
}

// deadLetters lists dead letters, of one sink's if sink is not "".
func (s *Store) deadLetters(sink string, limit int) ([]DeadLetter, error) {
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
			d.Sink = deadSink(d.Stage)
			if sink != "" && d.Sink != sink {
				continue
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
// seqs, in the order given. A sink's dead letter goes back for that sink
// only (the others had the record); one of a caller's stage that names no
// sink, for every enabled sink. It ignores MaxPendingBytes (the operator
// asked for it). Dead letters that cannot be requeued stay where they are
// and are reported in the error, which wraps ErrNotFound (unknown id) and/or
// ErrNotRequeueable (stage "map" or "corrupt", a sink that is not enabled,
// or a key since buffered with another version: sending the old one after
// it would regress the receiver). The others are requeued all the same; n
// counts them.
func (s *Store) Requeue(ids ...uint64) (n int, err error) {
	return s.requeueIDs("", ids)
}

// RequeueOf is Requeue for the dead letters of one sink: an id that is not
// one of its dead letters stays where it is and is reported (wrapping
// ErrNotRequeueable).
func (s *Store) RequeueOf(sink string, ids ...uint64) (n int, err error) {
	if sink == "" {
		return 0, fmt.Errorf("%w: empty", ErrSinkName)
	}
	return s.requeueIDs(sink, ids)
}

func (s *Store) requeueIDs(sink string, ids []uint64) (n int, err error) {
	var skipped []error
	err = s.update(func(tx *bolt.Tx) error {
		var err error
		n, skipped, err = s.requeueIn(tx, sink, ids)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: requeue: %w", err)
	}
	if n > 0 {
		s.signalAll()
	}
	if len(skipped) > 0 {
		return n, fmt.Errorf("store: requeue: %w", errors.Join(skipped...))
	}
	return n, nil
}

// requeueIn requeues the dead letters ids inside tx (see Requeue), of
// sink's only if sink is not "", and returns how many it requeued and the
// per-id failures (itemError) of the others.
func (s *Store) requeueIn(tx *bolt.Tx, sink string, ids []uint64) (n int, skipped []error, err error) {
	rq, err := s.newRequeuer(tx, sink)
	if err != nil {
		return 0, nil, err
	}
	for _, id := range ids {
		if err := rq.requeue(id); err != nil {
			var ie *itemError
			if !errors.As(err, &ie) {
				return 0, nil, err
			}
			skipped = append(skipped, err)
			continue
		}
		n++
	}
	return n, skipped, rq.finish()
}

// RequeueAll requeues every requeueable dead letter (see Requeue) and
// returns how many; the others stay.
func (s *Store) RequeueAll() (int, error) {
	return s.requeueAll("")
}

// RequeueAllOf requeues every requeueable dead letter of one sink, for
// that sink, and returns how many.
func (s *Store) RequeueAllOf(sink string) (int, error) {
	if sink == "" {
		return 0, fmt.Errorf("%w: empty", ErrSinkName)
	}
	return s.requeueAll(sink)
}

func (s *Store) requeueAll(sink string) (int, error) {
	var n int
	err := s.update(func(tx *bolt.Tx) error {
		n = 0
		var ids []uint64
		if err := tx.Bucket(bucketDead).ForEach(func(k, v []byte) error {
			if sink != "" {
				if _, _, stage, _, _, err := deadHeader(v); err != nil || string(stage) != sink {
					return nil
				}
			}
			if id, ok := keySeq(k); ok {
				ids = append(ids, id)
			}
			return nil
		}); err != nil {
			return err
		}
		var err error
		n, _, err = s.requeueIn(tx, sink, ids) // the others stay
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: requeue all: %w", err)
	}
	if n > 0 {
		s.signalAll()
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

// requeuer requeues dead letters inside one write transaction.
type requeuer struct {
	s                   *Store
	now                 time.Time
	only                string // requeue only this sink's dead letters ("" any)
	meta, out, dd, dead *bolt.Bucket
	sinks               *sinkTable
	sum                 *sumTx // nil without the day summary
	c                   counters
	seq                 uint64
	// forSink holds the seqs requeued for one sink alone, by sink.
	forSink map[*sinkEntry][]uint64
}

func (s *Store) newRequeuer(tx *bolt.Tx, only string) (*requeuer, error) {
	rq := &requeuer{
		s:       s,
		now:     s.now(),
		only:    only,
		meta:    tx.Bucket(bucketMeta),
		out:     tx.Bucket(bucketOutbox),
		dd:      tx.Bucket(bucketDedupe),
		dead:    tx.Bucket(bucketDead),
		forSink: map[*sinkEntry][]uint64{},
	}
	rq.out.FillPercent = 1.0
	var err error
	if rq.c, err = readCounters(rq.meta); err != nil {
		return nil, err
	}
	if rq.sinks, err = loadSinks(tx); err != nil {
		return nil, err
	}
	rq.sum = newSumTx(tx, rq.sinks, s.log)
	rq.seq = rq.out.Sequence()
	return rq, nil
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
	st := string(stage)
	if st == StageMap || st == StageCorrupt {
		return &itemError{id, fmt.Errorf("%w: stage %q", ErrNotRequeueable, st)}
	}
	if rq.only != "" && st != rq.only {
		return &itemError{id, fmt.Errorf("%w: it is a dead letter of %q, not of %q", ErrNotRequeueable, st, rq.only)}
	}
	// A sink's dead letter goes back to that sink alone; a stage that
	// names no sink the database ever had, to every sink.
	target := rq.sinks.get(st)
	if target != nil && !target.st.enabled {
		return &itemError{id, fmt.Errorf("%w: sink %q is not enabled", ErrNotRequeueable, st)}
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
	ddv := keepFacts(appendDedupe(nil, &ver, rq.now), rq.dd.Get(key))
	if err := rq.dd.Put(key, ddv); err != nil {
		return err
	}
	if rq.sum != nil {
		// Its version may be the sale's counted one (summary.go).
		if err := rq.sum.pointTo(rq.seq, ddv, ver[:]); err != nil {
			return err
		}
	}
	if err := rq.dead.Delete(k); err != nil {
		return err
	}
	size := int64(len(val)) + 8
	rq.c.deadN--
	rq.c.pendingN++
	rq.c.pendingBytes += size
	for _, e := range rq.sinks.enabled() {
		if target == nil || e == target {
			e.st.pendingN++
			e.st.pendingBytes += size
			e.dirty = true
		}
	}
	if target != nil {
		target.st.deadN--
		target.dirty = true
		rq.forSink[target] = append(rq.forSink[target], rq.seq)
	}
	return nil
}

func (rq *requeuer) finish() error {
	if rq.seq == rq.out.Sequence() {
		return nil // nothing requeued
	}
	if rq.sum != nil {
		if err := rq.sum.flush(); err != nil {
			return err
		}
	}
	if err := rq.s.reserveSeq(rq.seq); err != nil {
		return err
	}
	if err := rq.out.SetSequence(rq.seq); err != nil {
		return err
	}
	// The records requeued for one sink are done for every other.
	if len(rq.forSink) > 0 {
		for _, e := range rq.sinks.enabled() {
			for target, seqs := range rq.forSink {
				if target == e {
					continue
				}
				for _, q := range seqs {
					e.st.done.add(q)
				}
			}
			e.st.normalize(rq.out, rq.seq)
			e.dirty = true
		}
	}
	if err := rq.sinks.save(); err != nil {
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
		sinks, err := loadSinks(tx)
		if err != nil {
			return err
		}
		for _, id := range ids {
			k := seqKey(id)
			v := dead.Get(k)
			if v == nil {
				missing = append(missing, &itemError{id, ErrNotFound})
				continue
			}
			if _, _, stage, _, _, err := deadHeader(v); err == nil {
				if e := sinks.get(string(stage)); e != nil {
					e.st.deadN--
					e.dirty = true
				}
			}
			if err := dead.Delete(k); err != nil {
				return err
			}
			c.deadN--
			n++
		}
		if err := sinks.save(); err != nil {
			return err
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
