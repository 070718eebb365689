package deliver

import (
	"context"
	"testing"

	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/internal/i18n"
)

// The status carries a sink's problem as the sink worded it — the message
// code and parameters beside the English sentence — while it lasts, for
// every path that sets a Problem: a retry, a destination refusing every
// record, the loop's own sentences for a sink that gave none, and the
// local buffer failing. A success clears all three.
func TestStatusCarriesProblemCode(t *testing.T) {
	portal := sink.Say("HealthUpstreamWebPage", nil)
	refused := sink.Say("HealthJurnalRefusesAll", map[string]any{"Answer": "Tanggal transaksi is locked"})
	for _, tc := range []struct {
		name   string
		answer sink.Answer
		fail   func(*memSource)
		code   string
		params map[string]any
		text   string
	}{
		{"a sink's retry", sink.Answer{Verdict: sink.Retry, Health: HealthError}.WithProblem(portal),
			nil, portal.Code, nil, portal.Text},
		{"a sentence without a code", sink.Answer{Verdict: sink.Retry, Health: HealthOffline, Problem: "the sink is tired"},
			nil, "", nil, "the sink is tired"},
		{"no sentence", sink.Answer{}, nil, "HealthSinkDeliveryFailed", map[string]any{"Error": "the sink gave no reason"},
			"delivery failed: the sink gave no reason"},
		// A lone record refused while nothing was accepted: a uniform
		// rejection, shown with the sink's UniformProblem.
		{"every record refused", sink.Answer{Verdict: sink.Rejected, Same: "locked"}.WithUniformProblem(refused),
			nil, refused.Code, refused.Params, refused.Text},
		{"every record refused, no sentence", sink.Answer{Verdict: sink.Rejected}, nil,
			"HealthSinkRefusedAlike", map[string]any{"Error": "the sink gave no reason"}, "every record is refused alike: the sink gave no reason"},
		{"the buffer failing after the sink took the batch", sink.Answer{Verdict: sink.Accepted}, func(s *memSource) { s.failAck = 1 },
			"HealthSinkBufferAck", map[string]any{"Error": "ack delivered records: disk full"},
			"cannot mark delivered records in the local buffer: ack delivered records: disk full"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newRecClock()
			src := newMemSource(clock)
			src.add(1, false)
			if tc.fail != nil {
				tc.fail(src)
			}
			s := &memSink{endpoint: "mem://a", script: []sink.Answer{tc.answer}}
			f := New(src, s, Config{BatchSize: 10}, Options{Clock: clock})
			if err := f.Drain(testCtx(t)); err == nil {
				t.Fatal("Drain succeeded")
			}
			st := f.Status()
			if st.Problem != tc.text || st.ProblemCode != tc.code || len(st.ProblemParams) != len(tc.params) {
				t.Fatalf("status problem %q %s %v, want %q %s %v", st.Problem, st.ProblemCode, st.ProblemParams, tc.text, tc.code, tc.params)
			}
			for k, v := range tc.params {
				if st.ProblemParams[k] != v {
					t.Errorf("param %s = %v, want %v", k, st.ProblemParams[k], v)
				}
			}
			if tc.code != "" {
				if got := i18n.New(i18n.English).Msg(st.ProblemCode, st.ProblemParams); got != st.Problem {
					t.Errorf("the code renders %q, the status says %q", got, st.Problem)
				}
			}
			if err := f.Drain(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			if st := f.Status(); st.Problem != "" || st.ProblemCode != "" || st.ProblemParams != nil {
				t.Errorf("after a success: %q %s %v", st.Problem, st.ProblemCode, st.ProblemParams)
			}
		})
	}
}

// A buffer that cannot be read is shown with the loop's own code.
func TestStatusCarriesBufferReadCode(t *testing.T) {
	clock := newRecClock()
	src := newMemSource(clock)
	src.add(1, false)
	src.failPending = 1
	f := New(src, &memSink{endpoint: "mem://a"}, Config{BatchSize: 10}, Options{Clock: clock, Rand: func() float64 { return 0.5 }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	clock.nextWait(t) // the backoff after the failure
	st := f.Status()
	if st.ProblemCode != "HealthBufferRead" || st.ProblemParams["Error"] != "read pending records: disk on fire" ||
		st.Problem != "cannot read the local buffer: read pending records: disk on fire" {
		t.Errorf("status %+v", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}
