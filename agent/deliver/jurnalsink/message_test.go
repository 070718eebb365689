package jurnalsink_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/deliver/jurnalsink"
	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/agent/unified"
	"github.com/pwbi/edge-agent/internal/i18n"
	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/store"
)

// TestProblemMessages: what a cafe owner can act on — Jurnal's quota, a
// wrong PC clock, refused credentials, Jurnal down or refusing every sale
// — is answered with a Problem worded as a message of the health
// catalogue: its code, its parameters (the data, never the client
// secret), and the English sentence the status always showed, which reads
// in Indonesian without an English sentence left.
func TestProblemMessages(t *testing.T) {
	sale1 := func(e *env) store.Record { return e.rec(sale("101", "S1", "2026-12-05", unified.StatusCompleted)) }
	for _, tc := range []struct {
		name  string
		cfg   func(*jurnalsink.Config)
		setup func(*env)
		rec   func(*env) store.Record
		code  string
		text  *regexp.Regexp // the English, with the data that varies matched
		// uniform: the UniformProblem of a rejection rather than the
		// Problem of a retry.
		uniform bool
	}{
		{name: "quota used up", setup: func(e *env) { e.fake.SetMonthlyQuota(1000, 0) }, code: "HealthJurnalQuota",
			text: regexp.MustCompile(`^Jurnal's API limit is reached \(.+\): posting waits until \d\d:\d\d$`)},
		{name: "PC clock ahead", cfg: func(c *jurnalsink.Config) { c.ClientSecret = "wrong-secret" },
			setup: func(e *env) { e.fake.SetSkew(-20 * time.Minute) }, code: "HealthJurnalClockAhead",
			text: regexp.MustCompile(`^the PC clock is wrong by 20 minutes \(ahead of Jurnal's\): set the date and time of this PC, Jurnal refuses requests more than 5 minutes off$`)},
		{name: "PC clock behind", cfg: func(c *jurnalsink.Config) { c.ClientSecret = "wrong-secret" },
			setup: func(e *env) { e.fake.SetSkew(20 * time.Minute) }, code: "HealthJurnalClockBehind",
			text: regexp.MustCompile(`^the PC clock is wrong by 20 minutes \(behind Jurnal's\): set`)},
		{name: "credentials refused", cfg: func(c *jurnalsink.Config) { c.ClientSecret = "wrong-secret" }, code: "HealthJurnalCredentials",
			text: regexp.MustCompile(`^Jurnal refuses the credentials \(401\): check jurnal.client_id and jurnal.client_secret \(Mekari Developer, HMAC credentials\)$`)},
		{name: "down", setup: func(e *env) { e.fake.SetDown(true) }, code: "HealthJurnalNotAnswering",
			text: regexp.MustCompile(`^Jurnal is not answering: .*no answer from Jurnal`)},
		{name: "address unusable", cfg: func(c *jurnalsink.Config) { c.BaseURL = "http://jurnal\x7f.example" }, code: "HealthJurnalUnreachable",
			text: regexp.MustCompile(`^Jurnal cannot be reached: .+`)},
		{name: "not answering", setup: func(e *env) { e.fake.FailNext(1000, 503) }, code: "HealthJurnalNotAnswering",
			text: regexp.MustCompile(`^Jurnal is not answering: .*503`)},
		{name: "every sale refused", setup: func(e *env) { e.fake.RejectCustomID("moka-101-S1", "Tanggal transaksi is locked") },
			code: "HealthJurnalRefusesAll", text: regexp.MustCompile(`^Jurnal refuses every sale: .*Tanggal transaksi is locked`), uniform: true},
		{name: "unreadable record", rec: func(e *env) store.Record {
			r := sale1(e)
			r.Data = []byte("{not json")
			return r
		}, code: "HealthJurnalUnreadable", text: regexp.MustCompile(`^Jurnal: every record is unreadable: .+`), uniform: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			if tc.setup != nil {
				tc.setup(e)
			}
			rec := sale1
			if tc.rec != nil {
				rec = tc.rec
			}
			a := e.send(rec(e))
			m := sink.Message{Code: a.ProblemCode, Params: a.ProblemParams, Text: a.Problem}
			if tc.uniform {
				if a.Verdict != sink.Rejected || a.ProblemCode != "" {
					t.Fatalf("want a rejection: %+v", a)
				}
				m = sink.Message{Code: a.UniformProblemCode, Params: a.UniformProblemParams, Text: a.UniformProblem}
			} else if a.Verdict != sink.Retry {
				t.Fatalf("want a retry: %+v", a)
			}
			checkMessage(t, m, tc.code, tc.text, e.cfg.ClientSecret)
		})
	}

	// Without its state store (a wiring defect) and with the store
	// failing under it.
	e := newEnv(t, nil)
	noState := jurnalsink.New(e.cfg, jurnalsink.Options{Clock: e.clock})
	a := noState.Send(t.Context(), []store.Record{sale1(e)})
	checkMessage(t, sink.Message{Code: a.ProblemCode, Params: a.ProblemParams, Text: a.Problem}, "HealthJurnalNoState",
		regexp.MustCompile(`^the Jurnal sink cannot keep its state \(internal error\)$`), e.cfg.ClientSecret)
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	a = e.send(sale1(e))
	checkMessage(t, sink.Message{Code: a.ProblemCode, Params: a.ProblemParams, Text: a.Problem}, "HealthJurnalStateWrite",
		regexp.MustCompile(`^the Jurnal sink cannot write its state to the local buffer: .+`), e.cfg.ClientSecret)
}

// The clock's sentence of the status (jurnal.clock_problem) is the
// message's English; both languages say which way the clock is off
// (regression: "kecepatan", speed, for a clock ahead; "behind of").
func TestClockMessage(t *testing.T) {
	id := i18n.New(i18n.Indonesian)
	for skew, want := range map[time.Duration]struct{ code, en, id string }{
		9 * time.Minute:  {"HealthJurnalClockBehind", "(behind Jurnal's)", "Jam PC ini terlambat 9 menit dibanding jam Jurnal"},
		-9 * time.Minute: {"HealthJurnalClockAhead", "(ahead of Jurnal's)", "Jam PC ini lebih cepat 9 menit dibanding jam Jurnal"},
	} {
		m := jurnalsink.ClockMessage(skew)
		if m.Code != want.code || m.Params["Minutes"] != "9" || jurnalsink.ClockProblem(skew) != m.Text ||
			!strings.Contains(m.Text, "PC clock is wrong by 9 minutes "+want.en) {
			t.Errorf("skew %s: %+v, problem %q", skew, m, jurnalsink.ClockProblem(skew))
		}
		if got := id.Msg(m.Code, m.Params); !strings.HasPrefix(got, want.id+":") {
			t.Errorf("skew %s in Indonesian: %q, want it to open with %q", skew, got, want.id)
		}
	}
}

// checkMessage checks a sink's problem m: its code, its English text
// (what the catalogue renders from code and parameters), and its
// Indonesian, which holds the parameters and no sentence of the English
// catalogue.
func checkMessage(t *testing.T, m sink.Message, code string, text *regexp.Regexp, secret string) {
	t.Helper()
	if m.Code != code || !text.MatchString(m.Text) {
		t.Errorf("problem %s %q,\nwant %s %s", m.Code, m.Text, code, text)
	}
	testutil.CheckTranslated(t, testutil.Message(m), secret)
}

// TestCodesInCatalogue: every message id this package words a problem with
// is in the health catalogue.
func TestCodesInCatalogue(t *testing.T) {
	testutil.CodesInCatalogue(t, `sink\.Say\("(\w+)"`, 10)
}
