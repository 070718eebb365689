package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsStack is the -nats option: a real single-node NATS server with
// JetStream, and the stream an operator would define for the agents
// (docs/nats.md), so that `make demo-nats` shows records arriving in a
// stream. The server is nats-server itself, linked into the devstack; the
// agent only ever links the client (deps_test.go).
type natsStack struct {
	srv    *server.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	stream string
	tmp    string // a store directory made here, removed on Close
}

// startNATS starts the server on addr with its store in dir (a temporary
// directory when empty) and creates stream for {prefix}.>.
func startNATS(addr, dir, stream, prefix string, log *slog.Logger) (*natsStack, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("-nats %q: %w", addr, err)
	}
	port, err := strconv.Atoi(ps)
	if err != nil {
		return nil, fmt.Errorf("-nats %q: bad port", addr)
	}
	st := &natsStack{stream: stream}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "pwbi-devstack-nats-"); err != nil {
			return nil, err
		}
		st.tmp = dir
	}
	st.srv, err = server.NewServer(&server.Options{
		ServerName: "pwbi-devstack",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("nats server: %w", err)
	}
	go st.srv.Start()
	if !st.srv.ReadyForConnections(10 * time.Second) {
		st.Close()
		return nil, errors.New("nats server: not ready within 10s")
	}
	if st.nc, err = nats.Connect(st.srv.ClientURL(), nats.Name("pwbi-devstack")); err != nil {
		st.Close()
		return nil, fmt.Errorf("nats: %w", err)
	}
	if st.js, err = jetstream.New(st.nc); err != nil {
		st.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = st.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:               stream,
		Subjects:           []string{prefix + ".>"},
		Storage:            jetstream.FileStorage,
		Replicas:           1, // one server; a fleet's stream has 3 (docs/nats.md)
		Duplicates:         2 * time.Minute,
		AllowAtomicPublish: true,
		AllowDirect:        true,
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("create stream %s: %w", stream, err)
	}
	log.Info("NATS JetStream listening", "url", st.srv.ClientURL(), "stream", stream, "subjects", prefix+".>", "store", dir)
	return st, nil
}

// messages is how many messages the stream holds.
func (st *natsStack) messages(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := st.js.Stream(ctx, st.stream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// Close stops the server (and removes a temporary store).
func (st *natsStack) Close() {
	if st.nc != nil {
		st.nc.Close()
	}
	if st.srv != nil {
		st.srv.Shutdown()
		st.srv.WaitForShutdown()
	}
	if st.tmp != "" {
		os.RemoveAll(st.tmp)
	}
}
