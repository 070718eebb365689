package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	bolt "go.etcd.io/bbolt"
)

// The day summary (issue 15): per outlet and business day, the sales, the
// amount collected, the refunds and voids, how many records were received
// and how many of them each sink has taken. It is kept in the same
// transactions as the records, so it never disagrees with the buffer.
//
// A producer describes a transaction record with Input.Sale (outlet,
// business day, status, amount, refund). Each sale counts once, in its
// current version: a new version of a record (an edit, a void, a refund)
// takes its old contribution — the sale and what each sink did with it —
// out of its day and adds the new one, which every sink must take again.
// An ack or dead letter of an outdated version changes nothing, nor does a
// second ack; an ack after a dead letter (requeued) moves the sale from the
// sink's dead letters to its deliveries. The store keeps:
//
//   - per record key, its facts: the version they describe, the seq at
//     which that version was appended (its origin) and the Sale. They ride
//     on the key's dedupe entry, after its version and change time (an
//     Append reads and writes that entry anyway: no second index). AddDead
//     and Requeue, which rewrite a dedupe entry, keep its facts;
//     PruneDedupe forgets them with the key, and what the summary knows
//     of their origin with them;
//   - "summary_seqs": per run of 64 seqs, for each seq that is the origin
//     of a counted version, its outlet and day; for each record that
//     carries a counted version again under a later seq (a Requeue of a
//     sink's dead letter, an AppendFor of an unchanged version), the
//     origin it stands for, kept while that record is in the outbox. An
//     origin is forgotten when its version is replaced. So an Ack finds
//     all it needs — whether a record is a counted, current version, and
//     its day — in one value per 64 records acked, instead of reading (and
//     rewriting) each record's entry in the dedupe index, whose keys are
//     random; and an Append writes one value per 64 records;
//   - "summary_marks": per sink and run of 64 origins, the origins the
//     sink delivered and those it dead-lettered, as two bitmaps. Acks
//     come in seq order, so an ack of a batch rewrites a few of these
//     16-byte values;
//   - "summary_days": business day "\x00" outlet id -> the day's
//     aggregates, the money as exact decimals (never a float); they stay
//     when the facts are pruned (a few hundred bytes per outlet and day);
//   - in the "summary" bucket, "since": for a database created before the
//     summary existed, when the summary was started. It starts empty and
//     fills as records arrive: sales the agent had buffered or delivered
//     before are not counted (the buffer holds no facts for them) until
//     they change (an import fetching them unchanged does not count them
//     either). Absent for a database that had the summary from its
//     creation;
//   - "currency": the currency of the last sale seen;
//   - and the incomplete markers (summary_damage.go): "incomplete" 0 day 0
//     outlet for an outlet's day whose figures a damaged summary value
//     may have made wrong, and "incomplete" 0 "*" for damage whose day
//     could not be told.
//
// An ack counts a record only if it was appended with the sale's counted
// version or carries it again: a record of an older version counts for
// nothing, even if a later change brought the sale back to the same
// content (the sink then takes the record of that change).
//
// The buckets are created by Open when missing, without a format change:
// an older agent can still open the database (it does not update the
// summary, and rewrites dedupe entries without their facts: a sale it
// re-buffers is then counted twice once this agent runs again, and acks of
// a version it replaced may still count).
//
// The summary is derived data: a value of it that does not decode never
// fails a write or a read of the buffer. It is started afresh and the days
// it may have made wrong are marked incomplete (summary_damage.go).

var (
	bucketSummary  = []byte("summary")
	keySumSince    = []byte("since")
	keySumCurrency = []byte("currency")
	// The parts an Ack writes are top-level buckets, not nested in
	// "summary": their headers then sit in the root page, which every
	// commit writes anyway, instead of dirtying one more page per Ack.
	bucketSumDays  = []byte("summary_days")
	bucketSumSeqs  = []byte("summary_seqs")
	bucketSumMarks = []byte("summary_marks")
)

// sumParts are the summary's buckets besides "summary".
var sumParts = [][]byte{bucketSumDays, bucketSumSeqs, bucketSumMarks}

