package agent

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/agent/moka"
	"github.com/pwbi/edge-agent/agent/moka/apikey"
)

// setupMoka builds the Moka syncer for cfg. A disabled or unconfigured Moka
// gives a syncer without a connector, which idles; the reason shows in
// status.
func (a *Agent) setupMoka(cfg *config.Config) {
	a.setupMokaAuth() // the oauth dialect's token manager (mokaauth.go)
	conn, why := a.mokaConnector(cfg)
	a.mokaErr = why
	a.moka = moka.New(conn, a.store, syncConfig(cfg), moka.Options{
		Clock:  clockwork.NewRealClock(),
		Logger: a.log.With("component", "moka"),
		OnFull: a.metrics.SetPollingPaused,
		OnPoll: a.metrics.ObservePoll,
	})
}

func syncConfig(cfg *config.Config) moka.Config {
	return moka.Config{
		BusinessID:          cfg.Moka.BusinessID,
		Outlets:             cfg.Moka.Outlets,
		Location:            cfg.Moka.Location(),
		PollInterval:        cfg.Moka.PollInterval.Duration,
		InitialBackfillDays: cfg.Moka.InitialBackfillDays,
		SyncProducts:        cfg.Moka.SyncProducts,
	}
}

// mokaConnector returns the connector of the configured dialect, or nil and
// the reason there is none. With api = "oauth" the connector exists even
// before anyone connected Moka: it then reports "needs authorization"
// without a request, and the syncer waits.
func (a *Agent) mokaConnector(cfg *config.Config) (moka.Connector, string) {
	if !cfg.Moka.Enabled {
		return nil, ""
	}
	if ok, _ := cfg.MokaConfigured(); !ok {
		return nil, ""
	}
	switch cfg.Moka.API {
	case config.MokaAPIKey:
		client := apikey.NewClient(apikey.ClientConfig{
			BaseURL:           cfg.Moka.BaseURL,
			APIKey:            cfg.Moka.APIKey.Value(),
			BusinessID:        cfg.Moka.BusinessID,
			RequestsPerMinute: cfg.Moka.RequestsPerMinute,
		}, apikey.ClientOptions{HTTP: a.hc, Logger: a.log.With("component", "moka"), OnRequest: a.metrics.ObserveMokaRequest})
		return apikey.NewConnector(client, apikey.MapContext{
			BusinessID: cfg.Moka.BusinessID,
			Currency:   cfg.Moka.Currency,
			Location:   cfg.Moka.Location(),
		}), ""
	case config.MokaOAuth:
		return a.oauthConnector(cfg) // mokaauth.go
	default:
		return nil, fmt.Sprintf("moka.api = %q is not supported by this version of the agent", cfg.Moka.API)
	}
}

func mokaStatus(ms moka.Status, enabled bool) localapi.MokaStatus {
	out := localapi.MokaStatus{
		Enabled:    enabled,
		Outlets:    []localapi.OutletStatus{},
		LastPollAt: localapi.TimePtr(ms.LastPollAt),
		NextPollAt: localapi.TimePtr(ms.NextPollAt),
	}
	for _, o := range ms.Outlets {
		out.Outlets = append(out.Outlets, localapi.OutletStatus{
			ID:           o.ID,
			Name:         o.Name,
			LastSyncAt:   localapi.TimePtr(o.LastSyncAt),
			LastError:    o.LastError,
			Failures:     o.Failures,
			Transactions: o.Transactions,
			Products:     o.Products,
		})
	}
	if imp := ms.Import; imp != nil {
		out.Import = &localapi.ImportStatus{
			Running:    imp.Running,
			Since:      imp.Since.Format(time.DateOnly),
			OutletID:   imp.OutletID,
			DaysDone:   imp.DaysDone,
			DaysTotal:  imp.DaysTotal,
			Records:    imp.Records,
			StartedAt:  localapi.TimePtr(imp.StartedAt),
			Error:      imp.Error,
			Sink:       imp.Sink,
			New:        imp.New,
			Changed:    imp.Changed,
			Outlets:    imp.Outlets,
			FinishedAt: localapi.TimePtr(imp.FinishedAt),
		}
	}
	return out
}

// Import implements localapi.Backend.
func (a *Agent) Import(ctx context.Context, req localapi.ImportRequest) error {
	a.mu.Lock()
	cfg := a.cfg
	a.mu.Unlock()
	if !cfg.Moka.Enabled {
		return &localapi.BadRequestError{Err: fmt.Errorf("moka is disabled in the configuration")}
	}
	since, err := time.ParseInLocation(time.DateOnly, req.Since, cfg.Moka.Location())
	if err != nil {
		return &localapi.BadRequestError{Err: fmt.Errorf("since: want YYYY-MM-DD")}
	}
	now := time.Now()
	if since.After(now) || since.Before(now.AddDate(0, 0, -config.MaxBackfillDays-1)) {
		earliest := now.In(cfg.Moka.Location()).AddDate(0, 0, -config.MaxBackfillDays).Format(time.DateOnly)
		return &localapi.BadRequestError{Err: fmt.Errorf("since must be within the last %d days: from %s to today",
			config.MaxBackfillDays, earliest)}
	}
	if req.Sink != "" {
		// Only an enabled sink has a place in the buffer to import for.
		spec, ok := a.sinkSpec(req.Sink)
		if !ok {
			return &localapi.BadRequestError{Err: a.checkSinkName(req.Sink)}
		}
		if !spec.enabled(cfg) {
			return &localapi.BadRequestError{Err: fmt.Errorf("sink %q is not enabled in the configuration", req.Sink)}
		}
	}
	if req.OutletID != "" {
		// Refused at once when the outlets are known; otherwise the
		// import itself fails with the list (moka.UnknownOutletError).
		known := a.moka.Status().Outlets
		if len(known) > 0 && !slices.ContainsFunc(known, func(o moka.OutletStatus) bool { return o.ID == req.OutletID }) {
			outlets := make([]moka.Outlet, len(known))
			for i, o := range known {
				outlets[i] = moka.Outlet{ID: o.ID, Name: o.Name}
			}
			return &localapi.BadRequestError{Err: moka.UnknownOutletError{ID: req.OutletID, Known: outlets}}
		}
	}
	if err := a.moka.ImportFor(since, req.OutletID, req.Sink); err != nil {
		return err
	}
	a.log.Info("Historical import requested", "since", req.Since, "outlet", req.OutletID, "sink", req.Sink)
	return nil
}
