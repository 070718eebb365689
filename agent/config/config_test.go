package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

const examplePath = "../../config.example.toml"

const (
	hashA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	hashB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := Parse("test.toml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestExampleParsesToDefaults(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(examplePath)
	if err != nil {
		t.Fatalf("Load(example): %v", err)
	}
	abs, _ := filepath.Abs(examplePath)
	if c.Path != abs {
		t.Errorf("Path = %q, want %q", c.Path, abs)
	}
	if c.SHA256 != Hash(data) || len(c.SHA256) != 64 {
		t.Errorf("SHA256 = %q, want %q", c.SHA256, Hash(data))
	}
	// The example leaves id and data_dir empty, which means "the default",
	// so the whole parsed config equals Default().
	got := *c
	got.Path, got.SHA256 = "", ""
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("example differs from Default():\n got %+v\nwant %+v", got, want)
	}
}

// TestExampleDocumentsEveryKey checks that config.example.toml mentions every
// key of Config (active or commented out) under the right table, and no
// other key.
func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	header := regexp.MustCompile(`^#?\s*\[\[?([a-z_.]+)\]\]?\s*(#.*)?$`)
	keyRE := regexp.MustCompile(`^#?\s*([a-z0-9_]+)\s*=`)
	documented := map[string]bool{}
	table := ""
	for _, line := range strings.Split(string(data), "\n") {
		if m := header.FindStringSubmatch(line); m != nil {
			table = m[1] + "."
			continue
		}
		if m := keyRE.FindStringSubmatch(line); m != nil {
			documented[table+m[1]] = true
		}
	}
	var want []string
	// A table of free keys (a map, such as jurnal.deposit_accounts) is
	// documented by a [table] block with at least one example key.
	maps := map[string]bool{}
	underMap := func(k string) bool {
		for m := range maps {
			if strings.HasPrefix(k, m+".") {
				return true
			}
		}
		return false
	}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := f.Tag.Get("toml")
			if name == "-" {
				continue
			}
			ft := f.Type
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft != secretType && ft != durationType {
				walk(ft, prefix+name+".")
				continue
			}
			if ft.Kind() == reflect.Map {
				maps[prefix+name] = true
			}
			want = append(want, prefix+name)
		}
	}
	walk(reflect.TypeFor[Config](), "")
	for _, k := range want {
		if !documented[k] && !(maps[k] && slices.ContainsFunc(slices.Collect(mapKeys(documented)), func(d string) bool { return strings.HasPrefix(d, k+".") })) {
			t.Errorf("config.example.toml does not document %s", k)
		}
		delete(documented, k)
	}
	for k := range documented {
		if underMap(k) {
			continue
		}
		t.Errorf("config.example.toml documents %s, which Config does not have", k)
	}
}

