package natssink

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/internal/testutil"
)

// probe runs Probe against c (nil: no server) and fails the test unless
// the probe's connection is gone from every server afterwards, whatever
// the result.
func probe(t *testing.T, c *cluster, cfg Config) (ProbeResult, *ProbeError) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := Probe(ctx, cfg, "test")
	if c != nil {
		testutil.WaitFor(t, "the probe's connection closed", waitLimit, func() bool { return probeConns(t, c) == 0 })
	}
	if err == nil {
		return res, nil
	}
	var pe *ProbeError
	if !errors.As(err, &pe) {
		t.Fatalf("probe error %T %v: want a *ProbeError", err, err)
	}
	return res, pe
}

// probeConns is how many connections of a probe (named "pwbi-agent/test
// …", see connOptions) the running servers of c hold open.
func probeConns(t *testing.T, c *cluster) int {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.servers {
		if s == nil {
			continue
		}
		cz, err := s.Connz(&server.ConnzOptions{})
		if err != nil {
			t.Fatalf("connz: %v", err)
		}
		for _, ci := range cz.Conns {
			if strings.HasPrefix(ci.Name, "pwbi-agent/test ") {
				n++
			}
		}
	}
	return n
}

// streamMsgs is how many messages the stream holds.
func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	info, err := streamInfo(js, name)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return info.State.Msgs
}

// The stream as docs/nats.md defines it: the probe reports the server, the
// stream's replicas and atomic batches, and the agent's last seq, and
// publishes nothing.
func TestProbeReportsStreamAndAgentPosition(t *testing.T) {
	c := newCluster(t, 1)
	_, js := c.client()
	createStream(t, js, streamConfig(1, time.Minute))

	res, pe := probe(t, c, testConfig(c))
	if pe != nil {
		t.Fatalf("probe of an empty stream: %v (%s)", pe, pe.Problem.Text)
	}
	if res.Server != "n1" || res.ServerVersion == "" || res.Stream != DefaultStream || !res.Described ||
		res.Replicas != 1 || !res.Atomic || res.Missing || res.LastSeq != 0 {
		t.Fatalf("probe of an empty stream: %+v", res)
	}

	s := New(testConfig(c), Options{})
	defer s.Close()
	if a := send(t, s, records(1, 7)); a.Verdict != sink.Accepted {
		t.Fatalf("send: %v: %v", a.Verdict, a.Err)
	}
	before := streamMsgs(t, js, DefaultStream)
	res, pe = probe(t, c, testConfig(c))
	if pe != nil || res.LastSeq != 7 {
		t.Fatalf("probe after 7 records: %+v, %v", res, pe)
	}
	if after := streamMsgs(t, js, DefaultStream); after != before {
		t.Fatalf("the probe changed the stream: %d messages, then %d", before, after)
	}
}

// A stream whose subjects leave out some of the agent's subjects is named
// with the first subject it misses.
func TestProbeStreamNotCapturingTheAgent(t *testing.T) {
	c := newCluster(t, 1)
	_, js := c.client()
	sc := streamConfig(1, time.Minute)
	sc.Subjects = []string{"pwbi.*.transaction.>", "pwbi.*.mokka_order.>"}
	createStream(t, js, sc)

	res, pe := probe(t, c, testConfig(c))
	want := "pwbi.cafe%2E01%20pc.product.*.*"
	if pe == nil || pe.Kind != ProbeNotCaptured || pe.Subject != want || pe.Problem.Code != "HealthNatsNotCaptured" {
		t.Fatalf("probe: %+v, %+v; want not captured %s", res, pe, want)
	}
	if !res.Described || res.Server == "" {
		t.Errorf("what was learnt before the failure is kept: %+v", res)
	}
}

// No stream: an error naming it; with create_stream the sink would create
// it, which the probe reports and does not do.
func TestProbeMissingStream(t *testing.T) {
	c := newCluster(t, 1)
	_, js := c.client()

	_, pe := probe(t, c, testConfig(c))
	if pe == nil || pe.Kind != ProbeFailed || pe.Problem.Code != "HealthNatsNoStream" {
		t.Fatalf("probe without a stream: %+v", pe)
	}

	cfg := testConfig(c)
	cfg.CreateStream = true
	res, pe := probe(t, c, cfg)
	if pe != nil || !res.Missing {
		t.Fatalf("probe with create_stream: %+v, %v", res, pe)
	}
	if _, err := streamInfo(js, DefaultStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("the probe created the stream (or cannot tell): %v", err)
	}
}

// Nothing listens at the address: unreachable, with the network's cause.
func TestProbeUnreachable(t *testing.T) {
	cfg := Config{URLs: []string{"nats://" + testutil.FreeAddr(t)}, AgentID: testAgent, Timeout: 3 * time.Second}
	_, pe := probe(t, nil, cfg)
	if pe == nil || pe.Kind != ProbeUnreachable || pe.Cause == "" {
		t.Fatalf("probe of a closed port: %+v", pe)
	}
}

