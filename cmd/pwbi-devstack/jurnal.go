package main

import (
	"fmt"
	"log/slog"

	"github.com/shopspring/decimal"

	"github.com/pwbi/edge-agent/agent/deliver/jurnalsink/jurnalfake"
)

// jurnalStack is the -jurnal option: the fake Jurnal (Mekari) API of
// package jurnalfake, for the agent's [jurnal] sink (`make demo-jurnal`).
// The devstack logs what it holds: documents and their totals, so a demo
// shows the cafe's sales arriving in Jurnal and adding up.
type jurnalStack struct {
	srv  *jurnalfake.Server
	last string
}

// startJurnal starts the fake on addr with the demo credentials.
func startJurnal(addr, clientID, clientSecret string, log *slog.Logger) (*jurnalStack, error) {
	srv := jurnalfake.NewUnstarted(jurnalfake.Options{ClientID: clientID, ClientSecret: clientSecret, Logger: log})
	if err := srv.Listen(addr); err != nil {
		return nil, fmt.Errorf("jurnal fake: %w", err)
	}
	// The client secret is the -jurnal-client-secret value; it is not logged.
	log.Info("Fake listening", "fake", "jurnal", "url", srv.URL(), "client_id", clientID)
	return &jurnalStack{srv: srv}, nil
}

// report logs the documents Jurnal holds when they changed: invoices,
// payments and returns with their exact totals, and the products created.
func (j *jurnalStack) report(log *slog.Logger) {
	invs, pays, rets := j.srv.Invoices(), j.srv.Payments(), j.srv.Returns()
	var invoiced, paid, returned decimal.Decimal
	for _, i := range invs {
		invoiced = invoiced.Add(i.Total)
	}
	for _, p := range pays {
		paid = paid.Add(p.Total)
	}
	for _, r := range rets {
		returned = returned.Add(r.Total)
	}
	line := invoiced.String() + "/" + paid.String() + "/" + returned.String()
	if line == j.last {
		return
	}
	j.last = line
	log.Info("Jurnal holds", "invoices", len(invs), "invoiced", invoiced.String(), "payments", len(pays), "paid", paid.String(),
		"returns", len(rets), "returned", returned.String(), "products", len(j.srv.Products()))
}

func (j *jurnalStack) Close() { j.srv.Close() }
