package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Durable ingest: commits of B ~800-byte records with distinct keys, fsync
// on (bbolt's default), dedupe index and outbox as in production. Compare
// with BenchmarkRawFileAppend, the ceiling on the same disk in the same run
// (PERFORMANCE.md).
//
//	go test -run '^$' -bench . -benchtime 3s ./store/
func BenchmarkAppend(b *testing.B) {
	for _, variant := range []struct {
		name           string
		noFreelistSync bool
	}{{"freelist-sync", false}, {"no-freelist-sync", true}} {
		for _, size := range []int{1, 100, 1000} {
			b.Run(fmt.Sprintf("%s/B=%d", variant.name, size), func(b *testing.B) {
				opts := testOptions(b, b.TempDir())
				opts.noFreelistSync = variant.noFreelistSync
				s := mustOpen(b, opts)
				defer s.Close()
				gen := newBenchGen()
				b.SetBytes(int64(size * len(gen.pool[0].Data)))
				b.ResetTimer()
				for range b.N {
					b.StopTimer()
					in := gen.next(size)
					b.StartTimer()
					res, err := s.Append(in, nil)
					if err != nil || res.Appended != size {
						b.Fatalf("Append = %+v, %v", res, err)
					}
				}
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}

// BenchmarkAppendSummary measures what the day summary costs an Append:
// the same records with and without their Sale facts, side by side.
//
//	go test -run '^$' -bench 'AppendSummary' -benchtime 300x -count 5 ./store/
func BenchmarkAppendSummary(b *testing.B) {
	for _, size := range []int{1, 100, 1000} {
		for _, facts := range []bool{false, true} {
			b.Run(fmt.Sprintf("B=%d/facts=%v", size, facts), func(b *testing.B) {
				s := mustOpen(b, testOptions(b, b.TempDir()))
				defer s.Close()
				gen := newBenchGen()
				gen.noSale = !facts
				b.ResetTimer()
				for range b.N {
					b.StopTimer()
					in := gen.next(size)
					b.StartTimer()
					if res, err := s.Append(in, nil); err != nil || res.Appended != size {
						b.Fatalf("Append = %+v, %v", res, err)
					}
				}
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}

// BenchmarkDrainSummary is BenchmarkDrain with and without the records'
// Sale facts: what the day summary (its seq runs, marks and day
// aggregates) costs an Ack.
func BenchmarkDrainSummary(b *testing.B) {
	for _, facts := range []bool{false, true} {
		b.Run(fmt.Sprintf("facts=%v", facts), func(b *testing.B) {
			const batch = 500
			s := mustOpen(b, testOptions(b, b.TempDir()))
			defer s.Close()
			gen := newBenchGen()
			gen.noSale = !facts
			benchDrain(b, s, gen, batch)
		})
	}
}

// benchGen makes batches of inputs with distinct keys, generated while the
// timer is stopped (pre-generating all of them would leave a large heap for
// the garbage collector to scan during the measurement). The data come from
// a pool of 1000 distinct ~800-byte transactions.
type benchGen struct {
	pool []Input
	k    int
	// noSale leaves out the day summary's facts (BenchmarkAppendSummary).
	noSale bool
}

func newBenchGen() *benchGen { return &benchGen{pool: benchInputs(0, 1000)} }

func (g *benchGen) next(size int) []Input {
	in := make([]Input, size)
	for j := range in {
		in[j] = Input{
			Kind: KindTransaction,
			Key:  "moka/biz_1/outlet_456/MOK" + strconv.Itoa(1e9 + g.k)[1:],
			Data: g.pool[g.k%len(g.pool)].Data,
		}
		// The day summary's facts, as the Moka loop gives them: a few
		// outlets and days, every record a new sale.
		if !g.noSale {
			in[j].Sale = &Sale{OutletID: "outlet_45" + strconv.Itoa(g.k%3), Day: "2026-12-0" + strconv.Itoa(1+g.k/5000%9),
				Status: SaleCompleted, Amount: "150000", Refund: "0", Currency: "IDR"}
		}
		g.k++
	}
	return in
}

// BenchmarkRawFileAppend is the ceiling: the same records written to an
// append-only file with fsync every B records.
func BenchmarkRawFileAppend(b *testing.B) {
	for _, size := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("B=%d", size), func(b *testing.B) {
			f, err := os.OpenFile(filepath.Join(b.TempDir(), "raw.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			gen := newBenchGen()
			buf := make([]byte, 0, size*1024)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				batch := gen.next(size)
				b.StartTimer()
				buf = buf[:0]
				for _, in := range batch {
					buf = appendRecord(buf, benchTime, in.Kind, in.Key, &benchVersion, in.Data)
				}
				if _, err := f.Write(buf); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

var (
	benchTime    = newClock().Now()
	benchVersion [versionLen]byte
)

// BenchmarkDrain is the forwarder's side: Pending(500) then Ack of those
// records, one durable transaction per batch.
func BenchmarkDrain(b *testing.B) {
	const batch = 500
	opts := testOptions(b, b.TempDir())
	s := mustOpen(b, opts)
	defer s.Close()
	benchDrain(b, s, newBenchGen(), batch)
}

// benchDrain fills s with b.N batches of gen's records, without fsync, then
// measures b.N rounds of Pending(batch) and the Ack of those records.
func benchDrain(b *testing.B, s *Store, gen *benchGen, batch int) {
	b.Helper()
	s.db.NoSync = true
	for range (b.N*batch + 999) / 1000 {
		if _, err := s.Append(gen.next(1000), nil); err != nil {
			b.Fatal(err)
		}
	}
	s.db.NoSync = false
	if err := s.db.Sync(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		recs, err := s.Pending(batch)
		if err != nil || len(recs) != batch {
			b.Fatalf("Pending = %d, %v", len(recs), err)
		}
		seqs := make([]uint64, len(recs))
		for i, r := range recs {
			seqs[i] = r.Seq
		}
		if err := s.Ack(seqs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkDrainSinks is BenchmarkDrain for one sink's view with the
// first sink alone, and with a second sink enabled that is down for the
// whole drain (the records stay buffered for it: the first sink's acks only
// move its position) or that drains at the same pace (every second batch,
// its acks remove the records): PERFORMANCE.md's "adding a second sink
// costs the first ≤ 10 % of its drain rate", at the store's level.
//
//	go test -run '^$' -bench 'Drain' -benchtime 200x -count 5 ./store/
func BenchmarkDrainSinks(b *testing.B) {
	const batch = 500
	for _, mode := range []string{"alone", "second-down", "second-draining"} {
		b.Run(mode, func(b *testing.B) {
			s := mustOpen(b, testOptions(b, b.TempDir()))
			defer s.Close()
			sinks := []string{"upstream"}
			if mode != "alone" {
				sinks = append(sinks, "second")
			}
			if err := s.SetSinks(sinks...); err != nil {
				b.Fatal(err)
			}
			s.db.NoSync = true
			gen := newBenchGen()
			for range (b.N*batch + 999) / 1000 {
				if _, err := s.Append(gen.next(1000), nil); err != nil {
					b.Fatal(err)
				}
			}
			s.db.NoSync = false
			if err := s.db.Sync(); err != nil {
				b.Fatal(err)
			}
			drain := func(v *SinkView) {
				recs, err := v.Pending(batch)
				if err != nil || len(recs) != batch {
					b.Fatalf("Pending(%s) = %d, %v", v.Name(), len(recs), err)
				}
				seqs := make([]uint64, len(recs))
				for i, r := range recs {
					seqs[i] = r.Seq
				}
				if err := v.Ack(seqs...); err != nil {
					b.Fatal(err)
				}
			}
			first, second := s.Sink("upstream"), s.Sink("second")
			var elapsed time.Duration
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				drain(first)
				elapsed += time.Since(start)
				if mode == "second-draining" {
					drain(second)
				}
			}
			b.StopTimer()
			// The first sink's rate: its own Pending and Ack, not the
			// second's work between them.
			b.ReportMetric(float64(b.N*batch)/elapsed.Seconds(), "records/s")
		})
	}
}

// BenchmarkOpen measures Open+Close of a database holding a million pending
// records (~1.2 GB, 900,000 pending after 100,000 acks, so the freelist is
// not empty): the service must report RUNNING within a second (SPEC §11).
// The fixture is built once, without fsync, and takes a few seconds.
func BenchmarkOpen(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 1.2 GB fixture")
	}
	openFixture.Do(func() {
		dir, err := os.MkdirTemp("", "store-bench-open")
		if err != nil {
			openFixture.err = err
			return
		}
		openFixture.dir = dir
		opts := Options{Path: filepath.Join(dir, "agent.db")}
		s, err := Open(opts)
		if err != nil {
			openFixture.err = err
			return
		}
		defer s.Close()
		s.db.NoSync = true
		gen := newBenchGen()
		for range 1000 {
			if _, err := s.Append(gen.next(1000), nil); err != nil {
				openFixture.err = err
				return
			}
		}
		for range 200 {
			recs, err := s.Pending(500)
			if err != nil {
				openFixture.err = err
				return
			}
			seqs := make([]uint64, len(recs))
			for i, r := range recs {
				seqs[i] = r.Seq
			}
			if err := s.Ack(seqs...); err != nil {
				openFixture.err = err
				return
			}
		}
		openFixture.err = s.db.Sync()
	})
	if openFixture.err != nil {
		b.Fatal(openFixture.err)
	}
	opts := Options{Path: filepath.Join(openFixture.dir, "agent.db")}
	b.ResetTimer()
	for range b.N {
		s, err := Open(opts)
		if err != nil {
			b.Fatal(err)
		}
		if st, err := s.Stats(); err != nil || st.Pending != 900_000 {
			b.Fatalf("stats = %+v, %v", st, err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

var openFixture struct {
	sync.Once
	dir string
	err error
}

// TestMain removes the BenchmarkOpen and BenchmarkStatusReads fixtures.
func TestMain(m *testing.M) {
	code := m.Run()
	if openFixture.dir != "" {
		_ = os.RemoveAll(openFixture.dir)
	}
	for _, s := range statusFixtures.stores {
		_ = s.Close()
	}
	if statusFixtures.dir != "" {
		_ = os.RemoveAll(statusFixtures.dir)
	}
	os.Exit(code)
}

// statusSize is a buffer the reads behind GET /v1/status and GET
// /v1/summary are measured against (BenchmarkStatusReads): days business
// days of sales of 3 outlets, 300 sales each, with products records a day
// besides; two sinks enabled, "upstream" and "jurnal", where upstream acked
// the acked oldest records (kept for jurnal) and set dead records aside.
// With refetch, one sale per outlet and day was fetched again for upstream
// alone (an import for one sink while the live polls went on), so jurnal,
// behind, is done with seqs in the middle of what it needs: one done range
// each in its sink state.
type statusSize struct {
	name                      string
	days, products            int
	acked, dead               int
	refetch                   bool
	wantUpstream, wantJurnal  int64 // pending records once built
	wantDead, wantSummaryDays int
}

// statusSizes are a small buffer (two weeks of sales, most delivered) and a
// large one: half a year of sales all pending for a Jurnal sink, 200,000
// records pending for an upstream that is down, 5,000 dead letters, 540
// done ranges.
var statusSizes = []statusSize{
	{name: "small", days: 14, acked: 12_000, dead: 10,
		wantUpstream: 14*900 - 12_000 - 10, wantJurnal: 14 * 900, wantDead: 10, wantSummaryDays: 14 * 3},
	{name: "large", days: 180, products: 500, acked: 47_000, dead: 5_000, refetch: true,
		wantUpstream: 180*1400 + 540 - 47_000 - 5_000, wantJurnal: 180 * 1400, wantDead: 5_000, wantSummaryDays: 180 * 3},
}

// statusLastDay is the fixtures' last business day: the "today" of the
// summary windows.
var statusLastDay = time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)

var statusOutlets = []string{"outlet_451", "outlet_452", "outlet_453"}

// statusFixtures are built once per test binary (a large one takes several
// seconds) and removed by TestMain.
var statusFixtures struct {
	sync.Mutex
	dir    string
	stores map[string]*Store
}

// statusFixture returns the store of size, building it the first time.
func statusFixture(b *testing.B, size statusSize) *Store {
	b.Helper()
	statusFixtures.Lock()
	defer statusFixtures.Unlock()
	if s := statusFixtures.stores[size.name]; s != nil {
		return s
	}
	if statusFixtures.dir == "" {
		dir, err := os.MkdirTemp("", "store-bench-status")
		if err != nil {
			b.Fatal(err)
		}
		statusFixtures.dir, statusFixtures.stores = dir, map[string]*Store{}
	}
	s, err := buildStatusFixture(filepath.Join(statusFixtures.dir, size.name+".db"), size)
	if err != nil {
		b.Fatal(err)
	}
	statusFixtures.stores[size.name] = s
	return s
}

func buildStatusFixture(path string, size statusSize) (*Store, error) {
	s, err := Open(Options{Path: path})
	if err != nil {
		return nil, err
	}
	s.db.NoSync = true
	if err := s.SetSinks(DefaultSink, "jurnal"); err != nil {
		return nil, err
	}
	pool := benchInputs(0, 1000)
	n := 0
	data := func() []byte { n++; return pool[n%len(pool)].Data }
	for d := range size.days {
		day := statusLastDay.AddDate(0, 0, d-(size.days-1)).Format(time.DateOnly)
		for _, outlet := range statusOutlets {
			in := make([]Input, 300)
			for i := range in {
				sale := &Sale{OutletID: outlet, Day: day, Status: SaleCompleted, Amount: "55000", Refund: "0", Currency: "IDR"}
				switch {
				case i%50 == 0:
					sale.Status = SaleVoid
				case i%40 == 0:
					sale.Status, sale.Amount, sale.Refund = SalePartiallyRefunded, "13636.36", "2000.5"
				}
				in[i] = Input{Kind: KindTransaction, Key: fmt.Sprintf("moka/biz_1/%s/%s-%03d", outlet, day, i), Data: data(), Sale: sale}
			}
			if _, err := s.Append(in, nil); err != nil {
				return nil, err
			}
			if size.refetch {
				if res, err := s.AppendFor([]string{DefaultSink}, in[:1], nil); err != nil || res.Refetched != 1 {
					return nil, fmt.Errorf("refetch: %+v, %v", res, err)
				}
			}
		}
		if size.products > 0 {
			in := make([]Input, size.products)
			for i := range in {
				in[i] = Input{Kind: KindProduct, Key: fmt.Sprintf("moka/biz_1/product/%s-%03d", day, i), Data: data()}
			}
			if _, err := s.Append(in, nil); err != nil {
				return nil, err
			}
		}
	}
	for _, outlet := range statusOutlets {
		for _, what := range []string{"transactions", "updates", "products"} {
			st := SourceState{Source: "moka/biz_1/" + outlet + "/" + what, LastSyncAt: statusLastDay,
				Counts: map[string]int64{"buffered": 54_000}}
			if err := s.PutSourceState(st); err != nil {
				return nil, err
			}
		}
	}
	up := s.Sink(DefaultSink)
	for left := size.acked; left > 0; {
		recs, err := up.Pending(min(left, 1000))
		if err != nil {
			return nil, err
		}
		seqs := make([]uint64, len(recs))
		for i, r := range recs {
			seqs[i] = r.Seq
		}
		if err := up.Ack(seqs...); err != nil {
			return nil, err
		}
		left -= len(recs)
	}
	recs, err := up.Pending(size.dead)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if err := up.DeadLetter(r.Seq, "HTTP 422: rejected by the upstream"); err != nil {
			return nil, err
		}
	}
	s.db.NoSync = false
	if err := s.db.Sync(); err != nil {
		return nil, err
	}
	st, err := s.Stats()
	if err != nil {
		return nil, err
	}
	us, _ := st.Sink(DefaultSink)
	js, _ := st.Sink("jurnal")
	if us.Pending != size.wantUpstream || js.Pending != size.wantJurnal || st.DeadLetters != int64(size.wantDead) {
		return nil, fmt.Errorf("fixture %s: upstream %d pending, jurnal %d, %d dead letters", size.name, us.Pending, js.Pending, st.DeadLetters)
	}
	return s, nil
}

// BenchmarkStatusReads measures the store's reads behind GET /v1/status
// (the tray asks every 3 s, each open dashboard every 5 s) and GET
// /v1/summary (the tray's one day every 3 s, the dashboard's 14 days on
// each render), against a small and a large buffer in the same run: none
// of them may grow with the buffer. Stats is the buffer's and every
// sink's figures; SourceStates the nine reads of the Moka syncer's status
// (three per outlet); Summary the day summary of the last days days, as
// the agent asks it (up to tomorrow, for an outlet east of moka.timezone).
// The fixtures are built once per test binary (the large one, a 340 MiB
// file, takes a few seconds).
//
//	go test -run '^$' -bench StatusReads -benchmem -count 3 ./store/
func BenchmarkStatusReads(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 340 MiB fixture")
	}
	for _, size := range statusSizes {
		b.Run("size="+size.name+"/Stats", func(b *testing.B) {
			s := statusFixture(b, size)
			var st Stats
			b.ReportAllocs()
			for b.Loop() {
				var err error
				st, err = s.Stats()
				if err != nil || len(st.Sinks) != 2 || st.DeadLetters != int64(size.wantDead) {
					b.Fatalf("Stats = %+v, %v", st, err)
				}
			}
			b.ReportMetric(float64(st.FileSize)/(1<<20), "db-MiB")
		})
		b.Run("size="+size.name+"/SourceStates", func(b *testing.B) {
			s := statusFixture(b, size)
			b.ReportAllocs()
			for b.Loop() {
				for _, outlet := range statusOutlets {
					for _, what := range []string{"transactions", "updates", "products"} {
						if _, ok, err := s.SourceState("moka/biz_1/" + outlet + "/" + what); !ok || err != nil {
							b.Fatalf("SourceState(%s %s) = %v, %v", outlet, what, ok, err)
						}
					}
				}
			}
		})
		for _, days := range []int{1, 14, 180} {
			b.Run(fmt.Sprintf("size=%s/Summary-days=%d", size.name, days), func(b *testing.B) {
				s := statusFixture(b, size)
				from := statusLastDay.AddDate(0, 0, 1-days).Format(time.DateOnly)
				to := statusLastDay.AddDate(0, 0, 1).Format(time.DateOnly)
				want := min(days*3, size.wantSummaryDays)
				b.ReportAllocs()
				for b.Loop() {
					rep, err := s.Summary(from, to)
					if err != nil || len(rep.Days) != want {
						b.Fatalf("Summary(%s, %s) = %d days, %v; want %d", from, to, len(rep.Days), err, want)
					}
				}
			})
		}
	}
}
