package store

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Days of the damage scenario.
const (
	dmgD1 = "2026-12-01"
	dmgD2 = "2026-12-02"
	dmgD3 = "2026-12-03"
	dmgD4 = "2026-12-04"
	dmgD5 = "2026-12-05"
)

// dmgSales are the sales of the damage scenario's first phase, by id.
var dmgSales = map[int]Input{
	1: sale(1, "out_a", dmgD1, SaleCompleted, "10000", "0"),
	2: sale(2, "out_a", dmgD1, SaleCompleted, "20000", "0"),
	3: sale(3, "out_b", dmgD1, SaleCompleted, "30000", "0"),
	4: sale(4, "out_a", dmgD1, SaleCompleted, "40000", "0"),
	5: sale(5, "out_a", dmgD2, SaleCompleted, "50000", "0"),
	6: sale(6, "out_b", dmgD2, SaleCompleted, "60000", "0"),
	7: sale(7, "out_a", dmgD3, SaleCompleted, "70000", "0"),
}

// What deliverAll does with a record.
const (
	take   = iota // ack
	reject        // dead-letter
	leave         // leave pending
)

// deliverAll has sink v take its pending records, writing them to the
// transcript: what says what it does with each (nil: take them all).
func deliverAll(t *testing.T, v *SinkView, transcript *[]string, what func(r Record) int) {
	t.Helper()
	recs, err := v.Pending(1 << 20)
	if err != nil {
		t.Fatalf("Pending(%s): %v", v.Name(), err)
	}
	var acks []uint64
	for _, r := range recs {
		*transcript = append(*transcript, fmt.Sprintf("%s %d %s %s %s %s", v.Name(), r.Seq, r.Kind, r.Key, r.Version, r.Data))
		w := take
		if what != nil {
			w = what(r)
		}
		switch w {
		case take:
			acks = append(acks, r.Seq)
		case reject:
			if err := v.DeadLetter(r.Seq, "HTTP 422"); err != nil {
				t.Fatalf("DeadLetter(%s, %d): %v", v.Name(), r.Seq, err)
			}
		}
	}
	mustAck(t, v, acks...)
}

// dmgPhase1 buffers and delivers the first sales: sales 1-4 and sale 4
// again for nats (one seq run), 70 records without a sale, sales 5-7
// (later runs). upstream takes everything; nats rejects sale 6 and the
// first record of sale 4, and leaves sale 2 and the second record of sale
// 4 pending. It returns the seq of each sale.
func dmgPhase1(t *testing.T, s *Store, transcript *[]string) map[int]uint64 {
	t.Helper()
	mustSetSinks(t, s, DefaultSink, "nats")
	seqs := map[int]uint64{}
	r := mustAppend(t, s, []Input{dmgSales[1], dmgSales[2], dmgSales[3], dmgSales[4]}, nil)
	for i := range 4 {
		seqs[i+1] = r.FirstSeq + uint64(i)
	}
	// Sale 4 again for nats: a pointer to its origin, in the same run.
	if r, err := s.AppendFor([]string{"nats"}, []Input{dmgSales[4]}, nil); err != nil || r.Refetched != 1 {
		t.Fatalf("AppendFor = %+v, %v", r, err)
	}
	mustAppend(t, s, inputs(1000, 70), nil)
	r = mustAppend(t, s, []Input{dmgSales[5], dmgSales[6], dmgSales[7]}, nil)
	for i := range 3 {
		seqs[i+5] = r.FirstSeq + uint64(i)
	}
	deliverAll(t, s.Sink(DefaultSink), transcript, nil)
	deliverAll(t, s.Sink("nats"), transcript, func(r Record) int {
		switch r.Seq {
		case seqs[6], seqs[4]:
			return reject
		case seqs[2], seqs[4] + 1:
			return leave
		}
		return take
	})
	return seqs
}

