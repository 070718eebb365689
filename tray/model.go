// Package tray is the logic of pwbi-tray, the per-user system-tray program
// (SPEC §9). It talks to the agent only through the local API client; it
// never opens the store, and it does not import the systray library either
// (that thin glue lives in tray/systrayui), so all of it builds and is
// tested without cgo or a desktop.
//
// This file is the display-free model: what icon, tooltip and menu a given
// agent status means. app.go polls the agent and drives a UI with it.
package tray

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/pwbi/edge-agent/agent/localapi"
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
}

// MaxLines is the number of status lines under the header: last sync,
// queue, one line per configured sink (up to maxSinkLines), and the most
// important problem.
const MaxLines = 6

// maxSinkLines is how many sink lines fit; more sinks than that share the
// last one.
const maxSinkLines = MaxLines - 3

// summaries are the header words per icon.
var summaries = map[Icon]string{
	IconOK: "all good", IconSyncing: "syncing", IconOffline: "offline, keeping sales safe",
	IconPaused: "paused", IconError: "needs attention",
}

// ViewOf returns the view for a status, or for the error fetching it.
func ViewOf(st localapi.Status, err error, now time.Time) View {
	if err != nil {
		msg := "not running"
		if !errors.Is(err, localapi.ErrNotRunning) {
			msg = "not answering"
		}
		return View{
			Icon:    IconDown,
			Tooltip: "PWBI Agent: " + msg,
			Header:  "Agent " + msg,
		}
	}
	v := View{
		AgentUp:     true,
		Paused:      st.State == localapi.StatePaused,
		ConnectMoka: st.Moka.NeedsAuthorization && st.Moka.Configured,
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
	v.Header = "PWBI Agent: " + summaries[v.Icon]

	v.Lines = append(v.Lines, "Last sync: "+lastSync(st, now))
	queue := fmt.Sprintf("Waiting to send: %d", st.Queue.Pending)
	if st.Queue.DeadLetter > 0 {
		queue += fmt.Sprintf(" (%d rejected)", st.Queue.DeadLetter)
	}
	v.Lines = append(v.Lines, queue)
	v.Lines = append(v.Lines, sinkLines(st)...)
	// One more line for the most important problem, if any.
	switch {
	case st.Config.Error != "":
		v.Lines = append(v.Lines, clip("Config error: "+st.Config.Error, maxLine))
	case st.Moka.Enabled && !st.Moka.Configured:
		// A fresh install: Connect Moka cannot work before the client id
		// and secret are set; the dashboard says how.
		v.Lines = append(v.Lines, "Moka: not set up yet (see the dashboard)")
	case st.Moka.NeedsAuthorization:
		v.Lines = append(v.Lines, "Moka: not connected (use Connect Moka)")
	case (st.State == localapi.StateError || st.State == localapi.StateOffline) && len(st.Problems) > 0:
		v.Lines = append(v.Lines, clip(capitalize(st.Problems[0]), maxLine))
	}

	v.Tooltip = clipUTF16(fmt.Sprintf("PWBI Agent: %s — last sync %s, %d waiting",
		summaries[v.Icon], lastSync(st, now), st.Queue.Pending), MaxTooltip)
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
	items := []MenuItem{{ID: ItemHeader, Label: v.Header, Visible: true}}
	for i := 0; i < MaxLines; i++ {
		it := MenuItem{ID: ItemLine(i)}
		if i < len(v.Lines) {
			it.Label, it.Visible = v.Lines[i], true
		}
		items = append(items, it)
	}
	pause := "Pause syncing"
	if v.Paused {
		pause = "Resume syncing"
	}
	items = append(items,
		MenuItem{Separator: true, Visible: true},
		MenuItem{ID: ItemSync, Label: "Sync now", Enabled: v.CanSync, Visible: true},
		MenuItem{ID: ItemPause, Label: pause, Enabled: v.AgentUp, Visible: true},
		MenuItem{ID: ItemConnectMoka, Label: "Connect Moka…", Enabled: v.ConnectMoka, Visible: v.ConnectMoka},
		MenuItem{Separator: true, Visible: true},
		MenuItem{ID: ItemDashboard, Label: "Open dashboard", Enabled: v.AgentUp, Visible: true},
		// The config file and the logs help most when the agent is down.
		MenuItem{ID: ItemConfig, Label: "Open config file", Enabled: true, Visible: true},
		MenuItem{ID: ItemLogs, Label: "Open logs folder", Enabled: true, Visible: true},
		MenuItem{Separator: true, Visible: true},
		MenuItem{ID: ItemQuit, Label: "Quit", Enabled: true, Visible: true},
	)
	return items
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
func sinkLines(st localapi.Status) []string {
	var lines []string
	var on []localapi.SinkStatus
	for _, s := range sinks(st) {
		if s.Enabled && s.Configured {
			on = append(on, s)
		}
	}
	if len(on) == 0 {
		return []string{"Cloud: not set up"}
	}
	for i, s := range on {
		if i == maxSinkLines-1 && len(on) > maxSinkLines {
			lines = append(lines, fmt.Sprintf("%d more destinations (see dashboard)", len(on)-i))
			break
		}
		lines = append(lines, sinkLabel(s)+": "+sinkState(s))
	}
	return lines
}

// sinkLabel is a sink's short name in the menu.
func sinkLabel(s localapi.SinkStatus) string {
	switch s.Name {
	case "upstream":
		return "Cloud"
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
func sinkState(s localapi.SinkStatus) string {
	switch {
	case s.Online:
		return "connected"
	case s.Problem != "" && s.Health != localapi.SinkHealthOffline:
		// An answer that is not an acknowledgement (a refused token, a
		// Wi-Fi login page): the sink is not merely unreachable.
		return "not accepting (see below)"
	case s.LastError == "" && s.LastSuccessAt == nil:
		// Nothing was sent yet (nothing to send since the start).
		return "nothing sent yet"
	}
	return "offline"
}

// lastSync is the most recent successful sync of any outlet or of any
// sink, as a short relative time.
func lastSync(st localapi.Status, now time.Time) string {
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
		return "never"
	}
	return localapi.Ago(now.Sub(last))
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
