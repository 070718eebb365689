package store

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	bolt "go.etcd.io/bbolt"
)

// The day summary against a model, over random sequences of what the agent
// does: new sales and new versions of them, acks (in and out of order,
// repeated) and dead letters by two sinks, requeues, imports for one sink
// of versions it had, a sink disabled and enabled again. The model counts
// each key's current version once, and per sink what the sink last did
// with a record of that version appended since the key's last change.
func TestSummaryMatchesModel(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runSummaryModel(t, seed) })
	}
}

// modelSale is the current version of a key in the model.
type modelSale struct {
	gen                                 int
	day, outlet, status, amount, refund string
	data                                []byte
	marks                               map[string]byte
}

type summaryModel struct {
	sales map[string]*modelSale
	// byVersion: the key and generation of every version appended.
	byVersion map[string]struct {
		key string
		gen int
	}
	n int // makes every new version's data unique
}

func (m *summaryModel) current(r Record) *modelSale {
	v, ok := m.byVersion[r.Version]
	if !ok {
		return nil
	}
	if ms := m.sales[v.key]; ms != nil && ms.gen == v.gen {
		return ms
	}
	return nil
}

// newVersion makes a new version of key (its first if new).
func (m *summaryModel) newVersion(rng *rand.Rand, key string) Input {
	m.n++
	statuses := []string{SaleCompleted, SaleCompleted, SaleVoid, SaleRefunded, SalePartiallyRefunded}
	ms := &modelSale{
		day:    fmt.Sprintf("2026-12-0%d", 1+rng.IntN(3)),
		outlet: fmt.Sprintf("out_%c", 'a'+rng.IntN(2)),
		status: statuses[rng.IntN(len(statuses))],
		amount: fmt.Sprintf("%d.%02d", rng.IntN(500000), rng.IntN(100)),
		marks:  map[string]byte{},
	}
	if ms.status == SaleRefunded || ms.status == SalePartiallyRefunded {
		ms.refund = fmt.Sprintf("%d.5", rng.IntN(1000))
	}
	ms.data = []byte(fmt.Sprintf(`{"key":%q,"n":%d,"status":%q}`, key, m.n, ms.status))
	if old := m.sales[key]; old != nil {
		ms.gen = old.gen + 1
	}
	return Input{Kind: KindTransaction, Key: key, Data: ms.data,
		Sale: &Sale{OutletID: ms.outlet, Day: ms.day, Status: ms.status, Amount: ms.amount, Refund: ms.refund, Currency: "IDR"}}
}

// appended records that in was appended (a new version).
func (m *summaryModel) appended(in Input) {
	ms := &modelSale{day: in.Sale.Day, outlet: in.Sale.OutletID, status: in.Sale.Status,
		amount: in.Sale.Amount, refund: in.Sale.Refund, data: in.Data, marks: map[string]byte{}}
	if old := m.sales[in.Key]; old != nil {
		ms.gen = old.gen + 1
	}
	m.sales[in.Key] = ms
	m.byVersion[Version(in.Data)] = struct {
		key string
		gen int
	}{in.Key, ms.gen}
}

