// Package tray is the logic of pwbi-tray, the per-user system-tray program
// (SPEC §9). It talks to the agent only through the local API client; it
// never opens the store, and it does not import the systray library either
// (that thin glue lives in tray/systrayui), so all of it builds and is
// tested without cgo or a desktop.
//
// This file is the display-free model: what icon, tooltip and menu a given
// agent status means, in English or Bahasa Indonesia (the texts are the
// tray catalogue of internal/i18n, locales/tray.*.toml). app.go polls the
// agent and drives a UI with it.
package tray

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/internal/i18n"
)

// Icon names one of the tray icons.
type Icon string

// The icons (SPEC §9), plus one for "agent not running".
const (
	IconOK      Icon = "ok"
	IconSyncing Icon = "syncing"
	IconOffline Icon = "offline"
	IconError   Icon = "error"
	IconPaused  Icon = "paused"
	IconDown    Icon = "down"
)

// MaxTooltip is the longest tooltip in UTF-16 code units: Windows'
// NOTIFYICONDATA holds 128 including the terminating NUL, and systray
// copies without checking.
const MaxTooltip = 127

// maxLine is the longest status line in the menu, in characters; longer
// ones (config errors, problems) are cut with an ellipsis.
const maxLine = 80

// View is everything the tray shows for one status.
type View struct {
	Icon    Icon
	Tooltip string   // one line, at most MaxTooltip UTF-16 units
	Header  string   // first, greyed menu line: the state in a few words
	Lines   []string // further greyed status lines, at most MaxLines
	AgentUp bool     // the agent answered: Pause/Resume and the dashboard work
	CanSync bool     // "Sync now" enabled
	Paused  bool     // menu shows "Resume syncing" instead of "Pause syncing"
	// ConnectMoka shows "Connect Moka…": the oauth dialect has no valid
	// grant (status.moka.needs_authorization).
	ConnectMoka bool

	// p is the language of the texts, also Menu's; nil is English.
	p *i18n.Printer
}

// Lang is the language of the view's texts: "id" or "en".
func (v View) Lang() string { return v.printer().Lang() }

func (v View) printer() *i18n.Printer {
	if v.p == nil {
		return i18n.New(i18n.English)
	}
	return v.p
}

// MaxLines is the number of status lines under the header: last sync,
// today's sales (WithToday), queue, one line per configured sink (up to
// maxSinkLines), and the most important problem.
const MaxLines = 7

// maxSinkLines is how many sink lines fit; more sinks than that share the
// last one.
const maxSinkLines = MaxLines - 4

// WithToday returns v with a line for today's sales from sum (GET
// /v1/summary): "Today: Rp 1.250.000 · 86 sales", the amount kept after
// refunds (net_amount) of every outlet, in v's language. It goes right
// after the last sync line; v is returned unchanged when the agent is not
// up or sum has no entry for today.
func (v View) WithToday(sum localapi.Summary) View {
	if !v.AgentUp || len(v.Lines) == 0 {
		return v
	}
	i := slices.IndexFunc(sum.Totals, func(d localapi.SummaryDay) bool { return d.Date == sum.Today })
	if i < 0 {
		return v
	}
	day := sum.Totals[i]
	p := v.printer()
	return v.withTodayLine(p.N("TrayToday", pluralCount(day.Sales), map[string]any{"Amount": p.Amount(sum.Currency, day.NetAmount), "Count": p.Count(day.Sales)}))
}

// WithTodayUnreadable returns v with the today line saying, in v's
// language, that today's sales cannot be read right now ("Today: sales
// figures cannot be read right now"), in the place of WithToday's figures:
// for when the agent answers but its day summary does not read, so that
// the figures do not just vanish (which reads as "no sales"). The reason
// is left to the logs. v is returned unchanged when the agent is not up.
func (v View) WithTodayUnreadable() View {
	if !v.AgentUp || len(v.Lines) == 0 {
		return v
	}
	return v.withTodayLine(v.printer().T("TrayTodayUnreadable"))
}

