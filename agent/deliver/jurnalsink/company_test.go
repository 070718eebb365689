package jurnalsink_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/pwbi/edge-agent/agent/deliver/jurnalsink"
	"github.com/pwbi/edge-agent/agent/deliver/jurnalsink/jurnalfake"
	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/store"
)

// companyB is a second Jurnal company, another fake with credentials of
// its own, knowing none of what the sink created in the env's: its
// contacts are the fake's defaults ("Pelanggan Umum"), it has no products.
func companyB(e *env) (*jurnalfake.Server, jurnalsink.Config) {
	e.t.Helper()
	fake := jurnalfake.NewServer(e.t, jurnalfake.Options{Clock: e.clock, ClientID: "company-b-client", ClientSecret: "company-b-secret-0123456789"})
	cfg := e.cfg
	cfg.BaseURL, cfg.ClientID, cfg.ClientSecret = fake.URL(), fake.ClientID(), fake.ClientSecret()
	return fake, cfg
}

// switchTo makes e's sink one for cfg, as a hot reload does (Previous) or
// as a restart does (a new sink on the same store).
func (e *env) switchTo(cfg jurnalsink.Config, reload bool, log *slog.Logger) {
	opts := jurnalsink.Options{Docs: e.store, Clock: e.clock, Logger: log}
	if reload {
		opts.Previous = e.sink
	}
	e.cfg = cfg
	e.sink = jurnalsink.New(cfg, opts)
}

// masterCalls counts the requests a fake got for master data (products,
// contacts): lookups and creates.
func masterCalls(f *jurnalfake.Server) int {
	n := 0
	for _, r := range f.Requests() {
		_, path, _ := strings.Cut(r.Route, " ")
		if strings.HasPrefix(path, "/products") || strings.HasPrefix(path, "/customers") || strings.HasPrefix(path, "/contacts") {
			n++
		}
	}
	return n
}

// TestCompanySwitchCreatesMasterDataAgain: after client_id and base_url
// are changed to another Jurnal company (a hot reload or a restart), the
// products and the walk-in contact the sink created in the first company
// are looked up and created in the new one before its first invoice, and
// the invoice is accepted. What was posted to the first company stays
// there: a sale posted to it and sent again is not posted to the new one.
// Regression: the caches said "exists in Jurnal" for the first company's
// products and contact, the new company refused the invoices naming them
// (422), and the sales went to the dead letters.
func TestCompanySwitchCreatesMasterDataAgain(t *testing.T) {
	for _, reload := range []bool{true, false} {
		name := map[bool]string{true: "reload", false: "restart"}[reload]
		t.Run(name, func(t *testing.T) {
			// A walk-in contact neither company has: created in each.
			e := newEnv(t, func(c *jurnalsink.Config) { c.CustomerName = "Tamu" })
			s1 := e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted))
			e.mustAccept(s1)
			if _, ok := e.fake.Invoice("moka-101-S1"); !ok {
				t.Fatal("company A has no invoice of S1")
			}
			fakeB, cfgB := companyB(e)
			logs := &testutil.SyncBuffer{}
			e.switchTo(cfgB, reload, slog.New(slog.NewTextHandler(logs, nil)))

			a := e.send(e.rec(sale("101", "S2", "2026-12-05", unified.StatusCompleted)))
			if a.Verdict != sink.Accepted {
				t.Fatalf("the first sale to company B: %v (%v; %s), want accepted", a.Verdict, a.Err, a.Detail)
			}
			inv, ok := fakeB.Invoice("moka-101-S2")
			if !ok || !inv.Total.Equal(decimal.RequireFromString("88000")) || inv.PersonName != "Tamu" {
				t.Fatalf("company B's invoice of S2: %v %+v, want 88000 to Tamu", ok, inv)
			}
			products := map[string]int{}
			for _, p := range fakeB.Products() {
				products[p.Name]++
			}
			for _, l := range inv.Lines {
				if products[l.ProductName] != 1 {
					t.Errorf("line of %q: company B holds %d such products, want the one created there (all: %v)", l.ProductName, products[l.ProductName], products)
				}
			}
			if !slices.ContainsFunc(fakeB.Contacts(), func(c jurnalfake.Contact) bool { return c.DisplayName == "Tamu" }) {
				t.Error("the walk-in contact was not created in company B")
			}
			if _, ok := e.fake.Invoice("moka-101-S2"); ok {
				t.Error("S2 went to company A")
			}

			// History stays where it was posted.
			e.mustAccept(s1)
			if _, ok := fakeB.Invoice("moka-101-S1"); ok {
				t.Error("S1, posted to company A, was posted to company B too")
			}

			out := logs.String()
			if n := strings.Count(out, "Jurnal company changed"); n != 1 {
				t.Errorf("the company change was logged %d times, want once:\n%s", n, out)
			}
			// Four products (the two items, tax, service charge) and the
			// contact.
			if !strings.Contains(out, "entries=5") {
				t.Errorf("the log does not say 5 cached entries were dropped:\n%s", out)
			}
			for _, secret := range []string{e.cfg.ClientSecret, "jurnal-test-secret", "company-b-client", jurnalfake.DefaultClientID} {
				if strings.Contains(out, secret) {
					t.Errorf("the log holds %q:\n%s", secret, out)
				}
			}
		})
	}
}

