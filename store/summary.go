package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
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
// business day, status, amount, refund). The store keeps:
//
//   - per record, its facts: the version they describe, the Sale, and per
//     sink whether the sink acked (delivered) or dead-lettered that
//     version. They ride on the record's dedupe entry, after its version
//     and change time (so an Append reads and writes no second index). A
//     new version of a record (an edit, a void, a refund) takes its old
//     contribution out of its day and adds the new one, and starts with no
//     sink marks: every sink must take it again. An ack or dead letter of
//     an outdated version changes nothing, nor does a second ack. AddDead
//     and Requeue, which rewrite a dedupe entry, keep its facts;
//     PruneDedupe forgets them with the key;
//   - in the "summary" bucket, "days": business day "\x00" outlet id -> the
//     day's aggregates, the money as exact decimals (never a float); they
//     stay when the facts are pruned (a few hundred bytes per outlet and
//     day);
//   - "since": for a database created before the summary existed, when the
//     summary was started. It starts empty and fills as records arrive:
//     sales the agent had buffered or delivered before are not counted
//     (the buffer holds no facts for them) until they change (an import
//     fetching them unchanged does not count them either). Absent for a
//     database that had the summary from its creation;
//   - "currency": the currency of the last sale seen.
//
// The bucket is created by Open when missing, without a format change: an
// older agent can still open the database (it does not update the summary,
// and rewrites dedupe entries without their facts: a sale it re-buffers is
// then counted twice once this agent runs again).

var (
	bucketSummary  = []byte("summary")
	keySumDays     = []byte("days")
	keySumSince    = []byte("since")
	keySumCurrency = []byte("currency")
)

// Sale statuses (SPEC §4).
const (
	SaleCompleted         = "completed"
	SaleVoid              = "void"
	SaleRefunded          = "refunded"
	SalePartiallyRefunded = "partially_refunded"
)

// Sale is what the day summary needs of a transaction record (SPEC §4):
// the outlet, its business day, the status and the money, as the record
// has them.
type Sale struct {
	OutletID string
	// Day is the business date, YYYY-MM-DD (the record's business_date).
	Day string
	// Status is the record's status: completed, void, refunded or
	// partially_refunded (anything else counts as completed).
	Status string
	// Amount is what the customer paid and Refund what was given back:
	// plain decimal strings ("150000", "13636.36").
	Amount, Refund string
	Currency       string
}

// saleFacts is a Sale, with the sinks' marks. The money stays text (as
// validated) until a day's sums need it: an ack only moves a mark.
type saleFacts struct {
	ver                 [versionLen]byte
	outlet, day, status string
	amountText          string
	refundText          string
	currency            string
	marks               []sinkMark
	// amount and refund are the money parsed (parsed: set).
	amount, refund decimal.Decimal
	parsed         bool
}

// money parses the amounts once.
func (f *saleFacts) money() error {
	if f.parsed {
		return nil
	}
	var err error
	if f.amount, err = parseMoney(f.amountText); err != nil {
		return err
	}
	if f.refund, err = parseMoney(f.refundText); err != nil {
		return err
	}
	f.parsed = true
	return nil
}

// sinkMark says what a sink did with a record's current version.
type sinkMark struct {
	sink  string
	state byte // markDelivered or markDead
}

const (
	markDelivered byte = 1
	markDead      byte = 2
)

// parseSale validates a Sale (in prepare, outside the transaction).
func parseSale(x *Sale) (*saleFacts, error) {
	if x.OutletID == "" || len(x.OutletID) > 255 {
		return nil, fmt.Errorf("sale: outlet id empty or too long")
	}
	if _, err := time.Parse(time.DateOnly, x.Day); err != nil {
		return nil, fmt.Errorf("sale: day %q is not YYYY-MM-DD", x.Day)
	}
	f := &saleFacts{outlet: x.OutletID, day: x.Day, status: x.Status, currency: x.Currency,
		amountText: x.Amount, refundText: x.Refund}
	var err error
	if f.amount, err = parseMoney(x.Amount); err != nil {
		return nil, fmt.Errorf("sale: amount: %w", err)
	}
	if f.refund, err = parseMoney(x.Refund); err != nil {
		return nil, fmt.Errorf("sale: refund: %w", err)
	}
	f.parsed = true
	return f, nil
}

