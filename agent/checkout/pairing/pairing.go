// Package pairing is how a tablet on the shop's network pairs with the
// checkout gateway (SPEC §7.2): the gateway's TLS identity, and the
// pairing code `pwbi-agent tablet add` shows as a QR code.
//
// Cafes often share one Wi-Fi with their customers, so a tablet's token
// must never cross it in plain text. On a LAN address the gateway serves
// TLS with a key and a self-signed certificate it keeps in data_dir
// (FileName): created on first use, by the agent or by `tablet add`,
// whichever comes first, and renewed with the same key before it expires
// (RenewBefore). No public CA can vouch for a PC on a shop LAN, so the
// tablet trusts this one certificate by its fingerprint, which it gets
// from the pairing code together with the address and its token: the
// certificate's SHA-256, and the SHA-256 of its public key (SPKI), which
// survives renewals because the key is kept. docs/checkout.md describes
// the code for tablet developers.
//
// The package imports nothing of the agent.
package pairing

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// FileName is the identity's file in data_dir: a PKCS #8 "PRIVATE KEY"
// PEM block and the "CERTIFICATE" block(s), mode 0600. An administrator may
// replace it with a key and certificate of their own in the same form; the
// agent picks it up (see Manager) and renews only its own.
const FileName = "checkout-tls.pem"

// Lifetime of the gateway's certificate. Tablets pin it, so it lives long;
// it is renewed with the same key RenewBefore its end, so a tablet that
// pins the key (the SPKI pin) never notices, and one that pins the
// certificate needs pairing again once every few years.
const (
	Validity    = 3 * 365 * 24 * time.Hour
	RenewBefore = 60 * 24 * time.Hour
	// backdate covers tablets whose clock is a little behind.
	backdate = time.Hour
	// maxFileSize bounds what is read of the file.
	maxFileSize = 64 << 10
)

// ownIssuer marks certificates this package made (and may renew): their
// subject's organisation.
const ownIssuer = "PWBI Edge Agent"

// Identity is the gateway's TLS identity.
type Identity struct {
	Certificate tls.Certificate // with Leaf
	// Fingerprint is the lowercase hex SHA-256 of the certificate (DER),
	// as `openssl x509 -fingerprint -sha256` shows it without colons.
	Fingerprint string
	// KeyPin is the lowercase hex SHA-256 of the certificate's
	// SubjectPublicKeyInfo: the same after a renewal.
	KeyPin   string
	NotAfter time.Time
	// own: made by this package, so it may be renewed.
	own bool
	raw []byte // the file's content
}

// Path returns the identity file's path in dataDir.
func Path(dataDir string) string { return filepath.Join(dataDir, FileName) }

// DisplayFingerprint writes a hex fingerprint as people compare it: upper
// case, in pairs separated by colons ("AB:CD:…").
func DisplayFingerprint(hexFP string) string {
	s := strings.ToUpper(hexFP)
	var b strings.Builder
	for i := 0; i+1 < len(s); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(s[i : i+2])
	}
	return b.String()
}

// Due reports whether the identity should be renewed at now: it is this
// package's own and ends within RenewBefore.
func (id *Identity) Due(now time.Time) bool {
	return id.own && !now.Before(id.NotAfter.Add(-RenewBefore))
}

// parse reads an identity file: one private key and its certificate.
func parse(data []byte) (*Identity, error) {
	cert, err := tls.X509KeyPair(data, data)
	if err != nil {
		return nil, fmt.Errorf("not a key and certificate in PEM: %w", err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("certificate: %w", err)
		}
		cert.Leaf = leaf
	}
	fp := sha256.Sum256(leaf.Raw)
	pin := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	_, isEC := cert.PrivateKey.(*ecdsa.PrivateKey)
	return &Identity{
		Certificate: cert,
		Fingerprint: hex.EncodeToString(fp[:]),
		KeyPin:      hex.EncodeToString(pin[:]),
		NotAfter:    leaf.NotAfter,
		own:         isEC && len(leaf.Subject.Organization) == 1 && leaf.Subject.Organization[0] == ownIssuer,
		raw:         data,
	}, nil
}

// Load reads the identity in dataDir. An absent file gives an error that
// errors.Is(err, fs.ErrNotExist).
func Load(dataDir string) (*Identity, error) {
	data, err := readFile(Path(dataDir))
	if err != nil {
		return nil, err
	}
	id, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Path(dataDir), err)
	}
	return id, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read TLS identity: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read TLS identity: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxFileSize {
		return nil, fmt.Errorf("read TLS identity: %s is not a regular file of at most %d bytes", path, maxFileSize)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, fmt.Errorf("read TLS identity: %w", err)
	}
	return buf.Bytes(), nil
}

