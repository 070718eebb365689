package checkout

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"golang.org/x/time/rate"

	"github.com/pwbi/edge-agent/store"
)

// Server limits. The gateway listens on the shop's LAN: every limit is a
// defence against a slow or hostile client.
const (
	// readHeaderTimeout: a tablet sends its headers at once; a client
	// that dribbles them is not a tablet.
	readHeaderTimeout = 5 * time.Second
	// readTimeout covers a 1 MiB Finish with its receipt on weak shop Wi-Fi.
	readTimeout = 30 * time.Second
	// writeTimeout is the default write deadline; a relay extends it to
	// checkout.timeout plus writeMargin, since it waits for Mokka first.
	writeTimeout = 10 * time.Second
	writeMargin  = 5 * time.Second
	idleTimeout  = 60 * time.Second
	// maxHeaderBytes: a bearer token and a few headers.
	maxHeaderBytes = 16 << 10
	// shutdownTimeout bounds how long a stop waits for relays in flight.
	shutdownTimeout = 5 * time.Second
	// defaultMaxInFlight bounds concurrent relays to Mokka.
	defaultMaxInFlight = 64
	// maxResponseBytes caps what the gateway reads of a Mokka answer.
	maxResponseBytes = 1 << 20
)

// Store is what the gateway needs of the agent's store (store.Store).
type Store interface {
	PutDoc(coll, key string, value []byte, in []store.Input) (store.AppendResult, error)
	GetDoc(coll, key string) ([]byte, bool, error)
	Docs(coll string, fn func(key string, value []byte) error) error
}

var _ Store = (*store.Store)(nil)

// Config is the gateway's part of the agent configuration ([checkout]).
type Config struct {
	Enabled   bool
	BaseURL   string // e.g. https://stage-backend.revoplus.pl
	StoreID   string
	SecretKey string
	// RegistrationStoreID and RegistrationSecretKey, when both are set,
	// are used for the Registration and Limit methods instead of StoreID
	// and SecretKey: Mokka (Revo) may issue one store for those and one
	// for everything else. See Credentials.
	RegistrationStoreID   string
	RegistrationSecretKey string
	Timeout               time.Duration // bound of one Mokka call
	Tablets               []Tablet
}

// Tablet is a tablet allowed to call the gateway.
type Tablet struct {
	Name        string
	TokenSHA256 string // lowercase hex SHA-256 of the tablet's token
}

// Configured reports whether the gateway can relay: enabled, with a base
// URL, a store id and a secret key.
func (c Config) Configured() bool {
	return c.Enabled && c.BaseURL != "" && c.StoreID != "" && c.SecretKey != ""
}

// Credentials returns the store id and secret key a call of method is
// made with: the registration pair for Registration and Limit when it is
// set, the main pair otherwise.
func (c Config) Credentials(method string) (storeID, secretKey string) {
	if (method == MethodRegistration || method == MethodLimit) && c.RegistrationStoreID != "" && c.RegistrationSecretKey != "" {
		return c.RegistrationStoreID, c.RegistrationSecretKey
	}
	return c.StoreID, c.SecretKey
}

// runtimeConfig is a Config ready for use.
type runtimeConfig struct {
	Config
	base    string // BaseURL without a trailing slash
	tablets []tabletKey
}

type tabletKey struct {
	name string
	hash [sha256.Size]byte
}

func compile(c Config) *runtimeConfig {
	rc := &runtimeConfig{Config: c, base: strings.TrimRight(c.BaseURL, "/")}
	if rc.Timeout <= 0 {
		rc.Timeout = 30 * time.Second
	}
	for _, t := range c.Tablets {
		var k tabletKey
		// A malformed hash (config validation refuses them) never matches.
		if b, err := hex.DecodeString(t.TokenSHA256); err == nil && len(b) == sha256.Size {
			copy(k.hash[:], b)
			k.name = t.Name
			rc.tablets = append(rc.tablets, k)
		}
	}
	return rc
}

