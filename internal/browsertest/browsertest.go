// Package browsertest lets tests drive a real browser: Debian's headless
// Chromium (/usr/bin/chromium), through the DevTools protocol (chromedp).
//
// A test calls [Chromium] for a browser context, runs chromedp actions on it
// and may save what the page looks like with [Screenshot]. The browser is a
// fresh one per test, with a throwaway profile, stopped when the test ends.
//
// `make deps` installs the chromium package when run as root, so a missing
// browser fails the test on such a machine; only where it cannot be
// installed (not root, or no apt-get) is the test skipped.
//
// Only tests may import this package.
package browsertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian's chromium package puts the browser.
const ChromiumPath = "/usr/bin/chromium"

// Timeout bounds everything one test does with its browser.
const Timeout = 2 * time.Minute

// ArtifactsEnv, when set, is the directory screenshots go to instead of
// testdata/artifacts at the module root.
const ArtifactsEnv = "PWBI_TEST_ARTIFACTS"

// Chromium starts a headless Chromium for t and returns a chromedp context
// for its first tab; the browser stops when t ends. It skips t, saying why,
// only when the browser is missing and cannot be installed here; if it is
// missing on a machine where `make deps` would install it (root with
// apt-get), or fails to start, t fails.
func Chromium(t testing.TB) context.Context {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		if canInstall() {
			t.Fatalf("browser test: %s is missing: run `make deps` as root, which installs the Debian package chromium "+
				"(or: apt-get install --no-install-recommends chromium)", ChromiumPath)
		}
		t.Skipf("browser test skipped: %s is missing, and this machine cannot install it "+
			"(needs root and apt-get; `make deps` as root installs the chromium package)", ChromiumPath)
	}

	out := &logBuffer{}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // tests often run as root, where the sandbox cannot start
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true), // containers have a tiny /dev/shm
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-crash-reporter", true),
		// No UserDataDir: the allocator makes a fresh temporary profile
		// directory (--user-data-dir) and removes it, retrying while the
		// browser's helper processes let go of it.
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(out),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc() // waits for the browser process to exit
		if t.Failed() {
			t.Logf("chromium output:\n%s", out.String())
		}
	})
	// The first action starts the browser; it is tied to browserCtx, so it
	// must not run on a context with a shorter life.
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("browser test: starting %s: %v\n%s", ChromiumPath, err, out.String())
	}
	ctx, cancel := context.WithTimeout(browserCtx, Timeout)
	t.Cleanup(cancel)
	return ctx
}

// canInstall reports whether `make deps` could install the browser here.
func canInstall() bool {
	if os.Geteuid() != 0 {
		return false
	}
	_, err := exec.LookPath("apt-get")
	return err == nil
}

// Screenshot saves the whole page of ctx's tab as a PNG and returns its
// path. A relative name goes under [ArtifactsDir] (".png" is added if
// missing); an absolute one is used as is.
func Screenshot(ctx context.Context, name string) (string, error) {
	path := name
	if !filepath.IsAbs(path) {
		dir, err := ArtifactsDir()
		if err != nil {
			return "", err
		}
		path = filepath.Join(dir, name)
	}
	if !strings.EqualFold(filepath.Ext(path), ".png") {
		path += ".png"
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("screenshot: %w", err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 means PNG
	if err != nil {
		return "", fmt.Errorf("screenshot: %w", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return "", fmt.Errorf("screenshot: %w", err)
	}
	return path, nil
}

// ArtifactsDir is where tests leave files for a person to look at:
// $PWBI_TEST_ARTIFACTS if set, else testdata/artifacts at the module root
// (ignored by git).
func ArtifactsDir() (string, error) {
	if d := os.Getenv(ArtifactsEnv); d != "" {
		return filepath.Abs(d)
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "testdata", "artifacts"), nil
}

// ModuleRoot is the nearest directory at or above the working directory
// (a test's package directory) that holds go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("browsertest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// logBuffer keeps the browser's output (the last 64 KiB) for a failure
// message. The allocator writes from its own goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const maxLog = 64 << 10

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - maxLog; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
