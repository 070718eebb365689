package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/pwbi/edge-agent/internal/secret"
)

// DefaultRefreshBefore is how long before expiry an access token is
// refreshed (what public Moka integrations do); for short-lived tokens it
// is capped at half the lifetime.
const DefaultRefreshBefore = 5 * time.Minute

// tokenMaxRetries bounds the retries of one token request (429, 5xx,
// network): a refresh that keeps failing fails the poll, and the next poll
// tries again, so a long retry loop here would only delay the status.
const tokenMaxRetries = 3

// maxTokenBody bounds a token answer.
const maxTokenBody = 64 << 10

// Refresh results, for TokensOptions.OnRefresh (metrics labels).
const (
	RefreshOK      = "ok"
	RefreshError   = "error"
	RefreshRevoked = "revoked"
)

// TokensConfig is what the configuration file gives the token manager.
type TokensConfig struct {
	TokenURL     string // {base_url}/oauth/token
	ClientID     string
	ClientSecret string
}

// TokensOptions are the token manager's collaborators. The zero value is
// usable.
type TokensOptions struct {
	// Pacer paces and retries token requests; nil means a default pacer.
	// Give it the API client's limiter so that the request budget is
	// shared. Its Clock is the manager's clock (expiry).
	Pacer *Pacer
	// RefreshBefore: see DefaultRefreshBefore (0 means that).
	RefreshBefore time.Duration
	// OnRefresh, when set, is called after every refresh attempt with
	// RefreshOK, RefreshError or RefreshRevoked.
	OnRefresh func(result string)
}

// State is the grant as a person sees it (status page, metrics).
type State struct {
	// Connected: there is a grant Moka has not refused.
	Connected bool
	// NeedsAuthorization: someone must run "Connect Moka" (no grant, or
	// Moka refused it).
	NeedsAuthorization bool
	// Reason says why NeedsAuthorization, or why the client is refused.
	Reason       string
	AuthorizedAt time.Time
	ExpiresAt    time.Time
	RefreshedAt  time.Time
	BusinessID   string
	// LastError is the last failure of a token request or authorization;
	// cleared by the next success.
	LastError   string
	LastErrorAt time.Time
}

// Tokens manages the OAuth grant: it hands out a valid access token,
// refreshes it before it expires (or when Moka refuses it), and stores
// every rotated refresh token durably before the new access token is
// handed to anyone. Methods are safe for concurrent use; refreshes are
// serialised, so concurrent callers share one.
//
// Durability order of a refresh:
//
//  1. POST grant_type=refresh_token with the stored refresh token R1;
//  2. Moka answers (A2, R2) and, Doorkeeper-style, keeps R1 valid until A2
//     is first used;
//  3. SaveGrant(A2, R2) returns only once it is on disk;
//  4. only then is A2 returned to a caller and sent to Moka.
//
// A crash before 3 leaves R1 on disk, still valid because A2 was never
// used; a crash after 3 leaves R2. Either way the grant survives. If step 3
// fails, A2 is dropped unused and the next call refreshes again with R1.
type Tokens struct {
	store     TokenStore
	before    time.Duration
	onRefresh func(string)

	refreshMu sync.Mutex // held for a whole refresh or code exchange

	mu       sync.Mutex
	cfg      TokensConfig
	p        *Pacer
	loaded   bool
	has      bool
	grant    Grant
	retired  []string // earlier tokens, for redaction
	rejected string   // the API refused a fresh token; cleared by Exchange
	clientNo string   // the client credentials were refused; cleared by Reconfigure
	lastErr  string
	lastAt   time.Time
}

// NewTokens returns a token manager over st. It reads st lazily, on the
// first call that needs the grant.
func NewTokens(st TokenStore, cfg TokensConfig, opts TokensOptions) *Tokens {
	t := &Tokens{store: st, before: opts.RefreshBefore, onRefresh: opts.OnRefresh, cfg: cfg, p: opts.Pacer}
	if t.before <= 0 {
		t.before = DefaultRefreshBefore
	}
	if t.p == nil {
		t.p = NewPacer(ClientOptions{MaxRetries: tokenMaxRetries}, 0)
	}
	return t
}

