package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"

	bolt "go.etcd.io/bbolt"
)

// The day summary's bookkeeping inside a write transaction (summary.go):
// the seq runs, the sinks' marks and the day aggregates, each read once
// and written once per transaction.

// Seq runs (bucket summary_seqs, key: seq/64 as 8 bytes big-endian): what
// the summary knows of the records of a run of 64 seqs, so that an Append
// writes and an Ack reads one value per 64 records, not one per record:
//
//	uvarint  number of days, then each: uvarint len(outlet), outlet,
//	         uvarint len(day), day
//	then per seq of the run it knows, in increasing order:
//	byte     seq%64
//	uvarint  2×i: the origin of a counted version, of the run's day i
//	         (the record appended at this seq is the key's current
//	         version); or 2×origin+1: a record that carries the version
//	         of origin again (a Requeue of a sink's dead letter, an
//	         AppendFor of an unchanged version)
//
// A run that knows no seq has no value.
//
// In memory (seqSlot) a seq is nothing, an origin or a pointer.
const (
	seqOrigin  = 'o'
	seqPointer = 'p'
)

// seqSlot is what a run knows of one seq.
type seqSlot struct {
	kind   byte   // 0 (nothing), seqOrigin or seqPointer
	ref    int    // seqOrigin: index in the run's refs
	origin uint64 // seqPointer: the origin it stands for
}

// dayRef is an outlet's day in a run; agg caches its aggregate in a
// transaction.
type dayRef struct {
	outlet, day string
	agg         *dayAgg
}

// seqRun is a run of 64 seqs inside a transaction.
type seqRun struct {
	refs  []dayRef
	slots [64]seqSlot
	dirty bool
}

// ref returns the index of outlet's day in the run's refs, adding it.
func (r *seqRun) ref(outlet, day string) int {
	for i := range r.refs {
		if r.refs[i].outlet == outlet && r.refs[i].day == day {
			return i
		}
	}
	r.refs = append(r.refs, dayRef{outlet: outlet, day: day})
	return len(r.refs) - 1
}

// encode returns the run's value; nil if it knows no seq. Days no seq
// refers to any more are left out.
func (r *seqRun) encode() []byte {
	idx := make([]int, len(r.refs))
	n := 0
	for i := range r.slots {
		if sl := &r.slots[i]; sl.kind == seqOrigin && idx[sl.ref] == 0 {
			n++
			idx[sl.ref] = n // 1-based until written
		}
	}
	order := make([]int, n) // refs in the order of their new index
	for i, j := range idx {
		if j > 0 {
			order[j-1] = i
		}
	}
	dst := binary.AppendUvarint(nil, uint64(n))
	for _, i := range order {
		dst = binary.AppendUvarint(dst, uint64(len(r.refs[i].outlet)))
		dst = append(dst, r.refs[i].outlet...)
		dst = binary.AppendUvarint(dst, uint64(len(r.refs[i].day)))
		dst = append(dst, r.refs[i].day...)
	}
	used := n > 0
	for i := range r.slots {
		switch sl := &r.slots[i]; sl.kind {
		case seqOrigin:
			dst = append(dst, byte(i))
			dst = binary.AppendUvarint(dst, 2*uint64(idx[sl.ref]-1))
		case seqPointer:
			dst = append(dst, byte(i))
			dst = binary.AppendUvarint(dst, 2*sl.origin+1)
			used = true
		}
	}
	if !used {
		return nil
	}
	return dst
}

// decodeSeqRun decodes a run read from a file that may be damaged
// (FuzzDecodeSeqRun).
func decodeSeqRun(v []byte) (*seqRun, error) {
	d := decoder{b: v}
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b))/2 { // a day takes two bytes at least
		return nil, errBadValue
	}
	r := &seqRun{refs: make([]dayRef, n)}
	for i := range r.refs {
		r.refs[i] = dayRef{outlet: string(d.bytes()), day: string(d.bytes())}
	}
	next := 0
	for d.err == nil && len(d.b) > 0 {
		i := int(d.byte())
		x := d.uvarint()
		if d.err != nil {
			break
		}
		if i < next || i >= len(r.slots) {
			return nil, fmt.Errorf("%w: seq run slot %d", errBadValue, i)
		}
		next = i + 1
		if x%2 == 1 {
			r.slots[i] = seqSlot{kind: seqPointer, origin: x / 2}
			continue
		}
		if x/2 >= n {
			return nil, fmt.Errorf("%w: seq run day %d of %d", errBadValue, x/2, n)
		}
		r.slots[i] = seqSlot{kind: seqOrigin, ref: int(x / 2)}
	}
	if d.err != nil {
		return nil, d.err
	}
	return r, nil
}

