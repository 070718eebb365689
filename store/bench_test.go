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

// TestMain removes the BenchmarkOpen fixture.
func TestMain(m *testing.M) {
	code := m.Run()
	if openFixture.dir != "" {
		_ = os.RemoveAll(openFixture.dir)
	}
	os.Exit(code)
}
