package testutil

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pwbi/edge-agent/internal/i18n"
)

// Message is a sentence worded as a message of the catalogue: its id, its
// parameters and its English text (a sink.Message, a health.Problem).
type Message struct {
	Code   string
	Params map[string]any
	Text   string
}

// CheckTranslated is what every part's tests check of the problems it
// words for a person: that m renders in English as its Text,
// and in Indonesian with every parameter (all strings) kept and no
// sentence of the English health catalogue around them; and that neither
// holds secret.
func CheckTranslated(t testing.TB, m Message, secret string) {
	t.Helper()
	if got := i18n.New(i18n.English).Msg(m.Code, m.Params); got != m.Text {
		t.Errorf("%s renders in English as %q, the text is %q", m.Code, got, m.Text)
	}
	id := i18n.New(i18n.Indonesian).Msg(m.Code, m.Params)
	for k, v := range m.Params {
		s, ok := v.(string)
		if !ok {
			t.Errorf("%s: parameter %s is a %T, want a string", m.Code, k, v)
			continue
		}
		if !strings.Contains(id, s) {
			t.Errorf("%s: the Indonesian %q lost %s = %q", m.Code, id, k, s)
		}
	}
	for _, f := range EnglishLeft(t, id, m.Params) {
		t.Errorf("%s: English %q left in the Indonesian %q", m.Code, f, id)
	}
	if id == m.Text || strings.Contains(id, "<no value>") {
		t.Errorf("%s in Indonesian: %q", m.Code, id)
	}
	if secret != "" && strings.Contains(m.Text+id, secret) {
		t.Errorf("%s: the secret leaks: %q", m.Code, m.Text)
	}
}

// healthFragments are EnglishFragments of the health catalogue, read once.
var healthFragments struct {
	sync.Mutex
	frags []string
}

// EnglishLeft returns the fragments of the English health catalogue
// (EnglishFragments) that text, a message rendered in another language,
// still holds once the string values of params are taken out: the data
// may be English, the sentence around it must not.
func EnglishLeft(t testing.TB, text string, params map[string]any) []string {
	t.Helper()
	healthFragments.Lock()
	if healthFragments.frags == nil {
		healthFragments.frags = EnglishFragments(t, catalogue(t, "health.en.toml"))
	}
	frags := healthFragments.frags
	healthFragments.Unlock()
	var values []string
	for _, v := range params {
		if s, ok := v.(string); ok && s != "" {
			values = append(values, s)
		}
	}
	// Longer values first: one may hold another.
	slices.SortFunc(values, func(a, b string) int { return len(b) - len(a) })
	for _, s := range values {
		text = strings.ReplaceAll(text, s, "")
	}
	var left []string
	for _, f := range frags {
		if strings.Contains(text, f) {
			left = append(left, f)
		}
	}
	return left
}

// CodesInCatalogue checks that every message id the non-test Go files of
// the current directory (the package under test) name through re's first
// group is in the catalogue, and that there are at least min of them (a
// pattern that matches nothing checks nothing).
func CodesInCatalogue(t testing.TB, re string, min int) {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(string(b), -1) {
			codes = append(codes, m[1])
		}
	}
	slices.Sort(codes)
	codes = slices.Compact(codes)
	if len(codes) < min {
		t.Fatalf("only %d codes found: %q", len(codes), codes)
	}
	for _, c := range codes {
		if !i18n.Has(c) {
			t.Errorf("%s is not in the catalogue", c)
		}
	}
}

// catalogue is the path of a file of internal/i18n/locales, found from the
// current directory up to the module's root.
func catalogue(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "internal", "i18n", "locales", name)
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatalf("no go.mod above the test's directory")
		}
		dir = up
	}
}
