package tray

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/internal/i18n"
	"github.com/pwbi/edge-agent/internal/testutil"
)

// TestViewInIndonesian: the menu a cafe in Indonesia reads, word for word.
func TestViewInIndonesian(t *testing.T) {
	id := i18n.New(i18n.Indonesian)
	now := time.Date(2026, 12, 6, 14, 5, 0, 0, time.UTC)
	tenMinAgo := now.Add(-10 * time.Minute)
	threeHAgo := now.Add(-3 * time.Hour)
	twoDaysAgo := now.Add(-50 * time.Hour)
	tests := []struct {
		name    string
		st      localapi.Status
		err     error
		header  string
		lines   []string
		tooltip string
	}{
		{
			name: "all good", st: localapi.Status{State: "ok",
				Moka:  localapi.MokaStatus{Outlets: []localapi.OutletStatus{{ID: "o1", LastSyncAt: &tenMinAgo}}},
				Queue: localapi.QueueStatus{Pending: 3},
				Sinks: []localapi.SinkStatus{{Name: "upstream", Enabled: true, Configured: true, Online: true, LastSuccessAt: &threeHAgo}}},
			header:  "PWBI Agent: berjalan normal",
			lines:   []string{"Terakhir disinkronkan: 10 mnt lalu", "Menunggu dikirim: 3", "Cloud PWBI: tersambung"},
			tooltip: "PWBI Agent: berjalan normal — terakhir disinkronkan 10 mnt lalu, 3 menunggu dikirim",
		},
		{
			name: "offline with thousands waiting and rejects", st: localapi.Status{State: "offline",
				Queue: localapi.QueueStatus{Pending: 12500, DeadLetter: 2},
				Sinks: []localapi.SinkStatus{
					{Name: "upstream", Enabled: true, Configured: true, LastError: "dial tcp: connection refused", LastSuccessAt: &twoDaysAgo},
					{Name: "nats", Enabled: true, Configured: true, Health: localapi.SinkHealthError, Problem: "x"},
					{Name: "jurnal", Enabled: true, Configured: true},
				}},
			header: "PWBI Agent: luring, penjualan tetap aman",
			lines: []string{"Terakhir disinkronkan: 2 hari lalu", "Menunggu dikirim: 12.500 (2 ditolak)",
				"Cloud PWBI: luring", "NATS: menolak data (lihat di bawah)", "Jurnal: belum ada yang dikirim"},
			tooltip: "PWBI Agent: luring, penjualan tetap aman — terakhir disinkronkan 2 hari lalu, 12.500 menunggu dikirim",
		},
		{
			name: "paused, nothing ever synced", st: localapi.Status{State: "paused"},
			header: "PWBI Agent: sinkronisasi dijeda",
			lines:  []string{"Terakhir disinkronkan: belum pernah", "Menunggu dikirim: 0", "Cloud PWBI: belum diatur"},
		},
		{
			name: "Moka waits for the owner", st: localapi.Status{State: "error",
				Moka: localapi.MokaStatus{Enabled: true, Configured: true, NeedsAuthorization: true}},
			header: "PWBI Agent: bermasalah, perlu diperiksa",
			lines: []string{"Terakhir disinkronkan: belum pernah", "Menunggu dikirim: 0", "Cloud PWBI: belum diatur",
				"Moka: belum terhubung (pilih Hubungkan Moka)"},
		},
		{
			name: "fresh install", st: localapi.Status{State: "ok", Moka: localapi.MokaStatus{Enabled: true}},
			lines: []string{"Terakhir disinkronkan: belum pernah", "Menunggu dikirim: 0", "Cloud PWBI: belum diatur",
				"Moka: belum diatur (lihat dasbor)"},
		},
		{
			name: "config error", st: localapi.Status{State: "error", Config: localapi.ConfigStatus{Error: "config.toml:3: moka.poll_interval: bad duration"}},
			lines: []string{"Terakhir disinkronkan: belum pernah", "Menunggu dikirim: 0", "Cloud PWBI: belum diatur",
				"Kesalahan pengaturan: config.toml:3: moka.poll_interval: bad duration"},
		},
		{
			name: "too many sinks", st: localapi.Status{State: "syncing", Sinks: []localapi.SinkStatus{
				{Name: "upstream", Enabled: true, Configured: true, Online: true, LastSuccessAt: &now},
				{Name: "nats", Enabled: true, Configured: true, Online: true},
				{Name: "jurnal", Enabled: true, Configured: true, Online: true},
				{Name: "kafka", Title: "Kafka", Enabled: true, Configured: true, Online: true},
			}},
			header: "PWBI Agent: sedang sinkronisasi",
			lines: []string{"Terakhir disinkronkan: baru saja", "Menunggu dikirim: 0", "Cloud PWBI: tersambung", "NATS: tersambung",
				"2 tujuan lainnya (lihat dasbor)"},
		},
		{
			name: "agent not running", err: fmt.Errorf("dial: %w", localapi.ErrNotRunning),
			header: "PWBI Agent tidak berjalan", lines: []string{}, tooltip: "PWBI Agent: tidak berjalan",
		},
		{
			name: "agent not answering", err: errors.New("HTTP 500"),
			header: "PWBI Agent tidak merespons", lines: []string{}, tooltip: "PWBI Agent: tidak merespons",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := ViewIn(id, tc.st, tc.err, now)
			if v.Lang() != "id" {
				t.Errorf("Lang %q", v.Lang())
			}
			if tc.header != "" && v.Header != tc.header {
				t.Errorf("header %q, want %q", v.Header, tc.header)
			}
			if strings.Join(v.Lines, "|") != strings.Join(tc.lines, "|") {
				t.Errorf("lines\n got %q\nwant %q", v.Lines, tc.lines)
			}
			if tc.tooltip != "" && v.Tooltip != tc.tooltip {
				t.Errorf("tooltip %q\n want %q", v.Tooltip, tc.tooltip)
			}
		})
	}
}

