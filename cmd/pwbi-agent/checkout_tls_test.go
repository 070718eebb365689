package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/checkout/mokkafake"
	"github.com/pwbi/edge-agent/agent/checkout/pairing"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/cmd/pwbi-agent/internal/cli"
	"github.com/pwbi/edge-agent/internal/testutil"
)

// Issue 12, point 10: tablets on the shop's Wi-Fi. On a LAN address the
// real binary serves TLS with its own certificate in data_dir, `tablet
// add` puts that certificate's fingerprint in the pairing QR code, a
// tablet that pins it gets through and one that pins anything else does
// not; plain HTTP needs checkout.tls = false and is a warning in the
// status; failed token attempts are limited per address.

// tlsEnv is an agent whose gateway listens on every address ("0.0.0.0",
// which is not a loopback address, so it serves TLS); tablets reach it on
// 127.0.0.1.
type tlsEnv struct {
	*testEnv
	fake   *mokkafake.Server
	listen string // checkout.listen
	addr   string // where the test's tablets connect
}

func newTLSEnv(t *testing.T, extra string) *tlsEnv {
	t.Helper()
	fake := mokkafake.NewServer(t, mokkafake.Options{StoreID: "store-tls", SecretKey: "tls-mokka-secret-key-77c1"})
	_, port, err := net.SplitHostPort(testutil.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(firstTabletToken))
	listen := "0.0.0.0:" + port
	e := newEnvWith(t, fmt.Sprintf(`[moka]
enabled = false
[checkout]
enabled = true
listen = %q
base_url = %q
store_id = %q
secret_key = %q
timeout = "3s"
%s
[[checkout.tablets]]
name = "Front counter"
token_sha256 = %q
`, listen, fake.URL(), fake.StoreID(), fake.SecretKey(), extra, hex.EncodeToString(sum[:])))
	return &tlsEnv{testEnv: e, fake: fake, listen: listen, addr: "127.0.0.1:" + port}
}

// pinned is a tablet's TLS configuration, as docs/checkout.md shows it:
// the certificate is trusted when its SHA-256 is the pairing code's
// sha256, and only then (no CA, no host name: the pin is the identity).
func pinned(sha256Hex string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by VerifyConnection's pin check
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if hex.EncodeToString(sum[:]) != sha256Hex {
				return errors.New("the gateway's certificate is not the paired one")
			}
			return nil
		},
	}
}

// tabletClient is an HTTPS client pinning sha256Hex, connecting from
// source (a loopback address; "" for the default).
func tabletClient(sha256Hex, source string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if source != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(source)}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: d.DialContext, TLSClientConfig: pinned(sha256Hex), ForceAttemptHTTP2: false,
	}}
}

func callWith(hc *http.Client, url, token, body string) (int, http.Header, string, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, nil, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), nil
}

func (e *tlsEnv) checkoutStatus(t *testing.T) localapi.CheckoutStatus {
	t.Helper()
	st, err := e.status(t)
	if err != nil {
		return localapi.CheckoutStatus{}
	}
	return st.Checkout
}

var endpointRE = regexp.MustCompile(`Tablets call https://(\S+)/mokka/`)

