package tray

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pwbi/edge-agent/agent/localapi"
)

// fakeAgent is a Client whose answers the test sets.
type fakeAgent struct {
	mu      sync.Mutex
	st      localapi.Status
	err     error
	polls   int
	calls   []string
	failAct error
}

func (f *fakeAgent) set(st localapi.Status, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st, f.err = st, err
}

func (f *fakeAgent) Status(ctx context.Context) (localapi.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls++
	return f.st, f.err
}

func (f *fakeAgent) act(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if f.failAct != nil {
		return f.failAct
	}
	f.calls = append(f.calls, name)
	switch name {
	case "pause":
		f.st.State = localapi.StatePaused
	case "resume":
		f.st.State = localapi.StateOK
	}
	return nil
}

func (f *fakeAgent) Sync(ctx context.Context) error   { return f.act("sync") }
func (f *fakeAgent) Pause(ctx context.Context) error  { return f.act("pause") }
func (f *fakeAgent) Resume(ctx context.Context) error { return f.act("resume") }

func (f *fakeAgent) snapshot() (polls int, calls []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.polls, append([]string(nil), f.calls...)
}

// fakeUI records what the App showed.
type fakeUI struct {
	mu       sync.Mutex
	icons    []Icon
	tooltips []string
	menus    [][]MenuItem
}

func (u *fakeUI) SetIcon(i Icon) { u.mu.Lock(); u.icons = append(u.icons, i); u.mu.Unlock() }
func (u *fakeUI) SetTooltip(s string) {
	u.mu.Lock()
	u.tooltips = append(u.tooltips, s)
	u.mu.Unlock()
}
func (u *fakeUI) SetMenu(m []MenuItem) { u.mu.Lock(); u.menus = append(u.menus, m); u.mu.Unlock() }

func (u *fakeUI) icon() Icon {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.icons) == 0 {
		return ""
	}
	return u.icons[len(u.icons)-1]
}

func (u *fakeUI) item(id ItemID) MenuItem {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.menus) == 0 {
		return MenuItem{}
	}
	for _, it := range u.menus[len(u.menus)-1] {
		if it.ID == id {
			return it
		}
	}
	return MenuItem{}
}

func (u *fakeUI) lines() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var s []string
	for _, it := range u.menus[len(u.menus)-1] {
		if strings.HasPrefix(string(it.ID), "line") && it.Visible {
			s = append(s, it.Label)
		}
	}
	return strings.Join(s, "|")
}

// fakeOpener records what was opened.
type fakeOpener struct {
	mu     sync.Mutex
	opened []string
	err    error
}

func (o *fakeOpener) rec(kind, s string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.opened = append(o.opened, kind+" "+s)
	return o.err
}
func (o *fakeOpener) OpenURL(u string) error    { return o.rec("url", u) }
func (o *fakeOpener) OpenFile(p string) error   { return o.rec("file", p) }
func (o *fakeOpener) OpenFolder(p string) error { return o.rec("folder", p) }

type harness struct {
	agent  *fakeAgent
	ui     *fakeUI
	open   *fakeOpener
	app    *App
	quit   chan struct{}
	log    *bytes.Buffer
	cancel context.CancelFunc
	done   chan error
}

// start runs an App against fakes, in English. Call it inside a synctest
// bubble.
func start(t *testing.T, st localapi.Status, err error) *harness {
	t.Helper()
	return startIn(t, "en", st, err)
}

