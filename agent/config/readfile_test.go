package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// quickly runs f and fails the test if it has not returned within a
// generous deadline: what it guards against is blocking forever (a FIFO)
// or reading without end (/dev/zero), not slowness. unblock, if set, is
// called on timeout to release f.
func quickly(t *testing.T, what string, unblock func(), f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		if unblock != nil {
			unblock()
		}
		t.Fatalf("%s did not return: it blocks", what)
	}
}

func TestReadFileSafe(t *testing.T) {
	dir := t.TempDir()
	exact := filepath.Join(dir, "exact")
	writeFile(t, exact, strings.Repeat("x", 100))
	data, info, err := ReadFileSafe(exact, "test file", 100)
	if err != nil || len(data) != 100 || info.Size() != 100 {
		t.Fatalf("file of exactly the limit: %d bytes, %v", len(data), err)
	}

	over := filepath.Join(dir, "over")
	writeFile(t, over, strings.Repeat("x", 101))
	_, _, err = ReadFileSafe(over, "test file", 100)
	if !errors.Is(err, ErrTooLarge) || err.Error() != "test file "+over+" is larger than 100 bytes" {
		t.Errorf("file over the limit: %v", err)
	}

	_, _, err = ReadFileSafe(dir, "test file", 100)
	if !errors.Is(err, ErrNotRegular) || err.Error() != "test file "+dir+" is not a regular file (directory)" {
		t.Errorf("directory: %v", err)
	}

	_, _, err = ReadFileSafe(filepath.Join(dir, "missing"), "test file", 100)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), filepath.Join(dir, "missing")) {
		t.Errorf("missing file: %v", err)
	}
}

// A config file over 1 MiB is refused without being parsed, and the
// error says so.
func TestLoadRefusesOversizedConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	// Valid TOML, so only the size can be the problem.
	writeFile(t, path, "version = 1\n"+strings.Repeat("# padding padding padding padding\n", MaxFileSize/30))
	var err error
	quickly(t, "Load of an oversized file", nil, func() { _, err = Load(path) })
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Load = %v, want ErrTooLarge", err)
	}
	if want := "config file " + path + " is larger than 1 MiB"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q lacks %q", err, want)
	}
}

// A secret file over the limit is refused without its content in the
// problem, however large it is.
func TestSecretFileOversizedNoLeak(t *testing.T) {
	const secret = "HUGE-SECRET-VALUE"
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "tok"), strings.Repeat(secret, 2*MaxFileSize/len(secret)))
	cfgPath := filepath.Join(dir, "config.toml")
	writeFile(t, cfgPath, "version = 1\n[upstream]\ntoken_file = \"tok\"\n")
	var err error
	quickly(t, "Load with an oversized secret file", nil, func() { _, err = Load(cfgPath) })
	var probs Problems
	if !errors.As(err, &probs) || len(probs) != 1 || probs[0].Key != "upstream.token_file" {
		t.Fatalf("Load = %v, want one problem at upstream.token_file", err)
	}
	if want := "the secret file " + filepath.Join(dir, "tok") + " is larger than 64 KiB"; probs[0].Msg != want {
		t.Errorf("problem %q, want %q", probs[0].Msg, want)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("problem reveals the secret: %v", err)
	}
}

// symlinkOrSkip creates a symlink, or skips where the OS does not let the
// test (Windows without the privilege).
func symlinkOrSkip(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("cannot create symlinks here: %v", err)
	}
}

// A config file and a secret file that are symlinks to regular files are
// read through the links.
func TestSymlinksToRegularFiles(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	writeFile(t, filepath.Join(real, "token.txt"), "linked-token\n")
	writeFile(t, filepath.Join(real, "config.toml"), "version = 1\n[upstream]\nurl = \"https://up.example\"\ntoken_file = \"token.link\"\n")
	link := filepath.Join(dir, "config.toml")
	symlinkOrSkip(t, filepath.Join(real, "config.toml"), link)
	// Relative paths resolve against the directory of the path given,
	// the link's: the secret's link lives there.
	symlinkOrSkip(t, filepath.Join(real, "token.txt"), filepath.Join(dir, "token.link"))

	c, err := Load(link)
	if err != nil {
		t.Fatal(err)
	}
	if c.Upstream.Token.Value() != "linked-token" || c.Upstream.URL != "https://up.example" {
		t.Errorf("through the links: url %q, token read %v", c.Upstream.URL, c.Upstream.Token.Value() == "linked-token")
	}
	data, _, err := ReadFileSafe(link, "config file", MaxFileSize)
	if err != nil || !bytes.HasPrefix(data, []byte("version = 1\n")) {
		t.Errorf("ReadFileSafe through a link: %q %v", data, err)
	}
}

func TestSizeTextAndFileKind(t *testing.T) {
	for n, want := range map[int64]string{MaxFileSize: "1 MiB", 3 << 20: "3 MiB", 64 << 10: "64 KiB", 1536: "1536 bytes", 100: "100 bytes"} {
		if got := sizeText(n); got != want {
			t.Errorf("sizeText(%d) = %q, want %q", n, got, want)
		}
	}
	for m, want := range map[fs.FileMode]string{
		fs.ModeDir: "directory", fs.ModeNamedPipe: "named pipe", fs.ModeSocket: "socket",
		fs.ModeDevice | fs.ModeCharDevice: "character device", fs.ModeDevice: "device", fs.ModeIrregular: "special file",
	} {
		if got := fileKind(m); got != want {
			t.Errorf("fileKind(%v) = %q, want %q", m, got, want)
		}
	}
}
