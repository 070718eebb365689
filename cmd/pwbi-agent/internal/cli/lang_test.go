package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/internal/i18n"
)

// TestMain pins the locale: without agent.language in a test's config,
// the texts are the locale's, and the tests read English.
func TestMain(m *testing.M) {
	os.Setenv("LC_ALL", "C.UTF-8")
	os.Exit(m.Run())
}

func TestConfigArg(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"status"}, ""},
		{[]string{"status", "--config", "/a.toml"}, "/a.toml"},
		{[]string{"queue", "stats", "-config=/b.toml", "--sink", "nats"}, "/b.toml"},
		{[]string{"import", "--config=c.toml"}, "c.toml"},
		{[]string{"tablet", "add", "--", "--config", "x"}, ""},
		{[]string{"status", "--config"}, ""},
	} {
		if got := configArg(tc.args); got != tc.want {
			t.Errorf("configArg(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

// TestCommandLanguage: agent.language of the file decides; "auto", a file
// this user cannot read or a broken one follow the locale.
func TestCommandLanguage(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	id := write("id.toml", "version = 1\n[agent]\nlanguage = \"id\"\n")
	en := write("en.toml", "version = 1\n[agent]\nlanguage = \"en\"\n")
	auto := write("auto.toml", "version = 1\n[agent]\nlanguage = \"auto\"\n")
	broken := write("broken.toml", "version = 1\n[agent\nlanguage = \"en\"\n")
	for _, tc := range []struct {
		locale string
		args   []string
		want   string
	}{
		{"C.UTF-8", []string{"status", "--config", id}, "id"},
		{"id_ID.UTF-8", []string{"status", "--config", en}, "en"},
		{"id_ID.UTF-8", []string{"status", "--config=" + auto}, "id"},
		{"en_US.UTF-8", []string{"status", "--config=" + auto}, "en"},
		{"id_ID.UTF-8", []string{"status", "--config", broken}, "id"},
		{"id_ID.UTF-8", []string{"status", "--config", filepath.Join(dir, "missing.toml")}, "id"},
		{"C", []string{"status", "--config", filepath.Join(dir, "missing.toml")}, "en"},
	} {
		t.Setenv("LC_ALL", tc.locale)
		if got := commandLanguage(tc.args); got != tc.want {
			t.Errorf("LC_ALL=%s %q: %q, want %q", tc.locale, tc.args, got, tc.want)
		}
	}
}

// TestPrintDefaultsEnglishAsFlag: in English, printDefaults prints what the
// flag package does.
func TestPrintDefaultsEnglishAsFlag(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.String("config", "", "configuration file (default /etc/x)")
	fs.String("sink", "upstream", "the `NAME` of a sink")
	fs.Bool("wait", false, "wait")
	fs.Bool("on", true, "on")
	fs.Int("limit", 100, "show at most this many")
	fs.Int("zero", 0, "zero")
	fs.Duration("timeout", 10*time.Minute, "how long\nto wait")
	var want, got bytes.Buffer
	fs.SetOutput(&want)
	fs.PrintDefaults()
	fs.SetOutput(&got)
	printDefaults(fs, i18n.New(i18n.English))
	if got.String() != want.String() {
		t.Errorf("printDefaults\n%s\nflag.PrintDefaults\n%s", got.String(), want.String())
	}
	got.Reset()
	printDefaults(fs, i18n.New(i18n.Indonesian))
	if !bytes.Contains(got.Bytes(), []byte(`(bawaan "upstream")`)) || !bytes.Contains(got.Bytes(), []byte("(bawaan 10m0s)")) {
		t.Errorf("Indonesian defaults:\n%s", got.String())
	}
}
