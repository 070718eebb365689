package jurnalsink_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/shopspring/decimal"

	"github.com/pwbi/edge-agent/agent/deliver/jurnalsink"
	"github.com/pwbi/edge-agent/agent/deliver/jurnalsink/jurnalfake"
	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/store"
)

var jakarta = func() *time.Location {
	l, err := time.LoadLocation("Asia/Jakarta")
	if err != nil {
		panic(err)
	}
	return l
}()

type env struct {
	t     *testing.T
	fake  *jurnalfake.Server
	store *store.Store
	clock *clockwork.FakeClock
	cfg   jurnalsink.Config
	sink  *jurnalsink.Sink
	seq   uint64
}

func newEnv(t *testing.T, mutate func(*jurnalsink.Config)) *env {
	t.Helper()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC))
	fake := jurnalfake.NewServer(t, jurnalfake.Options{Clock: clock})
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "agent.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := jurnalsink.Config{
		BaseURL: fake.URL(), ClientID: fake.ClientID(), ClientSecret: fake.ClientSecret(),
		Mode: jurnalsink.ModeInvoice, CloseAfter: 2 * time.Hour, RequestsPerMinute: 6000,
		CustomerName: "Pelanggan Umum", DepositAccounts: map[string]string{"default": "Kas", "qris": "Bank BCA"},
		OutletTags: map[string]string{"101": "Outlet Kemang"}, Location: jakarta, Timeout: time.Hour,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	e := &env{t: t, fake: fake, store: st, clock: clock, cfg: cfg}
	e.sink = jurnalsink.New(cfg, jurnalsink.Options{Docs: st, Clock: clock})
	runClock(t, clock, 10*time.Millisecond)
	return e
}