func TestDefault(t *testing.T) {
	d := Default()
	if d.Version != 1 || d.Agent.ID == "" || !filepath.IsAbs(d.Agent.DataDir) {
		t.Errorf("Default() = %+v", d)
	}
	// The dialect real Moka accounts have (SPEC §3, §5.2).
	if d.Moka.API != MokaOAuth || !d.Moka.Enabled {
		t.Errorf("moka default: api %q, enabled %v", d.Moka.API, d.Moka.Enabled)
	}
	if runtime.GOOS != "windows" && d.Agent.DataDir != "/var/lib/pwbi-agent" {
		t.Errorf("DataDir = %q", d.Agent.DataDir)
	}
	if d.Moka.PollInterval.Duration != 5*time.Minute || d.Upstream.FlushInterval.Duration != 5*time.Second {
		t.Errorf("durations: %+v", d)
	}
	// Default returns a fresh value each time.
	d.Moka.Outlets = append(d.Moka.Outlets, "x")
	if len(Default().Moka.Outlets) != 0 {
		t.Error("Default shares state")
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv(EnvPath, "/tmp/x/config.toml")
	if got := DefaultPath(); got != "/tmp/x/config.toml" {
		t.Errorf("DefaultPath with env = %q", got)
	}
	t.Setenv(EnvPath, "")
	want := "/etc/pwbi-agent/config.toml"
	if runtime.GOOS == "windows" {
		want = filepath.Join(os.Getenv("ProgramData"), `PWBI\Agent\config.toml`)
	}
	if got := DefaultPath(); got != want {
		t.Errorf("DefaultPath = %q, want %q", got, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestMinimalFile(t *testing.T) {
	c := mustParse(t, "version = 1\n")
	want := Default()
	want.Path, _ = filepath.Abs("test.toml")
	want.SHA256 = Hash([]byte("version = 1\n"))
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("got %+v\nwant %+v", *c, want)
	}
}

func TestFullFile(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	src := `version = 1
[agent]
id = "outlet-pc-01"
data_dir = "` + filepath.ToSlash(dataDir) + `"
log_level = "debug"
[moka]
enabled = false
api = "oauth"
base_url = "https://moka.test/"
business_id = "biz_1"
client_id = "cid"
client_secret = "csecret"
authorize_url = "https://login.moka.test/authorize"
outlets = ["o1", "o2"]
timezone = "Asia/Makassar"
currency = "USD"
poll_interval = "90s"
initial_backfill_days = 180
requests_per_minute = 6000
sync_products = false
[upstream]
url = "https://ingest.example"
token = "tok"
batch_size = 10000
flush_interval = "1s"
timeout = "1m"
max_pending_mb = 1
[checkout]
enabled = true
listen = "0.0.0.0:9000"
base_url = "https://mokka.test"
store_id = "store"
secret_key = "sk"
timeout = "10s"
[[checkout.tablets]]
name = "Front counter"
token_sha256 = "` + hashA + `"
[[checkout.tablets]]
name = "Terrace"
token_sha256 = "` + hashB + `"
[local_api]
listen = "[::1]:8000"
`
	c := mustParse(t, src)
	if c.Agent.ID != "outlet-pc-01" || c.Agent.DataDir != dataDir || c.Agent.SlogLevel().String() != "DEBUG" {
		t.Errorf("agent: %+v", c.Agent)
	}
	m := c.Moka
	if m.Enabled || m.API != MokaOAuth || m.ClientSecret.Value() != "csecret" || !slices.Equal(m.Outlets, []string{"o1", "o2"}) ||
		m.PollInterval.Duration != 90*time.Second || m.InitialBackfillDays != 180 || m.SyncProducts {
		t.Errorf("moka: %+v", m)
	}
	if m.Location().String() != "Asia/Makassar" {
		t.Errorf("Location = %v", m.Location())
	}
	if m.AuthorizeEndpoint() != "https://login.moka.test/authorize" || m.TokenEndpoint() != "https://moka.test/oauth/token" {
		t.Errorf("endpoints %q %q", m.AuthorizeEndpoint(), m.TokenEndpoint())
	}
	if c.Upstream.Token.Value() != "tok" || c.Upstream.Timeout.Duration != time.Minute || c.Upstream.MaxPendingMB != 1 {
		t.Errorf("upstream: %+v", c.Upstream)
	}
	want := []Tablet{{"Front counter", hashA}, {"Terrace", hashB}}
	if !c.Checkout.Enabled || c.Checkout.SecretKey.Value() != "sk" || !reflect.DeepEqual(c.Checkout.Tablets, want) {
		t.Errorf("checkout: %+v", c.Checkout)
	}
	if ok, why := c.CheckoutConfigured(); !ok {
		t.Errorf("CheckoutConfigured = false, %q", why)
	}
	if ok, why := c.UpstreamConfigured(); !ok {
		t.Errorf("UpstreamConfigured = false, %q", why)
	}
	if ok, why := c.MokaConfigured(); ok || !strings.Contains(why, "disabled") {
		t.Errorf("MokaConfigured = %v, %q", ok, why)
	}
}

// TestInlineTablesAndDottedKeys: other valid TOML spellings decode the same.
func TestInlineTablesAndDottedKeys(t *testing.T) {
	src := `version = 1
agent = { id = "pc", log_level = "warn" }
moka.currency = "USD"
checkout.tablets = [ { name = "A", token_sha256 = "` + hashA + `" } ]
`
	c := mustParse(t, src)
	if c.Agent.ID != "pc" || c.Agent.LogLevel != "warn" || c.Moka.Currency != "USD" || len(c.Checkout.Tablets) != 1 {
		t.Errorf("got %+v", c)
	}
}

func TestNotepadEncodings(t *testing.T) {
	// UTF-8 with BOM and CRLF line ends, as older Notepad saves.
	src := "\ufeffversion = 1\r\n[moka]\r\nfoo = 1\r\n"
	_, err := Parse("bom.toml", []byte(src))
	if err == nil || err.Error() != "bom.toml:3: moka.foo: unknown key" {
		t.Errorf("BOM/CRLF: %v", err)
	}
	mustParse(t, "\ufeffversion = 1\r\n[moka]\r\ncurrency = \"USD\"\r\n")

	utf16 := []byte{0xFF, 0xFE, 'v', 0, 'e', 0}
	_, err = Parse("u16.toml", utf16)
	if err == nil || !strings.Contains(err.Error(), "UTF-16") {
		t.Errorf("UTF-16: %v", err)
	}
}

func TestBadFiles(t *testing.T) {
	tablet := func(name, hash string) string {
		return "[[checkout.tablets]]\nname = \"" + name + "\"\ntoken_sha256 = \"" + hash + "\"\n"
	}
	tests := []struct {
		name string
		src  string
		want []string // each must appear as a whole line of the error
	}{
		{"unknown top-level key", "version = 1\nfoo = 1\n",
			[]string{"bad.toml:2: foo: unknown key"}},
		{"unknown key in table", "version = 1\n[agent]\nid = \"x\"\nnmae = \"y\"\n",
			[]string{"bad.toml:4: agent.nmae: unknown key"}},
		{"unknown table", "version = 1\n[mokka]\napi = \"apikey\"\n",
			[]string{`bad.toml:2: mokka: unknown key (did you mean "moka"?)`}},
		{"case matters", "version = 1\n[Moka]\n",
			[]string{`bad.toml:2: Moka: unknown key (did you mean "moka"? keys are case-sensitive)`}},
		{"key above its table", "version = 1\npoll_interval = \"5m\"\n[moka]\n",
			[]string{"bad.toml:2: poll_interval: unknown key (it belongs in [moka])"}},
		{"unknown key in second tablet",
			"version = 1\n" + tablet("A", hashA) + tablet("B", hashB) + "color = \"red\"\n",
			[]string{"bad.toml:8: checkout.tablets[1].color: unknown key"}},
		{"typo", "version = 1\n\n[moka]\npol_interval = \"5m\"\n",
			[]string{`bad.toml:4: moka.pol_interval: unknown key (did you mean "poll_interval"?)`}},
		{"unknown key in inline table", "version = 1\nagent = { id = \"x\",\n  bogus = 1 }\n",
			[]string{"bad.toml:3: agent.bogus: unknown key"}},
		{"string for int", "version = 1\n[upstream]\nbatch_size = \"500\"\n",
			[]string{"bad.toml:3: upstream.batch_size: must be an integer, not a string (remove the quotes)"}},
		{"string for bool", "version = 1\n[moka]\nenabled = \"true\"\n",
			[]string{"bad.toml:3: moka.enabled: must be true or false, not a string (remove the quotes)"}},
		{"int for string", "version = 1\n[moka]\nbusiness_id = 42\n",
			[]string{"bad.toml:3: moka.business_id: must be a string in double quotes, not an integer"}},
		{"table expected", "version = 1\nagent = 5\n",
			[]string{"bad.toml:2: agent: must be a table, not an integer"}},
		{"array of tables expected", "version = 1\n[checkout.tablets]\nname = \"A\"\n",
			[]string{"bad.toml:2: checkout.tablets: must be an array of tables: one [[checkout.tablets]] block per entry, not a table"}},
		{"array element type", "version = 1\n[moka]\noutlets = [\n  \"a\",\n  5,\n]\n",
			[]string{"bad.toml:5: moka.outlets[1]: must be a string in double quotes, not an integer"}},
		{"bad duration", "version = 1\n[moka]\npoll_interval = \"5 minutes\"\n",
			[]string{`bad.toml:3: moka.poll_interval: invalid duration "5 minutes": use a Go duration such as "30s", "5m" or "1h"`}},
		{"duration without unit", "version = 1\n[upstream]\ntimeout = 30\n",
			[]string{`bad.toml:3: upstream.timeout: must be a duration string such as "30s" or "5m", not an integer (write a unit, e.g. "30s")`}},
		{"zero duration", "version = 1\n[checkout]\ntimeout = \"0s\"\n",
			[]string{`bad.toml:3: checkout.timeout: must be longer than 0, not "0s"`}},
		{"negative duration", "version = 1\n[upstream]\nflush_interval = \"-5s\"\n",
			[]string{`bad.toml:3: upstream.flush_interval: must be longer than 0, not "-5s"`}},
		{"local api on all interfaces", "version = 1\n[local_api]\nlisten = \"0.0.0.0:8687\"\n",
			[]string{`bad.toml:3: local_api.listen: must be a loopback address such as "127.0.0.1:8687" (the local API has no password), not "0.0.0.0:8687"`}},
		{"local api on LAN", "version = 1\n[local_api]\nlisten = \"192.168.1.5:8687\"\n",
			[]string{`bad.toml:3: local_api.listen: must be a loopback address such as "127.0.0.1:8687" (the local API has no password), not "192.168.1.5:8687"`}},
		{"local api without host", "version = 1\n[local_api]\nlisten = \":8687\"\n",
			[]string{`bad.toml:3: local_api.listen: must be a loopback address such as "127.0.0.1:8687" (the local API has no password), not ":8687"`}},
		{"local api not host:port", "version = 1\n[local_api]\nlisten = \"8687\"\n",
			[]string{`bad.toml:3: local_api.listen: must be host:port such as "127.0.0.1:8686", not "8687"`}},
		{"checkout bad port", "version = 1\n[checkout]\nlisten = \"0.0.0.0:99999\"\n",
			[]string{`bad.toml:3: checkout.listen: port must be a number from 1 to 65535 in "0.0.0.0:99999"`}},
		{"checkout bad host", "version = 1\n[checkout]\nlisten = \"bad host!:8686\"\n",
			[]string{`bad.toml:3: checkout.listen: "bad host!" is neither an IP address nor a host name`}},
		{"listen conflict", "version = 1\n[checkout]\nenabled = true\nlisten = \"0.0.0.0:8687\"\n",
			[]string{"bad.toml:4: checkout.listen: must use another port than local_api.listen (127.0.0.1:8687)"}},
		{"listen conflict localhost", "version = 1\n[checkout]\nenabled = true\nlisten = \"localhost:8000\"\n[local_api]\nlisten = \"127.0.0.1:8000\"\n",
			[]string{"bad.toml:4: checkout.listen: must use another port than local_api.listen (127.0.0.1:8000)"}},
		{"backfill 181", "version = 1\n[moka]\ninitial_backfill_days = 181\n",
			[]string{"bad.toml:3: moka.initial_backfill_days: must be between 1 and 180, not 181"}},
		{"backfill 0", "version = 1\n[moka]\ninitial_backfill_days = 0\n",
			[]string{"bad.toml:3: moka.initial_backfill_days: must be between 1 and 180, not 0"}},
		{"rate 0", "version = 1\n[moka]\nrequests_per_minute = 0\n",
			[]string{"bad.toml:3: moka.requests_per_minute: must be between 1 and 6000, not 0"}},
		{"batch too big", "version = 1\n[upstream]\nbatch_size = 10001\n",
			[]string{"bad.toml:3: upstream.batch_size: must be between 1 and 10000, not 10001"}},
		{"max pending 0", "version = 1\n[upstream]\nmax_pending_mb = 0\n",
			[]string{"bad.toml:3: upstream.max_pending_mb: must be between 1 and 1048576, not 0"}},
		{"bad timezone", "version = 1\n[moka]\ntimezone = \"Asia/Jakata\"\n",
			[]string{`bad.toml:3: moka.timezone: unknown time zone "Asia/Jakata": use an IANA name such as "Asia/Jakarta", "Asia/Makassar" or "UTC"`}},
		{"empty timezone", "version = 1\n[moka]\ntimezone = \"\"\n",
			[]string{`bad.toml:3: moka.timezone: must not be empty: use an IANA time zone such as "Asia/Jakarta"`}},
		{"currency", "version = 1\n[moka]\ncurrency = \"idr\"\n",
			[]string{`bad.toml:3: moka.currency: must be a 3-letter upper-case ISO 4217 code such as "IDR", not "idr"`}},
		{"log level", "version = 1\n[agent]\nlog_level = \"verbose\"\n",
			[]string{`bad.toml:3: agent.log_level: must be "debug", "info", "warn" or "error", not "verbose"`}},
		{"language", "version = 1\n[agent]\nlanguage = \"fr\"\n",
			[]string{`bad.toml:3: agent.language: must be "auto", "id" or "en", not "fr"`}},
		{"blank id", "version = 1\n[agent]\nid = \"  \"\n",
			[]string{`bad.toml:3: agent.id: must not be blank (leave it out to use the host name)`}},
		{"moka api", "version = 1\n[moka]\napi = \"basic\"\n",
			[]string{`bad.toml:3: moka.api: must be "apikey" (integration-guide API key) or "oauth" (Moka Open API), not "basic"`}},
		{"url scheme", "version = 1\n[moka]\nbase_url = \"api.mokapos.com\"\n",
			[]string{"bad.toml:3: moka.base_url: must start with https:// (or http://)"}},
		{"url empty", "version = 1\n[checkout]\nbase_url = \"\"\n",
			[]string{"bad.toml:3: checkout.base_url: must not be empty"}},
		{"url credentials", "version = 1\n[upstream]\nurl = \"https://user:pw@ingest.example\"\n",
			[]string{"bad.toml:3: upstream.url: must not contain a user name or password: credentials have their own keys"}},
		{"url query", "version = 1\n[moka]\nauthorize_url = \"https://x.example/a?b=c\"\n",
			[]string{"bad.toml:3: moka.authorize_url: must not have a query (?...) or fragment (#...)"}},
		{"url no host", "version = 1\n[upstream]\nurl = \"https:///v1\"\n",
			[]string{"bad.toml:3: upstream.url: must name a host, e.g. https://example.com"}},
		{"bad token_sha256", "version = 1\n" + tablet("A", strings.ToUpper(hashA)),
			[]string{"bad.toml:4: checkout.tablets[0].token_sha256: must be 64 lower-case hex characters: the SHA-256 of the tablet's token, not the token (use `pwbi-agent tablet add`)"}},
		{"short token_sha256", "version = 1\n" + tablet("A", "abc"),
			[]string{"bad.toml:4: checkout.tablets[0].token_sha256: must be 64 lower-case hex characters: the SHA-256 of the tablet's token, not the token (use `pwbi-agent tablet add`)"}},
		{"missing token_sha256", "version = 1\n[[checkout.tablets]]\nname = \"A\"\n",
			[]string{"bad.toml:2: checkout.tablets[0].token_sha256: is required: the SHA-256 of the tablet's token (use `pwbi-agent tablet add`)"}},
		{"tablet names", "version = 1\n" + tablet("", hashA) + tablet("Bar", hashB) + tablet("bar ", strings.Repeat("c", 64)),
			[]string{"bad.toml:3: checkout.tablets[0].name: must not be empty",
				`bad.toml:9: checkout.tablets[2].name: tablet name "bar " is already used by checkout.tablets[1]`}},
		{"tablet same token", "version = 1\n" + tablet("A", hashA) + tablet("B", hashA),
			[]string{"bad.toml:7: checkout.tablets[1].token_sha256: same token as checkout.tablets[0]: every tablet needs its own token"}},
		{"outlets", "version = 1\n[moka]\noutlets = [\n  \"a\",\n  \"\",\n  \"a\",\n]\n",
			[]string{"bad.toml:5: moka.outlets[1]: outlet id must not be empty",
				`bad.toml:6: moka.outlets[2]: outlet id "a" is listed twice (also moka.outlets[0])`}},
		{"both api_key and file", "version = 1\n[moka]\napi_key = \"k\"\napi_key_file = \"key.txt\"\n",
			[]string{"bad.toml:4: moka.api_key_file: set either moka.api_key or moka.api_key_file, not both"}},
		{"syntax error", "version = 1\n[moka]\nenabled = yes\n",
			[]string{`bad.toml:3: syntax error: expected value but found "yes" instead`}},
		{"duplicate key", "version = 1\n[moka]\napi = \"apikey\"\napi = \"oauth\"\n",
			[]string{"bad.toml:4: syntax error: Key 'moka.api' has already been defined."}},
		{"missing version", "[agent]\n",
			[]string{"bad.toml: version: version = 1 is required (put it at the top of the file)"}},
		{"empty file", "",
			[]string{"bad.toml: version: version = 1 is required (put it at the top of the file)"}},
		{"version 2", "version = 2\n",
			[]string{"bad.toml:1: version: unsupported version 2: this agent reads version = 1"}},
		{"version string", "version = \"1\"\n",
			[]string{"bad.toml:1: version: must be an integer, not a string (remove the quotes)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("bad.toml", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", c)
			}
			if c != nil {
				t.Errorf("Parse returned a config with an error")
			}
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("error %T is not Problems", err)
			}
			lines := strings.Split(err.Error(), "\n")
			for _, w := range tt.want {
				if !slices.Contains(lines, w) {
					t.Errorf("missing problem\n  %s\ngot:\n  %s", w, strings.Join(lines, "\n  "))
				}
			}
			if len(lines) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n  %s", len(lines), len(tt.want), strings.Join(lines, "\n  "))
			}
		})
	}
}

