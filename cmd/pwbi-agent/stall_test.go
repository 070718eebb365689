package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/deliver/httpsink/upstreamfake"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/internal/testutil"
)

// These tests check the promise of issue 10 through the real binary: when
// work stops for a reason a person must fix, the status says error with a
// sentence saying why; when it resumes, nothing was lost.

// waitState waits until the agent's state is want and its problems contain
// every fragment, and returns that status.
func (e *testEnv) waitState(t *testing.T, want string, timeout time.Duration, fragments ...string) localapi.Status {
	t.Helper()
	var st localapi.Status
	testutil.WaitFor(t, fmt.Sprintf("state %s with %q", want, fragments), timeout, func() bool {
		var err error
		st, err = e.status(t)
		if err != nil || st.State != want {
			return false
		}
		all := strings.Join(st.Problems, "\n")
		for _, f := range fragments {
			if !strings.Contains(all, f) {
				return false
			}
		}
		return true
	})
	return st
}

// waitDrained waits until nothing is pending and the state is ok.
func (e *testEnv) waitDrained(t *testing.T, timeout time.Duration) localapi.Status {
	t.Helper()
	var st localapi.Status
	testutil.WaitFor(t, "buffer drained and state ok", timeout, func() bool {
		var err error
		st, err = e.status(t)
		return err == nil && st.Queue.Pending == 0 && st.State == localapi.StateOK
	})
	return st
}

// checkSeeded asserts that the upstream holds the seeded records 0..n-1 but
// the skipped ones, each at least once, in seq order.
func (e *testEnv) checkSeeded(t *testing.T, n int, skip ...int) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range e.up.Records() {
		seen[r.Key] = true
	}
	skipped := map[int]bool{}
	for _, i := range skip {
		skipped[i] = true
	}
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("moka/b1/o1/T%06d", i)
		if seen[k] == skipped[i] {
			t.Errorf("record %s: delivered %v, want %v", k, seen[k], !skipped[i])
		}
	}
	if v := e.up.OrderViolations(); v != 0 {
		t.Errorf("%d records arrived out of order", v)
	}
}

