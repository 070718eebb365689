package agent

import (
	"context"
	"slices"

	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/deliver"
	"github.com/pwbi/edge-agent/agent/deliver/jurnalsink"
	"github.com/pwbi/edge-agent/agent/health"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/agent/moka"
	"github.com/pwbi/edge-agent/agent/version"
	"github.com/pwbi/edge-agent/internal/i18n"
	"github.com/pwbi/edge-agent/store"
)

// Status implements localapi.Backend: the state a person or the tray sees.
// It gathers a snapshot of every part into a health.Input; health.Evaluate
// is the one place that decides the state and the problems.
func (a *Agent) Status(ctx context.Context) localapi.Status {
	a.mu.Lock()
	cfg, gen, loadedAt, cfgErr, paused, mokaErr := a.cfg, a.gen, a.loadedAt, a.cfgErr, a.paused, a.mokaErr
	restart := append([]string{}, a.restart...)
	a.mu.Unlock()

	s := localapi.Status{
		Version:   version.String(),
		AgentID:   cfg.Agent.ID,
		StartedAt: localapi.TimePtr(a.started),
		Config: localapi.ConfigStatus{
			Path:            cfg.Path,
			Generation:      gen,
			LoadedAt:        localapi.TimePtr(loadedAt),
			Error:           cfgErr,
			RestartRequired: restart,
		},
		Checkout: localapi.CheckoutStatus{
			Enabled: cfg.Checkout.Enabled,
			Listen:  cfg.Checkout.Listen,
		},
	}
	in := health.Input{
		Paused:          paused,
		ConfigError:     cfgErr,
		RestartRequired: restart,
		Checkout:        a.co.status(&s, cfg), // checkout.go
	}

	ms := a.moka.Status()
	s.Moka = mokaStatus(ms, cfg.Moka.Enabled)
	s.Moka.API = string(cfg.Moka.API)
	s.Moka.Timezone = cfg.Moka.Timezone
	setup, refused := a.oauthStatus(&s, ms) // moka.oauth and needs_authorization (mokaauth.go)
	in.Moka = mokaHealth(ms, cfg)
	if ok, why := cfg.MokaConfigured(); cfg.Moka.Enabled {
		s.Moka.Configured = ok && mokaErr == ""
		switch {
		case !ok:
			in.Moka.Setup = why
			s.Moka.Setup = why
		case mokaErr != "":
			in.Moka.Setup = mokaErr
		case setup != "":
			in.Moka.Setup = setup
		case refused != "" && in.Moka.AuthRefused == "":
			in.Moka.AuthRefused = refused
		}
	}

	qs, qerr := a.store.Stats()
	if qerr != nil {
		in.Store.ReadError = qerr.Error()
	} else {
		s.Queue = localapi.QueueStatus{
			Pending:         qs.Pending,
			PendingBytes:    qs.PendingBytes,
			DeadLetter:      qs.DeadLetters,
			OldestPendingAt: localapi.TimePtr(qs.OldestPendingAt),
			Full:            ms.Full,
		}
		s.Store.FileSize = qs.FileSize
		in.Store.DeadLetters = qs.DeadLetters
	}
	if q, ok := a.store.Quarantine(); ok {
		s.Store.Quarantine = &localapi.QuarantineStatus{CorruptPath: q.CorruptPath, Reason: q.Reason, At: q.At}
		in.Store.Quarantined = true
	}
	if err := a.storeWriteError(); err != nil {
		in.Store.WriteError = err.Error()
		in.Store.DiskFull = diskFull(err)
	}
	// The store forgets a write failure at the next commit, and small
	// writes (sync state, acks) may commit on a full disk: an outlet whose
	// records could not be stored says so until its next good poll.
	for _, o := range ms.Outlets {
		if o.ErrorKind == moka.KindStorage && o.Err != nil && diskFull(o.Err) && !in.Store.DiskFull {
			in.Store.WriteError, in.Store.DiskFull = o.Err.Error(), true
		}
	}

	s.Sinks, in.Sinks = a.sinksStatus(cfg, qs)
	var days health.SinkDays
	s.Jurnal, days = a.jurnalStatus(cfg, ms)
	for i := range in.Sinks {
		if in.Sinks[i].Key == "jurnal" {
			in.Sinks[i].Days = days
		}
	}
	s.Upstream = upstreamStatus(s.Sinks)

	state, problems := health.Evaluate(in)
	s.State = string(state)
	s.Language = localapi.LanguageStatus{Setting: cfg.Agent.Language, Resolved: i18n.Resolve(cfg.Agent.Language)}
	pr := i18n.New(s.Language.Resolved)
	s.Problems = health.TextsIn(pr, problems)
	s.ProblemDetails = make([]localapi.ProblemDetail, len(problems))
	for i, p := range problems {
		s.ProblemDetails[i] = localapi.ProblemDetail{
			Code: p.Code, Severity: p.Severity.String(), Params: p.Params, Text: s.Problems[i],
		}
	}
	return s
}