// TestCompanySwitchStatus: after a switch to another Jurnal company, the
// status no longer shows the first company's quota warning, nor its
// outlets' figures (documents posted, last error): only what was posted to
// the new company counts.
func TestCompanySwitchStatus(t *testing.T) {
	for _, reload := range []bool{true, false} {
		name := map[bool]string{true: "reload", false: "restart"}[reload]
		t.Run(name, func(t *testing.T) {
			// The outlet is listed, so the status shows its figures
			// whatever the sink remembers.
			e := newEnv(t, func(c *jurnalsink.Config) { c.Outlets = []string{"101"} })
			e.mustAccept(e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)))
			e.fake.SetMonthlyQuota(1000, 0)
			if a := e.send(e.rec(sale("101", "S2", "2026-12-05", unified.StatusCompleted))); a.Verdict != sink.Retry {
				t.Fatalf("Send over company A's quota = %v, want a retry", a.Verdict)
			}
			st := e.sink.Status()
			if len(st.Outlets) != 1 || st.Outlets[0].Posted != 2 || st.Outlets[0].LastError == "" || (reload && !st.QuotaExhausted) {
				t.Fatalf("company A's status %+v: want its quota, 2 documents and the last error", st)
			}

			fakeB, cfgB := companyB(e)
			e.switchTo(cfgB, reload, nil)
			st = e.sink.Status()
			if st.QuotaExhausted || st.QuotaMessage != "" {
				t.Errorf("after the switch the status shows company A's quota: %+v", st)
			}
			if len(st.Outlets) != 1 || st.Outlets[0].Posted != 0 || st.Outlets[0].LastError != "" || !st.Outlets[0].LastSynced.IsZero() {
				t.Errorf("after the switch, outlets %+v: want outlet 101 with none of company A's figures", st.Outlets)
			}

			e.mustAccept(e.rec(sale("101", "S2", "2026-12-05", unified.StatusCompleted)))
			if _, ok := fakeB.Invoice("moka-101-S2"); !ok {
				t.Fatal("S2 was not posted to company B")
			}
			st = e.sink.Status()
			if len(st.Outlets) != 1 || st.Outlets[0].Posted != 2 || st.Outlets[0].LastError != "" || st.QuotaExhausted {
				t.Errorf("company B's status %+v: want its 2 documents alone, no error, no quota", st)
			}
			e.restart() // the figures persisted are company B's
			if st := e.sink.Status(); len(st.Outlets) != 1 || st.Outlets[0].Posted != 2 {
				t.Errorf("after a restart, outlets %+v: want company B's 2 documents", st.Outlets)
			}
		})
	}
}

