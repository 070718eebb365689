package localapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// An answer that is not a success is a *StatusError with the agent's
// status and message, worded as before (logs and the CLI print it).
func TestClientStatusError(t *testing.T) {
	for _, c := range []struct {
		name, body, want string
		code             int
	}{
		{"agent's error", `{"error":"no such endpoint"}`, "local api /v1/summary?days=1: no such endpoint (404)", http.StatusNotFound},
		{"bare status", "404 page not found", "local api /v1/summary?days=1: HTTP 404", http.StatusNotFound},
		{"failure", `{"error":"day summary: read"}`, "local api /v1/summary?days=1: day summary: read (500)", http.StatusInternalServerError},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(c.code)
				w.Write([]byte(c.body))
			}))
			defer srv.Close()
			_, err := NewClient(srv.Listener.Addr().String(), srv.Client()).Summary(context.Background(), 1)
			var se *StatusError
			if !errors.As(err, &se) || se.Code != c.code || se.Path != "/v1/summary?days=1" {
				t.Fatalf("error %#v, want a *StatusError with code %d", err, c.code)
			}
			if err.Error() != c.want {
				t.Errorf("error %q, want %q", err, c.want)
			}
		})
	}
}