func TestMultipleProblems(t *testing.T) {
	src := `version = 1
bogus = true
[agent]
log_level = "loud"
[moka]
pol_interval = "5m"
timezone = "Mars/Olympus"
initial_backfill_days = 365
requests_per_minute = "60"
[upstream]
batch_size = 0
[[checkout.tablets]]
name = "A"
token_sha256 = "nothex"
[[checkout.tablets]]
name = "B"
extra = 1
[local_api]
listen = "0.0.0.0:8687"
`
	_, err := Parse("multi.toml", []byte(src))
	var probs Problems
	if !errors.As(err, &probs) {
		t.Fatalf("Parse: %v", err)
	}
	wantLines := []int{2, 4, 6, 7, 8, 9, 11, 14, 15, 17, 19}
	var gotLines []int
	for _, p := range probs {
		gotLines = append(gotLines, p.Line)
		if p.File != "multi.toml" || p.Key == "" || p.Msg == "" {
			t.Errorf("incomplete problem %#v", p)
		}
	}
	if !slices.Equal(gotLines, wantLines) {
		t.Errorf("problem lines = %v, want %v\n%v", gotLines, wantLines, err)
	}
	// errors.As finds a single Problem too.
	var one Problem
	if !errors.As(err, &one) || one.Key != "bogus" {
		t.Errorf("errors.As(Problem) = %#v", one)
	}
}

