//go:build !windows

package tray

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/internal/testutil"
)

func TestDesktopOpener(t *testing.T) {
	dir := tempDir(t)
	log := filepath.Join(dir, "opened")
	fake := filepath.Join(dir, "fake-xdg-open")
	os.WriteFile(fake, []byte("#!/bin/sh\necho \"$@\" >> "+log+"\n"), 0o755)
	o := DesktopOpener{Command: fake}

	file := filepath.Join(dir, "config.toml")
	os.WriteFile(file, []byte("x"), 0o600)
	if err := o.OpenFile(file); err != nil {
		t.Fatal(err)
	}
	if err := o.OpenFolder(dir); err != nil {
		t.Fatal(err)
	}
	if err := o.OpenURL("http://127.0.0.1:8687/"); err != nil {
		t.Fatal(err)
	}
	waitFile(t, log, 3)

	if err := o.OpenFile(filepath.Join(dir, "missing.toml")); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing file: %v", err)
	}
	if os.Geteuid() != 0 {
		os.Chmod(file, 0)
		if err := o.OpenFile(file); err == nil || !strings.Contains(err.Error(), "sudoedit "+file) {
			t.Errorf("unreadable file: %v", err)
		}
		locked := filepath.Join(dir, "locked")
		os.Mkdir(locked, 0o300)
		if err := o.OpenFolder(locked); err == nil || !strings.Contains(err.Error(), "journalctl -u pwbi-agent") {
			t.Errorf("unreadable folder: %v", err)
		}
	}
	if err := (DesktopOpener{Command: filepath.Join(dir, "nope")}).OpenURL("http://x/"); err == nil {
		t.Error("a missing opener is not an error")
	}
}

// waitFile waits until path has n lines. The opener only starts its
// command, so each line is written by a process of its own: under load (a
// loaded CI machine, -race) starting them can take seconds, hence the long
// deadline, which a passing test never waits for.
func waitFile(t *testing.T, path string, n int) {
	t.Helper()
	testutil.WaitFor(t, fmt.Sprintf("%d lines in %s", n, path), time.Minute, func() bool {
		b, _ := os.ReadFile(path)
		return strings.Count(string(b), "\n") >= n
	})
}
