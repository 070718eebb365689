// Package health holds the agent's one rule table (SPEC §8): from a
// snapshot of its parts it decides the state a person sees — ok, syncing,
// offline, error or paused — and the plain-language problems behind it.
//
// The rules, in order:
//
//   - paused: a person paused syncing; nothing else matters until resumed.
//   - error: work is not getting done for a reason a person must fix — the
//     config file is broken, Moka refuses the credentials, the database
//     cannot be read or written (disk full), an outlet has failed for
//     FailingPolls polls in a row (or at once when its records cannot be
//     stored), Moka cannot be polled for FailingPolls polls for a reason a
//     retry does not cure, a sink refuses the agent (token, address, a web
//     page instead of an acknowledgement, every record rejected), the buffer
//     is full with no sink to drain it, or the checkout gateway cannot
//     listen.
//   - offline: trouble that retries will fix — network errors, timeouts,
//     408/429/5xx from Moka or a sink, an outlet that failed fewer than
//     FailingPolls times, the buffer full while a sink catches up.
//   - syncing: polling, importing or sending.
//   - ok: none of the above.
//
// Everything that is not ok has at least one problem saying why; problems
// are ordered errors first. Notes (setup still to do, records set aside, a
// restart to apply a setting) are listed too but do not change the state.
//
// Every problem carries a stable Code (a message id of internal/i18n's
// health catalogue) and its Params, so a reader can show it in their own
// language; Text is the English sentence. The parts' own sentences and
// errors (Detail, Error) travel as parameters, as they came — except a
// sink's problem worded as a message of the catalogue (Sink.ProblemCode):
// that problem has the sink's code and parameters, so it reads in the
// reader's language too.
//
// The package knows nothing of the parts themselves: the composition root
// fills in [Input]. It imports nothing of the agent but internal/i18n.
package health

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/pwbi/edge-agent/internal/i18n"
)

// State is the agent's overall state (the strings of /v1/status).
type State string

// The states, from the calmest to the most urgent (paused aside).
const (
	OK      State = "ok"
	Syncing State = "syncing"
	Offline State = "offline"
	Error   State = "error"
	Paused  State = "paused"
)

// FailingPolls is how many polls in a row an outlet (or polling as a whole)
// may fail for a reason retries do not cure before the state is error.
// Fewer failures show as offline: Moka has hiccups.
const FailingPolls = 3

// Severity ranks a problem.
type Severity int

const (
	// Note: worth knowing, work is getting done.
	Note Severity = iota
	// Retrying: work is held up; retries will fix it.
	Retrying
	// Blocking: work is not getting done until a person acts.
	Blocking
)

// String is the severity's machine name: "note", "retrying", "blocking".
func (s Severity) String() string {
	switch s {
	case Retrying:
		return "retrying"
	case Blocking:
		return "blocking"
	}
	return "note"
}

// Problem is one sentence for a person.
type Problem struct {
	Severity Severity
	// Code is the message id of the sentence (HealthDiskFull, …), stable
	// for machines; Params its template data ("Count" is an int, every
	// other value a string).
	Code   string
	Params map[string]any
	// Text is the sentence in English.
	Text string
}

// In renders the problem in p's language. Two parameters are words of the
// catalogue rather than data: ErrorCode (a message id standing in for a
// missing Error) and SinkKey (which, outside English, names the sink by
// the common catalogue's CommonSink<Key> instead of Sink).
func (pr Problem) In(p *i18n.Printer) string {
	if pr.Code == "" || !i18n.Has(pr.Code) {
		// From a newer agent, or without a code: its own sentence.
		return pr.Text
	}
	params := with(pr.Params)
	if code, _ := params["ErrorCode"].(string); code != "" {
		params["Error"] = p.T(code)
	}
	// DetailCode: Detail is a part's own sentence worded as a message of
	// the catalogue (a sink's problem inside another): it is rendered in
	// p's language from DetailParams. A code this build does not know
	// (from a newer agent) leaves Detail as it came.
	if dcode, _ := params["DetailCode"].(string); dcode != "" && i18n.Has(dcode) {
		dp, _ := params["DetailParams"].(map[string]any)
		params["Detail"] = p.Msg(dcode, dp)
	}
	id := pr.Code
	english := p.Lang() == i18n.English
	if key, _ := params["SinkKey"].(string); key != "" && !english {
		if sinkID := "CommonSink" + upperFirst(key); i18n.Has(sinkID) {
			params["Sink"] = p.T(sinkID)
		}
		// A sink's own sentence has a translation of its own when the
		// catalogue has <Code><Key> (HealthSinkNoteUpstream); English
		// keeps the sink's words.
		if i18n.Has(id + upperFirst(key)) {
			id += upperFirst(key)
		}
	}
	out := p.Msg(id, params)
	if !english {
		// A sentence may open with a sink's name ("cloud PWBI …"); the
		// English texts keep their lower-case start, as they always had.
		out = upperFirst(out)
	}
	return out
}