// TestCompanySwitchOpenDay: daily_summary days not posted when the
// company changes go to the new company, with their lines' products found
// or created there (the ledger named the first company's); the first
// company's day problems are no longer shown.
func TestCompanySwitchOpenDay(t *testing.T) {
	e := newEnv(t, func(c *jurnalsink.Config) { c.Mode = jurnalsink.ModeDailySummary })
	const closed, open = "2026-12-05", "2026-12-06" // closed already; closes 2026-12-06 19:00 UTC
	e.fake.RejectCustomID("moka-101-"+closed, "Tanggal transaksi is locked")
	e.mustAccept(e.rec(sale("101", "S1", closed, unified.StatusCompleted)), e.rec(sale("101", "S2", open, unified.StatusCompleted)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.sink.Tick(ctx); err == nil {
		t.Fatal("Tick succeeded with the closed day refused")
	}
	if st := e.sink.Status(); len(st.DayProblems) != 1 {
		t.Fatalf("company A's day problems %+v, want the refused day", st.DayProblems)
	}

	fakeB, cfgB := companyB(e)
	e.switchTo(cfgB, true, nil)
	if st := e.sink.Status(); len(st.DayProblems) != 0 || st.Outlets[0].LastError != "" {
		t.Errorf("after the switch: day problems %+v, outlets %+v; want none of company A's", st.DayProblems, st.Outlets)
	}
	e.tick()
	e.clock.Advance(17 * time.Hour)
	e.tick()
	for _, day := range []string{closed, open} {
		inv, ok := fakeB.Invoice("moka-101-" + day)
		if !ok || !inv.Total.Equal(decimal.RequireFromString("88000")) || !inv.Remaining.IsZero() {
			t.Errorf("company B's invoice of %s: %v %+v, want 88000, paid", day, ok, inv)
		}
	}
	names := map[string]int{}
	for _, p := range fakeB.Products() {
		names[p.Name]++
	}
	for _, want := range []string{"Es Kopi Susu - Large", "Croissant", "Pajak Penjualan (Moka)", "Service Charge (Moka)"} {
		if names[want] != 1 {
			t.Errorf("company B holds product %q %d times, want once (all: %v)", want, names[want], names)
		}
	}
	if n := len(e.fake.Invoices()); n != 0 {
		t.Errorf("company A holds %d invoices, want none (its day was refused, then the company changed)", n)
	}
	if st := e.sink.Status(); len(st.DayProblems) != 0 || st.ClosedDays != 0 {
		t.Errorf("status %+v: want no day waiting", st)
	}
}

// TestRestartSameCompanyKeepsCaches: a restart posting to the same
// company (also with its base URL spelt with a trailing slash, and after
// an upgrade from a version that kept no company marker) keeps the cached
// products and contact: the next sales cost no master-data call.
func TestRestartSameCompanyKeepsCaches(t *testing.T) {
	e := newEnv(t, nil)
	e.mustAccept(e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)))
	master := masterCalls(e.fake)
	if master == 0 {
		t.Fatal("the first sale made no master-data call")
	}

	e.restart()
	e.mustAccept(e.rec(sale("101", "S2", "2026-12-05", unified.StatusCompleted)))
	e.cfg.BaseURL += "/"
	e.restart()
	e.mustAccept(e.rec(sale("101", "S3", "2026-12-05", unified.StatusCompleted)))
	// State written by a version without the marker.
	if err := e.store.DeleteDoc(jurnalsink.Collection, "m/company"); err != nil {
		t.Fatal(err)
	}
	e.restart()
	e.mustAccept(e.rec(sale("101", "S4", "2026-12-05", unified.StatusCompleted)))
	if n := masterCalls(e.fake); n != master {
		t.Errorf("%d master-data calls after restarts with the same company, want %d (the caches kept)", n, master)
	}
	if _, ok, err := e.store.GetDoc(jurnalsink.Collection, "m/company"); err != nil || !ok {
		t.Errorf("company marker after the upgrade: %v %v, want it written", ok, err)
	}
	if st := e.sink.Status(); len(st.Outlets) != 1 || st.Outlets[0].Posted != 8 {
		t.Errorf("outlets %+v: want the 8 documents of the 4 sales", st.Outlets)
	}
}