func TestCheckoutTLS(t *testing.T) {
	e := newTLSEnv(t, "")
	p := e.start(t)
	var cs localapi.CheckoutStatus
	testutil.WaitFor(t, "gateway serving HTTPS", 60*time.Second, func() bool {
		cs = e.checkoutStatus(t)
		return cs.Scheme == "https" && cs.TLSFingerprint != ""
	})
	id, err := pairing.Load(e.dataDir)
	if err != nil {
		t.Fatalf("no TLS identity in data_dir: %v", err)
	}
	if cs.TLSFingerprint != id.Fingerprint || cs.TLSKeyPin != id.KeyPin || cs.TLSNotAfter == nil || cs.Warning != "" {
		t.Fatalf("status %+v, file %s", cs, id.Fingerprint)
	}
	if fi, _ := os.Stat(pairing.Path(e.dataDir)); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", fi.Mode().Perm())
	}
	statusURL := "https://" + e.addr + "/mokka/factoring/v1/status"

	t.Run("a tablet pinning the certificate gets through", func(t *testing.T) {
		st, _, body, err := callWith(tabletClient(id.Fingerprint, ""), statusURL, firstTabletToken, `{"order_id":"T-1"}`)
		if err != nil || st != 200 || !strings.Contains(body, `"status":24`) {
			t.Fatalf("pinned call: %v HTTP %d %s", err, st, body)
		}
		if r := e.fake.RequestsFor("factoring/v1/status"); len(r) != 1 || r[0].Signature == "" {
			t.Fatalf("Mokka got %+v", r)
		}
	})

	t.Run("a tablet pinning another certificate refuses it", func(t *testing.T) {
		other := strings.Repeat("ab", 32)
		if _, _, _, err := callWith(tabletClient(other, ""), statusURL, firstTabletToken, `{"order_id":"T-1"}`); err == nil ||
			!strings.Contains(err.Error(), "not the paired one") {
			t.Fatalf("wrong pin: %v", err)
		}
		// Nor does a client that trusts the usual CAs accept it.
		if _, err := http.Get("https://" + e.addr + "/mokka/orders/x"); err == nil {
			t.Fatal("the self-signed certificate passed a CA check")
		}
		// Plain HTTP is not served: the request gets no further than the
		// TLS layer's refusal.
		st, _, _, err := callWith(http.DefaultClient, "http://"+e.addr+"/mokka/factoring/v1/status", firstTabletToken, `{"order_id":"T-1"}`)
		if err == nil && st != http.StatusBadRequest {
			t.Fatalf("plain HTTP on the TLS port: HTTP %d", st)
		}
		if n := len(e.fake.RequestsFor("factoring/v1/status")); n != 1 {
			t.Fatalf("Mokka got %d Status calls", n)
		}
	})

	var added string
	t.Run("tablet add pairs the certificate", func(t *testing.T) {
		out, err := runCLI(t, "tablet", "add", "Terrace tablet", "--config", e.cfgPath)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		added = tokenRE.FindString(string(out))
		m := endpointRE.FindSubmatch(out)
		if added == "" || strings.Count(string(out), added) != 1 || m == nil {
			t.Fatalf("output:\n%s", out)
		}
		hostPort := string(m[1])
		if _, port, _ := net.SplitHostPort(hostPort); strings.HasPrefix(hostPort, "0.0.0.0") || "127.0.0.1:"+port != e.addr {
			t.Fatalf("the pairing address %s", hostPort)
		}
		// The QR code is the pairing code of this gateway: its address,
		// the new token and the served certificate's fingerprints.
		var qr bytes.Buffer
		cli.QRCode(&qr, pairing.URL(hostPort, added, id))
		if !strings.Contains(string(out), qr.String()) || !strings.Contains(string(out), pairing.DisplayFingerprint(id.Fingerprint)) {
			t.Fatalf("the QR code is not the pairing code:\n%s", out)
		}
		testutil.WaitFor(t, "new token accepted", 30*time.Second, func() bool {
			st, _, _, err := callWith(tabletClient(id.Fingerprint, ""), statusURL, added, `{"order_id":"T-2"}`)
			return err == nil && st == 200
		})
		out, err = runCLI(t, "tablet", "list", "--config", e.cfgPath)
		if err != nil || !strings.Contains(string(out), pairing.DisplayFingerprint(id.Fingerprint)) {
			t.Fatalf("list: %v\n%s", err, out)
		}
	})

	t.Run("token guessing is limited per address", func(t *testing.T) {
		// The guesser connects from 127.0.0.2, the tablet from 127.0.0.1.
		guesser := tabletClient(id.Fingerprint, "127.0.0.2")
		tablet := tabletClient(id.Fingerprint, "127.0.0.1")
		statusCalls := len(e.fake.RequestsFor("factoring/v1/status"))
		var st int
		var hdr http.Header
		for i := 0; i < 30 && st != http.StatusTooManyRequests; i++ {
			st, hdr, _, err = callWith(guesser, statusURL, fmt.Sprintf("pwbt_guess-%02d", i), `{"order_id":"T-1"}`)
			if err != nil {
				t.Fatal(err)
			}
			if st != http.StatusUnauthorized && st != http.StatusTooManyRequests {
				t.Fatalf("guess %d: HTTP %d", i, st)
			}
		}
		if st != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
			t.Fatalf("guessing was never limited: HTTP %d Retry-After %q", st, hdr.Get("Retry-After"))
		}
		// The address is paused, even for a right token ...
		if st, _, _, _ := callWith(guesser, statusURL, added, `{"order_id":"T-1"}`); st != http.StatusTooManyRequests {
			t.Fatalf("right token from the guessing address: HTTP %d", st)
		}
		// ... the tablet at another address is not.
		if st, _, _, err := callWith(tablet, statusURL, firstTabletToken, `{"order_id":"T-1"}`); err != nil || st != 200 {
			t.Fatalf("the tablet: %v HTTP %d", err, st)
		}
		if n := len(e.fake.RequestsFor("factoring/v1/status")) - statusCalls; n != 1 {
			t.Fatalf("Mokka got %d Status calls, want the tablet's 1", n)
		}
	})

	t.Run("tls = false serves plain HTTP with a warning", func(t *testing.T) {
		cfg, _ := os.ReadFile(e.cfgPath)
		plain := strings.Replace(string(cfg), `timeout = "3s"`, "timeout = \"3s\"\ntls = false", 1)
		if err := os.WriteFile(e.cfgPath, []byte(plain), 0o600); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, "plain HTTP", 30*time.Second, func() bool {
			cs = e.checkoutStatus(t)
			return cs.Scheme == "http"
		})
		if !strings.Contains(cs.Warning, "plain text") || cs.TLSFingerprint != "" {
			t.Fatalf("status %+v", cs)
		}
		// The warning is a note among the problems, not a stall.
		if st, err := e.status(t); err != nil || !strings.Contains(strings.Join(st.Problems, "\n"), "plain text") || st.State == localapi.StateError {
			t.Fatalf("plain HTTP on the LAN: state %q, problems %q (%v)", st.State, st.Problems, err)
		}
		if st, _, _, err := callWith(http.DefaultClient, "http://"+e.addr+"/mokka/factoring/v1/status", firstTabletToken, `{"order_id":"T-1"}`); err != nil || st != 200 {
			t.Fatalf("plain call: %v HTTP %d", err, st)
		}
		// Back to TLS: the same certificate as before.
		if err := os.WriteFile(e.cfgPath, cfg, 0o600); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, "HTTPS again", 30*time.Second, func() bool {
			cs = e.checkoutStatus(t)
			return cs.Scheme == "https"
		})
		if cs.TLSFingerprint != id.Fingerprint || cs.Warning != "" {
			t.Fatalf("status %+v", cs)
		}
		if st, _, _, err := callWith(tabletClient(id.Fingerprint, ""), statusURL, firstTabletToken, `{"order_id":"T-1"}`); err != nil || st != 200 {
			t.Fatalf("pinned call after TLS came back: %v HTTP %d", err, st)
		}
	})

	p.stop(t)
	t.Run("logs hold no token", func(t *testing.T) {
		logs, _ := os.ReadFile(filepath.Join(e.dataDir, "logs", "agent.log"))
		for _, s := range []string{firstTabletToken, added, e.fake.SecretKey()} {
			if s != "" && (strings.Contains(string(logs), s) || strings.Contains(p.stderr.String(), s)) {
				t.Errorf("a log holds a secret (%.8s…)", s)
			}
		}
		if !strings.Contains(string(logs), "Tablet address paused after failed token attempts") {
			t.Error("no log line about the paused address")
		}
	})
}