func upperFirst(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if size == 0 || r == utf8.RuneError {
		return s
	}
	return string(unicode.ToUpper(r)) + s[size:]
}

var english = i18n.New(i18n.English)

// ErrorKind says who can cure a failure.
type ErrorKind int

const (
	// KindOther: an answer the agent cannot use; retrying alone is unlikely
	// to help.
	KindOther ErrorKind = iota
	// KindTransient: network trouble, timeouts, 408/429/5xx.
	KindTransient
	// KindStorage: the agent's own database could not be written.
	KindStorage
)

// SinkHealth is a sink's own judgement of its last attempts.
type SinkHealth string

const (
	SinkFine    SinkHealth = ""
	SinkOffline SinkHealth = "offline"
	SinkError   SinkHealth = "error"
)

// Input is a snapshot of the agent's parts.
type Input struct {
	Paused bool
	// ConfigError is why the config file could not be applied; the
	// previous settings stay in force.
	ConfigError     string
	RestartRequired []string
	Moka            Moka
	Store           Store
	Sinks           []Sink
	Checkout        Checkout
}

// Moka is the state of polling Moka.
type Moka struct {
	Enabled bool
	// Setup is what must still be set up before polling can start
	// (credentials not set, "Connect Moka" not done yet).
	Setup string
	// AuthRefused is set while Moka refuses the credentials or the grant.
	AuthRefused string
	// PollError is why the last polls failed as a whole, PollFailures how
	// many in a row.
	PollError     string
	PollErrorKind ErrorKind
	PollFailures  int
	Outlets       []Outlet
	// Full: polling is paused because the buffer is at its bound.
	Full bool
	// Busy: a poll or an import is running.
	Busy bool
}

// Outlet is one outlet's last polls.
type Outlet struct {
	ID, Name string
	// Error is the last failure, Failures the failed polls in a row; both
	// zero when the last poll of the outlet succeeded.
	Error    string
	Kind     ErrorKind
	Failures int
}

// Store is the state of the local database.
type Store struct {
	// ReadError: the buffer's counters could not be read.
	ReadError string
	// WriteError is the last failed write, until a write succeeds again;
	// DiskFull when it failed for lack of space.
	WriteError string
	DiskFull   bool
	// Quarantined: the database was damaged at start and replaced.
	Quarantined bool
	DeadLetters int64
}

// Sink is one delivery target.
type Sink struct {
	// Name is the sink as a person knows it ("the PWBI cloud").
	Name string
	// Key is the sink's name on the command line ("upstream", "nats",
	// "jurnal"): Name in other languages is the common catalogue's
	// CommonSink<Key>. Empty: Name in every language.
	Key        string
	Configured bool
	// Unconfigured is the note shown when the sink is not configured
	// (empty: nothing to say).
	Unconfigured string
	Health       SinkHealth
	// Problem says what is wrong in a whole sentence that names the sink;
	// LastError is the technical error, used when Problem is empty.
	Problem   string
	LastError string
	// ProblemCode and ProblemParams are Problem as the sink worded it: a
	// message id of the health catalogue (HealthUpstreamWebPage, …) and
	// its data. The problem then has that code, and reads in every
	// language; empty (a sentence without a code, an older agent) or a
	// code this build does not know, Problem is shown as it is, under
	// HealthSinkProblem or HealthSinkOfflineProblem.
	ProblemCode   string
	ProblemParams map[string]any
	Busy          bool
	// Days: a sink that posts whole business days (Jurnal's
	// daily_summary) and has closed days not posted yet.
	Days SinkDays
}

// SinkDays are a day-posting sink's closed days not posted yet.
type SinkDays struct {
	// Waiting counts them; Refused are those the sink refused, oldest
	// first; Error is why the oldest other one was not posted when it was
	// tried (empty: not tried yet).
	Waiting int
	Refused []Day
	Error   string
	// ErrorCode and ErrorParams word Error as a message of the catalogue
	// (the sink's own problem), so that it reads in every language; ""
	// when it is not one.
	ErrorCode   string
	ErrorParams map[string]any
}

