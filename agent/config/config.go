// Package config loads, decodes strictly and validates the agent's TOML
// configuration file (SPEC §3).
//
// Load and Parse start from Default, apply the file, read the `*_file`
// secrets, resolve relative paths against the file's directory and validate
// everything. An invalid file yields Problems: every problem found, each with
// file, line and dotted key, so `pwbi-agent config check` and the hot-reload
// path can show them all at once. A Config is a plain value: once returned it
// is never modified by this package and is safe to share between goroutines
// for reading.
//
// Missing credentials are not errors: the agent starts and reports "needs
// setup" (see MokaConfigured, UpstreamConfigured, CheckoutConfigured).
// Secret values never appear in errors, Problems, String/JSON output or logs.
//
// This package imports nothing of the agent; keep it that way.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
	_ "time/tzdata" // Windows has no zoneinfo database.
)

// Config is the whole configuration file. See config.example.toml for the
// meaning of every key.
type Config struct {
	Version  int      `toml:"version" json:"version"`
	Agent    Agent    `toml:"agent" json:"agent"`
	Moka     Moka     `toml:"moka" json:"moka"`
	Upstream Upstream `toml:"upstream" json:"upstream"`
	NATS     NATS     `toml:"nats" json:"nats"`
	Jurnal   Jurnal   `toml:"jurnal" json:"jurnal"`
	Checkout Checkout `toml:"checkout" json:"checkout"`
	LocalAPI LocalAPI `toml:"local_api" json:"local_api"`

	// Path is the absolute path of the file this config was loaded from
	// (empty when parsed without a path). Not a TOML key.
	Path string `toml:"-" json:"path"`
	// SHA256 is the hex SHA-256 of the file's bytes, to detect no-op
	// reloads. It covers the config file only, not the *_file secrets.
	SHA256 string `toml:"-" json:"sha256"`
}

// Agent is the [agent] table.
type Agent struct {
	ID       string `toml:"id" json:"id"`               // sent upstream; default: host name
	DataDir  string `toml:"data_dir" json:"data_dir"`   // absolute after Load; default per OS
	LogLevel string `toml:"log_level" json:"log_level"` // debug|info|warn|error
	// Language is what a person reads in: "auto" (the OS locale for the
	// tray and the CLI, the browser's Accept-Language for the dashboard),
	// "id" (Bahasa Indonesia) or "en". Applied live.
	Language string `toml:"language" json:"language"`
}

// Moka API dialects (moka.api). MokaOAuth is the default: it is the API
// real Moka accounts have; MokaAPIKey is the integration guide's (and the
// demo's), which no working public client uses.
const (
	MokaAPIKey = "apikey" // integration-guide API, SPEC §5.1
	MokaOAuth  = "oauth"  // Moka Open API, SPEC §5.2; the default
)

// Moka is the [moka] table.
type Moka struct {
	Enabled    bool   `toml:"enabled" json:"enabled"`
	API        string `toml:"api" json:"api"` // MokaAPIKey or MokaOAuth
	BaseURL    string `toml:"base_url" json:"base_url"`
	BusinessID string `toml:"business_id" json:"business_id"`

	APIKey Secret `toml:"api_key" json:"api_key"`
	// APIKeyFile is the absolute path APIKey was read from, if any.
	APIKeyFile string `toml:"api_key_file" json:"api_key_file"`

	ClientID     string `toml:"client_id" json:"client_id"`
	ClientSecret Secret `toml:"client_secret" json:"client_secret"`
	// ClientSecretFile is the absolute path ClientSecret was read from, if any.
	ClientSecretFile string `toml:"client_secret_file" json:"client_secret_file"`
	// AuthorizeURL overrides {base_url}/oauth/authorize; see AuthorizeEndpoint.
	AuthorizeURL string `toml:"authorize_url" json:"authorize_url"`

	Outlets             []string `toml:"outlets" json:"outlets"` // empty: all outlets of the business
	Timezone            string   `toml:"timezone" json:"timezone"`
	Currency            string   `toml:"currency" json:"currency"`
	PollInterval        Duration `toml:"poll_interval" json:"poll_interval"`
	InitialBackfillDays int      `toml:"initial_backfill_days" json:"initial_backfill_days"`
	RequestsPerMinute   int      `toml:"requests_per_minute" json:"requests_per_minute"`
	SyncProducts        bool     `toml:"sync_products" json:"sync_products"`
}

