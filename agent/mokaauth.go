package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/agent/metrics"
	"github.com/pwbi/edge-agent/agent/moka"
	"github.com/pwbi/edge-agent/agent/moka/oauth"
	"github.com/pwbi/edge-agent/internal/secret"
)

// exchangeTimeout bounds the code exchange of a callback, within the local
// API's write timeout (60 s). It runs detached from the browser's request,
// so that a closed tab does not waste the one-time code half-way.
const exchangeTimeout = 45 * time.Second

// mokaAuth is the agent's side of the Moka Open API authorization (SPEC
// §5.2): one token manager for the agent's lifetime (a reload reconfigures
// it and keeps the grant), the pending authorizations, and their metrics.
// The grant lives in the store (collection "moka_oauth"), never in the
// config file.
type mokaAuth struct {
	tokens *oauth.Tokens
	authz  *oauth.Authorizer

	refreshes      *prometheus.CounterVec // result
	authorizations *prometheus.CounterVec // result
}

// setupMokaAuth creates the token manager and registers its metrics. It is
// called once, by setupMoka.
func (a *Agent) setupMokaAuth() {
	m := &mokaAuth{
		authz: oauth.NewAuthorizer(nil),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Name: "moka_token_refreshes_total",
			Help: "Refreshes of the Moka Open API access token, by result: ok, error (will be tried again), " +
				"revoked (Moka refused the authorization: someone must run \"Connect Moka\").",
		}, []string{"result"}),
		authorizations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Name: "moka_authorizations_total",
			Help: "Completed \"Connect Moka\" authorizations, by result: ok or error.",
		}, []string{"result"}),
	}
	for _, r := range []string{oauth.RefreshOK, oauth.RefreshError, oauth.RefreshRevoked} {
		m.refreshes.WithLabelValues(r)
	}
	for _, r := range []string{metrics.ResultOK, metrics.ResultError} {
		m.authorizations.WithLabelValues(r)
	}
	m.tokens = oauth.NewTokens(oauth.NewDocStore(a.store), oauth.TokensConfig{}, oauth.TokensOptions{
		OnRefresh: func(result string) { m.refreshes.WithLabelValues(result).Inc() },
	})
	needsAuth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: metrics.Namespace, Name: "moka_needs_authorization",
		Help: "1 while the Moka Open API (moka.api = \"oauth\") has no valid authorization and polling waits " +
			"for someone to run \"Connect Moka\" (dashboard, tray or `pwbi-agent moka connect`), else 0.",
	}, func() float64 {
		if cfg := a.config(); !cfg.Moka.Enabled || cfg.Moka.API != config.MokaOAuth {
			return 0
		}
		if m.tokens.State().NeedsAuthorization {
			return 1
		}
		return 0
	})
	if a.metrics != nil {
		a.metrics.Registry.MustRegister(m.refreshes, m.authorizations, needsAuth)
	}
	a.mokaAuth = m
}

// oauthConnector builds the oauth dialect's connector for cfg: a fresh
// client and limiter, and the agent's token manager reconfigured to use the
// same limiter (token requests count against requests_per_minute too).
func (a *Agent) oauthConnector(cfg *config.Config) (moka.Connector, string) {
	m := cfg.Moka
	log := a.log.With("component", "moka")
	lim := oauth.NewLimiter(m.RequestsPerMinute)
	opts := oauth.ClientOptions{
		HTTP: a.hc, Logger: log, Limiter: lim,
		OnRequest: a.metrics.ObserveMokaRequest, OnWait: a.metrics.ObserveMokaWait,
	}
	topts := opts
	topts.MaxRetries = 3
	a.mokaAuth.tokens.Reconfigure(tokensConfig(cfg), oauth.NewPacer(topts, m.RequestsPerMinute))
	client, err := oauth.NewClient(oauth.ClientConfig{BaseURL: m.BaseURL, RequestsPerMinute: m.RequestsPerMinute}, a.mokaAuth.tokens, opts)
	if err != nil {
		return nil, err.Error()
	}
	conn := oauth.NewConnector(client, oauth.MapContext{
		BusinessID: m.BusinessID, // "" means: the authorized account's business
		Currency:   m.Currency,
		Location:   m.Location(),
	})
	// Refund rows waiting for their sale survive restarts, and their
	// waits for buffer space show as the sync's.
	return conn.WithLedger(a.store).WithBufferGate(mokaGate{a}), ""
}

// mokaGate hands the refund ledger's waits for buffer space to the sync
// loop, so that they show in the status as "buffer full" like the loop's
// own. It looks the loop up at each call: the connector is built before
// the loop (it is the loop's argument).
type mokaGate struct{ a *Agent }

func (g mokaGate) WaitForSpace(ctx context.Context, space <-chan struct{}) error {
	return g.a.moka.WaitForSpace(ctx, space)
}

func (g mokaGate) SpaceAgain() { g.a.moka.SpaceAgain() }

func tokensConfig(cfg *config.Config) oauth.TokensConfig {
	return oauth.TokensConfig{
		TokenURL:     cfg.Moka.TokenEndpoint(),
		ClientID:     cfg.Moka.ClientID,
		ClientSecret: cfg.Moka.ClientSecret.Value(),
	}
}