// Day is one outlet's business day.
type Day struct {
	OutletID   string
	OutletName string // "" when not known
	Date       string // YYYY-MM-DD in the outlet's zone
	Error      string // the sink's reason
}

// Checkout is the state of the Mokka gateway for tablets.
type Checkout struct {
	Enabled bool
	// Setup is what must still be set up (store id, secret key, tablets).
	Setup string
	// ListenError: the gateway cannot listen on its address (tablets
	// cannot reach it).
	ListenError string
	// StartError: the gateway could not start at all.
	StartError string
	// RefreshError is the last failure to refresh open orders.
	RefreshError string
	// Warning is a risk a person should know of while the gateway works
	// (plain HTTP on a LAN address): a note, not a stall.
	Warning string
	// TLSExpired: the TLS certificate the tablets pin has expired (they
	// cannot connect). TLSEnding: it ends soon and will not be renewed by
	// itself (someone else's, or the renewal fails): a note until it ends.
	TLSExpired, TLSEnding string
}

// Evaluate applies the rule table to in. Problems come errors first, then
// the retrying ones, then notes, each group in the order of the parts.
func Evaluate(in Input) (State, []Problem) {
	var ps []Problem
	add := func(sev Severity, code string, params map[string]any) {
		p := Problem{Severity: sev, Code: code, Params: params}
		p.Text = p.In(english)
		ps = append(ps, p)
	}

	if in.ConfigError != "" {
		add(Blocking, "HealthConfigError", map[string]any{"Error": in.ConfigError})
	}
	if len(in.RestartRequired) > 0 {
		add(Note, "HealthRestartRequired", map[string]any{"Keys": strings.Join(in.RestartRequired, ", ")})
	}

	// The database first: nothing else works without it.
	st := in.Store
	switch {
	case st.DiskFull:
		add(Blocking, "HealthDiskFull", map[string]any{"Error": st.WriteError})
	case st.WriteError != "":
		add(Blocking, "HealthDBWrite", map[string]any{"Error": st.WriteError})
	}
	if st.ReadError != "" {
		add(Blocking, "HealthBufferRead", map[string]any{"Error": st.ReadError})
	}
	if st.Quarantined {
		add(Note, "HealthDBReplaced", nil)
	}
	if st.DeadLetters > 0 {
		add(Note, "HealthDeadLetters", map[string]any{"Count": int(st.DeadLetters)})
	}

	mokaProblems(in.Moka, st.WriteError == "", add)

	configured := 0
	for _, s := range in.Sinks {
		if !s.Configured {
			if s.Unconfigured != "" {
				add(Note, "HealthSinkNote", map[string]any{"Detail": s.Unconfigured, "Sink": s.Name, "SinkKey": s.Key})
			}
			continue
		}
		configured++
		// A sink's Problem is a whole sentence that names it, with its own
		// code when the sink worded it so; a bare technical error gets the
		// sink's name in front.
		sink := map[string]any{"Sink": s.Name, "SinkKey": s.Key}
		coded := s.Problem != "" && s.ProblemCode != "" && i18n.Has(s.ProblemCode)
		if w, ok := sinkWords[s.Health]; ok {
			switch {
			case coded:
				add(w.sev, s.ProblemCode, with(s.ProblemParams, "Sink", s.Name, "SinkKey", s.Key))
			case s.Problem != "":
				add(w.sev, w.problem, with(sink, "Detail", s.Problem))
			case s.LastError != "":
				add(w.sev, w.bare, with(sink, "Error", s.LastError))
			default:
				add(w.sev, w.bare, with(sink, "Error", "", "ErrorCode", w.none))
			}
		}
		if d := s.Days; len(d.Refused) > 0 {
			first := d.Refused[0]
			add(Blocking, "HealthSinkDaysRefused", with(sink, "Count", len(d.Refused),
				"Outlet", outletName(first.OutletID, first.OutletName), "Date", first.Date, "Error", first.Error))
		} else if d.Waiting > 0 && d.Error != "" && s.Health == SinkFine {
			// With the sink offline or in error, that problem already
			// says why; alone, the days would wait without a word.
			ps := with(sink, "Count", d.Waiting, "Detail", d.Error)
			if d.ErrorCode != "" && i18n.Has(d.ErrorCode) {
				ps["DetailCode"], ps["DetailParams"] = d.ErrorCode, d.ErrorParams
			}
			add(Retrying, "HealthSinkDaysWaiting", ps)
		}
	}
	if in.Moka.Full {
		if configured == 0 {
			add(Blocking, "HealthBufferFullNoSink", nil)
		} else {
			add(Retrying, "HealthBufferFull", nil)
		}
	}

	co := in.Checkout
	if co.Enabled {
		if co.Setup != "" {
			add(Note, "HealthCheckoutSetup", map[string]any{"Detail": co.Setup})
		}
		if co.Warning != "" {
			add(Note, "HealthCheckoutWarning", map[string]any{"Detail": co.Warning})
		}
		if co.StartError != "" {
			add(Blocking, "HealthCheckoutStart", map[string]any{"Detail": co.StartError})
		}
		if co.ListenError != "" {
			add(Blocking, "HealthCheckoutListen", map[string]any{"Detail": co.ListenError})
		}
		if co.TLSExpired != "" {
			add(Blocking, "HealthCheckoutTLSExpired", map[string]any{"Detail": co.TLSExpired})
		}
		if co.TLSEnding != "" {
			add(Note, "HealthCheckoutTLSEnding", map[string]any{"Detail": co.TLSEnding})
		}
	}
	if co.RefreshError != "" {
		add(Retrying, "HealthCheckoutRefresh", map[string]any{"Error": co.RefreshError})
	}

	slices.SortStableFunc(ps, func(a, b Problem) int { return int(b.Severity) - int(a.Severity) })

	worst := Note
	for _, p := range ps {
		worst = max(worst, p.Severity)
	}
	busy := in.Moka.Busy
	for _, s := range in.Sinks {
		busy = busy || (s.Configured && s.Busy)
	}
	switch {
	case in.Paused:
		return Paused, ps
	case worst == Blocking:
		return Error, ps
	case worst == Retrying:
		return Offline, ps
	case busy:
		return Syncing, ps
	}
	return OK, ps
}

