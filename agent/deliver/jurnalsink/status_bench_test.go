package jurnalsink

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/store"
)

// statusBenchSink is a daily_summary sink on a store holding what half a
// year of a three-outlet cafe leaves: 3 × 180 posted days of 300 sales
// each (kept for keepState so that late edits find them) and each
// outlet's open day of 300 sales.
func statusBenchSink(b *testing.B) *Sink {
	b.Helper()
	st, err := store.Open(store.Options{Path: filepath.Join(b.TempDir(), "agent.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	jakarta := time.FixedZone("WIB", 7*3600)
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, jakarta)
	mk := func(outlet string, date time.Time, posted bool) *dayState {
		d := &dayState{Outlet: outlet, Date: date.Format(unified.BusinessDateLayout), Sales: map[string]daySale{}, Posted: posted}
		for i := range 300 {
			d.Sales[fmt.Sprintf("T%s%04d", d.Date, i)] = daySale{Status: unified.StatusCompleted,
				Amount: unified.MustDecimal("55000"), Refund: unified.MustDecimal("0"), Method: "cash", Receipt: fmt.Sprintf("INV%04d", i),
				Lines: []line{{Product: "Es Kopi Susu", Quantity: unified.MustDecimal("2"), Rate: unified.MustDecimal("25000")},
					{Product: "Tax", Quantity: unified.MustDecimal("1"), Rate: unified.MustDecimal("5000")}}}
		}
		if posted {
			d.Invoice, d.InvoiceID, d.InvoiceNo = CustomID(outlet, d.Date), 1, "SI-1"
		}
		return d
	}
	for _, o := range []string{"101", "102", "103"} {
		for back := range 181 {
			d := mk(o, now.AddDate(0, 0, -back), back > 0)
			if err := putJSON(st, dayKey(o, d.Date), d); err != nil {
				b.Fatal(err)
			}
		}
	}
	return New(Config{BaseURL: "http://127.0.0.1:1", ClientID: "id", ClientSecret: "s", Mode: ModeDailySummary,
		CloseAfter: 2 * time.Hour, Location: jakarta}, Options{Docs: st, Clock: clockwork.NewFakeClockAt(now)})
}

// BenchmarkStatusDailySummary is one /v1/status read of the Jurnal sink
// (the dashboard and the tray ask every few seconds) with half a year of
// posted days kept, after the first (BenchmarkStatusFirstRead).
func BenchmarkStatusDailySummary(b *testing.B) {
	s := statusBenchSink(b)
	checkBenchStatus(b, s.Status())
	b.ReportAllocs()
	for b.Loop() {
		checkBenchStatus(b, s.Status())
	}
}

// BenchmarkStatusFirstRead is the first status read after a start: it
// finds the open days in the store.
func BenchmarkStatusFirstRead(b *testing.B) {
	s := statusBenchSink(b)
	b.ReportAllocs()
	for b.Loop() {
		s.sh.mu.Lock()
		s.sh.index.open = nil
		s.sh.mu.Unlock()
		checkBenchStatus(b, s.Status())
	}
}

func checkBenchStatus(b *testing.B, st Status) {
	if len(st.Outlets) != 3 || st.Outlets[0].Waiting != 300 || st.ClosedDays != 0 {
		b.Fatalf("status: %d closed days, outlets %+v", st.ClosedDays, st.Outlets)
	}
}