// runClock lets the fake clock run (step per tick of a real ticker of
// about a millisecond) while the test does, so that the sink's rate limit lets requests through; the fake
// Jurnal shares the clock, so no skew appears. Tests that need exact time
// (the rate limit, a day closing) drive the clock themselves.
func runClock(t *testing.T, clock *clockwork.FakeClock, step time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				clock.Advance(step)
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// restart builds a new sink on the same store, as after a crash.
func (e *env) restart() {
	e.sink = jurnalsink.New(e.cfg, jurnalsink.Options{Docs: e.store, Clock: e.clock})
}

func d(s string) unified.Decimal { return unified.MustDecimal(s) }

// productNames are the products an invoice's lines name, in order.
func productNames(inv jurnalfake.Invoice) []string {
	var names []string
	for _, l := range inv.Lines {
		names = append(names, l.ProductName)
	}
	return names
}

// sale is a sale of outlet on date: two coffees with a line discount, a
// croissant, 10 % tax and 5 % service, amount = subtotal + tax + service.
func sale(outlet, id, date string, status unified.Status) unified.Transaction {
	ts, _ := time.ParseInLocation("2006-01-02 15:04", date+" 10:30", jakarta)
	return unified.Transaction{
		ExternalID: id, SourceSystem: "moka", BusinessID: "biz", OutletID: outlet, ReceiptNo: "R-" + id,
		Status: status, Currency: "IDR", Amount: d("88000"), Subtotal: d("77000"), TaxAmount: d("7700"),
		ServiceChargeAmount: d("3300"), DiscountAmount: d("5000"), RefundAmount: d("0"), PaymentMethod: "qris",
		Timestamp: ts, BusinessDate: date,
		Items: []unified.Item{
			{Name: "Es Kopi Susu", Variant: "Large", SKU: "KOPI-L", Quantity: d("2"), UnitPrice: d("25000"), Total: d("50000"), DiscountAmount: d("5000"), ItemID: "i1", VariantID: "v1", Category: "Coffee"},
			{Name: "Croissant", Quantity: d("1"), UnitPrice: d("32000"), Total: d("32000"), DiscountAmount: d("0"), ItemID: "i2", Category: "Pastry"},
		},
	}
}

func (e *env) rec(t unified.Transaction) store.Record {
	e.t.Helper()
	data, err := json.Marshal(t)
	if err != nil {
		e.t.Fatal(err)
	}
	e.seq++
	return store.Record{Kind: "transaction", Key: t.Key(), Seq: e.seq, Version: store.Version(data), Data: data}
}

func (e *env) send(recs ...store.Record) sink.Answer {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return e.sink.Send(ctx, recs)
}

func (e *env) mustAccept(recs ...store.Record) {
	e.t.Helper()
	if a := e.send(recs...); a.Verdict != sink.Accepted {
		e.t.Fatalf("Send = %v (%v; %s), want accepted", a.Verdict, a.Err, a.Problem)
	}
}

func sum(ds ...decimal.Decimal) decimal.Decimal {
	s := decimal.Zero
	for _, x := range ds {
		s = s.Add(x)
	}
	return s
}

// TestInvoicePerSale: each sale becomes an invoice whose total is what
// Moka collected, to the rupiah, with its payment into the account mapped
// to its method, tagged with its outlet; products and the contact are
// created once, before the first sale that uses them.
func TestInvoicePerSale(t *testing.T) {
	e := newEnv(t, nil)
	e.mustAccept(e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)), e.rec(sale("101", "S2", "2026-12-05", unified.StatusCompleted)))

	invs := e.fake.Invoices()
	if len(invs) != 2 {
		t.Fatalf("%d invoices, want 2", len(invs))
	}
	for _, inv := range invs {
		if !inv.Total.Equal(decimal.RequireFromString("88000")) {
			t.Errorf("invoice %s total %s, want 88000 (Moka's amount)", inv.CustomID, inv.Total)
		}
		if inv.TransactionDate != "2026-12-05" || inv.PersonName != "Pelanggan Umum" || len(inv.Tags) != 1 || inv.Tags[0] != "Outlet Kemang" {
			t.Errorf("invoice %+v: wrong date, contact or tag", inv)
		}
		if !inv.Remaining.IsZero() {
			t.Errorf("invoice %s is not paid: %s remaining", inv.CustomID, inv.Remaining)
		}
	}
	if got := invs[0].CustomID; got != "moka-101-S1" {
		t.Errorf("custom_id %q, want moka-101-S1", got)
	}
	pays := e.fake.Payments()
	if len(pays) != 2 || pays[0].DepositTo != "Bank BCA" || !pays[0].Total.Equal(decimal.RequireFromString("88000")) {
		t.Errorf("payments %+v, want two of 88000 into Bank BCA", pays)
	}
	names := map[string]int{}
	for _, p := range e.fake.Products() {
		names[p.Name]++
	}
	for _, want := range []string{"Es Kopi Susu - Large", "Croissant", "Pajak Penjualan (Moka)", "Service Charge (Moka)"} {
		if names[want] != 1 {
			t.Errorf("product %q exists %d times, want once (all: %v)", want, names[want], names)
		}
	}
	st := e.sink.Status()
	if len(st.Outlets) != 1 || st.Outlets[0].Posted != 4 || st.Outlets[0].LastSynced.IsZero() || st.Outlets[0].Tag != "Outlet Kemang" {
		t.Errorf("status %+v, want outlet 101 with 4 documents and a last synced time", st.Outlets)
	}
}

// TestRenamedProductNotDuplicated: a product renamed in Moka keeps its
// Jurnal product (matched by Moka's item id), and an item with a SKU is
// matched by SKU.
func TestRenamedProductNotDuplicated(t *testing.T) {
	e := newEnv(t, nil)
	e.mustAccept(e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)))
	before := len(e.fake.Products())
	s2 := sale("101", "S2", "2026-12-05", unified.StatusCompleted)
	s2.Items[1].Name = "Butter Croissant"  // renamed in Moka, same item id
	s2.Items[0].Name = "Iced Coffee Latte" // renamed, same SKU
	e.mustAccept(e.rec(s2))
	if after := len(e.fake.Products()); after != before {
		t.Errorf("%d products after renames, want %d: %+v", after, before, e.fake.Products())
	}
	inv, ok := e.fake.Invoice("moka-101-S2")
	if !ok || !inv.Total.Equal(decimal.RequireFromString("88000")) {
		t.Fatalf("invoice of the renamed sale: %+v", inv)
	}
}