// TestModeSwitchKeepsCaches: switching mode (invoice → daily_summary) is
// not switching company: the cached products and contact stay, by a hot
// reload as by a restart, and the figures shown too.
func TestModeSwitchKeepsCaches(t *testing.T) {
	for _, reload := range []bool{true, false} {
		name := map[bool]string{true: "reload", false: "restart"}[reload]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.mustAccept(e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)))
			master := masterCalls(e.fake)
			cfg := e.cfg
			cfg.Mode = jurnalsink.ModeDailySummary
			e.switchTo(cfg, reload, nil)
			const day = "2026-12-06" // closes 2026-12-06 19:00 UTC
			e.mustAccept(e.rec(sale("101", "S2", day, unified.StatusCompleted)))
			e.clock.Advance(17 * time.Hour)
			e.tick()
			if inv, ok := e.fake.Invoice("moka-101-" + day); !ok || !inv.Total.Equal(decimal.RequireFromString("88000")) {
				t.Fatalf("day invoice %v %+v, want 88000", ok, inv)
			}
			if n := masterCalls(e.fake); n != master {
				t.Errorf("%d master-data calls after the mode switch, want %d (the caches kept)", n, master)
			}
			if st := e.sink.Status(); len(st.Outlets) != 1 || st.Outlets[0].Posted != 4 {
				t.Errorf("outlets %+v: want the 2 documents of S1 and the day's 2", st.Outlets)
			}
		})
	}
}

// TestCompanySwitchStragglerOfOldSink: after a hot reload to another
// Jurnal company, work the replaced sink still had in hand (a Send or a
// Tick that was waiting for the one before it) runs after the new sink
// made the store's caches its company's. That work posts to the old
// company, as its configuration said; the caches it fills are the old
// company's, and the new sink does not take them for its own: its next
// sale finds or creates its products and contact in its company, and is
// accepted. Regression: the check was once per sink, so the old sink
// filled the caches with its company's products and contact under the
// new company's marker, and the new company refused the invoices naming
// them (the sales went to the dead letters).
func TestCompanySwitchStragglerOfOldSink(t *testing.T) {
	e := newEnv(t, func(c *jurnalsink.Config) { c.CustomerName = "Tamu" })
	e.mustAccept(e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)))
	old := e.sink
	fakeB, cfgB := companyB(e)
	e.switchTo(cfgB, true, nil)
	e.tick() // the new sink's first use: the caches are dropped

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if a := old.Send(ctx, []store.Record{e.rec(sale("101", "S2", "2026-12-05", unified.StatusCompleted))}); a.Verdict != sink.Accepted {
		t.Fatalf("the replaced sink's last Send = %v (%v; %s), want accepted", a.Verdict, a.Err, a.Problem)
	}
	if _, ok := e.fake.Invoice("moka-101-S2"); !ok {
		t.Error("S2, sent by the replaced sink, is not in its company A")
	}

	a := e.send(e.rec(sale("101", "S3", "2026-12-05", unified.StatusCompleted)))
	if a.Verdict != sink.Accepted {
		t.Fatalf("the new sink's sale after the straggler: %v (%v; %s), want accepted", a.Verdict, a.Err, a.Problem)
	}
	inv, ok := fakeB.Invoice("moka-101-S3")
	if !ok || inv.PersonName != "Tamu" {
		t.Fatalf("company B's invoice of S3: %v %+v, want one to Tamu", ok, inv)
	}
	if !slices.ContainsFunc(fakeB.Contacts(), func(c jurnalfake.Contact) bool { return c.DisplayName == "Tamu" }) {
		t.Error("the walk-in contact was not created in company B")
	}
	if _, ok := fakeB.Invoice("moka-101-S2"); ok {
		t.Error("S2 went to company B too")
	}
}

