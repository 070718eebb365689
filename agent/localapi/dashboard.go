package localapi

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The dashboard (GET /) is one server-rendered page for the person at the
// PC: no script, no external asset, refreshed by the browser every few
// seconds. It renders from Backend.Status only. Its buttons are HTML forms
// posting to the API (see Server.action).

//go:embed dashboard.html
var dashboardHTML string

var dashboardTmpl = template.Must(template.New("dashboard").Parse(dashboardHTML))

// Query keys the form actions redirect with ("/?synced=1").
const (
	actionSync   = "synced"
	actionPause  = "paused"
	actionResume = "resumed"
)

var actionDoneText = map[string]string{
	actionSync:   "Sync started. New sales will show here in a moment.",
	actionPause:  "Syncing is paused.",
	actionResume: "Syncing resumed.",
}

var actionFailedText = map[string]string{
	actionSync:   "Sync could not start: ",
	actionPause:  "Could not pause: ",
	actionResume: "Could not resume: ",
}

type flash struct {
	Error bool
	Text  string
}

// stateLook is how a state shows: colour class, headline, favicon.
type stateLook struct {
	Class    string
	Headline string
	Favicon  template.URL
}

func favicon(color string) template.URL {
	// A coloured dot, so the browser tab shows the state too. A constant
	// built here, never from input, hence safe as a URL.
	return template.URL("data:image/svg+xml," + strings.ReplaceAll(
		`<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'><circle cx='8' cy='8' r='7' fill='`+color+`'/></svg>`,
		"#", "%23"))
}

var stateLooks = map[string]stateLook{
	StateOK:      {"ok", "All good", favicon("#1a7f37")},
	StateSyncing: {"syncing", "Syncing", favicon("#0969da")},
	StateOffline: {"offline", "Offline", favicon("#bc4c00")},
	StateError:   {"error", "Needs attention", favicon("#cf222e")},
	StatePaused:  {"paused", "Paused", favicon("#6e7781")},
}

var unknownLook = stateLook{"paused", "Status unknown", favicon("#6e7781")}

// timeView is a moment shown as "5 min ago", with the exact time as a
// tooltip.
type timeView struct {
	Text  string
	Exact string // empty when unknown
}

type outletView struct {
	Name, ID     string
	LastSync     timeView
	LastError    string
	Transactions string
}

// oauthView is the Moka Open API grant on the dashboard.
type oauthView struct {
	BusinessID string
	Authorized timeView
	Refreshed  timeView
}

type importView struct {
	Running bool
	Percent int
	Text    string
	Error   string
}

// sinkView is a delivery target's card.
type sinkView struct {
	Name, Title string
	// Configured: it has somewhere to deliver to; otherwise NotSetUp says
	// what that means for the person at the PC.
	Configured bool
	NotSetUp   string
	// State is its condition in plain words; StateClass colours it: "on",
	// "off" (retrying by itself) or "err" (a person must act).
	State, StateClass     string
	Pending, PendingBytes string
	Oldest                timeView
	Dead                  string
	HasDead               bool
	LastSuccess           timeView
	NextRetry             timeView
	Delivered             string
	// Problem is the sentence saying what is wrong, or the last error.
	Problem string
}

type dashboardView struct {
	Look     stateLook
	Summary  string
	Flash    *flash
	Problems []string
	Paused   bool

	MokaEnabled, MokaConfigured bool
	Outlets                     []outletView
	LastPoll, NextPoll          timeView
	Import                      *importView

	// MokaNeedsAuth shows the "Connect Moka" button (oauth dialect, set
	// up); MokaOAuthSetup the two steps of a fresh install (the client id
	// and secret missing), with MokaSetup saying what exactly.
	MokaNeedsAuth  bool
	MokaOAuthSetup bool
	MokaSetup      string
	// MokaOAuth describes a working oauth grant; nil otherwise.
	MokaOAuth *oauthView

	Pending, PendingBytes, Dead string
	HasDead, Full               bool
	Oldest                      string
	OldestExact                 string

	// Sinks are the cards of the delivery targets: one per enabled sink,
	// or the PWBI cloud's alone, saying it is not set up, when none is.
	Sinks []sinkView

	Checkout                   bool
	CheckoutListen, OpenOrders string
	// CheckoutScheme is "https" or "http"; CheckoutPin the SHA-256 of the
	// certificate's public key the tablets pin; CheckoutWarning a risk.
	CheckoutScheme, CheckoutPin, CheckoutWarning string

	ConfigPath, ConfigError string
	Generation              string
	ConfigLoaded            timeView
	RestartRequired         []string

	DBSize     string
	Quarantine *QuarantineStatus
	QuarAt     timeView

	Version, AgentID string
	Uptime           string // empty when unknown
	Updated          string
}

func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	var f *flash
	// Only our own redirect says what was done; a link from elsewhere
	// must not make the page claim it.
	if !crossSite(r) {
		q := r.URL.Query()
		for _, k := range []string{actionSync, actionPause, actionResume} {
			if q.Get(k) == "1" {
				f = &flash{Text: actionDoneText[k]}
				break
			}
		}
	}
	s.renderDashboard(w, r, http.StatusOK, f)
}

