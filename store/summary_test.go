package store

import (
	"fmt"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// sale is a transaction input with its summary facts; the data carry the
// facts too, so that a change of any of them is a new version.
func sale(id int, outlet, day, status, amount, refund string) Input {
	return Input{
		Kind: KindTransaction,
		Key:  fmt.Sprintf("moka/biz_1/%s/%d", outlet, id),
		Data: []byte(fmt.Sprintf(`{"external_id":"%d","outlet_id":%q,"business_date":%q,"status":%q,"amount":%q,"refund_amount":%q}`,
			id, outlet, day, status, amount, refund)),
		Sale: &Sale{OutletID: outlet, Day: day, Status: status, Amount: amount, Refund: refund, Currency: "IDR"},
	}
}

func mustSummary(t testing.TB, s *Store, from, to string) SummaryReport {
	t.Helper()
	rep, err := s.Summary(from, to)
	if err != nil {
		t.Fatalf("Summary: %v", err)
	}
	return rep
}

// dayOf finds one outlet's day in a report (a zero DaySummary if absent).
func dayOf(rep SummaryReport, day, outlet string) DaySummary {
	for _, d := range rep.Days {
		if d.Day == day && d.OutletID == outlet {
			return d
		}
	}
	return DaySummary{Day: day, OutletID: outlet, Amount: "0", RefundAmount: "0", VoidAmount: "0"}
}

func checkDay(t testing.TB, got DaySummary, sales, refunds, voids int64, amount, refund, void string, sinks ...SinkDay) {
	t.Helper()
	if got.Sales != sales || got.Refunds != refunds || got.Voids != voids ||
		got.Amount != amount || got.RefundAmount != refund || got.VoidAmount != void || !slices.Equal(got.Sinks, sinks) {
		t.Errorf("%s %s = %+v\nwant sales %d refunds %d voids %d amount %s refund %s void %s sinks %v",
			got.Day, got.OutletID, got, sales, refunds, voids, amount, refund, void, sinks)
	}
}

// The summary adds exact decimals per outlet and business day, and a new
// version of a sale (a refund, a void, an edit moving it to another day)
// replaces its old contribution instead of adding to it.
func TestSummaryCountsEachSaleOnceInItsCurrentVersion(t *testing.T) {
	s := openTemp(t)
	mustAppend(t, s, []Input{
		sale(1, "out_a", "2026-12-05", SaleCompleted, "150000", "0"),
		sale(2, "out_a", "2026-12-05", SaleCompleted, "13636.36", "0"),
		sale(3, "out_a", "2026-12-06", SaleCompleted, "25000.5", "0"),
		sale(4, "out_b", "2026-12-05", SaleVoid, "40000", "0"),
		sale(5, "out_b", "2026-12-05", SalePartiallyRefunded, "100000", "30000.25"),
		txInput(99, "1"), // no facts: not counted
		{Kind: KindProduct, Key: "moka/biz_1/out_a/p1", Data: []byte(`{"name":"Kopi"}`)},
	}, nil)
	rep := mustSummary(t, s, "2026-12-05", "2026-12-06")
	if rep.Currency != "IDR" || !rep.Since.IsZero() || len(rep.Days) != 3 {
		t.Fatalf("report = %+v", rep)
	}
	checkDay(t, dayOf(rep, "2026-12-05", "out_a"), 2, 0, 0, "163636.36", "0", "0")
	checkDay(t, dayOf(rep, "2026-12-06", "out_a"), 1, 0, 0, "25000.5", "0", "0")
	checkDay(t, dayOf(rep, "2026-12-05", "out_b"), 1, 1, 1, "100000", "30000.25", "40000")

	// The same versions again: nothing changes.
	if r := mustAppend(t, s, []Input{sale(1, "out_a", "2026-12-05", SaleCompleted, "150000", "0")}, nil); r.Unchanged != 1 {
		t.Fatalf("re-append = %+v", r)
	}
	// Sale 1 refunded in full, sale 2 voided, sale 3 edited onto another
	// day, sale 5 refunded a second time.
	mustAppend(t, s, []Input{
		sale(1, "out_a", "2026-12-05", SaleRefunded, "150000", "150000"),
		sale(2, "out_a", "2026-12-05", SaleVoid, "13636.36", "0"),
		sale(3, "out_a", "2026-12-04", SaleCompleted, "25000.5", "0"),
		sale(5, "out_b", "2026-12-05", SalePartiallyRefunded, "100000", "60000.5"),
	}, nil)
	rep = mustSummary(t, s, "2026-12-04", "2026-12-06")
	checkDay(t, dayOf(rep, "2026-12-05", "out_a"), 1, 1, 1, "150000", "150000", "13636.36")
	checkDay(t, dayOf(rep, "2026-12-06", "out_a"), 0, 0, 0, "0", "0", "0")
	checkDay(t, dayOf(rep, "2026-12-04", "out_a"), 1, 0, 0, "25000.5", "0", "0")
	checkDay(t, dayOf(rep, "2026-12-05", "out_b"), 1, 1, 1, "100000", "60000.5", "40000")

	// The range is inclusive and excludes the days around it.
	rep = mustSummary(t, s, "2026-12-05", "2026-12-05")
	for _, d := range rep.Days {
		if d.Day != "2026-12-05" {
			t.Errorf("day %s outside the range", d.Day)
		}
	}
}

// Each sink's acks and dead letters count for the day of the record, once
// per sale; a new version must be taken again; an ack of an outdated
// version counts for nothing; a requeued dead letter acked later moves from
// dead to delivered.
func TestSummaryDeliveredPerSink(t *testing.T) {
	s := openTemp(t)
	mustSetSinks(t, s, "upstream", "nats")
	up, nats := s.Sink("upstream"), s.Sink("nats")
	const day = "2026-12-06"
	r := mustAppend(t, s, []Input{
		sale(1, "out_a", day, SaleCompleted, "10000", "0"),
		sale(2, "out_a", day, SaleCompleted, "20000", "0"),
		sale(3, "out_a", day, SaleCompleted, "30000", "0"),
	}, nil)
	mustAck(t, up, span(r.FirstSeq, r.LastSeq)...)
	mustAck(t, up, r.FirstSeq) // twice: counted once
	mustAck(t, nats, r.FirstSeq)
	if err := nats.DeadLetter(r.FirstSeq+1, "HTTP 422"); err != nil {
		t.Fatal(err)
	}
	checkDay(t, dayOf(mustSummary(t, s, day, day), day, "out_a"), 3, 0, 0, "60000", "0", "0",
		SinkDay{Sink: "nats", Delivered: 1, DeadLetters: 1}, SinkDay{Sink: "upstream", Delivered: 3})

	// Sale 1 changes: neither sink has the new version yet. nats acks the
	// old version of sale 3 after the change of sale 3: no count either.
	r2 := mustAppend(t, s, []Input{
		sale(1, "out_a", day, SaleVoid, "10000", "0"),
		sale(3, "out_a", day, SaleCompleted, "30001", "0"),
	}, nil)
	mustAck(t, nats, r.LastSeq)
	checkDay(t, dayOf(mustSummary(t, s, day, day), day, "out_a"), 2, 0, 1, "50001", "0", "10000",
		SinkDay{Sink: "nats", DeadLetters: 1}, SinkDay{Sink: "upstream", Delivered: 1})
	mustAck(t, up, r2.FirstSeq, r2.LastSeq)
	mustAck(t, nats, r2.FirstSeq, r2.LastSeq)

	// The rejected sale goes back to nats and is taken this time.
	if n, err := s.RequeueAllOf("nats"); n != 1 || err != nil {
		t.Fatalf("RequeueAllOf = %d, %v", n, err)
	}
	mustAck(t, nats, pendingSeqs(t, nats)...)
	checkDay(t, dayOf(mustSummary(t, s, day, day), day, "out_a"), 2, 0, 1, "50001", "0", "10000",
		SinkDay{Sink: "nats", Delivered: 3}, SinkDay{Sink: "upstream", Delivered: 3})
}

// A database from before the summary (no summary bucket) gets an empty one
// on Open, dated, which then fills as records arrive; a new database has
// no start date. The summary survives a reopen and a compaction.
func TestSummaryStartsEmptyOnAnOlderDatabase(t *testing.T) {
	opts := testOptions(t, "")
	s := mustOpen(t, opts)
	mustAppend(t, s, []Input{sale(1, "out_a", "2026-12-01", SaleCompleted, "5000", "0")}, nil)
	if rep := mustSummary(t, s, "2026-12-01", "2026-12-01"); !rep.Since.IsZero() || len(rep.Days) != 1 {
		t.Fatalf("new database: %+v", rep)
	}
	// What an agent from before the summary left behind.
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketSummary) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, opts)
	defer s.Close()
	rep := mustSummary(t, s, "2026-12-01", "2026-12-31")
	if rep.Since.IsZero() || len(rep.Days) != 0 {
		t.Fatalf("upgraded database: %+v", rep)
	}
	since := rep.Since
	mustAppend(t, s, []Input{sale(2, "out_a", "2026-12-02", SaleCompleted, "7000", "0")}, nil)
	if _, _, err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, opts)
	defer s.Close()
	rep = mustSummary(t, s, "2026-12-01", "2026-12-31")
	if !rep.Since.Equal(since) || len(rep.Days) != 1 {
		t.Fatalf("after reopen: %+v (since %v)", rep, since)
	}
	checkDay(t, rep.Days[0], 1, 0, 0, "7000", "0", "0")
}