func TestProblemError(t *testing.T) {
	for _, tt := range []struct {
		p    Problem
		want string
	}{
		{Problem{"c.toml", 3, "moka.api", "bad"}, "c.toml:3: moka.api: bad"},
		{Problem{"c.toml", 0, "version", "missing"}, "c.toml: version: missing"},
		{Problem{"c.toml", 4, "", "syntax"}, "c.toml:4: syntax"},
		{Problem{"", 4, "k", "m"}, "line 4: k: m"},
		{Problem{"", 0, "", "m"}, "m"},
	} {
		if got := tt.p.Error(); got != tt.want {
			t.Errorf("%#v.Error() = %q, want %q", tt.p, got, tt.want)
		}
	}
	ps := Problems{{"a", 1, "k", "x"}, {"a", 2, "l", "y"}}
	if got := ps.Error(); got != "a:1: k: x\na:2: l: y" {
		t.Errorf("Problems.Error() = %q", got)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSecretFilesAndRelativePaths(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "conf", "moka.key"), "moka-secret-1\r\n")
	writeFile(t, filepath.Join(dir, "conf", "secrets", "client.txt"), "\ufeffclient-secret-2\n\n")
	writeFile(t, filepath.Join(dir, "upstream.tok"), "  upstream-token-3  \n")
	writeFile(t, filepath.Join(dir, "conf", "mokka.key"), "mokka-key-4")
	cfgPath := filepath.Join(dir, "conf", "config.toml")
	writeFile(t, cfgPath, `version = 1
[agent]
data_dir = "data/../state"
[moka]
api_key_file = "moka.key"
client_secret_file = "secrets/client.txt"
[upstream]
token_file = "`+filepath.ToSlash(filepath.Join(dir, "upstream.tok"))+`"
[checkout]
secret_key_file = "./mokka.key"
`)
	c, err := Load(cfgPath)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	conf := filepath.Join(dir, "conf")
	checks := []struct{ name, got, want string }{
		{"Path", c.Path, cfgPath},
		{"DataDir", c.Agent.DataDir, filepath.Join(conf, "state")},
		{"APIKey", c.Moka.APIKey.Value(), "moka-secret-1"},
		{"APIKeyFile", c.Moka.APIKeyFile, filepath.Join(conf, "moka.key")},
		{"ClientSecret", c.Moka.ClientSecret.Value(), "client-secret-2"},
		{"ClientSecretFile", c.Moka.ClientSecretFile, filepath.Join(conf, "secrets", "client.txt")},
		{"Token", c.Upstream.Token.Value(), "upstream-token-3"},
		{"TokenFile", c.Upstream.TokenFile, filepath.Join(dir, "upstream.tok")},
		{"SecretKey", c.Checkout.SecretKey.Value(), "mokka-key-4"},
		{"SecretKeyFile", c.Checkout.SecretKeyFile, filepath.Join(conf, "mokka.key")},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}

	// A relative config path is made absolute.
	t.Chdir(dir)
	c, err = Load(filepath.Join("conf", "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != cfgPath || c.Moka.APIKey.Value() != "moka-secret-1" {
		t.Errorf("relative load: Path %q", c.Path)
	}
}

func TestSecretFileProblems(t *testing.T) {
	const secret = "VERY-SECRET-VALUE"
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "empty.txt"), " \n")
	writeFile(t, filepath.Join(dir, "huge.txt"), strings.Repeat(secret, 5000))
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.toml")
	writeFile(t, cfgPath, `version = 1
[moka]
api_key_file = "missing.txt"
client_secret_file = "empty.txt"
[upstream]
token_file = "huge.txt"
[checkout]
secret_key = "`+secret+`"
secret_key_file = "adir"
`)
	_, err := Load(cfgPath)
	if err == nil {
		t.Fatal("Load succeeded")
	}
	msg := err.Error()
	for _, want := range []string{
		cfgPath + ":3: moka.api_key_file: cannot read the secret file: ", // then the OS's words
		filepath.Join(dir, "missing.txt"),
		cfgPath + ":4: moka.client_secret_file: the secret file " + filepath.Join(dir, "empty.txt") + " is empty",
		cfgPath + ":6: upstream.token_file: the secret file " + filepath.Join(dir, "huge.txt") + " is larger than 64 KiB",
		cfgPath + ":9: checkout.secret_key_file: set either checkout.secret_key or checkout.secret_key_file, not both",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in\n%s", want, msg)
		}
	}
	if strings.Contains(msg, secret) {
		t.Errorf("problems reveal the secret:\n%s", msg)
	}

	writeFile(t, cfgPath, "version = 1\n[checkout]\nsecret_key_file = \"adir\"\n")
	if _, err := Load(cfgPath); err == nil || !strings.Contains(err.Error(), "is not a regular file") {
		t.Errorf("directory as secret file: %v", err)
	}
}

