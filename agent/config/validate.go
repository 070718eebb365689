package config

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

func kp(parts ...string) keyPath {
	var p keyPath
	for _, s := range parts {
		p = p.key(s)
	}
	return p
}

// validate checks every value; all problems are recorded, none stops the
// others. Missing credentials are not problems (see MokaConfigured etc.).
func (d *decoder) validate(c *Config) {
	if c.Version != 1 { // an absent version keeps the default and was reported
		d.check(kp("version"), "unsupported version %d: this agent reads version = 1", c.Version)
	}

	// [agent]
	if strings.TrimSpace(c.Agent.ID) == "" {
		d.check(kp("agent", "id"), "must not be blank (leave it out to use the host name)")
	}
	switch c.Agent.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		d.check(kp("agent", "log_level"), `must be "debug", "info", "warn" or "error", not %q`, c.Agent.LogLevel)
	}
	switch c.Agent.Language {
	case "auto", "id", "en":
	default:
		d.check(kp("agent", "language"), `must be "auto", "id" or "en", not %q`, c.Agent.Language)
	}

	// [moka]
	m := c.Moka
	switch m.API {
	case MokaAPIKey, MokaOAuth:
	default:
		d.check(kp("moka", "api"), `must be "apikey" (integration-guide API key) or "oauth" (Moka Open API), not %q`, m.API)
	}
	d.checkURL(kp("moka", "base_url"), m.BaseURL, true)
	d.checkURL(kp("moka", "authorize_url"), m.AuthorizeURL, false)
	d.checkList(kp("moka", "outlets"), m.Outlets, "outlet id")
	switch tz := m.Timezone; {
	case tz == "":
		d.check(kp("moka", "timezone"), "must not be empty: use an IANA time zone such as \"Asia/Jakarta\"")
	case tz == "Local":
		d.check(kp("moka", "timezone"), "\"Local\" depends on the PC's settings: use an IANA time zone such as \"Asia/Jakarta\"")
	default:
		if _, err := time.LoadLocation(tz); err != nil {
			d.check(kp("moka", "timezone"), "unknown time zone %q: use an IANA name such as \"Asia/Jakarta\", \"Asia/Makassar\" or \"UTC\"", tz)
		}
	}
	if !isCurrency(m.Currency) {
		d.check(kp("moka", "currency"), "must be a 3-letter upper-case ISO 4217 code such as \"IDR\", not %q", m.Currency)
	}
	d.checkPositive(kp("moka", "poll_interval"), m.PollInterval)
	d.checkRange(kp("moka", "initial_backfill_days"), m.InitialBackfillDays, 1, MaxBackfillDays)
	d.checkRange(kp("moka", "requests_per_minute"), m.RequestsPerMinute, 1, 6000)

	// [upstream]
	u := c.Upstream
	d.checkURL(kp("upstream", "url"), u.URL, false)
	d.checkRange(kp("upstream", "batch_size"), u.BatchSize, 1, 10000)
	d.checkPositive(kp("upstream", "flush_interval"), u.FlushInterval)
	d.checkPositive(kp("upstream", "timeout"), u.Timeout)
	d.checkRange(kp("upstream", "max_pending_mb"), u.MaxPendingMB, 1, 1<<20)

	// [nats]
	d.checkNATS(c.NATS)

	// [jurnal]
	d.checkJurnal(c.Jurnal)

	// [checkout]
	k := c.Checkout
	checkoutListenOK := false
	if _, _, err := splitListen(k.Listen); err != nil {
		d.check(kp("checkout", "listen"), "%v", err)
	} else {
		checkoutListenOK = true
	}
	d.checkURL(kp("checkout", "base_url"), k.BaseURL, true)
	d.checkPositive(kp("checkout", "timeout"), k.Timeout)
	d.checkTablets(k.Tablets)
	// The second pair goes together; the problem is shown at the key that
	// is in the file.
	switch {
	case k.RegistrationStoreID != "" && k.RegistrationSecretKey.IsZero():
		d.check(kp("checkout", "registration_store_id"), "needs checkout.registration_secret_key (or registration_secret_key_file) too; leave both out to use store_id and secret_key")
	case k.RegistrationStoreID == "" && !k.RegistrationSecretKey.IsZero():
		key := "registration_secret_key"
		if k.RegistrationSecretKeyFile != "" {
			key = "registration_secret_key_file"
		}
		d.check(kp("checkout", key), "needs checkout.registration_store_id too; leave both out to use store_id and secret_key")
	}

	// [local_api]
	localOK := false
	if host, _, err := splitListen(c.LocalAPI.Listen); err != nil {
		d.check(kp("local_api", "listen"), "%v", err)
	} else if !isLoopback(host) {
		d.check(kp("local_api", "listen"), "must be a loopback address such as \"127.0.0.1:8687\" (the local API has no password), not %q", c.LocalAPI.Listen)
	} else {
		localOK = true
	}

	if k.Enabled && checkoutListenOK && localOK && listenConflict(k.Listen, c.LocalAPI.Listen) {
		d.check(kp("checkout", "listen"), "must use another port than local_api.listen (%s)", c.LocalAPI.Listen)
	}
}