// TestProductLookupReadsTheRows: Jurnal's product filter is not promised
// to match exactly; a near name or code it returns is not the product.
// Regression: the first row of the answer was taken, so a sale of
// "Croissant" went into the books as "Croissant Almond", and one of SKU
// KOPI-L as KOPI-LARGE's product.
func TestProductLookupReadsTheRows(t *testing.T) {
	// A walk-in contact of its own: the fake has "Pelanggan Umum" already.
	e := newEnv(t, func(c *jurnalsink.Config) { c.CustomerName = "Tamu" })
	e.fake.SetLooseFilters(true)
	e.fake.SeedProduct(jurnalfake.Product{Name: "Croissant Almond"})
	e.fake.SeedProduct(jurnalfake.Product{Name: "Es Kopi Susu - Large (Aren)", Code: "KOPI-LARGE"})
	e.fake.SeedProduct(jurnalfake.Product{Name: "Pajak Penjualan (Moka)"}) // the same product, exactly
	e.fake.SeedContact("Tamu Bandung")
	e.mustAccept(e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)))
	inv, ok := e.fake.Invoice("moka-101-S1")
	if !ok {
		t.Fatal("no invoice")
	}
	lines := productNames(inv)
	for _, want := range []string{"Es Kopi Susu - Large", "Croissant", "Pajak Penjualan (Moka)"} {
		if !slices.Contains(lines, want) {
			t.Errorf("invoice lines %q: no line of %q", lines, want)
		}
	}
	for _, wrong := range []string{"Croissant Almond", "Es Kopi Susu - Large (Aren)"} {
		if slices.Contains(lines, wrong) {
			t.Errorf("invoice lines %q: the sale went onto %q", lines, wrong)
		}
	}
	names := map[string]int{}
	for _, p := range e.fake.Products() {
		names[p.Name]++
	}
	if names["Pajak Penjualan (Moka)"] != 1 || names["Croissant"] != 1 || names["Es Kopi Susu - Large"] != 1 {
		t.Errorf("products %v: want the exact ones created once and the existing tax product reused", names)
	}
	// The walk-in contact likewise: "Tamu Bandung" is not it.
	contacts := map[string]int{}
	for _, c := range e.fake.Contacts() {
		contacts[c.DisplayName]++
	}
	if contacts["Tamu"] != 1 || inv.PersonName != "Tamu" {
		t.Errorf("contacts %v, invoice to %q: want the walk-in contact created", contacts, inv.PersonName)
	}
}

// TestProductBeyondTheFirstPage: the product of SKU KOPI-L exists in
// Jurnal under another name, and Jurnal's loose code filter also returns
// more than a page of near codes (KOPI-L01, …) before it. The lookup reads
// the pages until it finds it, and the sale goes onto it. Regression: only
// the first page was read (20 rows, then 50); the create then failed as
// "code taken", the sale's own name was remembered, and the invoice named
// a product Jurnal does not have.
func TestProductBeyondTheFirstPage(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.SetLooseFilters(true)
	for i := range 120 { // more than two pages of a lookup (page_size 50)
		e.fake.SeedProduct(jurnalfake.Product{Name: fmt.Sprintf("Kopi Lain %03d", i), Code: fmt.Sprintf("KOPI-L%03d", i)})
	}
	e.fake.SeedProduct(jurnalfake.Product{Name: "Es Kopi Susu Besar", Code: "KOPI-L"})
	e.mustAccept(e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)))
	inv, ok := e.fake.Invoice("moka-101-S1")
	if !ok {
		t.Fatal("no invoice")
	}
	lines := productNames(inv)
	if !slices.Contains(lines, "Es Kopi Susu Besar") {
		t.Errorf("invoice lines %q: want the sale of SKU KOPI-L on Jurnal's product of that code", lines)
	}
}