// redirectURI is http://{local_api.listen}/oauth/moka/callback, the
// address registered with Moka for this agent (the bound address when the
// configured port is 0).
func (a *Agent) redirectURI(cfg *config.Config) string {
	addr := cfg.LocalAPI.Listen
	if _, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
		addr = a.APIAddr()
	}
	return "http://" + addr + localapi.PathMokaCallback
}

// MokaAuthorize implements localapi.MokaAuthBackend: it starts an
// authorization and returns the URL of Moka's authorize page.
func (a *Agent) MokaAuthorize(ctx context.Context) (localapi.MokaAuthorization, error) {
	cfg := a.config()
	switch {
	case !cfg.Moka.Enabled:
		return localapi.MokaAuthorization{}, &localapi.BadRequestError{Err: errors.New("moka is disabled in the configuration (moka.enabled = false)")}
	case cfg.Moka.API != config.MokaOAuth:
		return localapi.MokaAuthorization{}, &localapi.BadRequestError{
			Err: fmt.Errorf("moka.api is %q: connecting through the browser is only for the Moka Open API (moka.api = \"oauth\")", cfg.Moka.API)}
	}
	if ok, why := cfg.MokaConfigured(); !ok {
		return localapi.MokaAuthorization{}, &localapi.BadRequestError{Err: errors.New(why)}
	}
	redirect := a.redirectURI(cfg)
	u, exp, err := a.mokaAuth.authz.Start(oauth.AuthorizeRequest{
		Endpoint: cfg.Moka.AuthorizeEndpoint(), ClientID: cfg.Moka.ClientID, RedirectURI: redirect,
	})
	if err != nil {
		return localapi.MokaAuthorization{}, &localapi.BadRequestError{Err: err}
	}
	a.log.Info("Moka authorization started", "redirect_uri", redirect, "expires_at", exp)
	return localapi.MokaAuthorization{AuthorizeURL: u, RedirectURI: redirect, ExpiresAt: exp}, nil
}

// MokaCallback implements localapi.MokaAuthBackend: it checks the one-time
// state, exchanges the code, stores the grant and restarts Moka polling.
func (a *Agent) MokaCallback(ctx context.Context, cb localapi.MokaCallback) error {
	m := a.mokaAuth
	fail := func(err error) error {
		m.tokens.Fail(err)
		m.authorizations.WithLabelValues(metrics.ResultError).Inc()
		return err
	}
	redirect, ok := m.authz.Consume(cb.State)
	if !ok {
		return fail(&localapi.BadRequestError{Err: fmt.Errorf("%w: this authorization link has expired or was already used", oauth.ErrBadState)})
	}
	if cb.Error != "" {
		msg := "moka did not grant access (" + secret.RedactParams(cb.Error) + ")"
		if cb.ErrorDescription != "" {
			msg += ": " + secret.RedactParams(cb.ErrorDescription)
		}
		return fail(&localapi.BadRequestError{Err: errors.New(msg)})
	}
	if cb.Code == "" {
		return fail(&localapi.BadRequestError{Err: errors.New("moka's redirect carried no authorization code")})
	}
	xctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), exchangeTimeout)
	defer cancel()
	if err := m.tokens.Exchange(xctx, cb.Code, redirect); err != nil {
		m.authorizations.WithLabelValues(metrics.ResultError).Inc()
		return err // recorded by Exchange
	}
	m.authorizations.WithLabelValues(metrics.ResultOK).Inc()
	a.log.Info("Moka connected; polling starts")
	a.restartMoka()
	return nil
}

// restartMoka gives the syncer a fresh connector, which clears a "refused
// credentials" stop and starts a poll at once.
func (a *Agent) restartMoka() {
	a.reloadMu.Lock() // not concurrently with a reload's own Update
	defer a.reloadMu.Unlock()
	cfg := a.config()
	conn, why := a.mokaConnector(cfg)
	a.moka.Update(conn, syncConfig(cfg))
	a.mu.Lock()
	a.mokaErr = why
	a.mu.Unlock()
}

// oauthStatus adds the grant's state to a status being built (moka.oauth,
// moka.needs_authorization) and says, until the syncer reports it itself,
// what is wrong with the grant: setup when Moka was never connected,
// refused when the grant or the client was refused (a person must act).
func (a *Agent) oauthStatus(s *localapi.Status, ms moka.Status) (setup, refused string) {
	cfg := a.config()
	if !cfg.Moka.Enabled || cfg.Moka.API != config.MokaOAuth || a.mokaAuth == nil {
		return "", ""
	}
	st := a.mokaAuth.tokens.State()
	s.Moka.NeedsAuthorization = st.NeedsAuthorization
	s.Moka.OAuth = &localapi.MokaOAuthStatus{
		Connected:             st.Connected,
		AuthorizedAt:          localapi.TimePtr(st.AuthorizedAt),
		AccessTokenExpiresAt:  localapi.TimePtr(st.ExpiresAt),
		LastRefreshAt:         localapi.TimePtr(st.RefreshedAt),
		BusinessID:            st.BusinessID,
		PendingAuthorizations: a.mokaAuth.authz.Pending(),
		LastError:             st.LastError,
		LastErrorAt:           localapi.TimePtr(st.LastErrorAt),
	}
	switch {
	case st.Reason == "" || ms.AuthError != "":
		return "", ""
	case st.NeedsAuthorization && st.AuthorizedAt.IsZero():
		return st.Reason, ""
	}
	return "", st.Reason
}

var _ localapi.MokaAuthBackend = (*Agent)(nil)
