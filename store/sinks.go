package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Sinks: every enabled sink has its own position in the one outbox (SPEC §6).
//
// Records keep one global, strictly increasing seq and are stored once.
// Each sink (a name such as "upstream", "nats", "jurnal") has an entry in
// the sinks bucket with its position and its counters:
//
//   - next: no record at a seq below next is pending for the sink, and the
//     first outbox key at or after next, if any, is (the invariant every
//     write keeps, see normalize);
//   - done: the seqs at or above next the sink no longer needs, as sorted,
//     disjoint ranges. What a sink is done with need not be a prefix: its
//     acks may run ahead of a record it still holds (a loop testing the
//     records after a rejected one), and records appended for other sinks
//     only are done for it without an ack. So one "last acked seq" would
//     not do. Acks come nearly in order, so done is a few ranges at most,
//     and it empties as next moves past it;
//   - its pending records and bytes and its dead letters (O(1) counters,
//     like the outbox's own), and whether it is enabled.
//
// A record is pending for a sink when its seq is at or above next and not
// in done. It leaves the outbox, and its bytes the bound, in the
// transaction in which the last enabled sink that needed it acks or
// dead-letters it; so MaxPendingBytes counts what any sink still needs.
//
// The set of enabled sinks is configuration (SetSinks). A database starts
// with one, DefaultSink ("upstream"), which is also what a database written
// before sinks existed is upgraded to (format 2). A sink enabled later
// starts at the oldest record still buffered: it needs every record in the
// outbox. Disabling a sink releases the records only it still needed; its
// entry stays, disabled, to keep the count of its dead letters. A record
// appended for some sinks only (AppendFor, Requeue of a sink's dead letter)
// is added to the done ranges of every other enabled sink.
//
// A sink's dead letters are kept in the one dead-letter bucket with the
// sink's name as their stage, so dead letters written before sinks existed
// (stage "upstream") are the upstream sink's.

// DefaultSink is the sink a new database starts with, and the one a
// database from before sinks existed is upgraded to: the PWBI HTTP
// upstream. Store.Pending, Store.Ack, Store.DeadLetter and Store.Notify are
// its.
const DefaultSink = StageUpstream

// ErrSinkName is wrapped by the error of SetSinks and AppendFor for a sink
// name that is not valid or not enabled.
var ErrSinkName = errors.New("store: bad sink name")

// maxSinkName bounds a sink's name.
const maxSinkName = 32

// releaseChunk bounds the outbox records one release transaction examines
// after a sink was disabled, so that releasing a large backlog does not
// hold one huge transaction in memory. A variable for tests.
var releaseChunk = 10000

// checkSinkName reports whether name can name a sink: 1 to 32 characters
// from a-z, 0-9, "_" and "-", starting with a letter, and not a dead-letter
// stage of its own ("map", "corrupt").
func checkSinkName(name string) error {
	if name == "" || len(name) > maxSinkName || name[0] < 'a' || name[0] > 'z' {
		return fmt.Errorf("%w: %q", ErrSinkName, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return fmt.Errorf("%w: %q", ErrSinkName, name)
		}
	}
	if name == StageMap || name == StageCorrupt {
		return fmt.Errorf("%w: %q is a dead-letter stage", ErrSinkName, name)
	}
	return nil
}

// seqRange is an inclusive range of seqs.
type seqRange struct{ lo, hi uint64 }

// seqRanges is a sorted list of disjoint, non-adjacent ranges.
type seqRanges []seqRange

// find returns the index of the first range that ends at or after seq.
func (r seqRanges) find(seq uint64) int {
	return sort.Search(len(r), func(i int) bool { return r[i].hi >= seq })
}

func (r seqRanges) contains(seq uint64) bool {
	i := r.find(seq)
	return i < len(r) && r[i].lo <= seq
}

