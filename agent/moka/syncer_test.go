package moka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/store"
)

var jakarta = mustZone("Asia/Jakarta")

func mustZone(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// fakeConn serves transactions from memory in pages of pageSize.
type fakeConn struct {
	mu       sync.Mutex
	outlets  []Outlet
	txs      map[string][]string // outlet -> transaction ids, oldest first
	version  map[string]int      // id -> content version (edits)
	pageSize int
	failAt   int   // fail the walk at this page number (1-based); 0 = never
	failErr  error // the error of that failure; nil: a plain 503 error
	authErr  bool
	froms    []time.Time // every Transactions call's from
	calls    chan string
}

func newFakeConn() *fakeConn {
	return &fakeConn{
		outlets:  []Outlet{{ID: "o1", Name: "Kopi Kenangan Senopati"}, {ID: "o2", Name: "Outlet Dua"}},
		txs:      map[string][]string{},
		version:  map[string]int{},
		pageSize: 3,
		calls:    make(chan string, 100),
	}
}

func (f *fakeConn) Outlets(ctx context.Context) ([]Outlet, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.authErr {
		return nil, fmt.Errorf("list outlets: %w", ErrUnauthorized)
	}
	return append([]Outlet(nil), f.outlets...), nil
}

func (f *fakeConn) Products(ctx context.Context, outlet string, emit func(Page) error) error {
	data := json.RawMessage(fmt.Sprintf(`{"external_id":"p-%s","name":"Es Kopi Susu","price":"25000"}`, outlet))
	return emit(Page{Inputs: []store.Input{{Kind: store.KindProduct, Key: "moka/b1/" + outlet + "/product/p", Data: data}}, Last: true})
}

func (f *fakeConn) Transactions(ctx context.Context, outlet string, from time.Time, emit func(Page) error) error {
	f.mu.Lock()
	ids := append([]string(nil), f.txs[outlet]...)
	f.froms = append(f.froms, from)
	failAt, failErr, size := f.failAt, f.failErr, f.pageSize
	vers := map[string]int{}
	for k, v := range f.version {
		vers[k] = v
	}
	f.mu.Unlock()
	defer func() { f.calls <- outlet }()
	page := 0
	for i := 0; i < len(ids) || i == 0; i += size {
		page++
		if page == failAt {
			if failErr != nil {
				return failErr
			}
			return errors.New("moka: 503 service unavailable")
		}
		end := min(i+size, len(ids))
		var p Page
		for _, id := range ids[i:end] {
			if id == "bad" {
				p.Dead = append(p.Dead, Dead{Input: store.Input{Kind: store.KindTransaction, Key: "moka/b1/" + outlet + "/bad", Data: json.RawMessage(`{"id":"bad"}`)}, Reason: "created_at: missing"})
				continue
			}
			data := fmt.Sprintf(`{"external_id":%q,"amount":"%d"}`, id, 1000+vers[id])
			p.Inputs = append(p.Inputs, store.Input{Kind: store.KindTransaction, Key: "moka/b1/" + outlet + "/" + id, Data: json.RawMessage(data)})
		}
		p.Last = end >= len(ids)
		p.Cursor = fmt.Sprint(end)
		if err := emit(p); err != nil {
			return err
		}
		if p.Last {
			break
		}
	}
	return nil
}

func (f *fakeConn) set(outlet string, ids ...string) {
	f.mu.Lock()
	f.txs[outlet] = ids
	f.mu.Unlock()
}

func openStore(t *testing.T, max int64) *store.Store {
	t.Helper()
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "agent.db"), MaxPendingBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

var start = time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)

func newSyncer(conn Connector, st Sink, clock clockwork.Clock) *Syncer {
	return New(conn, st, Config{
		BusinessID: "b1", Location: jakarta, PollInterval: 5 * time.Minute,
		InitialBackfillDays: 30, SyncProducts: true,
	}, Options{Clock: clock})
}

func keys(t *testing.T, st *store.Store) []string {
	t.Helper()
	recs, err := st.Pending(1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.Key)
	}
	return out
}

