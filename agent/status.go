package agent

import (
	"context"

	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/deliver"
	"github.com/pwbi/edge-agent/agent/health"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/agent/moka"
	"github.com/pwbi/edge-agent/agent/version"
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
	setup, refused := a.oauthStatus(&s, ms) // moka.oauth and needs_authorization (mokaauth.go)
	in.Moka = mokaHealth(ms, cfg)
	if ok, why := cfg.MokaConfigured(); cfg.Moka.Enabled {
		s.Moka.Configured = ok && mokaErr == ""
		switch {
		case !ok:
			in.Moka.Setup = why
		case mokaErr != "":
			in.Moka.Setup = mokaErr
		case setup != "":
			in.Moka.Setup = setup
		case refused != "" && in.Moka.AuthRefused == "":
			in.Moka.AuthRefused = refused
		}
	}

	if qs, err := a.store.Stats(); err != nil {
		in.Store.ReadError = err.Error()
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
	if err := a.store.WriteErr(); err != nil {
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

	us := a.fwd.Status()
	s.Upstream = localapi.UpstreamStatus{
		Configured:    us.Configured,
		Online:        us.Online,
		LastSuccessAt: localapi.TimePtr(us.LastSuccessAt),
		LastError:     us.LastError,
		Problem:       us.Problem,
		NextRetryAt:   localapi.TimePtr(us.NextRetryAt),
		Delivered:     us.Delivered,
	}
	in.Sinks = append(in.Sinks, upstreamHealth(us))

	state, problems := health.Evaluate(in)
	s.State = string(state)
	s.Problems = health.Texts(problems)
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

// upstreamHealth is the HTTP upstream's part of the health input.
func upstreamHealth(us deliver.Status) health.Sink {
	h := health.Sink{
		Name:         "the PWBI cloud",
		Configured:   us.Configured,
		Unconfigured: "upstream.url is not set: records are kept in the local buffer only",
		Problem:      us.Problem,
		LastError:    us.LastError,
		Busy:         us.Sending,
	}
	switch us.Health {
	case deliver.HealthOffline:
		h.Health = health.SinkOffline
	case deliver.HealthError:
		h.Health = health.SinkError
	}
	return h
}
