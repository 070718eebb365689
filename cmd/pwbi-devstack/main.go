// Command pwbi-devstack runs local fakes of the outside world on loopback —
// Moka POS and the PWBI upstream — so the agent can be demonstrated and
// tried without any real account. `make demo` uses it.
//
// -moka-dialect chooses the fake Moka: "apikey" (the integration guide,
// package apikeyfake) or "oauth" (the Moka Open API with its OAuth server,
// package oauthfake: set moka.api = "oauth", base_url, client_id and
// client_secret in the agent's config and run `pwbi-agent moka connect`;
// the fake's authorize page has an "Authorize" link).
//
// -mokka serves a fake Mokka Online API (package mokkafake) for the
// checkout gateway: point checkout.base_url at it; a checkout's iframe_url
// is a page where the customer confirms (SMS code 1111).
//
// -upstream-fault makes the fake upstream answer every batch the way
// something that is not the ingest service would — "html-page" (a Wi-Fi
// captive portal), "empty", "wrong-batch-id", "redirect", or "reject-all"
// (400 agent_id not registered) — to see how the agent reports it.
//
// -nats ADDR also starts a real single-node NATS server with JetStream (not
// a fake: nats-server itself) and the stream PWBI for the subjects pwbi.>,
// for the agent's [nats] sink (`make demo-nats`). -nats-store keeps its data
// in a directory instead of a temporary one.
//
// -jurnal ADDR also serves the fake Jurnal (Mekari) API (package
// jurnalfake) for the agent's [jurnal] sink (`make demo-jurnal`), with the
// credentials -jurnal-client-id and -jurnal-client-secret.
//
// It logs, every few seconds, what the fake upstream has received, with
// -nats how many messages the stream holds, and with -jurnal the documents
// Jurnal holds and their totals.
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

	"github.com/pwbi/edge-agent/agent/checkout/mokkafake"
	"github.com/pwbi/edge-agent/agent/deliver/httpsink/upstreamfake"
	"github.com/pwbi/edge-agent/agent/deliver/jurnalsink/jurnalfake"
	"github.com/pwbi/edge-agent/agent/moka/apikey/apikeyfake"
	"github.com/pwbi/edge-agent/agent/moka/oauth/oauthfake"
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
	apiKey := flag.String("moka-api-key", apikeyfake.DefaultAPIKey, "API key the fake Moka accepts")
	outlets := flag.Int("outlets", 3, "outlets of the fake business")
	days := flag.Int("days", 14, "days of sales history")
	perDay := flag.Int("tx-per-day", 60, "sales per outlet per day")
	seed := flag.Int64("seed", 1, "seed of the generated data")
	dialect := flag.String("moka-dialect", "apikey", `fake Moka dialect: "apikey" or "oauth" (Moka Open API)`)
	clientID := flag.String("moka-client-id", oauthfake.DefaultClientID, "OAuth client id the fake Moka Open API accepts")
	clientSecret := flag.String("moka-client-secret", oauthfake.DefaultClientSecret, "OAuth client secret the fake Moka Open API accepts")
	mokkaAddr := flag.String("mokka", "127.0.0.1:18482", "address of the fake Mokka Online API (checkout)")
	mokkaStore := flag.String("mokka-store-id", mokkafake.DefaultStoreID, "store_id the fake Mokka accepts")
	mokkaKey := flag.String("mokka-secret-key", mokkafake.DefaultSecretKey, "secret_key of that store")
	mokkaAuto := flag.Duration("mokka-auto-complete", 0, "finish the customer's Mokka form this long after a checkout (0: confirm on the iframe_url page)")
	upFault := flag.String("upstream-fault", "none", "fake upstream answers every batch with: none, html-page, empty, wrong-batch-id, redirect or reject-all")
	natsAddr := flag.String("nats", "", `also run a NATS JetStream server on this address, e.g. "127.0.0.1:14222" (empty: none)`)
	natsStore := flag.String("nats-store", "", "directory of the NATS server's data (default: a temporary one, removed on exit)")
	jurnalAddr := flag.String("jurnal", "", `also serve a fake Jurnal (Mekari) API on this address, e.g. "127.0.0.1:18483" (empty: none)`)
	jurnalID := flag.String("jurnal-client-id", jurnalfake.DefaultClientID, "HMAC client id the fake Jurnal accepts")
	jurnalSecret := flag.String("jurnal-client-secret", jurnalfake.DefaultClientSecret, "HMAC client secret the fake Jurnal accepts")
	aroundTheClock := flag.Bool("around-the-clock", true, "the fake tills sell at every hour of the day (false: only 07:00-22:00, the outlets' opening hours)")
	flag.Parse()
	if *dialect != "apikey" && *dialect != "oauth" {
		return fmt.Errorf("-moka-dialect must be \"apikey\" or \"oauth\", not %q", *dialect)
	}
	fault, err := upstreamfake.ParseFault(*upFault)
	if err != nil {
		return fmt.Errorf("-upstream-fault: %w", err)
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	moka := apikeyfake.New(apikeyfake.Options{
		APIKey: *apiKey, Seed: *seed, Outlets: *outlets, Days: *days, TxPerDay: *perDay, Live: true,
		AroundTheClock: *aroundTheClock,
	})
	mokaHandler := moka.Handler()
	var openAPI *oauthfake.Server
	if *dialect == "oauth" {
		openAPI = oauthfake.New(oauthfake.Options{
			ClientID: *clientID, ClientSecret: *clientSecret, Seed: *seed, Outlets: *outlets, Days: *days, TxPerDay: *perDay,
			Live: true, ConsentPage: true, AroundTheClock: *aroundTheClock,
		})
		mokaHandler = openAPI.Handler()
	}
	up := upstreamfake.New(upstreamfake.Options{Token: *upToken, Logger: log.With("fake", "upstream")})
	up.SetFault(fault)
	mokka := mokkafake.New(mokkafake.Options{
		StoreID: *mokkaStore, SecretKey: *mokkaKey, AutoComplete: *mokkaAuto, Logger: log.With("fake", "mokka"),
	})
	if err := mokka.Listen(*mokkaAddr); err != nil {
		return fmt.Errorf("mokka fake: %w", err)
	}
	defer mokka.Close()
	log.Info("Fake listening", "fake", "mokka", "url", mokka.URL(), "store_id", *mokkaStore)

	var js *natsStack
	if *natsAddr != "" {
		if js, err = startNATS(*natsAddr, *natsStore, "PWBI", "pwbi", log.With("server", "nats")); err != nil {
			return err
		}
		defer js.Close()
	}

	var jn *jurnalStack
	if *jurnalAddr != "" {
		if jn, err = startJurnal(*jurnalAddr, *jurnalID, *jurnalSecret, log.With("fake", "jurnal")); err != nil {
			return err
		}
		defer jn.Close()
	}

	errc := make(chan error, 2)
	for _, s := range []struct {
		name, addr string
		h          http.Handler
	}{{"moka", *mokaAddr, mokaHandler}, {"upstream", *upAddr, up.Handler()}} {
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			return fmt.Errorf("%s fake: %w", s.name, err)
		}
		srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- srv.Serve(ln) }()
		go func() { <-ctx.Done(); srv.Close() }()
		log.Info("Fake listening", "fake", s.name, "url", "http://"+ln.Addr().String())
	}
	if openAPI != nil {
		// The client secret is the -moka-client-secret value; it is not logged.
		log.Info("Fake Moka Open API", "business_id", openAPI.BusinessID(), "outlets", openAPI.OutletIDs(),
			"client_id", openAPI.ClientID(), "authorize_url", "http://"+*mokaAddr+"/oauth/authorize")
	} else {
		log.Info("Fake Moka business", "business_id", moka.BusinessID(), "outlets", moka.OutletIDs())
	}

	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	last := -1
	lastNATS := uint64(1<<64 - 1)
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
			if jn != nil {
				jn.report(log)
			}
			if js != nil {
				if n, err := js.messages(ctx); err == nil && n != lastNATS {
					lastNATS = n
					log.Info("NATS stream holds", "stream", "PWBI", "messages", n)
				}
			}
		}
	}
}