// Upstream is the [upstream] table.
type Upstream struct {
	URL   string `toml:"url" json:"url"` // empty: buffer only
	Token Secret `toml:"token" json:"token"`
	// TokenFile is the absolute path Token was read from, if any.
	TokenFile     string   `toml:"token_file" json:"token_file"`
	BatchSize     int      `toml:"batch_size" json:"batch_size"`
	FlushInterval Duration `toml:"flush_interval" json:"flush_interval"`
	Timeout       Duration `toml:"timeout" json:"timeout"`
	MaxPendingMB  int      `toml:"max_pending_mb" json:"max_pending_mb"`
}

// NATS is the [nats] table: the NATS JetStream sink (SPEC §6.2). It is
// off unless enabled; see NATSConfigured. Paths are absolute after Load.
type NATS struct {
	Enabled bool     `toml:"enabled" json:"enabled"`
	URLs    []string `toml:"urls" json:"urls"` // nats://, tls://, ws://, wss:// or host:port
	// Authentication: at most one of CredsFile (JWT + NKey seed, the fleet
	// standard), NKeySeedFile, or User with Password.
	CredsFile    string `toml:"creds_file" json:"creds_file"`
	NKeySeedFile string `toml:"nkey_seed_file" json:"nkey_seed_file"`
	User         string `toml:"user" json:"user"`
	Password     Secret `toml:"password" json:"password"`
	// PasswordFile is the absolute path Password was read from, if any.
	PasswordFile string `toml:"password_file" json:"password_file"`
	TLSCAFile    string `toml:"tls_ca_file" json:"tls_ca_file"`
	TLSCertFile  string `toml:"tls_cert_file" json:"tls_cert_file"`
	TLSKeyFile   string `toml:"tls_key_file" json:"tls_key_file"`
	// SubjectPrefix starts every subject: {prefix}.{agent_id}.{kind}....
	SubjectPrefix string `toml:"subject_prefix" json:"subject_prefix"`
	// Stream is the stream expected to capture the subjects.
	Stream string `toml:"stream" json:"stream"`
	// CreateStream creates Stream when missing: for the demo and tests.
	CreateStream bool     `toml:"create_stream" json:"create_stream"`
	Timeout      Duration `toml:"timeout" json:"timeout"`
	BatchSize    int      `toml:"batch_size" json:"batch_size"`
	// MaxInFlight is the size of one atomic batch: the records published
	// before the stream acknowledges them.
	MaxInFlight int `toml:"max_in_flight" json:"max_in_flight"`
}

// Limits of [nats] values.
const (
	NATSMaxInFlight = 1000 // NATS Server's default max_batch_size
	NATSMaxBatch    = 10000
)

// Jurnal modes (jurnal.mode, SPEC §6.3).
const (
	JurnalInvoice      = "invoice"       // one sales invoice (and its payment) per sale
	JurnalDailySummary = "daily_summary" // one invoice per outlet per business day
)

// Jurnal is the [jurnal] table: the Jurnal (Mekari accounting) sink (SPEC
// §6.3). It is off unless enabled; see JurnalConfigured.
type Jurnal struct {
	Enabled      bool   `toml:"enabled" json:"enabled"`
	BaseURL      string `toml:"base_url" json:"base_url"`
	ClientID     string `toml:"client_id" json:"client_id"`
	ClientSecret Secret `toml:"client_secret" json:"client_secret"`
	// ClientSecretFile is the absolute path ClientSecret was read from, if any.
	ClientSecretFile string `toml:"client_secret_file" json:"client_secret_file"`
	Mode             string `toml:"mode" json:"mode"` // JurnalInvoice or JurnalDailySummary
	// CloseAfter is how long after its midnight (outlet zone) a business
	// day is closed and posted in daily_summary mode.
	CloseAfter        Duration `toml:"close_after" json:"close_after"`
	RequestsPerMinute int      `toml:"requests_per_minute" json:"requests_per_minute"`
	// CustomerName is the walk-in contact every sale is invoiced to.
	CustomerName string   `toml:"customer_name" json:"customer_name"`
	Outlets      []string `toml:"outlets" json:"outlets"` // empty: every outlet
	// DepositAccounts maps a payment method (lower case, as in the
	// unified record) to a Jurnal cash/bank account name; "default" is
	// used for the others.
	DepositAccounts map[string]string `toml:"deposit_accounts" json:"deposit_accounts"`
	// OutletTags maps a Moka outlet id to the Jurnal tag its documents carry.
	OutletTags map[string]string `toml:"outlet_tags" json:"outlet_tags"`
	// OutletWarehouses maps a Moka outlet id to a Jurnal warehouse name.
	OutletWarehouses map[string]string `toml:"outlet_warehouses" json:"outlet_warehouses"`
	Timeout          Duration          `toml:"timeout" json:"timeout"`
}

