package localapi

import (
	"bytes"
	"context"
	_ "embed"
	"html"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pwbi/edge-agent/agent/health"
	"github.com/pwbi/edge-agent/internal/i18n"
)

// The dashboard (GET /) is one server-rendered page for the person at the
// PC: no script, no external asset, refreshed by the browser every few
// seconds. It renders from Backend.Status and, when the backend keeps it,
// the day summary (SummaryBackend) — or, when reading it fails, a sentence
// saying so where the figures would be: they never just vanish. Its
// buttons are HTML forms posting to the API (see Server.action).
//
// It speaks Bahasa Indonesia or English (issue 15): every word comes from
// the dashboard, common and health catalogues of internal/i18n. The
// language is the reader's choice from the page's switch (?lang=, kept in
// a cookie), else agent.language, else — for "auto" — the browser's
// Accept-Language. Money, dates and times are written the reader's way,
// times in the outlets' zone (moka.timezone).

//go:embed dashboard.html
var dashboardHTML string

// dashboard_jurnal.html is the Jurnal sink's list (its "jurnal" block).
//
//go:embed dashboard_jurnal.html
var dashboardJurnalHTML string

var dashboardTmpl = template.Must(template.Must(template.New("dashboard").Parse(dashboardHTML)).Parse(dashboardJurnalHTML))

// Query keys the form actions redirect with ("/?synced=1").
const (
	actionSync   = "synced"
	actionPause  = "paused"
	actionResume = "resumed"
)

// The messages of the actions: done, and failed.
var (
	actionDoneID   = map[string]string{actionSync: "DashSyncStarted", actionPause: "DashPausedDone", actionResume: "DashResumedDone"}
	actionFailedID = map[string]string{actionSync: "DashSyncFailed", actionPause: "DashPauseFailed", actionResume: "DashResumeFailed"}
)

// flash is what an action did: Action is its query key, Detail the error
// of a failed one.
type flash struct {
	Error  bool
	Action string
	Detail string
	Text   string // rendered
}

// langCookie keeps the reader's choice of the page's language switch.
const langCookie = "pwbi_lang"

// stateLook is how a state shows: colour class, headline, favicon.
type stateLook struct {
	Class    string
	Headline string // a message id until rendered
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
	StateOK:      {"ok", "CommonStateOK", favicon("#1a7f37")},
	StateSyncing: {"syncing", "CommonStateSyncing", favicon("#0969da")},
	StateOffline: {"offline", "CommonStateOffline", favicon("#bc4c00")},
	StateError:   {"error", "CommonStateError", favicon("#cf222e")},
	StatePaused:  {"paused", "CommonStatePaused", favicon("#6e7781")},
}

var unknownLook = stateLook{"paused", "CommonStateUnknown", favicon("#6e7781")}

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
	p *i18n.Printer
	// Lang is the page's language; Other the one its switch offers.
	Lang, Other string

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

	// Day is the day at a glance; nil when the backend keeps no summary.
	// When it keeps one that could not be read, Day.Unreadable says so.
	Day *dayView

	// Jurnal is the Jurnal sink's list (shown while it is enabled).
	Jurnal jurnalView

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

// T renders a message of the catalogues in the page's language; kv are
// pairs of template data ("Count", 3, …); a "Count" makes it a plural.
func (v dashboardView) T(id string, kv ...any) string {
	return v.p.Msg(id, pairs(kv))
}

// jurnalView is the dot of the "jurnal" block (dashboard_jurnal.html).
type jurnalView struct {
	p *i18n.Printer
	JurnalStatus
	// QuotaUntilText is when posting resumes, written out; "" when
	// unknown.
	QuotaUntilText string
	// ClockText is ClockProblem in the page's language.
	ClockText string
	Rows      []jurnalRow
}

type jurnalRow struct {
	JurnalOutletStatus
	Name                    string
	Synced                  timeView
	PostedText, WaitingText string
}