// parseMoney parses a plain decimal ("" is 0): digits with an optional "-"
// and fraction, no exponent.
func parseMoney(s string) (decimal.Decimal, error) {
	if s == "" {
		return decimal.Zero, nil
	}
	if len(s) > 64 {
		return decimal.Zero, fmt.Errorf("%q is too long", s[:16]+"…")
	}
	i := 0
	if s[0] == '-' {
		i++
	}
	digits, dot := 0, false
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot && digits > 0 && i < len(s)-1:
			dot = true
		default:
			return decimal.Zero, fmt.Errorf("%q is not a plain decimal", s)
		}
	}
	if digits == 0 {
		return decimal.Zero, fmt.Errorf("%q is not a plain decimal", s)
	}
	return decimal.NewFromString(s)
}

// Encoding of a fact: version (32 bytes), the number of marks and each as
// a length-prefixed sink name and a state byte, then the length-prefixed
// outlet, day, status, amount, refund and currency. The marks come first:
// an ack rewrites them and copies the rest as it is (markRaw).
func (f *saleFacts) encode(dst []byte) []byte {
	dst = append(dst, f.ver[:]...)
	dst = binary.AppendUvarint(dst, uint64(len(f.marks)))
	for _, m := range f.marks {
		dst = binary.AppendUvarint(dst, uint64(len(m.sink)))
		dst = append(dst, m.sink...)
		dst = append(dst, m.state)
	}
	for _, s := range [...]string{f.outlet, f.day, f.status, f.amountText, f.refundText, f.currency} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	return dst
}

func decodeFacts(v []byte) (*saleFacts, error) {
	d := decoder{b: v}
	f := &saleFacts{}
	copy(f.ver[:], d.fixed(versionLen))
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		return nil, errBadValue
	}
	for range n {
		name := string(d.bytes())
		f.marks = append(f.marks, sinkMark{sink: name, state: d.byte()})
	}
	f.outlet = string(d.bytes())
	f.day = string(d.bytes())
	f.status = string(d.bytes())
	f.amountText, f.refundText = string(d.bytes()), string(d.bytes())
	f.currency = string(d.bytes())
	if d.err != nil {
		return nil, d.err
	}
	return f, nil
}

// rawMark is a mark as encoded, aliasing the value.
type rawMark struct {
	sink  []byte
	state byte
}

// rawFacts splits an encoded fact without copying: its version, marks and
// the rest (outlet first, then day).
func rawFacts(b []byte, marks []rawMark) (ver []byte, _ []rawMark, rest []byte, err error) {
	d := decoder{b: b}
	ver = d.fixed(versionLen)
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		return nil, nil, nil, errBadValue
	}
	for range n {
		name := d.bytes()
		marks = append(marks, rawMark{sink: name, state: d.byte()})
	}
	if d.err != nil {
		return nil, nil, nil, d.err
	}
	return ver, marks, d.b, nil
}

// dayAgg is one outlet's business day.
type dayAgg struct {
	sales, refunds, voids            int64
	amount, refundAmount, voidAmount decimal.Decimal
	sinks                            []sinkAgg
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

// add adds (sign 1) or takes out (sign -1) a record's contribution.
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
		a.voids += sign
		a.voidAmount = plus(a.voidAmount, f.amount)
	default:
		a.sales += sign
		a.amount = plus(a.amount, f.amount)
		if f.status == SaleRefunded || f.status == SalePartiallyRefunded {
			a.refunds += sign
			a.refundAmount = plus(a.refundAmount, f.refund)
		}
	}
	for _, m := range f.marks {
		a.mark(m.sink, m.state, sign)
	}
	return nil
}