// Marks (bucket summary_marks, key: the sink's name, 0, then origin/64 as
// 8 bytes big-endian): two little-endian uint64 bitmaps, the origins of the
// run of 64 that the sink delivered (acked) and that it dead-lettered. Bit
// origin%64. A run with no bit set has no value.
const marksLen = 16

// sinkMarks is a run of a sink's marks inside a transaction.
type sinkMarks struct {
	delivered, dead uint64
	dirty           bool
}

// state returns the mark of origin: markDelivered, markDead or 0.
func (m *sinkMarks) state(origin uint64) byte {
	bit := uint64(1) << (origin % 64)
	switch {
	case m.delivered&bit != 0:
		return markDelivered
	case m.dead&bit != 0:
		return markDead
	}
	return 0
}

// set makes state (markDelivered, markDead or 0) the mark of origin.
func (m *sinkMarks) set(origin uint64, state byte) {
	bit := uint64(1) << (origin % 64)
	m.delivered &^= bit
	m.dead &^= bit
	switch state {
	case markDelivered:
		m.delivered |= bit
	case markDead:
		m.dead |= bit
	}
	m.dirty = true
}

// What a sink did with the counted version of a record.
const (
	markDelivered byte = 1
	markDead      byte = 2
)

// marksKey appends the marks key of origin for sink to dst.
func marksKey(dst []byte, sink string, origin uint64) []byte {
	dst = append(dst, sink...)
	dst = append(dst, 0)
	return binary.BigEndian.AppendUint64(dst, origin/64)
}

// sumTx updates the summary inside one write transaction. Facts are
// written with their dedupe entry at once; day aggregates, seq runs and
// marks are kept in memory and written once by flush. A value that does
// not decode never fails the transaction (summary_damage.go).
type sumTx struct {
	tx                      *bolt.Tx
	root, days, seqs, marks *bolt.Bucket
	// out and dd are the outbox and the dedupe index: a damaged seq run
	// is rebuilt from them.
	out, dd *bolt.Bucket
	log     *slog.Logger
	// anyUpTo, if set, is the newest day damage of an unknown day may
	// have touched.
	anyUpTo string
	// sinks has every sink the database knows, enabled or not: a replaced
	// version's marks are looked up for each.
	sinks *sinkTable

	aggs     map[string]*dayAgg
	seqRuns  map[uint64]*seqRun
	markRuns map[string]*sinkMarks
	// The aggregate and the runs used last (acks come in seq order, and a
	// page's records are mostly of one outlet and day); kbuf builds keys.
	lastAggKey  []byte // day, 0, outlet
	lastAgg     *dayAgg
	lastSeqIdx  uint64 // seq/64
	lastSeqRun  *seqRun
	lastRunSink string
	lastRunIdx  uint64 // origin/64
	lastRun     *sinkMarks
	kbuf        []byte
	currency    string
}

// newSumTx returns nil when the database has no summary bucket (it always
// has one after Open). sinks is the transaction's sink table; log receives
// the damage found (nil: none logged).
func newSumTx(tx *bolt.Tx, sinks *sinkTable, log *slog.Logger) *sumTx {
	root := tx.Bucket(bucketSummary)
	if root == nil {
		return nil
	}
	t := &sumTx{tx: tx, root: root, sinks: sinks, log: log,
		days: tx.Bucket(bucketSumDays), seqs: tx.Bucket(bucketSumSeqs), marks: tx.Bucket(bucketSumMarks),
		out: tx.Bucket(bucketOutbox), dd: tx.Bucket(bucketDedupe)}
	if t.days == nil || t.seqs == nil || t.marks == nil || t.out == nil || t.dd == nil {
		return nil // Open creates them: only a damaged database lacks them
	}
	return t
}

// agg returns the aggregate of outlet's day, read on first use; one that
// does not decode starts afresh, damaged.
func agg[T string | []byte](t *sumTx, day, outlet T) *dayAgg {
	if k := t.lastAggKey; t.lastAgg != nil && len(k) == len(day)+1+len(outlet) &&
		string(k[:len(day)]) == string(day) && k[len(day)] == 0 && string(k[len(day)+1:]) == string(outlet) {
		return t.lastAgg
	}
	t.kbuf = append(append(append(t.kbuf[:0], day...), 0), outlet...)
	a := t.aggs[string(t.kbuf)]
	if a == nil {
		a = &dayAgg{}
		if v := t.days.Get(t.kbuf); v != nil {
			var err error
			if a, err = decodeDayAgg(v); err != nil {
				a = &dayAgg{damage: damageDay}
			}
		}
		if t.aggs == nil {
			t.aggs = map[string]*dayAgg{}
		}
		t.aggs[string(t.kbuf)] = a
	}
	t.lastAggKey, t.lastAgg = append(t.lastAggKey[:0], t.kbuf...), a
	return a
}

