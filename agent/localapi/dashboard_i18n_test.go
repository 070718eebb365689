package localapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// dayBackend is a fakeBackend that keeps the day summary.
type dayBackend struct {
	fakeBackend
	sum Summary
}

func (b *dayBackend) Summary(context.Context, int) (Summary, error) { return b.sum, nil }

func renderWith(t *testing.T, b Backend, path string, hdr map[string]string) string {
	t.Helper()
	h := NewServer(b, ServerOptions{Now: func() time.Time { return testNow }}).Handler()
	w := do(h, "GET", path, "", hdr)
	if w.Code != 200 {
		t.Fatalf("GET %s: HTTP %d", path, w.Code)
	}
	return w.Body.String()
}

// daySummary is 14 days of two outlets, with refunds, voids and sinks
// still catching up today.
func daySummary() Summary {
	start := time.Date(2026, 2, 25, 0, 0, 0, 0, time.UTC)
	s := Summary{Days: 14, From: "2026-02-25", To: "2026-03-10", Today: "2026-03-10", Currency: "IDR",
		Sinks: []string{"upstream", "nats"}}
	kemang := SummaryOutlet{ID: "101", Name: "Kopi Senja Kemang"}
	bintaro := SummaryOutlet{ID: "102", Name: "Kopi Senja Bintaro"}
	all := func(n int64) []SinkCount {
		return []SinkCount{{Sink: "upstream", Delivered: n}, {Sink: "nats", Delivered: n}}
	}
	for i := range 14 {
		date := start.AddDate(0, 0, i).Format(time.DateOnly)
		sales := int64(80 + i*7%40)
		k := SummaryFigures{Sales: sales, Amount: fmt.Sprint(sales * 31500), NetAmount: fmt.Sprint(sales * 31500),
			RefundAmount: "0", VoidAmount: "0", Received: sales, Delivered: all(sales)}
		b := SummaryFigures{Sales: 40, Amount: "1250000", NetAmount: "1250000", RefundAmount: "0", VoidAmount: "0",
			Received: 40, Delivered: all(40)}
		if i == 13 { // today
			k = SummaryFigures{Sales: 1234, Amount: "38871000", Refunds: 1, RefundAmount: "27500", NetAmount: "38843500",
				Voids: 2, VoidAmount: "45000", Received: 1236, Delivered: all(1236)}
			b.Amount, b.NetAmount = "1250000.50", "1250000.50"
		}
		kemang.Days = append(kemang.Days, SummaryDay{Date: date, SummaryFigures: k})
		bintaro.Days = append(bintaro.Days, SummaryDay{Date: date, SummaryFigures: b})
		tot := SummaryFigures{Sales: k.Sales + b.Sales, Refunds: k.Refunds, RefundAmount: k.RefundAmount,
			Voids: k.Voids, VoidAmount: k.VoidAmount, Received: k.Received + b.Received, Delivered: all(k.Received + b.Received)}
		tot.Amount = fmt.Sprint(sales*31500 + 1250000)
		tot.NetAmount = tot.Amount
		if i == 13 {
			tot.Amount, tot.NetAmount = "40121000.50", "40093500.50"
			tot.Delivered = []SinkCount{{Sink: "upstream", Delivered: 1273}, {Sink: "nats", Delivered: 1270, DeadLetters: 1}}
		}
		s.Totals = append(s.Totals, SummaryDay{Date: date, SummaryFigures: tot})
	}
	s.Outlets = []SummaryOutlet{kemang, bintaro}
	s.Total = SummaryFigures{Amount: "85000000"}
	return s
}