// Reconfigure applies new client settings and pacer (a reload). The grant
// is kept; a refusal of the old client credentials is forgotten.
func (t *Tokens) Reconfigure(cfg TokensConfig, p *Pacer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cfg = cfg
	if p != nil {
		t.p = p
	}
	t.clientNo = ""
}

func (t *Tokens) log() *slog.Logger {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.p.Log
}

func (t *Tokens) now() time.Time {
	t.mu.Lock()
	p := t.p
	t.mu.Unlock()
	return p.Clock.Now()
}

// loadLocked reads the grant from the store once. t.mu must be held.
func (t *Tokens) loadLocked() error {
	if t.loaded {
		return nil
	}
	g, ok, err := t.store.LoadGrant()
	if err != nil {
		return fmt.Errorf("load moka grant: %w", err)
	}
	t.grant, t.has, t.loaded = g, ok && (g.Revoked || !g.RefreshToken.IsZero()), true
	return nil
}

// usableLocked returns the grant if callers may use it. t.mu must be held.
func (t *Tokens) usableLocked() (Grant, error) {
	if err := t.loadLocked(); err != nil {
		return Grant{}, err
	}
	switch {
	case t.clientNo != "":
		return Grant{}, &AuthError{Err: ErrClientRejected, Detail: t.clientNo}
	case !t.has:
		return Grant{}, &AuthError{Err: ErrNotConnected}
	case t.grant.Revoked:
		return Grant{}, &AuthError{Err: ErrGrantRevoked, Detail: t.grant.RevokedReason}
	case t.rejected != "":
		return Grant{}, &AuthError{Err: ErrTokenRejected, Detail: t.rejected}
	}
	return t.grant, nil
}

// due reports whether g's access token should be refreshed at now.
func (t *Tokens) due(g Grant, now time.Time) bool {
	if g.AccessToken.IsZero() {
		return true
	}
	if g.ExpiresAt.IsZero() {
		return false
	}
	before := t.before
	if life := g.ExpiresAt.Sub(g.IssuedAt); life > 0 && life/2 < before {
		before = life / 2
	}
	return !now.Before(g.ExpiresAt.Add(-before))
}

// Token returns an access token valid now, refreshing first when it is due.
// Without a usable grant it returns an *AuthError.
func (t *Tokens) Token(ctx context.Context) (Token, error) {
	t.mu.Lock()
	g, err := t.usableLocked()
	t.mu.Unlock()
	if err != nil {
		return Token{}, err
	}
	if !t.due(g, t.now()) {
		return g.AccessToken, nil
	}
	return t.Refresh(ctx, g.AccessToken)
}

// Refresh replaces the access token stale (one Moka refused, or one about
// to expire) and returns the new one. If another caller has already
// replaced stale, its result is returned without a second refresh.
func (t *Tokens) Refresh(ctx context.Context, stale Token) (Token, error) {
	t.refreshMu.Lock()
	defer t.refreshMu.Unlock()
	t.mu.Lock()
	g, err := t.usableLocked()
	t.mu.Unlock()
	if err != nil {
		return Token{}, err
	}
	if g.AccessToken != stale && !t.due(g, t.now()) {
		return g.AccessToken, nil // refreshed meanwhile
	}
	return t.refresh(ctx, g)
}

