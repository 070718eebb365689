package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pwbi/edge-agent/internal/browsertest"
	"github.com/pwbi/edge-agent/internal/testutil"
)

// TestDashboardFromRunningAgent: headless Chromium loads the dashboard of
// the real binary, finds the outlets and the queue on it, and its "Sync
// now" button makes the agent poll Moka.
func TestDashboardFromRunningAgent(t *testing.T) {
	ctx := browsertest.Chromium(t)
	m := startMoka(t, 3, 5, 20)
	e := newEnvWith(t, mokaSection(m, 5))
	e.up.SetDown(true) // keep records pending, so the queue has a number to show
	e.start(t)
	testutil.WaitFor(t, "first sync", 120*time.Second, func() bool {
		st, err := e.status(t)
		return err == nil && len(st.Moka.Outlets) == 3 && st.Moka.Outlets[2].LastSyncAt != nil && st.Queue.Pending > 0
	})
	st, err := e.status(t)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + e.apiAddr
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#state"))); err != nil {
		t.Fatal(err)
	}
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	pending, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#pending")))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range st.Moka.Outlets {
		if !strings.Contains(body, o.Name) {
			t.Errorf("outlet %q not on the page", o.Name)
		}
	}
	if want := commas(st.Queue.Pending); !strings.Contains(pending, want) {
		t.Errorf("pending shows %q, want %s", pending, want)
	}
	if path, err := browsertest.Screenshot(ctx, "dashboard-agent.png"); err != nil {
		t.Error(err)
	} else {
		t.Logf("screenshot: %s", path)
	}

	before := len(m.Requests())
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#sync-now")), chromedp.WaitVisible(chromedp.CSS("#flash"))); err != nil {
		t.Fatal(err)
	}
	flash, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#flash")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(flash, "Sync started") {
		t.Errorf("after Sync now the page says %q", flash)
	}
	// poll_interval is an hour: only the button can have started a poll.
	testutil.WaitFor(t, "a Moka poll after Sync now", 30*time.Second, func() bool { return len(m.Requests()) > before })
	if path, err := browsertest.Screenshot(ctx, "dashboard-agent-synced.png"); err == nil {
		t.Logf("screenshot: %s", path)
	}
}

// commas renders n as the dashboard does: 1234 → "1,234".
func commas(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