// Options are the gateway's dependencies.
type Options struct {
	Store Store // required
	// Client calls Mokka; nil means a client with its own connection pool.
	// Its Timeout should be zero: each call is bounded by Config.Timeout.
	Client *http.Client
	// Clock drives the order refresh schedule; nil means the real clock.
	Clock     clockwork.Clock
	Logger    *slog.Logger
	UserAgent string
	// MaxInFlight bounds concurrent relays; 0 means 64.
	MaxInFlight int
}

// Gateway is the checkout gateway. Create it with New, serve it with Serve
// (on as many listeners, one after the other, as reloads need), refresh
// orders with Run, and change its settings with Update.
type Gateway struct {
	st      Store
	hc      *http.Client
	clock   clockwork.Clock
	log     *slog.Logger
	ua      string
	cfg     atomic.Pointer[runtimeConfig]
	sem     chan struct{}
	kick    chan struct{}
	authLog *rate.Limiter // refused requests are logged at this rate at most
	guard   *authGuard    // failed token attempts per client address
	hintLog *rate.Limiter // unsigned callbacks are logged at this rate at most

	mu      sync.Mutex            // serialises order read-modify-write
	tracked map[string]*entry     // docKey → orders to refresh or report
	seen    map[string]StatusInfo // docKey → the last Status answer applied
	gates   map[string]time.Time  // docKey → Status rate limit (see statusAllowedLocked)
	lastErr string                // the last refresh failure; "" after a success
}

// New returns a gateway with cfg. It reads the tracked orders from the
// store, so open orders are refreshed again after a restart.
func New(cfg Config, opts Options) (*Gateway, error) {
	if opts.Store == nil {
		return nil, errors.New("checkout: no store")
	}
	g := &Gateway{
		st:      opts.Store,
		hc:      opts.Client,
		clock:   opts.Clock,
		log:     opts.Logger,
		ua:      opts.UserAgent,
		kick:    make(chan struct{}, 1),
		authLog: rate.NewLimiter(1, 10),
		guard:   newAuthGuard(),
		hintLog: rate.NewLimiter(1, 10),
		tracked: make(map[string]*entry),
		seen:    make(map[string]StatusInfo),
		gates:   make(map[string]time.Time),
	}
	if g.hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 32 // 20 tablets at once, kept warm
		t.ResponseHeaderTimeout = 0
		g.hc = &http.Client{Transport: t}
	}
	// Never follow a redirect: it would re-send a signed body elsewhere.
	hc := *g.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	g.hc = &hc
	if g.clock == nil {
		g.clock = clockwork.NewRealClock()
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.ua == "" {
		g.ua = "pwbi-agent"
	}
	n := opts.MaxInFlight
	if n <= 0 {
		n = defaultMaxInFlight
	}
	g.sem = make(chan struct{}, n)
	g.cfg.Store(compile(cfg))
	if err := g.load(); err != nil {
		return nil, err
	}
	return g, nil
}

// Update swaps in a new configuration. Requests in flight finish with the
// one they started with.
func (g *Gateway) Update(cfg Config) {
	g.cfg.Store(compile(cfg))
	g.poke()
}

func (g *Gateway) config() *runtimeConfig { return g.cfg.Load() }

// Status is what the agent shows about the gateway.
type Status struct {
	OpenOrders int    // pending or hold orders of the configured store
	LastError  string // why the last order refresh failed; "" if it worked
}

// Status returns the gateway's status.
func (g *Gateway) Status() Status {
	storeID := g.config().StoreID
	g.mu.Lock()
	defer g.mu.Unlock()
	st := Status{LastError: g.lastErr}
	for _, e := range g.tracked {
		if !e.adopt && e.storeID == storeID && e.state.Open() {
			st.OpenOrders++
		}
	}
	return st
}

// Serve answers tablets and Mokka callbacks on ln until ctx is canceled,
// then stops taking requests and lets those in flight finish (at most
// shutdownTimeout). It returns nil after a cancellation.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           g,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          log.New(slogWriter{g.log}, "", 0),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("checkout gateway: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-errc
	return nil
}

