package deliver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pwbi/edge-agent/agent/deliver/httpsink"
	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/store"
)

// memSink is a Sink without a transport, as a NATS or Jurnal sink would
// answer: no status codes, its own batch ids and its own idea of a same
// answer. It takes every batch without a refused record; a batch with one
// is Rejected, naming the first refused record (or, with refuseAlike, with
// one answer for every record). Scripted answers are given first.
type memSink struct {
	endpoint string

	mu          sync.Mutex
	script      []sink.Answer
	refused     map[uint64]bool
	refuseAlike bool // refuse every record with the same answer
	got         []uint64
	calls       int
}

func (s *memSink) Endpoint() string { return s.endpoint }

func (s *memSink) Send(ctx context.Context, batch []store.Record) sink.Answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	id := fmt.Sprintf("mem-%d-%d", batch[0].Seq, batch[len(batch)-1].Seq)
	if len(s.script) > 0 {
		a := s.script[0]
		s.script = s.script[1:]
		a.BatchID = id
		return a
	}
	for _, r := range batch {
		if !s.refuseAlike && !s.refused[r.Seq] {
			continue
		}
		same := fmt.Sprintf("record %d is invalid", r.Seq)
		if s.refuseAlike {
			same = "stream not found"
		}
		return sink.Answer{
			Verdict: sink.Rejected, BatchID: id, Err: errors.New("mem refused: " + same),
			Same: same, Detail: same, UniformProblem: "the memory sink refuses every record: " + same,
		}
	}
	for _, r := range batch {
		s.got = append(s.got, r.Seq)
	}
	return sink.Answer{Verdict: sink.Accepted, BatchID: id}
}

func (s *memSink) delivered() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// results collects OnResult calls.
type results struct {
	mu   sync.Mutex
	list []Result
}

func (r *results) add(res Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, res)
}

func (r *results) all() []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.list)
}

