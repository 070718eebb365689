package deliver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/agent/deliver/httpsink"
	"github.com/pwbi/edge-agent/agent/deliver/httpsink/upstreamfake"
	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/store"
)

// dirSink is a second real sink for these tests, beside the HTTP one: it
// delivers every batch into a folder, as one file of JSON lines named by
// the batch's seqs and written durably (write, fsync, rename), and
// answers Accepted once the file is there. It is down (Retry, offline)
// while the folder does not exist, and refuses, record by record, the
// records whose data contains "poison".
type dirSink struct {
	dir string

	mu    sync.Mutex
	sends int
}

func (d *dirSink) Endpoint() string { return "dir://" + d.dir }

func (d *dirSink) Send(ctx context.Context, batch []store.Record) sink.Answer {
	d.mu.Lock()
	d.sends++
	d.mu.Unlock()
	if ctx.Err() != nil {
		return sink.Answer{Verdict: sink.Canceled}
	}
	first, last := batch[0].Seq, batch[len(batch)-1].Seq
	id := fmt.Sprintf("%020d-%020d", first, last)
	for _, r := range batch {
		if bytes.Contains(r.Data, []byte("poison")) {
			msg := fmt.Sprintf("record %s is poison", r.Key)
			return sink.Answer{Verdict: sink.Rejected, BatchID: id, Err: errors.New("folder refused: " + msg),
				Same: msg, Detail: msg, UniformProblem: "the folder refuses every record"}
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range batch {
		if err := enc.Encode(r); err != nil {
			return sink.Answer{Verdict: sink.Rejected, BatchID: id, Err: err, Same: err.Error()}
		}
	}
	if err := writeDurably(filepath.Join(d.dir, id+".jsonl"), buf.Bytes()); err != nil {
		return sink.Answer{Verdict: sink.Retry, BatchID: id, Err: err, Health: sink.HealthOffline,
			Problem: "cannot write to the delivery folder: " + err.Error()}
	}
	return sink.Answer{Verdict: sink.Accepted, BatchID: id}
}

func writeDurably(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".part-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// records returns what the folder holds, file by file in seq order.
func (d *dirSink) records(t testing.TB) []store.Record {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(d.dir, "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	var out []store.Record
	for _, n := range names {
		f, err := os.Open(n)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var r store.Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s: %v", n, err)
			}
			out = append(out, r)
		}
		f.Close()
	}
	return out
}

func (d *dirSink) sendCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sends
}

// twoSinks is a real store with two enabled sinks — the HTTP upstream (to
// the fake ingest service) and a folder — and a Group of their loops on a
// fake clock: a backoff is only cut short by Flush.
type twoSinks struct {
	st     *store.Store
	srv    *upstreamfake.Server
	folder *dirSink
	up     *Forwarder
	fold   *Forwarder
	g      *Group
	clock  *clockwork.FakeClock
}

func newTwoSinks(t *testing.T) *twoSinks {
	t.Helper()
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "agent.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.SetSinks("upstream", "folder"); err != nil {
		t.Fatal(err)
	}
	w := &twoSinks{st: st, clock: clockwork.NewFakeClockAt(t0)}
	w.srv = upstreamfake.NewServer(t, upstreamfake.Options{Token: testToken})
	w.folder = &dirSink{dir: filepath.Join(t.TempDir(), "out")}
	cfg := Config{BatchSize: 100}
	w.up = New(st.Sink("upstream"), httpsink.New(httpsink.Config{
		URL: w.srv.URL(), Token: testToken, AgentID: testAgent, Timeout: 30 * time.Second,
	}, httpsink.Options{Clock: w.clock}), cfg, Options{Clock: w.clock})
	w.fold = New(st.Sink("folder"), w.folder, cfg, Options{Clock: w.clock})
	w.g = NewGroup(Member{"upstream", w.up}, Member{"folder", w.fold})
	return w
}

func (w *twoSinks) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Group.Run = %v", err)
		}
	})
}

