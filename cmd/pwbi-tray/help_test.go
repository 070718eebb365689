package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestHelpInDesktopLanguage: pwbi-tray --help speaks the desktop's locale.
func TestHelpInDesktopLanguage(t *testing.T) {
	for _, tc := range []struct {
		locale string
		want   []string
	}{
		{"C.UTF-8", []string{"Usage: pwbi-tray [flags]", "how often to ask the agent for its status"}},
		{"id_ID.UTF-8", []string{"Cara pakai: pwbi-tray [flag]", "Ikon tray PWBI Edge Agent", "seberapa sering menanyakan status ke agen",
			"tampilkan versi lalu keluar"}},
	} {
		t.Run(tc.locale, func(t *testing.T) {
			t.Setenv("LC_ALL", tc.locale)
			var out bytes.Buffer
			if code := run([]string{"--help"}, &out); code != 0 {
				t.Errorf("exit %d", code)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("--help lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}
