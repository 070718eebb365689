// Package jurnalsink posts the cafe's Moka sales into Jurnal, Mekari's
// accounting system (SPEC §6.3; reference/jurnal-api.md): the third sink of
// the delivery loop (agent/deliver), beside the PWBI HTTP upstream and NATS.
// It does what Moka's "MokaPOS Connection" add-on does (seed 002), from the
// shop PC, buffered and offline-safe: master data first, then the sales,
// with a "last synced" figure per outlet.
//
// # Documents
//
// mode = "invoice": each sale becomes a sales invoice to the walk-in contact
// (customer_name) plus a receive payment into the deposit account mapped to
// its payment method. mode = "daily_summary": the sales of one outlet's
// business day are kept in a ledger and posted, once the day is closed
// (midnight in the outlet's zone + close_after), as one invoice with lines
// summed per product, one payment per payment method, and one sales return
// for the day's refunds. A void or refund that arrives after its sale was
// posted becomes a sales return (a reversing document); an edit, an invoice
// (and payment) of what it added or a sales return of what it took off; a
// sale that arrives after its day was posted becomes an invoice of its
// own. History is never edited or deleted.
//
// Every line is exact: an item's discount is folded into its rate (Jurnal
// reads a line discount as a percent), tax and service charge are lines of
// their own products, and a last line carries what else makes the document
// equal to what Moka collected (an order discount, rounding), so an
// invoice's total is the sale's amount to the rupiah. Money is decimal,
// never float.
//
// # Idempotency
//
// Records come at least once, in seq order, and again after a crash or with
// a new version (an edit, a void, a refund). Every document has a
// deterministic custom_id (CustomID: "moka-{outlet}-{sale}" and suffixes
// "-pay", "-void", "-ret-{refunded so far}", "-adj-{edited amount}";
// "moka-{outlet}-{date}" in daily_summary), never containing a "#". What was posted is remembered in
// the store's documents (Docs) after each document, so a batch sent again
// costs no call; a create whose answer was lost (timeout, crash) is marked
// "trying" before it is sent and looked up by custom_id before it is sent
// again; a 409 means the document exists. batch_create is never used (it
// does not de-duplicate), nothing is deleted and recreated. A batch is
// acknowledged only when every document of its records exists in Jurnal
// (daily_summary: when the records are durably in the ledger). The state
// of a sale is pruned 200 days after its business date (longer than any
// re-fetch reaches back); a pruned sale sent again meets the 409.
//
// Mode switches post nothing twice and lose nothing: a sale already
// invoiced on its own stays out of a day's invoice; after a switch to
// invoice mode, a sale leaves an open day's ledger when it is invoiced on
// its own, the sales left in a ledger are posted with their day when it
// closes, and a new version of a sale in a posted day's invoice is posted
// against that invoice, as in daily_summary.
//
// Products are matched by SKU (product_code), else by Moka's item and
// variant ids the sink remembers, else by name, and created (with their
// category) before the first sale that uses them; the walk-in contact
// likewise.
//
// What the sink remembers of master data and the figures it shows are of
// one Jurnal company (one client id at one gateway): after a switch to
// another, they are forgotten before anything is posted there
// (checkCompany), so its products and contact are looked up and created
// again. What was posted stays where it was posted: nothing is copied to
// the new company.
//
// # Answers
//
// 422 (and 400) with Jurnal's field messages: that record goes to this
// sink's dead letters with Jurnal's message, the others go on. 401/403: an
// error shown, retried. A refused Date with the gateway's clock more than
// 300 s away: the client signs with the gateway's time and the status says
// "the PC clock is wrong by N minutes"; if Jurnal still refuses, that is
// the error shown (no retry storm: the loop backs off). 429 and quota
// answers: wait (Retry-After), show the quota state. requests_per_minute
// bounds every call with a client-side rate limit on the injected clock.
package jurnalsink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/agent/deliver/jurnalsink/internal/mekari"
	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/store"
)

// Modes.
const (
	ModeInvoice      = "invoice"
	ModeDailySummary = "daily_summary"
)

// Config is the [jurnal] section.
type Config struct {
	BaseURL      string
	ClientID     string
	ClientSecret string
	Mode         string // ModeInvoice (default) or ModeDailySummary
	// CloseAfter: daily_summary posts a day this long after its midnight.
	CloseAfter        time.Duration
	RequestsPerMinute int // default 60
	CustomerName      string
	Outlets           []string // empty: every outlet
	// DepositAccounts maps a payment method (any case) to an account;
	// "default" for the others.
	DepositAccounts  map[string]string
	OutletTags       map[string]string
	OutletWarehouses map[string]string
	// Location is the outlets' time zone (moka.timezone), for when a day
	// closes; default UTC.
	Location *time.Location
	Timeout  time.Duration
}

