package config

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 12: checkout.tls and the second (registration) credential pair.

func TestCheckoutTLS(t *testing.T) {
	for _, tc := range []struct {
		listen       string
		tls          string // "" leaves the key out
		useTLS, warn bool
	}{
		{"127.0.0.1:8686", "", false, false},
		{"[::1]:8686", "", false, false},
		{"localhost:8686", "", false, false},
		{"127.0.0.1:8686", "false", false, false},
		{"192.168.1.10:8686", "", true, false},
		{"0.0.0.0:8686", "", true, false},
		{":8686", "", true, false},
		{"[fd00::10]:8686", "", true, false},
		{"cafe-pc.lan:8686", "", true, false},
		{"192.168.1.10:8686", "true", true, false},
		{"192.168.1.10:8686", "false", false, true},
		{"0.0.0.0:8686", "false", false, true},
	} {
		src := "version = 1\n[checkout]\nenabled = true\nlisten = \"" + tc.listen + "\"\n"
		if tc.tls != "" {
			src += "tls = " + tc.tls + "\n"
		}
		c := mustParse(t, src)
		if c.Checkout.UseTLS() != tc.useTLS || c.Checkout.PlainOnLAN() != tc.warn {
			t.Errorf("listen %s tls %q: UseTLS %v PlainOnLAN %v", tc.listen, tc.tls, c.Checkout.UseTLS(), c.Checkout.PlainOnLAN())
		}
	}
	if !Default().Checkout.TLS {
		t.Error("TLS is off by default")
	}
	_, err := Parse("bad.toml", []byte("version = 1\n[checkout]\ntls = \"no\"\n"))
	if err == nil || !strings.Contains(err.Error(), "bad.toml:3: checkout.tls: must be true or false, not a string") {
		t.Errorf("tls as a string: %v", err)
	}
}

func TestCheckoutRegistrationPair(t *testing.T) {
	const regKey = "reg-secret-0123456789"
	c := mustParse(t, "version = 1\n[checkout]\nstore_id = \"72\"\nsecret_key = \"k\"\nregistration_store_id = \"71\"\nregistration_secret_key = \""+regKey+"\"\n")
	if c.Checkout.RegistrationStoreID != "71" || c.Checkout.RegistrationSecretKey.Value() != regKey {
		t.Fatalf("pair: %+v", c.Checkout)
	}
	if b, _ := json.Marshal(c); strings.Contains(string(b), regKey) {
		t.Fatal("the JSON form shows the registration key")
	}

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.toml")
	writeFile(t, filepath.Join(dir, "reg.key"), "\ufeff"+regKey+"\r\n")
	writeFile(t, cfgPath, "version = 1\n[checkout]\nregistration_store_id = \"71\"\nregistration_secret_key_file = \"reg.key\"\n")
	c, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if c.Checkout.RegistrationSecretKey.Value() != regKey || c.Checkout.RegistrationSecretKeyFile != filepath.Join(dir, "reg.key") {
		t.Fatalf("from a file: %+v", c.Checkout)
	}

	for _, tc := range []struct{ src, want string }{
		{"version = 1\n[checkout]\nregistration_store_id = \"71\"\n",
			"bad.toml:3: checkout.registration_store_id: needs checkout.registration_secret_key (or registration_secret_key_file) too; leave both out to use store_id and secret_key"},
		{"version = 1\n[checkout]\nregistration_secret_key = \"" + regKey + "\"\n",
			"bad.toml:3: checkout.registration_secret_key: needs checkout.registration_store_id too; leave both out to use store_id and secret_key"},
		{"version = 1\n[checkout]\nregistration_store_id = \"71\"\nregistration_secret_key = \"x\"\nregistration_secret_key_file = \"reg.key\"\n",
			"bad.toml:5: checkout.registration_secret_key_file: set either checkout.registration_secret_key or checkout.registration_secret_key_file, not both"},
	} {
		_, err := Parse("bad.toml", []byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v", tc.src, err)
		}
		if err != nil && strings.Contains(err.Error(), regKey) {
			t.Errorf("a problem shows the key: %v", err)
		}
	}
}
