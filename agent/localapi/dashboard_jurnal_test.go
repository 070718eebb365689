package localapi

import (
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/internal/i18n"
)

// TestDashboardJurnalBlock renders the Jurnal block (dashboard_jurnal.html)
// from the status's jurnal part: one line per outlet with its last synced
// time, documents posted, waiting sales and error; quota and clock
// problems said in words; nothing at all while Jurnal is disabled. (By
// helper JS; made bilingual by helper I1.)
func TestDashboardJurnalBlock(t *testing.T) {
	synced := time.Date(2026, 12, 6, 21, 5, 0, 0, time.UTC)
	render := func(lang string, js JurnalStatus) string {
		t.Helper()
		fm := fmtr{p: i18n.New(lang), now: synced.Add(5 * time.Minute), loc: time.UTC}
		st := Status{Moka: MokaStatus{Outlets: []OutletStatus{{ID: "101", Name: "Kopi Senja Kemang"}}}}
		var b strings.Builder
		if err := dashboardTmpl.ExecuteTemplate(&b, "jurnal", buildJurnal(js, st, fm)); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	if got := strings.TrimSpace(render("en", JurnalStatus{})); got != "" {
		t.Errorf("disabled Jurnal renders %q, want nothing", got)
	}
	until := synced.Add(time.Hour)
	js := JurnalStatus{
		Enabled: true, Mode: "invoice", QuotaExhausted: true, QuotaUntil: &until, QuotaMessage: "API rate limit exceeded",
		ClockProblem: "the PC clock is wrong by 9 minutes",
		Outlets: []JurnalOutletStatus{
			{OutletID: "101", Tag: "Kemang", LastSyncedAt: &synced, Posted: 1042, Waiting: 3, LastError: "Jurnal answered 422: <b>bad</b>"},
			{OutletID: "102"},
		},
	}
	for lang, wants := range map[string][]string{
		"en": {"one invoice per sale", "Kopi Senja Kemang", "Outlet 102", "5 min ago", `title="6 Dec 2026 21:05:00 UTC"`, ">1,042<", ">3<", "never",
			"until 6 Dec 2026 22:05", "Last synced", "Documents posted"},
		"id": {"satu faktur per penjualan", "Kopi Senja Kemang", "Outlet 102", "5 mnt lalu", `title="6 Des 2026 21.05.00 UTC"`, ">1.042<", ">3<", "belum pernah",
			"sampai 6 Des 2026 22.05", "Sinkronisasi terakhir", "Dokumen terkirim"},
	} {
		out := render(lang, js)
		for _, want := range append(wants, `id="jurnal-101"`, "Kemang",
			"Jurnal answered 422: &lt;b&gt;bad&lt;/b&gt;", // escaped, never HTML from outside
			"the PC clock is wrong by 9 minutes", "API rate limit exceeded") {
			if !strings.Contains(out, want) {
				t.Errorf("%s: the Jurnal block lacks %q:\n%s", lang, want, out)
			}
		}
		if strings.Contains(out, "<b>bad</b>") {
			t.Error("an error from Jurnal is rendered as HTML")
		}
	}
	js.Mode, js.QuotaExhausted, js.Outlets = "daily_summary", false, nil
	if out := render("id", js); !strings.Contains(out, "satu faktur per outlet per hari") || !strings.Contains(out, `id="jurnal-none"`) ||
		strings.Contains(out, `id="jurnal-quota"`) {
		t.Errorf("daily summary without outlets:\n%s", out)
	}

	// On the page, the block sits among the cards while Jurnal is enabled.
	st := busyStatus()
	st.Jurnal = JurnalStatus{Enabled: true, Mode: "invoice", Outlets: []JurnalOutletStatus{{OutletID: "101", Posted: 5}}}
	if page := renderWith(t, &fakeBackend{st: st}, "/?lang=id", nil); !strings.Contains(page, `id="jurnal-101"`) ||
		!strings.Contains(text(page), "Kopi Senja Kemang") {
		t.Error("the dashboard does not show the Jurnal list")
	}
	if page := renderWith(t, &fakeBackend{st: busyStatus()}, "/", nil); strings.Contains(page, `id="jurnal"`) {
		t.Error("the Jurnal list shown while Jurnal is off")
	}
}

// The Jurnal card's clock and setup lines are in the page's language: the
// status's clock_problem is English (for logs and old clients), and the
// card renders clock_problem_code instead; the setup line names the keys
// to set. Regression: both were shown in English on an Indonesian page.
func TestDashboardJurnalClockAndSetupTranslated(t *testing.T) {
	render := func(lang string, js JurnalStatus) string {
		t.Helper()
		fm := fmtr{p: i18n.New(lang), now: time.Date(2026, 12, 6, 21, 0, 0, 0, time.UTC), loc: time.UTC}
		var b strings.Builder
		if err := dashboardTmpl.ExecuteTemplate(&b, "jurnal", buildJurnal(js, Status{}, fm)); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	clock := JurnalStatus{Enabled: true, Mode: "invoice", ClockProblem: "the PC clock is wrong by 20 minutes (behind Jurnal's): …",
		ClockProblemCode: "HealthJurnalClockBehind", ClockProblemParams: map[string]any{"Minutes": "20"}}
	setup := JurnalStatus{Enabled: true, Mode: "invoice", Setup: "jurnal.client_id and jurnal.client_secret (or client_secret_file) are not set"}
	for lang, want := range map[string][2]string{
		"en": {"the PC clock is wrong by 20 minutes (behind Jurnal", "Jurnal is not connected yet"},
		"id": {"Jam PC ini terlambat 20 menit dibanding jam Jurnal", "Jurnal belum terhubung"},
	} {
		if out := text(render(lang, clock)); !strings.Contains(out, want[0]) {
			t.Errorf("%s: clock line lacks %q:\n%s", lang, want[0], out)
		}
		out := render(lang, setup)
		if !strings.Contains(text(out), want[1]) || !strings.Contains(out, "<code>jurnal.client_id</code>") {
			t.Errorf("%s: setup line lacks %q and the key as code:\n%s", lang, want[1], out)
		}
		if lang == "id" && strings.Contains(out, "are not set") {
			t.Errorf("id: the English setup reason is shown:\n%s", out)
		}
	}
	// A status without a code (an older agent) still shows its sentence.
	if out := render("id", JurnalStatus{Enabled: true, ClockProblem: "the PC clock is wrong by 9 minutes"}); !strings.Contains(out, "wrong by 9 minutes") {
		t.Errorf("a clock problem without a code is not shown:\n%s", out)
	}
}
