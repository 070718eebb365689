package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/deliver"
	"github.com/pwbi/edge-agent/agent/deliver/httpsink"
	"github.com/pwbi/edge-agent/agent/deliver/httpsink/upstreamfake"
	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/agent/localapi"
	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/store"
)

// Per-sink progress survives kill -9 with nothing lost. The process under
// test is this test binary re-run as TestSinksCrashChild: the real store
// with two enabled sinks, each drained by its own delivery loop — the real
// HTTP sink to the fake upstream, and a folder sink writing durable files —
// at different paces, so that their positions in the buffer differ when
// the process is killed. After every kill, each sink continues from its own
// position; in the end each has every record, and the buffer is empty.
func TestSinksKill9PerSinkProgress(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a child process repeatedly")
	}
	const n = 6000
	dir := t.TempDir()
	st, err := store.Open(store.Options{Path: filepath.Join(dir, "agent.db")})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetSinks("upstream", "folder"); err != nil {
		t.Fatal(err)
	}
	for from := 0; from < n; from += 250 {
		var in []store.Input
		for i := from; i < min(from+250, n); i++ {
			in = append(in, store.Input{Kind: store.KindTransaction, Key: crashKey(i),
				Data: fmt.Appendf(nil, `{"external_id":"T%06d","amount":"%d"}`, i, 10000+i)})
		}
		if _, err := st.Append(in, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	up := upstreamfake.NewServer(t, upstreamfake.Options{Token: upstreamToken})
	up.SetDelay(15 * time.Millisecond)
	out := filepath.Join(dir, "out")
	if err := os.MkdirAll(out, 0o750); err != nil {
		t.Fatal(err)
	}

	start := func() (*exec.Cmd, chan error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSinksCrashChild$", "-test.v")
		cmd.Env = append(os.Environ(), "PWBI_SINKS_CHILD="+dir, "PWBI_SINKS_UPSTREAM="+up.URL())
		var logs testutil.SyncBuffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				<-done
			}
			if t.Failed() {
				t.Logf("child output:\n%s", logs.String())
			}
		})
		return cmd, done
	}
	folderFiles := func() int {
		names, _ := filepath.Glob(filepath.Join(out, "*.jsonl"))
		return len(names)
	}
	rng := rand.New(rand.NewPCG(13, 1))
	for round := 0; round < 8; round++ {
		cmd, done := start()
		// Kill after the upstream made progress in even rounds, after the
		// folder did in odd ones: the two positions move at their own pace.
		upBefore, folderBefore := len(up.Records()), folderFiles()
		testutil.WaitFor(t, "progress of one sink", 60*time.Second, func() bool {
			if round%2 == 0 {
				return len(up.Records()) > upBefore || len(up.Records()) >= n
			}
			return folderFiles() > folderBefore
		})
		// A random moment after it: inside a batch, between a delivery
		// and its ack, during a fsync (the point of this test).
		time.Sleep(time.Duration(rng.IntN(120)) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-done
		t.Logf("round %d: killed with %d records upstream, %d folder files", round, len(up.Records()), folderFiles())
	}
	if len(distinct(up.Records())) >= n && len(distinct(folderRecords(t, out))) >= n {
		t.Fatal("both sinks had everything before the last kill: the kills tested nothing")
	}
	up.SetDelay(0)
	cmd, done := start()
	testutil.WaitFor(t, "both sinks have every record", 120*time.Second, func() bool {
		return len(distinct(up.Records())) >= n && len(distinct(folderRecords(t, out))) >= n
	})
	// A clean stop: the child drains (acks what both sinks have) and exits.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("child after SIGTERM: %v", err)
	}

	checkEveryRecordAtLeastOnce(t, "upstream", up.Records(), n)
	checkEveryRecordAtLeastOnce(t, "folder", folderRecords(t, out), n)
	st, err = store.Open(store.Options{Path: filepath.Join(dir, "agent.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bs, err := st.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if bs.Pending != 0 || bs.DeadLetters != 0 {
		t.Errorf("buffer after both sinks took everything: %+v", bs)
	}
	for _, name := range []string{"upstream", "folder"} {
		if ss, _ := bs.Sink(name); !ss.Enabled || ss.Pending != 0 {
			t.Errorf("sink %s: %+v", name, ss)
		}
	}
	t.Logf("upstream accepted %d records, the folder holds %d, for %d distinct", len(up.Records()), len(folderRecords(t, out)), n)
}

func crashKey(i int) string { return fmt.Sprintf("moka/b1/o1/T%06d", i) }

func distinct(recs []store.Record) map[string]bool {
	out := map[string]bool{}
	for _, r := range recs {
		out[r.Key] = true
	}
	return out
}

// checkEveryRecordAtLeastOnce asserts that recs hold every one of the n records
// at least once, and that a record only ever arrives after a newer one when
// it was sent before (a batch resent after a crash: at least once, in
// order).
func checkEveryRecordAtLeastOnce(t *testing.T, who string, recs []store.Record, n int) {
	t.Helper()
	seen := map[string]bool{}
	var last uint64
	for _, r := range recs {
		if r.Seq < last && !seen[r.Key] {
			t.Fatalf("%s: record %s (seq %d) arrived after seq %d and was never sent before", who, r.Key, r.Seq, last)
		}
		last = max(last, r.Seq)
		seen[r.Key] = true
	}
	for i := 0; i < n; i++ {
		if !seen[crashKey(i)] {
			t.Fatalf("%s: record %s lost", who, crashKey(i))
		}
	}
}

// TestSinksCrashChild is the process TestSinksKill9PerSinkProgress kills;
// it does nothing in a normal test run.
func TestSinksCrashChild(t *testing.T) {
	dir := os.Getenv("PWBI_SINKS_CHILD")
	if dir == "" {
		t.Skip("the child process of TestSinksKill9PerSinkProgress")
	}
	st, err := store.Open(store.Options{Path: filepath.Join(dir, "agent.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.SetSinks("upstream", "folder"); err != nil {
		t.Fatal(err)
	}
	opts := deliver.Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	up := deliver.New(st.Sink("upstream"), httpsink.New(httpsink.Config{
		URL: os.Getenv("PWBI_SINKS_UPSTREAM"), Token: upstreamToken, AgentID: "crash-pc", Timeout: 5 * time.Second,
	}, httpsink.Options{}), deliver.Config{BatchSize: 100}, opts)
	folder := deliver.New(st.Sink("folder"), &folderSink{dir: filepath.Join(dir, "out"), delay: 5 * time.Millisecond},
		deliver.Config{BatchSize: 37}, opts)
	g := deliver.NewGroup(deliver.Member{Name: "upstream", Forwarder: up}, deliver.Member{Name: "folder", Forwarder: folder})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := g.Run(ctx); err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.Drain(dctx); err != nil {
		t.Fatal(err)
	}
}

// folderSink delivers each batch as one durable file of JSON lines (write,
// fsync, rename) named by its arrival and the batch's first seq, taking
// delay per batch.
type folderSink struct {
	dir   string
	delay time.Duration
}

func (f *folderSink) Endpoint() string { return "dir://" + f.dir }

func (f *folderSink) Send(ctx context.Context, batch []store.Record) sink.Answer {
	select {
	case <-ctx.Done():
		return sink.Answer{Verdict: sink.Canceled}
	case <-time.After(f.delay):
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range batch {
		if err := enc.Encode(r); err != nil {
			return sink.Answer{Verdict: sink.Rejected, Err: err, Same: err.Error()}
		}
	}
	// Named by arrival (the files already there; one loop writes at a
	// time), so that a batch resent after a kill is a file of its own,
	// read back after the ones before it.
	done, err := filepath.Glob(filepath.Join(f.dir, "*.jsonl"))
	if err != nil {
		return sink.Answer{Verdict: sink.Retry, Err: err, Health: sink.HealthOffline, Problem: "cannot list the folder: " + err.Error()}
	}
	name := filepath.Join(f.dir, fmt.Sprintf("%08d-%020d-%06d.jsonl", len(done), batch[0].Seq, len(batch)))
	tmp, err := os.CreateTemp(f.dir, ".part-*")
	if err == nil {
		_, err = tmp.Write(buf.Bytes())
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), name)
		}
		_ = os.Remove(tmp.Name())
	}
	if err != nil {
		return sink.Answer{Verdict: sink.Retry, Err: err, Health: sink.HealthOffline, Problem: "cannot write the folder: " + err.Error()}
	}
	return sink.Answer{Verdict: sink.Accepted}
}

// folderRecords reads what the folder holds, file by file in arrival order.
func folderRecords(t *testing.T, dir string) []store.Record {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	var out []store.Record
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var r store.Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s: %v", n, err)
			}
			out = append(out, r)
		}
	}
	return out
}

