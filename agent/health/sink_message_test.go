package health

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pwbi/edge-agent/internal/i18n"
	"github.com/pwbi/edge-agent/internal/testutil"
)

// sinkCode reports whether id is a message a sink or the delivery loop
// words its problem with (agent/deliver and its sinks).
func sinkCode(id string) bool {
	for _, p := range []string{"HealthUpstream", "HealthNats", "HealthJurnal"} {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return slices.Contains([]string{"HealthSinkDeliveryFailed", "HealthSinkRefusedAlike",
		"HealthSinkBufferDeadLetter", "HealthSinkBufferAck"}, id)
}

var field = regexp.MustCompile(`\{\{\s*\.(\w+)\s*\}\}`)

// TestSinkProblemCodes: a sink's problem worded as a message (its code and
// parameters) becomes the problem's code and parameters, with the sink's
// English sentence as Text and its own Indonesian — not the English
// sentence behind an Indonesian lead (the Wi-Fi login page of the issue).
// A sentence without a code, or with a code this build does not know, is
// shown as before.
func TestSinkProblemCodes(t *testing.T) {
	const portal = "the upstream answered with a web page, not an acknowledgement: is a Wi-Fi login page in the way?"
	quota := map[string]any{"Answer": "API rate limit exceeded", "Until": "14:05"}
	in := Input{Sinks: []Sink{
		{Name: "the PWBI cloud", Key: "upstream", Configured: true, Health: SinkError,
			Problem: portal, ProblemCode: "HealthUpstreamWebPage"},
		{Name: "Jurnal", Key: "jurnal", Configured: true, Health: SinkOffline,
			Problem: "Jurnal's API limit is reached (API rate limit exceeded): posting waits until 14:05", ProblemCode: "HealthJurnalQuota", ProblemParams: quota},
		{Name: "NATS", Key: "nats", Configured: true, Health: SinkError,
			Problem: "the NATS server says no", ProblemCode: "HealthFromTheFuture", ProblemParams: map[string]any{"X": "y"}},
		{Name: "NATS", Key: "nats", Configured: true, Health: SinkOffline, Problem: "an older agent's sentence"},
	}}
	state, ps := Evaluate(in)
	if state != Error || len(ps) != 4 {
		t.Fatalf("state %s, problems %q", state, Texts(ps))
	}
	id := i18n.New(i18n.Indonesian)
	for i, want := range []struct {
		sev        Severity
		code, text string
		indonesian string
	}{
		{Blocking, "HealthUpstreamWebPage", portal,
			"Yang menjawab bukan cloud PWBI, melainkan sebuah halaman web: mungkin Wi-Fi di sini meminta login dulu. Buka browser di PC ini dan login ke Wi-Fi; penjualan tetap tersimpan dan akan terkirim sendiri"},
		{Blocking, "HealthSinkProblem", "the NATS server says no", "Server NATS menolak pengiriman: the NATS server says no"},
		{Retrying, "HealthJurnalQuota", "Jurnal's API limit is reached (API rate limit exceeded): posting waits until 14:05",
			"Batas pemakaian API Jurnal sudah habis (API rate limit exceeded): pengiriman menunggu sampai pukul 14:05; penjualan tetap tersimpan di PC ini"},
		{Retrying, "HealthSinkOfflineProblem", "an older agent's sentence", "Server NATS belum bisa dihubungi, akan dicoba lagi: an older agent's sentence"},
	} {
		p := ps[i]
		if p.Severity != want.sev || p.Code != want.code || p.Text != want.text {
			t.Errorf("problem %d: %v %s %q, want %v %s %q", i, p.Severity, p.Code, p.Text, want.sev, want.code, want.text)
		}
		if got := p.In(id); got != want.indonesian {
			t.Errorf("%s in Indonesian:\n%q, want\n%q", p.Code, got, want.indonesian)
		}
	}
	// The sink's data travels as it came, with which sink it is.
	q := ps[2]
	if q.Params["Answer"] != "API rate limit exceeded" || q.Params["Until"] != "14:05" || q.Params["SinkKey"] != "jurnal" || q.Params["Sink"] != "Jurnal" {
		t.Errorf("quota params %v", q.Params)
	}
	if quota["Sink"] != nil {
		t.Error("Evaluate changed the sink's parameters")
	}
	for _, p := range []Problem{ps[0], ps[2]} {
		if left := testutil.EnglishLeft(t, p.In(id), p.Params); len(left) > 0 {
			t.Errorf("%s: English left in %q: %q", p.Code, p.In(id), left)
		}
	}
}

// TestSinkMessagesInIndonesian: every message a sink or the delivery loop
// words a problem with reads in Indonesian — through a problem's In, as
// the status, the dashboard, the tray and the CLI show it, and through Msg
// alone, as another client of problem_details may (docs/localapi.md) —
// with every parameter kept and no sentence of the English catalogue left.
func TestSinkMessagesInIndonesian(t *testing.T) {
	id := i18n.New(i18n.Indonesian)
	en := i18n.New(i18n.English)
	n := 0
	for _, code := range i18n.Keys("health") {
		if !sinkCode(code) {
			continue
		}
		n++
		src, _ := i18n.Source(i18n.English, code)
		params := map[string]any{}
		for _, m := range field.FindAllStringSubmatch(src, -1) {
			params[m[1]] = "⟨" + m[1] + "⟩"
		}
		for _, sev := range []SinkHealth{SinkError, SinkOffline} {
			_, ps := Evaluate(Input{Sinks: []Sink{{Name: "the PWBI cloud", Key: "upstream", Configured: true, Health: sev,
				Problem: en.Msg(code, params), ProblemCode: code, ProblemParams: params}}})
			if len(ps) != 1 || ps[0].Code != code || ps[0].Text != en.Msg(code, params) {
				t.Fatalf("%s: problems %+v", code, ps)
			}
			for _, text := range []string{ps[0].In(id), id.Msg(ps[0].Code, ps[0].Params)} {
				for k, v := range params {
					if !strings.Contains(text, v.(string)) {
						t.Errorf("%s: Indonesian %q lost %s", code, text, k)
					}
				}
				if strings.Contains(text, "<no value>") || text == ps[0].Text {
					t.Errorf("%s: Indonesian %q", code, text)
				}
				if left := testutil.EnglishLeft(t, text, params); len(left) > 0 {
					t.Errorf("%s: English left in %q: %q", code, text, left)
				}
				if r := []rune(text)[0]; r >= 'a' && r <= 'z' {
					t.Errorf("%s: Indonesian starts in lower case: %q", code, text)
				}
			}
		}
	}
	if n < 50 {
		t.Errorf("only %d sink messages in the catalogue", n)
	}
}