// TestWrongUpstreamTokenIsAnError: a refused token stops delivery for good;
// the state must say error (not ok, not merely offline) within seconds, and
// the backlog drains once the right token is configured by a hot reload.
func TestWrongUpstreamTokenIsAnError(t *testing.T) {
	e := newEnv(t)
	e.seed(t, 300)
	if err := os.WriteFile(filepath.Join(e.dir, "upstream.token"), []byte("not-the-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.start(t)
	st := e.waitState(t, localapi.StateError, 30*time.Second, "token")
	if st.Upstream.Online || st.Queue.Pending != 300 || st.Queue.DeadLetter != 0 {
		t.Fatalf("with a refused token: online %v, pending %d, dead %d", st.Upstream.Online, st.Queue.Pending, st.Queue.DeadLetter)
	}
	if len(e.up.Records()) != 0 {
		t.Fatal("the fake accepted records with a wrong token")
	}

	// The technician fixes the token: a new token file, named in the config.
	if err := os.WriteFile(filepath.Join(e.dir, "right.token"), []byte(upstreamToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	fixed := strings.Replace(string(cfg), `token_file = "upstream.token"`, `token_file = "right.token"`, 1)
	if err := os.WriteFile(e.cfgPath, []byte(fixed), 0o600); err != nil {
		t.Fatal(err)
	}
	st = e.waitDrained(t, 60*time.Second)
	if st.Queue.DeadLetter != 0 || st.Config.Generation != 2 {
		t.Fatalf("after the fix: dead %d, generation %d", st.Queue.DeadLetter, st.Config.Generation)
	}
	e.checkSeeded(t, 300)
}

// TestUniformRejectionDeadLettersNothing: an upstream that answers every
// batch with the same 400 (it does not know this agent) is an endpoint
// failure, not 300 poison records: nothing goes to the dead letters, the
// state says error with the answer, and once the upstream accepts, every
// record is delivered.
func TestUniformRejectionDeadLettersNothing(t *testing.T) {
	e := newEnv(t)
	e.seed(t, 300)
	e.up.SetFault(upstreamfake.FaultRejectAll)
	e.start(t)
	e.waitState(t, localapi.StateError, 30*time.Second, upstreamfake.RejectAllMessage)
	// Judge after a second retry cycle, while the agent waits out its
	// backoff (no bisection under way).
	seen := e.up.Requests()
	var st localapi.Status
	testutil.WaitFor(t, "a second cycle ending in a backoff", 60*time.Second, func() bool {
		var err error
		st, err = e.status(t)
		return err == nil && e.up.Requests() > seen+5 && st.Upstream.NextRetryAt != nil
	})
	if st.Queue.DeadLetter != 0 || st.Queue.Pending != 300 || st.State != localapi.StateError {
		t.Fatalf("uniform 400: state %s, %d dead letters, %d pending; want error, 0, 300", st.State, st.Queue.DeadLetter, st.Queue.Pending)
	}
	e.up.SetFault(upstreamfake.FaultNone)
	if err := localapi.NewClient(e.apiAddr, nil).Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	st = e.waitDrained(t, 60*time.Second)
	if st.Queue.DeadLetter != 0 {
		t.Fatalf("%d dead letters after the upstream accepted", st.Queue.DeadLetter)
	}
	e.checkSeeded(t, 300)
}

// TestCaptivePortalLosesNothing: a Wi-Fi login page answering 200 with HTML
// is not an acknowledgement. Nothing leaves the buffer, the state says why
// in words the cafe understands, and after the login every sale arrives.
func TestCaptivePortalLosesNothing(t *testing.T) {
	e := newEnv(t)
	e.seed(t, 800)
	e.up.SetFault(upstreamfake.FaultHTMLPage)
	e.start(t)
	st := e.waitState(t, localapi.StateError, 30*time.Second, "Wi-Fi login page")
	// The sink's own code travels in problem_details, so that the tray
	// and the CLI show the sentence in their reader's language.
	portal := false
	for _, d := range st.ProblemDetails {
		portal = portal || (d.Code == "HealthUpstreamWebPage" && d.Severity == "blocking" && d.Params["SinkKey"] == "upstream")
	}
	if !portal {
		t.Errorf("problem_details %+v: want HealthUpstreamWebPage, the sink's code", st.ProblemDetails)
	}
	if st.Queue.Pending != 800 || st.Upstream.Online || len(e.up.Records()) != 0 {
		t.Fatalf("behind a captive portal: pending %d, online %v, fake holds %d", st.Queue.Pending, st.Upstream.Online, len(e.up.Records()))
	}
	e.up.SetFault(upstreamfake.FaultNone)
	if err := localapi.NewClient(e.apiAddr, nil).Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.waitDrained(t, 60*time.Second)
	e.checkSeeded(t, 800)
	if got := len(e.up.Records()); got != 800 {
		t.Fatalf("fake holds %d records, want each of the 800 once", got)
	}
}

// TestPoisonRecordAmongGoodOnes: one record the upstream refuses goes to the
// dead letters alone; the other 299 are delivered in order and the agent is
// not in error (a record set aside is a note, not a stall).
func TestPoisonRecordAmongGoodOnes(t *testing.T) {
	e := newEnv(t)
	e.seed(t, 300)
	e.up.Reject("moka/b1/o1/T000150", http.StatusUnprocessableEntity)
	e.start(t)
	st := e.waitDrained(t, 60*time.Second)
	if st.Queue.DeadLetter != 1 {
		t.Fatalf("%d dead letters, want exactly 1", st.Queue.DeadLetter)
	}
	if !strings.Contains(strings.Join(st.Problems, "\n"), "set aside") {
		t.Errorf("problems %q do not mention the record set aside", st.Problems)
	}
	e.checkSeeded(t, 300, 150)
	out, err := runCLI(t, "queue", "dead", "--config", e.cfgPath)
	if err != nil || !strings.Contains(string(out), "T000150") {
		t.Fatalf("queue dead: %v\n%s", err, out)
	}
}

// TestFailingOutletIsAnError: an outlet whose transactions Moka will not
// serve keeps failing; after a few polls that is an error a person must
// look at, while the other outlets' sales keep flowing. Once Moka serves it
// again, its sales arrive and the state is ok.
func TestFailingOutletIsAnError(t *testing.T) {
	m := startMoka(t, 2, 2, 20)
	broken := m.OutletIDs()[0]
	m.BreakOutlet(broken, http.StatusBadRequest)
	e := newEnvWith(t, mokaSection(m, 2))
	e.start(t)
	c := localapi.NewClient(e.apiAddr, nil)

	failures := func() int {
		st, err := e.status(t)
		if err != nil {
			return -1
		}
		for _, o := range st.Moka.Outlets {
			if o.ID == broken {
				return o.Failures
			}
		}
		return -1
	}
	testutil.WaitFor(t, "first failed poll", 60*time.Second, func() bool { return failures() == 1 })
	st := e.waitState(t, localapi.StateOffline, 30*time.Second, "retrying")
	for n := 2; n <= 3; n++ {
		if err := c.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, fmt.Sprintf("failed poll %d", n), 60*time.Second, func() bool { return failures() == n })
	}
	st = e.waitState(t, localapi.StateError, 30*time.Second, "failed 3 polls in a row", broken)
	if st.Moka.Outlets[0].LastError == "" && st.Moka.Outlets[1].LastError == "" {
		t.Fatalf("no outlet error in %+v", st.Moka.Outlets)
	}

	m.BreakOutlet(broken, 0)
	if err := c.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "outlet recovered", 60*time.Second, func() bool { return failures() == 0 })
	e.waitDrained(t, 60*time.Second)
	checkUpstreamMatchesMoka(t, e, m)
}

// TestDiskFullIsAnErrorAndLosesNothing runs the agent with its data
// directory on a small tmpfs that fills up while the upstream is down: the
// state must say the disk is full; when space returns, polling resumes and
// every Moka sale reaches the upstream.
func TestDiskFullIsAnErrorAndLosesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root; store tests cover write failures by injection")
	}
	m := startMoka(t, 3, 14, 60)
	e := newEnvWith(t, mokaSection(m, 14))
	if err := os.MkdirAll(e.dataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", e.dataDir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); store tests cover write failures by injection", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", e.dataDir).CombinedOutput(); err != nil {
			t.Logf("umount: %v %s", err, out)
		}
	})
	e.up.SetDown(true)
	e.start(t)
	e.waitState(t, localapi.StateError, 90*time.Second, "disk is full")

	if out, err := exec.Command("mount", "-o", "remount,size=256m", e.dataDir).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	e.up.SetDown(false)
	if err := localapi.NewClient(e.apiAddr, nil).Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "every outlet synced again", 120*time.Second, func() bool {
		st, err := e.status(t)
		if err != nil || len(st.Moka.Outlets) != 3 {
			return false
		}
		for _, o := range st.Moka.Outlets {
			if o.Failures != 0 {
				return false
			}
		}
		return true
	})
	e.waitDrained(t, 120*time.Second)
	checkUpstreamMatchesMoka(t, e, m)
}
