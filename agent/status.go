package agent

import (
	"context"
	"fmt"

	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/agent/version"
)

// Status implements localapi.Backend: the state a person or the tray sees.
// Problems are short sentences for a person, in order of importance.
func (a *Agent) Status(ctx context.Context) localapi.Status {
	a.mu.Lock()
	cfg, gen, loadedAt, cfgErr, paused, mokaErr := a.cfg, a.gen, a.loadedAt, a.cfgErr, a.paused, a.mokaErr
	restart := append([]string{}, a.restart...)
	a.mu.Unlock()

	s := localapi.Status{
		Version:   version.String(),
		AgentID:   cfg.Agent.ID,
		StartedAt: localapi.TimePtr(a.started),
		Problems:  []string{},
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
	if cfgErr != "" {
		s.Problems = append(s.Problems, "the config file has an error; the previous settings stay in force: "+cfgErr)
	}
	if len(restart) > 0 {
		s.Problems = append(s.Problems, fmt.Sprintf("restart the agent to apply: %v", restart))
	}
	a.checkoutStatus(&s, cfg) // checkout.open_orders and its problems (checkout.go)

	ms := a.moka.Status()
	s.Moka = mokaStatus(ms, cfg.Moka.Enabled)
	a.oauthStatus(&s, ms) // moka.oauth and needs_authorization (mokaauth.go)
	if ok, why := cfg.MokaConfigured(); cfg.Moka.Enabled {
		s.Moka.Configured = ok && mokaErr == ""
		switch {
		case !ok:
			s.Problems = append(s.Problems, why)
		case mokaErr != "":
			s.Problems = append(s.Problems, mokaErr)
		}
	}
	if ms.Error != "" {
		s.Problems = append(s.Problems, ms.Error)
	}
	if ms.Full {
		s.Problems = append(s.Problems, "the buffer is full: Moka polling is paused until the upstream takes records")
	}

	if qs, err := a.store.Stats(); err != nil {
		s.Problems = append(s.Problems, "cannot read the buffer: "+err.Error())
	} else {
		s.Queue = localapi.QueueStatus{
			Pending:         qs.Pending,
			PendingBytes:    qs.PendingBytes,
			DeadLetter:      qs.DeadLetters,
			OldestPendingAt: localapi.TimePtr(qs.OldestPendingAt),
			Full:            ms.Full,
		}
		s.Store.FileSize = qs.FileSize
		if qs.DeadLetters > 0 {
			s.Problems = append(s.Problems, fmt.Sprintf("%d record(s) were set aside (see `pwbi-agent queue dead`)", qs.DeadLetters))
		}
	}
	if q, ok := a.store.Quarantine(); ok {
		s.Store.Quarantine = &localapi.QuarantineStatus{CorruptPath: q.CorruptPath, Reason: q.Reason, At: q.At}
		s.Problems = append(s.Problems, "the database was damaged and has been replaced; sales are fetched again from Moka")
	}

	us := a.fwd.Status()
	s.Upstream = localapi.UpstreamStatus{
		Configured:    us.Configured,
		Online:        us.Online,
		LastSuccessAt: localapi.TimePtr(us.LastSuccessAt),
		LastError:     us.LastError,
		NextRetryAt:   localapi.TimePtr(us.NextRetryAt),
		Delivered:     us.Delivered,
	}
	if !us.Configured {
		s.Problems = append(s.Problems, "upstream.url is not set: records are kept in the local buffer only")
	} else if us.LastError != "" && !us.Online {
		s.Problems = append(s.Problems, "cannot reach the PWBI cloud: "+us.LastError)
	}

	switch {
	case paused:
		s.State = localapi.StatePaused
	case cfgErr != "" || ms.Error != "":
		s.State = localapi.StateError
	case us.Configured && !us.Online && !us.LastAttemptAt.IsZero():
		s.State = localapi.StateOffline
	case us.Sending || ms.Polling || (ms.Import != nil && ms.Import.Running):
		s.State = localapi.StateSyncing
	default:
		s.State = localapi.StateOK
	}
	return s
}
