package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/agent/checkout"
	"github.com/pwbi/edge-agent/agent/checkout/pairing"
	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/health"
	"github.com/pwbi/edge-agent/agent/internal/task"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/agent/version"
)

// checkoutPart is the Mokka checkout gateway's place in the agent (SPEC
// §7): one gateway for the agent's lifetime (its tracked orders and their
// refresh loop), served on checkout.listen while the checkout is enabled.
// A reload that moves the listener binds the new address before anything
// changes, then swaps, like the local API.
//
// On an address other machines can reach, the listener serves TLS
// (config.Checkout.UseTLS) with the TLS identity in data_dir (package
// pairing), created the first time it is needed and renewed while the
// agent runs. It never falls back to plain HTTP: without an identity it
// does not serve, and says why in the status. Plain HTTP on the LAN takes
// checkout.tls = false, and the status warns about it.
type checkoutPart struct {
	log     *slog.Logger
	base    context.Context // the agent's; the part outlives its cancellation until stopped
	dataDir string          // agent.data_dir, where the TLS identity lives (fixed until a restart)

	gw  *checkout.Gateway // nil if it could not be created (see err)
	err string            // why there is no gateway

	run *task.Task // the order refresh loop
	srv task.Slot  // serving tablets on checkout.listen

	idMu  sync.Mutex
	ids   *pairing.Manager // the TLS identity; nil until TLS is first needed
	idRun *task.Task       // its renewal loop

	mu      sync.Mutex
	listen  string          // checkout.listen being served; "" when not serving
	ln      *schemeListener // the listener being served; nil when not serving
	bindErr string          // why checkout.listen could not be bound (or TLS set up)
}

func checkoutConfig(cfg *config.Config) checkout.Config {
	k := cfg.Checkout
	c := checkout.Config{
		Enabled:   k.Enabled,
		BaseURL:   k.BaseURL,
		StoreID:   k.StoreID,
		SecretKey: k.SecretKey.Value(),
		Timeout:   k.Timeout.Duration,

		RegistrationStoreID:   k.RegistrationStoreID,
		RegistrationSecretKey: k.RegistrationSecretKey.Value(),
	}
	for _, t := range k.Tablets {
		c.Tablets = append(c.Tablets, checkout.Tablet{Name: t.Name, TokenSHA256: t.TokenSHA256})
	}
	return c
}

// startCheckout creates the gateway, starts its order refresh loop and,
// if the checkout is enabled, serves checkout.listen. A listener that
// cannot be bound is a problem in the status, not a reason to stop the
// agent: Moka syncing goes on.
func (c *checkoutPart) start(cfg *config.Config, st checkout.Store) {
	gw, err := checkout.New(checkoutConfig(cfg), checkout.Options{
		Store:     st,
		Clock:     clockwork.NewRealClock(),
		Logger:    c.log,
		UserAgent: "pwbi-agent/" + version.String(),
	})
	if err != nil {
		c.err = "the checkout gateway cannot start: " + err.Error()
		c.log.Error("Checkout gateway not started", "err", err)
		return
	}
	c.gw = gw
	c.dataDir = cfg.Agent.DataDir
	// Its last order records must be buffered before the final delivery:
	// it runs until shutdown stops it (step 2), not until Run's context ends.
	c.run = task.Go(context.WithoutCancel(c.base), "checkout order refresh", gw.Run)
	if !cfg.Checkout.Enabled {
		return
	}
	tlsCfg, err := c.tlsConfig(cfg)
	if err != nil {
		c.mu.Lock()
		c.bindErr = err.Error()
		c.mu.Unlock()
		c.log.Error("Checkout gateway cannot serve TLS; not listening", "listen", cfg.Checkout.Listen, "err", err)
		return
	}
	ln, err := net.Listen("tcp", cfg.Checkout.Listen)
	if err != nil {
		c.mu.Lock()
		c.bindErr = err.Error()
		c.mu.Unlock()
		c.log.Error("Checkout gateway cannot listen", "listen", cfg.Checkout.Listen, "err", err)
		return
	}
	c.serve(cfg.Checkout.Listen, ln, tlsCfg)
}

// tlsConfig returns the TLS configuration checkout.listen is served with
// under cfg: nil for plain HTTP (a loopback address, or tls = false). The
// first time TLS is needed it loads or creates the identity in data_dir
// and starts its renewal loop.
func (c *checkoutPart) tlsConfig(cfg *config.Config) (*tls.Config, error) {
	if !cfg.Checkout.UseTLS() {
		return nil, nil
	}
	c.idMu.Lock()
	defer c.idMu.Unlock()
	if c.ids == nil {
		m, err := pairing.NewManager(c.dataDir, clockwork.NewRealClock(), c.log)
		if err != nil {
			return nil, fmt.Errorf("cannot set up TLS (checkout.tls): %w", err)
		}
		c.ids = m
		c.idRun = task.Go(context.WithoutCancel(c.base), "checkout TLS renewal", m.Run)
		id := m.Identity()
		c.log.Info("Checkout TLS identity ready", "path", pairing.Path(c.dataDir),
			"sha256", id.Fingerprint, "spki_sha256", id.KeyPin, "not_after", id.NotAfter)
	}
	return c.ids.TLSConfig(), nil
}

