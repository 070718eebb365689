package oauth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// DefaultScope is the scope asked for: reading the profile, the library
// (items) and the sales reports. Moka documents no scope list; these names
// come from a working public integration's scope string ("customer library
// profile report transaction checkout …"), reduced to what the agent reads.
const DefaultScope = "profile library report transaction"

// Limits of pending authorizations.
const (
	// StateTTL is how long an authorization may take, from opening Moka's
	// page to its redirect back.
	StateTTL = 15 * time.Minute
	// maxPending bounds the pending authorizations: starting more (a
	// page reloaded many times) forgets the oldest.
	maxPending = 16
)

// Authorizer tracks the authorizations started and not yet completed: each
// has a one-time random state, bound to its redirect URI, that the callback
// must return. (Moka's documentation does not mention PKCE, so the flow
// relies on the state and the client secret, as a confidential client.)
// It is safe for concurrent use. Pending states live in memory only: a
// restart of the agent simply requires starting again.
type Authorizer struct {
	clock clockwork.Clock

	mu      sync.Mutex
	pending []pendingAuth
}

type pendingAuth struct {
	state       string
	redirectURI string
	expires     time.Time
}

// NewAuthorizer returns an empty authorizer on clock (nil: real time).
func NewAuthorizer(clock clockwork.Clock) *Authorizer {
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	return &Authorizer{clock: clock}
}

// AuthorizeRequest is what Start needs.
type AuthorizeRequest struct {
	Endpoint    string // Moka's authorize page, {host}/oauth/authorize
	ClientID    string
	RedirectURI string // http://{local_api.listen}/oauth/moka/callback
	Scope       string // "" means DefaultScope
}

// Start begins an authorization: it returns the URL of Moka's authorize
// page (response_type=code, client_id, redirect_uri, scope and a fresh
// state) and when the state expires.
func (a *Authorizer) Start(req AuthorizeRequest) (authorizeURL string, expires time.Time, err error) {
	u, err := url.Parse(req.Endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", time.Time{}, fmt.Errorf("moka authorize url %q is not an http(s) URL", req.Endpoint)
	}
	if req.ClientID == "" {
		return "", time.Time{}, fmt.Errorf("moka.client_id is not set")
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("authorization state: %w", err)
	}
	state := base64.RawURLEncoding.EncodeToString(raw[:])
	scope := req.Scope
	if scope == "" {
		scope = DefaultScope
	}
	q := u.Query()
	q.Set("response_type", "code")
	q.Set("client_id", req.ClientID)
	q.Set("redirect_uri", req.RedirectURI)
	q.Set("scope", scope)
	q.Set("state", state)
	u.RawQuery = q.Encode()

	now := a.clock.Now()
	expires = now.Add(StateTTL)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pruneLocked(now)
	if len(a.pending) >= maxPending {
		a.pending = append(a.pending[:0], a.pending[len(a.pending)-maxPending+1:]...)
	}
	a.pending = append(a.pending, pendingAuth{state: state, redirectURI: req.RedirectURI, expires: expires})
	return u.String(), expires, nil
}

// Consume ends the pending authorization of state and returns its
// redirect URI. ok is false for an unknown, expired or already used state.
// The comparison takes the same time whatever state is given.
func (a *Authorizer) Consume(state string) (redirectURI string, ok bool) {
	now := a.clock.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pruneLocked(now)
	found := -1
	for i, p := range a.pending {
		if subtle.ConstantTimeCompare([]byte(p.state), []byte(state)) == 1 {
			found = i
		}
	}
	if found < 0 || state == "" {
		return "", false
	}
	redirectURI = a.pending[found].redirectURI
	a.pending = append(a.pending[:found], a.pending[found+1:]...)
	return redirectURI, true
}

// Pending returns how many authorizations are waiting for their callback.
func (a *Authorizer) Pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pruneLocked(a.clock.Now())
	return len(a.pending)
}

func (a *Authorizer) pruneLocked(now time.Time) {
	kept := a.pending[:0]
	for _, p := range a.pending {
		if now.Before(p.expires) {
			kept = append(kept, p)
		}
	}
	a.pending = kept
}
