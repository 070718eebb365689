// Package tray is the logic of pwbi-tray, the per-user system-tray program
// (SPEC §9). It talks to the agent only through the local API client; it
// never opens the store. This file is the display-free model: what icon,
// tooltip and menu lines a given agent status means, so it can be tested
// without a desktop.
package tray

import (
	"errors"
	"fmt"
	"time"

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

// View is everything the tray shows for one status.
type View struct {
	Icon    Icon
	Tooltip string   // one line
	Lines   []string // greyed-out status lines at the top of the menu
	CanSync bool     // "Sync now" enabled
	Paused  bool     // menu shows "Resume" instead of "Pause"
}

// ViewOf returns the view for a status, or for the error fetching it.
func ViewOf(st localapi.Status, err error, now time.Time) View {
	if err != nil {
		msg := "Agent not running"
		if !errors.Is(err, localapi.ErrNotRunning) {
			msg = "Agent not answering"
		}
		return View{Icon: IconDown, Tooltip: "PWBI Agent: " + msg, Lines: []string{msg}}
	}
	v := View{CanSync: true, Paused: st.State == localapi.StatePaused}
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

	v.Lines = append(v.Lines, "Last sync: "+lastSync(st, now))
	queue := fmt.Sprintf("Waiting to send: %d", st.Queue.Pending)
	if st.Queue.DeadLetter > 0 {
		queue += fmt.Sprintf(" (%d rejected)", st.Queue.DeadLetter)
	}
	v.Lines = append(v.Lines, queue)
	switch {
	case !st.Upstream.Configured:
		v.Lines = append(v.Lines, "Cloud: not set up")
	case st.Upstream.Online:
		v.Lines = append(v.Lines, "Cloud: connected")
	default:
		v.Lines = append(v.Lines, "Cloud: offline")
	}
	if st.Config.Error != "" {
		v.Lines = append(v.Lines, "Config error: "+st.Config.Error)
	}

	summary := map[Icon]string{
		IconOK: "all good", IconSyncing: "syncing", IconOffline: "offline, keeping sales safe",
		IconPaused: "paused", IconError: "needs attention",
	}[v.Icon]
	v.Tooltip = fmt.Sprintf("PWBI Agent: %s — last sync %s, %d waiting", summary, lastSync(st, now), st.Queue.Pending)
	return v
}

// lastSync is the most recent successful sync of any outlet or of the
// upstream, as a short relative time.
func lastSync(st localapi.Status, now time.Time) string {
	var last time.Time
	for _, o := range st.Moka.Outlets {
		if o.LastSyncAt != nil && o.LastSyncAt.After(last) {
			last = *o.LastSyncAt
		}
	}
	if st.Upstream.LastSuccessAt != nil && st.Upstream.LastSuccessAt.After(last) {
		last = *st.Upstream.LastSuccessAt
	}
	if last.IsZero() {
		return "never"
	}
	return Ago(now.Sub(last))
}

// Ago renders a duration as "just now", "5 min ago", "3 h ago", "2 days ago".
func Ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d/time.Hour))
	default:
		return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
	}
}
