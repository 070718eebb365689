package natssink

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/internal/testutil"
)

// A stream without allow_atomic still gets every record once, in order: one
// at a time, each conditional on its predecessor, with a warning.
func TestStreamWithoutAtomicBatchesFallsBackToOneAtATime(t *testing.T) {
	c := newCluster(t, 1)
	_, js := c.client()
	scfg := streamConfig(1, time.Minute)
	scfg.AllowAtomicPublish = false
	createStream(t, js, scfg)

	var logs testutil.SyncBuffer
	s := New(testConfig(c), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer s.Close()
	for i := uint64(0); i < 3; i++ {
		if a := send(t, s, records(1+i*20, 20)); a.Verdict != sink.Accepted {
			t.Fatalf("batch %d: %v: %v (%s)", i, a.Verdict, a.Err, a.Problem)
		}
	}
	checkExactlyOnce(t, readStream(t, js, DefaultStream), testAgent, seqRange(1, 60))
	if !strings.Contains(logs.String(), "does not allow atomic batches") {
		t.Errorf("no warning about the fallback in the log:\n%s", logs.String())
	}
	// Enabling atomic batches is noticed at the next resync (a restart).
	scfg.AllowAtomicPublish = true
	if _, err := js.UpdateStream(context.Background(), scfg); err != nil {
		t.Fatal(err)
	}
	s2 := New(testConfig(c), Options{})
	defer s2.Close()
	if a := send(t, s2, records(41, 60)); a.Verdict != sink.Accepted {
		t.Fatalf("after enabling: %v: %v", a.Verdict, a.Err)
	}
	checkExactlyOnce(t, readStream(t, js, DefaultStream), testAgent, seqRange(1, 100))
	if st := s2.Stats(); st.Skipped != 20 || st.Published != 40 {
		t.Errorf("stats %+v: want 20 skipped, 40 published", st)
	}
}

// Without the stream, or with a stream that does not capture the agent's
// subjects, the answer is a Retry a person must act on, saying which.
func TestMissingStreamIsAnErrorThatSaysWhy(t *testing.T) {
	c := newCluster(t, 1)
	_, js := c.client()
	s := New(testConfig(c), Options{})
	defer s.Close()

	a := send(t, s, records(1, 5))
	if a.Verdict != sink.Retry || a.Health != sink.HealthError || !strings.Contains(a.Problem, "no stream PWBI") {
		t.Fatalf("no stream: %v %q %q (%v)", a.Verdict, a.Health, a.Problem, a.Err)
	}

	other := streamConfig(1, time.Minute)
	other.Subjects = []string{"elsewhere.>"}
	createStream(t, js, other)
	a = send(t, s, records(1, 5))
	if a.Verdict != sink.Retry || a.Health != sink.HealthError || !strings.Contains(a.Problem, "no JetStream stream captures the subject pwbi.cafe%2E01%20pc.transaction") {
		t.Fatalf("not captured: %v %q %q (%v)", a.Verdict, a.Health, a.Problem, a.Err)
	}

	// Fixed by the operator: delivered, nothing lost.
	if _, err := js.UpdateStream(context.Background(), streamConfig(1, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if a := send(t, s, records(1, 5)); a.Verdict != sink.Accepted {
		t.Fatalf("after the fix: %v: %v (%s)", a.Verdict, a.Err, a.Problem)
	}
	checkExactlyOnce(t, readStream(t, js, DefaultStream), testAgent, seqRange(1, 5))
}

// create_stream (demo and tests) makes the stream the sink needs.
func TestCreateStreamMakesAStreamForTheSubjects(t *testing.T) {
	c := newCluster(t, 1)
	_, js := c.client()
	cfg := testConfig(c)
	cfg.CreateStream = true
	s := New(cfg, Options{})
	defer s.Close()
	if a := send(t, s, records(1, 10)); a.Verdict != sink.Accepted {
		t.Fatalf("answer %v: %v (%s)", a.Verdict, a.Err, a.Problem)
	}
	info, err := streamInfoRetry(t, js, DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Config.Subjects; len(got) != 1 || got[0] != "pwbi.>" || !info.Config.AllowAtomicPublish {
		t.Errorf("stream config: subjects %v, allow_atomic %v", got, info.Config.AllowAtomicPublish)
	}
	checkExactlyOnce(t, readStream(t, js, DefaultStream), testAgent, seqRange(1, 10))
}

// Unreachable servers are an offline Retry; ctx ending is Canceled.
func TestUnreachableServerIsOffline(t *testing.T) {
	port := testutil.FreePorts(t, 1)[0]
	s := New(Config{URLs: []string{"nats://127.0.0.1:" + itoa(port)}, AgentID: "a", Timeout: 2 * time.Second}, Options{})
	defer s.Close()
	a := send(t, s, records(1, 1))
	if a.Verdict != sink.Retry || a.Health != sink.HealthOffline || !strings.Contains(a.Problem, "cannot reach the NATS servers") {
		t.Fatalf("answer %v %q %q (%v)", a.Verdict, a.Health, a.Problem, a.Err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if a := s.Send(ctx, records(1, 1)); a.Verdict != sink.Canceled {
		t.Fatalf("canceled ctx: %v", a.Verdict)
	}
}
