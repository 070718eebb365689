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

	bolt "go.etcd.io/bbolt"
)

// Dead-letter stages.
const (
	// StageUpstream: the PWBI HTTP upstream rejected the record. A sink's
	// dead letters have the sink's name as their stage; this is the name
	// of DefaultSink, whose dead letters predate the other sinks.
	StageUpstream = "upstream"
	// StageMap: source data that could not be mapped; never requeueable.
	StageMap = "map"
	// StageCorrupt: an outbox value that could not be decoded; its raw
	// bytes are kept as Data. Never requeueable.
	StageCorrupt = "corrupt"
)

// AppendResult tells what Append did.
type AppendResult struct {
	Appended  int    // records added to the outbox
	Unchanged int    // inputs skipped: same key and version as last time
	FirstSeq  uint64 // seq of the first appended record; 0 if none
	LastSeq   uint64 // seq of the last appended record; 0 if none
	// Refetched counts the appended records (AppendFor only) that are
	// for the named sinks alone: their version was buffered before, so
	// the other sinks have them.
	Refetched int
	// Changed counts the appended records whose key was buffered before
	// with another version (an edited, voided or refunded sale); the
	// others (Appended - Changed - Refetched) are new keys.
	Changed int
}

// errNoChange rolls back a write transaction that changed nothing.
var errNoChange = errors.New("no change")

type appendItem struct {
	key, val, dd []byte
	ver          [versionLen]byte
	sale         *saleFacts // nil: not in the day summary
	// ddFacts, empty, has room for the dedupe value with the sale's
	// facts (summary_tx.go).
	ddFacts []byte
}

// Append adds to the outbox, in input order and each with the next seq, the
// inputs whose key is new or whose version (Version(Data)) differs from the
// last one buffered for that key; unchanged inputs are skipped. Every
// enabled sink needs the new records. If st is not nil it is stored too.
// All of it happens in one transaction: on any error nothing is written.
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
	return s.appendTo(nil, in, st)
}

// AppendFor is Append for records fetched again for some sinks only
// (`pwbi-agent import --since D --sink NAME`, SPEC §6): an input whose
// version the dedupe index already holds — the other sinks had it — is
// appended all the same, for the named sinks alone (Refetched); an input
// that is new or changed is new to every sink and is appended for all of
// them, as Append does. The named sinks must be enabled (else the error
// wraps ErrSinkName and nothing is written). The bound, ErrFull and st
// work as in Append.
func (s *Store) AppendFor(sinks []string, in []Input, st *SourceState) (AppendResult, error) {
	if len(sinks) == 0 {
		return AppendResult{}, fmt.Errorf("%w: AppendFor without a sink", ErrSinkName)
	}
	return s.appendTo(slices.Clone(sinks), in, st)
}

// appendTo is Append (targets nil) and AppendFor.
func (s *Store) appendTo(targets []string, in []Input, st *SourceState) (AppendResult, error) {
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
		res, added = AppendResult{}, 0
		if err := s.appendItems(tx, items, targets, &res, &added); err != nil {
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
		s.signalAll()
	}
	return res, nil
}

