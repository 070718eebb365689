package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/pwbi/edge-agent/agent/deliver/jurnalsink"
	"github.com/pwbi/edge-agent/agent/deliver/jurnalsink/jurnalfake"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/agent/moka/apikey/apikeyfake"
	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/store"
)

// jurnalSection enables the Jurnal sink on the fake j.
func jurnalSection(j *jurnalfake.Server, mode string) string {
	return fmt.Sprintf(`[jurnal]
enabled = true
base_url = %q
client_id = %q
client_secret = %q
mode = %q
close_after = "0s"
requests_per_minute = 6000
customer_name = "Pelanggan Umum"
timeout = "5s"
[jurnal.deposit_accounts]
default = "Kas"
qris = "Bank BCA"
`, j.URL(), j.ClientID(), j.ClientSecret(), mode)
}

// jurnalEnv is the agent with Moka (3 outlets × 30 days) and Jurnal fakes.
func jurnalEnv(t *testing.T, mode string, perDay int) (*testEnv, *apikeyfake.Server, *jurnalfake.Server) {
	t.Helper()
	m := startMoka(t, 3, 30, perDay)
	j := jurnalfake.NewServer(t, jurnalfake.Options{})
	return newEnvWith(t, mokaSection(m, 35)+jurnalSection(j, mode)), m, j
}

func jurnalSink(st localapi.Status) localapi.SinkStatus {
	for _, s := range st.Sinks {
		if s.Name == "jurnal" {
			return s
		}
	}
	return localapi.SinkStatus{}
}

// collected is what Moka collected per outlet and business day, over the
// sales Jurnal gets (not voided, an amount above zero).
func collected(m *apikeyfake.Server) (map[string]decimal.Decimal, map[string]unified.Transaction) {
	per := map[string]decimal.Decimal{}
	byID := map[string]unified.Transaction{}
	for _, tx := range m.Expected() {
		if tx.Status == unified.StatusVoid || tx.Amount.Sign() <= 0 {
			continue
		}
		k := tx.OutletID + " " + tx.BusinessDate
		per[k] = per[k].Add(tx.Amount.Dec())
		byID[jurnalsink.CustomID(tx.OutletID, tx.ExternalID)] = tx
	}
	return per, byID
}

// waitAllPosted waits until Jurnal holds an invoice for each of the n
// sales, Jurnal's part of the buffer is empty and its loop is not sending,
// and all three outlets of jurnalEnv have synced, and returns that status.
// (A restarted agent lists the outlets at its first poll, which may come
// after the few sales left were posted: the length is checked first.)
func waitAllPosted(t *testing.T, e *testEnv, j *jurnalfake.Server, n int) localapi.Status {
	t.Helper()
	var st localapi.Status
	testutil.WaitFor(t, "every sale in Jurnal", 180*time.Second, func() bool {
		var err error
		st, err = e.status(t)
		s := jurnalSink(st)
		return err == nil && s.Pending == 0 && !s.Sending && len(j.Invoices()) >= n && len(st.Moka.Outlets) == 3 &&
			st.Moka.Outlets[2].LastSyncAt != nil
	})
	return st
}

// checkInvoicesReconcile: every sale is in Jurnal once, as an invoice whose
// total is its amount, paid; per outlet and day the invoices add up to what
// Moka collected, to the rupiah.
func checkInvoicesReconcile(t *testing.T, m *apikeyfake.Server, j *jurnalfake.Server) {
	t.Helper()
	want, byID := collected(m)
	got := map[string]decimal.Decimal{}
	seen := map[string]int{}
	for _, inv := range j.Invoices() {
		seen[inv.CustomID]++
		tx, ok := byID[inv.CustomID]
		if !ok {
			t.Errorf("invoice %s is no sale of Moka", inv.CustomID)
			continue
		}
		if !inv.Total.Equal(tx.Amount.Dec()) || !inv.Remaining.IsZero() || inv.TransactionDate != tx.BusinessDate {
			t.Errorf("invoice %s: total %s remaining %s date %s, want %s paid on %s", inv.CustomID, inv.Total, inv.Remaining, inv.TransactionDate, tx.Amount, tx.BusinessDate)
		}
		k := tx.OutletID + " " + tx.BusinessDate
		got[k] = got[k].Add(inv.Total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("invoice %s posted %d times", id, n)
		}
	}
	if len(seen) != len(byID) {
		t.Errorf("%d invoices for %d sales", len(seen), len(byID))
	}
	for k, w := range want {
		if !got[k].Equal(w) {
			t.Errorf("outlet and day %s: invoices %s, Moka collected %s", k, got[k], w)
		}
	}
}

