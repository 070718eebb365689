package deliver

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/deliver/httpsink/upstreamfake"
)

const uniformProblemText = `the PWBI cloud refuses every record with 400 Bad Request: {"error":"agent_id not registered"}`

func withFlushInterval(d time.Duration) func(setup) {
	return func(s setup) { s.cfg.FlushInterval = d }
}

// checkDead asserts that exactly want were dead-lettered, in that order.
func checkDead(t *testing.T, src *memSource, want []uint64) {
	t.Helper()
	var got []uint64
	for _, d := range src.deadLetters() {
		got = append(got, d.Seq)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("dead letters %v, want %v", got, want)
	}
}

// Issue 10: an upstream answering 400 {"error":"agent_id not registered"} to
// every batch dead-lettered the whole backlog. It is an endpoint failure:
// nothing is dead-lettered, each retry cycle costs few requests, the status
// shows the answer, and once the upstream accepts, everything is delivered
// once, in order.
func TestUniformRejectionIsNotPoison(t *testing.T) {
	for _, bs := range []int{300, 100, 7, 1} {
		t.Run(fmt.Sprintf("batch_size=%d", bs), func(t *testing.T) {
			h := newHarness(t, withBatchSize(bs), withFlushInterval(0))
			h.src.add(300, false)
			h.srv.SetFault(upstreamfake.FaultRejectAll)
			h.start()

			// Cycle 1 (verifyAt 8) and cycle 2 (16): bounded requests,
			// nothing dead-lettered.
			prev := 0
			for i, tc := range []struct {
				wait     time.Duration
				maxCalls int
			}{{b1, 40}, {b2, 80}} {
				if d := h.clock.nextWait(t); d != tc.wait {
					t.Fatalf("cycle %d: backoff %v, want %v", i+1, d, tc.wait)
				}
				n := h.srv.Requests()
				if n-prev > tc.maxCalls {
					t.Errorf("cycle %d: %d requests, want at most %d", i+1, n-prev, tc.maxCalls)
				}
				t.Logf("cycle %d: %d requests", i+1, n-prev)
				prev = n
				if d := h.src.deadLetters(); len(d) != 0 {
					t.Fatalf("cycle %d: %d dead letters", i+1, len(d))
				}
				if n := h.src.pendingCount(); n != 300 {
					t.Fatalf("cycle %d: %d pending, want 300", i+1, n)
				}
				st := h.fwd.Status()
				if st.Health != HealthError || st.Problem != uniformProblemText || st.Online ||
					st.ConsecutiveFailures != i+1 || st.DeadLettered != 0 || !strings.Contains(st.LastError, "agent_id not registered") {
					t.Errorf("cycle %d: status %+v", i+1, st)
				}
				res := h.resultList()
				last := res[len(res)-1]
				if last.Outcome != OutcomeRetry || !errors.Is(last.Err, ErrUniformRejection) || last.Online {
					t.Errorf("cycle %d: last result %+v", i+1, last)
				}
				h.clock.Advance(tc.wait)
			}

			// The agent gets registered.
			h.srv.SetFault(upstreamfake.FaultNone)
			h.driveUntil("the backlog delivered", func() bool { return len(h.src.pending) == 0 })
			h.stop()
			checkDelivered(t, h.srv, seqRange(1, 300))
			checkDead(t, h.src, nil)
			for _, r := range h.resultList() {
				if r.Outcome == OutcomeDeadLettered || r.DeadLettered != 0 {
					t.Fatalf("result %+v dead-lettered", r)
				}
			}
			st := h.fwd.Status()
			if st.Health != HealthOK || st.Problem != "" || !st.Online || st.Delivered != 300 || st.DeadLettered != 0 {
				t.Errorf("status %+v", st)
			}
		})
	}
}

// An upstream fixed while the agent bisects (the agent registered while its
// records are being held) must not turn the held records into dead letters:
// they are sent again before anything after them, and delivered in order.
// FaultNext(n) flips the upstream from refusing everything to accepting after
// n requests, at every point of the first bisection: with 300 records the
// ninth request is the first one of a single record (held).
func TestUpstreamFixedDuringBisection(t *testing.T) {
	for n := 1; n <= 9; n++ {
		t.Run(fmt.Sprintf("after %d requests", n), func(t *testing.T) {
			h := newHarness(t, withBatchSize(300), withFlushInterval(0))
			h.src.add(300, false)
			h.srv.FaultNext(n, upstreamfake.FaultRejectAll)
			h.start()
			h.driveUntil("the backlog delivered", func() bool { return len(h.src.pending) == 0 })
			h.stop()
			checkDead(t, h.src, nil)
			checkDelivered(t, h.srv, seqRange(1, 300))
			if v := h.srv.OrderViolations(); v != 0 {
				t.Fatalf("%d order violations", v)
			}
		})
	}
	// The residual window: the upstream is fixed exactly between the
	// re-check of a held record (rejected again) and the request after it.
	// From the agent's side that is a poison record; it is set aside, not
	// lost, and `queue retry` sends it again.
	t.Run("between the re-check and the next request", func(t *testing.T) {
		h := newHarness(t, withBatchSize(300), withFlushInterval(0))
		h.src.add(300, false)
		h.srv.FaultNext(10, upstreamfake.FaultRejectAll)
		h.start()
		h.driveUntil("the backlog delivered", func() bool { return len(h.src.pending) == 0 })
		h.stop()
		checkDead(t, h.src, []uint64{1})
		checkDelivered(t, h.srv, seqRange(2, 300))
	})
}