// A database written by the agent before sinks existed (the store's
// testdata/format1.db, produced by that code) is upgraded by the agent:
// every pending record reaches the upstream, in order; its dead letter is
// the upstream's, listed and requeued with --sink upstream.
func TestUpgradeFromFormat1(t *testing.T) {
	e := newEnv(t)
	b, err := os.ReadFile(filepath.Join("..", "..", "store", "testdata", "format1.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(e.dataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dataDir, "agent.db"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	p := e.start(t)
	testutil.WaitFor(t, "the old backlog delivered", 60*time.Second, func() bool {
		st, err := e.status(t)
		return err == nil && st.Queue.Pending == 0 && len(e.up.Records()) >= 7
	})
	var keys []string
	for _, r := range e.up.Records() {
		keys = append(keys, r.Key)
	}
	want := []string{"moka/biz_1/outlet_1/T005", "moka/biz_1/outlet_1/T006", "moka/biz_1/outlet_1/T008",
		"moka/biz_1/outlet_1/T009", "moka/biz_1/outlet_1/T010", "moka/biz_1/outlet_1/P1", "mokka/ORD1"}
	if !slices.Equal(keys, want) {
		t.Fatalf("upstream received %v, want %v", keys, want)
	}
	st, err := e.status(t)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Sinks) == 0 || st.Sinks[0].Name != "upstream" || st.Sinks[0].DeadLetters != 1 || st.Sinks[0].Pending != 0 ||
		st.Queue.DeadLetter != 2 {
		t.Fatalf("status after the upgrade: queue %+v, sinks %+v", st.Queue, st.Sinks)
	}
	out, err := runCLI(t, "queue", "dead", "--sink", "upstream", "--config", e.cfgPath)
	if err != nil || !strings.Contains(string(out), "moka/biz_1/outlet_1/T004") || strings.Contains(string(out), "BAD1") {
		t.Fatalf("queue dead --sink upstream: %v\n%s", err, out)
	}
	out, err = runCLI(t, "queue", "retry", "--sink", "upstream", "--all", "--config", e.cfgPath)
	if err != nil || !strings.Contains(string(out), "requeued 1") {
		t.Fatalf("queue retry --sink upstream --all: %v\n%s", err, out)
	}
	testutil.WaitFor(t, "the requeued record delivered", 60*time.Second, func() bool {
		return e.up.Keys()["moka/biz_1/outlet_1/T004"] == 1
	})
	p.stop(t)
	if !strings.Contains(p.stderr.String(), "Database upgraded") {
		t.Errorf("the upgrade is not in the log:\n%s", p.stderr.String())
	}
}

// The queue commands take --sink: stats show every sink's share and one
// sink's details, dead letters and retries are the sink's own, and an
// unknown sink is refused with the known ones named.
func TestQueueCommandsPerSink(t *testing.T) {
	e := newEnv(t)
	e.seed(t, 120)
	poison := "moka/b1/o1/T000042"
	e.up.Reject(poison, 422)
	e.start(t)
	// State ok too: the buffer shows the last batch acked before the
	// delivery loop counts it delivered and stops sending, and the stats
	// below show both.
	testutil.WaitFor(t, "backlog sent except the poison record", 60*time.Second, func() bool {
		st, err := e.status(t)
		return err == nil && st.Queue.Pending == 0 && st.Queue.DeadLetter == 1 && st.State == localapi.StateOK
	})
	out, err := runCLI(t, "queue", "stats", "--config", e.cfgPath)
	if err != nil || !regexpMatch(`(?m)^upstream\s+online\s+0\s+—\s+1\s+119$`, out) {
		t.Fatalf("queue stats: %v\n%s", err, out)
	}
	out, err = runCLI(t, "queue", "stats", "--sink", "upstream", "--config", e.cfgPath)
	if err != nil || !regexpMatch(`(?m)^sink\s+upstream \(PWBI cloud\)$`, out) || !regexpMatch(`(?m)^dead letters\s+1$`, out) {
		t.Fatalf("queue stats --sink upstream: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"queue", "stats", "--sink", "kafka"},
		{"queue", "dead", "--sink", "kafka"},
		{"queue", "retry", "--sink", "kafka", "--all"},
	} {
		out, err := runCLI(t, append(args, "--config", e.cfgPath)...)
		if exitCode(err) != 1 || !strings.Contains(string(out), `unknown sink "kafka"`) || !strings.Contains(string(out), "upstream") {
			t.Errorf("%v: exit %d\n%s", args, exitCode(err), out)
		}
	}
	out, err = runCLI(t, "queue", "dead", "--sink", "upstream", "--config", e.cfgPath)
	if err != nil || !strings.Contains(string(out), poison) {
		t.Fatalf("queue dead --sink upstream: %v\n%s", err, out)
	}
	dls, err := localapi.NewClient(e.apiAddr, nil).DeadLetters(context.Background(), localapi.DeadLetterQuery{Sink: "upstream"})
	if err != nil || len(dls) != 1 || dls[0].Sink != "upstream" {
		t.Fatalf("dead letters of upstream: %+v, %v", dls, err)
	}
	e.up.Reject(poison, 0)
	out, err = runCLI(t, "queue", "retry", "--sink", "upstream", "--config", e.cfgPath, strconv.FormatUint(dls[0].ID, 10))
	if err != nil || !strings.Contains(string(out), "requeued 1") {
		t.Fatalf("queue retry --sink upstream ID: %v\n%s", err, out)
	}
	testutil.WaitFor(t, "the requeued record delivered", 60*time.Second, func() bool {
		return e.up.Keys()[poison] == 1
	})
}

func regexpMatch(pattern string, out []byte) bool { return regexp.MustCompile(pattern).Match(out) }

// `import --since D --sink upstream` fetches the history again for that
// sink alone: every transaction since D reaches the upstream a second
// time (same version, a new seq, in order), although the dedupe index
// already held it; the ones before D do not.
func TestImportForOneSink(t *testing.T) {
	m := startMoka(t, 1, 6, 8)
	e := newEnvWith(t, mokaSection(m, 10))
	e.start(t)
	want := m.Expected()
	testutil.WaitFor(t, "first sync delivered", 120*time.Second, func() bool {
		st, err := e.status(t)
		return err == nil && len(st.Moka.Outlets) == 1 && st.Moka.Outlets[0].LastSyncAt != nil &&
			st.Queue.Pending == 0 && len(latestTx(e.up.Records())) >= len(want)
	})
	since := time.Now().In(m.Location()).AddDate(0, 0, -2).Format(time.DateOnly)
	var again, before []string
	for _, tx := range want {
		switch {
		case tx.BusinessDate >= since:
			again = append(again, tx.Key())
		case tx.BusinessDate < time.Now().In(m.Location()).AddDate(0, 0, -3).Format(time.DateOnly):
			before = append(before, tx.Key())
		}
	}
	if len(again) == 0 || len(before) == 0 {
		t.Fatalf("the fake's history does not straddle %s: %d since, %d well before", since, len(again), len(before))
	}
	out, err := runCLI(t, "import", "--since", since, "--sink", "upstream", "--config", e.cfgPath)
	if err != nil {
		t.Fatalf("import --sink upstream: %v\n%s", err, out)
	}
	st, err := e.status(t)
	if err != nil {
		t.Fatal(err)
	}
	if imp := st.Moka.Import; imp == nil || imp.Running || imp.Error != "" || imp.Sink != "upstream" {
		t.Fatalf("import status: %+v", st.Moka.Import)
	}
	testutil.WaitFor(t, "the history delivered again", 60*time.Second, func() bool {
		st, err := e.status(t)
		if err != nil || st.Queue.Pending != 0 {
			return false
		}
		keys := e.up.Keys()
		for _, k := range again {
			if keys[k] < 2 {
				return false
			}
		}
		return true
	})
	keys := e.up.Keys()
	for _, k := range before {
		if keys[k] != 1 {
			t.Errorf("transaction %s from before --since was sent %d times", k, keys[k])
		}
	}
	if v := e.up.OrderViolations(); v != 0 {
		t.Errorf("%d records out of order", v)
	}
	checkUpstreamMatchesMoka(t, e, m)

	// Only an enabled sink can be imported for.
	out, err = runCLI(t, "import", "--since", since, "--sink", "nats", "--config", e.cfgPath)
	if exitCode(err) != 1 || !strings.Contains(string(out), "nats") {
		t.Errorf("import --sink nats (not enabled): exit %d\n%s", exitCode(err), out)
	}
}

// Every command that takes --sink shows it in its help, and the help exits
// 0. (Regression: `queue retry --help` exited 2.)
func TestSinkFlagInHelp(t *testing.T) {
	for _, args := range [][]string{
		{"queue", "stats", "--help"}, {"queue", "dead", "--help"}, {"queue", "retry", "--help"}, {"import", "--help"},
	} {
		out, err := runCLI(t, args...)
		if exitCode(err) != 0 || !strings.Contains(string(out), "-sink") {
			t.Errorf("%v: exit %d\n%s", args, exitCode(err), out)
		}
	}
}
