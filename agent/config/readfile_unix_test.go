//go:build unix

package config

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// mkfifo creates a named pipe at path.
func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
}

// releaseFIFO unblocks a reader stuck in open(2) on the FIFO at path (used
// only when a test has already failed).
func releaseFIFO(path string) func() {
	return func() {
		if f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	}
}

// devZeroLink creates a symlink at path to /dev/zero, which never ends.
func devZeroLink(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skipf("no /dev/zero: %v", err)
	}
	if err := os.Symlink("/dev/zero", path); err != nil {
		t.Fatal(err)
	}
}

// Issue 10: a FIFO at the config path blocked the agent at start. Load
// now refuses it at once, naming the file and what it is.
func TestLoadRefusesFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	mkfifo(t, path)
	var err error
	quickly(t, "Load of a FIFO", releaseFIFO(path), func() { _, err = Load(path) })
	if !errors.Is(err, ErrNotRegular) {
		t.Fatalf("Load = %v, want ErrNotRegular", err)
	}
	if want := "config file " + path + " is not a regular file (named pipe)"; !strings.HasSuffix(err.Error(), want) {
		t.Errorf("error %q, want it to end in %q", err, want)
	}
}

// Issue 10: a symlink to /dev/zero ran the agent out of memory at start.
// Load now refuses it without reading, and says where the link leads.
func TestLoadRefusesDevZeroLink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	devZeroLink(t, path)
	var err error
	quickly(t, "Load of a link to /dev/zero", nil, func() { _, err = Load(path) })
	if !errors.Is(err, ErrNotRegular) {
		t.Fatalf("Load = %v, want ErrNotRegular", err)
	}
	if want := "config file " + path + " is not a regular file (character device /dev/zero)"; !strings.HasSuffix(err.Error(), want) {
		t.Errorf("error %q, want it to end in %q", err, want)
	}
}

// The same for *_file secrets: a FIFO and a link to /dev/zero are problems
// of their keys, found without blocking.
func TestSecretFileFIFOAndDevZero(t *testing.T) {
	dir := t.TempDir()
	mkfifo(t, filepath.Join(dir, "token.fifo"))
	devZeroLink(t, filepath.Join(dir, "mokka.key"))
	cfgPath := filepath.Join(dir, "config.toml")
	writeFile(t, cfgPath, "version = 1\n[upstream]\ntoken_file = \"token.fifo\"\n[checkout]\nsecret_key_file = \"mokka.key\"\n")
	var err error
	quickly(t, "Load with FIFO and /dev/zero secrets", releaseFIFO(filepath.Join(dir, "token.fifo")), func() { _, err = Load(cfgPath) })
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	for _, want := range []string{
		cfgPath + ":3: upstream.token_file: the secret file " + filepath.Join(dir, "token.fifo") + " is not a regular file (named pipe)",
		cfgPath + ":5: checkout.secret_key_file: the secret file " + filepath.Join(dir, "mokka.key") + " is not a regular file (character device /dev/zero)",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in\n%s", want, msg)
		}
	}
}

// The open itself must not block: if a FIFO replaces the file between the
// Stat and the open, openNoBlock returns at once and the type check on the
// open file refuses it.
func TestOpenNoBlockFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	mkfifo(t, path)
	var f *os.File
	var err error
	quickly(t, "openNoBlock of a FIFO without a writer", releaseFIFO(path), func() { f, err = openNoBlock(path) })
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if err := checkFile(path, "config file", fi, MaxFileSize); !errors.Is(err, ErrNotRegular) {
		t.Errorf("checkFile of the opened FIFO = %v, want ErrNotRegular", err)
	}
}

// A regular file that says it is empty but is not (Linux /proc) is still
// read only up to the limit: the read goes through a LimitReader.
func TestReadFileSafeLimitsTheRead(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	const path = "/proc/self/status"
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != 0 {
		t.Skipf("%s is not an empty-looking regular file here: %v", path, err)
	}
	if _, _, err := ReadFileSafe(path, "test file", 16); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ReadFileSafe(%s, 16) = %v, want ErrTooLarge", path, err)
	}
}
