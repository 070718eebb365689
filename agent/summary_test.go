package agent

import (
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/store"
)

func sale(id, outlet, day, status, amount, refund string) store.Input {
	return store.Input{
		Kind: store.KindTransaction, Key: "moka/b1/" + outlet + "/" + id,
		Data: []byte(`{"external_id":"` + id + `","status":"` + status + `","amount":"` + amount + `"}`),
		Sale: &store.Sale{OutletID: outlet, Day: day, Status: status, Amount: amount, Refund: refund, Currency: "IDR"},
	}
}

// The summary's window ends today in moka.timezone, or tomorrow once an
// outlet east of it has started that day; every day of the window is
// there (zeros included), amounts add up exactly per outlet, per day and
// in total, and each sink's deliveries count per day.
func TestSummaryWindowAndSums(t *testing.T) {
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "agent.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := config.Default()
	a := &Agent{log: slog.New(slog.DiscardHandler), store: st, specs: sinkSpecs, cfg: &cfg}
	jkt := cfg.Moka.Location()
	now := time.Date(2026, 12, 7, 23, 30, 0, 0, jkt) // 01:30 on the 8th in WIT

	r, err := st.Append([]store.Input{
		sale("1", "out_jkt", "2026-12-06", "completed", "150000", "0"),
		sale("2", "out_jkt", "2026-12-07", "completed", "13636.36", "0"),
		sale("3", "out_jkt", "2026-12-07", "partially_refunded", "50000", "20000.5"),
		sale("4", "out_jkt", "2026-12-07", "void", "9999", "0"),
		sale("5", "out_wit", "2026-12-07", "completed", "1.5", "0"),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Ack(r.FirstSeq, r.FirstSeq+1); err != nil {
		t.Fatal(err)
	}

	sum, err := a.summaryAt(now, 3)
	if err != nil {
		t.Fatal(err)
	}
	if sum.From != "2026-12-05" || sum.To != "2026-12-07" || sum.Today != "2026-12-07" || sum.Currency != "IDR" ||
		!slices.Equal(sum.Sinks, []string{"upstream"}) || len(sum.Outlets) != 2 || sum.Outlets[0].ID != "out_jkt" {
		t.Fatalf("summary: %+v", sum)
	}
	today := sum.Totals[2]
	if today.Date != "2026-12-07" || today.Sales != 3 || today.Amount != "63637.86" || today.Refunds != 1 ||
		today.RefundAmount != "20000.5" || today.NetAmount != "43637.36" || today.Voids != 1 || today.VoidAmount != "9999" ||
		today.Received != 4 || !slices.Equal(today.Delivered, []localapi.SinkCount{{Sink: "upstream", Delivered: 1}}) {
		t.Errorf("today: %+v", today)
	}
	if d := sum.Outlets[0].Days[0]; d.Date != "2026-12-05" || d.Sales != 0 || d.Amount != "0" || d.Delivered[0].Delivered != 0 {
		t.Errorf("a day without sales: %+v", d)
	}
	if sum.Total.Sales != 4 || sum.Total.Amount != "213637.86" || sum.Total.Received != 5 || sum.Total.Delivered[0].Delivered != 2 {
		t.Errorf("total: %+v", sum.Total)
	}

	// Past midnight in WIT, the outlet there sells on the 8th: the
	// window moves on to include it.
	if _, err := st.Append([]store.Input{sale("6", "out_wit", "2026-12-08", "completed", "7000", "0")}, nil); err != nil {
		t.Fatal(err)
	}
	sum, err = a.summaryAt(now, 3)
	if err != nil {
		t.Fatal(err)
	}
	if sum.From != "2026-12-06" || sum.To != "2026-12-08" || sum.Today != "2026-12-07" || sum.Totals[2].Amount != "7000" {
		t.Errorf("after the WIT outlet's midnight: from %s to %s today %s, last day %+v", sum.From, sum.To, sum.Today, sum.Totals[2])
	}

	// One day is always today, the tray's "Today" line (before, it was
	// the WIT outlet's tomorrow, and the line went away).
	sum, err = a.summaryAt(now, 1)
	if err != nil {
		t.Fatal(err)
	}
	if sum.From != "2026-12-07" || sum.To != "2026-12-07" || len(sum.Totals) != 1 || sum.Totals[0].Date != "2026-12-07" ||
		sum.Totals[0].Sales != 3 {
		t.Errorf("one day after the WIT outlet's midnight: from %s to %s, totals %+v", sum.From, sum.To, sum.Totals)
	}

	for _, bad := range []int{0, -1, localapi.MaxSummaryDays + 1} {
		var br *localapi.BadRequestError
		if _, err := a.summaryAt(now, bad); !errors.As(err, &br) {
			t.Errorf("days %d: %v", bad, err)
		}
	}
}