// TestDashboardLanguage: the reader's choice (the switch, kept in a
// cookie), else agent.language, else the browser's Accept-Language.
func TestDashboardLanguage(t *testing.T) {
	st := busyStatus()
	st.State = StateOK
	for _, c := range []struct {
		name, setting, path string
		hdr                 map[string]string
		want                string
	}{
		{"no preference", "auto", "/", nil, "en"},
		{"browser in Indonesian", "auto", "/", map[string]string{"Accept-Language": "id-ID,id;q=0.9,en;q=0.8"}, "id"},
		{"browser in English", "auto", "/", map[string]string{"Accept-Language": "en-US,en;q=0.9"}, "en"},
		{"agent.language id beats the browser", "id", "/", map[string]string{"Accept-Language": "en-US"}, "id"},
		{"agent.language en beats the browser", "en", "/", map[string]string{"Accept-Language": "id-ID"}, "en"},
		{"the switch beats everything", "id", "/?lang=en", map[string]string{"Accept-Language": "id-ID"}, "en"},
		{"the cookie keeps the switch", "en", "/", map[string]string{"Cookie": "pwbi_lang=id"}, "id"},
		{"a bad cookie is ignored", "auto", "/", map[string]string{"Cookie": "pwbi_lang=fr", "Accept-Language": "id"}, "id"},
		{"a bad switch is ignored", "auto", "/?lang=fr", map[string]string{"Accept-Language": "id"}, "id"},
	} {
		st.Language = LanguageStatus{Setting: c.setting, Resolved: "en"}
		b := &fakeBackend{st: st}
		h := NewServer(b, ServerOptions{Now: func() time.Time { return testNow }}).Handler()
		w := do(h, "GET", c.path, "", c.hdr)
		page := w.Body.String()
		headline := map[string]string{"en": "<h1>All good</h1>", "id": "<h1>Semua beres</h1>"}[c.want]
		if !strings.Contains(page, `<html lang="`+c.want+`">`) || !strings.Contains(page, headline) ||
			w.Header().Get("Content-Language") != c.want {
			t.Errorf("%s: want the page in %s, got Content-Language %q:\n%.300s", c.name, c.want,
				w.Header().Get("Content-Language"), text(page))
		}
		// The switch offers the other language.
		other := map[string]string{"en": `href="/?lang=id"`, "id": `href="/?lang=en"`}[c.want]
		if !strings.Contains(page, other) {
			t.Errorf("%s: no switch to the other language", c.name)
		}
		if strings.Contains(c.path, "lang=en") {
			if ck := w.Header().Get("Set-Cookie"); !strings.Contains(ck, "pwbi_lang=en") || !strings.Contains(ck, "HttpOnly") {
				t.Errorf("%s: the switch set no cookie: %q", c.name, ck)
			}
		}
	}
}

// TestDashboardIndonesian: the words, numbers, sizes and times of the page
// in Indonesian, and the problems rendered from their codes.
func TestDashboardIndonesian(t *testing.T) {
	st := busyStatus()
	st.Moka.Timezone = "Asia/Jakarta"
	st.Problems = []string{"cannot reach the PWBI cloud: dial tcp: connection refused"}
	st.ProblemDetails = []ProblemDetail{{Code: "HealthSinkUnreachable", Severity: "retrying",
		Params: map[string]any{"Sink": "the PWBI cloud", "SinkKey": "upstream", "Error": "dial tcp: connection refused"},
		Text:   st.Problems[0]}}
	page := renderWith(t, &fakeBackend{st: st}, "/", map[string]string{"Accept-Language": "id-ID"})
	txt := text(page)
	for _, want := range []string{
		"Luring", "Sinkronkan sekarang", "Jeda", "Yang perlu diperhatikan",
		"Tidak bisa menghubungi cloud PWBI: dial tcp: connection refused",
		"Outlet (Moka POS)", "Terakhir disinkronkan", "5 mnt lalu", "3 jam 12 mnt lalu", "belum pernah",
		"12.840", "1.234 data", "3,0 MB", "Basis data di PC ini 48,0 MB", "Data ditolak 2",
		"Checkout tablet", "4 pesanan terbuka", "Pengaturan", "versi #3", "berjalan selama 1 hari 2 jam",
		"Menunggu sinkronisasi pertama",
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("the Indonesian page lacks %q", want)
		}
	}
	// Times in the outlets' zone, with the Indonesian dot: 14:25 UTC is
	// 21.25 WIB.
	if !strings.Contains(page, `title="10 Mar 2026 21.25.00 WIB"`) {
		t.Error("the exact time is not in the outlets' zone, the Indonesian way")
	}
	for _, bad := range []string{"<no value>", "Dash", "Common", "Health"} {
		if strings.Contains(txt, bad) {
			t.Errorf("the page shows %q", bad)
		}
	}
}

