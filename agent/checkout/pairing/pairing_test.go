package pairing

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/internal/testutil"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func TestEnsureCreatesOnceAndKeeps(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // not there yet
	id, err := Ensure(dir, t0)
	if err != nil {
		t.Fatal(err)
	}
	key, ok := id.Certificate.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Fatalf("key %T", id.Certificate.PrivateKey)
	}
	leaf := id.Certificate.Leaf
	fp := sha256.Sum256(leaf.Raw)
	pin := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	if id.Fingerprint != hex.EncodeToString(fp[:]) || id.KeyPin != hex.EncodeToString(pin[:]) {
		t.Fatal("fingerprints")
	}
	if !leaf.NotAfter.Equal(t0.Add(Validity).Truncate(time.Second)) || leaf.NotBefore.After(t0) || leaf.IsCA {
		t.Fatalf("certificate %v – %v CA %v", leaf.NotBefore, leaf.NotAfter, leaf.IsCA)
	}
	if err := leaf.VerifyHostname("localhost"); err != nil {
		t.Errorf("names: %v", err)
	}
	fi, err := os.Stat(Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// Later: the same identity, not a new one.
	again, err := Ensure(dir, t0.Add(24*time.Hour))
	if err != nil || again.Fingerprint != id.Fingerprint {
		t.Fatalf("second Ensure: %v %s", err, again.Fingerprint)
	}
	if got, err := Load(dir); err != nil || got.Fingerprint != id.Fingerprint {
		t.Fatalf("Load: %v", err)
	}
}

// Two processes (the agent starting, `tablet add`) creating the identity
// at once agree on one.
func TestEnsureConcurrent(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	fps := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id, err := Ensure(dir, t0)
			errs[i] = err
			if err == nil {
				fps[i] = id.Fingerprint
			}
		})
	}
	wg.Wait()
	disk, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if errs[i] != nil || fps[i] != disk.Fingerprint {
			t.Fatalf("Ensure %d: %v %s, file %s", i, errs[i], fps[i], disk.Fingerprint)
		}
	}
}

func TestRenewKeepsKey(t *testing.T) {
	dir := t.TempDir()
	id, err := Ensure(dir, t0)
	if err != nil {
		t.Fatal(err)
	}
	early := id.NotAfter.Add(-RenewBefore - time.Hour)
	if id.Due(early) {
		t.Fatal("due too early")
	}
	if same, _ := Ensure(dir, early); same.Fingerprint != id.Fingerprint {
		t.Fatal("renewed too early")
	}
	at := id.NotAfter.Add(-RenewBefore + time.Hour)
	renewed, err := Ensure(dir, at)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.Fingerprint == id.Fingerprint || renewed.KeyPin != id.KeyPin || !renewed.NotAfter.After(id.NotAfter) {
		t.Fatalf("renewal: fingerprint %s→%s pin %s→%s end %v→%v", id.Fingerprint, renewed.Fingerprint,
			id.KeyPin, renewed.KeyPin, id.NotAfter, renewed.NotAfter)
	}
	if disk, _ := Load(dir); disk.Fingerprint != renewed.Fingerprint {
		t.Fatal("the renewal is not on disk")
	}
}

// foreignPEM is a key and certificate an administrator made.
func foreignPEM(t *testing.T, notAfter time.Time) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "cafe-pc.lan"},
		NotBefore: t0.Add(-time.Hour), NotAfter: notAfter, DNSNames: []string{"cafe-pc.lan"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	pem.Encode(&b, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return b.Bytes()
}

func TestForeignIdentityNotRenewed(t *testing.T) {
	dir := t.TempDir()
	data := foreignPEM(t, t0.Add(24*time.Hour))
	if err := os.WriteFile(Path(dir), data, 0o600); err != nil {
		t.Fatal(err)
	}
	id, err := Ensure(dir, t0)
	if err != nil {
		t.Fatal(err)
	}
	if id.Due(t0) || id.Certificate.Leaf.Subject.CommonName != "cafe-pc.lan" {
		t.Fatalf("foreign identity: due %v %v", id.Due(t0), id.Certificate.Leaf.Subject)
	}
	if disk, _ := os.ReadFile(Path(dir)); !bytes.Equal(disk, data) {
		t.Fatal("the administrator's file was changed")
	}
}

func TestBadFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	other, _ := Ensure(t.TempDir(), t0)
	for name, data := range map[string][]byte{
		"empty":        {},
		"garbage":      []byte("not pem"),
		"cert only":    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.Certificate.Certificate[0]}),
		"mismatch key": mismatched(t, other),
	} {
		if err := os.WriteFile(Path(dir), data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Ensure(dir, t0); err == nil {
			t.Errorf("%s: no error", name)
		}
		if disk, _ := os.ReadFile(Path(dir)); !bytes.Equal(disk, data) {
			t.Errorf("%s: the file was overwritten", name)
		}
	}
	if err := os.Remove(Path(dir)); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(Path(dir), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(dir, t0); err == nil {
		t.Error("a directory in place of the file: no error")
	}
}

// mismatched is other's certificate with a new key.
func mismatched(t *testing.T, other *Identity) []byte {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pk, _ := x509.MarshalPKCS8PrivateKey(key)
	return append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.Certificate.Certificate[0]})...)
}

