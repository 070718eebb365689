package natssink

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pwbi/edge-agent/agent/deliver/sink"
	"github.com/pwbi/edge-agent/store"
)

const testAgent = "cafe.01 pc" // a dot and a space: escaped in subjects

func testConfig(c *cluster) Config {
	return Config{URLs: c.urls(), AgentID: testAgent, Timeout: 5 * time.Second}
}

func send(t *testing.T, s *Sink, batch []store.Record) sink.Answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.Send(ctx, batch)
}

func TestSendPublishesSubjectsHeadersAndPayload(t *testing.T) {
	c := newCluster(t, 1)
	_, js := c.client()
	createStream(t, js, streamConfig(1, time.Minute))

	s := New(testConfig(c), Options{})
	defer s.Close()
	recs := records(1, 4)
	recs = append(recs, store.Record{Kind: store.KindMokkaOrder, Key: "mokka/store-9/ord 1", Seq: 5, Version: "v5", Data: []byte(`{"order_id":"ord 1"}`)})
	if a := send(t, s, recs); a.Verdict != sink.Accepted {
		t.Fatalf("answer %v: %v (%s)", a.Verdict, a.Err, a.Problem)
	}
	msgs := readStream(t, js, DefaultStream)
	checkExactlyOnce(t, msgs, testAgent, seqRange(1, 5))

	wantSubj := []string{
		"pwbi.cafe%2E01%20pc.transaction.biz_1.outlet_456",
		"pwbi.cafe%2E01%20pc.transaction.biz_1.outlet%2E7%20b",
		"pwbi.cafe%2E01%20pc.transaction.biz_1.outlet_456",
		"pwbi.cafe%2E01%20pc.transaction.biz_1.outlet%2E7%20b",
		"pwbi.cafe%2E01%20pc.mokka_order._._",
	}
	for i, m := range msgs {
		if m.subject != wantSubj[i] {
			t.Errorf("record %d: subject %q, want %q", m.seq, m.subject, wantSubj[i])
		}
		if m.key != recs[i].Key {
			t.Errorf("record %d: Pwbi-Key %q, want %q", m.seq, m.key, recs[i].Key)
		}
		var p struct {
			Kind    string          `json:"kind"`
			Key     string          `json:"key"`
			Seq     uint64          `json:"seq"`
			Version string          `json:"version"`
			Data    json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(m.data, &p); err != nil {
			t.Fatalf("record %d: payload %q: %v", m.seq, m.data, err)
		}
		if p.Kind != recs[i].Kind || p.Key != recs[i].Key || p.Seq != recs[i].Seq || p.Version != recs[i].Version || string(p.Data) != string(recs[i].Data) {
			t.Errorf("record %d: payload %s does not carry the record", m.seq, m.data)
		}
		if m.maxSeq != "" {
			t.Errorf("record %d: Pwbi-Max-Seq %q on a record in order", m.seq, m.maxSeq)
		}
	}

	// The same batch again (the loop retries after any non-accepted
	// answer): nothing is published twice.
	if a := send(t, s, recs); a.Verdict != sink.Accepted {
		t.Fatalf("resend: %v: %v", a.Verdict, a.Err)
	}
	checkExactlyOnce(t, readStream(t, js, DefaultStream), testAgent, seqRange(1, 5))
	if st := s.Stats(); st.Published != 5 || st.Skipped != 5 || st.OutOfOrder != 0 {
		t.Errorf("stats %+v: want 5 published, 5 skipped", st)
	}
}

// A restarted agent (a new sink, knowing nothing) resends records the stream
// has but the buffer had not removed, after the duplicate window passed:
// they are found by the resync and skipped, not stored twice.
func TestRestartSkipsStoredRecordsBeyondDuplicateWindow(t *testing.T) {
	c := newCluster(t, 1)
	_, js := c.client()
	const dupWindow = 200 * time.Millisecond
	createStream(t, js, streamConfig(1, dupWindow))
	// Other agents publish to the same stream in between.
	other := New(Config{URLs: c.urls(), AgentID: "other"}, Options{})
	defer other.Close()

	first := New(testConfig(c), Options{})
	for i := uint64(0); i < 10; i++ {
		if a := send(t, first, records(1+i*30, 30)); a.Verdict != sink.Accepted {
			t.Fatalf("batch %d: %v: %v", i, a.Verdict, a.Err)
		}
		if a := send(t, other, records(1+i*7, 7)); a.Verdict != sink.Accepted {
			t.Fatalf("other batch %d: %v: %v", i, a.Verdict, a.Err)
		}
	}
	first.Close()
	// Outlast the duplicate window: Nats-Msg-Id no longer protects.
	waitDuration(2 * dupWindow)

	second := New(testConfig(c), Options{})
	defer second.Close()
	// The buffer still holds 251..300 (stored, not removed) and 301..400.
	if a := send(t, second, records(251, 150)); a.Verdict != sink.Accepted {
		t.Fatalf("after restart: %v: %v (%s)", a.Verdict, a.Err, a.Problem)
	}
	var mine []stored
	for _, m := range readStream(t, js, DefaultStream) {
		if strings.HasPrefix(m.msgID, testAgent+":") {
			mine = append(mine, m)
		}
	}
	checkExactlyOnce(t, mine, testAgent, seqRange(1, 400))
	if st := second.Stats(); st.Skipped != 50 || st.Published != 100 || st.Duplicates != 0 {
		t.Errorf("stats %+v: want 50 skipped, 100 published, no duplicates", st)
	}
}

// A stream that lacks one record below the agent's highest (record 5 was
// refused as too large and is still buffered, say after a crash, when the
// operator raised the limit) gets it once, out of order and marked with
// Pwbi-Max-Seq, and a later resync from scratch still finds every record.
func TestMissingRecordBelowTailIsStoredOnceAndMarked(t *testing.T) {
	c := newCluster(t, 1)
	_, js := c.client()
	createStream(t, js, streamConfig(1, time.Minute))
	cfg := testConfig(c).withDefaults()
	for _, r := range records(1, 10) {
		if r.Seq == 5 {
			continue
		}
		if _, err := js.PublishMsg(context.Background(), message(cfg, r, 0)); err != nil {
			t.Fatal(err)
		}
	}

	s := New(testConfig(c), Options{})
	if a := send(t, s, records(1, 12)); a.Verdict != sink.Accepted {
		t.Fatalf("answer %v: %v (%s)", a.Verdict, a.Err, a.Problem)
	}
	msgs := readStream(t, js, DefaultStream)
	var got []uint64
	for _, m := range msgs {
		got = append(got, m.seq)
	}
	want := []uint64{1, 2, 3, 4, 6, 7, 8, 9, 10, 5, 11, 12}
	if !equalSeqs(got, want) {
		t.Fatalf("stream order %v, want %v", got, want)
	}
	if msgs[9].maxSeq != "10" {
		t.Errorf("repaired record: Pwbi-Max-Seq %q, want 10", msgs[9].maxSeq)
	}
	if st := s.Stats(); st.OutOfOrder != 1 || st.Published != 3 || st.Skipped != 9 {
		t.Errorf("stats %+v: want 1 out of order, 3 published, 9 skipped", st)
	}
	s.Close()

	// A restarted agent still holding 3..12 finds all of them.
	again := New(testConfig(c), Options{})
	defer again.Close()
	if a := send(t, again, records(3, 10)); a.Verdict != sink.Accepted {
		t.Fatalf("after restart: %v: %v", a.Verdict, a.Err)
	}
	if st := again.Stats(); st.Skipped != 10 || st.Published != 0 {
		t.Errorf("stats %+v: want 10 skipped", st)
	}
	if n := len(readStream(t, js, DefaultStream)); n != 12 {
		t.Errorf("stream holds %d messages, want 12", n)
	}
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// waitDuration lets real time pass: the scenario needs an outage longer
// than the stream's duplicate window. It synchronises nothing.
func waitDuration(d time.Duration) {
	<-time.After(d)
}

// A sink whose view of the stream is stale (here another process of the
// same agent stored record 6 meanwhile; in life a commit whose answer was
// lost) cannot store anything twice: the expectation on the batch's first
// message fails, the sink learns the position again and skips record 6.
func TestStaleViewIsRefusedAndRelearnt(t *testing.T) {
	c := newCluster(t, 1)
	_, js := c.client()
	createStream(t, js, streamConfig(1, time.Millisecond*100))
	a := New(testConfig(c), Options{})
	defer a.Close()
	if ans := send(t, a, records(1, 5)); ans.Verdict != sink.Accepted {
		t.Fatal(ans.Err)
	}
	other := New(testConfig(c), Options{})
	if ans := send(t, other, records(6, 1)); ans.Verdict != sink.Accepted {
		t.Fatal(ans.Err)
	}
	other.Close()
	waitDuration(300 * time.Millisecond) // past the duplicate window: only the expectation protects

	if ans := send(t, a, records(6, 5)); ans.Verdict != sink.Accepted {
		t.Fatalf("stale view: %v: %v (%s)", ans.Verdict, ans.Err, ans.Problem)
	}
	checkExactlyOnce(t, readStream(t, js, DefaultStream), testAgent, seqRange(1, 10))
	if st := a.Stats(); st.Resyncs != 2 || st.Skipped != 1 || st.Published != 9 {
		t.Errorf("stats %+v: want 2 resyncs, 1 skipped, 9 published", st)
	}
}
