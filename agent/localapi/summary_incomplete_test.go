package localapi

import (
	"encoding/json"
	"strings"
	"testing"
)

// incompleteSummary is daySummary with a damaged summary behind Kemang's
// figures on day day (an index of the window): that day, its total, the
// outlet's total and the window's are incomplete, as the agent reports
// them.
func incompleteSummary(day int) Summary {
	s := daySummary()
	s.Outlets[0].Days[day].Incomplete = true
	s.Outlets[0].Total.Incomplete = true
	s.Totals[day].Incomplete = true
	s.Total.Incomplete = true
	return s
}

// GET /v1/summary says which figures may be wrong ("incomplete": true) and
// leaves the field out of the others.
func TestSummaryIncompleteInJSON(t *testing.T) {
	b := &summaryBackend{sum: incompleteSummary(13)}
	h := NewServer(b, ServerOptions{}).Handler()
	w := do(h, "GET", "/v1/summary", "", nil)
	if w.Code != 200 {
		t.Fatalf("GET /v1/summary = %d %s", w.Code, w.Body)
	}
	var raw struct {
		Outlets []struct {
			Days  []map[string]any `json:"days"`
			Total map[string]any   `json:"total"`
		} `json:"outlets"`
		Totals []map[string]any `json:"totals"`
		Total  map[string]any   `json:"total"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	flag := func(where string, m map[string]any, want bool) {
		t.Helper()
		v, ok := m["incomplete"]
		switch {
		case want && v != true:
			t.Errorf("%s: incomplete = %v, want true", where, v)
		case !want && ok:
			t.Errorf("%s: incomplete = %v, want it left out", where, v)
		}
	}
	for i, d := range raw.Outlets[0].Days {
		flag("outlets[0].days["+d["date"].(string)+"]", d, i == 13)
	}
	for _, d := range raw.Outlets[1].Days {
		flag("outlets[1].days["+d["date"].(string)+"]", d, false)
	}
	for i, d := range raw.Totals {
		flag("totals["+d["date"].(string)+"]", d, i == 13)
	}
	flag("outlets[0].total", raw.Outlets[0].Total, true)
	flag("outlets[1].total", raw.Outlets[1].Total, false)
	flag("total", raw.Total, true)
	if n := strings.Count(w.Body.String(), `"incomplete"`); n != 4 {
		t.Errorf(`"incomplete" appears %d times, want 4`, n)
	}
}

// The dashboard says so, in the reader's language: under today's figures
// when today may be wrong, and with a mark on each such day of the
// reconciliation and a note under it; nothing when every day is sound.
func TestDashboardShowsIncompleteDays(t *testing.T) {
	today := map[string]string{
		"en": "Today's figures may be incomplete: part of the summary could not be read. Sales are still delivered.",
		"id": "Angka hari ini mungkin tidak lengkap: sebagian ringkasan tidak terbaca. Penjualan tetap terkirim.",
	}
	days := map[string]string{
		"en": "Days marked ⚠ may have incomplete figures: part of the summary could not be read. Sales are still delivered.",
		"id": "Angka pada hari yang bertanda ⚠ mungkin tidak lengkap: sebagian ringkasan tidak terbaca. Penjualan tetap terkirim.",
	}
	mark := map[string]string{"en": `title="Figures may be incomplete">⚠</span>`, "id": `title="Angka mungkin tidak lengkap">⚠</span>`}
	for _, lang := range []string{"en", "id"} {
		for _, tc := range []struct {
			name             string
			sum              Summary
			wantToday, marks int
		}{
			{"today", incompleteSummary(13), 1, 1},
			{"an earlier day", incompleteSummary(5), 0, 1},
			{"none", daySummary(), 0, 0},
		} {
			st := busyStatus()
			page := renderWith(t, &dayBackend{fakeBackend: fakeBackend{st: st}, sum: tc.sum}, "/?lang="+lang, nil)
			txt := text(page)
			if got := strings.Count(txt, today[lang]); got != tc.wantToday {
				t.Errorf("%s, %s: today's note shown %d times, want %d", lang, tc.name, got, tc.wantToday)
			}
			if got := strings.Count(page, mark[lang]); got != tc.marks {
				t.Errorf("%s, %s: %d days marked, want %d", lang, tc.name, got, tc.marks)
			}
			if got := strings.Contains(txt, days[lang]); got != (tc.marks > 0) {
				t.Errorf("%s, %s: the days' note shown: %v", lang, tc.name, got)
			}
		}
	}
}