// The nit: the dashboard showed a config error twice (in the
// problems and in the settings card).
func TestDashboardConfigErrorShownOnce(t *testing.T) {
	const bad = `config.toml:12: unknown key "upstream.tokne"`
	for _, lang := range []string{"en", "id"} {
		for _, withDetails := range []bool{true, false} {
			st := busyStatus()
			st.State = StateError
			st.Config.Error = bad
			st.Problems = []string{"the config file has an error; the previous settings stay in force: " + bad}
			if withDetails {
				st.ProblemDetails = []ProblemDetail{{Code: "HealthConfigError", Severity: "blocking",
					Params: map[string]any{"Error": bad}, Text: st.Problems[0]}}
			}
			page := renderWith(t, &fakeBackend{st: st}, "/?lang="+lang, nil)
			if n := strings.Count(text(page), `unknown key "upstream.tokne"`); n != 1 {
				t.Errorf("%s (details %v): the config error is shown %d times:\n%s", lang, withDetails, n, text(page))
			}
			if !strings.Contains(page, `id="config-error"`) {
				t.Errorf("%s: the settings card does not show the error", lang)
			}
			// With another problem as well, the list still shows that one.
			st.Problems = append(st.Problems, "cannot reach Moka: timeout")
			if withDetails {
				st.ProblemDetails = append(st.ProblemDetails, ProblemDetail{Code: "HealthMokaUnreachable",
					Params: map[string]any{"Error": "timeout"}, Text: st.Problems[1]})
			}
			page = renderWith(t, &fakeBackend{st: st}, "/?lang="+lang, nil)
			if n := strings.Count(text(page), `unknown key "upstream.tokne"`); n != 1 || !strings.Contains(page, `id="problems"`) {
				t.Errorf("%s (details %v): with two problems, the config error is shown %d times", lang, withDetails, n)
			}
		}
	}
}

// Like the config error, the settings waiting for a restart are said once,
// in the settings card.
func TestDashboardRestartRequiredShownOnce(t *testing.T) {
	for _, withDetails := range []bool{true, false} {
		st := busyStatus()
		st.Config.RestartRequired = []string{"agent.data_dir"}
		st.Problems = []string{"restart the agent to apply: agent.data_dir"}
		if withDetails {
			st.ProblemDetails = []ProblemDetail{{Code: "HealthRestartRequired", Severity: "note",
				Params: map[string]any{"Keys": "agent.data_dir"}, Text: st.Problems[0]}}
		}
		for _, lang := range []string{"en", "id"} {
			page := renderWith(t, &fakeBackend{st: st}, "/?lang="+lang, nil)
			if n := strings.Count(text(page), "agent.data_dir"); n != 1 {
				t.Errorf("%s (details %v): the restart is asked for %d times:\n%s", lang, withDetails, n, text(page))
			}
		}
	}
}

// The nit: "Size on this PC 0 B" stood beside "Database 1.0 MB".
// The queue card now says what each size is, side by side.
func TestDashboardSizesSayWhatTheyMeasure(t *testing.T) {
	st := busyStatus()
	st.Queue = QueueStatus{}
	st.Store.FileSize = 1 << 20
	page := renderWith(t, &fakeBackend{st: st}, "/", nil)
	txt := text(page)
	if strings.Contains(txt, "Size on this PC") {
		t.Error(`the page still says "Size on this PC"`)
	}
	i := strings.Index(page, `id="queue"`)
	queue := text(page[i : i+strings.Index(page[i:], "</section>")])
	for _, want := range []string{"Waiting records take 0 B", "Database on this PC 1.0 MB"} {
		if !strings.Contains(queue, want) {
			t.Errorf("the queue card lacks %q: %s", want, queue)
		}
	}
	if strings.Count(txt, "1.0 MB") != 1 {
		t.Errorf("the database size is shown %d times", strings.Count(txt, "1.0 MB"))
	}
}