// mokaHealth is the syncer's part of the health input.
func mokaHealth(ms moka.Status, cfg *config.Config) health.Moka {
	m := health.Moka{
		Enabled:       cfg.Moka.Enabled,
		AuthRefused:   ms.AuthError,
		PollError:     ms.PollError,
		PollErrorKind: errorKind(ms.PollErrorKind),
		PollFailures:  ms.PollFailures,
		Full:          ms.Full,
		Busy:          ms.Polling || (ms.Import != nil && ms.Import.Running),
	}
	for _, o := range ms.Outlets {
		if o.Failures == 0 {
			continue
		}
		m.Outlets = append(m.Outlets, health.Outlet{
			ID: o.ID, Name: o.Name, Error: o.LastError, Kind: errorKind(o.ErrorKind), Failures: o.Failures,
		})
	}
	return m
}

func errorKind(k moka.ErrorKind) health.ErrorKind {
	switch k {
	case moka.KindTransient:
		return health.KindTransient
	case moka.KindStorage:
		return health.KindStorage
	}
	return health.KindOther
}

// sinksStatus is every known sink's status and its part of the health
// input, in the order of the specs; bs (the store's statistics, zero when
// they could not be read) gives every sink's view of the buffer.
func (a *Agent) sinksStatus(cfg *config.Config, bs store.Stats) ([]localapi.SinkStatus, []health.Sink) {
	enabled := a.enabledSinks(cfg)
	out := make([]localapi.SinkStatus, 0, len(a.specs))
	hs := make([]health.Sink, 0, len(a.specs))
	anyEnabled := false
	for _, spec := range a.specs {
		anyEnabled = anyEnabled || spec.enabled(cfg)
	}
	for _, spec := range a.specs {
		fs := a.delivery.Forwarder(spec.name).Status()
		ss := localapi.SinkStatus{
			Name:          spec.name,
			Title:         spec.title,
			Enabled:       spec.enabled(cfg),
			Configured:    fs.Configured,
			Online:        fs.Online,
			Health:        string(fs.Health),
			Problem:       fs.Problem,
			ProblemCode:   fs.ProblemCode,
			ProblemParams: fs.ProblemParams,
			Sending:       fs.Sending,
			LastSuccessAt: localapi.TimePtr(fs.LastSuccessAt),
			LastError:     fs.LastError,
			NextRetryAt:   localapi.TimePtr(fs.NextRetryAt),
			Delivered:     fs.Delivered,
		}
		if bss, ok := bs.Sink(spec.name); ok {
			ss.DeadLetters = bss.DeadLetters
			// The default sink holds the records while no sink is
			// enabled: they are pending for it all the same.
			if slices.Contains(enabled, spec.name) {
				ss.Pending, ss.PendingBytes = bss.Pending, bss.PendingBytes
				ss.OldestPendingAt = localapi.TimePtr(bss.OldestPendingAt)
			}
		}
		out = append(out, ss)
		h := health.Sink{
			Name:       spec.who,
			Key:        spec.name,
			Configured: ss.Enabled && fs.Configured,
			Problem:    fs.Problem,
			LastError:  fs.LastError,
			Busy:       fs.Sending,
			// The sink's own wording of Problem, so that problem_details
			// carry its code and the sentence reads in every language.
			ProblemCode:   fs.ProblemCode,
			ProblemParams: fs.ProblemParams,
		}
		if !anyEnabled && spec.name == a.specs[0].name {
			h.Unconfigured = spec.unconfigured
		}
		switch fs.Health {
		case deliver.HealthOffline:
			h.Health = health.SinkOffline
		case deliver.HealthError:
			h.Health = health.SinkError
		}
		hs = append(hs, h)
	}
	return out, hs
}