// backfill appends n transactions in pages of 100, as a Moka backfill does;
// keys poison lists get data containing "poison".
func (w *twoSinks) backfill(t *testing.T, n int, poison ...int) {
	t.Helper()
	for from := 0; from < n; from += 100 {
		var in []store.Input
		for i := from; i < min(from+100, n); i++ {
			data := testData(uint64(i))
			if slices.Contains(poison, i) {
				data = fmt.Appendf(nil, `{"external_id":"MOK%d","note":"poison"}`, i)
			}
			in = append(in, store.Input{Kind: store.KindTransaction, Key: fmt.Sprintf("moka/biz_1/outlet_456/MOK%06d", i), Data: data})
		}
		if _, err := w.st.Append(in, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// checkAllInOrder asserts recs hold exactly the backfill's keys but skip,
// in seq order.
func checkAllInOrder(t *testing.T, who string, recs []store.Record, n int, skip ...int) {
	t.Helper()
	var want []string
	for i := 0; i < n; i++ {
		if !slices.Contains(skip, i) {
			want = append(want, fmt.Sprintf("moka/biz_1/outlet_456/MOK%06d", i))
		}
	}
	var got []string
	for i, r := range recs {
		if i > 0 && r.Seq <= recs[i-1].Seq {
			t.Fatalf("%s: seq %d after %d", who, r.Seq, recs[i-1].Seq)
		}
		got = append(got, r.Key)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s received %d records, want %d in order (first difference at %d)", who, len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func sinkStats(t *testing.T, st *store.Store, name string) store.SinkStats {
	t.Helper()
	ss, err := st.Sink(name).Stats()
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// Two sinks, one of them down for the whole backfill: the other receives
// everything at once, in order; the buffer keeps what the down one needs;
// once it is back it catches up, in order, and the buffer empties. Run for
// either sink being the one that is down.
func TestOneSinkDownForTheWholeBackfill(t *testing.T) {
	const n = 1500
	for _, down := range []string{"folder", "upstream"} {
		t.Run(down+" down", func(t *testing.T) {
			w := newTwoSinks(t)
			if down == "upstream" {
				w.srv.SetDown(true)
				if err := os.MkdirAll(w.folder.dir, 0o750); err != nil {
					t.Fatal(err)
				}
			}
			w.run(t)
			w.backfill(t, n)

			upRecords := func() []store.Record { return w.srv.Records() }
			folderRecords := func() []store.Record { return w.folder.records(t) }
			fine, fineFwd, downFwd := upRecords, w.up, w.fold
			if down == "upstream" {
				fine, fineFwd, downFwd = folderRecords, w.fold, w.up
			}
			testutil.WaitFor(t, "the working sink receives the whole backfill", waitLimit, func() bool {
				return len(fine()) >= n
			})
			checkAllInOrder(t, "the working sink", fine(), n)
			testutil.WaitFor(t, "the working sink's acks", waitLimit, func() bool {
				return sinkStats(t, w.st, fineFwd.nameForTest(w.g)).Pending == 0 && fineFwd.Status().Delivered == n
			})
			testutil.WaitFor(t, "the down sink to have tried", waitLimit, func() bool {
				return downFwd.Status().Health == HealthOffline
			})

			// The down sink got nothing and says so; the buffer keeps
			// everything for it.
			if down == "folder" && len(folderRecords()) != 0 {
				t.Fatal("the folder received records while down")
			}
			if down == "upstream" && w.srv.Accepted() != 0 {
				t.Fatal("the upstream accepted records while down")
			}
			ds := downFwd.Status()
			if ds.Online || ds.Health != HealthOffline || ds.Problem == "" {
				t.Errorf("down sink's status = %+v", ds)
			}
			if fs := fineFwd.Status(); !fs.Online || fs.Health != HealthOK || fs.Delivered != n {
				t.Errorf("working sink's status = %+v", fs)
			}
			bs, _ := w.st.Stats()
			if bs.Pending != n {
				t.Fatalf("buffer holds %d records, want all %d for the down sink", bs.Pending, n)
			}
			if ss := sinkStats(t, w.st, down); ss.Pending != n || ss.PendingBytes != bs.PendingBytes {
				t.Errorf("down sink's buffer view = %+v, buffer %+v", ss, bs)
			}

			// Back up: Sync now cuts the backoff short and it catches up.
			if down == "upstream" {
				w.srv.SetDown(false)
			} else if err := os.MkdirAll(w.folder.dir, 0o750); err != nil {
				t.Fatal(err)
			}
			w.g.Flush()
			testutil.WaitFor(t, "the buffer empties", waitLimit, func() bool {
				bs, err := w.st.Stats()
				return err == nil && bs.Pending == 0
			})
			if down == "upstream" {
				checkAllInOrder(t, "the upstream", upRecords(), n)
				if v := w.srv.OrderViolations(); v != 0 {
					t.Errorf("%d order violations upstream", v)
				}
			} else {
				checkAllInOrder(t, "the folder", folderRecords(), n)
			}
			if bs, _ := w.st.Stats(); bs.PendingBytes != 0 || bs.DeadLetters != 0 {
				t.Errorf("buffer after both caught up = %+v", bs)
			}
		})
	}
}

// nameForTest returns the member name of f in g.
func (f *Forwarder) nameForTest(g *Group) string {
	for _, m := range g.Members() {
		if m.Forwarder == f {
			return m.Name
		}
	}
	return ""
}

// A record one sink refuses is isolated to that sink's dead letters; the
// other sink delivers it, and the buffer empties.
func TestPoisonIsolatedToOneSink(t *testing.T) {
	const n = 300
	w := newTwoSinks(t)
	if err := os.MkdirAll(w.folder.dir, 0o750); err != nil {
		t.Fatal(err)
	}
	poison := []int{17, 205}
	w.backfill(t, n, poison...)
	if err := w.g.Drain(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	checkAllInOrder(t, "the folder", w.folder.records(t), n, poison...)
	if got := w.srv.Accepted(); got != n {
		t.Errorf("upstream accepted %d, want all %d", got, n)
	}
	dls, err := w.st.DeadLettersOf("folder", 10)
	if err != nil || len(dls) != 2 || !strings.Contains(dls[0].Reason, "poison") || dls[0].Sink != "folder" {
		t.Fatalf("folder dead letters = %+v, %v", dls, err)
	}
	if dls, _ := w.st.DeadLettersOf("upstream", 10); len(dls) != 0 {
		t.Errorf("upstream dead letters = %+v", dls)
	}
	if bs, _ := w.st.Stats(); bs.Pending != 0 || bs.DeadLetters != 2 {
		t.Errorf("buffer = %+v", bs)
	}
	if fs := w.fold.Status(); fs.DeadLettered != 2 || fs.Delivered != n-2 {
		t.Errorf("folder status = %+v", fs)
	}
}

// Drain (shutdown) drains every sink at once: a sink that is down ends
// its own drain with an error naming it, the other drains everything.
func TestGroupDrainEverySink(t *testing.T) {
	const n = 250
	w := newTwoSinks(t)
	w.backfill(t, n)
	err := w.g.Drain(testCtx(t))
	if err == nil || !strings.Contains(err.Error(), "sink folder") || strings.Contains(err.Error(), "sink upstream") {
		t.Fatalf("Drain = %v, want the folder's error alone", err)
	}
	if got := w.srv.Accepted(); got != n {
		t.Errorf("upstream accepted %d of %d", got, n)
	}
	if ss := sinkStats(t, w.st, "folder"); ss.Pending != n {
		t.Errorf("folder's view = %+v", ss)
	}
	if err := os.MkdirAll(w.folder.dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := w.g.Drain(testCtx(t)); err != nil {
		t.Fatalf("Drain with both up = %v", err)
	}
	checkAllInOrder(t, "the folder", w.folder.records(t), n)
	if bs, _ := w.st.Stats(); bs.Pending != 0 {
		t.Errorf("buffer = %+v", bs)
	}
}

// Flush ("Sync now") reaches every member: both send a partial batch at
// once instead of waiting out the flush interval.
func TestGroupFlushEverySink(t *testing.T) {
	w := newTwoSinks(t)
	if err := os.MkdirAll(w.folder.dir, 0o750); err != nil {
		t.Fatal(err)
	}
	cfg := Config{BatchSize: 100, FlushInterval: time.Hour}
	w.up.Update(cfg, httpsink.New(httpsink.Config{URL: w.srv.URL(), Token: testToken, AgentID: testAgent, Timeout: time.Minute},
		httpsink.Options{Clock: w.clock}))
	w.fold.Update(cfg, w.folder)
	w.backfill(t, 10)
	w.run(t)
	w.g.Flush()
	testutil.WaitFor(t, "both sinks got the partial batch", waitLimit, func() bool {
		return w.srv.Accepted() == 10 && len(w.folder.records(t)) == 10
	})
}

// gateSink answers each Send with the next answer from its channel, and
// records the seqs of every batch it was sent.
type gateSink struct {
	endpoint string
	answers  chan sink.Answer

	mu   sync.Mutex
	sent [][]uint64
}

func (g *gateSink) Endpoint() string { return g.endpoint }

func (g *gateSink) Send(ctx context.Context, batch []store.Record) sink.Answer {
	g.mu.Lock()
	g.sent = append(g.sent, seqs(batch))
	g.mu.Unlock()
	select {
	case a := <-g.answers:
		return a
	case <-ctx.Done():
		return sink.Answer{Verdict: sink.Canceled}
	}
}

func (g *gateSink) batches() [][]uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.sent)
}

// A sink switched off (disabled on reload) forgets the batch it was
// bisecting: when it is switched on again, even with the same endpoint, it
// reads its view of the buffer afresh instead of sending records that were
// released meanwhile. (Regression: the loop kept the split batch and sent
// it on re-enable.)
func TestSwitchedOffSinkForgetsItsBatch(t *testing.T) {
	clock := newRecClock()
	src := newMemSource(clock)
	src.add(10, false)
	gs := &gateSink{endpoint: "gate://a", answers: make(chan sink.Answer)}
	cfg := Config{BatchSize: 10}
	f := New(src, gs, cfg, Options{Clock: clock})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitSent := func(n int) {
		t.Helper()
		testutil.WaitFor(t, fmt.Sprintf("%d batches sent", n), waitLimit, func() bool { return len(gs.batches()) >= n })
	}
	waitSent(1)
	f.Update(cfg, nil) // switched off while the first attempt is in flight
	gs.answers <- sink.Answer{Verdict: sink.Rejected, Err: errors.New("422"), Same: "422"}
	// The loop now idles. Its records are released (the sink was
	// disabled) and new ones arrive before it is switched on again.
	testutil.WaitFor(t, "the loop to idle", waitLimit, func() bool { return !f.Status().Sending })
	src.mu.Lock()
	src.pending = nil
	src.mu.Unlock()
	src.add(2, true)
	f.Update(cfg, gs)
	waitSent(2)
	if got := gs.batches()[1]; !slices.Equal(got, []uint64{11, 12}) {
		t.Fatalf("after switching on again the loop sent %v, want the records now pending [11 12]", got)
	}
	gs.answers <- sink.Answer{Verdict: sink.Accepted}
	src.waitEmpty(t)
}

// A sink switched off and on again while an attempt is in flight — two
// reloads before the loop looks — forgets its batch all the same: the
// switch-off is recorded when it happens (Update), not sampled by the loop.
func TestSwitchedOffAndOnDuringAttemptForgetsItsBatch(t *testing.T) {
	clock := newRecClock()
	src := newMemSource(clock)
	src.add(10, false)
	gs := &gateSink{endpoint: "gate://a", answers: make(chan sink.Answer)}
	cfg := Config{BatchSize: 10}
	f := New(src, gs, cfg, Options{Clock: clock})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitSent := func(n int) {
		t.Helper()
		testutil.WaitFor(t, fmt.Sprintf("%d batches sent", n), waitLimit, func() bool { return len(gs.batches()) >= n })
	}
	waitSent(1)
	f.Update(cfg, nil) // switched off ...
	src.mu.Lock()      // ... its records released, new ones arrive ...
	src.pending = nil
	src.mu.Unlock()
	src.add(2, true)
	f.Update(cfg, gs) // ... and on again, all before the answer
	gs.answers <- sink.Answer{Verdict: sink.Rejected, Err: errors.New("422"), Same: "422"}
	waitSent(2)
	if got := gs.batches()[1]; !slices.Equal(got, []uint64{11, 12}) {
		t.Fatalf("after switching off and on the loop sent %v, want the records now pending [11 12]", got)
	}
	gs.answers <- sink.Answer{Verdict: sink.Accepted}
	src.waitEmpty(t)
}
