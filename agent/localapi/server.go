// Package localapi is the agent's HTTP API on the loopback interface, used by
// the tray, the CLI and the dashboard (SPEC §8), and the typed client those
// programs use to call it.
//
// Endpoints:
//
//	GET  /v1/status         Status as JSON
//	POST /v1/sync           poll Moka and flush upstream now (202)
//	POST /v1/import         start a historical import (202)
//	POST /v1/pause          stop syncing until resumed (200)
//	POST /v1/resume         (200)
//	POST /v1/reload         re-read the config file: 200, or 422 when refused
//	GET  /v1/queue/dead     dead letters (?limit=N&data=1&sink=NAME)
//	POST /v1/queue/retry    requeue dead letters ({"ids":[…]} or {"all":true}, "sink":"NAME")
//	GET  /v1/summary        the day at a glance (?days=N; summary.go, when the
//	                        Backend implements SummaryBackend)
//	GET  /metrics           Prometheus text format (when ServerOptions.Metrics is set)
//	GET  /                  the dashboard, an HTML page for the person at the PC
//	POST /v1/moka/authorize, GET /oauth/moka/start, GET /oauth/moka/callback
//	                        the Moka Open API authorization (oauth.go; when
//	                        the Backend implements MokaAuthBackend)
//
// The API binds to loopback only, and refuses requests whose Host is not a
// loopback name (DNS rebinding), state-changing requests from another
// origin, and API reads a browser marks as cross-site. The dashboard's
// buttons are plain HTML forms posting to /v1/sync, /v1/pause and
// /v1/resume: such a form post is answered with 303 See Other back to the
// dashboard, while programs get JSON.
//
// This package must not import the rest of the agent: the agent implements
// [Backend], and the tray and CLI import only the [Client].
package localapi