// upstreamStatus is the status's "upstream" object, kept for clients from
// before sinks: the first sink's (the PWBI HTTP upstream).
func upstreamStatus(sinks []localapi.SinkStatus) localapi.UpstreamStatus {
	if len(sinks) == 0 {
		return localapi.UpstreamStatus{}
	}
	s := sinks[0]
	return localapi.UpstreamStatus{
		Configured:    s.Configured,
		Online:        s.Online,
		LastSuccessAt: s.LastSuccessAt,
		LastError:     s.LastError,
		Problem:       s.Problem,
		NextRetryAt:   s.NextRetryAt,
		Delivered:     s.Delivered,
	}
}

// jurnalStatus is the Jurnal sink's list of outlets (SPEC §6.3), from the
// sink in use; its delivery figures are in sinks[] under "jurnal". Its
// closed days not posted yet (daily_summary) are returned for the health
// rules too: the sink takes each sale into its day's ledger, so its
// delivery figures stay fine while a day cannot be posted.
func (a *Agent) jurnalStatus(cfg *config.Config, ms moka.Status) (localapi.JurnalStatus, health.SinkDays) {
	js := localapi.JurnalStatus{Enabled: cfg.Jurnal.Enabled, Mode: cfg.Jurnal.Mode,
		Outlets: []localapi.JurnalOutletStatus{}, Days: []localapi.JurnalDayIssue{}}
	var hd health.SinkDays
	if ok, why := cfg.JurnalConfigured(); !ok {
		if cfg.Jurnal.Enabled {
			js.Setup = why
		}
		return js, hd
	}
	sk, _ := a.sinkInUse("jurnal").(*jurnalsink.Sink)
	if sk == nil {
		return js, hd
	}
	st := sk.Status()
	js.QuotaExhausted, js.QuotaUntil, js.QuotaMessage = st.QuotaExhausted, localapi.TimePtr(st.QuotaUntil), st.QuotaMessage
	if st.ClockOffset != 0 {
		m := jurnalsink.ClockMessage(st.ClockOffset)
		js.ClockProblem, js.ClockProblemCode, js.ClockProblemParams = m.Text, m.Code, m.Params
	}
	js.Calls = st.Calls
	for _, o := range st.Outlets {
		js.Outlets = append(js.Outlets, localapi.JurnalOutletStatus{
			OutletID: o.OutletID, Tag: o.Tag, LastSyncedAt: localapi.TimePtr(o.LastSynced), Posted: o.Posted,
			Waiting: o.Waiting, LastError: o.LastError, LastErrorAt: localapi.TimePtr(o.LastErrorAt),
		})
	}
	js.ClosedDaysWaiting, hd.Waiting = st.ClosedDays, st.ClosedDays
	names := map[string]string{}
	for _, o := range ms.Outlets {
		names[o.ID] = o.Name
	}
	for _, p := range st.DayProblems {
		js.Days = append(js.Days, localapi.JurnalDayIssue{OutletID: p.Outlet, Date: p.Date, Refused: p.Refused, Error: p.Error, Since: p.Since})
		if p.Refused {
			hd.Refused = append(hd.Refused, health.Day{OutletID: p.Outlet, OutletName: names[p.Outlet], Date: p.Date, Error: p.Error})
		} else if hd.Error == "" {
			hd.Error, hd.ErrorCode, hd.ErrorParams = p.Error, p.Code, p.Params
		}
	}
	return js, hd
}

// storeWriteError is the store's last write failure or, once a later
// commit has cleared that, a sink switch the buffer could not take (it
// stays until a retry succeeds: delivery.go switchStoreSinks).
func (a *Agent) storeWriteError() error {
	if err := a.store.WriteErr(); err != nil {
		return err
	}
	return a.sinkSetError()
}
