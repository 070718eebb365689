package tray

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/pwbi/edge-agent/agent/localapi"
)

func TestViewOf(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tenMinAgo := now.Add(-10 * time.Minute)
	threeHAgo := now.Add(-3 * time.Hour)
	fiveMinLater := now.Add(5 * time.Minute)
	tests := []struct {
		name     string
		st       localapi.Status
		err      error
		icon     Icon
		header   string
		lines    []string
		canSync  bool
		inTooltp string
	}{
		{
			name: "agent down", err: fmt.Errorf("dial: %w", localapi.ErrNotRunning),
			icon: IconDown, header: "Agent not running", lines: []string{}, inTooltp: "PWBI Agent: not running",
		},
		{
			name: "agent broken", err: errors.New("HTTP 500"),
			icon: IconDown, header: "Agent not answering", lines: []string{}, inTooltp: "not answering",
		},
		{
			name: "ok with outlet sync",
			st: localapi.Status{State: "ok",
				Moka:     localapi.MokaStatus{Outlets: []localapi.OutletStatus{{ID: "o1", LastSyncAt: &tenMinAgo}}},
				Queue:    localapi.QueueStatus{Pending: 3},
				Upstream: localapi.UpstreamStatus{Configured: true, Online: true, LastSuccessAt: &threeHAgo}},
			icon: IconOK, canSync: true, header: "PWBI Agent: all good",
			lines:    []string{"Last sync: 10 min ago", "Waiting to send: 3", "Cloud: connected"},
			inTooltp: "PWBI Agent: all good — last sync 10 min ago, 3 waiting",
		},
		{
			// The PC's clock went back: the sync is "in the future", and
			// the tray says "just now", never "in 5 min".
			name: "ok, last sync after now",
			st: localapi.Status{State: "ok",
				Moka: localapi.MokaStatus{Outlets: []localapi.OutletStatus{{ID: "o1", LastSyncAt: &fiveMinLater}}}},
			icon: IconOK, canSync: true, header: "PWBI Agent: all good",
			lines:    []string{"Last sync: just now", "Waiting to send: 0", "Cloud: not set up"},
			inTooltp: "last sync just now",
		},
		{
			name: "syncing, upstream newer than outlets",
			st: localapi.Status{State: "syncing",
				Moka:     localapi.MokaStatus{Outlets: []localapi.OutletStatus{{ID: "o1", LastSyncAt: &threeHAgo}, {ID: "o2"}}},
				Upstream: localapi.UpstreamStatus{Configured: true, Online: true, LastSuccessAt: &tenMinAgo}},
			icon: IconSyncing, canSync: true, header: "PWBI Agent: syncing",
			lines:    []string{"Last sync: 10 min ago", "Waiting to send: 0", "Cloud: connected"},
			inTooltp: "syncing",
		},
		{
			name: "offline with rejects",
			st: localapi.Status{State: "offline", Queue: localapi.QueueStatus{Pending: 1200, DeadLetter: 2},
				Upstream: localapi.UpstreamStatus{Configured: true, LastError: "dial tcp: connection refused"}},
			icon: IconOffline, canSync: true, header: "PWBI Agent: offline, keeping sales safe",
			lines:    []string{"Last sync: never", "Waiting to send: 1,200 (2 rejected)", "Cloud: offline"},
			inTooltp: "1,200 waiting",
		},
		{
			name: "offline says why",
			st: localapi.Status{State: "offline", Queue: localapi.QueueStatus{Pending: 4},
				Upstream: localapi.UpstreamStatus{Configured: true, LastError: "send batch: connection refused"},
				Problems: []string{"cannot reach the PWBI cloud: connection refused"}},
			icon: IconOffline, canSync: true,
			lines: []string{"Last sync: never", "Waiting to send: 4", "Cloud: offline", "Cannot reach the PWBI cloud: connection refused"},
		},
		{
			name: "a Wi-Fi login page answering instead of the cloud",
			st: localapi.Status{State: "error", Queue: localapi.QueueStatus{Pending: 800},
				Upstream: localapi.UpstreamStatus{Configured: true, LastError: "upstream answered 200 OK: not an acknowledgement",
					Problem: "the upstream answered with a web page, not an acknowledgement: is a Wi-Fi login page in the way?"},
				Problems: []string{"the upstream answered with a web page, not an acknowledgement: is a Wi-Fi login page in the way?"}},
			icon: IconError, canSync: true,
			lines: []string{"Last sync: never", "Waiting to send: 800", "Cloud: not accepting (see below)",
				"The upstream answered with a web page, not an acknowledgement: is a Wi-Fi login…"},
		},
		{
			name: "config error",
			st:   localapi.Status{State: "error", Config: localapi.ConfigStatus{Error: "config.toml:3: moka.poll_interval: bad duration"}},
			icon: IconError, canSync: true, header: "PWBI Agent: needs attention",
			lines:    []string{"Last sync: never", "Waiting to send: 0", "Cloud: not set up", "Config error: config.toml:3: moka.poll_interval: bad duration"},
			inTooltp: "needs attention",
		},
		{
			name: "error shows the first problem, clipped",
			st: localapi.Status{State: "error", Upstream: localapi.UpstreamStatus{Configured: true, Online: true},
				Problems: []string{"moka: 401 unauthorized: the api_key is wrong or was revoked; set a new one in the config file and save it", "second"}},
			icon: IconError, canSync: true,
			lines: []string{"Last sync: never", "Waiting to send: 0", "Cloud: connected",
				"Moka: 401 unauthorized: the api_key is wrong or was revoked; set a new one in t…"},
		},
		{
			name: "problems are not shown when the state is fine",
			st:   localapi.Status{State: "ok", Problems: []string{"upstream.url is not set"}},
			icon: IconOK, canSync: true,
			lines: []string{"Last sync: never", "Waiting to send: 0", "Cloud: not set up"},
		},
		{
			name: "paused: no sync, resume instead",
			st:   localapi.Status{State: "paused"}, icon: IconPaused, canSync: false, header: "PWBI Agent: paused",
			inTooltp: "paused",
		},
		{
			name: "needs Moka authorization",
			st:   localapi.Status{State: "error", Moka: localapi.MokaStatus{Enabled: true, Configured: true, NeedsAuthorization: true}},
			icon: IconError, canSync: true,
			lines: []string{"Last sync: never", "Waiting to send: 0", "Cloud: not set up", "Moka: not connected (use Connect Moka)"},
		}, {
			name: "fresh install: Moka not set up, so no Connect Moka yet",
			st: localapi.Status{State: "ok", Moka: localapi.MokaStatus{Enabled: true, API: "oauth", NeedsAuthorization: true,
				Setup: "Moka is not connected yet: set moka.client_id and moka.client_secret"}},
			icon: IconOK, canSync: true,
			lines: []string{"Last sync: never", "Waiting to send: 0", "Cloud: not set up", "Moka: not set up yet (see the dashboard)"},
		},

		{
			name: "upstream set up, nothing sent yet",
			st:   localapi.Status{State: "ok", Upstream: localapi.UpstreamStatus{Configured: true}},
			icon: IconOK, canSync: true,
			lines: []string{"Last sync: never", "Waiting to send: 0", "Cloud: nothing sent yet"},
		},
		{name: "unknown state is an error", st: localapi.Status{State: "weird"}, icon: IconError, canSync: true, header: "PWBI Agent: needs attention"},
		{
			name: "one line per configured sink, each in its own state",
			st: localapi.Status{State: "offline", Queue: localapi.QueueStatus{Pending: 1500},
				Upstream: localapi.UpstreamStatus{Configured: true, Online: true, LastSuccessAt: &tenMinAgo},
				Sinks: []localapi.SinkStatus{
					{Name: "upstream", Title: "PWBI cloud", Enabled: true, Configured: true, Online: true, LastSuccessAt: &tenMinAgo},
					{Name: "nats", Title: "NATS JetStream", Enabled: true, Configured: true, Health: localapi.SinkHealthOffline,
						Problem: "cannot reach NATS: connection refused", LastError: "dial tcp: connection refused"},
					{Name: "jurnal", Title: "Jurnal", Enabled: false},
				},
				Problems: []string{"cannot reach NATS: connection refused"}},
			icon: IconOffline, canSync: true,
			lines: []string{"Last sync: 10 min ago", "Waiting to send: 1,500", "Cloud: connected", "NATS: offline",
				"Cannot reach NATS: connection refused"},
		},
		{
			name: "a sink refusing the agent is not merely offline",
			st: localapi.Status{State: "error",
				Sinks: []localapi.SinkStatus{
					{Name: "upstream", Enabled: false},
					{Name: "nats", Title: "NATS JetStream", Enabled: true, Configured: true, Health: localapi.SinkHealthError,
						Problem: "NATS refuses the agent's credentials", LastError: "nats: authorization violation"},
				},
				Problems: []string{"NATS refuses the agent's credentials"}},
			icon: IconError, canSync: true,
			lines: []string{"Last sync: never", "Waiting to send: 0", "NATS: not accepting (see below)", "NATS refuses the agent's credentials"},
		},
		{
			name: "three sinks and a problem fit",
			st: localapi.Status{State: "error", Config: localapi.ConfigStatus{Error: "config.toml:9: bad"},
				Sinks: []localapi.SinkStatus{
					{Name: "upstream", Enabled: true, Configured: true, Online: true},
					{Name: "nats", Enabled: true, Configured: true},
					{Name: "jurnal", Title: "Jurnal", Enabled: true, Configured: true, LastError: "429"},
				}},
			icon: IconError, canSync: true,
			lines: []string{"Last sync: never", "Waiting to send: 0", "Cloud: connected", "NATS: nothing sent yet", "Jurnal: offline",
				"Config error: config.toml:9: bad"},
		},
		{
			name: "more sinks than lines share the last sink line",
			st: localapi.Status{State: "ok",
				Sinks: []localapi.SinkStatus{
					{Name: "upstream", Enabled: true, Configured: true, Online: true},
					{Name: "nats", Enabled: true, Configured: true, Online: true},
					{Name: "jurnal", Enabled: true, Configured: true, Online: true},
					{Name: "kafka", Title: "Kafka", Enabled: true, Configured: true, Online: true},
				}},
			icon: IconOK, canSync: true,
			lines: []string{"Last sync: never", "Waiting to send: 0", "Cloud: connected", "NATS: connected", "2 more destinations (see dashboard)"},
		},
		{
			name: "no sink enabled: the cloud is not set up",
			st: localapi.Status{State: "ok", Sinks: []localapi.SinkStatus{
				{Name: "upstream", Enabled: false}, {Name: "nats", Enabled: false}}},
			icon: IconOK, canSync: true,
			lines: []string{"Last sync: never", "Waiting to send: 0", "Cloud: not set up"},
		},
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
			if v.AgentUp != (tc.err == nil) {
				t.Errorf("AgentUp %v", v.AgentUp)
			}
			if tc.header != "" && v.Header != tc.header {
				t.Errorf("header %q, want %q", v.Header, tc.header)
			}
			if tc.lines != nil && strings.Join(v.Lines, "|") != strings.Join(tc.lines, "|") {
				t.Errorf("lines\n got %q\nwant %q", v.Lines, tc.lines)
			}
			if len(v.Lines) > MaxLines {
				t.Errorf("%d lines", len(v.Lines))
			}
			if !strings.Contains(v.Tooltip, tc.inTooltp) || strings.Contains(v.Tooltip, "\n") {
				t.Errorf("tooltip %q", v.Tooltip)
			}
			if v.Paused != (tc.st.State == "paused" && tc.err == nil) {
				t.Errorf("paused %v", v.Paused)
			}
			if v.ConnectMoka != (tc.st.Moka.NeedsAuthorization && tc.st.Moka.Configured && tc.err == nil) {
				t.Errorf("ConnectMoka %v", v.ConnectMoka)
			}
		})
	}
}