// startIn is start with the tray's language setting lang (Options.Language).
func startIn(t *testing.T, lang string, st localapi.Status, err error) *harness {
	t.Helper()
	h := &harness{agent: &fakeAgent{st: st, err: err}, ui: &fakeUI{}, open: &fakeOpener{},
		quit: make(chan struct{}), log: &bytes.Buffer{}, done: make(chan error, 1)}
	var logMu sync.Mutex
	h.app = New(Options{
		Client: h.agent, BaseURL: "http://127.0.0.1:8687",
		ConfigPath: "/etc/pwbi-agent/config.toml", LogsDir: "/var/lib/pwbi-agent/logs",
		Open: h.open, Quit: func() { close(h.quit) },
		Log: slog.New(slog.NewTextHandler(lockedWriter{&logMu, h.log}, nil)),
		// Pinned: the texts these tests check must not depend on this
		// machine's locale.
		Language: lang,
	})
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.app.Run(ctx, h.ui) }()
	t.Cleanup(func() {
		cancel()
		if err := <-h.done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	synctest.Wait()
	return h
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestAppShowsStateAndPolls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, localapi.Status{State: "ok"}, nil)
		if h.ui.icon() != IconOK || h.ui.item(ItemHeader).Label != "PWBI Agent: all good" {
			t.Fatalf("icon %q header %q", h.ui.icon(), h.ui.item(ItemHeader).Label)
		}
		if len(h.ui.tooltips) != 1 || len(h.ui.menus) != 1 {
			t.Errorf("first poll: %d tooltips, %d menus", len(h.ui.tooltips), len(h.ui.menus))
		}

		// Nothing changes: the UI is not touched again.
		time.Sleep(10 * time.Second)
		synctest.Wait()
		polls, _ := h.agent.snapshot()
		if polls != 4 { // t=0, 3, 6, 9
			t.Errorf("%d polls in 10 s, want 4 (every 3 s)", polls)
		}
		if len(h.ui.icons) != 1 || len(h.ui.menus) != 1 {
			t.Errorf("unchanged status redrawn: %d icons, %d menus", len(h.ui.icons), len(h.ui.menus))
		}

		h.agent.set(localapi.Status{State: "syncing"}, nil)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if h.ui.icon() != IconSyncing {
			t.Errorf("icon %q after the state changed", h.ui.icon())
		}
	})
}

// TestAppAgentDownAndBack: the tray shows "Agent not running", retries with
// backoff, and recovers as soon as the agent answers again.
func TestAppAgentDownAndBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		down := fmt.Errorf("%w at 127.0.0.1:8687", localapi.ErrNotRunning)
		h := start(t, localapi.Status{}, down)
		if h.ui.icon() != IconDown || h.ui.item(ItemHeader).Label != "Agent not running" {
			t.Fatalf("icon %q header %q", h.ui.icon(), h.ui.item(ItemHeader).Label)
		}
		if it := h.ui.item(ItemSync); it.Enabled {
			t.Error("Sync now enabled while the agent is down")
		}
		if it := h.ui.item(ItemConfig); !it.Enabled {
			t.Error("Open config file disabled while the agent is down")
		}

		// Retries 1, 2, 4, 8, 10, 10 s after each failure.
		var times []time.Duration
		begin := time.Now()
		for polls, _ := h.agent.snapshot(); len(times) < 6; {
			time.Sleep(100 * time.Millisecond)
			synctest.Wait()
			if p, _ := h.agent.snapshot(); p != polls {
				polls = p
				times = append(times, time.Since(begin).Round(100*time.Millisecond))
			}
		}
		want := []time.Duration{1, 3, 7, 15, 25, 35}
		for i := range want {
			if times[i] != want[i]*time.Second {
				t.Fatalf("retries at %v, want %v s", times, want)
			}
		}
		if n := strings.Count(h.log.String(), "Agent not reachable"); n != 1 {
			t.Errorf("the same failure was logged %d times", n)
		}

		// The agent comes back: shown at the next retry, at most 10 s.
		h.agent.set(localapi.Status{State: "ok"}, nil)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if h.ui.icon() != IconOK {
			t.Errorf("icon %q after the agent came back", h.ui.icon())
		}
		if !strings.Contains(h.log.String(), "Agent reachable again") {
			t.Errorf("log:\n%s", h.log)
		}
		if !strings.Contains(h.log.String(), `"Tray state" icon=down`) || !strings.Contains(h.log.String(), `"Tray state" icon=ok`) {
			t.Errorf("state changes not logged:\n%s", h.log)
		}
	})
}