// TestMenuInIndonesian: the entries, including Resume while paused.
func TestMenuInIndonesian(t *testing.T) {
	id := i18n.New(i18n.Indonesian)
	labels := func(v View) string {
		var s []string
		for _, it := range v.Menu() {
			if !it.Separator && it.Visible && !strings.HasPrefix(string(it.ID), "line") && it.ID != ItemHeader {
				s = append(s, it.Label)
			}
		}
		return strings.Join(s, "|")
	}
	up := ViewIn(id, localapi.Status{State: "ok"}, nil, time.Now())
	if got, want := labels(up), "Sinkronkan sekarang|Jeda sinkronisasi|Buka dasbor|Buka file pengaturan|Buka folder log|Keluar"; got != want {
		t.Errorf("menu\n got %s\nwant %s", got, want)
	}
	paused := ViewIn(id, localapi.Status{State: "paused", Moka: localapi.MokaStatus{Enabled: true, Configured: true, NeedsAuthorization: true}}, nil, time.Now())
	if got, want := labels(paused), "Sinkronkan sekarang|Lanjutkan sinkronisasi|Hubungkan Moka…|Buka dasbor|Buka file pengaturan|Buka folder log|Keluar"; got != want {
		t.Errorf("paused menu\n got %s\nwant %s", got, want)
	}
	// A view without a printer (the zero View) is English.
	if got := (View{}).label(ItemQuit); got != "Quit" {
		t.Errorf("zero view's Quit %q", got)
	}
}

