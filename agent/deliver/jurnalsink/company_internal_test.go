package jurnalsink

import (
	"strings"
	"testing"
)

// TestCompanyID: the company identity is one client id at one gateway. It
// is kept in the store, so it is the same in every process and version
// (pinned below: changing it would drop every install's caches at the
// upgrade); it holds neither the secret nor the client id in clear, and
// the secret, the mode and the walk-in contact are no part of it.
func TestCompanyID(t *testing.T) {
	base := Config{BaseURL: "https://api.mekari.com", ClientID: "cid-1", ClientSecret: "s3cret-value", Mode: ModeInvoice, CustomerName: "Pelanggan Umum"}
	id := companyID(base)
	const pinned = "a544cf967f9ac318e3c3eae0b08d1be4ab30316c9a9597d0c4fc994a640c2e9c"
	if id != pinned {
		t.Errorf("companyID = %s, want %s (the same in every process and version)", id, pinned)
	}
	if strings.Contains(id, "cid-1") || strings.Contains(id, "s3cret") {
		t.Errorf("companyID %q holds the credentials", id)
	}
	same := map[string]func(*Config){
		"another secret":      func(c *Config) { c.ClientSecret = "rotated" },
		"daily_summary":       func(c *Config) { c.Mode = ModeDailySummary },
		"another contact":     func(c *Config) { c.CustomerName = "Tamu" },
		"a trailing slash":    func(c *Config) { c.BaseURL += "/" },
		"surrounding spaces":  func(c *Config) { c.ClientID = " cid-1 " },
		"another rate limit":  func(c *Config) { c.RequestsPerMinute = 120 },
		"another outlet list": func(c *Config) { c.Outlets = []string{"101"} },
	}
	for name, mutate := range same {
		c := base
		mutate(&c)
		if got := companyID(c); got != id {
			t.Errorf("%s: companyID %s, want the same company %s", name, got, id)
		}
	}
	other := map[string]func(*Config){
		"another client id": func(c *Config) { c.ClientID = "cid-2" },
		"another gateway":   func(c *Config) { c.BaseURL = "https://sandbox-api.mekari.com" },
		// Length-prefixed parts: moving a character from one to the
		// other is another company.
		"parts shifted": func(c *Config) { c.BaseURL, c.ClientID = "https://api.mekari.comc", "id-1" },
	}
	for name, mutate := range other {
		c := base
		mutate(&c)
		if got := companyID(c); got == id || got == "" {
			t.Errorf("%s: companyID %q, want another company than %s", name, got, id)
		}
	}
	for _, c := range []Config{{BaseURL: "https://api.mekari.com"}, {ClientID: "cid-1"}} {
		if got := companyID(c); got != "" {
			t.Errorf("companyID(%+v) = %q, want none", c, got)
		}
	}
}
