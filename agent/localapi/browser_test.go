package localapi

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pwbi/edge-agent/internal/browsertest"
)

// TestDashboardInBrowser loads the dashboard in a real (headless) Chromium,
// checks what a person sees, and presses "Sync now" the way they would:
// with no JavaScript, through the HTML form and the 303 back to the page.
func TestDashboardInBrowser(t *testing.T) {
	ctx := browsertest.Chromium(t)

	st := busyStatus()
	st.State = StateOK
	st.Problems = nil
	st.Upstream.Online = true
	st.Upstream.LastError = ""
	st.Upstream.NextRetryAt = nil
	st.Upstream.LastSuccessAt = ptr(testNow.Add(-40 * time.Second))
	st.Queue.OldestPendingAt = ptr(testNow.Add(-3 * time.Minute))
	b := &fakeBackend{st: st}
	base := serveForBrowser(t, b)

	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#state")),
	); err != nil {
		t.Fatal(err)
	}
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"All good", "Kopi Senja Kemang", "Kopi Senja Bintaro", `<script>alert("x")</script> & Co`, "1,234"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page does not show %q:\n%s", want, body)
		}
	}
	pending, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#pending")))
	if err != nil || !strings.Contains(pending, "1,234") {
		t.Errorf("pending count: %q, %v", pending, err)
	}
	if strings.Contains(body, "Sync started") {
		t.Error("the page says a sync started before the button was pressed")
	}

	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#sync-now")),
		chromedp.WaitVisible(chromedp.CSS("#flash")),
	); err != nil {
		t.Fatal(err)
	}
	if n := b.syncs.Load(); n != 1 {
		t.Fatalf("SyncNow called %d times, want 1", n)
	}
	flash, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#flash")))
	if err != nil || !strings.Contains(flash, "Sync started") {
		t.Fatalf("after Sync now the page says %q (%v)", flash, err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || loc != base+"/?synced=1" {
		t.Errorf("after Sync now the page is %q (%v)", loc, err)
	}
	path, err := browsertest.Screenshot(ctx, "dashboard.png")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)

	// Pause and Resume work the same way.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#pause")),
		chromedp.WaitVisible(chromedp.CSS("#resume")),
	); err != nil {
		t.Fatal(err)
	}
	if b.pauses.Load() != 1 {
		t.Fatalf("Pause called %d times", b.pauses.Load())
	}
	body, _ = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if !strings.Contains(body, "Syncing is paused.") || !strings.Contains(body, "Paused") {
		t.Errorf("after Pause the page says:\n%s", body)
	}
	if _, err := browsertest.Screenshot(ctx, "dashboard-paused.png"); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#resume")),
		chromedp.WaitVisible(chromedp.CSS("#pause")),
	); err != nil {
		t.Fatal(err)
	}
	if b.resumes.Load() != 1 {
		t.Fatalf("Resume called %d times", b.resumes.Load())
	}

	// The other states, for a person to look at.
	for _, name := range []string{StateOffline, StateError, StateSyncing, "new"} {
		st := busyStatus()
		st.State = name
		switch name {
		case StateError:
			st.Config.Error = `config.toml:12: unknown key "upstream.tokne"`
			st.Problems = append(st.Problems, "The settings file has an error; the previous settings are still in use.")
		case StateSyncing:
			st.Problems = nil
			st.Upstream = UpstreamStatus{Configured: true, Online: true, LastSuccessAt: ptr(testNow)}
		case "new": // just installed, nothing set up
			st = Status{State: StateError, Version: "1.4.2", StartedAt: ptr(testNow.Add(-time.Minute)),
				Problems: []string{"Moka is not connected: run `pwbi-agent moka connect`", "No PWBI cloud address (upstream.url) is set"},
				Config:   ConfigStatus{Path: "/etc/pwbi-agent/config.toml", Generation: 1, LoadedAt: ptr(testNow.Add(-time.Minute))},
				Moka:     MokaStatus{Enabled: true}}
		}
		b.mu.Lock()
		b.st = st
		b.mu.Unlock()
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#state"))); err != nil {
			t.Fatal(err)
		}
		if _, err := browsertest.Screenshot(ctx, "dashboard-"+name+".png"); err != nil {
			t.Fatal(err)
		}
	}
}

// serveForBrowser serves the API for b on a loopback port until the test
// ends and returns its origin.
func serveForBrowser(t *testing.T, b Backend) string {
	t.Helper()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := NewServer(b, ServerOptions{Now: func() time.Time { return testNow }})
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}
