package testutil

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// CatalogueNames are the English catalogue fragments a translated text may
// hold: names, not words.
var CatalogueNames = []string{"PWBI Agent", "Cloud", "Moka", "NATS", "Jurnal"}

var (
	templateAction = regexp.MustCompile(`\{\{[^}]*\}\}`)
	catalogueWord  = regexp.MustCompile(`[A-Za-z]{3,}`)
)

// EnglishFragments reads an English catalogue file of internal/i18n
// (locales/<area>.en.toml) and returns the literal parts of its messages
// (between template actions) that hold a word of at least three letters,
// CatalogueNames aside: what a text in another language must not hold. It
// fails t when the file cannot be read or yields fewer than ten.
func EnglishFragments(t testing.TB, path string) []string {
	t.Helper()
	var cat map[string]map[string]string
	if _, err := toml.DecodeFile(path, &cat); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var frags []string
	for _, m := range cat {
		for form, text := range m {
			if form == "description" || form == "hash" {
				continue
			}
			for _, f := range templateAction.Split(text, -1) {
				f = strings.Trim(f, " :·—,.()\"")
				if catalogueWord.MatchString(f) && !slices.Contains(CatalogueNames, f) && !slices.Contains(frags, f) {
					frags = append(frags, f)
				}
			}
		}
	}
	if len(frags) < 10 {
		t.Fatalf("%s: only %d English fragments: %q", path, len(frags), frags)
	}
	return frags
}