// refresh runs the refresh_token grant for g. t.refreshMu must be held.
func (t *Tokens) refresh(ctx context.Context, g Grant) (Token, error) {
	t.mu.Lock()
	cfg, p := t.cfg, t.p
	t.mu.Unlock()
	log := p.Log
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {g.RefreshToken.Value()},
		"client_id":     {cfg.ClientID},
		"client_secret": {cfg.ClientSecret},
	}
	res, err := t.post(ctx, cfg, p, form)
	if err != nil {
		var oe *oauthError
		switch {
		case errors.As(err, &oe) && oe.grantRefused():
			t.report(RefreshRevoked)
			return Token{}, t.revoke(g, oe)
		case errors.As(err, &oe) && oe.clientRefused():
			t.report(RefreshError)
			t.mu.Lock()
			t.clientNo = oe.describe()
			t.mu.Unlock()
			t.fail(err)
			log.Error("Moka refused the OAuth client credentials", "error", oe.Code)
			return Token{}, &AuthError{Err: ErrClientRejected, Detail: oe.describe()}
		}
		t.report(RefreshError)
		t.fail(err)
		if ctx.Err() == nil {
			log.Warn("Refreshing the Moka access token failed", "err", err)
		}
		return Token{}, fmt.Errorf("refresh moka access token: %w", err)
	}
	now := p.Clock.Now()
	ng := g
	ng.AccessToken, ng.TokenType, ng.IssuedAt, ng.RefreshedAt = res.access, res.tokenType, now, now
	if !res.refresh.IsZero() { // a rotated refresh token; Moka may also keep the old one
		ng.RefreshToken = res.refresh
	}
	if res.scope != "" {
		ng.Scope = res.scope
	}
	ng.ExpiresAt = time.Time{}
	if res.expiresIn > 0 {
		ng.ExpiresAt = now.Add(res.expiresIn)
	}
	// The rotated refresh token goes to stable storage before anyone can
	// use the new access token.
	if err := t.store.SaveGrant(ng); err != nil {
		t.report(RefreshError)
		t.fail(err)
		log.Error("Storing the rotated Moka refresh token failed; the new access token is not used", "err", err)
		return Token{}, fmt.Errorf("store rotated moka tokens: %w", err)
	}
	t.mu.Lock()
	t.retireLocked(g)
	t.grant, t.has, t.lastErr, t.lastAt = ng, true, "", time.Time{}
	t.mu.Unlock()
	t.report(RefreshOK)
	log.Info("Moka access token refreshed", "expires_at", ng.ExpiresAt, "rotated", !res.refresh.IsZero() && res.refresh != g.RefreshToken)
	return ng.AccessToken, nil
}

// revoke records that Moka refused the refresh token: durably, so that a
// restart does not ask again, and in memory.
func (t *Tokens) revoke(g Grant, oe *oauthError) error {
	now := t.now()
	rg := g
	rg.Revoked, rg.RevokedAt, rg.RevokedReason = true, now, oe.describe()
	rg.AccessToken, rg.RefreshToken = Token{}, Token{}
	if err := t.store.SaveGrant(rg); err != nil {
		t.log().Error("Recording the revoked Moka authorization failed", "err", err)
	}
	t.mu.Lock()
	t.retireLocked(g)
	t.grant = rg
	t.lastErr, t.lastAt = "Moka refused the stored authorization: "+oe.describe(), now
	t.mu.Unlock()
	t.log().Error("Moka authorization revoked or expired; waiting for a new authorization", "error", oe.Code)
	return &AuthError{Err: ErrGrantRevoked, Detail: oe.describe()}
}

// retireLocked keeps g's tokens for redaction. t.mu must be held.
func (t *Tokens) retireLocked(g Grant) {
	for _, s := range []Token{g.AccessToken, g.RefreshToken} {
		if !s.IsZero() {
			t.retired = append(t.retired, s.Value())
		}
	}
	if n := len(t.retired); n > 16 {
		t.retired = append(t.retired[:0:0], t.retired[n-16:]...)
	}
}

// Exchange trades an authorization code for a grant (the
// authorization_code grant) and stores it durably. A previous grant, its
// refusal included, is replaced.
func (t *Tokens) Exchange(ctx context.Context, code, redirectURI string) error {
	t.refreshMu.Lock()
	defer t.refreshMu.Unlock()
	t.mu.Lock()
	cfg, p := t.cfg, t.p
	old := t.grant
	t.mu.Unlock()
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {redirectURI},
		"client_id":     {cfg.ClientID},
		"client_secret": {cfg.ClientSecret},
	}
	res, err := t.post(ctx, cfg, p, form)
	if err != nil {
		t.fail(err)
		var oe *oauthError
		if errors.As(err, &oe) && oe.clientRefused() {
			return &AuthError{Err: ErrClientRejected, Detail: oe.describe()}
		}
		return fmt.Errorf("exchange moka authorization code: %w", err)
	}
	if res.refresh.IsZero() {
		err := errors.New("moka issued no refresh token")
		t.fail(err)
		return err
	}
	now := p.Clock.Now()
	g := Grant{
		AccessToken: res.access, RefreshToken: res.refresh, TokenType: res.tokenType, Scope: res.scope,
		IssuedAt: now, AuthorizedAt: now,
	}
	if res.expiresIn > 0 {
		g.ExpiresAt = now.Add(res.expiresIn)
	}
	if err := t.store.SaveGrant(g); err != nil {
		t.fail(err)
		return fmt.Errorf("store moka grant: %w", err)
	}
	t.mu.Lock()
	t.retireLocked(old)
	t.grant, t.has, t.loaded = g, true, true
	t.rejected, t.clientNo, t.lastErr, t.lastAt = "", "", "", time.Time{}
	t.mu.Unlock()
	p.Log.Info("Moka authorized", "expires_at", g.ExpiresAt, "scope", g.Scope)
	return nil
}