func TestNeedsSetupIsNotAnError(t *testing.T) {
	// A fresh install: the Moka Open API, not connected yet; the reason
	// says what to fill in and leads to "Connect Moka".
	c := mustParse(t, "version = 1\n[checkout]\nenabled = true\n")
	if ok, why := c.MokaConfigured(); ok || c.Moka.API != MokaOAuth || !strings.Contains(why, "moka.client_id") ||
		!strings.Contains(why, "moka.client_secret") || !strings.Contains(why, "Connect Moka") {
		t.Errorf("MokaConfigured = %v %q", ok, why)
	}
	if ok, why := c.UpstreamConfigured(); ok || !strings.Contains(why, "upstream.url") {
		t.Errorf("UpstreamConfigured = %v %q", ok, why)
	}
	if ok, why := c.CheckoutConfigured(); ok || why != "checkout.store_id is not set" {
		t.Errorf("CheckoutConfigured = %v %q", ok, why)
	}

	c = mustParse(t, "version = 1\n[moka]\napi = \"apikey\"\n")
	if ok, why := c.MokaConfigured(); ok || why != "moka.business_id is not set" {
		t.Errorf("MokaConfigured(apikey) = %v %q", ok, why)
	}
	c = mustParse(t, "version = 1\n[moka]\napi = \"apikey\"\nbusiness_id = \"b\"\n")
	if ok, why := c.MokaConfigured(); ok || !strings.Contains(why, "moka.api_key") {
		t.Errorf("MokaConfigured = %v %q", ok, why)
	}
	c = mustParse(t, "version = 1\n[moka]\napi = \"apikey\"\nbusiness_id = \"b\"\napi_key = \"k\"\n")
	if ok, why := c.MokaConfigured(); !ok {
		t.Errorf("MokaConfigured = false %q", why)
	}
	// An API key without api = "apikey" is not used: the default is oauth.
	c = mustParse(t, "version = 1\n[moka]\nbusiness_id = \"b\"\napi_key = \"k\"\n")
	if ok, _ := c.MokaConfigured(); ok {
		t.Error("an api_key configures the default (oauth) dialect")
	}
	c = mustParse(t, "version = 1\n[moka]\nclient_secret = \"s\"\n")
	if ok, why := c.MokaConfigured(); ok || !strings.HasPrefix(why, "moka.client_id is not set") || !strings.Contains(why, "Connect Moka") {
		t.Errorf("MokaConfigured(no client id) = %v %q", ok, why)
	}
	c = mustParse(t, "version = 1\n[moka]\napi = \"oauth\"\nclient_id = \"c\"\n")
	if ok, why := c.MokaConfigured(); ok || !strings.Contains(why, "moka.client_secret") {
		t.Errorf("MokaConfigured(oauth) = %v %q", ok, why)
	}
	if got := c.Moka.AuthorizeEndpoint(); got != "https://api.mokapos.com/oauth/authorize" {
		t.Errorf("AuthorizeEndpoint = %q", got)
	}
	c = mustParse(t, "version = 1\n[upstream]\nurl = \"https://x.example\"\n")
	if ok, why := c.UpstreamConfigured(); ok || !strings.Contains(why, "upstream.token") {
		t.Errorf("UpstreamConfigured = %v %q", ok, why)
	}
	c = mustParse(t, "version = 1\n[checkout]\nenabled = true\nstore_id = \"s\"\nsecret_key = \"k\"\n")
	if ok, why := c.CheckoutConfigured(); ok || !strings.Contains(why, "tablet add") {
		t.Errorf("CheckoutConfigured = %v %q", ok, why)
	}
}

