package sink

import (
	"maps"

	"github.com/pwbi/edge-agent/internal/i18n"
)

// Message is a sentence for a person as data: Code is a message id of
// internal/i18n's health catalogue (HealthUpstreamWebPage, …) and Params
// its template data (strings; never a secret), so that a reader can show
// the sentence in their own language; Text is the sentence in English,
// as the catalogue words it. The zero Message is no sentence.
type Message struct {
	Code   string
	Params map[string]any
	Text   string
}

var english = i18n.New(i18n.English)

// Say returns the message code with params, its Text rendered in English.
// params is the caller's to give away: Say keeps it.
func Say(code string, params map[string]any) Message {
	return Message{Code: code, Params: params, Text: english.Msg(code, params)}
}

// Fit returns m with a Text of at most n bytes (plus a trailing "…" when
// cut), made one line by [Snippet]. Its parameter named long — the data
// that may be long: an error, an answer — is shortened rather than the
// sentence, so that Text stays what Code and Params render to. Without
// such a parameter the Text alone is cut.
func (m Message) Fit(n int, long string) Message {
	text := Snippet([]byte(m.Text), "", n)
	if text == m.Text {
		return m
	}
	v, ok := m.Params[long].(string)
	if !ok {
		m.Text = text
		return m
	}
	// The sentence without the parameter is what must fit; the rest of
	// n, less the space that may join them, is the parameter's.
	p := maps.Clone(m.Params)
	p[long] = ""
	room := n - len(Snippet([]byte(english.Msg(m.Code, p)), "", n)) - 1
	p[long] = Snippet([]byte(v), "", max(room, 0))
	out := Say(m.Code, p)
	out.Text = Snippet([]byte(out.Text), "", n+len("…"))
	return out
}

// WithProblem returns a with its Problem (and ProblemCode, ProblemParams)
// set to m.
func (a Answer) WithProblem(m Message) Answer {
	a.Problem, a.ProblemCode, a.ProblemParams = m.Text, m.Code, m.Params
	return a
}

// WithUniformProblem returns a with its UniformProblem (and
// UniformProblemCode, UniformProblemParams) set to m.
func (a Answer) WithUniformProblem(m Message) Answer {
	a.UniformProblem, a.UniformProblemCode, a.UniformProblemParams = m.Text, m.Code, m.Params
	return a
}
