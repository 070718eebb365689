package oauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/pwbi/edge-agent/agent/moka/internal/wire"
	"github.com/pwbi/edge-agent/internal/secret"
)

// This file is the token endpoint's side of Tokens: one request with its
// retries, and the reading of its answers.

// tokenResult is a successful token answer.
type tokenResult struct {
	access, refresh Token
	tokenType       string
	scope           string
	expiresIn       time.Duration
}

// oauthError is an OAuth error answer (RFC 6749 §5.2).
type oauthError struct {
	Status      int
	Code        string // "invalid_grant", …
	Description string // redacted
}

func (e *oauthError) Error() string {
	return fmt.Sprintf("moka token endpoint: HTTP %d: %s", e.Status, e.describe())
}

func (e *oauthError) describe() string {
	if e.Description != "" {
		return e.Code + " (" + e.Description + ")"
	}
	return e.Code
}

// grantRefused: the refresh token or code is invalid, expired or revoked.
func (e *oauthError) grantRefused() bool { return e.Code == "invalid_grant" }

// clientRefused: the client id or secret is wrong.
func (e *oauthError) clientRefused() bool {
	return e.Code == "invalid_client" || e.Code == "unauthorized_client"
}

// post sends one token request, with pacing and retries for 429, 5xx,
// timeouts and malformed answers (at most tokenMaxRetries retries). An
// OAuth error answer is an *oauthError and is not retried.
func (t *Tokens) post(ctx context.Context, cfg TokensConfig, p *wire.Pacer, form url.Values) (tokenResult, error) {
	const path = "/oauth/token"
	req := wire.Request{
		Method:       http.MethodPost,
		URL:          cfg.TokenURL,
		Path:         path,
		ContentType:  "application/x-www-form-urlencoded",
		Body:         form.Encode(),
		MaxBody:      maxTokenBody,
		MaxErrorBody: maxTokenBody,
		Redact:       func(err error) error { return t.redactErr(secret.RedactURL(err, path)) },
	}
	var res tokenResult
	err := p.Retry(ctx, req.Method, path, min(p.MaxRetries, tokenMaxRetries), func() wire.Outcome {
		resp, err := p.Do(ctx, req)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return wire.Done(fmt.Errorf("moka POST %s: %w", path, ctx.Err()))
			}
			return wire.Outcome{Err: err, Retry: true}
		case resp.Status == http.StatusOK:
			r, err := decodeTokenAnswer(resp.Body)
			if err != nil {
				return wire.Outcome{Err: fmt.Errorf("moka POST %s: %w", path, err), Retry: true, Status: resp.Status}
			}
			res = r
			return wire.Done(nil)
		}
		if oe := decodeOAuthError(resp.Status, resp.Body, t.Redact); oe != nil {
			return wire.Done(oe)
		}
		he := &HTTPError{Method: http.MethodPost, Path: path, Status: resp.Status, Body: t.Redact(wire.Snippet(resp.Body))}
		if !wire.Retryable(resp.Status) {
			return wire.Done(he)
		}
		return wire.Outcome{Err: he, Retry: true, Status: resp.Status, Header: resp.Header}
	})
	return res, err
}

func (t *Tokens) redactErr(err error) error { return secret.RedactError(err, t.Redact) }

// decodeTokenAnswer reads {"access_token", "token_type", "expires_in",
// "refresh_token", "scope", "created_at"}. expires_in may be a number or a
// string of seconds.
func decodeTokenAnswer(b []byte) (tokenResult, error) {
	var a struct {
		AccessToken  *string     `json:"access_token"`
		TokenType    string      `json:"token_type"`
		ExpiresIn    json.Number `json:"expires_in"`
		RefreshToken string      `json:"refresh_token"`
		Scope        string      `json:"scope"`
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return tokenResult{}, fmt.Errorf("%w: token answer is not the expected JSON", ErrBadResponse)
	}
	if a.AccessToken == nil || *a.AccessToken == "" {
		return tokenResult{}, fmt.Errorf("%w: token answer without access_token", ErrBadResponse)
	}
	res := tokenResult{access: secret.New(*a.AccessToken), refresh: secret.New(a.RefreshToken), tokenType: a.TokenType, scope: a.Scope}
	if a.ExpiresIn != "" {
		secs, err := strconv.ParseFloat(string(a.ExpiresIn), 64) // seconds, not money
		if err != nil || secs < 0 || secs > 10*365*24*3600 {
			return tokenResult{}, fmt.Errorf("%w: bad expires_in", ErrBadResponse)
		}
		res.expiresIn = time.Duration(secs * float64(time.Second))
	}
	return res, nil
}

// decodeOAuthError reads an OAuth error answer; nil when the body is not
// one (then the status decides).
func decodeOAuthError(status int, b []byte, redact func(string) string) *oauthError {
	if status < 400 || status >= 500 {
		return nil
	}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		return nil
	}
	desc := e.Description
	if len(desc) > 200 {
		desc = desc[:200] + "…"
	}
	code := e.Error
	if len(code) > 64 {
		code = code[:64]
	}
	return &oauthError{Status: status, Code: redact(code), Description: redact(desc)}
}