// dmgPhase2 is what follows, every kind of write: new versions (a refund,
// an edit, a void) and a new sale, an import of an unchanged version for
// nats, acks, a dead letter, requeues, pruning of the dedupe index, and a
// sale after it.
func dmgPhase2(t *testing.T, s *Store, transcript *[]string) {
	t.Helper()
	mustAppend(t, s, []Input{
		sale(1, "out_a", dmgD1, SaleRefunded, "10000", "10000"),
		sale(5, "out_a", dmgD2, SaleCompleted, "55000", "0"),
		sale(3, "out_b", dmgD1, SaleVoid, "30000", "0"),
		sale(8, "out_a", dmgD4, SaleCompleted, "8000", "0"),
	}, nil)
	if r, err := s.AppendFor([]string{"nats"}, []Input{dmgSales[7]}, nil); err != nil || r.Refetched != 1 {
		t.Fatalf("AppendFor = %+v, %v", r, err)
	}
	deliverAll(t, s.Sink(DefaultSink), transcript, nil)
	deliverAll(t, s.Sink("nats"), transcript, func(r Record) int {
		if r.Key == sale(8, "out_a", dmgD4, "", "", "").Key {
			return reject
		}
		return take
	})
	// Sales 6 and 8 go back to nats; sale 4 stays rejected (its second
	// record, taken now, counts for it).
	dl, err := s.DeadLettersOf("nats", 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for _, d := range dl {
		if d.Record.Key != dmgSales[4].Key {
			ids = append(ids, d.ID)
		}
	}
	if n, err := s.RequeueOf("nats", ids...); n != 2 || err != nil {
		t.Fatalf("RequeueOf(%v) = %d, %v", ids, n, err)
	}
	deliverAll(t, s.Sink("nats"), transcript, nil)
	if n, err := s.PruneDedupe(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)); n == 0 || err != nil {
		t.Fatalf("PruneDedupe = %d, %v", n, err)
	}
	mustAppend(t, s, []Input{sale(9, "out_b", dmgD5, SaleCompleted, "9000", "0")}, nil)
	deliverAll(t, s.Sink(DefaultSink), transcript, nil)
	deliverAll(t, s.Sink("nats"), transcript, nil)
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	dl, err = s.DeadLetters(100)
	if err != nil {
		t.Fatal(err)
	}
	*transcript = append(*transcript, fmt.Sprintf("stats pending %d dead %d, %d dead letters listed", st.Pending, st.DeadLetters, len(dl)))
}