// refAgg returns the aggregate of a run's day.
func (t *sumTx) refAgg(r *dayRef) *dayAgg {
	if r.agg == nil {
		r.agg = agg(t, r.day, r.outlet)
	}
	return r.agg
}

// seqRun returns the run of seq, read on first use; one that does not
// decode is rebuilt from the buffer.
func (t *sumTx) seqRun(seq uint64) (*seqRun, error) {
	idx := seq / 64
	if t.lastSeqRun != nil && t.lastSeqIdx == idx {
		return t.lastSeqRun, nil
	}
	r := t.seqRuns[idx]
	if r == nil {
		if t.seqRuns == nil {
			t.seqRuns = map[uint64]*seqRun{}
		}
		var kb [8]byte
		binary.BigEndian.PutUint64(kb[:], idx)
		var damaged bool
		r = &seqRun{}
		if v := t.seqs.Get(kb[:]); v != nil {
			if dr, err := decodeSeqRun(v); err == nil {
				r = dr
			} else {
				damaged = true
			}
		}
		// In the map before a rebuild, which may look up origins of
		// this same run.
		t.seqRuns[idx] = r
		if damaged {
			if err := t.rebuild(idx, r); err != nil {
				return nil, err
			}
		}
	}
	t.lastSeqIdx, t.lastSeqRun = idx, r
	return r, nil
}

// run returns sink's run of marks holding origin, read on first use.
func (t *sumTx) run(sink string, origin uint64) (*sinkMarks, error) {
	if t.lastRun != nil && t.lastRunIdx == origin/64 && t.lastRunSink == sink {
		return t.lastRun, nil
	}
	t.kbuf = marksKey(t.kbuf[:0], sink, origin)
	m := t.markRuns[string(t.kbuf)]
	if m == nil {
		m = &sinkMarks{}
		lost := false
		if v := t.marks.Get(t.kbuf); v != nil {
			var ok bool
			if *m, ok = marksValue(v); !ok {
				// Started afresh (and rewritten: deleted, being empty).
				m.dirty, lost = true, true
			}
		}
		if t.markRuns == nil {
			t.markRuns = map[string]*sinkMarks{}
		}
		t.markRuns[string(t.kbuf)] = m
		if lost {
			if err := t.marksLost(sink, origin/64); err != nil {
				return nil, err
			}
		}
	}
	t.lastRunSink, t.lastRunIdx, t.lastRun = sink, origin/64, m
	return m, nil
}

// appended records a new version of a record, the prepared it, appended
// at seq: it returns the dedupe value to store for it, its head (version
// and change time) followed by its facts. old is the key's previous
// dedupe value (nil if none): the contribution of the version its facts
// describe — the sale and each sink's mark — is taken out, and what the
// summary knew of that version's origin is forgotten.
//
// Facts of old that do not decode cannot be taken out: lostFacts marks
// their day.
func (t *sumTx) appended(seq uint64, it *appendItem, old []byte) ([]byte, error) {
	if fb := factsBytes(old); fb != nil {
		of, err := decodeFacts(fb)
		if err != nil {
			if err := t.lostFacts(fb, true); err != nil {
				return nil, err
			}
		} else {
			a := agg(t, of.day, of.outlet)
			if err := a.add(of, -1); err != nil {
				a.damage |= damageFacts // its money does not parse
			}
			if err := t.forget(of.origin, a); err != nil {
				return nil, err
			}
		}
	}
	nf := *it.sale
	nf.ver, nf.origin = it.ver, seq
	a := agg(t, nf.day, nf.outlet)
	if err := a.add(&nf, 1); err != nil {
		return nil, err
	}
	if nf.currency != "" {
		t.currency = nf.currency
	}
	r, err := t.seqRun(seq)
	if err != nil {
		return nil, err
	}
	i := r.ref(nf.outlet, nf.day)
	r.refs[i].agg = a
	r.slots[seq%64] = seqSlot{kind: seqOrigin, ref: i}
	r.dirty = true
	v := append(it.ddFacts, it.dd...)
	v = append(v, factsTag)
	return nf.encode(v), nil
}

// forget clears every sink's mark of origin and what the seq run knows of
// it (its version was replaced or pruned). If a is not nil, the marks are
// taken out of it.
func (t *sumTx) forget(origin uint64, a *dayAgg) error {
	for _, e := range t.sinks.all {
		m, err := t.run(e.name, origin)
		if err != nil {
			return err
		}
		if st := m.state(origin); st != 0 {
			if a != nil {
				a.mark(e.name, st, -1)
			}
			m.set(origin, 0)
		}
	}
	return t.clear(origin, seqOrigin)
}