// ServeHTTP routes a request: POST /mokka/{method} (tablets), GET
// /mokka/orders/{order_id} (tablets), POST /mokka/callback (Mokka).
// Anything else is 404.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	path := r.URL.Path
	switch {
	case path == "/mokka/callback":
		if r.Method != http.MethodPost {
			methodNotAllowed(w, http.MethodPost)
			return
		}
		g.handleCallback(w, r)
	case strings.HasPrefix(path, "/mokka/orders/"):
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, http.MethodGet)
			return
		}
		tablet, ok := g.authenticate(w, r)
		if !ok {
			return
		}
		g.handleOrder(w, r, tablet, strings.TrimPrefix(path, "/mokka/orders/"))
	case strings.HasPrefix(path, "/mokka/") && IsMethod(strings.TrimPrefix(path, "/mokka/")):
		if r.Method != http.MethodPost {
			methodNotAllowed(w, http.MethodPost)
			return
		}
		// The token is checked before the body is read or looked at.
		tablet, ok := g.authenticate(w, r)
		if !ok {
			return
		}
		g.handleRelay(w, r, tablet, strings.TrimPrefix(path, "/mokka/"))
	default:
		writeMokka(w, http.StatusNotFound, CodeNotFound, "")
	}
}

// authenticate checks the bearer token: its SHA-256 is compared with every
// tablet's in constant time. It returns the tablet's name; when it returns
// false, it has answered: 401 for no or a wrong token, 429 with
// Retry-After while the client's address has used up its failed attempts
// (see authGuard; the token is then not even looked at).
func (g *Gateway) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	now := g.clock.Now()
	if wait := g.guard.wait(r.RemoteAddr, now); wait > 0 {
		tooManyAttempts(w, wait)
		return "", false
	}
	cfg := g.config()
	token, ok := bearer(r.Header.Get("Authorization"))
	sum := sha256.Sum256([]byte(token))
	match := -1
	for i := range cfg.tablets {
		if subtle.ConstantTimeCompare(sum[:], cfg.tablets[i].hash[:]) == 1 {
			match = i
		}
	}
	if !ok || match < 0 {
		exhausted := g.guard.fail(r.RemoteAddr, now)
		if g.authLog.Allow() {
			reason := "wrong token"
			if !ok {
				reason = "no bearer token"
			}
			g.log.Warn("Tablet request refused", "reason", reason, "remote", remoteIP(r), "path", r.URL.Path)
			if exhausted {
				g.log.Warn("Tablet address paused after failed token attempts", "remote", remoteIP(r),
					"retry_in", guardEvery, "attempts", guardBurst)
			}
		}
		unauthorized(w)
		return "", false
	}
	return cfg.tablets[match].name, true
}

// tooManyAttempts answers a client that must wait before its next token
// attempt.
func tooManyAttempts(w http.ResponseWriter, wait time.Duration) {
	secs := int64((wait + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	writeMokka(w, http.StatusTooManyRequests, CodeTooManyAttempts,
		"too many failed token attempts from this address: wait the Retry-After seconds")
}

func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// mokkaAnswer is the gateway's own answer in Mokka's shape. Detail is
// the gateway's explanation, absent from Mokka's own answers.
type mokkaAnswer struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
	Detail  string `json:"detail,omitempty"`
}

func writeMokka(w http.ResponseWriter, httpStatus, code int, detail string) {
	writeJSON(w, httpStatus, mokkaAnswer{Status: code, Message: Message(code), Detail: detail})
}

func writeJSON(w http.ResponseWriter, httpStatus int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		httpStatus, b = http.StatusInternalServerError, []byte(`{"status":100,"message":"`+Message(CodeServer)+`"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(httpStatus)
	w.Write(append(b, '\n')) //nolint:errcheck // the client went away
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="pwbi-checkout"`)
	writeMokka(w, http.StatusUnauthorized, CodeUnauthorized, "a tablet token is required: Authorization: Bearer <token>")
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeMokka(w, http.StatusMethodNotAllowed, CodeNotFound, "method not allowed")
}

// poke wakes the refresh loop.
func (g *Gateway) poke() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// slogWriter adapts the http.Server error log (TLS noise, bad requests) to
// slog at debug level: a LAN client must not be able to flood the log.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Debug("Checkout listener error", "err", strings.TrimSpace(string(p)))
	return len(p), nil
}