func TestFirstSyncThenIncremental(t *testing.T) {
	clock := clockwork.NewFakeClockAt(start)
	conn := newFakeConn()
	conn.set("o1", "t1", "t2", "t3", "t4", "bad")
	conn.set("o2", "u1")
	st := openStore(t, 0)
	s := newSyncer(conn, st, clock)

	s.poll(context.Background())

	if got := len(conn.froms); got != 2 {
		t.Fatalf("Transactions called %d times", got)
	}
	if want := start.AddDate(0, 0, -30); !conn.froms[0].Equal(want) || conn.froms[0].Location() != jakarta {
		t.Errorf("first sync from %v, want %v in Asia/Jakarta", conn.froms[0], want)
	}
	got := keys(t, st)
	want := []string{"moka/b1/o1/product/p", "moka/b1/o1/t1", "moka/b1/o1/t2", "moka/b1/o1/t3", "moka/b1/o1/t4", "moka/b1/o2/product/p", "moka/b1/o2/u1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("buffered\n got %v\nwant %v", got, want)
	}
	dead, _ := st.DeadLetters(10)
	if len(dead) != 1 || dead[0].Stage != store.StageMap || dead[0].Reason != "created_at: missing" {
		t.Fatalf("dead letters: %+v", dead)
	}
	ss, ok, _ := st.SourceState("moka/b1/o1/transactions")
	if !ok || ss.Watermark != start.Format(time.RFC3339Nano) || ss.LastError != "" || !ss.LastSyncAt.Equal(start) {
		t.Fatalf("state: %+v", ss)
	}
	status := s.Status()
	if len(status.Outlets) != 2 || status.Outlets[0].Name != "Kopi Kenangan Senopati" || status.Outlets[0].Transactions != 4 {
		t.Fatalf("status outlets: %+v", status.Outlets)
	}

	// Second poll, 5 minutes later: starts an overlap before the first one;
	// an edited transaction is buffered again, unchanged ones are not.
	clock.Advance(5 * time.Minute)
	conn.mu.Lock()
	conn.version["t2"] = 1
	conn.mu.Unlock()
	conn.set("o1", "t1", "t2", "t3", "t4", "t5")
	s.poll(context.Background())
	if want := start.Add(-Overlap); !conn.froms[2].Equal(want) {
		t.Errorf("second sync from %v, want %v", conn.froms[2], want)
	}
	got = keys(t, st)
	if n := len(got); n != 9 || got[7] != "moka/b1/o1/t2" || got[8] != "moka/b1/o1/t5" {
		t.Fatalf("after second poll: %v", got)
	}

	// Regression: an unmappable record re-fetched by every poll is set aside
	// once, not once per poll.
	conn.set("o1", "t1", "bad")
	clock.Advance(5 * time.Minute)
	s.poll(context.Background())
	s.poll(context.Background())
	if dead, _ := st.DeadLetters(10); len(dead) != 1 {
		t.Fatalf("%d dead letters after repeated polls of the same bad record", len(dead))
	}
}

func TestFailedWalkKeepsWatermark(t *testing.T) {
	clock := clockwork.NewFakeClockAt(start)
	conn := newFakeConn()
	conn.outlets = conn.outlets[:1]
	conn.set("o1", "t1", "t2", "t3", "t4", "t5", "t6", "t7")
	st := openStore(t, 0)
	s := newSyncer(conn, st, clock)
	s.poll(context.Background())
	first, _, _ := st.SourceState("moka/b1/o1/transactions")

	clock.Advance(time.Hour)
	conn.failAt = 2
	s.poll(context.Background())
	ss, _, _ := st.SourceState("moka/b1/o1/transactions")
	if ss.Watermark != first.Watermark {
		t.Fatalf("watermark moved on a failed walk: %q -> %q", first.Watermark, ss.Watermark)
	}
	if ss.LastError == "" || !ss.LastSyncAt.Equal(first.LastSyncAt) {
		t.Fatalf("failure not recorded: %+v", ss)
	}
	if out := s.Status().Outlets[0]; out.LastError == "" {
		t.Fatal("outlet status shows no error")
	}

	// The next successful poll clears the error and moves the watermark.
	clock.Advance(time.Hour)
	conn.failAt = 0
	s.poll(context.Background())
	ss, _, _ = st.SourceState("moka/b1/o1/transactions")
	if ss.LastError != "" || ss.Watermark == first.Watermark {
		t.Fatalf("recovery: %+v", ss)
	}
}

