package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// Distinct values, so a leak names its source.
var secretValues = []string{"S3CRET-MOKA-KEY", "S3CRET-CLIENT", "S3CRET-UPSTREAM", "S3CRET-MOKKA", "S3CRET-FROM-FILE"}

func secretConfig(t *testing.T) *Config {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "tok"), secretValues[4]+"\n")
	src := fmt.Sprintf(`version = 1
[moka]
api_key = %q
client_secret = %q
[upstream]
token = %q
[checkout]
secret_key = %q
[local_api]
listen = "127.0.0.1:1"
`, secretValues[0], secretValues[1], secretValues[2], secretValues[3])
	c, err := Parse(filepath.Join(dir, "config.toml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if c.Moka.APIKey.Value() != secretValues[0] || c.Checkout.SecretKey.Value() != secretValues[3] {
		t.Fatal("secrets not decoded")
	}
	src2 := "version = 1\n[upstream]\ntoken_file = \"tok\"\n"
	c2, err := Parse(filepath.Join(dir, "config.toml"), []byte(src2))
	if err != nil {
		t.Fatal(err)
	}
	c.Moka.ClientSecret = c2.Upstream.Token // from a file
	return c
}

func assertNoSecret(t *testing.T, what, out string) {
	t.Helper()
	for _, s := range secretValues {
		if strings.Contains(out, s) {
			t.Errorf("%s reveals %s:\n%s", what, s, out)
		}
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	c := secretConfig(t)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%-20v"} {
		assertNoSecret(t, "fmt "+verb, fmt.Sprintf(verb, *c))
		assertNoSecret(t, "fmt "+verb+" pointer", fmt.Sprintf(verb, c))
		assertNoSecret(t, "fmt "+verb+" table", fmt.Sprintf(verb, c.Moka))
		assertNoSecret(t, "fmt "+verb+" secret", fmt.Sprintf(verb, c.Moka.APIKey))
	}
	assertNoSecret(t, "Sprint", fmt.Sprint(c.Moka.APIKey, c.Upstream))
	assertNoSecret(t, "Sprintln", fmt.Sprintln(c))

	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "json", string(j))
	var back struct {
		Moka struct {
			APIKey       string `json:"api_key"`
			PollInterval string `json:"poll_interval"`
		} `json:"moka"`
	}
	if err := json.Unmarshal(j, &back); err != nil || back.Moka.APIKey != "<secret>" || back.Moka.PollInterval != "5m" {
		t.Errorf("json = %s (%v)", j, err)
	}

	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "toml", buf.String())

	buf.Reset()
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "cfg", c, "key", c.Moka.APIKey)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "cfg", c, "key", c.Moka.APIKey)
	assertNoSecret(t, "slog", buf.String())

	// The secrets are still there for the code that uses them.
	if c.Upstream.Token.Value() != secretValues[2] || c.Moka.ClientSecret.Value() != secretValues[4] {
		t.Error("Value lost the secret")
	}
}

func TestSecretRendering(t *testing.T) {
	s := NewSecret("hunter2")
	for _, tt := range []struct{ got, want string }{
		{s.String(), "<secret>"},
		{fmt.Sprintf("%v", s), "<secret>"},
		{fmt.Sprintf("%q", s), `"<secret>"`},
		{fmt.Sprintf("%#v", s), `config.Secret("<secret>")`},
		{s.GoString(), `config.Secret("<secret>")`},
		{Secret{}.String(), ""},
		{fmt.Sprintf("%q", Secret{}), `""`},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	var got string
	if b, _ := json.Marshal(s); json.Unmarshal(b, &got) != nil || got != "<secret>" {
		t.Errorf("MarshalJSON = %s", b)
	}
	if b, _ := json.Marshal(Secret{}); string(b) != `""` {
		t.Errorf("MarshalJSON(empty) = %s", b)
	}
	if b, _ := s.MarshalText(); string(b) != "<secret>" {
		t.Errorf("MarshalText = %s", b)
	}
	if s.IsZero() || !(Secret{}).IsZero() || s.Value() != "hunter2" {
		t.Error("IsZero/Value")
	}
	if NewSecret("a") != NewSecret("a") || NewSecret("a") == NewSecret("b") {
		t.Error("Secret is not comparable by value")
	}
}

// TestProblemsNeverShowSecrets: every way a secret can be wrong in a file
// gives a problem that names the key but not the value.
func TestProblemsNeverShowSecrets(t *testing.T) {
	const s = "S3CRET-VALUE-123"
	for _, src := range []string{
		"version = 1\n[moka]\napi_key = " + s + "\n",         // unquoted
		"version = 1\n[upstream]\ntoken = \"" + s + "\" x\n", // trailing junk
		"version = 1\n[checkout]\nsecret_key = '" + s + "\n", // unterminated
		"version = 1\n[moka]\nclient_secret = " + s + "\"\n", // half-quoted
		"version = 1\n[moka]\napikey = \"" + s + "\"\n",      // misspelt key
		"version = 1\n[moka]\napi_key = [\"" + s + "\"]\n",   // wrong type
		"version = 1\n[moka]\napi_key = \"" + s + "\"\napi_key_file = \"x\"\n",
		"version = 1\n[upstream]\nurl = \"https://u:" + s + "@h.example\"\n",
		"version = 1\n[upstream]\nurl = \"" + s + "\"\n",
		"version = 1\n[upstream]\nurl = \"http://[" + s + "\"\n",
		"version = 1\n[[checkout.tablets]]\nname = \"a\"\ntoken_sha256 = \"" + s + "\"\n",
		"version = 1\ntoken = 123456789\n[upstream]\n",
	} {
		_, err := Parse("x.toml", []byte(src))
		if err == nil {
			t.Errorf("Parse(%q) succeeded", src)
			continue
		}
		if strings.Contains(err.Error(), s) || strings.Contains(err.Error(), "123456789") {
			t.Errorf("Parse(%q) reveals the secret: %v", src, err)
		}
	}
}