import (
	"bytes"
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

// Backend is what the local API needs from the running agent. Its methods
// are called concurrently from request goroutines.
type Backend interface {
	// Status returns the agent's current state. It must be cheap: the
	// dashboard calls it on every refresh.
	Status(ctx context.Context) Status
	// SyncNow asks for a Moka poll and an upstream flush to start at once.
	SyncNow(ctx context.Context) error
	// Import starts a historical import; progress shows in Status.
	Import(ctx context.Context, req ImportRequest) error
	// Pause stops polling and forwarding until Resume; Status then
	// reports StatePaused. Pausing a paused agent is not an error.
	Pause(ctx context.Context) error
	// Resume undoes Pause. Resuming a running agent is not an error.
	Resume(ctx context.Context) error
	// Reload re-reads the config file and applies it if it is valid.
	Reload(ctx context.Context) ReloadResult
	// DeadLetters returns up to q.Limit dead letters, oldest first (of
	// q.Sink only, if set), with their record data only if q.WithData.
	DeadLetters(ctx context.Context, q DeadLetterQuery) ([]DeadLetter, error)
	// Requeue moves dead letters back to the outbox. Ids that cannot be
	// requeued are listed in the result, not returned as an error.
	Requeue(ctx context.Context, req RequeueRequest) (RequeueResult, error)
}

// ImportRequest is the body of POST /v1/import.
type ImportRequest struct {
	Since    string `json:"since"` // YYYY-MM-DD
	OutletID string `json:"outlet_id,omitempty"`
	// Sink, if set, re-fetches history for that sink alone: records the
	// buffer had already are sent to it again, and not to the others.
	Sink string `json:"sink,omitempty"`
}

// ReloadResult is the body of the answer to POST /v1/reload.
type ReloadResult struct {
	// Applied: the file changed and the new configuration is in force.
	Applied bool `json:"applied"`
	// Unchanged: the file is the same as the configuration in force.
	Unchanged bool `json:"unchanged"`
	// Generation is the number of the configuration in force afterwards.
	Generation uint64 `json:"generation"`
	// Error says why the file was refused (the previous configuration keeps
	// running); empty on success. A non-empty Error makes the answer 422.
	Error string `json:"error"`
	// RestartRequired lists the changed settings that take effect only
	// after the agent restarts.
	RestartRequired []string `json:"restart_required"`
}

// DeadLetter is a record set aside because it could not be mapped or was
// rejected by a sink (GET /v1/queue/dead).
type DeadLetter struct {
	ID    uint64 `json:"id"`
	Stage string `json:"stage"` // a sink's name ("upstream", "nats", ...), "map", "corrupt"
	// Sink is the sink that rejected the record; empty for "map" and
	// "corrupt" (no sink ever had it).
	Sink   string    `json:"sink"`
	Kind   string    `json:"kind"`
	Key    string    `json:"key"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	// Seq is the outbox sequence number the record had (0 if never queued).
	Seq uint64 `json:"seq"`
	// Data is the record itself, only when asked for (data=1).
	Data json.RawMessage `json:"data,omitempty"`
}

// DeadLetters is the body of the answer to GET /v1/queue/dead.
type DeadLetters struct {
	Limit       int          `json:"limit"`
	Sink        string       `json:"sink,omitempty"`
	DeadLetters []DeadLetter `json:"dead_letters"`
}

// DeadLetterQuery selects dead letters (GET /v1/queue/dead?limit=N&data=1&sink=NAME).
type DeadLetterQuery struct {
	// Limit is the most to return; <= 0: the server's default, 100.
	Limit    int
	WithData bool
	// Sink, if set, selects the dead letters of that sink.
	Sink string
}

// RequeueRequest is the body of POST /v1/queue/retry: either some ids or
// all of them, of one sink if Sink is set. A sink's dead letter goes back
// to that sink alone.
type RequeueRequest struct {
	IDs  []uint64 `json:"ids"`
	All  bool     `json:"all"`
	Sink string   `json:"sink,omitempty"`
}

// RequeueResult is the answer to POST /v1/queue/retry.
type RequeueResult struct {
	Requeued int `json:"requeued"`
	// NotRequeued has one line per dead letter left where it was, with
	// the reason.
	NotRequeued []string `json:"not_requeued"`
}

// Limits of GET /v1/queue/dead.
const (
	DefaultDeadLetterLimit = 100
	MaxDeadLetterLimit     = 10000
)

// Request body limits. Every body is read through a MaxBytesReader.
const (
	maxBody      = 1 << 20 // the largest: a requeue of many ids
	maxSmallBody = 4 << 10 // import
)

// BadRequestError marks a Backend error caused by the request (HTTP 400).
type BadRequestError struct{ Err error }

func (e *BadRequestError) Error() string { return e.Err.Error() }
func (e *BadRequestError) Unwrap() error { return e.Err }

// ServerOptions are the Server's optional collaborators.
type ServerOptions struct {
	// Logger receives refusals and actions; default: discarded.
	Logger *slog.Logger
	// Metrics serves GET /metrics (Prometheus text format); nil means no
	// /metrics (404). A plain handler keeps this package, and so the tray
	// that imports its client, free of the Prometheus libraries.
	Metrics http.Handler
	// Now is the clock for the dashboard's "5 min ago"; default time.Now.
	Now func() time.Time
}

// Server serves the local API. Create it with NewServer; it is safe for
// concurrent use.
type Server struct {
	backend Backend
	log     *slog.Logger
	now     func() time.Time
	mux     *http.ServeMux

	// Reading the day summary, as the dashboard and GET /v1/summary do
	// every few seconds: a failure that lasts is logged once
	// (failureLog).
	dashSummaryLog, apiSummaryLog failureLog
}

// NewServer returns a Server answering from b.
func NewServer(b Backend, opts ServerOptions) *Server {
	s := &Server{backend: b, log: opts.Logger, now: opts.Now, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.mux.HandleFunc("/v1/status", s.handleStatus)
	s.mux.HandleFunc("/v1/sync", s.handleSync)
	s.mux.HandleFunc("/v1/import", s.handleImport)
	s.mux.HandleFunc("/v1/pause", s.handlePause)
	s.mux.HandleFunc("/v1/resume", s.handleResume)
	s.mux.HandleFunc("/v1/reload", s.handleReload)
	s.mux.HandleFunc("/v1/queue/dead", s.handleDeadLetters)
	s.mux.HandleFunc("/v1/queue/retry", s.handleRequeue)
	if prom := opts.Metrics; prom != nil {
		s.mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
			if allowMethod(w, r, http.MethodGet, http.MethodHead) {
				prom.ServeHTTP(w, r)
			}
		})
	}
	if ab, ok := b.(MokaAuthBackend); ok { // Moka OAuth routes (oauth.go)
		s.registerMokaAuth(ab)
	}
	if sb, ok := b.(SummaryBackend); ok { // the day at a glance (summary.go)
		s.registerSummary(sb)
	}
	s.mux.HandleFunc("/{$}", s.handleDashboard)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint")
	})
	return s
}

// contentSecurityPolicy allows the dashboard its inline styles, its
// data: favicon and forms posting to itself; nothing else (no scripts, no
// frames, no external anything).
const contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Handler returns the API with its request guards applied.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		// Not "no-referrer": with it, a browser sends "Origin: null" on the
		// dashboard's own form posts, and sameOrigin refuses them.
		h.Set("Referrer-Policy", "same-origin")
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
		// The dashboard may be opened from a link anywhere; the API and
		// the metrics are for programs, which send no Sec-Fetch-Site.
		// Moka's OAuth redirect arrives cross-site by nature; it is a GET
		// that only works with the one-time state (oauth.go).
		if r.URL.Path != "/" && crossSite(r) && !isMokaCallback(r) {
			s.log.Warn("Refused local API request", "reason", "fetch-site", "path", r.URL.Path)
			writeError(w, http.StatusForbidden, "cross-site request refused")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
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
		MaxHeaderBytes:    64 << 10,
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
// does on POST, and it must be the API's own origin (the dashboard).
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	return strings.EqualFold(origin, "http://"+r.Host)
}

// crossSite reports whether a browser says the request comes from another
// site (a page elsewhere fetching or embedding our URLs).
func crossSite(r *http.Request) bool {
	site := r.Header.Get("Sec-Fetch-Site")
	return site == "cross-site" || site == "same-site"
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

// writeError is the one way the API reports an error.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorBody{Error: msg})
}

// writeJSON encodes v before writing anything, so an encoding failure
// becomes a clean 500 instead of a truncated 200. The answer is indented
// for people reading it with curl.
func writeJSON(w http.ResponseWriter, code int, v any) {
	writeJSONAs(w, code, v, true)
}

// writeJSONAs is writeJSON, optionally compact and with no HTML escaping:
// embedded records then keep their bytes.
func writeJSONAs(w http.ResponseWriter, code int, v any, indent bool) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if indent {
		enc.SetIndent("", "  ")
	} else {
		enc.SetEscapeHTML(false)
	}
	if err := enc.Encode(v); err != nil {
		buf.Reset()
		code = http.StatusInternalServerError
		_ = json.NewEncoder(&buf).Encode(ErrorBody{Error: "encoding the answer failed: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}