func TestUnauthorizedStopsUntilUpdate(t *testing.T) {
	clock := clockwork.NewFakeClockAt(start)
	conn := newFakeConn()
	conn.authErr = true
	st := openStore(t, 0)
	s := newSyncer(conn, st, clock)
	s.poll(context.Background())
	if s.Status().AuthError == "" {
		t.Fatal("no error shown for refused credentials")
	}
	conn.authErr = false
	s.poll(context.Background())
	if len(conn.froms) != 0 {
		t.Fatal("polled again with refused credentials before the config changed")
	}
	s.Update(conn, s.cfg)
	if s.Status().AuthError != "" {
		t.Fatal("Update did not clear the error")
	}
	s.poll(context.Background())
	if len(conn.froms) == 0 {
		t.Fatal("no poll after Update")
	}
}

func TestFullBufferPausesAndResumes(t *testing.T) {
	clock := clockwork.NewFakeClockAt(start)
	conn := newFakeConn()
	conn.outlets = conn.outlets[:1]
	var ids []string
	for i := 0; i < 30; i++ {
		ids = append(ids, fmt.Sprintf("t%02d", i))
	}
	conn.set("o1", ids...)
	st := openStore(t, 600) // room for a few records only
	// Regression: with a small buffer this channel filled up (one value per
	// pause and per resume) and the blocked hook hung the poller.
	paused := make(chan bool, 1000)
	s := New(conn, st, Config{BusinessID: "b1", Location: jakarta, PollInterval: time.Minute, InitialBackfillDays: 1},
		Options{Clock: clock, OnFull: func(full bool) { paused <- full }})

	done := make(chan struct{})
	go func() {
		s.poll(context.Background())
		close(done)
	}()
	select {
	case full := <-paused:
		if !full {
			t.Fatal("resumed before pausing")
		}
	case <-done:
		t.Fatal("poll finished without ever filling the buffer")
	}
	// Paused: the poll is blocked, the status says so, the watermark waits.
	select {
	case <-done:
		t.Fatal("poll went on with a full buffer")
	default:
	}
	if !s.Status().Full {
		t.Fatal("status does not show the buffer full")
	}
	if ss, _, _ := st.SourceState("moka/b1/o1/transactions"); ss.Watermark != "" {
		t.Fatal("watermark advanced while records were not buffered")
	}
	// Drain like a forwarder would, until the poll completes.
	delivered := map[string]bool{}
	drain := func() {
		recs, err := st.Pending(100)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, r := range recs {
			delivered[r.Key] = true
			seqs = append(seqs, r.Seq)
		}
		if err := st.Ack(seqs...); err != nil {
			t.Fatal(err)
		}
	}
	for {
		drain()
		select {
		case <-done:
			drain()
			if len(delivered) != 30 {
				t.Fatalf("delivered %d of 30", len(delivered))
			}
			ss, _, _ := st.SourceState("moka/b1/o1/transactions")
			if ss.Watermark == "" {
				t.Fatal("watermark not advanced after the paused walk completed")
			}
			if s.Status().Full {
				t.Fatal("still shown as full")
			}
			last := true
			for len(paused) > 0 {
				last = <-paused
			}
			if last {
				t.Fatal("no resume reported")
			}
			return
		case <-st.Notify():
		case <-time.After(30 * time.Second):
			t.Fatal("poll stuck with a full buffer")
		}
	}
}

