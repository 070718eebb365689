package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/moka/internal/feed"
	"github.com/pwbi/edge-agent/agent/moka/oauth/oauthfake"
	"github.com/pwbi/edge-agent/internal/secret"
)

func TestAuthorizeStateIsOneTimeAndExpires(t *testing.T) {
	e := newEnv(t, oauthfake.Options{})
	az := NewAuthorizer(e.fc)
	u, exp, err := az.Start(AuthorizeRequest{Endpoint: e.fake.URL() + "/oauth/authorize?tenant=x", ClientID: "cid", RedirectURI: redirectURI})
	if err != nil {
		t.Fatal(err)
	}
	pu, _ := url.Parse(u)
	q := pu.Query()
	if q.Get("response_type") != "code" || q.Get("client_id") != "cid" || q.Get("redirect_uri") != redirectURI ||
		q.Get("scope") != DefaultScope || len(q.Get("state")) < 40 || q.Get("tenant") != "x" {
		t.Fatalf("authorize URL query %v", q)
	}
	if !exp.Equal(t0.Add(StateTTL)) {
		t.Errorf("expires %v", exp)
	}
	if _, ok := az.Consume("forged"); ok {
		t.Fatal("unknown state accepted")
	}
	if _, ok := az.Consume(""); ok {
		t.Fatal("empty state accepted")
	}
	if _, ok := az.Consume(q.Get("state")); !ok {
		t.Fatal("state refused")
	}
	if _, ok := az.Consume(q.Get("state")); ok {
		t.Fatal("state accepted twice")
	}

	u, _, _ = az.Start(AuthorizeRequest{Endpoint: e.fake.URL() + "/oauth/authorize", ClientID: "cid", RedirectURI: redirectURI})
	pu, _ = url.Parse(u)
	e.fc.Advance(StateTTL)
	if _, ok := az.Consume(pu.Query().Get("state")); ok {
		t.Fatal("expired state accepted")
	}
	for range 3 * maxPending {
		if _, _, err := az.Start(AuthorizeRequest{Endpoint: e.fake.URL(), ClientID: "cid", RedirectURI: redirectURI}); err != nil {
			t.Fatal(err)
		}
	}
	if n := az.Pending(); n != maxPending {
		t.Errorf("%d pending, want the bound %d", n, maxPending)
	}
	if _, _, err := az.Start(AuthorizeRequest{Endpoint: "ftp://x", ClientID: "cid"}); err == nil {
		t.Error("non-http authorize URL accepted")
	}
}

func TestExchangeStoresGrant(t *testing.T) {
	e := newEnv(t, oauthfake.Options{})
	if st := e.tokens.State(); !st.NeedsAuthorization || st.Connected {
		t.Fatalf("before: %+v", st)
	}
	_, err := e.tokens.Token(context.Background())
	var ae *AuthError
	if !errors.As(err, &ae) || !errors.Is(err, ErrNotConnected) || !errors.Is(err, feed.ErrUnauthorized) ||
		!strings.Contains(ae.AuthHint(), "moka connect") {
		t.Fatalf("Token without a grant: %v", err)
	}
	if tokenRequests(e.fake) != 0 {
		t.Fatal("asked Moka without a grant")
	}
	e.authorize()
	g := e.store.get()
	ev := e.fake.TokenEvents()
	if len(ev) != 1 || g.AccessToken.Value() != ev[0].Access || g.RefreshToken.Value() != ev[0].Refresh ||
		!g.ExpiresAt.Equal(t0.Add(oauthfake.DefaultAccessTTL)) || !g.AuthorizedAt.Equal(t0) {
		t.Fatalf("stored grant does not match the issue: %+v", g)
	}
	if st := e.tokens.State(); !st.Connected || st.NeedsAuthorization {
		t.Fatalf("after: %+v", st)
	}
	// A used code cannot be exchanged again.
	err = e.tokens.Exchange(context.Background(), "code_nope", redirectURI)
	if err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("bad code: %v", err)
	}
}

