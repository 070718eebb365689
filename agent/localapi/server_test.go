package localapi

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type fakeBackend struct {
	syncs   atomic.Int32
	st      Status
	imports []ImportRequest
}

func (b *fakeBackend) Status(context.Context) Status { return b.st }
func (b *fakeBackend) Import(_ context.Context, req ImportRequest) error {
	if req.Since == "bad" {
		return &BadRequestError{Err: errors.New("since: not a date")}
	}
	b.imports = append(b.imports, req)
	return nil
}

func (b *fakeBackend) SyncNow(context.Context) error {
	b.syncs.Add(1)
	return nil
}

func TestGuards(t *testing.T) {
	b := &fakeBackend{st: Status{State: StateOK, Version: "test"}}
	h := NewServer(b, nil).Handler()
	tests := []struct {
		name   string
		method string
		path   string
		host   string
		hdr    map[string]string
		want   int
	}{
		{"status from localhost", "GET", "/v1/status", "127.0.0.1:8687", nil, 200},
		{"status by name", "GET", "/v1/status", "localhost:8687", nil, 200},
		{"status ipv6 loopback", "GET", "/v1/status", "[::1]:8687", nil, 200},
		{"rebinding host", "GET", "/v1/status", "evil.example:8687", nil, 403},
		{"lan host", "GET", "/v1/status", "192.168.1.10:8687", nil, 403},
		{"sync from cli (no origin)", "POST", "/v1/sync", "127.0.0.1:8687", nil, 202},
		{"sync same origin", "POST", "/v1/sync", "127.0.0.1:8687", map[string]string{"Origin": "http://127.0.0.1:8687"}, 202},
		{"sync cross-site origin", "POST", "/v1/sync", "127.0.0.1:8687", map[string]string{"Origin": "https://evil.example"}, 403},
		{"sync null origin", "POST", "/v1/sync", "127.0.0.1:8687", map[string]string{"Origin": "null"}, 403},
		{"sync other port", "POST", "/v1/sync", "127.0.0.1:8687", map[string]string{"Origin": "http://127.0.0.1:9999"}, 403},
		{"sync fetch cross-site", "POST", "/v1/sync", "127.0.0.1:8687", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"sync via GET", "GET", "/v1/sync", "127.0.0.1:8687", nil, 405},
		{"status via POST", "POST", "/v1/status", "127.0.0.1:8687", nil, 405},
		{"unknown path", "GET", "/v1/nope", "127.0.0.1:8687", nil, 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := b.syncs.Load()
			r := httptest.NewRequest(tc.method, "http://"+tc.host+tc.path, nil)
			r.Host = tc.host
			for k, v := range tc.hdr {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("got %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if w.Code == 403 && b.syncs.Load() != before {
				t.Fatal("refused request still triggered a sync")
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("content type %q", ct)
			}
		})
	}
}

func TestClientAgainstServer(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b := &fakeBackend{st: Status{
		State:    StateOffline,
		Version:  "1.0.0",
		Config:   ConfigStatus{Path: "/etc/pwbi-agent/config.toml", Generation: 3},
		Queue:    QueueStatus{Pending: 12, OldestPendingAt: &now},
		Upstream: UpstreamStatus{Configured: true, LastError: "connection refused"},
	}}
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewServer(b, nil).Serve(ctx, ln) }()

	c := NewClient(ln.Addr().String(), nil)
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateOffline || st.Queue.Pending != 12 || !st.Queue.OldestPendingAt.Equal(now) ||
		st.Config.Generation != 3 || st.Upstream.LastError != "connection refused" {
		t.Fatalf("status round trip: %+v", st)
	}
	if st.Moka.LastPollAt != nil {
		t.Fatal("unset time must be null")
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if b.syncs.Load() != 1 {
		t.Fatalf("syncs = %d", b.syncs.Load())
	}
	if err := c.Import(ctx, ImportRequest{Since: "2026-01-01", OutletID: "o1"}); err != nil {
		t.Fatal(err)
	}
	if len(b.imports) != 1 || b.imports[0].OutletID != "o1" {
		t.Fatalf("imports: %+v", b.imports)
	}
	if err := c.Import(ctx, ImportRequest{Since: "bad"}); err == nil || !strings.Contains(err.Error(), "not a date") || !strings.Contains(err.Error(), "400") {
		t.Fatalf("bad import: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	// The listener is closed now: the client must say so plainly.
	if _, err := c.Status(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("after shutdown: %v, want ErrNotRunning", err)
	}
}

func TestListenRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "[::]:0"} {
		if ln, err := Listen(addr); err == nil {
			ln.Close()
			t.Errorf("Listen(%q) accepted a non-loopback address", addr)
		}
	}
}

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST:1": true, "127.0.0.1": true, "127.1.2.3:80": true,
		"[::1]:8687": true, "::1": true, "0.0.0.0": false, "": false, "localhost.evil.example": false,
		"10.0.0.1:8687": false,
	} {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v", host, got)
		}
	}
}