func TestRunSyncNowAndSchedule(t *testing.T) {
	clock := clockwork.NewFakeClockAt(start)
	conn := newFakeConn()
	conn.outlets = conn.outlets[:1]
	conn.set("o1", "t1")
	st := openStore(t, 0)
	s := newSyncer(conn, st, clock)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	waitCall := func(what string) {
		t.Helper()
		select {
		case <-conn.calls:
		case <-time.After(30 * time.Second):
			t.Fatalf("no poll: %s", what)
		}
	}
	waitCall("at start")
	// Sync now: a poll without any time passing.
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	s.SyncNow()
	waitCall("after SyncNow")
	// The schedule: a poll after poll_interval.
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if next := s.Status().NextPollAt; !next.Equal(start.Add(5 * time.Minute)) {
		t.Errorf("next poll at %v", next)
	}
	clock.Advance(5 * time.Minute)
	waitCall("after the interval")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestImport(t *testing.T) {
	clock := clockwork.NewFakeClockAt(start)
	conn := newFakeConn()
	conn.set("o1", "t1", "t2", "t3", "t4")
	conn.set("o2", "u1")
	st := openStore(t, 0)
	s := newSyncer(conn, st, clock)
	s.poll(context.Background())
	wm, _, _ := st.SourceState("moka/b1/o1/transactions")

	since := start.AddDate(0, 0, -90)
	if err := s.Import(since, "o1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Import(since, "o1"); err == nil {
		t.Fatal("second concurrent import accepted")
	}
	s.runImport(context.Background(), <-s.imports)
	imp := s.Status().Import
	if imp == nil || imp.Running || imp.Error != "" || imp.DaysDone != imp.DaysTotal || imp.DaysTotal != 91 || imp.Records != 4 {
		t.Fatalf("import status: %+v", imp)
	}
	if last := conn.froms[len(conn.froms)-1]; !last.Equal(since) {
		t.Errorf("import from %v", last)
	}
	if len(conn.froms) != 3 {
		t.Errorf("import touched other outlets: %d calls", len(conn.froms))
	}
	after, _, _ := st.SourceState("moka/b1/o1/transactions")
	if after.Watermark != wm.Watermark {
		t.Fatal("import moved the watermark")
	}
}

// temporaryErr is an answer that knows whether a retry may cure it, like
// the dialects' HTTPError (apikey.HTTPError, oauth.HTTPError).
type temporaryErr struct{ temp bool }

func (e temporaryErr) Error() string   { return fmt.Sprintf("moka answered (temporary=%v)", e.temp) }
func (e temporaryErr) Temporary() bool { return e.temp }

// failingSink refuses to write records, as a full disk does.
type failingSink struct {
	*store.Store
	err error
}

func (f *failingSink) Append(in []store.Input, st *store.SourceState) (store.AppendResult, error) {
	return store.AppendResult{}, f.err
}

// TestOutletFailuresCountedAndClassified: the status says how many polls in
// a row an outlet failed and whether retries can cure it — the agent's
// state rules turn that into offline or error.
func TestOutletFailuresCountedAndClassified(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want ErrorKind
	}{
		{"unreadable page", fmt.Errorf("moka GET /v1/transactions: %w", errors.New("bad response: no data array")), KindOther},
		{"network", fmt.Errorf("walk: %w", &url.Error{Op: "Get", URL: "https://api.mokapos.com/v1/x", Err: errors.New("connection refused")}), KindTransient},
		{"timeout", fmt.Errorf("walk: %w", context.DeadlineExceeded), KindTransient},
		{"503", fmt.Errorf("walk: %w", temporaryErr{temp: true}), KindTransient},
		{"404", fmt.Errorf("walk: %w", temporaryErr{temp: false}), KindOther},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := clockwork.NewFakeClockAt(start)
			conn := newFakeConn()
			conn.outlets = conn.outlets[:1]
			conn.set("o1", "t1", "t2")
			conn.failAt, conn.failErr = 1, c.err
			st := openStore(t, 0)
			s := newSyncer(conn, st, clock)
			for i := 1; i <= 3; i++ {
				s.poll(context.Background())
				out := s.Status().Outlets[0]
				if out.Failures != i || out.ErrorKind != c.want || out.LastError == "" {
					t.Fatalf("after %d failed polls: failures %d kind %v error %q; want %d %v", i, out.Failures, out.ErrorKind, out.LastError, i, c.want)
				}
			}
			conn.failAt = 0
			s.poll(context.Background())
			if out := s.Status().Outlets[0]; out.Failures != 0 || out.LastError != "" {
				t.Fatalf("after a good poll: %+v", out)
			}
		})
	}
}