// Bad facts are a producer's bug: the Append fails and writes nothing.
func TestSummaryRejectsBadSaleFacts(t *testing.T) {
	s := openTemp(t)
	for _, bad := range []Sale{
		{OutletID: "out_a", Day: "2026-12-1", Amount: "1"},
		{OutletID: "out_a", Day: "2026-12-01", Amount: "1e5"},
		{OutletID: "out_a", Day: "2026-12-01", Amount: "1", Refund: "1,5"},
		{OutletID: "", Day: "2026-12-01", Amount: "1"},
	} {
		in := txInput(1, "1")
		in.Sale = &bad
		if _, err := s.Append([]Input{in}, nil); err == nil {
			t.Errorf("Append with %+v: no error", bad)
		}
	}
	if st, _ := s.Stats(); st.Pending != 0 {
		t.Errorf("pending = %d after refused appends", st.Pending)
	}
}

// PruneDedupe forgets the facts with their keys; the day aggregates stay.
func TestSummaryFactsPrunedWithDedupe(t *testing.T) {
	s := openTemp(t)
	mustAppend(t, s, []Input{
		sale(1, "out_a", "2025-01-01", SaleCompleted, "1000", "0"),
		sale(2, "out_a", "2026-12-26", SaleCompleted, "2000", "0"),
	}, nil)
	// Both keys were buffered before the cut.
	if _, err := s.PruneDedupe(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	var keys []string
	_ = s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDedupe).ForEach(func(k, v []byte) error {
			if f, err := factsOf(v); err != nil || f != nil {
				keys = append(keys, string(k))
			}
			return nil
		})
	})
	if len(keys) != 0 {
		t.Errorf("facts after prune = %v", keys)
	}
	// The day aggregates stay.
	if rep := mustSummary(t, s, "2025-01-01", "2025-01-01"); len(rep.Days) != 1 || rep.Days[0].Sales != 1 {
		t.Errorf("summary after prune = %+v", rep)
	}
}