// identity returns the TLS identity, nil if TLS was never needed.
func (c *checkoutPart) identity() *pairing.Identity {
	c.idMu.Lock()
	defer c.idMu.Unlock()
	if c.ids == nil {
		return nil
	}
	return c.ids.Identity()
}

// serve serves the gateway on ln (with TLS when tlsCfg is set), then
// stops the previous listener, if any: tablets never meet a moment without
// one.
func (c *checkoutPart) serve(listen string, ln net.Listener, tlsCfg *tls.Config) {
	sl := newSchemeListener(ln, tlsCfg)
	t := task.Go(context.WithoutCancel(c.base), "checkout gateway", func(ctx context.Context) error {
		return c.gw.Serve(ctx, sl)
	})
	c.mu.Lock()
	c.listen, c.ln, c.bindErr = listen, sl, ""
	c.mu.Unlock()
	c.log.Info("Checkout gateway listening", "listen", ln.Addr().String(), "scheme", sl.scheme())
	if err := c.srv.Swap(t); err != nil {
		c.log.Warn("Old checkout listener stopped with an error", "err", err)
	}
}

// stopCheckoutServer stops serving tablets; relays in flight finish first
// (bounded by the gateway).
func (c *checkoutPart) stopServer() error {
	c.mu.Lock()
	c.listen, c.ln = "", nil
	c.mu.Unlock()
	return c.srv.Stop()
}

// stopCheckout is the gateway's part of the shutdown: no new tablet
// requests, those in flight finish, and the order refresh loop stops, so
// its last order records are in the buffer before the final delivery.
func (c *checkoutPart) stop() error {
	err := errors.Join(c.stopServer(), c.run.Stop())
	c.idMu.Lock()
	defer c.idMu.Unlock()
	return errors.Join(err, c.idRun.Stop())
}

// prepareCheckout is the part of a reload that can fail: setting up TLS
// when the new config needs it for the first time, and binding a new
// checkout.listen. It runs before anything changes; the listener it
// returns (nil if none is needed) is handed to applyCheckout.
func (c *checkoutPart) prepare(old, cfg *config.Config) (net.Listener, error) {
	if c.gw == nil || !cfg.Checkout.Enabled {
		return nil, nil
	}
	// The failure that is already known (it stopped the gateway at start
	// or at the last reload): the reload is about something else, so it
	// goes ahead; the problem stays.
	known := old.Checkout.Enabled && old.Checkout.Listen == cfg.Checkout.Listen
	if _, err := c.tlsConfig(cfg); err != nil {
		if known && old.Checkout.UseTLS() {
			c.mu.Lock()
			c.bindErr = err.Error()
			c.mu.Unlock()
			return nil, nil
		}
		return nil, fmt.Errorf("checkout.tls: %w", err)
	}
	c.mu.Lock()
	serving := c.listen
	c.mu.Unlock()
	if serving != "" && serving == cfg.Checkout.Listen {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.Checkout.Listen)
	if err != nil {
		if known {
			c.mu.Lock()
			c.bindErr = err.Error()
			c.mu.Unlock()
			return nil, nil
		}
		return nil, fmt.Errorf("checkout.listen: %w", err)
	}
	return ln, nil
}

// applyCheckout swaps in the new checkout settings (tablets, credentials,
// timeout at once) and moves, starts or stops the listener, or switches
// the one in place between TLS and plain HTTP.
func (c *checkoutPart) apply(cfg *config.Config, ln net.Listener) {
	if c.gw == nil {
		if ln != nil {
			ln.Close()
		}
		return
	}
	c.gw.Update(checkoutConfig(cfg))
	if !cfg.Checkout.Enabled {
		if err := c.stopServer(); err != nil {
			c.log.Warn("Checkout listener stopped with an error", "err", err)
		}
		c.mu.Lock()
		c.bindErr = ""
		c.mu.Unlock()
		return
	}
	// prepare set TLS up if cfg needs it; if that failed, nothing is served
	// (and nothing was: see prepare).
	tlsCfg, err := c.tlsConfig(cfg)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		if err := c.stopServer(); err != nil {
			c.log.Warn("Checkout listener stopped with an error", "err", err)
		}
		c.mu.Lock()
		c.bindErr = err.Error()
		c.mu.Unlock()
		return
	}
	if ln != nil {
		c.serve(cfg.Checkout.Listen, ln, tlsCfg)
		return
	}
	c.mu.Lock()
	sl := c.ln
	c.mu.Unlock()
	if sl != nil && sl.setTLS(tlsCfg) {
		c.log.Info("Checkout gateway scheme changed", "listen", cfg.Checkout.Listen, "scheme", sl.scheme())
	}
}

