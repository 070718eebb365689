package deliver

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/deliver/httpsink"
	"github.com/pwbi/edge-agent/agent/deliver/httpsink/upstreamfake"
	"github.com/pwbi/edge-agent/store"
)

// benchDocs are distinct, realistic unified transactions (SPEC §4) of about
// 800 bytes, so that gzip sees real-world redundancy, not one repeated doc.
var benchDocs = sync.OnceValue(func() [][]byte {
	type modifier struct {
		Name  string `json:"name"`
		Price string `json:"price"`
	}
	type item struct {
		Name           string     `json:"name"`
		Variant        string     `json:"variant"`
		SKU            string     `json:"sku"`
		Quantity       string     `json:"quantity"`
		UnitPrice      string     `json:"unit_price"`
		Total          string     `json:"total"`
		DiscountAmount string     `json:"discount_amount"`
		Modifiers      []modifier `json:"modifiers"`
	}
	type tx struct {
		ExternalID          string `json:"external_id"`
		SourceSystem        string `json:"source_system"`
		BusinessID          string `json:"business_id"`
		OutletID            string `json:"outlet_id"`
		ReceiptNo           string `json:"receipt_no"`
		Status              string `json:"status"`
		Currency            string `json:"currency"`
		Amount              string `json:"amount"`
		Subtotal            string `json:"subtotal"`
		TaxAmount           string `json:"tax_amount"`
		ServiceChargeAmount string `json:"service_charge_amount"`
		DiscountAmount      string `json:"discount_amount"`
		RefundAmount        string `json:"refund_amount"`
		PaymentMethod       string `json:"payment_method"`
		Timestamp           string `json:"timestamp"`
		BusinessDate        string `json:"business_date"`
		Items               []item `json:"items"`
	}
	names := []string{"Es Kopi Susu", "Americano", "Cafe Latte", "Matcha Latte", "Croissant", "Nasi Goreng", "Teh Tarik", "Roti Bakar"}
	variants := []string{"Regular", "Large", "Hot", "Iced", ""}
	payments := []string{"cash", "qris", "debit_card", "gopay", "ovo"}
	rnd := rand.New(rand.NewPCG(7, 11))
	base := time.Date(2025, 12, 26, 7, 0, 0, 0, time.FixedZone("WIB", 7*3600))
	docs := make([][]byte, 1000)
	for i := range docs {
		ts := base.Add(time.Duration(rnd.IntN(14*3600)) * time.Second)
		var items []item
		var sub int
		for range 2 + rnd.IntN(2) {
			q, p := 1+rnd.IntN(3), 15000+1000*rnd.IntN(30)
			it := item{
				Name: names[rnd.IntN(len(names))], Variant: variants[rnd.IntN(len(variants))],
				SKU: fmt.Sprintf("SKU-%05d", rnd.IntN(99999)), Quantity: fmt.Sprint(q),
				UnitPrice: fmt.Sprint(p), Total: fmt.Sprint(q * p), DiscountAmount: "0", Modifiers: []modifier{},
			}
			if rnd.IntN(2) == 0 {
				it.Modifiers = append(it.Modifiers, modifier{"Extra shot", "5000"})
			}
			sub += q * p
			items = append(items, it)
		}
		tax := sub / 10
		doc, err := json.Marshal(tx{
			ExternalID: fmt.Sprintf("MOK%d", 100000000+rnd.IntN(900000000)), SourceSystem: "moka",
			BusinessID: "biz_1", OutletID: fmt.Sprintf("outlet_%d", 450+rnd.IntN(4)),
			ReceiptNo: fmt.Sprintf("INV%X", rnd.Uint32()), Status: "completed", Currency: "IDR",
			Amount: fmt.Sprint(sub + tax), Subtotal: fmt.Sprint(sub), TaxAmount: fmt.Sprint(tax),
			ServiceChargeAmount: "0", DiscountAmount: "0", RefundAmount: "0",
			PaymentMethod: payments[rnd.IntN(len(payments))], Timestamp: ts.Format(time.RFC3339),
			BusinessDate: ts.Format(time.DateOnly), Items: items,
		})
		if err != nil {
			panic(err)
		}
		docs[i] = doc
	}
	return docs
})

// genSource is a Source of n generated records, produced on demand so that a
// large b.N needs no memory up front.
type genSource struct {
	docs     [][]byte
	versions []string
	added    time.Time
	notify   chan struct{}

	mu    sync.Mutex
	head  uint64 // oldest pending seq
	total uint64
}

func newGenSource(n int) *genSource {
	docs := benchDocs()
	vs := make([]string, len(docs))
	for i, d := range docs {
		vs[i] = store.Version(d)
	}
	return &genSource{docs: docs, versions: vs, added: time.Now(), notify: make(chan struct{}, 1), head: 1, total: uint64(n)}
}

func (s *genSource) Pending(max int) ([]store.Record, error) {
	s.mu.Lock()
	head, total := s.head, s.total
	s.mu.Unlock()
	var out []store.Record
	for seq := head; seq <= total && len(out) < max; seq++ {
		i := int(seq) % len(s.docs)
		out = append(out, store.Record{
			Kind: store.KindTransaction, Key: fmt.Sprintf("moka/biz_1/outlet_450/%d", seq),
			Seq: seq, Version: s.versions[i], Data: s.docs[i], AddedAt: s.added,
		})
	}
	return out, nil
}