// add puts seq into the ranges. Adding after the last range, the case of
// in-order acks, costs O(1).
func (r *seqRanges) add(seq uint64) {
	rs := *r
	n := len(rs)
	if n == 0 || rs[n-1].hi < seq {
		if n > 0 && rs[n-1].hi+1 == seq {
			rs[n-1].hi = seq
			return
		}
		*r = append(rs, seqRange{seq, seq})
		return
	}
	i := rs.find(seq)
	if rs[i].lo <= seq {
		return // already in
	}
	joinPrev := i > 0 && rs[i-1].hi+1 == seq
	joinNext := seq+1 == rs[i].lo
	switch {
	case joinPrev && joinNext:
		rs[i-1].hi = rs[i].hi
		*r = slices.Delete(rs, i, i+1)
	case joinPrev:
		rs[i-1].hi = seq
	case joinNext:
		rs[i].lo = seq
	default:
		*r = slices.Insert(rs, i, seqRange{seq, seq})
	}
}

// dropBelow forgets the ranges that end before seq.
func (r *seqRanges) dropBelow(seq uint64) {
	if i := r.find(seq); i > 0 {
		*r = (*r)[i:]
	}
}

// sinkState is a sink's entry in the sinks bucket (see above).
type sinkState struct {
	enabled      bool
	next         uint64
	done         seqRanges
	pendingN     int64
	pendingBytes int64
	deadN        int64
}

// needs reports whether seq is pending for the sink (the record exists).
func (st *sinkState) needs(seq uint64) bool {
	return st.enabled && seq >= st.next && !st.done.contains(seq)
}

// normalize restores the invariant after done grew or records were
// deleted: next moves to the first outbox key at or after it that is not
// done, skipping whole done ranges with one seek each, and done forgets the
// ranges below it. With no such key, next moves past the last seq assigned
// (end) and done empties: every seq up to end is then done or gone, and
// gone seqs never come back. Cost: one seek when the sink's acks are in
// order.
func (st *sinkState) normalize(out *bolt.Bucket, end uint64) {
	if !st.enabled {
		return
	}
	c := out.Cursor()
	k, _ := c.Seek(seqKey(st.next))
	for {
		if k == nil {
			st.next, st.done = max(st.next, end+1), nil
			return
		}
		seq, ok := keySeq(k)
		if !ok {
			return // a damaged key: Pending reports it
		}
		st.done.dropBelow(seq)
		if len(st.done) > 0 && st.done[0].lo <= seq {
			skip := st.done[0].hi + 1
			st.done = st.done[1:]
			k, _ = c.Seek(seqKey(skip))
			continue
		}
		st.next = seq
		if len(st.done) == 0 {
			st.done = nil
		}
		return
	}
}

// Sink-state value (key: the sink's name):
//
//	byte     codec version (1)
//	byte     flags: bit 0 = enabled
//	uvarint  next
//	uvarint  pending records, uvarint pending bytes, uvarint dead letters
//	uvarint  number of done ranges, then for each: uvarint lo − (previous
//	         hi + 1) (the first: lo), uvarint hi − lo
const sinkCodecV1 = 1

func (st *sinkState) encode(dst []byte) []byte {
	dst = append(dst, sinkCodecV1)
	var flags byte
	if st.enabled {
		flags |= 1
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, st.next)
	dst = binary.AppendUvarint(dst, uint64(max(st.pendingN, 0)))
	dst = binary.AppendUvarint(dst, uint64(max(st.pendingBytes, 0)))
	dst = binary.AppendUvarint(dst, uint64(max(st.deadN, 0)))
	dst = binary.AppendUvarint(dst, uint64(len(st.done)))
	var prev uint64
	for i, r := range st.done {
		if i == 0 {
			dst = binary.AppendUvarint(dst, r.lo)
		} else {
			dst = binary.AppendUvarint(dst, r.lo-prev)
		}
		dst = binary.AppendUvarint(dst, r.hi-r.lo)
		prev = r.hi + 1
	}
	return dst
}

