package tray

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
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

// The line that says today's figures cannot be read takes the place of
// the figures, in the view's language; an agent that is down gets none.
func TestWithTodayUnreadable(t *testing.T) {
	now := time.Now()
	st := localapi.Status{State: "ok", Queue: localapi.QueueStatus{Pending: 7}}
	base := ViewOf(st, nil, now)
	v := base.WithTodayUnreadable()
	if len(v.Lines) != len(base.Lines)+1 || v.Lines[0] != base.Lines[0] || v.Lines[1] != "Today: sales figures cannot be read right now" {
		t.Errorf("lines = %q", v.Lines)
	}
	if got := ViewIn(i18n.New(i18n.Indonesian), st, nil, now).WithTodayUnreadable().Lines[1]; got != "Hari ini: angka penjualan belum bisa dibaca" {
		t.Errorf("Indonesian: %q", got)
	}
	if got := ViewOf(st, localapi.ErrNotRunning, now).WithTodayUnreadable(); len(got.Lines) != 0 {
		t.Errorf("agent down: %q", got.Lines)
	}
	full := localapi.Status{State: "error", Config: localapi.ConfigStatus{Error: "bad"}, Sinks: []localapi.SinkStatus{
		{Name: "upstream", Enabled: true, Configured: true}, {Name: "nats", Enabled: true, Configured: true},
		{Name: "jurnal", Enabled: true, Configured: true}, {Name: "x", Enabled: true, Configured: true}}}
	if got := ViewOf(full, nil, now).WithTodayUnreadable(); len(got.Lines) > MaxLines || got.Lines[1] != "Today: sales figures cannot be read right now" {
		t.Errorf("full menu: %d lines %q", len(got.Lines), got.Lines)
	}
}

// summaryBackend is an agent's local API backend: without a Summary method
// it keeps no day summary (GET /v1/summary answers 404). Only Status is
// called by what these tests ask.
type summaryBackend struct{ localapi.Backend }

func (summaryBackend) Status(context.Context) localapi.Status { return localapi.Status{State: "ok"} }

// brokenSummaryBackend keeps a day summary that does not read (500).
type brokenSummaryBackend struct{ summaryBackend }

func (brokenSummaryBackend) Summary(context.Context, int) (localapi.Summary, error) {
	return localapi.Summary{}, errors.New("summary: database not open")
}

// summaryReadErrors are the errors the local API client really returns
// for GET /v1/summary from agents that answer their status: one whose
// summary fails (500), one that keeps none (404), one from before the
// summary (404 without an error body), and one that stopped between the
// two reads.
func summaryReadErrors(t *testing.T) (broken, none, old, stopped error) {
	t.Helper()
	read := func(h http.Handler, stop bool) error {
		srv := httptest.NewServer(h)
		addr := strings.TrimPrefix(srv.URL, "http://")
		if stop {
			srv.Close()
		} else {
			defer srv.Close()
		}
		_, err := localapi.NewClient(addr, nil).Summary(context.Background(), 1)
		if err == nil {
			t.Fatalf("summary from %T: no error", h)
		}
		return err
	}
	broken = read(localapi.NewServer(brokenSummaryBackend{}, localapi.ServerOptions{}).Handler(), false)
	none = read(localapi.NewServer(summaryBackend{}, localapi.ServerOptions{}).Handler(), false)
	old = read(http.NotFoundHandler(), false)
	stopped = read(http.NotFoundHandler(), true)
	if summaryNotServed(broken) || !summaryNotServed(none) || !summaryNotServed(old) || !errors.Is(stopped, localapi.ErrNotRunning) {
		t.Fatalf("errors misread: 500 %q, 404 %q, old 404 %q, stopped %q", broken, none, old, stopped)
	}
	return broken, none, old, stopped
}

// startToday runs an App in lang against agent, which serves the day
// summary. Call it inside a synctest bubble.
func startToday(t *testing.T, lang string, agent *summaryAgent) (*fakeUI, *bytes.Buffer) {
	t.Helper()
	ui := &fakeUI{}
	log := &bytes.Buffer{}
	var logMu sync.Mutex
	app := New(Options{Client: agent, Open: &fakeOpener{}, Quit: func() {},
		Log: slog.New(slog.NewTextHandler(lockedWriter{&logMu, log}, nil)), Language: lang})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, ui) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	synctest.Wait()
	return ui, log
}

// todayLine is the menu's second status line, where the today line goes.
func todayLine(ui *fakeUI) string {
	lines := strings.Split(ui.lines(), "|")
	if len(lines) < 2 {
		return ""
	}
	return lines[1]
}