// FuzzSaleFacts: whatever a producer passes, parseSale never panics, and
// accepted facts survive their encoding exactly.
func FuzzSaleFacts(f *testing.F) {
	f.Add("out_a", "2026-12-06", "completed", "150000", "0")
	f.Add("out_b", "2026-02-30", "void", "-13636.36", "")
	f.Add("x", "2026-12-06", "refunded", "1e5", ".5")
	f.Fuzz(func(t *testing.T, outlet, day, status, amount, refund string) {
		facts, err := parseSale(&Sale{OutletID: outlet, Day: day, Status: status, Amount: amount, Refund: refund})
		if err != nil {
			return
		}
		facts.origin = 1<<40 + 7
		back, err := decodeFacts(facts.encode(nil))
		if err != nil {
			t.Fatalf("decode of encoded %+v: %v", facts, err)
		}
		if back.outlet != outlet || back.day != day || back.status != status || back.amountText != amount ||
			back.refundText != refund || back.origin != facts.origin {
			t.Fatalf("round trip: %+v != %+v", back, facts)
		}
		var a dayAgg
		if err := a.add(facts, 1); err != nil {
			t.Fatal(err)
		}
		if err := a.add(back, -1); err != nil {
			t.Fatalf("facts decoded from %+v: %v", facts, err)
		}
		if a.sales != 0 || a.voids != 0 || !a.amount.IsZero() || !a.voidAmount.IsZero() || !a.refundAmount.IsZero() {
			t.Fatalf("add then remove left %+v", a)
		}
	})
}

// A sale whose next version cannot be mapped (AddDead with its key) keeps
// its counted version; the version after that replaces it, once.
func TestSummaryFactsSurviveAddDead(t *testing.T) {
	s := openTemp(t)
	const day = "2026-12-06"
	mustAppend(t, s, []Input{sale(1, "out_a", day, SaleCompleted, "10000", "0")}, nil)
	broken := Input{Kind: KindTransaction, Key: "moka/biz_1/out_a/1", Data: []byte(`{"grand_total":"x"}`)}
	if _, err := s.AddDead(broken, StageMap, "bad number"); err != nil {
		t.Fatal(err)
	}
	checkDay(t, dayOf(mustSummary(t, s, day, day), day, "out_a"), 1, 0, 0, "10000", "0", "0")
	mustAppend(t, s, []Input{sale(1, "out_a", day, SaleCompleted, "12500", "0")}, nil)
	checkDay(t, dayOf(mustSummary(t, s, day, day), day, "out_a"), 1, 0, 0, "12500", "0", "0")
}

// AppendResult.Changed tells new keys from new versions of known ones (the
// import's "new, changed" summary).
func TestAppendCountsChanged(t *testing.T) {
	s := openTemp(t)
	if r := mustAppend(t, s, []Input{txInput(1, "1"), txInput(2, "2")}, nil); r.Appended != 2 || r.Changed != 0 {
		t.Errorf("first append: %+v", r)
	}
	if r := mustAppend(t, s, []Input{txInput(1, "1"), txInput(2, "20"), txInput(3, "3")}, nil); r.Appended != 2 || r.Changed != 1 || r.Unchanged != 1 {
		t.Errorf("second append: %+v", r)
	}
	mustSetSinks(t, s, "upstream", "nats")
	if r, err := s.AppendFor([]string{"nats"}, []Input{txInput(1, "1"), txInput(3, "30")}, nil); err != nil || r.Refetched != 1 || r.Changed != 1 {
		t.Errorf("AppendFor: %+v, %v", r, err)
	}
}
