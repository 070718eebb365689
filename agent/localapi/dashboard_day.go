package localapi

import (
	"html"
	"html/template"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/pwbi/edge-agent/internal/i18n"
)

// The day at a glance on the dashboard (issue 15): today per outlet, the
// last days as a bar chart (an inline SVG drawn here: no script), and what
// was received from Moka against what each sink has, day by day, to
// reconcile with the Moka back office.

// dayView is the summary part of the page.
type dayView struct {
	// Today is the business day, written the reader's way.
	Today string
	// Since is set when the counts start after the window's first day.
	Since string
	// Outlets are today's figures per outlet; Total adds them up when
	// there is more than one.
	Outlets []dayFigures
	Total   *dayFigures
	// Chart is the bar chart of the window (an SVG built by daysChart).
	Chart template.HTML
	// SinkTitles head the reconciliation's columns; Recon has a row per
	// day, newest first.
	SinkTitles []string
	Recon      []reconRow
	// Unreadable is set when the backend keeps a summary but reading it
	// failed: the today card says so, in place of any figure, and the
	// days' cards are left out. Only Today is set besides.
	Unreadable bool
	// TodayIncomplete and Incomplete are set when the figures of today,
	// or of a day of the window, may be wrong: part of the agent's day
	// summary could not be read (SummaryFigures.Incomplete).
	TodayIncomplete, Incomplete bool
}

// dayFigures are a day's numbers, written out.
type dayFigures struct {
	Name, ID                   string
	Sales, Amount, Net         string
	Refunds, RefundAmount      string
	Voids, VoidAmount          string
	HasRefunds, HasVoids, None bool
}

type reconRow struct {
	Date       string
	Today      bool
	Incomplete bool
	Received   string
	Cells      []reconCell
}

// reconCell is one sink's share of a day: Class "good" (it has every
// record), "warn" (some on their way) or "bad" (some rejected).
type reconCell struct {
	Text, Class, Title string
}

// money writes an amount in the summary's currency: rupiah the reader's
// way, another currency with its code in front (i18n Printer.Amount).
func money(p *i18n.Printer, currency, amount string) string { return p.Amount(currency, amount) }

// businessDay reads a YYYY-MM-DD business date; ok false when it is not one.
func businessDay(s string) (time.Time, bool) {
	t, err := time.Parse(time.DateOnly, s)
	return t, err == nil
}

func (fm fmtr) day(s string) string {
	if t, ok := businessDay(s); ok {
		return fm.p.Date(t)
	}
	return s
}

func figures(fm fmtr, cur string, f SummaryFigures) dayFigures {
	p := fm.p
	return dayFigures{
		Sales:        fm.count(f.Sales),
		Amount:       money(p, cur, f.Amount),
		Net:          money(p, cur, f.NetAmount),
		Refunds:      fm.count(f.Refunds),
		RefundAmount: money(p, cur, f.RefundAmount),
		Voids:        fm.count(f.Voids),
		VoidAmount:   money(p, cur, f.VoidAmount),
		HasRefunds:   f.Refunds > 0,
		HasVoids:     f.Voids > 0,
		None:         f.Received == 0,
	}
}

func buildDay(sum Summary, st Status, fm fmtr) *dayView {
	p := fm.p
	v := &dayView{Today: fm.day(sum.Today)}
	if sum.Since != "" && sum.Since > sum.From {
		v.Since = fm.day(sum.Since)
	}
	// Today is not always the window's last day: To is the day after when
	// an outlet east of moka.timezone has already started it.
	isToday := func(d SummaryDay) bool { return d.Date == sum.Today }
	for _, o := range sum.Outlets {
		var today SummaryFigures
		if i := slices.IndexFunc(o.Days, isToday); i >= 0 {
			today = o.Days[i].SummaryFigures
		}
		f := figures(fm, sum.Currency, today)
		f.Name, f.ID = outletName(p, o.Name, o.ID), o.ID
		v.Outlets = append(v.Outlets, f)
	}
	if i := slices.IndexFunc(sum.Totals, isToday); i >= 0 {
		v.TodayIncomplete = sum.Totals[i].Incomplete
		if len(sum.Outlets) > 1 {
			t := figures(fm, sum.Currency, sum.Totals[i].SummaryFigures)
			t.Name = p.T("DashDayTotal")
			v.Total = &t
		}
	}
	v.Chart = daysChart(fm, sum)

	titles := map[string]string{}
	for _, s := range st.Sinks {
		titles[s.Name] = s.Title
	}
	for _, name := range sum.Sinks {
		v.SinkTitles = append(v.SinkTitles, sinkTitle(p, name, titles[name]))
	}
	for i := len(sum.Totals) - 1; i >= 0; i-- {
		d := sum.Totals[i]
		row := reconRow{Date: fm.day(d.Date), Today: d.Date == sum.Today, Incomplete: d.Incomplete, Received: fm.count(d.Received)}
		v.Incomplete = v.Incomplete || d.Incomplete
		for _, name := range sum.Sinks {
			var sc SinkCount
			for _, c := range d.Delivered {
				if c.Sink == name {
					sc = c
				}
			}
			row.Cells = append(row.Cells, reconCellOf(fm, d.Received, sc))
		}
		v.Recon = append(v.Recon, row)
	}
	return v
}

