package jurnalsink_test

import (
	"context"
	"slices"
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
	checkRenamedOn(t, e, "moka-101-S2", "Kopi Susu Besar", count)
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

// TestJurnalDayRefusedAgainNotHealedEveryRound: a Jurnal that keeps
// refusing the day's invoice for a product ("does not exist") although it
// is found again: the day is healed once (the invoice sent twice), then
// the refusal stands — each later round sends the invoice once and looks
// no product up; another refusal is healed once in its turn. Regression: every round forgot the products, looked them
// up and sent the invoice twice, for as long as the day stayed a problem.
func TestJurnalDayRefusedAgainNotHealedEveryRound(t *testing.T) {
	e := newEnv(t, func(c *jurnalsink.Config) { c.Mode = jurnalsink.ModeDailySummary })
	const day = "2026-12-05" // closed already
	e.mustAccept(e.rec(sale("101", "S1", day, unified.StatusCompleted)))
	e.fake.RejectCustomID("moka-101-"+day, `Product "Croissant" does not exist`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for round := range 3 {
		creates, master := invoiceCreates(e), masterCalls(e.fake)
		if err := e.sink.Tick(ctx); err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("round %d: Tick = %v, want the refusal", round, err)
		}
		creates, master = invoiceCreates(e)-creates, masterCalls(e.fake)-master
		want := 1
		if round == 0 {
			want = 2 // healed once
		}
		if creates != want || (round > 0 && master != 0) {
			t.Errorf("round %d: %d invoice creates and %d master-data calls, want %d and none", round, creates, master, want)
		}
	}
	if st := e.sink.Status(); len(st.DayProblems) != 1 {
		t.Errorf("day problems %+v, want the day", st.DayProblems)
	}
	// Another refusal (now the contact) is healed in its turn.
	e.fake.RejectCustomID("moka-101-"+day, `Contact "Pelanggan Umum" does not exist`)
	creates := invoiceCreates(e)
	if err := e.sink.Tick(ctx); err == nil {
		t.Fatal("Tick after another refusal: no error")
	}
	if n := invoiceCreates(e) - creates; n != 2 {
		t.Errorf("another refusal: %d invoice creates, want 2 (healed once)", n)
	}
	// The accountant makes Jurnal accept it: the next round posts the day.
	e.fake.RejectCustomID("moka-101-"+day, "")
	if err := e.sink.Tick(ctx); err != nil {
		t.Fatalf("Tick after the fix in Jurnal: %v", err)
	}
	if _, ok := e.fake.Invoice("moka-101-" + day); !ok {
		t.Error("the day's invoice not posted")
	}
}

// TestJurnalInvoiceRefusedAgainTriedTwice: in invoice mode a sale whose
// invoice Jurnal keeps refusing for a product it says does not exist is
// sent twice (the second time after the product is looked up again), then
// refused with Jurnal's words: no loop; sent again, the refusal stands.
// Regression: each time the sale was sent, the product was forgotten and
// looked up and the invoice sent twice.
func TestJurnalInvoiceRefusedAgainTriedTwice(t *testing.T) {
	e := newEnv(t, nil)
	e.mustAccept(e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)))
	before := invoiceCreates(e)
	e.fake.RejectCustomID("moka-101-S2", `Product "Croissant" does not exist`)
	a := e.send(e.rec(sale("101", "S2", "2026-12-05", unified.StatusCompleted)))
	if a.Verdict != sink.Rejected || !strings.Contains(a.Detail, `"Croissant" does not exist`) {
		t.Fatalf("answer %+v, want rejected with Jurnal's words", a)
	}
	if n := invoiceCreates(e) - before; n != 2 {
		t.Errorf("%d invoice creates, want 2 (sent once more after the lookup)", n)
	}
	// Sent again (as a sale refused alike with every other is): the
	// refusal stands, the invoice is sent once and no product looked up.
	before, master := invoiceCreates(e), masterCalls(e.fake)
	if a := e.send(e.rec(sale("101", "S2", "2026-12-05", unified.StatusCompleted))); a.Verdict != sink.Rejected {
		t.Fatalf("answer sent again %+v, want rejected", a)
	}
	if n, m := invoiceCreates(e)-before, masterCalls(e.fake)-master; n != 1 || m != 0 {
		t.Errorf("sent again: %d invoice creates and %d master-data calls, want 1 and none", n, m)
	}
}

// TestJurnalRenamedProductKeptByID: a product renamed in Jurnal is found
// again by its Jurnal id — one without SKU in invoice mode, and any in a
// daily_summary day's ledger — and the sales go on it under its new name:
// no second product under the old name. Regression: looked up by its old
// name, it was created again, and the sales split between two products.
func TestJurnalRenamedProductKeptByID(t *testing.T) {
	t.Run("invoice without SKU", func(t *testing.T) {
		e := newEnv(t, nil)
		e.mustAccept(e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)))
		if !e.fake.RenameProduct("Croissant", "Croissant Mentega") {
			t.Fatal("the sink did not create the product")
		}
		count := len(e.fake.Products())
		e.mustAccept(e.rec(sale("101", "S2", "2026-12-05", unified.StatusCompleted)))
		checkRenamedOn(t, e, "moka-101-S2", "Croissant Mentega", count)
	})
	t.Run("daily summary", func(t *testing.T) {
		e := newEnv(t, func(c *jurnalsink.Config) { c.Mode = jurnalsink.ModeDailySummary })
		e.mustAccept(e.rec(sale("101", "S1", "2026-12-04", unified.StatusCompleted)))
		e.tick() // the 4th is posted: its products exist
		const day = "2026-12-05"
		e.mustAccept(e.rec(sale("101", "S2", day, unified.StatusCompleted)), e.rec(sale("101", "S3", day, unified.StatusCompleted)))
		if !e.fake.RenameProduct("Es Kopi Susu - Large", "Kopi Susu Besar") {
			t.Fatal("the sink did not create the product")
		}
		count := len(e.fake.Products())
		e.tick()
		checkRenamedOn(t, e, "moka-101-"+day, "Kopi Susu Besar", count)
		if st := e.sink.Status(); len(st.DayProblems) != 0 {
			t.Errorf("day problems %+v, want none", st.DayProblems)
		}
	})
}

// checkRenamedOn checks that the invoice cid names the product by its new
// name and that the fake holds count products still.
func checkRenamedOn(t *testing.T, e *env, cid, name string, count int) {
	t.Helper()
	inv, ok := e.fake.Invoice(cid)
	if !ok {
		t.Fatalf("no invoice %s", cid)
	}
	if !slices.Contains(productNames(inv), name) || len(e.fake.Products()) != count {
		var names []string
		for _, p := range e.fake.Products() {
			names = append(names, p.Name)
		}
		t.Errorf("invoice %s lines %+v; products %v (were %d): want %q on it and no new product", cid, inv.Lines, names, count, name)
	}
}