// Options are the sink's dependencies.
type Options struct {
	// Docs keeps the sink's state (required): the agent's store.
	Docs   Docs
	Client *http.Client
	Clock  clockwork.Clock
	Logger *slog.Logger
	// OnWait, when set, is told of each wait for Jurnal's rate budget
	// (requests_per_minute) before it starts: tests drive a fake clock by
	// exactly those waits.
	OnWait func(reason string, d time.Duration)
	// Previous is the sink this one replaces after a hot reload: the new
	// one keeps its figures when it posts to the same Jurnal company
	// (another company's quota, outlets' figures and day problems are
	// not its) and, for the same company and limits, its client (rate
	// budget, learnt clock offset).
	Previous *Sink
}

// Sink posts records to one Jurnal company with one configuration. Send
// and Tick may run concurrently (they serialize on the shared state).
type Sink struct {
	cfg      Config
	endpoint string
	api      *mekari.Client
	docs     Docs
	clock    clockwork.Clock
	log      *slog.Logger
	sh       *shared
	// company is the Jurnal company posted to (companyID).
	company string
}

// shared is what successive sinks of one agent share.
type shared struct {
	work     sync.Mutex // one posting at a time: Send or Tick
	prunedAt time.Time  // under work
	// company (under work) is the company checkCompany last made the
	// store's per-company documents the ones of: a sink of another one
	// (the one a reload replaced, finishing its work) checks again.
	company string

	mu      sync.Mutex
	outlets map[string]*outletFigures
	days    map[string]DayProblem // dayKey → why the closed day is not posted
	// latest is the sink built last: the one a reload replaced ticks
	// no more (Tick).
	latest *Sink
	index  dayIndex
	quota  quotaState
	api    *mekari.Client
}

// resetCompanyLocked forgets the figures of the company posted to so far
// (a switch to another Jurnal company): its quota state, its outlets'
// figures, its days' problems. work and the client stay: a sink of the
// other company may still be finishing its work. sh.mu must be held.
func (sh *shared) resetCompanyLocked() {
	sh.outlets = map[string]*outletFigures{}
	sh.days = map[string]DayProblem{}
	sh.quota = quotaState{}
}

type outletFigures struct {
	lastSynced time.Time
	posted     int
	waiting    int
	lastError  string
	errorAt    time.Time
	loaded     bool
}

type quotaState struct {
	exhausted bool
	until     time.Time
	message   string
}

