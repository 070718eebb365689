package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/internal/testutil"
)

var tokenPattern = regexp.MustCompile(TokenPrefix + `[A-Za-z0-9_-]{43}`)

func tabletConfig(t *testing.T) string {
	t.Helper()
	addr := testutil.FreeAddr(t) // nothing answers there: no agent runs
	path := filepath.Join(t.TempDir(), "config.toml")
	data := "# the shop's agent\nversion = 1\n\n[checkout]\nenabled = true\nstore_id = \"72\"\nsecret_key = \"k\"\n\n[local_api]\nlisten = \"" + addr + "\"\n"
	if err := os.WriteFile(path, []byte(data), 0o640); err != nil {
		t.Fatal(err)
	}
	return path
}

func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestTabletAddListRemove(t *testing.T) {
	path := tabletConfig(t)
	code, out, errOut := run("tablet", "add", "Front counter", "--config", path)
	if code != 0 {
		t.Fatalf("add: %d %s %s", code, out, errOut)
	}
	tokens := tokenPattern.FindAllString(out, -1)
	if len(tokens) != 1 {
		t.Fatalf("want the token printed once:\n%s", out)
	}
	if !strings.ContainsAny(out, "▀▄█") {
		t.Error("no QR code")
	}
	data, _ := os.ReadFile(path)
	sum := sha256.Sum256([]byte(tokens[0]))
	if strings.Contains(string(data), tokens[0]) || !strings.Contains(string(data), hex.EncodeToString(sum[:])) {
		t.Fatalf("config:\n%s", data)
	}
	if !strings.HasPrefix(string(data), "# the shop's agent\n") {
		t.Error("comments lost")
	}
	if fi, _ := os.Stat(path); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".config.toml.tmp-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	cfg, err := config.Load(path)
	if err != nil || len(cfg.Checkout.Tablets) != 1 || cfg.Checkout.Tablets[0].Name != "Front counter" {
		t.Fatalf("load: %v %+v", err, cfg)
	}

	// Flags before the name, a second tablet.
	if code, out, errOut := run("tablet", "add", "--config", path, "Terrace"); code != 0 {
		t.Fatalf("add 2: %s %s", out, errOut)
	}
	// Duplicates (trimmed, any case) are refused and nothing changes.
	before, _ := os.ReadFile(path)
	if code, _, errOut := run("tablet", "add", " front COUNTER ", "--config", path); code != 1 || !strings.Contains(errOut, "exists") {
		t.Fatalf("duplicate: %d %s", code, errOut)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("a refused add changed the file")
	}

	code, out, _ = run("tablet", "list", "--config", path)
	if code != 0 || !strings.Contains(out, "Front counter") || !strings.Contains(out, "Terrace") ||
		!strings.Contains(out, hex.EncodeToString(sum[:])[:8]) || strings.Contains(out, hex.EncodeToString(sum[:])) {
		t.Fatalf("list: %s", out)
	}

	if code, out, errOut := run("tablet", "remove", "FRONT counter", "--config", path); code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("remove: %d %s %s", code, out, errOut)
	}
	cfg, err = config.Load(path)
	if err != nil || len(cfg.Checkout.Tablets) != 1 || cfg.Checkout.Tablets[0].Name != "Terrace" {
		t.Fatalf("after remove: %v %+v", err, cfg.Checkout.Tablets)
	}
	if code, _, errOut := run("tablet", "remove", "Nobody", "--config", path); code != 1 || !strings.Contains(errOut, "no tablet") {
		t.Fatalf("remove unknown: %d %s", code, errOut)
	}
}

func TestTabletRefusals(t *testing.T) {
	path := tabletConfig(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"tablet"}, 2, "Usage"},
		{[]string{"tablet", "fly"}, 2, "unknown tablet command"},
		{[]string{"tablet", "add", "--config", path}, 2, "one tablet name"},
		{[]string{"tablet", "add", "a", "b", "--config", path}, 2, "one tablet name"},
		{[]string{"tablet", "add", "   ", "--config", path}, 1, "empty"},
		{[]string{"tablet", "add", "bad\x07name", "--config", path}, 1, "control"},
		{[]string{"tablet", "add", strings.Repeat("n", 65), "--config", path}, 1, "longer"},
		{[]string{"tablet", "add", "x", "--config", filepath.Join(t.TempDir(), "none.toml")}, 1, "read config"},
	} {
		code, out, errOut := run(tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("%q: %d\n%s%s", tc.args, code, out, errOut)
		}
	}
	// An invalid config file is not edited.
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("version = 1\n[checkout]\ncolour = \"red\"\n"), 0o600)
	code, _, errOut := run("tablet", "add", "x", "--config", bad)
	if data, _ := os.ReadFile(bad); code != 1 || !strings.Contains(errOut, "checkout.colour") || strings.Contains(string(data), "tablets") {
		t.Fatalf("invalid config: %d %s", code, errOut)
	}
	if code, out, _ := run("tablet", "--help"); code != 0 || !strings.Contains(out, "Usage") {
		t.Errorf("help: %d", code)
	}
}

func TestWriteConfigAtomicRefusesConcurrentEdit(t *testing.T) {
	path := tabletConfig(t)
	old, _ := os.ReadFile(path)
	os.WriteFile(path, append(old, "# edited meanwhile\n"...), 0o640)
	if err := writeConfigAtomic(path, old, []byte("version = 1\n")); err == nil {
		t.Fatal("overwrote a concurrent edit")
	}
	if data, _ := os.ReadFile(path); !strings.Contains(string(data), "edited meanwhile") {
		t.Fatal("file changed")
	}
	if runtime.GOOS == "windows" {
		return
	}
	// A symlinked config is written where the link points.
	link := filepath.Join(t.TempDir(), "link.toml")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	cur, _ := os.ReadFile(path)
	if err := writeConfigAtomic(link, cur, []byte("version = 1\n")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
		t.Fatal("the link was replaced by a file")
	}
	if data, _ := os.ReadFile(path); string(data) != "version = 1\n" {
		t.Fatalf("target: %q", data)
	}
}