// T is dashboardView.T for the Jurnal block.
func (v jurnalView) T(id string, kv ...any) string {
	return v.p.Msg(id, pairs(kv))
}

func buildJurnal(js JurnalStatus, st Status, fm fmtr) jurnalView {
	v := jurnalView{p: fm.p, JurnalStatus: js, ClockText: js.ClockProblem}
	if js.ClockProblemCode != "" {
		v.ClockText = fm.p.Msg(js.ClockProblemCode, js.ClockProblemParams)
	}
	if js.QuotaUntil != nil && !js.QuotaUntil.IsZero() {
		v.QuotaUntilText = fm.p.DateTime(js.QuotaUntil.In(fm.loc))
	}
	names := map[string]string{}
	for _, o := range st.Moka.Outlets {
		names[o.ID] = o.Name
	}
	for _, o := range js.Outlets {
		v.Rows = append(v.Rows, jurnalRow{
			JurnalOutletStatus: o,
			Name:               outletName(fm.p, names[o.OutletID], o.OutletID),
			Synced:             fm.ago(o.LastSyncedAt, fm.p.T("CommonNever")),
			PostedText:         fm.count(int64(o.Posted)),
			WaitingText:        fm.count(int64(o.Waiting)),
		})
	}
	return v
}

// Code renders a message whose data are names to show as code (keys,
// commands): each value is escaped and put in <code>.
func (v dashboardView) Code(id string, kv ...any) template.HTML { return codeMsg(v.p, id, kv) }

// Code is dashboardView.Code for the Jurnal card.
func (v jurnalView) Code(id string, kv ...any) template.HTML { return codeMsg(v.p, id, kv) }

func codeMsg(p *i18n.Printer, id string, kv []any) template.HTML {
	data := pairs(kv)
	marks := make(map[string]string, len(data))
	for k, val := range data {
		mark := "\x00" + k + "\x00"
		marks[mark] = "<code>" + html.EscapeString(stringOf(val)) + "</code>"
		data[k] = mark
	}
	out := html.EscapeString(p.Msg(id, data))
	for mark, code := range marks {
		out = strings.ReplaceAll(out, mark, code)
	}
	return template.HTML(out) // every part escaped above
}

func pairs(kv []any) map[string]any {
	if len(kv) == 0 {
		return nil
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		k, _ := kv[i].(string)
		m[k] = kv[i+1]
	}
	return m
}

func stringOf(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	}
	return ""
}

func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	var f *flash
	// Only our own redirect says what was done; a link from elsewhere
	// must not make the page claim it.
	q := r.URL.Query()
	if !crossSite(r) {
		for _, k := range []string{actionSync, actionPause, actionResume} {
			if q.Get(k) == "1" {
				f = &flash{Action: k}
				break
			}
		}
	}
	// The language switch: the choice lasts, in a cookie, for this
	// browser. Any page may link to it: it changes nothing but words.
	if l := q.Get("lang"); l == i18n.English || l == i18n.Indonesian {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: l, Path: "/", MaxAge: 400 * 24 * 3600,
			HttpOnly: true, SameSite: http.SameSiteLaxMode})
	}
	s.renderDashboard(w, r, http.StatusOK, f)
}

// pageLanguage is the language of the page for r: the switch (?lang= or
// its cookie), else agent.language, else the browser's Accept-Language.
func pageLanguage(r *http.Request, setting string) string {
	if l := r.URL.Query().Get("lang"); l == i18n.English || l == i18n.Indonesian {
		return l
	}
	if c, err := r.Cookie(langCookie); err == nil && (c.Value == i18n.English || c.Value == i18n.Indonesian) {
		return c.Value
	}
	if setting == i18n.English || setting == i18n.Indonesian {
		return setting
	}
	return i18n.Match(r.Header.Values("Accept-Language")...)
}