// A wrong password: refused credentials, and the password appears nowhere.
func TestProbeWrongPassword(t *testing.T) {
	const password = "pw-PROBE-5ec7"
	c := newCluster(t, 1, func(o *server.Options) {
		o.Users = []*server.User{{Username: "agent", Password: password}}
	})
	_, js := c.client(nats.UserInfo("agent", password))
	createStream(t, js, streamConfig(1, time.Minute))

	cfg := Config{URLs: c.urls(), AgentID: testAgent, User: "agent", Password: "not-" + password, Timeout: 3 * time.Second}
	_, pe := probe(t, c, cfg)
	if pe == nil || pe.Kind != ProbeFailed || pe.Problem.Code != "HealthNatsAuth" {
		t.Fatalf("wrong password: %+v", pe)
	}
	if all := pe.Error() + pe.Cause + pe.Problem.Text + errors.Unwrap(pe).Error(); strings.Contains(all, password) {
		t.Fatalf("the password leaked: %q", all)
	}
	cfg.Password = password
	if _, pe := probe(t, c, cfg); pe != nil {
		t.Fatalf("right password: %v", pe)
	}
}

// The per-agent user of docs/nats.md may not read the stream's definition:
// the probe still proves the stream answers and reads the agent's
// position. A user without the message get the sink needs is told so.
func TestProbeWithTheAgentsPermissions(t *testing.T) {
	op := newOperator(t)
	c := newCluster(t, 1, op.serverOpt())
	_, js := c.client(nats.UserCredentials(op.creds("admin", nil, nil)))
	createStream(t, js, streamConfig(1, time.Minute))

	pub, sub := agentPermissions(testAgent)
	cfg := Config{URLs: c.urls(), AgentID: testAgent, CredsFile: op.creds("cafe-01", pub, sub), Timeout: 3 * time.Second}
	s := New(cfg, Options{})
	defer s.Close()
	if a := send(t, s, records(1, 3)); a.Verdict != sink.Accepted {
		t.Fatalf("send: %v: %v (%s)", a.Verdict, a.Err, a.Problem)
	}
	res, pe := probe(t, c, cfg)
	if pe != nil || res.Described || res.LastSeq != 3 {
		t.Fatalf("probe as the agent: %+v, %v", res, pe)
	}

	cfg.CredsFile = op.creds("no-get", pub[:1], sub)
	_, pe = probe(t, c, cfg)
	if pe == nil || pe.Problem.Code != "HealthNatsPermission" || !strings.Contains(pe.Problem.Text, "MSG.GET") {
		t.Fatalf("probe without the message get: %+v", pe)
	}
}

func TestSubjectCovers(t *testing.T) {
	for _, tc := range []struct {
		have, want string
		ok         bool
	}{
		{"pwbi.>", "pwbi.a.transaction.*.*", true},
		{">", "pwbi.a.product.*.*", true},
		{"pwbi.*.*.*.*", "pwbi.a.product.*.*", true},
		{"pwbi.a.>", "pwbi.a.product.*.*", true},
		{"pwbi.*.product.>", "pwbi.a.product.*.*", true},
		{"pwbi.*.product.>", "pwbi.a.transaction.*.*", false},
		{"pwbi.a.product.x.*", "pwbi.a.product.*.*", false}, // a literal does not cover '*'
		{"pwbi.*.*.*", "pwbi.a.product.*.*", false},         // too short
		{"pwbi.*.*.*.*.*", "pwbi.a.product.*.*", false},     // too long
		{"pwbi.>", "pwbi", false},                           // '>' needs a token
		{"pwbi.*", "pwbi.>", false},
		{"pwbi.>", "pwbi.>", true},
		{"other.>", "pwbi.a.product.*.*", false},
		{"", "pwbi", false},
		{"pwbi..>", "pwbi.a.b", false},
		{"pwbi.>.x", "pwbi.a.x", false},
	} {
		if got := subjectCovers(tc.have, tc.want); got != tc.ok {
			t.Errorf("subjectCovers(%q, %q) = %v, want %v", tc.have, tc.want, got, tc.ok)
		}
	}
	if got := uncaptured([]string{"pwbi.>"}, "pwbi", "cafe.01"); got != "" {
		t.Errorf("pwbi.> leaves out %q", got)
	}
	if got := uncaptured([]string{"chain.pwbi.>"}, "pwbi", "cafe.01"); got != "pwbi.cafe%2E01.transaction.*.*" {
		t.Errorf("uncaptured = %q", got)
	}
}

// FuzzSubjectCovers: stream subjects come from the server. No input
// panics; '>' covers every subject; a subject covers itself; for valid
// subjects the answer is the NATS server's own (SubjectMatchesFilter: every
// subject of want is one of have).
func FuzzSubjectCovers(f *testing.F) {
	f.Add("pwbi.>", "pwbi.a.transaction.*.*")
	f.Add("pwbi.*.x", "pwbi.a.x")
	f.Add("..", ".")
	f.Add("pwbi.*.product.>", "pwbi.a.product.*.*")
	f.Add("pwbi.a.product.x.*", "pwbi.a.product.*.*")
	f.Fuzz(func(t *testing.T, have, want string) {
		got := subjectCovers(have, want)
		if server.IsValidSubject(have) && server.IsValidSubject(want) {
			if srv := server.SubjectMatchesFilter(want, have); got != srv {
				t.Errorf("subjectCovers(%q, %q) = %v, the NATS server says %v", have, want, got, srv)
			}
		}
		toks := strings.Split(want, ".")
		valid := want != "" && !strings.Contains("."+want+".", "..") && !slices.Contains(toks[:len(toks)-1], ">")
		if valid && !subjectCovers(">", want) {
			t.Errorf("> does not cover %q", want)
		}
		if valid && !subjectCovers(want, want) {
			t.Errorf("%q does not cover itself", want)
		}
		if got && (have == "" || want == "") {
			t.Errorf("an empty subject covers or is covered: %q %q", have, want)
		}
	})
}
