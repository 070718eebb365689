package jurnalsink_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/pwbi/edge-agent/agent/deliver/jurnalsink"
	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/internal/i18n"
)

func (e *env) tick() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.sink.Tick(ctx); err != nil {
		e.t.Fatalf("Tick: %v", err)
	}
}

// TestDailySummary: in daily_summary mode the sales of an outlet's day
// wait in the ledger until the day closes (midnight + close_after in the
// outlet's zone), then become one invoice per outlet and day, lines summed
// per product, whose total is the day's collected amount to the rupiah,
// paid per payment method, with one return for the day's refunds. A late
// sale and a late void become documents of their own; nothing is edited
// and nothing is posted twice.
func TestDailySummary(t *testing.T) {
	e := newEnv(t, func(c *jurnalsink.Config) { c.Mode = jurnalsink.ModeDailySummary })
	const day = "2026-12-06" // closes at 2026-12-07 02:00 WIB = 2026-12-06 19:00 UTC
	refunded := sale("101", "S3", day, unified.StatusPartiallyRefunded)
	refunded.RefundAmount = d("32000")
	cash := sale("102", "T1", day, unified.StatusCompleted)
	cash.PaymentMethod = "cash"
	e.mustAccept(
		e.rec(sale("101", "S1", day, unified.StatusCompleted)),
		e.rec(sale("101", "S2", day, unified.StatusCompleted)),
		e.rec(refunded),
		e.rec(sale("101", "S4", day, unified.StatusVoid)),
		e.rec(cash),
	)
	e.tick()
	if n := len(e.fake.Invoices()); n != 0 {
		t.Fatalf("%d invoices before the day closed, want none", n)
	}
	if st := e.sink.Status(); len(st.Outlets) != 2 || st.Outlets[0].Waiting != 4 {
		t.Errorf("status %+v: want outlet 101 with 4 sales waiting", st.Outlets)
	}

	e.clock.Advance(17 * time.Hour)
	e.tick()
	e.tick() // again: nothing new
	inv101, ok := e.fake.Invoice("moka-101-" + day)
	if !ok || !inv101.Total.Equal(decimal.RequireFromString("264000")) { // 3 × 88000; S4 void
		t.Fatalf("day invoice of 101: %v %+v, want total 264000", ok, inv101)
	}
	inv102, ok := e.fake.Invoice("moka-102-" + day)
	if !ok || !inv102.Total.Equal(decimal.RequireFromString("88000")) {
		t.Fatalf("day invoice of 102: %v %+v", ok, inv102)
	}
	if n := len(e.fake.Invoices()); n != 2 {
		t.Errorf("%d invoices, want one per outlet", n)
	}
	for _, l := range inv101.Lines {
		if l.ProductName == "Croissant" && !l.Quantity.Equal(decimal.NewFromInt(3)) {
			t.Errorf("croissant line %+v: want quantity 3 (summed per product)", l)
		}
	}
	if !inv101.Remaining.IsZero() || !inv102.Remaining.IsZero() {
		t.Errorf("day invoices not paid: %s, %s remaining", inv101.Remaining, inv102.Remaining)
	}
	rets := e.fake.Returns()
	if len(rets) != 1 || rets[0].CustomID != "moka-101-"+day+"-ret" || !rets[0].Total.Equal(decimal.RequireFromString("32000")) {
		t.Fatalf("returns %+v, want the day's refunds of 32000", rets)
	}

	// Late: a new sale of the closed day, and a void of a posted one.
	e.mustAccept(e.rec(sale("101", "S9", day, unified.StatusCompleted)), e.rec(sale("101", "S1", day, unified.StatusVoid)))
	e.mustAccept(e.rec(sale("101", "S1", day, unified.StatusVoid))) // again
	if inv, ok := e.fake.Invoice("moka-101-S9"); !ok || !inv.Total.Equal(decimal.RequireFromString("88000")) {
		t.Errorf("late sale: %v %+v, want its own invoice of 88000", ok, inv)
	}
	var returned decimal.Decimal
	for _, r := range e.fake.Returns() {
		returned = returned.Add(r.Total)
	}
	if !returned.Equal(decimal.RequireFromString("120000")) { // 32000 refund + 88000 void
		t.Errorf("returns total %s, want 120000", returned)
	}
	var invoiced decimal.Decimal
	for _, inv := range e.fake.Invoices() {
		invoiced = invoiced.Add(inv.Total)
	}
	// Collected by Moka for the day, net of refunds and voids: 101: S2 + S3 − 32000 + S9; 102: T1.
	if net := invoiced.Sub(returned); !net.Equal(decimal.RequireFromString("320000")) {
		t.Errorf("net posted %s, want 320000", net)
	}
}

