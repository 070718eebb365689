package natssink

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/pwbi/edge-agent/agent/deliver"
	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/internal/testutil"
)

// operator is a NATS operator with one JetStream account, as a fleet runs
// it (docs/nats.md): the server trusts the operator, every agent has its own
// user, signed by the account, in a creds file.
type operator struct {
	t       *testing.T
	okp     nkeys.KeyPair
	claims  *jwt.OperatorClaims
	akp     nkeys.KeyPair // the fleet's account
	account string        // its public key
	sys     string        // the system account's public key
	jwts    map[string]string
}

func newOperator(t *testing.T) *operator {
	t.Helper()
	o := &operator{t: t, jwts: map[string]string{}}
	o.okp = must(nkeys.CreateOperator())
	o.claims = jwt.NewOperatorClaims(must(o.okp.PublicKey()))
	o.claims.Name = "pwbi-test"
	sign := func(kp nkeys.KeyPair, name string, js bool) string {
		pub := must(kp.PublicKey())
		ac := jwt.NewAccountClaims(pub)
		ac.Name = name
		if js {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		o.jwts[pub] = must(ac.Encode(o.okp))
		return pub
	}
	o.akp = must(nkeys.CreateAccount())
	o.account = sign(o.akp, "fleet", true)
	o.sys = sign(must(nkeys.CreateAccount()), "SYS", false)
	o.claims.SystemAccount = o.sys
	return o
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// serverOpt makes the servers trust the operator.
func (o *operator) serverOpt() clusterOpt {
	return func(opts *server.Options) {
		r := &server.MemAccResolver{}
		for pub, j := range o.jwts {
			if err := r.Store(pub, j); err != nil {
				o.t.Fatal(err)
			}
		}
		opts.TrustedOperators = []*jwt.OperatorClaims{o.claims}
		opts.AccountResolver = r
		opts.SystemAccount = o.sys
	}
}

// creds writes a creds file for a user of the fleet account with the given
// permissions (none: the user may do anything).
func (o *operator) creds(name string, pub, sub []string) string {
	o.t.Helper()
	ukp := must(nkeys.CreateUser())
	uc := jwt.NewUserClaims(must(ukp.PublicKey()))
	uc.Name = name
	uc.Permissions.Pub.Allow.Add(pub...)
	uc.Permissions.Sub.Allow.Add(sub...)
	ujwt := must(uc.Encode(o.akp))
	data := must(jwt.FormatUserConfig(ujwt, must(ukp.Seed())))
	path := filepath.Join(o.t.TempDir(), name+".creds")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		o.t.Fatal(err)
	}
	return path
}

// agentPermissions are the permissions docs/nats.md gives an agent.
func agentPermissions(agent string) (pub, sub []string) {
	tok := Token(agent)
	return []string{"pwbi." + tok + ".>", "$JS.API.STREAM.MSG.GET.PWBI"},
		[]string{"_INBOX." + tok + ".>"}
}

// An agent with its own creds file and the permissions of docs/nats.md
// delivers; an agent whose user may not publish to its subjects shows an
// error a person can act on, and loses nothing.
func TestCredsFileAcceptedAndForbiddenSubjectShown(t *testing.T) {
	op := newOperator(t)
	c := newCluster(t, 1, op.serverOpt())
	admin := op.creds("admin", nil, nil)
	_, js := c.client(nats.UserCredentials(admin))
	createStream(t, js, streamConfig(1, time.Minute))

	// The agent the operator set up as documented.
	pub, sub := agentPermissions(testAgent)
	good := Config{URLs: c.urls(), AgentID: testAgent, CredsFile: op.creds("cafe-01", pub, sub), Timeout: 3 * time.Second}
	s := New(good, Options{})
	defer s.Close()
	src := newMemSource(records(1, 120))
	d := startDrain(t, src, s, 50, nil)
	testutil.WaitFor(t, "buffer empty", waitLimit, func() bool {
		pending, _, _ := src.counts()
		return pending == 0
	})
	d.stop()
	checkExactlyOnce(t, readStream(t, js, DefaultStream), testAgent, seqRange(1, 120))

	// An agent whose user is only allowed another agent's subjects.
	const agentB = "cafe-02"
	pubB, subB := agentPermissions(agentB)
	pubB[0] = "pwbi.cafe-03.>"
	bad := Config{URLs: c.urls(), AgentID: agentB, CredsFile: op.creds("cafe-02", pubB, subB), Timeout: 2 * time.Second}
	sb := New(bad, Options{})
	defer sb.Close()
	srcB := newMemSource(records(1, 30))
	db := startDrain(t, srcB, sb, 10, nil)
	testutil.WaitFor(t, "permission error shown", waitLimit, func() bool {
		st := db.fwd.Status()
		return st.Health == deliver.HealthError && strings.Contains(st.Problem, "may not") &&
			strings.Contains(st.Problem, "pwbi.cafe-02.transaction")
	})
	db.stop()
	if pending, acked, dead := srcB.counts(); pending != 30 || acked != 0 || dead != 0 {
		t.Fatalf("forbidden agent's buffer: %d pending, %d delivered, %d dead; want all 30 pending", pending, acked, dead)
	}

	// A creds file of an account the server does not know: refused
	// credentials, an error.
	stranger := newOperator(t)
	s3 := New(Config{URLs: c.urls(), AgentID: "x", CredsFile: stranger.creds("x", nil, nil), Timeout: 2 * time.Second}, Options{})
	defer s3.Close()
	a := send(t, s3, records(1, 1))
	if a.Verdict != sink.Retry || a.Health != sink.HealthError || !strings.Contains(a.Problem, "refused the agent's credentials") {
		t.Fatalf("unknown account: %v %q %q (%v)", a.Verdict, a.Health, a.Problem, a.Err)
	}
}

// User and password: a wrong password is an error naming the keys to check;
// the password never appears in the answer.
func TestWrongPasswordIsAnErrorWithoutThePassword(t *testing.T) {
	const password = "pw-SECRET-81c2"
	c := newCluster(t, 1, func(o *server.Options) {
		o.Users = []*server.User{{Username: "agent", Password: password}}
	})
	_, js := c.client(nats.UserInfo("agent", password))
	createStream(t, js, streamConfig(1, time.Minute))

	wrong := New(Config{URLs: c.urls(), AgentID: "a", User: "agent", Password: "not-" + password, Timeout: 2 * time.Second}, Options{})
	defer wrong.Close()
	a := send(t, wrong, records(1, 1))
	if a.Verdict != sink.Retry || a.Health != sink.HealthError || !strings.Contains(a.Problem, "nats.user and nats.password") {
		t.Fatalf("wrong password: %v %q %q (%v)", a.Verdict, a.Health, a.Problem, a.Err)
	}
	if strings.Contains(a.Problem+a.Err.Error(), password) {
		t.Fatalf("the password leaked: %q / %v", a.Problem, a.Err)
	}

	right := New(Config{URLs: c.urls(), AgentID: "a", User: "agent", Password: password}, Options{})
	defer right.Close()
	if a := send(t, right, records(1, 3)); a.Verdict != sink.Accepted {
		t.Fatalf("right password: %v: %v", a.Verdict, a.Err)
	}
	if right.Endpoint() == wrong.Endpoint() || strings.Contains(right.Endpoint(), password) {
		t.Errorf("endpoints: %q / %q", right.Endpoint(), wrong.Endpoint())
	}
}

// An NKey seed file authenticates a bare NKey user.
func TestNKeySeedFile(t *testing.T) {
	ukp := must(nkeys.CreateUser())
	pub := must(ukp.PublicKey())
	c := newCluster(t, 1, func(o *server.Options) {
		o.Nkeys = []*server.NkeyUser{{Nkey: pub}}
	})
	seed := filepath.Join(t.TempDir(), "agent.nk")
	if err := os.WriteFile(seed, must(ukp.Seed()), 0o600); err != nil {
		t.Fatal(err)
	}
	_, js := c.client(must(nats.NkeyOptionFromSeed(seed)))
	createStream(t, js, streamConfig(1, time.Minute))
	s := New(Config{URLs: c.urls(), AgentID: testAgent, NKeySeedFile: seed}, Options{})
	defer s.Close()
	if a := send(t, s, records(1, 5)); a.Verdict != sink.Accepted {
		t.Fatalf("nkey: %v: %v (%s)", a.Verdict, a.Err, a.Problem)
	}
	checkExactlyOnce(t, readStream(t, js, DefaultStream), testAgent, seqRange(1, 5))

	missing := New(Config{URLs: c.urls(), AgentID: testAgent, NKeySeedFile: seed + ".gone"}, Options{})
	defer missing.Close()
	if a := send(t, missing, records(6, 1)); a.Health != sink.HealthError || !strings.Contains(a.Problem, "credentials file cannot be used") {
		t.Fatalf("missing seed file: %v %q %q (%v)", a.Verdict, a.Health, a.Problem, a.Err)
	}
}