func (d *decoder) checkRange(p keyPath, v, lo, hi int) {
	if v < lo || v > hi {
		d.check(p, "must be between %d and %d, not %d", lo, hi, v)
	}
}

func (d *decoder) checkPositive(p keyPath, v Duration) {
	if v.Duration <= 0 {
		d.check(p, "must be longer than 0, not %q", v.Duration.String())
	}
}

// checkURL requires an absolute http(s) URL. The value is not repeated in
// messages: a URL may carry credentials.
func (d *decoder) checkURL(p keyPath, s string, required bool) {
	if s == "" {
		if required {
			d.check(p, "must not be empty")
		}
		return
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		d.check(p, "is not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		d.check(p, "must start with https:// (or http://)")
	case u.Host == "" || u.Hostname() == "":
		d.check(p, "must name a host, e.g. https://example.com")
	case u.User != nil:
		d.check(p, "must not contain a user name or password: credentials have their own keys")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		d.check(p, "must not have a query (?...) or fragment (#...)")
	}
}

// checkList requires non-blank, unique entries.
func (d *decoder) checkList(p keyPath, list []string, what string) {
	seen := make(map[string]int)
	for i, s := range list {
		ep := p.index(i)
		if strings.TrimSpace(s) == "" {
			d.check(ep, "%s must not be empty", what)
			continue
		}
		if j, dup := seen[s]; dup {
			d.check(ep, "%s %q is listed twice (also %s)", what, s, p.index(j))
			continue
		}
		seen[s] = i
	}
}

func (d *decoder) checkTablets(tablets []Tablet) {
	p := kp("checkout", "tablets")
	names := make(map[string]int)
	tokens := make(map[string]int)
	for i, t := range tablets {
		tp := p.index(i)
		name := strings.TrimSpace(t.Name)
		switch j, dup := names[strings.ToLower(name)]; {
		case name == "":
			d.check(tp.key("name"), "must not be empty")
		case dup:
			d.check(tp.key("name"), "tablet name %q is already used by %s", t.Name, p.index(j))
		default:
			names[strings.ToLower(name)] = i
		}
		// The value is not shown: someone may have pasted the token itself.
		if t.TokenSHA256 == "" {
			d.check(tp.key("token_sha256"), "is required: the SHA-256 of the tablet's token (use `pwbi-agent tablet add`)")
		} else if !isSHA256Hex(t.TokenSHA256) {
			d.check(tp.key("token_sha256"), "must be 64 lower-case hex characters: the SHA-256 of the tablet's token, not the token (use `pwbi-agent tablet add`)")
		} else if j, dup := tokens[t.TokenSHA256]; dup {
			d.check(tp.key("token_sha256"), "same token as %s: every tablet needs its own token", p.index(j))
		} else {
			tokens[t.TokenSHA256] = i
		}
	}
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func isCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// splitListen checks a listen address "host:port". host may be empty (all
// interfaces), an IP address or a host name; port is 1-65535.
func splitListen(s string) (host string, port int, err error) {
	host, ps, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("must be host:port such as \"127.0.0.1:8686\", not %q", s)
	}
	port, err = strconv.Atoi(ps)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("port must be a number from 1 to 65535 in %q", s)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil && !isHostname(host) {
			return "", 0, fmt.Errorf("%q is neither an IP address nor a host name", host)
		}
	}
	return host, port, nil
}

func isHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// isLoopback reports whether host is "localhost" or a loopback IP address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// listenConflict reports whether two valid listen addresses would compete
// for the same port.
func listenConflict(a, b string) bool {
	ha, pa, _ := splitListen(a)
	hb, pb, _ := splitListen(b)
	if pa != pb {
		return false
	}
	wild := func(h string) bool {
		if h == "" {
			return true
		}
		ip, err := netip.ParseAddr(h)
		return err == nil && ip.Unmap().IsUnspecified()
	}
	if wild(ha) || wild(hb) || strings.EqualFold(ha, hb) {
		return true
	}
	// "localhost" binds the loopback addresses.
	if strings.EqualFold(ha, "localhost") && isLoopback(hb) || strings.EqualFold(hb, "localhost") && isLoopback(ha) {
		return true
	}
	ia, errA := netip.ParseAddr(ha)
	ib, errB := netip.ParseAddr(hb)
	return errA == nil && errB == nil && ia.Unmap() == ib.Unmap()
}

// checkNATS checks the [nats] table. Files are checked (present, regular,
// readable) only when the sink is enabled; their content, which may hold a
// key, is never shown.
func (d *decoder) checkNATS(n NATS) {
	p := kp("nats")
	if n.Enabled && len(n.URLs) == 0 {
		d.check(p.key("urls"), `must list at least one server, e.g. ["nats://nats.example:4222"], when nats.enabled = true`)
	}
	d.checkList(p.key("urls"), n.URLs, "server url")
	for i, u := range n.URLs {
		if strings.TrimSpace(u) != "" {
			if err := checkNATSURL(u); err != nil {
				d.check(p.key("urls").index(i), "%v", err)
			}
		}
	}
	var auth []string
	for _, a := range []struct {
		key string
		set bool
	}{
		{"creds_file", n.CredsFile != ""},
		{"nkey_seed_file", n.NKeySeedFile != ""},
		{"user", n.User != "" || !n.Password.IsZero()},
	} {
		if a.set {
			auth = append(auth, a.key)
		}
	}
	if len(auth) > 1 {
		d.check(p.key(auth[1]), "set only one way to authenticate: nats.%s or nats.%s, not both", auth[0], auth[1])
	}
	pwKey := "password"
	if n.PasswordFile != "" {
		pwKey = "password_file"
	}
	switch {
	case n.User != "" && n.Password.IsZero():
		d.check(p.key("user"), "needs nats.password (or nats.password_file) too")
	case n.User == "" && !n.Password.IsZero():
		d.check(p.key(pwKey), "needs nats.user too")
	}
	switch {
	case n.TLSCertFile != "" && n.TLSKeyFile == "":
		d.check(p.key("tls_cert_file"), "needs nats.tls_key_file too (the client certificate's private key)")
	case n.TLSCertFile == "" && n.TLSKeyFile != "":
		d.check(p.key("tls_key_file"), "needs nats.tls_cert_file too (the client certificate)")
	}
	if err := checkSubjectPrefix(n.SubjectPrefix); err != nil {
		d.check(p.key("subject_prefix"), "%v", err)
	}
	if err := checkStreamName(n.Stream); err != nil {
		d.check(p.key("stream"), "%v", err)
	}
	d.checkPositive(p.key("timeout"), n.Timeout)
	d.checkRange(p.key("batch_size"), n.BatchSize, 1, NATSMaxBatch)
	d.checkRange(p.key("max_in_flight"), n.MaxInFlight, 1, NATSMaxInFlight)
	if !n.Enabled {
		return
	}
	for _, f := range []struct{ key, path string }{
		{"creds_file", n.CredsFile}, {"nkey_seed_file", n.NKeySeedFile},
		{"tls_ca_file", n.TLSCAFile}, {"tls_cert_file", n.TLSCertFile}, {"tls_key_file", n.TLSKeyFile},
	} {
		if f.path == "" {
			continue
		}
		// Read to prove it can be; the content (a seed, a key) is
		// dropped and never shown.
		if _, _, err := ReadFileSafe(f.path, "the file", maxSecretFile); err != nil {
			d.check(p.key(f.key), "%v", err)
		}
	}
}

// checkNATSURL requires nats://, tls://, ws:// or wss:// (or a bare
// host:port) with a host. The value is not repeated: it may carry
// credentials.
func checkNATSURL(s string) error {
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("is not a valid URL")
	case u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss":
		return fmt.Errorf("must start with nats://, tls://, ws:// or wss://")
	case u.Hostname() == "":
		return fmt.Errorf("must name a host, e.g. nats://nats.example:4222")
	case u.User != nil:
		return fmt.Errorf("must not contain a user name or password: use nats.creds_file, or nats.user and nats.password")
	}
	if ps := u.Port(); ps != "" {
		if port, err := strconv.Atoi(ps); err != nil || port < 1 || port > 65535 {
			return fmt.Errorf("port must be a number from 1 to 65535")
		}
	}
	return nil
}