func (s *Server) renderDashboard(w http.ResponseWriter, r *http.Request, code int, f *flash) {
	v := buildView(s.backend.Status(r.Context()), s.now(), f)
	var buf bytes.Buffer
	if err := dashboardTmpl.Execute(&buf, v); err != nil {
		s.log.Error("Rendering the dashboard failed", "err", err)
		writeError(w, http.StatusInternalServerError, "rendering the dashboard failed")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

func buildView(st Status, now time.Time, f *flash) dashboardView {
	look, ok := stateLooks[st.State]
	if !ok {
		look = unknownLook
	}
	v := dashboardView{
		Look:     look,
		Flash:    f,
		Problems: st.Problems,
		Paused:   st.State == StatePaused,

		MokaEnabled:    st.Moka.Enabled,
		MokaConfigured: st.Moka.Configured,
		LastPoll:       ago(st.Moka.LastPollAt, now, "never"),
		NextPoll:       ago(st.Moka.NextPollAt, now, "—"),

		Pending:      count(st.Queue.Pending),
		PendingBytes: bytesText(st.Queue.PendingBytes),
		Dead:         count(st.Queue.DeadLetter),
		HasDead:      st.Queue.DeadLetter > 0,
		Full:         st.Queue.Full,
		Oldest:       "—",

		Sinks: sinkViews(st, now),

		Checkout:        st.Checkout.Enabled,
		CheckoutListen:  orDash(st.Checkout.Listen),
		CheckoutScheme:  st.Checkout.Scheme,
		CheckoutPin:     st.Checkout.TLSKeyPin,
		CheckoutWarning: st.Checkout.Warning,
		OpenOrders:      count(int64(st.Checkout.OpenOrders)),

		ConfigPath:      orDash(st.Config.Path),
		ConfigError:     st.Config.Error,
		Generation:      "—",
		ConfigLoaded:    ago(st.Config.LoadedAt, now, "—"),
		RestartRequired: st.Config.RestartRequired,

		DBSize:     "—",
		Quarantine: st.Store.Quarantine,

		Version: orDash(st.Version),
		AgentID: st.AgentID,
		Updated: now.Local().Format("15:04:05"),
	}
	if o := st.Moka.OAuth; o != nil && o.Connected && !st.Moka.NeedsAuthorization {
		v.MokaOAuth = &oauthView{
			BusinessID: o.BusinessID,
			Authorized: ago(o.AuthorizedAt, now, "—"),
			Refreshed:  ago(o.LastRefreshAt, now, "not yet"),
		}
	}
	v.MokaNeedsAuth = st.Moka.Enabled && st.Moka.NeedsAuthorization && st.Moka.Configured
	v.MokaOAuthSetup = st.Moka.Enabled && !st.Moka.Configured && st.Moka.API == "oauth"
	v.MokaSetup = st.Moka.Setup
	if st.Queue.Pending > 0 && st.Queue.OldestPendingAt != nil {
		v.Oldest = duration(now.Sub(*st.Queue.OldestPendingAt))
		v.OldestExact = exact(*st.Queue.OldestPendingAt)
	}
	if st.StartedAt != nil && !st.StartedAt.IsZero() {
		v.Uptime = duration(now.Sub(*st.StartedAt))
	}
	if st.Config.Generation > 0 {
		v.Generation = "#" + strconv.FormatUint(st.Config.Generation, 10)
	}
	if st.Store.FileSize > 0 {
		v.DBSize = bytesText(st.Store.FileSize)
	}
	if q := st.Store.Quarantine; q != nil {
		v.QuarAt = ago(&q.At, now, "—")
	}
	for _, o := range st.Moka.Outlets {
		name := o.Name
		if name == "" {
			name = "Outlet " + o.ID
		}
		v.Outlets = append(v.Outlets, outletView{
			Name: name, ID: o.ID,
			LastSync:     ago(o.LastSyncAt, now, "never"),
			LastError:    o.LastError,
			Transactions: count(o.Transactions),
		})
	}
	if imp := st.Moka.Import; imp != nil {
		iv := &importView{Running: imp.Running, Error: imp.Error}
		if imp.DaysTotal > 0 {
			iv.Percent = min(100, max(0, imp.DaysDone*100/imp.DaysTotal))
		}
		verb := "Imported"
		if imp.Running {
			verb = "Importing"
		}
		iv.Text = fmt.Sprintf("%s past sales since %s: %d of %d days, %s records.",
			verb, orDash(imp.Since), imp.DaysDone, imp.DaysTotal, count(imp.Records))
		v.Import = iv
	}
	v.Summary = summary(st, v)
	return v
}

// sinkViews builds the sink cards. An agent from before sinks (no
// Status.Sinks) gets its upstream's card.
func sinkViews(st Status, now time.Time) []sinkView {
	sinks := st.Sinks
	if len(sinks) == 0 {
		u := st.Upstream
		sinks = []SinkStatus{{
			Name: "upstream", Title: "PWBI cloud", Enabled: u.Configured, Configured: u.Configured,
			Online: u.Online, Problem: u.Problem, LastSuccessAt: u.LastSuccessAt, LastError: u.LastError,
			NextRetryAt: u.NextRetryAt, Delivered: u.Delivered, Pending: st.Queue.Pending,
			PendingBytes: st.Queue.PendingBytes, OldestPendingAt: st.Queue.OldestPendingAt,
		}}
	}
	var out []sinkView
	for _, s := range sinks {
		if s.Enabled {
			out = append(out, sinkCard(s, now))
		}
	}
	if len(out) == 0 && len(sinks) > 0 {
		// Nothing enabled: the first sink (the PWBI cloud) says so.
		v := sinkCard(sinks[0], now)
		v.Configured = false
		v.NotSetUp = "No " + sinks[0].Title + " address is set, so sales are only kept on this PC."
		out = append(out, v)
	}
	return out
}

func sinkCard(s SinkStatus, now time.Time) sinkView {
	title := s.Title
	if title == "" {
		title = s.Name
	}
	v := sinkView{
		Name: s.Name, Title: title, Configured: s.Configured,
		Pending:      count(s.Pending),
		PendingBytes: bytesText(s.PendingBytes),
		Oldest:       ago(s.OldestPendingAt, now, "—"),
		Dead:         count(s.DeadLetters),
		HasDead:      s.DeadLetters > 0,
		LastSuccess:  ago(s.LastSuccessAt, now, "never"),
		NextRetry:    ago(s.NextRetryAt, now, "—"),
		Delivered:    count(int64(s.Delivered)),
		Problem:      s.Problem,
	}
	if v.Problem == "" && s.LastError != "" {
		v.Problem = "Last error: " + s.LastError
	}
	if s.Pending == 0 {
		v.Oldest = timeView{Text: "—"}
	}
	switch {
	case !s.Configured:
		v.NotSetUp = "Not set up yet: sales wait on this PC until it is."
	case s.Online:
		v.State, v.StateClass = "Connected", "on"
	case s.Health == SinkHealthError:
		v.State, v.StateClass = "Not accepting sales", "err"
	case s.Health == SinkHealthOffline:
		v.State, v.StateClass = "Offline, will retry by itself", "off"
	case s.LastError == "" && s.LastSuccessAt == nil:
		v.State, v.StateClass = "Nothing sent yet", "off"
	default:
		v.State, v.StateClass = "Not connected", "off"
	}
	return v
}

// summary is the one line under the banner's headline, for someone who
// reads nothing else.
func summary(st Status, v dashboardView) string {
	switch st.State {
	case StateOK:
		if st.Moka.LastPollAt != nil {
			return "Sales from Moka are being sent to PWBI. Last checked " + v.LastPoll.Text + "."
		}
		return "Sales from Moka are being sent to PWBI."
	case StateSyncing:
		if st.Queue.Pending > 0 {
			return "Sending sales to PWBI now: " + v.Pending + " waiting."
		}
		return "Fetching the latest sales from Moka now."
	case StateOffline:
		return "No connection to the PWBI cloud. Sales are kept safe on this PC and will be sent automatically when the connection is back."
	case StateError:
		if len(st.Problems) == 1 {
			return st.Problems[0]
		}
		return "Something needs fixing: see the list below. Sales already saved on this PC are safe."
	case StatePaused:
		return "Syncing is paused: nothing is fetched from Moka or sent to PWBI until you press Resume. Sales already saved on this PC are safe."
	}
	return "The agent did not say what state it is in."
}

func ago(t *time.Time, now time.Time, zero string) timeView {
	if t == nil || t.IsZero() {
		return timeView{Text: zero}
	}
	d := now.Sub(*t)
	tv := timeView{Exact: exact(*t)}
	switch {
	case d < -5*time.Second:
		tv.Text = "in " + duration(-d)
	case d < 10*time.Second:
		tv.Text = "just now"
	default:
		tv.Text = duration(d) + " ago"
	}
	return tv
}

func exact(t time.Time) string {
	return t.Local().Format("Mon 2 Jan 2006, 15:04:05 MST")
}

// duration is a rough, readable length: "45 s", "5 min", "2 h 5 min",
// "3 days 4 h".
func duration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + " s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min"
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return strconv.Itoa(h) + " h"
		}
		return fmt.Sprintf("%d h %d min", h, m)
	default:
		days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
		unit := "days"
		if days == 1 {
			unit = "day"
		}
		if h == 0 {
			return fmt.Sprintf("%d %s", days, unit)
		}
		return fmt.Sprintf("%d %s %d h", days, unit, h)
	}
}

// count writes n with thousands separators: 12,345.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func bytesText(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	units := []string{"KB", "MB", "GB", "TB"}
	f, i := float64(n)/1024, 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + units[i]
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
