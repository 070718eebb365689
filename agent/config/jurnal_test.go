package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 14: the [jurnal] section (SPEC §6.3).

func TestJurnalDefaultsAndFullSection(t *testing.T) {
	d := Default().Jurnal
	if d.Enabled || d.BaseURL != "https://api.mekari.com" || d.Mode != JurnalInvoice || d.CloseAfter.Duration != 2*time.Hour ||
		d.RequestsPerMinute != 60 || d.CustomerName != "Pelanggan Umum" || d.DepositAccounts["default"] != "Kas" {
		t.Fatalf("defaults %+v", d)
	}
	def := Default()
	if ok, reason := def.JurnalConfigured(); ok || !strings.Contains(reason, "jurnal.enabled = false") {
		t.Errorf("default: configured %v %q", ok, reason)
	}

	dir := t.TempDir()
	const secret = "jurnal-SECRET-77f1"
	if err := os.WriteFile(filepath.Join(dir, "jurnal.txt"), []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.toml")
	src := `version = 1
[jurnal]
enabled = true
client_id = "cid-1"
client_secret_file = "jurnal.txt"
mode = "daily_summary"
close_after = "3h"
requests_per_minute = 90
customer_name = "Walk-in"
outlets = ["101", "102"]
[jurnal.deposit_accounts]
default = "Kas Besar"
qris = "Bank BCA"
[jurnal.outlet_tags]
101 = "Kemang"
[jurnal.outlet_warehouses]
101 = "Gudang Kemang"
`
	c, err := Parse(path, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	j := c.Jurnal
	if !j.Enabled || j.ClientID != "cid-1" || j.ClientSecret.Value() != secret || j.ClientSecretFile != filepath.Join(dir, "jurnal.txt") ||
		j.Mode != JurnalDailySummary || j.CloseAfter.Duration != 3*time.Hour || j.RequestsPerMinute != 90 || j.CustomerName != "Walk-in" ||
		len(j.Outlets) != 2 || j.DepositAccounts["qris"] != "Bank BCA" || j.DepositAccounts["default"] != "Kas Besar" ||
		j.OutletTags["101"] != "Kemang" || j.OutletWarehouses["101"] != "Gudang Kemang" {
		t.Fatalf("parsed %+v", j)
	}
	if ok, _ := c.JurnalConfigured(); !ok {
		t.Error("enabled with credentials: not configured")
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), secret) {
		t.Error("the client secret shows in the config's output")
	}
}

func TestJurnalProblems(t *testing.T) {
	for _, c := range []struct {
		src, key, msg string
	}{
		{"mode = \"weekly\"", "jurnal.mode", `must be "invoice"`},
		{"close_after = \"25h\"", "jurnal.close_after", "between 0s and 24h"},
		{"requests_per_minute = 0", "jurnal.requests_per_minute", "between 1 and 6000"},
		{"customer_name = \" \"", "jurnal.customer_name", "must not be blank"},
		{"base_url = \"ftp://x\"", "jurnal.base_url", ""},
		{"enabled = true\nclient_id = \"c\"", "jurnal.client_id", "needs jurnal.client_secret"},
		{"enabled = true\nclient_secret = \"s\"", "jurnal.client_secret", "needs jurnal.client_id"},
		{"[jurnal.deposit_accounts]\nqris = \"Bank BCA\"", "jurnal.deposit_accounts.default", "must name the Jurnal cash or bank account"},
		{"[jurnal.deposit_accounts]\ndefault = 5", "jurnal.deposit_accounts.default", "a string"},
		{"[jurnal.deposit_accounts]\ndefault = \"Kas\"\nQRIS = \"Bank BCA\"\nqris = \"Kas Kecil\"", "jurnal.deposit_accounts.qris", "payment method \"QRIS\" again"},
		{"deposit_accounts = \"Kas\"", "jurnal.deposit_accounts", "a table of strings"},
		{"[jurnal.outlet_tags]\n101 = \"\"", "jurnal.outlet_tags.101", "must not be blank"},
		{"colour = \"red\"", "jurnal.colour", "unknown key"},
	} {
		_, err := Parse("c.toml", []byte("version = 1\n[jurnal]\n"+c.src+"\n"))
		var probs Problems
		if !errors.As(err, &probs) {
			t.Errorf("%q: error %v, want Problems", c.src, err)
			continue
		}
		found := false
		for _, p := range probs {
			if p.Key == c.key && strings.Contains(p.Msg, c.msg) && p.Line > 0 {
				found = true
			}
		}
		if !found {
			t.Errorf("%q: problems %v, want %s: …%s… with a line", c.src, probs, c.key, c.msg)
		}
	}
}
