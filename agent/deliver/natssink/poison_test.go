package natssink

import (
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/deliver"
	"github.com/pwbi/edge-agent/internal/testutil"
	"github.com/pwbi/edge-agent/store"
)

// withData gives record seq of recs a data field of n bytes.
func withData(recs []store.Record, seq uint64, n int) {
	for i := range recs {
		if recs[i].Seq == seq {
			recs[i].Data = []byte(`{"note":"` + strings.Repeat("x", n) + `"}`)
			recs[i].Version = store.Version(recs[i].Data)
		}
	}
}

// A record the stream refuses for its size (over the stream's
// max_msg_size) and one over the server's max_payload are dead-lettered by
// the loop for this sink; the others are delivered once, in order.
func TestPoisonRecordsAreDeadLetteredTheRestDelivered(t *testing.T) {
	c := newCluster(t, 1)
	_, js := c.client()
	scfg := streamConfig(1, time.Minute)
	scfg.MaxMsgSize = 4 << 10
	createStream(t, js, scfg)

	recs := records(1, 300)
	withData(recs, 120, 8<<10)    // over max_msg_size: the stream refuses it
	withData(recs, 230, 1100<<10) // over max_payload (1 MB): nats.go refuses it
	src := newMemSource(recs)
	s := New(testConfig(c), Options{})
	defer s.Close()
	d := startDrain(t, src, s, 100, nil)
	testutil.WaitFor(t, "buffer empty", waitLimit, func() bool {
		pending, _, _ := src.counts()
		return pending == 0
	})
	d.stop()
	dead := src.deadLetters()
	if len(dead) != 2 || !strings.Contains(dead[120], "message size exceeds maximum") || !strings.Contains(dead[230], "max_payload") {
		t.Fatalf("dead letters %v: want 120 (too large for the stream) and 230 (over max_payload)", dead)
	}
	var want []uint64
	for _, q := range seqRange(1, 300) {
		if q != 120 && q != 230 {
			want = append(want, q)
		}
	}
	checkExactlyOnce(t, readStream(t, js, DefaultStream), testAgent, want)
	if st := d.fwd.Status(); st.Health != deliver.HealthOK {
		t.Errorf("status %+v: want healthy after isolating the poison", st)
	}
}

// A stream that refuses every record alike (max_msg_size far too small) is
// an endpoint failure: shown as an error, nothing dead-lettered.
func TestStreamRefusingEveryRecordIsShownNotDeadLettered(t *testing.T) {
	c := newCluster(t, 1)
	_, js := c.client()
	scfg := streamConfig(1, time.Minute)
	scfg.MaxMsgSize = 64
	createStream(t, js, scfg)

	src := newMemSource(records(1, 40))
	s := New(testConfig(c), Options{})
	defer s.Close()
	d := startDrain(t, src, s, 10, nil)
	testutil.WaitFor(t, "uniform rejection shown", waitLimit, func() bool {
		st := d.fwd.Status()
		return st.Health == deliver.HealthError && strings.Contains(st.Problem, "refuses every record") &&
			strings.Contains(st.LastError, "message size exceeds maximum")
	})
	d.stop()
	if pending, acked, dead := src.counts(); pending != 40 || acked != 0 || dead != 0 {
		t.Fatalf("buffer: %d pending, %d delivered, %d dead; want all 40 pending", pending, acked, dead)
	}
	if n := d.fwd.Status().DeadLettered; n != 0 {
		t.Fatalf("dead-lettered %d", n)
	}
}