// TestModeSwitchNoDoublePosting: a sale invoiced on its own before a switch
// to daily_summary is not in the day's invoice too, and a sale still in an
// open day's ledger when switching to invoice mode leaves the ledger when
// it is invoiced.
func TestModeSwitchNoDoublePosting(t *testing.T) {
	e := newEnv(t, nil)
	const day = "2026-12-06"
	e.mustAccept(e.rec(sale("101", "S1", day, unified.StatusCompleted)))

	e.cfg.Mode = jurnalsink.ModeDailySummary
	e.restart()
	e.mustAccept(e.rec(sale("101", "S1", day, unified.StatusCompleted)), e.rec(sale("101", "S2", day, unified.StatusCompleted)),
		e.rec(sale("101", "S3", day, unified.StatusCompleted)))

	e.cfg.Mode = jurnalsink.ModeInvoice
	e.restart()
	e.mustAccept(e.rec(sale("101", "S3", day, unified.StatusCompleted)))

	e.cfg.Mode = jurnalsink.ModeDailySummary
	e.restart()
	e.clock.Advance(17 * time.Hour)
	e.tick()
	var total decimal.Decimal
	for _, inv := range e.fake.Invoices() {
		total = total.Add(inv.Total)
	}
	if want := decimal.RequireFromString("264000"); !total.Equal(want) { // S1, S3 alone; S2 in the day
		t.Errorf("invoiced %s over %d invoices, want %s (each sale once)", total, len(e.fake.Invoices()), want)
	}
	if inv, ok := e.fake.Invoice("moka-101-" + day); !ok || !inv.Total.Equal(decimal.RequireFromString("88000")) {
		t.Errorf("day invoice %v %+v, want S2 alone (88000)", ok, inv)
	}
}

