package oauth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"golang.org/x/time/rate"

	"github.com/pwbi/edge-agent/agent/moka/oauth/oauthfake"
	"github.com/pwbi/edge-agent/internal/testutil"
)

var t0 = time.Date(2026, 3, 10, 7, 0, 0, 0, time.UTC) // 14:00 in Jakarta

const redirectURI = "http://127.0.0.1:8687/oauth/moka/callback"

// memStore is a TokenStore in memory that records its saves in a shared
// timeline and can be made to fail.
type memStore struct {
	mu       sync.Mutex
	g        Grant
	ok       bool
	saves    int
	failNext int
	tl       *timeline
}

func (m *memStore) LoadGrant() (Grant, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.g, m.ok, nil
}

var errDiskFull = errors.New("disk full")

func (m *memStore) SaveGrant(g Grant) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failNext > 0 {
		m.failNext--
		return errDiskFull
	}
	m.g, m.ok = g, true
	m.saves++
	m.tl.add("save " + g.RefreshToken.Value())
	return nil
}

func (m *memStore) get() Grant {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.g
}

// timeline is an ordered log of what the client did: grants stored and
// bearer tokens sent.
type timeline struct {
	mu sync.Mutex
	ev []string
}

func (t *timeline) add(e string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.ev = append(t.ev, e)
	t.mu.Unlock()
}

func (t *timeline) index(e string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Index(t.ev, e)
}

// spyTransport records the bearer token of every request in the timeline.
type spyTransport struct {
	tl   *timeline
	next http.RoundTripper
}

func (s *spyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		s.tl.add("use " + tok)
	}
	return s.next.RoundTrip(r)
}

// env is a fake Moka on a fake clock with a client, its tokens and a
// connector.
type env struct {
	t      *testing.T
	fc     *clockwork.FakeClock
	fake   *oauthfake.Server
	store  *memStore
	tl     *timeline
	tokens *Tokens
	client *Client
	conn   *Connector
	drv    *testutil.ClockDriver
	logs   *testutil.SyncBuffer
	hc     *http.Client
	opts   ClientOptions
}

func newEnv(t *testing.T, fo oauthfake.Options) *env {
	t.Helper()
	e := &env{t: t, fc: clockwork.NewFakeClockAt(t0), tl: &timeline{}, logs: &testutil.SyncBuffer{}}
	if fo.Seed == 0 {
		fo.Seed = 3
	}
	fo.Now = e.fc.Now
	e.fake = oauthfake.New(fo)
	e.fake.Start()
	t.Cleanup(e.fake.Close)
	e.store = &memStore{tl: e.tl}
	e.drv = testutil.NewClockDriver(t, e.fc)
	e.hc = &http.Client{Transport: &spyTransport{tl: e.tl, next: http.DefaultTransport.(*http.Transport).Clone()}}
	e.opts = ClientOptions{
		HTTP: e.hc, Clock: e.fc, Limiter: rate.NewLimiter(rate.Inf, 1), OnWait: e.drv.OnWait,
		Rand: func() float64 { return 1 }, Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	e.restart()
	return e
}

// restart builds new tokens, client and connector over the same store: an
// agent process starting again.
func (e *env) restart() {
	e.t.Helper()
	p := NewPacer(e.opts, 0)
	e.tokens = NewTokens(e.store, TokensConfig{
		TokenURL: e.fake.URL() + "/oauth/token", ClientID: e.fake.ClientID(), ClientSecret: e.fake.ClientSecret(),
	}, TokensOptions{Pacer: p})
	c, err := NewClient(ClientConfig{BaseURL: e.fake.URL()}, e.tokens, e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.client = c
	e.conn = NewConnector(c, MapContext{Currency: "IDR", Location: jakarta})
}

var jakarta = mustLoc("Asia/Jakarta")

func mustLoc(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// authorize runs the whole authorization: start, the browser's visit to
// the authorize page (following no redirect), the callback's state check
// and the code exchange.
func (e *env) authorize() {
	e.t.Helper()
	az := NewAuthorizer(e.fc)
	u, _, err := az.Start(AuthorizeRequest{Endpoint: e.fake.URL() + "/oauth/authorize", ClientID: e.fake.ClientID(), RedirectURI: redirectURI})
	if err != nil {
		e.t.Fatal(err)
	}
	code, state := visitAuthorize(e.t, u)
	ru, ok := az.Consume(state)
	if !ok || ru != redirectURI {
		e.t.Fatalf("state not accepted: %v %q", ok, ru)
	}
	if err := e.tokens.Exchange(context.Background(), code, ru); err != nil {
		e.t.Fatal(err)
	}
}

// visitAuthorize GETs the authorize URL like a browser whose user approves,
// and returns the code and state of the redirect.
func visitAuthorize(t *testing.T, u string) (code, state string) {
	t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: HTTP %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(loc.String(), redirectURI+"?") {
		t.Fatalf("redirected to %s", loc.Redacted())
	}
	return loc.Query().Get("code"), loc.Query().Get("state")
}

// tokenRequests counts the fake's token requests.
func tokenRequests(f *oauthfake.Server) int {
	n := 0
	for _, r := range f.Requests() {
		if r.Path == "/oauth/token" {
			n++
		}
	}
	return n
}

// apiRequests counts the fake's API requests.
func apiRequests(f *oauthfake.Server) int {
	n := 0
	for _, r := range f.Requests() {
		if !strings.HasPrefix(r.Path, "/oauth/") {
			n++
		}
	}
	return n
}
