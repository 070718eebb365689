package apikey

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/moka/apikey/apikeyfake"
)

// benchData returns realistic raw transactions from the fake (untidy
// numbers, 1–4 line items, Unicode names; ~500–700 bytes each).
func benchData(b *testing.B) ([]json.RawMessage, MapContext) {
	b.Helper()
	now := time.Date(2025, 12, 26, 15, 0, 0, 0, time.UTC)
	s := apikeyfake.New(apikeyfake.Options{Seed: 11, Outlets: 2, Days: 3, TxPerDay: 100, Now: func() time.Time { return now }})
	raws := s.Transactions("")
	if len(raws) < 100 {
		b.Fatalf("only %d transactions", len(raws))
	}
	return raws, MapContext{BusinessID: s.BusinessID(), Currency: "IDR", Location: s.Location()}
}

// BenchmarkMapTransaction: one raw transaction → unified.Transaction →
// canonical store.Input.
func BenchmarkMapTransaction(b *testing.B) {
	raws, m := benchData(b)
	size := 0
	for _, r := range raws {
		size += len(r)
	}
	b.SetBytes(int64(size / len(raws)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tx, err := MapTransaction(raws[i%len(raws)], m)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := TransactionInput(tx); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
}

// BenchmarkPageToInputs: the connector's share of the ingest path — a
// 100-transaction page body as it comes off the wire → envelope decoded →
// every transaction mapped → store inputs.
func BenchmarkPageToInputs(b *testing.B) {
	raws, m := benchData(b)
	page, err := json.Marshal(map[string]any{"data": raws[:100], "next_cursor": "tx1.abc"})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		items, next, err := decodeListPage(page)
		if err != nil || next == "" || len(items) != 100 {
			b.Fatal(err)
		}
		ins, rejects, err := TransactionInputs(items, m)
		if err != nil || len(rejects) != 0 || len(ins) != 100 {
			b.Fatal(err, rejects)
		}
	}
	b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "tx/s")
}
