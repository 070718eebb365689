package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 13: the [nats] section (SPEC §6.2).

func TestNATSDefaultsAndFullSection(t *testing.T) {
	d := Default().NATS
	if d.Enabled || d.SubjectPrefix != "pwbi" || d.Stream != "PWBI" || d.Timeout.Duration != 30*time.Second || d.BatchSize != 1000 || d.MaxInFlight != 1000 {
		t.Fatalf("defaults %+v", d)
	}
	def := Default()
	if ok, reason := def.NATSConfigured(); ok || !strings.Contains(reason, "nats.enabled = false") {
		t.Errorf("default: configured %v %q", ok, reason)
	}

	dir := t.TempDir()
	const password = "nats-PW-2c9e41"
	for name, content := range map[string]string{"agent.creds": "creds", "ca.pem": "ca", "pw.txt": password + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "config.toml")
	src := `version = 1
[nats]
enabled = true
urls = ["tls://n1.example:4222", "n2.example:4222"]
creds_file = "agent.creds"
tls_ca_file = "ca.pem"
subject_prefix = "acme.pwbi"
stream = "ACME"
create_stream = true
timeout = "3s"
batch_size = 200
max_in_flight = 100
`
	c, err := Parse(path, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	n := c.NATS
	if !n.Enabled || len(n.URLs) != 2 || n.CredsFile != filepath.Join(dir, "agent.creds") || n.TLSCAFile != filepath.Join(dir, "ca.pem") ||
		n.SubjectPrefix != "acme.pwbi" || n.Stream != "ACME" || !n.CreateStream || n.Timeout.Duration != 3*time.Second || n.BatchSize != 200 || n.MaxInFlight != 100 {
		t.Fatalf("parsed %+v", n)
	}
	if ok, _ := c.NATSConfigured(); !ok {
		t.Error("enabled with urls: not configured")
	}

	// Password from a file, relative to the config; never shown.
	c, err = Parse(path, []byte("version = 1\n[nats]\nenabled = true\nurls = [\"nats://n1\"]\nuser = \"cafe-01\"\npassword_file = \"pw.txt\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.NATS.Password.Value() != password || c.NATS.PasswordFile != filepath.Join(dir, "pw.txt") {
		t.Fatalf("password file: %+v", c.NATS)
	}
	if b, _ := json.Marshal(c); strings.Contains(string(b), password) {
		t.Fatal("the JSON form shows the NATS password")
	}
}

func TestNATSProblems(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	for _, tc := range []struct{ body, want string }{
		{"enabled = true\n", "config.toml:2: nats.urls: must list at least one server"},
		{"urls = [\"http://n1\"]\n", "config.toml:3: nats.urls[0]: must start with nats://"},
		{"urls = [\"nats://u:SECRETPW@n1\"]\n", "config.toml:3: nats.urls[0]: must not contain a user name or password"},
		{"urls = [\"nats://n1\", \"nats://n1\"]\n", "listed twice"},
		{"urls = [\"nats://n1:0\"]\n", "port must be a number"},
		{"creds_file = \"a\"\nuser = \"u\"\npassword = \"p\"\n", "config.toml:4: nats.user: set only one way to authenticate: nats.creds_file or nats.user"},
		{"user = \"u\"\n", "config.toml:3: nats.user: needs nats.password"},
		{"password = \"p\"\n", "config.toml:3: nats.password: needs nats.user too"},
		{"tls_cert_file = \"c.pem\"\n", "config.toml:3: nats.tls_cert_file: needs nats.tls_key_file"},
		{"subject_prefix = \"pwbi.>\"\n", "config.toml:3: nats.subject_prefix: must not contain the wildcards"},
		{"subject_prefix = \"a..b\"\n", "empty token"},
		{"subject_prefix = \"$SYS\"\n", "reserved by NATS"},
		{"stream = \"A.B\"\n", "config.toml:3: nats.stream: must be printable ASCII without spaces, '.'"},
		{"timeout = \"0s\"\n", "config.toml:3: nats.timeout: must be longer than 0"},
		{"batch_size = 0\n", "config.toml:3: nats.batch_size: must be between 1 and 10000"},
		{"max_in_flight = 1001\n", "config.toml:3: nats.max_in_flight: must be between 1 and 1000"},
		{"enabled = true\nurls = [\"nats://n1\"]\ncreds_file = \"missing.creds\"\n", "config.toml:5: nats.creds_file:"},
		{"enabled = true\nurls = [\"nats://n1\"]\ncreds_fil = \"x\"\n", `nats.creds_fil: unknown key (did you mean "creds_file"?)`},
	} {
		_, err := Parse(path, []byte("version = 1\n[nats]\n"+tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v\nwant %q", tc.body, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "SECRETPW") {
			t.Errorf("%q: the problem repeats the password: %v", tc.body, err)
		}
	}
	// A disabled section does not need its files yet.
	if _, err := Parse(path, []byte("version = 1\n[nats]\ncreds_file = \"missing.creds\"\n")); err != nil {
		t.Errorf("disabled with a missing creds file: %v", err)
	}
}