// maxCounter bounds a decoded counter, so that it stays a positive int64.
const maxCounter = 1 << 62

// decodeSinkState decodes a sink-state value read from a file that may be
// damaged: every length and every range is checked (FuzzDecodeSinkState).
func decodeSinkState(v []byte) (sinkState, error) {
	d := decoder{b: v}
	if c := d.byte(); d.err == nil && c != sinkCodecV1 {
		return sinkState{}, fmt.Errorf("%w: sink codec version %d", errBadValue, c)
	}
	flags := d.byte()
	st := sinkState{enabled: flags&1 != 0, next: d.uvarint()}
	counters := [3]uint64{d.uvarint(), d.uvarint(), d.uvarint()}
	n := d.uvarint()
	if d.err != nil {
		return sinkState{}, d.err
	}
	if flags&^1 != 0 {
		return sinkState{}, fmt.Errorf("%w: sink flags %#x", errBadValue, flags)
	}
	for _, c := range counters {
		if c > maxCounter {
			return sinkState{}, fmt.Errorf("%w: sink counter %d", errBadValue, c)
		}
	}
	st.pendingN, st.pendingBytes, st.deadN = int64(counters[0]), int64(counters[1]), int64(counters[2])
	if n > uint64(len(d.b))/2 { // every range takes at least two bytes
		return sinkState{}, fmt.Errorf("%w: %d done ranges in %d bytes", errBadValue, n, len(d.b))
	}
	if n > 0 {
		st.done = make(seqRanges, 0, n)
	}
	var prev uint64
	for i := uint64(0); i < n; i++ {
		gap, span := d.uvarint(), d.uvarint()
		if d.err != nil {
			return sinkState{}, d.err
		}
		lo := gap
		if i > 0 {
			lo = prev + gap
			if lo < prev {
				return sinkState{}, fmt.Errorf("%w: done range overflows", errBadValue)
			}
		}
		hi := lo + span
		if hi < lo || hi == ^uint64(0) {
			return sinkState{}, fmt.Errorf("%w: done range overflows", errBadValue)
		}
		st.done = append(st.done, seqRange{lo, hi})
		prev = hi + 1
	}
	if len(d.b) != 0 {
		return sinkState{}, fmt.Errorf("%w: %d bytes after the sink state", errBadValue, len(d.b))
	}
	return st, nil
}

// sinkEntry is one sink's state inside a write transaction.
type sinkEntry struct {
	name  string
	st    sinkState
	dirty bool
}

// sinkTable is the sinks bucket loaded into a transaction: every entry,
// enabled or not, in name order. A handful of small values: loading it
// costs next to nothing.
type sinkTable struct {
	b   *bolt.Bucket
	all []*sinkEntry
}

func loadSinks(tx *bolt.Tx) (*sinkTable, error) {
	b := tx.Bucket(bucketSinks)
	if b == nil {
		return nil, fmt.Errorf("%w: sinks bucket missing", ErrCorrupt)
	}
	t := &sinkTable{b: b}
	err := b.ForEach(func(k, v []byte) error {
		st, err := decodeSinkState(v)
		if err != nil {
			return fmt.Errorf("%w: sink %q: %v", ErrCorrupt, k, err)
		}
		t.all = append(t.all, &sinkEntry{name: string(k), st: st})
		return nil
	})
	return t, err
}

// get returns the entry of name, or nil.
func (t *sinkTable) get(name string) *sinkEntry {
	for _, e := range t.all {
		if e.name == name {
			return e
		}
	}
	return nil
}

// enabled returns the enabled entries.
func (t *sinkTable) enabled() []*sinkEntry {
	out := make([]*sinkEntry, 0, len(t.all))
	for _, e := range t.all {
		if e.st.enabled {
			out = append(out, e)
		}
	}
	return out
}