// TestContactBeyondTheFirstPage: the walk-in contact exists, but the
// answer to its lookup is a page of near names without it (Jurnal's filter
// is loose, and it pages); creating it then answers "has already been
// taken", which means it is there. Regression: that answer failed every
// sale for good, as only a 409 counted as "it exists".
func TestContactBeyondTheFirstPage(t *testing.T) {
	e := newEnv(t, func(c *jurnalsink.Config) { c.CustomerName = "Tamu" })
	e.fake.SetLooseFilters(true)
	for i := range 60 { // more than a lookup reads (page_size 50)
		e.fake.SeedContact(fmt.Sprintf("Tamu Cabang %03d", i))
	}
	e.fake.SeedContact("Tamu")
	e.mustAccept(e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)))
	inv, ok := e.fake.Invoice("moka-101-S1")
	if !ok || inv.PersonName != "Tamu" {
		t.Fatalf("invoice %+v (found %v): want it to the walk-in contact", inv, ok)
	}
	n := 0
	for _, c := range e.fake.Contacts() {
		if c.DisplayName == "Tamu" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d walk-in contacts, want the one there was", n)
	}
}

// TestSentTwiceNoDuplicate: the same batch sent again (a crash before the
// ack), also after an answer was lost on the way back (the create took
// effect), posts nothing twice and misses nothing.
func TestSentTwiceNoDuplicate(t *testing.T) {
	e := newEnv(t, nil)
	r1, r2 := e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)), e.rec(sale("101", "S2", "2026-12-05", unified.StatusCompleted))
	e.mustAccept(r1)
	e.restart()
	e.mustAccept(r1, r2)
	// The invoice of S3 is created but its answer is lost: a retry.
	r3 := e.rec(sale("101", "S3", "2026-12-05", unified.StatusCompleted))
	e.fake.LoseAnswerNext(1)
	for i := 0; i < 20; i++ {
		a := e.send(r3)
		if a.Verdict == sink.Accepted {
			break
		}
		if a.Verdict != sink.Retry {
			t.Fatalf("lost answer: %v %v", a.Verdict, a.Err)
		}
		e.restart() // and the agent restarts
	}
	e.mustAccept(r1, r2, r3)
	counts := map[string]int{}
	for _, inv := range e.fake.Invoices() {
		counts[inv.CustomID]++
	}
	for _, p := range e.fake.Payments() {
		counts[p.CustomID]++
	}
	for _, id := range []string{"moka-101-S1", "moka-101-S2", "moka-101-S3", "moka-101-S1-pay", "moka-101-S2-pay", "moka-101-S3-pay"} {
		if counts[id] != 1 {
			t.Errorf("%s posted %d times, want once", id, counts[id])
		}
	}
	if len(counts) != 6 {
		t.Errorf("documents %v, want exactly 6", counts)
	}
}

// TestVoidAndRefundAfterPosting: a void of a posted sale becomes a sales
// return of the whole invoice; a refund a return of the refunded amount,
// and a second refund a second return; nothing is edited or deleted.
func TestVoidAndRefundAfterPosting(t *testing.T) {
	e := newEnv(t, nil)
	e.mustAccept(e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)), e.rec(sale("101", "S2", "2026-12-05", unified.StatusCompleted)))
	e.mustAccept(e.rec(sale("101", "S1", "2026-12-05", unified.StatusVoid)))
	e.mustAccept(e.rec(sale("101", "S1", "2026-12-05", unified.StatusVoid))) // again: nothing new

	part := sale("101", "S2", "2026-12-05", unified.StatusPartiallyRefunded)
	part.RefundAmount = d("32000")
	e.mustAccept(e.rec(part))
	full := sale("101", "S2", "2026-12-05", unified.StatusRefunded)
	full.RefundAmount = d("88000")
	e.mustAccept(e.rec(full))

	rets := e.fake.Returns()
	got := map[string]decimal.Decimal{}
	for _, r := range rets {
		got[r.CustomID] = r.Total
	}
	want := map[string]string{"moka-101-S1-void": "88000", "moka-101-S2-ret-32000": "32000", "moka-101-S2-ret-88000": "56000"}
	if len(got) != len(want) || len(rets) != len(want) {
		t.Errorf("returns %v, want %v", got, want)
	}
	for id, w := range want {
		if !got[id].Equal(decimal.RequireFromString(w)) {
			t.Errorf("return %s = %s, want %s", id, got[id], w)
		}
	}
	if n := len(e.fake.Invoices()); n != 2 {
		t.Errorf("%d invoices, want the 2 originals, unchanged", n)
	}
}

