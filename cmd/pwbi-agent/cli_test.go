package main

import (
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/internal/testutil"
)

// TestQueueCommands: a record the upstream rejects is isolated, listed by
// `queue dead`, and sent again by `queue retry` once the upstream accepts it.
func TestQueueCommands(t *testing.T) {
	e := newEnv(t)
	e.seed(t, 300)
	poison := "moka/b1/o1/T000123"
	e.up.Reject(poison, 422)
	e.start(t)
	testutil.WaitFor(t, "backlog sent except the poison record", 60*time.Second, func() bool {
		st, err := e.status(t)
		return err == nil && st.Queue.Pending == 0 && st.Queue.DeadLetter == 1
	})
	if n := len(e.up.Records()); n != 299 {
		t.Fatalf("upstream got %d records, want 299", n)
	}

	out, err := runCLI(t, "queue", "stats", "--config", e.cfgPath)
	if err != nil || !strings.Contains(string(out), "dead letters") || !strings.Contains(string(out), "1\n") {
		t.Fatalf("queue stats: %v\n%s", err, out)
	}
	out, err = runCLI(t, "queue", "dead", "--config", e.cfgPath)
	if err != nil || !strings.Contains(string(out), poison) || !strings.Contains(string(out), "422") {
		t.Fatalf("queue dead: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "queue", "retry", "--config", e.cfgPath); exitCode(err) != 2 {
		t.Fatalf("retry without ids: %v\n%s", err, out)
	}

	e.up.Reject(poison, 0) // the upstream was fixed
	out, err = runCLI(t, "queue", "retry", "--all", "--config", e.cfgPath)
	if err != nil || !strings.Contains(string(out), "requeued 1") {
		t.Fatalf("queue retry: %v\n%s", err, out)
	}
	testutil.WaitFor(t, "requeued record delivered", 60*time.Second, func() bool {
		return e.up.Keys()[poison] == 1
	})
	st, _ := e.status(t)
	if st.Queue.DeadLetter != 0 {
		t.Fatalf("dead letters after retry: %d", st.Queue.DeadLetter)
	}
}

// TestStatusDoctorPause drives the commands a technician uses first.
func TestStatusDoctorPause(t *testing.T) {
	m := startMoka(t, 2, 3, 10)
	e := newEnvWith(t, mokaSection(m, 3))

	// Before the agent runs: status and doctor say so, with exit code 1.
	out, err := runCLI(t, "status", "--config", e.cfgPath)
	if exitCode(err) != 1 || !strings.Contains(string(out), "agent not running") {
		t.Fatalf("status without agent: %v\n%s", err, out)
	}

	e.start(t)
	// Not syncing: the last outlet shows synced before the poll ends, and
	// the buffer the last batch acked before the delivery loop stops
	// sending; `status` below must find the agent settled.
	testutil.WaitFor(t, "first sync", 60*time.Second, func() bool {
		st, err := e.status(t)
		return err == nil && len(st.Moka.Outlets) == 2 && st.Moka.Outlets[1].LastSyncAt != nil && st.Queue.Pending == 0 &&
			st.State != localapi.StateSyncing
	})
	out, err = runCLI(t, "status", "--config", e.cfgPath)
	if err != nil || !strings.Contains(string(out), "agent: ok") || !strings.Contains(string(out), "outlet ") {
		t.Fatalf("status: %v\n%s", err, out)
	}
	out, err = runCLI(t, "doctor", "--config", e.cfgPath)
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, out)
	}
	for _, want := range []string{"[ok  ] config", "[ok  ] agent running", "[ok  ] disk space", "[ok  ] upstream reachable", "clock skew", "[ok  ] Moka credentials", "2 outlet(s)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), upstreamToken) || strings.Contains(string(out), m.APIKey()) {
		t.Error("doctor prints a secret")
	}

	// Pause: state paused, Sync now refused, nothing polled; Resume undoes it.
	c := localapi.NewClient(e.apiAddr, nil)
	if err := c.Pause(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.status(t); st.State != localapi.StatePaused {
		t.Fatalf("state after pause: %s", st.State)
	}
	before := len(m.Requests())
	if err := c.Sync(t.Context()); err == nil {
		t.Fatal("sync accepted while paused")
	}
	if len(m.Requests()) != before {
		t.Fatal("Moka polled while paused")
	}
	if err := c.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "poll after resume", 30*time.Second, func() bool { return len(m.Requests()) > before })
	if st, _ := e.status(t); st.State == localapi.StatePaused {
		t.Fatal("still paused after resume")
	}

	// A wrong Moka key: doctor fails and says why.
	bad := newEnvWith(t, strings.Replace(mokaSection(m, 3), m.APIKey(), "wrong-key", 1))
	out, err = runCLI(t, "doctor", "--config", bad.cfgPath)
	if exitCode(err) != 1 || !strings.Contains(string(out), "Moka rejected the API key") {
		t.Fatalf("doctor with a wrong key: %v\n%s", err, out)
	}
}