func (s *Server) renderDashboard(w http.ResponseWriter, r *http.Request, code int, f *flash) {
	st := s.backend.Status(r.Context())
	p := i18n.New(pageLanguage(r, st.Language.Setting))
	var (
		sum       *Summary
		sumFailed bool
	)
	if sb, ok := s.backend.(SummaryBackend); ok {
		if got, err := sb.Summary(r.Context(), DefaultSummaryDays); err == nil {
			sum = &got
			s.dashSummaryLog.ok(r.Context(), s.log, "Dashboard summary readable again")
		} else {
			// The page says so in its words; the error, which may name
			// files, stays in the log.
			sumFailed = true
			s.dashSummaryLog.failed(r.Context(), s.log, "Dashboard summary failed", err)
		}
	}
	v := buildView(st, sum, sumFailed, s.now(), f, p)
	var buf bytes.Buffer
	if err := dashboardTmpl.Execute(&buf, v); err != nil {
		s.log.Error("Rendering the dashboard failed", "err", err)
		writeError(w, http.StatusInternalServerError, "rendering the dashboard failed")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", p.Lang())
	w.Header().Add("Vary", "Accept-Language, Cookie")
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// zone is the outlets' time zone (moka.timezone), where every time on the
// page is shown; the PC's own zone when unknown.
func zone(st Status) *time.Location {
	if st.Moka.Timezone != "" {
		if loc, err := time.LoadLocation(st.Moka.Timezone); err == nil {
			return loc
		}
	}
	return time.Local
}

// fmtr formats the page's numbers, sizes and moments.
type fmtr struct {
	p   *i18n.Printer
	now time.Time
	loc *time.Location
}

// failureLog logs a failure of something done every few seconds — the
// dashboard's page refreshes itself every 5 s, the tray asks for the
// summary every 3 — without a line each time: at Warn when it starts or
// its error changes, at Debug while it lasts, and at Info when it ends.
// It is safe for concurrent use.
type failureLog struct {
	mu      sync.Mutex
	failing bool
	last    string // the error of the failure going on
}

// failed logs msg with err, at Warn unless it is the failure going on.
func (l *failureLog) failed(ctx context.Context, log *slog.Logger, msg string, err error) {
	l.mu.Lock()
	fresh := !l.failing || err.Error() != l.last
	l.failing, l.last = true, err.Error()
	l.mu.Unlock()
	level := slog.LevelDebug
	if fresh {
		level = slog.LevelWarn
	}
	log.Log(ctx, level, msg, "err", err)
}

// ok logs msg, at Info, when it ends a failure.
func (l *failureLog) ok(ctx context.Context, log *slog.Logger, msg string) {
	l.mu.Lock()
	ended := l.failing
	l.failing, l.last = false, ""
	l.mu.Unlock()
	if ended {
		log.InfoContext(ctx, msg)
	}
}

// buildView builds the page. sum is the day summary, nil when the backend
// keeps none or, with sumFailed, when reading it failed: the today card
// then says so instead of showing figures.
func buildView(st Status, sum *Summary, sumFailed bool, now time.Time, f *flash, p *i18n.Printer) dashboardView {
	fm := fmtr{p: p, now: now, loc: zone(st)}
	look, ok := stateLooks[st.State]
	if !ok {
		look = unknownLook
	}
	look.Headline = p.T(look.Headline)
	never, dash := p.T("CommonNever"), "—"
	v := dashboardView{
		p:     p,
		Lang:  p.Lang(),
		Other: i18n.Indonesian,
		Look:  look,
		Flash: f,

		Paused: st.State == StatePaused,

		MokaEnabled:    st.Moka.Enabled,
		MokaConfigured: st.Moka.Configured,
		LastPoll:       fm.ago(st.Moka.LastPollAt, never),
		NextPoll:       fm.ago(st.Moka.NextPollAt, dash),

		Pending:      fm.count(st.Queue.Pending),
		PendingBytes: p.Bytes(st.Queue.PendingBytes),
		Dead:         fm.count(st.Queue.DeadLetter),
		HasDead:      st.Queue.DeadLetter > 0,
		Full:         st.Queue.Full,
		Oldest:       dash,

		Sinks: sinkViews(st, fm),

		Checkout:        st.Checkout.Enabled,
		CheckoutListen:  orDash(st.Checkout.Listen),
		CheckoutScheme:  st.Checkout.Scheme,
		CheckoutPin:     st.Checkout.TLSKeyPin,
		CheckoutWarning: st.Checkout.Warning,
		OpenOrders:      fm.count(int64(st.Checkout.OpenOrders)),

		ConfigPath:      orDash(st.Config.Path),
		ConfigError:     st.Config.Error,
		Generation:      dash,
		ConfigLoaded:    fm.ago(st.Config.LoadedAt, dash),
		RestartRequired: st.Config.RestartRequired,

		DBSize:     dash,
		Quarantine: st.Store.Quarantine,

		Version: orDash(st.Version),
		AgentID: st.AgentID,
		Updated: p.Time(now.In(fm.loc)),
	}
	if p.Lang() == i18n.Indonesian {
		v.Other = i18n.English
	}
	if f != nil {
		if f.Error {
			f.Text = p.T(actionFailedID[f.Action], map[string]any{"Error": f.Detail})
		} else {
			f.Text = p.T(actionDoneID[f.Action])
		}
	}
	v.Problems = problemTexts(st, p)
	if o := st.Moka.OAuth; o != nil && o.Connected && !st.Moka.NeedsAuthorization {
		v.MokaOAuth = &oauthView{
			BusinessID: o.BusinessID,
			Authorized: fm.ago(o.AuthorizedAt, dash),
			Refreshed:  fm.ago(o.LastRefreshAt, p.T("DashNotYet")),
		}
	}
	v.MokaNeedsAuth = st.Moka.Enabled && st.Moka.NeedsAuthorization && st.Moka.Configured
	v.MokaOAuthSetup = st.Moka.Enabled && !st.Moka.Configured && st.Moka.API == "oauth"
	v.MokaSetup = st.Moka.Setup
	if st.Queue.Pending > 0 && st.Queue.OldestPendingAt != nil {
		v.Oldest = fm.duration(now.Sub(*st.Queue.OldestPendingAt))
		v.OldestExact = fm.exact(*st.Queue.OldestPendingAt)
	}
	if st.StartedAt != nil && !st.StartedAt.IsZero() {
		v.Uptime = fm.duration(now.Sub(*st.StartedAt))
	}
	if st.Config.Generation > 0 {
		v.Generation = "#" + strconv.FormatUint(st.Config.Generation, 10)
	}
	if st.Store.FileSize > 0 {
		v.DBSize = p.Bytes(st.Store.FileSize)
	}
	if q := st.Store.Quarantine; q != nil {
		v.QuarAt = fm.ago(&q.At, dash)
	}
	for _, o := range st.Moka.Outlets {
		v.Outlets = append(v.Outlets, outletView{
			Name: outletName(p, o.Name, o.ID), ID: o.ID,
			LastSync:     fm.ago(o.LastSyncAt, never),
			LastError:    o.LastError,
			Transactions: fm.count(o.Transactions),
		})
	}
	if imp := st.Moka.Import; imp != nil {
		iv := &importView{Running: imp.Running, Error: imp.Error}
		if imp.DaysTotal > 0 {
			iv.Percent = min(100, max(0, imp.DaysDone*100/imp.DaysTotal))
		}
		id := "DashImportDone"
		if imp.Running {
			id = "DashImportRunning"
		}
		iv.Text = p.T(id, map[string]any{"Since": orDash(fm.day(imp.Since)), "Done": imp.DaysDone,
			"Total": imp.DaysTotal, "Records": fm.count(imp.Records)})
		v.Import = iv
	}
	switch {
	case sum != nil:
		v.Day = buildDay(*sum, st, fm)
	case sumFailed:
		v.Day = &dayView{Today: p.Date(now.In(fm.loc)), Unreadable: true}
	}
	v.Jurnal = buildJurnal(st.Jurnal, st, fm)
	v.Summary = summary(st, v, p)
	return v
}

func outletName(p *i18n.Printer, name, id string) string {
	if name != "" {
		return name
	}
	return p.T("DashOutletUnnamed", map[string]any{"ID": id})
}

// problemTexts are the problems in the page's language, from their codes
// when the agent sends them (else its own sentences), each a sentence
// starting with a capital. The config file's error is left out: the
// settings card shows it, once — and so are the settings waiting for a
// restart.
func problemTexts(st Status, p *i18n.Printer) []string {
	restart := len(st.Config.RestartRequired) > 0
	if len(st.ProblemDetails) != len(st.Problems) || len(st.ProblemDetails) == 0 {
		out := make([]string, 0, len(st.Problems))
		for _, t := range st.Problems {
			if st.Config.Error != "" && strings.Contains(t, st.Config.Error) ||
				restart && strings.HasPrefix(strings.ToLower(t), "restart the agent to apply") {
				continue
			}
			out = append(out, upperFirst(t))
		}
		return out
	}
	out := make([]string, 0, len(st.ProblemDetails))
	for _, d := range st.ProblemDetails {
		if d.Code == "HealthConfigError" && st.Config.Error != "" || d.Code == "HealthRestartRequired" && restart {
			continue
		}
		out = append(out, upperFirst(d.In(p)))
	}
	return out
}

// ProblemIn is the sink's Problem in p's language when the sink worded it
// as a message of the catalogue (ProblemCode), else as it came
// (health.Problem.In tells).
func (s SinkStatus) ProblemIn(p *i18n.Printer) string {
	if s.Problem == "" {
		return ""
	}
	return ProblemDetail{Code: s.ProblemCode, Params: s.ProblemParams, Text: s.Problem}.In(p)
}

// In is the problem in p's language, rendered from its code as the
// agent's health rules wrote it (a sink's name, an ErrorCode, a DetailCode
// inside it translated too), or its Text when the code is unknown here.
// The dashboard, the tray and the CLI all show problems through it.
func (d ProblemDetail) In(p *i18n.Printer) string {
	return health.Problem{Code: d.Code, Params: d.Params, Text: d.Text}.In(p)
}

func upperFirst(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if size == 0 || r == utf8.RuneError {
		return s
	}
	return string(unicode.ToUpper(r)) + s[size:]
}

// sinkTitle is a sink's card title in the page's language.
func sinkTitle(p *i18n.Printer, name, title string) string {
	if id := "CommonSink" + upperFirst(name) + "Title"; i18n.Has(id) {
		return p.T(id)
	}
	if title == "" {
		return name
	}
	return title
}

// sinkViews builds the sink cards. An agent from before sinks (no
// Status.Sinks) gets its upstream's card.
func sinkViews(st Status, fm fmtr) []sinkView {
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
			out = append(out, sinkCard(s, fm))
		}
	}
	if len(out) == 0 && len(sinks) > 0 {
		// Nothing enabled: the first sink (the PWBI cloud) says so.
		v := sinkCard(sinks[0], fm)
		v.Configured = false
		v.NotSetUp = fm.p.T("DashSinkNoAddress", map[string]any{"Sink": v.Title})
		out = append(out, v)
	}
	return out
}

