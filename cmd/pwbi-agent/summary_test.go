package main

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/agent/moka/oauth/oauthfake"
	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/internal/testutil"
)

// dayTruth is what the summary must say of one outlet's day, computed from
// the fake's own truth.
type dayTruth struct {
	sales, refunds, voids            int64
	amount, refundAmount, voidAmount decimal.Decimal
}

func summaryTruth(txs []unified.Transaction) map[[2]string]*dayTruth {
	out := map[[2]string]*dayTruth{}
	for _, tx := range txs {
		k := [2]string{tx.OutletID, tx.BusinessDate}
		d := out[k]
		if d == nil {
			d = &dayTruth{}
			out[k] = d
		}
		amount, _ := decimal.NewFromString(tx.Amount.String())
		refund, _ := decimal.NewFromString(tx.RefundAmount.String())
		switch tx.Status {
		case unified.StatusVoid:
			d.voids++
			d.voidAmount = d.voidAmount.Add(amount)
		default:
			d.sales++
			d.amount = d.amount.Add(amount)
			if tx.Status == unified.StatusRefunded || tx.Status == unified.StatusPartiallyRefunded {
				d.refunds++
				d.refundAmount = d.refundAmount.Add(refund)
			}
		}
	}
	return out
}

// checkSummary compares the agent's GET /v1/summary with the fake's truth:
// every outlet and day of the window, the totals, and (with delivered)
// that the upstream has every record.
func checkSummary(t *testing.T, e *testEnv, m *oauthfake.Server, days int, delivered bool) localapi.Summary {
	t.Helper()
	sum, err := e.client().Summary(context.Background(), days)
	if err != nil {
		t.Fatal(err)
	}
	truth := summaryTruth(m.Expected())
	if sum.Days != days || len(sum.Totals) != days || sum.Currency != "IDR" || sum.Since != "" ||
		!slices.Equal(sum.Sinks, []string{"upstream"}) || sum.Totals[days-1].Date != sum.To || sum.Totals[0].Date != sum.From {
		t.Fatalf("summary header: %+v", sum)
	}
	var total dayTruth
	seen := 0
	for _, o := range sum.Outlets {
		if o.Name == "" || len(o.Days) != days {
			t.Errorf("outlet %s: name %q, %d days", o.ID, o.Name, len(o.Days))
		}
		for _, d := range o.Days {
			want := truth[[2]string{o.ID, d.Date}]
			if want == nil {
				want = &dayTruth{}
			} else {
				seen++
			}
			f := d.SummaryFigures
			if f.Sales != want.sales || f.Amount != want.amount.String() || f.Refunds != want.refunds ||
				f.RefundAmount != want.refundAmount.String() || f.Voids != want.voids || f.VoidAmount != want.voidAmount.String() ||
				f.NetAmount != want.amount.Sub(want.refundAmount).String() || f.Received != want.sales+want.voids {
				t.Errorf("outlet %s %s: got %+v\nwant %+v", o.ID, d.Date, f, *want)
			}
			if delivered && (len(f.Delivered) != 1 || f.Delivered[0].Delivered != f.Received || f.Delivered[0].DeadLetters != 0) {
				t.Errorf("outlet %s %s: received %d, delivered %+v", o.ID, d.Date, f.Received, f.Delivered)
			}
			total.sales += want.sales
			total.voids += want.voids
			total.amount = total.amount.Add(want.amount)
		}
	}
	inWindow := 0
	for k := range truth {
		if k[1] >= sum.From && k[1] <= sum.To {
			inWindow++
		}
	}
	if seen != inWindow || (seen == 0 && days > 1) {
		t.Errorf("the summary shows %d outlet days with sales, the fake has %d in %s..%s", seen, inWindow, sum.From, sum.To)
	}
	if sum.Total.Sales != total.sales || sum.Total.Voids != total.voids || sum.Total.Amount != total.amount.String() {
		t.Errorf("total %+v, want sales %d voids %d amount %s", sum.Total, total.sales, total.voids, total.amount)
	}
	return sum
}

// TestSummaryReconcilesWithMoka (issue 15): the day at a glance adds up to
// exactly what the fake Moka holds — per outlet (three time zones) and
// business day, sales, amount collected, refunds and voids, to the last
// decimal — and the upstream's deliveries match what was received. Voids
// and refunds made afterwards replace the sales' earlier contribution
// instead of adding to it.
func TestSummaryReconcilesWithMoka(t *testing.T) {
	m := startOAuthMoka(t, oauthfake.Options{Outlets: 3, Days: 10, TxPerDay: 15})
	e := newOAuthEnv(t, m, 30)
	e.start(t)
	testutil.WaitFor(t, "agent up", 60*time.Second, func() bool {
		st, err := e.status(t)
		return err == nil && st.Moka.NeedsAuthorization
	})
	connected := time.Now()
	mokaConnect(t, e)
	waitSynced(t, e, 3, connected, func() bool { return len(latestTx(e.up.Records())) >= len(m.Expected()) })
	sum := checkSummary(t, e, m, 14, true)
	if sum.Total.Voids == 0 || sum.Total.Refunds == 0 {
		t.Errorf("the data has no voids or refunds to check: %+v", sum.Total)
	}

	// The back office voids one sale and refunds two of a week ago.
	var old []string
	for _, p := range m.Truth() {
		if time.Since(p.CreatedAt) > 8*24*time.Hour && !p.Voided && !p.Refunded && len(old) < 3 {
			old = append(old, p.ID)
		}
	}
	if len(old) != 3 {
		t.Fatal("no old sales")
	}
	for i, err := range []error{m.Void(old[0]), m.Refund(old[1], true), m.Refund(old[2], false)} {
		if err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}
	before := len(e.up.Records())
	resync := time.Now()
	if out, err := runCLI(t, "sync", "--config", e.cfgPath); err != nil {
		t.Fatalf("sync: %v\n%s", err, out)
	}
	waitSynced(t, e, 3, resync, func() bool { return len(e.up.Records()) >= before+3 })
	after := checkSummary(t, e, m, 14, true)
	if after.Total.Received != sum.Total.Received || after.Total.Voids != sum.Total.Voids+1 {
		t.Errorf("after a void and two refunds: received %d -> %d, voids %d -> %d",
			sum.Total.Received, after.Total.Received, sum.Total.Voids, after.Total.Voids)
	}

	// One day is today alone; days is checked.
	checkSummary(t, e, m, 1, true)
	resp, err := http.Get("http://" + e.apiAddr + "/v1/summary?days=500")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if want := "from 1 to 180"; resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), want) {
		t.Errorf("days=500: %s %s", resp.Status, body)
	}
}
