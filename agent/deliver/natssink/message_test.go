package natssink

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/internal/i18n"
	"github.com/pwbi/edge-agent/internal/testutil"
)

// TestProblemMessages: the faults of a real NATS server a person must
// act on — no stream, a stream that does not capture the agent's
// subjects, refused credentials, servers out of reach, a stream refusing
// every record, settings that cannot work — are answered with a Problem
// worded as a message of the health catalogue: its code, its parameters
// (never the password), and the English sentence the status always
// showed, which reads in Indonesian without an English sentence left.
func TestProblemMessages(t *testing.T) {
	const password = "pw-SECRET-81c2"
	c := newCluster(t, 1, func(o *server.Options) {
		o.Users = []*server.User{{Username: "agent", Password: password}}
	})
	_, js := c.client(nats.UserInfo("agent", password))
	cfg := testConfig(c)
	cfg.User, cfg.Password = "agent", password
	s := New(cfg, Options{})
	defer s.Close()
	retry := func(a sink.Answer) sink.Message {
		t.Helper()
		if a.Verdict != sink.Retry {
			t.Fatalf("want a retry: %v %v (%s)", a.Verdict, a.Err, a.Problem)
		}
		return sink.Message{Code: a.ProblemCode, Params: a.ProblemParams, Text: a.Problem}
	}

	checkMessage(t, retry(send(t, s, records(1, 3))), "HealthNatsNoStream",
		"the NATS server has no stream PWBI: ask the NATS operator to create it (docs/nats.md), or set nats.stream", password)

	other := streamConfig(1, time.Minute)
	other.Subjects = []string{"elsewhere.>"}
	createStream(t, js, other)
	checkMessage(t, retry(send(t, s, records(1, 3))), "HealthNatsNotCaptured",
		"no JetStream stream captures the subject pwbi.cafe%2E01%20pc.transaction.biz_1.outlet_456: the stream PWBI must capture pwbi.> (docs/nats.md)", password)

	// A stream that takes nothing this large refuses every record alike.
	small := streamConfig(1, time.Minute)
	small.MaxMsgSize = 64
	if _, err := js.UpdateStream(context.Background(), small); err != nil {
		t.Fatal(err)
	}
	a := send(t, s, records(1, 1))
	if a.Verdict != sink.Rejected || a.ProblemCode != "" {
		t.Fatalf("want a rejection: %v %v (%s)", a.Verdict, a.Err, a.Problem)
	}
	checkMessage(t, sink.Message{Code: a.UniformProblemCode, Params: a.UniformProblemParams, Text: a.UniformProblem}, "HealthNatsRefusesAll",
		"the NATS stream PWBI refuses every record: "+a.Detail+" (raise the stream's max_msg_size or the server's max_payload)", password)

	wrong := cfg
	wrong.Password = "not-" + password
	w := New(wrong, Options{})
	defer w.Close()
	checkMessage(t, retry(send(t, w, records(1, 1))), "HealthNatsAuth",
		"the NATS server refused the agent's credentials (authorization violation): check nats.creds_file, nats.nkey_seed_file or nats.user and nats.password", password)

	port := testutil.FreePorts(t, 1)[0]
	gone := New(Config{URLs: []string{"nats://127.0.0.1:" + itoa(port)}, AgentID: "a", Timeout: 2 * time.Second}, Options{})
	defer gone.Close()
	m := retry(send(t, gone, records(1, 1)))
	checkMessage(t, m, "HealthNatsUnreachable", "cannot reach the NATS servers ("+m.Params["Error"].(string)+"); retrying", password)

	none := New(Config{AgentID: "a"}, Options{})
	checkMessage(t, retry(none.Send(context.Background(), records(1, 1))), "HealthNatsNoURL",
		"nats.urls is empty: no NATS server to deliver to", password)

	bad := cfg
	bad.Password = ""
	invalid := New(bad, Options{})
	defer invalid.Close()
	checkMessage(t, retry(send(t, invalid, records(1, 1))), "HealthNatsInvalid",
		"the [nats] settings are invalid: nats: user and password go together", password)
}

// Fit shortens the data of a long problem, not the sentence, so that the
// text is still what its code and parameters say.
func TestLongProblemKeepsItsCode(t *testing.T) {
	long := strings.Repeat("no route to host ", 60)
	a := retry(nil, sink.HealthOffline, sink.Say("HealthNatsInvalid", map[string]any{"Error": long}))
	if len(a.Problem) > maxProblem+len("…") || !strings.HasSuffix(a.Problem, "…") ||
		i18n.New(i18n.English).Msg(a.ProblemCode, a.ProblemParams) != a.Problem {
		t.Errorf("problem %q (%d bytes), code %s %q", a.Problem, len(a.Problem), a.ProblemCode, a.ProblemParams)
	}
}

// checkMessage checks a sink's problem m: its code, its English text
// (what the catalogue renders from code and parameters), and its
// Indonesian, which holds the parameters and no sentence of the English
// catalogue.
func checkMessage(t *testing.T, m sink.Message, code, text, secret string) {
	t.Helper()
	if m.Code != code || m.Text != text {
		t.Errorf("problem %s %q,\nwant %s %q", m.Code, m.Text, code, text)
	}
	testutil.CheckTranslated(t, testutil.Message(m), secret)
}

// TestCodesInCatalogue: every message id this package words a problem with
// is in the health catalogue (the faults no test drives included).
func TestCodesInCatalogue(t *testing.T) {
	testutil.CodesInCatalogue(t, `(?:sink\.Say|say)\("(\w+)"`, 20)
}
