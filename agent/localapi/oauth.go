package localapi

// This file is the Moka Open API authorization (SPEC §5.2, issue 7):
//
//	GET  /oauth/moka/start     302 to Moka's authorize page (the dashboard's
//	                           "Connect Moka" button)
//	GET  /oauth/moka/callback  Moka's redirect back: the code is exchanged
//	                           and a plain page says how it went
//	POST /v1/moka/authorize    the same start for programs (`moka connect`):
//	                           the authorize URL as JSON
//
// The callback is a top-level navigation from Moka's site, so it is the one
// API path a browser may reach cross-site; it is a GET whose only effect
// needs the one-time state the agent handed out with the authorize URL.
// Everything else keeps the guards.

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"net/http"
	"time"
)

// Paths of the authorization flow.
const (
	PathMokaStart     = "/oauth/moka/start"
	PathMokaCallback  = "/oauth/moka/callback"
	PathMokaAuthorize = "/v1/moka/authorize"
)

// MokaAuthBackend is implemented by a Backend that can run the Moka Open API
// authorization. The server serves the paths above only when its backend
// implements it (an optional interface, so other Backends need no change).
type MokaAuthBackend interface {
	// MokaAuthorize starts an authorization: a one-time state and the URL
	// of Moka's authorize page carrying it. A *BadRequestError means it
	// cannot start (moka.api is not "oauth", no client id).
	MokaAuthorize(ctx context.Context) (MokaAuthorization, error)
	// MokaCallback completes it with what Moka's redirect carried. A
	// *BadRequestError means the request itself is refused (unknown,
	// expired or used state; Moka said no); any other error is a failed
	// exchange.
	MokaCallback(ctx context.Context, cb MokaCallback) error
}

// MokaAuthorization is the answer to POST /v1/moka/authorize.
type MokaAuthorization struct {
	// AuthorizeURL is Moka's authorize page for this authorization; open
	// it in a browser on this PC.
	AuthorizeURL string `json:"authorize_url"`
	// RedirectURI is where Moka sends the browser back.
	RedirectURI string    `json:"redirect_uri"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// MokaCallback is the query of Moka's redirect.
type MokaCallback struct {
	State            string
	Code             string
	Error            string // e.g. "access_denied"
	ErrorDescription string
}

func (s *Server) registerMokaAuth(b MokaAuthBackend) {
	s.mux.HandleFunc(PathMokaStart, func(w http.ResponseWriter, r *http.Request) {
		if !allowMethod(w, r, http.MethodGet) {
			return
		}
		a, err := b.MokaAuthorize(r.Context())
		if err != nil {
			s.log.Info("Moka authorization could not start", "err", err)
			renderAuthPage(w, badOr(err, http.StatusInternalServerError), authPage{
				Title: "Cannot connect Moka", Text: "The agent could not start the Moka authorization: " + err.Error(), Error: true,
			})
			return
		}
		s.log.Info("Moka authorization started", "from", "browser")
		http.Redirect(w, r, a.AuthorizeURL, http.StatusFound)
	})
	s.mux.HandleFunc(PathMokaAuthorize, func(w http.ResponseWriter, r *http.Request) {
		if !allowMethod(w, r, http.MethodPost) {
			return
		}
		a, err := b.MokaAuthorize(r.Context())
		if err != nil {
			writeError(w, badOr(err, http.StatusInternalServerError), err.Error())
			return
		}
		s.log.Info("Moka authorization started", "from", "api")
		writeJSON(w, http.StatusOK, a)
	})
	s.mux.HandleFunc(PathMokaCallback, func(w http.ResponseWriter, r *http.Request) {
		// GET only: a HEAD (a link preview) must not use up the state.
		if !allowMethod(w, r, http.MethodGet) {
			return
		}
		// The URL carries the authorization code: no referrer from here.
		w.Header().Set("Referrer-Policy", "no-referrer")
		q := r.URL.Query()
		err := b.MokaCallback(r.Context(), MokaCallback{
			State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error"), ErrorDescription: q.Get("error_description"),
		})
		if err != nil {
			s.log.Warn("Moka authorization failed", "err", err)
			renderAuthPage(w, badOr(err, http.StatusBadGateway), authPage{
				Title: "Moka was not connected", Text: err.Error(), Error: true,
				Hint: "Start again with \"Connect Moka\" on the dashboard or `pwbi-agent moka connect`.",
			})
			return
		}
		s.log.Info("Moka authorization completed")
		renderAuthPage(w, http.StatusOK, authPage{
			Title: "Moka is connected",
			Text:  "The agent now fetches the sales of every outlet from Moka. You can close this tab.",
		})
	})
}

// badOr is 400 for a *BadRequestError, else code.
func badOr(err error, code int) int {
	var bad *BadRequestError
	if errors.As(err, &bad) {
		return http.StatusBadRequest
	}
	return code
}

// isMokaCallback reports whether r is Moka's redirect back: the only
// request a browser may send cross-site (see the file comment).
func isMokaCallback(r *http.Request) bool {
	return r.URL.Path == PathMokaCallback && r.Method == http.MethodGet
}

type authPage struct {
	Title, Text, Hint string
	Error             bool
}

var authPageTmpl = template.Must(template.New("auth").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · PWBI Agent</title>
<style>body{font:17px/1.5 system-ui,"Segoe UI",Roboto,Arial,sans-serif;margin:0;background:#f3f5f7;color:#1f2328}
main{max-width:40rem;margin:4rem auto;padding:2rem;background:#fff;border:1px solid #d1d9e0;border-radius:12px}
h1{margin:0 0 .6rem;font-size:1.7rem}.ok{color:#1a7f37}.bad{color:#cf222e}a{color:#0969da}</style></head>
<body><main id="moka-auth"><h1 class="{{if .Error}}bad{{else}}ok{{end}}">{{.Title}}</h1>
<p id="moka-auth-text">{{.Text}}</p>{{with .Hint}}<p>{{.}}</p>{{end}}
<p><a href="/">Open the agent's dashboard</a></p></main></body></html>
`))

func renderAuthPage(w http.ResponseWriter, code int, p authPage) {
	var buf bytes.Buffer
	if err := authPageTmpl.Execute(&buf, p); err != nil {
		writeError(w, http.StatusInternalServerError, "rendering the page failed")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// MokaAuthorize asks the running agent to start a Moka authorization and
// returns the URL of Moka's authorize page (for `pwbi-agent moka connect`).
func (c *Client) MokaAuthorize(ctx context.Context) (MokaAuthorization, error) {
	var a MokaAuthorization
	err := c.do(ctx, http.MethodPost, PathMokaAuthorize, nil, &a)
	return a, err
}
