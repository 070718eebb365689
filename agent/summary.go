package agent

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/store"
)

// Summary implements localapi.SummaryBackend (GET /v1/summary): the last
// days business days, today in moka.timezone included, from the store's
// day summary.
func (a *Agent) Summary(ctx context.Context, days int) (localapi.Summary, error) {
	return a.summaryAt(time.Now(), days)
}

var _ localapi.SummaryBackend = (*Agent)(nil)

// summaryAt is Summary at the time now.
func (a *Agent) summaryAt(now time.Time, days int) (localapi.Summary, error) {
	if days < 1 || days > localapi.MaxSummaryDays {
		return localapi.Summary{}, &localapi.BadRequestError{
			Err: fmt.Errorf("days: want a whole number from 1 to %d", localapi.MaxSummaryDays)}
	}
	cfg := a.config()
	loc := cfg.Moka.Location()
	today := now.In(loc)
	// An outlet east of moka.timezone (WITA, WIT) starts its next business
	// day up to two hours earlier: when it has, the window ends there —
	// unless it is one day long, which then could not include today (the
	// tray's "Today" line asks for one day).
	last := today
	rep, err := a.store.Summary(today.AddDate(0, 0, -(days-1)).Format(time.DateOnly), today.AddDate(0, 0, 1).Format(time.DateOnly))
	if err != nil {
		return localapi.Summary{}, fmt.Errorf("day summary: %w", err)
	}
	if tomorrow := today.AddDate(0, 0, 1).Format(time.DateOnly); days > 1 && slices.ContainsFunc(rep.Days, func(d store.DaySummary) bool { return d.Day == tomorrow }) {
		last = today.AddDate(0, 0, 1)
	}
	dates := make([]string, days)
	for i := range dates {
		dates[i] = last.AddDate(0, 0, i-(days-1)).Format(time.DateOnly)
	}
	from, to := dates[0], dates[days-1]
	sum := localapi.Summary{
		Days: days, From: from, To: to, Today: today.Format(time.DateOnly),
		Currency: rep.Currency,
		Sinks:    a.summarySinks(cfg, rep),
	}
	if !rep.Since.IsZero() {
		sum.Since = rep.Since.In(loc).Format(time.DateOnly)
	}

	// The outlets: those Moka syncs, in their order, then any other with
	// sales in the window, by id.
	names := map[string]string{}
	var ids []string
	if a.moka != nil {
		for _, o := range a.moka.Status().Outlets {
			ids = append(ids, o.ID)
			names[o.ID] = o.Name
		}
	}
	byOutlet := map[string]map[string]store.DaySummary{}
	var extra []string
	for _, d := range rep.Days {
		if byOutlet[d.OutletID] == nil {
			byOutlet[d.OutletID] = map[string]store.DaySummary{}
			if !slices.Contains(ids, d.OutletID) {
				extra = append(extra, d.OutletID)
			}
		}
		byOutlet[d.OutletID][d.Day] = d
	}
	sort.Strings(extra)
	ids = append(ids, extra...)

	totals := make([]figures, days)
	var total figures
	sum.Outlets = make([]localapi.SummaryOutlet, 0, len(ids))
	for _, id := range ids {
		so := localapi.SummaryOutlet{ID: id, Name: names[id], Days: make([]localapi.SummaryDay, days)}
		var ot figures
		for i, date := range dates {
			var f figures
			if d, ok := byOutlet[id][date]; ok {
				f = figuresOf(d)
			}
			so.Days[i] = localapi.SummaryDay{Date: date, SummaryFigures: f.api(sum.Sinks)}
			ot.add(f)
			totals[i].add(f)
		}
		so.Total = ot.api(sum.Sinks)
		total.add(ot)
		sum.Outlets = append(sum.Outlets, so)
	}
	sum.Totals = make([]localapi.SummaryDay, days)
	for i, date := range dates {
		sum.Totals[i] = localapi.SummaryDay{Date: date, SummaryFigures: totals[i].api(sum.Sinks)}
	}
	sum.Total = total.api(sum.Sinks)
	return sum, nil
}

// summarySinks are the sinks the summary reports: the enabled ones and
// any other with deliveries or dead letters in the window, in the specs'
// order.
func (a *Agent) summarySinks(cfg *config.Config, rep store.SummaryReport) []string {
	enabled := a.enabledSinks(cfg)
	seen := map[string]bool{}
	for _, d := range rep.Days {
		for _, s := range d.Sinks {
			seen[s.Sink] = true
		}
	}
	out := []string{}
	for _, spec := range a.specs {
		if slices.Contains(enabled, spec.name) || seen[spec.name] {
			out = append(out, spec.name)
			delete(seen, spec.name)
		}
	}
	var rest []string // sinks this build no longer knows
	for name := range seen {
		rest = append(rest, name)
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// figures adds day summaries up exactly.
type figures struct {
	sales, refunds, voids            int64
	amount, refundAmount, voidAmount decimal.Decimal
	delivered, dead                  map[string]int64
	incomplete                       bool
}

func figuresOf(d store.DaySummary) figures {
	f := figures{sales: d.Sales, refunds: d.Refunds, voids: d.Voids,
		amount: money(d.Amount), refundAmount: money(d.RefundAmount), voidAmount: money(d.VoidAmount),
		incomplete: d.Incomplete}
	for _, s := range d.Sinks {
		f.addSink(s.Sink, s.Delivered, s.DeadLetters)
	}
	return f
}

// money reads a decimal the store wrote (always valid; 0 otherwise).
func money(s string) decimal.Decimal {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Zero
	}
	return d
}

func (f *figures) addSink(name string, delivered, dead int64) {
	if f.delivered == nil {
		f.delivered, f.dead = map[string]int64{}, map[string]int64{}
	}
	f.delivered[name] += delivered
	f.dead[name] += dead
}

func (f *figures) add(g figures) {
	f.sales += g.sales
	f.refunds += g.refunds
	f.voids += g.voids
	f.amount = f.amount.Add(g.amount)
	f.refundAmount = f.refundAmount.Add(g.refundAmount)
	f.voidAmount = f.voidAmount.Add(g.voidAmount)
	f.incomplete = f.incomplete || g.incomplete
	for name, n := range g.delivered {
		f.addSink(name, n, g.dead[name])
	}
}

func (f figures) api(sinks []string) localapi.SummaryFigures {
	sf := localapi.SummaryFigures{
		Sales: f.sales, Amount: f.amount.String(),
		Refunds: f.refunds, RefundAmount: f.refundAmount.String(),
		NetAmount: f.amount.Sub(f.refundAmount).String(),
		Voids:     f.voids, VoidAmount: f.voidAmount.String(),
		Received:   f.sales + f.voids,
		Delivered:  make([]localapi.SinkCount, len(sinks)),
		Incomplete: f.incomplete,
	}
	for i, name := range sinks {
		sf.Delivered[i] = localapi.SinkCount{Sink: name, Delivered: f.delivered[name], DeadLetters: f.dead[name]}
	}
	return sf
}
