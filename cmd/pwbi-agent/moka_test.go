package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/agent/moka/apikey/apikeyfake"
	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/store"
)

const mokaRPM = 300

func startMoka(t testing.TB, outlets, days, perDay int) *apikeyfake.Server {
	t.Helper()
	m := apikeyfake.New(apikeyfake.Options{Seed: 7, Outlets: outlets, Days: days, TxPerDay: perDay})
	m.Start()
	t.Cleanup(m.Close)
	return m
}

// mokaSection configures the apikey dialect (which is not the default:
// moka.api must name it) for the fake m.
func mokaSection(m *apikeyfake.Server, backfill int) string {
	return fmt.Sprintf(`[moka]
enabled = true
api = "apikey"
base_url = %q
business_id = %q
api_key = %q
timezone = "Asia/Jakarta"
poll_interval = "1h"
initial_backfill_days = %d
requests_per_minute = %d
`, m.URL(), m.BusinessID(), m.APIKey(), backfill, mokaRPM)
}

// latest returns, for every key the upstream accepted, the data of the
// record with the highest seq.
func latest(recs []store.Record) map[string]store.Record {
	out := map[string]store.Record{}
	for _, r := range recs {
		if old, ok := out[r.Key]; !ok || r.Seq > old.Seq {
			out[r.Key] = r
		}
	}
	return out
}

// checkUpstreamMatchesMoka asserts that every transaction Moka has arrived
// upstream with exactly the content the mapper must derive from it.
func checkUpstreamMatchesMoka(t *testing.T, e *testEnv, m *apikeyfake.Server) {
	t.Helper()
	got := latest(e.up.Records())
	want := m.Expected()
	if len(want) == 0 {
		t.Fatal("fake Moka has no transactions")
	}
	for _, tx := range want {
		rec, ok := got[tx.Key()]
		if !ok {
			t.Fatalf("transaction %s never reached the upstream", tx.Key())
		}
		canon, err := tx.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rec.Data, canon) {
			t.Fatalf("transaction %s differs upstream:\n got %s\nwant %s", tx.Key(), rec.Data, canon)
		}
		if rec.Version != store.Version(canon) {
			t.Fatalf("transaction %s: version %s does not hash its data", tx.Key(), rec.Version)
		}
	}
	if v := e.up.OrderViolations(); v != 0 {
		t.Fatalf("%d records arrived out of order", v)
	}
}

// checkRate asserts no 60-second window saw more requests than allowed.
func checkRate(t *testing.T, m *apikeyfake.Server) {
	t.Helper()
	reqs := m.Requests()
	var at []time.Time
	for _, r := range reqs {
		at = append(at, r.At)
	}
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	j := 0
	for i := range at {
		for at[i].Sub(at[j]) >= time.Minute {
			j++
		}
		if n := i - j + 1; n > mokaRPM {
			t.Fatalf("%d requests within a minute, limit %d", n, mokaRPM)
		}
	}
	// The limiter spaces requests evenly: 10 consecutive ones span at least
	// 9 intervals (with a little slack for the clock).
	gap := time.Minute / mokaRPM
	for i := 10; i < len(at); i++ {
		// Slack of half an interval: a request the loaded machine
		// delivered late shortens the span by up to that (50 ms of slack
		// left 45 ms of margin); a burst of two takes a whole interval.
		if span := at[i].Sub(at[i-9]); span < 9*gap-gap/2 {
			t.Fatalf("10 requests within %v: faster than %d/min", span, mokaRPM)
		}
	}
}

// TestMokaEndToEnd: the real binary syncs every transaction of 3 outlets
// over 40 days to the upstream, exactly; edits travel as new versions; the
// rate limit holds.
func TestMokaEndToEnd(t *testing.T) {
	m := startMoka(t, 3, 40, 15)
	e := newEnvWith(t, mokaSection(m, 45))
	p := e.start(t)

	want := len(m.Expected())
	// A settled snapshot, judged below: not syncing, for the buffer shows
	// the last batch acked before the delivery loop stops sending, and the
	// last outlet synced before the poll ends.
	var st localapi.Status
	testutil.WaitFor(t, "backfill delivered", 120*time.Second, func() bool {
		var err error
		st, err = e.status(t)
		return err == nil && len(st.Moka.Outlets) == 3 && st.Moka.Outlets[2].LastSyncAt != nil &&
			st.Queue.Pending == 0 && st.State != localapi.StateSyncing && len(latestTx(e.up.Records())) >= want
	})
	checkUpstreamMatchesMoka(t, e, m)
	for _, o := range st.Moka.Outlets {
		if o.Name == "" || o.LastError != "" || o.Transactions == 0 || o.Products == 0 {
			t.Errorf("outlet status: %+v", o)
		}
	}
	if st.State != localapi.StateOK {
		t.Errorf("state %q, problems %v", st.State, st.Problems)
	}

	// A cashier edits two of today's bills; "Sync now" brings the change.
	truth := m.Truth()
	edited := []string{truth[len(truth)-1].ID, truth[len(truth)-2].ID}
	for _, id := range edited {
		if err := m.Edit(id); err != nil {
			t.Fatal(err)
		}
	}
	before := len(e.up.Records())
	out, err := runCLI(t, "sync", "--config", e.cfgPath)
	if err != nil {
		t.Fatalf("sync: %v\n%s", err, out)
	}
	testutil.WaitFor(t, "edits delivered", 60*time.Second, func() bool { return len(e.up.Records()) >= before+2 })
	checkUpstreamMatchesMoka(t, e, m)
	if n := len(e.up.Records()) - before; n != 2 {
		t.Errorf("re-sync sent %d records, want exactly the 2 edited ones", n)
	}
	checkRate(t, m)
	_ = p
}