// TestCompanySwitchBackAndForth: a reload to another company and back
// (A → B → A) finds the first company's products and contact again
// instead of trusting the second's caches or creating duplicates, and
// each sale goes to the company configured when it was sent, once.
func TestCompanySwitchBackAndForth(t *testing.T) {
	e := newEnv(t, func(c *jurnalsink.Config) { c.CustomerName = "Tamu" })
	cfgA := e.cfg
	e.mustAccept(e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)))
	fakeB, cfgB := companyB(e)
	e.switchTo(cfgB, true, nil)
	e.mustAccept(e.rec(sale("101", "S2", "2026-12-05", unified.StatusCompleted)))
	e.switchTo(cfgA, true, nil)
	e.mustAccept(e.rec(sale("101", "S3", "2026-12-05", unified.StatusCompleted)))

	for fake, want := range map[*jurnalfake.Server][]string{e.fake: {"S1", "S3"}, fakeB: {"S2"}} {
		var got []string
		for _, inv := range fake.Invoices() {
			got = append(got, strings.TrimPrefix(inv.CustomID, "moka-101-"))
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("a company holds the invoices of %v, want %v", got, want)
		}
		names := map[string]int{}
		for _, p := range fake.Products() {
			names[p.Name]++
		}
		for name, n := range names {
			if n != 1 {
				t.Errorf("a company holds product %q %d times, want once", name, n)
			}
		}
		contacts := 0
		for _, c := range fake.Contacts() {
			if c.DisplayName == "Tamu" {
				contacts++
			}
		}
		if contacts != 1 {
			t.Errorf("a company holds %d contacts Tamu, want 1", contacts)
		}
	}
}