// checkProductsOnce: no product name exists twice in Jurnal.
func checkProductsOnce(t *testing.T, j *jurnalfake.Server) {
	t.Helper()
	names := map[string]int{}
	for _, p := range j.Products() {
		names[strings.ToLower(p.Name)]++
	}
	for n, c := range names {
		if c > 1 {
			t.Errorf("product %q exists %d times in Jurnal", n, c)
		}
	}
	if len(names) == 0 {
		t.Error("no product was created")
	}
}

// TestJurnalInvoiceEndToEnd: the real binary posts every sale of 3 outlets
// over 30 days into (the fake) Jurnal as paid invoices, reconciled to the
// rupiah per outlet and day; products are created once; the status lists
// the outlets with their last synced time.
func TestJurnalInvoiceEndToEnd(t *testing.T) {
	e, m, j := jurnalEnv(t, "invoice", 3)
	e.start(t)
	_, byID := collected(m)
	st := waitAllPosted(t, e, j, len(byID))
	checkInvoicesReconcile(t, m, j)
	checkProductsOnce(t, j)
	if len(st.Jurnal.Outlets) != 3 {
		t.Fatalf("jurnal status %+v, want 3 outlets", st.Jurnal)
	}
	for _, o := range st.Jurnal.Outlets {
		if o.LastSyncedAt == nil || o.Posted == 0 || o.LastError != "" {
			t.Errorf("jurnal outlet %+v", o)
		}
	}
	if s := jurnalSink(st); !s.Enabled || s.DeadLetters != 0 {
		t.Errorf("jurnal sink %+v", s)
	}

	// A cashier edits two of today's bills after they were posted: Jurnal
	// gets an invoice of what each edit added; the original invoices stay.
	truth := m.Truth()
	edited := map[string]decimal.Decimal{} // custom_id → its invoice's total before the edit
	for i := len(truth) - 1; i >= 0 && len(edited) < 2; i-- {
		for cid, tx := range byID {
			if tx.ExternalID == truth[i].ID {
				edited[cid] = tx.Amount.Dec()
				if err := m.Edit(tx.ExternalID); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if len(edited) != 2 {
		t.Fatalf("edited sales %v: want 2 posted ones", edited)
	}
	if out, err := runCLI(t, "sync", "--config", e.cfgPath); err != nil {
		t.Fatalf("sync: %v\n%s", err, out)
	}
	want := map[string]decimal.Decimal{}
	for _, tx := range m.Expected() {
		want[jurnalsink.CustomID(tx.OutletID, tx.ExternalID)] = tx.Amount.Dec()
	}
	posted := func(cid string) decimal.Decimal {
		var n decimal.Decimal
		for _, inv := range j.Invoices() {
			if inv.CustomID == cid || strings.HasPrefix(inv.CustomID, cid+"-adj-") {
				n = n.Add(inv.Total)
			}
		}
		for _, r := range j.Returns() {
			if strings.HasPrefix(r.CustomID, cid+"-") {
				n = n.Sub(r.Total)
			}
		}
		return n
	}
	testutil.WaitFor(t, "edits in Jurnal", 60*time.Second, func() bool {
		for cid := range edited {
			if !posted(cid).Equal(want[cid]) {
				return false
			}
		}
		return true
	})
	for cid, w := range want {
		if got := posted(cid); !got.Equal(w) {
			t.Errorf("sale %s: Jurnal holds %s, Moka %s", cid, got, w)
		}
	}
	// The sums alone would also hold for an original invoice rewritten to
	// the new total: it must be untouched, the difference an invoice of
	// its own.
	for cid, before := range edited {
		inv, ok := j.Invoice(cid)
		if !ok || !inv.Total.Equal(before) {
			t.Errorf("sale %s: original invoice's total %s (found %v), want %s unchanged", cid, inv.Total, ok, before)
		}
		adj := 0
		for _, inv := range j.Invoices() {
			if strings.HasPrefix(inv.CustomID, cid+"-adj-") {
				adj++
			}
		}
		if adj != 1 || want[cid].Equal(before) {
			t.Errorf("sale %s: %d invoices of the edit (Moka %s, was %s), want one", cid, adj, want[cid], before)
		}
	}
}

// TestJurnalDailySummaryEndToEnd: in daily_summary mode every closed day of
// every outlet is one invoice whose total is what Moka collected that day,
// to the rupiah; today, not closed, waits. A day Jurnal refuses puts the
// agent in error, naming the day, without holding back the others (every
// sale was taken into its day's ledger, so the delivery figures alone
// would say all is well), and is posted once Jurnal takes it.
func TestJurnalDailySummaryEndToEnd(t *testing.T) {
	e, m, j := jurnalEnv(t, "daily_summary", 3)
	want, _ := collected(m)
	today := time.Now().In(m.Location()).Format("2006-01-02")
	closed := 0
	var refused string // "outlet date" of a closed day Jurnal refuses at first
	for k := range want {
		if !strings.HasSuffix(k, today) {
			closed++
			refused = k
		}
	}
	if refused == "" {
		t.Fatal("no closed day in the fake's data")
	}
	refOutlet, refDate, _ := strings.Cut(refused, " ")
	j.RejectCustomID(jurnalsink.CustomID(refOutlet, refDate), "Tanggal transaksi is locked")
	e.start(t)
	testutil.WaitFor(t, "every sale in the day ledgers", 180*time.Second, func() bool {
		st, err := e.status(t)
		return err == nil && jurnalSink(st).Pending == 0 && len(st.Moka.Outlets) == 3 && st.Moka.Outlets[2].LastSyncAt != nil
	})
	// "Sync now" closes the days that are over (else the next minute's
	// check does).
	if out, err := runCLI(t, "sync", "--config", e.cfgPath); err != nil {
		t.Fatalf("sync: %v\n%s", err, out)
	}
	dayRefused := func(st localapi.Status) bool {
		for _, p := range st.ProblemDetails {
			if p.Code == "HealthSinkDaysRefused" && p.Params["Date"] == refDate && strings.Contains(p.Text, "is locked") {
				return true
			}
		}
		return false
	}
	testutil.WaitFor(t, "the refused day in the status, the other days in Jurnal", 60*time.Second, func() bool {
		st, err := e.status(t)
		if err != nil || st.State != "error" || !dayRefused(st) {
			return false
		}
		if len(st.Jurnal.Days) != 1 || st.Jurnal.Days[0].Date != refDate || !st.Jurnal.Days[0].Refused {
			return false
		}
		paid := 0
		for _, inv := range j.Invoices() {
			if inv.Remaining.IsZero() {
				paid++
			}
		}
		return paid == closed-1
	})
	j.RejectCustomID(jurnalsink.CustomID(refOutlet, refDate), "")
	if out, err := runCLI(t, "sync", "--config", e.cfgPath); err != nil {
		t.Fatalf("sync: %v\n%s", err, out)
	}
	// The state too: an error the day left behind would still say so.
	testutil.WaitFor(t, "the refused day posted once Jurnal takes it, the error gone", 60*time.Second, func() bool {
		st, err := e.status(t)
		return err == nil && !dayRefused(st) && len(st.Jurnal.Days) == 0 && st.Jurnal.ClosedDaysWaiting == 0 &&
			st.State == localapi.StateOK
	})
	testutil.WaitFor(t, "every closed day in Jurnal, paid", 60*time.Second, func() bool {
		invs := j.Invoices()
		for _, inv := range invs {
			if !inv.Remaining.IsZero() {
				return false
			}
		}
		return len(invs) >= closed
	})
	got := map[string]decimal.Decimal{}
	for _, inv := range j.Invoices() {
		got[inv.CustomID] = inv.Total
		if !inv.Remaining.IsZero() {
			t.Errorf("day invoice %s not paid: %s remaining", inv.CustomID, inv.Remaining)
		}
	}
	if len(got) != closed {
		t.Errorf("%d day invoices, want %d (one per outlet and closed day)", len(got), closed)
	}
	for k, w := range want {
		outlet, date, _ := strings.Cut(k, " ")
		total, ok := got[jurnalsink.CustomID(outlet, date)]
		switch {
		case date == today && ok:
			t.Errorf("today's invoice of %s was posted before the day closed", outlet)
		case date != today && !total.Equal(w):
			t.Errorf("day %s of outlet %s: invoice %s, Moka collected %s", date, outlet, total, w)
		}
	}
	checkProductsOnce(t, j)
}

// TestJurnalKill9NoDuplicate: kill -9 of the agent, repeatedly, while it
// posts to Jurnal; after a clean restart every sale is in Jurnal exactly
// once, nothing is missing, and the totals reconcile.
func TestJurnalKill9NoDuplicate(t *testing.T) {
	e, m, j := jurnalEnv(t, "invoice", 3)
	_, byID := collected(m)
	for round := 0; round < 4; round++ {
		p := e.start(t)
		before := len(j.Requests())
		testutil.WaitFor(t, "progress into Jurnal", 60*time.Second, func() bool { return len(j.Requests()) > before+20 })
		if err := p.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-p.done
		t.Logf("round %d: killed with %d invoices in Jurnal", round, len(j.Invoices()))
	}
	if n := len(j.Invoices()); n >= len(byID) {
		t.Fatalf("all %d invoices were in before the last kill: the kills tested nothing", n)
	}
	e.start(t)
	waitAllPosted(t, e, j, len(byID))
	checkInvoicesReconcile(t, m, j)
	checkProductsOnce(t, j)
	pays := map[string]int{}
	for _, p := range j.Payments() {
		pays[p.CustomID]++
	}
	for id := range byID {
		if pays[id+"-pay"] != 1 {
			t.Errorf("payment of %s posted %d times, want once", id, pays[id+"-pay"])
		}
	}
}

// TestJurnalDownThenRejectAndQuota: Jurnal down → the sales wait in the
// buffer and the status says so; back up with its quota used up → the
// status shows the quota and posting waits; quota back, "Sync now" catches
// up; a sale Jurnal refuses (422) goes to Jurnal's dead letters alone, with
// Jurnal's message.
func TestJurnalDownThenRejectAndQuota(t *testing.T) {
	e, m, j := jurnalEnv(t, "invoice", 2)
	_, byID := collected(m)
	var rejected string
	for id := range byID {
		rejected = id
		break
	}
	j.RejectCustomID(rejected, "Memo may not contain emoji")
	j.SetDown(true)
	e.start(t)
	// Down is a retrying problem: the sink and the agent are offline, in
	// the sink's own words (it cannot reach Jurnal), not an error.
	testutil.WaitFor(t, "Jurnal shown down", 60*time.Second, func() bool {
		st, err := e.status(t)
		s := jurnalSink(st)
		return err == nil && s.Pending > 0 && s.LastError != "" && st.Moka.Outlets[2].LastSyncAt != nil &&
			st.State == "offline" && s.Health == "offline" &&
			(s.ProblemCode == "HealthJurnalUnreachable" || s.ProblemCode == "HealthJurnalNotAnswering")
	})
	if n := len(j.Invoices()); n != 0 {
		t.Fatalf("%d invoices while Jurnal was down", n)
	}

	j.SetMonthlyQuota(100000, 0)
	j.SetDown(false)
	if out, err := runCLI(t, "sync", "--config", e.cfgPath); err != nil {
		t.Fatalf("sync: %v\n%s", err, out)
	}
	testutil.WaitFor(t, "quota shown", 60*time.Second, func() bool {
		st, err := e.status(t)
		s := jurnalSink(st)
		return err == nil && st.Jurnal.QuotaExhausted && s.Pending > 0 &&
			st.State == "offline" && s.Health == "offline" && s.ProblemCode == "HealthJurnalQuota"
	})
	if n := len(j.Invoices()); n != 0 {
		t.Fatalf("%d invoices without quota", n)
	}

	j.SetMonthlyQuota(100000, 100000)
	if out, err := runCLI(t, "sync", "--config", e.cfgPath); err != nil {
		t.Fatalf("sync: %v\n%s", err, out)
	}
	var st localapi.Status
	// Settled: nothing pending and no attempt under way, so the sink's
	// health is that of its last answer (an attempt acks before it clears
	// the problem).
	testutil.WaitFor(t, "caught up", 180*time.Second, func() bool {
		var err error
		st, err = e.status(t)
		s := jurnalSink(st)
		return err == nil && s.Pending == 0 && !s.Sending && len(j.Invoices()) >= len(byID)-1
	})
	if st.Jurnal.QuotaExhausted {
		t.Error("quota still shown after posting resumed")
	}
	if s := jurnalSink(st); s.Health != "" || s.ProblemCode != "" {
		t.Errorf("after catching up the Jurnal sink says health %q, problem %q (%s)", s.Health, s.ProblemCode, s.Problem)
	}
	if s := jurnalSink(st); s.DeadLetters != 1 {
		t.Errorf("jurnal sink %+v, want the one refused sale in its dead letters", s)
	}
	if _, ok := j.Invoice(rejected); ok {
		t.Error("the refused sale has an invoice")
	}
	out, err := runCLI(t, "queue", "dead", "--sink", "jurnal", "--config", e.cfgPath)
	if err != nil || !strings.Contains(string(out), "Memo may not contain emoji") {
		t.Errorf("queue dead --sink jurnal: %v\n%s", err, out)
	}
}

// TestJurnalClockSkew: with Mekari's clock 20 minutes off the PC's, the
// agent signs with the gateway's time, posts every sale, and the status
// says the PC clock is wrong — no retry storm.
func TestJurnalClockSkew(t *testing.T) {
	e, m, j := jurnalEnv(t, "invoice", 1)
	j.SetSkew(20 * time.Minute)
	_, byID := collected(m)
	e.start(t)
	st := waitAllPosted(t, e, j, len(byID))
	if !strings.Contains(st.Jurnal.ClockProblem, "PC clock is wrong by 20 minutes") {
		t.Errorf("clock problem %q", st.Jurnal.ClockProblem)
	}
	// Jurnal's clock is ahead: the PC's is behind; the code lets the
	// dashboard say it in Indonesian.
	if st.Jurnal.ClockProblemCode != "HealthJurnalClockBehind" || st.Jurnal.ClockProblemParams["Minutes"] != "20" {
		t.Errorf("clock problem code %q params %v, want HealthJurnalClockBehind with Minutes 20",
			st.Jurnal.ClockProblemCode, st.Jurnal.ClockProblemParams)
	}
	// Signing with Jurnal's time, the agent posts: the sink is not in
	// trouble, only the PC's clock needs fixing.
	if s := jurnalSink(st); s.Health != "" || s.DeadLetters != 0 {
		t.Errorf("with a skewed clock the Jurnal sink says health %q (%s), %d dead letters", s.Health, s.Problem, s.DeadLetters)
	}
	refused := 0
	for _, r := range j.Requests() {
		if r.Status == 401 {
			refused++
		}
	}
	if refused > 2 {
		t.Errorf("%d requests refused for the clock, want at most one or two (no storm)", refused)
	}
	checkInvoicesReconcile(t, m, j)
}

// appendSales stores versions of sales in the agent's buffer while the
// agent is stopped, as the Moka poller would.
func (e *testEnv) appendSales(t *testing.T, txs ...unified.Transaction) {
	t.Helper()
	if err := os.MkdirAll(e.dataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Options{Path: filepath.Join(e.dataDir, "agent.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var in []store.Input
	for _, tx := range txs {
		data, err := tx.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, store.Input{Kind: store.KindTransaction, Key: tx.Key(), Data: data})
	}
	if _, err := st.Append(in, nil); err != nil {
		t.Fatal(err)
	}
}

func e2eSale(id string, status unified.Status, refund string) unified.Transaction {
	dec := unified.MustDecimal
	ts := time.Date(2026, 11, 20, 10, 30, 0, 0, time.FixedZone("WIB", 7*3600))
	return unified.Transaction{
		ExternalID: id, SourceSystem: "moka", BusinessID: "b1", OutletID: "o1", ReceiptNo: "INV-" + id, Status: status,
		Currency: "IDR", Amount: dec("61050"), Subtotal: dec("55000"), TaxAmount: dec("5500"), ServiceChargeAmount: dec("550"),
		DiscountAmount: dec("0"), RefundAmount: dec(refund), PaymentMethod: "cash", Timestamp: ts, BusinessDate: "2026-11-20",
		Items: []unified.Item{
			{Name: "Es Kopi Susu", SKU: "EKS", Quantity: dec("1"), UnitPrice: dec("25000"), Total: dec("25000"), DiscountAmount: dec("0"), Modifiers: []unified.Modifier{}},
			{Name: "Teh Tarik", Quantity: dec("2"), UnitPrice: dec("15000"), Total: dec("30000"), DiscountAmount: dec("0"), Modifiers: []unified.Modifier{}, ItemID: "tt"},
		},
	}
}

// TestJurnalVoidAndRefundAfterPosting: sales posted to Jurnal, then voided
// or refunded in Moka: the agent posts reversing sales returns (the whole
// invoice for a void, the refunded amount for a refund), never an edit.
// (That a crash at any moment of posting a return posts it once is
// jurnalsink's TestCrashAtEveryWrite; a clean restart re-sends nothing, so
// this test does not claim to show it.)
func TestJurnalVoidAndRefundAfterPosting(t *testing.T) {
	j := jurnalfake.NewServer(t, jurnalfake.Options{})
	e := newEnvWith(t, "[moka]\nenabled = false\n"+jurnalSection(j, "invoice"))
	e.appendSales(t, e2eSale("S1", unified.StatusCompleted, "0"), e2eSale("S2", unified.StatusCompleted, "0"))
	p := e.start(t)
	testutil.WaitFor(t, "two sales posted", 60*time.Second, func() bool { return len(j.Payments()) == 2 })
	p.stop(t)

	e.appendSales(t, e2eSale("S1", unified.StatusVoid, "0"), e2eSale("S2", unified.StatusPartiallyRefunded, "25000"))
	p = e.start(t)
	testutil.WaitFor(t, "reversals posted", 60*time.Second, func() bool {
		st, err := e.status(t)
		return err == nil && jurnalSink(st).Pending == 0 && len(j.Returns()) == 2
	})
	p.stop(t)

	got := map[string]string{}
	for _, r := range j.Returns() {
		got[r.CustomID] = r.Total.String()
	}
	want := map[string]string{"moka-o1-S1-void": "61050", "moka-o1-S2-ret-25000": "25000"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("returns %v, want %v", got, want)
	}
	for _, inv := range j.Invoices() {
		if !inv.Total.Equal(decimal.RequireFromString("61050")) {
			t.Errorf("invoice %s changed: total %s", inv.CustomID, inv.Total)
		}
	}
	if n := len(j.Invoices()); n != 2 {
		t.Errorf("%d invoices, want the 2 originals", n)
	}
}
