package tray

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/internal/backoff"
	"github.com/pwbi/edge-agent/internal/i18n"
)

// summaryClient is a Client that can fetch the day summary (the local API
// client can).
type summaryClient interface {
	Summary(ctx context.Context, days int) (localapi.Summary, error)
}

// Client is the part of the local API the tray uses; *localapi.Client
// implements it.
type Client interface {
	Status(ctx context.Context) (localapi.Status, error)
	Sync(ctx context.Context) error
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
}

var _ Client = (*localapi.Client)(nil)

// UI is what shows the view: the systray glue, or a fake in tests. App
// calls it from one goroutine at a time, and only when something changed.
type UI interface {
	SetIcon(Icon)
	SetTooltip(string)
	// SetMenu gets the whole menu each time, always with the same IDs in
	// the same order (see View.Menu).
	SetMenu([]MenuItem)
}

// Opener opens things on the desktop for the person at the PC.
type Opener interface {
	OpenURL(url string) error
	OpenFile(path string) error
	OpenFolder(path string) error
}

// Options configure an App. Client, Open and Quit are required.
type Options struct {
	Client Client
	// BaseURL is the local API's origin, for the dashboard and the Moka
	// connect page (localapi.Client.BaseURL).
	BaseURL    string
	ConfigPath string // "Open config file"
	LogsDir    string // "Open logs folder"
	Open       Opener
	Quit       func() // ends the tray (systray.Quit)
	Log        *slog.Logger
	// Language is agent.language as the config file says it ("auto",
	// "id", "en"; "" is "auto"), for when the agent does not answer; while
	// it does, the setting it reports wins. "auto" is this desktop's
	// locale (i18n.OSLanguage).
	Language string

	// Interval is the status poll period while the agent answers
	// (default 3 s). While it does not, the tray retries after
	// RetryMin, doubling up to RetryMax (defaults 1 s and 10 s), so that a
	// restarted agent shows up within seconds and a stopped one costs
	// nothing.
	Interval, RetryMin, RetryMax time.Duration
	// RequestTimeout bounds each call to the agent (default 3 s).
	RequestTimeout time.Duration
	// NoticeFor is how long the result of a failed action stays in the
	// menu (default 30 s).
	NoticeFor time.Duration
}

// App is the tray's behaviour: it polls the agent, turns the status into a
// View, hands changes to the UI, and carries out menu clicks. It is safe
// for concurrent use; Click may be called from any goroutine.
type App struct {
	o    Options
	log  *slog.Logger
	wake chan struct{}

	mu         sync.Mutex
	view       View
	haveView   bool
	notice     string
	noticeTill time.Time
	// language is the agent.language setting last reported by the agent,
	// kept while it does not answer so that the menu does not change
	// language when the agent stops.
	language string
}