// TestVoidBeforePostingPostsNothing: a sale voided before Jurnal got it
// posts no document.
func TestVoidBeforePostingPostsNothing(t *testing.T) {
	e := newEnv(t, nil)
	e.mustAccept(e.rec(sale("101", "S1", "2026-12-05", unified.StatusVoid)))
	if n := len(e.fake.Invoices()) + len(e.fake.Returns()); n != 0 {
		t.Errorf("%d documents for a sale voided before posting, want none", n)
	}
}

// TestRejectedSaleIsolated: a sale Jurnal refuses (422) is Rejected with
// Jurnal's message in plain words, so the loop dead-letters it alone; the
// other sales are posted.
func TestRejectedSaleIsolated(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.RejectCustomID("moka-101-S2", "Reference no is too long (maximum is 255 characters)")
	a := e.send(e.rec(sale("101", "S2", "2026-12-05", unified.StatusCompleted)))
	if a.Verdict != sink.Rejected || !strings.Contains(a.Err.Error(), "Reference no is too long") {
		t.Fatalf("Send = %v (%v), want rejected with Jurnal's message", a.Verdict, a.Err)
	}
	b := e.send(e.rec(sale("101", "S3", "2026-12-05", unified.StatusCompleted)))
	if b.Verdict != sink.Accepted {
		t.Fatalf("another sale: %v %v", b.Verdict, b.Err)
	}
	if a.Same == "" || strings.Contains(a.Err.Error(), e.cfg.ClientSecret) {
		t.Errorf("rejection %+v: needs a Same and no secret", a)
	}
	if st := e.sink.Status(); st.Outlets[0].LastError != "" {
		t.Errorf("last error %q stays after the outlet's next success", st.Outlets[0].LastError)
	}
}

// TestQuotaExhaustedWaits: Jurnal's quota answer makes the sink wait as
// told and show the quota state; posting resumes afterwards.
func TestQuotaExhaustedWaits(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.SetMonthlyQuota(1000, 0)
	a := e.send(e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)))
	if a.Verdict != sink.Retry || a.Health != sink.HealthOffline || a.RetryAfter <= 0 || !strings.Contains(a.Problem, "limit") {
		t.Fatalf("answer %+v, want a retry after the quota's wait", a)
	}
	if st := e.sink.Status(); !st.QuotaExhausted || st.QuotaUntil.IsZero() {
		t.Errorf("status %+v does not show the quota", st)
	}
	e.fake.SetMonthlyQuota(1000, 1000)
	e.mustAccept(e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)))
	if st := e.sink.Status(); st.QuotaExhausted {
		t.Error("quota still shown after posting resumed")
	}
}

// TestClockSkew: with the PC's clock 9 minutes behind Mekari's, the sink
// signs with the gateway's time (learnt from its Date) and says the clock
// is wrong; with credentials refused, it is an error for a person, not a
// retry storm of offline answers.
func TestClockSkew(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.SetSkew(9 * time.Minute)
	e.mustAccept(e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)))
	st := e.sink.Status()
	if st.ClockOffset < 8*time.Minute || st.ClockOffset > 10*time.Minute {
		t.Errorf("clock offset %s, want about 9m", st.ClockOffset)
	}
	if p := jurnalsink.ClockProblem(st.ClockOffset); !strings.Contains(p, "PC clock is wrong by 9 minutes") {
		t.Errorf("clock problem %q", p)
	}

	bad := newEnv(t, func(c *jurnalsink.Config) { c.ClientSecret = "not-the-secret" })
	a := bad.send(bad.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)))
	if a.Verdict != sink.Retry || a.Health != sink.HealthError || !strings.Contains(a.Problem, "credentials") {
		t.Errorf("refused credentials: %+v", a)
	}
	if strings.Contains(fmt.Sprint(a), "not-the-secret") {
		t.Error("the secret leaks into the answer")
	}
}

