package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/mdp/qrterminal/v3"

	"github.com/pwbi/edge-agent/agent/checkout/pairing"
	"github.com/pwbi/edge-agent/agent/config"
	"github.com/pwbi/edge-agent/agent/localapi"
)

// TokenPrefix starts every tablet token, so a leaked one is recognisable
// (secret scanners, logs).
const TokenPrefix = "pwbt_"

// maxTabletName bounds a tablet's name (it shows in logs and order records).
const maxTabletName = 64

const tabletUsage = "Usage: pwbi-agent tablet add NAME | tablet list | tablet remove NAME [--config PATH]"

func cmdTablet(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(e.stdout, tabletUsage)
			return exitOK
		}
		fmt.Fprintln(e.stderr, tabletUsage)
		return exitUsage
	}
	switch args[0] {
	case "add":
		return cmdTabletAdd(ctx, e, args[1:])
	case "list":
		return cmdTabletList(ctx, e, args[1:])
	case "remove":
		return cmdTabletRemove(ctx, e, args[1:])
	}
	fmt.Fprintf(e.stderr, "pwbi-agent: unknown tablet command %q (add, list, remove)\n", args[0])
	return exitUsage
}

// parseArgs parses flags wherever they are among the arguments and returns
// the others; code >= 0 means the command ends now.
func parseArgs(fs *flag.FlagSet, args []string) (pos []string, code int) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK
			}
			return nil, exitUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, -1
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// oneName parses a command that takes one NAME.
func (e *env) oneName(fs *flag.FlagSet, args []string) (string, int) {
	pos, code := parseArgs(fs, args)
	if code >= 0 {
		return "", code
	}
	if len(pos) != 1 {
		fmt.Fprintln(fs.Output(), "give one tablet name (quote a name with spaces)")
		fs.Usage()
		return "", exitUsage
	}
	return pos[0], -1
}

func cmdTabletAdd(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("tablet add NAME", "Create a token for a new tablet, print it once with the tablet's pairing QR code (address, token and the TLS certificate's fingerprint), and add its SHA-256 to the config file. The running agent takes it at once.")
	name, code := e.oneName(fs, args)
	if code >= 0 {
		return code
	}
	name = strings.TrimSpace(name)
	if err := checkTabletName(name); err != nil {
		return e.fail(err)
	}
	path := configPath(*cfgFlag)
	data, cfg, code := e.loadForEdit(path)
	if code >= 0 {
		return code
	}
	for _, t := range cfg.Checkout.Tablets {
		if config.SameTabletName(t.Name, name) {
			return e.fail(fmt.Errorf("a tablet named %q exists already: choose another name, or remove it first (`pwbi-agent tablet remove`)", t.Name))
		}
	}
	// The TLS identity first (the agent may not have made it yet): if it
	// cannot be made, nothing changes.
	var id *pairing.Identity
	if cfg.Checkout.UseTLS() {
		var err error
		if id, err = pairing.Ensure(cfg.Agent.DataDir, time.Now()); err != nil {
			return e.fail(fmt.Errorf("the checkout's TLS certificate in %s: %w (run this command as the agent's user or as administrator)",
				cfg.Agent.DataDir, err))
		}
	}
	token, err := newTabletToken()
	if err != nil {
		return e.fail(err)
	}
	sum := sha256.Sum256([]byte(token))
	updated := config.AddTablet(data, name, hex.EncodeToString(sum[:]))
	if code := e.checkEdited(path, updated, len(cfg.Checkout.Tablets)+1); code >= 0 {
		return code
	}
	if err := writeConfigAtomic(path, data, updated); err != nil {
		return e.fail(err)
	}

	w := e.stdout
	hostPort, others := pairingAddress(cfg.Checkout.Listen)
	fmt.Fprintf(w, "Tablet %q added to %s.\n\n", name, path)
	fmt.Fprintln(w, "Its token, shown only this once (the agent keeps only its SHA-256):")
	fmt.Fprintf(w, "\n  %s\n\n", token)
	fmt.Fprintln(w, "Scan this pairing code with the tablet (the address, the token and the certificate to trust; see docs/checkout.md):")
	fmt.Fprintln(w)
	QRCode(w, pairing.URL(hostPort, token, id))
	fmt.Fprintln(w)
	e.printEndpoint(cfg, hostPort, others, id)
	if !cfg.Checkout.Enabled {
		fmt.Fprintln(w, "note: the checkout is disabled (checkout.enabled = false): the token works once it is enabled")
	}
	e.reloadRunning(ctx, cfg)
	return exitOK
}