// withTodayLine puts line right after the last sync line, keeping at most
// MaxLines lines.
func (v View) withTodayLine(line string) View {
	lines := make([]string, 0, len(v.Lines)+1)
	lines = append(lines, v.Lines[0], clip(line, maxLine))
	lines = append(lines, v.Lines[1:]...)
	v.Lines = lines[:min(len(lines), MaxLines)]
	return v
}

// headers are the catalogue ids of the header per icon ("PWBI Agent: all
// good").
var headers = map[Icon]string{
	IconOK: "TrayHeaderOK", IconSyncing: "TrayHeaderSyncing", IconOffline: "TrayHeaderOffline",
	IconPaused: "TrayHeaderPaused", IconError: "TrayHeaderError",
}

// ViewOf returns the view for a status, or for the error fetching it, in
// English.
func ViewOf(st localapi.Status, err error, now time.Time) View {
	return ViewIn(i18n.New(i18n.English), st, err, now)
}

// ViewIn returns the view for a status, or for the error fetching it, in
// p's language. Machine words the agent sends (state names, sink ids) never
// show; problem and config error texts show as the agent wrote them.
func ViewIn(p *i18n.Printer, st localapi.Status, err error, now time.Time) View {
	if err != nil {
		header, tip := "TrayAgentNotRunning", "TrayTooltipNotRunning"
		if !errors.Is(err, localapi.ErrNotRunning) {
			header, tip = "TrayAgentNotAnswering", "TrayTooltipNotAnswering"
		}
		return View{
			Icon:    IconDown,
			Tooltip: clipUTF16(p.T(tip), MaxTooltip),
			Header:  p.T(header),
			p:       p,
		}
	}
	v := View{
		AgentUp:     true,
		Paused:      st.State == localapi.StatePaused,
		ConnectMoka: st.Moka.NeedsAuthorization && st.Moka.Configured,
		p:           p,
	}
	// The agent refuses a sync while paused.
	v.CanSync = !v.Paused
	switch st.State {
	case localapi.StateOK:
		v.Icon = IconOK
	case localapi.StateSyncing:
		v.Icon = IconSyncing
	case localapi.StateOffline:
		v.Icon = IconOffline
	case localapi.StatePaused:
		v.Icon = IconPaused
	default:
		v.Icon = IconError
	}
	v.Header = p.T(headers[v.Icon])

	last := lastSync(p, st, now)
	v.Lines = append(v.Lines, p.T("TrayLastSync", map[string]any{"When": last}))
	queue := p.N("TrayWaiting", pluralCount(st.Queue.Pending), map[string]any{"Count": p.Count(st.Queue.Pending)})
	if st.Queue.DeadLetter > 0 {
		queue = p.N("TrayWaitingRejected", pluralCount(st.Queue.Pending),
			map[string]any{"Count": p.Count(st.Queue.Pending), "Rejected": p.Count(st.Queue.DeadLetter)})
	}
	v.Lines = append(v.Lines, queue)
	v.Lines = append(v.Lines, sinkLines(p, st)...)
	// One more line for the most important problem, if any.
	switch {
	case st.Config.Error != "":
		v.Lines = append(v.Lines, clip(p.T("TrayConfigError", map[string]any{"Error": st.Config.Error}), maxLine))
	case st.Moka.Enabled && !st.Moka.Configured:
		// A fresh install: Connect Moka cannot work before the client id
		// and secret are set; the dashboard says how.
		v.Lines = append(v.Lines, p.T("TrayMokaNotSetUp"))
	case st.Moka.NeedsAuthorization:
		v.Lines = append(v.Lines, p.T("TrayMokaNotConnected"))
	case (st.State == localapi.StateError || st.State == localapi.StateOffline) && len(st.Problems) > 0:
		v.Lines = append(v.Lines, clip(capitalize(problemText(p, st)), maxLine))
	}

	v.Tooltip = clipUTF16(p.N("TrayTooltip", pluralCount(st.Queue.Pending), map[string]any{
		"Header": v.Header, "LastSync": last, "Count": p.Count(st.Queue.Pending)}), MaxTooltip)
	return v
}

// ItemID names a menu entry. The menu always has the same entries in the
// same order (systray can hide items but not remove them); View.Menu says
// which are visible and enabled.
type ItemID string

