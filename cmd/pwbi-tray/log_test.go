package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/internal/testutil"
)

// logFiles lists the files in dir: the log and its backups.
func logFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// The log goes to the file (its directory created), appended to what an
// earlier run wrote, readable by the user alone.
func TestLogFileAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "PWBI", "tray.log")
	var stderr bytes.Buffer
	for _, msg := range []string{"First run", "Second run"} {
		log, closeLog := newLogger(path, false, &stderr)
		log.Info(msg)
		log.Debug("Not at info level")
		closeLog()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); !strings.Contains(s, "First run") || !strings.Contains(s, "Second run") || strings.Contains(s, "Not at info") {
		t.Fatalf("log file:\n%s", s)
	}
	if stderr.Len() != 0 {
		t.Fatalf("stderr: %s", stderr.String())
	}
	if runtime.GOOS != "windows" {
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Errorf("log file mode %v, want 0600", fi.Mode().Perm())
		}
		if fi, _ := os.Stat(filepath.Dir(path)); fi.Mode().Perm() != 0o700 {
			t.Errorf("log directory mode %v, want 0700", fi.Mode().Perm())
		}
	}
}

// A file already over the size is set aside at start; one that grows over
// it while the tray runs too; a single backup is kept.
func TestLogFileRotates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tray.log")
	big := bytes.Repeat([]byte("old line\n"), (maxLogSizeMB<<20)/9+1)
	if err := os.WriteFile(path, big, 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	log, closeLog := newLogger(path, false, &stderr)
	defer closeLog()
	log.Info("After the start")
	if fi, err := os.Stat(path); err != nil || fi.Size() >= int64(len(big)) {
		t.Fatalf("the big file was not set aside: %v, %v", fi, err)
	}
	if files := logFiles(t, dir); len(files) != 2 {
		t.Fatalf("files after the start: %v, want the log and one backup", files)
	}

	// Grow past the size twice: the older backup is removed (by
	// lumberjack's cleanup goroutine: wait for it).
	line := strings.Repeat("x", 1000)
	for range 2 * (maxLogSizeMB << 10) {
		log.Info("Filler", "text", line)
	}
	testutil.WaitFor(t, "one backup left", time.Minute, func() bool { return len(logFiles(t, dir)) == 2 })
	if fi, err := os.Stat(path); err != nil || fi.Size() > maxLogSizeMB<<20 {
		t.Fatalf("the log is over the size: %v, %v", fi, err)
	}
	if stderr.Len() != 0 {
		t.Fatalf("stderr: %s", stderr.String())
	}
}

// A log file that cannot be opened is said on stderr, where the log goes
// instead.
func TestLogFileUnwritableFallsBackToStderr(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	log, closeLog := newLogger(filepath.Join(notADir, "tray.log"), false, &stderr)
	defer closeLog()
	log.Info("Still logged")
	if s := stderr.String(); !strings.Contains(s, "pwbi-tray: log file:") || !strings.Contains(s, "Still logged") {
		t.Fatalf("stderr:\n%s", s)
	}
}

// No path: standard error.
func TestLogToStderr(t *testing.T) {
	var stderr bytes.Buffer
	log, closeLog := newLogger("", true, &stderr)
	defer closeLog()
	log.Debug("Debug shown")
	if !strings.Contains(stderr.String(), "Debug shown") {
		t.Fatalf("stderr:\n%s", stderr.String())
	}
}