func cmdTabletList(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("tablet list", "List the tablets allowed to use the checkout gateway, where they call it and the TLS certificate they trust.")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	cfg, err := config.Load(configPath(*cfgFlag))
	if err != nil {
		return e.fail(err)
	}
	if len(cfg.Checkout.Tablets) == 0 {
		fmt.Fprintln(e.stdout, "no tablets: add one with `pwbi-agent tablet add NAME`")
		return exitOK
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTOKEN SHA-256")
	for _, t := range cfg.Checkout.Tablets {
		// A prefix tells tablets apart; the whole hash stays in the file.
		fmt.Fprintf(tw, "%s\t%s…\n", t.Name, t.TokenSHA256[:min(8, len(t.TokenSHA256))])
	}
	tw.Flush()
	fmt.Fprintln(e.stdout)
	var id *pairing.Identity
	if cfg.Checkout.UseTLS() {
		// Only read: the agent (or the next `tablet add`) creates it.
		id, err = pairing.Load(cfg.Agent.DataDir)
		if errors.Is(err, os.ErrNotExist) {
			id, err = nil, nil
			hostPort, _ := pairingAddress(cfg.Checkout.Listen)
			fmt.Fprintf(e.stdout, "Tablets call https://%s/mokka/... The TLS certificate is made when the agent starts (or by `pwbi-agent tablet add`).\n", hostPort)
		} else if err != nil {
			return e.fail(err)
		}
	}
	if id != nil || !cfg.Checkout.UseTLS() {
		hostPort, others := pairingAddress(cfg.Checkout.Listen)
		e.printEndpoint(cfg, hostPort, others, id)
	}
	if !cfg.Checkout.Enabled {
		fmt.Fprintln(e.stdout, "note: the checkout is disabled (checkout.enabled = false)")
	}
	return exitOK
}

// QRCode writes text as a QR code for a terminal (half blocks, black on
// white, error correction M).
func QRCode(w io.Writer, text string) {
	qrterminal.GenerateWithConfig(text, qrterminal.Config{
		Level: qrterminal.M, Writer: w, HalfBlocks: true, QuietZone: 2,
		BlackChar: qrterminal.BLACK_BLACK, WhiteBlackChar: qrterminal.WHITE_BLACK,
		WhiteChar: qrterminal.WHITE_WHITE, BlackWhiteChar: qrterminal.BLACK_WHITE,
	})
}

// printEndpoint says where tablets call the gateway and, with TLS, which
// certificate they must trust.
func (e *env) printEndpoint(cfg *config.Config, hostPort string, others []string, id *pairing.Identity) {
	w := e.stdout
	k := cfg.Checkout
	switch {
	case id != nil:
		fmt.Fprintf(w, "Tablets call https://%s/mokka/... with \"Authorization: Bearer <token>\"\n", hostPort)
		fmt.Fprintln(w, "and trust only this certificate (the pairing code holds both fingerprints):")
		fmt.Fprintf(w, "  certificate SHA-256:  %s\n", pairing.DisplayFingerprint(id.Fingerprint))
		fmt.Fprintf(w, "  public key SHA-256:   %s (kept when the certificate is renewed)\n", pairing.DisplayFingerprint(id.KeyPin))
		fmt.Fprintf(w, "  valid until:          %s (renewed by the agent before then)\n", id.NotAfter.Local().Format("2006-01-02"))
	case k.PlainOnLAN():
		fmt.Fprintf(w, "Tablets call http://%s/mokka/... with \"Authorization: Bearer <token>\"\n", hostPort)
		fmt.Fprintln(w, "warning: checkout.tls = false: tokens cross the shop network in plain text; anyone on the same Wi-Fi can read them")
	default:
		fmt.Fprintf(w, "Tablets call http://%s/mokka/... with \"Authorization: Bearer <token>\"\n", hostPort)
		fmt.Fprintf(w, "note: checkout.listen (%s) accepts only this PC: set it to this PC's LAN address for tablets (they then use HTTPS)\n", k.Listen)
	}
	if len(others) > 0 {
		fmt.Fprintf(w, "This PC has other addresses too (%s): a tablet on one of those networks uses that one.\n", strings.Join(others, ", "))
	}
}

// pairingAddress returns where a tablet reaches checkout.listen: its host
// and port, or, when it listens on every address ("0.0.0.0", "::" or no
// host), this PC's first LAN address with the port; others are its other
// LAN addresses.
func pairingAddress(listen string) (hostPort string, others []string) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen, nil
	}
	ip, ipErr := netip.ParseAddr(host)
	if host != "" && (ipErr != nil || !ip.IsUnspecified()) {
		return listen, nil
	}
	addrs := lanAddresses(host == "0.0.0.0")
	if len(addrs) == 0 {
		return net.JoinHostPort("localhost", port), nil
	}
	for _, a := range addrs[1:] {
		others = append(others, a.String())
	}
	return net.JoinHostPort(addrs[0].String(), port), others
}

// lanAddresses lists this PC's addresses a tablet may reach: private IPv4
// first, then other IPv4, then global IPv6 (unless ipv4Only); never
// loopback or link-local ones.
func lanAddresses(ipv4Only bool) []netip.Addr {
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var private, v4, v6 []netip.Addr
	for _, ia := range ifAddrs {
		pfx, err := netip.ParsePrefix(ia.String())
		if err != nil {
			continue
		}
		a := pfx.Addr().Unmap()
		switch {
		case a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified():
		case a.Is4() && a.IsPrivate():
			private = append(private, a)
		case a.Is4():
			v4 = append(v4, a)
		case !ipv4Only && a.IsGlobalUnicast():
			v6 = append(v6, a)
		}
	}
	return append(append(private, v4...), v6...)
}