// Checkout is the [checkout] table (Mokka gateway for tablets).
type Checkout struct {
	Enabled   bool   `toml:"enabled" json:"enabled"`
	Listen    string `toml:"listen" json:"listen"`
	BaseURL   string `toml:"base_url" json:"base_url"`
	StoreID   string `toml:"store_id" json:"store_id"`
	SecretKey Secret `toml:"secret_key" json:"secret_key"`
	// SecretKeyFile is the absolute path SecretKey was read from, if any.
	SecretKeyFile string `toml:"secret_key_file" json:"secret_key_file"`
	// RegistrationStoreID and RegistrationSecretKey are an optional second
	// pair for the Registration and Limit methods, as Mokka may issue one
	// per API family; both or neither. Without them the main pair is used.
	RegistrationStoreID   string `toml:"registration_store_id" json:"registration_store_id"`
	RegistrationSecretKey Secret `toml:"registration_secret_key" json:"registration_secret_key"`
	// RegistrationSecretKeyFile is the absolute path RegistrationSecretKey
	// was read from, if any.
	RegistrationSecretKeyFile string `toml:"registration_secret_key_file" json:"registration_secret_key_file"`
	// TLS: serve HTTPS when Listen is not a loopback address (see UseTLS).
	// Default true; false allows plain HTTP on the LAN, with a warning.
	TLS     bool     `toml:"tls" json:"tls"`
	Timeout Duration `toml:"timeout" json:"timeout"`
	Tablets []Tablet `toml:"tablets" json:"tablets"`
}

// UseTLS reports whether the gateway serves HTTPS: when it listens on an
// address other machines can reach (not a loopback address) and tls is
// not set to false. On a loopback address only this PC can reach it, so
// it serves plain HTTP.
func (k Checkout) UseTLS() bool { return k.TLS && !k.LoopbackOnly() }

// PlainOnLAN reports whether tablet tokens would cross the network in
// plain text: the gateway listens on a LAN address with tls = false.
func (k Checkout) PlainOnLAN() bool { return !k.TLS && !k.LoopbackOnly() }

// LoopbackOnly reports whether Listen accepts connections from this PC
// only (a loopback address or "localhost").
func (k Checkout) LoopbackOnly() bool {
	host, _, err := splitListen(k.Listen)
	return err == nil && isLoopback(host)
}

// Tablet is one [[checkout.tablets]] block.
type Tablet struct {
	Name        string `toml:"name" json:"name"`
	TokenSHA256 string `toml:"token_sha256" json:"token_sha256"` // 64 lowercase hex
}

// LocalAPI is the [local_api] table.
type LocalAPI struct {
	Listen string `toml:"listen" json:"listen"` // loopback host:port
}

// Default returns the configuration used for every key the file leaves out
// (SPEC §3). Each call returns a fresh value.
func Default() Config {
	return Config{
		Version: 1,
		Agent: Agent{
			ID:       defaultID(),
			DataDir:  osDefaultDataDir(),
			LogLevel: "info",
			Language: "auto",
		},
		Moka: Moka{
			Enabled:             true,
			API:                 MokaOAuth, // the Moka Open API: what real accounts have (SPEC §5.2)
			BaseURL:             "https://api.mokapos.com",
			Timezone:            "Asia/Jakarta",
			Currency:            "IDR",
			PollInterval:        Duration{5 * time.Minute},
			InitialBackfillDays: 30,   // first sync of an outlet; at most MaxBackfillDays
			RequestsPerMinute:   60,   // shared by all outlets
			SyncProducts:        true, // products before transactions (seed 002)
		},
		Upstream: Upstream{
			BatchSize:     500,
			FlushInterval: Duration{5 * time.Second},
			Timeout:       Duration{30 * time.Second},
			MaxPendingMB:  1024, // polling pauses (never drops) at this buffer size
		},
		NATS: NATS{
			Enabled:       false,
			SubjectPrefix: "pwbi",
			Stream:        "PWBI",
			Timeout:       Duration{30 * time.Second},
			BatchSize:     1000,
			MaxInFlight:   1000, // one atomic batch per batch (docs/benchmarks.md)
		},
		Jurnal: Jurnal{
			Enabled:           false,
			BaseURL:           "https://api.mekari.com",
			Mode:              JurnalInvoice,
			CloseAfter:        Duration{2 * time.Hour},
			RequestsPerMinute: 60,
			CustomerName:      "Pelanggan Umum",
			DepositAccounts:   map[string]string{"default": "Kas"},
			Timeout:           Duration{30 * time.Second},
		},
		Checkout: Checkout{
			Enabled: false,
			Listen:  "127.0.0.1:8686",
			BaseURL: "https://stage-backend.revoplus.pl", // Mokka staging
			TLS:     true,                                // on a LAN address
			Timeout: Duration{30 * time.Second},
		},
		LocalAPI: LocalAPI{
			Listen: "127.0.0.1:8687",
		},
	}
}