// createSummary creates the summary's buckets, or those missing. since, if
// not zero, is when the summary of an existing database starts: it starts
// empty (parts left without their "summary" bucket are dropped).
func createSummary(tx *bolt.Tx, since time.Time) error {
	root, err := tx.CreateBucketIfNotExists(bucketSummary)
	if err != nil {
		return err
	}
	for _, name := range sumParts {
		if !since.IsZero() && tx.Bucket(name) != nil {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	if !since.IsZero() {
		return root.Put(keySumSince, putUint64(uint64(since.UnixNano())))
	}
	return nil
}

// summaryComplete reports whether tx has all the summary's buckets (a
// database of this agent's development may lack some).
func summaryComplete(tx *bolt.Tx) bool {
	if tx.Bucket(bucketSummary) == nil {
		return false
	}
	for _, name := range sumParts {
		if tx.Bucket(name) == nil {
			return false
		}
	}
	return true
}

// dayAgg is one outlet's business day.
type dayAgg struct {
	sales, refunds, voids            int64
	amount, refundAmount, voidAmount decimal.Decimal
	sinks                            []sinkAgg
	// damage is what made the day's figures doubtful in this
	// transaction (damage* bits, summary_damage.go); not encoded: flush
	// records it as the day's incomplete marker.
	damage byte
}

type sinkAgg struct {
	sink            string
	delivered, dead int64
}

func (a *dayAgg) sink(name string) *sinkAgg {
	for i := range a.sinks {
		if a.sinks[i].sink == name {
			return &a.sinks[i]
		}
	}
	a.sinks = append(a.sinks, sinkAgg{sink: name})
	return &a.sinks[len(a.sinks)-1]
}

// add adds (sign 1) or takes out (sign -1) a sale; what the sinks did with
// it is mark's. A count never goes below zero: taking out what the day
// does not have (its aggregate was lost) leaves 0 and marks the day
// damaged.
func (a *dayAgg) add(f *saleFacts, sign int64) error {
	if err := f.money(); err != nil {
		return err
	}
	plus := func(sum, d decimal.Decimal) decimal.Decimal {
		if sign < 0 {
			return sum.Sub(d)
		}
		return sum.Add(d)
	}
	switch f.status {
	case SaleVoid:
		a.count(&a.voids, sign)
		a.voidAmount = plus(a.voidAmount, f.amount)
	default:
		a.count(&a.sales, sign)
		a.amount = plus(a.amount, f.amount)
		if f.status == SaleRefunded || f.status == SalePartiallyRefunded {
			a.count(&a.refunds, sign)
			a.refundAmount = plus(a.refundAmount, f.refund)
		}
	}
	return nil
}

// count adds sign to *n, clamped at zero (damageNegative).
func (a *dayAgg) count(n *int64, sign int64) {
	*n += sign
	if *n < 0 {
		*n = 0
		a.damage |= damageNegative
	}
}

// mark adds (sign 1) or takes out (sign -1) a sale the sink delivered
// (markDelivered) or dead-lettered (markDead).
func (a *dayAgg) mark(sink string, state byte, sign int64) {
	sa := a.sink(sink)
	switch state {
	case markDelivered:
		a.count(&sa.delivered, sign)
	case markDead:
		a.count(&sa.dead, sign)
	}
}

func (a *dayAgg) encode(dst []byte) []byte {
	dst = binary.AppendVarint(dst, a.sales)
	dst = binary.AppendVarint(dst, a.refunds)
	dst = binary.AppendVarint(dst, a.voids)
	for _, d := range []decimal.Decimal{a.amount, a.refundAmount, a.voidAmount} {
		s := d.String()
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(a.sinks)))
	for _, sa := range a.sinks {
		dst = binary.AppendUvarint(dst, uint64(len(sa.sink)))
		dst = append(dst, sa.sink...)
		dst = binary.AppendVarint(dst, sa.delivered)
		dst = binary.AppendVarint(dst, sa.dead)
	}
	return dst
}

func decodeDayAgg(v []byte) (*dayAgg, error) {
	d := decoder{b: v}
	a := &dayAgg{sales: d.varint(), refunds: d.varint(), voids: d.varint()}
	var money [3]decimal.Decimal
	for i := range money {
		s := string(d.bytes())
		if d.err != nil {
			return nil, d.err
		}
		m, err := parseMoney(s)
		if err != nil {
			return nil, errBadValue
		}
		money[i] = m
	}
	a.amount, a.refundAmount, a.voidAmount = money[0], money[1], money[2]
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		return nil, errBadValue
	}
	for range n {
		sa := sinkAgg{sink: string(d.bytes())}
		sa.delivered, sa.dead = d.varint(), d.varint()
		a.sinks = append(a.sinks, sa)
	}
	if d.err != nil {
		return nil, d.err
	}
	return a, nil
}

