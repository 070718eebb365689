package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// Dead-letter stages.
const (
	// StageUpstream: the upstream rejected the record (DeadLetter).
	StageUpstream = "upstream"
	// StageMap: source data that could not be mapped; never requeueable.
	StageMap = "map"
	// StageCorrupt: an outbox value that could not be decoded; its raw
	// bytes are kept as Data. Never requeueable.
	StageCorrupt = "corrupt"
)

// maxReasonLen caps a stored dead-letter reason (it may hold a response).
const maxReasonLen = 8 << 10

// AppendResult tells what Append did.
type AppendResult struct {
	Appended  int    // records added to the outbox
	Unchanged int    // inputs skipped: same key and version as last time
	FirstSeq  uint64 // seq of the first appended record; 0 if none
	LastSeq   uint64 // seq of the last appended record; 0 if none
}

// errNoChange rolls back a write transaction that changed nothing.
var errNoChange = errors.New("no change")

type appendItem struct {
	key, val, dd []byte
	ver          [versionLen]byte
}

// Append adds to the outbox, in input order and each with the next seq, the
// inputs whose key is new or whose version (Version(Data)) differs from the
// last one buffered for that key; unchanged inputs are skipped. If st is not
// nil it is stored too. All of it happens in one transaction: on any error
// nothing is written.
//
// Inputs are compared one after the other, so a key given twice in one call
// is appended once if both data are equal, and twice (in order, the later
// one superseding) if they differ.
//
// If the new records would take the outbox over MaxPendingBytes, Append
// returns ErrFull and writes nothing (see Notify and Space to know when to
// retry); an Append into an empty outbox is always accepted, whatever its
// size. Kind, Key and Data must not be empty;
// Data must be JSON (it is sent as is).
func (s *Store) Append(in []Input, st *SourceState) (AppendResult, error) {
	var stv []byte
	if st != nil {
		var err error
		if stv, err = encodeState(st); err != nil {
			return AppendResult{}, err
		}
	}
	if len(in) == 0 && st == nil {
		return AppendResult{}, nil
	}
	items, err := s.prepare(in)
	if err != nil {
		return AppendResult{}, err
	}

	var (
		res   AppendResult
		added int64 // bytes added
	)
	err = s.update(func(tx *bolt.Tx) error {
		if err := s.appendItems(tx, items, &res, &added); err != nil {
			return err
		}
		if stv != nil {
			if err := tx.Bucket(bucketState).Put([]byte(st.Source), stv); err != nil {
				return err
			}
		}
		if s.testHookAppend != nil {
			if err := s.testHookAppend(); err != nil {
				return err
			}
		}
		if res.Appended == 0 && stv == nil {
			return errNoChange // roll back: no commit, no fsync
		}
		return nil
	})
	if errors.Is(err, errNoChange) {
		return res, nil
	}
	if errors.Is(err, ErrFull) {
		s.waitForSpace(added)
		return AppendResult{}, ErrFull
	}
	if err != nil {
		return AppendResult{}, fmt.Errorf("store: append: %w", err)
	}
	if res.Appended > 0 {
		signal(s.notify)
	}
	return res, nil
}

// appendItems appends the prepared items that are new or changed inside tx,
// updating the dedupe index and the counters; it returns ErrFull (the
// caller rolls back) when the bound would be exceeded.
func (s *Store) appendItems(tx *bolt.Tx, items []appendItem, res *AppendResult, added *int64) error {
	if len(items) == 0 {
		return nil
	}
	meta, out, dd := tx.Bucket(bucketMeta), tx.Bucket(bucketOutbox), tx.Bucket(bucketDedupe)
	out.FillPercent = 1.0 // keys only ever grow: keep pages full
	c, err := readCounters(meta)
	if err != nil {
		return err
	}
	seq := out.Sequence()
	limit := s.max.Load()
	keys := make([]byte, 0, 8*len(items))
	for i := range items {
		it := &items[i]
		if old := dd.Get(it.key); len(old) >= versionLen && bytes.Equal(old[:versionLen], it.ver[:]) {
			res.Unchanged++
			continue
		}
		*added += int64(len(it.val)) + 8
		if limit > 0 && c.pendingN > 0 && c.pendingBytes+*added > limit {
			return ErrFull
		}
		seq++
		keys = putSeqKey(keys, seq)
		if err := out.Put(keys[len(keys)-8:], it.val); err != nil {
			return err
		}
		if err := dd.Put(it.key, it.dd); err != nil {
			return err
		}
		if res.Appended == 0 {
			res.FirstSeq = seq
		}
		res.Appended++
		res.LastSeq = seq
	}
	if res.Appended == 0 {
		return nil
	}
	if err := s.reserveSeq(seq); err != nil {
		return err
	}
	if err := out.SetSequence(seq); err != nil {
		return err
	}
	c.pendingN += int64(res.Appended)
	c.pendingBytes += *added
	return c.write(meta)
}

