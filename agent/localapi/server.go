// Package localapi is the agent's HTTP API on the loopback interface, used by
// the tray, the CLI and the dashboard (SPEC §8), and the typed client those
// programs use to call it.
//
// The API binds to loopback only, and refuses requests whose Host is not a
// loopback name (DNS rebinding) and state-changing requests from another
// origin (cross-site requests from a browser on the same PC).
package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// Backend is what the local API needs from the running agent.
type Backend interface {
	// Status returns the agent's current state. It must be cheap.
	Status(ctx context.Context) Status
	// SyncNow asks for a Moka poll and an upstream flush to start at once.
	SyncNow(ctx context.Context) error
	// Import starts a historical import; progress shows in Status.
	Import(ctx context.Context, req ImportRequest) error
}

// ImportRequest is the body of POST /v1/import.
type ImportRequest struct {
	Since    string `json:"since"` // YYYY-MM-DD
	OutletID string `json:"outlet_id,omitempty"`
}

// BadRequestError marks a Backend error caused by the request (HTTP 400).
type BadRequestError struct{ Err error }

func (e *BadRequestError) Error() string { return e.Err.Error() }
func (e *BadRequestError) Unwrap() error { return e.Err }

// Server serves the local API. Create it with NewServer.
type Server struct {
	backend Backend
	log     *slog.Logger
	mux     *http.ServeMux
}

// NewServer returns a Server answering from b.
func NewServer(b Backend, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{backend: b, log: log, mux: http.NewServeMux()}
	s.mux.HandleFunc("/v1/status", s.handleStatus)
	s.mux.HandleFunc("/v1/sync", s.handleSync)
	s.mux.HandleFunc("/v1/import", s.handleImport)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint")
	})
	return s
}

// Handler returns the API with its request guards applied.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		h.Set("Cache-Control", "no-store")
		if !IsLoopbackHost(r.Host) {
			s.log.Warn("Refused local API request", "reason", "host", "path", r.URL.Path)
			writeError(w, http.StatusForbidden, "invalid host: the local API answers only to localhost")
			return
		}
		if !safeMethod(r.Method) && !sameOrigin(r) {
			s.log.Warn("Refused local API request", "reason", "origin", "path", r.URL.Path)
			writeError(w, http.StatusForbidden, "cross-origin request refused")
			return
		}
		s.mux.ServeHTTP(w, r)
	})
}

// Serve answers on ln until ctx is done, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler: s.Handler(),
		// The API is tiny and local: a client that cannot send its headers in
		// 5s is broken, and a stuck one must not pin a goroutine forever.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("local api: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("local api: %w", err)
	}
	return nil
}

// Listen opens the API's listener. It refuses non-loopback addresses even if
// a config slipped past validation.
func Listen(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("local api address %q: %w", addr, err)
	}
	if !IsLoopbackHost(host) {
		return nil, fmt.Errorf("local api address %q is not a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("local api: %w", err)
	}
	return ln, nil
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	writeJSON(w, http.StatusOK, s.backend.Status(r.Context()))
}

func (s *Server) handleSync(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodPost) {
		return
	}
	if err := s.backend.SyncNow(r.Context()); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"accepted": true})
}

func (s *Server) handleImport(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodPost) {
		return
	}
	var req ImportRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad import request: "+err.Error())
		return
	}
	if err := s.backend.Import(r.Context(), req); err != nil {
		code := http.StatusConflict
		var bad *BadRequestError
		if errors.As(err, &bad) {
			code = http.StatusBadRequest
		}
		writeError(w, code, err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"accepted": true})
}

// IsLoopbackHost reports whether hostport (a Host header or a bare host)
// names the loopback interface.
func IsLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// sameOrigin reports whether a state-changing request may come from where it
// claims to. Programs (the CLI, the tray) send no Origin; a browser always
// does on POST, and it must be the API's own origin.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	return origin == "http://"+r.Host
}

func allowMethod(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeError(w, http.StatusMethodNotAllowed, "method not allowed")
	return false
}

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