// When the agent answers but its day summary does not read (500) for
// longer than the figures are kept, the today line says so in the tray's
// language instead of vanishing (regression: it went without a word,
// which reads as "no sales"), and never shows the error; the next good
// read shows figures again.
func TestAppTodayUnreadable(t *testing.T) {
	broken, _, _, _ := summaryReadErrors(t)
	for _, c := range []struct {
		lang, figures, unreadable, recovered string
	}{
		{"en", "Today: Rp 1,250,000 · 86 sales", "Today: sales figures cannot be read right now", "Today: Rp 1,300,000 · 90 sales"},
		{"id", "Hari ini: Rp 1.250.000 · 86 transaksi", "Hari ini: angka penjualan belum bisa dibaca", "Hari ini: Rp 1.300.000 · 90 transaksi"},
	} {
		t.Run(c.lang, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				agent := &summaryAgent{fakeAgent: &fakeAgent{st: localapi.Status{State: "ok", Queue: localapi.QueueStatus{Pending: 7}}}}
				agent.setSummary(todaySummary(86, "1250000"), nil)
				ui, log := startToday(t, c.lang, agent)
				if got := todayLine(ui); got != c.figures {
					t.Fatalf("today line %q, want %q", got, c.figures)
				}
				agent.setSummary(localapi.Summary{}, broken)
				time.Sleep(30 * time.Second) // within the minute: the figures stay
				synctest.Wait()
				if got := todayLine(ui); got != c.figures {
					t.Fatalf("after 30 s of failed reads: today line %q, want the last figures %q", got, c.figures)
				}
				time.Sleep(time.Minute)
				synctest.Wait()
				if got := todayLine(ui); got != c.unreadable {
					t.Errorf("after 90 s of failed reads: today line %q, want %q (lines %q)", got, c.unreadable, ui.lines())
				}
				for _, leak := range []string{"500", "database", "local api", "summary:"} {
					if strings.Contains(ui.lines(), leak) || strings.Contains(ui.tooltips[len(ui.tooltips)-1], leak) {
						t.Errorf("the menu shows the error (%q): %q", leak, ui.lines())
					}
				}
				if got := ui.item(ItemHeader).Label; got != ViewIn(i18n.New(c.lang), agent.st, nil, time.Now()).Header {
					t.Errorf("header %q changed by the summary", got)
				}
				agent.setSummary(todaySummary(90, "1300000"), nil)
				time.Sleep(3 * time.Second)
				synctest.Wait()
				if got := todayLine(ui); got != c.recovered {
					t.Errorf("summary readable again: today line %q, want %q", got, c.recovered)
				}
				if !strings.Contains(log.String(), "Day summary readable again") {
					t.Errorf("the recovery was not logged:\n%s", log)
				}
			})
		})
	}
}

// A tray that never read figures says at once that they cannot be read;
// while the agent is not running the menu says that alone.
func TestAppTodayUnreadableAtOnce(t *testing.T) {
	broken, _, _, _ := summaryReadErrors(t)
	synctest.Test(t, func(t *testing.T) {
		agent := &summaryAgent{fakeAgent: &fakeAgent{st: localapi.Status{State: "ok"}}, serr: broken}
		ui, _ := startToday(t, "en", agent)
		if got := todayLine(ui); got != "Today: sales figures cannot be read right now" {
			t.Errorf("first poll: today line %q (lines %q)", got, ui.lines())
		}
		agent.set(localapi.Status{}, fmt.Errorf("%w at 127.0.0.1:8687", localapi.ErrNotRunning))
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if got := ui.lines(); got != "" || ui.item(ItemHeader).Label != "Agent not running" {
			t.Errorf("agent down: header %q, lines %q", ui.item(ItemHeader).Label, got)
		}
		agent.set(localapi.Status{State: "ok"}, nil)
		agent.setSummary(todaySummary(1, "25000"), nil)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := todayLine(ui); got != "Today: Rp 25,000 · 1 sale" {
			t.Errorf("agent back: today line %q", got)
		}
	})
}

// An agent without GET /v1/summary (404) shows no today line and no word
// about it, as before; nor does one that stopped between its status and
// its summary (the next poll says it is not running). Figures read earlier
// still go after a minute.
func TestAppTodayNoSummaryNoLine(t *testing.T) {
	_, none, old, stopped := summaryReadErrors(t)
	for _, c := range []struct {
		name string
		err  error
	}{{"no summary kept", none}, {"agent from before the summary", old}, {"agent stopped", stopped}} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				agent := &summaryAgent{fakeAgent: &fakeAgent{st: localapi.Status{State: "ok"}}, serr: c.err}
				ui, _ := startToday(t, "en", agent)
				base := strings.Join(ViewOf(agent.st, nil, time.Now()).Lines, "|")
				if got := ui.lines(); got != base {
					t.Errorf("first poll: lines %q, want %q", got, base)
				}
				time.Sleep(2 * time.Minute)
				synctest.Wait()
				if got := ui.lines(); got != base {
					t.Errorf("after 2 min: lines %q, want %q", got, base)
				}
				agent.setSummary(todaySummary(3, "75000"), nil)
				time.Sleep(3 * time.Second)
				synctest.Wait()
				if got := todayLine(ui); got != "Today: Rp 75,000 · 3 sales" {
					t.Errorf("summary read: today line %q", got)
				}
				agent.setSummary(localapi.Summary{}, c.err)
				time.Sleep(90 * time.Second)
				synctest.Wait()
				if got := ui.lines(); got != base {
					t.Errorf("90 s after the last good read: lines %q, want %q", got, base)
				}
			})
		})
	}
}
