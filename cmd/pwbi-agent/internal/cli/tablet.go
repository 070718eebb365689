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
	"strconv"
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

func cmdTablet(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(e.stdout, e.t("CliTabletUsage"))
			return exitOK
		}
		fmt.Fprintln(e.stderr, e.t("CliTabletUsage"))
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
	fmt.Fprintf(e.stderr, "pwbi-agent: %s\n", e.t("CliTabletUnknown", map[string]any{"Command": strconv.Quote(args[0])}))
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
		fmt.Fprintln(fs.Output(), e.t("CliTabletOneName"))
		fs.Usage()
		return "", exitUsage
	}
	return pos[0], -1
}

func cmdTabletAdd(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("tablet add NAME", e.t("CliHelpTabletAdd"))
	name, code := e.oneName(fs, args)
	if code >= 0 {
		return code
	}
	name = strings.TrimSpace(name)
	if err := e.checkTabletName(name); err != nil {
		return e.fail(err)
	}
	path := configPath(*cfgFlag)
	data, cfg, code := e.loadForEdit(path)
	if code >= 0 {
		return code
	}
	for _, t := range cfg.Checkout.Tablets {
		if config.SameTabletName(t.Name, name) {
			return e.fail(errors.New(e.t("CliTabletExists", map[string]any{"Name": strconv.Quote(t.Name)})))
		}
	}
	// The TLS identity first (the agent may not have made it yet): if it
	// cannot be made, nothing changes.
	var id *pairing.Identity
	if cfg.Checkout.UseTLS() {
		var err error
		if id, err = pairing.Ensure(cfg.Agent.DataDir, time.Now()); err != nil {
			return e.fail(wrapText(err, e.t("CliTabletCert", map[string]any{"Dir": cfg.Agent.DataDir, "Error": err.Error()})))
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
	fmt.Fprintf(w, "%s\n\n", e.t("CliTabletAdded", map[string]any{"Name": strconv.Quote(name), "Path": path}))
	fmt.Fprintln(w, e.t("CliTabletTokenOnce"))
	fmt.Fprintf(w, "\n  %s\n\n", token)
	fmt.Fprintln(w, e.t("CliTabletScan"))
	fmt.Fprintln(w)
	QRCode(w, pairing.URL(hostPort, token, id))
	fmt.Fprintln(w)
	e.printEndpoint(cfg, hostPort, others, id)
	if !cfg.Checkout.Enabled {
		fmt.Fprintln(w, e.t("CliTabletCheckoutDisabledToken"))
	}
	e.reloadRunning(ctx, cfg)
	return exitOK
}

func cmdTabletList(ctx context.Context, e *env, args []string) int {
	fs, cfgFlag := e.flags("tablet list", e.t("CliHelpTabletList"))
	if code := e.parse(fs, args); code >= 0 {
		return code
	}
	cfg, err := config.Load(configPath(*cfgFlag))
	if err != nil {
		return e.fail(err)
	}
	if len(cfg.Checkout.Tablets) == 0 {
		fmt.Fprintln(e.stdout, e.t("CliTabletNone"))
		return exitOK
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, e.t("CliTabletListHeader"))
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
			fmt.Fprintln(e.stdout, e.t("CliTabletCertLater", map[string]any{"Addr": hostPort}))
		} else if err != nil {
			return e.fail(err)
		}
	}
	if id != nil || !cfg.Checkout.UseTLS() {
		hostPort, others := pairingAddress(cfg.Checkout.Listen)
		e.printEndpoint(cfg, hostPort, others, id)
	}
	if !cfg.Checkout.Enabled {
		fmt.Fprintln(e.stdout, e.t("CliTabletCheckoutDisabled"))
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
		fmt.Fprintln(w, e.t("CliTabletCallsHTTPS", map[string]any{"Addr": hostPort}))
		fmt.Fprintln(w, e.t("CliTabletTrustOnly"))
		fmt.Fprintln(w, e.t("CliTabletCertSHA", map[string]any{"Fingerprint": pairing.DisplayFingerprint(id.Fingerprint)}))
		fmt.Fprintln(w, e.t("CliTabletKeySHA", map[string]any{"Fingerprint": pairing.DisplayFingerprint(id.KeyPin)}))
		fmt.Fprintln(w, e.t("CliTabletValidUntil", map[string]any{"Date": id.NotAfter.Local().Format("2006-01-02")}))
	case k.PlainOnLAN():
		fmt.Fprintln(w, e.t("CliTabletCallsHTTP", map[string]any{"Addr": hostPort}))
		fmt.Fprintln(w, e.t("CliTabletPlainWarning"))
	default:
		fmt.Fprintln(w, e.t("CliTabletCallsHTTP", map[string]any{"Addr": hostPort}))
		fmt.Fprintln(w, e.t("CliTabletLocalOnly", map[string]any{"Listen": k.Listen}))
	}
	if len(others) > 0 {
		fmt.Fprintln(w, e.t("CliTabletOtherAddrs", map[string]any{"Addrs": strings.Join(others, ", ")}))
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
	fs, cfgFlag := e.flags("tablet remove NAME", e.t("CliHelpTabletRemove"))
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
		return e.fail(errors.New(e.t("CliTabletNoSuch", map[string]any{"Name": strconv.Quote(name)})))
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
	fmt.Fprintln(e.stdout, e.t("CliTabletRemoved", map[string]any{"Name": strconv.Quote(strings.TrimSpace(name)), "Path": path}))
	e.reloadRunning(ctx, cfg)
	return exitOK
}

func (e *env) checkTabletName(name string) error {
	switch {
	case name == "":
		return errors.New(e.t("CliTabletNameEmpty"))
	case len(name) > maxTabletName:
		return errors.New(e.t("CliTabletNameLong", map[string]any{"Max": maxTabletName}))
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar }) >= 0:
		return errors.New(e.t("CliTabletNameControl"))
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
		e.printProblems(path, err, e.t("CliConfigHasProblems"))
		return nil, nil, exitError
	}
	return data, cfg, -1
}

// checkEdited validates the edited file as the agent will, before writing.
func (e *env) checkEdited(path string, data []byte, tablets int) int {
	cfg, err := config.Parse(path, data)
	if err != nil {
		e.printProblems(path, err, e.t("CliNotChangedInvalid"))
		return exitError
	}
	if len(cfg.Checkout.Tablets) != tablets {
		return e.fail(errors.New(e.t("CliNotChangedUnexpected")))
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
		fmt.Fprintln(e.stdout, e.t("CliReloadNoAgent"))
	case res.Error != "":
		fmt.Fprintln(e.stdout, e.t("CliReloadRefused", map[string]any{"Error": res.Error}))
	default:
		fmt.Fprintln(e.stdout, e.t("CliReloadApplied", map[string]any{"Generation": res.Generation}))
	}
}

// errConfigChanged: the config file changed under an edit (e.errText
// words it in the command's language).
var errConfigChanged = errors.New("the config file changed while it was being edited: nothing written; run the command again")

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
		return errConfigChanged
	}
	if err = os.Rename(tmp, real); err != nil {
		return fmt.Errorf("replace config: %w", err)
	}
	syncDir(dir)
	return nil
}
