package sink

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pwbi/edge-agent/internal/i18n"
)

// Say words a message in English from the catalogue; the answer carries
// code, parameters and text together.
func TestSay(t *testing.T) {
	m := Say("HealthUpstreamToken", map[string]any{"Status": "401 Unauthorized"})
	if m.Text != "the PWBI cloud refuses the token (401 Unauthorized): check upstream.token" {
		t.Errorf("text %q", m.Text)
	}
	a := Answer{Verdict: Retry}.WithProblem(m)
	if a.Problem != m.Text || a.ProblemCode != m.Code || a.ProblemParams["Status"] != "401 Unauthorized" || a.UniformProblem != "" {
		t.Errorf("answer %+v", a)
	}
	u := Answer{Verdict: Rejected}.WithUniformProblem(m)
	if u.UniformProblem != m.Text || u.UniformProblemCode != m.Code || u.Problem != "" || u.ProblemCode != "" {
		t.Errorf("answer %+v", u)
	}
}

// Fit keeps a problem short by shortening its data, so that the text
// stays what its code and parameters render to; a text that fits is left
// alone, and a parameter's white space is made one line.
func TestFit(t *testing.T) {
	en := i18n.New(i18n.English)
	short := Say("HealthSinkDeliveryFailed", map[string]any{"Error": "dial tcp: refused"})
	if got := short.Fit(400, "Error"); got.Text != "delivery failed: dial tcp: refused" || got.Params["Error"] != "dial tcp: refused" {
		t.Errorf("short: %+v", got)
	}
	for _, n := range []int{0, 10, 17, 18, 40, 399} {
		long := Say("HealthSinkDeliveryFailed", map[string]any{"Error": strings.Repeat("é connection reset ", 50)})
		got := long.Fit(n, "Error")
		if len(got.Text) > max(n, len("delivery failed:"))+len("…") || !utf8.ValidString(got.Text) || !strings.HasSuffix(got.Text, "…") {
			t.Errorf("n=%d: %q (%d bytes)", n, got.Text, len(got.Text))
		}
		if n >= 40 && en.Msg(got.Code, got.Params) != got.Text {
			t.Errorf("n=%d: the code renders %q, the text is %q", n, en.Msg(got.Code, got.Params), got.Text)
		}
		if long.Params["Error"] == got.Params["Error"] {
			t.Errorf("n=%d: Fit changed the caller's parameters", n)
		}
	}
	lines := Say("HealthSinkDeliveryFailed", map[string]any{"Error": "line one\n\tline two"}).Fit(400, "Error")
	if lines.Text != "delivery failed: line one line two" || en.Msg(lines.Code, lines.Params) != lines.Text {
		t.Errorf("lines: %+v", lines)
	}
	// Without the named parameter the text alone is cut.
	cut := Say("HealthUpstreamWebPage", nil).Fit(20, "Error")
	if cut.Code != "HealthUpstreamWebPage" || len(cut.Text) > 20+len("…") || !strings.HasSuffix(cut.Text, "…") {
		t.Errorf("cut: %+v", cut)
	}
}