// The menu entries (SPEC §9).
const (
	ItemHeader      ItemID = "header"
	ItemSync        ItemID = "sync"
	ItemPause       ItemID = "pause"
	ItemConnectMoka ItemID = "connect-moka"
	ItemDashboard   ItemID = "dashboard"
	ItemConfig      ItemID = "config"
	ItemLogs        ItemID = "logs"
	ItemQuit        ItemID = "quit"
)

// ItemLine is the ID of status line i (0-based, below MaxLines).
func ItemLine(i int) ItemID { return ItemID(fmt.Sprintf("line%d", i+1)) }

// MenuItem is one menu entry as the view wants it.
type MenuItem struct {
	ID        ItemID // empty for a separator
	Separator bool
	Label     string
	Enabled   bool
	Visible   bool
}

// Menu returns the full menu for v: the header and status lines (greyed),
// the actions, the "open" entries and Quit, with separators between the
// groups. Every call returns the same IDs in the same order.
func (v View) Menu() []MenuItem {
	p := v.printer()
	items := []MenuItem{{ID: ItemHeader, Label: v.Header, Visible: true}}
	for i := 0; i < MaxLines; i++ {
		it := MenuItem{ID: ItemLine(i)}
		if i < len(v.Lines) {
			it.Label, it.Visible = v.Lines[i], true
		}
		items = append(items, it)
	}
	items = append(items,
		MenuItem{Separator: true, Visible: true},
		MenuItem{ID: ItemSync, Label: v.label(ItemSync), Enabled: v.CanSync, Visible: true},
		MenuItem{ID: ItemPause, Label: v.label(ItemPause), Enabled: v.AgentUp, Visible: true},
		MenuItem{ID: ItemConnectMoka, Label: p.T("TrayConnectMoka"), Enabled: v.ConnectMoka, Visible: v.ConnectMoka},
		MenuItem{Separator: true, Visible: true},
		MenuItem{ID: ItemDashboard, Label: p.T("TrayOpenDashboard"), Enabled: v.AgentUp, Visible: true},
		// The config file and the logs help most when the agent is down.
		MenuItem{ID: ItemConfig, Label: p.T("TrayOpenConfig"), Enabled: true, Visible: true},
		MenuItem{ID: ItemLogs, Label: p.T("TrayOpenLogs"), Enabled: true, Visible: true},
		MenuItem{Separator: true, Visible: true},
		MenuItem{ID: ItemQuit, Label: p.T("TrayQuit"), Enabled: true, Visible: true},
	)
	return items
}

// actionLabels are the catalogue ids of the action entries' labels.
var actionLabels = map[ItemID]string{
	ItemSync: "TraySyncNow", ItemConnectMoka: "TrayConnectMoka", ItemDashboard: "TrayOpenDashboard",
	ItemConfig: "TrayOpenConfig", ItemLogs: "TrayOpenLogs", ItemQuit: "TrayQuit",
}

// label is the label of the action entry id in v's language ("" for a
// status line): what the menu shows and what a failure notice names.
func (v View) label(id ItemID) string {
	p := v.printer()
	if id == ItemPause {
		if v.Paused {
			return p.T("TrayResume")
		}
		return p.T("TrayPause")
	}
	if msg, ok := actionLabels[id]; ok {
		return p.T(msg)
	}
	return ""
}

// DashboardURL is the dashboard's address for the local API at base
// (e.g. "http://127.0.0.1:8687").
func DashboardURL(base string) string { return strings.TrimSuffix(base, "/") + "/" }

// ConnectMokaURL starts the Moka OAuth authorization in the browser.
func ConnectMokaURL(base string) string {
	return strings.TrimSuffix(base, "/") + "/oauth/moka/start"
}

// sinks returns the status's sinks; an agent from before sinks reports
// its upstream alone.
func sinks(st localapi.Status) []localapi.SinkStatus {
	if len(st.Sinks) > 0 {
		return st.Sinks
	}
	u := st.Upstream
	return []localapi.SinkStatus{{Name: "upstream", Title: "PWBI cloud", Enabled: u.Configured, Configured: u.Configured,
		Online: u.Online, Problem: u.Problem, LastSuccessAt: u.LastSuccessAt, LastError: u.LastError}}
}