// neededByOthers reports whether an enabled sink other than except still
// needs seq.
func (t *sinkTable) neededByOthers(seq uint64, except *sinkEntry) bool {
	for _, e := range t.all {
		if e != except && e.st.needs(seq) {
			return true
		}
	}
	return false
}

// save writes the entries that changed.
func (t *sinkTable) save() error {
	for _, e := range t.all {
		if !e.dirty {
			continue
		}
		if err := t.b.Put([]byte(e.name), e.st.encode(nil)); err != nil {
			return err
		}
		e.dirty = false
	}
	return nil
}

// add creates the entry of a sink the database has never had (disabled).
func (t *sinkTable) add(name string) *sinkEntry {
	e := &sinkEntry{name: name, dirty: true}
	i, _ := slices.BinarySearchFunc(t.all, name, func(e *sinkEntry, n string) int {
		switch {
		case e.name < n:
			return -1
		case e.name > n:
			return 1
		}
		return 0
	})
	t.all = slices.Insert(t.all, i, e)
	return e
}

// SinkView is one sink's view of the buffer: the records pending for it,
// in seq order, its acks and its dead letters. It implements the delivery
// loop's Source (agent/deliver). A view of a sink that is not enabled has
// nothing pending, ignores acks and has no record to dead-letter. Get one
// with Store.Sink; it is safe for concurrent use.
type SinkView struct {
	s      *Store
	name   string
	notify chan struct{}
}

// Sink returns the view of the named sink; every call with the same name
// returns the same view (so Notify returns the same channel).
func (s *Store) Sink(name string) *SinkView {
	s.viewsMu.Lock()
	defer s.viewsMu.Unlock()
	if v, ok := s.views[name]; ok {
		return v
	}
	if s.views == nil {
		s.views = map[string]*SinkView{}
	}
	v := &SinkView{s: s, name: name, notify: make(chan struct{}, 1)}
	s.views[name] = v
	return v
}

// signalAll signals the Notify channel of every view.
func (s *Store) signalAll() {
	s.viewsMu.Lock()
	defer s.viewsMu.Unlock()
	for _, v := range s.views {
		signal(v.notify)
	}
}

// Name returns the sink's name.
func (v *SinkView) Name() string { return v.name }

// Notify returns a channel (capacity 1) that receives a value, without
// blocking the sender, after records were added to the buffer (by any
// producer, for any sink), after this sink was enabled, and after space was
// freed following an ErrFull. The sink's forwarder waits on it for work. It
// reports what happens after the view was first obtained (the default
// sink's: after Open): read Pending before waiting.
func (v *SinkView) Notify() <-chan struct{} { return v.notify }

