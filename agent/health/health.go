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
// The package knows nothing of the parts themselves: the composition root
// fills in [Input]. It imports nothing of the agent.
package health

import (
	"fmt"
	"slices"
	"strings"
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

// Problem is one sentence for a person.
type Problem struct {
	Severity Severity
	Text     string
}

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
	Name       string
	Configured bool
	// Unconfigured is the note shown when the sink is not configured
	// (empty: nothing to say).
	Unconfigured string
	Health       SinkHealth
	// Problem says what is wrong in a whole sentence that names the sink;
	// LastError is the technical error, used when Problem is empty.
	Problem   string
	LastError string
	Busy      bool
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
}

// Evaluate applies the rule table to in. Problems come errors first, then
// the retrying ones, then notes, each group in the order of the parts.
func Evaluate(in Input) (State, []Problem) {
	var ps []Problem
	add := func(sev Severity, format string, args ...any) {
		ps = append(ps, Problem{Severity: sev, Text: fmt.Sprintf(format, args...)})
	}

	if in.ConfigError != "" {
		add(Blocking, "the config file has an error; the previous settings stay in force: %s", in.ConfigError)
	}
	if len(in.RestartRequired) > 0 {
		add(Note, "restart the agent to apply: %s", strings.Join(in.RestartRequired, ", "))
	}

	// The database first: nothing else works without it.
	st := in.Store
	switch {
	case st.DiskFull:
		add(Blocking, "the disk is full: new sales cannot be saved (%s). Free some space on the PC; nothing is lost, sales are fetched again from Moka", st.WriteError)
	case st.WriteError != "":
		add(Blocking, "the local database cannot be written: %s", st.WriteError)
	}
	if st.ReadError != "" {
		add(Blocking, "cannot read the local buffer: %s", st.ReadError)
	}
	if st.Quarantined {
		add(Note, "the database was damaged and has been replaced; sales are fetched again from Moka")
	}
	if st.DeadLetters > 0 {
		add(Note, "%d record(s) were set aside (see `pwbi-agent queue dead`)", st.DeadLetters)
	}

	mokaProblems(in.Moka, st.WriteError == "", add)

	configured := 0
	for _, s := range in.Sinks {
		if !s.Configured {
			if s.Unconfigured != "" {
				add(Note, "%s", s.Unconfigured)
			}
			continue
		}
		configured++
		// A sink's Problem is a whole sentence that names it; a bare
		// technical error gets the sink's name in front.
		switch s.Health {
		case SinkError:
			if s.Problem != "" {
				add(Blocking, "%s", s.Problem)
			} else {
				add(Blocking, "%s refuses the records: %s", s.Name, orElse(s.LastError, "no reason given"))
			}
		case SinkOffline:
			if s.Problem != "" {
				add(Retrying, "%s", s.Problem)
			} else {
				add(Retrying, "cannot reach %s: %s", s.Name, orElse(s.LastError, "no answer"))
			}
		}
	}
	if in.Moka.Full {
		if configured == 0 {
			add(Blocking, "the buffer is full and no delivery target is configured to empty it: Moka polling is paused")
		} else {
			add(Retrying, "the buffer is full: Moka polling is paused until the records are delivered")
		}
	}

	co := in.Checkout
	if co.Enabled {
		if co.Setup != "" {
			add(Note, "checkout: %s", co.Setup)
		}
		if co.Warning != "" {
			add(Note, "%s", co.Warning)
		}
		if co.StartError != "" {
			add(Blocking, "%s", co.StartError)
		}
		if co.ListenError != "" {
			add(Blocking, "%s", co.ListenError)
		}
	}
	if co.RefreshError != "" {
		add(Retrying, "cannot refresh open Mokka orders: %s", co.RefreshError)
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

// mokaProblems adds the problems of polling Moka. storeWritable is false
// when the store's own problem already says why records cannot be saved.
func mokaProblems(m Moka, storeWritable bool, add func(Severity, string, ...any)) {
	if !m.Enabled {
		return
	}
	if m.Setup != "" {
		add(Note, "%s", m.Setup)
	}
	if m.AuthRefused != "" {
		add(Blocking, "%s", m.AuthRefused)
	}
	if m.PollError != "" {
		switch {
		case m.PollErrorKind == KindTransient:
			add(Retrying, "cannot reach Moka: %s", m.PollError)
		case m.PollErrorKind == KindStorage || m.PollFailures >= FailingPolls:
			add(Blocking, "Moka cannot be polled (%d times in a row): %s", m.PollFailures, m.PollError)
		default:
			add(Retrying, "Moka polling failed; retrying: %s", m.PollError)
		}
	}
	for _, o := range m.Outlets {
		if o.Failures == 0 || o.Error == "" {
			continue
		}
		name := o.ID
		if o.Name != "" && o.Name != o.ID {
			name = fmt.Sprintf("%s (%s)", o.Name, o.ID)
		}
		switch {
		case o.Kind == KindStorage:
			if storeWritable {
				add(Blocking, "outlet %s: its sales cannot be saved: %s", name, o.Error)
			}
		case o.Kind == KindTransient:
			add(Retrying, "outlet %s: cannot reach Moka: %s", name, o.Error)
		case o.Failures >= FailingPolls:
			add(Blocking, "outlet %s has failed %d polls in a row: %s", name, o.Failures, o.Error)
		default:
			add(Retrying, "outlet %s failed; retrying: %s", name, o.Error)
		}
	}
}

func orElse(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Texts returns the problems' sentences, in order.
func Texts(ps []Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Text
	}
	return out
}
