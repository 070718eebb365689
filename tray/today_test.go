package tray

import (
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/internal/i18n"
)

func todaySummary(sales int64, net string) localapi.Summary {
	return localapi.Summary{Today: "2026-12-07", Totals: []localapi.SummaryDay{
		{Date: "2026-12-06", SummaryFigures: localapi.SummaryFigures{Sales: 99, NetAmount: "999"}},
		{Date: "2026-12-07", SummaryFigures: localapi.SummaryFigures{Sales: sales, NetAmount: net}},
	}}
}

// The menu shows today's total of every outlet right under the last sync,
// in the view's language, and never more than MaxLines lines.
func TestWithToday(t *testing.T) {
	now := time.Now()
	st := localapi.Status{State: "ok", Queue: localapi.QueueStatus{Pending: 7}}
	v := ViewOf(st, nil, now).WithToday(todaySummary(86, "1250000"))
	if len(v.Lines) < 2 || v.Lines[1] != "Today: Rp 1,250,000 · 86 sales" {
		t.Errorf("lines = %q", v.Lines)
	}
	if got := ViewOf(st, nil, now).WithToday(todaySummary(1, "25000.5")).Lines[1]; got != "Today: Rp 25,000.50 · 1 sale" {
		t.Errorf("one sale: %q", got)
	}
	id := ViewIn(i18n.New("id"), st, nil, now).WithToday(todaySummary(1200, "1250000"))
	if !strings.Contains(id.Lines[1], "Rp 1.250.000") || !strings.Contains(id.Lines[1], "1.200") {
		t.Errorf("Indonesian: %q", id.Lines[1])
	}
	// Another currency than rupiah shows its code, as the dashboard does;
	// no sale yet is zero.
	usd := todaySummary(3, "12.5")
	usd.Currency = "USD"
	if got := ViewOf(st, nil, now).WithToday(usd).Lines[1]; got != "Today: USD 12.50 · 3 sales" {
		t.Errorf("USD: %q", got)
	}
	if got := ViewOf(st, nil, now).WithToday(todaySummary(0, "")).Lines[1]; got != "Today: Rp 0 · 0 sales" {
		t.Errorf("nothing yet: %q", got)
	}
	// No entry for today, or the agent down: no line.
	stale := todaySummary(5, "100")
	stale.Today = "2026-12-08"
	if got, base := ViewOf(st, nil, now).WithToday(stale), ViewOf(st, nil, now); len(got.Lines) != len(base.Lines) {
		t.Errorf("stale summary added a line: %q", got.Lines)
	}
	if got := ViewOf(st, localapi.ErrNotRunning, now).WithToday(todaySummary(5, "100")); len(got.Lines) != 0 {
		t.Errorf("agent down: %q", got.Lines)
	}
	// Every line in use: still at most MaxLines.
	full := localapi.Status{State: "error", Config: localapi.ConfigStatus{Error: "bad"}, Sinks: []localapi.SinkStatus{
		{Name: "upstream", Enabled: true, Configured: true}, {Name: "nats", Enabled: true, Configured: true},
		{Name: "jurnal", Enabled: true, Configured: true}, {Name: "x", Enabled: true, Configured: true}}}
	if got := ViewOf(full, nil, now).WithToday(todaySummary(5, "100")); len(got.Lines) > MaxLines || got.Lines[1] != "Today: Rp 100 · 5 sales" {
		t.Errorf("full menu: %d lines %q", len(got.Lines), got.Lines)
	}
}