// TestIconPerState covers every state the agent reports.
func TestIconPerState(t *testing.T) {
	for state, icon := range map[string]Icon{
		localapi.StateOK: IconOK, localapi.StateSyncing: IconSyncing, localapi.StateOffline: IconOffline,
		localapi.StateError: IconError, localapi.StatePaused: IconPaused, "": IconError,
	} {
		if got := ViewOf(localapi.Status{State: state}, nil, time.Now()).Icon; got != icon {
			t.Errorf("state %q: icon %q, want %q", state, got, icon)
		}
	}
	if got := ViewOf(localapi.Status{State: "ok"}, localapi.ErrNotRunning, time.Now()).Icon; got != IconDown {
		t.Errorf("error: icon %q", got)
	}
}

// menuOf indexes a menu by ID.
func menuOf(t *testing.T, v View) map[ItemID]MenuItem {
	t.Helper()
	m := map[ItemID]MenuItem{}
	for _, it := range v.Menu() {
		if it.Separator {
			continue
		}
		if _, dup := m[it.ID]; dup {
			t.Fatalf("duplicate item %q", it.ID)
		}
		m[it.ID] = it
	}
	return m
}

func TestMenu(t *testing.T) {
	now := time.Now()
	up := ViewOf(localapi.Status{State: "ok", Queue: localapi.QueueStatus{Pending: 7}}, nil, now)
	paused := ViewOf(localapi.Status{State: "paused"}, nil, now)
	auth := ViewOf(localapi.Status{State: "error", Moka: localapi.MokaStatus{Enabled: true, Configured: true, NeedsAuthorization: true}}, nil, now)
	down := ViewOf(localapi.Status{}, localapi.ErrNotRunning, now)

	// The structure never changes: same IDs, same order, same separators.
	shape := func(v View) string {
		var ids []string
		for _, it := range v.Menu() {
			if it.Separator {
				ids = append(ids, "--")
			} else {
				ids = append(ids, string(it.ID))
			}
		}
		return strings.Join(ids, " ")
	}
	want := "header line1 line2 line3 line4 line5 line6 line7 -- sync pause connect-moka -- dashboard config logs -- quit"
	for _, v := range []View{up, paused, auth, down} {
		if got := shape(v); got != want {
			t.Errorf("menu shape\n got %s\nwant %s", got, want)
		}
	}

	type state struct {
		label            string
		enabled, visible bool
	}
	check := func(name string, v View, id ItemID, want state) {
		t.Helper()
		it := menuOf(t, v)[id]
		if got := (state{it.Label, it.Enabled, it.Visible}); got != want {
			t.Errorf("%s: %s = %+v, want %+v", name, id, got, want)
		}
	}
	// Status lines are greyed (never enabled); unused ones are hidden.
	check("up", up, ItemHeader, state{"PWBI Agent: all good", false, true})
	check("up", up, ItemLine(1), state{"Waiting to send: 7", false, true})
	check("up", up, ItemLine(3), state{"", false, false})
	check("down", down, ItemHeader, state{"Agent not running", false, true})
	check("down", down, ItemLine(0), state{"", false, false})

	check("up", up, ItemSync, state{"Sync now", true, true})
	check("up", up, ItemPause, state{"Pause syncing", true, true})
	check("paused", paused, ItemSync, state{"Sync now", false, true})
	check("paused", paused, ItemPause, state{"Resume syncing", true, true})
	check("down", down, ItemSync, state{"Sync now", false, true})
	check("down", down, ItemPause, state{"Pause syncing", false, true})

	check("up", up, ItemConnectMoka, state{"Connect Moka…", false, false})
	check("auth", auth, ItemConnectMoka, state{"Connect Moka…", true, true})
	check("down", down, ItemConnectMoka, state{"Connect Moka…", false, false})

	check("up", up, ItemDashboard, state{"Open dashboard", true, true})
	check("down", down, ItemDashboard, state{"Open dashboard", false, true})
	for _, v := range []View{up, down} {
		check("any", v, ItemConfig, state{"Open config file", true, true})
		check("any", v, ItemLogs, state{"Open logs folder", true, true})
		check("any", v, ItemQuit, state{"Quit", true, true})
	}
}

func TestURLs(t *testing.T) {
	if got := DashboardURL("http://127.0.0.1:8687"); got != "http://127.0.0.1:8687/" {
		t.Errorf("dashboard %q", got)
	}
	if got := ConnectMokaURL("http://127.0.0.1:8687/"); got != "http://127.0.0.1:8687/oauth/moka/start" {
		t.Errorf("connect %q", got)
	}
}

func TestTooltipFitsWindows(t *testing.T) {
	st := localapi.Status{State: "offline", Queue: localapi.QueueStatus{Pending: 1 << 62}}
	v := ViewOf(st, nil, time.Now())
	if n := len(utf16.Encode([]rune(v.Tooltip))); n > MaxTooltip {
		t.Errorf("tooltip is %d UTF-16 units: %q", n, v.Tooltip)
	}
	long := clipUTF16(strings.Repeat("😀", 100), MaxTooltip)
	if n := len(utf16.Encode([]rune(long))); n > MaxTooltip || !strings.HasSuffix(long, "…") {
		t.Errorf("clipUTF16: %d units %q", n, long)
	}
	if got := clip("a\nb   c", 10); got != "a b c" {
		t.Errorf("clip %q", got)
	}
}
