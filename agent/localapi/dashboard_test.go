package localapi

import (
	"html"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/internal/i18n"
)

var testNow = time.Date(2026, 3, 10, 14, 30, 0, 0, time.UTC)

func ptr(t time.Time) *time.Time { return &t }

// busyStatus is a cafe with three outlets, a backlog and some trouble.
func busyStatus() Status {
	return Status{
		State:     StateOffline,
		Version:   "1.4.2",
		AgentID:   "kopi-kenangan-12",
		StartedAt: ptr(testNow.Add(-26 * time.Hour)),
		Problems:  []string{"Cannot reach the PWBI cloud: dial tcp: connection refused"},
		Config: ConfigStatus{
			Path: `C:\ProgramData\PWBI\Agent\config.toml`, Generation: 3, LoadedAt: ptr(testNow.Add(-2 * time.Hour)),
		},
		Moka: MokaStatus{
			Enabled: true, Configured: true,
			Outlets: []OutletStatus{
				{ID: "101", Name: "Kopi Senja Kemang", LastSyncAt: ptr(testNow.Add(-5 * time.Minute)), Transactions: 12840},
				{ID: "102", Name: "Kopi Senja Bintaro", LastSyncAt: ptr(testNow.Add(-3*time.Hour - 12*time.Minute)),
					LastError: "Moka answered 503 Service Unavailable", Transactions: 977},
				{ID: "103", Name: `<script>alert("x")</script> & Co`},
			},
			LastPollAt: ptr(testNow.Add(-5 * time.Minute)),
			NextPollAt: ptr(testNow.Add(2 * time.Minute)),
		},
		Queue: QueueStatus{Pending: 1234, PendingBytes: 3 << 20, DeadLetter: 2, OldestPendingAt: ptr(testNow.Add(-(49*time.Hour + 10*time.Minute)))},
		Upstream: UpstreamStatus{
			Configured: true, Online: false, LastSuccessAt: ptr(testNow.Add(-49 * time.Hour)),
			LastError: "dial tcp 203.0.113.7:443: connection refused", NextRetryAt: ptr(testNow.Add(40 * time.Second)),
			Delivered: 88012,
		},
		Checkout: CheckoutStatus{Enabled: true, Listen: "0.0.0.0:8688", OpenOrders: 4},
		Store:    StoreStatus{FileSize: 48 << 20},
	}
}

func render(t *testing.T, st Status, path string, hdr map[string]string) (int, string) {
	t.Helper()
	b := &fakeBackend{st: st}
	h := NewServer(b, ServerOptions{Now: func() time.Time { return testNow }}).Handler()
	w := do(h, "GET", path, "", hdr)
	if ct := w.Header().Get("Content-Type"); w.Code == 200 && ct != "text/html; charset=utf-8" {
		t.Fatalf("content type %q", ct)
	}
	return w.Code, w.Body.String()
}

// text strips tags, roughly what a person reads.
func text(page string) string {
	page = regexp.MustCompile(`(?s)<style>.*?</style>|<svg.*?</svg>`).ReplaceAllString(page, "")
	page = regexp.MustCompile(`<[^>]*>`).ReplaceAllString(page, " ")
	return strings.Join(strings.Fields(html.UnescapeString(page)), " ")
}

