package oauth

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/pwbi/edge-agent/internal/secret"
	"github.com/pwbi/edge-agent/store"
)

// Grant is what the agent holds of one authorization: the current token
// pair, when the access token expires, and whether Moka still honours it.
// Its tokens print as "<secret>" (see Token).
type Grant struct {
	AccessToken  Token
	RefreshToken Token
	TokenType    string
	Scope        string
	// ExpiresAt is when the access token expires; zero when Moka did not
	// say (then only a 401 triggers a refresh).
	ExpiresAt time.Time
	// IssuedAt is when the current access token was obtained.
	IssuedAt time.Time
	// AuthorizedAt is when the authorization code was exchanged.
	AuthorizedAt time.Time
	// RefreshedAt is the last successful refresh; zero before the first.
	RefreshedAt time.Time
	// BusinessID is the Moka business, from /v1/profile/self once known.
	BusinessID string
	// Revoked is set when Moka refused the refresh token (invalid_grant):
	// nothing is retried until a person authorizes again.
	Revoked       bool
	RevokedAt     time.Time
	RevokedReason string
}

// TokenStore keeps the grant across restarts.
type TokenStore interface {
	// LoadGrant returns the stored grant; ok is false when there is none.
	LoadGrant() (g Grant, ok bool, err error)
	// SaveGrant replaces the stored grant. When it returns nil the grant
	// is on stable storage (fsync'd): it survives a crash or power loss.
	SaveGrant(g Grant) error
}

// Docs is the part of the agent's store that documents live in;
// *store.Store implements it (PutDoc commits, with fsync, before it
// returns).
type Docs interface {
	PutDoc(coll, key string, value []byte, in []store.Input) (store.AppendResult, error)
	GetDoc(coll, key string) (value []byte, ok bool, err error)
}

var _ Docs = (*store.Store)(nil)

// The grant's place in the store: collection "moka_oauth", document
// "grant". The tokens live in the database, never in the config file.
const (
	DocCollection = "moka_oauth"
	DocKey        = "grant"
)

// grantDoc is the stored form of a Grant. Version 1.
type grantDoc struct {
	Version       int       `json:"version"`
	AccessToken   string    `json:"access_token"`
	RefreshToken  string    `json:"refresh_token"`
	TokenType     string    `json:"token_type,omitempty"`
	Scope         string    `json:"scope,omitempty"`
	ExpiresAt     time.Time `json:"expires_at,omitzero"`
	IssuedAt      time.Time `json:"issued_at,omitzero"`
	AuthorizedAt  time.Time `json:"authorized_at,omitzero"`
	RefreshedAt   time.Time `json:"refreshed_at,omitzero"`
	BusinessID    string    `json:"business_id,omitempty"`
	Revoked       bool      `json:"revoked,omitempty"`
	RevokedAt     time.Time `json:"revoked_at,omitzero"`
	RevokedReason string    `json:"revoked_reason,omitempty"`
}

// DocStore keeps the grant as a document of the agent's store.
type DocStore struct{ d Docs }

// NewDocStore returns the token store in d's collection "moka_oauth".
func NewDocStore(d Docs) *DocStore { return &DocStore{d: d} }

var _ TokenStore = (*DocStore)(nil)

// LoadGrant implements TokenStore.
func (s *DocStore) LoadGrant() (Grant, bool, error) {
	b, ok, err := s.d.GetDoc(DocCollection, DocKey)
	if err != nil || !ok {
		return Grant{}, false, err
	}
	var d grantDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return Grant{}, false, fmt.Errorf("moka grant document: %w", err)
	}
	if d.Version != 1 {
		return Grant{}, false, fmt.Errorf("moka grant document: unknown version %d", d.Version)
	}
	return Grant{
		AccessToken: secret.New(d.AccessToken), RefreshToken: secret.New(d.RefreshToken),
		TokenType: d.TokenType, Scope: d.Scope,
		ExpiresAt: d.ExpiresAt, IssuedAt: d.IssuedAt, AuthorizedAt: d.AuthorizedAt, RefreshedAt: d.RefreshedAt,
		BusinessID: d.BusinessID,
		Revoked:    d.Revoked, RevokedAt: d.RevokedAt, RevokedReason: d.RevokedReason,
	}, true, nil
}

// SaveGrant implements TokenStore: one bbolt transaction, committed and
// synced before it returns.
func (s *DocStore) SaveGrant(g Grant) error {
	b, err := json.Marshal(grantDoc{
		Version:     1,
		AccessToken: g.AccessToken.Value(), RefreshToken: g.RefreshToken.Value(),
		TokenType: g.TokenType, Scope: g.Scope,
		ExpiresAt: g.ExpiresAt, IssuedAt: g.IssuedAt, AuthorizedAt: g.AuthorizedAt, RefreshedAt: g.RefreshedAt,
		BusinessID: g.BusinessID,
		Revoked:    g.Revoked, RevokedAt: g.RevokedAt, RevokedReason: g.RevokedReason,
	})
	if err != nil {
		return fmt.Errorf("encode moka grant: %w", err)
	}
	// No records ride along, so the buffer bound (ErrFull) cannot refuse it.
	if _, err := s.d.PutDoc(DocCollection, DocKey, b, nil); err != nil {
		return fmt.Errorf("save moka grant: %w", err)
	}
	return nil
}
