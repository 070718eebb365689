// Command pwbi-devstack runs local fakes of the outside world on loopback —
// Moka POS (apikey dialect) and the PWBI upstream — so the agent can be
// demonstrated and tried without any real account. `make demo` uses it.
//
// It logs, every few seconds, what the fake upstream has received.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pwbi/edge-agent/agent/mokapos/mokafake"
	"github.com/pwbi/edge-agent/agent/upstream/upstreamfake"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "pwbi-devstack: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	mokaAddr := flag.String("moka", "127.0.0.1:18481", "address of the fake Moka API")
	upAddr := flag.String("upstream", "127.0.0.1:18480", "address of the fake upstream")
	upToken := flag.String("upstream-token", "demo-upstream-token", "bearer token the fake upstream accepts")
	apiKey := flag.String("moka-api-key", mokafake.DefaultAPIKey, "API key the fake Moka accepts")
	outlets := flag.Int("outlets", 3, "outlets of the fake business")
	days := flag.Int("days", 14, "days of sales history")
	perDay := flag.Int("tx-per-day", 60, "sales per outlet per day")
	seed := flag.Int64("seed", 1, "seed of the generated data")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	moka := mokafake.New(mokafake.Options{
		APIKey: *apiKey, Seed: *seed, Outlets: *outlets, Days: *days, TxPerDay: *perDay, Live: true,
	})
	up := upstreamfake.New(upstreamfake.Options{Token: *upToken, Logger: log.With("fake", "upstream")})

	errc := make(chan error, 2)
	for _, s := range []struct {
		name, addr string
		h          http.Handler
	}{{"moka", *mokaAddr, moka.Handler()}, {"upstream", *upAddr, up.Handler()}} {
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			return fmt.Errorf("%s fake: %w", s.name, err)
		}
		srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- srv.Serve(ln) }()
		go func() { <-ctx.Done(); srv.Close() }()
		log.Info("Fake listening", "fake", s.name, "url", "http://"+ln.Addr().String())
	}
	log.Info("Fake Moka business", "business_id", moka.BusinessID(), "outlets", moka.OutletIDs())

	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	last := -1
	for {
		select {
		case <-ctx.Done():
			log.Info("Stopped", "upstream_records", up.Accepted())
			return nil
		case err := <-errc:
			if !errors.Is(err, http.ErrServerClosed) {
				return err
			}
		case <-tick.C:
			if n := up.Accepted(); n != last {
				last = n
				log.Info("Upstream received", "records", n, "batches", len(up.Batches()),
					"distinct_keys", len(up.Keys()), "order_violations", up.OrderViolations())
			}
		}
	}
}