func TestRestartRequired(t *testing.T) {
	a := mustParse(t, "version = 1\n[agent]\ndata_dir = \"/a\"\n")
	b := mustParse(t, "version = 1\n[agent]\ndata_dir = \"/a\"\nlog_level = \"debug\"\n[moka]\npoll_interval = \"1m\"\n")
	if got := b.RestartRequired(a); len(got) != 0 {
		t.Errorf("RestartRequired = %v, want none", got)
	}
	c := mustParse(t, "version = 1\n[agent]\ndata_dir = \"/b\"\n")
	if got := c.RestartRequired(a); !slices.Equal(got, []string{"agent.data_dir"}) {
		t.Errorf("RestartRequired = %v", got)
	}
	if got := c.RestartRequired(nil); got != nil {
		t.Errorf("RestartRequired(nil) = %v", got)
	}
	if a.SHA256 == b.SHA256 {
		t.Error("different files, same SHA256")
	}
}

func TestListenConflict(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"127.0.0.1:8686", "127.0.0.1:8687", false},
		{"127.0.0.1:8687", "127.0.0.1:8687", true},
		{"0.0.0.0:8687", "127.0.0.1:8687", true},
		{":8687", "[::1]:8687", true},
		{"[::]:8687", "127.0.0.1:8687", true},
		{"localhost:8687", "[::1]:8687", true},
		{"192.168.1.5:8687", "127.0.0.1:8687", false},
		{"[::ffff:127.0.0.1]:1", "127.0.0.1:1", true},
	} {
		if got := listenConflict(tt.a, tt.b); got != tt.want {
			t.Errorf("listenConflict(%q, %q) = %v", tt.a, tt.b, got)
		}
	}
	// Disabled checkout does not conflict.
	mustParse(t, "version = 1\n[checkout]\nlisten = \"127.0.0.1:8687\"\n")
}