// Poison records among good ones are isolated alone and dead-lettered, the
// rest delivered in order, wherever they are and however many — including
// runs of poison records that all get the very same answer.
func TestPoisonRecordsIsolated(t *testing.T) {
	const sameMsg = "record failed validation" // an answer that does not name the record
	for _, tc := range []struct {
		name   string
		poison []uint64
		same   bool // every poison record gets the same answer
		cycles int  // uniform verdicts (backoffs) before resolution
	}{
		{"one in the middle", []uint64{150}, false, 0},
		{"the first", []uint64{1}, false, 0},
		{"the last", []uint64{300}, false, 0},
		{"two", []uint64{37, 222}, false, 0},
		{"first and last of a batch", []uint64{101, 200}, false, 0},
		{"ten adjacent at the start", seqRange(1, 10), false, 0},
		{"ten adjacent in the middle", seqRange(145, 154), false, 0},
		{"every other of the first twenty", []uint64{1, 3, 5, 7, 9, 11, 13, 15, 17, 19}, false, 0},
		{"one, same answer", []uint64{1}, true, 0},
		{"five adjacent at the start, same answer", seqRange(1, 5), true, 0},
		{"eight adjacent at the start, same answer", seqRange(1, 8), true, 0},
		{"ten adjacent at the start, same answer", seqRange(1, 10), true, 1},
		{"twenty adjacent at the start, same answer", seqRange(1, 20), true, 2},
		{"ten adjacent in the middle, same answer", seqRange(145, 154), true, 0},
		{"the last ten, same answer", seqRange(291, 300), true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, withBatchSize(100), withFlushInterval(0))
			recs := h.src.add(300, false)
			for _, seq := range tc.poison {
				if tc.same {
					h.srv.RejectWithMessage(recs[seq-1].Key, http.StatusBadRequest, sameMsg)
				} else {
					h.srv.Reject(recs[seq-1].Key, http.StatusBadRequest)
				}
			}
			h.start()
			waits := h.driveUntil("the backlog sent", func() bool { return len(h.src.pending) == 0 })
			h.stop()

			checkDelivered(t, h.srv, seqRange(1, 300, tc.poison...))
			checkDead(t, h.src, tc.poison)
			for i, d := range h.src.deadLetters() {
				if !strings.Contains(d.Reason, "400") || (!tc.same && !strings.Contains(d.Reason, recs[tc.poison[i]-1].Key)) ||
					(tc.same && !strings.Contains(d.Reason, sameMsg)) {
					t.Errorf("dead letter %d reason %q: want its own answer", d.Seq, d.Reason)
				}
			}
			if len(waits) != tc.cycles {
				t.Errorf("waits %v, want %d uniform verdicts", waits, tc.cycles)
			}
			dead := 0
			for _, r := range h.resultList() {
				dead += r.DeadLettered
			}
			st := h.fwd.Status()
			if dead != len(tc.poison) || st.DeadLettered != uint64(len(tc.poison)) || st.Delivered != uint64(300-len(tc.poison)) ||
				st.Health != HealthOK || st.Problem != "" || !st.Online || st.LastError != "" {
				t.Errorf("results count %d dead letters; status %+v", dead, st)
			}
			t.Logf("%d requests", h.srv.Requests())
		})
	}
}

// A lone pending record rejected while nothing was accepted cannot be told
// from an upstream refusing everything: it is retried and shown, not
// dead-lettered. Once more records arrive, a bigger batch is bisected and
// the poison record isolated.
func TestLoneRejectedRecordIsRetriedUntilMoreArrive(t *testing.T) {
	h := newHarness(t, withBatchSize(100), withFlushInterval(0))
	poison := h.src.add(1, false)[0]
	h.srv.Reject(poison.Key, http.StatusUnprocessableEntity)
	h.start()
	if d := h.clock.nextWait(t); d != b1 {
		t.Fatalf("backoff %v", d)
	}
	st := h.fwd.Status()
	if st.Health != HealthError || !strings.HasPrefix(st.Problem, "the PWBI cloud refuses every record with 422 Unprocessable Entity: ") ||
		!strings.Contains(st.Problem, poison.Key) || st.Online || h.src.pendingCount() != 1 || len(h.src.deadLetters()) != 0 {
		t.Fatalf("status %+v", st)
	}
	h.src.add(3, true)
	h.clock.Advance(b1)
	h.finish()
	checkDelivered(t, h.srv, seqRange(2, 4))
	checkDead(t, h.src, []uint64{poison.Seq})
	if st := h.fwd.Status(); st.Health != HealthOK || st.Problem != "" || !st.Online {
		t.Errorf("status %+v", st)
	}
}