// clear forgets seq if the run knows it as kind.
func (t *sumTx) clear(seq uint64, kind byte) error {
	r, err := t.seqRun(seq)
	if err != nil {
		return err
	}
	if sl := &r.slots[seq%64]; sl.kind == kind {
		*sl = seqSlot{}
		r.dirty = true
	}
	return nil
}

// pointTo records that the record appended at seq carries the version ver
// of the key whose dedupe value is dd, again (AppendFor of an unchanged
// version, Requeue): if that is the counted version, an ack of seq counts
// as one of its origin. Nothing if the key has no facts or they describe
// another version.
func (t *sumTx) pointTo(seq uint64, dd, ver []byte) error {
	fb := factsBytes(dd)
	if fb == nil {
		return nil
	}
	fver, origin, err := rawFacts(fb)
	if err != nil {
		// Not known to be the counted version: its acks will not
		// count.
		return t.lostFacts(fb, false)
	}
	if !bytes.Equal(fver, ver) {
		return nil
	}
	r, err := t.seqRun(seq)
	if err != nil {
		return err
	}
	r.slots[seq%64] = seqSlot{kind: seqPointer, origin: origin}
	r.dirty = true
	return nil
}

// marked records that sink acked (markDelivered) or dead-lettered
// (markDead) the record at seq. Records without facts and outdated
// versions change nothing, nor does a second ack. pointer reports that
// seq stands for another origin: the caller forgets it (dropPointer) when
// the record leaves the outbox.
func (t *sumTx) marked(seq uint64, sink string, state byte) (pointer bool, err error) {
	// The hot path of every ack: acks come in seq order, so this is one
	// read of a seq run per 64 records, and the rest happens in memory.
	r, err := t.seqRun(seq)
	if err != nil {
		return false, err
	}
	sl := r.slots[seq%64]
	origin := seq
	switch sl.kind {
	case 0:
		return false, nil
	case seqPointer:
		pointer, origin = true, sl.origin
		if r, err = t.seqRun(origin); err != nil {
			return true, err
		}
		if sl = r.slots[origin%64]; sl.kind != seqOrigin {
			if !t.heal(seq, origin, r) {
				return true, nil // its version was replaced since
			}
			sl = r.slots[origin%64]
		}
	}
	m, err := t.run(sink, origin)
	if err != nil {
		return pointer, err
	}
	prev := m.state(origin)
	if prev == state {
		return pointer, nil
	}
	a := t.refAgg(&r.refs[sl.ref])
	if prev != 0 {
		a.mark(sink, prev, -1)
	}
	a.mark(sink, state, 1)
	m.set(origin, state)
	return pointer, nil
}

// dropPointer forgets seq if it is a pointer: its record left the outbox
// (acked or dead-lettered by the last sink that needed it, released,
// corrupt).
func (t *sumTx) dropPointer(seq uint64) error { return t.clear(seq, seqPointer) }

// pruned forgets the seq and the marks of the facts the dedupe value dd
// carries (PruneDedupe deletes the key); the day aggregates keep them.
func (t *sumTx) pruned(dd []byte) error {
	fb := factsBytes(dd)
	if fb == nil {
		return nil
	}
	_, origin, err := rawFacts(fb)
	if err != nil {
		return nil // damaged facts, deleted with their key
	}
	return t.forget(origin, nil)
}

// flush writes the changed day aggregates, seq runs and marks, and the
// markers of the days damage made incomplete.
func (t *sumTx) flush() error {
	if err := t.note(); err != nil {
		return err
	}
	for k, a := range t.aggs {
		if err := t.days.Put([]byte(k), a.encode(nil)); err != nil {
			return err
		}
	}
	for idx, r := range t.seqRuns {
		if !r.dirty {
			continue
		}
		k := binary.BigEndian.AppendUint64(nil, idx)
		var err error
		if v := r.encode(); v == nil {
			err = t.seqs.Delete(k)
		} else {
			err = t.seqs.Put(k, v)
		}
		if err != nil {
			return err
		}
	}
	for k, m := range t.markRuns {
		if !m.dirty {
			continue
		}
		var err error
		if m.delivered|m.dead == 0 {
			err = t.marks.Delete([]byte(k))
		} else {
			v := make([]byte, marksLen)
			binary.LittleEndian.PutUint64(v, m.delivered)
			binary.LittleEndian.PutUint64(v[8:], m.dead)
			err = t.marks.Put([]byte(k), v)
		}
		if err != nil {
			return err
		}
	}
	t.aggs, t.seqRuns, t.markRuns = nil, nil, nil
	t.lastAgg, t.lastSeqRun, t.lastRun = nil, nil, nil
	t.anyUpTo = ""
	if t.currency != "" && string(t.root.Get(keySumCurrency)) != t.currency {
		if err := t.root.Put(keySumCurrency, []byte(t.currency)); err != nil {
			return err
		}
	}
	return nil
}