func TestLoopback(t *testing.T) {
	for _, h := range []string{"127.0.0.1", "127.1.2.3", "::1", "localhost", "LOCALHOST", "::ffff:127.0.0.1"} {
		if !isLoopback(h) {
			t.Errorf("isLoopback(%q) = false", h)
		}
	}
	for _, h := range []string{"", "0.0.0.0", "::", "192.168.1.5", "localhost.example", "example.com"} {
		if isLoopback(h) {
			t.Errorf("isLoopback(%q) = true", h)
		}
	}
}

func TestDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{5 * time.Minute, "5m"}, {time.Hour, "1h"}, {90 * time.Minute, "1h30m"},
		{30 * time.Second, "30s"}, {1500 * time.Millisecond, "1.5s"}, {0, "0s"},
		{time.Hour + time.Second, "1h0m1s"},
	} {
		b, _ := Duration{tt.d}.MarshalText()
		if string(b) != tt.want {
			t.Errorf("MarshalText(%v) = %q, want %q", tt.d, b, tt.want)
		}
		var back Duration
		if err := back.UnmarshalText(b); err != nil || back.Duration != tt.d {
			t.Errorf("round trip %q = %v, %v", b, back, err)
		}
	}
}

func TestValidate(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	c.Moka.InitialBackfillDays = 0
	c.LocalAPI.Listen = "0.0.0.0:1"
	c.Checkout.Tablets = []Tablet{{Name: "x", TokenSHA256: "nope"}}
	err := c.Validate()
	var probs Problems
	if !errors.As(err, &probs) || len(probs) != 3 {
		t.Fatalf("Validate = %v", err)
	}
	if probs[0].Line != 0 || probs[0].Key == "" {
		t.Errorf("problem %#v", probs[0])
	}
}

