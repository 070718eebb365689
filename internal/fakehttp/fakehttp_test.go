package fakehttp

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestServesAHandlerOnLoopback(t *testing.T) {
	var s Server
	if s.URL() != "" {
		t.Fatalf("URL before Listen = %q", s.URL())
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello "+r.URL.Path) })
	if err := s.Listen("", h, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u := s.URL()
	if !strings.HasPrefix(u, "http://127.0.0.1:") || strings.HasSuffix(u, ":0") {
		t.Fatalf("URL = %q", u)
	}
	resp, err := http.Get(u + "/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hello /x" {
		t.Fatalf("answer %q", b)
	}
}

// Listen takes a given address, and says so when it is taken.
func TestListenOnAnAddress(t *testing.T) {
	ln, err := net.Listen("tcp", Loopback)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var busy Server
	if err := busy.Listen(ln.Addr().String(), http.NotFoundHandler(), nil); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("Listen on a taken address: %v", err)
	}
	busy.Close() // nothing to close: no effect

	var s Server
	if err := s.Listen("localhost:0", http.NotFoundHandler(), nil); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if u := s.URL(); !strings.HasPrefix(u, "http://") || strings.HasSuffix(u, ":0") {
		t.Fatalf("URL = %q", u)
	}
}

// Close cuts a request in progress, returns once serving has stopped, may
// be called again, and keeps the URL.
func TestCloseCutsRequestsAndIsIdempotent(t *testing.T) {
	var s Server
	entered := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		select {
		case <-release:
		case <-r.Context().Done(): // the connection was cut
		}
	})
	if err := s.Listen("", h, nil); err != nil {
		t.Fatal(err)
	}
	u := s.URL()
	errc := make(chan error, 1)
	go func() {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-entered
	s.Close()
	if err := <-errc; err == nil {
		t.Fatal("the request in progress got an answer after Close")
	}
	s.Close()
	if s.URL() != u {
		t.Fatalf("URL after Close = %q, want %q", s.URL(), u)
	}
	c := http.Client{Timeout: 10 * time.Second}
	if _, err := c.Get(u); err == nil {
		t.Fatalf("a closed server answered: %v", err)
	}
}

func TestCloseBeforeListen(t *testing.T) {
	var s Server
	s.Close()
	if s.URL() != "" {
		t.Fatal("URL after Close without Listen")
	}
}