// TestCheckoutTLSRenewedAtStart: a certificate of the agent's that ends
// within the renewal window is renewed when the agent starts, with the
// same key (the public key pin stays; the certificate fingerprint moves).
func TestCheckoutTLSRenewedAtStart(t *testing.T) {
	e := newTLSEnv(t, "")
	old, err := pairing.Ensure(e.dataDir, time.Now().Add(-pairing.Validity+30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	e.start(t)
	var cs localapi.CheckoutStatus
	testutil.WaitFor(t, "gateway serving HTTPS", 60*time.Second, func() bool {
		cs = e.checkoutStatus(t)
		return cs.Scheme == "https" && cs.TLSFingerprint != ""
	})
	if cs.TLSFingerprint == old.Fingerprint || cs.TLSKeyPin != old.KeyPin || !cs.TLSNotAfter.After(old.NotAfter) {
		t.Fatalf("not renewed: %+v (old %s until %v)", cs, old.Fingerprint, old.NotAfter)
	}
	// A tablet that pinned the key gets through; the served certificate
	// is the renewed one.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, // replaced by the SPKI pin check
		VerifyConnection: func(cs tls.ConnectionState) error {
			sum := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
			if hex.EncodeToString(sum[:]) != old.KeyPin {
				return errors.New("not the paired key")
			}
			return nil
		},
	}}}
	if st, _, _, err := callWith(hc, "https://"+e.addr+"/mokka/factoring/v1/status", firstTabletToken, `{"order_id":"R-1"}`); err != nil || st != 200 {
		t.Fatalf("SPKI-pinned call: %v HTTP %d", err, st)
	}
}

// TestCheckoutTLSCannotStart: when the TLS identity cannot be made the
// gateway does not fall back to plain HTTP: it does not listen, and the
// status says why.
func TestCheckoutTLSCannotStart(t *testing.T) {
	e := newTLSEnv(t, "")
	if err := os.MkdirAll(e.dataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pairing.Path(e.dataDir), []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.start(t)
	var st localapi.Status
	testutil.WaitFor(t, "status", 60*time.Second, func() bool {
		var err error
		st, err = e.status(t)
		return err == nil
	})
	if st.Checkout.Scheme != "" || !strings.Contains(strings.Join(st.Problems, "\n"), "TLS") || st.State != "error" {
		t.Fatalf("state %s, checkout %+v, problems %q", st.State, st.Checkout, st.Problems)
	}
	conn, err := net.DialTimeout("tcp", e.addr, 2*time.Second)
	if err == nil {
		conn.Close()
		t.Fatal("the gateway listens without TLS")
	}
}