func TestAppActions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, localapi.Status{State: "ok", Moka: localapi.MokaStatus{Enabled: true, Configured: true, NeedsAuthorization: true}}, nil)
		if it := h.ui.item(ItemConnectMoka); !it.Visible || !it.Enabled {
			t.Errorf("Connect Moka %+v", it)
		}

		h.app.Click(ItemSync)
		synctest.Wait()
		polls, calls := h.agent.snapshot()
		if strings.Join(calls, ",") != "sync" || polls != 2 {
			t.Errorf("after Sync now: calls %v, %d polls (want an immediate poll)", calls, polls)
		}

		h.app.Click(ItemPause)
		synctest.Wait()
		if h.ui.icon() != IconPaused || h.ui.item(ItemPause).Label != "Resume syncing" || h.ui.item(ItemSync).Enabled {
			t.Errorf("after Pause: icon %q, %+v, %+v", h.ui.icon(), h.ui.item(ItemPause), h.ui.item(ItemSync))
		}
		h.app.Click(ItemPause)
		synctest.Wait()
		if _, calls := h.agent.snapshot(); strings.Join(calls, ",") != "sync,pause,resume" {
			t.Errorf("calls %v", calls)
		}
		if h.ui.icon() != IconOK || h.ui.item(ItemPause).Label != "Pause syncing" {
			t.Errorf("after Resume: icon %q, %+v", h.ui.icon(), h.ui.item(ItemPause))
		}

		for _, id := range []ItemID{ItemDashboard, ItemConnectMoka, ItemConfig, ItemLogs} {
			h.app.Click(id)
			synctest.Wait()
		}
		want := "url http://127.0.0.1:8687/|url http://127.0.0.1:8687/oauth/moka/start|" +
			"file /etc/pwbi-agent/config.toml|folder /var/lib/pwbi-agent/logs"
		h.open.mu.Lock()
		got := strings.Join(h.open.opened, "|")
		h.open.mu.Unlock()
		if got != want {
			t.Errorf("opened\n got %s\nwant %s", got, want)
		}

		h.app.Click(ItemQuit)
		select {
		case <-h.quit:
		default:
			t.Error("Quit did not quit")
		}
	})
}

// TestAppActionFailureNotice: a failed action shows in the menu for a
// while, then goes away.
func TestAppActionFailureNotice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, localapi.Status{State: "ok"}, nil)
		h.agent.mu.Lock()
		h.agent.failAct = errors.New("local api /v1/sync: the agent is paused: resume it first (409)")
		h.agent.mu.Unlock()
		h.app.Click(ItemSync)
		synctest.Wait()
		if got := h.ui.lines(); !strings.Contains(got, "Sync now failed: local api /v1/sync") {
			t.Errorf("lines %q", got)
		}
		h.open.mu.Lock()
		h.open.err = errors.New(`xdg-open: exec: "xdg-open": executable file not found in $PATH`)
		h.open.mu.Unlock()
		h.app.Click(ItemLogs)
		synctest.Wait()
		if got := h.ui.lines(); !strings.Contains(got, "Open logs folder failed: xdg-open") {
			t.Errorf("lines %q", got)
		}
		// Gone at the first poll after 30 s.
		time.Sleep(34 * time.Second)
		synctest.Wait()
		if got := h.ui.lines(); strings.Contains(got, "failed") {
			t.Errorf("notice still shown after 34 s: %q", got)
		}
	})
}

func TestBackoff(t *testing.T) {
	var got []time.Duration
	for n := 1; n <= 7; n++ {
		got = append(got, retryWait(time.Second, 15*time.Second, n))
	}
	want := []time.Duration{1, 2, 4, 8, 15, 15, 15}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("backoff %v", got)
		}
	}
}

// logTap is an io.Writer for a slog handler: it is called with each
// record as it is written.
type logTap func(line string)

func (f logTap) Write(p []byte) (int, error) { f(string(p)); return len(p), nil }

// TestAppLogsStateOnceShown: "Tray state" is logged once the UI has the
// whole state, its menu included. The desktop tests wait for that line and
// then pick menu entries by position: logged before SetMenu, the entry
// they picked could still be the old menu's (Sync now greyed while
// paused).
func TestAppLogsStateOnceShown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		agent := &fakeAgent{st: localapi.Status{State: "ok"}}
		ui := &fakeUI{}
		var mu sync.Mutex
		var shownAtLog []string // the menu's header and pause entry when "Tray state" was logged
		tap := logTap(func(line string) {
			if strings.Contains(line, `msg="Tray state"`) {
				mu.Lock()
				shownAtLog = append(shownAtLog, ui.item(ItemHeader).Label+" / "+ui.item(ItemPause).Label)
				mu.Unlock()
			}
		})
		app := New(Options{Client: agent, Open: &fakeOpener{}, Quit: func() {},
			Log: slog.New(slog.NewTextHandler(tap, nil)), Language: "en"})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- app.Run(ctx, ui) }()
		synctest.Wait()
		app.Click(ItemPause)
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		want := []string{"PWBI Agent: all good / Pause syncing", "PWBI Agent: paused / Resume syncing"}
		if !slices.Equal(shownAtLog, want) {
			t.Errorf("menu when the state was logged:\n got %q\nwant %q", shownAtLog, want)
		}
	})
}