// TestClockSkewRefused: when Jurnal refuses even with the gateway's time,
// the problem says the PC clock is wrong.
func TestClockSkewRefused(t *testing.T) {
	e := newEnv(t, func(c *jurnalsink.Config) { c.ClientSecret = "wrong" })
	e.fake.SetSkew(-20 * time.Minute)
	a := e.send(e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)))
	if a.Verdict != sink.Retry || a.Health != sink.HealthError {
		t.Fatalf("answer %+v", a)
	}
	if n := len(e.fake.Requests()); n > 3 {
		t.Errorf("%d requests for one refused attempt, want at most 3 (no storm)", n)
	}
}

// TestEditAfterPosting: a sale edited in Moka after it was posted (an item
// added, then one taken off) becomes an invoice of what was added and a
// sales return of what was taken off — never an edit of the posted
// invoice; a void afterwards returns what every invoice holds.
func TestEditAfterPosting(t *testing.T) {
	e := newEnv(t, nil)
	e.mustAccept(e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)))
	up := sale("101", "S1", "2026-12-05", unified.StatusCompleted)
	up.Amount, up.Subtotal = d("120000"), d("109000")
	e.mustAccept(e.rec(up))
	e.mustAccept(e.rec(up)) // again: nothing new
	down := sale("101", "S1", "2026-12-05", unified.StatusCompleted)
	down.Amount, down.Subtotal = d("100000"), d("89000")
	e.mustAccept(e.rec(down))
	net := func() decimal.Decimal {
		var n decimal.Decimal
		for _, inv := range e.fake.Invoices() {
			n = n.Add(inv.Total)
			if !inv.Remaining.IsZero() && inv.Returned.IsZero() {
				t.Errorf("invoice %s not paid", inv.CustomID)
			}
		}
		for _, r := range e.fake.Returns() {
			n = n.Sub(r.Total)
		}
		return n
	}
	if got := net(); !got.Equal(decimal.RequireFromString("100000")) {
		t.Fatalf("posted net %s after the edits, want 100000 (Moka's amount now)", got)
	}
	if inv, ok := e.fake.Invoice("moka-101-S1-adj-120000"); !ok || !inv.Total.Equal(decimal.RequireFromString("32000")) {
		t.Errorf("edit up: %v %+v, want an invoice of 32000", ok, inv)
	}
	if orig, _ := e.fake.Invoice("moka-101-S1"); !orig.Total.Equal(decimal.RequireFromString("88000")) {
		t.Errorf("the original invoice changed: %s", orig.Total)
	}
	void := sale("101", "S1", "2026-12-05", unified.StatusVoid)
	void.Amount = d("100000")
	e.mustAccept(e.rec(void))
	if got := net(); !got.IsZero() {
		t.Errorf("posted net %s after the void, want 0", got)
	}
}

// failingDocs is the store, whose write number failAt (counting from 1)
// fails without writing: the state the sink finds afterwards is what a
// crash at that moment leaves.
type failingDocs struct {
	*store.Store
	writes, failAt int
}

func (f *failingDocs) PutDoc(coll, key string, value []byte, in []store.Input) (store.AppendResult, error) {
	f.writes++
	if f.writes == f.failAt {
		return store.AppendResult{}, fmt.Errorf("injected failure of write %d", f.writes)
	}
	return f.Store.PutDoc(coll, key, value, in)
}