func sinkCard(s SinkStatus, fm fmtr) sinkView {
	p := fm.p
	v := sinkView{
		Name: s.Name, Title: sinkTitle(p, s.Name, s.Title), Configured: s.Configured,
		Pending:      fm.count(s.Pending),
		PendingBytes: p.Bytes(s.PendingBytes),
		Oldest:       fm.ago(s.OldestPendingAt, "—"),
		Dead:         fm.count(s.DeadLetters),
		HasDead:      s.DeadLetters > 0,
		LastSuccess:  fm.ago(s.LastSuccessAt, p.T("CommonNever")),
		NextRetry:    fm.ago(s.NextRetryAt, "—"),
		Delivered:    fm.count(int64(s.Delivered)),
		Problem:      s.ProblemIn(p),
	}
	if v.Problem == "" && s.LastError != "" {
		v.Problem = p.T("DashLastError", map[string]any{"Error": s.LastError})
	}
	if s.Pending == 0 {
		v.Oldest = timeView{Text: "—"}
	}
	switch {
	case !s.Configured:
		v.NotSetUp = p.T("DashSinkNotSetUp")
	case s.Online:
		v.State, v.StateClass = p.T("DashSinkConnected"), "on"
	case s.Health == SinkHealthError:
		v.State, v.StateClass = p.T("DashSinkRefusing"), "err"
	case s.Health == SinkHealthOffline:
		v.State, v.StateClass = p.T("DashSinkOffline"), "off"
	case s.LastError == "" && s.LastSuccessAt == nil:
		v.State, v.StateClass = p.T("DashSinkNothingYet"), "off"
	default:
		v.State, v.StateClass = p.T("DashSinkNotConnected"), "off"
	}
	return v
}

