package natssink

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/store"
)

// untoken inverts Token, for the tests.
func untoken(tok string) (string, bool) {
	if tok == "_" {
		return "", true
	}
	var b strings.Builder
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c != '%' {
			if !tokenSafe(c) {
				return "", false
			}
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(tok) {
			return "", false
		}
		v, err := strconv.ParseUint(tok[i+1:i+3], 16, 8)
		if err != nil || strings.ToUpper(tok[i+1:i+3]) != tok[i+1:i+3] {
			return "", false
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), true
}

func TestTokenEscapesWhatCouldChangeTheSubject(t *testing.T) {
	for in, want := range map[string]string{
		"outlet_456": "outlet_456",
		"biz-1":      "biz-1",
		"":           "_",
		"_":          "%5F",
		"a.b":        "a%2Eb",
		"a b":        "a%20b",
		"*":          "%2A",
		">":          "%3E",
		"50%":        "50%25",
		"kopi☕":      "kopi%E2%98%95",
		"a\tb\r\n":   "a%09b%0D%0A",
	} {
		if got := Token(in); got != want {
			t.Errorf("Token(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzToken: every id becomes one valid subject token (no dot, white
// space, wildcard or empty token), and distinct ids stay distinct.
func FuzzToken(f *testing.F) {
	for _, s := range []string{"", "_", "outlet_456", "a.b", "a b", "*", ">", "%", "%5F", "☕", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		tok := Token(id)
		if tok == "" || strings.ContainsAny(tok, ". \t\r\n*>") {
			t.Fatalf("Token(%q) = %q: not a single safe token", id, tok)
		}
		back, ok := untoken(tok)
		if !ok || back != id {
			t.Fatalf("Token(%q) = %q decodes to %q (%v): not injective", id, tok, back, ok)
		}
		subj := Subject("pwbi", id, store.Record{Kind: id, Key: "moka/" + id + "/" + id + "/x"})
		if n := strings.Count(subj, "."); n != 4 {
			t.Fatalf("Subject with id %q = %q: %d dots, want 4", id, subj, n)
		}
	})
}

func TestSubjectTakesBusinessAndOutletFromTheKey(t *testing.T) {
	for key, want := range map[string]string{
		"moka/biz_1/outlet_456/MOK1":              "pwbi.pc.transaction.biz_1.outlet_456",
		"moka/biz_1//products/P1":                 "pwbi.pc.transaction.biz_1._",
		"moka/biz%2F2/out%2E1%20x/MOK2":           "pwbi.pc.transaction.biz%2F2.out%2E1%20x",
		"mokka/store-9/ord-1":                     "pwbi.pc.transaction._._",
		"moka/short":                              "pwbi.pc.transaction._._",
		"moka/bad%zz/outlet/MOK":                  "pwbi.pc.transaction.bad%25zz.outlet",
		"moka/biz_1/outlet_456/products/PROD%2F1": "pwbi.pc.transaction.biz_1.outlet_456",
	} {
		if got := Subject("pwbi", "pc", store.Record{Kind: "transaction", Key: key}); got != want {
			t.Errorf("key %q: subject %q, want %q", key, got, want)
		}
	}
}

func TestHeadersAndPayload(t *testing.T) {
	cfg := Config{AgentID: "pc 1", Stream: "PWBI", SubjectPrefix: "pwbi"}
	r := store.Record{Kind: "product", Key: "moka/b/o/products/p\r\nX", Seq: 42, Version: "v1", Data: json.RawMessage(`{"a":1}`)}
	m := message(cfg, r, 50)
	for h, want := range map[string]string{
		"Nats-Msg-Id":          "pc 1:42",
		"Nats-Expected-Stream": "PWBI",
		"Pwbi-Key":             "moka/b/o/products/p%0D%0AX",
		"Pwbi-Seq":             "42",
		"Pwbi-Version":         "v1",
		"Pwbi-Max-Seq":         "50",
	} {
		if got := m.Header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	if got := string(m.Data); got != `{"kind":"product","key":"moka/b/o/products/p\r\nX","seq":42,"version":"v1","data":{"a":1}}` {
		t.Errorf("payload %s", got)
	}
	if m := message(cfg, store.Record{Kind: "transaction", Key: "k", Seq: 1}, 0); m.Header.Get(HeaderMaxSeq) != "" || !json.Valid(m.Data) {
		t.Errorf("record without data: headers %v, payload %s", m.Header, m.Data)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{URLs: []string{"nats://n1:4222", "tls://n2", "n3:4222"}, AgentID: "pc"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, tc := range map[string]struct {
		mod  func(*Config)
		want string
	}{
		"no url":          {func(c *Config) { c.URLs = nil }, "no server url"},
		"http url":        {func(c *Config) { c.URLs = []string{"http://n1"} }, "nats://"},
		"user in url":     {func(c *Config) { c.URLs = []string{"nats://u:SECRETPW@n1"} }, "must not contain a user"},
		"bad port":        {func(c *Config) { c.URLs = []string{"nats://n1:99999"} }, "port"},
		"two auth":        {func(c *Config) { c.CredsFile, c.NKeySeedFile = "a", "b" }, "only one"},
		"user no pass":    {func(c *Config) { c.User = "u" }, "go together"},
		"cert no key":     {func(c *Config) { c.TLSCertFile = "c" }, "go together"},
		"wildcard prefix": {func(c *Config) { c.SubjectPrefix = "pwbi.*" }, "wildcards"},
		"empty token":     {func(c *Config) { c.SubjectPrefix = "a..b" }, "empty token"},
		"space prefix":    {func(c *Config) { c.SubjectPrefix = "a b" }, "without spaces"},
		"dollar prefix":   {func(c *Config) { c.SubjectPrefix = "$JS" }, "reserved"},
		"dotted stream":   {func(c *Config) { c.Stream = "a.b" }, "stream"},
		"no agent":        {func(c *Config) { c.AgentID = " " }, "agent id"},
		"window":          {func(c *Config) { c.MaxInFlight = MaxMaxInFlight + 1 }, "max in flight"},
	} {
		c := ok
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "SECRETPW") {
			t.Errorf("%s: error repeats the password: %v", name, err)
		}
	}
	// An invalid config is answered with a Problem, never sent.
	bad := New(Config{URLs: []string{"http://x"}, AgentID: "pc"}, Options{})
	if a := bad.Send(t.Context(), records(1, 1)); a.Err == nil || !strings.Contains(a.Problem, "[nats] settings are invalid") {
		t.Errorf("invalid config: %+v", a)
	}
	if New(Config{AgentID: "pc"}, Options{}).Endpoint() != "" {
		t.Error("no URL: Endpoint must be empty")
	}
}

func TestEndpointCoversWhereAndAsWhom(t *testing.T) {
	base := Config{URLs: []string{"nats://n1"}, AgentID: "pc", User: "u", Password: "pw-SECRET", Timeout: time.Second}
	e := New(base, Options{}).Endpoint()
	if strings.Contains(e, "pw-SECRET") || e == "" {
		t.Fatalf("endpoint %q", e)
	}
	for name, mod := range map[string]func(*Config){
		"url":      func(c *Config) { c.URLs = []string{"nats://n2"} },
		"password": func(c *Config) { c.Password = "other" },
		"agent":    func(c *Config) { c.AgentID = "pc2" },
		"stream":   func(c *Config) { c.Stream = "OTHER" },
		"prefix":   func(c *Config) { c.SubjectPrefix = "x" },
		"ca":       func(c *Config) { c.TLSCAFile = "ca.pem" },
	} {
		c := base
		mod(&c)
		if New(c, Options{}).Endpoint() == e {
			t.Errorf("%s changed: same endpoint", name)
		}
	}
	c := base
	c.Timeout = time.Minute // not where nor as whom
	if New(c, Options{}).Endpoint() != e {
		t.Error("timeout changed the endpoint")
	}
}

// A reloaded sink that connects alike shares the connection and what it
// learnt; one that differs gets its own, and closing the old one does not
// close the new one's.
func TestPreviousSinkSharesItsConnection(t *testing.T) {
	c := newCluster(t, 1)
	_, js := c.client()
	createStream(t, js, streamConfig(1, time.Minute))
	first := New(testConfig(c), Options{})
	if a := send(t, first, records(1, 10)); a.Err != nil {
		t.Fatal(a.Err)
	}
	second := New(testConfig(c), Options{Previous: first})
	first.Close()
	if second.link != first.link {
		t.Fatal("same settings: the connection is not shared")
	}
	if a := send(t, second, records(11, 10)); a.Err != nil {
		t.Fatalf("after the old sink closed: %v", a.Err)
	}
	if st := second.Stats(); st.Resyncs != 1 || !st.Connected {
		t.Errorf("stats %+v: want the first resync only, still connected", st)
	}
	cfg := testConfig(c)
	cfg.MaxInFlight = 7
	third := New(cfg, Options{Previous: second})
	defer third.Close()
	if third.link == second.link {
		t.Fatal("other settings: the connection is shared")
	}
	second.Close()
	if a := send(t, third, records(21, 10)); a.Err != nil {
		t.Fatalf("third: %v", a.Err)
	}
	if a := send(t, second, records(31, 1)); a.Verdict != sink.Retry {
		t.Fatalf("a closed sink answered %v", a.Verdict)
	}
	checkExactlyOnce(t, readStream(t, js, DefaultStream), testAgent, seqRange(1, 30))
}

// FuzzParseStoredMsg: the message-get answer is outside input; whatever it
// is, parsing neither panics nor yields a message without a sequence.
func FuzzParseStoredMsg(f *testing.F) {
	f.Add([]byte(`{"message":{"subject":"pwbi.a.transaction.b.o","seq":7,"hdrs":"TkFUUy8xLjANClB3YmktU2VxOiA0Mg0KDQo="}}`))
	f.Add([]byte(`{"error":{"code":404,"err_code":10037,"description":"no message found"}}`))
	f.Add([]byte(`{"message":{"seq":3,"hdrs":"TkFUUy8xLjANClB3YmktU2VxOiAxDQpQd2JpLU1heC1TZXE6IDkNCg0K"}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseStoredMsg(data)
		if err != nil {
			return
		}
		if m.seq == 0 || m.recSeq == 0 || m.level < m.recSeq {
			t.Fatalf("parsed %+v from %q", m, data)
		}
	})
}

func TestParseStoredMsg(t *testing.T) {
	m, err := parseStoredMsg([]byte(`{"message":{"subject":"s","seq":3,"hdrs":"TkFUUy8xLjANClB3YmktU2VxOiAxDQpQd2JpLU1heC1TZXE6IDkNCg0K"}}`))
	if err != nil || m.seq != 3 || m.recSeq != 1 || m.level != 9 {
		t.Fatalf("got %+v, %v; want seq 3, Pwbi-Seq 1, level 9", m, err)
	}
	if _, err := parseStoredMsg([]byte(`{"error":{"code":404,"err_code":10037,"description":"no message found"}}`)); err != errNotFound {
		t.Errorf("not found: %v", err)
	}
	var fe *foreignError
	if _, err := parseStoredMsg([]byte(`{"message":{"subject":"pwbi.x","seq":5}}`)); err == nil || !asForeign(err, &fe) || fe.seq != 5 {
		t.Errorf("no headers: %v", err)
	}
}

func asForeign(err error, fe **foreignError) bool {
	f, ok := err.(*foreignError)
	*fe = f
	return ok
}