// sinkLines are the status lines of the configured sinks, one each
// ("Cloud: connected", "NATS: offline"), or "Cloud: not set up" when no sink
// is. More sinks than maxSinkLines share the last line.
func sinkLines(p *i18n.Printer, st localapi.Status) []string {
	var lines []string
	var on []localapi.SinkStatus
	for _, s := range sinks(st) {
		if s.Enabled && s.Configured {
			on = append(on, s)
		}
	}
	if len(on) == 0 {
		return []string{p.T("TrayCloudNotSetUp")}
	}
	for i, s := range on {
		if i == maxSinkLines-1 && len(on) > maxSinkLines {
			lines = append(lines, p.N("TrayMoreSinks", len(on)-i))
			break
		}
		lines = append(lines, sinkLabel(p, s)+": "+sinkState(p, s))
	}
	return lines
}

// sinkLabel is a sink's short name in the menu.
func sinkLabel(p *i18n.Printer, s localapi.SinkStatus) string {
	switch s.Name {
	case "upstream":
		return p.T("TraySinkCloud")
	case "nats":
		return "NATS"
	case "jurnal":
		return "Jurnal"
	}
	if s.Title != "" {
		return s.Title
	}
	return s.Name
}

// sinkState is a sink's condition in a few words.
func sinkState(p *i18n.Printer, s localapi.SinkStatus) string {
	switch {
	case s.Online:
		return p.T("TraySinkConnected")
	case s.Problem != "" && s.Health != localapi.SinkHealthOffline:
		// An answer that is not an acknowledgement (a refused token, a
		// Wi-Fi login page): the sink is not merely unreachable.
		return p.T("TraySinkNotAccepting")
	case s.LastError == "" && s.LastSuccessAt == nil:
		// Nothing was sent yet (nothing to send since the start).
		return p.T("TraySinkNothingSent")
	}
	return p.T("TraySinkOffline")
}

// lastSync is the most recent successful sync of any outlet or of any
// sink, as a short relative time.
func lastSync(p *i18n.Printer, st localapi.Status, now time.Time) string {
	var last time.Time
	for _, o := range st.Moka.Outlets {
		if o.LastSyncAt != nil && o.LastSyncAt.After(last) {
			last = *o.LastSyncAt
		}
	}
	for _, s := range sinks(st) {
		if s.LastSuccessAt != nil && s.LastSuccessAt.After(last) {
			last = *s.LastSuccessAt
		}
	}
	if last.IsZero() {
		return p.T("TrayNever")
	}
	// A sync "in the future" (the PC's clock went back) is just now.
	return p.Ago(max(now.Sub(last), 0))
}

// pluralCount is n for choosing a plural form: past a million every
// language here says "other", and a huge count must not overflow an int.
func pluralCount(n int64) int {
	return int(min(max(n, -1_000_000), 1_000_000))
}

// problemText is the status's most important problem in p's language:
// rendered from its code and parameters when the agent gives them and the
// catalogue knows the code, else the agent's own sentence.
func problemText(p *i18n.Printer, st localapi.Status) string {
	if len(st.ProblemDetails) > 0 {
		if d := st.ProblemDetails[0]; d.Code != "" {
			d.Text = st.Problems[0] // the agent's sentence, for a code unknown here
			return d.In(p)
		}
	}
	return st.Problems[0]
}

// clip shortens s to at most n characters, ending in "…" when cut, and
// keeps it on one line.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return strings.TrimRight(string(r[:n-1]), " ") + "…"
}

// clipUTF16 is clip counting UTF-16 code units, as Windows does.
func clipUTF16(s string, n int) string {
	s = clip(s, len(s)+1)
	if len(utf16.Encode([]rune(s))) <= n {
		return s
	}
	r := []rune(s)
	for len(utf16.Encode(r)) > n-1 {
		r = r[:len(r)-1]
	}
	return string(r) + "…"
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	return strings.ToUpper(string(r[0])) + string(r[1:])
}