// New returns a sink for cfg.
func New(cfg Config, opts Options) *Sink {
	if cfg.Mode == "" {
		cfg.Mode = ModeInvoice
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	// Payment methods are looked up as account does: trimmed, lower case
	// (a "QRIS" key in the file is the qris account, not silently unused).
	accounts := make(map[string]string, len(cfg.DepositAccounts))
	for m, a := range cfg.DepositAccounts {
		accounts[strings.ToLower(strings.TrimSpace(m))] = a
	}
	cfg.DepositAccounts = accounts
	if opts.Clock == nil {
		opts.Clock = clockwork.NewRealClock()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	mc := mekari.Config{BaseURL: cfg.BaseURL, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		RequestsPerMinute: cfg.RequestsPerMinute, Timeout: cfg.Timeout}
	s := &Sink{cfg: cfg, docs: opts.Docs, clock: opts.Clock, log: opts.Logger, endpoint: endpointID(cfg), company: companyID(cfg)}
	otherCompany := false
	if p := opts.Previous; p != nil && p.sh != nil {
		s.sh = p.sh
		otherCompany = p.company != s.company
	} else {
		s.sh = &shared{outlets: map[string]*outletFigures{}, days: map[string]DayProblem{}}
	}
	s.sh.mu.Lock()
	s.sh.latest = s
	if otherCompany {
		// The figures shown are of the company posted to; the store's
		// documents follow at the first use (checkCompany).
		s.sh.resetCompanyLocked()
	}
	if s.sh.api != nil && s.sh.api.Same(mc) {
		s.api = s.sh.api
	} else {
		s.api = mekari.New(mc, opts.Client, opts.Clock)
		s.api.OnWait = opts.OnWait
		s.sh.api = s.api
	}
	s.sh.mu.Unlock()
	return s
}

// endpointID identifies what decides where and how documents are posted
// (sink.Identity: never the secret itself).
func endpointID(cfg Config) string {
	if cfg.BaseURL == "" || cfg.ClientID == "" {
		return ""
	}
	return sink.Identity(cfg.BaseURL, cfg.ClientID, cfg.ClientSecret, cfg.Mode, cfg.CustomerName)
}

// Endpoint identifies the Jurnal company and mode posted to.
func (s *Sink) Endpoint() string { return s.endpoint }

// wanted reports whether the sink posts the outlet's sales.
func (s *Sink) wanted(outlet string) bool {
	return len(s.cfg.Outlets) == 0 || slices.Contains(s.cfg.Outlets, outlet)
}

// Send posts the documents of batch, record after record. A batch is
// Accepted when every record's documents exist in Jurnal (or, in
// daily_summary, the records are in the day ledger). A record Jurnal
// refuses makes the answer Rejected — the loop bisects and dead-letters it
// alone; records before it are already done and cost nothing when sent
// again.
func (s *Sink) Send(ctx context.Context, batch []store.Record) sink.Answer {
	if s.docs == nil {
		return sink.Answer{Verdict: sink.Retry, Health: sink.HealthError, Err: errors.New("jurnal sink has no state store")}.
			WithProblem(sink.Say("HealthJurnalNoState", nil))
	}
	s.sh.work.Lock()
	defer s.sh.work.Unlock()
	if err := s.checkCompany(); err != nil {
		return s.answer(ctx, "", err)
	}
	calls := s.api.Calls()
	for i, r := range batch {
		outlet, err := s.handle(ctx, r)
		if err != nil {
			if outlet != "" {
				s.noteWaiting(outlet, len(batch)-i)
			}
			return s.answer(ctx, outlet, err)
		}
	}
	s.clearQuotaIfCalled(calls)
	return sink.Answer{Verdict: sink.Accepted}
}

// Tick does what needs time rather than records: it posts the days that
// closed (daily_summary; in invoice mode, the days whose sales were
// ledgered before a switch, acknowledged and not sent again). The agent
// calls it every minute and on "Sync now". The sink a hot reload replaced
// does nothing: the days are its successor's, whose configuration (the
// company posted to, the outlets taken) is the one in force.
func (s *Sink) Tick(ctx context.Context) error {
	if s.docs == nil {
		return nil
	}
	s.sh.work.Lock()
	defer s.sh.work.Unlock()
	s.sh.mu.Lock()
	replaced := s.sh.latest != s
	s.sh.mu.Unlock()
	if replaced {
		return nil
	}
	if err := s.checkCompany(); err != nil {
		return err
	}
	s.prune()
	return s.closeDays(ctx)
}

// Close releases nothing: the client's connections belong to the shared
// http.Client. It exists so the agent may treat every sink alike.
func (s *Sink) Close() error { return nil }

// recordError marks an error that is the record's, not Jurnal's: the
// record cannot be read.
type recordError struct{ err error }

func (e *recordError) Error() string { return e.err.Error() }
func (e *recordError) Unwrap() error { return e.err }

// storeError marks a failure of the local store.
type storeError struct{ err error }

func (e *storeError) Error() string { return "local buffer: " + e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// answer turns the error of one record into the batch's answer.
func (s *Sink) answer(ctx context.Context, outlet string, err error) sink.Answer {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return sink.Answer{Verdict: sink.Canceled}
	}
	var re *recordError
	if errors.As(err, &re) {
		return sink.Answer{Verdict: sink.Rejected, Err: err, Same: "record:" + err.Error(), Detail: err.Error()}.
			WithUniformProblem(sink.Say("HealthJurnalUnreadable", map[string]any{"Error": err.Error()}))
	}
	var se *storeError
	if errors.As(err, &se) {
		return sink.Answer{Verdict: sink.Retry, Health: sink.HealthError, Err: err}.
			WithProblem(sink.Say("HealthJurnalStateWrite", map[string]any{"Error": se.err.Error()}))
	}
	var me *mekari.Error
	if !errors.As(err, &me) {
		return sink.Answer{Verdict: sink.Retry, Health: sink.HealthOffline, Err: err}.
			WithProblem(sink.Say("HealthJurnalUnreachable", map[string]any{"Error": err.Error()}))
	}
	s.noteError(outlet, err)
	a := sink.Answer{Verdict: sink.Retry, StatusCode: me.Status, Err: err}
	switch me.Kind {
	case mekari.Invalid, mekari.NotFound:
		a.Verdict = sink.Rejected
		a.Same = fmt.Sprintf("%d %s", me.Status, me.Message)
		a.Detail = me.Message
		a = a.WithUniformProblem(sink.Say("HealthJurnalRefusesAll", map[string]any{"Answer": me.Message}))
	case mekari.Auth:
		a.Health = sink.HealthError
		if me.Skew != 0 {
			a = a.WithProblem(ClockMessage(me.Skew))
		} else {
			a = a.WithProblem(sink.Say("HealthJurnalCredentials", map[string]any{"Status": strconv.Itoa(me.Status)}))
		}
	case mekari.Quota:
		a.Health = sink.HealthOffline
		a.RetryAfter = me.RetryAfter
		if a.RetryAfter <= 0 {
			a.RetryAfter = time.Minute
		}
		until := s.clock.Now().Add(a.RetryAfter)
		s.sh.mu.Lock()
		s.sh.quota = quotaState{exhausted: true, until: until, message: me.Message}
		s.sh.mu.Unlock()
		a = a.WithProblem(sink.Say("HealthJurnalQuota", map[string]any{"Answer": me.Message, "Until": until.Format("15:04")}))
	default:
		a.Health = sink.HealthOffline
		a.RetryAfter = me.RetryAfter
		a = a.WithProblem(sink.Say("HealthJurnalNotAnswering", map[string]any{"Error": err.Error()}))
	}
	return a
}

// ClockProblem is the sentence shown when the PC's clock is too far from
// Mekari's for a signed request to be accepted: ClockMessage in English.
func ClockProblem(skew time.Duration) string { return ClockMessage(skew).Text }

// ClockMessage is ClockProblem as a message: skew > 0 is a PC clock behind
// Jurnal's, skew < 0 one ahead of it; Minutes the difference, rounded.
func ClockMessage(skew time.Duration) sink.Message {
	m := map[string]any{"Minutes": strconv.Itoa(int((skew.Abs() + 30*time.Second) / time.Minute))}
	if skew < 0 {
		return sink.Say("HealthJurnalClockAhead", m)
	}
	return sink.Say("HealthJurnalClockBehind", m)
}

// clearQuotaIfCalled clears the quota state after work that succeeded,
// if Jurnal answered a call of it (the count was calls before): work that
// needed no call (a batch posted already, sales only ledgered) says
// nothing of the quota. s.sh.work must be held.
func (s *Sink) clearQuotaIfCalled(calls int64) {
	if s.api.Calls() == calls {
		return
	}
	s.sh.mu.Lock()
	s.sh.quota = quotaState{}
	s.sh.mu.Unlock()
}

// figures returns the outlet's figures, loading its persisted part once.
// s.sh.mu must be held.
func (s *Sink) figuresLocked(outlet string) *outletFigures {
	f := s.sh.outlets[outlet]
	if f == nil {
		f = &outletFigures{}
		s.sh.outlets[outlet] = f
	}
	if !f.loaded && s.docs != nil {
		var st outletState
		// Another company's figures are not this one's (ownsFiguresLocked).
		if ok, _ := getJSON(s.docs, "o/"+outlet, &st); ok && s.ownsFiguresLocked() {
			f.posted = st.Posted
			f.lastSynced, _ = time.Parse(time.RFC3339, st.LastSynced)
		}
		f.loaded = true
	}
	return f
}

func (s *Sink) noteError(outlet string, err error) {
	if outlet == "" {
		return
	}
	s.sh.mu.Lock()
	defer s.sh.mu.Unlock()
	f := s.figuresLocked(outlet)
	f.lastError = err.Error()
	f.errorAt = s.clock.Now()
}

func (s *Sink) noteWaiting(outlet string, n int) {
	s.sh.mu.Lock()
	defer s.sh.mu.Unlock()
	s.figuresLocked(outlet).waiting = n
}

// notePosted counts a document posted for the outlet and persists the
// outlet's figures.
func (s *Sink) notePosted(outlet string) error {
	s.sh.mu.Lock()
	f := s.figuresLocked(outlet)
	f.posted++
	f.lastSynced = s.clock.Now()
	f.lastError = ""
	st := outletState{LastSynced: f.lastSynced.UTC().Format(time.RFC3339), Posted: f.posted}
	s.sh.mu.Unlock()
	if err := putJSON(s.docs, "o/"+outlet, st); err != nil {
		return &storeError{err}
	}
	return nil
}

// noteSynced marks the outlet synced (its records are done) without a new
// document.
func (s *Sink) noteSynced(outlet string) {
	s.sh.mu.Lock()
	defer s.sh.mu.Unlock()
	f := s.figuresLocked(outlet)
	f.lastSynced = s.clock.Now()
	f.waiting = 0
	f.lastError = ""
}

// OutletStatus is one outlet's line of the add-on's "Daftar Pengaturan /
// Sinkronisasi Terakhir" list.
type OutletStatus struct {
	OutletID string
	Tag      string
	// LastSynced is when the outlet's last record was done (zero: never).
	LastSynced time.Time
	// Posted counts the documents posted for the outlet.
	Posted int
	// Waiting counts records not posted yet because of an error, or, in
	// daily_summary mode, sales waiting for their day to close.
	Waiting     int
	LastError   string
	LastErrorAt time.Time
}

// Status is the sink's state for /v1/status.
type Status struct {
	Mode    string
	Outlets []OutletStatus
	// QuotaExhausted: Jurnal answered that the API limit is reached;
	// posting is tried again at QuotaUntil (or on "Sync now") and the state
	// clears at the next success.
	QuotaExhausted bool
	QuotaUntil     time.Time
	QuotaMessage   string
	// ClockOffset is Mekari's clock minus the PC's when the PC's clock is
	// off by more than 300 s (the sink then signs with Mekari's time).
	ClockOffset time.Duration
	Calls       int64
	// ClosedDays counts the closed days (daily_summary) not posted yet;
	// DayProblems says, oldest first, why those tried were not.
	ClosedDays  int
	DayProblems []DayProblem
}

// Status reports per outlet what the sink did.
func (s *Sink) Status() Status {
	// The open days (in invoice mode too: days ledgered before a switch
	// from daily_summary wait for their close), from the index.
	waitingDays, closedDays := map[string]int{}, 0
	if s.docs != nil {
		waitingDays, closedDays = s.openSales()
	}
	s.sh.mu.Lock()
	defer s.sh.mu.Unlock()
	st := Status{Mode: s.cfg.Mode, QuotaExhausted: s.sh.quota.exhausted, QuotaUntil: s.sh.quota.until,
		QuotaMessage: s.sh.quota.message, ClockOffset: s.api.Offset(), Calls: s.api.Calls(), ClosedDays: closedDays}
	// The outlet's last error is its latest failed day while one fails: a
	// sale ledgered since (noteSynced) does not make the day's problem go
	// away.
	dayErr := map[string]DayProblem{}
	for _, p := range s.sh.days {
		if !s.wanted(p.Outlet) {
			continue
		}
		st.DayProblems = append(st.DayProblems, p)
		if p.At.After(dayErr[p.Outlet].At) {
			dayErr[p.Outlet] = p
		}
	}
	slices.SortFunc(st.DayProblems, func(a, b DayProblem) int {
		return strings.Compare(a.Date+"/"+a.Outlet, b.Date+"/"+b.Outlet)
	})
	ids := slices.Clone(s.cfg.Outlets)
	for id := range s.sh.outlets {
		ids = append(ids, id)
	}
	for id := range waitingDays {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	ids = slices.Compact(ids)
	for _, id := range ids {
		if !s.wanted(id) {
			continue
		}
		f := s.figuresLocked(id)
		o := OutletStatus{OutletID: id, Tag: s.cfg.OutletTags[id], LastSynced: f.lastSynced,
			Posted: f.posted, Waiting: f.waiting + waitingDays[id], LastError: f.lastError, LastErrorAt: f.errorAt}
		if p, ok := dayErr[id]; ok && o.LastError == "" {
			o.LastError, o.LastErrorAt = fmt.Sprintf("the day %s: %s", p.Date, p.Error), p.At
		}
		st.Outlets = append(st.Outlets, o)
	}
	return st
}

// tags are the tags of an outlet's documents.
func (s *Sink) tags(outlet string) []string {
	if t := strings.TrimSpace(s.cfg.OutletTags[outlet]); t != "" {
		return []string{clip(t, 255)}
	}
	return nil
}

// account is the deposit account of a payment method.
func (s *Sink) account(method string) string {
	if a, ok := s.cfg.DepositAccounts[strings.ToLower(strings.TrimSpace(method))]; ok && a != "" {
		return a
	}
	if a := s.cfg.DepositAccounts["default"]; a != "" {
		return a
	}
	return "Kas"
}