// TestStatePrunedSafely: what the sink remembers of sales older than 200
// days is forgotten once a day; a forgotten sale sent again still posts
// nothing twice (Jurnal's 409 on its custom_id).
func TestStatePrunedSafely(t *testing.T) {
	e := newEnv(t, nil)
	old := e.rec(sale("101", "OLD", "2026-03-01", unified.StatusCompleted))
	e.mustAccept(old, e.rec(sale("101", "NEW", "2026-12-05", unified.StatusCompleted)))
	n := 0
	count := func() int {
		n = 0
		if err := e.store.Docs(jurnalsink.Collection, func(key string, _ []byte) error {
			if strings.HasPrefix(key, "s/") {
				n++
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if count() != 2 {
		t.Fatalf("%d sales remembered, want 2", n)
	}
	e.tick()
	if count() != 1 {
		t.Errorf("%d sales remembered after pruning, want 1 (the recent one)", n)
	}
	e.mustAccept(old)
	if len(e.fake.Invoices()) != 2 || len(e.fake.Payments()) != 2 {
		t.Errorf("%d invoices, %d payments after a forgotten sale came again, want 2 and 2", len(e.fake.Invoices()), len(e.fake.Payments()))
	}
}

// TestDailySummaryLateEdit: an edit of a sale whose day was posted becomes
// an adjustment document (an invoice of what it added), never an edit of
// the day's invoice.
func TestDailySummaryLateEdit(t *testing.T) {
	e := newEnv(t, func(c *jurnalsink.Config) { c.Mode = jurnalsink.ModeDailySummary })
	const day = "2026-12-06"
	e.mustAccept(e.rec(sale("101", "S1", day, unified.StatusCompleted)), e.rec(sale("101", "S2", day, unified.StatusCompleted)))
	e.clock.Advance(17 * time.Hour)
	e.tick()
	edit := sale("101", "S2", day, unified.StatusCompleted)
	edit.Amount, edit.Subtotal = d("100000"), d("89000")
	e.mustAccept(e.rec(edit))
	if inv, ok := e.fake.Invoice("moka-101-S2-adj-100000"); !ok || !inv.Total.Equal(decimal.RequireFromString("12000")) {
		t.Errorf("late edit: %v %+v, want an invoice of 12000", ok, inv)
	}
	if inv, _ := e.fake.Invoice("moka-101-" + day); !inv.Total.Equal(decimal.RequireFromString("176000")) {
		t.Errorf("the day's invoice changed: %s", inv.Total)
	}
	var sum decimal.Decimal
	for _, inv := range e.fake.Invoices() {
		sum = sum.Add(inv.Total)
	}
	if !sum.Equal(decimal.RequireFromString("188000")) {
		t.Errorf("invoiced %s, want 188000 (88000 + 100000)", sum)
	}
}

// TestDailySummaryRefusedDay: a day Jurnal refuses is its outlet's error in
// the status and the Tick's, and does not hold back another outlet's day;
// once Jurnal takes it, it is posted.
func TestDailySummaryRefusedDay(t *testing.T) {
	e := newEnv(t, func(c *jurnalsink.Config) { c.Mode = jurnalsink.ModeDailySummary })
	const day = "2026-12-05" // closed already: 2026-12-06 02:00 WIB
	e.fake.RejectCustomID("moka-101-"+day, "Tanggal transaksi is locked")
	e.mustAccept(e.rec(sale("101", "S1", day, unified.StatusCompleted)), e.rec(sale("102", "T1", day, unified.StatusCompleted)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.sink.Tick(ctx); err == nil || !strings.Contains(err.Error(), "is locked") {
		t.Fatalf("Tick = %v, want the refusal of outlet 101's day", err)
	}
	if _, ok := e.fake.Invoice("moka-102-" + day); !ok {
		t.Error("outlet 102's day is held back by outlet 101's refused day")
	}
	st := e.sink.Status()
	if len(st.Outlets) != 2 || !strings.Contains(st.Outlets[0].LastError, "is locked") || st.Outlets[1].LastError != "" {
		t.Errorf("status %+v: want outlet 101 with Jurnal's refusal, 102 without error", st.Outlets)
	}
	wantDays := func(closed int, problems ...string) {
		t.Helper()
		st := e.sink.Status()
		var got []string
		for _, p := range st.DayProblems {
			got = append(got, fmt.Sprintf("%s/%s refused=%v %s", p.Outlet, p.Date, p.Refused, p.Error))
		}
		if st.ClosedDays != closed || len(got) != len(problems) {
			t.Fatalf("closed days %d, problems %q; want %d, %q", st.ClosedDays, got, closed, problems)
		}
		for i, w := range problems {
			if pre, msg, _ := strings.Cut(w, " | "); !strings.HasPrefix(got[i], pre) || !strings.Contains(got[i], msg) {
				t.Fatalf("problem %d = %q, want %q", i, got[i], w)
			}
		}
	}
	wantDays(1, "101/"+day+" refused=true | Tanggal transaksi is locked")

	// Regression: a sale of the outlet ledgered since cleared the outlet's
	// error, and nothing else told that the day was refused.
	e.mustAccept(e.rec(sale("101", "S2", "2026-12-06", unified.StatusCompleted)))
	if st := e.sink.Status(); !strings.Contains(st.Outlets[0].LastError, "is locked") {
		t.Errorf("outlet 101's last error %q: the refused day no longer shows after a new sale", st.Outlets[0].LastError)
	}
	wantDays(1, "101/"+day+" refused=true")

	// Jurnal down: the day waits, and says why, as not refused.
	e.fake.RejectCustomID("moka-101-"+day, "")
	e.fake.SetDown(true)
	if err := e.sink.Tick(ctx); err == nil {
		t.Fatal("Tick with Jurnal down succeeded")
	}
	wantDays(1, "101/"+day+" refused=false")
	if p := e.sink.Status().DayProblems[0]; p.Code == "" || !i18n.Has(p.Code) {
		t.Errorf("the waiting day's reason %q has no catalogue code (%q): it cannot be shown in Indonesian", p.Error, p.Code)
	}
	first := e.sink.Status().DayProblems[0].Since

	e.fake.SetDown(false)
	e.tick()
	if _, ok := e.fake.Invoice("moka-101-" + day); !ok {
		t.Error("outlet 101's day not posted once Jurnal takes it")
	}
	if st := e.sink.Status(); st.Outlets[0].LastError != "" {
		t.Errorf("last error %q stays after the day was posted", st.Outlets[0].LastError)
	}
	wantDays(0)
	if first.IsZero() {
		t.Error("the day's problem had no first-failure time")
	}
}

// TestQuotaStaysUntilJurnalAnswers: a closed day waits for Jurnal's quota;
// sales ledgered meanwhile (no call to Jurnal) leave the quota shown, and
// the next post that Jurnal takes clears it. Regression: any accepted
// batch cleared it, so the status said nothing of the quota while the day
// still waited on it.
func TestQuotaStaysUntilJurnalAnswers(t *testing.T) {
	e := newEnv(t, func(c *jurnalsink.Config) { c.Mode = jurnalsink.ModeDailySummary })
	const day = "2026-12-05" // closed already: 2026-12-06 02:00 WIB
	e.mustAccept(e.rec(sale("101", "S1", day, unified.StatusCompleted)))
	e.fake.SetMonthlyQuota(1000, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.sink.Tick(ctx); err == nil {
		t.Fatal("Tick over the quota succeeded")
	}
	if !e.sink.Status().QuotaExhausted {
		t.Fatal("the quota is not shown after Jurnal refused the day for it")
	}
	calls := e.sink.Status().Calls
	e.mustAccept(e.rec(sale("101", "S2", "2026-12-06", unified.StatusCompleted))) // an open day: ledgered
	if st := e.sink.Status(); st.Calls != calls || !st.QuotaExhausted {
		t.Errorf("after a sale only ledgered (%d calls, %d before): quota shown %v, want still shown", st.Calls, calls, st.QuotaExhausted)
	}
	e.fake.SetMonthlyQuota(1000, 1000)
	e.tick()
	if _, ok := e.fake.Invoice("moka-101-" + day); !ok {
		t.Error("the day is not posted once the quota allows")
	}
	if e.sink.Status().QuotaExhausted {
		t.Error("the quota is still shown after Jurnal took the day")
	}
}

// TestSwitchToInvoiceKeepsLedgeredSales: sales ledgered in daily_summary
// mode (and so acknowledged) are posted with their day when it closes,
// also when the sink was switched to invoice mode meanwhile and they never
// come again. Regression: only daily_summary closed days, so a switch to
// invoice mode left them in the ledger for good, never in Jurnal.
func TestSwitchToInvoiceKeepsLedgeredSales(t *testing.T) {
	e := newEnv(t, func(c *jurnalsink.Config) { c.Mode = jurnalsink.ModeDailySummary })
	const day = "2026-12-06" // closes 2026-12-07 02:00 WIB
	e.mustAccept(e.rec(sale("101", "S1", day, unified.StatusCompleted)), e.rec(sale("101", "S2", day, unified.StatusCompleted)))
	e.cfg.Mode = jurnalsink.ModeInvoice
	e.restart()
	// Waiting from the start, not only after the first minute's Tick
	// (the status read them only once a Tick had seen the ledger).
	if st := e.sink.Status(); len(st.Outlets) != 1 || st.Outlets[0].Waiting != 2 {
		t.Errorf("status after the restart %+v: want S1 and S2 waiting for their day", st.Outlets)
	}
	e.mustAccept(e.rec(sale("101", "S2", day, unified.StatusCompleted))) // S2 again: invoiced on its own
	e.tick()
	if n := len(e.fake.Invoices()); n != 1 {
		t.Fatalf("%d invoices before the day closed, want S2's own", n)
	}
	if st := e.sink.Status(); len(st.Outlets) != 1 || st.Outlets[0].Waiting != 1 {
		t.Errorf("status %+v: want S1 waiting for its day", st.Outlets)
	}
	e.clock.Advance(17 * time.Hour)
	e.tick()
	inv, ok := e.fake.Invoice("moka-101-" + day)
	if !ok || !inv.Total.Equal(decimal.RequireFromString("88000")) {
		t.Errorf("day invoice %v %+v, want S1 alone (88000)", ok, inv)
	}
}

// TestSwitchToInvoiceVoidOfPostedDay: a sale posted in its day's invoice
// (daily_summary), voided after a switch to invoice mode, becomes a sales
// return against the day's invoice. Regression: invoice mode did not look
// at the day, so the void of a sale it had never invoiced posted nothing,
// and a refund invoiced the sale a second time.
func TestSwitchToInvoiceVoidOfPostedDay(t *testing.T) {
	e := newEnv(t, func(c *jurnalsink.Config) { c.Mode = jurnalsink.ModeDailySummary })
	const day = "2026-12-05" // closed already: 2026-12-06 02:00 WIB
	e.mustAccept(e.rec(sale("101", "S1", day, unified.StatusCompleted)), e.rec(sale("101", "S2", day, unified.StatusCompleted)))
	e.tick()
	dayInv, ok := e.fake.Invoice("moka-101-" + day)
	if !ok {
		t.Fatal("the day is not posted")
	}
	e.cfg.Mode = jurnalsink.ModeInvoice
	e.restart()
	e.mustAccept(e.rec(sale("101", "S1", day, unified.StatusVoid)))
	e.mustAccept(e.rec(sale("101", "S1", day, unified.StatusVoid))) // again
	if n := len(e.fake.Invoices()); n != 1 {
		t.Errorf("%d invoices, want the day's alone", n)
	}
	rets := e.fake.Returns()
	if len(rets) != 1 || rets[0].CustomID != "moka-101-S1-void" || rets[0].InvoiceID != dayInv.ID ||
		!rets[0].Total.Equal(decimal.RequireFromString("88000")) {
		t.Errorf("returns %+v, want the void of S1 (88000) against the day's invoice", rets)
	}
}
