package oauth

import (
	"errors"

	"github.com/pwbi/edge-agent/agent/moka/internal/feed"
	"github.com/pwbi/edge-agent/internal/secret"
)

// Token is an OAuth token (access or refresh): internal/secret's Secret.
// It prints, formats, logs and marshals as "<secret>" ("" when empty)
// whatever the verb, so a grant can be logged or wrapped in an error by
// mistake without leaking; Value gives the token itself, for the
// Authorization header and the token store only (which persists grants
// through its own document type).
type Token = secret.Secret

// Errors callers branch on. The grant errors reach the syncer wrapped in an
// *AuthError, which also matches moka.ErrUnauthorized so that polling
// stops until a person acts.
var (
	// ErrNotConnected: no authorization yet; run `pwbi-agent moka connect`.
	ErrNotConnected = errors.New("moka is not connected")
	// ErrGrantRevoked: Moka refused the refresh token (invalid_grant): the
	// authorization was revoked or expired and must be given again.
	ErrGrantRevoked = errors.New("moka authorization revoked or expired")
	// ErrTokenRejected: Moka refused an access token it had just issued.
	ErrTokenRejected = errors.New("moka refused a fresh access token")
	// ErrClientRejected: Moka refused moka.client_id/client_secret
	// (invalid_client or unauthorized_client).
	ErrClientRejected = errors.New("moka rejected the oauth client credentials")
	// ErrForbidden: Moka answered 403 to an API call: the connected account
	// may not read that data.
	ErrForbidden = errors.New("moka refused access")
	// ErrBadState: an authorization callback whose state is unknown,
	// expired or already used.
	ErrBadState = errors.New("unknown or expired authorization state")
)

// Hints shown in status for each refusal (moka.AuthHinter).
const (
	hintConnect     = "Moka is not connected yet: run `pwbi-agent moka connect` on this PC or click \"Connect Moka\" on the dashboard"
	hintReauthorize = "Moka access was revoked or has expired: re-authorize with `pwbi-agent moka connect` or \"Connect Moka\" on the dashboard"
	hintClient      = "Moka rejected moka.client_id / moka.client_secret: check them in the config file"
	hintForbidden   = "Moka refused access with the connected account: re-authorize with `pwbi-agent moka connect` using the owner's Moka account"
)

// AuthError is a refusal only a person can fix: no grant, a revoked grant,
// refused client credentials or a refused token. It matches (errors.Is)
// both its cause (one of the Err… sentinels) and moka.ErrUnauthorized,
// and its AuthHint says what to do (moka.AuthHinter).
type AuthError struct {
	Err    error  // ErrNotConnected, ErrGrantRevoked, ErrTokenRejected, ErrClientRejected or ErrForbidden
	Detail string // what Moka said, redacted; may be empty
}

func (e *AuthError) Error() string {
	if e.Detail != "" {
		return e.Err.Error() + ": " + e.Detail
	}
	return e.Err.Error()
}

// Unwrap returns the cause and moka.ErrUnauthorized.
func (e *AuthError) Unwrap() []error { return []error{e.Err, feed.ErrUnauthorized} }

// AuthHint implements moka.AuthHinter.
func (e *AuthError) AuthHint() string {
	switch e.Err {
	case ErrNotConnected:
		return hintConnect
	case ErrClientRejected:
		return hintClient
	case ErrForbidden:
		return hintForbidden
	}
	return hintReauthorize
}

var _ feed.AuthHinter = (*AuthError)(nil)