// New returns an App; call Run to start it.
func New(o Options) *App {
	if o.Interval <= 0 {
		o.Interval = 3 * time.Second
	}
	if o.RetryMin <= 0 {
		o.RetryMin = time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 10 * time.Second
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 3 * time.Second
	}
	if o.NoticeFor <= 0 {
		o.NoticeFor = 30 * time.Second
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &App{o: o, log: log, wake: make(chan struct{}, 1)}
}

// Run polls the agent and updates ui until ctx is canceled; it returns nil
// then.
func (a *App) Run(ctx context.Context, ui UI) error {
	var (
		shown     View
		shownMenu []MenuItem
		first     = true
		failures  int
		lastErr   string
		// The last day summary read, when, and the error of the last
		// failed read (logged once per kind).
		lastSum localapi.Summary
		sumAt   time.Time
		sumErr  string
	)
	for {
		rctx, cancel := context.WithTimeout(ctx, a.o.RequestTimeout)
		st, err := a.o.Client.Status(rctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			failures++
			if msg := err.Error(); msg != lastErr {
				a.log.Warn("Agent not reachable", "err", err)
				lastErr = msg
			}
		} else {
			if failures > 0 {
				a.log.Info("Agent reachable again", "state", st.State, "version", st.Version)
			}
			failures, lastErr = 0, ""
		}
		v := ViewIn(a.printer(st, err), st, err, time.Now())
		if sc, ok := a.o.Client.(summaryClient); ok && err == nil {
			// Today's sales (model.go WithToday); an agent without the
			// summary (summaryNotServed) simply shows no such line.
			rctx, cancel := context.WithTimeout(ctx, a.o.RequestTimeout)
			sum, serr := sc.Summary(rctx, 1)
			cancel()
			if ctx.Err() != nil {
				return nil // stopped during the read: not a failure of it
			}
			now := time.Now()
			switch {
			case serr == nil:
				if sumErr != "" {
					a.log.Info("Day summary readable again")
				}
				lastSum, sumAt, sumErr = sum, now, ""
			case serr.Error() != sumErr:
				a.log.Warn("Day summary not readable", "err", serr)
				sumErr = serr.Error()
			}
			// A failed read keeps the last figures for todayKeep, so that
			// one slow answer does not make the line blink; older ones
			// may be another day's. After that, or at once when there
			// were none, the line says that they cannot be read rather
			// than vanish, which would read as "no sales". Not for an
			// agent that stopped between the two reads: the next poll
			// says the whole agent is not running.
			switch {
			case !sumAt.IsZero() && now.Sub(sumAt) < todayKeep:
				v = v.WithToday(lastSum)
			case serr != nil && !summaryNotServed(serr) && !errors.Is(serr, localapi.ErrNotRunning):
				v = v.WithTodayUnreadable()
			}
		}
		if n := a.currentNotice(); n != "" {
			v.Lines = append(v.Lines[:min(len(v.Lines), MaxLines-1)], clip(n, maxLine))
		}
		a.mu.Lock()
		a.view, a.haveView = v, true
		a.mu.Unlock()

		if first || v.Icon != shown.Icon {
			ui.SetIcon(v.Icon)
		}
		if first || v.Tooltip != shown.Tooltip {
			ui.SetTooltip(v.Tooltip)
		}
		if menu := v.Menu(); first || !reflect.DeepEqual(menu, shownMenu) {
			ui.SetMenu(menu)
			shownMenu = menu
			a.log.Debug("Tray menu", "lang", v.Lang(), "labels", visibleLabels(menu))
		}
		// Logged once the UI has the whole state, menu included: whoever
		// reads it (support, the desktop tests, which then pick entries by
		// position) may take the menu to match.
		if first || v.Icon != shown.Icon || v.Header != shown.Header {
			a.log.Info("Tray state", "icon", string(v.Icon), "tooltip", v.Tooltip, "lang", v.Lang())
		}
		shown, first = v, false

		delay := a.o.Interval
		if failures > 0 {
			delay = retryWait(a.o.RetryMin, a.o.RetryMax, failures)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		case <-a.wake:
			t.Stop()
		}
	}
}

// todayKeep is how long the today line keeps the figures of the last
// good read of the day summary while reading it fails.
const todayKeep = time.Minute

// summaryNotServed reports whether err, from reading the day summary, is
// the local API's 404: an agent from before GET /v1/summary, or one that
// keeps no day summary (localapi.SummaryBackend).
func summaryNotServed(err error) bool {
	var se *localapi.StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}

// printer is the language of the view for a poll's result: the
// agent.language the agent reports (its config file's, hot-reloaded), else
// the last one it reported, else Options.Language; "auto" is this
// desktop's locale.
func (a *App) printer(st localapi.Status, err error) *i18n.Printer {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err == nil {
		if l := statusLanguage(st); l != "" {
			a.language = l
		}
	}
	setting := a.language
	if setting == "" {
		setting = a.o.Language
	}
	return i18n.New(i18n.Resolve(setting))
}

// visibleLabels are the texts of the menu's visible entries joined by
// " | ", for the debug log: what the person sees, which the desktop tests
// check.
func visibleLabels(menu []MenuItem) string {
	var labels []string
	for _, it := range menu {
		if !it.Separator && it.Visible {
			labels = append(labels, it.Label)
		}
	}
	return strings.Join(labels, " | ")
}

// retryWait is the wait after n ≥ 1 failed polls: lo·2^(n-1), at most hi,
// without jitter (one tray per desktop session has nobody to collide with).
func retryWait(lo, hi time.Duration, n int) time.Duration {
	return backoff.Policy{Base: lo, Max: hi, Rand: backoff.NoJitter}.Delay(n - 1)
}

// Refresh makes Run poll now instead of at the next tick.
func (a *App) Refresh() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// View returns the view last shown, and false before the first poll.
func (a *App) View() (View, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.view, a.haveView
}

// Click carries out the menu entry id. Calls to the agent and to the
// desktop run in their own goroutine, so a slow agent never blocks the
// menu; their failure shows as a notice line in the menu for a while.
func (a *App) Click(id ItemID) {
	a.log.Info("Menu clicked", "item", string(id))
	v, _ := a.View()
	// what names the action in the log (English, for support); the
	// notice of a failure names the entry as the menu shows it.
	act := action{what: "", label: v.label(id), p: v.printer()}
	switch id {
	case ItemSync:
		act.what = "Sync now"
		a.call(act, a.o.Client.Sync)
	case ItemPause:
		if v.Paused {
			act.what = "Resume"
			a.call(act, a.o.Client.Resume)
		} else {
			act.what = "Pause"
			a.call(act, a.o.Client.Pause)
		}
	case ItemConnectMoka:
		act.what = "Connect Moka"
		a.open(act, func() error { return a.o.Open.OpenURL(ConnectMokaURL(a.o.BaseURL)) })
	case ItemDashboard:
		act.what = "Open dashboard"
		a.open(act, func() error { return a.o.Open.OpenURL(DashboardURL(a.o.BaseURL)) })
	case ItemConfig:
		act.what = "Open config file"
		a.open(act, func() error { return a.o.Open.OpenFile(a.o.ConfigPath) })
	case ItemLogs:
		act.what = "Open logs folder"
		a.open(act, func() error { return a.o.Open.OpenFolder(a.o.LogsDir) })
	case ItemQuit:
		a.o.Quit()
	}
}

// action names a menu action: what in the log, label in the menu's
// language for a failure notice, p that language.
type action struct {
	what, label string
	p           *i18n.Printer
}

// failed is the notice for the action's failure: "Sync now failed: …".
func (act action) failed(err error) string {
	return act.p.T("TrayActionFailed", map[string]any{"Action": act.label, "Error": shortErr(act.p, err)})
}

// call runs an agent action, then polls at once to show its effect.
func (a *App) call(act action, fn func(context.Context) error) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), a.o.RequestTimeout)
		defer cancel()
		err := fn(ctx)
		if err != nil {
			a.log.Warn("Action failed", "action", act.what, "err", err)
			a.setNotice(act.failed(err))
		} else {
			a.log.Info("Action done", "action", act.what)
			a.setNotice("")
		}
		a.Refresh()
	}()
}

func (a *App) open(act action, fn func() error) {
	go func() {
		if err := fn(); err != nil {
			a.log.Warn("Action failed", "action", act.what, "err", err)
			a.setNotice(act.failed(err))
			a.Refresh()
		}
	}()
}

func (a *App) setNotice(s string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.notice = s
	a.noticeTill = time.Now().Add(a.o.NoticeFor)
}

func (a *App) currentNotice() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.notice == "" || time.Now().After(a.noticeTill) {
		a.notice = ""
		return ""
	}
	return a.notice
}

// shortErr is the error for a menu line: the agent's own message when it
// gave one.
func shortErr(p *i18n.Printer, err error) string {
	if errors.Is(err, localapi.ErrNotRunning) {
		return p.T("TrayErrNotRunning")
	}
	return clip(fmt.Sprint(err), maxLine-20)
}

// statusLanguage is the agent.language setting the agent reports ("auto",
// "id", "en"), or "" from an agent that does not report it.
func statusLanguage(st localapi.Status) string {
	return st.Language.Setting
}