func TestRefreshBeforeExpiry(t *testing.T) {
	e := newEnv(t, oauthfake.Options{AccessTTL: time.Hour})
	e.authorize()
	ctx := context.Background()
	first, err := e.tokens.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.fc.Advance(54 * time.Minute)
	if tok, _ := e.tokens.Token(ctx); tok != first || tokenRequests(e.fake) != 1 {
		t.Fatal("refreshed more than 5 minutes before expiry")
	}
	e.fc.Advance(time.Minute)
	tok, err := e.tokens.Token(ctx)
	if err != nil || tok == first || tokenRequests(e.fake) != 2 {
		t.Fatalf("no refresh 5 minutes before expiry: %v", err)
	}
	if g := e.store.get(); g.AccessToken != tok || !g.RefreshedAt.Equal(e.fc.Now()) {
		t.Fatalf("stored %+v", g)
	}
	// Concurrent callers share one refresh.
	e.fc.Advance(58 * time.Minute)
	errs := make(chan error, 8)
	for range 8 {
		go func() { _, err := e.tokens.Token(ctx); errs <- err }()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := tokenRequests(e.fake); n != 3 {
		t.Fatalf("%d token requests, want 3 (one shared refresh)", n)
	}
	// Short-lived tokens refresh at half their life, not on every call.
	e2 := newEnv(t, oauthfake.Options{AccessTTL: 4 * time.Minute})
	e2.authorize()
	e2.fc.Advance(90 * time.Second)
	if _, err := e2.tokens.Token(ctx); err != nil || tokenRequests(e2.fake) != 1 {
		t.Fatalf("short-lived token refreshed too early: %v", err)
	}
	e2.fc.Advance(30 * time.Second)
	if _, err := e2.tokens.Token(ctx); err != nil || tokenRequests(e2.fake) != 2 {
		t.Fatalf("short-lived token not refreshed at half life: %v", err)
	}
}

// TestRotatedTokenStoredBeforeUse checks the durability order on the wire:
// for every refresh, the store saved the new refresh token before the new
// access token was first sent to Moka.
func TestRotatedTokenStoredBeforeUse(t *testing.T) {
	e := newEnv(t, oauthfake.Options{AccessTTL: 20 * time.Minute, Outlets: 1, Days: 1, TxPerDay: 5})
	e.authorize()
	ctx := context.Background()
	for i := range 6 {
		if i%2 == 0 {
			e.fc.Advance(19 * time.Minute) // due: a proactive refresh
		} else {
			e.fake.ExpireAccessTokens() // Moka refuses it: a refresh on 401
		}
		if _, err := e.conn.Outlets(ctx); err != nil {
			t.Fatal(err)
		}
	}
	refreshes := 0
	for _, ev := range e.fake.TokenEvents() {
		if ev.Kind != "issued" || ev.Grant != "refresh_token" {
			continue
		}
		refreshes++
		saved, used := e.tl.index("save "+ev.Refresh), e.tl.index("use "+ev.Access)
		if saved < 0 || used < 0 || saved > used {
			t.Fatalf("pair %d: saved at %d, first used at %d", ev.Pair, saved, used)
		}
	}
	if refreshes != 6 {
		t.Fatalf("%d refreshes, want 6", refreshes)
	}
}

// TestFailureBetweenRefreshAndStore: the store fails right after Moka
// rotated the tokens. The new access token must not be used (Moka would
// then revoke the stored refresh token); the next call refreshes again with
// the stored one, which is still valid, and the grant survives.
func TestFailureBetweenRefreshAndStore(t *testing.T) {
	e := newEnv(t, oauthfake.Options{Outlets: 1, Days: 1, TxPerDay: 5})
	e.authorize()
	ctx := context.Background()
	stored := e.store.get()
	e.fake.ExpireAccessTokens()
	e.store.mu.Lock()
	e.store.failNext = 1
	e.store.mu.Unlock()
	_, err := e.conn.Outlets(ctx)
	if !errors.Is(err, errDiskFull) || errors.Is(err, feed.ErrUnauthorized) {
		t.Fatalf("Outlets with a failing store: %v", err)
	}
	lost := e.fake.TokenEvents()[1]
	if lost.Grant != "refresh_token" || e.tl.index("use "+lost.Access) >= 0 {
		t.Fatal("the access token whose refresh token was not stored was used")
	}
	if g := e.store.get(); g.RefreshToken != stored.RefreshToken {
		t.Fatal("store changed although the save failed")
	}
	if st := e.tokens.State(); st.NeedsAuthorization || !strings.Contains(st.LastError, "disk full") {
		t.Fatalf("state %+v", st)
	}

	// The same process goes on...
	if _, err := e.conn.Outlets(ctx); err != nil {
		t.Fatalf("after the failed store: %v", err)
	}
	// ...and so does a restarted one, from what is on disk.
	e.fake.ExpireAccessTokens()
	e.restart()
	if _, err := e.conn.Outlets(ctx); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	if st := e.tokens.State(); !st.Connected {
		t.Fatalf("state %+v", st)
	}
}

// TestCrashBetweenStoreAndUse: the process dies after storing the rotated
// tokens and before using them. On restart the stored pair works, and the
// refresh token of the previous pair is no longer needed.
func TestCrashBetweenStoreAndUse(t *testing.T) {
	e := newEnv(t, oauthfake.Options{Outlets: 1, Days: 1, TxPerDay: 5})
	e.authorize()
	ctx := context.Background()
	e.fc.Advance(oauthfake.DefaultAccessTTL - time.Minute) // due
	tok, err := e.tokens.Token(ctx)                        // refresh and store; then "crash" before any use
	if err != nil {
		t.Fatal(err)
	}
	if e.tl.index("use "+tok.Value()) >= 0 {
		t.Fatal("used already")
	}
	e.restart()
	if _, err := e.conn.Outlets(ctx); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if n := tokenRequests(e.fake); n != 2 {
		t.Fatalf("%d token requests: the restarted agent should use the stored pair", n)
	}
	// Moka revoked the previous pair on first use of the new one; the
	// grant lives on through the stored refresh token.
	e.fake.ExpireAccessTokens()
	if _, err := e.conn.Outlets(ctx); err != nil {
		t.Fatalf("refresh with the stored token: %v", err)
	}
}

// TestUseBeforeStoreWouldLoseTheGrant is the control for the two tests
// above: a client that used the new access token before storing the
// rotated refresh token, then crashed, is left with a revoked refresh
// token. It shows the fake enforces what the order protects against.
func TestUseBeforeStoreWouldLoseTheGrant(t *testing.T) {
	e := newEnv(t, oauthfake.Options{})
	e.authorize()
	old := e.store.get().RefreshToken.Value()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old},
		"client_id": {e.fake.ClientID()}, "client_secret": {e.fake.ClientSecret()}}
	resp, err := http.PostForm(e.fake.URL()+"/oauth/token", form)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("refresh: %v", err)
	}
	resp.Body.Close()
	newAccess := e.fake.TokenEvents()[1].Access
	req, _ := http.NewRequest(http.MethodGet, e.fake.URL()+"/v1/profile/self", nil)
	req.Header.Set("Authorization", "Bearer "+newAccess)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("use: %v", err)
	}
	resp.Body.Close()
	// "Crash" without storing: the stored refresh token is now refused.
	e.fake.ExpireAccessTokens()
	_, err = e.conn.Outlets(context.Background())
	if !errors.Is(err, ErrGrantRevoked) {
		t.Fatalf("want the grant lost, got %v", err)
	}
}