// Pending returns up to limit of the oldest records pending for the sink,
// oldest first (strictly increasing Seq). They stay pending until the sink
// acks or dead-letters them. limit <= 0 returns nothing.
//
// An outbox value that cannot be decoded is moved to the dead letters
// (stage "corrupt", raw bytes kept), for every sink, so that it cannot
// block the queue.
func (v *SinkView) Pending(limit int) ([]Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	for {
		var (
			out    []Record
			badSeq uint64
			badErr error
		)
		err := v.s.view(func(tx *bolt.Tx) error {
			st, ok, err := readSink(tx, v.name)
			if err != nil || !ok || !st.enabled {
				return err
			}
			out = make([]Record, 0, min(limit, 1024))
			c := tx.Bucket(bucketOutbox).Cursor()
			ri := 0
			for k, val := c.Seek(seqKey(st.next)); k != nil && len(out) < limit; {
				seq, ok := keySeq(k)
				if !ok {
					return fmt.Errorf("%w: outbox key %x", ErrCorrupt, k)
				}
				for ri < len(st.done) && st.done[ri].hi < seq {
					ri++
				}
				if ri < len(st.done) && st.done[ri].lo <= seq {
					k, val = c.Seek(seqKey(st.done[ri].hi + 1))
					continue
				}
				r, err := decodeRecord(seq, val)
				if err != nil {
					badSeq, badErr = seq, err
					return nil
				}
				out = append(out, r)
				k, val = c.Next()
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("store: pending %s: %w", v.name, err)
		}
		if badErr == nil || len(out) > 0 {
			return out, nil
		}
		if err := v.s.moveCorrupt(badSeq, badErr); err != nil {
			return nil, fmt.Errorf("store: pending %s: %w", v.name, err)
		}
	}
}

// readSink reads one sink's entry in a read transaction.
func readSink(tx *bolt.Tx, name string) (sinkState, bool, error) {
	b := tx.Bucket(bucketSinks)
	if b == nil {
		return sinkState{}, false, fmt.Errorf("%w: sinks bucket missing", ErrCorrupt)
	}
	val := b.Get([]byte(name))
	if val == nil {
		return sinkState{}, false, nil
	}
	st, err := decodeSinkState(val)
	if err != nil {
		return sinkState{}, false, fmt.Errorf("%w: sink %q: %v", ErrCorrupt, name, err)
	}
	return st, true, nil
}

// Ack marks records delivered to the sink. A record leaves the outbox (and
// the bound) once no other enabled sink needs it. Seqs that are not pending
// for the sink (unknown, acked already, dead-lettered, appended for other
// sinks only) are ignored, and so is every ack of a sink that is not
// enabled. Counters are updated in the same transaction.
func (v *SinkView) Ack(seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	sorted := slices.Clone(seqs)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	var removed int
	err := v.s.update(func(tx *bolt.Tx) error {
		removed = 0
		meta, out := tx.Bucket(bucketMeta), tx.Bucket(bucketOutbox)
		sinks, err := loadSinks(tx)
		if err != nil {
			return err
		}
		e := sinks.get(v.name)
		if e == nil || !e.st.enabled {
			return errNoChange
		}
		c, err := readCounters(meta)
		if err != nil {
			return err
		}
		cur := out.Cursor()
		del := cur.Delete // one method value for the loop
		sum := newSumTx(tx, sinks, v.s.log)
		var kb [8]byte
		acked := 0
		for _, seq := range sorted {
			if !e.st.needs(seq) {
				continue
			}
			binary.BigEndian.PutUint64(kb[:], seq)
			k, val := cur.Seek(kb[:])
			if !bytes.Equal(k, kb[:]) {
				continue
			}
			gone, err := sinks.settle(e, sum, &c, seq, int64(len(val))+8, markDelivered, del)
			if err != nil {
				return err
			}
			acked++
			if gone {
				removed++
			}
		}
		if acked == 0 {
			return errNoChange
		}
		if sum != nil {
			if err := sum.flush(); err != nil {
				return err
			}
		}
		e.st.normalize(out, out.Sequence())
		e.dirty = true
		if err := sinks.save(); err != nil {
			return err
		}
		if removed == 0 {
			return nil
		}
		return c.write(meta)
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: ack %s: %w", v.name, err)
	}
	if removed > 0 {
		v.s.freed()
	}
	return nil
}

// settle records that sink e is done with the record seq (size bytes,
// val included): acked (markDelivered) or dead-lettered (markDead). Once no
// other enabled sink needs it, del removes it from the outbox and settle
// drops it from the day summary's pointers and from the outbox counters c;
// it reports whether it did. The caller normalizes e and flushes sum.
func (t *sinkTable) settle(e *sinkEntry, sum *sumTx, c *counters, seq uint64, size int64, mark byte, del func() error) (removed bool, err error) {
	pointer := false
	if sum != nil {
		if pointer, err = sum.marked(seq, e.name, mark); err != nil {
			return false, err
		}
	}
	e.st.done.add(seq)
	e.st.pendingN--
	e.st.pendingBytes -= size
	if t.neededByOthers(seq, e) {
		return false, nil
	}
	if err := del(); err != nil {
		return false, err
	}
	if pointer {
		if err := sum.dropPointer(seq); err != nil {
			return false, err
		}
	}
	c.pendingN--
	c.pendingBytes -= size
	return true, nil
}

// DeadLetter sets the record seq aside as this sink's dead letter (stage:
// the sink's name) with reason (capped at 8 KiB). The record stays in the
// outbox for the other sinks that still need it. A seq that is not pending
// for the sink gives ErrNotFound.
func (v *SinkView) DeadLetter(seq uint64, reason string) error {
	now := v.s.now()
	var removed bool
	err := v.s.update(func(tx *bolt.Tx) error {
		removed = false
		meta, out := tx.Bucket(bucketMeta), tx.Bucket(bucketOutbox)
		sinks, err := loadSinks(tx)
		if err != nil {
			return err
		}
		e := sinks.get(v.name)
		k := seqKey(seq)
		val := out.Get(k)
		if e == nil || val == nil || !e.st.needs(seq) {
			return fmt.Errorf("%w: seq %d for sink %s", ErrNotFound, seq, v.name)
		}
		c, err := readCounters(meta)
		if err != nil {
			return err
		}
		if err := putDead(tx, &c, now, seq, v.name, reason, val); err != nil {
			return err
		}
		e.st.deadN++
		sum := newSumTx(tx, sinks, v.s.log)
		removed, err = sinks.settle(e, sum, &c, seq, int64(len(val))+8, markDead,
			func() error { return out.Delete(k) })
		if err != nil {
			return err
		}
		if sum != nil {
			if err := sum.flush(); err != nil {
				return err
			}
		}
		e.st.normalize(out, out.Sequence())
		e.dirty = true
		if err := sinks.save(); err != nil {
			return err
		}
		return c.write(meta)
	})
	if err != nil {
		return fmt.Errorf("store: dead letter %s: %w", v.name, err)
	}
	if removed {
		v.s.freed()
	}
	return nil
}

// SinkStats are one sink's statistics.
type SinkStats struct {
	Name    string
	Enabled bool
	// Pending and PendingBytes count the records pending for the sink;
	// zero for a sink that is not enabled.
	Pending      int64
	PendingBytes int64
	// DeadLetters counts the sink's dead letters (kept while it is
	// disabled).
	DeadLetters int64
	// OldestPendingAt is the AddedAt of the oldest record pending for the
	// sink; zero if none.
	OldestPendingAt time.Time
}

// Stats returns the sink's statistics; a sink the database does not know
// has zero ones. The cost is a read of its entry and of one record.
func (v *SinkView) Stats() (SinkStats, error) {
	ss := SinkStats{Name: v.name}
	err := v.s.view(func(tx *bolt.Tx) error {
		st, ok, err := readSink(tx, v.name)
		if err != nil || !ok {
			return err
		}
		ss = sinkStats(tx, v.name, &st)
		return nil
	})
	if err != nil {
		return SinkStats{}, fmt.Errorf("store: stats %s: %w", v.name, err)
	}
	return ss, nil
}

// sinkStats reads a sink's statistics: its counters, and the AddedAt of
// the first outbox record at or after next, which the invariant makes the
// oldest pending for it.
func sinkStats(tx *bolt.Tx, name string, st *sinkState) SinkStats {
	ss := SinkStats{Name: name, Enabled: st.enabled, DeadLetters: st.deadN}
	if !st.enabled {
		return ss
	}
	ss.Pending, ss.PendingBytes = st.pendingN, st.pendingBytes
	if k, val := tx.Bucket(bucketOutbox).Cursor().Seek(seqKey(st.next)); k != nil && ss.Pending > 0 {
		ss.OldestPendingAt, _ = recordAddedAt(val)
	}
	return ss
}

// Sinks returns the names of the enabled sinks, sorted.
func (s *Store) Sinks() ([]string, error) {
	var names []string
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSinks)
		if b == nil {
			return fmt.Errorf("%w: sinks bucket missing", ErrCorrupt)
		}
		return b.ForEach(func(k, val []byte) error {
			st, err := decodeSinkState(val)
			if err != nil {
				return fmt.Errorf("%w: sink %q: %v", ErrCorrupt, k, err)
			}
			if st.enabled {
				names = append(names, string(k))
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: sinks: %w", err)
	}
	return names, nil
}

// SetSinks makes names the set of enabled sinks (at least one; see
// checkSinkName for what a name may be). A sink that was not enabled starts
// at the oldest record still buffered: every record in the outbox becomes
// pending for it (records already delivered and removed are not brought
// back; an import for that sink fetches history again). A sink that is no
// longer named is disabled: the records only it still needed are released
// (removed from the outbox and the bound), in transactions of a bounded
// size; its dead letters stay. Enabling and disabling happen in one
// transaction, so a record needed by a sink being disabled and by one being
// enabled is kept. If the release is interrupted (a crash), the next
// SetSinks finishes it. Calling it with the set in force only does that.
func (s *Store) SetSinks(names ...string) error {
	want := slices.Clone(names)
	slices.Sort(want)
	want = slices.Compact(want)
	if len(want) == 0 {
		return fmt.Errorf("%w: at least one sink must be enabled", ErrSinkName)
	}
	for _, n := range want {
		if err := checkSinkName(n); err != nil {
			return err
		}
	}
	s.setMu.Lock()
	defer s.setMu.Unlock()
	var added, removed []string
	var pending int64
	err := s.update(func(tx *bolt.Tx) error {
		added, removed = nil, nil
		meta, out := tx.Bucket(bucketMeta), tx.Bucket(bucketOutbox)
		sinks, err := loadSinks(tx)
		if err != nil {
			return err
		}
		c, err := readCounters(meta)
		if err != nil {
			return err
		}
		pending = c.pendingN
		for _, name := range want {
			e := sinks.get(name)
			if e == nil {
				e = sinks.add(name)
			}
			if e.st.enabled {
				continue
			}
			// Every record in the outbox is pending for it.
			e.st = sinkState{enabled: true, pendingN: c.pendingN, pendingBytes: c.pendingBytes, deadN: e.st.deadN}
			e.st.normalize(out, out.Sequence())
			e.dirty = true
			added = append(added, name)
		}
		from, releasing := getUint64(meta.Get(keyRelease))
		for _, e := range sinks.all {
			if !e.st.enabled || slices.Contains(want, e.name) {
				continue
			}
			if !releasing || e.st.next < from {
				from, releasing = e.st.next, true
			}
			e.st = sinkState{deadN: e.st.deadN}
			e.dirty = true
			removed = append(removed, e.name)
		}
		if len(added) == 0 && len(removed) == 0 {
			return errNoChange
		}
		switch {
		case len(added) > 0:
			// A sink enabled now needs every record in the outbox:
			// nothing is left that no sink needs.
			if err := meta.Delete(keyRelease); err != nil {
				return err
			}
		case len(removed) > 0:
			if err := meta.Put(keyRelease, putUint64(from)); err != nil {
				return err
			}
		}
		return sinks.save()
	})
	if err != nil && !errors.Is(err, errNoChange) {
		return fmt.Errorf("store: set sinks: %w", err)
	}
	for _, name := range added {
		s.log.Info("Sink enabled; it starts at the oldest buffered record", "sink", name, "pending", pending)
	}
	for _, name := range removed {
		s.log.Info("Sink disabled; releasing the records only it needed", "sink", name)
	}
	n, err := s.release()
	if n > 0 {
		s.log.Info("Records released after a sink was disabled", "records", n)
	}
	if err != nil {
		return fmt.Errorf("store: set sinks: %w", err)
	}
	if len(added) > 0 {
		s.signalAll()
	}
	return nil
}

// release removes the outbox records no enabled sink needs, from the seq
// in the meta key keyRelease on, releaseChunk records per transaction, and
// deletes the key when done. It returns how many it removed.
func (s *Store) release() (int, error) {
	total := 0
	for {
		var n int
		var finished bool
		err := s.update(func(tx *bolt.Tx) error {
			n, finished = 0, false
			meta, out := tx.Bucket(bucketMeta), tx.Bucket(bucketOutbox)
			from, ok := getUint64(meta.Get(keyRelease))
			if !ok {
				finished = true
				return errNoChange
			}
			sinks, err := loadSinks(tx)
			if err != nil {
				return err
			}
			c, err := readCounters(meta)
			if err != nil {
				return err
			}
			sum := newSumTx(tx, sinks, s.log)
			cur := out.Cursor()
			k, val := cur.Seek(seqKey(from))
			for examined := 0; k != nil && examined < releaseChunk; examined++ {
				seq, ok := keySeq(k)
				if !ok {
					return fmt.Errorf("%w: outbox key %x", ErrCorrupt, k)
				}
				if sinks.neededByOthers(seq, nil) {
					k, val = cur.Next()
					continue
				}
				size := int64(len(val)) + 8
				if err := cur.Delete(); err != nil {
					return err
				}
				if sum != nil {
					if err := sum.dropPointer(seq); err != nil {
						return err
					}
				}
				c.pendingN--
				c.pendingBytes -= size
				n++
				k, val = cur.Seek(seqKey(seq + 1))
			}
			if sum != nil {
				if err := sum.flush(); err != nil {
					return err
				}
			}
			if s.testHookRelease != nil {
				if err := s.testHookRelease(); err != nil {
					return err
				}
			}
			if k == nil {
				finished = true
				if err := meta.Delete(keyRelease); err != nil {
					return err
				}
			} else if err := meta.Put(keyRelease, putUint64(mustKeySeq(k))); err != nil {
				return err
			}
			return c.write(meta)
		})
		if err != nil && !errors.Is(err, errNoChange) {
			return total, fmt.Errorf("release records: %w", err)
		}
		total += n
		if n > 0 {
			s.freed()
		}
		if finished {
			return total, nil
		}
	}
}

func mustKeySeq(k []byte) uint64 {
	seq, _ := keySeq(k)
	return seq
}

// normalizeAll restores the invariant of every enabled sink (after
// records were deleted underneath them).
func (t *sinkTable) normalizeAll(out *bolt.Bucket) {
	for _, e := range t.all {
		if e.st.enabled {
			e.st.normalize(out, out.Sequence())
			e.dirty = true
		}
	}
}

// migrateSinks upgrades a database of format 1 (before sinks): every
// pending record becomes pending for DefaultSink, its dead letters of stage
// "upstream" become that sink's, and the format moves to 2. It runs in
// Open's transaction, so a crash leaves format 1 for the next Open.
func migrateSinks(tx *bolt.Tx) (sinkState, error) {
	meta := tx.Bucket(bucketMeta)
	b, err := tx.CreateBucketIfNotExists(bucketSinks)
	if err != nil {
		return sinkState{}, err
	}
	c, err := readCounters(meta)
	if err != nil {
		return sinkState{}, err
	}
	var dead int64
	err = tx.Bucket(bucketDead).ForEach(func(_, v []byte) error {
		if _, _, stage, _, _, err := deadHeader(v); err == nil && string(stage) == DefaultSink {
			dead++
		}
		return nil
	})
	if err != nil {
		return sinkState{}, err
	}
	out := tx.Bucket(bucketOutbox)
	st := sinkState{enabled: true, pendingN: c.pendingN, pendingBytes: c.pendingBytes, deadN: dead}
	st.normalize(out, out.Sequence())
	if err := b.Put([]byte(DefaultSink), st.encode(nil)); err != nil {
		return sinkState{}, err
	}
	return st, meta.Put(keyFormat, putUint64(formatVersion))
}