// pinnedClient is a tablet that trusts only the certificate whose SHA-256
// is fp (the pairing code's sha256).
func pinnedClient(fp string) *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true, // replaced by the pin check below
		VerifyConnection: func(cs tls.ConnectionState) error {
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if hex.EncodeToString(sum[:]) != fp {
				return errors.New("certificate does not match the pairing code")
			}
			return nil
		},
	}
}

// handshake connects to ln with cfg and returns the server certificate's
// fingerprint.
func handshake(t *testing.T, addr string, cfg *tls.Config) (string, error) {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	sum := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].Raw)
	return hex.EncodeToString(sum[:]), nil
}

func serveTLS(t *testing.T, m *Manager) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", m.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.(*tls.Conn).Handshake()
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// TestManagerRenewsWhileRunning: the running gateway renews its
// certificate before it ends (same key), and handshakes get the new one
// at once, without a restart.
func TestManagerRenewsWhileRunning(t *testing.T) {
	dir := t.TempDir()
	clock := clockwork.NewFakeClockAt(t0)
	logs := &testutil.SyncBuffer{}
	m, err := NewManager(dir, clock, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	first := m.Identity()
	addr := serveTLS(t, m)
	if fp, err := handshake(t, addr, pinnedClient(first.Fingerprint)); err != nil || fp != first.Fingerprint {
		t.Fatalf("pinned handshake: %v", err)
	}
	if _, err := handshake(t, addr, pinnedClient(strings.Repeat("0", 64))); err == nil {
		t.Fatal("a client pinning another certificate connected")
	}
	if _, err := handshake(t, addr, &tls.Config{}); err == nil {
		t.Fatal("a client trusting the system roots accepted the self-signed certificate")
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	// Up to the renewal window: nothing changes.
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(CheckEvery)
	if err := clock.BlockUntilContext(ctx, 1); err != nil { // checked, waiting again
		t.Fatal(err)
	}
	if m.Identity().Fingerprint != first.Fingerprint {
		t.Fatal("renewed too early")
	}
	clock.Advance(first.NotAfter.Sub(clock.Now()) - RenewBefore + time.Minute)
	testutil.WaitFor(t, "renewal", 30*time.Second, func() bool { return m.Identity().Fingerprint != first.Fingerprint })
	second := m.Identity()
	if second.KeyPin != first.KeyPin || !second.NotAfter.After(first.NotAfter) {
		t.Fatalf("renewal changed the key or not the end: %+v", second)
	}
	if fp, err := handshake(t, addr, pinnedClient(second.Fingerprint)); err != nil || fp != second.Fingerprint {
		t.Fatalf("handshake after renewal: %v", err)
	}
	if disk, err := Load(dir); err != nil || disk.Fingerprint != second.Fingerprint {
		t.Fatalf("the renewal is not on disk: %v", err)
	}
	if !strings.Contains(logs.String(), "Checkout TLS certificate renewed") {
		t.Error("no log line")
	}
}

// TestManagerFollowsFile: a file an administrator puts in place is taken
// at the next check; a deleted one is written again from memory.
func TestManagerFollowsFile(t *testing.T) {
	dir := t.TempDir()
	m, err := NewManager(dir, clockwork.NewFakeClockAt(t0), nil)
	if err != nil {
		t.Fatal(err)
	}
	first := m.Identity()
	if err := os.Remove(Path(dir)); err != nil {
		t.Fatal(err)
	}
	if err := m.Check(); err != nil {
		t.Fatal(err)
	}
	if disk, err := Load(dir); err != nil || disk.Fingerprint != first.Fingerprint || m.Identity().Fingerprint != first.Fingerprint {
		t.Fatalf("deleted file: %v", err)
	}
	if err := os.WriteFile(Path(dir), []byte("broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.Check(); err == nil || m.Identity().Fingerprint != first.Fingerprint {
		t.Fatalf("broken file: %v, serving %s", err, m.Identity().Fingerprint)
	}
	if err := os.WriteFile(Path(dir), foreignPEM(t, t0.Add(365*24*time.Hour)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.Check(); err != nil {
		t.Fatal(err)
	}
	if m.Identity().Certificate.Leaf.Subject.CommonName != "cafe-pc.lan" {
		t.Fatal("the administrator's certificate was not taken")
	}
}

func TestURL(t *testing.T) {
	id, err := Ensure(t.TempDir(), t0)
	if err != nil {
		t.Fatal(err)
	}
	const token = "pwbt_AbC-d_e0123456789012345678901234567890123"
	u := URL("192.168.1.20:8686", token, id)
	want := "pwbi-checkout://192.168.1.20:8686?v=1&scheme=https&token=" + token + "&sha256=" + id.Fingerprint + "&spki=" + id.KeyPin
	if u != want {
		t.Fatalf("URL\n got %s\nwant %s", u, want)
	}
	p, err := url.Parse(u)
	if err != nil || p.Scheme != URLScheme || p.Host != "192.168.1.20:8686" || p.Query().Get("token") != token {
		t.Fatalf("parse: %v %+v", err, p)
	}
	if u := URL("[fd00::20]:8686", token, nil); u != "pwbi-checkout://[fd00::20]:8686?v=1&scheme=http&token="+token {
		t.Fatalf("plain: %s", u)
	}
	if got := DisplayFingerprint("ab01ff"); got != "AB:01:FF" {
		t.Fatalf("display %q", got)
	}
}

func FuzzParse(f *testing.F) {
	id, err := Ensure(f.TempDir(), t0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(id.raw)
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parse(data)
		if err != nil {
			return
		}
		// Accepted: a key that matches its certificate, fingerprints of
		// that certificate.
		sum := sha256.Sum256(got.Certificate.Leaf.Raw)
		if got.Fingerprint != hex.EncodeToString(sum[:]) || len(got.KeyPin) != 64 {
			t.Fatalf("fingerprints of %q", data)
		}
	})
}

func ExampleURL() {
	fmt.Println(URL("192.168.1.20:8686", "pwbt_TOKEN", nil))
	// Output: pwbi-checkout://192.168.1.20:8686?v=1&scheme=http&token=pwbt_TOKEN
}

// The manager says when the certificate the tablets pin needs a person:
// nothing while the agent's own certificate is fresh or its renewal is on
// its way; a note for someone else's certificate that ends soon and for an
// own one whose renewal fails; an error once it has expired. (Before, all
// of this was only logged and the status stayed ok.)
func TestManagerProblem(t *testing.T) {
	t.Run("own and fresh", func(t *testing.T) {
		m, err := NewManager(t.TempDir(), clockwork.NewFakeClockAt(t0), nil)
		if err != nil {
			t.Fatal(err)
		}
		if d, exp := m.Problem(); d != "" || exp {
			t.Errorf("fresh identity: %q %v", d, exp)
		}
	})
	t.Run("foreign, ending then expired", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(Path(dir), foreignPEM(t, t0.Add(24*time.Hour)), 0o600); err != nil {
			t.Fatal(err)
		}
		clock := clockwork.NewFakeClockAt(t0)
		m, err := NewManager(dir, clock, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d, exp := m.Problem(); exp || !strings.Contains(d, "not the agent's to renew") {
			t.Errorf("foreign, ending: %q %v", d, exp)
		}
		clock.Advance(25 * time.Hour)
		if d, exp := m.Problem(); !exp || !strings.Contains(d, "expired") {
			t.Errorf("foreign, expired: %q %v", d, exp)
		}
	})
	t.Run("own, renewal failing", func(t *testing.T) {
		dir := t.TempDir()
		clock := clockwork.NewFakeClockAt(t0)
		m, err := NewManager(dir, clock, nil)
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(m.Identity().NotAfter.Sub(t0) - RenewBefore + time.Hour)
		if d, _ := m.Problem(); d != "" {
			t.Errorf("due, renewal not yet tried: %q", d)
		}
		// The file replaced by garbage: Check fails, the old identity stays.
		if err := os.WriteFile(Path(dir), []byte("not pem"), 0o600); err != nil {
			t.Fatal(err)
		}
		if m.Check() == nil {
			t.Fatal("Check of a garbage file succeeded")
		}
		if d, exp := m.Problem(); exp || !strings.Contains(d, "renewing it failed") {
			t.Errorf("renewal failing: %q %v", d, exp)
		}
	})
}
