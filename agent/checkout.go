package agent

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/agent/checkout"
	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/health"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/agent/version"
)

// checkoutState is the Mokka checkout gateway's place in the agent (SPEC
// §7): one gateway for the agent's lifetime (its tracked orders and their
// refresh loop), served on checkout.listen while the checkout is enabled.
// A reload that moves the listener binds the new address before anything
// changes, then swaps, like the local API.
type checkoutState struct {
	gw  *checkout.Gateway // nil if it could not be created (see err)
	err string            // why there is no gateway

	mu        sync.Mutex
	listen    string // checkout.listen being served; "" when not serving
	bindErr   string // why checkout.listen could not be bound
	cancel    context.CancelFunc
	done      chan error
	runCancel context.CancelFunc
	runDone   chan struct{}
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
func (a *Agent) startCheckout(cfg *config.Config) {
	gw, err := checkout.New(checkoutConfig(cfg), checkout.Options{
		Store:     a.store,
		Clock:     clockwork.NewRealClock(),
		Logger:    a.log.With("component", "checkout"),
		UserAgent: "pwbi-agent/" + version.String(),
	})
	if err != nil {
		a.co.err = "the checkout gateway cannot start: " + err.Error()
		a.log.Error("Checkout gateway not started", "err", err)
		return
	}
	a.co.gw = gw
	ctx, cancel := context.WithCancel(context.WithoutCancel(a.baseCtx))
	done := make(chan struct{})
	a.co.runCancel, a.co.runDone = cancel, done
	go func() {
		defer close(done)
		if err := gw.Run(ctx); err != nil {
			a.log.Error("Checkout order refresh stopped", "err", err)
		}
	}()
	if !cfg.Checkout.Enabled {
		return
	}
	ln, err := net.Listen("tcp", cfg.Checkout.Listen)
	if err != nil {
		a.co.mu.Lock()
		a.co.bindErr = err.Error()
		a.co.mu.Unlock()
		a.log.Error("Checkout gateway cannot listen", "listen", cfg.Checkout.Listen, "err", err)
		return
	}
	a.serveCheckout(cfg.Checkout.Listen, ln)
}

// serveCheckout serves the gateway on ln, then stops the previous
// listener, if any: tablets never meet a moment without one.
func (a *Agent) serveCheckout(listen string, ln net.Listener) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(a.baseCtx))
	done := make(chan error, 1)
	go func() { done <- a.co.gw.Serve(ctx, ln) }()
	a.co.mu.Lock()
	oldCancel, oldDone := a.co.cancel, a.co.done
	a.co.cancel, a.co.done, a.co.listen, a.co.bindErr = cancel, done, listen, ""
	a.co.mu.Unlock()
	a.log.Info("Checkout gateway listening", "listen", ln.Addr().String())
	if oldCancel != nil {
		oldCancel()
		if err := <-oldDone; err != nil {
			a.log.Warn("Old checkout listener stopped with an error", "err", err)
		}
	}
}

// stopCheckoutServer stops serving tablets; relays in flight finish first
// (bounded by the gateway).
func (a *Agent) stopCheckoutServer() {
	a.co.mu.Lock()
	cancel, done := a.co.cancel, a.co.done
	a.co.cancel, a.co.done, a.co.listen = nil, nil, ""
	a.co.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	if err := <-done; err != nil {
		a.log.Warn("Checkout listener stopped with an error", "err", err)
	}
}

// stopCheckout is the gateway's part of the shutdown: no new tablet
// requests, those in flight finish, and the order refresh loop stops, so
// its last order records are in the buffer before the final flush.
func (a *Agent) stopCheckout() {
	a.stopCheckoutServer()
	if a.co.runCancel != nil {
		a.co.runCancel()
		<-a.co.runDone
	}
}

// prepareCheckout is the part of a reload that can fail: binding a new
// checkout.listen. It runs before anything changes; the listener it
// returns (nil if none is needed) is handed to applyCheckout.
func (a *Agent) prepareCheckout(old, cfg *config.Config) (net.Listener, error) {
	if a.co.gw == nil || !cfg.Checkout.Enabled {
		return nil, nil
	}
	a.co.mu.Lock()
	serving := a.co.listen
	a.co.mu.Unlock()
	if serving != "" && serving == cfg.Checkout.Listen {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.Checkout.Listen)
	if err != nil {
		if old.Checkout.Enabled && old.Checkout.Listen == cfg.Checkout.Listen {
			// The address that already failed at start: the reload is
			// about something else, so it goes ahead; the problem stays.
			a.co.mu.Lock()
			a.co.bindErr = err.Error()
			a.co.mu.Unlock()
			return nil, nil
		}
		return nil, fmt.Errorf("checkout.listen: %w", err)
	}
	return ln, nil
}

// applyCheckout swaps in the new checkout settings (tablets, credentials,
// timeout at once) and moves, starts or stops the listener.
func (a *Agent) applyCheckout(cfg *config.Config, ln net.Listener) {
	if a.co.gw == nil {
		if ln != nil {
			ln.Close()
		}
		return
	}
	a.co.gw.Update(checkoutConfig(cfg))
	switch {
	case ln != nil:
		a.serveCheckout(cfg.Checkout.Listen, ln)
	case !cfg.Checkout.Enabled:
		a.stopCheckoutServer()
		a.co.mu.Lock()
		a.co.bindErr = ""
		a.co.mu.Unlock()
	}
}

// checkoutStatus fills checkout.open_orders and returns the gateway's part
// of the health input. Nothing secret goes in: no key, token or signature.
func (a *Agent) checkoutStatus(s *localapi.Status, cfg *config.Config) health.Checkout {
	h := health.Checkout{Enabled: cfg.Checkout.Enabled}
	if a.co.gw == nil {
		if cfg.Checkout.Enabled {
			h.StartError = a.co.err
		}
		return h
	}
	gs := a.co.gw.Status()
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
	a.co.mu.Lock()
	bindErr := a.co.bindErr
	a.co.mu.Unlock()
	if bindErr != "" {
		h.ListenError = fmt.Sprintf("the checkout gateway cannot listen on %s: %s", cfg.Checkout.Listen, bindErr)
	}
	return h
}