func (a *dayAgg) mark(sink string, state byte, sign int64) {
	sa := a.sink(sink)
	switch state {
	case markDelivered:
		sa.delivered += sign
	case markDead:
		sa.dead += sign
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

// dayKey is the days-bucket key of an outlet's day.
func dayKey(day, outlet string) string { return day + "\x00" + outlet }

// Facts ride on the record's dedupe entry (version, change time), after a
// tag byte, so that the summary costs an Append no second index: the
// entry is read and written anyway. Readers of the entry's head (older
// agents too) ignore what follows it.
const factsTag = 'S'

// dedupeHead returns the length of a dedupe value's head (version and
// change time); 0 if it is malformed.
func dedupeHead(v []byte) int {
	if len(v) <= versionLen {
		return 0
	}
	_, n := binary.Varint(v[versionLen:])
	if n <= 0 {
		return 0
	}
	return versionLen + n
}

// factsOf decodes the facts a dedupe value carries; nil if none.
func factsOf(v []byte) (*saleFacts, error) {
	h := dedupeHead(v)
	if h == 0 || len(v) <= h || v[h] != factsTag {
		return nil, nil
	}
	return decodeFacts(v[h+1:])
}

// withFacts returns the dedupe value head followed by f (a new slice:
// bbolt keeps a value until the commit).
func withFacts(head []byte, f *saleFacts) []byte {
	b := make([]byte, 0, len(head)+1+128)
	b = append(b, head...)
	b = append(b, factsTag)
	return f.encode(b)
}

// keepFacts returns the dedupe value nv followed by the facts old carries
// (AddDead and Requeue rewrite the entry: what the summary counts for the
// key must stay with it).
func keepFacts(nv, old []byte) []byte {
	h := dedupeHead(old)
	if h == 0 || len(old) <= h || old[h] != factsTag {
		return nv
	}
	return append(nv, old[h:]...)
}

// sumTx updates the summary inside one write transaction: facts are
// written with their dedupe entry at once (a key may come twice in a
// batch), day aggregates are kept in memory and written once by flush.
type sumTx struct {
	dd, days, root *bolt.Bucket
	aggs           map[string]*dayAgg
	// last is the aggregate used last (a page's records are mostly of one
	// outlet and day).
	lastDay, lastOutlet string
	last                *dayAgg
	currency            string
}

// newSumTx returns nil when the database has no summary bucket (it always
// has one after Open).
func newSumTx(tx *bolt.Tx) *sumTx {
	root := tx.Bucket(bucketSummary)
	if root == nil {
		return nil
	}
	return &sumTx{root: root, dd: tx.Bucket(bucketDedupe), days: root.Bucket(keySumDays)}
}

// aggBytes is agg for day and outlet as bytes; it copies them only when
// the aggregate is not the last one used.
func (t *sumTx) aggBytes(day, outlet []byte) (*dayAgg, error) {
	if t.last != nil && t.lastDay == string(day) && t.lastOutlet == string(outlet) {
		return t.last, nil
	}
	return t.agg(string(day), string(outlet))
}

func (t *sumTx) agg(day, outlet string) (*dayAgg, error) {
	if t.last != nil && t.lastDay == day && t.lastOutlet == outlet {
		return t.last, nil
	}
	k := dayKey(day, outlet)
	a := t.aggs[k]
	if a == nil {
		a = &dayAgg{}
		if v := t.days.Get([]byte(k)); v != nil {
			var err error
			if a, err = decodeDayAgg(v); err != nil {
				return nil, fmt.Errorf("%w: summary of %s: %v", ErrCorrupt, day, err)
			}
		}
		if t.aggs == nil {
			t.aggs = map[string]*dayAgg{}
		}
		t.aggs[k] = a
	}
	t.lastDay, t.lastOutlet, t.last = day, outlet, a
	return a, nil
}

// appended records a new version of a record: it returns the dedupe
// value to store for it, head (version and change time) followed by the
// facts f. old is the key's previous dedupe value (nil if none): the
// contribution of the facts it carries is taken out.
func (t *sumTx) appended(head, old []byte, ver *[versionLen]byte, f *saleFacts) ([]byte, error) {
	if old != nil {
		of, err := factsOf(old)
		if err != nil {
			return nil, fmt.Errorf("%w: summary facts: %v", ErrCorrupt, err)
		}
		if of != nil {
			a, err := t.agg(of.day, of.outlet)
			if err != nil {
				return nil, err
			}
			if err := a.add(of, -1); err != nil {
				return nil, fmt.Errorf("%w: summary facts: %v", ErrCorrupt, err)
			}
		}
	}
	nf := *f
	nf.ver = *ver
	nf.marks = nil
	a, err := t.agg(nf.day, nf.outlet)
	if err != nil {
		return nil, err
	}
	if err := a.add(&nf, 1); err != nil {
		return nil, err
	}
	if nf.currency != "" {
		t.currency = nf.currency
	}
	return withFacts(head, &nf), nil
}

// marked records that sink acked (markDelivered) or dead-lettered
// (markDead) the record val (an outbox value). Records without facts and
// outdated versions change nothing.
func (t *sumTx) marked(val []byte, sink string, state byte) error {
	key, ver, err := recordHeader(val)
	if err != nil {
		return nil // a corrupt value: Pending moves it aside
	}
	// The hot path of every ack: no decoding of the money, no copies but
	// the new value.
	v := t.dd.Get(key)
	h := dedupeHead(v)
	if h == 0 || len(v) <= h || v[h] != factsTag {
		return nil
	}
	var buf [4]rawMark
	fver, marks, rest, err := rawFacts(v[h+1:], buf[:0])
	if err != nil {
		return fmt.Errorf("%w: summary facts: %v", ErrCorrupt, err)
	}
	if !bytes.Equal(fver, ver) {
		return nil
	}
	i := slices.IndexFunc(marks, func(m rawMark) bool { return string(m.sink) == sink })
	if i >= 0 && marks[i].state == state {
		return nil
	}
	d := decoder{b: rest}
	outlet, day := d.bytes(), d.bytes()
	if d.err != nil {
		return fmt.Errorf("%w: summary facts: %v", ErrCorrupt, d.err)
	}
	a, err := t.aggBytes(day, outlet)
	if err != nil {
		return err
	}
	if i >= 0 {
		a.mark(sink, marks[i].state, -1)
		marks[i].state = state
	} else {
		marks = append(marks, rawMark{sink: []byte(sink), state: state})
	}
	a.mark(sink, state, 1)
	nv := make([]byte, 0, len(v)+len(sink)+4)
	nv = append(nv, v[:h+1]...)
	nv = append(nv, fver...)
	nv = binary.AppendUvarint(nv, uint64(len(marks)))
	for _, m := range marks {
		nv = binary.AppendUvarint(nv, uint64(len(m.sink)))
		nv = append(nv, m.sink...)
		nv = append(nv, m.state)
	}
	nv = append(nv, rest...)
	return t.dd.Put(bytes.Clone(key), nv)
}

// flush writes the changed day aggregates.
func (t *sumTx) flush() error {
	for k, a := range t.aggs {
		if err := t.days.Put([]byte(k), a.encode(nil)); err != nil {
			return err
		}
	}
	t.aggs = nil
	if t.currency != "" && string(t.root.Get(keySumCurrency)) != t.currency {
		if err := t.root.Put(keySumCurrency, []byte(t.currency)); err != nil {
			return err
		}
	}
	return nil
}

// createSummary creates the summary bucket; since, if not zero, is when
// the summary of an existing database starts.
func createSummary(tx *bolt.Tx, since time.Time) error {
	root, err := tx.CreateBucketIfNotExists(bucketSummary)
	if err != nil {
		return err
	}
	if _, err := root.CreateBucketIfNotExists(keySumDays); err != nil {
		return err
	}
	if !since.IsZero() {
		return root.Put(keySumSince, putUint64(uint64(since.UnixNano())))
	}
	return nil
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
// (YYYY-MM-DD, both included).
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
		c := root.Bucket(keySumDays).Cursor()
		end := []byte(to + "\x01")
		for k, v := c.Seek([]byte(from)); k != nil && bytes.Compare(k, end) < 0; k, v = c.Next() {
			day, outlet, ok := bytes.Cut(k, []byte{0})
			if !ok {
				return fmt.Errorf("%w: summary key %q", ErrCorrupt, k)
			}
			a, err := decodeDayAgg(v)
			if err != nil {
				return fmt.Errorf("%w: summary of %s: %v", ErrCorrupt, day, err)
			}
			ds := DaySummary{
				Day: string(day), OutletID: string(outlet),
				Sales: a.sales, Refunds: a.refunds, Voids: a.voids,
				Amount: a.amount.String(), RefundAmount: a.refundAmount.String(), VoidAmount: a.voidAmount.String(),
			}
			for _, sa := range a.sinks {
				if sa.delivered != 0 || sa.dead != 0 {
					ds.Sinks = append(ds.Sinks, SinkDay{Sink: sa.sink, Delivered: sa.delivered, DeadLetters: sa.dead})
				}
			}
			sort.Slice(ds.Sinks, func(i, j int) bool { return ds.Sinks[i].Sink < ds.Sinks[j].Sink })
			rep.Days = append(rep.Days, ds)
		}
		return nil
	})
	if err != nil {
		return SummaryReport{}, fmt.Errorf("store: summary: %w", err)
	}
	return rep, nil
}