func (s *genSource) Ack(seqs ...uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(seqs) == 0 || seqs[0] != s.head {
		return fmt.Errorf("ack %d.., want head %d", seqs[0], s.head)
	}
	s.head = seqs[len(seqs)-1] + 1
	return nil
}

func (s *genSource) DeadLetter(seq uint64, reason string) error {
	return fmt.Errorf("dead letter %d: %s", seq, reason)
}

func (s *genSource) Notify() <-chan struct{} { return s.notify }

// BenchmarkDrain measures the drain rate to the loopback fake upstream:
// ~800-byte records, gzip on, batch size 500, real clock and HTTP. The
// fake's work (gunzip, JSON decode, validation) runs in the same process and
// is included.
func BenchmarkDrain(b *testing.B) {
	docs := benchDocs()
	var size int
	for _, d := range docs {
		size += len(d)
	}
	srv := upstreamfake.New(upstreamfake.Options{Token: testToken, Discard: true})
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	src := newGenSource(b.N)
	f := New(src, httpsink.New(httpsink.Config{
		URL: srv.URL(), Token: testToken, AgentID: "bench-pc", Timeout: 30 * time.Second,
	}, httpsink.Options{}), Config{BatchSize: 500, FlushInterval: 5 * time.Second}, Options{})
	b.SetBytes(int64(size / len(docs)))
	b.ReportAllocs()
	b.ResetTimer()
	if err := f.Drain(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if got := srv.Accepted(); got != b.N {
		b.Fatalf("upstream accepted %d of %d", got, b.N)
	}
	if v := srv.OrderViolations(); v != 0 {
		b.Fatalf("%d order violations", v)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkDrainSink is BenchmarkDrain against a minimal receiver that only
// decompresses the body and acknowledges it: the forwarder's own cost
// (encoding, gzip, HTTP, checking the acknowledgement) without the fake's
// validation.
func BenchmarkDrainSink(b *testing.B) {
	var accepted atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if _, err := io.Copy(io.Discard, zr); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		accepted.Add(1)
		// The acknowledgement echoes the batch id (SPEC §6.1); the
		// Idempotency-Key header carries it, so the sink need not
		// decode the body.
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"batch_id":%q}`, r.Header.Get("Idempotency-Key"))
	}))
	defer sink.Close()
	src := newGenSource(b.N)
	f := New(src, httpsink.New(httpsink.Config{URL: sink.URL, AgentID: "bench-pc"}, httpsink.Options{}), Config{BatchSize: 500}, Options{})
	b.ReportAllocs()
	b.ResetTimer()
	if err := f.Drain(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkDrainSecondSink measures the first sink's drain rate from the
// real store (bbolt, fsync on every ack) to a minimal loopback receiver, as
// BenchmarkDrainSink does, with the first sink alone and with a second sink
// enabled in the same buffer (PERFORMANCE.md: "adding a second sink costs
// the first ≤ 10 % of its drain rate"), side by side in one run:
//
//   - alone: one sink;
//
//   - second-down: a second sink enabled and down for the whole drain, so
//     the buffer keeps every record for it (the first sink's acks only move
//     its position);
//
//   - second-draining: the second sink drains at the same time to an
//     in-memory sink, so both loops share the store (and its fsyncs) and
//     the CPU.
//
//     go test -run '^$' -bench DrainSecondSink -benchtime 20000x -count 5 ./agent/deliver/
func BenchmarkDrainSecondSink(b *testing.B) {
	for _, mode := range []string{"alone", "second-down", "second-draining"} {
		b.Run(mode, func(b *testing.B) {
			receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				zr, err := gzip.NewReader(r.Body)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				if _, err := io.Copy(io.Discard, zr); err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"batch_id":%q}`, r.Header.Get("Idempotency-Key"))
			}))
			defer receiver.Close()
			st, err := store.Open(store.Options{Path: filepath.Join(b.TempDir(), "agent.db")})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			sinks := []string{"upstream"}
			if mode != "alone" {
				sinks = append(sinks, "second")
			}
			if err := st.SetSinks(sinks...); err != nil {
				b.Fatal(err)
			}
			docs := benchDocs()
			for from := 0; from < b.N; from += 1000 {
				in := make([]store.Input, 0, 1000)
				for i := from; i < min(from+1000, b.N); i++ {
					in = append(in, store.Input{Kind: store.KindTransaction,
						Key: fmt.Sprintf("moka/biz_1/outlet_450/%d", i), Data: docs[i%len(docs)]})
				}
				if _, err := st.Append(in, nil); err != nil {
					b.Fatal(err)
				}
			}
			first := New(st.Sink("upstream"), httpsink.New(httpsink.Config{URL: receiver.URL, AgentID: "bench-pc"}, httpsink.Options{}),
				Config{BatchSize: 500}, Options{})
			var second sync.WaitGroup
			b.ResetTimer()
			if mode == "second-draining" {
				f2 := New(st.Sink("second"), &memSink{endpoint: "mem://second"}, Config{BatchSize: 500}, Options{})
				second.Go(func() {
					if err := f2.Drain(context.Background()); err != nil {
						b.Error(err)
					}
				})
			}
			if err := first.Drain(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			second.Wait()
			if ss, err := st.Sink("upstream").Stats(); err != nil || ss.Pending != 0 {
				b.Fatalf("first sink's view after the drain = %+v, %v", ss, err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
