package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A damaged day summary never stops the buffer (summary.go). The summary is
// derived data, kept in the transactions that append, ack, dead-letter,
// requeue and prune records; a value of it that does not decode (a bug of
// an older version's encoder, a bit flip) must not fail them: losing or
// stalling a sale is far worse than a wrong count on the dashboard. So,
// inside a write transaction:
//
//   - a day aggregate that does not decode starts afresh (zero), and the
//     outlet's day is marked incomplete;
//   - a count never goes below zero: taking out what a day does not have
//     leaves 0 and marks the day incomplete;
//   - a sink's marks run of the wrong length starts afresh (nothing
//     delivered, nothing dead-lettered), and the days of the run's
//     origins (their seq run says which) are marked incomplete: their
//     deliveries stay counted, but a later change of those sales can no
//     longer take them out;
//   - facts that do not decode cannot be taken out of their day: the day
//     is found through the facts' origin (its seq run), else through the
//     outlet and day at the head of the facts if those still read as
//     such, and marked incomplete; if neither tells, every day up to the
//     newest one the summary had then is marked (the "*" marker: the
//     sale was counted in one of them, and days after it are exact);
//   - a seq run that does not decode is rebuilt from the buffer: each
//     record of its 64 seqs still in the outbox is an origin (its key's
//     facts name that version and this seq), a pointer (they name that
//     version and an earlier origin) or nothing. Origins whose records
//     have left the outbox are restored when a record pointing to them is
//     acked (heal). Nothing is marked: the figures stay exact. (Not
//     covered: a sink's marks run damaged after its seq run was rebuilt;
//     the origins the rebuild could not see are then not marked.)
//
// Every such damage is logged once, when the transaction that starts the
// value afresh commits (after that the value decodes), with a constant
// message and what was damaged. Reading the summary (Summary) shows a day
// whose aggregate does not decode as zero and incomplete.
//
// The markers are keys of the "summary" bucket: "incomplete" 0 day 0
// outlet -> the damage bits seen (one byte), and "incomplete" 0 "*" -> the
// newest day (YYYY-MM-DD) the unplaced damage may have touched. A database
// without them reads as it did; an older agent ignores them. They stay as
// long as the day aggregates do (forever): a figure once doubtful stays
// doubtful. Compaction copies them.

// What damaged a day (the bits of a marker).
const (
	damageDay      byte = 1 << iota // its aggregate did not decode
	damageNegative                  // a count would have gone below zero
	damageMarks                     // a sink's marks of its sales were lost
	damageFacts                     // a sale's facts did not decode
)

// damageNames names the bits for the log.
var damageNames = [...]string{"day aggregate", "count below zero", "sink marks", "sale facts"}