func latestTx(recs []store.Record) map[string]store.Record {
	out := latest(recs)
	for k, r := range out {
		if r.Kind != store.KindTransaction {
			delete(out, k)
		}
	}
	return out
}

// TestMokaKill9DuringBackfill kills the agent at random moments during a
// backfill to a flaky upstream, ten times; in the end nothing is missing.
func TestMokaKill9DuringBackfill(t *testing.T) {
	m := startMoka(t, 3, 30, 25)
	e := newEnvWith(t, mokaSection(m, 30))
	e.up.SetDelay(20 * time.Millisecond)
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 10; round++ {
		if round%3 == 1 {
			e.up.FailNext(3, 503, "")
		}
		p := e.start(t)
		testutil.WaitFor(t, "agent up", 60*time.Second, func() bool { _, err := e.status(t); return err == nil })
		time.Sleep(time.Duration(100+rng.IntN(900)) * time.Millisecond) // a random moment: the point of this test
		if err := p.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-p.done
	}
	e.up.SetDelay(0)
	e.start(t)
	want := len(m.Expected())
	testutil.WaitFor(t, "everything delivered after the crashes", 180*time.Second, func() bool {
		st, err := e.status(t)
		return err == nil && st.Queue.Pending == 0 && len(st.Moka.Outlets) == 3 &&
			st.Moka.Outlets[2].LastSyncAt != nil && len(latestTx(e.up.Records())) >= want
	})
	checkUpstreamMatchesMoka(t, e, m)
	t.Logf("upstream accepted %d records for %d transactions", len(e.up.Records()), want)
}

// TestMokaImport: a first sync reaches back only initial_backfill_days; a
// historical import through the CLI brings the rest, with progress shown.
func TestMokaImport(t *testing.T) {
	m := startMoka(t, 2, 60, 10)
	e := newEnvWith(t, mokaSection(m, 7))
	e.start(t)
	testutil.WaitFor(t, "first sync", 120*time.Second, func() bool {
		st, err := e.status(t)
		return err == nil && len(st.Moka.Outlets) == 2 && st.Moka.Outlets[1].LastSyncAt != nil && st.Queue.Pending == 0
	})
	all := len(m.Expected())
	if got := len(latestTx(e.up.Records())); got >= all {
		t.Fatalf("first sync already sent %d of %d: backfill window not applied", got, all)
	}

	since := time.Now().In(m.Location()).AddDate(0, 0, -59).Format(time.DateOnly)
	out, err := runCLI(t, "import", "--since", since, "--config", e.cfgPath)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("done")) {
		t.Errorf("import output: %s", out)
	}
	st, err := e.status(t)
	if err != nil {
		t.Fatal(err)
	}
	if imp := st.Moka.Import; imp == nil || imp.Running || imp.Error != "" || imp.DaysDone != imp.DaysTotal || imp.Since != since {
		t.Fatalf("import status: %+v", st.Moka.Import)
	}
	testutil.WaitFor(t, "imported history delivered", 120*time.Second, func() bool {
		st, err := e.status(t)
		return err == nil && st.Queue.Pending == 0 && len(latestTx(e.up.Records())) >= all
	})
	checkUpstreamMatchesMoka(t, e, m)

	// Out of range and malformed requests are refused with a clear message.
	for _, bad := range []string{"2020-01-01", "yesterday", time.Now().AddDate(0, 0, 2).Format(time.DateOnly)} {
		out, err := runCLI(t, "import", "--since", bad, "--config", e.cfgPath)
		if code := exitCode(err); code != 2 {
			t.Errorf("import --since %s: exit %d\n%s", bad, code, out)
		}
	}
}