// summary is the one line under the banner's headline, for someone who
// reads nothing else.
func summary(st Status, v dashboardView, p *i18n.Printer) string {
	switch st.State {
	case StateOK:
		if st.Moka.LastPollAt != nil {
			return p.T("DashSummaryOKChecked", map[string]any{"When": v.LastPoll.Text})
		}
		return p.T("DashSummaryOK")
	case StateSyncing:
		if st.Queue.Pending > 0 {
			return p.T("DashSummarySending", map[string]any{"Pending": v.Pending})
		}
		return p.T("DashSummaryFetching")
	case StateOffline:
		return p.T("DashSummaryOffline")
	case StateError:
		switch {
		case len(v.Problems) == 1:
			return v.Problems[0]
		case len(v.Problems) == 0 && st.Config.Error != "":
			// The settings card below says what the error is.
			return p.T("DashSummaryConfigError")
		}
		return p.T("DashSummaryError")
	case StatePaused:
		return p.T("DashSummaryPaused")
	}
	return p.T("DashSummaryUnknown")
}

func (fm fmtr) ago(t *time.Time, zero string) timeView {
	if t == nil || t.IsZero() {
		return timeView{Text: zero}
	}
	d := fm.now.Sub(*t)
	tv := timeView{Exact: fm.exact(*t)}
	switch {
	case d < -5*time.Second:
		tv.Text = fm.p.T("CommonIn", map[string]any{"Duration": fm.duration(-d)})
	case d < 10*time.Second:
		tv.Text = fm.p.T("CommonJustNow")
	default:
		tv.Text = fm.p.T("CommonAgo", map[string]any{"Duration": fm.duration(d)})
	}
	return tv
}

// exact is a moment in full, in the outlets' zone: "10 Mar 2026 21:30:00 WIB".
func (fm fmtr) exact(t time.Time) string {
	t = t.In(fm.loc)
	sep := ":"
	if fm.p.Lang() == i18n.Indonesian {
		sep = "."
	}
	return fm.p.Date(t) + " " + t.Format("15"+sep+"04"+sep+"05 MST")
}

// duration is a rough, readable length: "45 s", "5 min", "2 h 5 min",
// "3 days 4 h".
func (fm fmtr) duration(d time.Duration) string {
	p := fm.p
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return p.T("CommonSeconds", map[string]any{"Count": int(d / time.Second)})
	case d < time.Hour:
		return p.T("CommonMinutes", map[string]any{"Count": int(d / time.Minute)})
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return p.T("CommonHours", map[string]any{"Count": h})
		}
		return p.T("CommonHoursMinutes", map[string]any{"Hours": h, "Minutes": m})
	default:
		days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
		if h == 0 {
			return p.N("CommonDays", days)
		}
		return p.N("CommonDaysHours", days, map[string]any{"Hours": h})
	}
}

// count writes n with the language's thousands separator: 12,345 / 12.345.
func (fm fmtr) count(n int64) string { return fm.p.Count(n) }

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