// TestIndonesianTrayHasNoEnglish renders the tray in Indonesian for every
// kind of status and checks that no text of the English tray catalogue
// (nor of the common one, whose relative times the tray uses) shows
// (issue 15: no English leaks into the Indonesian pages). Problem
// and config-error texts come from the agent and are left out here.
func TestIndonesianTrayHasNoEnglish(t *testing.T) {
	english := append(testutil.EnglishFragments(t, "../internal/i18n/locales/tray.en.toml"),
		testutil.EnglishFragments(t, "../internal/i18n/locales/common.en.toml")...)
	id := i18n.New(i18n.Indonesian)
	now := time.Now()
	ago := now.Add(-90 * time.Minute)
	var views []View
	for _, st := range []localapi.Status{
		{State: "ok", Queue: localapi.QueueStatus{Pending: 1}, Sinks: []localapi.SinkStatus{{Name: "upstream", Enabled: true, Configured: true, Online: true, LastSuccessAt: &ago}}},
		{State: "syncing", Queue: localapi.QueueStatus{Pending: 2, DeadLetter: 1}},
		{State: "offline", Sinks: []localapi.SinkStatus{
			{Name: "upstream", Enabled: true, Configured: true, LastError: "x"},
			{Name: "nats", Enabled: true, Configured: true, Problem: "x", Health: localapi.SinkHealthError},
			{Name: "jurnal", Enabled: true, Configured: true},
			{Name: "kafka", Enabled: true, Configured: true},
		}},
		{State: "paused", Moka: localapi.MokaStatus{Enabled: true, Configured: true, NeedsAuthorization: true}},
		{State: "error", Moka: localapi.MokaStatus{Enabled: true}},
		{State: "weird"},
	} {
		views = append(views, ViewIn(id, st, nil, now))
	}
	views[0] = views[0].WithToday(localapi.Summary{Today: "2026-12-07",
		Totals: []localapi.SummaryDay{{Date: "2026-12-07", SummaryFigures: localapi.SummaryFigures{Sales: 86, NetAmount: "1250000"}}}})
	if got := views[0].Lines[1]; got != "Hari ini: Rp 1.250.000 · 86 transaksi" {
		t.Errorf("today line %q", got)
	}
	views = append(views, ViewIn(id, localapi.Status{}, localapi.ErrNotRunning, now), ViewIn(id, localapi.Status{}, errors.New("500"), now),
		views[1].WithTodayUnreadable())
	var texts []string
	for _, v := range views {
		texts = append(texts, v.Tooltip)
		for _, it := range v.Menu() {
			texts = append(texts, it.Label)
		}
	}
	act := action{label: views[0].label(ItemSync), p: id}
	texts = append(texts, act.failed(localapi.ErrNotRunning), act.failed(errors.New("boom")))
	for _, s := range texts {
		if leak := EnglishIn(s, english); leak != "" {
			t.Errorf("Indonesian tray text %q contains the English %q", s, leak)
		}
	}
	// The check itself works: the English menu is full of them.
	en := ViewIn(i18n.New(i18n.English), localapi.Status{State: "offline"}, nil, now)
	for _, s := range append([]string{en.Header, en.Tooltip}, en.Lines...) {
		if EnglishIn(s, english) == "" {
			t.Errorf("English text %q not recognised as English", s)
		}
	}
}

// TestAppSpeaksTheConfiguredLanguage: the menu and a failure notice in
// Indonesian when agent.language says so.
func TestAppSpeaksTheConfiguredLanguage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startIn(t, "id", localapi.Status{State: "ok"}, nil)
		if got := h.ui.item(ItemHeader).Label; got != "PWBI Agent: berjalan normal" {
			t.Errorf("header %q", got)
		}
		if got := h.ui.item(ItemSync).Label; got != "Sinkronkan sekarang" {
			t.Errorf("sync %q", got)
		}
		h.agent.mu.Lock()
		h.agent.failAct = fmt.Errorf("local api /v1/sync: %w", localapi.ErrNotRunning)
		h.agent.mu.Unlock()
		h.app.Click(ItemSync)
		synctest.Wait()
		if got := h.ui.lines(); !strings.Contains(got, `Gagal "Sinkronkan sekarang": PWBI Agent tidak berjalan`) {
			t.Errorf("lines %q", got)
		}
		// The log stays English, for support.
		if !strings.Contains(h.log.String(), `msg="Action failed" action="Sync now"`) || !strings.Contains(h.log.String(), "lang=id") {
			t.Errorf("log:\n%s", h.log)
		}
	})
}

// EnglishIn returns the first English fragment s contains, or "".
func EnglishIn(s string, english []string) string {
	for _, f := range english {
		if strings.Contains(s, f) {
			return f
		}
	}
	return ""
}

// TestProblemInReadersLanguage: a problem the agent sends with its code is
// rendered in the tray's language; one without a known code shows as the
// agent wrote it.
func TestProblemInReadersLanguage(t *testing.T) {
	st := localapi.Status{State: "offline",
		Problems: []string{"cannot reach NATS: connection refused"},
		ProblemDetails: []localapi.ProblemDetail{{Code: "HealthSinkUnreachable", Severity: "retrying",
			Params: map[string]any{"Sink": "NATS", "Error": "connection refused"}, Text: "cannot reach NATS: connection refused"}}}
	v := ViewIn(i18n.New(i18n.Indonesian), st, nil, time.Now())
	if got := v.Lines[len(v.Lines)-1]; got != "Tidak bisa menghubungi NATS: connection refused" {
		t.Errorf("problem line %q", got)
	}
	v = ViewIn(i18n.New(i18n.English), st, nil, time.Now())
	if got := v.Lines[len(v.Lines)-1]; got != "Cannot reach NATS: connection refused" {
		t.Errorf("problem line %q", got)
	}
	st.ProblemDetails[0].Code = "HealthFromANewerAgent"
	st.Problems[0] = "tidak bisa menghubungi NATS"
	v = ViewIn(i18n.New(i18n.English), st, nil, time.Now())
	if got := v.Lines[len(v.Lines)-1]; got != "Tidak bisa menghubungi NATS" {
		t.Errorf("unknown code: problem line %q", got)
	}
}

