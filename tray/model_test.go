package tray

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/localapi"
)

func TestViewOf(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tenMinAgo := now.Add(-10 * time.Minute)
	tests := []struct {
		name     string
		st       localapi.Status
		err      error
		icon     Icon
		lines    []string
		canSync  bool
		inTooltp string
	}{
		{
			name: "agent down", err: fmt.Errorf("dial: %w", localapi.ErrNotRunning),
			icon: IconDown, lines: []string{"Agent not running"}, inTooltp: "not running",
		},
		{
			name: "agent broken", err: errors.New("HTTP 500"),
			icon: IconDown, lines: []string{"Agent not answering"},
		},
		{
			name: "ok with outlet sync",
			st: localapi.Status{State: "ok",
				Moka:     localapi.MokaStatus{Outlets: []localapi.OutletStatus{{ID: "o1", LastSyncAt: &tenMinAgo}}},
				Queue:    localapi.QueueStatus{Pending: 3},
				Upstream: localapi.UpstreamStatus{Configured: true, Online: true}},
			icon: IconOK, canSync: true,
			lines:    []string{"Last sync: 10 min ago", "Waiting to send: 3", "Cloud: connected"},
			inTooltp: "all good",
		},
		{
			name: "offline with rejects",
			st: localapi.Status{State: "offline", Queue: localapi.QueueStatus{Pending: 1200, DeadLetter: 2},
				Upstream: localapi.UpstreamStatus{Configured: true}},
			icon: IconOffline, canSync: true,
			lines: []string{"Last sync: never", "Waiting to send: 1200 (2 rejected)", "Cloud: offline"},
		},
		{
			name: "config error",
			st:   localapi.Status{State: "error", Config: localapi.ConfigStatus{Error: "config.toml:3: moka.poll_interval: bad duration"}},
			icon: IconError, canSync: true,
			lines: []string{"Last sync: never", "Waiting to send: 0", "Cloud: not set up", "Config error: config.toml:3: moka.poll_interval: bad duration"},
		},
		{name: "paused", st: localapi.Status{State: "paused"}, icon: IconPaused, canSync: true},
		{name: "unknown state is an error", st: localapi.Status{State: "weird"}, icon: IconError, canSync: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := ViewOf(tc.st, tc.err, now)
			if v.Icon != tc.icon {
				t.Errorf("icon %q, want %q", v.Icon, tc.icon)
			}
			if v.CanSync != tc.canSync {
				t.Errorf("CanSync %v", v.CanSync)
			}
			if tc.lines != nil && strings.Join(v.Lines, "|") != strings.Join(tc.lines, "|") {
				t.Errorf("lines\n got %q\nwant %q", v.Lines, tc.lines)
			}
			if !strings.Contains(v.Tooltip, tc.inTooltp) || strings.Contains(v.Tooltip, "\n") {
				t.Errorf("tooltip %q", v.Tooltip)
			}
			if v.Paused != (tc.st.State == "paused" && tc.err == nil) {
				t.Errorf("paused %v", v.Paused)
			}
		})
	}
}

func TestAgo(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Second: "just now", 5 * time.Minute: "5 min ago", 3 * time.Hour: "3 h ago",
		47 * time.Hour: "47 h ago", 72 * time.Hour: "3 days ago",
	} {
		if got := Ago(d); got != want {
			t.Errorf("Ago(%v) = %q, want %q", d, got, want)
		}
	}
}