func TestAddTablet(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	data = AddTablet(data, `Front "counter"`, hashA)
	data = AddTablet(data, "Terrace\t2", hashB)
	c, err := Parse(examplePath, data)
	if err != nil {
		t.Fatalf("Parse after AddTablet: %v", err)
	}
	want := []Tablet{{`Front "counter"`, hashA}, {"Terrace\t2", hashB}}
	if !reflect.DeepEqual(c.Checkout.Tablets, want) {
		t.Errorf("tablets = %#v", c.Checkout.Tablets)
	}
	if got := string(AddTablet([]byte("version = 1"), "a", hashA)); got != "version = 1\n\n[[checkout.tablets]]\nname = \"a\"\ntoken_sha256 = \""+hashA+"\"\n" {
		t.Errorf("AddTablet without final newline = %q", got)
	}
}

func TestParseConcurrent(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	bad := []byte("version = 1\n[mokka]\n[moka]\npol_interval = 1\n")
	done := make(chan error)
	for i := range 8 {
		go func() {
			src := data
			if i%2 == 1 {
				src = bad
			}
			_, err := Parse("c.toml", src)
			if (err != nil) != (i%2 == 1) {
				done <- fmt.Errorf("goroutine %d: %v", i, err)
				return
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// mapKeys iterates over the keys of m.
func mapKeys(m map[string]bool) func(yield func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