// With batch_size 1 every batch is a lone record: the records after a
// rejected one are read from the buffer to tell poison from refusal.
func TestBatchSizeOnePoison(t *testing.T) {
	h := newHarness(t, withBatchSize(1), withFlushInterval(0))
	recs := h.src.add(6, false)
	h.srv.Reject(recs[1].Key, http.StatusBadRequest)
	h.srv.Reject(recs[2].Key, http.StatusBadRequest)
	h.start()
	h.finish()
	checkDelivered(t, h.srv, []uint64{1, 4, 5, 6})
	checkDead(t, h.src, []uint64{2, 3})
	if w := h.clock.waits(); len(w) != 0 {
		t.Errorf("waits %v", w)
	}
}

// Regression: records held while the old endpoint refused everything must
// not be dead-lettered when the new endpoint (a fixed URL) accepts the
// records after them. A change of endpoint starts the batch afresh.
func TestEndpointChangeDropsHeldRecords(t *testing.T) {
	var srv *upstreamfake.Server
	var once sync.Once
	h := newHarness(t, withBatchSize(100), withFlushInterval(0), func(s setup) {
		prev := s.opts.OnResult
		s.opts.OnResult = func(r Result) {
			prev(r)
			if r.Outcome == OutcomeHeld {
				// Stop the bisection in a backoff while a record is held.
				once.Do(func() { srv.FailNext(1, http.StatusServiceUnavailable, "") })
			}
		}
	})
	srv = h.srv
	h.src.add(100, false)
	h.srv.SetFault(upstreamfake.FaultRejectAll)
	h.start()
	if d := h.clock.nextWait(t); d != b1 {
		t.Fatalf("backoff %v", d)
	}
	good := upstreamfake.NewServer(t, upstreamfake.Options{Token: testToken})
	sc := h.sink
	sc.URL = good.URL()
	h.update(sc) // cuts the backoff short
	h.finish()
	checkDead(t, h.src, nil)
	checkDelivered(t, good, seqRange(1, 100))
	if n := len(good.Batches()); n != 1 {
		t.Errorf("%d batches, want the whole batch at once", n)
	}
}

// A held record proven poison but failing to reach the dead letters: the
// records after it, already accepted, are not acked before it (order), the
// status shows the buffer error, and the next cycle finishes the job
// without duplicates (same bisection, same batch ids: 409 echoes).
func TestHeldDeadLetterFailure(t *testing.T) {
	h := newHarness(t, withBatchSize(8), withFlushInterval(0))
	recs := h.src.add(8, false)
	h.srv.Reject(recs[0].Key, http.StatusBadRequest)
	h.src.failDead = 1
	h.start()
	if d := h.clock.nextWait(t); d != b1 {
		t.Fatalf("backoff %v", d)
	}
	st := h.fwd.Status()
	if st.Health != HealthError || st.Problem != "cannot set a rejected record aside in the local buffer: dead-letter record 1: disk full" ||
		h.src.pendingCount() != 8 {
		t.Fatalf("pending %d, status %+v", h.src.pendingCount(), st)
	}
	h.clock.Advance(b1)
	h.finish()
	checkDelivered(t, h.srv, seqRange(2, 8))
	checkDead(t, h.src, []uint64{1})
	if st := h.fwd.Status(); st.Health != HealthOK || st.Problem != "" {
		t.Errorf("status %+v", st)
	}
}

// A poison record among good ones in a Drain (shutdown) is isolated too.
func TestDrainIsolatesHeldRecords(t *testing.T) {
	h := newHarness(t, withBatchSize(50))
	recs := h.src.add(120, false)
	h.srv.RejectWithMessage(recs[0].Key, http.StatusBadRequest, "bad")
	h.srv.RejectWithMessage(recs[1].Key, http.StatusBadRequest, "bad")
	if err := h.fwd.Drain(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	checkDelivered(t, h.srv, seqRange(3, 120))
	checkDead(t, h.src, []uint64{1, 2})

	// An upstream refusing everything stops the Drain with the error.
	h.srv.SetFault(upstreamfake.FaultRejectAll)
	h.src.add(20, false)
	if err := h.fwd.Drain(testCtx(t)); !errors.Is(err, ErrUniformRejection) {
		t.Fatalf("Drain = %v, want a uniform rejection", err)
	}
	if n := h.src.pendingCount(); n != 20 || len(h.src.deadLetters()) != 2 {
		t.Errorf("pending %d, dead %d", n, len(h.src.deadLetters()))
	}
}