func cmdTabletRemove(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("tablet remove NAME", "Remove a tablet from the config file: its token stops working at once.")
	name, code := e.oneName(fs, args)
	if code >= 0 {
		return code
	}
	path := configPath(*cfgFlag)
	data, cfg, code := e.loadForEdit(path)
	if code >= 0 {
		return code
	}
	updated, err := config.RemoveTablet(data, name)
	if errors.Is(err, config.ErrNoTablet) {
		return e.fail(fmt.Errorf("no tablet is named %q (see `pwbi-agent tablet list`)", name))
	}
	if err != nil {
		return e.fail(err)
	}
	if code := e.checkEdited(path, updated, len(cfg.Checkout.Tablets)-1); code >= 0 {
		return code
	}
	if err := writeConfigAtomic(path, data, updated); err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stdout, "Tablet %q removed from %s: its token no longer works.\n", strings.TrimSpace(name), path)
	e.reloadRunning(ctx, cfg)
	return exitOK
}

func checkTabletName(name string) error {
	switch {
	case name == "":
		return errors.New("the tablet's name must not be empty")
	case len(name) > maxTabletName:
		return fmt.Errorf("the tablet's name is longer than %d bytes", maxTabletName)
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar }) >= 0:
		return errors.New("the tablet's name must not contain control characters")
	}
	return nil
}

// newTabletToken returns 256 random bits, URL-safe, with TokenPrefix.
func newTabletToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// loadForEdit reads the config file to change it; it must be valid now, so
// that the change is the only one the agent sees.
func (e *env) loadForEdit(path string) ([]byte, *config.Config, int) {
	data, _, err := config.ReadFileSafe(path, "config file", config.MaxFileSize)
	if err != nil {
		return nil, nil, e.fail(fmt.Errorf("read config: %w", err))
	}
	cfg, err := config.Parse(path, data)
	if err != nil {
		e.printProblems(path, err, "the config file has problems; fix them first")
		return nil, nil, exitError
	}
	return data, cfg, -1
}

// checkEdited validates the edited file as the agent will, before writing.
func (e *env) checkEdited(path string, data []byte, tablets int) int {
	cfg, err := config.Parse(path, data)
	if err != nil {
		e.printProblems(path, err, "not changed: the result would not be valid")
		return exitError
	}
	if len(cfg.Checkout.Tablets) != tablets {
		return e.fail(errors.New("not changed: the edit did not give the expected tablets; edit the file by hand"))
	}
	return -1
}

func (e *env) printProblems(path string, err error, what string) {
	fmt.Fprintf(e.stderr, "pwbi-agent: %s: %s\n", path, what)
	var probs config.Problems
	if errors.As(err, &probs) {
		for _, p := range probs {
			fmt.Fprintln(e.stderr, p.Error())
		}
		return
	}
	fmt.Fprintln(e.stderr, err)
}

// reloadRunning asks a running agent to apply the file now (it would see
// the change by itself within seconds) and says what happened.
func (e *env) reloadRunning(ctx context.Context, cfg *config.Config) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := localapi.NewClient(cfg.LocalAPI.Listen, nil).Reload(ctx)
	switch {
	case err != nil:
		fmt.Fprintln(e.stdout, "The agent does not answer (not running?): it takes the change when it starts.")
	case res.Error != "":
		fmt.Fprintf(e.stdout, "The running agent refused the file: %s\n", res.Error)
	default:
		fmt.Fprintf(e.stdout, "The running agent applied it (config generation %d).\n", res.Generation)
	}
}

// writeConfigAtomic replaces the config file at path by data: a temporary
// file in the same directory, with the same mode (and owner, where the OS
// has one), synced, then renamed over it, so the agent's watcher sees the
// old file or the new one and never half of one. A symlinked config is
// written where the link points. old is the content the change was made
// from: if the file changed meanwhile, nothing is written.
func writeConfigAtomic(path string, old, data []byte) (err error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	dir := filepath.Dir(real)
	f, err := os.CreateTemp(dir, "."+filepath.Base(real)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err = io.Copy(f, bytes.NewReader(data)); err == nil {
		err = f.Chmod(fi.Mode().Perm())
	}
	if err == nil {
		err = keepOwner(f, fi)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	cur, _, err := config.ReadFileSafe(real, "config file", config.MaxFileSize)
	if err != nil {
		return err
	}
	if !bytes.Equal(cur, old) {
		return errors.New("the config file changed while it was being edited: nothing written; run the command again")
	}
	if err = os.Rename(tmp, real); err != nil {
		return fmt.Errorf("replace config: %w", err)
	}
	syncDir(dir)
	return nil
}