func reconCellOf(fm fmtr, received int64, sc SinkCount) reconCell {
	p := fm.p
	c := reconCell{Text: fm.count(sc.Delivered)}
	waiting := received - sc.Delivered - sc.DeadLetters
	if waiting > 0 {
		c.Class = "warn"
		c.Text += " · " + p.N("DashReconWaiting", int(min(waiting, 1<<30)), map[string]any{"Count": fm.count(waiting)})
	}
	if sc.DeadLetters > 0 {
		c.Class = "bad"
		c.Text += " · " + p.N("DashReconRejected", int(min(sc.DeadLetters, 1<<30)), map[string]any{"Count": fm.count(sc.DeadLetters)})
		c.Title = p.T("DashReconRejectedHelp")
	}
	if c.Class == "" && received > 0 {
		c.Class = "good"
		c.Text = "✓ " + c.Text
		c.Title = p.T("DashReconComplete")
	}
	return c
}

// niceCeil rounds a positive amount up to two significant digits
// (40,121,000.50 → 41,000,000; 980 → 980; 0.5 → 1), so the chart's scale
// reads in round numbers.
func niceCeil(d decimal.Decimal) decimal.Decimal {
	whole := d.Ceil()
	digits := len(whole.String())
	if digits <= 2 {
		return whole
	}
	unit := decimal.New(1, int32(digits-2))
	return d.Div(unit).Ceil().Mul(unit)
}

// Geometry of the chart, in SVG user units.
const (
	chartW, chartH      = 720, 240
	chartLeft, chartTop = 104, 16
	chartBottom         = 40 // room for the day labels
	chartRight          = 8
)

// daysChart draws the window's collected amount per day as bars: an SVG
// with a <title> and <desc> for screen readers and a <title> per bar (the
// tooltip) with the day's figures. Heights are computed in decimals, never
// floats.
func daysChart(fm fmtr, sum Summary) template.HTML {
	p := fm.p
	days := sum.Totals
	if len(days) == 0 {
		return ""
	}
	amounts := make([]decimal.Decimal, len(days))
	top := decimal.Zero
	best := -1
	for i, d := range days {
		a, err := decimal.NewFromString(d.Amount)
		if err != nil || a.IsNegative() {
			a = decimal.Zero
		}
		amounts[i] = a
		if a.GreaterThan(top) {
			top, best = a, i
		}
	}
	if best >= 0 {
		top = niceCeil(top)
	}
	plotW := chartW - chartLeft - chartRight
	plotH := chartH - chartTop - chartBottom
	slot := plotW / len(days)
	barW := max(4, slot*7/10)
	esc := html.EscapeString
	itoa := strconv.Itoa

	title := p.T("DashChartTitle", map[string]any{"Count": len(days)})
	var desc string
	if best >= 0 {
		desc = p.T("DashChartDesc", map[string]any{
			"Total": money(p, sum.Currency, sum.Total.Amount), "Best": fm.day(days[best].Date),
			"BestAmount": money(p, sum.Currency, days[best].Amount),
		})
	} else {
		desc = p.T("DashChartEmpty")
	}

	var b strings.Builder
	b.WriteString(`<svg class="chart" viewBox="0 0 ` + itoa(chartW) + ` ` + itoa(chartH) + `" role="img" aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">`)
	b.WriteString(`<title id="chart-title">` + esc(title) + `</title><desc id="chart-desc">` + esc(desc) + `</desc>`)
	// Grid lines: zero, half and the top, labelled with their amounts.
	for _, frac := range []int{0, 1, 2} {
		y := chartTop + plotH - plotH*frac/2
		b.WriteString(`<line x1="` + itoa(chartLeft) + `" x2="` + itoa(chartW-chartRight) + `" y1="` + itoa(y) + `" y2="` + itoa(y) + `" class="grid"/>`)
		if best >= 0 {
			v := top.Mul(decimal.NewFromInt(int64(frac))).Div(decimal.NewFromInt(2))
			b.WriteString(`<text x="` + itoa(chartLeft-6) + `" y="` + itoa(y+4) + `" text-anchor="end" class="axis">` + esc(money(p, sum.Currency, v.String())) + `</text>`)
		}
	}
	for i, d := range days {
		h := 0
		if best >= 0 {
			h = int(amounts[i].Mul(decimal.NewFromInt(int64(plotH))).Div(top).Round(0).IntPart())
		}
		if h == 0 && amounts[i].IsPositive() {
			h = 1 // a day with sales never looks empty
		}
		x := chartLeft + i*slot + (slot-barW)/2
		cls := "bar"
		if d.Date == sum.Today {
			cls = "bar today"
		}
		tip := fm.day(d.Date) + ": " + money(p, sum.Currency, d.Amount) + " · " +
			p.N("DashChartSales", int(d.Sales), map[string]any{"Count": fm.count(d.Sales)})
		b.WriteString(`<g><title>` + esc(tip) + `</title>`)
		b.WriteString(`<rect class="` + cls + `" x="` + itoa(x) + `" y="` + itoa(chartTop+plotH-h) + `" width="` + itoa(barW) + `" height="` + itoa(h) + `"/>`)
		// An invisible full-height target, so the tooltip shows on a
		// short bar too.
		b.WriteString(`<rect x="` + itoa(chartLeft+i*slot) + `" y="` + itoa(chartTop) + `" width="` + itoa(slot) + `" height="` + itoa(plotH) + `" fill="transparent"/></g>`)
		label := d.Date
		if t, ok := businessDay(d.Date); ok {
			label = p.DayMonth(t)
		}
		b.WriteString(`<text x="` + itoa(chartLeft+i*slot+slot/2) + `" y="` + itoa(chartH-chartBottom+16) + `" text-anchor="middle" class="axis` + map[bool]string{true: " today", false: ""}[d.Date == sum.Today] + `">` + esc(label) + `</text>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built here; every text escaped
}