// TestAppFollowsTheAgentsLanguage: the agent's agent.language wins over
// the tray's own reading of the config file (the agent hot-reloads it; the
// tray may not be allowed to read the file), and stays while the agent is
// down.
func TestAppFollowsTheAgentsLanguage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startIn(t, "en", localapi.Status{State: "ok", Language: localapi.LanguageStatus{Setting: "id", Resolved: "id"}}, nil)
		if got := h.ui.item(ItemQuit).Label; got != "Keluar" {
			t.Errorf("agent.language id: Quit is %q", got)
		}
		h.agent.set(localapi.Status{}, localapi.ErrNotRunning)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if got := h.ui.item(ItemHeader).Label; got != "PWBI Agent tidak berjalan" {
			t.Errorf("agent down: header %q", got)
		}
		// Changed to English in the config file: the tray follows.
		h.agent.set(localapi.Status{State: "ok", Language: localapi.LanguageStatus{Setting: "en", Resolved: "en"}}, nil)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if got := h.ui.item(ItemQuit).Label; got != "Quit" {
			t.Errorf("agent.language en: Quit is %q", got)
		}
	})
}

// TestAppAutoIsTheDesktopLocale: agent.language "auto" is this desktop's
// locale, not the agent's.
func TestAppAutoIsTheDesktopLocale(t *testing.T) {
	t.Setenv("LC_ALL", "id_ID.UTF-8")
	synctest.Test(t, func(t *testing.T) {
		h := startIn(t, "en", localapi.Status{State: "paused", Language: localapi.LanguageStatus{Setting: "auto", Resolved: "en"}}, nil)
		if got := h.ui.item(ItemPause).Label; got != "Lanjutkan sinkronisasi" {
			t.Errorf("auto under id_ID: Resume is %q", got)
		}
	})
}

// The tray renders a problem as the dashboard does (regression: it used the
// bare message, so a reason given as a code — ErrorCode, or a sink's own
// sentence as DetailCode — was lost or stayed English in Indonesian).
// The status goes through JSON, as it does from the agent.
func TestProblemWithCodedPartsInIndonesian(t *testing.T) {
	for _, c := range []struct {
		name   string
		detail localapi.ProblemDetail
		want   string
	}{
		{"reason as ErrorCode", localapi.ProblemDetail{Code: "HealthSinkUnreachable", Severity: "retrying",
			Params: map[string]any{"Sink": "NATS", "SinkKey": "nats", "Error": "", "ErrorCode": "HealthNoAnswer"},
			Text:   "cannot reach NATS: no answer"}, "tidak ada jawaban"},
		{"a sink's sentence as DetailCode", localapi.ProblemDetail{Code: "HealthSinkDaysWaiting", Severity: "retrying",
			Params: map[string]any{"Sink": "Jurnal", "SinkKey": "jurnal", "Count": 2,
				"Detail":     "Jurnal is not answering: 503 Service Unavailable",
				"DetailCode": "HealthJurnalNotAnswering", "DetailParams": map[string]any{"Error": "503 Service Unavailable"}},
			Text: "2 closed days wait to be posted to Jurnal: Jurnal is not answering: 503 Service Unavailable"},
			"dikirim ke Jurnal: Jurnal sedang"}, // the line is clipped after that
	} {
		st := localapi.Status{State: "offline", Problems: []string{c.detail.Text}, ProblemDetails: []localapi.ProblemDetail{c.detail}}
		raw, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		var back localapi.Status
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatal(err)
		}
		v := ViewIn(i18n.New(i18n.Indonesian), back, nil, time.Now())
		if got := v.Lines[len(v.Lines)-1]; !strings.Contains(got, c.want) || strings.Contains(got, "is not") {
			t.Errorf("%s: problem line %q, want it to hold %q", c.name, got, c.want)
		}
	}
}
