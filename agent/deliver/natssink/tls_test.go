package natssink

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pwbi/edge-agent/agent/deliver/sink"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type testPKI struct {
	caFile, certFile, keyFile string // the client's files
	serverTLS                 *tls.Config
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pwbi test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER := must(x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey))
	ca := must(x509.ParseCertificate(caDER))
	leaf := func(serial int64, server bool) (certPEM, keyPEM []byte) {
		key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature,
		}
		if server {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		} else {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
		der := must(x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey))
		kder := must(x509.MarshalECPrivateKey(key))
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := testPKI{caFile: write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))}
	sc, sk := leaf(2, true)
	cc, ck := leaf(3, false)
	p.certFile, p.keyFile = write("client.pem", cc), write("client-key.pem", ck)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	p.serverTLS = &tls.Config{
		Certificates: []tls.Certificate{must(tls.X509KeyPair(sc, sk))},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}
	return p
}

// TLS with the servers' CA and a client certificate the servers require;
// a wrong CA is an error that names the TLS keys.
func TestTLSWithCAAndClientCertificate(t *testing.T) {
	pki := newPKI(t)
	c := newCluster(t, 1, func(o *server.Options) {
		o.TLS, o.TLSVerify, o.TLSConfig = true, true, pki.serverTLS
	})
	_, js := c.client(nats.RootCAs(pki.caFile), nats.ClientCert(pki.certFile, pki.keyFile))
	createStream(t, js, streamConfig(1, time.Minute))

	cfg := Config{URLs: c.urls(), AgentID: testAgent, TLSCAFile: pki.caFile, TLSCertFile: pki.certFile, TLSKeyFile: pki.keyFile}
	s := New(cfg, Options{})
	defer s.Close()
	if a := send(t, s, records(1, 5)); a.Verdict != sink.Accepted {
		t.Fatalf("tls: %v: %v (%s)", a.Verdict, a.Err, a.Problem)
	}
	checkExactlyOnce(t, readStream(t, js, DefaultStream), testAgent, seqRange(1, 5))

	other := newPKI(t) // a CA that did not sign the server's certificate
	bad := cfg
	bad.TLSCAFile = other.caFile
	sb := New(bad, Options{})
	defer sb.Close()
	a := send(t, sb, records(6, 1))
	if a.Verdict != sink.Retry || a.Health != sink.HealthError || !strings.Contains(a.Problem, "nats.tls_ca_file") {
		t.Fatalf("wrong CA: %v %q %q (%v)", a.Verdict, a.Health, a.Problem, a.Err)
	}
}
