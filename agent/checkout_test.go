package agent

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/checkout/pairing"
)

// TestSchemeListenerSwitch: turning TLS on in place (a reload that sets
// checkout.tls, or moves nothing but the scheme) closes the keep-alive
// connections accepted in plain HTTP, so none carries a token in plain
// text afterwards; new connections speak TLS. And back.
func TestSchemeListenerSwitch(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	id, err := pairing.Ensure(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{id.Certificate}}
	sl := newSchemeListener(raw, nil)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			io.WriteString(w, "tls")
			return
		}
		io.WriteString(w, "plain")
	})}
	go srv.Serve(sl)
	t.Cleanup(func() { srv.Close() })
	addr := raw.Addr().String()

	// A plain keep-alive connection.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	get := func() (string, error) {
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return "", err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if body, err := get(); err != nil || body != "plain" {
		t.Fatalf("plain: %q %v", body, err)
	}
	if sl.scheme() != "http" || sl.setTLS(nil) {
		t.Fatal("no change reported as one")
	}

	if !sl.setTLS(tlsCfg) || sl.scheme() != "https" {
		t.Fatal("switch to TLS not reported")
	}
	// The plain connection is gone.
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if body, err := get(); err == nil {
		t.Fatalf("the plain keep-alive connection still answers: %q", body)
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the plain connection hangs instead of being closed")
	}
	// New connections speak TLS.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := hc.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "tls" {
		t.Fatalf("TLS: %q", b)
	}

	// And back: the TLS connection is closed, plain works again.
	if !sl.setTLS(nil) {
		t.Fatal("switch to plain not reported")
	}
	resp, err = http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "plain" {
		t.Fatalf("plain again: %q", b)
	}
	sl.mu.Lock()
	n := 0
	for c := range sl.conns {
		if c.tls {
			n++
		}
	}
	sl.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d TLS connections left open", n)
	}
}
