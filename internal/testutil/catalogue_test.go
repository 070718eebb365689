package testutil

import (
	"slices"
	"strings"
	"testing"
)

// TestEnglishFragments: the English catalogues' literal words, without
// template actions or names.
func TestEnglishFragments(t *testing.T) {
	frags := EnglishFragments(t, "../i18n/locales/tray.en.toml")
	for _, f := range frags {
		if strings.Contains(f, "{{") || strings.Contains(f, "}}") || slices.Contains(CatalogueNames, f) {
			t.Errorf("fragment %q: a template action or a name", f)
		}
	}
	for _, want := range []string{"Sync now", "all good"} {
		if !slices.ContainsFunc(frags, func(f string) bool { return strings.Contains(f, want) }) {
			t.Errorf("no fragment holds %q: %q", want, frags)
		}
	}
}