// report is what Summary should say.
func (m *summaryModel) report() map[string]DaySummary {
	type acc struct {
		ds                         DaySummary
		amount, refund, voidAmount decimal.Decimal
		sinks                      map[string]*SinkDay
	}
	days := map[string]*acc{}
	for _, ms := range m.sales {
		k := ms.day + " " + ms.outlet
		a := days[k]
		if a == nil {
			a = &acc{ds: DaySummary{Day: ms.day, OutletID: ms.outlet}, sinks: map[string]*SinkDay{}}
			days[k] = a
		}
		amount := decimal.RequireFromString(ms.amount)
		switch ms.status {
		case SaleVoid:
			a.ds.Voids++
			a.voidAmount = a.voidAmount.Add(amount)
		default:
			a.ds.Sales++
			a.amount = a.amount.Add(amount)
			if ms.refund != "" {
				a.ds.Refunds++
				a.refund = a.refund.Add(decimal.RequireFromString(ms.refund))
			}
		}
		for sink, st := range ms.marks {
			sd := a.sinks[sink]
			if sd == nil {
				sd = &SinkDay{Sink: sink}
				a.sinks[sink] = sd
			}
			switch st {
			case markDelivered:
				sd.Delivered++
			case markDead:
				sd.DeadLetters++
			}
		}
	}
	out := map[string]DaySummary{}
	for k, a := range days {
		a.ds.Amount, a.ds.RefundAmount, a.ds.VoidAmount = a.amount.String(), a.refund.String(), a.voidAmount.String()
		for _, sd := range a.sinks {
			if sd.Delivered != 0 || sd.DeadLetters != 0 {
				a.ds.Sinks = append(a.ds.Sinks, *sd)
			}
		}
		slices.SortFunc(a.ds.Sinks, func(x, y SinkDay) int {
			if x.Sink < y.Sink {
				return -1
			}
			return 1
		})
		out[k] = a.ds
	}
	return out
}

func runSummaryModel(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 15))
	s := openTemp(t)
	mustSetSinks(t, s, "upstream", "nats")
	enabled := []string{"upstream", "nats"}
	m := &summaryModel{sales: map[string]*modelSale{}, byVersion: map[string]struct {
		key string
		gen int
	}{}}
	keys := make([]string, 40)
	for i := range keys {
		keys[i] = fmt.Sprintf("moka/biz_1/sale_%02d", i)
	}
	pick := func() string { return enabled[rng.IntN(len(enabled))] }
	for step := range 400 {
		op := rng.IntN(100)
		switch {
		case op < 25: // a poll: new sales, new versions, unchanged ones
			var in []Input
			seen := map[string]bool{}
			for range 1 + rng.IntN(6) {
				key := keys[rng.IntN(len(keys))]
				if seen[key] {
					continue
				}
				seen[key] = true
				if cur := m.sales[key]; cur != nil && rng.IntN(3) == 0 {
					in = append(in, Input{Kind: KindTransaction, Key: key, Data: cur.data,
						Sale: &Sale{OutletID: cur.outlet, Day: cur.day, Status: cur.status, Amount: cur.amount, Refund: cur.refund}})
					continue
				}
				in = append(in, m.newVersion(rng, key))
			}
			mustAppend(t, s, in, nil)
			for _, x := range in {
				if cur := m.sales[x.Key]; cur == nil || string(cur.data) != string(x.Data) {
					m.appended(x)
				}
			}
		case op < 60: // a sink acks some of its pending records
			sink := pick()
			v := s.Sink(sink)
			recs, err := v.Pending(1 + rng.IntN(100))
			if err != nil {
				t.Fatal(err)
			}
			var seqs []uint64
			for _, r := range recs {
				if rng.IntN(4) == 0 {
					continue // left for later: acks out of order
				}
				seqs = append(seqs, r.Seq)
				if ms := m.current(r); ms != nil {
					ms.marks[sink] = markDelivered
				}
			}
			rng.Shuffle(len(seqs), func(i, j int) { seqs[i], seqs[j] = seqs[j], seqs[i] })
			mustAck(t, v, seqs...)
			if len(seqs) > 0 && rng.IntN(5) == 0 {
				mustAck(t, v, seqs[0]) // again: nothing changes
			}
		case op < 72: // a sink rejects a record
			sink := pick()
			v := s.Sink(sink)
			recs, err := v.Pending(5)
			if err != nil || len(recs) == 0 {
				continue
			}
			r := recs[rng.IntN(len(recs))]
			if err := v.DeadLetter(r.Seq, "HTTP 422"); err != nil {
				t.Fatal(err)
			}
			if ms := m.current(r); ms != nil {
				ms.marks[sink] = markDead
			}
		case op < 80: // the operator requeues a sink's dead letters
			if _, err := s.RequeueAllOf(pick()); err != nil {
				t.Fatal(err)
			}
		case op < 90: // an import for one sink fetches current versions again
			sink := pick()
			var in []Input
			for _, key := range keys[:10] {
				if cur := m.sales[key]; cur != nil {
					in = append(in, Input{Kind: KindTransaction, Key: key, Data: cur.data,
						Sale: &Sale{OutletID: cur.outlet, Day: cur.day, Status: cur.status, Amount: cur.amount, Refund: cur.refund}})
				}
			}
			if len(in) > 0 {
				if _, err := s.AppendFor([]string{sink}, in, nil); err != nil {
					t.Fatal(err)
				}
			}
		default: // nats is disabled, or enabled again
			if len(enabled) == 2 {
				enabled = []string{"upstream"}
			} else {
				enabled = []string{"upstream", "nats"}
			}
			mustSetSinks(t, s, enabled...)
		}
		if step%20 == 19 || step == 399 {
			checkSummaryModel(t, s, m, step)
		}
	}
	checkSummaryStorage(t, s)
}