// checkSubjectPrefix requires dot-separated tokens of printable ASCII
// without wildcards.
func checkSubjectPrefix(p string) error {
	if p == "" {
		return fmt.Errorf("must not be empty")
	}
	if strings.HasPrefix(p, "$") {
		return fmt.Errorf("must not start with $ (reserved by NATS)")
	}
	for _, tok := range strings.Split(p, ".") {
		switch {
		case tok == "":
			return fmt.Errorf("must not have an empty token (two dots, or a dot at an end), not %q", p)
		case tok == "*" || tok == ">":
			return fmt.Errorf("must not contain the wildcards * or >")
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c <= ' ' || c >= 0x7f {
				return fmt.Errorf("must be printable ASCII without spaces, not %q", p)
			}
		}
	}
	return nil
}

// checkStreamName requires a JetStream stream name.
func checkStreamName(s string) error {
	if s == "" || len(s) > 255 {
		return fmt.Errorf("must be 1 to 255 characters")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(".*>/\\", c) >= 0 {
			return fmt.Errorf("must be printable ASCII without spaces, '.', '*', '>', '/' or '\\', not %q", s)
		}
	}
	return nil
}

// checkJurnal checks the [jurnal] table (SPEC §6.3). Missing credentials
// are not problems (JurnalConfigured reports them), but an enabled sink
// with a client id and no secret (or the reverse) is.
func (d *decoder) checkJurnal(j Jurnal) {
	p := kp("jurnal")
	d.checkURL(p.key("base_url"), j.BaseURL, true)
	switch j.Mode {
	case JurnalInvoice, JurnalDailySummary:
	default:
		d.check(p.key("mode"), `must be "invoice" (one invoice per sale) or "daily_summary" (one invoice per outlet per day), not %q`, j.Mode)
	}
	if j.CloseAfter.Duration < 0 || j.CloseAfter.Duration > 24*time.Hour {
		d.check(p.key("close_after"), "must be between 0s and 24h after midnight, not %s", j.CloseAfter.Duration)
	}
	d.checkRange(p.key("requests_per_minute"), j.RequestsPerMinute, 1, 6000)
	d.checkPositive(p.key("timeout"), j.Timeout)
	if strings.TrimSpace(j.CustomerName) == "" {
		d.check(p.key("customer_name"), `must not be blank: the Jurnal contact walk-in sales are invoiced to, e.g. "Pelanggan Umum"`)
	}
	d.checkList(p.key("outlets"), j.Outlets, "outlet id")
	// The sink looks a payment method up trimmed and in lower case: two
	// keys that are one method there ("QRIS" and "qris") would leave it to
	// chance which account is used.
	methods := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(j.DepositAccounts)) {
		m := strings.ToLower(strings.TrimSpace(k))
		if other, ok := methods[m]; ok {
			d.check(p.key("deposit_accounts").key(k), "is the payment method %q again (case and spaces aside): give it once", other)
		}
		methods[m] = k
	}
	if strings.TrimSpace(j.DepositAccounts[methods["default"]]) == "" {
		d.check(p.key("deposit_accounts").key("default"), `must name the Jurnal cash or bank account payments go to, e.g. default = "Kas"`)
	}
	for _, m := range []struct {
		key  string
		vals map[string]string
	}{{"deposit_accounts", j.DepositAccounts}, {"outlet_tags", j.OutletTags}, {"outlet_warehouses", j.OutletWarehouses}} {
		for k, v := range m.vals {
			if strings.TrimSpace(v) == "" {
				d.check(p.key(m.key).key(k), "must not be blank")
			}
		}
	}
	secretKey := "client_secret"
	if j.ClientSecretFile != "" {
		secretKey = "client_secret_file"
	}
	if j.Enabled {
		switch {
		case j.ClientID != "" && j.ClientSecret.IsZero():
			d.check(p.key("client_id"), "needs jurnal.client_secret (or client_secret_file) too")
		case j.ClientID == "" && !j.ClientSecret.IsZero():
			d.check(p.key(secretKey), "needs jurnal.client_id too")
		}
	}
}