// sinkWords word a sink in error or offline: the severity, the code of a
// sentence of the sink's without a code of its own, the code of a bare
// technical error, and the reason given when there is none.
var sinkWords = map[SinkHealth]struct {
	sev                 Severity
	problem, bare, none string
}{
	SinkError:   {Blocking, "HealthSinkProblem", "HealthSinkRefuses", "HealthNoReason"},
	SinkOffline: {Retrying, "HealthSinkOfflineProblem", "HealthSinkUnreachable", "HealthNoAnswer"},
}

// mokaProblems adds the problems of polling Moka. storeWritable is false
// when the store's own problem already says why records cannot be saved.
func mokaProblems(m Moka, storeWritable bool, add func(Severity, string, map[string]any)) {
	if !m.Enabled {
		return
	}
	if m.Setup != "" {
		add(Note, "HealthMokaSetup", map[string]any{"Detail": m.Setup})
	}
	if m.AuthRefused != "" {
		add(Blocking, "HealthMokaAuthRefused", map[string]any{"Detail": m.AuthRefused})
	}
	if m.PollError != "" {
		e := map[string]any{"Error": m.PollError}
		switch {
		case m.PollErrorKind == KindTransient:
			add(Retrying, "HealthMokaUnreachable", e)
		case m.PollErrorKind == KindStorage || m.PollFailures >= FailingPolls:
			add(Blocking, "HealthMokaPollBlocked", with(e, "Count", m.PollFailures))
		default:
			add(Retrying, "HealthMokaPollRetrying", e)
		}
	}
	for _, o := range m.Outlets {
		if o.Failures == 0 || o.Error == "" {
			continue
		}
		op := map[string]any{"Outlet": outletName(o.ID, o.Name), "Error": o.Error}
		switch {
		case o.Kind == KindStorage:
			if storeWritable {
				add(Blocking, "HealthOutletStorage", op)
			}
		case o.Kind == KindTransient:
			add(Retrying, "HealthOutletUnreachable", op)
		case o.Failures >= FailingPolls:
			add(Blocking, "HealthOutletFailing", with(op, "Count", o.Failures))
		default:
			add(Retrying, "HealthOutletRetrying", op)
		}
	}
}

// with returns a copy of m with the key-value pairs kv added.
func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m)+len(kv)/2)
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// TextsIn returns the problems' sentences in p's language, in order.
func TextsIn(p *i18n.Printer, ps []Problem) []string {
	out := make([]string, len(ps))
	for i, pr := range ps {
		out[i] = pr.In(p)
	}
	return out
}

// Texts returns the problems' sentences in English, in order.
func Texts(ps []Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Text
	}
	return out
}

// outletName is an outlet as a problem names it: "Name (id)", or the id
// alone when the name is not known.
func outletName(id, name string) string {
	if name == "" || name == id {
		return id
	}
	return fmt.Sprintf("%s (%s)", name, id)
}