// The loop knows no transport: through a sink that is not HTTP, records go
// out in order, poison records are isolated by bisection and dead-lettered
// with the sink's own reason, and the sink's batch ids reach the results.
func TestLoopThroughAnotherSink(t *testing.T) {
	clock := newRecClock()
	src := newMemSource(clock)
	src.add(40, false)
	s := &memSink{endpoint: "mem://a", refused: map[uint64]bool{5: true, 17: true, 31: true}}
	var res results
	f := New(src, s, Config{BatchSize: 20}, Options{Clock: clock, OnResult: res.add})
	if err := f.Drain(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got, want := s.delivered(), seqRange(1, 40, 5, 17, 31); !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	checkDead(t, src, []uint64{5, 17, 31})
	for _, d := range src.deadLetters() {
		if d.Reason != fmt.Sprintf("mem refused: record %d is invalid", d.Seq) {
			t.Errorf("dead letter %d: reason %q", d.Seq, d.Reason)
		}
	}
	st := f.Status()
	if st.Delivered != 37 || st.DeadLettered != 3 || st.Health != HealthOK || !st.Online || st.Problem != "" || !st.Configured {
		t.Errorf("status %+v", st)
	}
	for _, r := range res.all() {
		if !strings.HasPrefix(r.BatchID, "mem-") || r.StatusCode != 0 {
			t.Errorf("result %+v", r)
		}
	}
	if w := clock.waits(); len(w) != 0 {
		t.Errorf("waits %v", w)
	}
}

// A sink refusing every record with one answer is an endpoint failure,
// whatever the transport: nothing is dead-lettered, the sink's sentence is
// shown, and once it takes records everything is delivered in order.
func TestUniformRejectionThroughAnotherSink(t *testing.T) {
	clock := newRecClock()
	src := newMemSource(clock)
	src.add(50, false)
	s := &memSink{endpoint: "mem://a", refuseAlike: true}
	f := New(src, s, Config{BatchSize: 50}, Options{Clock: clock})
	if err := f.Drain(testCtx(t)); !errors.Is(err, ErrUniformRejection) {
		t.Fatalf("Drain = %v, want a uniform rejection", err)
	}
	st := f.Status()
	if st.Health != HealthError || st.Problem != "the memory sink refuses every record: stream not found" ||
		st.Online || st.DeadLettered != 0 || src.pendingCount() != 50 || len(src.deadLetters()) != 0 {
		t.Fatalf("status %+v, pending %d", st, src.pendingCount())
	}
	s.mu.Lock()
	s.refuseAlike = false
	s.mu.Unlock()
	if err := f.Drain(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got := s.delivered(); !slices.Equal(got, seqRange(1, 50)) {
		t.Errorf("delivered %v", got)
	}
	if st := f.Status(); st.Health != HealthOK || st.Problem != "" {
		t.Errorf("status %+v", st)
	}
}

// A sink's incomplete answer is made safe: an empty Answer never acks,
// never shows a healthy sink, and a Canceled while the loop is running is a
// failure waited out with a backoff, not resent in a tight loop.
func TestIncompleteAnswersAreSafe(t *testing.T) {
	t.Run("empty answer", func(t *testing.T) {
		clock := newRecClock()
		src := newMemSource(clock)
		src.add(3, false)
		s := &memSink{endpoint: "mem://a", script: []sink.Answer{{}}}
		f := New(src, s, Config{BatchSize: 10}, Options{Clock: clock})
		if err := f.Drain(testCtx(t)); !errors.Is(err, errNoReason) {
			t.Fatalf("Drain = %v", err)
		}
		st := f.Status()
		if st.Health != HealthError || st.Problem != "delivery failed: the sink gave no reason" || st.Online ||
			st.LastError != "the sink gave no reason" || src.pendingCount() != 3 {
			t.Errorf("status %+v", st)
		}
		if err := f.Drain(testCtx(t)); err != nil || src.pendingCount() != 0 {
			t.Fatalf("Drain = %v, %d pending", err, src.pendingCount())
		}
	})
	t.Run("canceled while running", func(t *testing.T) {
		clock := newRecClock()
		src := newMemSource(clock)
		src.add(3, false)
		s := &memSink{endpoint: "mem://a", script: []sink.Answer{{Verdict: sink.Canceled}}}
		f := New(src, s, Config{BatchSize: 10}, Options{Clock: clock, Rand: func() float64 { return 0.5 }})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- f.Run(ctx) }()
		if d := clock.nextWait(t); d != b1 {
			t.Fatalf("wait %v, want the backoff %v", d, b1)
		}
		if st := f.Status(); st.Health != HealthError || st.ConsecutiveFailures != 1 || src.pendingCount() != 3 {
			t.Errorf("status %+v", st)
		}
		clock.Advance(b1)
		src.waitEmpty(t)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
		s.mu.Lock()
		calls := s.calls
		s.mu.Unlock()
		if calls != 2 {
			t.Errorf("%d sends, want 2", calls)
		}
	})
	t.Run("rejection without a reason", func(t *testing.T) {
		clock := newRecClock()
		src := newMemSource(clock)
		src.add(1, false)
		s := &memSink{endpoint: "mem://a", script: []sink.Answer{{Verdict: sink.Rejected}}}
		f := New(src, s, Config{BatchSize: 10}, Options{Clock: clock})
		// A lone record rejected while nothing was accepted: a uniform
		// rejection, shown with a sentence the loop makes up.
		if err := f.Drain(testCtx(t)); !errors.Is(err, ErrUniformRejection) {
			t.Fatalf("Drain = %v", err)
		}
		if st := f.Status(); st.Problem != "every record is refused alike: the sink gave no reason" || len(src.deadLetters()) != 0 {
			t.Errorf("status %+v", st)
		}
	})
}

// Update wakes the loop only for a change it must act on: its own
// settings, or a sink with another Endpoint. A reload that rebuilds the
// same sink (as the agent does on every reload) changes nothing.
func TestUpdateSignalsOnlyChanges(t *testing.T) {
	clock := newRecClock()
	src := newMemSource(clock)
	cfg := Config{BatchSize: 10}
	f := New(src, &memSink{endpoint: "mem://a"}, cfg, Options{Clock: clock})
	pending := func() bool {
		select {
		case <-f.updC:
			return true
		default:
			return false
		}
	}
	f.Update(cfg, &memSink{endpoint: "mem://a"})
	if pending() {
		t.Error("a rebuilt, unchanged sink woke the loop")
	}
	f.Update(cfg, &memSink{endpoint: "mem://b"})
	if !pending() || !f.Status().Configured {
		t.Error("a new endpoint did not wake the loop")
	}
	f.Update(Config{BatchSize: 20}, &memSink{endpoint: "mem://b"})
	if !pending() {
		t.Error("a new batch size did not wake the loop")
	}
	f.Update(Config{BatchSize: 20}, nil)
	if woke := pending(); !woke || f.Status().Configured {
		t.Errorf("no sink: woke %v, status %+v", woke, f.Status())
	}
	f.Update(Config{BatchSize: 20}, &memSink{})
	if pending() || f.Status().Configured {
		t.Errorf("a sink without an endpoint is not configured: %+v", f.Status())
	}
}

func TestUniformError(t *testing.T) {
	u := &uniformError{answer: &httpsink.StatusError{StatusCode: 400, Body: "no"}}
	if !errors.Is(u, ErrUniformRejection) || errors.Is(u, httpsink.ErrNotAcknowledged) ||
		u.Error() != "upstream rejects every record alike: upstream answered 400 Bad Request: no" {
		t.Errorf("uniform error %v", u)
	}
	var se *httpsink.StatusError
	if !errors.As(u, &se) || se.StatusCode != 400 {
		t.Errorf("uniform error does not wrap the answer")
	}
}

// The loop's log lines speak of the sink, not of "the upstream": with
// NATS and Jurnal beside the HTTP upstream, a technician reading "Upstream
// attempt failed … sink=jurnal" was sent looking at the wrong system.
func TestLogNamesTheSinkNotTheUpstream(t *testing.T) {
	clock := newRecClock()
	src := newMemSource(clock)
	src.add(3, false)
	s := &memSink{endpoint: "mem://a", script: []sink.Answer{{Verdict: sink.Retry, Health: sink.HealthOffline, Err: errors.New("no answer")}}}
	logs := &testutil.SyncBuffer{}
	f := New(src, s, Config{BatchSize: 10}, Options{Clock: clock,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	// Drain gives up on the first failed attempt; the second drain finds
	// the sink answering again.
	if err := f.Drain(testCtx(t)); err == nil {
		t.Fatal("first drain succeeded through a failing sink")
	}
	if err := f.Drain(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, `msg="Sink attempt failed"`) || !strings.Contains(out, `msg="Sink answering again"`) {
		t.Errorf("log does not tell the sink's failure and recovery:\n%s", out)
	}
	if strings.Contains(out, "Upstream") {
		t.Errorf("log speaks of the upstream for another sink:\n%s", out)
	}
}