// schemeListener is checkout.listen's socket, serving TLS or plain HTTP as
// the config says when a connection is accepted. A reload that only turns
// TLS on or off changes it in place (no moment without a listener) and
// closes the connections accepted with the other scheme, so that no
// keep-alive connection carries on in plain text once TLS is on.
type schemeListener struct {
	net.Listener
	cfg atomic.Pointer[tls.Config] // nil: plain HTTP

	mu    sync.Mutex
	conns map[*schemeConn]struct{}
}

func newSchemeListener(ln net.Listener, cfg *tls.Config) *schemeListener {
	l := &schemeListener{Listener: ln, conns: make(map[*schemeConn]struct{})}
	l.cfg.Store(cfg)
	return l
}

func (l *schemeListener) scheme() string {
	if l.cfg.Load() != nil {
		return "https"
	}
	return "http"
}

// Accept returns the next connection: a *tls.Conn while TLS is on (the
// http.Server then does the handshake, within its read timeout).
func (l *schemeListener) Accept() (net.Conn, error) {
	raw, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	// The scheme is read and the connection registered under one lock,
	// so a setTLS in between cannot miss it: it is either closed as one of
	// the old scheme or served with the new one.
	l.mu.Lock()
	cfg := l.cfg.Load()
	sc := &schemeConn{Conn: raw, tls: cfg != nil, l: l}
	l.conns[sc] = struct{}{}
	l.mu.Unlock()
	if cfg != nil {
		return tls.Server(sc, cfg), nil
	}
	return sc, nil
}

// setTLS switches the scheme (cfg nil: plain HTTP) and reports whether it
// changed; the connections of the old scheme are closed.
func (l *schemeListener) setTLS(cfg *tls.Config) bool {
	l.mu.Lock()
	was := l.cfg.Swap(cfg) != nil
	if was == (cfg != nil) {
		l.mu.Unlock()
		return false
	}
	var old []*schemeConn
	for c := range l.conns {
		if c.tls == was {
			old = append(old, c)
		}
	}
	l.mu.Unlock()
	for _, c := range old {
		c.Close()
	}
	return true
}

// schemeConn is an accepted connection, remembered until it is closed.
type schemeConn struct {
	net.Conn
	tls  bool // accepted while TLS was on
	l    *schemeListener
	once sync.Once
}

// CloseWrite lets the http.Server half-close a plain TCP connection, as it
// does with a *net.TCPConn.
func (c *schemeConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *schemeConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// checkoutStatus fills checkout.open_orders and returns the gateway's part
// of the health input. Nothing secret goes in: no key, token or signature.
func (c *checkoutPart) status(s *localapi.Status, cfg *config.Config) health.Checkout {
	h := health.Checkout{Enabled: cfg.Checkout.Enabled}
	if c.gw == nil {
		if cfg.Checkout.Enabled {
			h.StartError = c.err
		}
		return h
	}
	gs := c.gw.Status()
	s.Checkout.OpenOrders = gs.OpenOrders
	if gs.LastError != "" && gs.OpenOrders > 0 {
		h.RefreshError = gs.LastError
	}
	if !cfg.Checkout.Enabled {
		return h
	}
	c.mu.Lock()
	sl := c.ln
	c.mu.Unlock()
	if sl != nil {
		s.Checkout.Scheme = sl.scheme()
	}
	if cfg.Checkout.UseTLS() {
		if id := c.identity(); id != nil {
			s.Checkout.TLSFingerprint = id.Fingerprint
			s.Checkout.TLSKeyPin = id.KeyPin
			s.Checkout.TLSNotAfter = localapi.TimePtr(id.NotAfter)
		}
		c.idMu.Lock()
		ids := c.ids
		c.idMu.Unlock()
		if ids != nil {
			if detail, expired := ids.Problem(); expired {
				h.TLSExpired = detail
			} else {
				h.TLSEnding = detail
			}
		}
	}
	if cfg.Checkout.PlainOnLAN() {
		s.Checkout.Warning = "checkout.tls = false: tablet tokens cross the shop network in plain text; " +
			"anyone on the same Wi-Fi can read them and create, cancel or return orders"
		h.Warning = s.Checkout.Warning
	}
	if ok, why := cfg.CheckoutConfigured(); !ok {
		h.Setup = why
	}
	c.mu.Lock()
	bindErr := c.bindErr
	c.mu.Unlock()
	if bindErr != "" {
		h.ListenError = fmt.Sprintf("the checkout gateway cannot listen on %s: %s", cfg.Checkout.Listen, bindErr)
	}
	return h
}