// TestDashboardDay: today per outlet, the 14 days as an SVG bar chart and
// received-against-delivered per sink, in both languages.
func TestDashboardDay(t *testing.T) {
	st := busyStatus()
	st.Sinks = []SinkStatus{{Name: "upstream", Title: "PWBI cloud", Enabled: true, Configured: true, Online: true},
		{Name: "nats", Title: "NATS JetStream", Enabled: true, Configured: true, Online: true}}
	b := &dayBackend{fakeBackend: fakeBackend{st: st}, sum: daySummary()}

	for _, c := range []struct {
		lang  string
		wants []string
	}{
		{"en", []string{"Today · 10 Mar 2026", "Kopi Senja Kemang 1,234 Rp 38,871,000 1 · Rp 27,500 2 · Rp 45,000",
			"Kopi Senja Bintaro 40 Rp 1,250,000.50", "All outlets 1,274",
			"Last 14 days", "Received from Moka and delivered", "Delivered to PWBI cloud", "Delivered to NATS JetStream",
			"10 Mar 2026 1,276 1,273 · 3 on their way 1,270 · 5 on their way · 1 rejected", "9 Mar 2026 124 ✓ 124 ✓ 124"}},
		{"id", []string{"Hari ini · 10 Mar 2026", "Kopi Senja Kemang 1.234 Rp 38.871.000 1 · Rp 27.500 2 · Rp 45.000",
			"Kopi Senja Bintaro 40 Rp 1.250.000,50", "Semua outlet 1.274",
			"14 hari terakhir", "Diterima dari Moka dan terkirim", "Terkirim ke Cloud PWBI", "Terkirim ke NATS JetStream",
			"10 Mar 2026 1.276 1.273 · 3 tertunda 1.270 · 5 tertunda · 1 ditolak", "9 Mar 2026 124 ✓ 124 ✓ 124"}},
	} {
		page := renderWith(t, b, "/?lang="+c.lang, nil)
		txt := text(page)
		for _, want := range c.wants {
			if !strings.Contains(txt, want) {
				t.Errorf("%s: the page lacks %q", c.lang, want)
			}
		}
		i := strings.Index(page, `<svg class="chart"`)
		if i < 0 {
			t.Fatalf("%s: no chart", c.lang)
		}
		svg := page[i : i+strings.Index(page[i:], "</svg>")]
		if n := strings.Count(svg, `<rect class="bar`); n != 14 {
			t.Errorf("%s: %d bars, want 14", c.lang, n)
		}
		if strings.Count(svg, `class="bar today"`) != 1 {
			t.Errorf("%s: today's bar is not marked", c.lang)
		}
		title := map[string]string{"en": "Collected per day, last 14 days", "id": "Jumlah diterima per hari, 14 hari terakhir"}[c.lang]
		if !strings.Contains(svg, `role="img"`) || !strings.Contains(svg, `<title id="chart-title">`+title+`</title>`) ||
			!strings.Contains(svg, `<desc id="chart-desc">`) {
			t.Errorf("%s: the chart has no accessible title and description", c.lang)
		}
		tip := map[string]string{"en": "<title>10 Mar 2026: Rp 40,121,000.50 · 1,274 sales</title>",
			"id": "<title>10 Mar 2026: Rp 40.121.000,50 · 1.274 penjualan</title>"}[c.lang]
		if !strings.Contains(svg, tip) {
			t.Errorf("%s: no tooltip with today's figures in\n%s", c.lang, svg)
		}
		// The scale's top is a round 41,000,000 (a grid line, labelled);
		// the bars are in proportion: today 40,121,000.50 is 180 of 184
		// units, 9 Mar's 3,896,000 is 17.
		top := map[string]string{"en": ">Rp 41,000,000</text>", "id": ">Rp 41.000.000</text>"}[c.lang]
		if !strings.Contains(svg, `<rect class="bar today" x="669" y="20" width="30" height="180"/>`) ||
			!strings.Contains(svg, `y="183" width="30" height="17"/>`) || !strings.Contains(svg, top) {
			t.Errorf("%s: the bars are not in proportion:\n%s", c.lang, svg)
		}
		if strings.Contains(page, "<script") {
			t.Errorf("%s: the page has a script", c.lang)
		}
	}
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[string]string{
		"40121000.5": "41000000", "41000000": "41000000", "980": "980", "981.5": "990", "0.5": "1", "7": "7", "100": "100", "101": "110",
	} {
		if got := niceCeil(decimal.RequireFromString(in)); got.String() != want {
			t.Errorf("niceCeil(%s) = %s, want %s", in, got, want)
		}
	}
}