func TestStorageFailureIsClassified(t *testing.T) {
	clock := clockwork.NewFakeClockAt(start)
	conn := newFakeConn()
	conn.outlets = conn.outlets[:1]
	conn.set("o1", "t1")
	st := openStore(t, 0)
	enospc := &os.PathError{Op: "write", Path: "agent.db", Err: syscall.ENOSPC}
	s := newSyncer(conn, &failingSink{Store: st, err: enospc}, clock)
	s.poll(context.Background())
	out := s.Status().Outlets[0]
	if out.ErrorKind != KindStorage || out.Failures != 1 {
		t.Fatalf("outlet status %+v, want a storage failure", out)
	}
	if !errors.Is(stored(fmt.Errorf("x: %w", enospc)), syscall.ENOSPC) {
		t.Fatal("a storage error hides its cause")
	}
}

func TestWholePollFailuresCounted(t *testing.T) {
	clock := clockwork.NewFakeClockAt(start)
	conn := &outletsFail{fakeConn: newFakeConn(), err: errors.New("list outlets: HTTP 404")}
	st := openStore(t, 0)
	s := newSyncer(conn, st, clock)
	s.poll(context.Background())
	s.poll(context.Background())
	if got := s.Status(); got.PollFailures != 2 || got.PollErrorKind != KindOther || got.PollError == "" || got.AuthError != "" {
		t.Fatalf("status %+v", got)
	}
	conn.err = nil
	s.poll(context.Background())
	if got := s.Status(); got.PollFailures != 0 || got.PollError != "" {
		t.Fatalf("after a good poll: %+v", got)
	}
}

type outletsFail struct {
	*fakeConn
	err error
}

func (o *outletsFail) Outlets(ctx context.Context) ([]Outlet, error) {
	if o.err != nil {
		return nil, o.err
	}
	return o.fakeConn.Outlets(ctx)
}

// A dialect's own buffer write (the oauth refund ledger) pauses through
// WaitForSpace: the status and OnFull say "full" while it waits, once per
// pause however many refusals, and SpaceAgain ends it. Regression: the
// ledger waited silently while the status said all was well.
func TestWaitForSpaceShowsTheDialectsPause(t *testing.T) {
	var mu sync.Mutex
	var told []bool
	s := New(newFakeConn(), openStore(t, 0), Config{BusinessID: "b1", Location: jakarta},
		Options{Clock: clockwork.NewFakeClockAt(start), OnFull: func(full bool) {
			mu.Lock()
			told = append(told, full)
			mu.Unlock()
		}})
	space := make(chan struct{})
	waited := make(chan error, 1)
	go func() { waited <- s.WaitForSpace(context.Background(), space) }()
	testutil.WaitFor(t, "the status to show the pause", 30*time.Second, func() bool { return s.Status().Full })
	select {
	case err := <-waited:
		t.Fatalf("WaitForSpace returned %v before space", err)
	default:
	}
	close(space)
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	if !s.Status().Full {
		t.Fatal("the pause ended before the write went through")
	}
	if err := s.WaitForSpace(context.Background(), space); err != nil { // refused again
		t.Fatal(err)
	}
	s.SpaceAgain()
	if s.Status().Full {
		t.Fatal("still full after SpaceAgain")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.WaitForSpace(ctx, make(chan struct{})); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitForSpace on a stopped sync = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(told) != "[true false true]" {
		t.Fatalf("OnFull told %v, want one pause, its end, and the next pause", told)
	}
}