// damageFile changes the closed database at path with fn.
func damageFile(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// dedupeValue returns the dedupe value of sale id and where its facts
// start.
func dedupeValue(tx *bolt.Tx, id int) (v []byte, facts int) {
	v = append([]byte(nil), tx.Bucket(bucketDedupe).Get([]byte(dmgSales[id].Key))...)
	return v, dedupeHead(v) + 1
}

// A damaged day-summary value never fails a write of the buffer: for each
// kind of value, damaged in the file between two runs of the agent, every
// later Append, AppendFor, Ack, DeadLetter, Requeue and PruneDedupe
// succeeds and the sinks get exactly the records an undamaged store gives
// them; the summary marks the days the damage may have made wrong
// incomplete — and only those: the other days are exact — and the marks
// survive a reopen and a compaction.
func TestSummaryDamageNeverStopsTheBuffer(t *testing.T) {
	every := func(seqs map[int]uint64) []string { // every day up to D4
		return []string{dmgD1 + " out_a", dmgD1 + " out_b", dmgD2 + " out_a", dmgD2 + " out_b", dmgD3 + " out_a", dmgD4 + " out_a"}
	}
	for _, tc := range []struct {
		name   string
		damage func(tx *bolt.Tx, seqs map[int]uint64) error
		// want are the days (day outlet) marked incomplete.
		want func(seqs map[int]uint64) []string
		// log is a part of the expected warning.
		log string
	}{{
		name: "day aggregate",
		damage: func(tx *bolt.Tx, _ map[int]uint64) error {
			return tx.Bucket(bucketSumDays).Put([]byte(dmgD1+"\x00out_a"), []byte{0xff, 0xff, 0xff})
		},
		want: func(map[int]uint64) []string { return []string{dmgD1 + " out_a"} },
		log:  `what="day aggregate`,
	}, {
		name: "day aggregate below zero",
		damage: func(tx *bolt.Tx, _ map[int]uint64) error {
			return tx.Bucket(bucketSumDays).Put([]byte(dmgD1+"\x00out_a"), (&dayAgg{}).encode(nil))
		},
		want: func(map[int]uint64) []string { return []string{dmgD1 + " out_a"} },
		log:  `what="count below zero"`,
	}, {
		// Rebuilt from the buffer (sale 2 and the pointer of sale 4
		// are still pending for nats) and healed when nats takes the
		// pointer: nothing is lost.
		name: "seq run",
		damage: func(tx *bolt.Tx, seqs map[int]uint64) error {
			if seqs[2]/64 != (seqs[4]+1)/64 {
				return fmt.Errorf("sale 2 and sale 4's pointer in different runs: seqs %v", seqs)
			}
			return tx.Bucket(bucketSumSeqs).Put(binary.BigEndian.AppendUint64(nil, seqs[2]/64), []byte{0xff})
		},
		want: func(map[int]uint64) []string { return nil },
		log:  `what="seq run"`,
	}, {
		name: "sink marks",
		damage: func(tx *bolt.Tx, seqs map[int]uint64) error {
			return tx.Bucket(bucketSumMarks).Put(marksKey(nil, DefaultSink, seqs[1]), []byte{1, 2, 3})
		},
		want: func(seqs map[int]uint64) []string {
			// The days of the origins of the run: sales 1-4 in it.
			var days []string
			for id := 1; id <= 4; id++ {
				if seqs[id]/64 == seqs[1]/64 {
					in := dmgSales[id]
					days = append(days, in.Sale.Day+" "+in.Sale.OutletID)
				}
			}
			return days
		},
		log: `what="sink marks"`,
	}, {
		// The facts' origin tells the day.
		name: "facts truncated",
		damage: func(tx *bolt.Tx, _ map[int]uint64) error {
			v, _ := dedupeValue(tx, 1)
			return tx.Bucket(bucketDedupe).Put([]byte(dmgSales[1].Key), v[:len(v)-2])
		},
		want: func(map[int]uint64) []string { return []string{dmgD1 + " out_a"} },
		log:  `what="sale facts"`,
	}, {
		// An origin the summary does not know: the outlet and day at
		// the head of the facts tell.
		name: "facts with a wrong origin",
		damage: func(tx *bolt.Tx, _ map[int]uint64) error {
			v, at := dedupeValue(tx, 1)
			nv := append(v[:at:at], v[at:at+versionLen]...)
			nv = binary.AppendUvarint(nv, 1)
			nv = binary.AppendUvarint(nv, 5)
			nv = append(nv, "out_a"...)
			nv = binary.AppendUvarint(nv, 10)
			nv = append(nv, dmgD1+"\xff"...)
			return tx.Bucket(bucketDedupe).Put([]byte(dmgSales[1].Key), nv)
		},
		want: func(map[int]uint64) []string { return []string{dmgD1 + " out_a"} },
		log:  `what="sale facts"`,
	}, {
		// Nothing tells the day: every day the summary had then is
		// marked, the day after them (D5) is not.
		name: "facts without a head",
		damage: func(tx *bolt.Tx, _ map[int]uint64) error {
			v, at := dedupeValue(tx, 7)
			return tx.Bucket(bucketDedupe).Put([]byte(dmgSales[7].Key), v[:at+10])
		},
		want: every,
		log:  `up_to=` + dmgD4,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			// The same history in two stores; one is damaged between
			// the phases.
			clean, damaged := testOptions(t, ""), testOptions(t, "")
			var logs logBuffer
			damaged.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			var cleanT, damagedT []string
			sc, sd := mustOpen(t, clean), mustOpen(t, damaged)
			seqs := dmgPhase1(t, sc, &cleanT)
			if got := dmgPhase1(t, sd, &damagedT); !equalMaps(got, seqs) {
				t.Fatalf("phase 1 seqs %v and %v", seqs, got)
			}
			for _, s := range []*Store{sc, sd} {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			damageFile(t, damaged.Path, func(tx *bolt.Tx) error { return tc.damage(tx, seqs) })
			sc, sd = mustOpen(t, clean), mustOpen(t, damaged)
			defer func() { _ = sc.Close() }()
			defer func() { _ = sd.Close() }()

			// Reading never fails; a day whose aggregate does not decode
			// reads as zero, incomplete.
			before := mustSummary(t, sd, dmgD1, dmgD5)
			if tc.name == "day aggregate" {
				got := dayOf(before, dmgD1, "out_a")
				if !got.Incomplete {
					t.Errorf("undecodable day read as %+v", got)
				}
				checkDay(t, got, 0, 0, 0, "0", "0", "0")
			}

			dmgPhase2(t, sc, &cleanT)
			dmgPhase2(t, sd, &damagedT)
			if !slices.Equal(cleanT, damagedT) {
				t.Fatalf("the sinks got other records:\nundamaged %q\ndamaged   %q", cleanT, damagedT)
			}

			want := tc.want(seqs)
			checkIncomplete(t, mustSummary(t, sc, dmgD1, dmgD5), mustSummary(t, sd, dmgD1, dmgD5), want)
			if len(want) > 0 && !strings.Contains(logs.String(), "Day summary damaged") {
				t.Errorf("damage not logged: %s", logs.String())
			}
			if !strings.Contains(logs.String(), tc.log) {
				t.Errorf("log without %s: %s", tc.log, logs.String())
			}
			if n := strings.Count(logs.String(), "Day summary damaged"); n > len(want)+1 {
				t.Errorf("%d warnings for %d days: %s", n, len(want), logs.String())
			}

			// The marks stay: after a reopen and a compaction.
			rep := mustSummary(t, sd, dmgD1, dmgD5)
			if err := sd.Close(); err != nil {
				t.Fatal(err)
			}
			sd = mustOpen(t, damaged)
			if _, _, err := sd.Compact(); err != nil {
				t.Fatal(err)
			}
			if again := mustSummary(t, sd, dmgD1, dmgD5); !equalReports(rep, again) {
				t.Errorf("after reopen and compaction:\n%+v\nbefore:\n%+v", again, rep)
			}
			// And further writes keep working.
			mustAppend(t, sd, []Input{sale(10, "out_a", dmgD1, SaleCompleted, "1", "0")}, nil)
			deliverAll(t, sd.Sink(DefaultSink), &damagedT, nil)
		})
	}
}

func equalMaps(a, b map[int]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func equalReports(a, b SummaryReport) bool {
	return a.Since.Equal(b.Since) && a.Currency == b.Currency &&
		slices.EqualFunc(a.Days, b.Days, func(x, y DaySummary) bool {
			return x.Day == y.Day && x.OutletID == y.OutletID && x.Incomplete == y.Incomplete &&
				x.Sales == y.Sales && x.Refunds == y.Refunds && x.Voids == y.Voids && x.Amount == y.Amount &&
				x.RefundAmount == y.RefundAmount && x.VoidAmount == y.VoidAmount && slices.Equal(x.Sinks, y.Sinks)
		})
}

// checkIncomplete checks that exactly the days want ("day outlet") of the
// damaged report are incomplete and every other day equals the undamaged
// one.
func checkIncomplete(t *testing.T, clean, damaged SummaryReport, want []string) {
	t.Helper()
	var got []string
	for _, d := range damaged.Days {
		if d.Incomplete {
			got = append(got, d.Day+" "+d.OutletID)
		}
	}
	slices.Sort(want)
	if !slices.Equal(got, slices.Compact(want)) {
		t.Errorf("incomplete days %q, want %q", got, want)
	}
	for _, d := range clean.Days {
		if d.Incomplete {
			t.Errorf("undamaged store: %s %s incomplete", d.Day, d.OutletID)
		}
		dd := dayOf(damaged, d.Day, d.OutletID)
		if dd.Incomplete {
			continue
		}
		if !equalReports(SummaryReport{Days: []DaySummary{d}}, SummaryReport{Days: []DaySummary{dd}}) {
			t.Errorf("%s %s: %+v, undamaged %+v", d.Day, d.OutletID, dd, d)
		}
	}
	if len(damaged.Days) != len(clean.Days) {
		t.Errorf("%d days, undamaged %d", len(damaged.Days), len(clean.Days))
	}
}

// A database without incomplete markers reads as complete, and one whose
// only damage is in a day that is never written again still answers the
// summary, that day zero and incomplete, the others exact.
func TestSummaryReadSkipsUndecodableDay(t *testing.T) {
	opts := testOptions(t, "")
	s := mustOpen(t, opts)
	mustAppend(t, s, []Input{dmgSales[1], dmgSales[3], dmgSales[5]}, nil)
	for _, d := range mustSummary(t, s, dmgD1, dmgD5).Days {
		if d.Incomplete {
			t.Errorf("%s %s incomplete in an undamaged store", d.Day, d.OutletID)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	damageFile(t, opts.Path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSumDays).Put([]byte(dmgD1+"\x00out_b"), []byte{})
	})
	s = mustOpen(t, opts)
	defer s.Close()
	rep := mustSummary(t, s, dmgD1, dmgD5)
	if len(rep.Days) != 3 {
		t.Fatalf("days = %+v", rep.Days)
	}
	if d := dayOf(rep, dmgD1, "out_b"); !d.Incomplete || d.Sales != 0 {
		t.Errorf("damaged day = %+v", d)
	}
	for _, d := range []DaySummary{dayOf(rep, dmgD1, "out_a"), dayOf(rep, dmgD2, "out_a")} {
		if d.Incomplete || d.Sales != 1 {
			t.Errorf("undamaged day = %+v", d)
		}
	}
}

// FuzzFactsPlace: the outlet and day read at the head of damaged facts
// never panic the reader, and of facts that decode they are theirs.
func FuzzFactsPlace(f *testing.F) {
	good, _ := parseSale(&Sale{OutletID: "out_a", Day: dmgD1, Amount: "1"})
	good.origin = 77
	enc := good.encode(nil)
	f.Add(enc)
	f.Add(enc[:len(enc)-1])
	f.Add(enc[:versionLen+1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		outlet, day, ok := factsPlace(b)
		if !ok {
			return
		}
		if _, err := time.Parse(time.DateOnly, day); err != nil || outlet == "" {
			t.Fatalf("placed at %q %q", outlet, day)
		}
		if fs, err := decodeFacts(b); err == nil && (fs.outlet != outlet || fs.day != day) {
			t.Fatalf("facts %+v placed at %q %q", fs, outlet, day)
		}
	})
}