// TestCrashAtEveryWrite: whichever write of its state fails (as a crash
// right after a document was created would leave it), sending the records
// again posts every document exactly once and Jurnal holds what Moka
// collected — through a sale, an edit up, an edit down and a void.
func TestCrashAtEveryWrite(t *testing.T) {
	for failAt := 1; ; failAt++ {
		e := newEnv(t, nil)
		fd := &failingDocs{Store: e.store, failAt: failAt}
		flaky := jurnalsink.New(e.cfg, jurnalsink.Options{Docs: fd, Clock: e.clock})
		up := sale("101", "S1", "2026-12-05", unified.StatusCompleted)
		up.Amount = d("120000")
		down := sale("101", "S1", "2026-12-05", unified.StatusCompleted)
		down.Amount = d("100000")
		void := sale("101", "S1", "2026-12-05", unified.StatusVoid)
		void.Amount = d("100000")
		steps := []unified.Transaction{sale("101", "S1", "2026-12-05", unified.StatusCompleted), up, down, void}
		failed := false
		for i, tx := range steps {
			r := e.rec(tx)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			a := flaky.Send(ctx, []store.Record{r})
			cancel()
			if a.Verdict != sink.Accepted {
				failed = true
				if a.Verdict != sink.Retry {
					t.Fatalf("write %d failing, step %d: %v %v", failAt, i, a.Verdict, a.Err)
				}
				e.restart() // the agent restarts and gets the record again
				e.mustAccept(r)
			}
			want := tx.Amount.Dec()
			if tx.Status == unified.StatusVoid {
				want = decimal.Zero
			}
			if got := jurnalNet(e); !got.Equal(want) {
				t.Errorf("write %d failing, step %d: Jurnal holds %s, want %s", failAt, i, got, want)
			}
		}
		seen := map[string]int{}
		var net decimal.Decimal
		for _, inv := range e.fake.Invoices() {
			seen[inv.CustomID]++
			net = net.Add(inv.Total)
		}
		for _, p := range e.fake.Payments() {
			seen[p.CustomID]++
		}
		for _, r := range e.fake.Returns() {
			seen[r.CustomID]++
			net = net.Sub(r.Total)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("write %d failing: %s posted %d times", failAt, id, n)
			}
		}
		if !net.IsZero() {
			t.Errorf("write %d failing: Jurnal holds %s for a voided sale, want 0 (documents %v)", failAt, net, seen)
		}
		if !failed {
			t.Logf("every one of %d writes failed once", failAt-1)
			return
		}
	}
}

// jurnalNet is what Jurnal holds: invoices less returns.
func jurnalNet(e *env) decimal.Decimal {
	var net decimal.Decimal
	for _, inv := range e.fake.Invoices() {
		net = net.Add(inv.Total)
	}
	for _, r := range e.fake.Returns() {
		net = net.Sub(r.Total)
	}
	return net
}

