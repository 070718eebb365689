package tray

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/pwbi/edge-agent/agent/config"
)

func TestLoadSettings(t *testing.T) {
	dir := tempDir(t)
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	defListen := config.Default().LocalAPI.Listen

	t.Run("reads listen and a relative data_dir", func(t *testing.T) {
		// Keys the tray does not know, and secrets in files it cannot
		// read, do not matter.
		p := write("a.toml", `version = 1
[agent]
data_dir = "data"
language = "id"
[moka]
api_key_file = "/nonexistent/secret"
[[checkout.tablets]]
name = "x"
token_sha256 = "00"
[local_api]
listen = "127.0.0.1:9999"
`)
		s, err := LoadSettings(p)
		if err != nil {
			t.Fatal(err)
		}
		if s.APIAddr != "127.0.0.1:9999" || s.DataDir != filepath.Join(dir, "data") ||
			s.LogsDir != filepath.Join(dir, "data", "logs") || s.ConfigPath != p || s.Language != "id" {
			t.Errorf("%+v", s)
		}
	})
	t.Run("absolute data_dir, default listen", func(t *testing.T) {
		abs := filepath.Join(dir, "abs")
		p := write("b.toml", "version = 1\n[agent]\ndata_dir = '"+abs+"'\n")
		s, err := LoadSettings(p)
		if err != nil || s.DataDir != abs || s.APIAddr != defListen || s.Language != "" {
			t.Errorf("%+v, %v", s, err)
		}
	})
	t.Run("broken file: defaults and an error", func(t *testing.T) {
		p := write("c.toml", "version = 1\n[local_api\nlisten = 3\n")
		s, err := LoadSettings(p)
		if err == nil || !strings.Contains(err.Error(), "c.toml") {
			t.Errorf("error %v", err)
		}
		if s.APIAddr != defListen || s.DataDir != config.DefaultDataDir() || s.ConfigPath != p {
			t.Errorf("%+v", s)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		s, err := LoadSettings(filepath.Join(dir, "none.toml"))
		if err == nil || s.APIAddr != defListen {
			t.Errorf("%+v, %v", s, err)
		}
	})
	t.Run("unreadable file", func(t *testing.T) {
		if runtime.GOOS == "windows" || os.Geteuid() == 0 {
			t.Skip("root reads everything; Windows has no mode bits")
		}
		p := write("d.toml", "[local_api]\nlisten = '127.0.0.1:1'\n")
		os.Chmod(p, 0)
		s, err := LoadSettings(p)
		if err == nil || s.APIAddr != defListen {
			t.Errorf("%+v, %v", s, err)
		}
	})
	t.Run("default path from the environment", func(t *testing.T) {
		p := write("e.toml", "[local_api]\nlisten = '127.0.0.1:4242'\n")
		t.Setenv(config.EnvPath, p)
		s, err := LoadSettings("")
		if err != nil || s.APIAddr != "127.0.0.1:4242" || s.ConfigPath != p {
			t.Errorf("%+v, %v", s, err)
		}
	})
}

// tempDir is t.TempDir without its cleanup failure under Wine 8, where
// os.RemoveAll fails with "Invalid function" (toolchain.md §4): these
// tests also run there (make test-windows).
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pwbi-tray-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
