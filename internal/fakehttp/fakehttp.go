// Package fakehttp is the serving scaffolding the project's fake servers
// share (upstreamfake, apikeyfake, oauthfake, mokkafake): listen on a
// loopback port or a given address, serve a handler, tell the base URL, and
// close, waiting for the serve loop to end. The fakes embed a Server and
// keep their own Start/Listen/URL/Close API on top of it; they are used by
// tests and by cmd/pwbi-devstack, so this is not a test-only package.
package fakehttp

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"sync"
	"time"
)

// Loopback is the address Listen uses for "": a free port on 127.0.0.1.
const Loopback = "127.0.0.1:0"

// readHeaderTimeout is generous: clients of a fake are local, but a header
// timeout keeps a stuck client from holding a goroutine forever.
const readHeaderTimeout = 10 * time.Second

// TB is the part of testing.TB a fake's NewServer uses (to fail, and to
// close the fake when the test ends), so that fakes need not import
// package testing.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Server serves one handler over HTTP. The zero value is ready: call
// Listen once, then Close. It is safe for concurrent use.
type Server struct {
	mu   sync.Mutex
	ln   net.Listener
	srv  *http.Server
	done chan struct{} // closed when Serve has returned
}

// Listen starts serving h on addr ("" means Loopback). errorLog receives
// the http.Server's own errors; nil means the log package's standard
// logger. It returns once the listener is open, so URL is valid at once.
func (s *Server) Listen(addr string, h http.Handler, errorLog *log.Logger) error {
	if addr == "" {
		addr = Loopback
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, ErrorLog: errorLog}
	done := make(chan struct{})
	s.mu.Lock()
	s.ln, s.srv, s.done = ln, srv, done
	s.mu.Unlock()
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // http.ErrServerClosed after Close
	}()
	return nil
}

// URL is the base URL ("http://127.0.0.1:port"), or "" before Listen. It
// stays the same after Close.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Close stops serving, cuts open connections (a delayed answer ends at
// once) and waits for the serve loop to return. It may be called more than
// once, and before Listen.
func (s *Server) Close() {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	_ = srv.Close()
	<-done
}