// TestCreatedWithoutDocument: a 2xx answer to a create that does not hold
// the created document (an empty body from a proxy, another envelope) is
// not a posted document: the send is retried, the invoice is then found by
// its custom_id (or the payment meets its 409), and the payment names the
// invoice's real transaction_no. A status code alone must never count.
func TestCreatedWithoutDocument(t *testing.T) {
	for name, c := range map[string]struct{ path, body string }{
		"invoice empty":          {"/sales_invoices", "{}"},
		"invoice other":          {"/sales_invoices", `{"sales_invoice":{"id":7,"transaction_no":"7","custom_id":"moka-101-S0"}}`},
		"invoice no number":      {"/sales_invoices", `{"sales_invoice":{"id":7,"custom_id":"moka-101-S1"}}`},
		"payment empty":          {"/receive_payments", "{}"},
		"payment other envelope": {"/receive_payments", `{"sales_invoice":{"id":7,"transaction_no":"7","custom_id":"moka-101-S1-pay"}}`},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, nil)
			target, err := url.Parse(e.fake.URL())
			if err != nil {
				t.Fatal(err)
			}
			var blanked atomic.Int32
			proxy := httputil.NewSingleHostReverseProxy(target)
			proxy.ModifyResponse = func(resp *http.Response) error {
				if resp.Request.Method == http.MethodPost && strings.HasSuffix(resp.Request.URL.Path, c.path) &&
					resp.StatusCode/100 == 2 && blanked.CompareAndSwap(0, 1) {
					resp.Body.Close()
					resp.Body = io.NopCloser(strings.NewReader(c.body))
					resp.ContentLength = int64(len(c.body))
					resp.Header.Set("Content-Length", fmt.Sprint(len(c.body)))
				}
				return nil
			}
			front := httptest.NewServer(proxy)
			t.Cleanup(front.Close)
			e.cfg.BaseURL = front.URL
			e.restart()

			r := e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted))
			if a := e.send(r); a.Verdict != sink.Retry || a.Err == nil || !strings.Contains(a.Err.Error(), "moka-101-S1") {
				t.Fatalf("Send after a 2xx without the document = %v (%v), want a retry naming the document", a.Verdict, a.Err)
			}
			if blanked.Load() != 1 {
				t.Fatal("the proxy blanked no answer")
			}
			e.mustAccept(r)
			invs, pays := e.fake.Invoices(), e.fake.Payments()
			if len(invs) != 1 || len(pays) != 1 {
				t.Fatalf("%d invoices and %d payments, want one of each", len(invs), len(pays))
			}
			if !invs[0].Remaining.IsZero() || len(pays[0].Records) != 1 || pays[0].Records[0].TransactionNo != invs[0].TransactionNo {
				t.Errorf("payment %+v does not pay invoice %s (remaining %s)", pays[0].Records, invs[0].TransactionNo, invs[0].Remaining)
			}
		})
	}
}

// TestDepositAccountKeyAnyCase: a deposit account written for "QRIS" in
// the file is the account of Moka's "qris" payments, not silently unused.
func TestDepositAccountKeyAnyCase(t *testing.T) {
	e := newEnv(t, func(c *jurnalsink.Config) {
		c.DepositAccounts = map[string]string{"default": "Kas", " QRIS ": "Bank BCA"}
	})
	e.mustAccept(e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)))
	if pays := e.fake.Payments(); len(pays) != 1 || pays[0].DepositTo != "Bank BCA" {
		t.Errorf("payments %+v, want one into Bank BCA", pays)
	}
}

// TestReloadKeepsTheClient: a sink built after a hot reload (Previous)
// keeps the client, its rate budget and count of calls, when the company
// and limits are the same (a default left unset is the same as the
// default spelled out), and the outlets' figures in any case; another rate
// limit gets a new client.
func TestReloadKeepsTheClient(t *testing.T) {
	e := newEnv(t, func(c *jurnalsink.Config) { c.RequestsPerMinute, c.Timeout = 60, 30*time.Second })
	e.mustAccept(e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)))
	before := e.sink.Status()
	if before.Calls == 0 || len(before.Outlets) != 1 || before.Outlets[0].Posted == 0 {
		t.Fatalf("status %+v: want calls and a posted outlet", before)
	}
	same := e.cfg
	same.RequestsPerMinute, same.Timeout = 0, 0 // the defaults: 60 and 30 s
	kept := jurnalsink.New(same, jurnalsink.Options{Docs: e.store, Clock: e.clock, Previous: e.sink})
	if st := kept.Status(); st.Calls != before.Calls || st.Outlets[0].Posted != before.Outlets[0].Posted {
		t.Errorf("reloaded alike: %d calls, posted %d; want the client kept (%d) and the figures (%d)",
			st.Calls, st.Outlets[0].Posted, before.Calls, before.Outlets[0].Posted)
	}
	other := e.cfg
	other.RequestsPerMinute = 120
	moved := jurnalsink.New(other, jurnalsink.Options{Docs: e.store, Clock: e.clock, Previous: kept})
	if st := moved.Status(); st.Calls != 0 || st.Outlets[0].Posted != before.Outlets[0].Posted {
		t.Errorf("reloaded with another rate: %d calls, posted %d; want a new client and the figures kept", st.Calls, st.Outlets[0].Posted)
	}
}