// TestRevokedGrantNeedsAuthorization: the owner revokes the app. One
// refresh attempt gets invalid_grant; then the state says so, durably, and
// nothing more is asked of Moka until a new authorization.
func TestRevokedGrantNeedsAuthorization(t *testing.T) {
	e := newEnv(t, oauthfake.Options{Outlets: 1, Days: 1, TxPerDay: 5})
	e.authorize()
	ctx := context.Background()
	if _, err := e.conn.Outlets(ctx); err != nil {
		t.Fatal(err)
	}
	e.fake.Revoke()
	before := len(e.fake.Requests())
	_, err := e.conn.Outlets(ctx)
	var ae *AuthError
	if !errors.As(err, &ae) || !errors.Is(err, ErrGrantRevoked) || !errors.Is(err, feed.ErrUnauthorized) ||
		!strings.Contains(ae.AuthHint(), "re-authorize") {
		t.Fatalf("after revocation: %v", err)
	}
	if n := len(e.fake.Requests()) - before; n != 2 {
		t.Fatalf("%d requests after the revocation, want 2 (the refused call and one refresh)", n)
	}
	st := e.tokens.State()
	if !st.NeedsAuthorization || st.Connected || !strings.Contains(st.LastError, "invalid_grant") {
		t.Fatalf("state %+v", st)
	}
	if g := e.store.get(); !g.Revoked || !g.AccessToken.IsZero() || !g.RefreshToken.IsZero() {
		t.Fatalf("stored grant %+v", g)
	}
	// No retry storm: more calls, and a restart, ask nothing of Moka.
	for range 5 {
		if _, err := e.conn.Outlets(ctx); !errors.Is(err, ErrGrantRevoked) {
			t.Fatal(err)
		}
	}
	e.restart()
	if _, err := e.conn.Outlets(ctx); !errors.Is(err, ErrGrantRevoked) {
		t.Fatalf("after a restart: %v", err)
	}
	if n := len(e.fake.Requests()) - before; n != 2 {
		t.Fatalf("%d requests in the re-authorize state", n)
	}
	// A new authorization ends it.
	e.authorize()
	if _, err := e.conn.Outlets(ctx); err != nil {
		t.Fatalf("after re-authorizing: %v", err)
	}
	if st := e.tokens.State(); !st.Connected || st.LastError != "" {
		t.Fatalf("state %+v", st)
	}
}