// appendItems appends the prepared items that are new or changed inside tx
// — and with targets (AppendFor), the unchanged ones too, for those sinks
// only — updating the dedupe index and the counters, the outbox's and every
// enabled sink's; it returns ErrFull (the caller rolls back) when the bound
// would be exceeded.
func (s *Store) appendItems(tx *bolt.Tx, items []appendItem, targets []string, res *AppendResult, added *int64) error {
	if len(items) == 0 {
		return nil
	}
	meta, out, dd := tx.Bucket(bucketMeta), tx.Bucket(bucketOutbox), tx.Bucket(bucketDedupe)
	out.FillPercent = 1.0 // keys only ever grow: keep pages full
	c, err := readCounters(meta)
	if err != nil {
		return err
	}
	sinks, err := loadSinks(tx)
	if err != nil {
		return err
	}
	for _, name := range targets {
		if e := sinks.get(name); e == nil || !e.st.enabled {
			return fmt.Errorf("%w: sink %q is not enabled", ErrSinkName, name)
		}
	}
	seq := out.Sequence()
	limit := s.max.Load()
	keys := make([]byte, 0, 8*len(items))
	var sum *sumTx // the day summary, when an item has a Sale
	var (
		allN, allBytes int64    // records for every sink
		forN, forBytes int64    // records for the targets only
		forSeqs        []uint64 // their seqs
		again          map[string]bool
	)
	for i := range items {
		it := &items[i]
		unchanged := false
		old := dd.Get(it.key)
		if len(old) >= versionLen {
			unchanged = bytes.Equal(old[:versionLen], it.ver[:])
		}
		if unchanged && (targets == nil || again[string(it.key)]) {
			res.Unchanged++
			continue
		}
		size := int64(len(it.val)) + 8
		*added += size
		if limit > 0 && c.pendingN > 0 && c.pendingBytes+*added > limit {
			return ErrFull
		}
		seq++
		keys = putSeqKey(keys, seq)
		if err := out.Put(keys[len(keys)-8:], it.val); err != nil {
			return err
		}
		if unchanged {
			// Fetched again for the targets: the others have it.
			if again == nil {
				again = map[string]bool{}
			}
			again[string(it.key)] = true
			forN, forBytes = forN+1, forBytes+size
			forSeqs = append(forSeqs, seq)
			res.Refetched++
			if factsBytes(old) != nil {
				// The sale's counted version, again: its acks count
				// as the origin's (summary.go).
				if sum == nil {
					sum = newSumTx(tx, sinks, s.log)
				}
				if sum != nil {
					if err := sum.pointTo(seq, old, it.ver[:]); err != nil {
						return err
					}
				}
			}
		} else {
			if len(old) >= versionLen {
				res.Changed++
			}
			ddv := it.dd
			if it.sale != nil {
				if sum == nil {
					sum = newSumTx(tx, sinks, s.log)
				}
				if sum != nil {
					var err error
					if ddv, err = sum.appended(seq, it, old); err != nil {
						return err
					}
				}
			}
			if err := dd.Put(it.key, ddv); err != nil {
				return err
			}
			allN, allBytes = allN+1, allBytes+size
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
	if sum != nil {
		if err := sum.flush(); err != nil {
			return err
		}
	}
	if err := s.reserveSeq(seq); err != nil {
		return err
	}
	if err := out.SetSequence(seq); err != nil {
		return err
	}
	for _, e := range sinks.enabled() {
		e.st.pendingN += allN
		e.st.pendingBytes += allBytes
		if len(forSeqs) > 0 {
			if slices.Contains(targets, e.name) {
				e.st.pendingN += forN
				e.st.pendingBytes += forBytes
			} else {
				for _, q := range forSeqs {
					e.st.done.add(q)
				}
				e.st.normalize(out, seq)
			}
		}
		e.dirty = true
	}
	if err := sinks.save(); err != nil {
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
		if x.Sale != nil {
			f, err := parseSale(x.Sale)
			if err != nil {
				return nil, fmt.Errorf("store: append: input %d (%s): %w", i, x.Key, err)
			}
			items[i].sale = f
		}
		offs[i+1] = offs[i] + len(x.Key) + recordSizeMax(x.Kind, x.Key, x.Data) + versionLen + binary.MaxVarintLen64
		if f := items[i].sale; f != nil {
			offs[i+1] += versionLen + binary.MaxVarintLen64 + 1 + f.sizeMax()
		}
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
			b = appendDedupe(b, &it.ver, now)
			it.dd = b[:len(b):len(b)]
			if it.sale != nil {
				it.ddFacts = b[len(b):len(b)]
			}
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
			s.signalAll()
		}
	}
}

// PruneDedupe forgets the versions of keys whose content last changed
// before t, and returns how many it forgot. The dedupe index otherwise
// grows with every key ever seen; a pruned key that is fetched again is
// simply buffered (and delivered) once more. Call it with t well before the
// oldest data a poll can return (e.g. now minus the backfill window). The
// day summary's facts of a key (summary.go) are forgotten with it: a sale
// that had not changed since before t, fetched again, would be counted
// twice in its day, but no poll or import reaches back that far.
func (s *Store) PruneDedupe(t time.Time) (int, error) {
	const chunk = 10000 // keys per transaction
	total := 0
	var from []byte
	for {
		n, next := 0, []byte(nil)
		err := s.update(func(tx *bolt.Tx) error {
			n, next = 0, nil
			dd := tx.Bucket(bucketDedupe)
			sinks, err := loadSinks(tx)
			if err != nil {
				return err
			}
			sum := newSumTx(tx, sinks, s.log)
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
					if sum != nil {
						if err := sum.pruned(v); err != nil {
							return err
						}
					}
				}
			}
			if sum != nil {
				if err := sum.flush(); err != nil {
					return err
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