// prepare validates the inputs, hashes them and encodes their values
// outside the write transaction, so that producers do the CPU work in
// parallel with each other and with the commit of another transaction.
// Everything lives in one allocation, which bbolt needs to stay valid until
// the commit anyway. Large batches are hashed on several cores.
func (s *Store) prepare(in []Input) ([]appendItem, error) {
	now := s.now()
	items := make([]appendItem, len(in))
	offs := make([]int, len(in)+1)
	for i := range in {
		x := &in[i]
		switch {
		case x.Kind == "":
			return nil, fmt.Errorf("store: append: input %d: empty kind", i)
		case x.Key == "":
			return nil, fmt.Errorf("store: append: input %d: empty key", i)
		case len(x.Key) > bolt.MaxKeySize:
			return nil, fmt.Errorf("store: append: input %d: key longer than %d bytes", i, bolt.MaxKeySize)
		case len(x.Data) == 0:
			return nil, fmt.Errorf("store: append: input %d (%s): empty data", i, x.Key)
		}
		offs[i+1] = offs[i] + len(x.Key) + recordSizeMax(x.Kind, x.Key, x.Data) + versionLen + binary.MaxVarintLen64
	}
	arena := make([]byte, offs[len(in)])
	fill := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x, it := &in[i], &items[i]
			it.ver = sha256.Sum256(x.Data)
			// Each item appends within its own region of the arena.
			b := arena[offs[i]:offs[i]:offs[i+1]]
			b = append(b, x.Key...)
			it.key = b[:len(x.Key):len(x.Key)]
			b = b[len(b):]
			b = appendRecord(b, now, x.Kind, x.Key, &it.ver, x.Data)
			it.val = b[:len(b):len(b)]
			b = b[len(b):]
			it.dd = appendDedupe(b, &it.ver, now)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(in)/parallelPrepareMin)
	if workers < 2 {
		fill(0, len(in))
		return items, nil
	}
	var wg sync.WaitGroup
	per := (len(in) + workers - 1) / workers
	for lo := 0; lo < len(in); lo += per {
		wg.Go(func() { fill(lo, min(lo+per, len(in))) })
	}
	wg.Wait()
	return items, nil
}

// parallelPrepareMin is the number of inputs per extra core in prepare.
const parallelPrepareMin = 256

// waitForSpace arms the space-freed notification after an ErrFull. The
// re-check closes the race with an Ack that committed before the flag was
// set: then nobody else would signal.
func (s *Store) waitForSpace(need int64) {
	s.fullWaiting.Store(true)
	var c counters
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		c, err = readCounters(tx.Bucket(bucketMeta))
		return err
	})
	if limit := s.max.Load(); err == nil && (c.pendingN == 0 || limit == 0 || c.pendingBytes+need <= limit) {
		if s.fullWaiting.Swap(false) {
			signal(s.notify)
		}
	}
}

// Pending returns up to limit records from the head of the outbox, oldest
// first (strictly increasing Seq). The records stay buffered until Ack or
// DeadLetter. limit <= 0 returns nothing.
//
// An outbox value that cannot be decoded is moved to the dead letters
// (stage "corrupt", raw bytes kept) so that it cannot block the queue.
func (s *Store) Pending(limit int) ([]Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	for {
		var (
			out    []Record
			badSeq uint64
			badErr error
		)
		err := s.view(func(tx *bolt.Tx) error {
			out = make([]Record, 0, min(limit, 1024))
			c := tx.Bucket(bucketOutbox).Cursor()
			for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
				seq, ok := keySeq(k)
				if !ok {
					return fmt.Errorf("%w: outbox key %x", ErrCorrupt, k)
				}
				r, err := decodeRecord(seq, v)
				if err != nil {
					badSeq, badErr = seq, err
					return nil
				}
				out = append(out, r)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("store: pending: %w", err)
		}
		if badErr == nil || len(out) > 0 {
			return out, nil
		}
		if err := s.moveCorrupt(badSeq, badErr); err != nil {
			return nil, fmt.Errorf("store: pending: %w", err)
		}
	}
}

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

// Ack deletes delivered records from the outbox. Unknown seqs (already
// acked, dead-lettered) are ignored. Counters are updated in the same
// transaction.
func (s *Store) Ack(seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	sorted := slices.Clone(seqs)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	var removed int
	err := s.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		c, err := readCounters(meta)
		if err != nil {
			return err
		}
		cur := tx.Bucket(bucketOutbox).Cursor()
		var kb [8]byte
		for _, seq := range sorted {
			binary.BigEndian.PutUint64(kb[:], seq)
			k, v := cur.Seek(kb[:])
			if !bytes.Equal(k, kb[:]) {
				continue
			}
			size := int64(len(v)) + 8
			if err := cur.Delete(); err != nil {
				return err
			}
			c.pendingN--
			c.pendingBytes -= size
			removed++
		}
		if removed == 0 {
			return nil
		}
		return c.write(meta)
	})
	if err != nil {
		return fmt.Errorf("store: ack: %w", err)
	}
	if removed > 0 {
		s.freed()
	}
	return nil
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

// PruneDedupe forgets the versions of keys whose content last changed
// before t, and returns how many it forgot. The dedupe index otherwise
// grows with every key ever seen; a pruned key that is fetched again is
// simply buffered (and delivered) once more. Call it with t well before the
// oldest data a poll can return (e.g. now minus the backfill window).
func (s *Store) PruneDedupe(t time.Time) (int, error) {
	const chunk = 10000 // keys per transaction
	total := 0
	var from []byte
	for {
		n, next := 0, []byte(nil)
		err := s.update(func(tx *bolt.Tx) error {
			n, next = 0, nil
			dd := tx.Bucket(bucketDedupe)
			var old [][]byte
			c := dd.Cursor()
			k, v := c.First()
			if from != nil {
				k, v = c.Seek(from)
			}
			for i := 0; k != nil; k, v = c.Next() {
				if i == chunk {
					next = bytes.Clone(k)
					break
				}
				i++
				if at, ok := dedupeTime(v); !ok || at.Before(t) {
					old = append(old, bytes.Clone(k))
				}
			}
			for _, k := range old {
				if err := dd.Delete(k); err != nil {
					return err
				}
			}
			n = len(old)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("store: prune dedupe: %w", err)
		}
		total += n
		if next == nil {
			return total, nil
		}
		from = next
	}
}
