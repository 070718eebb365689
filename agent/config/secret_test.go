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

	"github.com/pwbi/edge-agent/internal/secret"
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

// config.Secret is internal/secret's type (its rendering is tested there):
// NewSecret wraps a value that only Value shows.
func TestSecretIsTheSharedType(t *testing.T) {
	s := NewSecret("hunter2")
	if s.String() != secret.Mask || fmt.Sprintf("%#v", s) != `secret.Secret("<secret>")` || s.Value() != "hunter2" {
		t.Errorf("NewSecret renders %q / %#v", s.String(), s)
	}
	if s.IsZero() || !(Secret{}).IsZero() || NewSecret("a") != secret.New("a") {
		t.Error("IsZero / comparison")
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
