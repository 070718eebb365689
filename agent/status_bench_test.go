package agent

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/store"
)

// statusBenchSize is a buffer the whole /v1/status and /v1/summary are
// measured against (BenchmarkStatusAndSummary), as store's
// BenchmarkStatusReads builds it: days business days of 3 outlets with 300
// sales each and products product records a day; upstream and jurnal
// enabled, upstream (down) acked the acked oldest records and set dead
// records aside; with refetch, one sale per outlet and day was fetched
// again for upstream alone while jurnal was behind.
type statusBenchSize struct {
	name           string
	days, products int
	acked, dead    int
	refetch        bool
	wantPending    int64 // records in the buffer once built
}

var statusBenchSizes = []statusBenchSize{
	{name: "small", days: 14, acked: 12_000, dead: 10, wantPending: 14 * 900},
	// The 111 records fetched again for upstream alone among those it
	// acked or set aside left the buffer: jurnal never needed them.
	{name: "large", days: 180, products: 500, acked: 47_000, dead: 5_000, refetch: true, wantPending: 180*1400 + 540 - 111},
}

var statusBenchOutlets = []string{"outlet_451", "outlet_452", "outlet_453"}

// statusBenchNow is the fixture's "now": its last business day, in the
// afternoon in moka.timezone (Asia/Jakarta).
var statusBenchNow = time.Date(2026, 12, 6, 15, 0, 0, 0, time.FixedZone("WIB", 7*3600))

// statusBenchConfig enables Moka (API key, 3 outlets), the PWBI upstream
// and Jurnal (invoice mode); nothing is ever contacted: the agent's
// workers do not run.
func statusBenchConfig(dataDir string) *config.Config {
	c := config.Default()
	cfg := &c
	cfg.Agent.ID = "status-bench"
	cfg.Agent.DataDir = dataDir
	cfg.Moka.Enabled = true
	cfg.Moka.API = config.MokaAPIKey
	cfg.Moka.BaseURL = "http://127.0.0.1:1"
	cfg.Moka.APIKey = config.NewSecret("key-status-bench")
	cfg.Moka.BusinessID = "biz_1"
	cfg.Moka.Outlets = statusBenchOutlets
	cfg.Upstream.URL = "http://127.0.0.1:1/v1/ingest"
	cfg.Upstream.Token = config.NewSecret("tok-status-bench")
	cfg.Jurnal.Enabled = true
	cfg.Jurnal.BaseURL = "http://127.0.0.1:1"
	cfg.Jurnal.ClientID = "client-status-bench"
	cfg.Jurnal.ClientSecret = config.NewSecret("secret-status-bench")
	return cfg
}