func damageString(bits byte) string {
	var names []string
	for i, n := range damageNames {
		if bits&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}

var (
	keyIncomplete    = []byte("incomplete\x00") // then day 0 outlet
	keyIncompleteAny = []byte("incomplete\x00*")
)

// incompleteDays returns the outlets' days of from..to marked incomplete
// (day 0 outlet), and the newest day of the "*" marker ("" if none).
func incompleteDays(root *bolt.Bucket, from, to string) (map[string]bool, string) {
	marked := map[string]bool{}
	c := root.Cursor()
	start := append(bytes.Clone(keyIncomplete), from...)
	end := append(bytes.Clone(keyIncomplete), to+"\x01"...)
	for k, _ := c.Seek(start); k != nil && bytes.Compare(k, end) < 0; k, _ = c.Next() {
		if rest := k[len(keyIncomplete):]; bytes.IndexByte(rest, 0) > 0 {
			marked[string(rest)] = true
		}
	}
	upTo := ""
	if v := root.Get(keyIncompleteAny); len(v) == len(time.DateOnly) {
		upTo = string(v)
	}
	return marked, upTo
}

// note records the damage of the transaction's days as their markers and
// logs what is new, once the transaction commits. flush calls it.
func (t *sumTx) note() error {
	for k, a := range t.aggs {
		if a.damage == 0 {
			continue
		}
		mk := append(bytes.Clone(keyIncomplete), k...)
		var had byte
		if v := t.root.Get(mk); len(v) == 1 {
			had = v[0]
		}
		if a.damage&^had == 0 {
			continue
		}
		if err := t.root.Put(mk, []byte{had | a.damage}); err != nil {
			return err
		}
		day, outlet, _ := strings.Cut(k, "\x00")
		t.logged("marked incomplete", "day", day, "outlet", outlet, "what", damageString(a.damage&^had))
	}
	if t.anyUpTo != "" {
		if v := t.root.Get(keyIncompleteAny); len(v) != len(time.DateOnly) || string(v) < t.anyUpTo {
			if err := t.root.Put(keyIncompleteAny, []byte(t.anyUpTo)); err != nil {
				return err
			}
			t.logged("marked incomplete", "day", "unknown", "up_to", t.anyUpTo, "what", damageString(damageFacts))
		}
	}
	return nil
}

// logged logs a damage, and what was done about it, when the transaction
// commits (if it does not, the next one finds the damage again).
func (t *sumTx) logged(action string, args ...any) {
	if t.log == nil {
		return
	}
	log := t.log
	args = append(args, "action", action)
	t.tx.OnCommit(func() {
		log.Warn("Day summary damaged; the buffered sales are unaffected", args...)
	})
}

// unplaced records damage whose day cannot be told: every day up to the
// newest one the summary has may be off.
func (t *sumTx) unplaced() {
	newest := ""
	if k, _ := t.days.Cursor().Last(); k != nil {
		if day, _, ok := bytes.Cut(k, []byte{0}); ok {
			newest = string(day)
		}
	}
	for k := range t.aggs {
		if day, _, _ := strings.Cut(k, "\x00"); day > newest {
			newest = day
		}
	}
	if newest > t.anyUpTo {
		t.anyUpTo = newest
	}
}

// lostFacts handles the facts fb of a dedupe value that do not decode: the
// sale they describe cannot be taken out of its day, whose aggregate is
// marked (or, day unknown, every day so far). With replaced, the version
// they describe is being replaced: what the summary knows of its origin is
// forgotten, its marks taken out of the day if it is known.
func (t *sumTx) lostFacts(fb []byte, replaced bool) error {
	var a *dayAgg
	_, origin, err := rawFacts(fb)
	known := err == nil
	if known {
		r, err := t.seqRun(origin)
		if err != nil {
			return err
		}
		if sl := r.slots[origin%64]; sl.kind == seqOrigin {
			a = t.refAgg(&r.refs[sl.ref])
		}
	}
	if a == nil {
		if outlet, day, ok := factsPlace(fb); ok {
			a = agg(t, day, outlet)
		}
	}
	if a != nil {
		a.damage |= damageFacts
	} else {
		t.unplaced()
	}
	if replaced && known {
		return t.forget(origin, a)
	}
	return nil
}

// factsPlace reads the outlet and day at the head of encoded facts that do
// not decode as a whole (FuzzFactsPlace): ok only if the version, origin,
// outlet and day read and the day is a date.
func factsPlace(b []byte) (outlet, day string, ok bool) {
	d := decoder{b: b}
	d.fixed(versionLen)
	d.uvarint()
	o, dy := d.bytes(), d.bytes()
	if d.err != nil || len(o) == 0 || len(o) > 255 {
		return "", "", false
	}
	if _, err := time.Parse(time.DateOnly, string(dy)); err != nil {
		return "", "", false
	}
	return string(o), string(dy), true
}

// rebuild fills r, the run idx whose value did not decode, from the records
// of its seqs still in the outbox (see above). Facts that do not decode
// are lostFacts'.
func (t *sumTx) rebuild(idx uint64, r *seqRun) error {
	restored := 0
	c := t.out.Cursor()
	for k, v := c.Seek(seqKey(idx * 64)); k != nil; k, v = c.Next() {
		seq, ok := keySeq(k)
		if !ok || seq/64 != idx {
			break
		}
		key, ver, err := recordHeader(v)
		if err != nil {
			continue // a damaged record: dead-lettered as corrupt when read
		}
		fb := factsBytes(t.dd.Get(key))
		if fb == nil {
			continue
		}
		fver, origin, err := rawFacts(fb)
		if err != nil {
			if err := t.lostFacts(fb, false); err != nil {
				return err
			}
			continue
		}
		if !bytes.Equal(fver, ver) || seq < origin {
			continue // an older version, or one that came back later
		}
		if seq > origin {
			r.slots[seq%64] = seqSlot{kind: seqPointer, origin: origin}
			restored++
			continue
		}
		f, err := decodeFacts(fb)
		if err != nil {
			if err := t.lostFacts(fb, false); err != nil {
				return err
			}
			continue
		}
		r.slots[seq%64] = seqSlot{kind: seqOrigin, ref: r.ref(f.outlet, f.day)}
		restored++
	}
	r.dirty = true
	t.logged("rebuilt from the buffer", "what", "seq run", "seqs", fmt.Sprintf("%d-%d", idx*64, idx*64+63), "rebuilt", restored)
	return nil
}

// heal restores the origin slot of origin in r when the record at seq,
// which points to it, still carries the key's counted version of that
// origin: the slot was lost with a damaged run (rebuild cannot see origins
// whose records left the outbox); a version replaced or pruned since has
// other facts or none. It reports whether it did.
func (t *sumTx) heal(seq, origin uint64, r *seqRun) bool {
	if r.slots[origin%64].kind != 0 {
		return false
	}
	key, ver, err := recordHeader(t.out.Get(seqKey(seq)))
	if err != nil {
		return false
	}
	fb := factsBytes(t.dd.Get(key))
	if fb == nil {
		return false
	}
	if fver, forigin, err := rawFacts(fb); err != nil || forigin != origin || !bytes.Equal(fver, ver) {
		return false
	}
	f, err := decodeFacts(fb)
	if err != nil {
		return false
	}
	r.slots[origin%64] = seqSlot{kind: seqOrigin, ref: r.ref(f.outlet, f.day)}
	r.dirty = true
	return true
}

// marksLost marks the days of the origins of run idx: sink's marks of
// them were lost.
func (t *sumTx) marksLost(sink string, idx uint64) error {
	r, err := t.seqRun(idx * 64)
	if err != nil {
		return err
	}
	seen, days := make([]bool, len(r.refs)), 0
	for _, sl := range r.slots {
		if sl.kind != seqOrigin || seen[sl.ref] {
			continue
		}
		seen[sl.ref] = true
		t.refAgg(&r.refs[sl.ref]).damage |= damageMarks
		days++
	}
	if days == 0 { // no day to mark (note logs those): log it here
		t.logged("started afresh", "what", "sink marks", "sink", sink, "seqs", fmt.Sprintf("%d-%d", idx*64, idx*64+63))
	}
	return nil
}

// marksValue decodes a marks run; ok false if it has the wrong length.
func marksValue(v []byte) (m sinkMarks, ok bool) {
	if len(v) != marksLen {
		return sinkMarks{}, false
	}
	return sinkMarks{delivered: binary.LittleEndian.Uint64(v), dead: binary.LittleEndian.Uint64(v[8:])}, true
}