// A summary kept only since a day inside the window says so; amounts in
// another currency carry its code.
func TestDashboardDaySinceAndCurrency(t *testing.T) {
	sum := daySummary()
	sum.Since, sum.Currency = "2026-03-01", "USD"
	b := &dayBackend{fakeBackend: fakeBackend{st: busyStatus()}, sum: sum}
	txt := text(renderWith(t, b, "/?lang=id", nil))
	for _, want := range []string{"Dihitung sejak 1 Mar 2026", "USD 38.871.000", "USD 1.250.000,50"} {
		if !strings.Contains(txt, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(txt, "Rp ") {
		t.Error("dollars shown as rupiah")
	}
	// An agent that keeps no summary: no summary cards, the rest as
	// before (a summary that cannot be read: TestDashboardDayUnreadable).
	page := renderWith(t, &fakeBackend{st: busyStatus()}, "/", nil)
	if strings.Contains(page, `id="today"`) || strings.Contains(page, `id="days"`) || !strings.Contains(page, `id="outlets"`) {
		t.Error("summary cards without a summary")
	}
}

// TestDashboardTodayBeforeWindowEnd: once an outlet east of moka.timezone
// has started the next business day, the summary's window ends the day
// after Today; the today card still shows Today's figures (before, it took
// the window's last day and showed every outlet without sales).
func TestDashboardTodayBeforeWindowEnd(t *testing.T) {
	sum := daySummary()
	sum.Today = "2026-03-09" // To stays 2026-03-10: the WIT outlet's day
	b := &dayBackend{fakeBackend: fakeBackend{st: busyStatus()}, sum: sum}
	txt := text(renderWith(t, b, "/?lang=en", nil))
	for _, want := range []string{"Today · 9 Mar 2026", "Kopi Senja Kemang 84 Rp 2,646,000",
		"Kopi Senja Bintaro 40 Rp 1,250,000", "All outlets 124"} {
		if !strings.Contains(txt, want) {
			t.Errorf("the page lacks %q in\n%s", want, txt)
		}
	}
}

// flakyDayBackend is a fakeBackend that keeps the day summary, whose
// reading fails while err is set.
type flakyDayBackend struct {
	fakeBackend
	sumMu sync.Mutex
	sum   Summary
	err   error
}

func (b *flakyDayBackend) Summary(context.Context, int) (Summary, error) {
	b.sumMu.Lock()
	defer b.sumMu.Unlock()
	return b.sum, b.err
}

func (b *flakyDayBackend) setErr(err error) {
	b.sumMu.Lock()
	defer b.sumMu.Unlock()
	b.err = err
}

// summaryReadErr is what the store's failure looks like: it names a file,
// which the page must not show.
var summaryReadErr = errors.New(`day summary: read D:\pwbi-store\agent.db: input/output error`)

// TestDashboardDayUnreadable: when the agent keeps a day summary but it
// cannot be read, the today card says so in the reader's language instead
// of the figures — before, the cards vanished, which read as "no sales
// today" — and shows nothing of the error. The rest of the page is as
// always.
func TestDashboardDayUnreadable(t *testing.T) {
	b := &flakyDayBackend{fakeBackend: fakeBackend{st: busyStatus()}, sum: daySummary(), err: summaryReadErr}
	for _, c := range []struct {
		lang, accept, today, sentence string
	}{
		{"en", "en-US,en;q=0.9", "Today · 10 Mar 2026",
			"Today's sales figures cannot be read right now; the agent keeps working and will show them again when it can."},
		{"id", "id-ID,id;q=0.9,en;q=0.8", "Hari ini · 10 Mar 2026",
			"Angka penjualan hari ini belum bisa dibaca saat ini; agen tetap bekerja dan akan menampilkannya lagi begitu bisa."},
	} {
		page := renderWith(t, b, "/", map[string]string{"Accept-Language": c.accept})
		txt := text(page)
		if !strings.Contains(page, `<html lang="`+c.lang+`">`) {
			t.Fatalf("%s: the page is not in %s", c.lang, c.lang)
		}
		if !strings.Contains(page, `id="today"`) || !strings.Contains(page, `id="today-unreadable"`) {
			t.Errorf("%s: no today card saying the figures cannot be read", c.lang)
		}
		for _, want := range []string{c.today, c.sentence} {
			if !strings.Contains(txt, want) {
				t.Errorf("%s: the page lacks %q in\n%s", c.lang, want, txt)
			}
		}
		// No figure, no chart, no reconciliation: nothing that could be
		// taken for today's sales.
		for _, bad := range []string{`id="today-101"`, `id="today-total"`, `<svg class="chart"`, `id="days"`,
			`id="reconcile"`, "Rp ", "38,871,000", "38.871.000"} {
			if strings.Contains(page, bad) {
				t.Errorf("%s: the page shows %q without a summary", c.lang, bad)
			}
		}
		// The error stays in the log.
		for _, bad := range []string{"agent.db", "pwbi-store", "input/output", "day summary:"} {
			if strings.Contains(page, bad) {
				t.Errorf("%s: the page shows the error's %q", c.lang, bad)
			}
		}
		if !strings.Contains(page, `id="outlets"`) || !strings.Contains(page, `id="queue"`) {
			t.Errorf("%s: the rest of the page is gone", c.lang)
		}
	}

	// Readable again: the figures are back.
	b.setErr(nil)
	txt := text(renderWith(t, b, "/", map[string]string{"Accept-Language": "en"}))
	if !strings.Contains(txt, "Kopi Senja Kemang 1,234 Rp 38,871,000") || strings.Contains(txt, "cannot be read") {
		t.Errorf("the figures are not back once the summary reads:\n%s", txt)
	}
}

// logRecords is a slog.Handler keeping the records it is given.
type logRecords struct {
	mu  sync.Mutex
	out []slog.Record
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.out = append(h.out, r)
	return nil
}
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecords) WithGroup(string) slog.Handler      { return h }

// take returns the records kept since the last take, as "LEVEL message
// err", and forgets them.
func (h *logRecords) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.out {
		line := r.Level.String() + " " + r.Message
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "err" {
				line += " " + a.Value.String()
			}
			return true
		})
		out = append(out, line)
	}
	h.out = nil
	return out
}