// statusBenchAgent is an agent wired as Run wires it — store, one delivery
// loop per sink, the Moka syncer, the checkout gateway — on a store filled
// to size, without its workers or listeners (they would change the figures
// while they are measured).
func statusBenchAgent(b *testing.B, size statusBenchSize) *Agent {
	b.Helper()
	dir := b.TempDir()
	cfg := statusBenchConfig(dir)
	st, err := store.Open(store.Options{Path: filepath.Join(dir, "agent.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := fillStatusBenchStore(st, size); err != nil {
		b.Fatal(err)
	}
	a, err := newAgent(context.Background(), cfg, st, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	a.co = checkoutPart{log: a.log, base: a.base}
	a.co.start(cfg, st)
	b.Cleanup(func() {
		if err := a.co.stop(); err != nil {
			b.Error(err)
		}
		a.reloadMu.Lock()
		a.closeSinks()
		a.reloadMu.Unlock()
	})
	return a
}

// fillStatusBenchStore buffers size's records (~800 bytes each, like a
// Moka transaction), the Moka source states of the outlets, and
// upstream's acks and dead letters.
func fillStatusBenchStore(st *store.Store, size statusBenchSize) error {
	if err := st.SetSinks(store.DefaultSink, "jurnal"); err != nil {
		return err
	}
	n := 0
	data := func() []byte {
		n++
		return fmt.Appendf(nil, `{"external_id":"MOK%09d","source_system":"moka","business_id":"biz_1","outlet_id":"outlet_451",`+
			`"receipt_no":"INV%08d","status":"completed","currency":"IDR","amount":"150000","subtotal":"136364",`+
			`"tax_amount":"13636","service_charge_amount":"0","discount_amount":"0","refund_amount":"0",`+
			`"payment_method":"cash","timestamp":"2026-12-06T10:30:00+07:00","business_date":"2026-12-06","items":[`+
			`{"name":"Es Kopi Susu","variant":"Large","sku":"","quantity":"2","unit_price":"25000","total":"50000","discount_amount":"0","modifiers":[{"name":"Extra shot","price":"5000"}]},`+
			`{"name":"Croissant","variant":"","sku":"CR-01","quantity":"1","unit_price":"36364","total":"36364","discount_amount":"0","modifiers":[]},`+
			`{"name":"Nasi Goreng","variant":"Pedas","sku":"NG-02","quantity":"1","unit_price":"50000","total":"50000","discount_amount":"0","modifiers":[]}]}`, n, n)
	}
	for d := range size.days {
		day := statusBenchNow.AddDate(0, 0, d-(size.days-1)).Format(time.DateOnly)
		for _, outlet := range statusBenchOutlets {
			in := make([]store.Input, 300)
			for i := range in {
				s := &store.Sale{OutletID: outlet, Day: day, Status: store.SaleCompleted, Amount: "55000", Refund: "0", Currency: "IDR"}
				switch {
				case i%50 == 0:
					s.Status = store.SaleVoid
				case i%40 == 0:
					s.Status, s.Amount, s.Refund = store.SalePartiallyRefunded, "13636.36", "2000.5"
				}
				in[i] = store.Input{Kind: store.KindTransaction, Key: fmt.Sprintf("moka/biz_1/%s/%s-%03d", outlet, day, i), Data: data(), Sale: s}
			}
			if _, err := st.Append(in, nil); err != nil {
				return err
			}
			if size.refetch {
				if _, err := st.AppendFor([]string{store.DefaultSink}, in[:1], nil); err != nil {
					return err
				}
			}
		}
		if size.products > 0 {
			in := make([]store.Input, size.products)
			for i := range in {
				in[i] = store.Input{Kind: store.KindProduct, Key: fmt.Sprintf("moka/biz_1/product/%s-%03d", day, i), Data: data()}
			}
			if _, err := st.Append(in, nil); err != nil {
				return err
			}
		}
	}
	for _, outlet := range statusBenchOutlets {
		for _, what := range []string{"transactions", "updates", "products"} {
			if err := st.PutSourceState(store.SourceState{Source: "moka/biz_1/" + outlet + "/" + what,
				LastSyncAt: statusBenchNow, Counts: map[string]int64{"buffered": 54_000}}); err != nil {
				return err
			}
		}
	}
	up := st.Sink(store.DefaultSink)
	for left := size.acked; left > 0; {
		recs, err := up.Pending(min(left, 1000))
		if err != nil {
			return err
		}
		seqs := make([]uint64, len(recs))
		for i, r := range recs {
			seqs[i] = r.Seq
		}
		if err := up.Ack(seqs...); err != nil {
			return err
		}
		left -= len(recs)
	}
	recs, err := up.Pending(size.dead)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := up.DeadLetter(r.Seq, "HTTP 422: rejected by the upstream"); err != nil {
			return err
		}
	}
	s, err := st.Stats()
	if err != nil || s.Pending != size.wantPending || s.DeadLetters != int64(size.dead) {
		return fmt.Errorf("fixture %s: %d pending, %d dead letters, %v", size.name, s.Pending, s.DeadLetters, err)
	}
	return nil
}

// BenchmarkStatusAndSummary is the whole of GET /v1/status (Agent.Status:
// the store's statistics, the Moka syncer's outlets, every sink's loop,
// the Jurnal sink in invoice mode, the checkout gateway, the health rules)
// and of GET /v1/summary for the tray's one day and the dashboard's 14
// (summaryAt), on a small and a large buffer in the same run: none of it
// may grow with the buffer. Without JSON encoding and HTTP, which do not
// depend on it. Each size's store is built once per run of the benchmark
// (the large one, a 340 MiB file written in ~6,300 commits with fsync,
// takes a few seconds).
//
//	go test -run '^$' -bench StatusAndSummary -benchmem -count 3 ./agent/
func BenchmarkStatusAndSummary(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 340 MiB store")
	}
	for _, size := range statusBenchSizes {
		a := statusBenchAgent(b, size)
		b.Run("size="+size.name+"/Status", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s := a.Status(context.Background())
				if s.Queue.Pending != size.wantPending || s.Queue.DeadLetter != int64(size.dead) ||
					len(s.Moka.Outlets) != 3 || len(s.Sinks) != len(sinkSpecs) {
					b.Fatalf("status: queue %+v, %d outlets, %d sinks", s.Queue, len(s.Moka.Outlets), len(s.Sinks))
				}
			}
		})
		for _, days := range []int{1, 14} {
			b.Run(fmt.Sprintf("size=%s/Summary-days=%d", size.name, days), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					sum, err := a.summaryAt(statusBenchNow, days)
					if err != nil || len(sum.Outlets) != 3 || sum.Total.Sales != int64(days*3*294) {
						b.Fatalf("summary: %d outlets, total %+v, %v", len(sum.Outlets), sum.Total, err)
					}
				}
			})
		}
	}
}
