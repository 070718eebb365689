package oauth

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/moka/internal/wire"
	"github.com/pwbi/edge-agent/agent/moka/oauth/oauthfake"
	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/store"
)

// benchPayments returns realistic v3 payments from the fake (seed 11: every
// field of the reference's list, 1–4 checkouts with variants, modifiers and
// discounts, ~3 KB each) and the map context.
func benchPayments(b *testing.B) ([]json.RawMessage, MapContext) {
	b.Helper()
	fake := oauthfake.New(oauthfake.Options{Seed: 11, Outlets: 3, Days: 7, TxPerDay: 50, Now: func() time.Time { return t0 }})
	pays := fake.Payments("")
	if len(pays) == 0 {
		b.Fatal("no payments")
	}
	return pays, MapContext{BusinessID: fake.BusinessID(), Currency: "IDR", Location: jakarta}
}

// BenchmarkMapPayment: one raw payment → MapPayment → store input
// (canonical JSON and key). Reports payments per second.
func BenchmarkMapPayment(b *testing.B) {
	pays, m := benchPayments(b)
	var size int64
	for _, p := range pays {
		size += int64(len(p))
	}
	b.SetBytes(size / int64(len(pays)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tx, err := MapPayment(pays[i%len(pays)], m)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := wire.TransactionInput(tx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
}

// BenchmarkPaymentsPageToInputs: a 100-payment get_latest_transactions body
// as it comes off the wire → envelope and payments decoded in one pass →
// every payment mapped → 100 store inputs (what the connector does per
// page). Reports payments per second.
func BenchmarkPaymentsPageToInputs(b *testing.B) {
	pays, m := benchPayments(b)
	const per = 100
	body := []byte(`{"data":{"payments":[`)
	for i := range per {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, pays[i%len(pays)]...)
	}
	body = append(body, `],"next_url":"https://api.mokapos.com/v3/outlets/1/reports/get_latest_transactions?since=1&access_token=x","completed":false}}`...)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		items, decoded, _, _, err := decodePaymentsPageDecoded(body)
		if err != nil {
			b.Fatal(err)
		}
		page := PaymentPage{Payments: items, decoded: decoded}
		err = page.MapPayments(m, func(_ json.RawMessage, tx unified.Transaction, err error) error {
			if err != nil {
				return err
			}
			_, err = wire.TransactionInput(tx)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*per)/b.Elapsed().Seconds(), "tx/s")
}

// BenchmarkIngestPaymentsPage is the whole ingest path for the oauth
// dialect: a 100-payment page body → decoded and mapped in one pass →
// appended to the store in one durable transaction (fsync on, dedupe index
// checked, sync state written with the records). The business id changes
// every cycle through the sample pages, so every record is new.
func BenchmarkIngestPaymentsPage(b *testing.B) {
	pays, m := benchPayments(b)
	var pages [][]byte
	for i := 0; i+100 <= len(pays); i += 100 {
		body := []byte(`{"data":{"payments":[`)
		for j, p := range pays[i : i+100] {
			if j > 0 {
				body = append(body, ',')
			}
			body = append(body, p...)
		}
		pages = append(pages, append(body, `],"next_url":null,"completed":true}}`...))
	}
	st, err := store.Open(store.Options{Path: filepath.Join(b.TempDir(), "agent.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		mc := m
		mc.BusinessID = fmt.Sprintf("biz_%d", n/len(pages))
		items, decoded, _, _, err := decodePaymentsPageDecoded(pages[n%len(pages)])
		if err != nil {
			b.Fatal(err)
		}
		ins := make([]store.Input, 0, len(items))
		err = PaymentPage{Payments: items, decoded: decoded}.MapPayments(mc, func(_ json.RawMessage, tx unified.Transaction, err error) error {
			if err != nil {
				return err
			}
			in, err := wire.TransactionInput(tx)
			ins = append(ins, in)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		res, err := st.Append(ins, &store.SourceState{Source: "moka/bench/o1/transactions", Cursor: "page 1"})
		if err != nil || res.Appended != len(ins) {
			b.Fatalf("append: %v (%d of %d)", err, res.Appended, len(ins))
		}
		n++
	}
	b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "tx/s")
}
