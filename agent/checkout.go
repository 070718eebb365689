package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/agent/checkout"
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
type checkoutPart struct {
	log  *slog.Logger
	base context.Context // the agent's; the part outlives its cancellation until stopped

	gw  *checkout.Gateway // nil if it could not be created (see err)
	err string            // why there is no gateway

	run *task.Task // the order refresh loop
	srv task.Slot  // serving tablets on checkout.listen

	mu      sync.Mutex
	listen  string // checkout.listen being served; "" when not serving
	bindErr string // why checkout.listen could not be bound
}

func checkoutConfig(cfg *config.Config) checkout.Config {
	k := cfg.Checkout
	c := checkout.Config{
		Enabled:   k.Enabled,
		BaseURL:   k.BaseURL,
		StoreID:   k.StoreID,
		SecretKey: k.SecretKey.Value(),
		Timeout:   k.Timeout.Duration,
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
	// Its last order records must be buffered before the final delivery:
	// it runs until shutdown stops it (step 2), not until Run's context ends.
	c.run = task.Go(context.WithoutCancel(c.base), "checkout order refresh", gw.Run)
	if !cfg.Checkout.Enabled {
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
	c.serve(cfg.Checkout.Listen, ln)
}

// serveCheckout serves the gateway on ln, then stops the previous
// listener, if any: tablets never meet a moment without one.
func (c *checkoutPart) serve(listen string, ln net.Listener) {
	t := task.Go(context.WithoutCancel(c.base), "checkout gateway", func(ctx context.Context) error {
		return c.gw.Serve(ctx, ln)
	})
	c.mu.Lock()
	c.listen, c.bindErr = listen, ""
	c.mu.Unlock()
	c.log.Info("Checkout gateway listening", "listen", ln.Addr().String())
	if err := c.srv.Swap(t); err != nil {
		c.log.Warn("Old checkout listener stopped with an error", "err", err)
	}
}

// stopCheckoutServer stops serving tablets; relays in flight finish first
// (bounded by the gateway).
func (c *checkoutPart) stopServer() error {
	c.mu.Lock()
	c.listen = ""
	c.mu.Unlock()
	return c.srv.Stop()
}

// stopCheckout is the gateway's part of the shutdown: no new tablet
// requests, those in flight finish, and the order refresh loop stops, so
// its last order records are in the buffer before the final delivery.
func (c *checkoutPart) stop() error {
	return errors.Join(c.stopServer(), c.run.Stop())
}

// prepareCheckout is the part of a reload that can fail: binding a new
// checkout.listen. It runs before anything changes; the listener it
// returns (nil if none is needed) is handed to applyCheckout.
func (c *checkoutPart) prepare(old, cfg *config.Config) (net.Listener, error) {
	if c.gw == nil || !cfg.Checkout.Enabled {
		return nil, nil
	}
	c.mu.Lock()
	serving := c.listen
	c.mu.Unlock()
	if serving != "" && serving == cfg.Checkout.Listen {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.Checkout.Listen)
	if err != nil {
		if old.Checkout.Enabled && old.Checkout.Listen == cfg.Checkout.Listen {
			// The address that already failed at start: the reload is
			// about something else, so it goes ahead; the problem stays.
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
// timeout at once) and moves, starts or stops the listener.
func (c *checkoutPart) apply(cfg *config.Config, ln net.Listener) {
	if c.gw == nil {
		if ln != nil {
			ln.Close()
		}
		return
	}
	c.gw.Update(checkoutConfig(cfg))
	switch {
	case ln != nil:
		c.serve(cfg.Checkout.Listen, ln)
	case !cfg.Checkout.Enabled:
		if err := c.stopServer(); err != nil {
			c.log.Warn("Checkout listener stopped with an error", "err", err)
		}
		c.mu.Lock()
		c.bindErr = ""
		c.mu.Unlock()
	}
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