func TestClientCredentialsRejected(t *testing.T) {
	e := newEnv(t, oauthfake.Options{})
	e.authorize()
	e.tokens.Reconfigure(TokensConfig{TokenURL: e.fake.URL() + "/oauth/token", ClientID: e.fake.ClientID(), ClientSecret: "wrong"}, nil)
	e.fake.ExpireAccessTokens()
	_, err := e.conn.Outlets(context.Background())
	var ae *AuthError
	if !errors.As(err, &ae) || !errors.Is(err, ErrClientRejected) || !strings.Contains(ae.AuthHint(), "client_secret") {
		t.Fatalf("wrong secret: %v", err)
	}
	if g := e.store.get(); g.Revoked {
		t.Fatal("a wrong client secret revoked the grant")
	}
	// Fixing the config (a reload) recovers with the same grant.
	e.tokens.Reconfigure(TokensConfig{TokenURL: e.fake.URL() + "/oauth/token", ClientID: e.fake.ClientID(), ClientSecret: e.fake.ClientSecret()}, nil)
	if _, err := e.conn.Outlets(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestTokenEndpointOutageRetried(t *testing.T) {
	e := newEnv(t, oauthfake.Options{})
	e.authorize()
	e.fake.ExpireAccessTokens()
	e.fake.FailTokenNext(2, 503)
	if _, err := e.conn.Outlets(context.Background()); err != nil {
		t.Fatal(err)
	}
	var backoffs int
	for _, w := range e.drv.Waits() {
		if w.Reason == "backoff" {
			backoffs++
		}
	}
	if backoffs != 2 {
		t.Errorf("%d backoffs, want 2", backoffs)
	}
	// An outage longer than the retries fails the call, not the grant.
	e.fake.ExpireAccessTokens()
	e.fake.FailTokenNext(10, 502)
	_, err := e.conn.Outlets(context.Background())
	if err == nil || errors.Is(err, feed.ErrUnauthorized) {
		t.Fatalf("long outage: %v", err)
	}
	if st := e.tokens.State(); !st.Connected {
		t.Fatalf("state %+v", st)
	}
}

// TestNoSecretInLogsOrErrors drives every path that writes logs or errors
// (refreshes, 401s, retries, a transport failure, a revocation) and checks
// that no token, client secret or next_url token shows anywhere.
func TestNoSecretInLogsOrErrors(t *testing.T) {
	e := newEnv(t, oauthfake.Options{Outlets: 2, Days: 2, TxPerDay: 30})
	e.authorize()
	ctx := context.Background()
	var errs []string
	collect := func(err error) {
		if err != nil {
			errs = append(errs, err.Error(), fmt.Sprintf("%+v %#v", err, err))
		}
	}
	e.fake.FailNext(1, 503, "")
	_, err := e.conn.Outlets(ctx)
	collect(err)
	e.fake.ExpireAccessTokens()
	e.fake.TruncateNext(1)
	collect(e.conn.Transactions(ctx, e.fake.OutletIDs()[0], t0.AddDate(0, 0, -3), func(feed.Page) error { return nil }))
	e.fc.Advance(3 * time.Hour)
	collect(e.conn.Updates(ctx, e.fake.OutletIDs()[1], t0.AddDate(0, 0, -3), func(feed.Page) error { return nil }))
	// A transport error names the URL: it must come out redacted.
	bad, _ := NewClient(ClientConfig{BaseURL: "http://127.0.0.1:1"}, e.tokens, e.opts)
	collect(bad.Payments(ctx, PaymentQuery{OutletID: "1", Since: t0}, func(PaymentPage) error { return nil }))
	e.fake.Revoke()
	e.fake.ExpireAccessTokens()
	_, err = e.conn.Outlets(ctx)
	collect(err)
	g := e.store.get()
	slog.New(slog.NewTextHandler(e.logs, nil)).Info("Grant", "grant", g, "token", g.AccessToken)
	fmt.Fprintf(e.logs, "%v %+v %#v %s %q %x %d\n", g, g, g, g.RefreshToken, g.RefreshToken, g.RefreshToken, g.RefreshToken)

	text := e.logs.String() + strings.Join(errs, "\n")
	secrets := append(e.fake.IssuedSecrets(), e.fake.ClientSecret())
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Fatalf("secret %.8s… leaked:\n%s", s, text)
		}
	}
	if strings.Contains(text, "access_token=mka_") || strings.Contains(text, "refresh_token=mkr_") {
		t.Fatalf("a token parameter leaked:\n%s", text)
	}
	if len(errs) < 4 || !strings.Contains(text, "Moka access token refreshed") {
		t.Fatalf("the paths were not exercised: %d errors\n%s", len(errs)/2, text)
	}
}

// Tokens never print, also inside a Grant.
func TestTokensNeverPrint(t *testing.T) {
	tok := secret.New("s3cr3t-token")
	for _, s := range []string{fmt.Sprint(tok), fmt.Sprintf("%v %s %q %x %d %#v", tok, tok, tok, tok, tok, tok), fmt.Sprintf("%+v", Grant{AccessToken: tok})} {
		if strings.Contains(s, "s3cr3t") {
			t.Errorf("token printed: %s", s)
		}
	}
}