func checkSummaryModel(t *testing.T, s *Store, m *summaryModel, step int) {
	t.Helper()
	want := m.report()
	rep := mustSummary(t, s, "2026-12-01", "2026-12-03")
	got := map[string]DaySummary{}
	for _, d := range rep.Days {
		got[d.Day+" "+d.OutletID] = d
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			g = DaySummary{Day: w.Day, OutletID: w.OutletID, Amount: "0", RefundAmount: "0", VoidAmount: "0"}
		}
		if fmt.Sprint(g) != fmt.Sprint(w) {
			t.Fatalf("step %d: %s\n got %+v\nwant %+v", step, k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok && (g.Sales != 0 || g.Voids != 0 || len(g.Sinks) != 0) {
			t.Fatalf("step %d: %s = %+v, not in the model", step, k, g)
		}
	}
}

// checkSummaryStorage checks that the summary keeps no more than it needs:
// one seq entry per key with facts (its origin) and one per record still
// in the outbox that stands for one, and marks only of origins.
func checkSummaryStorage(t *testing.T, s *Store) {
	t.Helper()
	err := s.view(func(tx *bolt.Tx) error {
		origins := map[uint64]bool{}
		if err := tx.Bucket(bucketDedupe).ForEach(func(k, v []byte) error {
			if fb := factsBytes(v); fb != nil {
				_, origin, err := rawFacts(fb)
				if err != nil {
					return err
				}
				origins[origin] = true
			}
			return nil
		}); err != nil {
			return err
		}
		out := tx.Bucket(bucketOutbox)
		if err := tx.Bucket(bucketSumSeqs).ForEach(func(k, v []byte) error {
			r, err := decodeSeqRun(v)
			if err != nil {
				return err
			}
			if r.encode() == nil {
				t.Errorf("seq run %x: a value that knows no seq", k)
			}
			for i, sl := range r.slots {
				seq := binary.BigEndian.Uint64(k)*64 + uint64(i)
				switch {
				case sl.kind == seqOrigin && !origins[seq]:
					t.Errorf("seq %d: an origin, not of a key's facts", seq)
				case sl.kind == seqPointer && out.Get(seqKey(seq)) == nil:
					t.Errorf("seq %d (for %d): the record left the outbox", seq, sl.origin)
				}
			}
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketSumMarks).ForEach(func(k, v []byte) error {
			run := binary.BigEndian.Uint64(k[len(k)-8:])
			for _, b := range []uint64{binary.LittleEndian.Uint64(v), binary.LittleEndian.Uint64(v[8:])} {
				for b != 0 {
					i := uint64(bits.TrailingZeros64(b))
					b &^= 1 << i
					if !origins[run*64+i] {
						t.Errorf("mark %q of %d: not an origin", k[:len(k)-9], run*64+i)
					}
				}
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// PruneDedupe forgets, with a key's facts, its seq entry and its marks:
// what the summary keeps per sale does not outlive the dedupe index.
func TestSummaryPruneForgetsSeqEntriesAndMarks(t *testing.T) {
	s := openTemp(t)
	mustSetSinks(t, s, "upstream", "nats")
	var in []Input
	for i := range 150 { // more than two runs of marks
		in = append(in, sale(i, "out_a", "2025-01-01", SaleCompleted, "1000", "0"))
	}
	r := mustAppend(t, s, in, nil)
	mustAck(t, s.Sink("upstream"), span(r.FirstSeq, r.LastSeq)...)
	if err := s.Sink("nats").DeadLetter(r.FirstSeq, "HTTP 422"); err != nil {
		t.Fatal(err)
	}
	checkDay(t, dayOf(mustSummary(t, s, "2025-01-01", "2025-01-01"), "2025-01-01", "out_a"), 150, 0, 0, "150000", "0", "0",
		SinkDay{Sink: "nats", DeadLetters: 1}, SinkDay{Sink: "upstream", Delivered: 150})
	if n, err := s.PruneDedupe(s.now().Add(time.Hour)); err != nil || n != 150 {
		t.Fatalf("PruneDedupe = %d, %v", n, err)
	}
	_ = s.view(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketSumSeqs, bucketSumMarks} {
			if n := tx.Bucket(name).Stats().KeyN; n != 0 {
				t.Errorf("%s: %d entries after the prune", name, n)
			}
		}
		return nil
	})
	checkDay(t, dayOf(mustSummary(t, s, "2025-01-01", "2025-01-01"), "2025-01-01", "out_a"), 150, 0, 0, "150000", "0", "0",
		SinkDay{Sink: "nats", DeadLetters: 1}, SinkDay{Sink: "upstream", Delivered: 150})
}

// A sale imported again for a sink that was down (AppendFor) counts once
// for that sink when it acks the copy, and not again for the sink that had
// it; its next version takes both out.
func TestSummaryImportForOneSinkCountsOnce(t *testing.T) {
	s := openTemp(t)
	mustSetSinks(t, s, "upstream", "nats")
	const day = "2026-12-06"
	r := mustAppend(t, s, []Input{sale(1, "out_a", day, SaleCompleted, "10000", "0")}, nil)
	mustAck(t, s.Sink("upstream"), r.FirstSeq)
	mustAck(t, s.Sink("nats"), r.FirstSeq)
	r2, err := s.AppendFor([]string{"nats"}, []Input{sale(1, "out_a", day, SaleCompleted, "10000", "0")}, nil)
	if err != nil || r2.Refetched != 1 {
		t.Fatalf("AppendFor = %+v, %v", r2, err)
	}
	mustAck(t, s.Sink("nats"), r2.FirstSeq)
	checkDay(t, dayOf(mustSummary(t, s, day, day), day, "out_a"), 1, 0, 0, "10000", "0", "0",
		SinkDay{Sink: "nats", Delivered: 1}, SinkDay{Sink: "upstream", Delivered: 1})
	checkSummaryStorage(t, s)
	// nats rejects a copy of the version it took: the sale moves to its
	// dead letters.
	r3, err := s.AppendFor([]string{"nats"}, []Input{sale(1, "out_a", day, SaleCompleted, "10000", "0")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Sink("nats").DeadLetter(r3.FirstSeq, "HTTP 422"); err != nil {
		t.Fatal(err)
	}
	checkDay(t, dayOf(mustSummary(t, s, day, day), day, "out_a"), 1, 0, 0, "10000", "0", "0",
		SinkDay{Sink: "nats", DeadLetters: 1}, SinkDay{Sink: "upstream", Delivered: 1})
	mustAppend(t, s, []Input{sale(1, "out_a", day, SaleVoid, "10000", "0")}, nil)
	checkDay(t, dayOf(mustSummary(t, s, day, day), day, "out_a"), 0, 0, 1, "0", "0", "10000")
	checkSummaryStorage(t, s)
}

// A requeued dead letter whose sale changes before the sink takes it again
// counts for nothing when acked: the sink must take the new version.
func TestSummaryRequeuedOutdatedAckCountsNothing(t *testing.T) {
	s := openTemp(t)
	const day = "2026-12-06"
	up := s.Sink(DefaultSink)
	r := mustAppend(t, s, []Input{sale(1, "out_a", day, SaleCompleted, "10000", "0")}, nil)
	if err := up.DeadLetter(r.FirstSeq, "HTTP 422"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RequeueAll(); n != 1 || err != nil {
		t.Fatalf("RequeueAll = %d, %v", n, err)
	}
	requeued := pendingSeqs(t, up)
	r2 := mustAppend(t, s, []Input{sale(1, "out_a", day, SaleCompleted, "12000", "0")}, nil)
	mustAck(t, up, requeued...)
	checkDay(t, dayOf(mustSummary(t, s, day, day), day, "out_a"), 1, 0, 0, "12000", "0", "0")
	mustAck(t, up, r2.FirstSeq)
	checkDay(t, dayOf(mustSummary(t, s, day, day), day, "out_a"), 1, 0, 0, "12000", "0", "0",
		SinkDay{Sink: DefaultSink, Delivered: 1})
	checkSummaryStorage(t, s)
}

// A database whose summary lacks its per-seq parts (written during the
// summary's development) gets them on Open, without a start date.
func TestSummaryOpenCompletesAPartialSummary(t *testing.T) {
	opts := testOptions(t, "")
	s := mustOpen(t, opts)
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketSumSeqs); err != nil {
			return err
		}
		return tx.DeleteBucket(bucketSumMarks)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, opts)
	defer s.Close()
	const day = "2026-12-06"
	r := mustAppend(t, s, []Input{sale(1, "out_a", day, SaleCompleted, "10000", "0")}, nil)
	mustAck(t, s.Sink(DefaultSink), r.FirstSeq)
	rep := mustSummary(t, s, day, day)
	if !rep.Since.IsZero() {
		t.Errorf("since = %v, want none", rep.Since)
	}
	checkDay(t, dayOf(rep, day, "out_a"), 1, 0, 0, "10000", "0", "0", SinkDay{Sink: DefaultSink, Delivered: 1})
}

// FuzzDecodeSeqRun: a seq run read from a damaged file never panics the
// decoder, and what it accepts survives its encoding.
func FuzzDecodeSeqRun(f *testing.F) {
	r := &seqRun{}
	r.slots[3] = seqSlot{kind: seqOrigin, ref: r.ref("out_a", "2026-12-06")}
	r.slots[4] = seqSlot{kind: seqOrigin, ref: r.ref("out_b", "2026-12-06")}
	r.slots[63] = seqSlot{kind: seqPointer, origin: 1 << 40}
	f.Add(r.encode())
	f.Add([]byte{0, 5, 3})
	f.Add([]byte{1, 1, 'a', 1, 'b', 70, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		r, err := decodeSeqRun(v)
		if err != nil {
			return
		}
		enc := r.encode()
		if enc == nil {
			enc = []byte{0}
		}
		back, err := decodeSeqRun(enc)
		if err != nil {
			t.Fatalf("%x decoded, its encoding %x not: %v", v, enc, err)
		}
		for i := range r.slots {
			a, b := r.slots[i], back.slots[i]
			if a.kind != b.kind || a.origin != b.origin ||
				(a.kind == seqOrigin && (r.refs[a.ref].outlet != back.refs[b.ref].outlet || r.refs[a.ref].day != back.refs[b.ref].day)) {
				t.Fatalf("slot %d: %+v, after encoding %+v", i, a, b)
			}
		}
	})
}