// TestSummaryFailureLoggedOnce: the dashboard refreshes itself every 5 s
// and the tray asks for the summary every 3 s; a failure that lasts is
// logged once at Warn with its error (again when the error changes), at
// Debug while it lasts, and its end once at Info.
func TestSummaryFailureLoggedOnce(t *testing.T) {
	for _, c := range []struct {
		path, failed, again string
	}{
		{"/", "Dashboard summary failed", "Dashboard summary readable again"},
		{"/v1/summary", "Local API summary failed", "Local API summary readable again"},
	} {
		logs := &logRecords{}
		b := &flakyDayBackend{fakeBackend: fakeBackend{st: busyStatus()}, sum: daySummary(), err: summaryReadErr}
		h := NewServer(b, ServerOptions{Logger: slog.New(logs), Now: func() time.Time { return testNow }}).Handler()
		get := func() {
			t.Helper()
			do(h, "GET", c.path, "", nil)
		}
		check := func(when string, want ...string) {
			t.Helper()
			if got := logs.take(); !slices.Equal(got, want) {
				t.Errorf("%s, %s: logged\n%q\nwant\n%q", c.path, when, got, want)
			}
		}
		get()
		check("first failure", "WARN "+c.failed+" "+summaryReadErr.Error())
		get()
		get()
		check("same failure", "DEBUG "+c.failed+" "+summaryReadErr.Error(), "DEBUG "+c.failed+" "+summaryReadErr.Error())
		other := errors.New("day summary: bucket missing")
		b.setErr(other)
		get()
		check("another failure", "WARN "+c.failed+" "+other.Error())
		b.setErr(nil)
		get()
		check("readable again", "INFO "+c.again)
		get()
		check("still readable")
		b.setErr(summaryReadErr)
		get()
		check("failing anew", "WARN "+c.failed+" "+summaryReadErr.Error())
	}
}