// summaryAgent is a fakeAgent that also serves the day summary.
type summaryAgent struct {
	*fakeAgent
	sum  localapi.Summary
	serr error
}

func (f *summaryAgent) setSummary(sum localapi.Summary, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sum, f.serr = sum, err
}

func (f *summaryAgent) Summary(ctx context.Context, days int) (localapi.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sum, f.serr
}

// stoppingAgent is a summaryAgent whose summary read is interrupted by
// the tray stopping (quit, logout): the read fails with the context's
// error, as the local API client's does.
type stoppingAgent struct {
	*summaryAgent
	stop func()
}

func (f *stoppingAgent) Summary(ctx context.Context, days int) (localapi.Summary, error) {
	f.stop()
	<-ctx.Done()
	return localapi.Summary{}, fmt.Errorf("local API: %w", ctx.Err())
}

// A tray stopped while it reads the day summary ends quietly. Regression:
// the read's context error was logged as "Day summary not readable" at
// every quit that came mid-read.
func TestAppStoppedDuringSummaryRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		agent := &stoppingAgent{summaryAgent: &summaryAgent{fakeAgent: &fakeAgent{st: localapi.Status{State: "ok"}}}, stop: cancel}
		var log bytes.Buffer
		var logMu sync.Mutex
		app := New(Options{Client: agent, Open: &fakeOpener{}, Quit: func() {},
			Log: slog.New(slog.NewTextHandler(lockedWriter{&logMu, &log}, nil)), Language: "en"})
		if err := app.Run(ctx, &fakeUI{}); err != nil {
			t.Fatalf("Run: %v", err)
		}
		logMu.Lock()
		defer logMu.Unlock()
		if strings.Contains(log.String(), "Day summary not readable") {
			t.Errorf("a stop logged as a failed read:\n%s", log.String())
		}
	})
}

// The today line survives a failed read of the summary for a minute (it
// did blink away at every slow answer), then says the figures cannot be
// read rather than show old ones; the failure is logged once, and its end.
func TestAppTodayLineSurvivesAFailedRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		agent := &summaryAgent{fakeAgent: &fakeAgent{st: localapi.Status{State: "ok", Queue: localapi.QueueStatus{Pending: 7}}}}
		agent.setSummary(todaySummary(86, "1250000"), nil)
		ui := &fakeUI{}
		var log bytes.Buffer
		var logMu sync.Mutex
		app := New(Options{Client: agent, Open: &fakeOpener{}, Quit: func() {},
			Log: slog.New(slog.NewTextHandler(lockedWriter{&logMu, &log}, nil)), Language: "en"})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- app.Run(ctx, ui) }()
		synctest.Wait()
		const today = "Today: Rp 1,250,000 · 86 sales"
		if !strings.Contains(ui.lines(), today) {
			t.Fatalf("lines %q: no today line", ui.lines())
		}
		agent.setSummary(localapi.Summary{}, errors.New("local API: timeout"))
		for range 5 { // 15 s of failed reads
			time.Sleep(3 * time.Second)
			synctest.Wait()
			if !strings.Contains(ui.lines(), today) {
				t.Fatalf("lines %q: the today line went at a failed read", ui.lines())
			}
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := ui.lines(); strings.Contains(got, "Rp") || !strings.Contains(got, "Today: sales figures cannot be read right now") {
			t.Errorf("lines %q: a minute-old figure still shown, or no word of why", got)
		}
		agent.setSummary(todaySummary(90, "1300000"), nil)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if !strings.Contains(ui.lines(), "Today: Rp 1,300,000 · 90 sales") {
			t.Errorf("lines %q: no today line once the summary reads again", ui.lines())
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		logMu.Lock()
		defer logMu.Unlock()
		if n := strings.Count(log.String(), "Day summary not readable"); n != 1 {
			t.Errorf("the failure was logged %d times, want once:\n%s", n, log.String())
		}
		if !strings.Contains(log.String(), "Day summary readable again") {
			t.Error("the recovery was not logged")
		}
	})
}