func TestDashboardRenders(t *testing.T) {
	code, page := render(t, busyStatus(), "/", nil)
	if code != 200 {
		t.Fatalf("HTTP %d", code)
	}
	txt := text(page)
	for _, want := range []string{
		"Offline",
		"Sales are kept safe on this PC",
		"Kopi Senja Kemang", "Kopi Senja Bintaro",
		"5 min ago", "3 h 12 min ago", "never", // outlet 103 never synced
		"12,840", "Moka answered 503 Service Unavailable",
		"1,234 records", "2 days 1 h", "3.0 MB", "Rejected records 2", "pwbi-agent queue dead",
		"Not connected", "2 days 1 h ago", "in 40 s", "connection refused", "88,012",
		"Tablet checkout", "4 open orders", "0.0.0.0:8688",
		`C:\ProgramData\PWBI\Agent\config.toml`, "version #3", "48.0 MB",
		"Cannot reach the PWBI cloud",
		"Agent version 1.4.2", "kopi-kenangan-12", "running for 1 day 2 h", "Waiting for the first sync", "Sync now", "Pause",
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// The exact time is in the tooltip.
	if !strings.Contains(page, `title="`+testNow.Add(-5*time.Minute).Local().Format("2 Jan 2006 15:04:05 MST")+`"`) {
		t.Error("no exact time tooltip")
	}
	// Escaped, never executed.
	if strings.Contains(page, "<script") {
		t.Fatal("outlet name injected a script element")
	}
	if !strings.Contains(page, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co") {
		t.Error("outlet name not shown escaped")
	}
	for _, want := range []string{
		`<meta http-equiv="refresh" content="5; url=/">`,
		`<form method="post" action="/v1/sync">`,
		`<form method="post" action="/v1/pause">`,
		`class="banner offline"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	// No external asset, no script: the page works offline and under the CSP.
	for _, bad := range []string{"<script", `rel="stylesheet"`, "onclick", "javascript:", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %s", bad)
		}
	}
	if regexp.MustCompile(`(src|href)="https?://`).MatchString(page) {
		t.Error("page loads an external asset")
	}
	if strings.Contains(page, "Sync started") {
		t.Error("flash without an action")
	}
}

func TestDashboardEmptyStatus(t *testing.T) {
	code, page := render(t, Status{}, "/", nil)
	if code != 200 {
		t.Fatalf("HTTP %d", code)
	}
	txt := text(page)
	for _, want := range []string{"Status unknown", "0 records", "Rejected records 0", "Agent version —", "—"} {
		if !strings.Contains(txt, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"0001", "ago ago", "<no value>", "%!"} {
		if strings.Contains(txt, bad) {
			t.Errorf("page shows %q: %s", bad, txt)
		}
	}
	if strings.Contains(page, `id="checkout"`) {
		t.Error("checkout shown while disabled")
	}
}

func TestDashboardStates(t *testing.T) {
	for state, want := range map[string]string{
		StateOK:      "All good",
		StateSyncing: "Syncing",
		StateOffline: "Offline",
		StateError:   "Needs attention",
		StatePaused:  "Paused",
	} {
		st := busyStatus()
		st.State = state
		_, page := render(t, st, "/", nil)
		if !strings.Contains(page, `<h1>`+want+`</h1>`) || !strings.Contains(page, `class="banner `+state) {
			t.Errorf("%s: headline %q missing", state, want)
		}
		paused := strings.Contains(page, `action="/v1/resume"`)
		if paused != (state == StatePaused) {
			t.Errorf("%s: resume button shown = %v", state, paused)
		}
		if disabled := strings.Contains(page, `id="sync-now" disabled`); disabled != (state == StatePaused) {
			t.Errorf("%s: sync disabled = %v", state, disabled)
		}
	}
}

func TestDashboardConfigError(t *testing.T) {
	st := busyStatus()
	st.State = StateError
	st.Config.Error = `config.toml:12: unknown key "upstream.tokne"`
	st.Config.RestartRequired = []string{"local_api.listen"}
	_, page := render(t, st, "/", nil)
	if !strings.Contains(page, `id="config-error"`) || !strings.Contains(text(page), `unknown key "upstream.tokne"`) {
		t.Error("config error not shown")
	}
	if !strings.Contains(text(page), "Restart the agent to apply: local_api.listen") {
		t.Error("restart-required settings not shown")
	}
}

func TestDashboardFlash(t *testing.T) {
	for path, want := range map[string]string{
		"/?synced=1":   "Sync started",
		"/?paused=1":   "Syncing is paused.",
		"/?resumed=1":  "Syncing resumed.",
		"/?synced=<b>": "",
		"/?x=1":        "",
	} {
		_, page := render(t, busyStatus(), path, nil)
		has := strings.Contains(page, `id="flash"`)
		if has != (want != "") || (want != "" && !strings.Contains(page, want)) {
			t.Errorf("%s: flash shown = %v, want %q", path, has, want)
		}
	}
	// Only our own redirect may make the page say something was done.
	_, page := render(t, busyStatus(), "/?synced=1", map[string]string{"Sec-Fetch-Site": "cross-site"})
	if strings.Contains(page, "Sync started") {
		t.Error("a link from another site made the page claim a sync")
	}
}

func TestFormats(t *testing.T) {
	en := fmtr{p: i18n.New("en"), now: testNow, loc: time.UTC}
	id := fmtr{p: i18n.New("id"), now: testNow, loc: time.UTC}
	for d, want := range map[time.Duration]string{
		0: "0 s", 45 * time.Second: "45 s", 5 * time.Minute: "5 min", 2 * time.Hour: "2 h",
		2*time.Hour + 5*time.Minute: "2 h 5 min", 24 * time.Hour: "1 day", 75 * time.Hour: "3 days 3 h", -time.Second: "0 s",
	} {
		if got := en.duration(d); got != want {
			t.Errorf("duration(%v) = %q, want %q", d, got, want)
		}
	}
	for d, want := range map[time.Duration]string{
		45 * time.Second: "45 dtk", 5 * time.Minute: "5 mnt", 2*time.Hour + 5*time.Minute: "2 jam 5 mnt",
		24 * time.Hour: "1 hari", 75 * time.Hour: "3 hari 3 jam",
	} {
		if got := id.duration(d); got != want {
			t.Errorf("id duration(%v) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := en.count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
	if got := id.count(1234567); got != "1.234.567" {
		t.Errorf("id count = %q", got)
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KB", 3 << 20: "3.0 MB", 5 << 40: "5.0 TB", 5 << 50: "5,120.0 TB"} {
		if got := en.p.Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
	if got := en.ago(nil, "never").Text; got != "never" {
		t.Errorf("ago(nil) = %q", got)
	}
	if got := en.ago(ptr(testNow.Add(-3*time.Second)), "").Text; got != "just now" {
		t.Errorf("ago(3s) = %q", got)
	}
	if got := en.ago(ptr(testNow.Add(3*time.Minute)), "").Text; got != "in 3 min" {
		t.Errorf("ago(future) = %q", got)
	}
	if got := id.ago(ptr(testNow.Add(-5*time.Minute)), "").Text; got != "5 mnt lalu" {
		t.Errorf("id ago = %q", got)
	}
	if got := id.ago(ptr(testNow.Add(3*time.Minute)), "").Text; got != "3 mnt lagi" {
		t.Errorf("id ago(future) = %q", got)
	}
	// Exact times are in the outlets' zone, written the reader's way.
	jkt, err := time.LoadLocation("Asia/Jakarta")
	if err != nil {
		t.Skip("no time zone database")
	}
	id.loc, en.loc = jkt, jkt
	if got := id.exact(testNow); got != "10 Mar 2026 21.30.00 WIB" {
		t.Errorf("id exact = %q", got)
	}
	if got := en.exact(testNow); got != "10 Mar 2026 21:30:00 WIB" {
		t.Errorf("en exact = %q", got)
	}
}

// One card per enabled sink, each with its own state in plain words, what
// waits for it, what it rejected and what is wrong; a disabled sink has no
// card; with none enabled, the PWBI cloud's card says sales stay on the PC.
func TestDashboardSinkCards(t *testing.T) {
	st := busyStatus()
	st.Sinks = []SinkStatus{
		{Name: "upstream", Title: "PWBI cloud", Enabled: true, Configured: true, Online: true,
			LastSuccessAt: ptr(testNow.Add(-30 * time.Second)), Delivered: 88012},
		{Name: "nats", Title: "NATS JetStream", Enabled: true, Configured: true, Health: SinkHealthOffline,
			Problem: "cannot reach NATS at nats://10.0.0.5:4222: connection refused", LastError: "dial tcp: connection refused",
			Pending: 1234, PendingBytes: 3 << 20, OldestPendingAt: ptr(testNow.Add(-2 * time.Hour)), DeadLetters: 2,
			NextRetryAt: ptr(testNow.Add(40 * time.Second))},
		{Name: "jurnal", Title: "Jurnal", Enabled: false},
	}
	_, page := render(t, st, "/", nil)
	card := func(name string) string {
		t.Helper()
		i := strings.Index(page, `id="sink-`+name+`"`)
		if i < 0 {
			t.Fatalf("no card for %s", name)
		}
		j := strings.Index(page[i:], "</section>")
		return text(page[i : i+j])
	}
	up := card("upstream")
	for _, want := range []string{"PWBI cloud", "Connected", "Waiting for it 0 records", "Rejected by it 0", "Last successful send 30 s ago", "88,012"} {
		if !strings.Contains(up, want) {
			t.Errorf("upstream card lacks %q: %s", want, up)
		}
	}
	nats := card("nats")
	for _, want := range []string{"NATS JetStream", "Offline, will retry by itself", "1,234 records (3.0 MB), oldest 2 h ago",
		"Rejected by it 2 pwbi-agent queue dead --sink nats", "Last successful send never", "Next try in 40 s", "cannot reach NATS at nats://10.0.0.5:4222"} {
		if !strings.Contains(nats, want) {
			t.Errorf("nats card lacks %q: %s", want, nats)
		}
	}
	if strings.Contains(page, `id="sink-jurnal"`) {
		t.Error("a card for a sink that is not enabled")
	}
	if !strings.Contains(page, `class="conn off" id="state-nats"`) || !strings.Contains(page, `class="conn on" id="state-upstream"`) {
		t.Error("sink states not coloured")
	}

	st.Sinks[1].Health, st.Sinks[1].Problem = SinkHealthError, "NATS refuses the agent's credentials"
	if nats := func() string { _, page = render(t, st, "/", nil); return card("nats") }(); !strings.Contains(nats, "Not accepting sales") ||
		!strings.Contains(nats, "refuses the agent's credentials") {
		t.Errorf("nats card in error: %s", nats)
	}

	// A problem the sink worded as a catalogue message reads in the
	// page's language (regression: the Indonesian card showed the English
	// sentence).
	st.Sinks[0].Health, st.Sinks[0].Online = SinkHealthError, false
	st.Sinks[0].Problem = "the upstream answered with a web page, not an acknowledgement: is a Wi-Fi login page in the way?"
	st.Sinks[0].ProblemCode = "HealthUpstreamWebPage"
	for lang, want := range map[string]string{"en": st.Sinks[0].Problem, "id": "login ke Wi-Fi"} {
		_, page = render(t, st, "/?lang="+lang, nil)
		if c := card("upstream"); !strings.Contains(c, want) || (lang == "id" && strings.Contains(c, "web page")) {
			t.Errorf("%s: the upstream card's problem: %s", lang, c)
		}
	}
	// A code this build does not know (a newer agent's) shows the
	// sentence as it came, in every language.
	st.Sinks[0].Problem, st.Sinks[0].ProblemCode = "the upstream says something new", "HealthFromTheFuture"
	_, page = render(t, st, "/?lang=id", nil)
	if c := card("upstream"); !strings.Contains(c, st.Sinks[0].Problem) {
		t.Errorf("id: the upstream card's problem of an unknown code: %s", c)
	}
	st.Sinks[0].ProblemCode = ""

	for i := range st.Sinks {
		st.Sinks[i].Enabled, st.Sinks[i].Configured = false, false
	}
	_, page = render(t, st, "/", nil)
	if c := card("upstream"); !strings.Contains(c, "No PWBI cloud address is set, so sales are only kept on this PC.") {
		t.Errorf("with no sink enabled: %s", c)
	}
	if strings.Contains(page, `id="sink-nats"`) {
		t.Error("a card for a disabled nats")
	}
}

// A fresh install (issue 12): the Moka Open API is the default, and the
// dashboard guides through its two steps instead of offering a "Connect
// Moka" button that cannot work before the client id and secret are set.
func TestDashboardGuidesAFreshInstall(t *testing.T) {
	st := Status{State: StateOK, Moka: MokaStatus{Enabled: true, API: "oauth", NeedsAuthorization: true,
		Setup: "Moka is not connected yet: set moka.client_id and moka.client_secret"}}
	_, page := render(t, st, "/", nil)
	if !strings.Contains(page, `id="moka-setup"`) || !strings.Contains(text(page), "moka.client_id") ||
		!strings.Contains(text(page), `press "Connect Moka"`) {
		t.Errorf("no setup steps for a fresh install:\n%s", text(page))
	}
	if strings.Contains(page, `id="connect-moka"`) {
		t.Error("Connect Moka offered before the client id and secret are set")
	}
	// Once they are set, the button appears.
	st.Moka.Configured, st.Moka.Setup = true, ""
	_, page = render(t, st, "/", nil)
	if !strings.Contains(page, `id="connect-moka"`) || strings.Contains(page, `id="moka-setup"`) {
		t.Error("no Connect Moka button once the client is set up")
	}
}

// The checkout card tells the technician what the tablets pin, and warns
// of plain HTTP on the shop network.
func TestDashboardCheckoutTLS(t *testing.T) {
	st := busyStatus()
	st.Checkout.Scheme, st.Checkout.TLSKeyPin = "https", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	_, page := render(t, st, "/", nil)
	if !strings.Contains(text(page), "https://0.0.0.0:8688") || !strings.Contains(page, st.Checkout.TLSKeyPin) {
		t.Errorf("checkout card lacks the scheme or the pin:\n%s", text(page))
	}
	st.Checkout.Scheme, st.Checkout.TLSKeyPin, st.Checkout.Warning = "http", "", "checkout.tls = false: tablet tokens cross the shop network in plain text"
	_, page = render(t, st, "/", nil)
	if !strings.Contains(page, `id="checkout-warning"`) {
		t.Error("no warning for plain HTTP on the shop network")
	}
}