// DaySummary is one outlet's business day in the summary.
type DaySummary struct {
	Day      string // YYYY-MM-DD
	OutletID string
	// Sales counts the sales not voided (completed, refunded, partially
	// refunded) and Amount what they collected; Refunds and RefundAmount
	// the refunded ones and what was given back; Voids and VoidAmount the
	// voided ones. Amounts are canonical decimal strings ("0", "150000",
	// "13636.36").
	Sales, Refunds, Voids            int64
	Amount, RefundAmount, VoidAmount string
	// Sinks are the sinks that took (or rejected) records of the day, by
	// name.
	Sinks []SinkDay
	// Incomplete reports that a damaged summary value (a bug of an older
	// version, a bit flip) may have made the day's figures wrong: the
	// store started the value afresh rather than fail a write of the
	// buffer (summary_damage.go). The records themselves are unaffected.
	Incomplete bool
}

// SinkDay is one sink's share of a DaySummary: the current versions it
// acked and dead-lettered.
type SinkDay struct {
	Sink                   string
	Delivered, DeadLetters int64
}

// SummaryReport is what Summary returns.
type SummaryReport struct {
	// Since is when the summary started on a database created before it
	// existed; zero when the database always had it.
	Since time.Time
	// Currency is the currency of the last sale seen; "" if none.
	Currency string
	// Days are the outlets' days in the range that have records, by day
	// then outlet id.
	Days []DaySummary
}

// Summary returns the day summaries of the business days from..to
// (YYYY-MM-DD, both included). A day's value that does not decode gives
// the day with zero figures, Incomplete, instead of an error: the next
// write that touches the day starts it afresh and keeps the marker.
func (s *Store) Summary(from, to string) (SummaryReport, error) {
	var rep SummaryReport
	err := s.view(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketSummary)
		if root == nil {
			return nil
		}
		if ns, ok := getUint64(root.Get(keySumSince)); ok {
			rep.Since = time.Unix(0, int64(ns)).UTC()
		}
		rep.Currency = string(root.Get(keySumCurrency))
		marked, upTo := incompleteDays(root, from, to)
		days := tx.Bucket(bucketSumDays)
		if days == nil {
			return nil
		}
		c := days.Cursor()
		end := []byte(to + "\x01")
		for k, v := c.Seek([]byte(from)); k != nil && bytes.Compare(k, end) < 0; k, v = c.Next() {
			day, outlet, ok := bytes.Cut(k, []byte{0})
			if !ok {
				continue // not an outlet's day: no day to show it on
			}
			ds := DaySummary{Day: string(day), OutletID: string(outlet), Amount: "0", RefundAmount: "0", VoidAmount: "0",
				Incomplete: marked[string(k)] || (upTo != "" && string(day) <= upTo)}
			delete(marked, string(k))
			a, err := decodeDayAgg(v)
			if err != nil {
				ds.Incomplete = true
				rep.Days = append(rep.Days, ds)
				continue
			}
			if a.sales < 0 || a.refunds < 0 || a.voids < 0 {
				ds.Incomplete = true
			}
			ds.Sales, ds.Refunds, ds.Voids = max(a.sales, 0), max(a.refunds, 0), max(a.voids, 0)
			ds.Amount, ds.RefundAmount, ds.VoidAmount = a.amount.String(), a.refundAmount.String(), a.voidAmount.String()
			for _, sa := range a.sinks {
				if sa.delivered < 0 || sa.dead < 0 {
					ds.Incomplete = true
				}
				if sa.delivered > 0 || sa.dead > 0 {
					ds.Sinks = append(ds.Sinks, SinkDay{Sink: sa.sink, Delivered: max(sa.delivered, 0), DeadLetters: max(sa.dead, 0)})
				}
			}
			sort.Slice(ds.Sinks, func(i, j int) bool { return ds.Sinks[i].Sink < ds.Sinks[j].Sink })
			rep.Days = append(rep.Days, ds)
		}
		// A marked day without an aggregate (not written by this agent,
		// but cheap to show rather than hide).
		for k := range marked {
			day, outlet, _ := strings.Cut(k, "\x00")
			rep.Days = append(rep.Days, DaySummary{Day: day, OutletID: outlet,
				Amount: "0", RefundAmount: "0", VoidAmount: "0", Incomplete: true})
		}
		if len(marked) > 0 {
			sort.Slice(rep.Days, func(i, j int) bool {
				a, b := rep.Days[i], rep.Days[j]
				return a.Day < b.Day || a.Day == b.Day && a.OutletID < b.OutletID
			})
		}
		return nil
	})
	if err != nil {
		return SummaryReport{}, fmt.Errorf("store: summary: %w", err)
	}
	return rep, nil
}
