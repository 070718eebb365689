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

// TestEnglishLeft: an English sentence of the health catalogue is found in
// a text, unless it is the data.
func TestEnglishLeft(t *testing.T) {
	const english = "the buffer is full: Moka polling is paused until the records are delivered"
	const text = "Tidak bisa menghubungi NATS: " + english
	if left := EnglishLeft(t, text, map[string]any{"Sink": "NATS"}); !slices.Contains(left, english) {
		t.Errorf("English left in %q: %q", text, left)
	}
	if left := EnglishLeft(t, text, map[string]any{"Error": english, "Count": 2}); len(left) > 0 {
		t.Errorf("the data counted as English: %q", left)
	}
}
