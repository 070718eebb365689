package jurnalsink_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/deliver/jurnalsink"
	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/shopspring/decimal"
)

// invoiceCreates counts the sales invoice creates a fake received.
func invoiceCreates(e *env) int {
	n := 0
	for _, r := range e.fake.Requests() {
		if r.Route == "POST /sales_invoices" {
			n++
		}
	}
	return n
}

// TestJurnalForgotWhatTheSinkKnew: Jurnal's data lost the products and the
// walk-in contact the sink had created (restored from a backup — the
// demo's fake restarting does the same): the next sale finds or creates
// them again and is posted. Regression: the sink trusted what it
// remembered, Jurnal refused every invoice ("Product … does not exist")
// and each sale went to the dead letters.
func TestJurnalForgotWhatTheSinkKnew(t *testing.T) {
	e := newEnv(t, func(c *jurnalsink.Config) { c.CustomerName = "Tamu" })
	e.mustAccept(e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)))
	e.fake.Reset()
	e.mustAccept(e.rec(sale("101", "S2", "2026-12-05", unified.StatusCompleted)))
	inv, ok := e.fake.Invoice("moka-101-S2")
	if !ok || !inv.Remaining.IsZero() {
		t.Fatalf("invoice of S2 after Jurnal forgot: %v %+v, want posted and paid", ok, inv)
	}
	names := map[string]bool{}
	for _, p := range e.fake.Products() {
		names[p.Name] = true
	}
	for _, want := range []string{"Es Kopi Susu - Large", "Croissant"} {
		if !names[want] {
			t.Errorf("product %q not created again (products: %v)", want, names)
		}
	}
	// Known again: the next sale costs no master-data call.
	before := masterCalls(e.fake)
	e.mustAccept(e.rec(sale("101", "S3", "2026-12-05", unified.StatusCompleted)))
	if n := masterCalls(e.fake) - before; n != 0 {
		t.Errorf("the sale after the repair made %d master-data calls, want 0", n)
	}
}

// TestJurnalRenamedProductFoundAgain: an accountant renames a product the
// sink created (its SKU stays): the next sale finds it by its code, names
// it by its new name, and creates no duplicate.
func TestJurnalRenamedProductFoundAgain(t *testing.T) {
	e := newEnv(t, nil)
	e.mustAccept(e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)))
	if !e.fake.RenameProduct("Es Kopi Susu - Large", "Kopi Susu Besar") {
		t.Fatal("the sink did not create the product")
	}
	count := len(e.fake.Products())
	e.mustAccept(e.rec(sale("101", "S2", "2026-12-05", unified.StatusCompleted)))
	inv, ok := e.fake.Invoice("moka-101-S2")
	if !ok {
		t.Fatal("S2 not invoiced")
	}
	found := false
	for _, l := range inv.Lines {
		found = found || l.ProductName == "Kopi Susu Besar"
	}
	if !found || len(e.fake.Products()) != count {
		t.Errorf("S2's lines %+v, %d products (was %d): want the renamed product, no new one", inv.Lines, len(e.fake.Products()), count)
	}
}

// TestJurnalDayForgotWhatTheSinkKnew: the same in daily_summary mode: the
// day's invoice, refused for products Jurnal no longer has, is posted once
// they are created again, the day left with no problem.
func TestJurnalDayForgotWhatTheSinkKnew(t *testing.T) {
	e := newEnv(t, func(c *jurnalsink.Config) { c.Mode = jurnalsink.ModeDailySummary; c.CustomerName = "Tamu" })
	const day = "2026-12-05" // closed already
	e.mustAccept(e.rec(sale("101", "S1", day, unified.StatusCompleted)), e.rec(sale("101", "S2", day, unified.StatusCompleted)))
	e.fake.Reset()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.sink.Tick(ctx); err != nil {
		t.Fatalf("Tick: %v", err)
	}
	inv, ok := e.fake.Invoice("moka-101-" + day)
	if !ok || !inv.Total.Equal(decimal.RequireFromString("176000")) {
		t.Fatalf("the day's invoice: %v %+v, want 176000", ok, inv)
	}
	if st := e.sink.Status(); len(st.DayProblems) != 0 || st.ClosedDays != 0 {
		t.Errorf("status: %+v, want the day posted", st)
	}
}

// TestJurnalMissingConfigNotRetried: what does not exist is the
// configuration's (a warehouse): no memory is forgotten, the invoice is
// tried once and the sale refused with Jurnal's words, as before.
func TestJurnalMissingConfigNotRetried(t *testing.T) {
	e := newEnv(t, func(c *jurnalsink.Config) { c.OutletWarehouses = map[string]string{"101": "Gudang Bali"} })
	a := e.send(e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)))
	if a.Verdict != sink.Rejected || !strings.Contains(a.Detail, "Gudang Bali") {
		t.Fatalf("answer %+v, want rejected naming the warehouse", a)
	}
	if n := invoiceCreates(e); n != 1 {
		t.Errorf("%d invoice creates, want 1 (nothing to find again)", n)
	}
}