// TestReplacedSinkTicksNothing: a Tick of the sink a hot reload replaced
// (tickSinks took it just before the reload, or it waited for a Send)
// posts nothing: the closed day goes to the company configured now, at
// the new sink's Tick, as the days not posted yet do after a switch.
// Regression: the replaced sink posted the day to the old company after
// the switch.
func TestReplacedSinkTicksNothing(t *testing.T) {
	e := newEnv(t, func(c *jurnalsink.Config) { c.Mode = jurnalsink.ModeDailySummary })
	const closed = "2026-12-05" // closed already
	e.mustAccept(e.rec(sale("101", "S1", closed, unified.StatusCompleted)))
	old, before := e.sink, len(e.fake.Requests())
	fakeB, cfgB := companyB(e)
	e.switchTo(cfgB, true, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := old.Tick(ctx); err != nil {
		t.Fatalf("the replaced sink's Tick: %v", err)
	}
	if n := len(e.fake.Requests()) - before; n != 0 {
		t.Errorf("the replaced sink's Tick sent %d requests to company A, want none", n)
	}
	e.tick()
	if _, ok := fakeB.Invoice("moka-101-" + closed); !ok {
		t.Error("the closed day was not posted to company B")
	}
	if _, ok := e.fake.Invoice("moka-101-" + closed); ok {
		t.Error("the closed day was posted to company A after the switch")
	}
}

// TestCompanySwitchDayBegunInOldCompany: a daily_summary day whose invoice
// company A holds but whose payment A refused (or never got: quota, a cut
// line) is A's: after a switch to company B nothing of it is posted to B,
// no day problem stays on the status for ever, and the log tells the
// technician what A is missing. Regression: B was sent a payment for A's
// invoice number, refused it every minute, and the day stayed a problem
// no one could clear.
func TestCompanySwitchDayBegunInOldCompany(t *testing.T) {
	e := newEnv(t, func(c *jurnalsink.Config) { c.Mode = jurnalsink.ModeDailySummary })
	const day = "2026-12-05" // closed already
	// The sales are paid by QRIS: that payment is refused.
	e.fake.RejectCustomID(jurnalsink.CustomID("101", day, "pay", "qris"), "Akun tidak ditemukan")
	e.mustAccept(e.rec(sale("101", "S1", day, unified.StatusCompleted)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.sink.Tick(ctx); err == nil {
		t.Fatal("Tick succeeded with the payment refused")
	}
	inv, ok := e.fake.Invoice("moka-101-" + day)
	if !ok || len(e.fake.Payments()) != 0 {
		t.Fatalf("company A: invoice %v, %d payments; want the invoice without its payment", ok, len(e.fake.Payments()))
	}

	fakeB, cfgB := companyB(e)
	logs := &testutil.SyncBuffer{}
	e.switchTo(cfgB, true, slog.New(slog.NewTextHandler(logs, nil)))
	e.tick()
	e.tick()
	if n, p := len(fakeB.Invoices()), len(fakeB.Payments()); n != 0 || p != 0 {
		t.Errorf("company B got %d invoices and %d payments of a day company A holds, want none", n, p)
	}
	st := e.sink.Status()
	waiting := 0
	for _, o := range st.Outlets {
		waiting += o.Waiting
	}
	if len(st.DayProblems) != 0 || st.ClosedDays != 0 || waiting != 0 {
		t.Errorf("status: day problems %+v, %d closed days, outlets %+v; want the day done here", st.DayProblems, st.ClosedDays, st.Outlets)
	}
	out := logs.String()
	if !strings.Contains(out, "Jurnal day left unfinished in the previous company") || !strings.Contains(out, "date="+day) ||
		!strings.Contains(out, "invoice_no="+inv.TransactionNo) || !strings.Contains(out, `payments_missing="qris 88000"`) {
		t.Errorf("the log does not say what company A is missing (the QRIS payment of 88000):\n%s", out)
	}
	// A sale of the next day goes to B as usual.
	e.mustAccept(e.rec(sale("101", "S2", "2026-12-06", unified.StatusCompleted)))
	e.clock.Advance(17 * time.Hour)
	e.tick()
	if _, ok := fakeB.Invoice("moka-101-2026-12-06"); !ok {
		t.Error("company B has no invoice of the next day")
	}
}

// TestCompanySwitchSaleBegunInOldCompany: in invoice mode, a sale whose
// invoice company A holds but whose payment A did not take is A's: sent
// again after a switch to company B (the loop's retry, or `queue retry`)
// it posts nothing to B and is accepted; the log tells what A is missing.
// Regression: B was sent a payment for A's invoice number, refused it
// (422), and the sale went to the dead letters.
func TestCompanySwitchSaleBegunInOldCompany(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.RejectCustomID(jurnalsink.CustomID("101", "S1")+"-pay", "Akun tidak ditemukan")
	s1 := e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted))
	if a := e.send(s1); a.Verdict == sink.Accepted {
		t.Fatal("S1 accepted with its payment refused")
	}
	inv, ok := e.fake.Invoice("moka-101-S1")
	if !ok || len(e.fake.Payments()) != 0 {
		t.Fatalf("company A: invoice %v, %d payments; want the invoice without its payment", ok, len(e.fake.Payments()))
	}

	fakeB, cfgB := companyB(e)
	logs := &testutil.SyncBuffer{}
	e.switchTo(cfgB, true, slog.New(slog.NewTextHandler(logs, nil)))
	if a := e.send(s1); a.Verdict != sink.Accepted {
		t.Fatalf("S1 sent again after the switch: %+v, want accepted (it is company A's)", a)
	}
	if n, p := len(fakeB.Invoices()), len(fakeB.Payments()); n != 0 || p != 0 {
		t.Errorf("company B got %d invoices and %d payments of a sale company A holds, want none", n, p)
	}
	if out := logs.String(); !strings.Contains(out, "Jurnal sale left unpaid in the previous company") ||
		!strings.Contains(out, "invoice_no="+inv.TransactionNo) || !strings.Contains(out, "sale=101/S1") {
		t.Errorf("the log does not say what company A is missing:\n%s", out)
	}
	e.mustAccept(e.rec(sale("101", "S2", "2026-12-05", unified.StatusCompleted)))
	if _, ok := fakeB.Invoice("moka-101-S2"); !ok || len(fakeB.Payments()) != 1 {
		t.Errorf("company B: invoice of S2 %v, %d payments; want it invoiced and paid", ok, len(fakeB.Payments()))
	}
}