// Ensure returns the identity in dataDir: the one there, renewed (same
// key, new certificate) if it is due at now, or a new one if there is
// none. Two processes that create it at once agree: the first file
// written wins and the other reads it.
func Ensure(dataDir string, now time.Time) (*Identity, error) {
	id, err := Load(dataDir)
	switch {
	case err == nil && id.Due(now):
		return renew(dataDir, id, now)
	case err == nil:
		return id, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create TLS identity: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create TLS identity: %w", err)
	}
	data, err := encode(key, now)
	if err != nil {
		return nil, err
	}
	if err := writeNew(dataDir, data); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return Load(dataDir) // another process was first
		}
		return nil, err
	}
	return Load(dataDir)
}

// renew replaces the certificate of id, keeping its key.
func renew(dataDir string, id *Identity, now time.Time) (*Identity, error) {
	key, ok := id.Certificate.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("renew TLS identity: not an ECDSA key")
	}
	data, err := encode(key, now)
	if err != nil {
		return nil, err
	}
	if err := writeOver(dataDir, data); err != nil {
		return nil, err
	}
	return Load(dataDir)
}

// encode makes a self-signed certificate for key, valid from now, and
// returns the key and the certificate in PEM.
func encode(key *ecdsa.PrivateKey, now time.Time) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("create TLS certificate: %w", err)
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{ownIssuer}, CommonName: "PWBI checkout gateway"},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		// The tablet pins the certificate: names do not identify the
		// gateway (its address may change), these are for people.
		DNSNames:              dnsNames(host),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create TLS certificate: %w", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("create TLS certificate: %w", err)
	}
	var b bytes.Buffer
	pem.Encode(&b, &pem.Block{Type: "PRIVATE KEY", Bytes: pk})  //nolint:errcheck // bytes.Buffer
	pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der}) //nolint:errcheck // bytes.Buffer
	return b.Bytes(), nil
}

func dnsNames(host string) []string {
	names := []string{"localhost"}
	// Only a name a certificate can hold.
	if host != "" && host != "localhost" && !strings.ContainsAny(host, " _/\\") {
		names = append(names, host)
	}
	return names
}

// writeTemp writes data to a new file in dataDir, owned like dataDir.
func writeTemp(dataDir string, data []byte) (string, error) {
	f, err := os.CreateTemp(dataDir, "."+FileName+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("write TLS identity: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = ownLikeDir(f, dataDir)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("write TLS identity: %w", err)
	}
	return tmp, nil
}

// writeNew puts data at Path(dataDir) unless a file is there already
// (fs.ErrExist): a hard link of a complete temporary file, so nobody ever
// reads half a file and of two writers one wins.
func writeNew(dataDir string, data []byte) error {
	tmp, err := writeTemp(dataDir, data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, Path(dataDir)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		// A file system without hard links: a rename, which may replace
		// a file another process has just written (it then reads ours).
		if _, serr := os.Stat(Path(dataDir)); serr == nil {
			return fs.ErrExist
		}
		if err := os.Rename(tmp, Path(dataDir)); err != nil {
			return fmt.Errorf("write TLS identity: %w", err)
		}
	}
	return nil
}

// writeOver replaces the file at Path(dataDir) by data, atomically.
func writeOver(dataDir string, data []byte) error {
	tmp, err := writeTemp(dataDir, data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, Path(dataDir)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write TLS identity: %w", err)
	}
	return nil
}

// Scheme values of a pairing code.
const (
	SchemeHTTPS = "https"
	SchemeHTTP  = "http"
)

// URLScheme is the scheme of the pairing code.
const URLScheme = "pwbi-checkout"

// URL returns the pairing code of a tablet (docs/checkout.md):
//
//	pwbi-checkout://HOST:PORT?v=1&scheme=https&token=TOKEN&sha256=HEX&spki=HEX
//
// hostPort is where the tablet reaches the gateway; id is nil when the
// gateway serves plain HTTP (scheme=http, no fingerprints).
func URL(hostPort, token string, id *Identity) string {
	scheme := SchemeHTTP
	if id != nil {
		scheme = SchemeHTTPS
	}
	s := URLScheme + "://" + hostPort + "?v=1&scheme=" + scheme + "&token=" + url.QueryEscape(token)
	if id != nil {
		s += "&sha256=" + id.Fingerprint + "&spki=" + id.KeyPin
	}
	return s
}
