package localapi

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pwbi/edge-agent/internal/browsertest"
	"github.com/pwbi/edge-agent/internal/i18n"
)

// cafeStatus is a realistic day: two outlets synced, the PWBI cloud
// connected, NATS catching up, Jurnal getting a daily invoice, two records
// set aside, an import running.
func cafeStatus() Status {
	st := busyStatus()
	st.State = StateOffline
	st.Moka.Timezone = "Asia/Jakarta"
	st.Moka.Outlets = st.Moka.Outlets[:2]
	st.Moka.Import = &ImportStatus{Running: true, Since: "2026-01-01", DaysDone: 40, DaysTotal: 69, Records: 15230}
	st.Sinks = []SinkStatus{
		{Name: "upstream", Title: "PWBI cloud", Enabled: true, Configured: true, Online: true,
			LastSuccessAt: ptr(testNow.Add(-30 * time.Second)), Delivered: 88012},
		{Name: "nats", Title: "NATS JetStream", Enabled: true, Configured: true, Health: SinkHealthOffline,
			LastError: "dial tcp 10.0.0.5:4222: connection refused", Pending: 1234, PendingBytes: 3 << 20,
			OldestPendingAt: ptr(testNow.Add(-2 * time.Hour)), DeadLetters: 2, NextRetryAt: ptr(testNow.Add(40 * time.Second))},
	}
	st.ProblemDetails = []ProblemDetail{
		{Code: "HealthSinkUnreachable", Severity: "retrying",
			Params: map[string]any{"Sink": "NATS", "SinkKey": "nats", "Error": "dial tcp 10.0.0.5:4222: connection refused"}},
		{Code: "HealthDeadLetters", Severity: "note", Params: map[string]any{"Count": float64(2)}},
	}
	st.Problems = []string{"cannot reach NATS: dial tcp 10.0.0.5:4222: connection refused",
		"2 record(s) were set aside (see `pwbi-agent queue dead`)"}
	st.Jurnal = JurnalStatus{Enabled: true, Mode: "daily_summary", Outlets: []JurnalOutletStatus{
		{OutletID: "101", Tag: "Kemang", LastSyncedAt: ptr(testNow.Add(-20 * time.Minute)), Posted: 14},
		{OutletID: "102", Tag: "Bintaro", LastSyncedAt: ptr(testNow.Add(-20 * time.Minute)), Posted: 14, Waiting: 1},
	}}
	st.Language = LanguageStatus{Setting: "auto", Resolved: "en"}
	return st
}

// pageTextsJS collects what a person reads: every visible text node, the
// tooltips (title attributes, the chart's <title>s and <desc>) and the
// tab's title.
const pageTextsJS = `(() => {
  const out = [];
  const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (w.nextNode()) {
    const n = w.currentNode, t = n.textContent.trim(), el = n.parentElement;
    if (!t || !el) continue;
    const tag = el.tagName.toLowerCase();
    if (tag === 'style' || tag === 'script') continue;
    // Words marked as another language (the switch's "English") are that.
    if (el.closest('[lang]').lang !== document.documentElement.lang) continue;
    if (tag !== 'title' && tag !== 'desc' && el.getClientRects().length === 0) continue;
    out.push(t);
  }
  for (const el of document.querySelectorAll('[title]')) out.push(el.getAttribute('title'));
  out.push(document.title);
  return out;
})()`

// englishLeaks returns the texts that are, or quote a sizeable piece of,
// an English message of the dashboard's catalogues (common, dashboard,
// health) whose Indonesian differs. Names and data (outlets, errors from
// the parts, ids) are not catalogue messages and pass.
func englishLeaks(texts []string) []string {
	action := regexp.MustCompile(`\{\{[^}]*\}\}`)
	type pattern struct {
		id        string
		whole     *regexp.Regexp
		fragments []string
	}
	var ps []pattern
	for _, area := range []string{"common", "dashboard", "health"} {
		for _, id := range i18n.Keys(area) {
			en, _ := i18n.Source("en", id)
			in, _ := i18n.Source("id", id)
			if en == in {
				continue // a name, the same in both languages
			}
			parts := action.Split(en, -1)
			var quoted []string
			p := pattern{id: id}
			for _, part := range parts {
				quoted = append(quoted, regexp.QuoteMeta(part))
				if f := strings.TrimSpace(part); len(f) >= 16 {
					p.fragments = append(p.fragments, f)
				}
			}
			if strings.Trim(strings.Join(parts, ""), " .,:;()·-—") == "" {
				continue // only data
			}
			p.whole = regexp.MustCompile(`^(?s)` + strings.Join(quoted, ".+?") + `$`)
			ps = append(ps, p)
		}
	}
	var leaks []string
	for _, t := range texts {
		for _, p := range ps {
			hit := p.whole.MatchString(t)
			for _, f := range p.fragments {
				hit = hit || strings.Contains(t, f)
			}
			if hit {
				leaks = append(leaks, p.id+": "+t)
				break
			}
		}
	}
	return leaks
}

// TestDashboardScreenshotsAndNoEnglishLeaks renders the dashboard with a
// realistic day in Chromium in both languages, saves screenshots
// (dashboard-en.png, dashboard-id.png under testdata/artifacts or
// $PWBI_TEST_ARTIFACTS) and checks that nothing of the English catalogue
// is left on the Indonesian page — and that the check does see English
// on the English page.
func TestDashboardScreenshotsAndNoEnglishLeaks(t *testing.T) {
	ctx := browsertest.Chromium(t)
	b := &dayBackend{fakeBackend: fakeBackend{st: cafeStatus()}, sum: daySummary()}
	base := serveForBrowser(t, b)

	texts := map[string][]string{}
	for _, lang := range []string{"en", "id"} {
		if err := chromedp.Do(ctx,
			chromedp.Navigate(base+"/?lang="+lang),
			chromedp.WaitVisible(chromedp.CSS("#days svg")),
		); err != nil {
			t.Fatal(err)
		}
		got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](pageTextsJS))
		if err != nil {
			t.Fatal(err)
		}
		texts[lang] = got
		path, err := browsertest.Screenshot(ctx, "dashboard-"+lang+".png")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot (%s): %s", lang, path)
	}
	all := strings.Join(texts["id"], "\n")
	for _, want := range []string{"Luring", "Hari ini", "14 hari terakhir", "Diterima dari Moka", "Terkirim ke Cloud PWBI",
		"Rp 38.871.000", "Sinkronkan sekarang", "Tidak bisa menghubungi server NATS", "Sinkronisasi terakhir"} {
		if !strings.Contains(all, want) {
			t.Errorf("the Indonesian page lacks %q", want)
		}
	}
	if leaks := englishLeaks(texts["id"]); len(leaks) > 0 {
		t.Errorf("English on the Indonesian page:\n%s", strings.Join(leaks, "\n"))
	}
	if leaks := englishLeaks(texts["en"]); len(leaks) < 20 {
		t.Errorf("the leak check finds only %d English texts on the English page: it does not bite", len(leaks))
	}
	// The cookie keeps the last choice (Indonesian): the page reloads
	// itself at "/".
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#state"))); err != nil {
		t.Fatal(err)
	}
	lang, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang`))
	if err != nil || lang != "id" {
		t.Errorf("after choosing Indonesian the plain page is in %q (%v)", lang, err)
	}
	if !slices.Contains(texts["en"], "Today · 10 Mar 2026") {
		t.Errorf("the English page has no Today heading: %q", texts["en"])
	}
}