// Rejected records that Moka refused an access token it had just issued
// (a 401 right after a refresh): polling stops until a new authorization.
func (t *Tokens) Rejected(detail string) error {
	t.mu.Lock()
	t.rejected = detail
	if t.rejected == "" {
		t.rejected = "HTTP 401"
	}
	t.lastErr, t.lastAt = "Moka refused a fresh access token: "+t.rejected, t.p.Clock.Now()
	t.mu.Unlock()
	return &AuthError{Err: ErrTokenRejected, Detail: detail}
}

// Fail records a failed authorization attempt (the person sees it).
func (t *Tokens) Fail(err error) { t.fail(err) }

func (t *Tokens) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lastErr, t.lastAt = t.redactLocked(err.Error()), t.p.Clock.Now()
}

func (t *Tokens) report(result string) {
	if t.onRefresh != nil {
		t.onRefresh(result)
	}
}

// BusinessID returns the business id learnt from Moka ("" until known).
func (t *Tokens) BusinessID() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.loadLocked() != nil {
		return ""
	}
	return t.grant.BusinessID
}

// SetBusinessID records the business id of the grant (from
// /v1/profile/self), durably, so that a restart needs no profile call.
func (t *Tokens) SetBusinessID(id string) error {
	t.refreshMu.Lock() // no refresh may write an older copy meanwhile
	defer t.refreshMu.Unlock()
	t.mu.Lock()
	if err := t.loadLocked(); err != nil || !t.has || t.grant.BusinessID == id {
		t.mu.Unlock()
		return err
	}
	g := t.grant
	t.mu.Unlock()
	g.BusinessID = id
	if err := t.store.SaveGrant(g); err != nil {
		return err
	}
	t.mu.Lock()
	t.grant.BusinessID = id
	t.mu.Unlock()
	return nil
}

// State returns the grant's state.
func (t *Tokens) State() State {
	t.mu.Lock()
	defer t.mu.Unlock()
	var s State
	if err := t.loadLocked(); err != nil {
		s.NeedsAuthorization, s.Reason = false, err.Error()
		s.LastError, s.LastErrorAt = t.lastErr, t.lastAt
		return s
	}
	g := t.grant
	s = State{
		AuthorizedAt: g.AuthorizedAt, ExpiresAt: g.ExpiresAt, RefreshedAt: g.RefreshedAt, BusinessID: g.BusinessID,
		LastError: t.lastErr, LastErrorAt: t.lastAt,
	}
	switch {
	case !t.has:
		s.NeedsAuthorization, s.Reason = true, hintConnect
	case g.Revoked:
		s.NeedsAuthorization, s.Reason = true, hintReauthorize
	case t.rejected != "":
		s.NeedsAuthorization, s.Reason = true, hintReauthorize
	case t.clientNo != "":
		s.Reason = hintClient
	default:
		s.Connected = true
	}
	return s
}

// Redact removes from s every token this manager has held and the client
// secret, plus anything secret.RedactParams recognises.
func (t *Tokens) Redact(s string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.redactLocked(s)
}

func (t *Tokens) redactLocked(s string) string {
	s = secret.Redact(s, t.grant.AccessToken.Value(), t.grant.RefreshToken.Value(), t.cfg.ClientSecret)
	return secret.RedactParams(secret.Redact(s, t.retired...))
}