// MaxBackfillDays is the furthest back a sync or import may reach.
const MaxBackfillDays = 180

// defaultID is the host name, or "pwbi-agent" if it cannot be read.
func defaultID() string {
	if h, err := os.Hostname(); err == nil && strings.TrimSpace(h) != "" {
		return h
	}
	return "pwbi-agent"
}

// EnvPath names the environment variable that overrides DefaultPath.
const EnvPath = "PWBI_AGENT_CONFIG"

// DefaultPath returns $PWBI_AGENT_CONFIG if set, otherwise the OS default:
// %ProgramData%\PWBI\Agent\config.toml on Windows, /etc/pwbi-agent/config.toml
// elsewhere.
func DefaultPath() string {
	if p := os.Getenv(EnvPath); p != "" {
		return p
	}
	return osDefaultPath()
}

// DefaultDataDir returns the OS default of agent.data_dir.
func DefaultDataDir() string { return osDefaultDataDir() }

// Load reads the file at path and parses it (see Parse). The file is read
// with ReadFileSafe: it must be a regular file (symlinks are followed) of at
// most MaxFileSize, so a FIFO or a link to a device gives an error at once
// instead of a hang. A file that cannot be read gives a wrapped error
// (errors.Is(err, fs.ErrNotExist), ErrNotRegular and ErrTooLarge work); an
// invalid one gives Problems.
func Load(path string) (*Config, error) {
	data, _, err := ReadFileSafe(path, "config file", MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates data, the content of the file at path. path is
// used to name the file in problems, as Config.Path (made absolute) and as
// the base of relative paths; it is not read. `*_file` secrets are read.
// On any problem Parse returns a nil Config and Problems listing all of them.
// Parse never panics.
func Parse(path string, data []byte) (*Config, error) {
	c, probs := parse(path, data)
	if len(probs) > 0 {
		probs.sort()
		return nil, probs
	}
	return c, nil
}

// Hash returns the hex SHA-256 of data, as stored in Config.SHA256.
func Hash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// RestartRequired returns the keys whose change from old to c cannot be
// applied to a running agent (currently only agent.data_dir). Every other
// change is applied live. It returns nil when old is nil.
func (c *Config) RestartRequired(old *Config) []string {
	if c == nil || old == nil {
		return nil
	}
	var keys []string
	if c.Agent.DataDir != old.Agent.DataDir {
		keys = append(keys, "agent.data_dir")
	}
	return keys
}

// SlogLevel returns agent.log_level as a slog.Level (info when unknown).
func (a Agent) SlogLevel() slog.Level {
	switch a.LogLevel {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Location returns the time zone of moka.timezone (validated by Parse); UTC
// if it cannot be loaded.
func (m Moka) Location() *time.Location {
	if loc, err := time.LoadLocation(m.Timezone); err == nil {
		return loc
	}
	return time.UTC
}

// AuthorizeEndpoint returns the OAuth authorization URL: moka.authorize_url,
// or {base_url}/oauth/authorize when it is empty.
func (m Moka) AuthorizeEndpoint() string {
	if m.AuthorizeURL != "" {
		return m.AuthorizeURL
	}
	return strings.TrimRight(m.BaseURL, "/") + "/oauth/authorize"
}

// TokenEndpoint returns the OAuth token URL, {base_url}/oauth/token.
func (m Moka) TokenEndpoint() string {
	return strings.TrimRight(m.BaseURL, "/") + "/oauth/token"
}

// MokaConfigured reports whether the Moka connector has what it needs to
// poll; if not, reason says what to set up, for the status page. OAuth
// tokens are not in the file: with api = "oauth" the connector also needs a
// completed "Connect Moka" (`pwbi-agent moka connect`), which this cannot
// see; the reasons for a fresh install (api = "oauth", no client yet) lead
// there.
func (c *Config) MokaConfigured() (ok bool, reason string) {
	m := c.Moka
	const connect = `, then click "Connect Moka" on the dashboard or in the tray (or run ` + "`pwbi-agent moka connect`" + `)`
	switch {
	case !m.Enabled:
		return false, "moka is disabled (moka.enabled = false)"
	case m.API == MokaAPIKey && m.BusinessID == "":
		return false, "moka.business_id is not set"
	case m.API == MokaAPIKey && m.APIKey.IsZero():
		return false, "moka.api_key (or moka.api_key_file) is not set"
	case m.API == MokaOAuth && m.ClientID == "" && m.ClientSecret.IsZero():
		return false, "Moka is not connected yet: set moka.client_id and moka.client_secret " +
			"(the agent's Moka Open API application, from PWBI support or connect.mokapos.com)" + connect
	case m.API == MokaOAuth && m.ClientID == "":
		return false, "moka.client_id is not set" + connect
	case m.API == MokaOAuth && m.ClientSecret.IsZero():
		return false, "moka.client_secret (or moka.client_secret_file) is not set" + connect
	}
	return true, ""
}

// UpstreamConfigured reports whether records can be forwarded; if not,
// records are only buffered and reason says why.
func (c *Config) UpstreamConfigured() (ok bool, reason string) {
	switch {
	case c.Upstream.URL == "":
		return false, "upstream.url is not set: records are buffered only"
	case c.Upstream.Token.IsZero():
		return false, "upstream.token (or upstream.token_file) is not set"
	}
	return true, ""
}

// NATSConfigured reports whether the NATS JetStream sink is to deliver; if
// not, reason says why, for the status page.
func (c *Config) NATSConfigured() (ok bool, reason string) {
	switch {
	case !c.NATS.Enabled:
		return false, "nats is disabled (nats.enabled = false)"
	case len(c.NATS.URLs) == 0:
		return false, "nats.urls is empty: no NATS server to deliver to"
	}
	return true, ""
}

// JurnalConfigured reports whether the Jurnal sink is to deliver; if not,
// reason says why, for the status page.
func (c *Config) JurnalConfigured() (ok bool, reason string) {
	switch {
	case !c.Jurnal.Enabled:
		return false, "jurnal is disabled (jurnal.enabled = false)"
	case c.Jurnal.ClientID == "" || c.Jurnal.ClientSecret.IsZero():
		return false, "jurnal.client_id and jurnal.client_secret (or client_secret_file) are not set"
	}
	return true, ""
}

// CheckoutConfigured reports whether the Mokka gateway can serve tablets; if
// not, reason says what to set up.
func (c *Config) CheckoutConfigured() (ok bool, reason string) {
	k := c.Checkout
	switch {
	case !k.Enabled:
		return false, "checkout is disabled (checkout.enabled = false)"
	case k.StoreID == "":
		return false, "checkout.store_id is not set"
	case k.SecretKey.IsZero():
		return false, "checkout.secret_key (or checkout.secret_key_file) is not set"
	case len(k.Tablets) == 0:
		return false, "no tablet is registered: run `pwbi-agent tablet add NAME`"
	}
	return true, ""
}

// Validate checks a Config built or changed in code the way Parse checks a
// file (without line numbers, and without reading *_file secrets). It
// returns Problems, or nil when c is valid.
func (c *Config) Validate() error {
	d := &decoder{file: c.Path, loc: &locator{lines: map[string]int{}}, bad: make(map[string]bool)}
	d.validate(c)
	if len(d.probs) > 0 {
		d.probs.sort()
		return d.probs
	}
	return nil
}

// AddTablet returns the config file content data with a new
// [[checkout.tablets]] block appended (comments and layout are kept), for
// `pwbi-agent tablet add`. The caller validates the result with Parse
// before writing it.
func AddTablet(data []byte, name, tokenSHA256 string) []byte {
	var b strings.Builder
	b.Write(data)
	if len(data) > 0 && data[len(data)-1] != '\n' {
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "\n[[checkout.tablets]]\nname = %s\ntoken_sha256 = %s\n", quoteTOML(name), quoteTOML(tokenSHA256))
	return []byte(b.String())
}

// quoteTOML writes s as a TOML basic string.
func quoteTOML(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
