package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pwbi/edge-agent/agent/checkout/pairing"
	"github.com/pwbi/edge-agent/agent/config"
)

// tlsTabletConfig is a config whose gateway listens on a LAN address (so
// it serves TLS, unless tls says otherwise), with data_dir in a temporary
// directory. No agent runs.
func tlsTabletConfig(t *testing.T, listen, extra string) (path, dataDir string) {
	t.Helper()
	path = tabletConfig(t)
	dataDir = filepath.Join(filepath.Dir(path), "data")
	data, _ := os.ReadFile(path)
	s := strings.Replace(string(data), "version = 1\n", "version = 1\n[agent]\ndata_dir = \"data\"\n", 1)
	s = strings.Replace(s, "enabled = true\n", "enabled = true\nlisten = \""+listen+"\"\n"+extra, 1)
	if err := os.WriteFile(path, []byte(s), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(path); err != nil {
		t.Fatal(err)
	}
	return path, dataDir
}

// TestTabletAddPairsOverTLS: on a LAN address, `tablet add` makes the TLS
// identity in data_dir when the agent has not yet, and the pairing QR
// code holds the address, the token and both fingerprints of that
// certificate; `tablet list` shows the same certificate again.
func TestTabletAddPairsOverTLS(t *testing.T) {
	path, dataDir := tlsTabletConfig(t, "192.168.1.10:8686", "")
	code, out, errOut := run("tablet", "add", "Front counter", "--config", path)
	if code != 0 {
		t.Fatalf("add: %d %s %s", code, out, errOut)
	}
	id, err := pairing.Load(dataDir)
	if err != nil {
		t.Fatalf("no TLS identity in data_dir: %v", err)
	}
	tokens := tokenPattern.FindAllString(out, -1)
	if len(tokens) != 1 {
		t.Fatalf("want the token printed once:\n%s", out)
	}
	var qr bytes.Buffer
	QRCode(&qr, pairing.URL("192.168.1.10:8686", tokens[0], id))
	if !strings.Contains(out, qr.String()) {
		t.Fatalf("the QR code is not the pairing code of https://192.168.1.10:8686 with this certificate:\n%s", out)
	}
	for _, want := range []string{"https://192.168.1.10:8686/mokka/", pairing.DisplayFingerprint(id.Fingerprint), pairing.DisplayFingerprint(id.KeyPin)} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// A second tablet: the same certificate.
	if code, out, errOut := run("tablet", "add", "Terrace", "--config", path); code != 0 || !strings.Contains(out, pairing.DisplayFingerprint(id.Fingerprint)) {
		t.Fatalf("second add: %d %s %s", code, out, errOut)
	}
	code, out, _ = run("tablet", "list", "--config", path)
	if code != 0 || !strings.Contains(out, pairing.DisplayFingerprint(id.Fingerprint)) || !strings.Contains(out, "https://192.168.1.10:8686/") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	if again, _ := pairing.Load(dataDir); again.Fingerprint != id.Fingerprint {
		t.Fatal("the certificate changed")
	}
}

// TestTabletAddListensEverywhere: on "0.0.0.0" the pairing code names
// one of this PC's addresses, not 0.0.0.0.
func TestTabletAddListensEverywhere(t *testing.T) {
	path, _ := tlsTabletConfig(t, "0.0.0.0:8686", "")
	code, out, errOut := run("tablet", "add", "Front counter", "--config", path)
	if code != 0 {
		t.Fatalf("add: %d %s %s", code, out, errOut)
	}
	if strings.Contains(out, "0.0.0.0") {
		t.Fatalf("the wildcard address is offered to the tablet:\n%s", out)
	}
	hostPort, _ := pairingAddress("0.0.0.0:8686")
	if !strings.Contains(out, "https://"+hostPort+"/mokka/") || !strings.HasSuffix(hostPort, ":8686") {
		t.Fatalf("address %s:\n%s", hostPort, out)
	}
}

// TestTabletListBeforeCertificate: `tablet list` only reads: before the
// agent or `tablet add` made the certificate, it says so and makes none.
func TestTabletListBeforeCertificate(t *testing.T) {
	path, dataDir := tlsTabletConfig(t, "192.168.1.10:8686", "")
	data, _ := os.ReadFile(path) // a tablet added by hand
	if err := os.WriteFile(path, config.AddTablet(data, "Bar", strings.Repeat("ab", 32)), 0o640); err != nil {
		t.Fatal(err)
	}
	code, out, _ := run("tablet", "list", "--config", path)
	if code != 0 || !strings.Contains(out, "certificate is made when the agent starts") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	if _, err := os.Stat(pairing.Path(dataDir)); !os.IsNotExist(err) {
		t.Fatalf("list made a certificate: %v", err)
	}
}

// TestTabletAddPlainOnLAN: with checkout.tls = false the pairing code says
// http and carries no fingerprint, no certificate is made, and the
// output warns.
func TestTabletAddPlainOnLAN(t *testing.T) {
	path, dataDir := tlsTabletConfig(t, "192.168.1.10:8686", "tls = false\n")
	code, out, errOut := run("tablet", "add", "Front counter", "--config", path)
	if code != 0 {
		t.Fatalf("add: %d %s %s", code, out, errOut)
	}
	token := tokenPattern.FindString(out)
	var qr bytes.Buffer
	QRCode(&qr, pairing.URL("192.168.1.10:8686", token, nil))
	if !strings.Contains(out, qr.String()) || !strings.Contains(out, "http://192.168.1.10:8686/") || !strings.Contains(out, "plain text") {
		t.Fatalf("output:\n%s", out)
	}
	if _, err := os.Stat(pairing.Path(dataDir)); !os.IsNotExist(err) {
		t.Fatalf("a certificate was made for plain HTTP: %v", err)
	}
}

// TestTabletAddNoCertificateNoChange: when the certificate cannot be made
// (data_dir unusable), the tablet is not added.
func TestTabletAddNoCertificateNoChange(t *testing.T) {
	path, dataDir := tlsTabletConfig(t, "192.168.1.10:8686", "")
	if err := os.WriteFile(dataDir, []byte("a file where data_dir should be"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	code, out, errOut := run("tablet", "add", "Front counter", "--config", path)
	if code != 1 || !strings.Contains(errOut, "TLS certificate") || tokenPattern.MatchString(out) {
		t.Fatalf("add: %d\n%s%s", code, out, errOut)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("the config changed")
	}
}
